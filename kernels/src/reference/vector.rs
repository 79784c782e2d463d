//! Scalar twins of the vector kernels: plain loops over slices.

use crate::real::Real;

/// Σ aᵢ·bᵢ, summed left to right.
///
/// # Panics
/// If `a.len() != b.len()`.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    let mut acc = T::ZERO;
    for (&ai, &bi) in a.iter().zip(b) {
        acc += ai * bi;
    }
    acc
}

/// y += α·x.
///
/// # Panics
/// If `y.len() != x.len()`.
pub fn axpy<T: Real>(y: &mut [T], alpha: T, x: &[T]) {
    assert_eq!(y.len(), x.len(), "axpy: length mismatch");
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// x *= α.
pub fn scale<T: Real>(x: &mut [T], alpha: T) {
    for xi in x.iter_mut() {
        *xi *= alpha;
    }
}

/// out = a + b (out is only written).
///
/// # Panics
/// If the three lengths differ.
pub fn add<T: Real>(out: &mut [T], a: &[T], b: &[T]) {
    assert_eq!(out.len(), a.len(), "add: length mismatch");
    assert_eq!(out.len(), b.len(), "add: length mismatch");
    for ((oi, &ai), &bi) in out.iter_mut().zip(a).zip(b) {
        *oi = ai + bi;
    }
}

/// Σ xᵢ, summed left to right (0 for an empty slice).
pub fn sum<T: Real>(x: &[T]) -> T {
    let mut acc = T::ZERO;
    for &xi in x {
        acc += xi;
    }
    acc
}

/// max xᵢ, seeded with −∞ (so an empty slice gives −∞). NaN elements are
/// skipped (IEEE maxNum); the SIMD kernel does not promise that, so callers
/// must not rely on the NaN behaviour of either.
pub fn max<T: Real>(x: &[T]) -> T {
    let mut acc = T::NEG_INFINITY;
    for &xi in x {
        acc = acc.max(xi);
    }
    acc
}
