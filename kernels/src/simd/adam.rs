//! Adam/AdamW for `f32` (temporarily the scalar twin; SIMD follows).

use crate::ops::AdamStep;
use crate::reference::adam as twin;

pub fn adam_update(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: &AdamStep<f32>,
) {
    twin::adam_update(param, grad, m, v, step)
}
