//! Layer normalisation for `f32` (temporarily the scalar twin; SIMD follows).

use crate::reference::layernorm as twin;

#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    gamma: &[f32],
    beta: &[f32],
    d: usize,
    eps: f32,
) {
    twin::layernorm_forward(out, mean, rstd, inp, gamma, beta, d, eps)
}

#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
    d: usize,
) {
    twin::layernorm_backward(dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, d)
}
