//! Batched, parallel, model-agnostic full-ranking evaluation.
//!
//! A model plugs in through [`BatchScorer`]: given sample indices it fills one
//! row of N item scores per sample. [`Evaluator`] cuts the samples into
//! batches, scores the batches in parallel (rayon), ranks each target with
//! [`target_rank`](super::target_rank) and averages the metrics in sample order, so the result is
//! bit-identical for any number of threads (and any batch size, as long as
//! the scorer's rows do not depend on it).

use super::metrics::{validate_cutoffs, CutoffError, Metrics, MetricsAccumulator, DEFAULT_CUTOFFS};
use crate::model::rank::{rank_and_nan, RankError};
use rayon::prelude::*;
use std::fmt;

/// Something that scores all N items for a batch of samples.
///
/// Implemented by models (through a small adapter holding the evaluation
/// samples), by [`PopRec`](super::PopRec) and by [`ScoreFn`] for closures.
pub trait BatchScorer: Sync {
    /// Number of items N: the length of one score row (padding excluded).
    fn num_items(&self) -> usize;

    /// Writes the scores of samples `sample_indices` into `out`, shape
    /// `(B, N)` row-major with `B = sample_indices.len()`: row `b` belongs to
    /// sample `sample_indices[b]`, column `j` to dense item id `j + 1`.
    ///
    /// `out` arrives filled with NaN: a cell the scorer leaves unwritten counts
    /// against the model and is reported in [`Metrics::samples_with_nan`].
    fn score_batch(&self, sample_indices: &[usize], out: &mut [f32]);
}

/// Adapts a closure `(sample_indices, out)` to [`BatchScorer`].
///
/// ```
/// use dtrec::eval::{BatchScorer, ScoreFn};
/// // 3 items; every sample scores item id k as k (so item 3 ranks first).
/// let scorer = ScoreFn::new(3, |samples: &[usize], out: &mut [f32]| {
///     for row in out.chunks_mut(3) {
///         row.copy_from_slice(&[1.0, 2.0, 3.0]);
///     }
///     let _ = samples;
/// });
/// assert_eq!(scorer.num_items(), 3);
/// ```
pub struct ScoreFn<F> {
    num_items: usize,
    score: F,
}

impl<F> ScoreFn<F>
where
    F: Fn(&[usize], &mut [f32]) + Sync,
{
    /// A scorer over `num_items` items calling `score(sample_indices, out)`.
    pub fn new(num_items: usize, score: F) -> Self {
        Self { num_items, score }
    }
}

impl<F> BatchScorer for ScoreFn<F>
where
    F: Fn(&[usize], &mut [f32]) + Sync,
{
    fn num_items(&self) -> usize {
        self.num_items
    }

    fn score_batch(&self, sample_indices: &[usize], out: &mut [f32]) {
        (self.score)(sample_indices, out)
    }
}

/// Why an evaluation could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// The batch size is 0.
    ZeroBatchSize,
    /// The scorer has no items.
    NoItems,
    /// The cutoff list is invalid.
    Cutoffs(CutoffError),
    /// `batch_size × N` scores do not fit in memory addressing.
    BatchTooLarge {
        /// Requested batch size.
        batch_size: usize,
        /// Number of items N.
        num_items: usize,
    },
    /// Sample `sample` has an invalid target or exclusion id.
    Sample {
        /// Index of the sample.
        sample: usize,
        /// What is wrong with it.
        source: RankError,
    },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::ZeroBatchSize => write!(f, "evaluation batch size is 0"),
            EvalError::NoItems => write!(f, "the scorer has no items to rank"),
            EvalError::Cutoffs(e) => write!(f, "invalid cutoffs: {e}"),
            EvalError::BatchTooLarge {
                batch_size,
                num_items,
            } => write!(
                f,
                "a batch of {batch_size} rows × {num_items} items is too large"
            ),
            EvalError::Sample { sample, source } => write!(f, "sample {sample}: {source}"),
        }
    }
}

impl std::error::Error for EvalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EvalError::Cutoffs(e) => Some(e),
            EvalError::Sample { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result of an evaluation: averaged metrics and each sample's rank.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Averages over all samples.
    pub metrics: Metrics,
    /// `ranks[i]`: 1-based rank of sample i's target (see [`target_rank`](super::target_rank)).
    pub ranks: Vec<u32>,
}

/// Settings of a full-ranking evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluator {
    /// Samples scored per [`BatchScorer::score_batch`] call; memory is
    /// `batch_size × N × 4` bytes per batch in flight (one per thread).
    pub batch_size: usize,
    /// Cutoffs K, strictly increasing.
    pub cutoffs: Vec<usize>,
}

impl Default for Evaluator {
    /// Batch size 256, cutoffs {5, 10, 20, 50}.
    fn default() -> Self {
        Self {
            batch_size: 256,
            cutoffs: DEFAULT_CUTOFFS.to_vec(),
        }
    }
}

impl Evaluator {
    /// Ranks `targets[i]` (dense id in `1..=N`) in the score row of sample `i`
    /// over all N items (no masking).
    pub fn evaluate<S>(&self, scorer: &S, targets: &[u32]) -> Result<EvalReport, EvalError>
    where
        S: BatchScorer + ?Sized,
    {
        self.evaluate_excluding(scorer, targets, |_| &[])
    }

    /// Like [`evaluate`](Self::evaluate), but the items `excluded(i)` (dense
    /// ids in `1..=N`, e.g. sample i's history) are left out of sample i's
    /// ranking; the target itself is never left out.
    ///
    /// ```
    /// use dtrec::eval::{Evaluator, ScoreFn};
    /// // 4 items scored 4, 3, 2, 1 for every sample.
    /// let scorer = ScoreFn::new(4, |_: &[usize], out: &mut [f32]| {
    ///     for row in out.chunks_mut(4) {
    ///         row.copy_from_slice(&[4.0, 3.0, 2.0, 1.0]);
    ///     }
    /// });
    /// let histories = vec![vec![1, 2], vec![]];
    /// let eval = Evaluator { batch_size: 1, cutoffs: vec![1, 3] };
    /// let report = eval
    ///     .evaluate_excluding(&scorer, &[3, 3], |i| &histories[i])
    ///     .unwrap();
    /// assert_eq!(report.ranks, vec![1, 3]);
    /// assert_eq!(report.metrics.hr(1), Some(0.5));
    /// ```
    pub fn evaluate_excluding<'x, S, X>(
        &self,
        scorer: &S,
        targets: &[u32],
        excluded: X,
    ) -> Result<EvalReport, EvalError>
    where
        S: BatchScorer + ?Sized,
        X: Fn(usize) -> &'x [u32] + Sync,
    {
        validate_cutoffs(&self.cutoffs).map_err(EvalError::Cutoffs)?;
        if self.batch_size == 0 {
            return Err(EvalError::ZeroBatchSize);
        }
        let num_items = scorer.num_items();
        if num_items == 0 {
            return Err(EvalError::NoItems);
        }
        let batch_len = self
            .batch_size
            .checked_mul(num_items)
            .filter(|&n| n <= isize::MAX as usize / 4)
            .ok_or(EvalError::BatchTooLarge {
                batch_size: self.batch_size,
                num_items,
            })?;

        // Check every id before scoring, in sample order, so a bad input fails
        // fast and always names the same (first) sample.
        let in_range = |item: u32| (1..=num_items).contains(&(item as usize));
        for (sample, &target) in targets.iter().enumerate() {
            if !in_range(target) {
                let source = RankError::TargetOutOfRange { target, num_items };
                return Err(EvalError::Sample { sample, source });
            }
            if let Some(&item) = excluded(sample).iter().find(|&&item| !in_range(item)) {
                let source = RankError::ExcludedOutOfRange { item, num_items };
                return Err(EvalError::Sample { sample, source });
            }
        }

        // (num_samples,) ranks and NaN flags, filled batch by batch in parallel.
        let mut ranks = vec![0u32; targets.len()];
        let mut had_nan = vec![false; targets.len()];
        ranks
            .par_chunks_mut(self.batch_size)
            .zip(had_nan.par_chunks_mut(self.batch_size))
            .enumerate()
            .try_for_each_init(
                || (vec![0f32; batch_len], Vec::new(), Vec::new()),
                |(scores, samples, scratch), (batch, (rank_out, nan_out))| {
                    let start = batch * self.batch_size;
                    samples.clear();
                    samples.extend(start..start + rank_out.len());
                    let scores = &mut scores[..samples.len() * num_items];
                    scores.fill(f32::NAN);
                    scorer.score_batch(samples, scores);
                    for (b, row) in scores.chunks_exact(num_items).enumerate() {
                        let sample = start + b;
                        (rank_out[b], nan_out[b]) =
                            rank_and_nan(row, targets[sample], excluded(sample), scratch)
                                .map_err(|source| EvalError::Sample { sample, source })?;
                    }
                    Ok(())
                },
            )?;

        // Sequential sum in sample order: independent of threads and batching.
        let mut acc = MetricsAccumulator::new(&self.cutoffs).map_err(EvalError::Cutoffs)?;
        for (&rank, &nan) in ranks.iter().zip(&had_nan) {
            acc.add_rank(rank, nan);
        }
        Ok(EvalReport {
            metrics: acc.finish(),
            ranks,
        })
    }
}
