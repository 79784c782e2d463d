//! `f32` matrix multiply over `matrixmultiply::sgemm` (packed, blocked,
//! runtime-dispatched AVX/FMA/AVX-512 micro-kernels; single-threaded here
//! because the crate's `threading` feature is off).

use crate::ops::Trans;
use crate::reference::matmul::check_gemm_shapes;

/// Row and column strides of op(X) for X stored row-major as `rows`×`cols` of
/// op(X) (`Trans::N`) or its transpose (`Trans::T`): a transpose is a swap of
/// strides, never a copy.
#[inline]
fn op_strides(t: Trans, rows: usize, cols: usize) -> (isize, isize) {
    // Both dims are at most the (non-empty) slice length, so ≤ isize::MAX.
    match t {
        Trans::N => (cols as isize, 1),
        Trans::T => (1, rows as isize),
    }
}

/// C (m×n) ← α·op(A)·op(B) + β·C.
///
/// op(A) is m×k (A stored m×k for `Trans::N`, k×m for `Trans::T`), op(B) is
/// k×n (B stored k×n or n×k), all row-major. BLAS conventions: with β = 0, C
/// is only written, never read; with α = 0, A and B are not read. Same
/// contract as the twin [`crate::reference::matmul::gemm`].
///
/// Panics if a slice length does not match its dims.
///
/// ```
/// use dtrec_kernels::{simd::matmul::gemm, Trans};
/// // (1×2)·(2×1): [1 2]·[3 4]ᵀ = 11, then C ← 2·11 + 0·C.
/// let mut c = [f32::NAN];
/// gemm(1, 1, 2, 2.0, &[1.0, 2.0], Trans::N, &[3.0, 4.0], Trans::N, 0.0, &mut c);
/// assert_eq!(c, [22.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    beta: f32,
    c: &mut [f32],
) {
    check_gemm_shapes(m, n, k, a.len(), b.len(), c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        // No product term: C ← β·C, and β = 0 must not read C (NaN stays out).
        if beta == 0.0 {
            c.fill(0.0);
        } else {
            c.iter_mut().for_each(|x| *x *= beta);
        }
        return;
    }
    let (rsa, csa) = op_strides(ta, m, k);
    let (rsb, csb) = op_strides(tb, k, n);
    // SAFETY: m, n, k ≥ 1 and the lengths were checked above: A holds exactly
    // m·k elements and every offset i·rsa + p·csa (i < m, p < k) is < m·k for
    // either layout; likewise B (k·n) and C (m·n, strides n and 1). C is a
    // unique borrow, so it aliases neither A nor B. matrixmultiply does not
    // read C when β = 0 (it assigns the product, see `c_to_masked_ab_beta_c`).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
