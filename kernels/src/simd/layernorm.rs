//! STUB: to be written.


#[allow(unused_variables)]
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], inp: &[f32], gamma: &[f32], beta: &[f32], d: usize, eps: f32) {
    todo!()
}

#[allow(unused_variables)]
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(dinp: &mut [f32], dgamma: &mut [f32], dbeta: &mut [f32], dout: &[f32], inp: &[f32], gamma: &[f32], mean: &[f32], rstd: &[f32], d: usize) {
    todo!()
}

