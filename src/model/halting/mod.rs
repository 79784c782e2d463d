//! Adaptive Reasoning Halting (method.md §3): the indicators, the two
//! halting rules, their calibration on validation data, per-row early exit
//! with batch compaction, and the configuration of all of it.
//!
//! * [`indicators`]: normalised entropy, Jensen–Shannon between
//!   consecutive steps and relative hidden-state change, over the items or
//!   the finest prototype level;
//! * [`rules`]: the threshold rule and the learned gate (with its loss);
//! * [`calibration`]: the threshold sweep and its choice;
//! * [`fit`]: calibrating the thresholds and fitting the gate on a model's
//!   validation and training batches;
//! * [`compaction`]: halted rows leave the batch;
//! * [`adaptive`]: scoring with per-row halting, and full-depth traces.

pub mod adaptive;
pub mod calibration;
pub mod compaction;
mod config;
pub mod fit;
pub mod indicators;
pub mod rules;

pub use adaptive::{AdaptiveScores, HaltingPolicy, StepTrace};
pub use calibration::{
    calibrate_thresholds, ndcg_at_10, Calibration, CalibrationError, CurvePoint, ThresholdGrid,
};
pub use config::{HaltingConfig, HaltingRule};
pub use indicators::{IndicatorBasis, IndicatorSpace, Indicators};
pub use rules::{gate_labels, sigmoid, LearnedGate, ThresholdRule};
