//! Scalar twin of the cross-entropy kernels (online log-sum-exp over column
//! blocks, the softmax part of the gradient, and the fused one-row loss).

use crate::real::Real;

/// Folds `block` into the running `state = (m, s)` with s = Σ exp(x − m) over
/// every column seen so far. Start from (−∞, 0); the row's log-sum-exp is
/// then m + ln s. Blocks that are empty or all −∞ leave the state unchanged.
pub fn lse_accumulate<T: Real>(state: &mut (T, T), block: &[T]) {
    let mut block_max = T::NEG_INFINITY;
    for &x in block {
        block_max = block_max.max(x);
    }
    if block_max == T::NEG_INFINITY {
        return;
    }
    let (m, s) = *state;
    let new_m = m.max(block_max);
    // Rescale the old sum to the new max; exp(−∞ − finite) = 0 on the first block.
    let mut new_s = s * (m - new_m).exp();
    for &x in block {
        new_s += (x - new_m).exp();
    }
    *state = (new_m, new_s);
}

/// dlogits += scale · exp(logits − lse) for one column block.
///
/// # Panics
/// If `dlogits.len() != logits.len()`.
pub fn xent_backward_block<T: Real>(dlogits: &mut [T], logits: &[T], lse: T, scale: T) {
    assert_eq!(
        dlogits.len(),
        logits.len(),
        "xent_backward_block: length mismatch"
    );
    for (g, &x) in dlogits.iter_mut().zip(logits) {
        *g += scale * (x - lse).exp();
    }
}

/// Fused one-row cross-entropy: returns `lse(logits) − logits[target]` and, if
/// `dlogits` is given, accumulates dloss·(softmax(logits) − onehot(target)).
/// The twin treats the whole row as one block (two passes, no temporaries).
///
/// # Panics
/// If `target >= logits.len()` or `dlogits` has another length.
pub fn cross_entropy<T: Real>(
    dlogits: Option<&mut [T]>,
    logits: &[T],
    target: usize,
    dloss: T,
) -> T {
    assert!(
        target < logits.len(),
        "cross_entropy: target {target} out of {} columns",
        logits.len()
    );
    // Pass 1: log-sum-exp.
    let mut state = (T::NEG_INFINITY, T::ZERO);
    lse_accumulate(&mut state, logits);
    let lse = state.0 + state.1.ln();
    // Pass 2: the gradient.
    if let Some(dlogits) = dlogits {
        xent_backward_block(dlogits, logits, lse, dloss);
        dlogits[target] -= dloss;
    }
    lse - logits[target]
}
