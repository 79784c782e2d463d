//! Train / validation / test splits as index samples over the store's flat
//! buffer: a [`Sample`] `{ user, end }` means "history = the user's events
//! `0..end`, target = event `end`". Nothing is copied or padded here; the
//! [`batch`](super::batch) module cuts the last `L` history items when it
//! assembles a batch.

use std::fmt;

use super::error::DataError;
use super::store::Interactions;

/// One prediction task: user `user`'s events `0..end` → event `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sample {
    /// Internal user id.
    pub user: u32,
    /// Index of the target within the user's event array; `end ≥ 1`.
    pub end: u32,
}

impl Sample {
    /// The target item of this sample.
    pub fn target(&self, data: &Interactions) -> u32 {
        data.user_items(self.user)[self.end as usize]
    }

    /// The full history (oldest first) of this sample.
    pub fn history<'a>(&self, data: &'a Interactions) -> &'a [u32] {
        &data.user_items(self.user)[..self.end as usize]
    }
}

/// Samples of the three parts plus what was dropped on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Training samples, by user then `end`.
    pub train: Vec<Sample>,
    /// Validation samples, by user then `end`.
    pub valid: Vec<Sample>,
    /// Test samples, by user then `end`.
    pub test: Vec<Sample>,
    /// Counts of what was dropped.
    pub report: SplitReport,
}

/// What a split dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitReport {
    /// Users dropped entirely (leave-one-out: fewer than 3 events).
    pub dropped_users: usize,
    /// Candidate samples dropped for a history shorter than the minimum.
    pub dropped_short_history: usize,
    /// Validation/test samples dropped because their target or a history
    /// item never occurs in training (temporal split only).
    pub dropped_unseen_items: usize,
}

impl Split {
    /// How often each item is the target of a training sample, indexed by
    /// dense id (`counts[0]`, padding, is 0): the popularity a model could
    /// learn.
    ///
    /// ```
    /// use dtrec::data::{leave_one_out, read_s3rec, ReadOptions};
    /// let s = read_s3rec("1 5 6 7 8\n2 6 6 5 9\n".as_bytes(), "mem", &ReadOptions::default())?;
    /// let split = leave_one_out(&s)?;
    /// let counts = split.train_target_counts(&s);
    /// // training targets: user 1's second item (6), user 2's second (6)
    /// let six = s.item_ids().iter().position(|id| id == "6").unwrap();
    /// assert_eq!(counts[six], 2);
    /// assert_eq!(counts.iter().sum::<u64>(), 2);
    /// # Ok::<(), dtrec::data::DataError>(())
    /// ```
    pub fn train_target_counts(&self, data: &Interactions) -> Vec<u64> {
        let mut counts = vec![0u64; data.num_items() + 1];
        for sample in &self.train {
            counts[sample.target(data) as usize] += 1;
        }
        counts
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "train {} / valid {} / test {} samples (dropped: {} users, {} short histories, {} with unseen items)",
            self.train.len(),
            self.valid.len(),
            self.test.len(),
            self.report.dropped_users,
            self.report.dropped_short_history,
            self.report.dropped_unseen_items
        )
    }
}

fn check_user_len(data: &Interactions) -> Result<(), DataError> {
    if (0..data.num_users() as u32).any(|u| data.user_len(u) > u32::MAX as usize) {
        return Err(DataError::InvalidArgument {
            message: "a user has more than u32::MAX events".to_owned(),
        });
    }
    Ok(())
}

/// Leave-one-out (RecBole `LS valid_and_test`, the S3-Rec protocol): for a
/// user with `n ≥ 3` events, test = `{end: n−1}`, validation = `{end: n−2}`,
/// training = `{end: 1..=n−3}` (every earlier event with at least one item of
/// history). Users with fewer than 3 events are dropped and counted in
/// `report.dropped_users`.
///
/// ```
/// use dtrec::data::{leave_one_out, read_s3rec, ReadOptions, Sample};
/// let s = read_s3rec("1 5 6 7 8\n2 5 6\n".as_bytes(), "mem", &ReadOptions::default())?;
/// let split = leave_one_out(&s)?;
/// assert_eq!(split.train, [Sample { user: 0, end: 1 }]);
/// assert_eq!(split.valid, [Sample { user: 0, end: 2 }]);
/// assert_eq!(split.test, [Sample { user: 0, end: 3 }]);
/// assert_eq!(split.report.dropped_users, 1);
/// # Ok::<(), dtrec::data::DataError>(())
/// ```
pub fn leave_one_out(data: &Interactions) -> Result<Split, DataError> {
    check_user_len(data)?;
    let mut split = Split::default();
    split
        .train
        .reserve(data.num_interactions().saturating_sub(3 * data.num_users()));
    for u in 0..data.num_users() as u32 {
        let n = data.user_len(u) as u32;
        if n < 3 {
            split.report.dropped_users += 1;
            continue;
        }
        split
            .train
            .extend((1..n - 2).map(|end| Sample { user: u, end }));
        split.valid.push(Sample {
            user: u,
            end: n - 2,
        });
        split.test.push(Sample {
            user: u,
            end: n - 1,
        });
    }
    Ok(split)
}

/// Settings of the global temporal split.
#[derive(Clone, Debug, PartialEq)]
pub struct TemporalConfig {
    /// End of the training period as a fraction of the time range.
    pub train_until: f64,
    /// End of the validation period as a fraction of the time range.
    pub valid_until: f64,
    /// Minimum history length of a kept sample (ReaRec: 5).
    pub min_history: usize,
}

impl Default for TemporalConfig {
    fn default() -> Self {
        TemporalConfig {
            train_until: 0.8,
            valid_until: 0.9,
            min_history: 5,
        }
    }
}

/// Global temporal split (ReaRec), as interpreted here:
///
/// 1. `t_min`, `t_max` = smallest and largest timestamp over ALL events;
///    with `span = t_max − t_min`, the cuts are
///    `c1 = t_min + train_until·span` and `c2 = t_min + valid_until·span`
///    (in `f64`; integer timestamps are offset by `t_min` first, so they are
///    exact while the span is below 2^53).
/// 2. Each event with `end ≥ 1` is a candidate sample whose history is ALL of
///    the user's earlier events (whatever period they fall in). Its part is
///    given by its target's time `t`: training if `t < c1`, validation if
///    `c1 ≤ t < c2`, test if `t ≥ c2`.
/// 3. Candidates with fewer than `min_history` history items are dropped
///    (every part).
/// 4. "Occurs in training" = appears in at least one kept training sample,
///    as its target or anywhere in its history. A validation or test
///    sample whose target or any history item does not occur in training
///    is dropped.
///
/// Ties in time keep the store's stable order, so a target tied with its
/// predecessor still has it as history.
pub fn temporal_split(data: &Interactions, config: &TemporalConfig) -> Result<Split, DataError> {
    check_user_len(data)?;
    let TemporalConfig {
        train_until,
        valid_until,
        min_history,
    } = *config;
    if !(0.0 < train_until && train_until <= valid_until && valid_until <= 1.0) {
        return Err(DataError::InvalidArgument {
            message: format!(
                "temporal split fractions must satisfy 0 < train ({train_until}) ≤ valid ({valid_until}) ≤ 1"
            ),
        });
    }
    let times = data.timestamps().ok_or(DataError::MissingColumn {
        column: "timestamp",
        operation: "the temporal split",
    })?;
    let mut split = Split::default();
    if data.num_interactions() == 0 {
        return Ok(split);
    }
    // Offsets from t_min, exact for integer spans below 2^53.
    let offset: Box<dyn Fn(usize) -> f64> = match times {
        super::store::Timestamps::Int(t) => {
            let lo = *t.iter().min().unwrap_or(&0);
            Box::new(move |e| (t[e] as i128 - lo as i128) as f64)
        }
        super::store::Timestamps::Float(t) => {
            let lo = t.iter().copied().fold(f64::INFINITY, f64::min);
            Box::new(move |e| t[e] - lo)
        }
    };
    let span = (0..data.num_interactions())
        .map(&offset)
        .fold(0.0, f64::max);
    let (c1, c2) = (train_until * span, valid_until * span);
    let mut in_train = vec![false; data.num_items() + 1];
    let mut candidates_valid = Vec::new();
    let mut candidates_test = Vec::new();
    for u in 0..data.num_users() as u32 {
        let range = data.user_range(u);
        let items = data.user_items(u);
        for end in 1..range.len() {
            let t = offset(range.start + end);
            let sample = Sample {
                user: u,
                end: end as u32,
            };
            if end < min_history {
                split.report.dropped_short_history += 1;
                continue;
            }
            if t < c1 {
                for &i in &items[..=end] {
                    in_train[i as usize] = true;
                }
                split.train.push(sample);
            } else if t < c2 {
                candidates_valid.push(sample);
            } else {
                candidates_test.push(sample);
            }
        }
    }
    let seen = |s: &Sample| {
        data.user_items(s.user)[..=s.end as usize]
            .iter()
            .all(|&i| in_train[i as usize])
    };
    for (candidates, out) in [
        (candidates_valid, &mut split.valid),
        (candidates_test, &mut split.test),
    ] {
        for s in candidates {
            if seen(&s) {
                out.push(s);
            } else {
                split.report.dropped_unseen_items += 1;
            }
        }
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::store::{InteractionsBuilder, TimeValue};

    #[test]
    fn leave_one_out_counts() {
        let mut b = InteractionsBuilder::new(false, false);
        for (u, n) in [("a", 5), ("b", 2), ("c", 3)] {
            for k in 0..n {
                b.push(u, &k.to_string(), None, None).unwrap();
            }
        }
        let s = b.finish();
        let split = leave_one_out(&s).unwrap();
        assert_eq!(split.train.len(), 2); // a: ends 1, 2; c: none
        assert_eq!(
            split.valid,
            [Sample { user: 0, end: 3 }, Sample { user: 2, end: 1 }]
        );
        assert_eq!(
            split.test,
            [Sample { user: 0, end: 4 }, Sample { user: 2, end: 2 }]
        );
        assert_eq!(split.report.dropped_users, 1);
    }

    #[test]
    fn temporal_split_periods_and_filters() {
        // Times 0..=100; cuts at 80 and 90. min_history 2.
        let mut b = InteractionsBuilder::new(true, false);
        let events = [
            ("a", "1", 0),
            ("a", "2", 10),
            ("a", "3", 20),
            ("a", "4", 85), // valid, all seen (4 in c's training history) → kept
            ("a", "9", 95), // test, target 9 unseen → dropped
            ("b", "1", 30),
            ("b", "5", 40), // history 1 < 2 → dropped (5 is still seen: history below)
            ("b", "2", 50), // train
            ("b", "8", 100), // test, target 8 unseen → dropped
            ("c", "4", 60),
            ("c", "1", 70),
            ("c", "2", 79), // train
        ];
        for (u, i, t) in events {
            b.push(u, i, Some(TimeValue::Int(t)), None).unwrap();
        }
        let s = b.finish();
        let config = TemporalConfig {
            min_history: 2,
            ..TemporalConfig::default()
        };
        let split = temporal_split(&s, &config).unwrap();
        assert_eq!(
            split.train,
            [
                Sample { user: 0, end: 2 },
                Sample { user: 1, end: 2 },
                Sample { user: 2, end: 2 }
            ]
        );
        assert_eq!(split.valid, [Sample { user: 0, end: 3 }]);
        assert!(split.test.is_empty());
        assert_eq!(split.report.dropped_short_history, 3);
        assert_eq!(split.report.dropped_unseen_items, 2);
    }

    #[test]
    fn temporal_split_needs_timestamps_and_sane_fractions() {
        let mut b = InteractionsBuilder::new(false, false);
        b.push("a", "1", None, None).unwrap();
        let s = b.finish();
        assert!(matches!(
            temporal_split(&s, &TemporalConfig::default()),
            Err(DataError::MissingColumn {
                column: "timestamp",
                ..
            })
        ));
        let bad = TemporalConfig {
            train_until: 0.9,
            valid_until: 0.8,
            min_history: 5,
        };
        assert!(matches!(
            temporal_split(&s, &bad),
            Err(DataError::InvalidArgument { .. })
        ));
    }
}
