//! The latent reasoning chain (method.md §2) over a per-layer key/value
//! cache, forward and hand-derived backward (issue 5).
//!
//! After the encoder produced h₀ for the nb sequences of a chunk, step
//! k = 1 … T runs ONE new token per sequence:
//!
//! ```text
//! u_k = h_{k−1} + R[k−1]
//! z_k = Dropout_r(LN_in(u_k))                      (the encoder's LN_in)
//! h_k = all blocks on z_k, each query attending over that layer's cached
//!       keys/values of the sequence, the earlier reasoning tokens and itself
//! ```
//!
//! Cache layout. Per layer, an "extended" K and V buffer holds, for sequence
//! j, its `len_j` history rows followed by T reasoning rows, consecutively
//! from `ext_start[j]`: step k's key/value is written into row
//! `ext_start[j] + len_j + k − 1`, so a step is one attention group
//! (n_q = 1, n_k = len_j + k) and costs O((len_j + k)·d) per layer. The
//! history rows are copied from the encoder's per-layer K/V (every layer
//! projects K/V for all rows, even the last, which queries only the last
//! column).
//!
//! Dropout coordinates. Reasoning token k of sequence b has position id
//! `len_b + k − 1` (so the pos_cap is max_len + T_max): the block dropout
//! masks of a step are exactly those of recomputing the extended sequence
//! [items…, reasoning tokens]. Dropout_r draws from its own stream
//! ([`reasoning_dropout_stream`]).
//!
//! Backward. Steps are undone from T down to 1. Step k's queries add their
//! dK/dV into the extended gradient buffers (for every earlier row); since
//! later steps were undone first, the row of step k itself is complete once
//! its own query is undone, and is projected back through W_k, W_v into the
//! step's input right away. What lands on the history rows is handed to the
//! encoder's backward (`Chain::history_kv_grad`); du_k flows into
//! dh_{k−1} and dR[k−1]. No stop-gradient anywhere.
//!
//! Inference (`InferChain`): the same recurrence without dropout and
//! without saving anything for a backward, advanced one step at a time so
//! that rows can leave between steps (Adaptive Reasoning Halting): a halted
//! row is dropped from the per-row buffers (state, layout) and its
//! extended K/V block is simply never read or written again, so later steps
//! compute the keys, values, queries and blocks of the running rows only.
//!
//! Noise view (ReaRec-PRL's contrastive loss, `Chain::forward_noisy`):
//! step k is re-run once from the clean h_{k−1} with Gaussian noise on
//! u_k; its token attends over a private copy of the clean cache prefix
//! plus itself. Its backward runs first and adds into the clean extended
//! dK/dV and dh_{k−1}.

use super::params::Params;
use crate::kernels::rng::CounterRng;
use crate::kernels::Kernels;
use crate::model::halting::compaction::compact_rows;
use crate::nn::attention::{AttnDims, AttnGroup};
use crate::nn::block::{BlockCache, BlockDropout, BlockScratch, Queries};
use crate::nn::dropout::{
    dropout_backward, dropout_forward, fill_row_masks, stream_id, DropoutSite, RowId, Site,
};
use crate::nn::layernorm::LayerNormCache;
use crate::nn::tensor::{fit, reset};

/// The RNG stream of the reasoning-input dropout Dropout_r: the input
/// site's stream with bit 16 set (bits 16.. are free for callers, see
/// [`stream_id`]).
pub fn reasoning_dropout_stream() -> u64 {
    stream_id(0, Site::Input) | 1 << 16
}

/// The RNG stream of the ReaRec-PRL noise view's Gaussian noise (bit 17).
pub fn reasoning_noise_stream() -> u64 {
    stream_id(0, Site::Input) | 1 << 17
}

/// Which sequences a chain runs on: sequence j of the chunk is sequence
/// `first + j` of the whole batch, its history occupies the encoder's packed
/// rows `start[j]..start[j] + len[j]` (len may be 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChainLayout<'a> {
    pub first: usize,
    pub start: &'a [usize],
    pub len: &'a [usize],
}

/// What one reasoning step saves.
#[derive(Debug, Default)]
struct Step<T> {
    /// (nb, d) u_k = h_{k−1} + R[k−1]
    u: Vec<T>,
    ln: LayerNormCache<T>,
    /// (nb, d) Dropout_r mask (empty without dropout)
    mask: Vec<T>,
    /// (nb, d) z_k, the input of block 0
    z: Vec<T>,
    /// Per layer; `k`/`v` stay empty (the extended buffers are swapped in).
    blocks: Vec<BlockCache<T>>,
    ids: Vec<RowId>,
    groups: Vec<AttnGroup>,
}

/// What one step of the noisy view (ReaRec-PRL's contrastive loss) saves.
#[derive(Debug, Default)]
struct NoisyStep<T> {
    /// (nb, d) û_k = h_{k−1} + R[k−1] + ε_k (h from the clean view)
    u: Vec<T>,
    ln: LayerNormCache<T>,
    /// (nb, d) ẑ_k (the clean step's Dropout_r mask)
    z: Vec<T>,
    /// Per layer; `k`/`v` hold this step's private keys/values: per
    /// sequence, the clean history and clean tokens 1 … k−1, then ẑ_k's.
    blocks: Vec<BlockCache<T>>,
    /// (nb) first private row of each sequence.
    start: Vec<usize>,
    groups: Vec<AttnGroup>,
}

/// What the backward of a step's input needs from its forward (clean or
/// noisy view): u_k, LN_in's cache and the Dropout_r mask of
/// z_k = Dropout_r(LN_in(u_k)), u_k = h_{k−1} + R[k−1] (+ ε_k).
struct StepInput<'a, T> {
    u: &'a [T],
    ln: &'a LayerNormCache<T>,
    mask: &'a [T],
}

/// Scratch of [`StepInput::backward`], (nb, d) each: the gradients of
/// LN_in(u_k) and of u_k.
#[derive(Debug, Default)]
struct StepInputGrads<T> {
    dln: Vec<T>,
    du: Vec<T>,
}

impl<T: Kernels> StepInput<'_, T> {
    /// Backward of step k's input from `dz` = ∂L/∂z_k (nb, d): accumulates
    /// the gradients of LN_in and R[k−1], and adds ∂L/∂u_k into
    /// ∂L/∂h_{k−1}, row j of `dstates` (nb, T + 1, d) at step k − 1.
    fn backward(
        &self,
        p: &Params<T>,
        grads: &mut Params<T>,
        scratch: &mut StepInputGrads<T>,
        dz: &[T],
        dstates: &mut [T],
        k: usize,
    ) {
        let (t_max, d) = (p.reason_pos.shape[0], p.reason_pos.shape[1]);
        let (s, nb) = (t_max + 1, dz.len() / d);
        reset(&mut scratch.dln, nb * d);
        if self.mask.is_empty() {
            scratch.dln.copy_from_slice(dz);
        } else {
            dropout_backward(&mut scratch.dln, dz, self.mask);
        }
        reset(&mut scratch.du, nb * d);
        p.ln_in.backward(
            &mut grads.ln_in,
            &mut scratch.du,
            &scratch.dln,
            self.u,
            self.ln,
        );
        let dr = &mut grads.reason_pos.data[(k - 1) * d..k * d];
        for (j, du) in scratch.du.chunks_exact(d).enumerate() {
            T::axpy(dr, T::ONE, du);
            T::axpy(
                &mut dstates[(j * s + k - 1) * d..(j * s + k) * d],
                T::ONE,
                du,
            );
        }
    }
}

/// Forward state and backward buffers of the chain of one chunk.
#[derive(Debug, Default)]
pub(crate) struct Chain<T> {
    /// (nb) first extended row of each sequence.
    ext_start: Vec<usize>,
    /// Per layer, (Σ_j len_j + T, d) extended keys and values.
    k: Vec<Vec<T>>,
    v: Vec<Vec<T>>,
    steps: Vec<Step<T>>,
    /// (nb, T + 1, d): h_k of sequence j at `(j·(T+1) + k)·d`.
    pub states: Vec<T>,
    /// (nb, T + 1, d) gradient of the loss w.r.t. `states`; the caller fills
    /// it before [`backward`](Chain::backward), which then adds the chain's
    /// contributions to step 0 (dh₀).
    pub dstates: Vec<T>,
    /// Per layer, gradients of the extended keys and values.
    dk: Vec<Vec<T>>,
    dv: Vec<Vec<T>>,
    rows_k: Vec<T>,
    rows_v: Vec<T>,
    dx: Vec<T>,
    dy: Vec<T>,
    input_grads: StepInputGrads<T>,
    /// The noisy view, when [`forward_noisy`](Chain::forward_noisy) ran
    /// after the last [`forward`](Chain::forward).
    noisy: Vec<NoisyStep<T>>,
    noisy_active: bool,
    /// (nb, T + 1, d) noisy states ĥ (step 0 = the clean h₀).
    pub noisy_states: Vec<T>,
    /// (nb, T + 1, d) gradient w.r.t. `noisy_states`, filled by the caller.
    pub dnoisy: Vec<T>,
    pdk: Vec<T>,
    pdv: Vec<T>,
}

impl<T: Kernels> Chain<T> {
    /// Runs the T = `p.reason_pos` rows steps for the chunk: `h0` (nb, d),
    /// `seq_blocks` the encoder's per-layer caches (their `k`, `v` cover the
    /// packed history rows). Fills [`states`](Chain::states).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        p: &Params<T>,
        dims: AttnDims,
        eps: T,
        dropout: (f64, f64, f64),
        layout: ChainLayout,
        h0: &[T],
        seq_blocks: &[BlockCache<T>],
        rng: Option<&CounterRng>,
        scratch: &mut BlockScratch<T>,
    ) {
        let d = dims.d;
        let t_max = p.reason_pos.shape[0];
        let n_layers = p.blocks.len();
        let nb = layout.len.len();
        let s = t_max + 1;
        let (hidden, attn, reason) = dropout;
        self.noisy_active = false;
        // states[:, 0] = h0
        reset(&mut self.states, nb * s * d);
        for j in 0..nb {
            self.states[j * s * d..(j * s + 1) * d].copy_from_slice(&h0[j * d..(j + 1) * d]);
        }
        // extended K/V buffers with the history rows copied in
        self.ext_start.clear();
        let mut n_ext = 0;
        for &len in layout.len {
            self.ext_start.push(n_ext);
            n_ext += len + t_max;
        }
        self.k.resize_with(n_layers, Vec::new);
        self.v.resize_with(n_layers, Vec::new);
        // (seq_blocks may be stale or short when every history is empty:
        // it is only read for non-empty ones)
        for (l, (ks, vs)) in self.k.iter_mut().zip(&mut self.v).enumerate() {
            reset(ks, n_ext * d);
            reset(vs, n_ext * d);
            for j in 0..nb {
                let (src, dst, len) = (layout.start[j], self.ext_start[j], layout.len[j]);
                if len > 0 {
                    ks[dst * d..(dst + len) * d]
                        .copy_from_slice(&seq_blocks[l].k[src * d..(src + len) * d]);
                    vs[dst * d..(dst + len) * d]
                        .copy_from_slice(&seq_blocks[l].v[src * d..(src + len) * d]);
                }
            }
        }
        self.steps.resize_with(t_max, Step::default);
        for k in 1..=t_max {
            let st = &mut self.steps[k - 1];
            st.ids.clear();
            st.groups.clear();
            for j in 0..nb {
                let len = layout.len[j];
                let seq = (layout.first + j) as u32;
                st.ids.push(RowId {
                    seq,
                    pos: (len + k - 1) as u32,
                });
                st.groups.push(AttnGroup {
                    q_start: j,
                    n_q: 1,
                    k_start: self.ext_start[j],
                    n_k: len + k,
                    seq,
                    pos0: 0,
                });
            }
            // u = h_{k−1} + R[k−1]
            let r = &p.reason_pos.data[(k - 1) * d..k * d];
            fit(&mut st.u, nb * d);
            for j in 0..nb {
                let h = &self.states[(j * s + k - 1) * d..(j * s + k) * d];
                for ((u, &h), &r) in st.u[j * d..(j + 1) * d].iter_mut().zip(h).zip(r) {
                    *u = h + r;
                }
            }
            // z = Dropout_r(LN_in(u))
            p.ln_in.forward(&mut st.ln, &st.u, eps);
            fit(&mut st.z, nb * d);
            match rng.filter(|_| reason > 0.0) {
                Some(rng) => {
                    fit(&mut st.mask, nb * d);
                    let site = DropoutSite {
                        rng,
                        stream: reasoning_dropout_stream(),
                        p: reason,
                    };
                    fill_row_masks(&mut st.mask, &st.ids, d, dims.pos_cap, &site);
                    dropout_forward(&mut st.z, &st.ln.out, &st.mask);
                }
                None => {
                    st.mask.clear();
                    st.z.copy_from_slice(&st.ln.out);
                }
            }
            st.blocks.resize_with(n_layers, BlockCache::default);
            for l in 0..n_layers {
                let (before, rest) = st.blocks.split_at_mut(l);
                let x: &[T] = if l == 0 { &st.z } else { before[l - 1].out() };
                let block = &p.blocks[l];
                // project the new rows' keys/values into the extended cache
                fit(&mut self.rows_k, nb * d);
                fit(&mut self.rows_v, nb * d);
                block.k.forward(&mut self.rows_k, x);
                block.v.forward(&mut self.rows_v, x);
                for j in 0..nb {
                    let row = self.ext_start[j] + layout.len[j] + k - 1;
                    self.k[l][row * d..(row + 1) * d]
                        .copy_from_slice(&self.rows_k[j * d..(j + 1) * d]);
                    self.v[l][row * d..(row + 1) * d]
                        .copy_from_slice(&self.rows_v[j * d..(j + 1) * d]);
                }
                let drop = rng.map(|rng| BlockDropout {
                    rng,
                    layer: l,
                    hidden,
                    attn,
                });
                let cache = &mut rest[0];
                std::mem::swap(&mut cache.k, &mut self.k[l]);
                std::mem::swap(&mut cache.v, &mut self.v[l]);
                block.forward_queries(
                    cache,
                    x,
                    Queries::All,
                    &st.ids,
                    &st.groups,
                    dims,
                    eps,
                    drop.as_ref(),
                    scratch,
                );
                std::mem::swap(&mut cache.k, &mut self.k[l]);
                std::mem::swap(&mut cache.v, &mut self.v[l]);
            }
            let y = st.blocks[n_layers - 1].out();
            for j in 0..nb {
                self.states[(j * s + k) * d..(j * s + k + 1) * d]
                    .copy_from_slice(&y[j * d..(j + 1) * d]);
            }
        }
    }

    /// Backward of [`forward`](Chain::forward) from
    /// [`dstates`](Chain::dstates): accumulates the parameter gradients of
    /// the steps (blocks, LN_in, `reason_pos`), adds dh₀ into `dstates[:, 0]`
    /// and leaves the history rows' dK/dV for
    /// [`history_kv_grad`](Chain::history_kv_grad).
    pub fn backward(
        &mut self,
        p: &Params<T>,
        grads: &mut Params<T>,
        dims: AttnDims,
        layout: ChainLayout,
        scratch: &mut BlockScratch<T>,
    ) {
        let d = dims.d;
        let t_max = p.reason_pos.shape[0];
        let n_layers = p.blocks.len();
        let nb = layout.len.len();
        let s = t_max + 1;
        let n_ext = self.k.first().map_or(0, |k| k.len());
        self.dk.resize_with(n_layers, Vec::new);
        self.dv.resize_with(n_layers, Vec::new);
        for l in 0..n_layers {
            reset(&mut self.dk[l], n_ext);
            reset(&mut self.dv[l], n_ext);
        }
        if self.noisy_active {
            // before the clean steps: it adds to their keys/values and states
            self.backward_noisy(p, grads, dims, layout, scratch);
        }
        for k in (1..=t_max).rev() {
            let st = &mut self.steps[k - 1];
            // dy = dh_k
            fit(&mut self.dy, nb * d);
            for j in 0..nb {
                self.dy[j * d..(j + 1) * d]
                    .copy_from_slice(&self.dstates[(j * s + k) * d..(j * s + k + 1) * d]);
            }
            for l in (0..n_layers).rev() {
                let block = &p.blocks[l];
                let (before, rest) = st.blocks.split_at_mut(l);
                let x: &[T] = if l == 0 { &st.z } else { before[l - 1].out() };
                let cache = &mut rest[0];
                reset(&mut self.dx, nb * d);
                std::mem::swap(&mut cache.k, &mut self.k[l]);
                std::mem::swap(&mut cache.v, &mut self.v[l]);
                block.backward_queries(
                    &mut grads.blocks[l],
                    &mut self.dx,
                    &mut self.dk[l],
                    &mut self.dv[l],
                    &self.dy,
                    x,
                    Queries::All,
                    &st.groups,
                    dims,
                    cache,
                    scratch,
                );
                std::mem::swap(&mut cache.k, &mut self.k[l]);
                std::mem::swap(&mut cache.v, &mut self.v[l]);
                // this step's own key/value rows are complete: project back
                fit(&mut self.rows_k, nb * d);
                fit(&mut self.rows_v, nb * d);
                for j in 0..nb {
                    let row = self.ext_start[j] + layout.len[j] + k - 1;
                    self.rows_k[j * d..(j + 1) * d]
                        .copy_from_slice(&self.dk[l][row * d..(row + 1) * d]);
                    self.rows_v[j * d..(j + 1) * d]
                        .copy_from_slice(&self.dv[l][row * d..(row + 1) * d]);
                }
                block.backward_kv(
                    &mut grads.blocks[l],
                    &mut self.dx,
                    &self.rows_k,
                    &self.rows_v,
                    x,
                );
                std::mem::swap(&mut self.dx, &mut self.dy);
            }
            let input = StepInput {
                u: &st.u,
                ln: &st.ln,
                mask: &st.mask,
            };
            input.backward(
                p,
                grads,
                &mut self.input_grads,
                &self.dy,
                &mut self.dstates,
                k,
            );
        }
    }

    /// The noisy view of ReaRec-PRL's contrastive loss (method.md §3), after
    /// [`forward`](Chain::forward) with the same arguments: step k's input
    /// is û_k = h_{k−1} + R[k−1] + ε_k, ε_k ~ N(0, `noise_std`²) per
    /// element (stream [`reasoning_noise_stream`], keyed by sequence,
    /// position and feature), built from the CLEAN h_{k−1}; ẑ_k uses the
    /// clean step's Dropout_r mask and the blocks the clean step's masks;
    /// its token attends over the clean history, the clean reasoning tokens
    /// 1 … k−1 and itself. Fills [`noisy_states`](Chain::noisy_states).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_noisy(
        &mut self,
        p: &Params<T>,
        dims: AttnDims,
        eps: T,
        dropout: (f64, f64),
        layout: ChainLayout,
        rng: &CounterRng,
        noise_std: f64,
        scratch: &mut BlockScratch<T>,
    ) {
        let d = dims.d;
        let t_max = p.reason_pos.shape[0];
        let n_layers = p.blocks.len();
        let nb = layout.len.len();
        let s = t_max + 1;
        let (hidden, attn) = dropout;
        reset(&mut self.noisy_states, nb * s * d);
        for j in 0..nb {
            self.noisy_states[j * s * d..(j * s + 1) * d]
                .copy_from_slice(&self.states[j * s * d..(j * s + 1) * d]);
        }
        self.noisy.resize_with(t_max, NoisyStep::default);
        for k in 1..=t_max {
            let (st, ns) = (&self.steps[k - 1], &mut self.noisy[k - 1]);
            ns.start.clear();
            ns.groups.clear();
            let mut n_priv = 0;
            for j in 0..nb {
                let n_k = layout.len[j] + k;
                ns.start.push(n_priv);
                ns.groups.push(AttnGroup {
                    k_start: n_priv,
                    ..st.groups[j]
                });
                n_priv += n_k;
            }
            // û = h_{k−1} + R[k−1] + ε
            let r = &p.reason_pos.data[(k - 1) * d..k * d];
            fit(&mut ns.u, nb * d);
            for (j, id) in st.ids.iter().enumerate() {
                let h = &self.states[(j * s + k - 1) * d..(j * s + k) * d];
                let base = (id.seq as u64 * dims.pos_cap as u64 + id.pos as u64) * d as u64;
                for (c, u) in ns.u[j * d..(j + 1) * d].iter_mut().enumerate() {
                    let noise = noise_std * rng.normal(reasoning_noise_stream(), base + c as u64);
                    *u = h[c] + r[c] + T::from_f64(noise);
                }
            }
            p.ln_in.forward(&mut ns.ln, &ns.u, eps);
            fit(&mut ns.z, nb * d);
            if st.mask.is_empty() {
                ns.z.copy_from_slice(&ns.ln.out);
            } else {
                dropout_forward(&mut ns.z, &ns.ln.out, &st.mask);
            }
            ns.blocks.resize_with(n_layers, BlockCache::default);
            for l in 0..n_layers {
                let (before, rest) = ns.blocks.split_at_mut(l);
                let x: &[T] = if l == 0 { &ns.z } else { before[l - 1].out() };
                let block = &p.blocks[l];
                let cache = &mut rest[0];
                fit(&mut cache.k, n_priv * d);
                fit(&mut cache.v, n_priv * d);
                fit(&mut self.rows_k, nb * d);
                fit(&mut self.rows_v, nb * d);
                block.k.forward(&mut self.rows_k, x);
                block.v.forward(&mut self.rows_v, x);
                for j in 0..nb {
                    let (src, dst, m) = (self.ext_start[j], ns.start[j], layout.len[j] + k - 1);
                    cache.k[dst * d..(dst + m) * d]
                        .copy_from_slice(&self.k[l][src * d..(src + m) * d]);
                    cache.v[dst * d..(dst + m) * d]
                        .copy_from_slice(&self.v[l][src * d..(src + m) * d]);
                    let own = dst + m;
                    cache.k[own * d..(own + 1) * d]
                        .copy_from_slice(&self.rows_k[j * d..(j + 1) * d]);
                    cache.v[own * d..(own + 1) * d]
                        .copy_from_slice(&self.rows_v[j * d..(j + 1) * d]);
                }
                let drop = BlockDropout {
                    rng,
                    layer: l,
                    hidden,
                    attn,
                };
                block.forward_queries(
                    cache,
                    x,
                    Queries::All,
                    &st.ids,
                    &ns.groups,
                    dims,
                    eps,
                    Some(&drop),
                    scratch,
                );
            }
            let y = ns.blocks[n_layers - 1].out();
            for j in 0..nb {
                self.noisy_states[(j * s + k) * d..(j * s + k + 1) * d]
                    .copy_from_slice(&y[j * d..(j + 1) * d]);
            }
        }
        self.noisy_active = true;
    }

    /// Backward of [`forward_noisy`](Chain::forward_noisy) from
    /// [`dnoisy`](Chain::dnoisy), into the parameter gradients, the clean
    /// extended dK/dV and the clean `dstates` (run before the clean steps).
    fn backward_noisy(
        &mut self,
        p: &Params<T>,
        grads: &mut Params<T>,
        dims: AttnDims,
        layout: ChainLayout,
        scratch: &mut BlockScratch<T>,
    ) {
        let d = dims.d;
        let t_max = p.reason_pos.shape[0];
        let n_layers = p.blocks.len();
        let nb = layout.len.len();
        let s = t_max + 1;
        for k in 1..=t_max {
            let (st, ns) = (&self.steps[k - 1], &self.noisy[k - 1]);
            fit(&mut self.dy, nb * d);
            for j in 0..nb {
                self.dy[j * d..(j + 1) * d]
                    .copy_from_slice(&self.dnoisy[(j * s + k) * d..(j * s + k + 1) * d]);
            }
            for l in (0..n_layers).rev() {
                let block = &p.blocks[l];
                let x: &[T] = if l == 0 {
                    &ns.z
                } else {
                    ns.blocks[l - 1].out()
                };
                let cache = &ns.blocks[l];
                reset(&mut self.dx, nb * d);
                reset(&mut self.pdk, cache.k.len());
                reset(&mut self.pdv, cache.v.len());
                block.backward_queries(
                    &mut grads.blocks[l],
                    &mut self.dx,
                    &mut self.pdk,
                    &mut self.pdv,
                    &self.dy,
                    x,
                    Queries::All,
                    &ns.groups,
                    dims,
                    cache,
                    scratch,
                );
                fit(&mut self.rows_k, nb * d);
                fit(&mut self.rows_v, nb * d);
                for j in 0..nb {
                    let (src, dst, m) = (ns.start[j], self.ext_start[j], layout.len[j] + k - 1);
                    // the clean prefix's share goes to the clean cache rows
                    T::axpy(
                        &mut self.dk[l][dst * d..(dst + m) * d],
                        T::ONE,
                        &self.pdk[src * d..(src + m) * d],
                    );
                    T::axpy(
                        &mut self.dv[l][dst * d..(dst + m) * d],
                        T::ONE,
                        &self.pdv[src * d..(src + m) * d],
                    );
                    let own = src + m;
                    self.rows_k[j * d..(j + 1) * d]
                        .copy_from_slice(&self.pdk[own * d..(own + 1) * d]);
                    self.rows_v[j * d..(j + 1) * d]
                        .copy_from_slice(&self.pdv[own * d..(own + 1) * d]);
                }
                block.backward_kv(
                    &mut grads.blocks[l],
                    &mut self.dx,
                    &self.rows_k,
                    &self.rows_v,
                    x,
                );
                std::mem::swap(&mut self.dx, &mut self.dy);
            }
            let input = StepInput {
                u: &ns.u,
                ln: &ns.ln,
                mask: &st.mask,
            };
            input.backward(
                p,
                grads,
                &mut self.input_grads,
                &self.dy,
                &mut self.dstates,
                k,
            );
        }
    }

    /// Copies the gradient the chain put on layer `l`'s history keys and
    /// values into `dk`, `dv` (packed history rows, d), overwriting them.
    pub fn history_kv_grad(
        &self,
        l: usize,
        layout: ChainLayout,
        d: usize,
        dk: &mut [T],
        dv: &mut [T],
    ) {
        for j in 0..layout.len.len() {
            let (src, dst, len) = (self.ext_start[j], layout.start[j], layout.len[j]);
            dk[dst * d..(dst + len) * d].copy_from_slice(&self.dk[l][src * d..(src + len) * d]);
            dv[dst * d..(dst + len) * d].copy_from_slice(&self.dv[l][src * d..(src + len) * d]);
        }
    }
}

/// The inference-only chain of one chunk (module docs, "Inference"): start
/// from h₀ and the encoder's history K/V, then [`step`](InferChain::step)
/// the running rows and [`compact`](InferChain::compact) away the rows that
/// halted. No dropout; only what the next step needs is kept.
#[derive(Debug, Default)]
pub(crate) struct InferChain<T> {
    /// Model width.
    d: usize,
    /// Reasoning steps run so far.
    steps_done: usize,
    /// Per running row: history length and first extended row.
    len: Vec<usize>,
    ext_start: Vec<usize>,
    /// Per layer, (Σ_j len_j + T, d) extended keys and values of every
    /// sequence the chunk started with (a halted row's block stays, unread).
    k: Vec<Vec<T>>,
    v: Vec<Vec<T>>,
    /// (rows, d) the latest state h_k of each running row.
    hidden: Vec<T>,
    u: Vec<T>,
    ln: LayerNormCache<T>,
    /// Per layer; `k`/`v` stay empty (the extended buffers are swapped in).
    blocks: Vec<BlockCache<T>>,
    ids: Vec<RowId>,
    groups: Vec<AttnGroup>,
    rows_k: Vec<T>,
    rows_v: Vec<T>,
    scratch: BlockScratch<T>,
}

impl<T: Kernels> InferChain<T> {
    /// Starts the chain of `len.len()` sequences: `h0` (nb, d) their
    /// encoder states, sequence j's history at the encoder's packed rows
    /// `start[j]..start[j] + len[j]` of every layer's `seq_blocks[l].k`/`.v`
    /// (only read for non-empty histories). Every row is running.
    pub fn start(
        &mut self,
        p: &Params<T>,
        d: usize,
        h0: &[T],
        seq_blocks: &[BlockCache<T>],
        start: &[usize],
        len: &[usize],
    ) {
        let t_max = p.reason_pos.shape[0];
        let n_layers = p.blocks.len();
        let nb = len.len();
        assert_eq!(h0.len(), nb * d, "InferChain::start: h0 must be (nb, d)");
        self.d = d;
        self.steps_done = 0;
        self.hidden.clear();
        self.hidden.extend_from_slice(h0);
        self.len.clear();
        self.len.extend_from_slice(len);
        self.ext_start.clear();
        let mut n_ext = 0;
        for &l in len {
            self.ext_start.push(n_ext);
            n_ext += l + t_max;
        }
        self.k.resize_with(n_layers, Vec::new);
        self.v.resize_with(n_layers, Vec::new);
        for (l, (ks, vs)) in self.k.iter_mut().zip(&mut self.v).enumerate() {
            // rows of the reasoning tokens are written by their step before
            // any query reads them
            fit(ks, n_ext * d);
            fit(vs, n_ext * d);
            for j in 0..nb {
                let (src, dst, n) = (start[j], self.ext_start[j], len[j]);
                if n > 0 {
                    ks[dst * d..(dst + n) * d]
                        .copy_from_slice(&seq_blocks[l].k[src * d..(src + n) * d]);
                    vs[dst * d..(dst + n) * d]
                        .copy_from_slice(&seq_blocks[l].v[src * d..(src + n) * d]);
                }
            }
        }
    }

    /// Rows still running.
    pub fn rows(&self) -> usize {
        self.len.len()
    }

    /// (rows, d) h_k of the running rows after k steps (h₀ before any).
    pub fn hidden(&self) -> &[T] {
        &self.hidden
    }

    /// Runs step k = steps_done + 1 ≤ T_max for the running rows: u_k =
    /// h_{k−1} + R[k−1], z_k = LN_in(u_k), h_k = the blocks on z_k over the
    /// row's cached history, earlier reasoning tokens and itself.
    pub fn step(&mut self, p: &Params<T>, dims: AttnDims, eps: T) {
        let d = dims.d;
        let t_max = p.reason_pos.shape[0];
        let n_layers = p.blocks.len();
        let nb = self.rows();
        let k = self.steps_done + 1;
        assert!(
            k <= t_max,
            "InferChain::step: all {t_max} steps already run"
        );
        self.ids.clear();
        self.groups.clear();
        for j in 0..nb {
            let len = self.len[j];
            // dropout coordinates only (no dropout here)
            self.ids.push(RowId {
                seq: j as u32,
                pos: (len + k - 1) as u32,
            });
            self.groups.push(AttnGroup {
                q_start: j,
                n_q: 1,
                k_start: self.ext_start[j],
                n_k: len + k,
                seq: j as u32,
                pos0: 0,
            });
        }
        // u = h_{k−1} + R[k−1]
        let r = &p.reason_pos.data[(k - 1) * d..k * d];
        fit(&mut self.u, nb * d);
        for (u, h) in self.u.chunks_exact_mut(d).zip(self.hidden.chunks_exact(d)) {
            <T as Kernels>::add(u, h, r);
        }
        // z = LN_in(u)
        p.ln_in.forward(&mut self.ln, &self.u, eps);
        self.blocks.resize_with(n_layers, BlockCache::default);
        for l in 0..n_layers {
            let (before, rest) = self.blocks.split_at_mut(l);
            let x: &[T] = if l == 0 {
                &self.ln.out
            } else {
                before[l - 1].out()
            };
            let block = &p.blocks[l];
            fit(&mut self.rows_k, nb * d);
            fit(&mut self.rows_v, nb * d);
            block.k.forward(&mut self.rows_k, x);
            block.v.forward(&mut self.rows_v, x);
            for j in 0..nb {
                let row = self.ext_start[j] + self.len[j] + k - 1;
                self.k[l][row * d..(row + 1) * d].copy_from_slice(&self.rows_k[j * d..(j + 1) * d]);
                self.v[l][row * d..(row + 1) * d].copy_from_slice(&self.rows_v[j * d..(j + 1) * d]);
            }
            let cache = &mut rest[0];
            std::mem::swap(&mut cache.k, &mut self.k[l]);
            std::mem::swap(&mut cache.v, &mut self.v[l]);
            block.forward_queries(
                cache,
                x,
                Queries::All,
                &self.ids,
                &self.groups,
                dims,
                eps,
                None,
                &mut self.scratch,
            );
            std::mem::swap(&mut cache.k, &mut self.k[l]);
            std::mem::swap(&mut cache.v, &mut self.v[l]);
        }
        self.hidden.clear();
        self.hidden
            .extend_from_slice(self.blocks[n_layers - 1].out());
        self.steps_done = k;
    }

    /// Drops the running rows with `stop[i]` (one flag per running row),
    /// keeping the others in order.
    pub fn compact(&mut self, stop: &[bool]) {
        compact_rows(&mut self.hidden, self.d, stop);
        compact_rows(&mut self.len, 1, stop);
        compact_rows(&mut self.ext_start, 1, stop);
    }
}
