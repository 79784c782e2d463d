//! Scalar twin of layer normalisation over rows of width d.

use crate::real::Real;

/// Checks the shapes shared by forward and backward; returns the row count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_shapes(
    who: &str,
    rows_by_d: &[usize],
    per_row: &[usize],
    per_col: &[usize],
    n: usize,
    d: usize,
) -> usize {
    assert!(d > 0, "{who}: d must be positive");
    assert!(n % d == 0, "{who}: length {n} is not a multiple of d = {d}");
    let rows = n / d;
    for &len in rows_by_d {
        assert_eq!(len, n, "{who}: (rows, d) buffer length mismatch");
    }
    for &len in per_row {
        assert_eq!(len, rows, "{who}: per-row buffer length mismatch");
    }
    for &len in per_col {
        assert_eq!(len, d, "{who}: per-column buffer length mismatch");
    }
    rows
}

/// Rows of width d (rows = inp.len() / d):
/// mean = Σx/d, var = Σ(x − mean)²/d (biased, two passes),
/// rstd = 1/√(var + eps), out = (x − mean)·rstd·γ + β.
///
/// Shapes: out, inp (rows, d); mean, rstd (rows); gamma, beta (d).
///
/// # Panics
/// If `d == 0` or any length is inconsistent.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward<T: Real>(
    out: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
    inp: &[T],
    gamma: &[T],
    beta: &[T],
    d: usize,
    eps: T,
) {
    check_shapes(
        "layernorm_forward",
        &[out.len()],
        &[mean.len(), rstd.len()],
        &[gamma.len(), beta.len()],
        inp.len(),
        d,
    );
    let inv_d = T::ONE / T::from_usize(d);
    for (r, (x, y)) in inp.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
        let mut total = T::ZERO;
        for &xi in x {
            total += xi;
        }
        let mu = total * inv_d;
        let mut sq = T::ZERO;
        for &xi in x {
            sq += (xi - mu) * (xi - mu);
        }
        let rs = T::ONE / (sq * inv_d + eps).sqrt();
        for j in 0..d {
            y[j] = (x[j] - mu) * rs * gamma[j] + beta[j];
        }
        mean[r] = mu;
        rstd[r] = rs;
    }
}

/// Backward of [`layernorm_forward`], accumulating into dinp, dgamma, dbeta.
/// With x̂ = (x − mean)·rstd and g = dout ⊙ γ:
/// dβ += dout, dγ += dout ⊙ x̂, dx += rstd·(g − mean(g) − x̂·mean(g ⊙ x̂)).
///
/// Shapes: dinp, dout, inp (rows, d); mean, rstd (rows); dgamma, dbeta, gamma (d).
///
/// # Panics
/// If `d == 0` or any length is inconsistent.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward<T: Real>(
    dinp: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
    dout: &[T],
    inp: &[T],
    gamma: &[T],
    mean: &[T],
    rstd: &[T],
    d: usize,
) {
    let rows = check_shapes(
        "layernorm_backward",
        &[dinp.len(), dout.len()],
        &[mean.len(), rstd.len()],
        &[dgamma.len(), dbeta.len(), gamma.len()],
        inp.len(),
        d,
    );
    let inv_d = T::ONE / T::from_usize(d);
    for r in 0..rows {
        let x = &inp[r * d..(r + 1) * d];
        let dy = &dout[r * d..(r + 1) * d];
        let dx = &mut dinp[r * d..(r + 1) * d];
        let (mu, rs) = (mean[r], rstd[r]);
        // Pass 1: the two row means the input gradient needs.
        let mut mean_g = T::ZERO;
        let mut mean_gx = T::ZERO;
        for j in 0..d {
            let xhat = (x[j] - mu) * rs;
            let g = dy[j] * gamma[j];
            mean_g += g;
            mean_gx += g * xhat;
        }
        mean_g *= inv_d;
        mean_gx *= inv_d;
        // Pass 2: accumulate all three gradients.
        for j in 0..d {
            let xhat = (x[j] - mu) * rs;
            let g = dy[j] * gamma[j];
            dbeta[j] += dy[j];
            dgamma[j] += dy[j] * xhat;
            dx[j] += rs * (g - mean_g - xhat * mean_gx);
        }
    }
}
