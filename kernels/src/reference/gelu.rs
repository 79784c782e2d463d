//! Scalar twin of GELU in its exact (erf) form.

use crate::real::Real;

/// 1/√2.
const FRAC_1_SQRT_2: f64 = core::f64::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Φ(x) = ½·(1 + erf(x/√2)), the standard normal CDF.
fn normal_cdf<T: Real>(x: T) -> T {
    let half = T::from_f64(0.5);
    half * (T::ONE + (x * T::from_f64(FRAC_1_SQRT_2)).erf())
}

/// out = x·Φ(x) element-wise (out is only written).
///
/// # Panics
/// If `out.len() != inp.len()`.
pub fn gelu_forward<T: Real>(out: &mut [T], inp: &[T]) {
    assert_eq!(out.len(), inp.len(), "gelu_forward: length mismatch");
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = x * normal_cdf(x);
    }
}

/// dinp += dout · (Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π).
///
/// # Panics
/// If the three lengths differ.
pub fn gelu_backward<T: Real>(dinp: &mut [T], dout: &[T], inp: &[T]) {
    assert_eq!(dinp.len(), inp.len(), "gelu_backward: length mismatch");
    assert_eq!(dout.len(), inp.len(), "gelu_backward: length mismatch");
    for ((dx, &dy), &x) in dinp.iter_mut().zip(dout).zip(inp) {
        let pdf = T::from_f64(FRAC_1_SQRT_2PI) * (T::from_f64(-0.5) * x * x).exp();
        *dx += dy * (normal_cdf(x) + x * pdf);
    }
}
