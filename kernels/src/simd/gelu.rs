//! GELU in its exact (erf) form for `f32`, on `wide` lanes, with a
//! vectorised upper-tail normal probability.
//!
//! # Numerics
//!
//! GELU(x) = x·Φ(x). Write Q(a) = 1 − Φ(a) = ½·erfc(a/√2) for a = |x|; then
//! Φ(x) = 1 − Q for x ≥ 0 and Q for x < 0, so
//!
//! GELU(x) = max(x, 0) − |x|·Q(|x|)
//!
//! (x ≥ 0: x − x·Q; x < 0: 0 − (−x)·Q = x·Q). Evaluated as one fused
//! multiply-add, the only rounding that does not scale with Q is the final
//! one, ≤ ½ ulp(x) ≤ 4.8e−7 for |x| < 8 and the 1e−6 budget holds with room
//! to spare; forming 1 − Q first would add another ½ ulp(1)·|x| ≈ 3e−7 at
//! |x| = 10.
//!
//! Q comes from the Chebyshev-fitted erfc of Numerical Recipes (2nd ed.,
//! §6.2, `erfcc`): with z = a/√2 and t = 1/(1 + z/2),
//! erfc(z) ≈ t·exp(−z² + P(t)), P a degree-9 polynomial, fractional error
//! < 1.2e−7 for every z ≥ 0. One formula for all a (no branch between an
//! erf series and an erfc asymptote), and a *relative* bound, so the error
//! of |x|·Q stays below |x|·Q·(1.2e−7 + f32 evaluation error of a few
//! ulp) ≲ 0.17·5e−7 < 1e−7 (x·Q peaks near 0.17 at |x| ≈ 0.75). In f32 the
//! exponent argument −z² + P(t) is formed as one fma of −x/2·x onto P(t),
//! so its rounding error is ½ ulp of a value ≤ 87 (≈ 4e−6 absolute at
//! the far tail, where Q < 1e−30 and the error is invisible). For |x| ≳ 13.2
//! the exp flushes to 0 and GELU(x) is exactly max(x, 0); |x| is capped at
//! 16 in the product so that +∞ gives +∞ (not ∞·0) and −∞ gives 0.
//! The sweep test (tests/rows.rs) measures the resulting error against
//! f64 erf over 2M points in [−10, 10].

use super::vector::{exp, load, load_padded, store, store_part, Lanes, LANES};

/// Numerical Recipes `erfcc` coefficients of P(t), constant term first.
const ERFC_P: [f32; 10] = [
    -1.265_512_2,
    1.000_023_7,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_204, // −1.13520398 rounded to f32
    1.488_515_9,
    -0.822_152_23,
    0.170_872_77,
];
/// 1/√(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
/// 1/(2√2): z/2 = a/(2√2).
const FRAC_1_2SQRT_2: f32 = core::f32::consts::FRAC_1_SQRT_2 * 0.5;
/// |x| above which Q(|x|) is exactly 0 in f32 (exp flushes below −87).
const TAIL_CAP: f32 = 16.0;

/// (t, P(t)) for a = |x|: t = 1/(1 + a/(2√2)), P the erfcc polynomial.
#[inline(always)]
fn erfc_parts(a: Lanes) -> (Lanes, Lanes) {
    let t = Lanes::ONE / a.mul_add(Lanes::splat(FRAC_1_2SQRT_2), Lanes::ONE);
    let mut p = Lanes::splat(ERFC_P[9]);
    for &c in ERFC_P[..9].iter().rev() {
        p = p.mul_add(t, Lanes::splat(c));
    }
    (t, p)
}

/// GELU(x) lane-wise (see the module docs).
#[inline(always)]
fn gelu_lanes(x: Lanes) -> Lanes {
    let a = x.abs();
    let (t, p) = erfc_parts(a);
    // −x²/2 + P(t) in one rounding.
    let arg = (x * Lanes::splat(-0.5)).mul_add(x, p);
    let q = (t * Lanes::splat(0.5)) * exp(arg);
    let a_capped = Lanes::splat(TAIL_CAP).fast_min(a);
    a_capped.mul_neg_add(q, Lanes::ZERO.fast_max(x))
}

/// GELU′(x) = Φ(x) + x·φ(x) lane-wise. φ needs e^(−x²/2) on its own; Q
/// reuses it as Q = ½·t·e^(−x²/2)·e^(P(t)) (two exps, each ~2 ulp).
#[inline(always)]
fn gelu_grad_lanes(x: Lanes) -> Lanes {
    let a = x.abs();
    let (t, p) = erfc_parts(a);
    let gauss = exp(x * x * Lanes::splat(-0.5));
    let q = (t * Lanes::splat(0.5)) * gauss * exp(p);
    let cdf = x.simd_ge(Lanes::ZERO).select(Lanes::ONE - q, q);
    (x * Lanes::splat(FRAC_1_SQRT_2PI)).mul_add(gauss, cdf)
}

/// out = x·Φ(x) element-wise (out is only written).
///
/// # Panics
/// If `out.len() != inp.len()`.
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    assert_eq!(out.len(), inp.len(), "gelu_forward: length mismatch");
    let mut co = out.chunks_exact_mut(LANES);
    let mut ci = inp.chunks_exact(LANES);
    for (o, x) in (&mut co).zip(&mut ci) {
        store(o, gelu_lanes(load(x)));
    }
    let tail = co.into_remainder();
    if !tail.is_empty() {
        store_part(tail, gelu_lanes(load_padded(ci.remainder(), 0.0)));
    }
}

/// dinp += dout · (Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π).
///
/// # Panics
/// If the three lengths differ.
pub fn gelu_backward(dinp: &mut [f32], dout: &[f32], inp: &[f32]) {
    assert_eq!(dinp.len(), inp.len(), "gelu_backward: length mismatch");
    assert_eq!(dout.len(), inp.len(), "gelu_backward: length mismatch");
    let mut cdx = dinp.chunks_exact_mut(LANES);
    let mut cdy = dout.chunks_exact(LANES);
    let mut cx = inp.chunks_exact(LANES);
    for ((dx, dy), x) in (&mut cdx).zip(&mut cdy).zip(&mut cx) {
        store(dx, load(dy).mul_add(gelu_grad_lanes(load(x)), load(dx)));
    }
    let tail = cdx.into_remainder();
    if !tail.is_empty() {
        let dy = load_padded(cdy.remainder(), 0.0);
        let grad = gelu_grad_lanes(load_padded(cx.remainder(), 0.0));
        let dx = load_padded(tail, 0.0);
        store_part(tail, dy.mul_add(grad, dx));
    }
}
