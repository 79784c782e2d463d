//! Encoding a chunk of histories (method.md §1) and running the reasoning
//! chain after it (method.md §2), forward and hand-derived backward: the
//! per-thread [`Work`] buffers and the [`Model`] methods the losses and the
//! inference paths call.

use super::chain::{Chain, ChainLayout};
use super::network::Model;
use super::params::Params;
use crate::batch::SeqBatch;
use crate::kernels::rng::CounterRng;
use crate::kernels::Kernels;
use crate::nn::attention::AttnGroup;
use crate::nn::block::{BlockCache, BlockDropout, BlockScratch, Queries};
use crate::nn::dropout::{
    dropout_backward, dropout_forward, fill_row_masks, stream_id, DropoutSite, RowId, Site,
};
use crate::nn::embedding::{embedding_backward, embedding_forward};
use crate::nn::item_softmax::{ItemCeCache, ItemCeScratch};
use crate::nn::layernorm::LayerNormCache;
use crate::nn::tensor::{fit, reset};

/// Workspace of one thread: the packed layout of a chunk, every layer's
/// forward cache and the backward buffers. Reused chunk after chunk.
#[derive(Debug, Default)]
pub(crate) struct Work<T> {
    /// (R) item id, position id and global row id of each packed row.
    pub(crate) items: Vec<u32>,
    pub(crate) positions: Vec<u32>,
    pub(crate) ids: Vec<RowId>,
    /// One group per non-empty sequence: all rows attend causally.
    pub(crate) groups_full: Vec<AttnGroup>,
    /// One group per non-empty sequence: only its last row is a query.
    pub(crate) groups_last: Vec<AttnGroup>,
    /// (n_last) packed row of each non-empty sequence's last item, its id
    /// and its index in the chunk.
    pub(crate) last_rows: Vec<usize>,
    pub(crate) last_ids: Vec<RowId>,
    pub(crate) last_seq: Vec<usize>,
    /// (R, d) E[item] + P[pos]
    pub(crate) emb: Vec<T>,
    pub(crate) ln_in: LayerNormCache<T>,
    /// (R, d) input dropout mask (empty without dropout)
    pub(crate) in_mask: Vec<T>,
    /// (R, d) input of block 0
    pub(crate) x0: Vec<T>,
    pub(crate) blocks: Vec<BlockCache<T>>,
    pub(crate) scratch: BlockScratch<T>,
    /// (nb, d) h₀ per sequence of the chunk (zero for an empty history)
    pub(crate) h: Vec<T>,
    pub(crate) targets: Vec<u32>,
    pub(crate) losses: Vec<T>,
    pub(crate) ce: ItemCeCache<T>,
    pub(crate) ce_scratch: ItemCeScratch<T>,
    pub(crate) dlosses: Vec<T>,
    pub(crate) dh: Vec<T>,
    pub(crate) dy: Vec<T>,
    pub(crate) dx: Vec<T>,
    /// (nb) first packed row and length of every sequence of the chunk
    /// (empty histories included): the reasoning chain's layout.
    pub(crate) seq_start: Vec<usize>,
    pub(crate) seq_len: Vec<usize>,
    /// Global index of the chunk's first sequence.
    pub(crate) first: usize,
    /// The reasoning chain (t_max > 0 only).
    pub(crate) chain: Chain<T>,
    /// (R, d) gradients the chain puts on one layer's history keys/values.
    pub(crate) dk_hist: Vec<T>,
    pub(crate) dv_hist: Vec<T>,
}

impl<T: Kernels> Model<T> {
    /// Packs sequences `range` of `seqs` into `work` (layout only).
    pub(crate) fn layout(
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
    pub(crate) fn forward_chunk(&self, work: &mut Work<T>, nb: usize, rng: Option<&CounterRng>) {
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
    pub(crate) fn forward_steps(&self, work: &mut Work<T>, rng: Option<&CounterRng>) {
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
    pub(crate) fn backward_steps(&self, work: &mut Work<T>, grads: &mut Params<T>) {
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
    pub(crate) fn backward_chunk(&self, work: &mut Work<T>, grads: &mut Params<T>) {
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
}
