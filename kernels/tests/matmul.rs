//! gemm and score (f32 fast kernels) against their naive twins, evaluated in
//! f64 on the same f32-valued inputs, over swept and random shapes.
//!
//! Tolerance (used everywhere below): a dot product of length k summed in
//! f32 in any order, with or without FMA, has error at most γ_k·Σ|aᵢ||bᵢ|
//! with γ_k = k·u/(1 − k·u), u = 2⁻²⁴ (Higham, Accuracy and Stability of
//! Numerical Algorithms, §3.1). Scaling by α, adding β·c and rounding the
//! result to f32 add at most about 3u·(|α|Σ|a||b| + |β||c|). So each element
//! must be within (k + 5)·u·S of the exact value, where
//! S = |α|·Σₚ|op(A)ᵢₚ||op(B)ₚⱼ| + |β|·|cᵢⱼ| is computed exactly enough in f64.
//! This is a worst-case bound, not a fudge factor: it is tight only if all
//! rounding errors align, and it is zero (exact match required) when S = 0.

use dtrec_kernels::reference::{matmul as ref_matmul, score as ref_score};
use dtrec_kernels::rng::CounterRng;
use dtrec_kernels::simd::{matmul, score};
use dtrec_kernels::{Kernels, Trans};
use proptest::prelude::*;

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Deterministic test data in [−2, 2), a distinct stream per operand.
fn data(len: usize, stream: u64) -> Vec<f32> {
    let rng = CounterRng::new(2024);
    (0..len)
        .map(|i| (4.0 * rng.uniform(stream, i as u64) - 2.0) as f32)
        .collect()
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn op_at(x: &[f32], t: Trans, rows: usize, cols: usize, i: usize, j: usize) -> f64 {
    f64::from(match t {
        Trans::N => x[i * cols + j],
        Trans::T => x[j * rows + i],
    })
}

/// Runs one f32 gemm (inside a guarded buffer, to catch writes outside C)
/// and compares it element-wise with the f64 twin under the bound above.
#[allow(clippy::too_many_arguments)]
fn check_gemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    ta: Trans,
    tb: Trans,
    beta: f32,
    seed: u64,
) {
    let a = data(m * k, 3 * seed);
    let b = data(k * n, 3 * seed + 1);
    // β = 0 must not read C: poison it with NaN.
    let c0 = if beta == 0.0 {
        vec![f32::NAN; m * n]
    } else {
        data(m * n, 3 * seed + 2)
    };
    const GUARD: usize = 5;
    let mut buf = vec![-7.25f32; m * n + 2 * GUARD];
    buf[GUARD..GUARD + m * n].copy_from_slice(&c0);
    matmul::gemm(
        m,
        n,
        k,
        alpha,
        &a,
        ta,
        &b,
        tb,
        beta,
        &mut buf[GUARD..GUARD + m * n],
    );
    assert!(
        buf[..GUARD]
            .iter()
            .chain(&buf[GUARD + m * n..])
            .all(|&g| g == -7.25),
        "write outside C"
    );
    let got = &buf[GUARD..GUARD + m * n];

    let mut want = if beta == 0.0 {
        vec![f64::NAN; m * n]
    } else {
        widen(&c0)
    };
    ref_matmul::gemm(
        m,
        n,
        k,
        f64::from(alpha),
        &widen(&a),
        ta,
        &widen(&b),
        tb,
        f64::from(beta),
        &mut want,
    );
    for i in 0..m {
        for j in 0..n {
            let abs_dot: f64 = (0..k)
                .map(|p| (op_at(&a, ta, m, k, i, p) * op_at(&b, tb, k, n, p, j)).abs())
                .sum();
            let c_term = if beta == 0.0 {
                0.0
            } else {
                f64::from(beta).abs() * f64::from(c0[i * n + j]).abs()
            };
            let s = f64::from(alpha).abs() * abs_dot + c_term;
            let tol = (k as f64 + 5.0) * U * s;
            let (g, w) = (f64::from(got[i * n + j]), want[i * n + j]);
            assert!(
                (g - w).abs() <= tol,
                "gemm m={m} n={n} k={k} α={alpha} β={beta} {ta:?}{tb:?} at ({i},{j}): got {g}, want {w}, tol {tol}"
            );
        }
    }
}

const TRANS: [(Trans, Trans); 4] = [
    (Trans::N, Trans::N),
    (Trans::N, Trans::T),
    (Trans::T, Trans::N),
    (Trans::T, Trans::T),
];
const SCALARS: [f32; 4] = [0.0, 1.0, -0.5, 2.0];
const SIZES: [usize; 12] = [0, 1, 2, 3, 7, 8, 9, 16, 17, 33, 64, 65];

#[test]
fn gemm_size_sweep_all_transposes() {
    // Every (m, n, k) of SIZES³ in all four transpose combos; the 16 (α, β)
    // pairs rotate over the sizes so each pair meets many shapes.
    let mut case = 0u64;
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &SIZES {
                for (ta, tb) in TRANS {
                    let alpha = SCALARS[(case % 4) as usize];
                    let beta = SCALARS[((case / 4) % 4) as usize];
                    check_gemm(m, n, k, alpha, ta, tb, beta, case);
                    case += 1;
                }
            }
        }
    }
}

#[test]
fn gemm_all_scalars_on_awkward_shapes() {
    for (m, n, k) in [
        (1, 1, 1),
        (9, 17, 33),
        (65, 7, 64),
        (3, 65, 0),
        (8, 8, 8),
        (0, 5, 5),
    ] {
        for (ta, tb) in TRANS {
            for &alpha in &SCALARS {
                for &beta in &SCALARS {
                    check_gemm(m, n, k, alpha, ta, tb, beta, (m * 1000 + n * 10 + k) as u64);
                }
            }
        }
    }
}

#[test]
fn gemm_large_k_crosses_matrixmultiply_blocking() {
    // k > kc (256) and n > nc-ish splits: the β of later k-blocks is 1.
    check_gemm(37, 70, 600, 1.0, Trans::N, Trans::N, 0.0, 1);
    check_gemm(70, 37, 600, -0.5, Trans::T, Trans::T, 2.0, 2);
}

#[test]
fn gemm_alpha_zero_does_not_read_inputs() {
    let a = [f32::NAN; 6];
    let b = [f32::INFINITY; 6];
    let mut c = [1.0f32, 2.0, 3.0, 4.0];
    matmul::gemm(2, 2, 3, 0.0, &a, Trans::N, &b, Trans::N, 2.0, &mut c);
    assert_eq!(c, [2.0, 4.0, 6.0, 8.0]);
    let mut c64 = [1.0f64, 2.0, 3.0, 4.0];
    ref_matmul::gemm(
        2,
        2,
        3,
        0.0,
        &[f64::NAN; 6],
        Trans::N,
        &[f64::INFINITY; 6],
        Trans::N,
        2.0,
        &mut c64,
    );
    assert_eq!(c64, [2.0, 4.0, 6.0, 8.0]);
}

#[test]
fn gemm_closed_form() {
    // A (2×3) = [1 2 3; 4 5 6], B (3×2) = [7 8; 9 10; 11 12]: A·B = [58 64; 139 154].
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
    let at = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]; // Aᵀ stored 3×2
    let bt = [7.0, 9.0, 11.0, 8.0, 10.0, 12.0]; // Bᵀ stored 2×3
    for (x, ta, y, tb) in [
        (&a, Trans::N, &b, Trans::N),
        (&at, Trans::T, &b, Trans::N),
        (&a, Trans::N, &bt, Trans::T),
        (&at, Trans::T, &bt, Trans::T),
    ] {
        let mut c = [1.0f64; 4];
        ref_matmul::gemm(2, 2, 3, 1.0, x, ta, y, tb, 1.0, &mut c);
        assert_eq!(c, [59.0, 65.0, 140.0, 155.0], "reference {ta:?}{tb:?}");
        let mut c32 = [1.0f32; 4];
        let (x32, y32): (Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| v as f32).collect(),
            y.iter().map(|&v| v as f32).collect(),
        );
        matmul::gemm(2, 2, 3, 1.0, &x32, ta, &y32, tb, 1.0, &mut c32);
        assert_eq!(c32, [59.0, 65.0, 140.0, 155.0], "simd {ta:?}{tb:?}");
    }
}

/// Explicit row-major transpose of a rows×cols matrix.
fn transposed(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols * rows)
        .map(|idx| x[(idx % rows) * cols + idx / rows])
        .collect()
}

#[test]
fn f64_gemm_transposes_match_explicit_copies() {
    // The f64 gemm (the Kernels impl used by gradient checks) with strided
    // transposes equals the NN product of explicitly transposed copies.
    for (m, n, k) in [(3, 5, 4), (1, 7, 9), (8, 1, 2), (6, 6, 6)] {
        let a = widen(&data(m * k, 90));
        let b = widen(&data(k * n, 91));
        let c0 = widen(&data(m * n, 92));
        let (a_t, b_t) = (transposed(&a, m, k), transposed(&b, k, n));
        let mut want = c0.clone();
        <f64 as Kernels>::gemm(m, n, k, -0.5, &a, Trans::N, &b, Trans::N, 2.0, &mut want);
        for (x, ta, y, tb) in [
            (&a_t, Trans::T, &b, Trans::N),
            (&a, Trans::N, &b_t, Trans::T),
            (&a_t, Trans::T, &b_t, Trans::T),
        ] {
            let mut got = c0.clone();
            <f64 as Kernels>::gemm(m, n, k, -0.5, x, ta, y, tb, 2.0, &mut got);
            assert_eq!(got, want, "m={m} n={n} k={k} {ta:?}{tb:?}");
        }
    }
}

#[test]
#[should_panic(expected = "gemm: B has")]
fn gemm_rejects_bad_lengths() {
    matmul::gemm(
        2,
        2,
        2,
        1.0,
        &[0.0; 4],
        Trans::N,
        &[0.0; 3],
        Trans::N,
        0.0,
        &mut [0.0; 4],
    );
}

// ---------------------------------------------------------------- score ----

fn check_score(q: usize, d: usize, n: usize, alpha: f32, queries: &[f32], items: &[f32]) {
    let mut got = vec![f32::NAN; q * n];
    score::score(&mut got, queries, items, d, alpha);
    let mut want = vec![f64::NAN; q * n];
    ref_score::score(
        &mut want,
        &widen(queries),
        &widen(items),
        d,
        f64::from(alpha),
    );
    for r in 0..q {
        for j in 0..n {
            let abs_dot: f64 = (0..d)
                .map(|p| (f64::from(queries[r * d + p]) * f64::from(items[j * d + p])).abs())
                .sum();
            let tol = (d as f64 + 5.0) * U * f64::from(alpha).abs() * abs_dot;
            let (g, w) = (f64::from(got[r * n + j]), want[r * n + j]);
            assert!(
                (g - w).abs() <= tol,
                "score q={q} d={d} n={n} α={alpha} at ({r},{j}): got {g}, want {w}, tol {tol}"
            );
        }
    }
}

#[test]
fn score_shape_sweep() {
    let qs = (0..=9).chain([17]);
    for q in qs {
        for d in [1, 7, 8, 9, 16, 33, 64, 65] {
            for n in [0, 1, 7, 8, 9, 31, 257] {
                let queries = data(q * d, 5 + q as u64);
                let items = data(n * d, 100 + d as u64);
                check_score(q, d, n, 1.0, &queries, &items);
                check_score(q, d, n, -0.5, &queries, &items);
            }
        }
    }
}

#[test]
fn score_many_queries_cross_item_blocks() {
    // q > 8 walks items in ~128 KiB blocks: 512 items at d = 64, 504 at
    // d = 65; n = 1200 gives two full blocks and a partial one.
    for (q, d) in [(17, 64), (12, 65), (9, 8)] {
        let n = 1200;
        check_score(q, d, n, 0.25, &data(q * d, 40), &data(n * d, 41));
    }
}

#[test]
fn score_alpha_zero_and_kernels_trait() {
    let mut out = [f32::NAN; 6];
    score::score(&mut out, &[f32::NAN; 4], &[f32::INFINITY; 6], 2, 0.0);
    assert_eq!(out, [0.0; 6]);
    // The trait wiring: f32 → SIMD kernel, f64 → twin.
    let (queries, items) = (data(3 * 9, 50), data(11 * 9, 51));
    let mut direct = vec![0.0f32; 33];
    let mut via_trait = vec![0.0f32; 33];
    score::score(&mut direct, &queries, &items, 9, 1.5);
    <f32 as Kernels>::score(&mut via_trait, &queries, &items, 9, 1.5);
    assert_eq!(direct, via_trait);
}

#[test]
fn score_equals_gemm_nt_within_bound() {
    // score(Q, E) is gemm(Q, N, E, T) with β = 0.
    let (q, d, n) = (5, 64, 300);
    let (queries, items) = (data(q * d, 60), data(n * d, 61));
    let mut a = vec![f32::NAN; q * n];
    let mut b = vec![f32::NAN; q * n];
    score::score(&mut a, &queries, &items, d, 1.0);
    matmul::gemm(
        q,
        n,
        d,
        1.0,
        &queries,
        Trans::N,
        &items,
        Trans::T,
        0.0,
        &mut b,
    );
    for j in 0..q * n {
        // Both within (d+5)u·S of the exact value, so within twice that of each other; S ≤ d·4.
        assert!(
            (a[j] - b[j]).abs() as f64 <= 2.0 * (d as f64 + 5.0) * U * 4.0 * d as f64,
            "{j}"
        );
    }
}

#[test]
fn score_is_bit_identical_however_rows_are_batched() {
    // Every dot product uses the same lane split and reduction tree whatever
    // the block shape (R×IB, item tail, item block), so scoring one user
    // alone or inside a batch, or one item alone, gives the same bits.
    let (q, d, n) = (19, 37, 70);
    let (queries, items) = (data(q * d, 70), data(n * d, 71));
    let mut batched = vec![f32::NAN; q * n];
    score::score(&mut batched, &queries, &items, d, 0.75);
    for r in 0..q {
        let mut alone = vec![f32::NAN; n];
        score::score(&mut alone, &queries[r * d..(r + 1) * d], &items, d, 0.75);
        assert_eq!(alone, batched[r * n..(r + 1) * n], "row {r}");
        let j = (r * 7) % n;
        let mut single = [f32::NAN];
        score::score(
            &mut single,
            &queries[r * d..(r + 1) * d],
            &items[j * d..(j + 1) * d],
            d,
            0.75,
        );
        assert_eq!(single[0], batched[r * n + j], "row {r} item {j}");
    }
}

#[test]
#[should_panic(expected = "score: the embedding width d must be at least 1")]
fn score_rejects_zero_width() {
    score::score(&mut [], &[], &[], 0, 1.0);
}

#[test]
#[should_panic(expected = "score: out has")]
fn score_rejects_bad_out() {
    score::score(&mut [0.0; 3], &[0.0; 4], &[0.0; 4], 2, 1.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn score_random(
        (q, d, n, queries, items) in (0usize..12, 1usize..80, 0usize..60).prop_flat_map(|(q, d, n)| {
            (Just(q), Just(d), Just(n),
             prop::collection::vec(-3.0f32..3.0, q * d),
             prop::collection::vec(-3.0f32..3.0, n * d))
        }),
        alpha in prop_oneof![Just(1.0f32), -4.0f32..4.0],
    ) {
        check_score(q, d, n, alpha, &queries, &items);
    }

    #[test]
    fn gemm_random(m in 0usize..40, n in 0usize..40, k in 0usize..40, t in 0usize..4,
                   alpha in -2.0f32..2.0, beta in prop_oneof![Just(0.0f32), -2.0f32..2.0], seed in 0u64..1000) {
        let (ta, tb) = TRANS[t];
        check_gemm(m, n, k, alpha, ta, tb, beta, seed);
    }
}
