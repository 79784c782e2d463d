//! Scalar twin of the scoring kernel: one dot product per (query, item).

use crate::real::Real;

/// Checks a score call's slice lengths; returns (q, n). Shared by the fast
/// kernel and this twin.
pub(crate) fn check_score_shapes(
    out_len: usize,
    queries_len: usize,
    items_len: usize,
    d: usize,
) -> (usize, usize) {
    assert!(d > 0, "score: the embedding width d must be at least 1");
    assert_eq!(
        queries_len % d,
        0,
        "score: queries has {queries_len} elements, not a multiple of d = {d}"
    );
    assert_eq!(
        items_len % d,
        0,
        "score: items has {items_len} elements, not a multiple of d = {d}"
    );
    let (q, n) = (queries_len / d, items_len / d);
    let qn = q.checked_mul(n).expect("score: q·n overflows usize");
    assert_eq!(
        out_len, qn,
        "score: out has {out_len} elements, expected q·n = {q}·{n}"
    );
    (q, n)
}

/// out (q×n) = α · queries (q×d) · itemsᵀ (items is n×d), with
/// q = queries.len()/d and n = items.len()/d.
///
/// Same scalar conventions as [`gemm`](super::matmul::gemm) with β = 0: `out`
/// is only written, and α = 0 gives zeros without reading the inputs.
///
/// Panics if d = 0 or a slice length does not match.
pub fn score<T: Real>(out: &mut [T], queries: &[T], items: &[T], d: usize, alpha: T) {
    let (q, n) = check_score_shapes(out.len(), queries.len(), items.len(), d);
    for r in 0..q {
        let query = &queries[r * d..(r + 1) * d];
        for j in 0..n {
            let item = &items[j * d..(j + 1) * d];
            out[r * n + j] = if alpha == T::ZERO {
                T::ZERO
            } else {
                let mut acc = T::ZERO;
                for p in 0..d {
                    acc += query[p] * item[p];
                }
                alpha * acc
            };
        }
    }
}
