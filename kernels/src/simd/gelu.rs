//! GELU for `f32` (temporarily the scalar twin; SIMD follows).

use crate::reference::gelu as twin;

pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    twin::gelu_forward(out, inp)
}

pub fn gelu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32]) {
    twin::gelu_backward(dinp, dout, inp)
}
