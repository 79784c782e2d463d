//! STUB: to be written.

use crate::real::Real;

#[allow(unused_variables)]
pub fn gelu_forward<T: Real>(out: &mut [T], inp: &[T]) {
    todo!()
}

#[allow(unused_variables)]
pub fn gelu_backward<T: Real>(dinp: &mut [T], dout: &[T], inp: &[T]) {
    todo!()
}

