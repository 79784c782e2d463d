//! The ReaRec-ERL objective (method.md §3, exact) on the reasoning states of
//! a batch, forward and hand-derived backward, generic over [`Kernels`].
//!
//! For one sample with states h_0 … h_K (S = K + 1 of them), items
//! E = E[1..=N] and target y:
//!
//! ```text
//! h̄ = mean_t h_t,  z̄ = h̄·Eᵀ/τ,  z_t = h_t·Eᵀ/τ,  p_t = softmax(z_t)
//! L = CE(z̄, y) − λ·R,   R = 1/(S(S−1)) · Σ_{i≠j} KL(p_j ‖ sg(p_i))
//! ```
//!
//! R is built from the S×S product C = P·(log P)ᵀ (C_ji = Σ_v p_jv log p_iv),
//! KL(p_j‖p_i) = C_jj − C_ji, never from an S×S×N tensor. With p_i detached,
//! only p_j receives gradient from KL(p_j‖p_i):
//!
//! ```text
//! ∂R/∂z_j = p_j ⊙ (S·log p_j − Σ_i log p_i − Σ_{i≠j} KL(p_j‖p_i)) / (S(S−1))
//! ```
//!
//! and ∂h_t = ∂z_t·E/τ + ∂z̄·E/(τ·S), ∂E = Σ_t ∂z_tᵀ·h_t/τ + ∂z̄ᵀ·h̄/τ.
//! With S = 1, R = 0 (plain SASRec cross-entropy on h_0). Prediction uses h̄.

use crate::nn::item_softmax::score_rows;
use dtrec_kernels::{Kernels, Trans};

/// ReaRec's λ for the KL regulariser.
pub const DEFAULT_LAMBDA: f64 = 0.05;

/// The parts of the mean ERL loss over a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErlLoss<T> {
    /// mean CE(z̄, y) − λ·mean R.
    pub total: T,
    /// mean CE(z̄, y).
    pub ce: T,
    /// mean R (the pairwise KL, ≥ 0).
    pub kl: T,
}

/// ERL loss of `rows` samples, each with `states` reasoning states.
///
/// * `dhidden` (rows × states × d) and `ditems` (N × d): accumulated
///   (dloss · ∂total/∂·) if given;
/// * `hidden`: (rows × states × d), sample r's state t at `(r·states + t)·d`;
/// * `items`: E[1..=N], (N × d); `targets`: dense ids (rows), 1 … N;
/// * `tau`: temperature; `lambda`: KL weight λ.
///
/// Panics on inconsistent shapes or out-of-range targets (caller bugs).
#[allow(clippy::too_many_arguments)]
pub fn erl_loss<T: Kernels>(
    mut dhidden: Option<&mut [T]>,
    mut ditems: Option<&mut [T]>,
    hidden: &[T],
    items: &[T],
    targets: &[u32],
    states: usize,
    d: usize,
    tau: T,
    lambda: T,
    dloss: T,
) -> ErlLoss<T> {
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
    let zero = ErlLoss {
        total: T::ZERO,
        ce: T::ZERO,
        kl: T::ZERO,
    };
    if rows == 0 {
        return zero;
    }
    let need_grad = dhidden.is_some() || ditems.is_some();
    let inv_rows = T::ONE / T::from_usize(rows);
    let inv_tau = T::ONE / tau;
    let s_count = T::from_usize(states);
    let pairs = T::from_usize(states * states.saturating_sub(1));
    let scale = dloss * inv_rows;

    // Samples go in blocks, each sample as S + 1 rows (its S states and
    // their mean h̄), so every pass over E (scores, dh) and over dE serves
    // the whole block: one rank-(block·(S + 1)) update of dE instead of one
    // rank-(S + 1) update per sample, and one packing of E per block. The
    // block's logits stay within a fixed budget whatever N is.
    let ext = states + 1;
    let cap = super::sample_block(rows, ext * n);
    let mut hx = vec![T::ZERO; cap * ext * d]; // (block·(S + 1), d): h_0 … h_{S−1}, h̄ per sample
    let mut zx = vec![T::ZERO; cap * ext * n]; // (block·(S + 1), N): log p_t (after pass 2), z̄
    let mut dzx = vec![T::ZERO; cap * ext * n]; // (block·(S + 1), N): dz_t, dz̄
    let mut dhx = vec![T::ZERO; cap * ext * d]; // (block·(S + 1), d)
    let mut p = vec![T::ZERO; states * n]; // (S, N) of one sample
    let mut c = vec![T::ZERO; states * states]; // (S, S)
    let mut kl_of = vec![T::ZERO; states]; // Σ_{i≠j} KL_ji per j
    let mut sum_logp = vec![T::ZERO; n]; // (N)
    let (mut ce_sum, mut kl_sum) = (T::ZERO, T::ZERO);

    for start in (0..rows).step_by(cap) {
        let m = cap.min(rows - start);
        let (hb, zb, dzb) = (
            &mut hx[..m * ext * d],
            &mut zx[..m * ext * n],
            &mut dzx[..m * ext * n],
        );
        for (i, hs) in hb.chunks_exact_mut(ext * d).enumerate() {
            let r = start + i;
            let h = &hidden[r * states * d..(r + 1) * states * d]; // (S, d)
            hs[..states * d].copy_from_slice(h);
            let hbar = &mut hs[states * d..];
            hbar.fill(T::ZERO);
            for ht in h.chunks_exact(d) {
                T::axpy(hbar, T::ONE / s_count, ht);
            }
        }
        score_rows(zb, hb, items, d, inv_tau);
        dzb.fill(T::ZERO);

        for (i, (zs, dzs)) in zb
            .chunks_exact_mut(ext * n)
            .zip(dzb.chunks_exact_mut(ext * n))
            .enumerate()
        {
            let y = targets[start + i];
            let (logp, zbar) = zs.split_at_mut(states * n);
            let (dz, dzbar) = dzs.split_at_mut(states * n);

            // pass 1: CE on the mean state
            let grad = need_grad.then_some(&mut dzbar[..]);
            ce_sum += T::cross_entropy(grad, zbar, y as usize - 1, scale);
            if states == 1 {
                continue;
            }

            // pass 2: log-probabilities of every state
            for (lp, pp) in logp.chunks_exact_mut(n).zip(p.chunks_exact_mut(n)) {
                let mut st = (T::NEG_INFINITY, T::ZERO);
                T::lse_accumulate(&mut st, lp);
                let lse = st.0 + st.1.ln();
                pp.fill(T::ZERO);
                T::xent_backward_block(pp, lp, lse, T::ONE); // p = exp(z − lse)
                for l in lp.iter_mut() {
                    *l -= lse;
                }
            }
            // pass 3: C = P·(log P)ᵀ, KL_ji = C_jj − C_ji
            T::gemm(
                states,
                states,
                n,
                T::ONE,
                &p,
                Trans::N,
                logp,
                Trans::T,
                T::ZERO,
                &mut c,
            );
            let mut kl_row = T::ZERO;
            for (j, kl_j) in kl_of.iter_mut().enumerate() {
                *kl_j = T::ZERO;
                for i in 0..states {
                    if i != j {
                        *kl_j += c[j * states + j] - c[j * states + i];
                    }
                }
                kl_row += *kl_j;
            }
            kl_sum += kl_row / pairs;
            if need_grad {
                // pass 4: dz_j = −λ·scale/(S(S−1)) · p_j ⊙ (S·log p_j − Σ_i log p_i − K_j)
                sum_logp.fill(T::ZERO);
                for lp in logp.chunks_exact(n) {
                    T::axpy(&mut sum_logp, T::ONE, lp);
                }
                let coef = -lambda * scale / pairs;
                for (j, &kl_j) in kl_of.iter().enumerate() {
                    let (lp, pp) = (&logp[j * n..(j + 1) * n], &p[j * n..(j + 1) * n]);
                    for (v, g) in dz[j * n..(j + 1) * n].iter_mut().enumerate() {
                        *g = coef * pp[v] * (s_count * lp[v] - sum_logp[v] - kl_j);
                    }
                }
            }
        }

        if let Some(g) = dhidden.as_deref_mut() {
            // [dh_t; dh̄] = [dz_t; dz̄]·E/τ per sample, then dh_t += dh̄/S for every t
            let dhb = &mut dhx[..m * ext * d];
            T::gemm(
                m * ext,
                d,
                n,
                inv_tau,
                dzb,
                Trans::N,
                items,
                Trans::N,
                T::ZERO,
                dhb,
            );
            for (i, dhs) in dhb.chunks_exact(ext * d).enumerate() {
                let r = start + i;
                let (dh_states, dhbar) = dhs.split_at(states * d);
                let gh = &mut g[r * states * d..(r + 1) * states * d]; // (S, d)
                for (gt, dt) in gh.chunks_exact_mut(d).zip(dh_states.chunks_exact(d)) {
                    T::axpy(gt, T::ONE, dt);
                    T::axpy(gt, T::ONE / s_count, dhbar);
                }
            }
        }
        if let Some(g) = ditems.as_deref_mut() {
            // dE += [dz_t; dz̄]ᵀ·[h_t; h̄]/τ over the block's rows
            T::gemm(
                n,
                d,
                m * ext,
                inv_tau,
                dzb,
                Trans::T,
                hb,
                Trans::N,
                T::ONE,
                g,
            );
        }
    }
    let ce = ce_sum * inv_rows;
    let kl = kl_sum * inv_rows;
    ErlLoss {
        total: ce - lambda * kl,
        ce,
        kl,
    }
}
