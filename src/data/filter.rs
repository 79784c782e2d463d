//! Filters over an [`Interactions`] store. Each returns a NEW store whose
//! user and item ids are re-densified keeping their relative order (hence
//! still in order of first appearance in the original input); users left
//! with no event disappear. Event order within a user never changes.

use std::collections::HashSet;

use super::error::DataError;
use super::store::Interactions;

/// Which occurrence of a repeated (user, item) pair [`Interactions::dedup`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicatePolicy {
    /// Keep the earliest event of each (user, item) pair.
    KeepFirst,
    /// Keep the latest event of each (user, item) pair.
    KeepLast,
}

impl Interactions {
    /// Keeps events whose rating is strictly greater than `threshold`.
    /// Errors if the store has no rating column.
    pub fn filter_rating_above(&self, threshold: f64) -> Result<Interactions, DataError> {
        let ratings = self.ratings().ok_or(DataError::MissingColumn {
            column: "rating",
            operation: "the rating filter",
        })?;
        let keep: Vec<bool> = ratings.iter().map(|&r| r > threshold).collect();
        Ok(self.retain_events(&keep))
    }

    /// Iterative k-core: repeatedly drops events of users with fewer than
    /// `min_user` events and of items with fewer than `min_item` events
    /// (counted among the surviving events) until both hold for every
    /// remaining user and item (a fixed point). `0` or `1` disables a side.
    pub fn k_core(&self, min_user: usize, min_item: usize) -> Interactions {
        let n = self.num_interactions();
        let mut keep = vec![true; n];
        let mut user_count: Vec<usize> = (0..self.num_users() as u32)
            .map(|u| self.user_len(u))
            .collect();
        let mut item_count = vec![0usize; self.num_items() + 1];
        for &i in self.items() {
            item_count[i as usize] += 1;
        }
        let user_of = self.event_users();
        loop {
            let mut changed = false;
            for e in 0..n {
                if !keep[e] {
                    continue;
                }
                let (u, i) = (user_of[e] as usize, self.items()[e] as usize);
                if user_count[u] < min_user || item_count[i] < min_item {
                    keep[e] = false;
                    changed = true;
                    user_count[u] -= 1;
                    item_count[i] -= 1;
                }
            }
            if !changed {
                break;
            }
        }
        self.retain_events(&keep)
    }

    /// Removes repeated (user, item) pairs, keeping one event per pair as
    /// `policy` says.
    pub fn dedup(&self, policy: DuplicatePolicy) -> Interactions {
        let mut keep = vec![false; self.num_interactions()];
        let mut seen = HashSet::new();
        for u in 0..self.num_users() as u32 {
            seen.clear();
            let range = self.user_range(u);
            let items = self.items();
            match policy {
                DuplicatePolicy::KeepFirst => {
                    for e in range {
                        keep[e] = seen.insert(items[e]);
                    }
                }
                DuplicatePolicy::KeepLast => {
                    for e in range.rev() {
                        keep[e] = seen.insert(items[e]);
                    }
                }
            }
        }
        self.retain_events(&keep)
    }

    /// Drops users with fewer than `min_events` events.
    pub fn min_history(&self, min_events: usize) -> Interactions {
        let mut keep = vec![false; self.num_interactions()];
        for u in 0..self.num_users() as u32 {
            if self.user_len(u) >= min_events {
                keep[self.user_range(u)].fill(true);
            }
        }
        self.retain_events(&keep)
    }

    /// Internal user id of every flat event (length = `num_interactions()`).
    pub fn event_users(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.num_interactions());
        for u in 0..self.num_users() {
            out.extend(std::iter::repeat_n(u as u32, self.user_len(u as u32)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::store::{InteractionsBuilder, TimeValue};

    fn store(events: &[(&str, &str, f64)]) -> Interactions {
        let mut b = InteractionsBuilder::new(true, true);
        for (t, &(u, i, r)) in events.iter().enumerate() {
            b.push(u, i, Some(TimeValue::Int(t as i64)), Some(r))
                .unwrap();
        }
        b.finish()
    }

    #[test]
    fn rating_threshold_is_strict() {
        let s = store(&[("a", "x", 3.0), ("a", "y", 4.0), ("b", "x", 3.5)]);
        let r = s.filter_rating_above(3.0).unwrap();
        assert_eq!(r.user_ids(), ["a", "b"]);
        // Ids keep their original relative order: x (seen first in the input) stays before y.
        assert_eq!(r.item_ids(), ["", "x", "y"]);
        assert_eq!(r.items(), [2, 1]);
        assert_eq!(r.ratings(), Some(&[4.0, 3.5][..]));
    }

    #[test]
    fn k_core_reaches_fixed_point() {
        // Dropping item z (1 event) leaves user c with 1 event, which then
        // drops item y to 1 event, which drops user b to 1 event... cascade.
        let s = store(&[
            ("a", "x", 1.0),
            ("a", "w", 1.0),
            ("d", "x", 1.0),
            ("d", "w", 1.0),
            ("b", "x", 1.0),
            ("b", "y", 1.0),
            ("c", "y", 1.0),
            ("c", "z", 1.0),
        ]);
        let k = s.k_core(2, 2);
        assert_eq!(k.user_ids(), ["a", "d"]);
        assert_eq!(k.item_ids(), ["", "x", "w"]);
        // Every survivor satisfies the core condition.
        let again = k.k_core(2, 2);
        assert_eq!(again, k);
    }

    #[test]
    fn dedup_policies() {
        let s = store(&[("a", "x", 1.0), ("a", "y", 2.0), ("a", "x", 3.0)]);
        assert_eq!(
            s.dedup(DuplicatePolicy::KeepFirst).ratings(),
            Some(&[1.0, 2.0][..])
        );
        assert_eq!(
            s.dedup(DuplicatePolicy::KeepLast).ratings(),
            Some(&[2.0, 3.0][..])
        );
    }

    #[test]
    fn min_history_drops_short_users() {
        let s = store(&[("a", "x", 1.0), ("b", "y", 1.0), ("b", "x", 1.0)]);
        let m = s.min_history(2);
        assert_eq!(m.user_ids(), ["b"]);
        assert_eq!(m.item_ids(), ["", "x", "y"]);
        assert_eq!(m.items(), [2, 1]);
    }
}
