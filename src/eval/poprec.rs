//! The popularity baseline: every user gets the same ranking, items ordered by
//! their number of training interactions.

use super::evaluator::BatchScorer;
use std::fmt;

/// Why a [`PopRec`] cannot be fitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PopRecError {
    /// `tie_break_key.len()` differs from the number of items.
    KeyLength {
        /// Number of items N.
        num_items: usize,
        /// Length of the tie-break key slice.
        keys: usize,
    },
    /// Sequence `sequence` holds id `item`, outside `1..=N`.
    ItemOutOfRange {
        /// Index of the sequence in the input.
        sequence: usize,
        /// The offending dense id.
        item: u32,
        /// Number of items N.
        num_items: usize,
    },
    /// More than 2^24 items: the rank-encoded f32 scores would no longer be exact.
    TooManyItems {
        /// Number of items N.
        num_items: usize,
    },
}

impl fmt::Display for PopRecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopRecError::KeyLength { num_items, keys } => write!(
                f,
                "PopRec: {keys} tie-break keys given for {num_items} items"
            ),
            PopRecError::ItemOutOfRange {
                sequence,
                item,
                num_items,
            } => write!(
                f,
                "PopRec: sequence {sequence} holds item id {item}, outside 1..={num_items}"
            ),
            PopRecError::TooManyItems { num_items } => write!(
                f,
                "PopRec: {num_items} items exceed the 2^24 that f32 scores encode exactly"
            ),
        }
    }
}

impl std::error::Error for PopRecError {}

/// Popularity recommender.
///
/// Items are ordered by training count, descending; equal counts are ordered
/// by a caller-given tie-break key, ascending (for ML-100K: the external item
/// id as an integer), then by dense id. The score of an item is its position
/// in that order counted from the bottom (`N` for the most popular, `1` for the
/// least), so the order is strict: no two items tie, and `f32` holds it exactly
/// (N ≤ 2^24).
///
/// ```
/// use dtrec::eval::PopRec;
/// // 3 items; item 2 seen twice, items 1 and 3 once each; keys break the 1-vs-3 tie.
/// let sequences: Vec<&[u32]> = vec![&[2, 1], &[2, 3]];
/// let pop = PopRec::fit(3, sequences, &[30, 20, 10]).unwrap();
/// assert_eq!(pop.counts(), &[1, 2, 1]);
/// assert_eq!(pop.scores(), &[1.0, 3.0, 2.0]); // item 3 (key 10) beats item 1 (key 30)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PopRec {
    /// `(N,)` training counts, index `j` ↔ dense id `j + 1`.
    counts: Vec<u64>,
    /// `(N,)` rank-encoded scores, index `j` ↔ dense id `j + 1`.
    scores: Vec<f32>,
}

impl PopRec {
    /// Counts every occurrence of every item in `sequences` (dense ids in
    /// `1..=num_items`; repeats count each time) and orders the items.
    ///
    /// `tie_break_key[j]` orders item `j + 1` among items with equal counts
    /// (smaller key first); any ordered type: integer external ids (`i64`,
    /// `u64`), strings, ….
    pub fn fit<'s, I, K>(
        num_items: usize,
        sequences: I,
        tie_break_key: &[K],
    ) -> Result<Self, PopRecError>
    where
        I: IntoIterator<Item = &'s [u32]>,
        K: Ord,
    {
        if num_items > 1 << 24 {
            return Err(PopRecError::TooManyItems { num_items });
        }
        if tie_break_key.len() != num_items {
            return Err(PopRecError::KeyLength {
                num_items,
                keys: tie_break_key.len(),
            });
        }
        let mut counts = vec![0u64; num_items];
        for (sequence, items) in sequences.into_iter().enumerate() {
            for &item in items {
                let col = (item as usize)
                    .checked_sub(1)
                    .filter(|&c| c < num_items)
                    .ok_or(PopRecError::ItemOutOfRange {
                        sequence,
                        item,
                        num_items,
                    })?;
                counts[col] += 1;
            }
        }
        // columns from most to least popular
        let mut order: Vec<usize> = (0..num_items).collect();
        order.sort_unstable_by(|&a, &b| {
            counts[b]
                .cmp(&counts[a])
                .then_with(|| tie_break_key[a].cmp(&tie_break_key[b]))
                .then_with(|| a.cmp(&b))
        });
        let mut scores = vec![0f32; num_items];
        for (position, &col) in order.iter().enumerate() {
            // exact: num_items − position ≤ 2^24
            scores[col] = (num_items - position) as f32;
        }
        Ok(Self { counts, scores })
    }

    /// `(N,)` training counts, index `j` ↔ dense id `j + 1`.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// `(N,)` scores (the same for every user), index `j` ↔ dense id `j + 1`.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl BatchScorer for PopRec {
    fn num_items(&self) -> usize {
        self.scores.len()
    }

    fn score_batch(&self, _sample_indices: &[usize], out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.scores.len()) {
            row.copy_from_slice(&self.scores);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Evaluator;

    #[test]
    fn counts_and_tie_break() {
        // 5 items; counts: 1→2, 2→0, 3→2, 4→1, 5→2
        let seqs: Vec<Vec<u32>> = vec![vec![1, 3, 5], vec![5, 1, 4], vec![3]];
        // keys: item 5 smallest, then 3, then 1 among the count-2 items
        let keys = [300, 1, 200, 50, 100];
        let pop = PopRec::fit(5, seqs.iter().map(|s| s.as_slice()), &keys).unwrap();
        assert_eq!(pop.counts(), &[2, 0, 2, 1, 2]);
        // order: 5 (2, key 100), 3 (2, key 200), 1 (2, key 300), 4 (1), 2 (0)
        assert_eq!(pop.scores(), &[3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn equal_keys_fall_back_to_dense_id() {
        let pop = PopRec::fit(3, Vec::<&[u32]>::new(), &[7u64, 7, 7]).unwrap();
        assert_eq!(pop.scores(), &[3.0, 2.0, 1.0]);
    }

    #[test]
    fn evaluation_with_history_exclusion_hand_computed() {
        // 6 items, popularity order from training: 1 (3×), 2 (2×), 3 (1×), then 4,5,6 (0×, keys 4<5<6)
        let train: Vec<Vec<u32>> = vec![vec![1, 2, 3], vec![1, 2], vec![1]];
        let keys = [1, 2, 3, 4, 5, 6];
        let pop = PopRec::fit(6, train.iter().map(|s| s.as_slice()), &keys).unwrap();
        // user 0: history {1, 2}, target 3 → after excluding 1,2: rank 1
        // user 1: history {}, target 5 → above it 1,2,3,4: rank 5
        // user 2: history {1, 4}, target 6 → above: 2,3,5: rank 4
        // user 3: history {6}, target 1 (also a history item elsewhere) → rank 1
        let histories: Vec<Vec<u32>> = vec![vec![1, 2], vec![], vec![1, 4], vec![6]];
        let targets = [3, 5, 6, 1];
        let eval = Evaluator {
            batch_size: 3,
            cutoffs: vec![1, 3, 5],
        };
        let report = eval
            .evaluate_excluding(&pop, &targets, |i| &histories[i])
            .unwrap();
        assert_eq!(report.ranks, vec![1, 5, 4, 1]);
        let m = &report.metrics;
        assert_eq!(m.hr(1), Some(0.5));
        assert_eq!(m.hr(3), Some(0.5));
        assert_eq!(m.hr(5), Some(1.0));
        let g = |r: f64| 1.0 / (r + 1.0).log2();
        assert_eq!(m.ndcg(5), Some((1.0 + g(5.0) + g(4.0) + 1.0) / 4.0));
        assert_eq!(m.mrr(5), Some((1.0 + 0.2 + 0.25 + 1.0) / 4.0));
        assert_eq!(m.samples_with_nan, 0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(
            PopRec::fit(2, vec![&[1u32, 3][..]], &[0u64, 0]),
            Err(PopRecError::ItemOutOfRange {
                sequence: 0,
                item: 3,
                num_items: 2
            })
        );
        assert_eq!(
            PopRec::fit(2, vec![&[0u32][..]], &[0u64, 0]),
            Err(PopRecError::ItemOutOfRange {
                sequence: 0,
                item: 0,
                num_items: 2
            })
        );
        assert_eq!(
            PopRec::fit(2, Vec::<&[u32]>::new(), &[0u64]),
            Err(PopRecError::KeyLength {
                num_items: 2,
                keys: 1
            })
        );
    }
}
