//! Batches of samples for training and evaluation, laid out as the
//! model's validated [`TrainBatch`]: `B` rows of the last `L` history items,
//! LEFT-padded with the padding id 0 so the newest item sits in column
//! `L − 1`, and each sample's target. [`EpochBatches`] walks a sample list
//! in a seeded, deterministic order.

use dtrec_kernels::rng::{shuffle, CounterRng};

use super::error::DataError;
use super::split::Sample;
use super::store::Interactions;
use crate::batch::TrainBatch;

/// The batch of `samples[indices[r]]` for each row `r`, its histories cut
/// to the last `max_len` items. Valid by construction (the store's ids are
/// 1 … N, N = `data.num_items()`), so nothing is re-checked downstream.
///
/// Panics if an index is out of `samples` or a sample out of `data`
/// (samples come from this module's splits, which never produce such), or
/// if `max_len` is 0.
///
/// ```
/// use dtrec::data::{assemble, read_s3rec, ReadOptions, Sample};
/// let s = read_s3rec("u 1 2 3 4\n".as_bytes(), "mem", &ReadOptions::default())?;
/// let samples = [Sample { user: 0, end: 3 }, Sample { user: 0, end: 1 }];
/// let b = assemble(&s, &samples, &[0, 1], 2);
/// assert_eq!(b.seqs().items(), [2, 3, 0, 1]); // the 2 most recent; row 2 left-padded
/// assert_eq!(b.seqs().lengths(), [2, 1]);
/// assert_eq!(b.targets(), [4, 2]);
/// # Ok::<(), dtrec::data::DataError>(())
/// ```
pub fn assemble(
    data: &Interactions,
    samples: &[Sample],
    indices: &[usize],
    max_len: usize,
) -> TrainBatch {
    assert!(max_len > 0, "assemble: max_len must be positive");
    let mut items = vec![0u32; indices.len() * max_len];
    let mut lengths = Vec::with_capacity(indices.len());
    let mut targets = Vec::with_capacity(indices.len());
    for (row, &k) in items.chunks_exact_mut(max_len).zip(indices) {
        let sample = samples[k];
        let user_items = data.user_items(sample.user);
        let history = &user_items[..sample.end as usize];
        let kept = &history[history.len().saturating_sub(max_len)..];
        row[max_len - kept.len()..].copy_from_slice(kept);
        lengths.push(kept.len() as u32);
        targets.push(user_items[sample.end as usize]);
    }
    TrainBatch::from_valid(items, lengths, targets, max_len, data.num_items())
}

/// The batches of `samples` in their order, `batch_size` at a time (the
/// last one may be smaller): the evaluation and calibration batches.
///
/// Panics if `batch_size` or `max_len` is 0.
pub fn batches_in_order(
    data: &Interactions,
    samples: &[Sample],
    batch_size: usize,
    max_len: usize,
) -> Vec<TrainBatch> {
    assert!(
        batch_size > 0,
        "batches_in_order: batch_size must be positive"
    );
    let indices: Vec<usize> = (0..samples.len()).collect();
    indices
        .chunks(batch_size)
        .map(|idx| assemble(data, samples, idx, max_len))
        .collect()
}

/// How [`EpochBatches`] cuts and orders an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Rows per batch `B` (the last batch may be smaller unless `drop_last`).
    pub batch_size: usize,
    /// History columns `L`.
    pub max_len: usize,
    /// Shuffle the samples each epoch (training) or keep their order (evaluation).
    pub shuffle: bool,
    /// Seed of the shuffle (`CounterRng::new(seed)`); epoch `e` uses stream `e`.
    pub seed: u64,
    /// Drop a final batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            batch_size: 256,
            max_len: 50,
            shuffle: true,
            seed: 0,
            drop_last: false,
        }
    }
}

/// The order in which epoch `epoch` visits `0..n`: identity, or the
/// Fisher–Yates permutation of `dtrec_kernels::rng::shuffle` with
/// `CounterRng::new(seed)` on stream `epoch`.
pub fn epoch_order(n: usize, shuffled: bool, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffled {
        shuffle(&mut order, &CounterRng::new(seed), epoch);
    }
    order
}

/// Iterator over the batches of one epoch. Same `(config, epoch)` → same batches.
pub struct EpochBatches<'a> {
    data: &'a Interactions,
    samples: &'a [Sample],
    order: Vec<usize>,
    next: usize,
    config: BatchConfig,
}

impl<'a> EpochBatches<'a> {
    /// Batches of `samples` for epoch number `epoch`.
    ///
    /// Errors if `batch_size` or `max_len` is 0.
    pub fn new(
        data: &'a Interactions,
        samples: &'a [Sample],
        config: &BatchConfig,
        epoch: u64,
    ) -> Result<Self, DataError> {
        if config.batch_size == 0 || config.max_len == 0 {
            return Err(DataError::InvalidArgument {
                message: format!(
                    "batch_size ({}) and max_len ({}) must be positive",
                    config.batch_size, config.max_len
                ),
            });
        }
        Ok(EpochBatches {
            data,
            samples,
            order: epoch_order(samples.len(), config.shuffle, config.seed, epoch),
            next: 0,
            config: config.clone(),
        })
    }

    /// The sample indices of this epoch, in visiting order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    fn remaining(&self) -> usize {
        let left = self.order.len() - self.next;
        if self.config.drop_last {
            left / self.config.batch_size
        } else {
            left.div_ceil(self.config.batch_size)
        }
    }
}

impl Iterator for EpochBatches<'_> {
    type Item = TrainBatch;

    fn next(&mut self) -> Option<TrainBatch> {
        if self.remaining() == 0 {
            return None;
        }
        let end = (self.next + self.config.batch_size).min(self.order.len());
        let indices = &self.order[self.next..end];
        self.next = end;
        Some(assemble(
            self.data,
            self.samples,
            indices,
            self.config.max_len,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (n, Some(n))
    }
}

impl ExactSizeIterator for EpochBatches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::read_s3rec;
    use crate::data::ReadOptions;

    fn data() -> Interactions {
        read_s3rec(
            "a 1 2 3 4 5 6\nb 7 8\nc 1 9 2\n".as_bytes(),
            "t",
            &ReadOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn rows_are_left_padded_newest_last() {
        let d = data();
        let samples = [
            Sample { user: 0, end: 5 },
            Sample { user: 1, end: 1 },
            Sample { user: 2, end: 2 },
        ];
        let b = assemble(&d, &samples, &[0, 1, 2], 3);
        // a: history 1..5 → last 3 = 3 4 5 (internal ids equal here).
        assert_eq!(b.seqs().items(), [3, 4, 5, 0, 0, 7, 0, 1, 9]);
        assert_eq!(b.seqs().lengths(), [3, 1, 2]);
        assert_eq!(b.targets(), [6, 8, 2]);
        assert_eq!((b.len(), b.seqs().max_len()), (3, 3));
    }

    #[test]
    fn epochs_are_deterministic() {
        let d = data();
        let samples: Vec<Sample> = (1..6).map(|end| Sample { user: 0, end }).collect();
        let config = BatchConfig {
            batch_size: 2,
            max_len: 4,
            seed: 11,
            ..BatchConfig::default()
        };
        let serial: Vec<TrainBatch> = EpochBatches::new(&d, &samples, &config, 3)
            .unwrap()
            .collect();
        assert_eq!(serial.len(), 3);
        let again: Vec<TrainBatch> = EpochBatches::new(&d, &samples, &config, 3)
            .unwrap()
            .collect();
        assert_eq!(serial, again);
        // Every sample appears exactly once per epoch.
        let mut targets: Vec<u32> = serial.iter().flat_map(|b| b.targets().to_vec()).collect();
        targets.sort();
        assert_eq!(targets, [2, 3, 4, 5, 6]);
        let drop = BatchConfig {
            drop_last: true,
            ..config
        };
        assert_eq!(EpochBatches::new(&d, &samples, &drop, 3).unwrap().len(), 2);
    }

    #[test]
    fn epoch_orders_are_seeded_permutations() {
        let a = epoch_order(100, true, 5, 0);
        assert_eq!(a, epoch_order(100, true, 5, 0));
        assert_ne!(a, epoch_order(100, true, 5, 1));
        assert_ne!(a, epoch_order(100, true, 6, 0));
        let mut sorted = a.clone();
        sorted.sort();
        let identity: Vec<usize> = (0..100).collect();
        assert_eq!(sorted, identity);
        assert_ne!(a, identity);
        assert_eq!(epoch_order(100, false, 5, 3), identity);
    }

    #[test]
    fn zero_sizes_are_refused() {
        let d = data();
        let config = BatchConfig {
            batch_size: 0,
            ..BatchConfig::default()
        };
        assert!(EpochBatches::new(&d, &[], &config, 0).is_err());
    }
}
