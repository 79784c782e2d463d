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

use super::dropout::{fill_mask, DropoutSite};
use super::tensor::reset;
use crate::kernels::Kernels;

/// One block of the attention: queries rows `q_start..q_start+n_q` of Q (and
/// of the output), keys/values rows `k_start..k_start+n_k` of K and V. Query
/// i sees keys `0..n_k − n_q + i + 1` (relative to `k_start`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnGroup {
    /// First query row.
    pub q_start: usize,
    /// Number of query rows.
    pub n_q: usize,
    /// First key/value row.
    pub k_start: usize,
    /// Number of key/value rows (≥ `n_q`: the last `n_q` keys are the queries' own).
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
    /// Attention heads H.
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

/// Row scratch buffers, reused between calls.
#[derive(Clone, Debug, Default)]
pub struct AttnScratch<T> {
    /// (n_k) scores, then dropped probabilities, of one query row
    s: Vec<T>,
    /// (n_k) gradient w.r.t. the probabilities of one query row
    dp: Vec<T>,
}

/// Head h of row r of a (·, d) matrix.
#[inline]
fn head<T>(x: &[T], r: usize, h: usize, dh: usize, d: usize) -> &[T] {
    &x[r * d + h * dh..r * d + (h + 1) * dh]
}

#[inline]
fn head_mut<T>(x: &mut [T], r: usize, h: usize, dh: usize, d: usize) -> &mut [T] {
    &mut x[r * d + h * dh..r * d + (h + 1) * dh]
}

fn check_groups(groups: &[AttnGroup], rows_q: usize, rows_k: usize) {
    for g in groups {
        assert!(
            g.n_q >= 1 && g.n_q <= g.n_k,
            "attention: a group needs 1 ≤ n_q ≤ n_k"
        );
        assert!(
            g.q_start + g.n_q <= rows_q && g.k_start + g.n_k <= rows_k,
            "attention: group out of range"
        );
    }
}

/// out (rows_q, d) = per head softmax(Q_h K_hᵀ/√d_h, masked) · V_h, for every group.
///
/// q and out are (rows_q, d), k and v are (rows_k, d). Output rows not
/// covered by a group are left untouched. With `dropout`, the probabilities
/// are dropped (inverted dropout) before multiplying V; the mask element for
/// (sequence s, head h, query position qp, key position kp) has counter
/// offset `((s·H + h)·pos_cap + qp)·pos_cap + kp`.
///
/// Each query row touches only its valid keys (dot products and axpys of
/// length d_h), so the causal half of the score matrix is never computed.
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
    let AttnDims {
        d,
        n_heads,
        pos_cap,
    } = dims;
    assert!(
        n_heads > 0 && d % n_heads == 0,
        "attention: d must be a multiple of n_heads"
    );
    assert!(
        q.len() % d == 0 && k.len() == v.len() && k.len() % d == 0 && out.len() == q.len(),
        "attention: shapes"
    );
    check_groups(groups, q.len() / d, k.len() / d);
    let dh = d / n_heads;
    let scale = T::ONE / T::from_usize(dh).sqrt();
    cache.offsets.clear();
    let mut total = 0;
    for g in groups {
        cache.offsets.push(total);
        total += n_heads * g.n_q * g.n_k;
    }
    reset(&mut cache.probs, total);
    reset(&mut cache.mask, if dropout.is_some() { total } else { 0 });

    for (g, &off) in groups.iter().zip(&cache.offsets) {
        let (n_q, n_k) = (g.n_q, g.n_k);
        for i in 0..n_q {
            let (qr, nv) = (g.q_start + i, g.n_valid(i));
            out[qr * d..(qr + 1) * d].fill(T::ZERO);
            for h in 0..n_heads {
                let row = off + (h * n_q + i) * n_k;
                let qh = head(q, qr, h, dh, d);
                // pass 1: scores s_j = scale · ⟨q_i, k_j⟩ over the valid keys
                reset(&mut scratch.s, nv);
                for (j, s) in scratch.s.iter_mut().enumerate() {
                    *s = scale * T::dot(qh, head(k, g.k_start + j, h, dh, d));
                }
                // pass 2: softmax over the valid keys (the rest of the row stays 0)
                let p = &mut cache.probs[row..row + nv];
                T::softmax_forward(p, &scratch.s, 0..nv);
                // pass 3: dropout on the probabilities, pd = p ⊙ mask (into s)
                if let Some(site) = dropout {
                    let qpos = g.pos0 as u64 + (n_k - n_q + i) as u64;
                    let base = ((g.seq as u64 * n_heads as u64 + h as u64) * pos_cap as u64 + qpos)
                        * pos_cap as u64
                        + g.pos0 as u64;
                    let mask = &mut cache.mask[row..row + nv];
                    fill_mask(mask, site.rng, site.stream, base, site.p);
                    for ((s, &pv), &m) in scratch.s.iter_mut().zip(p.iter()).zip(mask.iter()) {
                        *s = pv * m;
                    }
                } else {
                    scratch.s.copy_from_slice(p);
                }
                // pass 4: o_i = Σ_j pd_j · v_j
                let o = head_mut(out, qr, h, dh, d);
                for (j, &pd) in scratch.s.iter().enumerate() {
                    T::axpy(o, pd, head(v, g.k_start + j, h, dh, d));
                }
            }
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
    assert!(
        dq.len() == q.len() && dout.len() == q.len() && dk.len() == k.len() && dv.len() == v.len(),
        "attention backward: shapes"
    );
    check_groups(groups, q.len() / d, k.len() / d);
    let dh = d / n_heads;
    let scale = T::ONE / T::from_usize(dh).sqrt();
    let dropped = !cache.mask.is_empty();
    for (g, &off) in groups.iter().zip(&cache.offsets) {
        let (n_q, n_k) = (g.n_q, g.n_k);
        for i in 0..n_q {
            let (qr, nv) = (g.q_start + i, g.n_valid(i));
            for h in 0..n_heads {
                let row = off + (h * n_q + i) * n_k;
                let p = &cache.probs[row..row + nv];
                let do_i = head(dout, qr, h, dh, d);
                // forward: o_i = Σ_j pd_j v_j  ⇒  dv_j += pd_j · do_i, dpd_j = ⟨do_i, v_j⟩
                reset(&mut scratch.dp, nv);
                for (j, (&pj, dp)) in p.iter().zip(scratch.dp.iter_mut()).enumerate() {
                    let kr = g.k_start + j;
                    let pd = if dropped {
                        pj * cache.mask[row + j]
                    } else {
                        pj
                    };
                    T::axpy(head_mut(dv, kr, h, dh, d), pd, do_i);
                    *dp = T::dot(do_i, head(v, kr, h, dh, d));
                }
                // forward: pd = p ⊙ mask  ⇒  dp = dpd ⊙ mask
                if dropped {
                    for (dp, &m) in scratch.dp.iter_mut().zip(&cache.mask[row..row + nv]) {
                        *dp *= m;
                    }
                }
                // forward: p = softmax(s)  ⇒  ds = p ⊙ (dp − ⟨p, dp⟩), O(n_k) (into s)
                reset(&mut scratch.s, nv);
                T::softmax_backward(&mut scratch.s, &scratch.dp, p, 0..nv);
                // forward: s_j = scale · ⟨q_i, k_j⟩  ⇒  dq_i += scale Σ_j ds_j k_j, dk_j += scale ds_j q_i
                let qh = head(q, qr, h, dh, d);
                for j in 0..nv {
                    let kr = g.k_start + j;
                    let ds = scale * scratch.s[j];
                    T::axpy(head_mut(dq, qr, h, dh, d), ds, head(k, kr, h, dh, d));
                    T::axpy(head_mut(dk, kr, h, dh, d), ds, qh);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_group(n: usize) -> AttnGroup {
        AttnGroup {
            q_start: 0,
            n_q: n,
            k_start: 0,
            n_k: n,
            seq: 0,
            pos0: 0,
        }
    }

    #[test]
    fn closed_form_two_tokens_one_head() {
        // d = 1, one head, keys k = (0, ln 3 · 1) with q = (1, 1):
        // query 0 sees only key 0 → out0 = v0;
        // query 1: scores (0, ln 3) → probs (1/4, 3/4) → out1 = v0/4 + 3v1/4.
        let q = [1.0, 1.0];
        let k = [0.0, 3f64.ln()];
        let v = [2.0, 6.0];
        let dims = AttnDims {
            d: 1,
            n_heads: 1,
            pos_cap: 2,
        };
        let mut out = [f64::NAN; 2];
        let mut cache = AttnCache::default();
        let mut scratch = AttnScratch::default();
        attention_forward(
            &mut out,
            &mut cache,
            &q,
            &k,
            &v,
            &[one_group(2)],
            dims,
            None,
            &mut scratch,
        );
        assert!((out[0] - 2.0).abs() < 1e-14);
        assert!((out[1] - (0.5 + 4.5)).abs() < 1e-14);
        assert_eq!(cache.probs[1], 0.0, "query 0 must not see key 1");

        // dout = (0, 1): dv = (1/4, 3/4); dp1 = (v0, v1) = (2, 6),
        // ds1 = p ⊙ (dp − ⟨p, dp⟩) = (1/4·(2−5), 3/4·(6−5)) = (−3/4, 3/4);
        // dq1 = ds1 · k = 3/4·ln 3; dk = ds1 · q1 = (−3/4, 3/4).
        let (mut dq, mut dk, mut dv) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        attention_backward(
            &mut dq,
            &mut dk,
            &mut dv,
            &[0.0, 1.0],
            &q,
            &k,
            &v,
            &cache,
            &[one_group(2)],
            dims,
            &mut scratch,
        );
        assert!((dv[0] - 0.25).abs() < 1e-14 && (dv[1] - 0.75).abs() < 1e-14);
        assert!(dq[0].abs() < 1e-14 && (dq[1] - 0.75 * 3f64.ln()).abs() < 1e-14);
        assert!((dk[0] + 0.75).abs() < 1e-14 && (dk[1] - 0.75).abs() < 1e-14);
    }

    #[test]
    fn last_query_group_equals_last_row_of_full_group() {
        // A group with only the last query must give the full group's last row.
        let (n, d) = (4, 4);
        let q: Vec<f64> = (0..n * d)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 5.0)
            .collect();
        let k: Vec<f64> = (0..n * d)
            .map(|i| ((i * 3 % 13) as f64 - 6.0) / 6.0)
            .collect();
        let v: Vec<f64> = (0..n * d)
            .map(|i| ((i * 5 % 9) as f64 - 4.0) / 4.0)
            .collect();
        let dims = AttnDims {
            d,
            n_heads: 2,
            pos_cap: n,
        };
        let mut scratch = AttnScratch::default();
        let mut full = vec![0.0; n * d];
        attention_forward(
            &mut full,
            &mut AttnCache::default(),
            &q,
            &k,
            &v,
            &[one_group(n)],
            dims,
            None,
            &mut scratch,
        );
        let mut last = vec![0.0; d];
        let g = AttnGroup {
            q_start: 0,
            n_q: 1,
            k_start: 0,
            n_k: n,
            seq: 0,
            pos0: 0,
        };
        attention_forward(
            &mut last,
            &mut AttnCache::default(),
            &q[(n - 1) * d..],
            &k,
            &v,
            &[g],
            dims,
            None,
            &mut scratch,
        );
        for (a, b) in last.iter().zip(&full[(n - 1) * d..]) {
            assert!((a - b).abs() < 1e-14);
        }
    }
}
