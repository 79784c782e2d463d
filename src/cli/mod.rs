//! Pieces of the command-line tool.

mod compare;
mod data_args;
mod experiment;
mod halting;
mod progress;
mod run_config;
mod sample_report;
mod select;

pub use compare::compare_report;
pub use data_args::{DataArgs, FormatArg, SplitArg};
pub use experiment::{experiment, ExperimentArgs};
pub use halting::{halting_json, print_halting};
pub use progress::EpochBars;
pub use run_config::{describe_lr, ConfigArgs};
pub use sample_report::{breakdown, write_ranks, EvaluatedSamples};
pub use select::{select, SelectArgs};
