//! Interaction data: readers, the [`Interactions`] store, filters, splits,
//! batches and the built-in synthetic dataset.
//!
//! * Readers ([`read_atomic`], [`read_delimited`], [`read_s3rec`]) stream any
//!   `impl Read` line by line with a per-line byte cap ([`ReadOptions`]) and
//!   fail with a [`DataError`] naming the input, the 1-based line and the
//!   column. [`load`] opens a path and picks the reader from a [`Format`].
//! * [`Interactions`]: dense ids in order of first appearance (users `0..U`,
//!   items `1..=N`, 0 = padding), per-user events in one CSR buffer, ordered
//!   by a stable sort on the timestamp (ties keep input order).
//! * Filters (methods of [`Interactions`]): `filter_rating_above`, `k_core`,
//!   `dedup`, `min_history`.
//! * Splits: [`leave_one_out`] and [`temporal_split`] produce [`Sample`]s
//!   (user, end index) over the shared buffer.
//! * [`assemble`] / [`EpochBatches`]: left-padded `(B, L)` batches with
//!   positions counted from the oldest kept item, seeded shuffling.
//! * [`synthetic`]: a seeded dataset with simple and complex users.
//! * [`DatasetStats`]: sizes, length statistics, density.

mod batch;
mod error;
mod filter;
mod lines;
mod rng;
mod s3rec;
mod split;
mod stats;
mod store;
pub mod synthetic;
mod tabular;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use batch::{assemble, batches_in_order, epoch_order, BatchConfig, EpochBatches};
pub use error::DataError;
pub use filter::DuplicatePolicy;
#[cfg(feature = "lab")]
pub(crate) use lines::LineReader;
pub use lines::{ReadOptions, DEFAULT_MAX_LINE_BYTES};
pub use s3rec::read_s3rec;
pub use split::{leave_one_out, temporal_split, Sample, Split, SplitReport, TemporalConfig};
pub use stats::DatasetStats;
pub use store::{BuildError, Interactions, InteractionsBuilder, TimeValue, Timestamps};
pub use tabular::{read_atomic, read_delimited, Columns};

/// The on-disk formats [`load`] understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// RecBole atomic `.inter` (tab separated, `name:type` header).
    Atomic(Columns),
    /// Delimited text with a header of plain names.
    Delimited {
        /// Field separator, e.g. `','` or `'\t'`.
        delimiter: char,
        /// Columns to read.
        columns: Columns,
    },
    /// One user per line: `user item item ...`.
    S3rec,
}

impl Format {
    /// Guesses from the file extension: `.inter` → atomic with RecBole column
    /// names, `.csv` → comma and `.tsv` → tab delimited with RecBole names,
    /// anything else → one user per line.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("inter") => Format::Atomic(Columns::recbole()),
            Some("csv") => Format::Delimited {
                delimiter: ',',
                columns: Columns::recbole(),
            },
            Some("tsv") => Format::Delimited {
                delimiter: '\t',
                columns: Columns::recbole(),
            },
            _ => Format::S3rec,
        }
    }
}

/// Opens `path` and reads it as `format`; errors name the path.
pub fn load(
    path: &Path,
    format: &Format,
    options: &ReadOptions,
) -> Result<Interactions, DataError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| DataError::Open {
        file: name.clone(),
        source,
    })?;
    match format {
        Format::Atomic(columns) => read_atomic(file, &name, columns, options),
        Format::Delimited { delimiter, columns } => {
            read_delimited(file, &name, *delimiter, columns, options)
        }
        Format::S3rec => read_s3rec(file, &name, options),
    }
}

/// Where `.ci/fetch-ml100k.sh` puts MovieLens-100K:
/// `${DTREC_DATA_DIR:-$HOME/.cache/dtrec}/ml-100k/ml-100k.inter`.
pub fn ml100k_path() -> PathBuf {
    let dir = match std::env::var_os("DTREC_DATA_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
            home.join(".cache").join("dtrec")
        }
    };
    dir.join("ml-100k").join("ml-100k.inter")
}

/// Path of a shared S3-Rec benchmark file, e.g. `shared_dataset("Beauty.txt")`:
/// `${DTREC_SHARED_DIR:-<crate dir>/../shared}/datasets/s3rec/<name>`.
pub fn shared_dataset(name: &str) -> PathBuf {
    let root = match std::env::var_os("DTREC_SHARED_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared"),
    };
    root.join("datasets").join("s3rec").join(name)
}
