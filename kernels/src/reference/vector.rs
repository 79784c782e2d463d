//! STUB: to be written.

use crate::real::Real;

#[allow(unused_variables)]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    todo!()
}

#[allow(unused_variables)]
pub fn axpy<T: Real>(y: &mut [T], alpha: T, x: &[T]) {
    todo!()
}

#[allow(unused_variables)]
pub fn scale<T: Real>(x: &mut [T], alpha: T) {
    todo!()
}

#[allow(unused_variables)]
pub fn add<T: Real>(out: &mut [T], a: &[T], b: &[T]) {
    todo!()
}

#[allow(unused_variables)]
pub fn sum<T: Real>(x: &[T]) -> T {
    todo!()
}

#[allow(unused_variables)]
pub fn max<T: Real>(x: &[T]) -> T {
    todo!()
}

