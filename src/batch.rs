//! The one batch type of the crate: left-padded item histories
//! ([`SeqBatch`]) and, for training and evaluation, one target per history
//! ([`TrainBatch`]). Both are validated once, when built — by
//! [`SeqBatch::new`] / [`TrainBatch::new`] from untrusted input, or by
//! [`data::assemble`](crate::data::assemble), which is valid by
//! construction — and the model only checks that a batch was validated for
//! its sizes.

use std::fmt;

/// A batch of B histories, each left-padded to `max_len` columns with item 0:
/// row b holds `lengths[b]` real items in its last columns, oldest first, so
/// the newest item is in the last column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqBatch {
    max_len: usize,
    n_items: usize,
    /// (B, max_len)
    items: Vec<u32>,
    /// (B)
    lengths: Vec<u32>,
}

/// A [`SeqBatch`] with one target item per history (ids 1..=N).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainBatch {
    seqs: SeqBatch,
    /// (B)
    targets: Vec<u32>,
}

/// Why a batch was rejected: the field, the batch row and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// The field that failed (`lengths`, `items`, `targets`, …).
    pub field: &'static str,
    /// The batch row it failed in.
    pub row: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid batch: `{}` of row {}: {}",
            self.field, self.row, self.reason
        )
    }
}

impl std::error::Error for BatchError {}

fn err(field: &'static str, row: usize, reason: impl Into<String>) -> BatchError {
    BatchError {
        field,
        row,
        reason: reason.into(),
    }
}

impl SeqBatch {
    /// Validates a left-padded batch: `items.len() == B·max_len`,
    /// `lengths[b] ≤ max_len`, real items in 1..=n_items, padding exactly the
    /// first `max_len − lengths[b]` columns. A length of 0 is allowed (no
    /// history: the encoder output is the zero vector).
    pub fn new(
        items: Vec<u32>,
        lengths: Vec<u32>,
        max_len: usize,
        n_items: usize,
    ) -> Result<Self, BatchError> {
        if max_len == 0 {
            return Err(err("max_len", 0, "must be ≥ 1"));
        }
        if items.len() != lengths.len() * max_len {
            return Err(err(
                "items",
                0,
                format!(
                    "{} values for {} rows of {max_len}",
                    items.len(),
                    lengths.len()
                ),
            ));
        }
        for (b, (row, &len)) in items.chunks_exact(max_len).zip(&lengths).enumerate() {
            let len = len as usize;
            if len > max_len {
                return Err(err("lengths", b, format!("{len} > max_len {max_len}")));
            }
            let (pad, real) = row.split_at(max_len - len);
            if let Some(c) = pad.iter().position(|&v| v != 0) {
                return Err(err(
                    "items",
                    b,
                    format!("column {c} should be padding (0), found {}", pad[c]),
                ));
            }
            if let Some(c) = real.iter().position(|&v| v == 0 || v as usize > n_items) {
                return Err(err(
                    "items",
                    b,
                    format!(
                        "item {} at column {} outside 1..={n_items}",
                        real[c],
                        max_len - len + c
                    ),
                ));
            }
        }
        Ok(SeqBatch {
            max_len,
            n_items,
            items,
            lengths,
        })
    }

    /// Builds a batch from raw histories (oldest first), keeping the most
    /// recent `max_len` items of each and left-padding.
    ///
    /// ```
    /// use dtrec::SeqBatch;
    /// let b = SeqBatch::from_histories(&[&[5, 6, 7][..], &[2][..]], 2, 10).unwrap();
    /// assert_eq!(b.items(), &[6, 7, 0, 2]);
    /// assert_eq!(b.lengths(), &[2, 1]);
    /// ```
    pub fn from_histories(
        histories: &[&[u32]],
        max_len: usize,
        n_items: usize,
    ) -> Result<Self, BatchError> {
        let mut items = vec![0u32; histories.len() * max_len];
        let mut lengths = Vec::with_capacity(histories.len());
        for (b, h) in histories.iter().enumerate() {
            let kept = &h[h.len().saturating_sub(max_len)..];
            items[(b + 1) * max_len - kept.len()..(b + 1) * max_len].copy_from_slice(kept);
            lengths.push(kept.len() as u32);
        }
        Self::new(items, lengths, max_len, n_items)
    }

    /// Number of histories B.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether the batch holds no history.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The longest history the batch was validated against, L.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The item-id bound the batch was validated against.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// (B, max_len) left-padded item ids.
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// (B) number of real items per row.
    pub fn lengths(&self) -> &[u32] {
        &self.lengths
    }

    /// The real items of row b, oldest first.
    pub fn history(&self, b: usize) -> &[u32] {
        let len = self.lengths[b] as usize;
        &self.items[(b + 1) * self.max_len - len..(b + 1) * self.max_len]
    }
}

impl TrainBatch {
    /// Validates `seqs` as in [`SeqBatch::new`] and one target per row in 1..=n_items.
    pub fn new(
        items: Vec<u32>,
        lengths: Vec<u32>,
        targets: Vec<u32>,
        max_len: usize,
        n_items: usize,
    ) -> Result<Self, BatchError> {
        let seqs = SeqBatch::new(items, lengths, max_len, n_items)?;
        Self::from_seqs(seqs, targets)
    }

    /// A batch the caller built valid by construction (the data module's
    /// assembly from a store whose ids are 1 … `n_items`); checked only in
    /// debug builds.
    pub(crate) fn from_valid(
        items: Vec<u32>,
        lengths: Vec<u32>,
        targets: Vec<u32>,
        max_len: usize,
        n_items: usize,
    ) -> Self {
        debug_assert_eq!(
            Self::new(
                items.clone(),
                lengths.clone(),
                targets.clone(),
                max_len,
                n_items
            ),
            Ok(TrainBatch {
                seqs: SeqBatch {
                    max_len,
                    n_items,
                    items: items.clone(),
                    lengths: lengths.clone(),
                },
                targets: targets.clone(),
            })
        );
        TrainBatch {
            seqs: SeqBatch {
                max_len,
                n_items,
                items,
                lengths,
            },
            targets,
        }
    }

    /// Adds targets to a validated batch.
    pub fn from_seqs(seqs: SeqBatch, targets: Vec<u32>) -> Result<Self, BatchError> {
        if targets.len() != seqs.len() {
            return Err(err(
                "targets",
                0,
                format!("{} targets for {} rows", targets.len(), seqs.len()),
            ));
        }
        if let Some(b) = targets
            .iter()
            .position(|&t| t == 0 || t as usize > seqs.n_items)
        {
            return Err(err(
                "targets",
                b,
                format!("item {} outside 1..={}", targets[b], seqs.n_items),
            ));
        }
        Ok(TrainBatch { seqs, targets })
    }

    /// The histories of the samples.
    pub fn seqs(&self) -> &SeqBatch {
        &self.seqs
    }

    /// (B) target item ids.
    pub fn targets(&self) -> &[u32] {
        &self.targets
    }

    /// Number of samples B.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_padding_ids_and_shapes() {
        assert!(SeqBatch::new(vec![0, 3, 4, 5], vec![1, 2], 2, 5).is_ok());
        assert_eq!(
            SeqBatch::new(vec![1, 3], vec![1], 2, 5).unwrap_err().field,
            "items"
        );
        assert_eq!(
            SeqBatch::new(vec![0, 6], vec![1], 2, 5).unwrap_err().field,
            "items"
        );
        assert_eq!(
            SeqBatch::new(vec![0, 0], vec![3], 2, 5).unwrap_err().field,
            "lengths"
        );
        assert_eq!(
            SeqBatch::new(vec![0, 0, 1], vec![1], 2, 5)
                .unwrap_err()
                .field,
            "items"
        );
        assert_eq!(
            TrainBatch::new(vec![0, 1], vec![1], vec![0], 2, 5)
                .unwrap_err()
                .field,
            "targets"
        );
        assert_eq!(
            TrainBatch::new(vec![0, 1], vec![1], vec![1, 2], 2, 5)
                .unwrap_err()
                .field,
            "targets"
        );
        let e = SeqBatch::new(vec![0, 0, 0, 9], vec![0, 1], 2, 5).unwrap_err();
        assert_eq!((e.field, e.row), ("items", 1));
    }
}
