//! Evaluation: full-ranking metrics (HR, NDCG, MRR), a batched parallel
//! evaluator, the popularity baseline, model-agnostic serving helpers, and
//! two models compared sample by sample from their per-sample ranks files
//! ([`compare_rank_files`], with [`paired_metric`]'s statistics) and over
//! several seeds ([`compare_across_runs`], a paired t-test over runs).
//!
//! Protocol (method.md §4): every sample has one target item, ranked against
//! all N items by `rank = 1 + #{v ≠ y : s_v ≥ s_y}` — ties count against the
//! model, NaN scores never help it (see [`rank`]) — optionally leaving out a
//! set of excluded items (history) but never the target. Metrics are averaged
//! over samples at cutoffs K (default {5, 10, 20, 50}).
//!
//! Item ids here are dense: `1..=N`, 0 is padding; a score row has N columns,
//! column `j` ↔ item `j + 1`.

mod across_runs;
mod breakdown;
mod evaluator;
mod metrics;
mod paired;
mod poprec;
pub mod rank;
mod ranks_file;
mod serve;

pub use across_runs::{
    across_runs, compare_across_runs, AcrossRunsError, RunsMetric, SplitAcrossRuns,
};
pub use breakdown::{Breakdown, Segment, HISTORY_EDGES, POPULARITY_EDGES};
pub use evaluator::{BatchScorer, EvalError, EvalReport, Evaluator, ScoreFn};
pub use metrics::{
    validate_cutoffs, CutoffError, CutoffMetrics, Metrics, MetricsAccumulator, DEFAULT_CUTOFFS,
};
pub use paired::{paired_metric, PairedAccumulator, PairedMetric};
pub use poprec::{PopRec, PopRecError};
pub use rank::{target_rank, RankError};
pub use ranks_file::{
    compare_rank_files, compare_rank_paths, RanksError, SplitComparison, RANKS_HEADER,
};
pub use serve::{recommend_batch, top_k_items, ItemVocab, Recommendation, ServeError};
