//! STUB: to be written.

use crate::real::Real;

#[allow(unused_variables)]
pub fn score<T: Real>(out: &mut [T], queries: &[T], items: &[T], d: usize, alpha: T) {
    todo!()
}

