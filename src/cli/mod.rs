//! Pieces of the command-line tool.

mod data_args;
mod progress;
mod run_config;

pub use data_args::{DataArgs, FormatArg, SplitArg};
pub use progress::EpochBars;
pub use run_config::ConfigArgs;
