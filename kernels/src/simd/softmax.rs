//! Row softmax for `f32` (temporarily the scalar twin; SIMD follows).

use core::ops::Range;

use crate::reference::softmax as twin;

pub fn softmax_forward(out: &mut [f32], inp: &[f32], valid: Range<usize>) {
    twin::softmax_forward(out, inp, valid)
}

pub fn softmax_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], valid: Range<usize>) {
    twin::softmax_backward(dinp, dout, out, valid)
}
