//! STUB: to be written.

use crate::ops::AdamStep;
use crate::real::Real;

#[allow(unused_variables)]
pub fn adam_update<T: Real>(param: &mut [T], grad: &[T], m: &mut [T], v: &mut [T], step: &AdamStep<T>) {
    todo!()
}

