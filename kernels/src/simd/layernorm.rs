//! Layer normalisation over rows of width d for `f32`, on `wide` lanes.
//!
//! Each row is reduced in lanes (two passes in the forward: mean, then the
//! centred sum of squares — the textbook E[x²] − E[x]² form would cancel
//! catastrophically when |mean| ≫ std). Tails shorter than a lane are loaded
//! padded with a value that makes them contribute nothing (the mean when
//! centring, 0 for gradients).

use super::vector::{load, load_padded, store, Lanes, LANES};
use crate::reference::layernorm::check_shapes;

/// Σ over one row in lanes, with `term(x_lanes)` applied to each lane
/// group; the tail is padded with `pad`.
#[inline(always)]
fn row_sum(x: &[f32], pad: f32, term: impl Fn(Lanes) -> Lanes) -> f32 {
    let mut acc = [Lanes::ZERO; 2];
    let mut pairs = x.chunks_exact(2 * LANES);
    for c in &mut pairs {
        acc[0] += term(load(&c[..LANES]));
        acc[1] += term(load(&c[LANES..]));
    }
    let mut rest = pairs.remainder().chunks_exact(LANES);
    for c in &mut rest {
        acc[0] += term(load(c));
    }
    if !rest.remainder().is_empty() {
        acc[1] += term(load_padded(rest.remainder(), pad));
    }
    (acc[0] + acc[1]).reduce_add()
}

/// Rows of width d (rows = inp.len() / d):
/// mean = Σx/d, var = Σ(x − mean)²/d (biased), rstd = 1/√(var + eps),
/// out = (x − mean)·rstd·γ + β. Every element of out, mean, rstd is written.
///
/// Shapes: out, inp (rows, d); mean, rstd (rows); gamma, beta (d).
///
/// # Panics
/// If `d == 0` or any length is inconsistent.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    gamma: &[f32],
    beta: &[f32],
    d: usize,
    eps: f32,
) {
    check_shapes(
        "layernorm_forward",
        &[out.len()],
        &[mean.len(), rstd.len()],
        &[gamma.len(), beta.len()],
        inp.len(),
        d,
    );
    let inv_d = 1.0 / d as f32;
    let rows = inp.chunks_exact(d).zip(out.chunks_exact_mut(d));
    for ((x, y), (mean_r, rstd_r)) in rows.zip(mean.iter_mut().zip(rstd.iter_mut())) {
        let mu = row_sum(x, 0.0, |v| v) * inv_d;
        let mu_lanes = Lanes::splat(mu);
        let sq = row_sum(x, mu, |v| {
            let c = v - mu_lanes;
            c * c
        });
        let rs = 1.0 / (sq * inv_d + eps).sqrt();
        let rs_lanes = Lanes::splat(rs);
        let mut cy = y.chunks_exact_mut(LANES);
        let mut cx = x.chunks_exact(LANES);
        let mut cg = gamma.chunks_exact(LANES);
        let mut cb = beta.chunks_exact(LANES);
        for (((yc, xc), gc), bc) in (&mut cy).zip(&mut cx).zip(&mut cg).zip(&mut cb) {
            let xhat = (load(xc) - mu_lanes) * rs_lanes;
            store(yc, xhat.mul_add(load(gc), load(bc)));
        }
        let tail = cy.into_remainder().iter_mut().zip(cx.remainder());
        for ((yi, &xi), (&gi, &bi)) in tail.zip(cg.remainder().iter().zip(cb.remainder())) {
            *yi = ((xi - mu) * rs).mul_add(gi, bi);
        }
        *mean_r = mu;
        *rstd_r = rs;
    }
}

/// Backward of [`layernorm_forward`], accumulating into dinp, dgamma, dbeta.
/// With x̂ = (x − mean)·rstd and g = dout ⊙ γ:
/// dβ += dout, dγ += dout ⊙ x̂, dx += rstd·(g − mean(g) − x̂·mean(g ⊙ x̂)).
/// x̂ is recomputed from the saved mean/rstd rather than stored: two
/// statistics per row instead of a (rows, d) buffer.
///
/// Shapes: dinp, dout, inp (rows, d); mean, rstd (rows); dgamma, dbeta, gamma (d).
///
/// # Panics
/// If `d == 0` or any length is inconsistent.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
    d: usize,
) {
    check_shapes(
        "layernorm_backward",
        &[dinp.len(), dout.len()],
        &[mean.len(), rstd.len()],
        &[dgamma.len(), dbeta.len(), gamma.len()],
        inp.len(),
        d,
    );
    let inv_d = 1.0 / d as f32;
    let rows = dinp
        .chunks_exact_mut(d)
        .zip(dout.chunks_exact(d))
        .zip(inp.chunks_exact(d));
    for (((dx, dy), x), (&mu, &rs)) in rows.zip(mean.iter().zip(rstd)) {
        let (mu_l, rs_l) = (Lanes::splat(mu), Lanes::splat(rs));

        // Pass 1: Σg and Σg·x̂ in lanes (tail padded with dy = 0 ⇒ g = 0).
        let mut acc_g = [Lanes::ZERO; 2];
        let mut acc_gx = [Lanes::ZERO; 2];
        let mut k = 0;
        let mut cdy = dy.chunks_exact(LANES);
        let mut cx = x.chunks_exact(LANES);
        let mut cg = gamma.chunks_exact(LANES);
        for ((dyc, xc), gc) in (&mut cdy).zip(&mut cx).zip(&mut cg) {
            let g = load(dyc) * load(gc);
            let xhat = (load(xc) - mu_l) * rs_l;
            acc_g[k] += g;
            acc_gx[k] = g.mul_add(xhat, acc_gx[k]);
            k ^= 1;
        }
        if !cdy.remainder().is_empty() {
            let g = load_padded(cdy.remainder(), 0.0) * load_padded(cg.remainder(), 0.0);
            let xhat = (load_padded(cx.remainder(), mu) - mu_l) * rs_l;
            acc_g[k] += g;
            acc_gx[k] = g.mul_add(xhat, acc_gx[k]);
        }
        let mean_g = (acc_g[0] + acc_g[1]).reduce_add() * inv_d;
        let mean_gx = (acc_gx[0] + acc_gx[1]).reduce_add() * inv_d;
        let (mean_g_l, mean_gx_l) = (Lanes::splat(mean_g), Lanes::splat(mean_gx));

        // Pass 2: accumulate all three gradients.
        let mut cdx = dx.chunks_exact_mut(LANES);
        let mut cdg = dgamma.chunks_exact_mut(LANES);
        let mut cdb = dbeta.chunks_exact_mut(LANES);
        let mut cdy = dy.chunks_exact(LANES);
        let mut cx = x.chunks_exact(LANES);
        let mut cg = gamma.chunks_exact(LANES);
        let grads = (&mut cdx).zip(&mut cdg).zip(&mut cdb);
        let inputs = (&mut cdy).zip(&mut cx).zip(&mut cg);
        for (((dxc, dgc), dbc), ((dyc, xc), gc)) in grads.zip(inputs) {
            let gy = load(dyc);
            let xhat = (load(xc) - mu_l) * rs_l;
            let g = gy * load(gc);
            store(dbc, load(dbc) + gy);
            store(dgc, gy.mul_add(xhat, load(dgc)));
            let centred = xhat.mul_neg_add(mean_gx_l, g - mean_g_l);
            store(dxc, rs_l.mul_add(centred, load(dxc)));
        }
        let grads = cdx
            .into_remainder()
            .iter_mut()
            .zip(cdg.into_remainder())
            .zip(cdb.into_remainder());
        let inputs = cdy
            .remainder()
            .iter()
            .zip(cx.remainder())
            .zip(cg.remainder());
        for (((dxi, dgi), dbi), ((&gy, &xi), &gi)) in grads.zip(inputs) {
            let xhat = (xi - mu) * rs;
            let g = gy * gi;
            *dbi += gy;
            *dgi = gy.mul_add(xhat, *dgi);
            *dxi = rs.mul_add(xhat.mul_add(-mean_gx, g - mean_g), *dxi);
        }
    }
}
