//! Serving helpers independent of the model type: external ↔ dense item ids
//! ([`ItemVocab`]), top-k of one score row ([`top_k_items`]) and of many users
//! in parallel ([`recommend_batch`]).
//!
//! A model serves `recommend(history, k)` as: map the history's external ids
//! to dense ids with [`ItemVocab::to_dense`], score all N items, then
//! [`top_k_items`] with the dense history as `exclude` (or `&[]` to allow
//! already-seen items).

use crate::eval::BatchScorer;
use dtrec_kernels::topk::top_k_excluding;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// Why a recommendation request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// An external item id is not in the vocabulary.
    UnknownItem {
        /// The external id.
        item: String,
    },
    /// The vocabulary lists an external id twice.
    DuplicateItem {
        /// The external id.
        item: String,
    },
    /// The vocabulary holds an empty external id.
    EmptyItem {
        /// Dense id of the empty entry.
        dense: u32,
    },
    /// The vocabulary has more items than dense `u32` ids can address.
    TooManyItems {
        /// Number of entries.
        len: usize,
    },
    /// A dense id to exclude is 0 (padding) or larger than N.
    ItemOutOfRange {
        /// The dense id.
        item: u32,
        /// Number of items N.
        num_items: usize,
    },
    /// The score row length differs from the vocabulary size.
    ScoreLength {
        /// Items in the vocabulary.
        vocab: usize,
        /// Scores in the row.
        scores: usize,
    },
    /// The model produced NaN scores (for user `user` of a batch, if any).
    NanScores {
        /// Row index in a batch request.
        user: Option<usize>,
        /// Number of NaN scores in the row.
        count: usize,
    },
    /// A batch size of 0.
    ZeroBatchSize,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::UnknownItem { item } => write!(f, "unknown item id {item:?}"),
            RequestError::DuplicateItem { item } => {
                write!(f, "item id {item:?} appears twice in the vocabulary")
            }
            RequestError::EmptyItem { dense } => {
                write!(f, "the vocabulary entry of dense id {dense} is empty")
            }
            RequestError::TooManyItems { len } => {
                write!(f, "{len} items exceed the u32 dense-id range")
            }
            RequestError::ItemOutOfRange { item, num_items } => write!(
                f,
                "dense item id {item} is outside 1..={num_items} (0 is padding)"
            ),
            RequestError::ScoreLength { vocab, scores } => write!(
                f,
                "score row has {scores} entries but the vocabulary {vocab} items"
            ),
            RequestError::NanScores { user, count } => match user {
                Some(u) => write!(f, "the model gave {count} NaN scores for user {u}"),
                None => write!(f, "the model gave {count} NaN scores"),
            },
            RequestError::ZeroBatchSize => write!(f, "batch size is 0"),
        }
    }
}

impl std::error::Error for RequestError {}

/// The item vocabulary: dense id `i + 1` ↔ external id `external[i]`
/// (dense id 0 is padding and has no external id).
///
/// ```
/// use dtrec::serve::ItemVocab;
/// let vocab = ItemVocab::new(vec!["242".into(), "302".into()]).unwrap();
/// assert_eq!(vocab.dense_id("302"), Some(2));
/// assert_eq!(vocab.external_id(1), Some("242"));
/// assert_eq!(vocab.external_id(0), None);
/// assert!(vocab.to_dense(&["242", "999"]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemVocab {
    external: Vec<String>,
    dense: HashMap<String, u32>,
}

impl ItemVocab {
    /// Builds the vocabulary; ids must be non-empty and unique.
    pub fn new(external: Vec<String>) -> Result<Self, RequestError> {
        if external.len() >= u32::MAX as usize {
            return Err(RequestError::TooManyItems {
                len: external.len(),
            });
        }
        let mut dense = HashMap::with_capacity(external.len());
        for (i, id) in external.iter().enumerate() {
            // i + 1 < u32::MAX, checked above
            let dense_id = i as u32 + 1;
            if id.is_empty() {
                return Err(RequestError::EmptyItem { dense: dense_id });
            }
            if dense.insert(id.clone(), dense_id).is_some() {
                return Err(RequestError::DuplicateItem { item: id.clone() });
            }
        }
        Ok(Self { external, dense })
    }

    /// Number of items N.
    pub fn len(&self) -> usize {
        self.external.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.external.is_empty()
    }

    /// All external ids, index `i` ↔ dense id `i + 1`.
    pub fn external_ids(&self) -> &[String] {
        &self.external
    }

    /// Dense id of external id `item`.
    pub fn dense_id(&self, item: &str) -> Option<u32> {
        self.dense.get(item).copied()
    }

    /// External id of dense id `dense` (`None` for 0 and ids > N).
    pub fn external_id(&self, dense: u32) -> Option<&str> {
        let i = (dense as usize).checked_sub(1)?;
        self.external.get(i).map(String::as_str)
    }

    /// Dense ids of `items`, in order; an unknown id is an error.
    pub fn to_dense<S: AsRef<str>>(&self, items: &[S]) -> Result<Vec<u32>, RequestError> {
        items
            .iter()
            .map(|s| {
                let s = s.as_ref();
                self.dense_id(s).ok_or_else(|| RequestError::UnknownItem {
                    item: s.to_string(),
                })
            })
            .collect()
    }
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// External item id.
    pub item: String,
    /// The model's score.
    pub score: f32,
}

/// The `k` best items of one score row, best first, skipping the dense ids in
/// `exclude` (e.g. the user's history; any order, duplicates allowed).
///
/// * `scores`: `(N,)`, column `j` ↔ dense id `j + 1`, N = `vocab.len()`;
/// * ties go to the smaller dense id (see `dtrec_kernels::topk`);
/// * returns min(k, N − #distinct excluded) items;
/// * a row holding NaN is an error, never a silently odd ranking.
///
/// ```
/// use dtrec::serve::{top_k_items, ItemVocab};
/// let vocab = ItemVocab::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
/// let recs = top_k_items(&vocab, &[0.1, 0.9, 0.5], 2, &[2]).unwrap();
/// let items: Vec<&str> = recs.iter().map(|r| r.item.as_str()).collect();
/// assert_eq!(items, ["c", "a"]);
/// ```
pub fn top_k_items(
    vocab: &ItemVocab,
    scores: &[f32],
    k: usize,
    exclude: &[u32],
) -> Result<Vec<Recommendation>, RequestError> {
    let mut columns = Vec::with_capacity(exclude.len());
    let mut top = Vec::with_capacity(k.min(scores.len()));
    top_k_row(vocab, scores, k, exclude, &mut columns, &mut top).map_err(|e| match e {
        RequestError::NanScores { count, .. } => RequestError::NanScores { user: None, count },
        other => other,
    })
}

/// [`top_k_items`] with caller-provided scratch buffers.
fn top_k_row(
    vocab: &ItemVocab,
    scores: &[f32],
    k: usize,
    exclude: &[u32],
    columns: &mut Vec<u32>,
    top: &mut Vec<(u32, f32)>,
) -> Result<Vec<Recommendation>, RequestError> {
    let num_items = vocab.len();
    if scores.len() != num_items {
        return Err(RequestError::ScoreLength {
            vocab: num_items,
            scores: scores.len(),
        });
    }
    let nan_count = scores.iter().filter(|s| s.is_nan()).count();
    if nan_count > 0 {
        return Err(RequestError::NanScores {
            user: None,
            count: nan_count,
        });
    }
    columns.clear();
    for &item in exclude {
        if item == 0 || item as usize > num_items {
            return Err(RequestError::ItemOutOfRange { item, num_items });
        }
        columns.push(item - 1);
    }
    top_k_excluding(scores, k, columns, top);
    Ok(top
        .iter()
        .map(|&(col, score)| Recommendation {
            // col < N = external.len(), by top_k's contract
            item: vocab.external[col as usize].clone(),
            score,
        })
        .collect())
}

/// Reusable buffers of one scoring batch: scores, user indices, excluded
/// columns and the top-k heap.
type BatchScratch = (Vec<f32>, Vec<usize>, Vec<u32>, Vec<(u32, f32)>);

/// Top-k lists for `num_users` users at once: `scorer` fills one score row
/// per user (row `b` of a batch ↔ user `users[b]`, as in evaluation), rows
/// are scored in parallel batches of `batch_size`, and `exclude(u)` gives
/// user u's dense ids to skip (`|_| &[]` for none). Results are in user order
/// and do not depend on the number of threads.
///
/// ```
/// use dtrec::eval::ScoreFn;
/// use dtrec::serve::{recommend_batch, ItemVocab};
/// let vocab = ItemVocab::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
/// // user u scores item j + 1 as (j + u) mod 3
/// let scorer = ScoreFn::new(3, |users: &[usize], out: &mut [f32]| {
///     for (b, &u) in users.iter().enumerate() {
///         for j in 0..3 {
///             out[b * 3 + j] = ((j + u) % 3) as f32;
///         }
///     }
/// });
/// let history = [vec![3], vec![]];
/// let recs = recommend_batch(&scorer, &vocab, 2, 1, 8, |u| &history[u]).unwrap();
/// assert_eq!(recs[0][0].item, "b"); // user 0 prefers c, which is excluded
/// assert_eq!(recs[1][0].item, "b"); // user 1: scores 1, 2, 0
/// ```
pub fn recommend_batch<'x, S, X>(
    scorer: &S,
    vocab: &ItemVocab,
    num_users: usize,
    k: usize,
    batch_size: usize,
    exclude: X,
) -> Result<Vec<Vec<Recommendation>>, RequestError>
where
    S: BatchScorer + ?Sized,
    X: Fn(usize) -> &'x [u32] + Sync,
{
    if batch_size == 0 {
        return Err(RequestError::ZeroBatchSize);
    }
    let num_items = scorer.num_items();
    if num_items != vocab.len() {
        return Err(RequestError::ScoreLength {
            vocab: vocab.len(),
            scores: num_items,
        });
    }
    if num_items == 0 {
        return Ok(vec![Vec::new(); num_users]);
    }
    let run_batch = |(scores, users, columns, top): &mut BatchScratch, start: usize| {
        let end = (start + batch_size).min(num_users);
        users.clear();
        users.extend(start..end);
        scores.clear();
        scores.resize(users.len() * num_items, f32::NAN);
        scorer.score_batch(users, scores);
        let mut out = Vec::with_capacity(users.len());
        for (b, row) in scores.chunks_exact(num_items).enumerate() {
            let user = start + b;
            let recs =
                top_k_row(vocab, row, k, exclude(user), columns, top).map_err(|e| match e {
                    RequestError::NanScores { count, .. } => RequestError::NanScores {
                        user: Some(user),
                        count,
                    },
                    other => other,
                })?;
            out.push(recs);
        }
        Ok(out)
    };
    let starts: Vec<usize> = (0..num_users).step_by(batch_size).collect();
    // One batch (e.g. a single user) runs on the calling thread: handing it
    // to the rayon pool would only add a cross-thread wake-up to its latency.
    let batches: Vec<Result<Vec<Vec<Recommendation>>, RequestError>> = if starts.len() == 1 {
        vec![run_batch(&mut BatchScratch::default(), 0)]
    } else {
        starts
            .into_par_iter()
            .map_init(BatchScratch::default, run_batch)
            .collect()
    };
    // the first error in user order, whatever thread found it
    let mut all = Vec::with_capacity(num_users);
    for batch in batches {
        all.extend(batch?);
    }
    Ok(all)
}
