//! Row softmax over a valid column range for `f32`, on `wide` lanes.

use core::ops::Range;

use super::vector::{self, exp, load, load_padded, store, store_part, Lanes, LANES};
use crate::reference::softmax::check_range;

/// One row (n = `inp.len()`): out[valid] = softmax(inp[valid]), out = 0
/// outside `valid`. An empty range, or one whose inputs are all −∞, gives
/// zeros (never NaN). Every element of `out` is written.
///
/// Passes: (1) row max, seeded with −∞; (2) out = e^(x − max) with the sum
/// kept in lanes (every exponent is ≤ 0, so nothing overflows, and the sum
/// is ≥ 1 because the max element contributes e⁰); (3) out *= 1/sum — one
/// reciprocal per row instead of a division per element costs at most one
/// extra rounding (≤ 1 ulp) per output.
///
/// # Panics
/// If `out.len() != inp.len()` or `valid` does not fit the row.
pub fn softmax_forward(out: &mut [f32], inp: &[f32], valid: Range<usize>) {
    assert_eq!(out.len(), inp.len(), "softmax_forward: length mismatch");
    check_range(&valid, inp.len(), "softmax_forward");
    out[..valid.start].fill(0.0);
    out[valid.end..].fill(0.0);
    let x = &inp[valid.clone()];
    let y = &mut out[valid];

    // Pass 1: the row max.
    let row_max = vector::max(x);
    if row_max == f32::NEG_INFINITY {
        // Empty or fully masked (all −∞): e^(x − max) would be NaN.
        y.fill(0.0);
        return;
    }

    // Pass 2: exponentials and their sum, in two lane accumulators.
    let shift = Lanes::splat(row_max);
    let mut acc = [Lanes::ZERO; 2];
    let mut pairs_y = y.chunks_exact_mut(2 * LANES);
    let mut pairs_x = x.chunks_exact(2 * LANES);
    for (yc, xc) in (&mut pairs_y).zip(&mut pairs_x) {
        let (y0, y1) = yc.split_at_mut(LANES);
        let e0 = exp(load(&xc[..LANES]) - shift);
        let e1 = exp(load(&xc[LANES..]) - shift);
        store(y0, e0);
        store(y1, e1);
        acc[0] += e0;
        acc[1] += e1;
    }
    let mut rest_y = pairs_y.into_remainder().chunks_exact_mut(LANES);
    let mut rest_x = pairs_x.remainder().chunks_exact(LANES);
    for (yc, xc) in (&mut rest_y).zip(&mut rest_x) {
        let e = exp(load(xc) - shift);
        store(yc, e);
        acc[0] += e;
    }
    // Tail: padding with −∞ makes the padded lanes contribute e^−∞ = 0.
    let tail_y = rest_y.into_remainder();
    if !tail_y.is_empty() {
        let e = exp(load_padded(rest_x.remainder(), f32::NEG_INFINITY) - shift);
        store_part(tail_y, e);
        acc[0] += e;
    }
    let total = (acc[0] + acc[1]).reduce_add();

    // Pass 3: normalise.
    vector::scale(y, 1.0 / total);
}

/// One row: dinp[valid] += out ⊙ (dout − ⟨out, dout⟩), the inner product
/// over `valid`; elements outside `valid` are not touched. O(n).
///
/// # Panics
/// If the three lengths differ or `valid` does not fit the row.
pub fn softmax_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], valid: Range<usize>) {
    assert_eq!(dinp.len(), out.len(), "softmax_backward: length mismatch");
    assert_eq!(dout.len(), out.len(), "softmax_backward: length mismatch");
    check_range(&valid, out.len(), "softmax_backward");
    let dx = &mut dinp[valid.clone()];
    let dy = &dout[valid.clone()];
    let y = &out[valid];
    let inner = vector::dot(y, dy);
    let inner_lanes = Lanes::splat(inner);
    let mut cdx = dx.chunks_exact_mut(LANES);
    let mut cdy = dy.chunks_exact(LANES);
    let mut cy = y.chunks_exact(LANES);
    for ((g, gy), yy) in (&mut cdx).zip(&mut cdy).zip(&mut cy) {
        store(g, load(yy).mul_add(load(gy) - inner_lanes, load(g)));
    }
    for ((g, &gy), &yy) in cdx
        .into_remainder()
        .iter_mut()
        .zip(cdy.remainder())
        .zip(cy.remainder())
    {
        *g = yy.mul_add(gy - inner, *g);
    }
}
