//! The model: its configuration and parameters, the encoder, the latent
//! reasoning chain, each family's training objective ([`loss`]), Adaptive
//! Reasoning Halting ([`halting`]), the prototype hierarchy of
//! Hierarchical Process Supervision ([`prototypes`]) and the FLOP
//! accounting ([`flops`]).
//!
//! ```
//! use dtrec::model::{ModelConfig, Model};
//! use dtrec::train::{Adam, AdamConfig};
//! use dtrec::TrainBatch;
//! let cfg = ModelConfig { max_len: 4, d: 8, inner: 16, ..ModelConfig::sasrec(10) };
//! let mut model = Model::new(cfg, 7).unwrap();
//! let batch = TrainBatch::new(vec![0, 1, 2, 3, 0, 0, 4, 5], vec![3, 2], vec![4, 6], 4, 10).unwrap();
//! let mut grads = model.params.zeros_like();
//! let mut adam = Adam::new(&model.params, AdamConfig::default());
//! for step in 0..3 {
//!     grads.zero_grad();
//!     let loss = model.loss_and_grad(&mut grads, &batch, step);
//!     assert!(loss.is_finite());
//!     adam.step(&mut model.params, &mut grads);
//! }
//! let h = model.encode(&[0, 0, 1, 2], &[2]).unwrap(); // (1, d)
//! let mut scores = vec![0.0; 10]; // (1, N): column j is item j + 1
//! model.score_items(&mut scores, &h);
//! ```
//!
//! A reasoning family runs T_max cached one-token steps after encoding; the
//! same calls train it with the family's objective and encode to its
//! prediction state; [`Model::encode_steps`] gives every state h₀ … h_T.
//!
//! ```
//! use dtrec::model::{Family, ModelConfig, Model};
//! use dtrec::TrainBatch;
//! let cfg = ModelConfig { max_len: 4, d: 8, inner: 16, ..ModelConfig::reasoning(10, Family::Dtrec, 2) };
//! let model = Model::new(cfg, 7).unwrap();
//! let batch = TrainBatch::new(vec![0, 1, 2, 3, 0, 0, 4, 5], vec![3, 2], vec![4, 6], 4, 10).unwrap();
//! let mut grads = model.params.zeros_like();
//! assert!(model.loss_and_grad(&mut grads, &batch, 0).is_finite());
//! assert!(grads.reason_pos.data.iter().any(|&g| g != 0.0)); // (T_max, d)
//! let steps = model.encode_steps(batch.seqs()); // (B, T_max + 1, d)
//! assert_eq!(steps.len(), 2 * 3 * 8);
//! let h = model.encode_batch(batch.seqs()); // (B, d): h_T for DTRec
//! assert_eq!(&h[..8], &steps[2 * 8..3 * 8]);
//! ```

mod chain;
pub mod config;
mod encoder;
pub mod flops;
pub mod halting;
pub mod loss;
mod network;
pub mod params;
pub mod prototypes;
pub mod rank;

pub use chain::{reasoning_dropout_stream, reasoning_noise_stream};
pub use config::{ConfigError, Family, ModelConfig};
pub use halting::{HaltingConfig, HaltingPolicy, HaltingRule};
pub use loss::hps::{HpsConfig, HpsVariant};
pub use loss::{StateLoss, StateLossArgs};
pub use network::{Model, CHUNK};
pub use params::Params;
