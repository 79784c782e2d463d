//! STUB: to be written.

use crate::real::Real;

#[allow(unused_variables)]
pub fn lse_accumulate<T: Real>(state: &mut (T, T), block: &[T]) {
    todo!()
}

#[allow(unused_variables)]
pub fn xent_backward_block<T: Real>(dlogits: &mut [T], logits: &[T], lse: T, scale: T) {
    todo!()
}

#[allow(unused_variables)]
pub fn cross_entropy<T: Real>(dlogits: Option<&mut [T]>, logits: &[T], target: usize, dloss: T) -> T {
    todo!()
}

