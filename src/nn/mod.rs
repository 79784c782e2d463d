//! Layers: each file holds a parameter view, the forward cache, `forward`
//! and the hand-derived `backward` side by side. Every layer is generic over
//! [`Kernels`](crate::kernels::Kernels): `f32` for training and serving,
//! `f64` for finite-difference gradient checks. Backward functions take the
//! output gradient first and ACCUMULATE into input and parameter gradients.

pub mod attention;
pub mod block;
pub mod dropout;
pub mod embedding;
pub mod feedforward;
pub mod item_softmax;
pub mod layernorm;
pub mod linear;
pub mod residual;
pub mod tensor;

pub use tensor::Tensor;
