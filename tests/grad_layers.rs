//! Finite-difference gradient checks (f64) of every layer, over small random
//! shapes (proptest), with dropout on where the layer has it (masks are drawn
//! from a fixed seed, so the loss is a deterministic function of the inputs
//! and the masks are exercised by the check). Each check differentiates the
//! scalar L = Σ w ⊙ out for a random fixed w; the metric is in
//! `common::gradcheck`.

mod common;

use common::gradcheck::FdCheck;
use dtrec::kernels::rng::CounterRng;
use dtrec::nn::attention::{
    attention_backward, attention_forward, AttnCache, AttnDims, AttnGroup, AttnScratch,
};
use dtrec::nn::block::{Block, BlockCache, BlockDropout, BlockScratch, Queries};
use dtrec::nn::dropout::{stream_id, DropoutSite, RowId, Site};
use dtrec::nn::embedding::{embedding_backward, embedding_forward};
use dtrec::nn::feedforward::{FeedForward, FeedForwardCache, FeedForwardScratch};
use dtrec::nn::item_softmax::{item_ce_backward, item_ce_forward, ItemCeCache, ItemCeScratch};
use dtrec::nn::layernorm::{LayerNorm, LayerNormCache};
use dtrec::nn::linear::Linear;
use dtrec::nn::Tensor;
use proptest::prelude::*;

fn normal(seed: u64, stream: u64, n: usize, mean: f64, std: f64) -> Vec<f64> {
    let mut v = vec![0.0; n];
    CounterRng::new(seed).fill_normal(&mut v, stream, mean, std);
    v
}

/// Smallest standard deviation of the rows of `x` (width d). Finite
/// differences through a LayerNorm need h ≪ this (see `common::gradcheck`).
fn min_row_std(x: &[f64], d: usize) -> f64 {
    x.chunks(d)
        .map(|r| {
            let m = r.iter().sum::<f64>() / d as f64;
            (r.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / d as f64).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn t(shape: &[usize], data: &[f64]) -> Tensor<f64> {
    Tensor {
        shape: shape.to_vec(),
        data: data.to_vec(),
    }
}

/// Checks every coordinate of every tensor in `x` against `grads`.
fn check_all(
    x: &mut Vec<Vec<f64>>,
    names: &[&str],
    grads: &[Vec<f64>],
    loss: impl Fn(&Vec<Vec<f64>>) -> f64,
) -> Result<(), TestCaseError> {
    for (k, name) in names.iter().enumerate() {
        let n = x[k].len();
        FdCheck::default()
            .check(name, x, 0..n, &grads[k], |x, i| &mut x[k][i], &loss)
            .map_err(TestCaseError::fail)?;
    }
    Ok(())
}

fn block_from(x: &[Vec<f64>], d: usize, inner: usize) -> Block<f64> {
    let lin = |w: &Vec<f64>, b: &Vec<f64>, i: usize, o: usize| Linear {
        w: t(&[i, o], w),
        b: t(&[o], b),
    };
    let ln = |g: &Vec<f64>, b: &Vec<f64>| LayerNorm {
        gamma: t(&[d], g),
        beta: t(&[d], b),
    };
    Block {
        q: lin(&x[0], &x[1], d, d),
        k: lin(&x[2], &x[3], d, d),
        v: lin(&x[4], &x[5], d, d),
        o: lin(&x[6], &x[7], d, d),
        ln1: ln(&x[8], &x[9]),
        ffn: FeedForward {
            ff1: lin(&x[10], &x[11], d, inner),
            ff2: lin(&x[12], &x[13], inner, d),
        },
        ln2: ln(&x[14], &x[15]),
    }
}

fn block_tensors(b: &Block<f64>) -> Vec<Vec<f64>> {
    [
        &b.q.w,
        &b.q.b,
        &b.k.w,
        &b.k.b,
        &b.v.w,
        &b.v.b,
        &b.o.w,
        &b.o.b,
        &b.ln1.gamma,
        &b.ln1.beta,
        &b.ffn.ff1.w,
        &b.ffn.ff1.b,
        &b.ffn.ff2.w,
        &b.ffn.ff2.b,
        &b.ln2.gamma,
        &b.ln2.beta,
    ]
    .iter()
    .map(|t| t.data.clone())
    .collect()
}

const BLOCK_NAMES: [&str; 16] = [
    "q.w",
    "q.b",
    "k.w",
    "k.b",
    "v.w",
    "v.b",
    "o.w",
    "o.b",
    "ln1.gamma",
    "ln1.beta",
    "ff1.w",
    "ff1.b",
    "ff2.w",
    "ff2.b",
    "ln2.gamma",
    "ln2.beta",
];

/// Packed rows of sequences with the given lengths: (groups over all rows,
/// groups with only the last row as query, last rows, row ids, last ids).
#[allow(clippy::type_complexity)]
fn layout(
    lens: &[usize],
) -> (
    Vec<AttnGroup>,
    Vec<AttnGroup>,
    Vec<usize>,
    Vec<RowId>,
    Vec<RowId>,
) {
    let (mut full, mut last, mut last_rows, mut ids, mut last_ids) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut start = 0;
    for (s, &len) in lens.iter().enumerate() {
        full.push(AttnGroup {
            q_start: start,
            n_q: len,
            k_start: start,
            n_k: len,
            seq: s as u32,
            pos0: 0,
        });
        last.push(AttnGroup {
            q_start: s,
            n_q: 1,
            k_start: start,
            n_k: len,
            seq: s as u32,
            pos0: 0,
        });
        last_rows.push(start + len - 1);
        ids.extend((0..len as u32).map(|pos| RowId { seq: s as u32, pos }));
        last_ids.push(RowId {
            seq: s as u32,
            pos: len as u32 - 1,
        });
        start += len;
    }
    (full, last, last_rows, ids, last_ids)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn linear(rows in 1usize..5, d_in in 1usize..6, d_out in 1usize..6, seed in any::<u64>()) {
        let mut x = vec![normal(seed, 0, rows * d_in, 0.0, 1.0), normal(seed, 1, d_in * d_out, 0.0, 1.0), normal(seed, 2, d_out, 0.0, 1.0)];
        let w_out = normal(seed, 3, rows * d_out, 0.0, 1.0);
        let run = |x: &Vec<Vec<f64>>| {
            let lin = Linear { w: t(&[d_in, d_out], &x[1]), b: t(&[d_out], &x[2]) };
            let mut out = vec![0.0; rows * d_out];
            lin.forward(&mut out, &x[0]);
            dot(&out, &w_out)
        };
        let lin = Linear { w: t(&[d_in, d_out], &x[1]), b: t(&[d_out], &x[2]) };
        let mut g = Linear::zeros(d_in, d_out);
        let mut dinp = vec![0.0; rows * d_in];
        lin.backward(&mut g, Some(&mut dinp), &w_out, &x[0]);
        check_all(&mut x, &["inp", "w", "b"], &[dinp, g.w.data, g.b.data], run)?;
    }

    #[test]
    fn layernorm(rows in 1usize..4, d in 2usize..7, seed in any::<u64>()) {
        let mut x = vec![normal(seed, 0, rows * d, 0.3, 1.5), normal(seed, 1, d, 1.0, 0.3), normal(seed, 2, d, 0.0, 0.3)];
        let w_out = normal(seed, 3, rows * d, 0.0, 1.0);
        prop_assume!(min_row_std(&x[0], d) > 0.05, "LayerNorm rows must vary on a scale ≫ h");
        let eps = 1e-12;
        let run = |x: &Vec<Vec<f64>>| {
            let ln = LayerNorm { gamma: t(&[d], &x[1]), beta: t(&[d], &x[2]) };
            let mut cache = LayerNormCache::default();
            ln.forward(&mut cache, &x[0], eps);
            dot(&cache.out, &w_out)
        };
        let ln = LayerNorm { gamma: t(&[d], &x[1]), beta: t(&[d], &x[2]) };
        let mut cache = LayerNormCache::default();
        ln.forward(&mut cache, &x[0], eps);
        let mut g = LayerNorm::zeros(d);
        let mut dinp = vec![0.0; rows * d];
        ln.backward(&mut g, &mut dinp, &w_out, &x[0], &cache);
        check_all(&mut x, &["inp", "gamma", "beta"], &[dinp, g.gamma.data, g.beta.data], run)?;
    }

    #[test]
    fn embedding(n_items in 1usize..6, n_pos in 1usize..5, rows in 1usize..6, d in 1usize..4, seed in any::<u64>()) {
        let rng = CounterRng::new(seed);
        let items: Vec<u32> = (0..rows).map(|r| rng.below(10, r as u64, n_items as u64 + 1) as u32).collect();
        let positions: Vec<u32> = (0..rows).map(|r| rng.below(11, r as u64, n_pos as u64) as u32).collect();
        let mut x = vec![normal(seed, 0, (n_items + 1) * d, 0.0, 1.0), normal(seed, 1, n_pos * d, 0.0, 1.0)];
        let w_out = normal(seed, 3, rows * d, 0.0, 1.0);
        let run = |x: &Vec<Vec<f64>>| {
            let mut out = vec![0.0; rows * d];
            embedding_forward(&mut out, &items, &positions, &x[0], &x[1], d);
            // Padding row 0 is never a trainable input: exclude its effect from
            // the checked loss, as the model never looks it up for real tokens.
            let keep: Vec<f64> = items.iter().flat_map(|&i| std::iter::repeat_n(if i == 0 { 0.0 } else { 1.0 }, d)).collect();
            let item_part: f64 = out.iter().zip(&w_out).zip(&keep).map(|((o, w), k)| o * w * k).sum();
            let pos_part: f64 = out.iter().zip(&w_out).zip(&keep).map(|((o, w), k)| o * w * (1.0 - k)).sum();
            item_part + pos_part
        };
        let (mut di, mut dp) = (vec![0.0; (n_items + 1) * d], vec![0.0; n_pos * d]);
        embedding_backward(&mut di, &mut dp, &w_out, &items, &positions, d);
        prop_assert!(di[..d].iter().all(|&g| g == 0.0), "padding row must get no gradient");
        // The numeric gradient of the padding row is w (it is looked up), the
        // analytic one is 0 by design: check rows 1.. only.
        let n_item_vals = (n_items + 1) * d;
        FdCheck::default().check("item_emb", &mut x, d..n_item_vals, &di, |x, i| &mut x[0][i], run).map_err(TestCaseError::fail)?;
        FdCheck::default().check("pos_emb", &mut x, 0..n_pos * d, &dp, |x, i| &mut x[1][i], run).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn feedforward(rows in 1usize..4, d in 1usize..5, inner in 1usize..7, seed in any::<u64>()) {
        let mut x = vec![
            normal(seed, 0, rows * d, 0.0, 1.0),
            normal(seed, 1, d * inner, 0.0, 0.8),
            normal(seed, 2, inner, 0.0, 0.5),
            normal(seed, 4, inner * d, 0.0, 0.8),
            normal(seed, 5, d, 0.0, 0.5),
        ];
        let w_out = normal(seed, 3, rows * d, 0.0, 1.0);
        let build = |x: &Vec<Vec<f64>>| FeedForward {
            ff1: Linear { w: t(&[d, inner], &x[1]), b: t(&[inner], &x[2]) },
            ff2: Linear { w: t(&[inner, d], &x[3]), b: t(&[d], &x[4]) },
        };
        let run = |x: &Vec<Vec<f64>>| {
            let mut cache = FeedForwardCache::default();
            build(x).forward(&mut cache, &x[0]);
            dot(&cache.out, &w_out)
        };
        let ffn = build(&x);
        let mut cache = FeedForwardCache::default();
        ffn.forward(&mut cache, &x[0]);
        let mut g = FeedForward::zeros(d, inner);
        let mut dinp = vec![0.0; rows * d];
        ffn.backward(&mut g, &mut dinp, &w_out, &x[0], &cache, &mut FeedForwardScratch::default());
        check_all(&mut x, &["inp", "ff1.w", "ff1.b", "ff2.w", "ff2.b"], &[dinp, g.ff1.w.data, g.ff1.b.data, g.ff2.w.data, g.ff2.b.data], run)?;
    }

    #[test]
    fn attention(lens in prop::collection::vec(1usize..5, 1..4), heads in 1usize..3, dh in 1usize..4, last_only in any::<bool>(),
                 p in prop_oneof![Just(0.0), Just(0.3)], seed in any::<u64>()) {
        let d = heads * dh;
        let rows: usize = lens.iter().sum();
        let (full, last, last_rows, _, _) = layout(&lens);
        let groups = if last_only { last } else { full };
        let rq = if last_only { lens.len() } else { rows };
        let pos_cap = 5;
        let dims = AttnDims { d, n_heads: heads, pos_cap };
        let mut x = vec![normal(seed, 0, rq * d, 0.0, 1.0), normal(seed, 1, rows * d, 0.0, 1.0), normal(seed, 2, rows * d, 0.0, 1.0)];
        let w_out = normal(seed, 3, rq * d, 0.0, 1.0);
        let rng = CounterRng::new(seed ^ 0x5eed);
        let site = DropoutSite { rng: &rng, stream: stream_id(1, Site::AttnProbs), p };
        let drop = (p > 0.0).then_some(&site);
        let run = |x: &Vec<Vec<f64>>| {
            let mut out = vec![0.0; rq * d];
            attention_forward(&mut out, &mut AttnCache::default(), &x[0], &x[1], &x[2], &groups, dims, drop, &mut AttnScratch::default());
            dot(&out, &w_out)
        };
        let mut cache = AttnCache::default();
        let mut scratch = AttnScratch::default();
        let mut out = vec![0.0; rq * d];
        attention_forward(&mut out, &mut cache, &x[0], &x[1], &x[2], &groups, dims, drop, &mut scratch);
        let (mut dq, mut dk, mut dv) = (vec![0.0; rq * d], vec![0.0; rows * d], vec![0.0; rows * d]);
        attention_backward(&mut dq, &mut dk, &mut dv, &w_out, &x[0], &x[1], &x[2], &cache, &groups, dims, &mut scratch);
        let _ = last_rows;
        check_all(&mut x, &["q", "k", "v"], &[dq, dk, dv], run)?;
    }

    #[test]
    fn block(lens in prop::collection::vec(1usize..5, 1..3), heads in 1usize..3, dh in 1usize..3, inner in 1usize..5,
             last_only in any::<bool>(), dropout in any::<bool>(), seed in any::<u64>()) {
        let d = heads * dh;
        let rows: usize = lens.iter().sum();
        let (full, last, last_rows, ids, last_ids) = layout(&lens);
        let (groups, q_ids, queries) = if last_only {
            (last, last_ids, Queries::Rows(&last_rows))
        } else {
            (full, ids, Queries::All)
        };
        let rq = q_ids.len();
        let dims = AttnDims { d, n_heads: heads, pos_cap: 5 };
        let eps = 1e-12;
        let mut init = Block::<f64>::zeros(d, inner);
        for (k, (name, tensor)) in BLOCK_NAMES.iter().zip([
            &mut init.q.w, &mut init.q.b, &mut init.k.w, &mut init.k.b, &mut init.v.w, &mut init.v.b, &mut init.o.w, &mut init.o.b,
            &mut init.ln1.gamma, &mut init.ln1.beta, &mut init.ffn.ff1.w, &mut init.ffn.ff1.b, &mut init.ffn.ff2.w, &mut init.ffn.ff2.b,
            &mut init.ln2.gamma, &mut init.ln2.beta,
        ]).enumerate() {
            let mean = if name.ends_with("gamma") { 1.0 } else { 0.0 };
            tensor.data = normal(seed, 10 + k as u64, tensor.len(), mean, 0.5);
        }
        let mut x = block_tensors(&init);
        x.push(normal(seed, 0, rows * d, 0.0, 1.0));
        let w_out = normal(seed, 3, rq * d, 0.0, 1.0);
        let rng = CounterRng::new(seed ^ 0xb10c);
        let drop = BlockDropout { rng: &rng, layer: 0, hidden: 0.4, attn: 0.3 };
        let drop = dropout.then_some(&drop);
        let run = |x: &Vec<Vec<f64>>| {
            let block = block_from(x, d, inner);
            let mut cache = BlockCache::default();
            block.forward(&mut cache, &x[16], queries, &q_ids, &groups, dims, eps, drop, &mut BlockScratch::default());
            dot(cache.out(), &w_out)
        };
        let block = block_from(&x, d, inner);
        let mut cache = BlockCache::default();
        let mut scratch = BlockScratch::default();
        block.forward(&mut cache, &x[16], queries, &q_ids, &groups, dims, eps, drop, &mut scratch);
        prop_assume!(min_row_std(&cache.r1, d) > 0.05 && min_row_std(&cache.r2, d) > 0.05, "LayerNorm rows must vary on a scale ≫ h");
        let mut g = Block::zeros(d, inner);
        let mut dx = vec![0.0; rows * d];
        block.backward(&mut g, &mut dx, &w_out, &x[16], queries, &groups, dims, &cache, &mut scratch);
        let mut grads = block_tensors(&g);
        grads.push(dx.clone());
        let mut names = BLOCK_NAMES.to_vec();
        names.push("x");
        check_all(&mut x, &names, &grads, run)?;

        // backward twice = double (accumulation, not overwrite). Not bitwise:
        // dx receives several accumulations per call, so (a+b)+a+b and
        // 2(a+b) may differ in the last ulp; 1e-12 relative is far below any
        // overwrite (which would give a factor 1/2) yet above rounding.
        let mut g2 = Block::zeros(d, inner);
        let mut dx2 = vec![0.0; rows * d];
        for _ in 0..2 {
            block.backward(&mut g2, &mut dx2, &w_out, &x[16], queries, &groups, dims, &cache, &mut scratch);
        }
        let close = |a: f64, b: f64| (2.0 * a - b).abs() <= 1e-12 * (2.0 * a).abs().max(1.0);
        for (a, b) in dx.iter().zip(&dx2) {
            prop_assert!(close(*a, *b), "dx: {} vs {}", 2.0 * a, b);
        }
        for (a, b) in block_tensors(&g).iter().flatten().zip(block_tensors(&g2).iter().flatten()) {
            prop_assert!(close(*a, *b), "param: {} vs {}", 2.0 * a, b);
        }
    }

    #[test]
    fn item_softmax_ce(rows in 1usize..4, n in 1usize..12, d in 1usize..5, tau in 0.3f64..2.0, seed in any::<u64>()) {
        let rng = CounterRng::new(seed);
        let targets: Vec<u32> = (0..rows).map(|r| 1 + rng.below(20, r as u64, n as u64) as u32).collect();
        let dloss = normal(seed, 3, rows, 0.5, 1.0);
        let mut x = vec![normal(seed, 0, rows * d, 0.0, 1.0), normal(seed, 1, (n + 1) * d, 0.0, 1.0)];
        let inv_tau = 1.0 / tau;
        let run = |x: &Vec<Vec<f64>>| {
            let mut losses = vec![0.0; rows];
            item_ce_forward(&mut losses, &mut ItemCeCache::default(), &x[0], &x[1], &targets, d, inv_tau);
            dot(&losses, &dloss)
        };
        let mut losses = vec![0.0; rows];
        let mut cache = ItemCeCache::default();
        item_ce_forward(&mut losses, &mut cache, &x[0], &x[1], &targets, d, inv_tau);
        let (mut dh, mut de) = (vec![0.0; rows * d], vec![0.0; (n + 1) * d]);
        let mut scratch = ItemCeScratch::default();
        item_ce_backward(&mut dh, &mut de, &dloss, &x[0], &x[1], &targets, &cache, d, inv_tau, &mut scratch);
        // padding row: never a class, so its gradient is exactly zero both ways
        check_all(&mut x, &["h", "item_emb"], &[dh.clone(), de.clone()], run)?;
        let (mut dh2, mut de2) = (vec![0.0; rows * d], vec![0.0; (n + 1) * d]);
        for _ in 0..2 {
            item_ce_backward(&mut dh2, &mut de2, &dloss, &x[0], &x[1], &targets, &cache, d, inv_tau, &mut scratch);
        }
        for (a, b) in dh.iter().chain(&de).zip(dh2.iter().chain(&de2)) {
            prop_assert!((2.0 * a - b).abs() <= 1e-12 * (2.0 * a).abs().max(1.0), "{} vs {}", 2.0 * a, b);
        }
    }
}
