//! Model-level tests of the SASRec encoder: agreement with an independent
//! dense (padded, masked) reference, f32 vs f64, determinism across runs and
//! thread counts, accumulation, the optimizer loop, and the inference API.

use dtrec::kernels::rng::CounterRng;
use dtrec::model::{Model, ModelConfig, Params};
use dtrec::train::{Adam, AdamConfig};
use dtrec::{SeqBatch, TrainBatch};

fn random_params(cfg: &ModelConfig, seed: u64, std: f64) -> Params<f64> {
    let mut p = Params::<f64>::zeros(cfg);
    let rng = CounterRng::new(seed);
    for (k, (name, t)) in p.tensors_mut().into_iter().enumerate() {
        let mean = if name.ends_with(".gamma") { 1.0 } else { 0.0 };
        rng.fill_normal(&mut t.data, k as u64, mean, std);
    }
    p.item_emb.data[..cfg.d].fill(0.0);
    p
}

fn random_batch(cfg: &ModelConfig, b: usize, min_len: usize, seed: u64) -> TrainBatch {
    let rng = CounterRng::new(seed);
    let l = cfg.max_len;
    let mut items = vec![0u32; b * l];
    let mut lengths = vec![];
    for r in 0..b {
        let len = min_len + rng.below(1, r as u64, (l - min_len) as u64 + 1) as usize;
        for c in l - len..l {
            items[r * l + c] = 1 + rng.below(2, (r * l + c) as u64, cfg.n_items as u64) as u32;
        }
        lengths.push(len as u32);
    }
    let targets = (0..b)
        .map(|r| 1 + rng.below(3, r as u64, cfg.n_items as u64) as u32)
        .collect();
    TrainBatch::new(items, lengths, targets, l, cfg.n_items).unwrap()
}

fn small_config() -> ModelConfig {
    ModelConfig {
        n_items: 23,
        max_len: 7,
        d: 8,
        n_layers: 2,
        n_heads: 2,
        inner: 12,
        dropout: 0.3,
        attn_dropout: 0.2,
        tau: 0.7,
        ..ModelConfig::sasrec(23)
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Independent dense reference: the textbook padded computation over all L
// columns with an explicit causal + key-padding mask (as RecBole does it),
// written with plain loops and no code shared with the library.

fn layer_norm(x: &[f64], g: &[f64], b: &[f64], eps: f64) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    x.iter()
        .zip(g)
        .zip(b)
        .map(|((v, g), b)| (v - mean) / (var + eps).sqrt() * g + b)
        .collect()
}

/// y = x · W + b with W stored (d_in, d_out).
fn affine(x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let d_out = b.len();
    (0..d_out)
        .map(|o| {
            b[o] + x
                .iter()
                .enumerate()
                .map(|(i, v)| v * w[i * d_out + o])
                .sum::<f64>()
        })
        .collect()
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm_erf(x / std::f64::consts::SQRT_2))
}

/// erf by composite Simpson integration of 2/√π·e^{−t²} over [0, |x|]
/// (independent of the kernels' libm erf). 2,000 panels of width ≤ 0.003:
/// error ≤ h⁴/180·max|f⁗| ≈ 6e-12; erf(x) = ±1 to double precision beyond 6.
fn libm_erf(x: f64) -> f64 {
    let a = x.abs().min(6.0);
    let n = 2000;
    let h = a / n as f64;
    let f = |t: f64| (-t * t).exp();
    let mut sum = f(0.0) + f(a);
    for i in 1..n {
        sum += if i % 2 == 1 { 4.0 } else { 2.0 } * f(i as f64 * h);
    }
    x.signum() * sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

fn dense_reference(p: &Params<f64>, cfg: &ModelConfig, items: &[u32]) -> Vec<f64> {
    let (l, d, h) = (cfg.max_len, cfg.d, cfg.n_heads);
    let dh = d / h;
    let first_real = items.iter().position(|&v| v != 0).unwrap_or(l);
    let mut x: Vec<Vec<f64>> = (0..l)
        .map(|c| {
            let pos = c.saturating_sub(first_real); // padded columns: any position, they are masked
            let e: Vec<f64> = (0..d)
                .map(|k| p.item_emb.data[items[c] as usize * d + k] + p.pos_emb.data[pos * d + k])
                .collect();
            layer_norm(&e, &p.ln_in.gamma.data, &p.ln_in.beta.data, cfg.ln_eps)
        })
        .collect();
    for blk in &p.blocks {
        let q: Vec<Vec<f64>> = x
            .iter()
            .map(|r| affine(r, &blk.q.w.data, &blk.q.b.data))
            .collect();
        let k: Vec<Vec<f64>> = x
            .iter()
            .map(|r| affine(r, &blk.k.w.data, &blk.k.b.data))
            .collect();
        let v: Vec<Vec<f64>> = x
            .iter()
            .map(|r| affine(r, &blk.v.w.data, &blk.v.b.data))
            .collect();
        let mut next = vec![];
        for i in 0..l {
            let mut att = vec![0.0; d];
            for hh in 0..h {
                let cols = hh * dh..(hh + 1) * dh;
                let allowed: Vec<usize> = (0..=i).filter(|&j| items[j] != 0).collect();
                if allowed.is_empty() {
                    continue; // fully masked row: zeros
                }
                let scores: Vec<f64> = allowed
                    .iter()
                    .map(|&j| {
                        cols.clone().map(|c| q[i][c] * k[j][c]).sum::<f64>() / (dh as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for (s, &j) in scores.iter().zip(&allowed) {
                    for c in cols.clone() {
                        att[c] += (s - m).exp() / z * v[j][c];
                    }
                }
            }
            let proj = affine(&att, &blk.o.w.data, &blk.o.b.data);
            let r1: Vec<f64> = x[i].iter().zip(&proj).map(|(a, b)| a + b).collect();
            let a = layer_norm(&r1, &blk.ln1.gamma.data, &blk.ln1.beta.data, cfg.ln_eps);
            let f1: Vec<f64> = affine(&a, &blk.ffn.ff1.w.data, &blk.ffn.ff1.b.data)
                .into_iter()
                .map(gelu)
                .collect();
            let f2 = affine(&f1, &blk.ffn.ff2.w.data, &blk.ffn.ff2.b.data);
            let r2: Vec<f64> = a.iter().zip(&f2).map(|(a, b)| a + b).collect();
            next.push(layer_norm(
                &r2,
                &blk.ln2.gamma.data,
                &blk.ln2.beta.data,
                cfg.ln_eps,
            ));
        }
        x = next;
    }
    x[l - 1].clone()
}

#[test]
fn encode_matches_dense_padded_reference() {
    for (cfg, seed) in [
        (small_config(), 1),
        (
            ModelConfig {
                n_layers: 1,
                n_heads: 1,
                ..small_config()
            },
            2,
        ),
        (
            ModelConfig {
                n_layers: 3,
                ..small_config()
            },
            3,
        ),
    ] {
        let model = Model::from_params(cfg.clone(), random_params(&cfg, seed, 0.4)).unwrap();
        let batch = random_batch(&cfg, 9, 1, seed + 10);
        let h = model.encode_batch(batch.seqs());
        for b in 0..batch.len() {
            let want = dense_reference(
                &model.params,
                &cfg,
                &batch.seqs().items()[b * cfg.max_len..(b + 1) * cfg.max_len],
            );
            for (got, want) in h[b * cfg.d..(b + 1) * cfg.d].iter().zip(&want) {
                // Both are f64 evaluations of the same formula in different
                // orders; 1e-10 is ~10⁶ ulps of slack yet far below any
                // modelling difference (which would be O(0.1)).
                assert!((got - want).abs() < 1e-10, "row {b}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn loss_equals_cross_entropy_of_encode_and_score_items() {
    let cfg = small_config();
    let model = Model::from_params(cfg.clone(), random_params(&cfg, 4, 0.4)).unwrap();
    let batch = random_batch(&cfg, 5, 1, 5);
    let h = model.encode_batch(batch.seqs());
    let mut scores = vec![0.0; 5 * cfg.n_items];
    model.score_items(&mut scores, &h);
    let mut want = 0.0;
    for (b, row) in scores.chunks(cfg.n_items).enumerate() {
        // column j is item j + 1, scaled by 1/τ
        let j = 4;
        let dot: f64 = (0..cfg.d)
            .map(|c| h[b * cfg.d + c] * model.params.item_emb.data[(j + 1) * cfg.d + c])
            .sum();
        assert!((row[j] - dot / cfg.tau).abs() < 1e-12);
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|s| (s - m).exp()).sum::<f64>().ln();
        want += lse - row[batch.targets()[b] as usize - 1];
    }
    assert!((model.loss(&batch, None) - want / 5.0).abs() < 1e-12);
}

#[test]
fn empty_history_encodes_to_zero_and_bad_input_is_an_error() {
    let cfg = small_config();
    let model = Model::from_params(cfg.clone(), random_params(&cfg, 4, 0.4)).unwrap();
    let l = cfg.max_len;
    let mut items = vec![0u32; 2 * l];
    items[2 * l - 1] = 3;
    let h = model.encode(&items, &[0, 1]).unwrap();
    assert!(h[..cfg.d].iter().all(|&x| x == 0.0));
    assert!(h[cfg.d..].iter().any(|&x| x != 0.0));
    assert!(
        model.encode(&items, &[0, 2]).is_err(),
        "padding inside the declared length"
    );
    items[2 * l - 1] = 24;
    assert!(model.encode(&items, &[0, 1]).is_err(), "item id beyond N");
    assert!(
        model.encode(&items[..l], &[0, 1]).is_err(),
        "wrong number of values"
    );
}

#[test]
fn f32_model_agrees_with_f64_model_on_the_same_parameters() {
    // The real configuration shape family at small N, RecBole init (std 0.02).
    let cfg = ModelConfig {
        n_items: 300,
        max_len: 20,
        ..ModelConfig::sasrec(300)
    };
    let m32 = Model::<f32>::new(cfg.clone(), 8).unwrap();
    let m64: Model<f64> = m32.cast();
    let batch = random_batch(&cfg, 40, 1, 9);
    let (mut g32, mut g64) = (m32.params.zeros_like(), m64.params.zeros_like());
    let l32 = m32.loss_and_grad_with(&mut g32, &batch, Some(3));
    let l64 = m64.loss_and_grad_with(&mut g64, &batch, Some(3));
    // f32 has unit roundoff 6e-8; the loss agrees to ~6e-9 relative here
    // (measured), the bound 1e-6 is loose yet far below any real mismatch.
    assert!((l32 - l64).abs() < 1e-6 * l64.abs(), "loss {l32} vs {l64}");
    // Gradients, per tensor in relative L2 norm: measured ≤ 5e-7 (a few
    // ulps of accumulated f32 rounding); bound 1e-5 = 20× that, while a real
    // mismatch (another mask, a missing term) is O(1). The key bias is the
    // exception: its true gradient is exactly 0 (adding b_k shifts every
    // score of a query row by the same ⟨q, b_k⟩, and softmax ignores shifts),
    // so both values are rounding noise; it is held to an absolute bound.
    for ((name, a), (_, b)) in g32.tensors().into_iter().zip(g64.tensors()) {
        let diff: f64 = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (*x as f64 - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = b.data.iter().map(|y| y * y).sum::<f64>().sqrt();
        if name.ends_with(".k.b") {
            assert!(diff < 1e-9 && norm < 1e-12, "{name}: {diff} / {norm}");
        } else {
            assert!(
                diff <= 1e-5 * norm,
                "{name}: relative difference {}",
                diff / norm
            );
        }
    }
}

#[test]
fn training_step_is_bit_identical_for_a_fixed_thread_count() {
    let cfg = ModelConfig {
        n_items: 50,
        max_len: 10,
        dropout: 0.5,
        attn_dropout: 0.5,
        ..ModelConfig::sasrec(50)
    };
    let model = Model::<f32>::new(cfg.clone(), 1).unwrap();
    let batch = random_batch(&cfg, 150, 0, 2); // > 2 chunks, includes empty histories
    for threads in [1, 2, 3] {
        let run = || {
            pool(threads).install(|| {
                let mut g = model.params.zeros_like();
                let loss = model.loss_and_grad(&mut g, &batch, 77);
                (loss, g)
            })
        };
        let (a, b) = (run(), run());
        assert_eq!(a.0.to_bits(), b.0.to_bits(), "{threads} threads: loss");
        assert!(
            a.1 == b.1,
            "{threads} threads: gradients differ between runs"
        );
    }
}

#[test]
fn dropout_masks_do_not_depend_on_partitioning() {
    // In f64, different thread counts only reorder the gradient sums, so the
    // results agree to rounding; a mask that depended on the chunk would
    // change the loss by O(1).
    let cfg = ModelConfig {
        n_items: 40,
        max_len: 6,
        d: 8,
        inner: 8,
        ..ModelConfig::sasrec(40)
    };
    let model = Model::from_params(cfg.clone(), random_params(&cfg, 3, 0.3)).unwrap();
    let batch = random_batch(&cfg, 150, 1, 4);
    let seq = model.loss(&batch, Some(5));
    let mut grads = vec![];
    for threads in [1, 3] {
        let mut g = model.params.zeros_like();
        let loss = pool(threads).install(|| model.loss_and_grad_with(&mut g, &batch, Some(5)));
        assert!(
            (loss - seq).abs() < 1e-13 * seq,
            "{threads} threads: {loss} vs {seq}"
        );
        grads.push(g);
    }
    for ((name, a), (_, b)) in grads[0].tensors().into_iter().zip(grads[1].tensors()) {
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1e-3),
                "{name}: {x} vs {y}"
            );
        }
    }
    assert_ne!(
        model.loss(&batch, Some(6)),
        seq,
        "another step seed gives other masks"
    );
}

#[test]
fn backward_twice_equals_double() {
    // One thread: one part, so the second call adds exactly the same values
    // to the same buffer: g + g = 2g bit for bit.
    let cfg = small_config();
    let model = Model::from_params(cfg.clone(), random_params(&cfg, 6, 0.4)).unwrap();
    let batch = random_batch(&cfg, 4, 1, 7);
    pool(1).install(|| {
        let mut once = model.params.zeros_like();
        model.loss_and_grad_with(&mut once, &batch, Some(1));
        let mut twice = model.params.zeros_like();
        model.loss_and_grad_with(&mut twice, &batch, Some(1));
        model.loss_and_grad_with(&mut twice, &batch, Some(1));
        once.scale(2.0);
        assert!(once == twice);
    });
}

#[test]
fn adam_steps_reduce_the_loss_on_a_fixed_batch() {
    let cfg = ModelConfig {
        n_items: 30,
        max_len: 8,
        d: 16,
        inner: 32,
        dropout: 0.1,
        attn_dropout: 0.1,
        ..ModelConfig::sasrec(30)
    };
    let mut model = Model::<f32>::new(cfg.clone(), 3).unwrap();
    let batch = random_batch(&cfg, 16, 2, 8);
    let mut adam = Adam::new(
        &model.params,
        AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
    );
    let mut grads = model.params.zeros_like();
    let start = model.loss(&batch, None);
    let mut losses = vec![];
    for step in 0..60 {
        grads.zero_grad();
        losses.push(model.loss_and_grad(&mut grads, &batch, step));
        adam.step(&mut model.params, &mut grads);
    }
    let end = model.loss(&batch, None);
    // ln 30 = 3.4 at start; 16 samples can be memorised by this model.
    assert!(
        start > 3.3 && end < 0.5 * start,
        "loss {start} → {end}; trajectory {losses:?}"
    );
    assert!(
        model.params.item_emb.data[..cfg.d]
            .iter()
            .all(|&x| x == 0.0),
        "padding row stays zero"
    );
}

#[test]
fn seq_batch_keeps_the_most_recent_items() {
    let b = SeqBatch::from_histories(&[&[1, 2, 3, 4][..], &[][..]], 3, 4).unwrap();
    assert_eq!(b.items(), &[2, 3, 4, 0, 0, 0]);
    assert_eq!(b.history(0), &[2, 3, 4]);
    assert!(b.history(1).is_empty());
}
