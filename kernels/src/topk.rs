//! Top-K selection over one score row: the K best (index, score) pairs,
//! best first, by partial selection (a bounded heap, O(n log K) time and no
//! allocation beyond the output), never a full sort of the row.
//!
//! Ranking (total and deterministic): higher score first; equal scores
//! (including −0.0 = +0.0) by smaller index; NaN ranks below every other
//! value (−∞ included), NaNs among themselves by smaller index.

/// `true` if `a` ranks strictly ahead of `b` under the module's ranking.
#[inline]
pub(crate) fn ranks_ahead(a: (u32, f32), b: (u32, f32)) -> bool {
    match (a.1.is_nan(), b.1.is_nan()) {
        (false, true) => true,
        (true, false) => false,
        (true, true) => a.0 < b.0,
        (false, false) => a.1 > b.1 || (a.1 == b.1 && a.0 < b.0),
    }
}

/// Restores the heap property below `pos` in a heap whose root is the
/// WORST-ranked entry (so the root is the one to evict).
fn sift_down(heap: &mut [(u32, f32)], mut pos: usize) {
    loop {
        let left = 2 * pos + 1;
        if left >= heap.len() {
            return;
        }
        let right = left + 1;
        let worse_child = if right < heap.len() && ranks_ahead(heap[left], heap[right]) {
            right
        } else {
            left
        };
        if ranks_ahead(heap[pos], heap[worse_child]) {
            heap.swap(pos, worse_child);
            pos = worse_child;
        } else {
            return;
        }
    }
}

fn sift_up(heap: &mut [(u32, f32)], mut pos: usize) {
    while pos > 0 {
        let parent = (pos - 1) / 2;
        if ranks_ahead(heap[parent], heap[pos]) {
            heap.swap(parent, pos);
            pos = parent;
        } else {
            return;
        }
    }
}

/// Core selection: scans indices in increasing order, skipping those in
/// `skip_sorted` (sorted ascending, deduplicated).
fn select(scores: &[f32], k: usize, skip_sorted: &[u32], out: &mut Vec<(u32, f32)>) {
    assert!(
        scores.len() <= u32::MAX as usize + 1,
        "top_k: {} scores do not fit u32 indices",
        scores.len()
    );
    out.clear();
    let k = k.min(scores.len());
    if k == 0 {
        return;
    }
    out.reserve(k);
    let mut skip = skip_sorted.iter().copied().peekable();
    for (i, &s) in scores.iter().enumerate() {
        let i = i as u32;
        while skip.next_if(|&e| e < i).is_some() {}
        if skip.next_if_eq(&i).is_some() {
            continue;
        }
        if out.len() < k {
            out.push((i, s));
            let last = out.len() - 1;
            sift_up(out, last);
        } else {
            // Indices arrive in increasing order, so every entry already in
            // the heap has a smaller index: `i` ranks ahead of the worst
            // entry exactly when its score is strictly better.
            let worst = out[0].1;
            let better = if worst.is_nan() {
                !s.is_nan()
            } else {
                s > worst
            };
            if better {
                out[0] = (i, s);
                sift_down(out, 0);
            }
        }
    }
    out.sort_unstable_by(|&a, &b| {
        if ranks_ahead(a, b) {
            core::cmp::Ordering::Less
        } else {
            core::cmp::Ordering::Greater
        }
    });
}

/// `out` ← the min(k, n) best (index, score) pairs of `scores` (n entries),
/// best first (see the module docs for the ranking: ties by smaller index,
/// NaN last). Panics if n > 2³².
///
/// ```
/// use dtrec_kernels::topk::top_k;
/// let mut out = Vec::new();
/// top_k(&[0.5, f32::NAN, 2.0, 0.5], 3, &mut out);
/// assert_eq!(out, vec![(2, 2.0), (0, 0.5), (3, 0.5)]);
/// ```
pub fn top_k(scores: &[f32], k: usize, out: &mut Vec<(u32, f32)>) {
    select(scores, k, &[], out);
}

/// As [`top_k`], but indices listed in `exclude` (any order, duplicates and
/// out-of-range indices allowed) are never returned; out holds
/// min(k, number of non-excluded indices) pairs.
///
/// ```
/// use dtrec_kernels::topk::top_k_excluding;
/// let mut out = Vec::new();
/// top_k_excluding(&[3.0, 1.0, 2.0], 2, &[0, 0, 9], &mut out);
/// assert_eq!(out, vec![(2, 2.0), (1, 1.0)]);
/// ```
pub fn top_k_excluding(scores: &[f32], k: usize, exclude: &[u32], out: &mut Vec<(u32, f32)>) {
    let mut skip = exclude.to_vec();
    skip.sort_unstable();
    skip.dedup();
    select(scores, k, &skip, out);
}

/// Scalar twin of [`top_k_excluding`] (and of [`top_k`] with an empty
/// `exclude`), written for clarity: a full stable sort of all kept
/// indices by score, descending, NaN last, then truncation to k.
pub fn top_k_reference(scores: &[f32], k: usize, exclude: &[u32], out: &mut Vec<(u32, f32)>) {
    out.clear();
    out.extend(
        scores
            .iter()
            .enumerate()
            .filter(|(i, _)| !exclude.contains(&(*i as u32)))
            .map(|(i, &s)| (i as u32, s)),
    );
    // Stable sort on the score alone: equal scores keep index order.
    out.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (true, true) => core::cmp::Ordering::Equal,
        (true, false) => core::cmp::Ordering::Greater,
        (false, true) => core::cmp::Ordering::Less,
        (false, false) => b.1.partial_cmp(&a.1).expect("both finite or infinite"),
    });
    out.truncate(k);
}
