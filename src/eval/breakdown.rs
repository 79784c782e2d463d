//! Metrics per segment of the evaluated samples: by the length of the
//! history and by how often the target item occurs as a training target.
//! Two models with the same overall NDCG@10 can differ a lot on long
//! histories or on rare targets; this is where such a difference shows.

use std::fmt;

use super::metrics::{CutoffError, Metrics, MetricsAccumulator};

/// Upper ends (inclusive) of the history-length segments; a last segment
/// holds everything longer. Leave-one-out datasets have at least 3 events
/// per user, so validation histories start at 1 and test histories at 2.
pub const HISTORY_EDGES: [usize; 5] = [3, 5, 8, 15, 50];

/// Upper ends (inclusive) of the target-popularity segments, in training
/// target occurrences; a last segment holds everything more frequent.
pub const POPULARITY_EDGES: [u64; 4] = [0, 4, 19, 99];

/// One segment: its label (`"6–8"`, `"≥ 100"`) and the metrics of the
/// samples in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Inclusive range of the segment's key, as text.
    pub label: String,
    /// Averages over the segment's samples (all zero for an empty one).
    pub metrics: Metrics,
}

/// Metrics of one evaluation split by history length and by target
/// popularity.
///
/// ```
/// use dtrec::eval::Breakdown;
///
/// // Three samples: ranks 1, 2 and 50; histories of 2, 7 and 7 items;
/// // targets seen 0, 30 and 30 times as training targets.
/// let b = Breakdown::of(&[1, 2, 50], &[2, 7, 7], &[0, 30, 30], &[10]).unwrap();
/// let short = &b.by_history[0]; // histories of 1–3 items
/// assert_eq!((short.label.as_str(), short.metrics.num_samples), ("1–3", 1));
/// assert_eq!(short.metrics.hr(10), Some(1.0));
/// let mid = &b.by_history[2]; // histories of 6–8 items
/// assert_eq!(mid.metrics.num_samples, 2);
/// assert_eq!(mid.metrics.hr(10), Some(0.5));
/// assert_eq!(b.by_popularity[0].label, "0");
/// assert_eq!(b.by_popularity[3].metrics.num_samples, 2); // 20–99 occurrences
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    /// Segments by history length, [`HISTORY_EDGES`] plus the open end.
    pub by_history: Vec<Segment>,
    /// Segments by the target's training occurrences, [`POPULARITY_EDGES`]
    /// plus the open end.
    pub by_popularity: Vec<Segment>,
}

impl Breakdown {
    /// Splits the samples with 1-based `ranks` by `history_lens` and by
    /// `target_counts` (the target's occurrences as a training target),
    /// with metrics at `cutoffs`. NaN scores are not known here, so every
    /// segment reports `samples_with_nan = 0`.
    ///
    /// # Panics
    /// If the three slices differ in length (a programming error).
    pub fn of(
        ranks: &[u32],
        history_lens: &[usize],
        target_counts: &[u64],
        cutoffs: &[usize],
    ) -> Result<Self, CutoffError> {
        assert_eq!(
            ranks.len(),
            history_lens.len(),
            "one history length per rank"
        );
        assert_eq!(
            ranks.len(),
            target_counts.len(),
            "one target count per rank"
        );
        let history_keys: Vec<u64> = history_lens.iter().map(|&l| l as u64).collect();
        let history_edges = HISTORY_EDGES.map(|e| e as u64);
        Ok(Breakdown {
            by_history: segments(ranks, &history_keys, &history_edges, 1, cutoffs)?,
            by_popularity: segments(ranks, target_counts, &POPULARITY_EDGES, 0, cutoffs)?,
        })
    }
}

/// Accumulates each rank into the first segment whose upper edge is at
/// least its key; `lowest` is the smallest possible key (for the labels).
fn segments(
    ranks: &[u32],
    keys: &[u64],
    edges: &[u64],
    lowest: u64,
    cutoffs: &[usize],
) -> Result<Vec<Segment>, CutoffError> {
    let mut sums = vec![MetricsAccumulator::new(cutoffs)?; edges.len() + 1];
    for (&rank, &key) in ranks.iter().zip(keys) {
        let segment = edges.partition_point(|&edge| edge < key);
        sums[segment].add_rank(rank, false);
    }
    Ok(sums
        .iter()
        .enumerate()
        .map(|(i, sum)| {
            // a segment starts one past the previous segment's upper edge
            let low = i.checked_sub(1).map_or(lowest, |prev| edges[prev] + 1);
            let label = match edges.get(i) {
                Some(&high) if high == low => format!("{high}"),
                Some(&high) => format!("{low}–{high}"),
                None => format!("≥ {low}"),
            };
            Segment {
                label,
                metrics: sum.finish(),
            }
        })
        .collect())
}

fn write_segments(f: &mut fmt::Formatter<'_>, key: &str, segments: &[Segment]) -> fmt::Result {
    writeln!(f, "| {key} | samples | NDCG@10 | HR@10 | NDCG@20 | HR@20 |")?;
    writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
    for s in segments {
        let m = &s.metrics;
        // an empty segment has no average, not an average of zero
        let cell = |v: Option<f64>| match v {
            Some(v) if m.num_samples > 0 => format!("{v:.4}"),
            _ => "—".to_string(),
        };
        writeln!(
            f,
            "| {} | {} | {} | {} | {} | {} |",
            s.label,
            m.num_samples,
            cell(m.ndcg(10)),
            cell(m.hr(10)),
            cell(m.ndcg(20)),
            cell(m.hr(20))
        )?;
    }
    Ok(())
}

/// Two Markdown tables: by history length, then by target popularity; an
/// empty segment's metrics print as "—".
impl fmt::Display for Breakdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_segments(f, "history length", &self.by_history)?;
        writeln!(f)?;
        write_segments(f, "target's training occurrences", &self.by_popularity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_on_an_edge_belong_to_the_segment_it_closes() {
        // history lengths on every edge, one past it, and beyond the last
        let lens = [1, 3, 4, 5, 6, 8, 9, 15, 16, 50, 51, 400];
        let ranks = vec![1; lens.len()];
        let counts = vec![0; lens.len()];
        let b = Breakdown::of(&ranks, &lens, &counts, &[10]).unwrap();
        let per_segment: Vec<(&str, u64)> = b
            .by_history
            .iter()
            .map(|s| (s.label.as_str(), s.metrics.num_samples))
            .collect();
        assert_eq!(
            per_segment,
            [
                ("1–3", 2),
                ("4–5", 2),
                ("6–8", 2),
                ("9–15", 2),
                ("16–50", 2),
                ("≥ 51", 2)
            ]
        );
        let labels: Vec<&str> = b.by_popularity.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["0", "1–4", "5–19", "20–99", "≥ 100"]);
        assert_eq!(b.by_popularity[0].metrics.num_samples, 12);
    }

    #[test]
    fn an_empty_segment_reports_zero_samples_and_zero_metrics() {
        let b = Breakdown::of(&[3], &[7], &[100], &[10]).unwrap();
        let empty = &b.by_history[0];
        assert_eq!(empty.metrics.num_samples, 0);
        assert_eq!(empty.metrics.ndcg(10), Some(0.0));
        let full = &b.by_popularity[4];
        assert_eq!(full.metrics.num_samples, 1);
        assert_eq!(full.metrics.ndcg(10), Some(0.5)); // 1 / log2(3 + 1)
    }

    #[test]
    fn segment_metrics_weighted_by_their_sizes_give_the_overall_metrics() {
        let ranks: Vec<u32> = (1..=40).map(|i| (i * 7) % 23 + 1).collect();
        let lens: Vec<usize> = (0..40).map(|i| 1 + (i * 13) % 70).collect();
        let counts: Vec<u64> = (0..40).map(|i| (i * i * 3) % 150).collect();
        let b = Breakdown::of(&ranks, &lens, &counts, &[10, 20]).unwrap();
        let mut all = MetricsAccumulator::new(&[10, 20]).unwrap();
        for &r in &ranks {
            all.add_rank(r, false);
        }
        let overall = all.finish().ndcg(10).unwrap();
        for segments in [&b.by_history, &b.by_popularity] {
            let weighted: f64 = segments
                .iter()
                .map(|s| s.metrics.ndcg(10).unwrap() * s.metrics.num_samples as f64)
                .sum::<f64>()
                / 40.0;
            assert!(
                (weighted - overall).abs() < 1e-12,
                "{weighted} vs {overall}"
            );
        }
    }

    #[test]
    fn display_prints_one_row_per_segment() {
        let b = Breakdown::of(&[1, 12], &[2, 60], &[5, 500], &[10, 20]).unwrap();
        let text = b.to_string();
        assert!(text.contains("| 1–3 | 1 | 1.0000 | 1.0000 |"), "{text}");
        assert!(text.contains("| ≥ 51 | 1 | 0.0000 | 0.0000 |"), "{text}");
        assert!(text.contains("| 5–19 | 1 | 1.0000 |"), "{text}");
        assert!(text.contains("| 4–5 | 0 | — | — | — | — |"), "{text}");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("| ")).count(),
            2 + 6 + 5
        );
    }
}
