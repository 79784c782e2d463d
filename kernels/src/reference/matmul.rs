//! STUB: to be written.

use crate::ops::Trans;
use crate::real::Real;

#[allow(unused_variables)]
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(m: usize, n: usize, k: usize, alpha: T, a: &[T], ta: Trans, b: &[T], tb: Trans, beta: T, c: &mut [T]) {
    todo!()
}

