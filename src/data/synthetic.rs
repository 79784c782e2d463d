//! The built-in synthetic dataset: sequences with a known structure, so the
//! crate trains and demonstrates adaptive reasoning without any download.
//!
//! # Generative process
//!
//! * **Item tree.** `C` categories, each with `S` sub-categories, each with
//!   `M` items (default 10 × 5 × 40 = 2,000). Inside a sub-category the items
//!   form a *chain* `0 → 1 → … → M−1 → 0` and have Zipf(1) popularity by
//!   chain position (position 0 most popular).
//! * **Interests.** An interest is a sub-category plus a cursor on its chain.
//!   Sub-categories are chosen with Zipf(1) popularity over the `C·S`
//!   sub-categories (a seeded random ranking). A step in an interest emits:
//!   with probability `follow_prob` the chain successor of the cursor (the
//!   "easy", learnable signal); else, with probability `sibling_prob`, a
//!   popularity-drawn item of a sibling sub-category of the same category
//!   (category-level signal, cursor unchanged); else a popularity-drawn item
//!   of the interest's own sub-category, which moves the cursor. The first
//!   step of an interest draws its cursor by popularity.
//! * **Users.** A fraction `complex_fraction` of users is *complex*: they
//!   hold `complex_interests` (uniform in the range) interests in distinct
//!   sub-categories with random mixture weights (each ≥ 0.5/k before
//!   normalising) and pick an interest per step from those weights, so their
//!   next item depends on which interest was visited last and where its
//!   cursor stands: the "hard" case. The other users are *simple*: one
//!   interest. Every user, at each step with probability `noise_prob`, emits
//!   a globally popularity-drawn item instead (cursor unchanged).
//! * **Lengths and times.** Sequence lengths are uniform in
//!   `[min_len, 2·mean_len − min_len]`. Timestamps are integers (seconds)
//!   on a one-year clock: a user waits 60 s to 3 days between events, and
//!   the whole sequence is shifted to start uniformly at random among the
//!   starts that end it within the year. Events are thus spread over the
//!   year, so the global temporal split has data in every period.
//!
//! External ids are strings: users `"u0"`, `"u1"`, …; item `"g+1"` for tree
//! index `g = (c·S + s)·M + p`. Internal ids follow first appearance as for
//! any input; items never emitted have no internal id.

use std::fmt;

use super::error::DataError;
use super::rng::SplitMix64;
use super::store::{Interactions, InteractionsBuilder, TimeValue};

/// Whether a synthetic user follows one interest or several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserKind {
    /// One interest: the next item is usually the chain successor of the last.
    Simple,
    /// Several interleaved interests: harder to predict.
    Complex,
}

impl fmt::Display for UserKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserKind::Simple => "simple",
            UserKind::Complex => "complex",
        })
    }
}

/// Parameters of the synthetic dataset. The defaults give ~3,000 users,
/// ~2,000 items and mean length 25 (≈ 75,000 events).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Seed; same config → identical dataset.
    pub seed: u64,
    /// Number of users.
    pub num_users: usize,
    /// Top-level categories `C`.
    pub num_categories: usize,
    /// Sub-categories per category `S`.
    pub subcategories_per_category: usize,
    /// Items per sub-category `M`.
    pub items_per_subcategory: usize,
    /// Mean sequence length.
    pub mean_len: usize,
    /// Minimum sequence length (≤ `mean_len`).
    pub min_len: usize,
    /// Fraction of complex users, in `[0, 1]`.
    pub complex_fraction: f64,
    /// Number of interests of a complex user: uniform in this inclusive range.
    pub complex_interests: (usize, usize),
    /// Probability that an interest step emits the chain successor.
    pub follow_prob: f64,
    /// Probability (given not following) of a sibling sub-category's item.
    pub sibling_prob: f64,
    /// Probability of a globally popular item instead of an interest step.
    pub noise_prob: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 2024,
            num_users: 3000,
            num_categories: 10,
            subcategories_per_category: 5,
            items_per_subcategory: 40,
            mean_len: 25,
            min_len: 10,
            complex_fraction: 0.5,
            complex_interests: (2, 4),
            follow_prob: 0.8,
            sibling_prob: 0.3,
            noise_prob: 0.05,
        }
    }
}

/// A generated dataset with its ground truth.
#[derive(Clone, Debug)]
pub struct SyntheticDataset {
    /// The interactions (timestamps included, no ratings).
    pub interactions: Interactions,
    /// Kind of each user, by internal user id.
    pub user_kind: Vec<UserKind>,
    /// Number of interests of each user, by internal user id.
    pub user_interests: Vec<usize>,
    /// Category of each internal item id; entry 0 (padding) is `u32::MAX`.
    pub item_category: Vec<u32>,
    /// Global sub-category index `c·S + s` of each internal item id; entry 0 is `u32::MAX`.
    pub item_subcategory: Vec<u32>,
}

/// Length of the synthetic clock in seconds.
const YEAR: i64 = 365 * 86_400;

/// Zipf(1) weights `1/(k+1)` for `n` ranks.
fn zipf(n: usize) -> Vec<f64> {
    (0..n).map(|k| 1.0 / (k as f64 + 1.0)).collect()
}

struct Interest {
    subcategory: usize,
    cursor: Option<usize>,
}

impl SyntheticConfig {
    fn validate(&self) -> Result<(), DataError> {
        let prob = |p: f64| (0.0..=1.0).contains(&p);
        let subcats = self.num_categories * self.subcategories_per_category;
        let (lo, hi) = self.complex_interests;
        let ok = self.num_users > 0
            && self.num_categories > 0
            && self.subcategories_per_category > 0
            && self.items_per_subcategory > 0
            && subcats
                .checked_mul(self.items_per_subcategory)
                .is_some_and(|n| n < u32::MAX as usize)
            && self.min_len >= 1
            && self.min_len <= self.mean_len
            && prob(self.complex_fraction)
            && prob(self.follow_prob)
            && prob(self.sibling_prob)
            && prob(self.noise_prob)
            && 1 <= lo
            && lo <= hi
            && hi <= subcats;
        if ok {
            Ok(())
        } else {
            Err(DataError::InvalidArgument {
                message: format!("invalid synthetic dataset config: {self:?}"),
            })
        }
    }

    /// Generates the dataset. Errors only on an invalid config.
    ///
    /// ```
    /// use dtrec::data::synthetic::{SyntheticConfig, UserKind};
    /// let config = SyntheticConfig { num_users: 50, ..SyntheticConfig::default() };
    /// let d = config.generate()?;
    /// assert_eq!(d.interactions.num_users(), 50);
    /// assert!(d.user_kind.contains(&UserKind::Complex));
    /// # Ok::<(), dtrec::data::DataError>(())
    /// ```
    pub fn generate(&self) -> Result<SyntheticDataset, DataError> {
        self.validate()?;
        let s_per_c = self.subcategories_per_category;
        let m = self.items_per_subcategory;
        let num_subcats = self.num_categories * s_per_c;
        let mut tree_rng = SplitMix64::with_stream(self.seed, u64::MAX);
        // Popularity ranking of sub-categories: a seeded permutation.
        let mut subcat_rank: Vec<usize> = (0..num_subcats).collect();
        for k in (1..num_subcats).rev() {
            let j = tree_rng.below(k as u64 + 1) as usize;
            subcat_rank.swap(k, j);
        }
        let rank_weight = zipf(num_subcats);
        let mut subcat_weight = vec![0.0; num_subcats];
        for (rank, &sc) in subcat_rank.iter().enumerate() {
            subcat_weight[sc] = rank_weight[rank];
        }
        let item_weight = zipf(m);
        let global_item = |sc: usize, pos: usize| sc * m + pos;

        let mut builder = InteractionsBuilder::new(true, false);
        let mut kinds = Vec::with_capacity(self.num_users);
        let mut interest_counts = Vec::with_capacity(self.num_users);
        let span = 2 * self.mean_len - self.min_len;
        for user in 0..self.num_users {
            let mut rng = SplitMix64::with_stream(self.seed, user as u64);
            let complex = rng.next_f64() < self.complex_fraction;
            let k = if complex {
                let (lo, hi) = self.complex_interests;
                lo + rng.below((hi - lo + 1) as u64) as usize
            } else {
                1
            };
            let mut interests: Vec<Interest> = Vec::with_capacity(k);
            let mut weights = Vec::with_capacity(k);
            while interests.len() < k {
                let sc = rng.weighted(&subcat_weight);
                if interests.iter().all(|i| i.subcategory != sc) {
                    interests.push(Interest {
                        subcategory: sc,
                        cursor: None,
                    });
                    weights.push(0.5 / k as f64 + rng.next_f64());
                }
            }
            let len = self.min_len + rng.below((span - self.min_len + 1) as u64) as usize;
            let name = format!("u{user}");
            let gaps: Vec<i64> = (0..len)
                .map(|_| 60 + rng.below(3 * 86_400) as i64)
                .collect();
            let duration: i64 = gaps.iter().sum();
            let mut time = rng.below((YEAR - duration).max(1) as u64) as i64;
            for gap in gaps {
                let item = if rng.next_f64() < self.noise_prob {
                    let sc = rng.weighted(&subcat_weight);
                    global_item(sc, rng.weighted(&item_weight))
                } else {
                    let interest = &mut interests[rng.weighted(&weights)];
                    let sc = interest.subcategory;
                    match interest.cursor {
                        Some(pos) if rng.next_f64() < self.follow_prob => {
                            let next = (pos + 1) % m;
                            interest.cursor = Some(next);
                            global_item(sc, next)
                        }
                        Some(_) if s_per_c > 1 && rng.next_f64() < self.sibling_prob => {
                            let category = sc / s_per_c;
                            let offset = 1 + rng.below(s_per_c as u64 - 1) as usize;
                            let sibling = category * s_per_c + (sc % s_per_c + offset) % s_per_c;
                            global_item(sibling, rng.weighted(&item_weight))
                        }
                        _ => {
                            let pos = rng.weighted(&item_weight);
                            interest.cursor = Some(pos);
                            global_item(sc, pos)
                        }
                    }
                };
                time += gap;
                builder
                    .push(
                        &name,
                        &(item + 1).to_string(),
                        Some(TimeValue::Int(time)),
                        None,
                    )
                    .map_err(|e| DataError::InvalidArgument {
                        message: format!("synthetic generation: {e}"),
                    })?;
            }
            kinds.push(if complex {
                UserKind::Complex
            } else {
                UserKind::Simple
            });
            interest_counts.push(k);
        }
        let interactions = builder.finish();
        let mut item_category = vec![u32::MAX; interactions.num_items() + 1];
        let mut item_subcategory = vec![u32::MAX; interactions.num_items() + 1];
        for i in 1..=interactions.num_items() as u32 {
            let g = interactions.item_id_int(i).map_or(0, |g| g as usize - 1);
            item_subcategory[i as usize] = (g / m) as u32;
            item_category[i as usize] = (g / m / s_per_c) as u32;
        }
        Ok(SyntheticDataset {
            interactions,
            user_kind: kinds,
            user_interests: interest_counts,
            item_category,
            item_subcategory,
        })
    }
}

/// The default synthetic dataset ([`SyntheticConfig::default`]).
pub fn default_dataset() -> SyntheticDataset {
    SyntheticConfig::default()
        .generate()
        .expect("the default synthetic config is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_sensitive() {
        let small = SyntheticConfig {
            num_users: 200,
            ..SyntheticConfig::default()
        };
        let a = small.generate().unwrap();
        let b = small.generate().unwrap();
        assert_eq!(a.interactions, b.interactions);
        assert_eq!(a.user_kind, b.user_kind);
        let c = SyntheticConfig { seed: 1, ..small }.generate().unwrap();
        assert_ne!(a.interactions, c.interactions);
    }

    #[test]
    fn simple_users_mostly_follow_the_chain() {
        let d = default_dataset();
        let s = &d.interactions;
        let m = SyntheticConfig::default().items_per_subcategory as i64;
        let mut follow = [0usize; 2];
        let mut total = [0usize; 2];
        for u in 0..s.num_users() as u32 {
            let kind = (d.user_kind[u as usize] == UserKind::Complex) as usize;
            let items = s.user_items(u);
            for w in items.windows(2) {
                let (a, b) = (
                    s.item_id_int(w[0]).unwrap() - 1,
                    s.item_id_int(w[1]).unwrap() - 1,
                );
                total[kind] += 1;
                if a / m == b / m && (a % m + 1) % m == b % m {
                    follow[kind] += 1;
                }
            }
        }
        let simple = follow[0] as f64 / total[0] as f64;
        let complex = follow[1] as f64 / total[1] as f64;
        // Simple: ≈ 0.95 · 0.8 ≈ 0.76 (a step after noise breaks the pair);
        // complex: the immediately preceding item is often another interest.
        assert!(simple > 0.6, "simple follow rate {simple}");
        assert!(
            complex < simple - 0.2,
            "complex {complex} vs simple {simple}"
        );
    }

    #[test]
    fn default_size_and_tree_labels() {
        let d = default_dataset();
        let s = &d.interactions;
        assert_eq!(s.num_users(), 3000);
        assert!(
            s.num_items() > 1500 && s.num_items() <= 2000,
            "{}",
            s.num_items()
        );
        let mean = s.num_interactions() as f64 / s.num_users() as f64;
        assert!((23.0..27.0).contains(&mean), "mean length {mean}");
        for i in 1..=s.num_items() {
            assert!(d.item_category[i] < 10);
            assert_eq!(d.item_subcategory[i] / 5, d.item_category[i]);
        }
        let complex = d
            .user_kind
            .iter()
            .filter(|&&k| k == UserKind::Complex)
            .count();
        assert!((1300..1700).contains(&complex), "{complex}");
    }

    #[test]
    fn temporal_split_has_data_in_every_period() {
        let d = default_dataset();
        let split = crate::data::temporal_split(&d.interactions, &Default::default()).unwrap();
        let total = (split.train.len() + split.valid.len() + split.test.len()) as f64;
        // Events are spread over the year: each 10% period holds ~5-10% of samples.
        assert!(split.valid.len() as f64 > 0.05 * total, "{split}");
        assert!(split.test.len() as f64 > 0.04 * total, "{split}");
        assert!(split.train.len() as f64 > 0.7 * total, "{split}");
    }

    #[test]
    fn invalid_config_is_an_error() {
        let bad = SyntheticConfig {
            min_len: 30,
            ..SyntheticConfig::default()
        };
        assert!(bad.generate().is_err());
    }
}
