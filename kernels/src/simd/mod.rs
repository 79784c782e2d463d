//! Fast `f32` kernels: SIMD through `wide`, matmul through `matrixmultiply`.

pub mod adam;
pub mod gelu;
pub mod layernorm;
pub mod matmul;
pub mod score;
pub(crate) mod short_row;
pub mod softmax;
pub mod vector;
pub mod xent;
