//! Evaluation: full-ranking metrics (HR, NDCG, MRR), a batched parallel
//! evaluator, a model scored on split samples under its halting policy with
//! the compute it spent ([`evaluate_policy`], [`ComputeReport`]), metrics by
//! segment ([`Breakdown`]) and the popularity baseline.
//!
//! Protocol (method.md §4): every sample has one target item, ranked against
//! all N items by `rank = 1 + #{v ≠ y : s_v ≥ s_y}` — ties count against the
//! model, NaN scores never help it (see [`target_rank`]) — optionally leaving out a
//! set of excluded items (history) but never the target. Metrics are averaged
//! over samples at cutoffs K (default {5, 10, 20, 50}).
//!
//! Item ids here are dense: `1..=N`, 0 is padding; a score row has N columns,
//! column `j` ↔ item `j + 1`.

mod breakdown;
mod compute;
mod evaluator;
mod metrics;
mod poprec;
mod samples;

pub use crate::model::rank::{target_rank, RankError};
pub use breakdown::{Breakdown, Segment, HISTORY_EDGES, POPULARITY_EDGES};
pub use compute::ComputeReport;
pub use evaluator::{BatchScorer, EvalError, EvalReport, Evaluator, ScoreFn};
pub use metrics::{
    validate_cutoffs, CutoffError, CutoffMetrics, Metrics, MetricsAccumulator, DEFAULT_CUTOFFS,
};
pub use poprec::{PopRec, PopRecError};
pub use samples::{evaluate, evaluate_policy, evaluate_policy_in, PolicyReport, SampleScorer};
