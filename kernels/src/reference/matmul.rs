//! Scalar twin of the matrix multiply: a naive triple loop, generic over
//! [`Real`], that defines what [`crate::simd::matmul::gemm`] must compute.

use crate::ops::Trans;
use crate::real::Real;

/// Checks the slice lengths of a gemm call against its dims (shared by the
/// fast kernel and this twin so both reject exactly the same calls).
pub(crate) fn check_gemm_shapes(
    m: usize,
    n: usize,
    k: usize,
    a_len: usize,
    b_len: usize,
    c_len: usize,
) {
    let mk = m.checked_mul(k).expect("gemm: m·k overflows usize");
    let kn = k.checked_mul(n).expect("gemm: k·n overflows usize");
    let mn = m.checked_mul(n).expect("gemm: m·n overflows usize");
    assert_eq!(
        a_len, mk,
        "gemm: A has {a_len} elements, expected m·k = {m}·{k}"
    );
    assert_eq!(
        b_len, kn,
        "gemm: B has {b_len} elements, expected k·n = {k}·{n}"
    );
    assert_eq!(
        c_len, mn,
        "gemm: C has {c_len} elements, expected m·n = {m}·{n}"
    );
}

/// op(X)[row][col] for X stored row-major: `rows`×`cols` of op(X), i.e. X is
/// rows×cols for `Trans::N` and cols×rows for `Trans::T`.
#[inline]
fn op_at<T: Real>(x: &[T], t: Trans, rows: usize, cols: usize, row: usize, col: usize) -> T {
    match t {
        Trans::N => x[row * cols + col],
        Trans::T => x[col * rows + row],
    }
}

/// C (m×n) ← α·op(A)·op(B) + β·C, by the definition.
///
/// op(A) is m×k (A stored m×k for `Trans::N`, k×m for `Trans::T`), op(B) is
/// k×n (B stored k×n or n×k). BLAS conventions for the scalars: with β = 0, C
/// is only written, never read (NaN in C does not propagate); with α = 0,
/// A and B are not read (C ← β·C).
///
/// Panics if a slice length does not match its dims.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    ta: Trans,
    b: &[T],
    tb: Trans,
    beta: T,
    c: &mut [T],
) {
    check_gemm_shapes(m, n, k, a.len(), b.len(), c.len());
    for i in 0..m {
        for j in 0..n {
            let product = if alpha == T::ZERO {
                T::ZERO
            } else {
                let mut acc = T::ZERO;
                for p in 0..k {
                    acc += op_at(a, ta, m, k, i, p) * op_at(b, tb, k, n, p, j);
                }
                alpha * acc
            };
            let old = if beta == T::ZERO {
                T::ZERO
            } else {
                beta * c[i * n + j]
            };
            c[i * n + j] = product + old;
        }
    }
}
