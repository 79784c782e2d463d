//! Cross-entropy kernels for `f32` on `wide` lanes: online log-sum-exp over
//! column blocks, the softmax part of the gradient, and the fused one-row
//! loss with gradient for rows of any length (100k+ items).

use super::vector::{self, exp, load, load_padded, store, store_part, Lanes, LANES};

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
    // Pass 1: log-sum-exp.
    let mut state = (f32::NEG_INFINITY, 0.0);
    for block in logits.chunks(BLOCK) {
        lse_accumulate(&mut state, block);
    }
    let lse = state.0 + state.1.ln();
    // Pass 2: the gradient.
    if let Some(dlogits) = dlogits {
        assert_eq!(
            dlogits.len(),
            logits.len(),
            "cross_entropy: length mismatch"
        );
        for (g, x) in dlogits.chunks_mut(BLOCK).zip(logits.chunks(BLOCK)) {
            xent_backward_block(g, x, lse, dloss);
        }
        dlogits[target] -= dloss;
    }
    lse - logits[target]
}
