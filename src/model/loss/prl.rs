//! The ReaRec-PRL objective (method.md §3) on the reasoning states of a
//! batch, forward and hand-derived backward, generic over [`Kernels`].
//!
//! For one sample with states h_0 … h_K (S = K + 1), items E = E[1..=N],
//! target y:
//!
//! ```text
//! L_item = CE(h_K·Eᵀ/τ, y) + 1/K · Σ_{k<K} CE(h_k·Eᵀ/(τ·α^{K−k}), y)     (second term 0 if K = 0)
//! ```
//!
//! ([`prl_item_loss`]). The reasoning contrastive loss ([`rcl_loss`]) takes a
//! second, noisy view ĥ of the same batch (its reasoning inputs u_k carry
//! N(0, 0.01²) noise; building it is the model's job) and, for every
//! reasoning step k = 1 … K, a batch softmax over ⟨ĥ_{k,a}, h_{k,b}⟩/τ with
//! target b = a, averaged over rows and steps. Step 0 is left out: both
//! views share h_0 (the noise enters at u_1). Gradients flow into both views.
//! Prediction uses h_K.

use crate::nn::item_softmax::score_rows;
use dtrec_kernels::{Kernels, Trans};

/// ReaRec's temperature base α.
pub const DEFAULT_ALPHA: f64 = 5.0;

/// The parts of the mean PRL item loss over a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrlLoss<T> {
    /// `final_ce + progressive`.
    pub total: T,
    /// mean CE(h_K·Eᵀ/τ, y).
    pub final_ce: T,
    /// mean of 1/K · Σ_{k<K} CE(h_k·Eᵀ/(τ·α^{K−k}), y).
    pub progressive: T,
}

/// The PRL item loss of `rows` samples with `states` states each.
///
/// * `dhidden` (rows × states × d) and `ditems` (N × d): accumulated if given;
/// * `hidden`: (rows × states × d), sample r's state t at `(r·states + t)·d`;
/// * `items`: E[1..=N] (N × d); `targets`: dense ids (rows), 1 … N;
/// * `tau`, `alpha`: temperature and its base; `dloss`: upstream gradient.
///
/// Panics on inconsistent shapes or out-of-range targets (caller bugs).
#[allow(clippy::too_many_arguments)]
pub fn prl_item_loss<T: Kernels>(
    mut dhidden: Option<&mut [T]>,
    mut ditems: Option<&mut [T]>,
    hidden: &[T],
    items: &[T],
    targets: &[u32],
    states: usize,
    d: usize,
    tau: T,
    alpha: T,
    dloss: T,
) -> PrlLoss<T> {
    let rows = targets.len();
    let n = super::check_state_shapes(
        dhidden.as_deref(),
        ditems.as_deref(),
        hidden,
        items,
        targets,
        states,
        d,
    );
    let zero = PrlLoss {
        total: T::ZERO,
        final_ce: T::ZERO,
        progressive: T::ZERO,
    };
    if rows == 0 {
        return zero;
    }
    let k_last = states - 1;
    let need_grad = dhidden.is_some() || ditems.is_some();
    let inv_rows = T::ONE / T::from_usize(rows);
    // 1/τ_t for t = 0 … K: τ·α^{K−t} below K, τ at K
    let inv_tau: Vec<T> = (0..states)
        .map(|t| {
            let mut temp = tau;
            for _ in t..k_last {
                temp *= alpha;
            }
            T::ONE / temp
        })
        .collect();
    // weight of each state's CE: 1 for h_K, 1/K for the earlier ones
    let weight = |t: usize| {
        if t == k_last {
            T::ONE
        } else {
            T::ONE / T::from_usize(k_last)
        }
    };
    // Rows go in blocks per state, so every pass over E and dE serves the
    // whole block (one packing of E, one rank-block update of dE); the
    // block's logits stay within a fixed budget whatever N is.
    let block = super::sample_block(rows, n);
    let mut h = vec![T::ZERO; block * d]; // (block, d)
    let mut dh = vec![T::ZERO; block * d]; // (block, d)
    let mut z = vec![T::ZERO; block * n]; // (block, N)
    let mut dz = vec![T::ZERO; block * n]; // (block, N)
    let (mut final_sum, mut prog_sum) = (T::ZERO, T::ZERO);
    for (t, &inv_tau_t) in inv_tau.iter().enumerate() {
        let w = weight(t);
        for start in (0..rows).step_by(block) {
            let m = block.min(rows - start);
            for (i, hi) in h[..m * d].chunks_exact_mut(d).enumerate() {
                let row = ((start + i) * states + t) * d;
                hi.copy_from_slice(&hidden[row..row + d]);
            }
            let (hb, zb, dzb) = (&h[..m * d], &mut z[..m * n], &mut dz[..m * n]);
            score_rows(zb, hb, items, d, inv_tau_t);
            dzb.fill(T::ZERO);
            for i in 0..m {
                let y = targets[start + i] as usize - 1;
                let zr = &zb[i * n..(i + 1) * n];
                let grad = need_grad.then_some(&mut dzb[i * n..(i + 1) * n]);
                let ce = T::cross_entropy(grad, zr, y, dloss * inv_rows * w);
                if t == k_last {
                    final_sum += ce;
                } else {
                    prog_sum += w * ce;
                }
            }
            if let Some(g) = dhidden.as_deref_mut() {
                // dh (m × d) = dz (m × N) · E (N × d) / τ_t, added to each row's state
                let dhb = &mut dh[..m * d];
                T::gemm(
                    m,
                    d,
                    n,
                    inv_tau_t,
                    dzb,
                    Trans::N,
                    items,
                    Trans::N,
                    T::ZERO,
                    dhb,
                );
                for (i, di) in dhb.chunks_exact(d).enumerate() {
                    let row = ((start + i) * states + t) * d;
                    T::axpy(&mut g[row..row + d], T::ONE, di);
                }
            }
            if let Some(g) = ditems.as_deref_mut() {
                // dE (N × d) += dzᵀ (N × m) · h (m × d) / τ_t
                T::gemm(n, d, m, inv_tau_t, dzb, Trans::T, hb, Trans::N, T::ONE, g);
            }
        }
    }
    let final_ce = final_sum * inv_rows;
    let progressive = prog_sum * inv_rows;
    PrlLoss {
        total: final_ce + progressive,
        final_ce,
        progressive,
    }
}

/// The reasoning contrastive loss L_RCL between a noisy and a clean view,
/// both (rows × states × d): mean over steps k = 1 … states − 1 of the mean
/// over rows a of CE(⟨ĥ_{k,a}, h_{k,·}⟩/τ, a). Accumulates dloss·∂L into
/// `dnoisy` / `dclean` (same shapes) if given. 0 with one state or no row.
/// Panics on inconsistent shapes.
#[allow(clippy::too_many_arguments)]
pub fn rcl_loss<T: Kernels>(
    mut dnoisy: Option<&mut [T]>,
    mut dclean: Option<&mut [T]>,
    noisy: &[T],
    clean: &[T],
    rows: usize,
    states: usize,
    d: usize,
    tau: T,
    dloss: T,
) -> T {
    assert_eq!(
        noisy.len(),
        rows * states * d,
        "noisy must be rows × states × d"
    );
    assert_eq!(clean.len(), noisy.len(), "clean must be rows × states × d");
    if let Some(g) = dnoisy.as_deref() {
        assert_eq!(g.len(), noisy.len(), "dnoisy must match noisy");
    }
    if let Some(g) = dclean.as_deref() {
        assert_eq!(g.len(), clean.len(), "dclean must match clean");
    }
    if rows == 0 || states < 2 {
        return T::ZERO;
    }
    let steps = states - 1;
    let inv_tau = T::ONE / tau;
    let scale = dloss / T::from_usize(rows * steps);
    let need_grad = dnoisy.is_some() || dclean.is_some();
    let mut a = vec![T::ZERO; rows * d]; // noisy states of step k, (rows, d)
    let mut b = vec![T::ZERO; rows * d]; // clean states of step k, (rows, d)
    let mut logits = vec![T::ZERO; rows * rows]; // (rows, rows)
    let mut dlogits = vec![T::ZERO; rows * rows]; // (rows, rows)
    let mut da = vec![T::ZERO; rows * d];
    let mut db = vec![T::ZERO; rows * d];
    let mut total = T::ZERO;
    for k in 1..states {
        for r in 0..rows {
            let src = (r * states + k) * d;
            a[r * d..(r + 1) * d].copy_from_slice(&noisy[src..src + d]);
            b[r * d..(r + 1) * d].copy_from_slice(&clean[src..src + d]);
        }
        // logits (rows × rows) = A·Bᵀ/τ
        T::gemm(
            rows,
            rows,
            d,
            inv_tau,
            &a,
            Trans::N,
            &b,
            Trans::T,
            T::ZERO,
            &mut logits,
        );
        dlogits.fill(T::ZERO);
        for r in 0..rows {
            let grad = need_grad.then(|| &mut dlogits[r * rows..(r + 1) * rows]);
            total += T::cross_entropy(grad, &logits[r * rows..(r + 1) * rows], r, scale);
        }
        if !need_grad {
            continue;
        }
        // dA = dlogits·B/τ, dB = dlogitsᵀ·A/τ, scattered back per row
        T::gemm(
            rows,
            d,
            rows,
            inv_tau,
            &dlogits,
            Trans::N,
            &b,
            Trans::N,
            T::ZERO,
            &mut da,
        );
        T::gemm(
            rows,
            d,
            rows,
            inv_tau,
            &dlogits,
            Trans::T,
            &a,
            Trans::N,
            T::ZERO,
            &mut db,
        );
        for r in 0..rows {
            let dst = (r * states + k) * d;
            if let Some(g) = dnoisy.as_deref_mut() {
                T::axpy(&mut g[dst..dst + d], T::ONE, &da[r * d..(r + 1) * d]);
            }
            if let Some(g) = dclean.as_deref_mut() {
                T::axpy(&mut g[dst..dst + d], T::ONE, &db[r * d..(r + 1) * d]);
            }
        }
    }
    total / T::from_usize(rows * steps)
}
