//! The SASRec encoder and its full-softmax training loss (method.md §1).
//!
//! Execution model. A history's real items are packed into consecutive rows
//! (padded columns are never computed: their keys are masked anyway and only
//! the last column's output is used, so skipping them changes nothing but the
//! cost). All linears of a chunk of sequences run as single `gemm`s over the
//! packed rows. In the LAST block only the last row of each sequence is a
//! query (keys/values still cover every row): that is all h₀ needs.
//!
//! Determinism. Dropout masks are pure functions of (step seed, site, batch
//! row, position, feature); [`Model::loss_and_grad`] splits the batch into
//! `P = min(threads, B)` contiguous parts, each accumulating into its own
//! gradient buffer, and adds the parts to `grads` in part order. For a given
//! batch, seed and thread count the result is therefore bit-identical run to
//! run; a different thread count changes only the floating-point summation
//! order of the gradient (and of the loss), not the masks.

use rayon::prelude::*;
use std::sync::Mutex;

use super::batch::{BatchError, SeqBatch, TrainBatch};
use super::chain::{Chain, ChainLayout};
use super::config::{ConfigError, Family, ModelConfig};
use super::params::Params;
use crate::kernels::rng::CounterRng;
use crate::kernels::Kernels;
use crate::nn::attention::{AttnDims, AttnGroup};
use crate::nn::block::{BlockCache, BlockDropout, BlockScratch, Queries};
use crate::nn::dropout::{
    dropout_backward, dropout_forward, fill_row_masks, stream_id, DropoutSite, RowId, Site,
};
use crate::nn::embedding::{embedding_backward, embedding_forward};
use crate::nn::item_softmax::{
    item_ce_backward, item_ce_forward, item_scores, ItemCeCache, ItemCeScratch,
};
use crate::nn::layernorm::LayerNormCache;
use crate::nn::tensor::{fit, reset};
use crate::reasoning::erl::erl_loss;
use crate::reasoning::prl::{prl_item_loss, rcl_loss};

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

/// Sequences per forward/backward chunk inside one thread: bounds activation
/// memory (≈ 64·L rows per layer) and keeps the working set in cache.
pub const CHUNK: usize = 64;

/// A SASRec model over scalar type `T` (f32 to train and serve, f64 for
/// gradient checks).
#[derive(Clone, Debug, PartialEq)]
pub struct Model<T> {
    config: ModelConfig,
    /// The parameters; public so optimizers, checkpoints and tests can reach them.
    pub params: Params<T>,
    /// ReaRec-PRL's contrastive term (noise view) is on; see
    /// [`set_contrastive`](Model::set_contrastive).
    contrastive: bool,
    pool: WorkPool<T>,
}

/// Workspaces and per-part gradient buffers kept between calls, so a
/// training step allocates nothing in the steady state (fresh buffers cost
/// page faults: 11% of a step). Not part of the model's value: cloning gives
/// an empty pool, and equality ignores it. Every buffer is reset before use,
/// so which one a part receives never affects a result.
struct WorkPool<T> {
    works: Mutex<Vec<Work<T>>>,
    grads: Mutex<Vec<Params<T>>>,
}

impl<T> Default for WorkPool<T> {
    fn default() -> Self {
        WorkPool {
            works: Mutex::new(Vec::new()),
            grads: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Clone for WorkPool<T> {
    fn clone(&self) -> Self {
        WorkPool::default()
    }
}

impl<T> PartialEq for WorkPool<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> std::fmt::Debug for WorkPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkPool")
    }
}

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

fn pop<X>(m: &Mutex<Vec<X>>) -> Option<X> {
    m.lock().unwrap_or_else(|e| e.into_inner()).pop()
}

fn push<X>(m: &Mutex<Vec<X>>, x: X) {
    m.lock().unwrap_or_else(|e| e.into_inner()).push(x)
}

/// The f32 model used for training and serving.
pub type Sasrec = Model<f32>;

/// Workspace of one thread: the packed layout of a chunk, every layer's
/// forward cache and the backward buffers. Reused chunk after chunk.
#[derive(Debug, Default)]
pub(super) struct Work<T> {
    /// (R) item id, position id and global row id of each packed row.
    items: Vec<u32>,
    positions: Vec<u32>,
    ids: Vec<RowId>,
    /// One group per non-empty sequence: all rows attend causally.
    groups_full: Vec<AttnGroup>,
    /// One group per non-empty sequence: only its last row is a query.
    groups_last: Vec<AttnGroup>,
    /// (n_last) packed row of each non-empty sequence's last item, its id
    /// and its index in the chunk.
    last_rows: Vec<usize>,
    last_ids: Vec<RowId>,
    last_seq: Vec<usize>,
    /// (R, d) E[item] + P[pos]
    emb: Vec<T>,
    ln_in: LayerNormCache<T>,
    /// (R, d) input dropout mask (empty without dropout)
    in_mask: Vec<T>,
    /// (R, d) input of block 0
    x0: Vec<T>,
    pub(super) blocks: Vec<BlockCache<T>>,
    scratch: BlockScratch<T>,
    /// (nb, d) h₀ per sequence of the chunk (zero for an empty history)
    pub(super) h: Vec<T>,
    targets: Vec<u32>,
    losses: Vec<T>,
    ce: ItemCeCache<T>,
    ce_scratch: ItemCeScratch<T>,
    dlosses: Vec<T>,
    dh: Vec<T>,
    dy: Vec<T>,
    dx: Vec<T>,
    /// (nb) first packed row and length of every sequence of the chunk
    /// (empty histories included): the reasoning chain's layout.
    pub(super) seq_start: Vec<usize>,
    pub(super) seq_len: Vec<usize>,
    /// Global index of the chunk's first sequence.
    first: usize,
    /// The reasoning chain (t_max > 0 only).
    chain: Chain<T>,
    /// (R, d) gradients the chain puts on one layer's history keys/values.
    dk_hist: Vec<T>,
    dv_hist: Vec<T>,
}

impl<T: Kernels> Model<T> {
    /// A freshly initialised model ([`Params::init`]) after validating `config`.
    ///
    /// ```
    /// use dtrec::model::{ModelConfig, Sasrec};
    /// let model = Sasrec::new(ModelConfig { max_len: 3, d: 8, inner: 16, ..ModelConfig::sasrec(20) }, 42).unwrap();
    /// let h = model.encode(&[0, 3, 4], &[2]).unwrap(); // items (B, max_len) left-padded
    /// assert_eq!(h.len(), 8);
    /// assert!(Sasrec::new(ModelConfig { n_heads: 3, ..ModelConfig::sasrec(20) }, 42).is_err());
    /// ```
    pub fn new(config: ModelConfig, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let params = Params::init(&config, seed);
        Ok(Model {
            config,
            params,
            contrastive: false,
            pool: WorkPool::default(),
        })
    }

    /// A model from existing parameters (e.g. loaded from a file): validates
    /// the config and every tensor's shape.
    pub fn from_params(config: ModelConfig, params: Params<T>) -> Result<Self, ConfigError> {
        config.validate()?;
        params
            .check_shapes(&config)
            .map_err(|(name, want, got)| ConfigError {
                field: "params",
                reason: format!("tensor {name} has shape {got:?}, the config implies {want:?}"),
            })?;
        Ok(Model {
            config,
            params,
            contrastive: false,
            pool: WorkPool::default(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Turns ReaRec-PRL's reasoning contrastive loss L_RCL on or off (off
    /// after construction; the trainer turns it on after the warm-up epochs,
    /// method.md §3). It only acts for family `rearec-prl` and in training
    /// mode (a dropout seed given), and for `dtrec` when its config sets
    /// `dtrec_contrastive`: a noise view of the reasoning steps
    /// ([`chain`](super::chain)) and, per step k ≥ 1, a softmax over the dot
    /// products of noisy vs clean states /τ with target = the same row. The
    /// softmax runs over the rows of one chunk of [`CHUNK`] consecutive
    /// sequences of the batch (chunk boundaries do not depend on the thread
    /// count), so for B > CHUNK it is not over the whole batch.
    pub fn set_contrastive(&mut self, on: bool) {
        self.contrastive = on;
    }

    /// Whether ReaRec-PRL's contrastive loss is on.
    pub fn contrastive(&self) -> bool {
        self.contrastive
    }

    fn contrastive_active(&self) -> bool {
        self.contrastive && self.config.uses_contrastive()
    }

    /// The same model in another scalar type.
    pub fn cast<U: Kernels>(&self) -> Model<U> {
        Model {
            config: self.config.clone(),
            params: self.params.cast(),
            contrastive: self.contrastive,
            pool: WorkPool::default(),
        }
    }

    fn dims(&self) -> AttnDims {
        AttnDims {
            d: self.config.d,
            n_heads: self.config.n_heads,
            pos_cap: self.config.pos_cap(),
        }
    }

    fn check_batch(&self, seqs: &SeqBatch) {
        assert!(
            seqs.max_len() <= self.config.max_len && seqs.n_items() <= self.config.n_items,
            "batch validated for max_len {} / n_items {}, model has {} / {}",
            seqs.max_len(),
            seqs.n_items(),
            self.config.max_len,
            self.config.n_items
        );
    }

    /// Packs sequences `range` of `seqs` into `work` (layout only).
    pub(super) fn layout(
        &self,
        work: &mut Work<T>,
        seqs: &SeqBatch,
        range: std::ops::Range<usize>,
    ) {
        work.items.clear();
        work.positions.clear();
        work.ids.clear();
        work.groups_full.clear();
        work.groups_last.clear();
        work.last_rows.clear();
        work.last_ids.clear();
        work.last_seq.clear();
        work.seq_start.clear();
        work.seq_len.clear();
        work.first = range.start;
        for (j, b) in range.enumerate() {
            let hist = seqs.history(b);
            let start = work.items.len();
            let len = hist.len();
            work.seq_start.push(start);
            work.seq_len.push(len);
            work.items.extend_from_slice(hist);
            work.positions.extend(0..len as u32);
            work.ids
                .extend((0..len as u32).map(|pos| RowId { seq: b as u32, pos }));
            if len > 0 {
                work.groups_full.push(AttnGroup {
                    q_start: start,
                    n_q: len,
                    k_start: start,
                    n_k: len,
                    seq: b as u32,
                    pos0: 0,
                });
                work.groups_last.push(AttnGroup {
                    q_start: work.last_rows.len(),
                    n_q: 1,
                    k_start: start,
                    n_k: len,
                    seq: b as u32,
                    pos0: 0,
                });
                work.last_rows.push(start + len - 1);
                work.last_ids.push(RowId {
                    seq: b as u32,
                    pos: len as u32 - 1,
                });
                work.last_seq.push(j);
            }
        }
    }

    /// Forward of the chunk laid out in `work`: fills `work.h` (nb, d).
    /// `rng` = Some(..) turns dropout on.
    pub(super) fn forward_chunk(&self, work: &mut Work<T>, nb: usize, rng: Option<&CounterRng>) {
        let cfg = &self.config;
        let (d, p) = (cfg.d, &self.params);
        let dims = self.dims();
        let eps = T::from_f64(cfg.ln_eps);
        let rows = work.items.len();
        reset(&mut work.h, nb * d);
        if rows == 0 {
            return;
        }
        // x = Dropout(LN_in(E[v] + P[pos]))
        fit(&mut work.emb, rows * d); // every row is written
        embedding_forward(
            &mut work.emb,
            &work.items,
            &work.positions,
            &p.item_emb.data,
            &p.pos_emb.data,
            d,
        );
        p.ln_in.forward(&mut work.ln_in, &work.emb, eps);
        fit(&mut work.x0, rows * d); // overwritten by the dropout or the copy
        match rng.filter(|_| cfg.dropout > 0.0) {
            Some(rng) => {
                fit(&mut work.in_mask, rows * d); // every row is filled
                let site = DropoutSite {
                    rng,
                    stream: stream_id(0, Site::Input),
                    p: cfg.dropout,
                };
                fill_row_masks(&mut work.in_mask, &work.ids, d, dims.pos_cap, &site);
                dropout_forward(&mut work.x0, &work.ln_in.out, &work.in_mask);
            }
            None => {
                work.in_mask.clear();
                work.x0.copy_from_slice(&work.ln_in.out);
            }
        }
        // blocks; the last one only for the last row of each sequence
        let n_layers = cfg.n_layers;
        work.blocks.resize_with(n_layers, BlockCache::default);
        for l in 0..n_layers {
            let (before, rest) = work.blocks.split_at_mut(l);
            let x: &[T] = if l == 0 {
                &work.x0
            } else {
                before[l - 1].out()
            };
            let drop = rng.map(|rng| BlockDropout {
                rng,
                layer: l,
                hidden: cfg.dropout,
                attn: cfg.attn_dropout,
            });
            let block = &p.blocks[l];
            if l + 1 < n_layers {
                block.forward(
                    &mut rest[0],
                    x,
                    Queries::All,
                    &work.ids,
                    &work.groups_full,
                    dims,
                    eps,
                    drop.as_ref(),
                    &mut work.scratch,
                );
            } else {
                block.forward(
                    &mut rest[0],
                    x,
                    Queries::Rows(&work.last_rows),
                    &work.last_ids,
                    &work.groups_last,
                    dims,
                    eps,
                    drop.as_ref(),
                    &mut work.scratch,
                );
            }
        }
        // h₀ = last block output at each sequence's last row
        let y = work.blocks[n_layers - 1].out();
        for (i, &j) in work.last_seq.iter().enumerate() {
            work.h[j * d..(j + 1) * d].copy_from_slice(&y[i * d..(i + 1) * d]);
        }
    }

    /// The reasoning chain after [`forward_chunk`](Self::forward_chunk):
    /// fills `work.chain.states` (nb, T+1, d) from h₀ in `work.h`.
    fn forward_steps(&self, work: &mut Work<T>, rng: Option<&CounterRng>) {
        let cfg = &self.config;
        let layout = ChainLayout {
            first: work.first,
            start: &work.seq_start,
            len: &work.seq_len,
        };
        work.chain.forward(
            &self.params,
            self.dims(),
            T::from_f64(cfg.ln_eps),
            (
                cfg.step_dropout.unwrap_or(cfg.dropout),
                cfg.step_dropout.unwrap_or(cfg.attn_dropout),
                cfg.reasoning_dropout,
            ),
            layout,
            &work.h,
            &work.blocks,
            rng,
            &mut work.scratch,
        );
    }

    /// Backward of [`forward_steps`](Self::forward_steps) and then of
    /// [`forward_chunk`](Self::forward_chunk), from `work.chain.dstates`.
    fn backward_steps(&self, work: &mut Work<T>, grads: &mut Params<T>) {
        let (d, s) = (self.config.d, self.config.t_max + 1);
        let layout = ChainLayout {
            first: work.first,
            start: &work.seq_start,
            len: &work.seq_len,
        };
        work.chain
            .backward(&self.params, grads, self.dims(), layout, &mut work.scratch);
        let nb = work.seq_len.len();
        reset(&mut work.dh, nb * d);
        for j in 0..nb {
            work.dh[j * d..(j + 1) * d]
                .copy_from_slice(&work.chain.dstates[j * s * d..(j * s + 1) * d]);
        }
        self.backward_chunk(work, grads);
    }

    /// Backward of [`forward_chunk`] from dh (nb, d) in `work.dh` (plus, for
    /// a reasoning model, the chain's gradients on every layer's keys/values).
    fn backward_chunk(&self, work: &mut Work<T>, grads: &mut Params<T>) {
        let cfg = &self.config;
        let (d, p) = (cfg.d, &self.params);
        let dims = self.dims();
        let rows = work.items.len();
        if rows == 0 {
            return;
        }
        let n_layers = cfg.n_layers;
        // h₀ = y_last[i] for sequence last_seq[i]
        reset(&mut work.dy, work.last_seq.len() * d);
        for (i, &j) in work.last_seq.iter().enumerate() {
            work.dy[i * d..(i + 1) * d].copy_from_slice(&work.dh[j * d..(j + 1) * d]);
        }
        for l in (0..n_layers).rev() {
            let x: &[T] = if l == 0 {
                &work.x0
            } else {
                work.blocks[l - 1].out()
            };
            reset(&mut work.dx, rows * d);
            let (queries, groups) = if l + 1 < n_layers {
                (Queries::All, &work.groups_full)
            } else {
                (Queries::Rows(&work.last_rows), &work.groups_last)
            };
            if cfg.t_max == 0 {
                p.blocks[l].backward(
                    &mut grads.blocks[l],
                    &mut work.dx,
                    &work.dy,
                    x,
                    queries,
                    groups,
                    dims,
                    &work.blocks[l],
                    &mut work.scratch,
                );
            } else {
                // dK, dV start from what the reasoning steps put on the history
                fit(&mut work.dk_hist, rows * d);
                fit(&mut work.dv_hist, rows * d);
                let layout = ChainLayout {
                    first: work.first,
                    start: &work.seq_start,
                    len: &work.seq_len,
                };
                work.chain
                    .history_kv_grad(l, layout, d, &mut work.dk_hist, &mut work.dv_hist);
                p.blocks[l].backward_queries(
                    &mut grads.blocks[l],
                    &mut work.dx,
                    &mut work.dk_hist,
                    &mut work.dv_hist,
                    &work.dy,
                    x,
                    queries,
                    groups,
                    dims,
                    &work.blocks[l],
                    &mut work.scratch,
                );
                p.blocks[l].backward_kv(
                    &mut grads.blocks[l],
                    &mut work.dx,
                    &work.dk_hist,
                    &work.dv_hist,
                    x,
                );
            }
            std::mem::swap(&mut work.dx, &mut work.dy);
        }
        // x0 = Dropout(LN_in(emb))  (dy now holds dx0; reuse dx for dln)
        reset(&mut work.dx, rows * d);
        if work.in_mask.is_empty() {
            work.dx.copy_from_slice(&work.dy);
        } else {
            dropout_backward(&mut work.dx, &work.dy, &work.in_mask);
        }
        reset(&mut work.dy, rows * d);
        p.ln_in.backward(
            &mut grads.ln_in,
            &mut work.dy,
            &work.dx,
            &work.emb,
            &work.ln_in,
        );
        // emb = E[v] + P[pos]
        embedding_backward(
            &mut grads.item_emb.data,
            &mut grads.pos_emb.data,
            &work.dy,
            &work.items,
            &work.positions,
            d,
        );
    }

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
        reset(&mut work.losses, nb);
        item_ce_forward(
            &mut work.losses,
            &mut work.ce,
            &work.h,
            &self.params.item_emb.data,
            &work.targets,
            d,
            inv_tau,
        );
        let loss = work.losses.iter().map(|l| l.to_f64()).sum();
        if let Some(grads) = grads {
            work.dlosses.clear();
            work.dlosses.resize(nb, dloss);
            reset(&mut work.dh, nb * d);
            item_ce_backward(
                &mut work.dh,
                &mut grads.item_emb.data,
                &work.dlosses,
                &work.h,
                &self.params.item_emb.data,
                &work.targets,
                &work.ce,
                d,
                inv_tau,
                &mut work.ce_scratch,
            );
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
                reset(&mut work.losses, nb);
                item_ce_forward(
                    &mut work.losses,
                    &mut work.ce,
                    &work.h,
                    emb,
                    &work.targets,
                    d,
                    inv_tau,
                );
                if let Some(g) = grads.as_deref_mut() {
                    work.dlosses.clear();
                    work.dlosses.resize(nb, dloss);
                    reset(&mut work.dh, nb * d);
                    item_ce_backward(
                        &mut work.dh,
                        &mut g.item_emb.data,
                        &work.dlosses,
                        &work.h,
                        emb,
                        &work.targets,
                        &work.ce,
                        d,
                        inv_tau,
                        &mut work.ce_scratch,
                    );
                    for j in 0..nb {
                        work.chain.dstates[(j * s + t_max) * d..(j * s + s) * d]
                            .copy_from_slice(&work.dh[j * d..(j + 1) * d]);
                    }
                }
                let item: f64 = work.losses.iter().map(|l| l.to_f64()).sum();
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

    /// The prediction state (B, d) of a batch of histories, without
    /// dropout: h₀ for SASRec, the mean h̄ of h₀ … h_T for ReaRec-ERL, the
    /// final h_T for ReaRec-PRL and DTRec. Parallel over chunks of [`CHUNK`]
    /// histories; an empty history encodes to h₀ = 0 (its reasoning steps
    /// still run, attending over the reasoning tokens only).
    pub fn encode_batch(&self, seqs: &SeqBatch) -> Vec<T> {
        let d = self.config.d;
        let family = self.config.family;
        let s = self.config.t_max + 1;
        self.encode_chunks(seqs, d, |work, out| {
            if s == 1 {
                out.copy_from_slice(&work.h);
                return;
            }
            let states = &work.chain.states;
            for (j, o) in out.chunks_exact_mut(d).enumerate() {
                let rows = &states[j * s * d..(j + 1) * s * d];
                match family {
                    Family::RearecErl => {
                        o.fill(T::ZERO);
                        let w = T::ONE / T::from_usize(s);
                        for h in rows.chunks_exact(d) {
                            T::axpy(o, w, h);
                        }
                    }
                    _ => o.copy_from_slice(&rows[(s - 1) * d..]),
                }
            }
        })
    }

    /// Every state h₀ … h_T of a batch of histories, (B, T+1, d) with
    /// sequence b's step k at `(b·(T+1) + k)·d`, without dropout (for the
    /// halting indicators and trajectories). For SASRec, (B, 1, d) = h₀.
    pub fn encode_steps(&self, seqs: &SeqBatch) -> Vec<T> {
        let s = self.config.t_max + 1;
        self.encode_chunks(seqs, s * self.config.d, |work, out| {
            out.copy_from_slice(if s == 1 { &work.h } else { &work.chain.states })
        })
    }

    /// Runs the forward (encoder and chain) without dropout on chunks of
    /// [`CHUNK`] histories, in parallel for large batches, and lets `emit`
    /// write `width` values per history from the chunk's work.
    fn encode_chunks(
        &self,
        seqs: &SeqBatch,
        width: usize,
        emit: impl Fn(&Work<T>, &mut [T]) + Sync,
    ) -> Vec<T> {
        self.check_batch(seqs);
        let b = seqs.len();
        let mut out = vec![T::ZERO; b * width];
        let run = |(c, chunk): (usize, &mut [T])| {
            let mut work = pop(&self.pool.works).unwrap_or_default();
            let range = c * CHUNK..(c * CHUNK + chunk.len() / width);
            self.layout(&mut work, seqs, range.clone());
            self.forward_chunk(&mut work, range.len(), None);
            if self.config.t_max > 0 {
                self.forward_steps(&mut work, None);
            }
            emit(&work, chunk);
            push(&self.pool.works, work);
        };
        if b <= CHUNK {
            out.chunks_mut(CHUNK * width).enumerate().for_each(run);
        } else {
            out.par_chunks_mut(CHUNK * width).enumerate().for_each(run);
        }
        out
    }

    /// The prediction state (B, d) ([`encode_batch`](Self::encode_batch)) of
    /// left-padded histories `items` (B, max_len of the model) with
    /// `lengths` (B), validated first (see [`SeqBatch::new`]).
    pub fn encode(&self, items: &[u32], lengths: &[u32]) -> Result<Vec<T>, BatchError> {
        let seqs = SeqBatch::new(
            items.to_vec(),
            lengths.to_vec(),
            self.config.max_len,
            self.config.n_items,
        )?;
        Ok(self.encode_batch(&seqs))
    }

    /// Full-ranking scores out (B, N) = hidden (B, d) · E[1..=N]ᵀ / τ: column
    /// j is item id j + 1 (the padding item 0 has no column). Parallel over
    /// rows for large B.
    pub fn score_items(&self, out: &mut [T], hidden: &[T]) {
        let (d, n) = (self.config.d, self.config.n_items);
        let b = hidden.len() / d;
        assert!(
            hidden.len() == b * d && out.len() == b * n,
            "score_items: shapes"
        );
        let inv_tau = T::from_f64(1.0 / self.config.tau);
        let emb = &self.params.item_emb.data;
        const ROWS: usize = 8;
        if b <= ROWS {
            item_scores(out, hidden, emb, d, inv_tau);
        } else {
            out.par_chunks_mut(ROWS * n)
                .zip(hidden.par_chunks(ROWS * d))
                .for_each(|(o, h)| item_scores(o, h, emb, d, inv_tau));
        }
    }
}
