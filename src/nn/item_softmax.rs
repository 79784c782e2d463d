//! Tied-embedding item scoring and full-softmax cross-entropy over all N
//! items (no negative sampling).
//!
//! Scores `z = h · E[1..=N]ᵀ / τ`: item id `i` (1..=N) is column `i − 1`; the
//! padding row `E[0]` is never a class. The loss of row b is
//! `lse(z_b) − z_{b, y_b − 1}`.
//!
//! Memory stays bounded for any N: logits are produced in column blocks of
//! [`ITEM_BLOCK`] items, folded into an online log-sum-exp, and recomputed
//! block by block for the gradient (one extra B×N×d matmul, instead of a
//! B×N buffer that would be 400 MB at B = 1024, N = 100k). When all items fit
//! in one block the forward's logits are kept and reused.

use super::tensor::reset;
use crate::kernels::{Kernels, Real, Trans};

/// Items per logits block.
pub const ITEM_BLOCK: usize = 4096;

/// What the forward saves.
#[derive(Clone, Debug, Default)]
pub struct ItemCeCache<T> {
    /// (rows) log Σ_i exp(z_{b,i}).
    pub lse: Vec<T>,
    /// (rows, N) logits, kept only when N ≤ [`ITEM_BLOCK`] (else empty).
    pub logits: Vec<T>,
}

/// Scratch for the backward, reused between calls.
#[derive(Clone, Debug, Default)]
pub struct ItemCeScratch<T> {
    logits: Vec<T>,
    dlogits: Vec<T>,
}

fn n_items_of(item_emb: &[impl Sized], d: usize) -> usize {
    assert!(
        d > 0 && item_emb.len() % d == 0 && item_emb.len() >= d,
        "item table must be (N+1, d)"
    );
    item_emb.len() / d - 1
}

/// out (rows, N) = h (rows, d) · E[1..=N]ᵀ · inv_tau; column j is item j + 1.
pub fn item_scores<T: Kernels>(out: &mut [T], h: &[T], item_emb: &[T], d: usize, inv_tau: T) {
    let n = n_items_of(item_emb, d);
    assert_eq!(out.len(), h.len() / d * n, "item_scores: output shape");
    score_rows(out, h, &item_emb[d..], d, inv_tau);
}

/// out (rows, N) = h (rows, d) · itemsᵀ · alpha for an item table without
/// its padding row (N × d): the scoring kernel for a few rows, a blocked
/// matmul for more.
pub fn score_rows<T: Kernels>(out: &mut [T], h: &[T], items: &[T], d: usize, alpha: T) {
    let rows = h.len() / d;
    if rows <= 8 {
        // The scoring kernel streams the item table once for a few queries.
        T::score(out, h, items, d, alpha);
    } else {
        T::gemm(
            rows,
            items.len() / d,
            d,
            alpha,
            h,
            Trans::N,
            items,
            Trans::T,
            T::ZERO,
            out,
        );
    }
}

/// losses (rows) = cross-entropy of softmax(h · E[1..]ᵀ · inv_tau) against
/// `targets` (item ids in 1..=N).
pub fn item_ce_forward<T: Kernels>(
    losses: &mut [T],
    cache: &mut ItemCeCache<T>,
    h: &[T],
    item_emb: &[T],
    targets: &[u32],
    d: usize,
    inv_tau: T,
) {
    let n = n_items_of(item_emb, d);
    let rows = targets.len();
    assert!(
        h.len() == rows * d && losses.len() == rows,
        "item_ce: shapes"
    );
    assert!(
        targets.iter().all(|&t| t >= 1 && t as usize <= n),
        "item_ce: target outside 1..=N"
    );
    let mut state = vec![(T::NEG_INFINITY, T::ZERO); rows];
    let mut target_logit = vec![T::ZERO; rows];
    let mut block = std::mem::take(&mut cache.logits);
    for c0 in (0..n).step_by(ITEM_BLOCK) {
        let nb = ITEM_BLOCK.min(n - c0);
        // pass 1: logits of this block (rows, nb)
        reset(&mut block, rows * nb);
        T::gemm(
            rows,
            nb,
            d,
            inv_tau,
            h,
            Trans::N,
            &item_emb[(c0 + 1) * d..(c0 + 1 + nb) * d],
            Trans::T,
            T::ZERO,
            &mut block,
        );
        // pass 2: fold into the running (max, Σexp) and pick the target logit
        for (b, row) in block.chunks_exact(nb).enumerate() {
            T::lse_accumulate(&mut state[b], row);
            let col = targets[b] as usize - 1;
            if (c0..c0 + nb).contains(&col) {
                target_logit[b] = row[col - c0];
            }
        }
    }
    if n > ITEM_BLOCK {
        block.clear();
    }
    cache.logits = block;
    reset(&mut cache.lse, rows);
    for b in 0..rows {
        let (m, s) = state[b];
        cache.lse[b] = m + s.ln();
        losses[b] = cache.lse[b] - target_logit[b];
    }
}

/// Backward of [`item_ce_forward`]: with dz = dloss_b · (softmax(z_b) − onehot(y_b)),
/// accumulates dh += inv_tau · dz · E[1..] and dE[1..] += inv_tau · dzᵀ · h.
/// `ditem_emb` row 0 (padding) is never touched.
#[allow(clippy::too_many_arguments)]
pub fn item_ce_backward<T: Kernels>(
    dh: &mut [T],
    ditem_emb: &mut [T],
    dlosses: &[T],
    h: &[T],
    item_emb: &[T],
    targets: &[u32],
    cache: &ItemCeCache<T>,
    d: usize,
    inv_tau: T,
    scratch: &mut ItemCeScratch<T>,
) {
    let n = n_items_of(item_emb, d);
    let rows = targets.len();
    assert!(
        dh.len() == rows * d && dlosses.len() == rows && ditem_emb.len() == item_emb.len(),
        "item_ce backward: shapes"
    );
    for c0 in (0..n).step_by(ITEM_BLOCK) {
        let nb = ITEM_BLOCK.min(n - c0);
        let emb_block = &item_emb[(c0 + 1) * d..(c0 + 1 + nb) * d];
        // recompute this block's logits unless the forward kept them all
        let logits: &[T] = if n <= ITEM_BLOCK {
            &cache.logits
        } else {
            reset(&mut scratch.logits, rows * nb);
            T::gemm(
                rows,
                nb,
                d,
                inv_tau,
                h,
                Trans::N,
                emb_block,
                Trans::T,
                T::ZERO,
                &mut scratch.logits,
            );
            &scratch.logits
        };
        // forward: loss_b = lse_b − z_{b,y}  ⇒  dz_b = dloss_b · (exp(z_b − lse_b) − onehot(y_b))
        reset(&mut scratch.dlogits, rows * nb);
        for (b, (dz, z)) in scratch
            .dlogits
            .chunks_exact_mut(nb)
            .zip(logits.chunks_exact(nb))
            .enumerate()
        {
            T::xent_backward_block(dz, z, cache.lse[b], dlosses[b]);
            let col = targets[b] as usize - 1;
            if (c0..c0 + nb).contains(&col) {
                dz[col - c0] -= dlosses[b];
            }
        }
        // forward: z = inv_tau · h · E_blockᵀ  ⇒  dh += inv_tau · dz · E_block, dE_block += inv_tau · dzᵀ · h
        T::gemm(
            rows,
            d,
            nb,
            inv_tau,
            &scratch.dlogits,
            Trans::N,
            emb_block,
            Trans::N,
            T::ONE,
            dh,
        );
        T::gemm(
            nb,
            d,
            rows,
            inv_tau,
            &scratch.dlogits,
            Trans::T,
            h,
            Trans::N,
            T::ONE,
            &mut ditem_emb[(c0 + 1) * d..(c0 + 1 + nb) * d],
        );
    }
}

/// Mean of `x` in f64 (helper for callers reducing per-row losses).
pub fn mean_f64<T: Real>(x: &[T]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().map(|v| v.to_f64()).sum::<f64>() / x.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_two_items() {
        // N = 2, d = 1, E = [pad 9, 1, −1], h = ln 2 / 2, τ = 0.5:
        // z = h·E/τ = (ln 2, −ln 2) → softmax = (0.8, 0.2).
        let item_emb = [9.0, 1.0, -1.0];
        let h = [2f64.ln() / 2.0];
        let mut losses = [0.0];
        let mut cache = ItemCeCache::default();
        item_ce_forward(&mut losses, &mut cache, &h, &item_emb, &[2], 1, 2.0);
        assert!((losses[0] - (-(0.2f64).ln())).abs() < 1e-14);

        let (mut dh, mut de) = ([0.0], [0.0; 3]);
        item_ce_backward(
            &mut dh,
            &mut de,
            &[1.0],
            &h,
            &item_emb,
            &[2],
            &cache,
            1,
            2.0,
            &mut ItemCeScratch::default(),
        );
        // dz = (0.8, 0.2 − 1) = (0.8, −0.8); dh = 2·(0.8·1 + (−0.8)(−1)) = 3.2;
        // dE_i = 2·dz_i·h.
        assert!((dh[0] - 3.2).abs() < 1e-14);
        assert_eq!(de[0], 0.0, "padding row never receives gradient");
        assert!(
            (de[1] - 2.0 * 0.8 * h[0]).abs() < 1e-14 && (de[2] + 2.0 * 0.8 * h[0]).abs() < 1e-14
        );
    }

    #[test]
    fn many_blocks_match_one_pass() {
        // N spanning three blocks: the blockwise loss and gradient equal a direct computation.
        let (n, d, rows) = (2 * ITEM_BLOCK + 5, 3, 2);
        let item_emb: Vec<f64> = (0..(n + 1) * d)
            .map(|i| ((i * 37 % 101) as f64 - 50.0) / 40.0)
            .collect();
        let h = [0.3, -0.2, 0.5, -0.1, 0.4, 0.25];
        let targets = [7u32, (2 * ITEM_BLOCK + 3) as u32];
        let mut losses = [0.0; 2];
        let mut cache = ItemCeCache::default();
        item_ce_forward(&mut losses, &mut cache, &h, &item_emb, &targets, d, 1.0);
        let (mut dh, mut de) = (vec![0.0; rows * d], vec![0.0; item_emb.len()]);
        item_ce_backward(
            &mut dh,
            &mut de,
            &[1.0, 0.5],
            &h,
            &item_emb,
            &targets,
            &cache,
            d,
            1.0,
            &mut ItemCeScratch::default(),
        );
        for b in 0..rows {
            let z: Vec<f64> = (1..=n)
                .map(|i| (0..d).map(|c| h[b * d + c] * item_emb[i * d + c]).sum())
                .collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            assert!((losses[b] - (lse - z[targets[b] as usize - 1])).abs() < 1e-12);
        }
        let mut dh_want = vec![0.0; rows * d];
        for b in 0..rows {
            let w = [1.0, 0.5][b];
            let z: Vec<f64> = (1..=n)
                .map(|i| (0..d).map(|c| h[b * d + c] * item_emb[i * d + c]).sum())
                .collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            for i in 1..=n {
                let dz = w
                    * ((z[i - 1] - m).exp() / s - if i == targets[b] as usize { 1.0 } else { 0.0 });
                for c in 0..d {
                    dh_want[b * d + c] += dz * item_emb[i * d + c];
                }
            }
        }
        for (a, b) in dh.iter().zip(&dh_want) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
