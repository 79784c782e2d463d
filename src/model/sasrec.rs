//! The SASRec encoder and the reasoning chain over it (method.md §1–§2);
//! each family's training loss is in the `loss` submodule.
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

use super::batch::{BatchError, SeqBatch};
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
use crate::nn::item_softmax::{item_scores, ItemCeCache, ItemCeScratch};
use crate::nn::layernorm::LayerNormCache;
use crate::nn::tensor::{fit, reset};

mod loss;

pub use loss::{StateLoss, StateLossArgs};

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

    /// The architecture the model was built with.
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
