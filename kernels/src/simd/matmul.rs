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
    #[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
    if m <= FEW_ROWS
        && ta == Trans::N
        && tb == Trans::N
        && alpha == 1.0
        && (beta == 0.0 || beta == 1.0)
        && k <= KC
    {
        few_rows(n, k, a, b, beta == 1.0, c);
        return;
    }
    packed(m, n, k, alpha, a, ta, b, tb, beta, c);
}

/// matrixmultiply's k-block (`S_KC` of matrixmultiply 0.3): up to this depth
/// it sums each element of A·B in one pass from zero, then adds β·C once.
#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
const KC: usize = 256;

/// Rows of A up to which [`gemm`] streams B's rows itself instead of packing
/// for matrixmultiply. A one-token reasoning step in batch-1 serving
/// multiplies one row by 64×64 … 64×256 weights; matrixmultiply copies the
/// whole of B into its packed layout for that one row and computes a full
/// 8-row tile, which costs more than the product itself.
#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
const FEW_ROWS: usize = 4;

/// Columns of C summed per pass of [`few_rows`] (a 2 KiB stack accumulator).
#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
const FEW_ROWS_BLOCK: usize = 512;

/// C (rows×n) ← A·B (+ C when `add_c`), A rows×k with rows ≤ [`FEW_ROWS`],
/// B k×n, k ≤ [`KC`], row by row. Bit-identical to [`packed`] with α = 1 and
/// β ∈ {0, 1}, signed zeros included: like matrixmultiply's FMA
/// micro-kernels (AVX2 and AVX-512 alike), each element starts from zero and
/// adds a_ip·b_pj for p = 0, 1, … k−1 with one fused multiply-add each, and
/// C is then added once (α·ab + β·c is exact but for that one addition when
/// α = 1 and β ∈ {0, 1}; the sign of a zero sum follows the kernel the CPU
/// gets). `wide`'s `mul_add` is fused only with the `fma`
/// target feature, hence the `cfg`.
#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
fn few_rows(n: usize, k: usize, a: &[f32], b: &[f32], add_c: bool, c: &mut [f32]) {
    use super::vector::{load, store, Lanes, LANES};
    // the kernel matrixmultiply dispatches to (its default `avx512` feature)
    let avx512 = std::is_x86_feature_detected!("avx512f");
    let mut acc = [0.0f32; FEW_ROWS_BLOCK];
    for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        for start in (0..n).step_by(FEW_ROWS_BLOCK) {
            let width = FEW_ROWS_BLOCK.min(n - start);
            let acc = &mut acc[..width];
            acc.fill(0.0);
            let lanes = width - width % LANES;
            // pass over B's rows: acc[j] = fma(a_p, b_pj, acc[j]), p ascending
            for (p, &a_p) in a_row.iter().enumerate() {
                let b_row = &b[p * n + start..p * n + start + width];
                let a_v = Lanes::splat(a_p);
                for (acc8, b8) in acc[..lanes]
                    .chunks_exact_mut(LANES)
                    .zip(b_row[..lanes].chunks_exact(LANES))
                {
                    store(acc8, a_v.mul_add(load(b8), load(acc8)));
                }
                for (x, &b_pj) in acc[lanes..].iter_mut().zip(&b_row[lanes..]) {
                    *x = a_p.mul_add(b_pj, *x);
                }
            }
            // matrixmultiply computes a tile of fewer rows than its kernel's
            // into a buffer, then adds that to β·C. Its AVX2 kernel writes the
            // buffer as an FMA onto zero (ab + 0, which turns a −0 sum into
            // +0), its AVX-512 kernel as 1·ab (which keeps −0).
            if !avx512 {
                acc.iter_mut().for_each(|x| *x += 0.0);
            }
            let c_block = &mut c_row[start..start + width];
            if add_c {
                c_block
                    .iter_mut()
                    .zip(acc.iter())
                    .for_each(|(y, &x)| *y += x);
            } else {
                c_block.copy_from_slice(acc);
            }
        }
    }
}

/// [`gemm`] through matrixmultiply (shapes checked, m, n, k ≥ 1, α ≠ 0).
#[allow(clippy::too_many_arguments)]
fn packed(
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
    let (rsa, csa) = op_strides(ta, m, k);
    let (rsb, csb) = op_strides(tb, k, n);
    // SAFETY: m, n, k ≥ 1 and the lengths were checked by `gemm`: A holds exactly
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

#[cfg(all(test, target_arch = "x86_64", target_feature = "fma"))]
mod tests {
    use super::*;
    use crate::rng::CounterRng;

    /// The row-by-row path must give matrixmultiply's bits, or a row's
    /// output would depend on how many rows share its call (batch-1 serving
    /// against batched evaluation, or rows leaving a batch as they halt).
    #[test]
    fn few_rows_equal_packed_bit_for_bit() {
        let rng = CounterRng::new(11);
        for (case, &(m, n, k)) in [
            (1, 64, 64),
            (1, 256, 64),
            (1, 64, 256),
            (4, 192, 64),
            (2, 13, 7),
            (3, 1, 1),
            (1, 600, 33),
            (4, 1100, 256),
        ]
        .iter()
        .enumerate()
        {
            let case = case as u64;
            let mut a = vec![0.0f32; m * k];
            let mut b = vec![0.0f32; k * n];
            let mut c0 = vec![0.0f32; m * n];
            rng.fill_normal(&mut a, 3 * case, 0.0, 1.0);
            rng.fill_normal(&mut b, 3 * case + 1, 0.0, 0.1);
            rng.fill_normal(&mut c0, 3 * case + 2, 0.0, 1.0);
            if case == 0 {
                // products that underflow to −0 on a −0 bias: the sum's sign
                a[..k].fill(-1e-30);
                b.iter_mut().step_by(n).for_each(|x| *x = 1e-30);
                c0[0] = -0.0;
            }
            for beta in [0.0f32, 1.0] {
                let mut fast = c0.clone();
                let mut slow = c0.clone();
                few_rows(n, k, &a, &b, beta == 1.0, &mut fast);
                packed(m, n, k, 1.0, &a, Trans::N, &b, Trans::N, beta, &mut slow);
                let fast_bits: Vec<u32> = fast.iter().map(|x| x.to_bits()).collect();
                let slow_bits: Vec<u32> = slow.iter().map(|x| x.to_bits()).collect();
                assert_eq!(fast_bits, slow_bits, "m={m} n={n} k={k} β={beta}");
                // and the public entry point takes the row-by-row path here
                let mut via_gemm = c0.clone();
                gemm(
                    m,
                    n,
                    k,
                    1.0,
                    &a,
                    Trans::N,
                    &b,
                    Trans::N,
                    beta,
                    &mut via_gemm,
                );
                assert_eq!(via_gemm, fast);
            }
        }
    }
}
