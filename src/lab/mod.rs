//! Research tooling (feature `lab`): two models compared sample by sample
//! from their per-sample ranks files ([`compare_rank_files`], with
//! [`paired_metric`]'s statistics) and over several seeds
//! ([`compare_across_runs`], a paired t-test over runs). The `dtrec`
//! command line's `experiment`, `select` and `compare` are built on it.

mod across_runs;
mod paired;
mod ranks_file;

pub use across_runs::{
    across_runs, compare_across_runs, AcrossRunsError, RunsMetric, SplitAcrossRuns,
};
pub use paired::{paired_metric, PairedAccumulator, PairedMetric};
pub use ranks_file::{
    compare_rank_files, compare_rank_paths, RanksError, SplitComparison, RANKS_HEADER,
};
