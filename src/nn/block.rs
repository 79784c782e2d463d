//! One post-LN Transformer block (RecBole / ReaRec SASRec):
//!
//! ```text
//! a = LN1(x + Dropout(W_o · MHA(x)))
//! y = LN2(a + Dropout(W_2 · GELU(W_1 · a + b_1) + b_2))
//! ```
//!
//! Keys and values are projected for every row of `x` ([`Block::forward_kv`],
//! the per-layer K/V cache in [`BlockCache::k`] / [`BlockCache::v`]); the rest
//! runs only on the query rows ([`Block::forward_queries`]), so the last layer
//! can compute just the last column and a reasoning step (issue 5) can append
//! one row to the cache and run one query. Backward mirrors this split:
//! [`Block::backward_queries`] accumulates dK/dV into caller buffers (so a
//! chain of steps can sum them), [`Block::backward_kv`] projects them back.

use super::attention::{
    attention_backward, attention_forward, AttnCache, AttnDims, AttnGroup, AttnScratch,
};
use super::dropout::{dropout_backward, fill_row_masks, stream_id, DropoutSite, RowId, Site};
use super::feedforward::{FeedForward, FeedForwardCache, FeedForwardScratch};
use super::layernorm::{LayerNorm, LayerNormCache};
use super::linear::Linear;
use super::residual::residual_forward;
use super::tensor::{fit, reset};
use crate::kernels::rng::CounterRng;
use crate::kernels::Kernels;

/// Parameters of one block.
#[derive(Clone, Debug, PartialEq)]
pub struct Block<T> {
    /// Query projection; it and the three below are each d → d.
    pub q: Linear<T>,
    /// Key projection.
    pub k: Linear<T>,
    /// Value projection.
    pub v: Linear<T>,
    /// Output projection.
    pub o: Linear<T>,
    /// LayerNorm after the attention's residual sum.
    pub ln1: LayerNorm<T>,
    /// The position-wise feed-forward network.
    pub ffn: FeedForward<T>,
    /// LayerNorm after the feed-forward's residual sum.
    pub ln2: LayerNorm<T>,
}

/// Which rows of the block input are queries.
#[derive(Clone, Copy, Debug)]
pub enum Queries<'a> {
    /// Every row (rows_q = rows_k).
    All,
    /// These rows of x, in this order (rows_q = len).
    Rows(&'a [usize]),
}

/// Dropout of a block in training mode.
#[derive(Clone, Copy, Debug)]
pub struct BlockDropout<'a> {
    /// The source of every mask.
    pub rng: &'a CounterRng,
    /// Block index (streams use `1 + layer`; 0 is the input dropout).
    pub layer: usize,
    /// Rate on the attention-output and feed-forward-output branches.
    pub hidden: f64,
    /// Rate on the attention probabilities.
    pub attn: f64,
}

/// What the forward saves; also the layer's key/value cache.
#[derive(Clone, Debug, Default)]
pub struct BlockCache<T> {
    /// (rows_k, d) keys x·W_k + b_k.
    pub k: Vec<T>,
    /// (rows_k, d) values x·W_v + b_v.
    pub v: Vec<T>,
    /// (rows_q, d) gathered query inputs (only for [`Queries::Rows`]).
    pub xq: Vec<T>,
    /// (rows_q, d)
    pub q: Vec<T>,
    /// What the attention saved.
    pub attn: AttnCache<T>,
    /// (rows_q, d) attention output, before W_o.
    pub att: Vec<T>,
    /// (rows_q, d) dropout mask of the attention branch (empty: no dropout).
    pub mask1: Vec<T>,
    /// (rows_q, d) x + Dropout(W_o · att)
    pub r1: Vec<T>,
    /// out = a (rows_q, d)
    pub ln1: LayerNormCache<T>,
    /// What the feed-forward network saved.
    pub ffn: FeedForwardCache<T>,
    /// (rows_q, d) dropout mask of the feed-forward branch (empty: no dropout).
    pub mask2: Vec<T>,
    /// (rows_q, d) a + Dropout(FFN(a))
    pub r2: Vec<T>,
    /// out = y (rows_q, d), the block output.
    pub ln2: LayerNormCache<T>,
}

impl<T> BlockCache<T> {
    /// The block output y (rows_q, d).
    pub fn out(&self) -> &[T] {
        &self.ln2.out
    }
}

/// Scratch buffers, reused between calls.
#[derive(Clone, Debug, Default)]
pub struct BlockScratch<T> {
    attn: AttnScratch<T>,
    ffn: FeedForwardScratch<T>,
    proj: Vec<T>,
    dr2: Vec<T>,
    da: Vec<T>,
    dbranch: Vec<T>,
    dr1: Vec<T>,
    datt: Vec<T>,
    dq: Vec<T>,
    dxq: Vec<T>,
    dk: Vec<T>,
    dv: Vec<T>,
}

impl<T: Kernels> Block<T> {
    /// All-zero parameters (the shape of a gradient buffer).
    pub fn zeros(d: usize, inner: usize) -> Self {
        Block {
            q: Linear::zeros(d, d),
            k: Linear::zeros(d, d),
            v: Linear::zeros(d, d),
            o: Linear::zeros(d, d),
            ln1: LayerNorm::zeros(d),
            ffn: FeedForward::zeros(d, inner),
            ln2: LayerNorm::zeros(d),
        }
    }

    /// Model width d.
    pub fn width(&self) -> usize {
        self.q.d_in()
    }

    /// cache.k, cache.v (rows_k, d) = x · W_k + b_k, x · W_v + b_v.
    pub fn forward_kv(&self, cache: &mut BlockCache<T>, x: &[T]) {
        fit(&mut cache.k, x.len());
        fit(&mut cache.v, x.len());
        self.k.forward(&mut cache.k, x);
        self.v.forward(&mut cache.v, x);
    }

    /// Everything after the K/V projections, for the query rows of `x`,
    /// attending over `cache.k` / `cache.v` through `groups` (whose `q_start`
    /// index the query rows). `q_ids` (rows_q) name each query row for the
    /// dropout masks. The output is `cache.out()` (rows_q, d).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_queries(
        &self,
        cache: &mut BlockCache<T>,
        x: &[T],
        queries: Queries,
        q_ids: &[RowId],
        groups: &[AttnGroup],
        dims: AttnDims,
        eps: T,
        dropout: Option<&BlockDropout>,
        scratch: &mut BlockScratch<T>,
    ) {
        let d = dims.d;
        let xq: &[T] = match queries {
            Queries::All => x,
            Queries::Rows(rows) => {
                cache.xq.clear();
                for &r in rows {
                    cache.xq.extend_from_slice(&x[r * d..(r + 1) * d]);
                }
                &cache.xq
            }
        };
        let n = xq.len();
        assert_eq!(q_ids.len() * d, n, "block: one RowId per query row");
        let site = |s: Site, p: f64| {
            dropout.filter(|_| p > 0.0).map(|b| DropoutSite {
                rng: b.rng,
                stream: stream_id(1 + b.layer, s),
                p,
            })
        };
        let attn_site = dropout.and_then(|b| site(Site::AttnProbs, b.attn));
        let out_site = dropout.and_then(|b| site(Site::AttnOut, b.hidden));
        let ffn_site = dropout.and_then(|b| site(Site::FfnOut, b.hidden));

        // q = xq · W_q + b_q
        fit(&mut cache.q, n);
        self.q.forward(&mut cache.q, xq);
        // att = MHA(q, k, v)
        reset(&mut cache.att, n);
        attention_forward(
            &mut cache.att,
            &mut cache.attn,
            &cache.q,
            &cache.k,
            &cache.v,
            groups,
            dims,
            attn_site.as_ref(),
            &mut scratch.attn,
        );
        // r1 = xq + Dropout(att · W_o + b_o)
        fit(&mut scratch.proj, n);
        self.o.forward(&mut scratch.proj, &cache.att);
        fit(&mut cache.mask1, if out_site.is_some() { n } else { 0 });
        if let Some(s) = &out_site {
            fill_row_masks(&mut cache.mask1, q_ids, d, dims.pos_cap, s);
            super::dropout::dropout_inplace(&mut scratch.proj, &cache.mask1);
        }
        fit(&mut cache.r1, n);
        residual_forward(&mut cache.r1, xq, &scratch.proj);
        // a = LN1(r1)
        self.ln1.forward(&mut cache.ln1, &cache.r1, eps);
        // r2 = a + Dropout(FFN(a))
        self.ffn.forward(&mut cache.ffn, &cache.ln1.out);
        fit(&mut cache.mask2, if ffn_site.is_some() { n } else { 0 });
        if let Some(s) = &ffn_site {
            fill_row_masks(&mut cache.mask2, q_ids, d, dims.pos_cap, s);
            super::dropout::dropout_inplace(&mut cache.ffn.out, &cache.mask2);
        }
        fit(&mut cache.r2, n);
        residual_forward(&mut cache.r2, &cache.ln1.out, &cache.ffn.out);
        // y = LN2(r2)
        self.ln2.forward(&mut cache.ln2, &cache.r2, eps);
    }

    /// [`forward_kv`](Self::forward_kv) then [`forward_queries`](Self::forward_queries).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        cache: &mut BlockCache<T>,
        x: &[T],
        queries: Queries,
        q_ids: &[RowId],
        groups: &[AttnGroup],
        dims: AttnDims,
        eps: T,
        dropout: Option<&BlockDropout>,
        scratch: &mut BlockScratch<T>,
    ) {
        self.forward_kv(cache, x);
        self.forward_queries(
            cache, x, queries, q_ids, groups, dims, eps, dropout, scratch,
        );
    }

    /// Backward of [`forward_queries`](Self::forward_queries): from dy
    /// (rows_q, d) accumulates the parameter gradients, dx (rows of `x`, d) at
    /// the query rows, and dk, dv (rows_k, d).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_queries(
        &self,
        grad: &mut Block<T>,
        dx: &mut [T],
        dk: &mut [T],
        dv: &mut [T],
        dy: &[T],
        x: &[T],
        queries: Queries,
        groups: &[AttnGroup],
        dims: AttnDims,
        cache: &BlockCache<T>,
        scratch: &mut BlockScratch<T>,
    ) {
        let d = dims.d;
        let xq: &[T] = match queries {
            Queries::All => x,
            Queries::Rows(_) => &cache.xq,
        };
        let n = xq.len();
        assert_eq!(dy.len(), n, "block backward: dy shape");
        // y = LN2(r2)
        reset(&mut scratch.dr2, n);
        self.ln2
            .backward(&mut grad.ln2, &mut scratch.dr2, dy, &cache.r2, &cache.ln2);
        // r2 = a + Dropout(FFN(a))
        scratch.da.clear();
        scratch.da.extend_from_slice(&scratch.dr2);
        reset(&mut scratch.dbranch, n);
        if cache.mask2.is_empty() {
            scratch.dbranch.copy_from_slice(&scratch.dr2);
        } else {
            dropout_backward(&mut scratch.dbranch, &scratch.dr2, &cache.mask2);
        }
        self.ffn.backward(
            &mut grad.ffn,
            &mut scratch.da,
            &scratch.dbranch,
            &cache.ln1.out,
            &cache.ffn,
            &mut scratch.ffn,
        );
        // a = LN1(r1)
        reset(&mut scratch.dr1, n);
        self.ln1.backward(
            &mut grad.ln1,
            &mut scratch.dr1,
            &scratch.da,
            &cache.r1,
            &cache.ln1,
        );
        // r1 = xq + Dropout(att · W_o + b_o)
        scratch.dxq.clear();
        scratch.dxq.extend_from_slice(&scratch.dr1);
        if cache.mask1.is_empty() {
            scratch.dbranch.copy_from_slice(&scratch.dr1);
        } else {
            scratch.dbranch.fill(T::ZERO);
            dropout_backward(&mut scratch.dbranch, &scratch.dr1, &cache.mask1);
        }
        reset(&mut scratch.datt, n);
        self.o.backward(
            &mut grad.o,
            Some(&mut scratch.datt),
            &scratch.dbranch,
            &cache.att,
        );
        // att = MHA(q, k, v)
        reset(&mut scratch.dq, n);
        attention_backward(
            &mut scratch.dq,
            dk,
            dv,
            &scratch.datt,
            &cache.q,
            &cache.k,
            &cache.v,
            &cache.attn,
            groups,
            dims,
            &mut scratch.attn,
        );
        // q = xq · W_q + b_q
        self.q
            .backward(&mut grad.q, Some(&mut scratch.dxq), &scratch.dq, xq);
        // xq = x[rows]
        match queries {
            Queries::All => T::axpy(dx, T::ONE, &scratch.dxq),
            Queries::Rows(rows) => {
                for (&r, g) in rows.iter().zip(scratch.dxq.chunks_exact(d)) {
                    T::axpy(&mut dx[r * d..(r + 1) * d], T::ONE, g);
                }
            }
        }
    }

    /// Backward of [`forward_kv`](Self::forward_kv): accumulates dx (rows_k, d)
    /// and dW_k, dW_v from dk, dv (rows_k, d).
    pub fn backward_kv(&self, grad: &mut Block<T>, dx: &mut [T], dk: &[T], dv: &[T], x: &[T]) {
        self.k.backward(&mut grad.k, Some(&mut *dx), dk, x);
        self.v.backward(&mut grad.v, Some(dx), dv, x);
    }

    /// Backward of [`forward`](Self::forward): accumulates dx (rows_k, d) and
    /// the parameter gradients from dy (rows_q, d).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        grad: &mut Block<T>,
        dx: &mut [T],
        dy: &[T],
        x: &[T],
        queries: Queries,
        groups: &[AttnGroup],
        dims: AttnDims,
        cache: &BlockCache<T>,
        scratch: &mut BlockScratch<T>,
    ) {
        let mut dk = std::mem::take(&mut scratch.dk);
        let mut dv = std::mem::take(&mut scratch.dv);
        reset(&mut dk, x.len());
        reset(&mut dv, x.len());
        self.backward_queries(
            grad, dx, &mut dk, &mut dv, dy, x, queries, groups, dims, cache, scratch,
        );
        self.backward_kv(grad, dx, &dk, &dv, x);
        scratch.dk = dk;
        scratch.dv = dv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::tensor::Tensor;

    /// With W_o = 0 and W_2 = b_2 = 0 both branches vanish, so the block is
    /// y = LN2(LN1(x)) and its input gradient is the LN chain's.
    #[test]
    fn closed_form_zero_branches_reduce_to_two_layernorms() {
        let d = 2;
        let mut block = Block::<f64>::zeros(d, 3);
        block.ln1 = LayerNorm::identity(d);
        block.ln2 = LayerNorm {
            gamma: Tensor {
                shape: vec![2],
                data: vec![2.0, 2.0],
            },
            beta: Tensor {
                shape: vec![2],
                data: vec![1.0, 0.0],
            },
        };
        block.q.w.data = vec![1.0, 0.5, -0.5, 1.0];
        block.k.w.data = vec![0.3, 0.1, 0.2, -0.4];
        block.v.w.data = vec![1.0, 0.0, 0.0, 1.0];
        let x = [1.0, 3.0, 2.0, -2.0];
        let groups = [AttnGroup {
            q_start: 0,
            n_q: 2,
            k_start: 0,
            n_k: 2,
            seq: 0,
            pos0: 0,
        }];
        let ids = [RowId { seq: 0, pos: 0 }, RowId { seq: 0, pos: 1 }];
        let dims = AttnDims {
            d,
            n_heads: 1,
            pos_cap: 2,
        };
        let mut cache = BlockCache::default();
        let mut scratch = BlockScratch::default();
        block.forward(
            &mut cache,
            &x,
            Queries::All,
            &ids,
            &groups,
            dims,
            0.0,
            None,
            &mut scratch,
        );
        // LN over two features maps (a, b) with a < b to (−1, 1); then γ=2, β=(1, 0).
        let want = [1.0 - 2.0, 2.0, 1.0 + 2.0, -2.0];
        for (a, b) in cache.out().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // Two-feature LN output is scale- and shift-invariant: dx = 0.
        let mut grad = Block::zeros(d, 3);
        let mut dx = [0.0; 4];
        block.backward(
            &mut grad,
            &mut dx,
            &[1.0, -1.0, 0.5, 2.0],
            &x,
            Queries::All,
            &groups,
            dims,
            &cache,
            &mut scratch,
        );
        assert!(dx.iter().all(|g| g.abs() < 1e-12), "{dx:?}");
        // dβ2 = Σ dy
        assert_eq!(grad.ln2.beta.data, [1.5, 1.0]);
    }
}
