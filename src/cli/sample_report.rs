//! `eval`'s per-sample outputs: the metrics by history length and target
//! popularity, and a CSV of every sample's rank.

use std::fmt::Write as _;
use std::path::Path;

use dtrec::data::{Interactions, Sample};
use dtrec::eval::{Breakdown, DEFAULT_CUTOFFS};
#[cfg(feature = "lab")]
use dtrec::lab::RANKS_HEADER;

/// One evaluated split: its samples, their 1-based target ranks and the
/// reasoning steps each ran.
pub struct EvaluatedSamples<'a> {
    /// `"validation"` or `"test"`.
    pub split: &'static str,
    pub samples: &'a [Sample],
    pub ranks: &'a [u32],
    pub steps: &'a [u32],
}

/// The split's metrics by history length and by the target's occurrences
/// as a training target (`target_counts`, by dense id).
pub fn breakdown(
    data: &Interactions,
    evaluated: &EvaluatedSamples<'_>,
    target_counts: &[u64],
) -> Breakdown {
    let lens: Vec<usize> = evaluated
        .samples
        .iter()
        .map(|s| s.history(data).len())
        .collect();
    let counts: Vec<u64> = evaluated
        .samples
        .iter()
        .map(|s| target_counts[s.target(data) as usize])
        .collect();
    Breakdown::of(evaluated.ranks, &lens, &counts, &DEFAULT_CUTOFFS)
        .expect("the default cutoffs are valid")
}

/// Writes one CSV row per sample of every split in `evaluated` to `path`
/// (atomically), with external user and item ids.
pub fn write_ranks(
    path: &Path,
    data: &Interactions,
    evaluated: &[EvaluatedSamples<'_>],
    target_counts: &[u64],
) -> Result<(), String> {
    let mut csv = String::new();
    csv.push_str(RANKS_HEADER);
    csv.push('\n');
    for part in evaluated {
        for ((sample, &rank), &steps) in part.samples.iter().zip(part.ranks).zip(part.steps) {
            let target = sample.target(data);
            writeln!(
                csv,
                "{},{},{},{},{},{},{}",
                part.split,
                csv_field(&data.user_ids()[sample.user as usize]),
                sample.history(data).len(),
                csv_field(&data.item_ids()[target as usize]),
                target_counts[target as usize],
                rank,
                steps
            )
            .expect("writing to a String");
        }
    }
    dtrec::io::write_atomic(path, csv.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// An id as one CSV field: quoted (quotes doubled) when it holds a comma,
/// a quote or a line break.
fn csv_field(id: &str) -> String {
    if id.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", id.replace('"', "\"\""))
    } else {
        id.to_owned()
    }
}
