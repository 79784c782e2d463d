//! Scalar twin of the row softmax with a valid column range.

use core::ops::Range;

use crate::real::Real;

/// Checks `valid` against a row of `n` columns (a reversed or out-of-row
/// range is a caller bug).
pub(crate) fn check_range(valid: &Range<usize>, n: usize, who: &str) {
    assert!(
        valid.start <= valid.end && valid.end <= n,
        "{who}: valid range {valid:?} does not fit a row of {n} columns"
    );
}

/// One row (n = `inp.len()`): `out[valid] = softmax(inp[valid])`, out = 0
/// outside `valid`. An empty range, or a range whose inputs are all −∞,
/// gives zeros (never NaN). Every element of `out` is written.
///
/// # Panics
/// If `out.len() != inp.len()` or `valid` does not fit the row.
pub fn softmax_forward<T: Real>(out: &mut [T], inp: &[T], valid: Range<usize>) {
    assert_eq!(out.len(), inp.len(), "softmax_forward: length mismatch");
    check_range(&valid, inp.len(), "softmax_forward");
    for o in out.iter_mut() {
        *o = T::ZERO;
    }
    let x = &inp[valid.clone()];
    let y = &mut out[valid];
    // Pass 1: the row max, seeded with −∞ so any finite input wins.
    let mut max = T::NEG_INFINITY;
    for &xi in x {
        max = max.max(xi);
    }
    if max == T::NEG_INFINITY {
        // Empty or fully masked (all −∞): exp(x − max) would be NaN.
        return;
    }
    // Pass 2: exponentials (each ≤ 1, so no overflow) and their sum (≥ 1).
    let mut total = T::ZERO;
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = (xi - max).exp();
        total += *yi;
    }
    // Pass 3: normalise.
    for yi in y.iter_mut() {
        *yi /= total;
    }
}

/// One row: `dinp[valid] += out ⊙ (dout − ⟨out, dout⟩)`, the inner product
/// taken over `valid`. Elements outside `valid` are not touched. O(n).
///
/// # Panics
/// If the three lengths differ or `valid` does not fit the row.
pub fn softmax_backward<T: Real>(dinp: &mut [T], dout: &[T], out: &[T], valid: Range<usize>) {
    assert_eq!(dinp.len(), out.len(), "softmax_backward: length mismatch");
    assert_eq!(dout.len(), out.len(), "softmax_backward: length mismatch");
    check_range(&valid, out.len(), "softmax_backward");
    let mut inner = T::ZERO;
    for i in valid.clone() {
        inner += out[i] * dout[i];
    }
    for i in valid {
        dinp[i] += out[i] * (dout[i] - inner);
    }
}
