//! Training: mini-batch Adam on the full-softmax loss, early stopping on
//! validation NDCG@10, the best model evaluated on test.
//!
//! ```
//! use dtrec::data::{leave_one_out, synthetic::SyntheticConfig};
//! use dtrec::model::ModelConfig;
//! use dtrec::train::{train, TrainConfig};
//! let synth = SyntheticConfig { num_users: 60, ..SyntheticConfig::default() }.generate().unwrap();
//! let data = &synth.interactions;
//! let split = leave_one_out(data).unwrap();
//! let model = ModelConfig { d: 16, inner: 32, max_len: 10, ..ModelConfig::sasrec(data.num_items()) };
//! let cfg = TrainConfig { max_epochs: 2, threads: Some(1), ..TrainConfig::default() };
//! let outcome = train(data, &split, model, &cfg, &mut |_| {}).unwrap();
//! assert_eq!(outcome.history.len(), 2);
//! assert!(outcome.test.ndcg(10).unwrap() >= 0.0);
//! ```

mod checkpoint;
mod config;
pub mod optim;
mod trainer;

pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use config::{EpochSelection, LrSchedule, TrainConfig};
pub use optim::{Adam, AdamConfig};
pub use trainer::{
    evaluate_trained, finish, run, train, EpochLog, HaltingOutcome, Progress, RuleResult,
    TrainError, TrainOutcome, TrainState, TrainedEvaluation, PRL_WARMUP_EPOCHS,
};
