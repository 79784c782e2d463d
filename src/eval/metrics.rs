//! Ranking metrics at cutoffs K: HR@K (= Recall@K with one target), NDCG@K and
//! MRR@K, their deterministic accumulation and the [`Metrics`] report.
//!
//! Per sample with rank `r` (see [`crate::eval::target_rank`]):
//!
//! ```text
//! HR@K   = 1            if r ≤ K, else 0
//! NDCG@K = 1/log2(r+1)  if r ≤ K, else 0
//! MRR@K  = 1/r          if r ≤ K, else 0
//! ```
//!
//! Averages are over samples. Sums are kept in `f64` and added in a fixed
//! order (sample order inside an accumulator, accumulators merged in chunk
//! order), so the result never depends on the number of threads.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The cutoffs of method.md §4.
pub const DEFAULT_CUTOFFS: [usize; 4] = [5, 10, 20, 50];

/// An invalid list of cutoffs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutoffError {
    /// No cutoff given.
    Empty,
    /// A cutoff of 0 (no item can be ranked at or above 0).
    Zero,
    /// Cutoffs must be strictly increasing (`at` is the first offending index).
    NotIncreasing {
        /// Index of the first cutoff not larger than its predecessor.
        at: usize,
    },
}

impl fmt::Display for CutoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CutoffError::Empty => write!(f, "the list of cutoffs K is empty"),
            CutoffError::Zero => write!(f, "a cutoff K is 0; cutoffs must be ≥ 1"),
            CutoffError::NotIncreasing { at } => {
                write!(f, "cutoffs must be strictly increasing (entry {at} is not)")
            }
        }
    }
}

impl std::error::Error for CutoffError {}

/// Checks a cutoff list: non-empty, ≥ 1, strictly increasing.
pub fn validate_cutoffs(cutoffs: &[usize]) -> Result<(), CutoffError> {
    if cutoffs.is_empty() {
        return Err(CutoffError::Empty);
    }
    if cutoffs.contains(&0) {
        return Err(CutoffError::Zero);
    }
    if let Some(at) = (1..cutoffs.len()).find(|&i| cutoffs[i] <= cutoffs[i - 1]) {
        return Err(CutoffError::NotIncreasing { at });
    }
    Ok(())
}

/// Running sums of per-sample metrics at each cutoff.
///
/// Add ranks with [`add_rank`](Self::add_rank), combine partial accumulators
/// with [`merge`](Self::merge) in a fixed (chunk) order, read averages with
/// [`finish`](Self::finish).
///
/// ```
/// use dtrec::eval::MetricsAccumulator;
/// let mut acc = MetricsAccumulator::new(&[1, 3]).unwrap();
/// acc.add_rank(1, false);
/// acc.add_rank(3, false);
/// let m = acc.finish();
/// assert_eq!(m.hr(1), Some(0.5));
/// assert_eq!(m.hr(3), Some(1.0));
/// assert_eq!(m.mrr(3), Some((1.0 + 1.0 / 3.0) / 2.0));
/// assert_eq!(m.ndcg(3), Some((1.0 + 0.5) / 2.0)); // 1/log2(2) = 1, 1/log2(4) = 0.5
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsAccumulator {
    cutoffs: Vec<usize>,
    hit_sum: Vec<f64>,
    ndcg_sum: Vec<f64>,
    mrr_sum: Vec<f64>,
    num_samples: u64,
    samples_with_nan: u64,
}

impl MetricsAccumulator {
    /// An empty accumulator for `cutoffs` (non-empty, ≥ 1, strictly increasing).
    pub fn new(cutoffs: &[usize]) -> Result<Self, CutoffError> {
        validate_cutoffs(cutoffs)?;
        let n = cutoffs.len();
        Ok(Self {
            cutoffs: cutoffs.to_vec(),
            hit_sum: vec![0.0; n],
            ndcg_sum: vec![0.0; n],
            mrr_sum: vec![0.0; n],
            num_samples: 0,
            samples_with_nan: 0,
        })
    }

    /// The cutoffs K, increasing.
    pub fn cutoffs(&self) -> &[usize] {
        &self.cutoffs
    }

    /// Adds one sample with 1-based `rank`; `had_nan` records that its score
    /// row contained a NaN (reported in [`Metrics::samples_with_nan`]).
    /// A rank of 0 is treated as the worst rank (it can only come from a bug).
    pub fn add_rank(&mut self, rank: u32, had_nan: bool) {
        self.num_samples += 1;
        self.samples_with_nan += u64::from(had_nan);
        if rank == 0 {
            return;
        }
        let r = f64::from(rank);
        let gain = 1.0 / (r + 1.0).log2();
        let reciprocal = 1.0 / r;
        for (i, &k) in self.cutoffs.iter().enumerate() {
            if rank as usize <= k {
                self.hit_sum[i] += 1.0;
                self.ndcg_sum[i] += gain;
                self.mrr_sum[i] += reciprocal;
            }
        }
    }

    /// Adds the sums of `other` (accumulated over a later chunk of samples).
    /// Merging chunk accumulators in chunk order gives the same bits whatever
    /// the number of threads that produced them.
    ///
    /// # Panics
    /// If the two accumulators have different cutoffs (a programming error).
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(
            self.cutoffs, other.cutoffs,
            "merging metric accumulators with different cutoffs"
        );
        for i in 0..self.cutoffs.len() {
            self.hit_sum[i] += other.hit_sum[i];
            self.ndcg_sum[i] += other.ndcg_sum[i];
            self.mrr_sum[i] += other.mrr_sum[i];
        }
        self.num_samples += other.num_samples;
        self.samples_with_nan += other.samples_with_nan;
    }

    /// Number of samples added so far.
    pub fn num_samples(&self) -> u64 {
        self.num_samples
    }

    /// The averages (all zero when no sample was added).
    pub fn finish(&self) -> Metrics {
        let denom = if self.num_samples == 0 {
            1.0
        } else {
            self.num_samples as f64
        };
        Metrics {
            num_samples: self.num_samples,
            samples_with_nan: self.samples_with_nan,
            at: self
                .cutoffs
                .iter()
                .enumerate()
                .map(|(i, &k)| CutoffMetrics {
                    k,
                    hr: self.hit_sum[i] / denom,
                    ndcg: self.ndcg_sum[i] / denom,
                    mrr: self.mrr_sum[i] / denom,
                })
                .collect(),
        }
    }
}

/// Averages at one cutoff K.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoffMetrics {
    /// The cutoff K.
    pub k: usize,
    /// HR@K = Recall@K (one target per sample).
    pub hr: f64,
    /// NDCG@K.
    pub ndcg: f64,
    /// MRR@K.
    pub mrr: f64,
}

/// Averaged ranking metrics over a set of samples.
///
/// `Display` prints a table; `Serialize` gives
/// `{"num_samples": …, "samples_with_nan": …, "at": [{"k": 5, "hr": …, "ndcg": …, "mrr": …}, …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of evaluated samples.
    pub num_samples: u64,
    /// Samples whose score row contained a NaN (ranked pessimistically; a
    /// non-zero count means the scorer is broken).
    pub samples_with_nan: u64,
    /// One entry per cutoff, K increasing.
    pub at: Vec<CutoffMetrics>,
}

impl Metrics {
    fn at_k(&self, k: usize) -> Option<&CutoffMetrics> {
        self.at.iter().find(|c| c.k == k)
    }

    /// HR@K, if K was evaluated.
    pub fn hr(&self, k: usize) -> Option<f64> {
        self.at_k(k).map(|c| c.hr)
    }

    /// Recall@K (= HR@K with one target per sample), if K was evaluated.
    pub fn recall(&self, k: usize) -> Option<f64> {
        self.hr(k)
    }

    /// NDCG@K, if K was evaluated.
    pub fn ndcg(&self, k: usize) -> Option<f64> {
        self.at_k(k).map(|c| c.ndcg)
    }

    /// MRR@K, if K was evaluated.
    pub fn mrr(&self, k: usize) -> Option<f64> {
        self.at_k(k).map(|c| c.mrr)
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>6}  {:>8}  {:>8}  {:>8}",
            "K", "HR@K", "NDCG@K", "MRR@K"
        )?;
        for c in &self.at {
            writeln!(
                f,
                "{:>6}  {:>8.4}  {:>8.4}  {:>8.4}",
                c.k, c.hr, c.ndcg, c.mrr
            )?;
        }
        write!(f, "({} samples", self.num_samples)?;
        if self.samples_with_nan > 0 {
            write!(f, ", {} with NaN scores", self.samples_with_nan)?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_metrics() {
        // ranks 1, 2, 6, 30 at K = 5, 10
        let mut acc = MetricsAccumulator::new(&[5, 10]).unwrap();
        for r in [1, 2, 6, 30] {
            acc.add_rank(r, false);
        }
        let m = acc.finish();
        assert_eq!(m.num_samples, 4);
        assert_eq!(m.hr(5), Some(2.0 / 4.0));
        assert_eq!(m.hr(10), Some(3.0 / 4.0));
        let g = |r: f64| 1.0 / (r + 1.0).log2();
        assert_eq!(m.ndcg(5), Some((1.0 + g(2.0)) / 4.0));
        assert_eq!(m.ndcg(10), Some((1.0 + g(2.0) + g(6.0)) / 4.0));
        assert_eq!(m.mrr(5), Some((1.0 + 0.5) / 4.0));
        assert_eq!(m.mrr(10), Some((1.0 + 0.5 + 1.0 / 6.0) / 4.0));
        // closed forms: 1/log2(3) = 0.6309..., 1/log2(7) = 0.3562...
        assert!(
            (m.ndcg(10).unwrap() - (1.0 + 0.630_929_753_571_457_4 + 0.356_207_187_108_022_2) / 4.0)
                .abs()
                < 1e-15
        );
        assert_eq!(m.hr(20), None);
        assert_eq!(m.recall(10), m.hr(10));
    }

    #[test]
    fn merge_in_chunk_order_equals_sequential() {
        let ranks: Vec<u32> = (0..1000).map(|i| (i * 7919 % 97 + 1) as u32).collect();
        let mut seq = MetricsAccumulator::new(&DEFAULT_CUTOFFS).unwrap();
        for &r in &ranks {
            seq.add_rank(r, false);
        }
        let mut merged = MetricsAccumulator::new(&DEFAULT_CUTOFFS).unwrap();
        for chunk in ranks.chunks(64) {
            let mut part = MetricsAccumulator::new(&DEFAULT_CUTOFFS).unwrap();
            for &r in chunk {
                part.add_rank(r, false);
            }
            merged.merge(&part);
        }
        assert_eq!(merged.num_samples(), seq.num_samples());
        let (a, b) = (merged.finish(), seq.finish());
        for (x, y) in a.at.iter().zip(&b.at) {
            assert!((x.ndcg - y.ndcg).abs() < 1e-12);
            assert_eq!(x.hr, y.hr); // integer counts: exact
        }
    }

    #[test]
    fn cutoff_validation() {
        assert_eq!(validate_cutoffs(&[]), Err(CutoffError::Empty));
        assert_eq!(validate_cutoffs(&[0, 5]), Err(CutoffError::Zero));
        assert_eq!(
            validate_cutoffs(&[5, 5]),
            Err(CutoffError::NotIncreasing { at: 1 })
        );
        assert_eq!(
            validate_cutoffs(&[10, 5]),
            Err(CutoffError::NotIncreasing { at: 1 })
        );
        assert!(validate_cutoffs(&DEFAULT_CUTOFFS).is_ok());
    }

    #[test]
    fn empty_and_nan_counts() {
        let acc = MetricsAccumulator::new(&[10]).unwrap();
        assert_eq!(acc.finish().hr(10), Some(0.0));
        let mut acc = MetricsAccumulator::new(&[10]).unwrap();
        acc.add_rank(3, true);
        acc.add_rank(0, false);
        let m = acc.finish();
        assert_eq!(m.samples_with_nan, 1);
        assert_eq!(m.hr(10), Some(0.5));
    }

    #[test]
    fn display_and_json() {
        let mut acc = MetricsAccumulator::new(&[5, 10]).unwrap();
        acc.add_rank(2, false);
        let m = acc.finish();
        let table = m.to_string();
        assert!(table.contains("NDCG@K"), "{table}");
        assert!(table.contains("0.6309"), "{table}");
        assert!(table.contains("(1 samples)"), "{table}");
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["at"][1]["k"], 10);
        assert_eq!(json["at"][0]["mrr"], 0.5);
        let back: Metrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }
}
