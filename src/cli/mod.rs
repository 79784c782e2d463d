//! Pieces of the command-line tool.

mod data_args;
mod halting;
#[cfg(feature = "lab")]
pub mod lab;
mod progress;
mod run_config;
mod sample_report;

pub use data_args::{DataArgs, FormatArg, SplitArg};
pub use halting::{halting_json, print_halting};
pub use progress::EpochBars;
pub use run_config::{describe_lr, parse_name, ConfigArgs};
pub use sample_report::{breakdown, write_ranks, EvaluatedSamples};
