//! `dtrec-kernels`: the numeric kernels of dtrec.
//!
//! * [`simd`]: fast `f32` kernels (SIMD through `wide`, matmul through
//!   `matrixmultiply`);
//! * [`reference`](mod@reference): a scalar twin of every kernel, written for clarity and
//!   generic over [`Real`] (so it also serves as the `f64` implementation used
//!   by gradient checks);
//! * [`Kernels`]: the trait the model is written against, implemented for
//!   `f32` by [`simd`] and for `f64` by [`reference`](mod@reference);
//! * [`topk`] and [`rng`]: top-K selection and a counter-based RNG.
//!
//! `wide` chooses its instruction set at compile time; [`simd_path`] says
//! which one this build uses.
#![warn(missing_docs)]

pub mod ops;
pub mod real;
pub mod reference;
pub mod rng;
pub mod simd;
pub mod topk;

pub use ops::{AdamStep, Kernels, Trans};
pub use real::Real;

/// The SIMD instruction set `wide` was compiled to in this build, e.g.
/// `"avx512f"`, `"avx2+fma"`, `"sse4.1"`, `"neon"`, `"simd128"` or `"scalar"`.
pub fn simd_path() -> &'static str {
    if cfg!(target_feature = "avx512f") {
        "avx512f"
    } else if cfg!(all(target_feature = "avx2", target_feature = "fma")) {
        "avx2+fma"
    } else if cfg!(target_feature = "avx") {
        "avx"
    } else if cfg!(target_feature = "sse4.1") {
        "sse4.1"
    } else if cfg!(target_feature = "sse2") {
        "sse2"
    } else if cfg!(target_feature = "neon") {
        "neon"
    } else if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "scalar"
    }
}
