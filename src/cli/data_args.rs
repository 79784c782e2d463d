//! Dataset selection shared by the subcommands: a file with its format, or
//! the built-in synthetic dataset; and the split.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use dtrec::data::{
    leave_one_out, load, synthetic::SyntheticConfig, temporal_split, Columns, Format, Interactions,
    ReadOptions, Split, TemporalConfig,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// Guess from the extension (.inter → atomic, .csv, .tsv, else s3rec).
    Auto,
    /// One user per line: `user item item ...`, time-ordered.
    S3rec,
    /// RecBole atomic `.inter` (tab separated, `name:type` header).
    Atomic,
    /// Comma-separated with a header.
    Csv,
    /// Tab-separated with a header.
    Tsv,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SplitArg {
    /// Leave-one-out: last item → test, second-to-last → validation.
    Loo,
    /// Global temporal split at 80% / 90% of the time range (ReaRec).
    Temporal,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Interaction file; without it the built-in synthetic dataset is used.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// User column (atomic/csv/tsv).
    #[arg(long, default_value = "user_id")]
    pub user_col: String,
    /// Item column (atomic/csv/tsv).
    #[arg(long, default_value = "item_id")]
    pub item_col: String,
    /// Timestamp column (atomic/csv/tsv); "none" keeps the file order.
    #[arg(long, default_value = "timestamp")]
    pub time_col: String,
    /// Users of the built-in synthetic dataset.
    #[arg(long, default_value_t = 3000)]
    pub synthetic_users: usize,
    #[arg(long, value_enum, default_value = "loo")]
    pub split: SplitArg,
}

impl DataArgs {
    /// A short name of the data source, for logs.
    pub fn source(&self) -> String {
        match &self.data {
            Some(p) => p.display().to_string(),
            None => format!(
                "built-in synthetic dataset ({} users)",
                self.synthetic_users
            ),
        }
    }

    pub fn load(&self) -> Result<Interactions, String> {
        let Some(path) = &self.data else {
            let synth = SyntheticConfig {
                num_users: self.synthetic_users,
                ..SyntheticConfig::default()
            };
            return synth
                .generate()
                .map(|d| d.interactions)
                .map_err(|e| e.to_string());
        };
        let mut columns = Columns::new(&self.user_col, &self.item_col);
        if self.time_col != "none" {
            columns = columns.with_timestamp(&self.time_col);
        }
        let format = match self.format {
            FormatArg::Auto => match Format::from_path(path) {
                Format::Atomic(_) => Format::Atomic(columns),
                Format::Delimited { delimiter, .. } => Format::Delimited { delimiter, columns },
                Format::S3rec => Format::S3rec,
            },
            FormatArg::S3rec => Format::S3rec,
            FormatArg::Atomic => Format::Atomic(columns),
            FormatArg::Csv => Format::Delimited {
                delimiter: ',',
                columns,
            },
            FormatArg::Tsv => Format::Delimited {
                delimiter: '\t',
                columns,
            },
        };
        load(path, &format, &ReadOptions::default()).map_err(|e| e.to_string())
    }

    pub fn split(&self, data: &Interactions) -> Result<Split, String> {
        match self.split {
            SplitArg::Loo => leave_one_out(data),
            SplitArg::Temporal => temporal_split(data, &TemporalConfig::default()),
        }
        .map_err(|e| e.to_string())
    }
}
