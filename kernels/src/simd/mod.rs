//! Fast `f32` kernels: SIMD through `wide`, matmul through `matrixmultiply`.

pub mod matmul;
pub mod score;
pub mod vector;
pub mod softmax;
pub mod layernorm;
pub mod gelu;
pub mod xent;
pub mod adam;
