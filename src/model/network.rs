//! The network of every family: the SASRec encoder (method.md §1) and the
//! latent reasoning chain over it (method.md §2) — [`Model`] holds the
//! configuration and the parameters, and encodes and scores histories.
//! How a chunk is encoded is in `encoder`, the chain in `chain`, each
//! family's training loss in [`loss`](super::loss).
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

use std::sync::Mutex;

use rayon::prelude::*;

use super::config::{ConfigError, Family, ModelConfig};
use super::encoder::Work;
use super::params::Params;
use crate::batch::{BatchError, SeqBatch};
use crate::kernels::Kernels;
use crate::nn::attention::AttnDims;
use crate::nn::item_softmax::item_scores;

/// Sequences per forward/backward chunk inside one thread: bounds activation
/// memory (≈ 64·L rows per layer) and keeps the working set in cache.
pub const CHUNK: usize = 64;

/// The model of every family — the encoder, and for the reasoning families
/// the reasoning chain — over scalar type `T`: f32 (the default) to train
/// and serve, f64 for gradient checks. The family and its sizes are in
/// [`ModelConfig`].
#[derive(Clone, Debug, PartialEq)]
pub struct Model<T = f32> {
    pub(crate) config: ModelConfig,
    /// The parameters; public so optimizers, checkpoints and tests can reach them.
    pub params: Params<T>,
    /// ReaRec-PRL's contrastive term (noise view) is on; see
    /// [`set_contrastive`](Model::set_contrastive).
    pub(crate) contrastive: bool,
    pub(crate) pool: WorkPool<T>,
}

/// Workspaces and per-part gradient buffers kept between calls, so a
/// training step allocates nothing in the steady state (fresh buffers cost
/// page faults: 11% of a step). Not part of the model's value: cloning gives
/// an empty pool, and equality ignores it. Every buffer is reset before use,
/// so which one a part receives never affects a result.
pub(crate) struct WorkPool<T> {
    pub(crate) works: Mutex<Vec<Work<T>>>,
    pub(crate) grads: Mutex<Vec<Params<T>>>,
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

pub(super) fn pop<X>(m: &Mutex<Vec<X>>) -> Option<X> {
    m.lock().unwrap_or_else(|e| e.into_inner()).pop()
}

pub(super) fn push<X>(m: &Mutex<Vec<X>>, x: X) {
    m.lock().unwrap_or_else(|e| e.into_inner()).push(x)
}

impl Model {
    /// A freshly initialised f32 model ([`Params::init`]) after validating
    /// `config` (any other scalar type: [`Model::cast`] it).
    ///
    /// ```
    /// use dtrec::model::{ModelConfig, Model};
    /// let model = Model::new(ModelConfig { max_len: 3, d: 8, inner: 16, ..ModelConfig::sasrec(20) }, 42).unwrap();
    /// let h = model.encode(&[0, 3, 4], &[2]).unwrap(); // items (B, max_len) left-padded
    /// assert_eq!(h.len(), 8);
    /// assert!(Model::new(ModelConfig { n_heads: 3, ..ModelConfig::sasrec(20) }, 42).is_err());
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
}

impl<T: Kernels> Model<T> {
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

    pub(super) fn contrastive_active(&self) -> bool {
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

    pub(super) fn dims(&self) -> AttnDims {
        AttnDims {
            d: self.config.d,
            n_heads: self.config.n_heads,
            pos_cap: self.config.pos_cap(),
        }
    }

    pub(super) fn check_batch(&self, seqs: &SeqBatch) {
        assert!(
            seqs.max_len() <= self.config.max_len && seqs.n_items() <= self.config.n_items,
            "batch validated for max_len {} / n_items {}, model has {} / {}",
            seqs.max_len(),
            seqs.n_items(),
            self.config.max_len,
            self.config.n_items
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
