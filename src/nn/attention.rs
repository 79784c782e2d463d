//! Multi-head scaled dot-product attention with a causal + key-padding mask,
//! over *groups* of rows (the projections Q, K, V live in `block.rs`).
//!
//! Padded columns are never materialised: a sequence's real tokens are packed
//! into consecutive rows, so "causal plus key-padding mask" becomes "query i
//! of a group sees the contiguous key range [0, n_k − n_q + i]", one
//! `softmax_forward` over a valid range per row, O(n_k) backward per row.
//!
//! A group's queries are the *last* `n_q` of its `n_k` keys, which covers
//! * a whole sequence (n_q = n_k = len),
//! * the last column only (n_q = 1, n_k = len: the last layer, where only
//!   h₀ is needed),
//! * one new token over a per-layer key/value cache (n_q = 1, n_k = cached
//!   rows + 1: a reasoning step, issue 5), provided the cache keeps each
//!   sequence's keys in consecutive rows (reserve room per sequence).
//!
//! A query whose valid range were empty would get an all-zero output (the
//! softmax kernel writes zeros, never NaN); with packed rows every query sees
//! at least itself.

use super::dropout::DropoutSite;
use super::tensor::reset;
use crate::kernels::{Kernels, Real, Trans};

/// One block of the attention: queries rows `q_start..q_start+n_q` of Q (and
/// of the output), keys/values rows `k_start..k_start+n_k` of K and V. Query
/// i sees keys `0..n_k − n_q + i + 1` (relative to `k_start`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnGroup {
    pub q_start: usize,
    pub n_q: usize,
    pub k_start: usize,
    pub n_k: usize,
    /// Index of the sequence in the whole batch (dropout coordinates).
    pub seq: u32,
    /// Position id of key 0 (dropout coordinates).
    pub pos0: u32,
}

impl AttnGroup {
    /// Number of keys query i of the group attends to.
    pub fn n_valid(&self, i: usize) -> usize {
        self.n_k - self.n_q + i + 1
    }
}

/// Sizes of the attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnDims {
    /// Model width d (= n_heads · d_h).
    pub d: usize,
    pub n_heads: usize,
    /// Number of position ids a sequence can have (dropout coordinates).
    pub pos_cap: usize,
}

/// What the forward saves.
#[derive(Clone, Debug, Default)]
pub struct AttnCache<T> {
    /// Per group g, (n_heads, n_q, n_k) attention probabilities starting at
    /// `offsets[g]`; zero outside each row's valid range.
    pub probs: Vec<T>,
    /// Same layout as `probs`: the dropout mask (empty without dropout).
    pub mask: Vec<T>,
    /// (groups) start of each group in `probs`.
    pub offsets: Vec<usize>,
}

/// Per-head scratch buffers, reused between calls.
#[derive(Clone, Debug, Default)]
pub struct AttnScratch<T> {
    qh: Vec<T>,
    kh: Vec<T>,
    vh: Vec<T>,
    oh: Vec<T>,
    s: Vec<T>,
    ds: Vec<T>,
    dqh: Vec<T>,
    dkh: Vec<T>,
    dvh: Vec<T>,
}

/// dst (n, d_h) = columns [h·d_h, (h+1)·d_h) of rows start..start+n of src (·, d).
fn gather_head<T: Real>(dst: &mut Vec<T>, src: &[T], start: usize, n: usize, h: usize, dh: usize, d: usize) {
    dst.clear();
    for r in start..start + n {
        dst.extend_from_slice(&src[r * d + h * dh..r * d + (h + 1) * dh]);
    }
}

/// Rows start..start+n, head h of dst (·, d) (+)= src (n, d_h).
fn scatter_head<T: Kernels>(dst: &mut [T], src: &[T], start: usize, h: usize, dh: usize, d: usize, accumulate: bool) {
    for (i, row) in src.chunks_exact(dh).enumerate() {
        let o = (start + i) * d + h * dh;
        if accumulate {
            T::axpy(&mut dst[o..o + dh], T::ONE, row);
        } else {
            dst[o..o + dh].copy_from_slice(row);
        }
    }
}

/// out (rows_q, d) = per head softmax(Q_h K_hᵀ/√d_h, masked) · V_h, for every group.
///
/// q and out are (rows_q, d), k and v are (rows_k, d). Output rows not
/// covered by a group are left untouched. With `dropout`, the probabilities
/// are dropped (inverted dropout) before multiplying V; the mask element for
/// (sequence s, head h, query position qp, key position kp) has counter
/// offset `((s·H + h)·pos_cap + qp)·pos_cap + kp`.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward<T: Kernels>(
    out: &mut [T],
    cache: &mut AttnCache<T>,
    q: &[T],
    k: &[T],
    v: &[T],
    groups: &[AttnGroup],
    dims: AttnDims,
    dropout: Option<&DropoutSite>,
    scratch: &mut AttnScratch<T>,
) {
    let AttnDims { d, n_heads, pos_cap } = dims;
    assert!(n_heads > 0 && d % n_heads == 0, "attention: d must be a multiple of n_heads");
    let dh = d / n_heads;
    let scale = T::ONE / T::from_usize(dh).sqrt();
    cache.offsets.clear();
    let mut total = 0;
    for g in groups {
        assert!(g.n_q >= 1 && g.n_q <= g.n_k, "attention: a group needs 1 ≤ n_q ≤ n_k");
        assert!((g.q_start + g.n_q) * d <= q.len() && (g.k_start + g.n_k) * d <= k.len(), "attention: group out of range");
        cache.offsets.push(total);
        total += n_heads * g.n_q * g.n_k;
    }
    reset(&mut cache.probs, total);
    reset(&mut cache.mask, if dropout.is_some() { total } else { 0 });

    for (g, &off) in groups.iter().zip(&cache.offsets) {
        let (n_q, n_k) = (g.n_q, g.n_k);
        for h in 0..n_heads {
            gather_head(&mut scratch.qh, q, g.q_start, n_q, h, dh, d);
            gather_head(&mut scratch.kh, k, g.k_start, n_k, h, dh, d);
            gather_head(&mut scratch.vh, v, g.k_start, n_k, h, dh, d);
            // pass 1: scores s (n_q, n_k) = scale · q_h · k_hᵀ
            reset(&mut scratch.s, n_q * n_k);
            T::gemm(n_q, n_k, dh, scale, &scratch.qh, Trans::N, &scratch.kh, Trans::T, T::ZERO, &mut scratch.s);
            // pass 2: masked softmax per query row over its valid key range
            let p = &mut cache.probs[off + h * n_q * n_k..off + (h + 1) * n_q * n_k];
            for i in 0..n_q {
                let row = i * n_k..(i + 1) * n_k;
                T::softmax_forward(&mut p[row.clone()], &scratch.s[row], 0..g.n_valid(i));
            }
            // pass 3: dropout on the probabilities (pd = p ⊙ mask, into s)
            let pd: &[T] = if let Some(site) = dropout {
                let mask = &mut cache.mask[off + h * n_q * n_k..off + (h + 1) * n_q * n_k];
                for i in 0..n_q {
                    let qpos = g.pos0 as u64 + (g.n_k - g.n_q + i) as u64;
                    let base = ((g.seq as u64 * n_heads as u64 + h as u64) * pos_cap as u64 + qpos) * pos_cap as u64 + g.pos0 as u64;
                    site.rng.fill_dropout_mask(&mut mask[i * n_k..i * n_k + g.n_valid(i)], site.stream, base, site.p);
                }
                for ((s, &pv), &m) in scratch.s.iter_mut().zip(p.iter()).zip(mask.iter()) {
                    *s = pv * m;
                }
                &scratch.s
            } else {
                p
            };
            // pass 4: o_h (n_q, d_h) = pd · v_h
            reset(&mut scratch.oh, n_q * dh);
            T::gemm(n_q, dh, n_k, T::ONE, pd, Trans::N, &scratch.vh, Trans::N, T::ZERO, &mut scratch.oh);
            scatter_head(out, &scratch.oh, g.q_start, h, dh, d, false);
        }
    }
}

/// Backward of [`attention_forward`]: accumulates dq (rows_q, d), dk and dv
/// (rows_k, d) from dout (rows_q, d).
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Kernels>(
    dq: &mut [T],
    dk: &mut [T],
    dv: &mut [T],
    dout: &[T],
    q: &[T],
    k: &[T],
    v: &[T],
    cache: &AttnCache<T>,
    groups: &[AttnGroup],
    dims: AttnDims,
    scratch: &mut AttnScratch<T>,
) {
    let AttnDims { d, n_heads, .. } = dims;
    let dh = d / n_heads;
    let scale = T::ONE / T::from_usize(dh).sqrt();
    let dropped = !cache.mask.is_empty();
    for (g, &off) in groups.iter().zip(&cache.offsets) {
        let (n_q, n_k) = (g.n_q, g.n_k);
        for h in 0..n_heads {
            let range = off + h * n_q * n_k..off + (h + 1) * n_q * n_k;
            let p = &cache.probs[range.clone()];
            gather_head(&mut scratch.qh, q, g.q_start, n_q, h, dh, d);
            gather_head(&mut scratch.kh, k, g.k_start, n_k, h, dh, d);
            gather_head(&mut scratch.vh, v, g.k_start, n_k, h, dh, d);
            gather_head(&mut scratch.oh, dout, g.q_start, n_q, h, dh, d); // do_h (n_q, d_h)
            // pd = p ⊙ mask, into ds for now
            let pd: &[T] = if dropped {
                scratch.ds.clear();
                scratch.ds.extend(p.iter().zip(&cache.mask[range.clone()]).map(|(&pv, &m)| pv * m));
                &scratch.ds
            } else {
                p
            };
            // forward: o_h = pd · v_h  ⇒  dv_h = pdᵀ · do_h
            reset(&mut scratch.dvh, n_k * dh);
            T::gemm(n_k, dh, n_q, T::ONE, pd, Trans::T, &scratch.oh, Trans::N, T::ZERO, &mut scratch.dvh);
            scatter_head(dv, &scratch.dvh, g.k_start, h, dh, d, true);
            // ⇒ dpd (n_q, n_k) = do_h · v_hᵀ (into s)
            reset(&mut scratch.s, n_q * n_k);
            T::gemm(n_q, n_k, dh, T::ONE, &scratch.oh, Trans::N, &scratch.vh, Trans::T, T::ZERO, &mut scratch.s);
            // forward: pd = p ⊙ mask  ⇒  dp = dpd ⊙ mask
            if dropped {
                for (s, &m) in scratch.s.iter_mut().zip(&cache.mask[range.clone()]) {
                    *s *= m;
                }
            }
            // forward: p_row = softmax(s_row over valid)  ⇒  ds = p ⊙ (dp − ⟨p, dp⟩), O(n_k) per row
            reset(&mut scratch.ds, n_q * n_k);
            for i in 0..n_q {
                let row = i * n_k..(i + 1) * n_k;
                T::softmax_backward(&mut scratch.ds[row.clone()], &scratch.s[row.clone()], &p[row], 0..g.n_valid(i));
            }
            // forward: s = scale · q_h · k_hᵀ  ⇒  dq_h = scale · ds · k_h, dk_h = scale · dsᵀ · q_h
            reset(&mut scratch.dqh, n_q * dh);
            T::gemm(n_q, dh, n_k, scale, &scratch.ds, Trans::N, &scratch.kh, Trans::N, T::ZERO, &mut scratch.dqh);
            scatter_head(dq, &scratch.dqh, g.q_start, h, dh, d, true);
            reset(&mut scratch.dkh, n_k * dh);
            T::gemm(n_k, dh, n_q, scale, &scratch.ds, Trans::T, &scratch.qh, Trans::N, T::ZERO, &mut scratch.dkh);
            scatter_head(dk, &scratch.dkh, g.k_start, h, dh, d, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_group(n: usize) -> AttnGroup {
        AttnGroup { q_start: 0, n_q: n, k_start: 0, n_k: n, seq: 0, pos0: 0 }
    }

    #[test]
    fn closed_form_two_tokens_one_head() {
        // d = 1, one head, keys k = (0, ln 3 · 1) with q = (1, 1):
        // query 0 sees only key 0 → out0 = v0;
        // query 1: scores (0, ln 3) → probs (1/4, 3/4) → out1 = v0/4 + 3v1/4.
        let q = [1.0, 1.0];
        let k = [0.0, 3f64.ln()];
        let v = [2.0, 6.0];
        let dims = AttnDims { d: 1, n_heads: 1, pos_cap: 2 };
        let mut out = [f64::NAN; 2];
        let mut cache = AttnCache::default();
        let mut scratch = AttnScratch::default();
        attention_forward(&mut out, &mut cache, &q, &k, &v, &[one_group(2)], dims, None, &mut scratch);
        assert!((out[0] - 2.0).abs() < 1e-14);
        assert!((out[1] - (0.5 + 4.5)).abs() < 1e-14);
        assert_eq!(cache.probs[1], 0.0, "query 0 must not see key 1");

        // dout = (0, 1): dv = (1/4, 3/4); dp1 = (v0, v1) = (2, 6),
        // ds1 = p ⊙ (dp − ⟨p, dp⟩) = (1/4·(2−5), 3/4·(6−5)) = (−3/4, 3/4);
        // dq1 = ds1 · k = 3/4·ln 3; dk = ds1 · q1 = (−3/4, 3/4).
        let (mut dq, mut dk, mut dv) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        attention_backward(&mut dq, &mut dk, &mut dv, &[0.0, 1.0], &q, &k, &v, &cache, &[one_group(2)], dims, &mut scratch);
        assert!((dv[0] - 0.25).abs() < 1e-14 && (dv[1] - 0.75).abs() < 1e-14);
        assert!(dq[0].abs() < 1e-14 && (dq[1] - 0.75 * 3f64.ln()).abs() < 1e-14);
        assert!((dk[0] + 0.75).abs() < 1e-14 && (dk[1] - 0.75).abs() < 1e-14);
    }

    #[test]
    fn last_query_group_equals_last_row_of_full_group() {
        // A group with only the last query must give the full group's last row.
        let (n, d) = (4, 4);
        let q: Vec<f64> = (0..n * d).map(|i| ((i * 7 % 11) as f64 - 5.0) / 5.0).collect();
        let k: Vec<f64> = (0..n * d).map(|i| ((i * 3 % 13) as f64 - 6.0) / 6.0).collect();
        let v: Vec<f64> = (0..n * d).map(|i| ((i * 5 % 9) as f64 - 4.0) / 4.0).collect();
        let dims = AttnDims { d, n_heads: 2, pos_cap: n };
        let mut scratch = AttnScratch::default();
        let mut full = vec![0.0; n * d];
        attention_forward(&mut full, &mut AttnCache::default(), &q, &k, &v, &[one_group(n)], dims, None, &mut scratch);
        let mut last = vec![0.0; d];
        let g = AttnGroup { q_start: 0, n_q: 1, k_start: 0, n_k: n, seq: 0, pos0: 0 };
        attention_forward(&mut last, &mut AttnCache::default(), &q[(n - 1) * d..], &k, &v, &[g], dims, None, &mut scratch);
        for (a, b) in last.iter().zip(&full[(n - 1) * d..]) {
            assert!((a - b).abs() < 1e-14);
        }
    }
}
