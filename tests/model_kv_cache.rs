//! The block API supports the cached one-token step that reasoning (issue 5)
//! needs: project the new token's key/value into a slot of the per-layer
//! cache, run ONE query over the cache, and backpropagate through the cache
//! with `backward_queries` (dK, dV into caller buffers) + `backward_kv`.
//! Both directions must equal recomputing the whole extended sequence.

use dtrec::kernels::rng::CounterRng;
use dtrec::nn::attention::{AttnDims, AttnGroup};
use dtrec::nn::block::{Block, BlockCache, BlockDropout, BlockScratch, Queries};
use dtrec::nn::dropout::RowId;

fn random_block(d: usize, inner: usize, seed: u64) -> Block<f64> {
    let mut b = Block::<f64>::zeros(d, inner);
    let rng = CounterRng::new(seed);
    let tensors = [
        &mut b.q.w,
        &mut b.q.b,
        &mut b.k.w,
        &mut b.k.b,
        &mut b.v.w,
        &mut b.v.b,
        &mut b.o.w,
        &mut b.o.b,
        &mut b.ffn.ff1.w,
        &mut b.ffn.ff1.b,
        &mut b.ffn.ff2.w,
        &mut b.ffn.ff2.b,
    ];
    for (k, t) in tensors.into_iter().enumerate() {
        rng.fill_normal(&mut t.data, k as u64, 0.0, 0.4);
    }
    rng.fill_normal(&mut b.ln1.gamma.data, 20, 1.0, 0.2);
    rng.fill_normal(&mut b.ln2.gamma.data, 21, 1.0, 0.2);
    b
}

#[test]
fn cached_one_token_step_equals_recomputing_the_extended_sequence() {
    let (n, d, inner, heads) = (5, 8, 12, 2);
    let block = random_block(d, inner, 1);
    let rng = CounterRng::new(2);
    let mut x = vec![0.0; (n + 1) * d]; // n cached rows + the new token
    rng.fill_normal(&mut x, 0, 0.0, 1.0);
    let mut dy_new = vec![0.0; d];
    rng.fill_normal(&mut dy_new, 1, 0.0, 1.0);
    let dims = AttnDims {
        d,
        n_heads: heads,
        pos_cap: n + 1,
    };
    let eps = 1e-12;
    let ids: Vec<RowId> = (0..=n as u32).map(|pos| RowId { seq: 0, pos }).collect();
    // Dropout on: masks are keyed by (sequence, position), so the cached step
    // draws exactly the masks the full recomputation draws for the last row.
    let drop_rng = CounterRng::new(3);
    let drop = BlockDropout {
        rng: &drop_rng,
        layer: 0,
        hidden: 0.3,
        attn: 0.3,
    };

    // (a) full recomputation over n + 1 rows, gradient only on the last row
    let full_group = [AttnGroup {
        q_start: 0,
        n_q: n + 1,
        k_start: 0,
        n_k: n + 1,
        seq: 0,
        pos0: 0,
    }];
    let mut full = BlockCache::default();
    let mut scratch = BlockScratch::default();
    block.forward(
        &mut full,
        &x,
        Queries::All,
        &ids,
        &full_group,
        dims,
        eps,
        Some(&drop),
        &mut scratch,
    );
    let mut dy_full = vec![0.0; (n + 1) * d];
    dy_full[n * d..].copy_from_slice(&dy_new);
    let mut g_full = Block::zeros(d, inner);
    let mut dx_full = vec![0.0; (n + 1) * d];
    block.backward(
        &mut g_full,
        &mut dx_full,
        &dy_full,
        &x,
        Queries::All,
        &full_group,
        dims,
        &full,
        &mut scratch,
    );

    // (b) cache the first n rows' keys/values, reserve one slot, project the
    // new token into it, and run one query over the cache
    let mut cache = BlockCache::default();
    block.forward_kv(&mut cache, &x[..n * d]);
    cache.k.resize((n + 1) * d, 0.0);
    cache.v.resize((n + 1) * d, 0.0);
    block.k.forward(&mut cache.k[n * d..], &x[n * d..]);
    block.v.forward(&mut cache.v[n * d..], &x[n * d..]);
    let step_group = [AttnGroup {
        q_start: 0,
        n_q: 1,
        k_start: 0,
        n_k: n + 1,
        seq: 0,
        pos0: 0,
    }];
    block.forward_queries(
        &mut cache,
        &x[n * d..],
        Queries::All,
        &ids[n..],
        &step_group,
        dims,
        eps,
        Some(&drop),
        &mut scratch,
    );
    for (a, b) in cache.out().iter().zip(&full.out()[n * d..]) {
        assert!((a - b).abs() < 1e-12, "forward: {a} vs {b}");
    }

    // backward through the cache: dK/dV for all n + 1 rows, then the projections
    let mut g_step = Block::zeros(d, inner);
    let (mut dk, mut dv) = (vec![0.0; (n + 1) * d], vec![0.0; (n + 1) * d]);
    let mut dx_new = vec![0.0; d];
    block.backward_queries(
        &mut g_step,
        &mut dx_new,
        &mut dk,
        &mut dv,
        &dy_new,
        &x[n * d..],
        Queries::All,
        &step_group,
        dims,
        &cache,
        &mut scratch,
    );
    let mut dx = vec![0.0; (n + 1) * d];
    block.backward_kv(&mut g_step, &mut dx, &dk, &dv, &x);
    for (a, b) in dx[n * d..].iter_mut().zip(&dx_new) {
        *a += b;
    }
    for (a, b) in dx.iter().zip(&dx_full) {
        assert!((a - b).abs() < 1e-12, "dx: {a} vs {b}");
    }
    let flat = |b: &Block<f64>| -> Vec<f64> {
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
            &b.ffn.ff2.w,
            &b.ln2.gamma,
        ]
        .iter()
        .flat_map(|t| t.data.clone())
        .collect()
    };
    for (a, b) in flat(&g_step).iter().zip(&flat(&g_full)) {
        assert!((a - b).abs() < 1e-12, "param grad: {a} vs {b}");
    }
}
