//! STUB: to be written.

use crate::ops::AdamStep;

#[allow(unused_variables)]
pub fn adam_update(param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], step: &AdamStep<f32>) {
    todo!()
}

