//! `dtrec compare`: two models' `eval --ranks-out` files, sample by sample.

use std::fmt::Write as _;
use std::path::Path;

use dtrec::eval::{PairedMetric, SplitComparison};

/// The comparison as a Markdown table, one row per split and metric, with
/// a heading that names both files and says what the intervals cover.
pub fn comparison_table(a: &Path, b: &Path, splits: &[SplitComparison]) -> String {
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
        for (metric, m) in [("NDCG@10", &split.ndcg10), ("HR@10", &split.hr10)] {
            writeln!(
                out,
                "| {} | {} | {metric} | {:.4} | {:.4} | {:+.5} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
                split.split,
                split.samples,
                m.mean_a,
                m.mean_b,
                m.mean_diff,
                relative(m),
                interval(m),
                p_value(m.p_value),
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

/// B − A relative to A, or "n/a" when A's mean is 0.
fn relative(m: &PairedMetric) -> String {
    if m.mean_a > 0.0 {
        format!("{:+.1}%", 100.0 * m.mean_diff / m.mean_a)
    } else {
        "n/a".to_owned()
    }
}

fn interval(m: &PairedMetric) -> String {
    if m.std_error.is_nan() {
        "n/a".to_owned()
    } else {
        format!("[{:+.5}, {:+.5}]", m.ci95.0, m.ci95.1)
    }
}

fn p_value(p: f64) -> String {
    if p.is_nan() {
        "n/a".to_owned()
    } else if p < 1e-4 {
        "< 0.0001".to_owned()
    } else {
        format!("{p:.4}")
    }
}
