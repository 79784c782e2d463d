//! `dtrec compare`: two models' `eval --ranks-out` files, sample by sample,
//! and several seeds' pairs of them pooled as runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dtrec::lab::{
    compare_across_runs, compare_rank_paths, AcrossRunsError, SplitAcrossRuns, SplitComparison,
};

/// The whole `dtrec compare` output: one [`comparison_table`] per pair (A
/// against B first, then each `--pair`, given flat as A, B, A, B, …), and
/// with more than one pair the [`across_runs_table`]. Every file is read
/// before anything is returned, so a bad file leaves no partial report; the
/// error names the file, or the pair of a run scored on other samples.
pub fn compare_report(a: &Path, b: &Path, more_pairs: &[PathBuf]) -> Result<String, String> {
    let files: Vec<(&Path, &Path)> = std::iter::once((a, b))
        .chain(
            more_pairs
                .chunks_exact(2)
                .map(|p| (p[0].as_path(), p[1].as_path())),
        )
        .collect();
    let runs = files
        .iter()
        .map(|(a, b)| compare_rank_paths(a, b).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = String::new();
    for ((a, b), splits) in files.iter().zip(&runs) {
        out.push_str(&comparison_table(a, b, splits));
    }
    if runs.len() > 1 {
        let pooled = compare_across_runs(&runs).map_err(|e| match e {
            AcrossRunsError::OtherSamples { run, .. } => {
                let (a, b) = files[run - 1];
                format!("{e} (run {run} is {} against {})", b.display(), a.display())
            }
            e => e.to_string(),
        })?;
        out.push('\n');
        out.push_str(&across_runs_table(&pooled));
    }
    Ok(out)
}

/// The comparison as a Markdown table, one row per split and metric, with
/// a heading that names both files and says what the intervals cover.
fn comparison_table(a: &Path, b: &Path, splits: &[SplitComparison]) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "B = {} against A = {}, paired by sample. Differences are B − A; the 95% \
         intervals and two-sided p-values use the normal approximation over samples, so \
         they cover which users are in the split, not training noise.\n",
        b.display(),
        a.display()
    )
    .expect("writing to a String");
    out.push_str(
        "| split | samples | metric | A | B | B − A | relative | 95% interval | p | B better | A better | tie | steps A | steps B |\n\
         |---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for split in splits {
        for (metric, m) in split.metrics() {
            writeln!(
                out,
                "| {} | {} | {metric} | {} | {} | {} | {} | {:.2} | {:.2} |",
                split.split,
                split.samples,
                difference_cells(
                    m.mean_a,
                    m.mean_b,
                    m.mean_diff,
                    m.std_error,
                    m.ci95,
                    m.p_value
                ),
                m.b_better,
                m.a_better,
                m.ties,
                split.mean_steps_a,
                split.mean_steps_b,
            )
            .expect("writing to a String");
        }
    }
    out
}

/// The seeds' comparisons pooled as runs (after one [`comparison_table`]
/// per seed): a Markdown table with a paired t-test over the per-seed
/// differences.
fn across_runs_table(splits: &[SplitAcrossRuns]) -> String {
    let mut out = String::from(
        "Over seeds: each seed's mean difference B − A is one run; the 95% intervals and \
         two-sided p-values are Student's t over the runs, so they cover training noise on \
         these samples, not which users are in the split.\n\n\
         | split | samples | runs | metric | A | B | B − A | relative | 95% interval | p | runs B better | runs A better | steps A | steps B |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n",
    );
    for split in splits {
        for (metric, m) in split.metrics() {
            writeln!(
                out,
                "| {} | {} | {} | {metric} | {} | {} | {} | {:.2} | {:.2} |",
                split.split,
                split.samples,
                m.runs,
                difference_cells(
                    m.mean_a,
                    m.mean_b,
                    m.mean_diff,
                    m.std_error,
                    m.ci95,
                    m.p_value
                ),
                m.b_better,
                m.a_better,
                split.mean_steps_a,
                split.mean_steps_b,
            )
            .expect("writing to a String");
        }
    }
    out
}

/// The cells `A | B | B − A | relative | 95% interval | p` of one row; the
/// relative difference is "n/a" when A's mean is 0, the interval and p
/// when there is no spread to estimate.
fn difference_cells(
    mean_a: f64,
    mean_b: f64,
    mean_diff: f64,
    std_error: f64,
    ci95: (f64, f64),
    p: f64,
) -> String {
    let relative = if mean_a > 0.0 {
        format!("{:+.1}%", 100.0 * mean_diff / mean_a)
    } else {
        "n/a".to_owned()
    };
    let interval = if std_error.is_nan() {
        "n/a".to_owned()
    } else {
        format!("[{:+.5}, {:+.5}]", ci95.0, ci95.1)
    };
    let p = if p.is_nan() {
        "n/a".to_owned()
    } else if p < 1e-4 {
        "< 0.0001".to_owned()
    } else {
        format!("{p:.4}")
    };
    format!("{mean_a:.4} | {mean_b:.4} | {mean_diff:+.5} | {relative} | {interval} | {p}")
}
