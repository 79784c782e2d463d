//! The training objectives over the encoder and the reasoning chain: each
//! family's loss of a chunk (method.md §1 and §3), the batch loss and
//! gradient split over threads in a fixed order, and the hooks for
//! objectives computed outside the model ([`StateLoss`],
//! [`Model::states_with`], [`Model::backward_states`]).

use rayon::prelude::*;

use super::chain::ChainLayout;
use super::config::Family;
use super::encoder::Work;
use super::network::{pop, push, Model, CHUNK};
use super::params::Params;
use crate::batch::{SeqBatch, TrainBatch};
use crate::kernels::rng::CounterRng;
use crate::kernels::Kernels;
use crate::nn::item_softmax::{item_ce_backward, item_ce_forward};
use crate::nn::tensor::reset;
use erl::erl_loss;
use prl::{prl_item_loss, rcl_loss};

pub mod erl;
pub mod hps;
pub mod prl;

/// Most samples per block of the per-state item losses (ERL, PRL): the
/// model's chunk of rows.
const MAX_SAMPLE_BLOCK: usize = 64;
/// Most logits (block rows × N) one block of those losses holds: 8 MB in f32.
const LOGITS_BUDGET: usize = 1 << 21;

/// Samples per block for `rows` samples of `row_width` logits each: as many
/// as fit [`LOGITS_BUDGET`], at least one, at most [`MAX_SAMPLE_BLOCK`].
fn sample_block(rows: usize, row_width: usize) -> usize {
    (LOGITS_BUDGET / row_width.max(1))
        .clamp(1, MAX_SAMPLE_BLOCK)
        .min(rows.max(1))
}

/// Checks the shapes shared by the per-state item losses (ERL, PRL): `hidden`
/// and `dhidden` are (rows × states × d) for one row per target, `items` and
/// `ditems` are (N × d), and every target is an item id in 1 … N.
/// Returns N. Panics on a mismatch (a caller bug).
fn check_state_shapes<T>(
    dhidden: Option<&[T]>,
    ditems: Option<&[T]>,
    hidden: &[T],
    items: &[T],
    targets: &[u32],
    states: usize,
    d: usize,
) -> usize {
    let rows = targets.len();
    assert!(d > 0 && states > 0, "d and states must be positive");
    let n = items.len() / d;
    assert_eq!(items.len(), n * d, "items must be N × d");
    assert_eq!(
        hidden.len(),
        rows * states * d,
        "hidden must be rows × states × d"
    );
    if let Some(g) = dhidden {
        assert_eq!(g.len(), hidden.len(), "dhidden must be rows × states × d");
    }
    if let Some(g) = ditems {
        assert_eq!(g.len(), n * d, "ditems must be N × d");
    }
    if let Some(&y) = targets.iter().find(|&&y| y == 0 || y as usize > n) {
        panic!("target item {y} out of range 1..={n}");
    }
    n
}

/// What an extra training objective on the reasoning states sees, for the
/// `rows` sequences of one chunk (see [`StateLoss`]).
pub struct StateLossArgs<'a, T> {
    /// (rows, T+1, d) states h₀ … h_T; row r's step t at `(r·(T+1) + t)·d`.
    pub states: &'a [T],
    /// (rows) dense target ids, 1 … N.
    pub targets: &'a [u32],
    /// (N, d) item embeddings E[1..=N].
    pub items: &'a [T],
    /// (rows, T+1, d) gradient w.r.t. `states`: ACCUMULATE into it (None in
    /// forward-only calls).
    pub dstates: Option<&'a mut [T]>,
    /// (N, d) gradient w.r.t. `items`: accumulate into it if the objective
    /// depends on the item table (None in forward-only calls).
    pub ditems: Option<&'a mut [T]>,
    /// Weight of each row's loss in the batch mean (1/B).
    pub dloss: T,
}

/// An extra objective on the reasoning states (the hook for DTRec's HPS
/// losses, which need the trainer's prototypes): returns the SUM over the
/// chunk's rows of the per-row loss (f64) and, when the gradient buffers
/// are given, accumulates `dloss ·` its gradient. Called once per chunk,
/// possibly from several threads.
pub type StateLoss<'f, T> = dyn Fn(StateLossArgs<'_, T>) -> f64 + Sync + 'f;

/// ReaRec-PRL's L_RCL over the chunk's clean and noisy states (mean over
/// the chunk's rows), its gradient scaled by `dloss_rows` and added to the
/// chain's clean and noisy state gradients when `with_grads`.
fn contrastive_term<T: Kernels>(
    work: &mut Work<T>,
    with_grads: bool,
    nb: usize,
    s: usize,
    d: usize,
    tau: T,
    dloss_rows: T,
) -> T {
    reset(&mut work.chain.dnoisy, nb * s * d);
    let (dn, dc) = if with_grads {
        (
            Some(&mut work.chain.dnoisy[..]),
            Some(&mut work.chain.dstates[..]),
        )
    } else {
        (None, None)
    };
    rcl_loss(
        dn,
        dc,
        &work.chain.noisy_states,
        &work.chain.states,
        nb,
        s,
        d,
        tau,
        dloss_rows,
    )
}

/// Full-softmax cross-entropy of the chunk's states `work.h` (rows, d)
/// against `work.targets`, summed over the rows in f64, and, with
/// `ditems`, its backward at per-row weight `dloss`: the state gradient
/// into `work.dh`, the item table's ADDED to `ditems` (the whole table,
/// padding row included, like `emb`).
fn item_ce_of_h<T: Kernels>(
    work: &mut Work<T>,
    emb: &[T],
    ditems: Option<&mut [T]>,
    d: usize,
    inv_tau: T,
    dloss: T,
) -> f64 {
    let rows = work.targets.len();
    reset(&mut work.losses, rows);
    item_ce_forward(
        &mut work.losses,
        &mut work.ce,
        &work.h,
        emb,
        &work.targets,
        d,
        inv_tau,
    );
    if let Some(ditems) = ditems {
        work.dlosses.clear();
        work.dlosses.resize(rows, dloss);
        reset(&mut work.dh, rows * d);
        item_ce_backward(
            &mut work.dh,
            ditems,
            &work.dlosses,
            &work.h,
            emb,
            &work.targets,
            &work.ce,
            d,
            inv_tau,
            &mut work.ce_scratch,
        );
    }
    work.losses.iter().map(|l| l.to_f64()).sum()
}

impl<T: Kernels> Model<T> {
    /// Loss (sum over the chunk's rows, in f64) and, with `grads`, the
    /// backward with per-row loss weight `dloss`.
    #[allow(clippy::too_many_arguments)]
    fn chunk_loss(
        &self,
        work: &mut Work<T>,
        grads: Option<&mut Params<T>>,
        batch: &TrainBatch,
        range: std::ops::Range<usize>,
        rng: Option<&CounterRng>,
        dloss: T,
        extra: Option<&StateLoss<T>>,
    ) -> f64 {
        if self.config.t_max > 0 || extra.is_some() {
            return self.chunk_loss_steps(work, grads, batch, range, rng, dloss, extra);
        }
        let d = self.config.d;
        let inv_tau = T::from_f64(1.0 / self.config.tau);
        let nb = range.len();
        self.layout(work, batch.seqs(), range.clone());
        self.forward_chunk(work, nb, rng);
        work.targets.clear();
        work.targets.extend_from_slice(&batch.targets()[range]);
        let mut grads = grads;
        let ditems = grads.as_deref_mut().map(|g| &mut g.item_emb.data[..]);
        let loss = item_ce_of_h(work, &self.params.item_emb.data, ditems, d, inv_tau, dloss);
        if let Some(grads) = grads {
            self.backward_chunk(work, grads);
        }
        loss
    }

    /// [`chunk_loss`](Self::chunk_loss) of a reasoning model: the family's
    /// objective over the states h₀ … h_T (method.md §3).
    #[allow(clippy::too_many_arguments)]
    fn chunk_loss_steps(
        &self,
        work: &mut Work<T>,
        grads: Option<&mut Params<T>>,
        batch: &TrainBatch,
        range: std::ops::Range<usize>,
        rng: Option<&CounterRng>,
        dloss: T,
        extra: Option<&StateLoss<T>>,
    ) -> f64 {
        let cfg = &self.config;
        let (d, t_max) = (cfg.d, cfg.t_max);
        let s = t_max + 1;
        let nb = range.len();
        self.layout(work, batch.seqs(), range.clone());
        self.forward_chunk(work, nb, rng);
        self.forward_steps(work, rng);
        let noisy = match rng.filter(|_| self.contrastive_active()) {
            Some(rng) => {
                let layout = ChainLayout {
                    first: work.first,
                    start: &work.seq_start,
                    len: &work.seq_len,
                };
                work.chain.forward_noisy(
                    &self.params,
                    self.dims(),
                    T::from_f64(cfg.ln_eps),
                    (
                        cfg.step_dropout.unwrap_or(cfg.dropout),
                        cfg.step_dropout.unwrap_or(cfg.attn_dropout),
                    ),
                    layout,
                    rng,
                    cfg.prl_noise_std,
                    &mut work.scratch,
                );
                true
            }
            None => false,
        };
        work.targets.clear();
        work.targets.extend_from_slice(&batch.targets()[range]);
        let emb = &self.params.item_emb.data;
        let tau = T::from_f64(cfg.tau);
        // erl_loss / prl_item_loss return the mean over the chunk's rows and
        // scale their gradient by dloss / rows: feed them dloss·rows so every
        // row carries weight dloss, as in the SASRec path.
        let rows = T::from_usize(nb);
        reset(&mut work.chain.dstates, nb * s * d);
        let mut grads = grads;
        let mut loss = match cfg.family {
            Family::RearecErl | Family::RearecPrl => {
                let (dh, di) = match grads.as_deref_mut() {
                    Some(g) => (
                        Some(&mut work.chain.dstates[..]),
                        Some(&mut g.item_emb.data[d..]),
                    ),
                    None => (None, None),
                };
                let (states, items) = (&work.chain.states, &emb[d..]);
                let total = if cfg.family == Family::RearecErl {
                    let lambda = T::from_f64(cfg.erl_lambda);
                    erl_loss(
                        dh,
                        di,
                        states,
                        items,
                        &work.targets,
                        s,
                        d,
                        tau,
                        lambda,
                        dloss * rows,
                    )
                    .total
                } else {
                    let alpha = T::from_f64(cfg.prl_alpha);
                    prl_item_loss(
                        dh,
                        di,
                        states,
                        items,
                        &work.targets,
                        s,
                        d,
                        tau,
                        alpha,
                        dloss * rows,
                    )
                    .total
                };
                let rcl = if noisy {
                    contrastive_term(work, grads.is_some(), nb, s, d, tau, dloss * rows)
                } else {
                    T::ZERO
                };
                (total + rcl).to_f64() * nb as f64
            }
            // DTRec's item loss: CE of the final state (validation rules out
            // sasrec with t_max > 0), plus L_RCL when its config asks for it
            Family::Dtrec | Family::Sasrec => {
                let inv_tau = T::from_f64(1.0 / cfg.tau);
                reset(&mut work.h, nb * d);
                for j in 0..nb {
                    work.h[j * d..(j + 1) * d]
                        .copy_from_slice(&work.chain.states[(j * s + t_max) * d..(j * s + s) * d]);
                }
                let ditems = grads.as_deref_mut().map(|g| &mut g.item_emb.data[..]);
                let item = item_ce_of_h(work, emb, ditems, d, inv_tau, dloss);
                if grads.is_some() {
                    for j in 0..nb {
                        work.chain.dstates[(j * s + t_max) * d..(j * s + s) * d]
                            .copy_from_slice(&work.dh[j * d..(j + 1) * d]);
                    }
                }
                if noisy {
                    let rcl = contrastive_term(work, grads.is_some(), nb, s, d, tau, dloss * rows);
                    item + rcl.to_f64() * nb as f64
                } else {
                    item
                }
            }
        };
        if let Some(extra) = extra {
            let (dstates, ditems) = match grads.as_deref_mut() {
                Some(g) => (
                    Some(&mut work.chain.dstates[..]),
                    Some(&mut g.item_emb.data[d..]),
                ),
                None => (None, None),
            };
            loss += extra(StateLossArgs {
                states: &work.chain.states,
                targets: &work.targets,
                items: &emb[d..],
                dstates,
                ditems,
                dloss,
            });
        }
        if let Some(g) = grads {
            self.backward_steps(work, g);
        }
        loss
    }

    /// Mean cross-entropy of `batch`, forward only. `dropout_seed` = Some(s)
    /// applies the training-mode dropout masks of step seed `s` (the same
    /// masks [`loss_and_grad`](Self::loss_and_grad) uses), None evaluates
    /// without dropout. Sequential; meant for checks and validation loss.
    pub fn loss(&self, batch: &TrainBatch, dropout_seed: Option<u64>) -> f64 {
        self.loss_extra(batch, dropout_seed, None)
    }

    /// [`loss`](Self::loss) plus the mean of an extra objective on the
    /// states ([`StateLoss`]).
    pub fn loss_extra(
        &self,
        batch: &TrainBatch,
        dropout_seed: Option<u64>,
        extra: Option<&StateLoss<T>>,
    ) -> f64 {
        self.check_batch(batch.seqs());
        let rng = dropout_seed.map(CounterRng::new);
        let mut work = pop(&self.pool.works).unwrap_or_default();
        let b = batch.len();
        let mut total = 0.0;
        for c0 in (0..b).step_by(CHUNK) {
            total += self.chunk_loss(
                &mut work,
                None,
                batch,
                c0..(c0 + CHUNK).min(b),
                rng.as_ref(),
                T::ZERO,
                extra,
            );
        }
        push(&self.pool.works, work);
        if b == 0 {
            0.0
        } else {
            total / b as f64
        }
    }

    /// Like [`loss_and_grad`](Self::loss_and_grad) with dropout optional
    /// (`dropout_seed` = None: no dropout); returns the mean loss in f64.
    pub fn loss_and_grad_with(
        &self,
        grads: &mut Params<T>,
        batch: &TrainBatch,
        dropout_seed: Option<u64>,
    ) -> f64 {
        self.loss_and_grad_extra(grads, batch, dropout_seed, None)
    }

    /// [`loss_and_grad_with`](Self::loss_and_grad_with) plus an extra
    /// objective on the reasoning states (`extra`, e.g. DTRec's HPS losses
    /// built by the trainer from its prototypes): the returned mean loss
    /// includes it and its gradient flows through the chain and the encoder
    /// together with the family loss's. Same determinism guarantees.
    pub fn loss_and_grad_extra(
        &self,
        grads: &mut Params<T>,
        batch: &TrainBatch,
        dropout_seed: Option<u64>,
        extra: Option<&StateLoss<T>>,
    ) -> f64 {
        self.check_batch(batch.seqs());
        let b = batch.len();
        if b == 0 {
            return 0.0;
        }
        let rng = dropout_seed.map(CounterRng::new);
        let dloss = T::from_f64(1.0 / b as f64);
        let n_parts = rayon::current_num_threads().clamp(1, b);
        let parts: Vec<(f64, Params<T>)> = (0..n_parts)
            .into_par_iter()
            .map(|part| {
                let (s, e) = if self.contrastive_active() {
                    // whole chunks of CHUNK per part: the contrastive
                    // softmax groups must not depend on the thread count
                    let n_chunks = b.div_ceil(CHUNK);
                    let at = |p: usize| (p * n_chunks / n_parts * CHUNK).min(b);
                    (at(part), at(part + 1))
                } else {
                    (part * b / n_parts, (part + 1) * b / n_parts)
                };
                let mut g = pop(&self.pool.grads).unwrap_or_else(|| self.params.zeros_like());
                g.zero_grad();
                let mut work = pop(&self.pool.works).unwrap_or_default();
                let mut loss = 0.0;
                for c0 in (s..e).step_by(CHUNK) {
                    loss += self.chunk_loss(
                        &mut work,
                        Some(&mut g),
                        batch,
                        c0..(c0 + CHUNK).min(e),
                        rng.as_ref(),
                        dloss,
                        extra,
                    );
                }
                push(&self.pool.works, work);
                (loss, g)
            })
            .collect();
        // Fixed-order reduction: part 0, 1, … (never the order threads finish).
        let mut total = 0.0;
        for (loss, g) in parts {
            total += loss;
            grads.add_assign(&g);
            push(&self.pool.grads, g);
        }
        total / b as f64
    }

    /// One training step's loss and gradient: mean full-softmax cross-entropy
    /// of `batch` with dropout masks drawn from `step_seed`; the gradient of
    /// that mean is ADDED to `grads` (zero it first with
    /// [`Params::zero_grad`]). Runs on the current rayon pool; bit-identical
    /// for the same (params, batch, step_seed, thread count).
    ///
    /// Panics if `batch` was validated for a larger `max_len` or `n_items`
    /// than the model's (a caller bug).
    pub fn loss_and_grad(&self, grads: &mut Params<T>, batch: &TrainBatch, step_seed: u64) -> T {
        T::from_f64(self.loss_and_grad_with(grads, batch, Some(step_seed)))
    }

    /// Every state h₀ … h_T (B, T+1, d) of `seqs` in training mode:
    /// `dropout_seed` = Some(s) draws the dropout masks of step seed `s`
    /// (exactly those of [`loss_and_grad`](Self::loss_and_grad)), None
    /// runs without dropout. Sequential. With
    /// [`backward_states`](Self::backward_states) this is the hook for
    /// objectives computed outside the model (e.g. DTRec's HPS losses, which
    /// need the trainer's prototypes), and for checking stop-gradient terms.
    pub fn states_with(&self, seqs: &SeqBatch, dropout_seed: Option<u64>) -> Vec<T> {
        self.check_batch(seqs);
        let rng = dropout_seed.map(CounterRng::new);
        let (b, width) = (seqs.len(), (self.config.t_max + 1) * self.config.d);
        let mut out = vec![T::ZERO; b * width];
        let mut work = pop(&self.pool.works).unwrap_or_default();
        for c0 in (0..b).step_by(CHUNK) {
            let range = c0..(c0 + CHUNK).min(b);
            self.layout(&mut work, seqs, range.clone());
            self.forward_chunk(&mut work, range.len(), rng.as_ref());
            let chunk = &mut out[range.start * width..range.end * width];
            if self.config.t_max > 0 {
                self.forward_steps(&mut work, rng.as_ref());
                chunk.copy_from_slice(&work.chain.states);
            } else {
                chunk.copy_from_slice(&work.h);
            }
        }
        push(&self.pool.works, work);
        out
    }

    /// Backward of [`states_with`](Self::states_with) (same `seqs` and
    /// `dropout_seed`): from `dstates` (B, T+1, d), the gradient of some
    /// loss w.r.t. every state, ADDS that loss's parameter gradient to
    /// `grads`, through the whole chain and the encoder. Recomputes the
    /// forward; sequential.
    pub fn backward_states(
        &self,
        grads: &mut Params<T>,
        seqs: &SeqBatch,
        dropout_seed: Option<u64>,
        dstates: &[T],
    ) {
        self.check_batch(seqs);
        let rng = dropout_seed.map(CounterRng::new);
        let (b, width) = (seqs.len(), (self.config.t_max + 1) * self.config.d);
        assert_eq!(dstates.len(), b * width, "backward_states: dstates shape");
        let mut work = pop(&self.pool.works).unwrap_or_default();
        for c0 in (0..b).step_by(CHUNK) {
            let range = c0..(c0 + CHUNK).min(b);
            self.layout(&mut work, seqs, range.clone());
            self.forward_chunk(&mut work, range.len(), rng.as_ref());
            let chunk = &dstates[range.start * width..range.end * width];
            if self.config.t_max > 0 {
                self.forward_steps(&mut work, rng.as_ref());
                work.chain.dstates.clear();
                work.chain.dstates.extend_from_slice(chunk);
                self.backward_steps(&mut work, grads);
            } else {
                work.dh.clear();
                work.dh.extend_from_slice(chunk);
                self.backward_chunk(&mut work, grads);
            }
        }
        push(&self.pool.works, work);
    }
}
