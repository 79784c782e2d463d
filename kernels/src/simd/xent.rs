//! Cross-entropy kernels for `f32` (temporarily the scalar twins; SIMD follows).

use crate::reference::xent as twin;

pub fn lse_accumulate(state: &mut (f32, f32), block: &[f32]) {
    twin::lse_accumulate(state, block)
}

pub fn xent_backward_block(dlogits: &mut [f32], logits: &[f32], lse: f32, scale: f32) {
    twin::xent_backward_block(dlogits, logits, lse, scale)
}

pub fn cross_entropy(
    dlogits: Option<&mut [f32]>,
    logits: &[f32],
    target: usize,
    dloss: f32,
) -> f32 {
    twin::cross_entropy(dlogits, logits, target, dloss)
}
