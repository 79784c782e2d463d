//! dtrec: pure-CPU training and serving of DTRec, a reasoning-enhanced
//! sequential recommender, and its baselines (SASRec, ReaRec-ERL/PRL).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use dtrec_kernels as kernels;

pub mod batch;
pub mod data;
pub mod eval;
pub mod io;
#[cfg(feature = "lab")]
pub mod lab;
pub mod model;
pub mod nn;
pub mod serve;
pub mod train;

pub use batch::{BatchError, SeqBatch, TrainBatch};

/// Whether a config option holds its default value, so that serialized
/// configs leave it out (serde's `skip_serializing_if`) and files written
/// before the option existed read back unchanged.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
