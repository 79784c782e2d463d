//! STUB: to be written.

use crate::real::Real;

#[allow(unused_variables)]
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward<T: Real>(out: &mut [T], mean: &mut [T], rstd: &mut [T], inp: &[T], gamma: &[T], beta: &[T], d: usize, eps: T) {
    todo!()
}

#[allow(unused_variables)]
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward<T: Real>(dinp: &mut [T], dgamma: &mut [T], dbeta: &mut [T], dout: &[T], inp: &[T], gamma: &[T], mean: &[T], rstd: &[T], d: usize) {
    todo!()
}

