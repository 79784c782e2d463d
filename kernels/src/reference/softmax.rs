//! STUB: to be written.

use core::ops::Range;
use crate::real::Real;

#[allow(unused_variables)]
pub fn softmax_forward<T: Real>(out: &mut [T], inp: &[T], valid: Range<usize>) {
    todo!()
}

#[allow(unused_variables)]
pub fn softmax_backward<T: Real>(dinp: &mut [T], dout: &[T], out: &[T], valid: Range<usize>) {
    todo!()
}

