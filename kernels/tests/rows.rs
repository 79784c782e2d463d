//! Row kernels: every `f32` SIMD kernel against its scalar twin, plus
//! closed-form cases, edge cases and a GELU accuracy sweep.
//!
//! The twin is run in `f64` on the very same (f32-valued) inputs, so the
//! reference is accurate to ~1e−16 and each tolerance below only has to
//! cover the SIMD kernel's own f32 rounding. Tolerances are written as
//! bounds of the form (number of roundings on the longest path) ·
//! `f32::EPSILON` · (magnitude of the terms involved), so a kernel that
//! drops, duplicates or misplaces a single term fails them.
//!
//! Forward kernels get outputs poisoned with NaN first (every element must
//! be written); accumulating kernels start from random non-zero gradients
//! (they must add, not overwrite), and elements outside a softmax range
//! must stay bit-identical.

// The checks walk several parallel arrays (SIMD output, twin output,
// inputs) by one index; that reads more plainly than nested zips.
#![allow(clippy::needless_range_loop)]

use dtrec_kernels::reference as twin;
use dtrec_kernels::simd;
use dtrec_kernels::AdamStep;

/// Unit of the tolerances: 2⁻²³, twice the f32 unit roundoff.
const EPS: f64 = f32::EPSILON as f64;
/// Lengths around the lane widths (8 and 16), the 4×8 unrolled stride, and
/// a prime well past it.
const EDGE_LENGTHS: [usize; 10] = [0, 1, 7, 8, 9, 15, 16, 17, 33, 257];
/// Input scales: unit, typical logits, and large enough to stress exp.
const SCALES: [f32; 3] = [1.0, 10.0, 100.0];
/// Longest chain of dependent additions in a lane reduction over n terms,
/// plus the final lane combination and horizontal sum (≤ 8 roundings):
/// the reduction's error is ≤ that many unit roundoffs times Σ|terms|.
fn chain(n: usize) -> f64 {
    (n / 16 + 10) as f64
}

/// SplitMix64: a tiny deterministic generator for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [−scale, scale).
    fn uniform(&mut self, scale: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * unit - 1.0) * scale
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Asserts |got − want| ≤ tol (NaN in `got` fails, as NaN ≤ tol is false).
#[track_caller]
fn assert_close(what: &str, i: usize, got: f32, want: f64, tol: f64) {
    let err = (got as f64 - want).abs();
    assert!(
        err <= tol,
        "{what}[{i}]: got {got:e}, want {want:e}, |err| {err:e} > tol {tol:e}"
    );
}

// ---------------------------------------------------------------------------
// One check per kernel: run SIMD (f32) and twin (f64) on the same inputs.
// ---------------------------------------------------------------------------

fn dot(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (a, b) = (rng.vec(n, scale), rng.vec(n, scale));
    let got = simd::vector::dot(&a, &b);
    let want = twin::vector::dot(&widen(&a), &widen(&b));
    let magnitude: f64 = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| (x as f64 * y as f64).abs())
        .sum();
    assert_close("dot", 0, got, want, chain(n) * EPS * magnitude);
}

fn sum(n: usize, seed: u64, scale: f32) {
    let x = Rng::new(seed).vec(n, scale);
    let got = simd::vector::sum(&x);
    let want = twin::vector::sum(&widen(&x));
    let magnitude: f64 = x.iter().map(|&v| (v as f64).abs()).sum();
    assert_close("sum", 0, got, want, chain(n) * EPS * magnitude);
}

fn max(n: usize, seed: u64, scale: f32) {
    let x = Rng::new(seed).vec(n, scale);
    // The max of f32 values is one of them: exact.
    assert_eq!(simd::vector::max(&x) as f64, twin::vector::max(&widen(&x)));
}

fn axpy(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (x, y0, alpha) = (rng.vec(n, scale), rng.vec(n, scale), rng.uniform(2.0));
    let mut got = y0.clone();
    simd::vector::axpy(&mut got, alpha, &x);
    let mut want = widen(&y0);
    twin::vector::axpy(&mut want, alpha as f64, &widen(&x));
    // One fused multiply-add per element: a single rounding, ≤ ½ ulp.
    for i in 0..n {
        assert_close(
            "axpy",
            i,
            got[i],
            want[i],
            0.5 * EPS * want[i].abs() + f64::from(f32::MIN_POSITIVE),
        );
    }
}

fn scale(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (x0, alpha) = (rng.vec(n, scale), rng.uniform(2.0));
    let mut got = x0.clone();
    simd::vector::scale(&mut got, alpha);
    let mut want = widen(&x0);
    twin::vector::scale(&mut want, alpha as f64);
    for i in 0..n {
        assert_close(
            "scale",
            i,
            got[i],
            want[i],
            0.5 * EPS * want[i].abs() + f64::from(f32::MIN_POSITIVE),
        );
    }
}

fn add(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (a, b) = (rng.vec(n, scale), rng.vec(n, scale));
    let mut got = vec![f32::NAN; n];
    simd::vector::add(&mut got, &a, &b);
    let mut want = vec![f64::NAN; n];
    twin::vector::add(&mut want, &widen(&a), &widen(&b));
    for i in 0..n {
        assert_close("add", i, got[i], want[i], 0.5 * EPS * want[i].abs());
    }
}

/// A valid range inside a row of n columns: sometimes empty, sometimes the
/// whole row, otherwise random.
fn random_range(rng: &mut Rng, n: usize) -> core::ops::Range<usize> {
    match rng.below(4) {
        0 => 0..n,
        1 => {
            let at = rng.below(n + 1);
            at..at
        }
        _ => {
            let (p, q) = (rng.below(n + 1), rng.below(n + 1));
            p.min(q)..p.max(q)
        }
    }
}

fn softmax_forward(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(n, scale);
    let valid = random_range(&mut rng, n);
    let mut got = vec![f32::NAN; n];
    simd::softmax::softmax_forward(&mut got, &x, valid.clone());
    let mut want = vec![f64::NAN; n];
    twin::softmax::softmax_forward(&mut want, &widen(&x), valid.clone());
    let row_max = x[valid.clone()]
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let len = valid.len();
    for i in 0..n {
        if !valid.contains(&i) {
            assert_eq!(got[i], 0.0, "softmax_forward[{i}] outside {valid:?}");
            continue;
        }
        // Per element: x − max rounds to ½ ulp(|x − max|), a relative error
        // of |x − max|·u in the exp; the exp itself ≤ 3 ulp; the lane sum
        // chain(len) roundings; reciprocal and product 2 more. Results that
        // the exp flushes (true value < e^−87 ≈ 1.6e−38) need an absolute
        // floor.
        let roundings = 5.0 + chain(len) + 0.5 * (x[i] as f64 - row_max).abs();
        let tol = roundings * EPS * want[i] + 1e-37;
        assert_close("softmax_forward", i, got[i], want[i], tol);
    }
}

fn softmax_backward(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    // `out` a genuine softmax row (so ⟨out, dout⟩ has its real magnitude).
    let logits = rng.vec(n, scale.min(10.0));
    let mut out = vec![0.0f32; n];
    let valid = random_range(&mut rng, n);
    twin::softmax::softmax_forward(&mut out, &logits, valid.clone());
    let (dout, dinp0) = (rng.vec(n, scale), rng.vec(n, scale));
    let mut got = dinp0.clone();
    simd::softmax::softmax_backward(&mut got, &dout, &out, valid.clone());
    let mut want = widen(&dinp0);
    twin::softmax::softmax_backward(&mut want, &widen(&dout), &widen(&out), valid.clone());
    let inner_magnitude: f64 = valid
        .clone()
        .map(|i| (out[i] as f64 * dout[i] as f64).abs())
        .sum();
    let inner_tol = chain(valid.len()) * EPS * inner_magnitude;
    for i in 0..n {
        if !valid.contains(&i) {
            assert_eq!(
                got[i].to_bits(),
                dinp0[i].to_bits(),
                "softmax_backward[{i}] outside {valid:?} touched"
            );
            continue;
        }
        let (y, dy, dx) = (out[i] as f64, dout[i] as f64, dinp0[i] as f64);
        // dy − ⟨·⟩ (1 rounding), fma into dx (1 rounding), plus y times the
        // inner product's own error.
        let tol = 2.0 * EPS * (dx.abs() + y * (dy.abs() + inner_magnitude)) + y * inner_tol;
        assert_close("softmax_backward", i, got[i], want[i], tol);
    }
}

/// Row count and width for the (rows, d) kernels: the edge length is the
/// width; a zero length means zero rows of width 5.
fn rows_and_width(n: usize, rng: &mut Rng) -> (usize, usize) {
    if n == 0 {
        (0, 5)
    } else {
        (1 + rng.below(3), n)
    }
}

fn layernorm_forward(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (rows, d) = rows_and_width(n, &mut rng);
    // An offset makes |mean| comparable to the spread, as in real
    // activations; the centred variance must not cancel.
    let offset = rng.uniform(scale);
    let x: Vec<f32> = rng
        .vec(rows * d, scale)
        .iter()
        .map(|v| v + offset)
        .collect();
    let (gamma, beta) = (rng.vec(d, 2.0), rng.vec(d, 1.0));
    let eps = 1e-5f32;
    let (mut out, mut mean, mut rstd) = (
        vec![f32::NAN; rows * d],
        vec![f32::NAN; rows],
        vec![f32::NAN; rows],
    );
    simd::layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, &x, &gamma, &beta, d, eps);
    let (mut out_w, mut mean_w, mut rstd_w) = (
        vec![f64::NAN; rows * d],
        vec![f64::NAN; rows],
        vec![f64::NAN; rows],
    );
    let (xw, gw, bw) = (widen(&x), widen(&gamma), widen(&beta));
    twin::layernorm::layernorm_forward(
        &mut out_w,
        &mut mean_w,
        &mut rstd_w,
        &xw,
        &gw,
        &bw,
        d,
        eps as f64,
    );
    for r in 0..rows {
        let row = &xw[r * d..(r + 1) * d];
        let abs_mean = row.iter().map(|v| v.abs()).sum::<f64>() / d as f64;
        // mean: a lane sum over d terms and one product.
        let mean_tol = (chain(d) + 1.0) * EPS * abs_mean;
        assert_close("layernorm mean", r, mean[r], mean_w[r], mean_tol);
        // rstd: the centred squares see x − mean with the mean's error δ,
        // which shifts the sum of squares by only d·δ² (the linear term
        // cancels as Σ(x − mean) = 0), then chain(d) roundings, √ and 1/·.
        let rstd_rel = (chain(d) + 4.0) * EPS + (mean_tol * rstd_w[r]).powi(2);
        assert_close(
            "layernorm rstd",
            r,
            rstd[r],
            rstd_w[r],
            rstd_rel * rstd_w[r],
        );
        for j in 0..d {
            let i = r * d + j;
            let xhat = (xw[i] - mean_w[r]) * rstd_w[r];
            // (x − mean) is off by ε|x| + the mean's error, scaled by rstd;
            // x̂ inherits rstd's relative error; 3 roundings in the fma chain.
            let xhat_err =
                rstd_w[r] * (EPS * xw[i].abs() + mean_tol) + xhat.abs() * (rstd_rel + 2.0 * EPS);
            let tol = gw[j].abs() * xhat_err + EPS * out_w[i].abs();
            assert_close("layernorm out", i, out[i], out_w[i], tol);
        }
    }
}

fn layernorm_backward(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (rows, d) = rows_and_width(n, &mut rng);
    let x = rng.vec(rows * d, scale);
    let (gamma, beta) = (rng.vec(d, 2.0), rng.vec(d, 1.0));
    let (mut out, mut mean, mut rstd) = (vec![0.0; rows * d], vec![0.0; rows], vec![0.0; rows]);
    // Saved statistics from the twin, so both backward kernels see the same.
    twin::layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, &x, &gamma, &beta, d, 1e-5);
    let dout = rng.vec(rows * d, 1.0);
    let (dx0, dg0, db0) = (rng.vec(rows * d, 1.0), rng.vec(d, 1.0), rng.vec(d, 1.0));
    let (mut dx, mut dg, mut db) = (dx0.clone(), dg0.clone(), db0.clone());
    simd::layernorm::layernorm_backward(
        &mut dx, &mut dg, &mut db, &dout, &x, &gamma, &mean, &rstd, d,
    );
    let (mut dx_w, mut dg_w, mut db_w) = (widen(&dx0), widen(&dg0), widen(&db0));
    let (doutw, xw, gw, mw, rw) = (
        widen(&dout),
        widen(&x),
        widen(&gamma),
        widen(&mean),
        widen(&rstd),
    );
    twin::layernorm::layernorm_backward(
        &mut dx_w, &mut dg_w, &mut db_w, &doutw, &xw, &gw, &mw, &rw, d,
    );
    // Magnitudes from the twin's own terms, all ≥ 0.
    let xhat: Vec<f64> = (0..rows * d)
        .map(|i| (xw[i] - mw[i / d]) * rw[i / d])
        .collect();
    for r in 0..rows {
        let range = r * d..(r + 1) * d;
        let g_abs: f64 = range
            .clone()
            .map(|i| (doutw[i] * gw[i % d]).abs())
            .sum::<f64>()
            / d as f64;
        let gx_abs: f64 = range
            .clone()
            .map(|i| (doutw[i] * gw[i % d] * xhat[i]).abs())
            .sum::<f64>()
            / d as f64;
        for i in range {
            let g = doutw[i] * gw[i % d];
            // x̂ carries ~3 roundings; each mean carries chain(d); the
            // combination 4 more, times rstd.
            let terms = g.abs() + g_abs + xhat[i].abs() * gx_abs;
            let tol = (chain(d) + 8.0) * EPS * rw[r] * terms + EPS * dx_w[i].abs();
            assert_close("layernorm dinp", i, dx[i], dx_w[i], tol);
        }
    }
    for j in 0..d {
        let col = (0..rows).map(|r| r * d + j);
        let db_terms: f64 = db0[j].abs() as f64 + col.clone().map(|i| doutw[i].abs()).sum::<f64>();
        let dg_terms: f64 =
            dg0[j].abs() as f64 + col.map(|i| (doutw[i] * xhat[i]).abs()).sum::<f64>();
        // One rounding per row added, x̂ with ~4.
        assert_close(
            "layernorm dbeta",
            j,
            db[j],
            db_w[j],
            (rows as f64 + 1.0) * EPS * db_terms,
        );
        assert_close(
            "layernorm dgamma",
            j,
            dg[j],
            dg_w[j],
            (rows as f64 + 5.0) * EPS * dg_terms,
        );
    }
}

/// Accuracy the SIMD GELU promises (the foundation issue's bound), as an
/// absolute error for |x| ≤ 10.
const GELU_ABS_TOL: f64 = 1e-6;

fn gelu_forward(n: usize, seed: u64, scale: f32) {
    let x = Rng::new(seed).vec(n, scale);
    let mut got = vec![f32::NAN; n];
    simd::gelu::gelu_forward(&mut got, &x);
    let mut want = vec![f64::NAN; n];
    twin::gelu::gelu_forward(&mut want, &widen(&x));
    for i in 0..n {
        // Beyond |x| = 10 the final rounding, ½ ulp(x), dominates.
        let tol = GELU_ABS_TOL.max(EPS * (x[i] as f64).abs());
        assert_close("gelu_forward", i, got[i], want[i], tol);
    }
}

fn gelu_backward(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (x, dout, dinp0) = (rng.vec(n, scale), rng.vec(n, 1.0), rng.vec(n, 1.0));
    let mut got = dinp0.clone();
    simd::gelu::gelu_backward(&mut got, &dout, &x);
    let mut want = widen(&dinp0);
    twin::gelu::gelu_backward(&mut want, &widen(&dout), &widen(&x));
    for i in 0..n {
        // GELU′ has absolute error ≤ GELU_ABS_TOL (swept below); then one
        // fma rounding of the accumulated value.
        let tol = GELU_ABS_TOL * (dout[i] as f64).abs() + 0.5 * EPS * want[i].abs();
        assert_close("gelu_backward", i, got[i], want[i], tol);
    }
}

/// Relative error budget of Σ exp(x − m) over n terms whose exponents
/// reach down to −spread: the rounding of x − m (½ ulp of ≤ spread), the
/// exp (≤ 3 ulp) and the lane sum.
fn exp_sum_rel_tol(n: usize, spread: f64) -> f64 {
    (3.0 + chain(n) + 0.5 * spread) * EPS
}

fn lse_accumulate(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(n, scale);
    // Fold the row in random blocks (including empty ones).
    let mut got = (f32::NEG_INFINITY, 0.0f32);
    let mut want = (f64::NEG_INFINITY, 0.0f64);
    let mut start = 0;
    let mut blocks = 0;
    while start < n || blocks == 0 {
        let end = (start + rng.below(40)).min(n);
        simd::xent::lse_accumulate(&mut got, &x[start..end]);
        twin::xent::lse_accumulate(&mut want, &widen(&x[start..end]));
        start = end;
        blocks += 1;
    }
    // The running max is exact.
    assert_eq!(got.0 as f64, want.0, "lse_accumulate max");
    if n == 0 {
        assert_eq!(got.1, 0.0, "lse_accumulate of nothing");
        return;
    }
    let spread = x
        .iter()
        .map(|&v| (v as f64 - want.0).abs())
        .fold(0.0, f64::max);
    // Each block rescales the old sum once more (exp + product: 4 roundings).
    let rel = exp_sum_rel_tol(n, spread) + 4.0 * blocks as f64 * EPS;
    assert_close("lse_accumulate sum", 0, got.1, want.1, rel * want.1);
}

fn xent_backward_block(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (x, g0) = (rng.vec(n, scale), rng.vec(n, 1.0));
    let dloss = rng.uniform(2.0);
    let mut state = (f64::NEG_INFINITY, 0.0);
    twin::xent::lse_accumulate(&mut state, &widen(&x));
    let lse = (state.0 + state.1.ln()) as f32;
    let mut got = g0.clone();
    simd::xent::xent_backward_block(&mut got, &x, lse, dloss);
    let mut want = widen(&g0);
    twin::xent::xent_backward_block(&mut want, &widen(&x), lse as f64, dloss as f64);
    for i in 0..n {
        let term = (dloss as f64 * (x[i] as f64 - lse as f64).exp()).abs();
        let tol = (3.0 + 0.5 * (x[i] - lse).abs() as f64) * EPS * term
            + 0.5 * EPS * want[i].abs()
            + 1e-37;
        assert_close("xent_backward_block", i, got[i], want[i], tol);
    }
}

fn cross_entropy(n: usize, seed: u64, scale: f32) {
    if n == 0 {
        return; // no column to be the target
    }
    let mut rng = Rng::new(seed);
    let (x, g0) = (rng.vec(n, scale), rng.vec(n, 1.0));
    let (target, dloss) = (rng.below(n), rng.uniform(2.0));
    let mut got = g0.clone();
    let loss = simd::xent::cross_entropy(Some(&mut got), &x, target, dloss);
    let mut want = widen(&g0);
    let loss_w = twin::xent::cross_entropy(Some(&mut want), &widen(&x), target, dloss as f64);
    let row_max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let spread = x.iter().map(|&v| row_max - v as f64).fold(0.0, f64::max);
    // lse = max + ln s: the relative error of s becomes an absolute error;
    // the sums of the blocks and the final subtractions add ½ ulp of the
    // row's magnitude each.
    let blocks = n.div_ceil(simd::xent::BLOCK) as f64;
    let s_rel = exp_sum_rel_tol(n, spread) + 4.0 * blocks * EPS;
    let magnitude = row_max.abs().max(x[target].abs() as f64).max(loss_w.abs());
    assert_close(
        "cross_entropy loss",
        0,
        loss,
        loss_w,
        s_rel + 2.0 * EPS * magnitude,
    );
    // Gradient: p = e^(x − lse) carries lse's absolute error as a relative
    // one, plus the exp's; the accumulation and the target subtraction one
    // rounding each. Rows of ≤ 64 columns form (dloss/s)·e^(x − max)
    // instead: s's relative error, the exp's, ½ ulp of x − max and ½ ulp
    // of dloss/s, which the same budget covers (the "+ 1" below is that ½
    // ulp; lse's own ulp, EPS·|max|, does not occur there).
    let lse_abs = s_rel + EPS * row_max.abs();
    for i in 0..n {
        let p = (x[i] as f64 - (loss_w + x[target] as f64)).exp();
        let p_rel = lse_abs + (3.0 + 0.5 * (row_max - x[i] as f64 + 1.0)) * EPS;
        let tol =
            (dloss as f64).abs() * p * p_rel + EPS * (g0[i].abs() as f64 + want[i].abs()) + 1e-37;
        assert_close("cross_entropy dlogits", i, got[i], want[i], tol);
    }
}

fn adam_update(n: usize, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    let (p0, grad, m0) = (rng.vec(n, scale), rng.vec(n, scale), rng.vec(n, scale));
    let v0: Vec<f32> = rng.vec(n, scale).iter().map(|v| v * v).collect();
    let t = 1 + rng.below(100) as i32;
    let (beta1, beta2) = (0.9f32, 0.999f32);
    let step = AdamStep {
        lr: 1e-3,
        beta1,
        beta2,
        eps: 1e-8,
        weight_decay: [0.0, 0.01][rng.below(2)],
        bias_correction1: 1.0 - beta1.powi(t),
        bias_correction2: 1.0 - beta2.powi(t),
        decoupled: rng.below(2) == 1,
    };
    let step_w = AdamStep {
        lr: step.lr as f64,
        beta1: beta1 as f64,
        beta2: beta2 as f64,
        eps: step.eps as f64,
        weight_decay: step.weight_decay as f64,
        bias_correction1: step.bias_correction1 as f64,
        bias_correction2: step.bias_correction2 as f64,
        decoupled: step.decoupled,
    };
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    simd::adam::adam_update(&mut p, &grad, &mut m, &mut v, &step);
    let (mut p_w, mut m_w, mut v_w) = (widen(&p0), widen(&m0), widen(&v0));
    twin::adam::adam_update(&mut p_w, &widen(&grad), &mut m_w, &mut v_w, &step_w);
    for i in 0..n {
        let g = grad[i] as f64
            + if step.decoupled {
                0.0
            } else {
                step_w.weight_decay * p0[i] as f64
            };
        // Moments: a product and an fma (+1 for the folded decay term).
        let m_terms = beta1 as f64 * (m0[i] as f64).abs() + (1.0 - beta1 as f64) * g.abs();
        let v_terms = beta2 as f64 * v0[i] as f64 + (1.0 - beta2 as f64) * g * g;
        assert_close("adam m", i, m[i], m_w[i], 3.0 * EPS * m_terms);
        assert_close("adam v", i, v[i], v_w[i], 4.0 * EPS * v_terms);
        // Update lr·m̂/(√v̂ + eps): the moments' errors plus ~6 roundings;
        // decay folded as one product; the final subtraction ½ ulp.
        let update = step_w.lr * (m_w[i] / step_w.bias_correction1).abs()
            / ((v_w[i] / step_w.bias_correction2).sqrt() + step_w.eps);
        let tol = 10.0 * EPS * update + 2.0 * EPS * (p0[i] as f64).abs();
        assert_close("adam param", i, p[i], p_w[i], tol);
    }
}

// ---------------------------------------------------------------------------
// The suite: every check at every edge length and on proptest inputs.
// ---------------------------------------------------------------------------

macro_rules! against_twin {
    ($($kernel:ident),* $(,)?) => {
        mod edge_lengths {
            $(
                #[test]
                fn $kernel() {
                    for &n in &super::EDGE_LENGTHS {
                        for seed in 0..4 {
                            for &scale in &super::SCALES {
                                super::$kernel(n, seed, scale);
                            }
                        }
                    }
                }
            )*
        }
        mod random_inputs {
            use proptest::prelude::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(96))]
                $(
                    #[test]
                    fn $kernel(
                        n in 0usize..600,
                        seed in any::<u64>(),
                        scale in prop::sample::select(super::SCALES.to_vec()),
                    ) {
                        super::$kernel(n, seed, scale);
                    }
                )*
            }
        }
    };
}

against_twin!(
    dot,
    sum,
    max,
    axpy,
    scale,
    add,
    softmax_forward,
    softmax_backward,
    layernorm_forward,
    layernorm_backward,
    gelu_forward,
    gelu_backward,
    lse_accumulate,
    xent_backward_block,
    cross_entropy,
    adam_update,
);

// ---------------------------------------------------------------------------
// Closed forms and edge cases.
// ---------------------------------------------------------------------------

#[test]
fn softmax_of_zero_and_ln3_is_quarter_three_quarters() {
    let mut out = [f32::NAN; 2];
    simd::softmax::softmax_forward(&mut out, &[0.0, 3f32.ln()], 0..2);
    assert!(
        (out[0] - 0.25).abs() <= 2.0 * f32::EPSILON && (out[1] - 0.75).abs() <= 2.0 * f32::EPSILON,
        "{out:?}"
    );
    let mut out_w = [f64::NAN; 2];
    twin::softmax::softmax_forward(&mut out_w, &[0.0, 3f64.ln()], 0..2);
    assert!(
        (out_w[0] - 0.25).abs() < 1e-15 && (out_w[1] - 0.75).abs() < 1e-15,
        "{out_w:?}"
    );
}

#[test]
fn softmax_of_a_masked_or_empty_range_is_all_zeros() {
    for n in [0usize, 1, 9, 17] {
        let mut out = vec![f32::NAN; n];
        simd::softmax::softmax_forward(&mut out, &vec![1.0; n], n / 2..n / 2);
        assert!(
            out.iter().all(|&v| v == 0.0),
            "empty range, n = {n}: {out:?}"
        );
        let mut out = vec![f32::NAN; n];
        simd::softmax::softmax_forward(&mut out, &vec![f32::NEG_INFINITY; n], 0..n);
        assert!(out.iter().all(|&v| v == 0.0), "all −∞, n = {n}: {out:?}");
    }
    // −∞ entries inside a range get exactly 0 and the rest still sums to 1.
    let x = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
    let mut out = [f32::NAN; 4];
    simd::softmax::softmax_forward(&mut out, &x, 0..4);
    assert_eq!(out, [0.0, 0.5, 0.0, 0.5]);
}

#[test]
fn softmax_of_large_magnitudes_does_not_overflow() {
    let mut rng = Rng::new(7);
    for n in [1usize, 8, 33, 257] {
        let x: Vec<f32> = (0..n)
            .map(|_| if rng.below(2) == 0 { 1e4 } else { -1e4 } + rng.uniform(1.0))
            .collect();
        let mut out = vec![f32::NAN; n];
        simd::softmax::softmax_forward(&mut out, &x, 0..n);
        let mut want = vec![0.0f64; n];
        twin::softmax::softmax_forward(&mut want, &widen(&x), 0..n);
        let total: f32 = out.iter().sum();
        assert!(
            (total - 1.0).abs() <= chain(n) as f32 * f32::EPSILON,
            "sum {total}"
        );
        for i in 0..n {
            assert!(out[i].is_finite());
            // Spread up to 2e4 + 2: x − max is exact here only up to ½ ulp
            // of 2e4 ≈ 1e−3, which only matters for terms e^(−2e4) = 0.
            assert_close("softmax ±1e4", i, out[i], want[i], 1e-3 * want[i] + 1e-37);
        }
    }
}

#[test]
fn softmax_backward_of_uniform_gradient_is_zero() {
    // ⟨out, c·1⟩ = c, so out ⊙ (c − c) = 0.
    let mut out = [0.0f32; 9];
    simd::softmax::softmax_forward(
        &mut out,
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        0..9,
    );
    let mut dinp = [0.0f32; 9];
    simd::softmax::softmax_backward(&mut dinp, &[0.5; 9], &out, 0..9);
    assert!(dinp.iter().all(|g| g.abs() <= 1e-7), "{dinp:?}");
}

#[test]
fn layernorm_of_a_known_row() {
    // x = [1, 2, 3, 4]: mean 2.5, biased var 1.25.
    let x = [1.0f32, 2.0, 3.0, 4.0];
    let (mut out, mut mean, mut rstd) = ([f32::NAN; 4], [f32::NAN], [f32::NAN]);
    simd::layernorm::layernorm_forward(
        &mut out, &mut mean, &mut rstd, &x, &[2.0; 4], &[1.0; 4], 4, 0.0,
    );
    let rs = 1.0 / 1.25f32.sqrt();
    assert_eq!(mean[0], 2.5);
    assert!((rstd[0] - rs).abs() <= f32::EPSILON * rs);
    for j in 0..4 {
        let want = (x[j] - 2.5) * rs * 2.0 + 1.0;
        assert!((out[j] - want).abs() <= 4.0 * f32::EPSILON, "{out:?}");
    }
}

#[test]
fn gelu_at_known_points() {
    // GELU(1) = Φ(1) = 0.841344746068542948..., GELU(−1) = −Φ(−1) =
    // −0.158655253931457051..., GELU(3) = 3·Φ(3) = 3·0.998650101968369...
    let x = [0.0f32, 1.0, -1.0, 3.0];
    let want = [
        0.0f64,
        0.841_344_746_068_543,
        -0.158_655_253_931_457_05,
        2.995_950_305_905_11,
    ];
    let mut got = [f32::NAN; 4];
    simd::gelu::gelu_forward(&mut got, &x);
    let mut got_w = [f64::NAN; 4];
    twin::gelu::gelu_forward(&mut got_w, &widen(&x));
    for i in 0..4 {
        assert_close("gelu", i, got[i], want[i], 1e-7);
        assert!(
            (got_w[i] - want[i]).abs() < 1e-15,
            "twin gelu({}) = {}",
            x[i],
            got_w[i]
        );
    }
    // Far tails: exactly x and exactly 0; infinities do not turn into NaN.
    let x = [50.0f32, -50.0, f32::INFINITY];
    let mut got = [f32::NAN; 3];
    simd::gelu::gelu_forward(&mut got, &x);
    assert_eq!(got, [50.0, 0.0, f32::INFINITY]);
}

/// Max abs error of the SIMD GELU and GELU′ over a dense grid of [−10, 10]
/// against the twin in f64 (libm's erf, ~1 ulp of f64).
#[test]
fn gelu_accuracy_sweep_over_minus_10_to_10() {
    const POINTS: usize = 2_000_001;
    let x: Vec<f32> = (0..POINTS)
        .map(|i| (-10.0 + 20.0 * i as f64 / (POINTS - 1) as f64) as f32)
        .collect();
    let mut got = vec![f32::NAN; POINTS];
    simd::gelu::gelu_forward(&mut got, &x);
    let mut want = vec![f64::NAN; POINTS];
    let xw = widen(&x);
    twin::gelu::gelu_forward(&mut want, &xw);
    let worst = (0..POINTS)
        .map(|i| ((got[i] as f64 - want[i]).abs(), x[i]))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    eprintln!("GELU max abs error {:e} at x = {}", worst.0, worst.1);
    assert!(
        worst.0 <= GELU_ABS_TOL,
        "GELU max abs error {:e} at x = {}",
        worst.0,
        worst.1
    );

    let mut grad = vec![0.0f32; POINTS];
    simd::gelu::gelu_backward(&mut grad, &vec![1.0; POINTS], &x);
    let mut grad_w = vec![0.0f64; POINTS];
    twin::gelu::gelu_backward(&mut grad_w, &vec![1.0; POINTS], &xw);
    let worst = (0..POINTS)
        .map(|i| ((grad[i] as f64 - grad_w[i]).abs(), x[i]))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    eprintln!("GELU′ max abs error {:e} at x = {}", worst.0, worst.1);
    assert!(
        worst.0 <= GELU_ABS_TOL,
        "GELU′ max abs error {:e} at x = {}",
        worst.0,
        worst.1
    );
}

#[test]
fn cross_entropy_of_a_uniform_row_is_ln_n() {
    let logits = [2.0f32; 5];
    let mut g = [0.0f32; 5];
    let loss = simd::xent::cross_entropy(Some(&mut g), &logits, 3, 1.0);
    assert!((loss - 5f32.ln()).abs() <= 2.0 * f32::EPSILON, "{loss}");
    for (i, &gi) in g.iter().enumerate() {
        let want = if i == 3 { -0.8 } else { 0.2 };
        assert!((gi - want).abs() <= 4.0 * f32::EPSILON, "{g:?}");
    }
    let mut gw = [0.0f64; 5];
    let loss_w = twin::xent::cross_entropy(Some(&mut gw), &[2.0f64; 5], 3, 1.0);
    assert!(
        (loss_w - 5f64.ln()).abs() < 1e-15
            && (gw[3] + 0.8).abs() < 1e-15
            && (gw[0] - 0.2).abs() < 1e-15
    );
}

#[test]
fn cross_entropy_over_100003_columns_matches_the_twin() {
    const N: usize = 100_003;
    let mut rng = Rng::new(100_003);
    let x = rng.vec(N, 20.0);
    for target in [0, 4_097, N - 1] {
        let mut got = vec![0.0f32; N];
        let loss = simd::xent::cross_entropy(Some(&mut got), &x, target, 0.5);
        let mut want = vec![0.0f64; N];
        let loss_w = twin::xent::cross_entropy(Some(&mut want), &widen(&x), target, 0.5);
        // 49 blocks of 2048 columns, spread ≤ 40: the budget of
        // `cross_entropy` above at this size.
        let s_rel = exp_sum_rel_tol(N, 40.0) + 4.0 * 49.0 * EPS;
        assert_close(
            "ce 100k loss",
            target,
            loss,
            loss_w,
            s_rel + 2.0 * EPS * 20.0,
        );
        let total: f64 = got.iter().map(|&g| g as f64).sum();
        assert!(total.abs() < 1e-4, "gradient sums to {total}, not 0");
        for i in 0..N {
            let p_rel = s_rel + EPS * 20.0 + (3.0 + 0.5 * 41.0) * EPS;
            assert_close(
                "ce 100k dlogits",
                i,
                got[i],
                want[i],
                0.5 * want[i].abs() * p_rel + 1e-37,
            );
        }
    }
}

#[test]
fn cross_entropy_blocks_fold_like_one_pass() {
    // lse of the whole row equals lse folded over any block split.
    let x = Rng::new(3).vec(5_000, 30.0);
    let mut whole = (f32::NEG_INFINITY, 0.0f32);
    simd::xent::lse_accumulate(&mut whole, &x);
    let mut folded = (f32::NEG_INFINITY, 0.0f32);
    for block in x.chunks(777) {
        simd::xent::lse_accumulate(&mut folded, block);
    }
    let (a, b) = (whole.0 + whole.1.ln(), folded.0 + folded.1.ln());
    assert!((a - b).abs() <= 64.0 * f32::EPSILON * a.abs(), "{a} vs {b}");
}

#[test]
fn adam_first_step_moves_by_lr_times_sign() {
    // t = 1: m̂ = g, v̂ = g², so the step is lr·g/(|g| + eps) ≈ lr·sign(g).
    let step = AdamStep {
        lr: 0.01f32,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        bias_correction1: 0.1,
        bias_correction2: 1.0 - 0.999,
        decoupled: false,
    };
    let grad = [3.0f32, -0.5, 2.0, -7.0, 1.0, 1.0, -1.0, 4.0, 0.25];
    let mut p = [1.0f32; 9];
    let (mut m, mut v) = ([0.0f32; 9], [0.0f32; 9]);
    simd::adam::adam_update(&mut p, &grad, &mut m, &mut v, &step);
    for i in 0..9 {
        let want = 1.0 - 0.01 * grad[i].signum();
        assert!(
            (p[i] - want).abs() <= 1e-6,
            "p[{i}] = {}, want {want}",
            p[i]
        );
    }
    // AdamW with a zero gradient only decays: p·(1 − lr·wd).
    let decay = AdamStep {
        weight_decay: 0.5,
        decoupled: true,
        ..step
    };
    let (mut p, mut m, mut v) = ([2.0f32; 3], [0.0f32; 3], [0.0f32; 3]);
    simd::adam::adam_update(&mut p, &[0.0; 3], &mut m, &mut v, &decay);
    assert!(
        p.iter()
            .all(|&x| (x - 2.0 * (1.0 - 0.005)).abs() <= 2.0 * f32::EPSILON),
        "{p:?}"
    );
}

// ---------------------------------------------------------------------------
// The twins' backward kernels against central differences of their forward
// kernels (f64), so the SIMD kernels are not checked against a wrong twin.
// ---------------------------------------------------------------------------

/// Central difference of a scalar function of a vector along coordinate i.
fn central_difference(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize) -> f64 {
    let h = 1e-5;
    let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
    xp[i] += h;
    xm[i] -= h;
    (f(&xp) - f(&xm)) / (2.0 * h)
}

/// FD step h = 1e−5 leaves O(h²·f‴) ≈ 1e−10 truncation and ~1e−11
/// cancellation error for our O(1) functions.
const FD_TOL: f64 = 1e-7;

#[test]
fn twin_backwards_match_finite_differences() {
    let mut rng = Rng::new(11);
    let n = 7;
    let x = widen(&rng.vec(n, 2.0));
    let w = widen(&rng.vec(n, 1.0)); // projection making each output scalar
    let valid = 1..6;

    // softmax: L = ⟨w, softmax(x)⟩.
    let softmax_loss = |x: &[f64]| {
        let mut out = vec![0.0; x.len()];
        twin::softmax::softmax_forward(&mut out, x, valid.clone());
        out.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
    };
    let mut out = vec![0.0; n];
    twin::softmax::softmax_forward(&mut out, &x, valid.clone());
    let mut dinp = vec![0.0; n];
    twin::softmax::softmax_backward(&mut dinp, &w, &out, valid.clone());
    for i in 0..n {
        let fd = central_difference(&softmax_loss, &x, i);
        assert!(
            (dinp[i] - fd).abs() < FD_TOL,
            "softmax d[{i}]: {} vs {fd}",
            dinp[i]
        );
    }

    // GELU: L = ⟨w, gelu(x)⟩.
    let gelu_loss = |x: &[f64]| {
        let mut out = vec![0.0; x.len()];
        twin::gelu::gelu_forward(&mut out, x);
        out.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
    };
    let mut dinp = vec![0.0; n];
    twin::gelu::gelu_backward(&mut dinp, &w, &x);
    for i in 0..n {
        let fd = central_difference(&gelu_loss, &x, i);
        assert!(
            (dinp[i] - fd).abs() < FD_TOL,
            "gelu d[{i}]: {} vs {fd}",
            dinp[i]
        );
    }

    // Cross-entropy: L = dloss·CE(x, target).
    let (target, dloss) = (4, 0.7);
    let ce_loss = |x: &[f64]| dloss * twin::xent::cross_entropy(None, x, target, 1.0);
    let mut dinp = vec![0.0; n];
    twin::xent::cross_entropy(Some(&mut dinp), &x, target, dloss);
    for i in 0..n {
        let fd = central_difference(&ce_loss, &x, i);
        assert!(
            (dinp[i] - fd).abs() < FD_TOL,
            "ce d[{i}]: {} vs {fd}",
            dinp[i]
        );
    }

    // Layernorm over 2 rows of width 7: L = ⟨W, out⟩, gradients of x, γ, β.
    let (d, rows) = (n, 2);
    let xs = widen(&rng.vec(rows * d, 2.0));
    let ws = widen(&rng.vec(rows * d, 1.0));
    let (gamma, beta) = (widen(&rng.vec(d, 2.0)), widen(&rng.vec(d, 1.0)));
    let ln_loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
        let (mut out, mut mean, mut rstd) = (vec![0.0; rows * d], vec![0.0; rows], vec![0.0; rows]);
        twin::layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, x, gamma, beta, d, 1e-5);
        out.iter().zip(&ws).map(|(a, b)| a * b).sum::<f64>()
    };
    let (mut out, mut mean, mut rstd) = (vec![0.0; rows * d], vec![0.0; rows], vec![0.0; rows]);
    twin::layernorm::layernorm_forward(&mut out, &mut mean, &mut rstd, &xs, &gamma, &beta, d, 1e-5);
    let (mut dx, mut dg, mut db) = (vec![0.0; rows * d], vec![0.0; d], vec![0.0; d]);
    twin::layernorm::layernorm_backward(
        &mut dx, &mut dg, &mut db, &ws, &xs, &gamma, &mean, &rstd, d,
    );
    for i in 0..rows * d {
        let fd = central_difference(&|x: &[f64]| ln_loss(x, &gamma, &beta), &xs, i);
        assert!(
            (dx[i] - fd).abs() < FD_TOL,
            "layernorm dx[{i}]: {} vs {fd}",
            dx[i]
        );
    }
    for j in 0..d {
        let fd_g = central_difference(&|g: &[f64]| ln_loss(&xs, g, &beta), &gamma, j);
        let fd_b = central_difference(&|b: &[f64]| ln_loss(&xs, &gamma, b), &beta, j);
        assert!(
            (dg[j] - fd_g).abs() < FD_TOL,
            "layernorm dgamma[{j}]: {} vs {fd_g}",
            dg[j]
        );
        assert!(
            (db[j] - fd_b).abs() < FD_TOL,
            "layernorm dbeta[{j}]: {} vs {fd_b}",
            db[j]
        );
    }
}

#[test]
fn backward_kernels_accumulate() {
    // Calling a backward kernel twice from zero gives twice the gradient.
    let mut rng = Rng::new(5);
    let n = 19;
    let (x, dy) = (rng.vec(n, 3.0), rng.vec(n, 1.0));
    let mut once = vec![0.0f32; n];
    simd::gelu::gelu_backward(&mut once, &dy, &x);
    let mut twice = vec![0.0f32; n];
    simd::gelu::gelu_backward(&mut twice, &dy, &x);
    simd::gelu::gelu_backward(&mut twice, &dy, &x);
    for i in 0..n {
        // fma(dy, g, round(dy·g)) rounds dy·g + round(dy·g) to exactly 2·once.
        assert_eq!(twice[i], 2.0 * once[i], "gelu_backward[{i}]");
    }
    let mut once = vec![0.0f32; n];
    simd::xent::cross_entropy(Some(&mut once), &x, 3, 1.0);
    let mut twice = vec![0.0f32; n];
    simd::xent::cross_entropy(Some(&mut twice), &x, 3, 1.0);
    simd::xent::cross_entropy(Some(&mut twice), &x, 3, 1.0);
    for i in 0..n {
        // The target entry subtracts dloss after accumulating: two
        // roundings, so "twice" is 2·once up to 2 ulp.
        let tol = 2.0 * f32::EPSILON * (2.0 * once[i].abs() + 1.0);
        assert!(
            (twice[i] - 2.0 * once[i]).abs() <= tol,
            "cross_entropy[{i}]: {} vs 2·{}",
            twice[i],
            once[i]
        );
    }
}

/// `v` copied into a fresh buffer `offset` floats past its start, so the
/// kernels see every alignment modulo the 32-byte lane width.
fn at_offset(v: &[f32], offset: usize) -> (Vec<f32>, core::ops::Range<usize>) {
    let mut buffer = vec![f32::NAN; offset + v.len()];
    buffer[offset..].copy_from_slice(v);
    (buffer, offset..offset + v.len())
}

#[test]
fn element_wise_kernels_round_once_at_every_alignment() {
    // axpy, scale and add peel the floats before the first 32-byte
    // boundary; each element must still be the single correctly rounded
    // operation, whatever the alignment.
    let mut rng = Rng::new(11);
    for n in [0, 1, 3, 8, 13, 40, 100] {
        let (x, y, alpha) = (rng.vec(n, 3.0), rng.vec(n, 3.0), rng.uniform(2.0));
        for offset in 0..8 {
            let (mut got, range) = at_offset(&y, offset);
            simd::vector::axpy(&mut got[range.clone()], alpha, &x);
            for i in 0..n {
                let want = alpha.mul_add(x[i], y[i]);
                assert_eq!(
                    got[offset + i].to_bits(),
                    want.to_bits(),
                    "axpy[{i}] @{offset}"
                );
            }
            let (mut got, range) = at_offset(&y, offset);
            simd::vector::scale(&mut got[range.clone()], alpha);
            for i in 0..n {
                let want = y[i] * alpha;
                assert_eq!(
                    got[offset + i].to_bits(),
                    want.to_bits(),
                    "scale[{i}] @{offset}"
                );
            }
            let (mut got, range) = at_offset(&vec![f32::NAN; n], offset);
            simd::vector::add(&mut got[range.clone()], &x, &y);
            for i in 0..n {
                let want = x[i] + y[i];
                assert_eq!(
                    got[offset + i].to_bits(),
                    want.to_bits(),
                    "add[{i}] @{offset}"
                );
            }
        }
    }
}

#[test]
fn row_kernels_do_not_depend_on_alignment() {
    // Same inputs at another address: bit-identical outputs (the lane
    // groups of every reduction are fixed by the row, not by the address).
    let mut rng = Rng::new(12);
    for n in [5, 8, 27, 50, 64, 65, 130] {
        let (x, dy, g0) = (rng.vec(n, 4.0), rng.vec(n, 1.0), rng.vec(n, 1.0));
        let target = n / 3;
        let mut reference: Option<Vec<Vec<u32>>> = None;
        for offset in 0..8 {
            let (xs, r) = at_offset(&x, offset);
            let (dys, _) = at_offset(&dy, offset);
            let mut results = Vec::new();
            let (mut y, _) = at_offset(&vec![0.0; n], offset);
            simd::softmax::softmax_forward(&mut y[r.clone()], &xs[r.clone()], 0..n);
            results.push(y[r.clone()].to_vec());
            let (mut dx, _) = at_offset(&g0, offset);
            simd::softmax::softmax_backward(
                &mut dx[r.clone()],
                &dys[r.clone()],
                &y[r.clone()],
                1..n,
            );
            results.push(dx[r.clone()].to_vec());
            let (mut dl, _) = at_offset(&g0, offset);
            let loss =
                simd::xent::cross_entropy(Some(&mut dl[r.clone()]), &xs[r.clone()], target, 0.5);
            results.push(dl[r.clone()].to_vec());
            results.push(vec![loss]);
            // Layer norm over rows of width 8 and n, on the same buffer.
            for d in [8, n].into_iter().filter(|&d| d <= n) {
                let rows = n / d;
                let (gamma, beta) = (&g0[..d], &dy[..d]);
                let (mut out, mut mean, mut rstd) =
                    (vec![0.0; rows * d], vec![0.0; rows], vec![0.0; rows]);
                let (xs, r) = (&xs[r.start..r.start + rows * d], 0..rows * d);
                simd::layernorm::layernorm_forward(
                    &mut out, &mut mean, &mut rstd, xs, gamma, beta, d, 1e-5,
                );
                let (mut dx, rr) = at_offset(&g0[r.clone()], offset);
                let (mut dg, mut db) = (g0[..d].to_vec(), dy[..d].to_vec());
                simd::layernorm::layernorm_backward(
                    &mut dx[rr.clone()],
                    &mut dg,
                    &mut db,
                    &dys[offset..offset + rows * d],
                    xs,
                    gamma,
                    &mean,
                    &rstd,
                    d,
                );
                results.extend([out, mean, rstd, dx[rr].to_vec(), dg, db]);
            }
            let bits: Vec<Vec<u32>> = results
                .iter()
                .map(|v| v.iter().map(|f| f.to_bits()).collect())
                .collect();
            match &reference {
                None => reference = Some(bits),
                Some(want) => assert_eq!(&bits, want, "n = {n}, offset {offset}"),
            }
        }
    }
}
