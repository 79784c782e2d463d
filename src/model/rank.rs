//! The rank of a target item in one full score row.
//!
//! Convention (method.md §4): a score row holds one score per item, column
//! `j` ↔ dense item id `j + 1` (id 0 is padding and is never ranked). The rank
//! of the target `y` is
//!
//! ```text
//! rank = 1 + #{ v ≠ y, v not excluded : beats(s_v, s_y) }
//! beats(s_v, s_y) = s_y is NaN  ∨  s_v is NaN  ∨  s_v ≥ s_y
//! ```
//!
//! * **Ties count against the model**: an item scored exactly like the target
//!   is ranked above it, so a constant score row ranks every target last.
//! * **NaN never helps the model**: a NaN target score gives the worst rank
//!   (every other candidate beats it); a NaN competitor beats the target.
//!   A plain `s_v >= s_y` would do the opposite (every comparison with NaN is
//!   false) and turn a broken model into a perfect one.
//! * **Exclusions** (e.g. the user's history) remove items from the count; the
//!   target itself is never removed, and an item listed twice is removed once.

/// Whether candidate score `s_v` is ranked at or above target score `s_y`
/// (ties and NaNs count against the model, see the module docs).
#[inline]
pub fn beats(s_v: f32, s_y: f32) -> bool {
    s_y.is_nan() || s_v.is_nan() || s_v >= s_y
}

/// Why a rank cannot be computed: an item id outside `1..=num_items`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RankError {
    /// The target id is 0 (padding) or larger than the number of items.
    TargetOutOfRange {
        /// The offending target id.
        target: u32,
        /// Number of items N (ids are `1..=N`).
        num_items: usize,
    },
    /// An excluded id is 0 (padding) or larger than the number of items.
    ExcludedOutOfRange {
        /// The offending excluded id.
        item: u32,
        /// Number of items N (ids are `1..=N`).
        num_items: usize,
    },
}

impl std::fmt::Display for RankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RankError::TargetOutOfRange { target, num_items } => write!(
                f,
                "target item id {target} is outside 1..={num_items} (0 is padding)"
            ),
            RankError::ExcludedOutOfRange { item, num_items } => write!(
                f,
                "excluded item id {item} is outside 1..={num_items} (0 is padding)"
            ),
        }
    }
}

impl std::error::Error for RankError {}

/// The 1-based rank of item `target` in `scores`, not counting the items in
/// `excluded` (other than the target itself).
///
/// * `scores`: `(N,)`, column `j` ↔ item id `j + 1`;
/// * `target`: dense item id in `1..=N`;
/// * `excluded`: dense item ids in `1..=N`, any order, duplicates allowed;
/// * `scratch`: reused buffer for de-duplicating `excluded` (contents ignored).
///
/// The result is in `1..=N − #distinct(excluded \ {target})`.
///
/// ```
/// use dtrec::eval::target_rank;
/// let scores = [0.5, 0.9, 0.5, f32::NAN];
/// let mut scratch = Vec::new();
/// // Item 1 (0.5): item 2 is higher, item 3 ties (counts against), item 4 is NaN (counts against).
/// assert_eq!(target_rank(&scores, 1, &[], &mut scratch).unwrap(), 4);
/// // Excluding items 2 and 4 (history) removes them from the count.
/// assert_eq!(target_rank(&scores, 1, &[2, 4, 2], &mut scratch).unwrap(), 2);
/// ```
pub fn target_rank(
    scores: &[f32],
    target: u32,
    excluded: &[u32],
    scratch: &mut Vec<u32>,
) -> Result<u32, RankError> {
    rank_and_nan(scores, target, excluded, scratch).map(|(rank, _)| rank)
}

/// [`target_rank`] plus whether the row holds any NaN, in one pass over the row.
pub(crate) fn rank_and_nan(
    scores: &[f32],
    target: u32,
    excluded: &[u32],
    scratch: &mut Vec<u32>,
) -> Result<(u32, bool), RankError> {
    let num_items = scores.len();
    let target_col =
        column_of(target, num_items).ok_or(RankError::TargetOutOfRange { target, num_items })?;
    let s_y = scores[target_col];

    // pass 1 over the row: competitors that beat the target, and NaN presence.
    // For a non-NaN target, beats(s_v, s_y) = s_v is NaN ∨ s_v ≥ s_y = ¬(s_v < s_y):
    // one comparison per item and no early exit, so the loop vectorises (this
    // pass runs over N × samples scores in every evaluation).
    let mut at_or_above = 0usize;
    let mut has_nan = false;
    // The negated comparison is the point: it is true for NaN competitors.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    for &s_v in scores {
        at_or_above += usize::from(!(s_v < s_y));
        has_nan |= s_v.is_nan();
    }
    // A NaN target is beaten by every item. Either way the target counted
    // itself exactly once (¬(s_y < s_y) is true, also for NaN): take it back.
    let mut above = if s_y.is_nan() { num_items } else { at_or_above } - 1;

    // pass 2: take back distinct excluded competitors that were counted
    scratch.clear();
    scratch.extend_from_slice(excluded);
    scratch.sort_unstable();
    scratch.dedup();
    for &item in scratch.iter() {
        let col =
            column_of(item, num_items).ok_or(RankError::ExcludedOutOfRange { item, num_items })?;
        if col != target_col && beats(scores[col], s_y) {
            above -= 1;
        }
    }
    // `above` < N ≤ u32::MAX is guaranteed by callers holding item ids in u32;
    // saturate rather than wrap if a row were ever longer.
    Ok((u32::try_from(above + 1).unwrap_or(u32::MAX), has_nan))
}

/// Column of dense item id `item` in a row of `num_items` scores, if in range.
#[inline]
fn column_of(item: u32, num_items: usize) -> Option<usize> {
    let col = (item as usize).checked_sub(1)?;
    (col < num_items).then_some(col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(scores: &[f32], target: u32, excluded: &[u32]) -> u32 {
        target_rank(scores, target, excluded, &mut Vec::new()).unwrap()
    }

    #[test]
    fn strict_order_gives_position() {
        let scores = [0.1, 0.4, 0.3, 0.2];
        assert_eq!(rank(&scores, 2, &[]), 1);
        assert_eq!(rank(&scores, 3, &[]), 2);
        assert_eq!(rank(&scores, 4, &[]), 3);
        assert_eq!(rank(&scores, 1, &[]), 4);
    }

    #[test]
    fn ties_count_against_the_model() {
        let scores = [1.0; 5];
        for target in 1..=5 {
            assert_eq!(rank(&scores, target, &[]), 5);
        }
        let scores = [0.5, 0.7, 0.5, 0.1];
        assert_eq!(rank(&scores, 1, &[]), 3);
        assert_eq!(rank(&scores, 3, &[]), 3);
    }

    #[test]
    fn nan_target_is_ranked_last() {
        let scores = [f32::NAN, -1.0, -2.0, -3.0];
        assert_eq!(rank(&scores, 1, &[]), 4);
        // with one exclusion, last among the 3 remaining
        assert_eq!(rank(&scores, 1, &[3]), 3);
        let all_nan = [f32::NAN; 3];
        assert_eq!(rank(&all_nan, 2, &[]), 3);
    }

    #[test]
    fn nan_competitor_counts_against_the_model() {
        let scores = [5.0, f32::NAN, 1.0];
        assert_eq!(rank(&scores, 1, &[]), 2);
        assert_eq!(rank(&scores, 1, &[2]), 1);
    }

    #[test]
    fn infinities_follow_ieee_order() {
        let scores = [f32::INFINITY, 1.0, f32::NEG_INFINITY];
        assert_eq!(rank(&scores, 1, &[]), 1);
        assert_eq!(rank(&scores, 3, &[]), 3);
        // -inf target tied with an excluded -inf item: the exclusion removes it
        let scores = [f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0];
        assert_eq!(rank(&scores, 1, &[2]), 2);
    }

    #[test]
    fn exclusions_never_remove_the_target_and_dedup() {
        let scores = [0.9, 0.8, 0.7, 0.6];
        // target 4 is in its own exclusion list: still ranked, among {4} ∪ others not excluded
        assert_eq!(rank(&scores, 4, &[4, 1, 1, 1]), 3);
        // excluding items scored below the target changes nothing
        assert_eq!(rank(&scores, 2, &[3, 4]), 2);
        // excluding every other item gives rank 1
        assert_eq!(rank(&scores, 4, &[1, 2, 3]), 1);
    }

    #[test]
    fn out_of_range_ids_are_errors() {
        let scores = [0.0; 3];
        let mut s = Vec::new();
        assert_eq!(
            target_rank(&scores, 0, &[], &mut s),
            Err(RankError::TargetOutOfRange {
                target: 0,
                num_items: 3
            })
        );
        assert_eq!(
            target_rank(&scores, 4, &[], &mut s),
            Err(RankError::TargetOutOfRange {
                target: 4,
                num_items: 3
            })
        );
        assert_eq!(
            target_rank(&scores, 1, &[2, 0], &mut s),
            Err(RankError::ExcludedOutOfRange {
                item: 0,
                num_items: 3
            })
        );
        assert_eq!(
            target_rank(&[], 1, &[], &mut s),
            Err(RankError::TargetOutOfRange {
                target: 1,
                num_items: 0
            })
        );
    }
}
