//! STUB: to be written.

use crate::ops::Trans;

#[allow(unused_variables)]
#[allow(clippy::too_many_arguments)]
pub fn gemm(m: usize, n: usize, k: usize, alpha: f32, a: &[f32], ta: Trans, b: &[f32], tb: Trans, beta: f32, c: &mut [f32]) {
    todo!()
}

