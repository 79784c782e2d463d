//! The reasoning chain of `Model` (issue 5, method.md §2): the cached
//! one-token steps equal recomputing the whole extended sequence
//! [items…, reasoning tokens] with a causal mask (dropout on, same masks),
//! in f64 (≤ 1e-10) and f32 (≤ 1e-5); prediction states per family;
//! gradient accumulation; determinism.

use dtrec::kernels::rng::CounterRng;
use dtrec::kernels::Kernels;
use dtrec::model::reasoning_dropout_stream;
use dtrec::model::{Family, Model, ModelConfig, Params};
use dtrec::nn::attention::{AttnDims, AttnGroup};
use dtrec::nn::block::{BlockCache, BlockDropout, BlockScratch, Queries};
use dtrec::nn::dropout::{dropout_forward, fill_row_masks, stream_id, DropoutSite, RowId, Site};
use dtrec::nn::layernorm::LayerNormCache;
use dtrec::{SeqBatch, TrainBatch};

fn config(family: Family, t_max: usize) -> ModelConfig {
    ModelConfig {
        max_len: 6,
        d: 8,
        n_layers: 2,
        n_heads: 2,
        inner: 12,
        dropout: 0.3,
        attn_dropout: 0.2,
        reasoning_dropout: 0.25,
        ..ModelConfig::reasoning(15, family, t_max)
    }
}

/// Parameters far from the init (so attention is far from uniform).
fn random_params(cfg: &ModelConfig, seed: u64) -> Params<f64> {
    let mut p = Params::<f64>::zeros(cfg);
    let rng = CounterRng::new(seed);
    for (k, (name, t)) in p.tensors_mut().into_iter().enumerate() {
        let mean = if name.ends_with(".gamma") { 1.0 } else { 0.0 };
        rng.fill_normal(&mut t.data, k as u64, mean, 0.5);
    }
    p.item_emb.data[..cfg.d].fill(0.0);
    p
}

/// Histories of lengths 6, 3, 0, 1, 5 (one empty) and targets.
fn batch(cfg: &ModelConfig) -> TrainBatch {
    let rng = CounterRng::new(7);
    let l = cfg.max_len;
    let lengths = [6u32, 3, 0, 1, 5];
    let mut items = vec![0u32; lengths.len() * l];
    for (r, &len) in lengths.iter().enumerate() {
        for c in l - len as usize..l {
            items[r * l + c] = 1 + rng.below(0, (r * l + c) as u64, cfg.n_items as u64) as u32;
        }
    }
    let targets = (0..lengths.len())
        .map(|r| 1 + rng.below(1, r as u64, cfg.n_items as u64) as u32)
        .collect();
    TrainBatch::new(items, lengths.to_vec(), targets, l, cfg.n_items).unwrap()
}

/// Independent recomputation of h₀ … h_T of sequence `b` (global index):
/// for each k, the extended sequence [items…, z_1 … z_k] goes through every
/// block with a full causal mask (all rows are queries, nothing cached),
/// with the training masks of `seed`; z_i is built from the recomputed
/// h_{i−1}. Returns (T+1, d).
fn recompute<T: Kernels>(model: &Model<T>, seqs: &SeqBatch, b: usize, seed: u64) -> Vec<T> {
    let cfg = model.config();
    let p = &model.params;
    let (d, t_max) = (cfg.d, cfg.t_max);
    let eps = T::from_f64(cfg.ln_eps);
    let rng = CounterRng::new(seed);
    let dims = AttnDims {
        d,
        n_heads: cfg.n_heads,
        pos_cap: cfg.max_len + t_max,
    };
    let hist = seqs.history(b);
    let len = hist.len();
    // history rows: Dropout(LN_in(E[v] + P[pos]))
    let mut emb = vec![T::ZERO; len * d];
    for (i, &v) in hist.iter().enumerate() {
        for c in 0..d {
            emb[i * d + c] = p.item_emb.data[v as usize * d + c] + p.pos_emb.data[i * d + c];
        }
    }
    let ids: Vec<RowId> = (0..(len + t_max) as u32)
        .map(|pos| RowId { seq: b as u32, pos })
        .collect();
    let drop_in = |x: &[T], first: usize, stream: u64, rate: f64| -> Vec<T> {
        let mut ln = LayerNormCache::default();
        p.ln_in.forward(&mut ln, x, eps);
        let rows = x.len() / d;
        let mut mask = vec![T::ZERO; rows * d];
        let site = DropoutSite {
            rng: &rng,
            stream,
            p: rate,
        };
        fill_row_masks(&mut mask, &ids[first..first + rows], d, dims.pos_cap, &site);
        let mut out = vec![T::ZERO; rows * d];
        dropout_forward(&mut out, &ln.out, &mask);
        out
    };
    let mut x0 = drop_in(&emb, 0, stream_id(0, Site::Input), cfg.dropout);
    let mut states = vec![T::ZERO; (t_max + 1) * d];
    let mut scratch = BlockScratch::default();
    for k in 0..=t_max {
        let n = len + k;
        if k > 0 {
            // z_k = Dropout_r(LN_in(h_{k−1} + R[k−1])) appended as row len + k − 1
            let u: Vec<T> = (0..d)
                .map(|c| states[(k - 1) * d + c] + p.reason_pos.data[(k - 1) * d + c])
                .collect();
            let z = drop_in(
                &u,
                len + k - 1,
                reasoning_dropout_stream(),
                cfg.reasoning_dropout,
            );
            x0.extend_from_slice(&z);
        }
        if n == 0 {
            continue; // empty history: h₀ = 0
        }
        let group = [AttnGroup {
            q_start: 0,
            n_q: n,
            k_start: 0,
            n_k: n,
            seq: b as u32,
            pos0: 0,
        }];
        let mut x = x0.clone();
        for (l, block) in p.blocks.iter().enumerate() {
            let drop = BlockDropout {
                rng: &rng,
                layer: l,
                hidden: cfg.dropout,
                attn: cfg.attn_dropout,
            };
            let mut cache = BlockCache::default();
            block.forward(
                &mut cache,
                &x,
                Queries::All,
                &ids[..n],
                &group,
                dims,
                eps,
                Some(&drop),
                &mut scratch,
            );
            x = cache.out().to_vec();
        }
        states[k * d..(k + 1) * d].copy_from_slice(&x[(n - 1) * d..]);
    }
    states
}

fn max_diff<T: Kernels>(a: &[T], b: &[T]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.to_f64() - y.to_f64()).abs())
        .fold(0.0, f64::max)
}

fn check_cache_equivalence<T: Kernels>(model: &Model<T>, tol: f64) {
    let cfg = model.config();
    let s = cfg.t_max + 1;
    let d = cfg.d;
    let batch = batch(cfg);
    let seqs = batch.seqs();
    for seed in [None, Some(3u64)] {
        let cached = model.states_with(seqs, seed);
        for b in 0..seqs.len() {
            let want = match seed {
                Some(seed) => recompute(model, seqs, b, seed),
                None => {
                    // no dropout: the same recomputation with all rates 0
                    let mut cfg0 = cfg.clone();
                    cfg0.dropout = 0.0;
                    cfg0.attn_dropout = 0.0;
                    cfg0.reasoning_dropout = 0.0;
                    let m0 = Model::from_params(cfg0, model.params.clone()).unwrap();
                    recompute(&m0, seqs, b, 0)
                }
            };
            let got = &cached[b * s * d..(b + 1) * s * d];
            let diff = max_diff(got, &want);
            assert!(
                diff <= tol,
                "sequence {b}, dropout {seed:?}: cached vs recomputed differ by {diff}"
            );
        }
        // states really differ from step to step (the check is not vacuous)
        assert!(max_diff(&cached[..d], &cached[d..2 * d]) > 1e-3);
    }
}

#[test]
fn cached_steps_equal_recomputing_the_extended_sequence_f64() {
    for family in [Family::RearecErl, Family::RearecPrl, Family::Dtrec] {
        let cfg = config(family, 3);
        let model = Model::from_params(cfg.clone(), random_params(&cfg, 1)).unwrap();
        check_cache_equivalence(&model, 1e-10);
    }
}

#[test]
fn cached_steps_equal_recomputing_the_extended_sequence_f32() {
    let cfg = config(Family::Dtrec, 3);
    let model: Model<f32> = Model::from_params(cfg.clone(), random_params(&cfg, 2))
        .unwrap()
        .cast();
    check_cache_equivalence(&model, 1e-5);
}

#[test]
fn prediction_state_per_family_and_encode_steps() {
    for family in [Family::RearecErl, Family::RearecPrl, Family::Dtrec] {
        let cfg = config(family, 2);
        let model = Model::from_params(cfg.clone(), random_params(&cfg, 4)).unwrap();
        let seqs = batch(&cfg).seqs().clone();
        let (s, d) = (3, cfg.d);
        let steps = model.encode_steps(&seqs);
        assert_eq!(steps, model.states_with(&seqs, None));
        let pred = model.encode_batch(&seqs);
        for b in 0..seqs.len() {
            let st = &steps[b * s * d..(b + 1) * s * d];
            let want: Vec<f64> = match family {
                Family::RearecErl => (0..d)
                    .map(|c| (st[c] + st[d + c] + st[2 * d + c]) / 3.0)
                    .collect(),
                _ => st[2 * d..].to_vec(),
            };
            assert!(
                max_diff(&pred[b * d..(b + 1) * d], &want) < 1e-14,
                "{family}"
            );
        }
        // an empty history still reasons (h₀ = 0, h₁ ≠ 0)
        assert!(steps[2 * s * d..2 * s * d + d].iter().all(|&x| x == 0.0));
        assert!(steps[2 * s * d + d..2 * s * d + 2 * d]
            .iter()
            .any(|&x| x != 0.0));
    }
    // SASRec: one state, h₀
    let cfg = ModelConfig {
        family: Family::Sasrec,
        t_max: 0,
        ..config(Family::Sasrec, 0)
    };
    let model = Model::from_params(cfg.clone(), random_params(&cfg, 4)).unwrap();
    let seqs = batch(&cfg).seqs().clone();
    assert_eq!(model.encode_steps(&seqs), model.encode_batch(&seqs));
}

/// One thread: two accumulations give exactly twice one (g + g = 2g), and
/// the result is bit-identical run to run; the loss with gradients equals
/// the forward-only loss.
#[test]
fn backward_twice_doubles_and_runs_are_bit_identical() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for family in [Family::RearecErl, Family::RearecPrl, Family::Dtrec] {
        let cfg = config(family, 2);
        let model: Model<f32> = Model::from_params(cfg.clone(), random_params(&cfg, 5))
            .unwrap()
            .cast();
        let batch = batch(&cfg);
        pool.install(|| {
            let mut once = model.params.zeros_like();
            let l1 = model.loss_and_grad(&mut once, &batch, 9);
            let mut twice = model.params.zeros_like();
            let l2 = model.loss_and_grad(&mut twice, &batch, 9);
            assert_eq!(l1.to_bits(), l2.to_bits(), "{family}");
            assert_eq!(once, twice, "{family}: not deterministic");
            model.loss_and_grad(&mut twice, &batch, 9);
            let mut doubled = once.clone();
            doubled.scale(2.0);
            assert_eq!(twice, doubled, "{family}: backward twice ≠ double");
            assert!(once.reason_pos.data.iter().any(|&g| g != 0.0));
            let fwd = model.loss(&batch, Some(9));
            assert!(
                (fwd - l1 as f64).abs() < 1e-5 * fwd.abs(),
                "{family}: {fwd} vs {l1}"
            );
            // a different dropout seed gives a different loss
            assert_ne!(model.loss(&batch, Some(10)), fwd);
        });
    }
}

/// `step_dropout` sets the rates of the steps' blocks only: the encoder's
/// own rate there changes nothing (same masks, bit for bit), another rate
/// changes the loss, and the SASRec family (no steps) ignores it.
#[test]
fn step_dropout_applies_to_the_reasoning_steps_only() {
    for family in [
        Family::Sasrec,
        Family::RearecErl,
        Family::RearecPrl,
        Family::Dtrec,
    ] {
        let t_max = if family == Family::Sasrec { 0 } else { 2 };
        let base = ModelConfig {
            attn_dropout: 0.3,
            ..config(family, t_max)
        };
        let with = |step_dropout| {
            let cfg = ModelConfig {
                step_dropout,
                ..base.clone()
            };
            let model = Model::from_params(cfg.clone(), random_params(&cfg, 5)).unwrap();
            model.loss(&batch(&cfg), Some(9))
        };
        let default = with(None);
        assert_eq!(default.to_bits(), with(Some(0.3)).to_bits(), "{family}");
        if family == Family::Sasrec {
            assert_eq!(default.to_bits(), with(Some(0.0)).to_bits());
        } else {
            assert_ne!(default, with(Some(0.0)), "{family}");
        }
    }
}

/// Two threads give the one-thread result up to summation order.
#[test]
fn thread_count_changes_only_summation_order() {
    let cfg = config(Family::Dtrec, 2);
    let model = Model::from_params(cfg.clone(), random_params(&cfg, 6)).unwrap();
    let batch = batch(&cfg);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut g = model.params.zeros_like();
            let loss = model.loss_and_grad_with(&mut g, &batch, Some(1));
            (loss, g)
        })
    };
    let ((l1, g1), (l2, g2)) = (run(1), run(2));
    assert!((l1 - l2).abs() < 1e-12);
    for ((name, a), (_, b)) in g1.tensors().into_iter().zip(g2.tensors()) {
        assert!(max_diff(&a.data, &b.data) < 1e-12, "{name}");
    }
}

/// A batch whose histories are all empty: the encoder computes nothing,
/// the chain still runs over the reasoning tokens alone (and matches the
/// recomputation); gradients reach `reason_pos` but not the history-only
/// `pos_emb`.
#[test]
fn all_empty_histories_still_reason() {
    let cfg = config(Family::Dtrec, 2);
    let model = Model::from_params(cfg.clone(), random_params(&cfg, 8)).unwrap();
    let batch = TrainBatch::new(vec![0; 2 * 6], vec![0, 0], vec![3, 5], 6, 15).unwrap();
    let states = model.states_with(batch.seqs(), Some(2));
    for b in 0..2 {
        let want = recompute(&model, batch.seqs(), b, 2);
        assert!(max_diff(&states[b * 3 * 8..(b + 1) * 3 * 8], &want) < 1e-12);
    }
    let mut g = model.params.zeros_like();
    let loss = model.loss_and_grad_with(&mut g, &batch, Some(2));
    assert!(loss.is_finite());
    assert!(g.reason_pos.data.iter().any(|&x| x != 0.0));
    assert!(g.pos_emb.data.iter().all(|&x| x == 0.0));
}

/// Every family fits a fixed batch with Adam (the gradients are usable for
/// training, not just correct): the no-dropout loss falls by more than half.
#[test]
fn every_family_fits_a_fixed_batch() {
    use dtrec::train::{Adam, AdamConfig};
    for family in [Family::RearecErl, Family::RearecPrl, Family::Dtrec] {
        let cfg = ModelConfig {
            dropout: 0.1,
            attn_dropout: 0.1,
            reasoning_dropout: 0.1,
            ..config(family, 2)
        };
        let mut model: Model<f32> = Model::new(cfg.clone(), 3).unwrap();
        let batch = batch(&cfg);
        let before = model.loss(&batch, None);
        let mut adam = Adam::new(
            &model.params,
            AdamConfig {
                lr: 0.01,
                ..AdamConfig::default()
            },
        );
        let mut grads = model.params.zeros_like();
        for step in 0..150 {
            grads.zero_grad();
            model.loss_and_grad(&mut grads, &batch, step);
            adam.step(&mut model.params, &mut grads);
        }
        let after = model.loss(&batch, None);
        assert!(after < 0.5 * before, "{family}: {before} -> {after}");
    }
}

/// ReaRec-PRL's contrastive softmax groups are whole chunks of the batch, so
/// with B > CHUNK the loss and gradient change with the thread count only by
/// summation order (a part boundary inside a chunk would change the loss).
#[test]
fn contrastive_groups_do_not_depend_on_thread_count() {
    let cfg = config(Family::RearecPrl, 2);
    let mut model = Model::from_params(cfg.clone(), random_params(&cfg, 6)).unwrap();
    model.set_contrastive(true);
    let rng = CounterRng::new(21);
    let (b, l) = (150, cfg.max_len);
    let mut items = vec![0u32; b * l];
    let mut lengths = vec![];
    for r in 0..b {
        let len = rng.below(0, r as u64, l as u64 + 1) as usize;
        for c in l - len..l {
            items[r * l + c] = 1 + rng.below(1, (r * l + c) as u64, cfg.n_items as u64) as u32;
        }
        lengths.push(len as u32);
    }
    let targets = (0..b)
        .map(|r| 1 + rng.below(2, r as u64, cfg.n_items as u64) as u32)
        .collect();
    let batch = TrainBatch::new(items, lengths, targets, l, cfg.n_items).unwrap();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut g = model.params.zeros_like();
            let loss = model.loss_and_grad_with(&mut g, &batch, Some(1));
            (loss, g)
        })
    };
    let (l1, g1) = run(1);
    assert!((l1 - model.loss(&batch, Some(1))).abs() < 1e-12);
    for threads in [2, 3] {
        let (l2, g2) = run(threads);
        assert!((l1 - l2).abs() < 1e-12, "{threads} threads: {l1} vs {l2}");
        for ((name, a), (_, b)) in g1.tensors().into_iter().zip(g2.tensors()) {
            assert!(
                max_diff(&a.data, &b.data) < 1e-12,
                "{threads} threads: {name}"
            );
        }
    }
}
