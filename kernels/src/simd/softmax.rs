//! STUB: to be written.

use core::ops::Range;

#[allow(unused_variables)]
pub fn softmax_forward(out: &mut [f32], inp: &[f32], valid: Range<usize>) {
    todo!()
}

#[allow(unused_variables)]
pub fn softmax_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], valid: Range<usize>) {
    todo!()
}

