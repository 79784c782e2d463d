//! Cross-entropy kernels for `f32` on `wide` lanes: online log-sum-exp over
//! column blocks, the softmax part of the gradient, and the fused one-row
//! loss with gradient for rows of any length (100k+ items).

use super::short_row::{
    by_shape, groups, load_group, load_row, store_group, tree_max, tree_sum, MAX_LEN,
};
use super::vector::{self, exp, load, load_padded, reduce_max, store, store_part, Lanes, LANES};

/// Columns per block in [`cross_entropy`]: 8 KiB of logits, so the max pass
/// and the exp pass of [`lse_accumulate`] read a block that is still in L1,
/// and the row is streamed from memory only twice (loss pass, gradient pass)
/// however long it is.
pub const BLOCK: usize = 2048;

/// Σ exp(x − shift) in two lane accumulators; the tail is padded with −∞,
/// which contributes e^−∞ = 0.
#[inline(always)]
fn sum_exp_shifted(x: &[f32], shift: f32) -> f32 {
    let shift = Lanes::splat(shift);
    let mut acc = [Lanes::ZERO; 2];
    let mut pairs = x.chunks_exact(2 * LANES);
    for c in &mut pairs {
        acc[0] += exp(load(&c[..LANES]) - shift);
        acc[1] += exp(load(&c[LANES..]) - shift);
    }
    let mut rest = pairs.remainder().chunks_exact(LANES);
    for c in &mut rest {
        acc[0] += exp(load(c) - shift);
    }
    if !rest.remainder().is_empty() {
        acc[1] += exp(load_padded(rest.remainder(), f32::NEG_INFINITY) - shift);
    }
    (acc[0] + acc[1]).reduce_add()
}

/// Folds `block` into the running `state = (m, s)` with s = Σ exp(x − m)
/// over every column seen so far. Start from (−∞, 0); the row's
/// log-sum-exp is then m + ln s. Blocks that are empty or all −∞ leave the
/// state unchanged. Two passes over the block (max, then the shifted exp
/// sum) and one rescale of the old sum per block, not per element.
#[inline]
pub fn lse_accumulate(state: &mut (f32, f32), block: &[f32]) {
    let block_max = vector::max(block);
    if block_max == f32::NEG_INFINITY {
        return;
    }
    let (m, s) = *state;
    let new_m = m.max(block_max);
    // e^(m − new_m) ≤ 1; on the first block m = −∞ and the old sum is 0.
    let rescaled = if s == 0.0 { 0.0 } else { s * (m - new_m).exp() };
    *state = (new_m, rescaled + sum_exp_shifted(block, new_m));
}

/// dlogits += scale · exp(logits − lse) for one column block.
///
/// # Panics
/// If `dlogits.len() != logits.len()`.
#[inline]
pub fn xent_backward_block(dlogits: &mut [f32], logits: &[f32], lse: f32, scale: f32) {
    assert_eq!(
        dlogits.len(),
        logits.len(),
        "xent_backward_block: length mismatch"
    );
    let (lse_l, scale_l) = (Lanes::splat(lse), Lanes::splat(scale));
    let mut cg = dlogits.chunks_exact_mut(LANES);
    let mut cx = logits.chunks_exact(LANES);
    for (g, x) in (&mut cg).zip(&mut cx) {
        store(g, scale_l.mul_add(exp(load(x) - lse_l), load(g)));
    }
    let tail = cg.into_remainder();
    if !tail.is_empty() {
        let p = exp(load_padded(cx.remainder(), f32::NEG_INFINITY) - lse_l);
        store_part(tail, scale_l.mul_add(p, load_padded(tail, 0.0)));
    }
}

/// Fused one-row cross-entropy: returns `lse(logits) − logits[target]` and,
/// if `dlogits` is given, accumulates dloss·(softmax(logits) −
/// onehot(target)). Pass 1 folds [`BLOCK`]-column blocks into an online
/// log-sum-exp; pass 2 writes the gradient block by block. No temporaries.
///
/// Rows of at most 64 columns (in-batch or sampled-softmax losses, the
/// 12,800 × 64 benchmark) are held in registers instead: one max, one
/// exponential per column, and the gradient dloss/s · e^(x − max) from the
/// kept exponentials, not a second e^(x − lse) per column.
///
/// The loss is a difference of two numbers of the row's magnitude, so its
/// absolute error is a few ulp of max|logit| (not relative to the loss,
/// which can be ~0 for a confident correct prediction).
///
/// # Panics
/// If `target >= logits.len()` or `dlogits` has another length.
#[inline]
pub fn cross_entropy(
    dlogits: Option<&mut [f32]>,
    logits: &[f32],
    target: usize,
    dloss: f32,
) -> f32 {
    assert!(
        target < logits.len(),
        "cross_entropy: target {target} out of {} columns",
        logits.len()
    );
    if let Some(dlogits) = &dlogits {
        assert_eq!(
            dlogits.len(),
            logits.len(),
            "cross_entropy: length mismatch"
        );
    }
    if logits.len() <= MAX_LEN {
        return by_shape!(
            logits.len(),
            cross_entropy_in_registers(dlogits, logits, target, dloss)
        );
    }
    // Pass 1: log-sum-exp.
    let mut state = (f32::NEG_INFINITY, 0.0);
    for block in logits.chunks(BLOCK) {
        lse_accumulate(&mut state, block);
    }
    let lse = state.0 + state.1.ln();
    // Pass 2: the gradient.
    if let Some(dlogits) = dlogits {
        for (g, x) in dlogits.chunks_mut(BLOCK).zip(logits.chunks(BLOCK)) {
            xent_backward_block(g, x, lse, dloss);
        }
        dlogits[target] -= dloss;
    }
    lse - logits[target]
}

/// [`cross_entropy`] of a row of `FULL` whole lane groups and `PART`
/// trailing columns (at most 64 in all) held in registers. With m the row
/// max and s = Σ e^(x − m) (both as in the long-row kernel, the sum over
/// the groups in a pairwise tree): loss = m + ln s − x[target], and the
/// gradient adds (dloss/s)·e^(x − m) from the exponentials already
/// computed. Rounding of a gradient term: the exponential's as in
/// e^(x − lse), one for dloss/s, none for the product inside the fma — and
/// none of ln s or of lse itself, whose rounding (½ ulp of |lse|) e^(x −
/// lse) turns into a relative error. A row of −∞ or +∞ gives NaN as the
/// long-row kernel does.
#[inline(always)]
fn cross_entropy_in_registers<const FULL: usize, const PART: usize>(
    dlogits: Option<&mut [f32]>,
    logits: &[f32],
    target: usize,
    dloss: f32,
) -> f32 {
    let n = groups(FULL, PART);
    // Padded lanes hold −∞ and give e^−∞ = 0.
    let xs = load_row::<FULL, PART>(logits, f32::NEG_INFINITY);
    let row_max = reduce_max(tree_max(&xs, n));
    let shift = Lanes::splat(row_max);
    let mut e = xs;
    for k in 0..n {
        e[k] = exp(xs[k] - shift);
    }
    let total = tree_sum(&e, n).reduce_add();
    if let Some(dlogits) = dlogits {
        let scale = Lanes::splat(dloss / total);
        for (k, &ek) in e.iter().enumerate().take(n) {
            let g = load_group::<FULL, PART>(dlogits, k, 0.0);
            store_group::<FULL, PART>(dlogits, k, scale.mul_add(ek, g));
        }
        dlogits[target] -= dloss;
    }
    row_max + total.ln() - logits[target]
}
