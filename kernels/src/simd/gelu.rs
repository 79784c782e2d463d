//! STUB: to be written.


#[allow(unused_variables)]
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    todo!()
}

#[allow(unused_variables)]
pub fn gelu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32]) {
    todo!()
}

