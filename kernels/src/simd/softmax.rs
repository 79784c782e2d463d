//! Row softmax over a valid column range for `f32`, on `wide` lanes.

use core::ops::Range;

use super::short_row::{
    by_shape, groups, load_group, load_row, store_group, tree_max, tree_sum, MAX_LEN,
};
use super::vector::{self, exp, load, load_padded, reduce_max, store, store_part, Lanes, LANES};

/// One row (n = `inp.len()`): `out[valid] = softmax(inp[valid])`, out = 0
/// outside `valid`. An empty range, or one whose inputs are all −∞, gives
/// zeros (never NaN). Every element of `out` is written.
///
/// Passes: (1) row max, seeded with −∞; (2) out = e^(x − max) with the sum
/// kept in lanes (every exponent is ≤ 0, so nothing overflows, and the sum
/// is ≥ 1 because the max element contributes e⁰); (3) out *= 1/sum — one
/// reciprocal per row instead of a division per element costs at most one
/// extra rounding (≤ 1 ulp) per output. A valid range of at most 64
/// columns runs the same steps in registers (`forward_in_registers`).
///
/// # Panics
/// If `out.len() != inp.len()` or `valid` does not fit the row.
#[inline]
pub fn softmax_forward(out: &mut [f32], inp: &[f32], valid: Range<usize>) {
    assert_eq!(out.len(), inp.len(), "softmax_forward: length mismatch");
    // Slicing by `valid` panics on a reversed or out-of-row range.
    let x = &inp[valid.clone()];
    out[..valid.start].fill(0.0);
    out[valid.end..].fill(0.0);
    let y = &mut out[valid];
    if (1..=MAX_LEN).contains(&x.len()) {
        return by_shape!(x.len(), forward_in_registers(y, x));
    }

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

/// [`softmax_forward`] of a valid range of `FULL` whole lane groups and
/// `PART` trailing columns (at most 64 in all) held in registers: the same
/// three steps, but the exponentials stay in registers between the sum
/// and the normalisation, so the row is loaded once and stored once. The
/// max and the sum are combined over the groups in a pairwise tree (no
/// loop-carried chain).
#[inline(always)]
fn forward_in_registers<const FULL: usize, const PART: usize>(y: &mut [f32], x: &[f32]) {
    let n = groups(FULL, PART);
    let xs = load_row::<FULL, PART>(x, f32::NEG_INFINITY);
    let row_max = reduce_max(tree_max(&xs, n));
    if row_max == f32::NEG_INFINITY {
        y.fill(0.0);
        return;
    }
    let shift = Lanes::splat(row_max);
    // Padded lanes hold −∞ and give e^−∞ = 0.
    let mut e = xs;
    for k in 0..n {
        e[k] = exp(xs[k] - shift);
    }
    let inv_total = Lanes::splat(1.0 / tree_sum(&e, n).reduce_add());
    for (k, &ek) in e.iter().enumerate().take(n) {
        store_group::<FULL, PART>(y, k, ek * inv_total);
    }
}

/// One row: `dinp[valid] += out ⊙ (dout − ⟨out, dout⟩)`, the inner product
/// over `valid`; elements outside `valid` are not touched. O(n).
///
/// Fused into two sweeps: (1) dinp += out ⊙ dout while the same products
/// are summed into ⟨out, dout⟩ in two lane accumulators; (2) dinp −=
/// out·⟨out, dout⟩. The row is read from memory once (sweep 2 hits L1), and
/// nothing waits on the reduction until sweep 2. Rounding: two roundings
/// per element as in the twin's out·(dout − ⟨·⟩) + dinp, but of
/// |dinp + out·dout| rather than |out·(dout − ⟨·⟩)|, which the test
/// tolerances account for. A valid range of at most 64 columns is held in
/// registers instead (`backward_in_registers`), with the same roundings.
///
/// # Panics
/// If the three lengths differ or `valid` does not fit the row.
#[inline]
pub fn softmax_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], valid: Range<usize>) {
    assert_eq!(dinp.len(), out.len(), "softmax_backward: length mismatch");
    assert_eq!(dout.len(), out.len(), "softmax_backward: length mismatch");
    // Slicing by `valid` panics on a reversed or out-of-row range.
    let dx = &mut dinp[valid.clone()];
    let dy = &dout[valid.clone()];
    let y = &out[valid];
    if (1..=MAX_LEN).contains(&y.len()) {
        return by_shape!(y.len(), backward_in_registers(dx, dy, y));
    }

    // Sweep 1 (tail in scalar code: at most 15 elements).
    let (mut acc0, mut acc1) = (Lanes::ZERO, Lanes::ZERO);
    let mut pdx = dx.chunks_exact_mut(2 * LANES);
    let mut pdy = dy.chunks_exact(2 * LANES);
    let mut py = y.chunks_exact(2 * LANES);
    for ((g, gy), yy) in (&mut pdx).zip(&mut pdy).zip(&mut py) {
        let (y0, y1) = (load(&yy[..LANES]), load(&yy[LANES..]));
        let (d0, d1) = (load(&gy[..LANES]), load(&gy[LANES..]));
        acc0 = y0.mul_add(d0, acc0);
        acc1 = y1.mul_add(d1, acc1);
        let (t0, t1) = (
            y0.mul_add(d0, load(&g[..LANES])),
            y1.mul_add(d1, load(&g[LANES..])),
        );
        store(&mut g[..LANES], t0);
        store(&mut g[LANES..], t1);
    }
    let mut tail_sum = 0.0f32;
    let tail = pdx
        .into_remainder()
        .iter_mut()
        .zip(pdy.remainder())
        .zip(py.remainder());
    for ((g, &gy), &yy) in tail {
        tail_sum = yy.mul_add(gy, tail_sum);
        *g = yy.mul_add(gy, *g);
    }
    let inner_scalar = (acc0 + acc1).reduce_add() + tail_sum;
    let inner = Lanes::splat(inner_scalar);

    // Sweep 2.
    let mut cdx = dx.chunks_exact_mut(LANES);
    let mut cy = y.chunks_exact(LANES);
    for (g, yy) in (&mut cdx).zip(&mut cy) {
        store(g, load(yy).mul_neg_add(inner, load(g)));
    }
    for (g, &yy) in cdx.into_remainder().iter_mut().zip(cy.remainder()) {
        *g = (-yy).mul_add(inner_scalar, *g);
    }
}

/// [`softmax_backward`] of a valid range of `FULL` whole lane groups and
/// `PART` trailing columns (at most 64 in all): dinp + out ⊙ dout is kept
/// in registers while ⟨out, dout⟩ is reduced (a pairwise tree of the lane
/// products, no loop-carried chain), then out·⟨out, dout⟩ is subtracted and
/// dinp stored once. Each of the three rows is loaded once and dinp stored
/// once; the roundings per element are those of the long-row sweeps.
#[inline(always)]
fn backward_in_registers<const FULL: usize, const PART: usize>(
    dx: &mut [f32],
    dy: &[f32],
    y: &[f32],
) {
    let n = groups(FULL, PART);
    // Padded lanes are 0 and contribute nothing; they are not stored.
    let mut partial = [Lanes::ZERO; super::short_row::MAX_GROUPS];
    let mut products = partial;
    for k in 0..n {
        let (yk, dyk) = (
            load_group::<FULL, PART>(y, k, 0.0),
            load_group::<FULL, PART>(dy, k, 0.0),
        );
        partial[k] = yk.mul_add(dyk, load_group::<FULL, PART>(dx, k, 0.0));
        products[k] = yk * dyk;
    }
    let inner = Lanes::splat(tree_sum(&products, n).reduce_add());
    for (k, &pk) in partial.iter().enumerate().take(n) {
        let yk = load_group::<FULL, PART>(y, k, 0.0);
        store_group::<FULL, PART>(dx, k, yk.mul_neg_add(inner, pk));
    }
}
