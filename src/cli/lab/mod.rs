//! The research commands (feature `lab`): `experiment`, `select` and
//! `compare`.

mod compare;
mod experiment;
mod select;

pub use compare::compare_report;
pub use experiment::{experiment, ExperimentArgs};
pub use select::{select, SelectArgs};
