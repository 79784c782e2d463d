//! Prints dataset statistics and split sizes for a data file or the built-in
//! synthetic dataset.
//!
//! ```text
//! cargo run --release --example data_stats                       # synthetic
//! cargo run --release --example data_stats -- ../shared/datasets/s3rec/Beauty.txt
//! cargo run --release --example data_stats -- ~/.cache/dtrec/ml-100k/ml-100k.inter
//! cargo run --release --example data_stats -- ratings.csv --format csv \
//!     --user userId --item movieId --time timestamp --rating rating
//! ```
//!
//! `--format` is `atomic`, `csv`, `tsv` or `s3rec` (default: from the
//! extension, see `Format::from_path`). Column flags default to RecBole's
//! names (`user_id`, `item_id`, `timestamp`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use dtrec::data::synthetic::{SyntheticConfig, UserKind};
use dtrec::data::{
    leave_one_out, load, temporal_split, Columns, DatasetStats, Format, Interactions, ReadOptions,
    TemporalConfig,
};

fn usage() -> ExitCode {
    eprintln!(
        "usage: data_stats [PATH|synthetic] [--format atomic|csv|tsv|s3rec] \
         [--user COL] [--item COL] [--time COL|--no-time] [--rating COL]"
    );
    ExitCode::from(2)
}

fn report(name: &str, data: &Interactions) {
    println!("== {name}");
    println!("{}", DatasetStats::of(data));
    match leave_one_out(data) {
        Ok(split) => println!("leave-one-out: {split}"),
        Err(e) => println!("leave-one-out: {e}"),
    }
    if data.timestamps().is_some() {
        match temporal_split(data, &TemporalConfig::default()) {
            Ok(split) => println!("temporal 0.8/0.9, history ≥ 5: {split}"),
            Err(e) => println!("temporal split: {e}"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut path: Option<PathBuf> = None;
    let mut format: Option<String> = None;
    let mut columns = Columns::recbole();
    let mut k = 0;
    while k < args.len() {
        let value = |k: usize| args.get(k + 1).cloned();
        match args[k].as_str() {
            "--format" | "--user" | "--item" | "--time" | "--rating" => {
                let Some(v) = value(k) else {
                    return usage();
                };
                match args[k].as_str() {
                    "--format" => format = Some(v),
                    "--user" => columns.user = v,
                    "--item" => columns.item = v,
                    "--time" => columns.timestamp = Some(v),
                    _ => columns.rating = Some(v),
                }
                k += 2;
                continue;
            }
            "--no-time" => columns.timestamp = None,
            "-h" | "--help" => return usage(),
            p if path.is_none() && !p.starts_with("--") => path = Some(PathBuf::from(p)),
            _ => return usage(),
        }
        k += 1;
    }

    let path = match path {
        Some(p) if p.as_os_str() != "synthetic" => p,
        _ => {
            let start = Instant::now();
            let d = SyntheticConfig::default()
                .generate()
                .expect("default config is valid");
            println!("generated in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
            report("synthetic (default config)", &d.interactions);
            let complex = d
                .user_kind
                .iter()
                .filter(|&&k| k == UserKind::Complex)
                .count();
            println!("complex users {complex} / {}", d.user_kind.len());
            return ExitCode::SUCCESS;
        }
    };
    let format = match format.as_deref() {
        None => match Format::from_path(&path) {
            Format::Atomic(_) => Format::Atomic(columns),
            Format::Delimited { delimiter, .. } => Format::Delimited { delimiter, columns },
            Format::S3rec => Format::S3rec,
        },
        Some("atomic") => Format::Atomic(columns),
        Some("csv") => Format::Delimited {
            delimiter: ',',
            columns,
        },
        Some("tsv") => Format::Delimited {
            delimiter: '\t',
            columns,
        },
        Some("s3rec") => Format::S3rec,
        Some(_) => return usage(),
    };
    let start = Instant::now();
    match load(&path, &format, &ReadOptions::default()) {
        Ok(data) => {
            println!("loaded in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
            report(&path.display().to_string(), &data);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
