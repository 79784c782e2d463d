//! Scalar twins of every kernel, generic over [`Real`](crate::Real): written
//! for clarity, they define what the fast kernels must compute and serve as the
//! `f64` implementation for gradient checks.

pub mod adam;
pub mod gelu;
pub mod layernorm;
pub mod matmul;
pub mod score;
pub mod softmax;
pub mod vector;
pub mod xent;
