//! Rows of at most [`MAX_LEN`] floats (eight lane groups) held in
//! registers, for the row kernels at the model's widths (d = 64, attention
//! rows of L ≤ 50 keys).
//!
//! A row that fits in registers is read from memory once and written once:
//! the long-row softmax and cross-entropy kernels instead store
//! intermediate values (exponentials, partial gradients) and read them
//! back, or recompute the exponentials. The shape of a short row is a pair
//! of const generics, `FULL` whole lane groups and `PART` floats in a last
//! partial group (0 ≤ `PART` < LANES), so every loop over the groups has a
//! constant trip count and is fully unrolled, which keeps the groups in
//! registers, and a whole group is never loaded like a partial one.
//! [`by_shape!`] picks the instance from the row length at run time (one
//! predictable branch per row).

use super::vector::{load, load_padded, max_keep_nan, store, store_part, Lanes, LANES};

/// Lane groups of the longest row kept in registers.
pub(crate) const MAX_GROUPS: usize = 8;
/// Floats of the longest row kept in registers.
pub(crate) const MAX_LEN: usize = MAX_GROUPS * LANES;

/// The groups of one short row: the first [`groups`] entries are used.
pub(crate) type Groups = [Lanes; MAX_GROUPS];

/// Lane groups of a row of `FULL` whole groups and a partial group of
/// `PART` floats.
#[inline(always)]
pub(crate) const fn groups(full: usize, part: usize) -> usize {
    full + (part > 0) as usize
}

/// Calls `$f::<FULL, PART>($args)` with FULL = `$len` / LANES and
/// PART = `$len` % LANES; the caller guarantees `$len` ≤ [`MAX_LEN`].
macro_rules! by_shape {
    ($len:expr, $f:ident $args:tt) => {
        by_shape!(@arms $len, $f $args, [0 1 2 3 4 5 6 7])
    };
    (@arms $len:expr, $f:ident $args:tt, [$($full:literal)*]) => {
        match ($len / $crate::simd::vector::LANES, $len % $crate::simd::vector::LANES) {
            $(
                ($full, 0) => $f::<$full, 0> $args,
                ($full, 1) => $f::<$full, 1> $args,
                ($full, 2) => $f::<$full, 2> $args,
                ($full, 3) => $f::<$full, 3> $args,
                ($full, 4) => $f::<$full, 4> $args,
                ($full, 5) => $f::<$full, 5> $args,
                ($full, 6) => $f::<$full, 6> $args,
                ($full, 7) => $f::<$full, 7> $args,
            )*
            (8, 0) => $f::<8, 0> $args,
            (full, part) => unreachable!("{full} groups + {part} do not fit in registers"),
        }
    };
}
pub(crate) use by_shape;

/// Loads group `k` of a row of `FULL` whole groups and `PART` trailing
/// floats; lanes past the row hold `fill`.
#[inline(always)]
pub(crate) fn load_group<const FULL: usize, const PART: usize>(
    row: &[f32],
    k: usize,
    fill: f32,
) -> Lanes {
    // Exactly the row's length, so the constant-offset slices below need
    // no further bounds checks.
    let row = &row[..FULL * LANES + PART];
    let start = k * LANES;
    if k < FULL {
        load(&row[start..start + LANES])
    } else {
        load_padded(&row[start..start + PART], fill)
    }
}

/// Loads a whole row of `FULL` whole groups and `PART` trailing floats.
#[inline(always)]
pub(crate) fn load_row<const FULL: usize, const PART: usize>(row: &[f32], fill: f32) -> Groups {
    let mut v = [Lanes::ZERO; MAX_GROUPS];
    for (k, slot) in v.iter_mut().enumerate().take(groups(FULL, PART)) {
        *slot = load_group::<FULL, PART>(row, k, fill);
    }
    v
}

/// Stores group `k` of a row of `FULL` whole groups and `PART` trailing
/// floats (only the first `PART` lanes of the partial group).
#[inline(always)]
pub(crate) fn store_group<const FULL: usize, const PART: usize>(
    row: &mut [f32],
    k: usize,
    v: Lanes,
) {
    let row = &mut row[..FULL * LANES + PART];
    let start = k * LANES;
    if k < FULL {
        store(&mut row[start..start + LANES], v);
    } else {
        store_part(&mut row[start..start + PART], v);
    }
}

/// Combines the first `n` groups pairwise (group k with group k + 4, then
/// k + 2, then k + 1; groups past n are skipped): at most three dependent
/// steps, in an order fixed by n alone.
#[inline(always)]
fn tree(mut w: Groups, n: usize, op: impl Fn(Lanes, Lanes) -> Lanes) -> Lanes {
    for half in [4, 2, 1] {
        for k in 0..half {
            // Slot k + half holds data iff it is below n: earlier steps
            // only fold into lower slots.
            if k + half < n {
                w[k] = op(w[k], w[k + half]);
            }
        }
    }
    w[0]
}

/// Lane-wise sum of the first `n` groups, in a fixed pairwise order.
#[inline(always)]
pub(crate) fn tree_sum(v: &Groups, n: usize) -> Lanes {
    tree(*v, n, |a, b| a + b)
}

/// Lane-wise maximum of the first `n` groups (NaN handling as
/// [`max_keep_nan`]).
#[inline(always)]
pub(crate) fn tree_max(v: &Groups, n: usize) -> Lanes {
    tree(*v, n, max_keep_nan)
}
