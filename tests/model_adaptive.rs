//! Adaptive Reasoning Halting at inference (`Model::score_adaptive`,
//! `Model::step_trace`, issue 5): Fixed is encode + score bit for bit; the
//! compacted early-exit run reproduces, row by row, the decisions and
//! scores obtained by applying the rule to the full-depth trace; the fast
//! f32 indicators match the f64 reference; ranks match eval; determinism;
//! degenerate batches.

mod common;
use common::adaptive::{batch, bits_equal, model_with, prediction_state, random_policies};

use dtrec::eval::target_rank;
use dtrec::kernels::rng::CounterRng;
use dtrec::model::halting::indicators::{
    fast_indicators, item_probabilities, jensen_shannon, mixture_entropy, normalized_entropy,
    relative_change, softmax_entropy, Indicators,
};
use dtrec::model::halting::{AdaptiveScores, StepTrace};
use dtrec::model::halting::{LearnedGate, ThresholdRule};
use dtrec::model::{Family, HaltingPolicy, Model, ModelConfig};
use dtrec::SeqBatch;

const FAMILIES: [Family; 3] = [Family::Dtrec, Family::RearecPrl, Family::RearecErl];

fn config(family: Family, t_max: usize, n_items: usize) -> ModelConfig {
    ModelConfig {
        max_len: 6,
        d: 8,
        n_layers: 2,
        n_heads: 2,
        inner: 12,
        ..ModelConfig::reasoning(n_items, family, t_max)
    }
}

/// A small f32 model with parameters far from the init (N(0, 0.5²)), so
/// predictions and indicators vary from row to row and step to step.
fn model(family: Family, t_max: usize, seed: u64) -> Model {
    model_with(config(family, t_max, 23), seed)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn scores_of(m: &Model, h: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; h.len() / m.config().d * m.config().n_items];
    m.score_items(&mut out, h);
    out
}

/// What applying `halting_step` to every row of the trace predicts.
fn expected(
    m: &Model,
    trace: &StepTrace,
    halting_step: impl Fn(&[Indicators<f32>]) -> usize,
) -> (Vec<f32>, Vec<u32>) {
    let t_max = trace.t_max;
    let b = trace.indicators.len() / t_max;
    let mut scores = Vec::new();
    let mut steps = Vec::new();
    for row in 0..b {
        let t = halting_step(&trace.indicators[row * t_max..(row + 1) * t_max]);
        steps.push(t as u32);
        scores.extend(scores_of(m, &prediction_state(m, trace, row, t)));
    }
    (scores, steps)
}

#[test]
fn fixed_is_encode_batch_plus_score_items_bit_for_bit() {
    for family in FAMILIES {
        for t_max in 1..=3 {
            let m = model(family, t_max, 11 + t_max as u64);
            // 70 > CHUNK: the parallel path and two chunks
            for b in [1, 5, 70] {
                let (seqs, _) = batch(&m, b, 3 + b as u64);
                let out = m.score_adaptive(&seqs, &HaltingPolicy::Fixed);
                let want = scores_of(&m, &m.encode_batch(&seqs));
                assert_eq!(out.steps, vec![t_max as u32; b]);
                assert!(bits_equal(&out.scores, &want), "{family:?} T={t_max} B={b}");
            }
        }
    }
}

#[test]
fn early_exit_with_compaction_equals_rule_applied_to_full_depth_trace() {
    let mut step_counts = [0usize; 4];
    for family in FAMILIES {
        for t_max in 1..=3 {
            let m = model(family, t_max, 100 + t_max as u64);
            for b in [9, 70] {
                let (seqs, _) = batch(&m, b, 40 + b as u64);
                let trace = m.step_trace(&seqs, None);
                for policy in random_policies(&trace, 7 * t_max as u64 + b as u64) {
                    let AdaptiveScores { scores, steps } = m.score_adaptive(&seqs, &policy);
                    let (want_scores, want_steps) = match &policy {
                        HaltingPolicy::Threshold(r) => expected(&m, &trace, |i| r.halting_step(i)),
                        HaltingPolicy::Learned(g) => expected(&m, &trace, |i| g.halting_step(i)),
                        HaltingPolicy::Fixed => unreachable!(),
                    };
                    assert_eq!(steps, want_steps, "{family:?} T={t_max} B={b} {policy:?}");
                    let diff = max_abs_diff(&scores, &want_scores);
                    assert!(diff <= 1e-5, "{family:?} T={t_max} {policy:?}: {diff}");
                    for &t in &steps {
                        step_counts[t as usize] += 1;
                    }
                }
            }
        }
    }
    // the rules did exercise early exits at every depth, not only T_max
    assert!(step_counts[1..].iter().all(|&c| c > 100), "{step_counts:?}");
}

/// The same equivalences at a width that is not a multiple of the 8 SIMD
/// lanes and with N > the indicators' summation block: the compacted run
/// against the full-depth trace, and the trace's indicators against f64.
#[test]
fn larger_shapes_early_exit_and_indicators() {
    for family in [Family::Dtrec, Family::RearecErl] {
        let cfg = ModelConfig {
            max_len: 10,
            d: 20,
            n_layers: 2,
            n_heads: 2,
            inner: 24,
            ..ModelConfig::reasoning(700, family, 3)
        };
        let m = model_with(cfg, 900);
        let (seqs, _) = batch(&m, 20, 31);
        let trace = m.step_trace(&seqs, None);
        check_indicators(&m, &seqs, &trace);
        let mut step_counts = [0usize; 4];
        for policy in random_policies(&trace, 17) {
            let out = m.score_adaptive(&seqs, &policy);
            for &t in &out.steps {
                step_counts[t as usize] += 1;
            }
            let (want_scores, want_steps) = match &policy {
                HaltingPolicy::Threshold(r) => expected(&m, &trace, |i| r.halting_step(i)),
                HaltingPolicy::Learned(g) => expected(&m, &trace, |i| g.halting_step(i)),
                HaltingPolicy::Fixed => unreachable!(),
            };
            assert_eq!(out.steps, want_steps, "{family:?} {policy:?}");
            assert!(max_abs_diff(&out.scores, &want_scores) <= 1e-5);
        }
        assert!(step_counts[1..].iter().all(|&c| c > 10), "{step_counts:?}");
    }
}

/// The trace's indicators against the f64 reference functions applied to
/// f64 softmaxes of the trace's states (≤ 1e-5).
fn check_indicators(m: &Model, seqs: &SeqBatch, trace: &StepTrace) {
    let cfg = m.config();
    let (d, n, t_max) = (cfg.d, cfg.n_items, cfg.t_max);
    let s = t_max + 1;
    let items: Vec<f64> = m.params.item_emb.data[d..]
        .iter()
        .map(|&x| f64::from(x))
        .collect();
    let h: Vec<f64> = trace.states.iter().map(|&x| f64::from(x)).collect();
    let rows = seqs.len() * s;
    let mut probs = vec![0.0f64; rows * n];
    item_probabilities(&mut probs, &h, &items, rows, n, d, cfg.tau);
    for b in 0..seqs.len() {
        for t in 1..=t_max {
            let (cur, prev) = ((b * s + t), (b * s + t - 1));
            let p = &probs[cur * n..(cur + 1) * n];
            let q = &probs[prev * n..(prev + 1) * n];
            let got = trace.indicators[b * t_max + t - 1];
            let want = [
                normalized_entropy(p),
                jensen_shannon(p, q),
                relative_change(&h[cur * d..(cur + 1) * d], &h[prev * d..(prev + 1) * d]),
            ];
            let got = [got.entropy, got.js, got.delta].map(f64::from);
            for (g, w) in got.iter().zip(want) {
                // Ĥ ∈ [0, 1], D ∈ [0, ln 2]: absolute. Δ is unbounded (an
                // empty history has h₀ = 0, so Δ₁ = ‖h₁‖/1e-6) and is an
                // f32 ratio: relative beyond 1.
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{:?} b={b} t={t}: {got:?} vs {want:?}",
                    cfg.family
                );
            }
        }
    }
}

#[test]
fn trace_states_equal_encode_steps_and_indicators_match_the_f64_reference() {
    for family in FAMILIES {
        for t_max in 1..=3 {
            let m = model(family, t_max, 200 + t_max as u64);
            let (seqs, _) = batch(&m, 12, 5);
            let trace = m.step_trace(&seqs, None);
            // the inference encoder and chain are the same computation as
            // the model's forward without dropout: bit for bit
            let states = m.encode_steps(&seqs);
            assert!(
                bits_equal(&trace.states, &states),
                "{family:?} T={t_max}: trace states differ from encode_steps"
            );
            check_indicators(&m, &seqs, &trace);
        }
    }
}

#[test]
fn trace_ranks_match_eval_target_rank() {
    for family in FAMILIES {
        for t_max in [1, 3] {
            let m = model(family, t_max, 300 + t_max as u64);
            let (seqs, targets) = batch(&m, 70, 9);
            let trace = m.step_trace(&seqs, Some(&targets));
            assert_eq!(trace.ranks.len(), 70 * (t_max + 1));
            let mut scratch = Vec::new();
            for (b, &y) in targets.iter().enumerate() {
                for t in 0..=t_max {
                    let scores = scores_of(&m, &prediction_state(&m, &trace, b, t));
                    let want = target_rank(&scores, y, &[], &mut scratch).unwrap();
                    let got = trace.ranks[b * (t_max + 1) + t];
                    assert_eq!(got, want, "{family:?} b={b} t={t}");
                }
            }
        }
    }
}

#[test]
fn deterministic_batch_and_thread_independent() {
    for family in FAMILIES {
        let t_max = 3;
        let m = model(family, t_max, 400);
        let (seqs, _) = batch(&m, 70, 13);
        let trace = m.step_trace(&seqs, None);
        for policy in random_policies(&trace, 99).into_iter().take(6) {
            let a = m.score_adaptive(&seqs, &policy);
            let b = m.score_adaptive(&seqs, &policy);
            assert_eq!(a, b, "same call twice");
            let n = m.config().n_items;
            for row in [0usize, 1, 7, 33, 69] {
                let hist = seqs.history(row).to_vec();
                let one = SeqBatch::from_histories(&[&hist[..]], seqs.max_len(), n).unwrap();
                let alone = m.score_adaptive(&one, &policy);
                assert_eq!(alone.steps[0], a.steps[row], "{family:?} row {row}");
                let diff = max_abs_diff(&alone.scores, &a.scores[row * n..(row + 1) * n]);
                assert!(diff <= 1e-5, "{family:?} row {row}: {diff}");
            }
        }
        assert_eq!(trace, m.step_trace(&seqs, None));
        // the thread count changes nothing (chunk boundaries are fixed)
        let policy = &random_policies(&trace, 5)[0];
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| (m.score_adaptive(&seqs, policy), m.step_trace(&seqs, None)))
        };
        assert_eq!(in_pool(1), in_pool(3));
    }
}

#[test]
fn degenerate_batches() {
    for family in FAMILIES {
        let m = model(family, 2, 500);
        let empty = SeqBatch::new(vec![], vec![], 6, 23).unwrap();
        for policy in [
            HaltingPolicy::Fixed,
            HaltingPolicy::Threshold(ThresholdRule::never()),
            HaltingPolicy::Learned(LearnedGate::default()),
        ] {
            let out = m.score_adaptive(&empty, &policy);
            assert!(out.scores.is_empty() && out.steps.is_empty());
        }
        let trace = m.step_trace(&empty, Some(&[]));
        assert!(trace.states.is_empty() && trace.indicators.is_empty() && trace.ranks.is_empty());
        // only empty histories: the chain runs over reasoning tokens alone
        let blanks = SeqBatch::new(vec![0; 12], vec![0, 0], 6, 23).unwrap();
        let eager = HaltingPolicy::Learned(LearnedGate {
            w: [0.0; 3],
            b: 1.0,
        });
        let out = m.score_adaptive(&blanks, &eager);
        assert_eq!(out.steps, vec![1, 1]);
        let trace = m.step_trace(&blanks, None);
        let (want, _) = expected(&m, &trace, |_| 1);
        assert!(max_abs_diff(&out.scores, &want) <= 1e-5);
    }
    // SASRec, T_max = 0: steps 0, scores = encode + score, trace = h₀
    let cfg = config(Family::Sasrec, 0, 23);
    let m = Model::<f64>::from_params(cfg.clone(), common::random_params(&cfg, 600))
        .unwrap()
        .cast::<f32>();
    let (seqs, targets) = batch(&m, 10, 21);
    let want = scores_of(&m, &m.encode_batch(&seqs));
    for policy in [
        HaltingPolicy::Fixed,
        HaltingPolicy::Threshold(ThresholdRule::never()),
        HaltingPolicy::Learned(LearnedGate::default()),
    ] {
        let out = m.score_adaptive(&seqs, &policy);
        assert_eq!(out.steps, vec![0; 10]);
        assert_eq!(out.scores, want);
    }
    let trace = m.step_trace(&seqs, Some(&targets));
    assert_eq!(trace.t_max, 0);
    assert!(trace.indicators.is_empty());
    assert!(bits_equal(&trace.states, &m.encode_steps(&seqs)));
    let mut scratch = Vec::new();
    for (b, &y) in targets.iter().enumerate() {
        let row = &want[b * 23..(b + 1) * 23];
        assert_eq!(
            trace.ranks[b],
            target_rank(row, y, &[], &mut scratch).unwrap()
        );
    }
}

/// f64 reference of the fast path on one logit row.
fn reference_row(z: &[f32]) -> Vec<f64> {
    let max = z
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let e: Vec<f64> = z.iter().map(|&x| (f64::from(x) - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn fast_indicators_match_the_f64_reference_on_realistic_rows() {
    let rng = CounterRng::new(77);
    let mut case = 0u64;
    // N up to 40k, flat to peaked rows (logit scale = ‖h‖‖e‖/τ), lengths
    // that are not multiples of the 8 lanes or of the block
    for n in [1usize, 7, 8, 9, 255, 257, 3416, 12_101, 40_000] {
        for scale in [0.01f64, 1.0, 5.0, 30.0] {
            case += 1;
            let z: Vec<f32> = (0..n)
                .map(|i| (scale * rng.normal(case, i as u64)) as f32)
                .collect();
            // the next step: a perturbation of the same logits
            let z2: Vec<f32> = z
                .iter()
                .enumerate()
                .map(|(i, &x)| x + (0.3 * scale * rng.normal(case + 1000, i as u64)) as f32)
                .collect();
            let (mut p, mut q) = (vec![0.0f32; n], vec![0.0f32; n]);
            let hp = softmax_entropy(&mut p, &z);
            let hq = softmax_entropy(&mut q, &z2);
            let hm = mixture_entropy(&p, &q);
            let h = [1.0f32, 2.0, 3.0];
            let h_prev = [1.0f32, 2.5, 3.0];
            let got = fast_indicators(hq, hp, hm, n, &h, &h_prev);
            let (rp, rq) = (reference_row(&z), reference_row(&z2));
            // the probabilities themselves
            for (a, b) in p.iter().zip(&rp) {
                assert!((f64::from(*a) - b).abs() <= 1e-6, "n={n} scale={scale}");
            }
            let want_h = normalized_entropy(&rq);
            let want_js = jensen_shannon(&rq, &rp);
            assert!(
                (f64::from(got.entropy) - want_h).abs() <= 1e-5,
                "n={n} scale={scale}: entropy {} vs {want_h}",
                got.entropy
            );
            assert!(
                (f64::from(got.js) - want_js).abs() <= 1e-5,
                "n={n} scale={scale}: js {} vs {want_js}",
                got.js
            );
            assert_eq!(got.delta, relative_change(&h, &h_prev));
            // identical rows: D = 0 up to rounding
            let same = fast_indicators(hp, hp, mixture_entropy(&p, &p), n, &h, &h);
            assert!(f64::from(same.js) <= 1e-6, "n={n}: {}", same.js);
        }
    }
    // a NaN logit never yields a finite indicator (rules never stop on NaN)
    let mut p = vec![0.0f32; 16];
    let mut z = vec![0.5f32; 16];
    z[3] = f32::NAN;
    assert!(softmax_entropy(&mut p, &z).is_nan());
}
