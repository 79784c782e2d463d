//! Adaptive Reasoning Halting with the indicators over the finest
//! prototype level (`Model::score_adaptive_in`, `Model::step_trace_in`
//! with `IndicatorBasis::Prototypes`): the compacted early-exit run
//! reproduces, row by row, the decisions of the rule applied to the
//! full-depth trace in the same space and the exit-step scores of each
//! row's prediction state (bit for bit); the indicators match an f64
//! computation straight from the definition (softmax over h·Cᵀ/τ, entropy
//! / ln k, JS); ranks and states do not depend on the space; the result
//! does not depend on the batch or the thread count; bad centroids are
//! typed errors.

mod common;
use common::adaptive::{batch, bits_equal, model_with, prediction_state, random_policies};

use dtrec::kernels::rng::CounterRng;
use dtrec::model::halting::indicators::{
    BasisError, IndicatorBasis, IndicatorCentroids, IndicatorSpace,
};
use dtrec::model::halting::AdaptiveScores;
use dtrec::model::halting::StepTrace;
use dtrec::model::halting::ThresholdRule;
use dtrec::model::prototypes::{PrototypeConfig, Prototypes};
use dtrec::model::{Family, HaltingPolicy, Model, ModelConfig};
use dtrec::SeqBatch;

const FAMILIES: [Family; 3] = [Family::Dtrec, Family::RearecPrl, Family::RearecErl];

fn config(family: Family, t_max: usize, n_items: usize, d: usize) -> ModelConfig {
    ModelConfig {
        max_len: 6,
        d,
        n_layers: 2,
        n_heads: 2,
        inner: 12,
        ..ModelConfig::reasoning(n_items, family, t_max)
    }
}

/// k random centroids of width d (N(0, 0.5²), the scale of the items).
fn centroids(k: usize, d: usize, seed: u64) -> IndicatorBasis {
    let mut data = vec![0.0f32; k * d];
    let rng = CounterRng::new(seed);
    for (i, x) in data.iter_mut().enumerate() {
        *x = (0.5 * rng.normal(0, i as u64)) as f32;
    }
    IndicatorBasis::Prototypes(IndicatorCentroids::new(data, k, d).unwrap())
}

/// Steps and item scores of applying `policy` to every row of the trace.
fn expected(m: &Model, trace: &StepTrace, policy: &HaltingPolicy) -> (Vec<f32>, Vec<u32>) {
    let t_max = trace.t_max;
    let rows = trace.indicators.len() / t_max;
    let n = m.config().n_items;
    let (mut scores, mut steps) = (Vec::new(), Vec::new());
    for row in 0..rows {
        let ind = &trace.indicators[row * t_max..(row + 1) * t_max];
        let t = match policy {
            HaltingPolicy::Threshold(r) => r.halting_step(ind),
            HaltingPolicy::Learned(g) => g.halting_step(ind),
            HaltingPolicy::Fixed => t_max,
        };
        steps.push(t as u32);
        let mut out = vec![0.0f32; n];
        m.score_items(&mut out, &prediction_state(m, trace, row, t));
        scores.extend(out);
    }
    (scores, steps)
}

#[test]
fn early_exit_in_prototype_space_equals_rule_applied_to_the_trace() {
    let mut step_counts = [0usize; 4];
    for family in FAMILIES {
        for t_max in 1..=3 {
            let m = model_with(config(family, t_max, 23, 8), 100 + t_max as u64);
            let basis = centroids(5, 8, 7 + t_max as u64);
            // 70 > CHUNK: two chunks, the parallel path
            for b in [9, 70] {
                let (seqs, _) = batch(&m, b, 40 + b as u64);
                let trace = m.step_trace_in(&seqs, None, &basis);
                for policy in random_policies(&trace, 7 * t_max as u64 + b as u64) {
                    let AdaptiveScores { scores, steps } =
                        m.score_adaptive_in(&seqs, &policy, &basis);
                    let (want_scores, want_steps) = expected(&m, &trace, &policy);
                    assert_eq!(steps, want_steps, "{family:?} T={t_max} B={b} {policy:?}");
                    // the exit scores are the prediction state's, scored by
                    // the same row-independent kernel: bit for bit
                    assert!(
                        bits_equal(&scores, &want_scores),
                        "{family:?} T={t_max} B={b} {policy:?}"
                    );
                    for &t in &steps {
                        step_counts[t as usize] += 1;
                    }
                }
                // Fixed ignores the basis: T_max steps, encode + score
                let fixed = m.score_adaptive_in(&seqs, &HaltingPolicy::Fixed, &basis);
                assert_eq!(fixed, m.score_adaptive(&seqs, &HaltingPolicy::Fixed));
            }
        }
    }
    // early exits at every depth, not only T_max
    assert!(step_counts[1..].iter().all(|&c| c > 100), "{step_counts:?}");
}

/// f64 indicators of one row pair straight from the definition over the
/// centroids C (k × d): p = softmax(h·Cᵀ/τ), Ĥ = H(p)/ln k, D = JS(p, q),
/// Δ = ‖h − h'‖/(‖h'‖ + 1e-6).
fn reference(h: &[f64], h_prev: &[f64], c: &[f64], k: usize, tau: f64) -> [f64; 3] {
    let d = h.len();
    let probs = |x: &[f64]| -> Vec<f64> {
        let z: Vec<f64> = (0..k)
            .map(|j| (0..d).map(|i| x[i] * c[j * d + i]).sum::<f64>() / tau)
            .collect();
        let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|v| v / total).collect()
    };
    let (p, q) = (probs(h), probs(h_prev));
    let entropy = -p
        .iter()
        .filter(|&&x| x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>()
        / (k as f64).ln();
    let kl_to_mean = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .filter(|(&x, _)| x > 0.0)
            .map(|(&x, &y)| x * (x / (0.5 * (x + y))).ln())
            .sum()
    };
    let js = 0.5 * kl_to_mean(&p, &q) + 0.5 * kl_to_mean(&q, &p);
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let diff: Vec<f64> = h.iter().zip(h_prev).map(|(a, b)| a - b).collect();
    [entropy, js, norm(&diff) / (norm(h_prev) + 1e-6)]
}

fn check_against_reference(m: &Model, trace: &StepTrace, basis: &IndicatorBasis) {
    let IndicatorBasis::Prototypes(cent) = basis else {
        panic!("a prototype basis")
    };
    let (d, t_max) = (m.config().d, trace.t_max);
    let s = t_max + 1;
    let c: Vec<f64> = cent.as_slice().iter().map(|&x| f64::from(x)).collect();
    let h: Vec<f64> = trace.states.iter().map(|&x| f64::from(x)).collect();
    let rows = trace.indicators.len() / t_max;
    for b in 0..rows {
        for t in 1..=t_max {
            let cur = &h[(b * s + t) * d..(b * s + t + 1) * d];
            let prev = &h[(b * s + t - 1) * d..(b * s + t) * d];
            let want = reference(cur, prev, &c, cent.k(), m.config().tau);
            let got = trace.indicators[b * t_max + t - 1];
            let got = [got.entropy, got.js, got.delta].map(f64::from);
            for (g, w) in got.iter().zip(want) {
                // Ĥ ∈ [0, 1], D ∈ [0, ln 2]: absolute; Δ relative beyond 1
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{:?} b={b} t={t}: {got:?} vs {want:?}",
                    m.config().family
                );
            }
        }
    }
}

#[test]
fn prototype_indicators_match_the_definition_in_f64() {
    for family in FAMILIES {
        for t_max in 1..=3 {
            let m = model_with(config(family, t_max, 23, 8), 200 + t_max as u64);
            let (seqs, targets) = batch(&m, 12, 5);
            for k in [2, 5, 17] {
                let basis = centroids(k, 8, 30 + k as u64);
                let trace = m.step_trace_in(&seqs, Some(&targets), &basis);
                check_against_reference(&m, &trace, &basis);
                // states and target ranks do not depend on the space
                let items = m.step_trace(&seqs, Some(&targets));
                assert!(bits_equal(&trace.states, &items.states));
                assert_eq!(trace.ranks, items.ranks, "{family:?} T={t_max} k={k}");
                // ... but the indicators do (Δ aside)
                assert_ne!(
                    trace
                        .indicators
                        .iter()
                        .map(|i| i.entropy)
                        .collect::<Vec<_>>(),
                    items
                        .indicators
                        .iter()
                        .map(|i| i.entropy)
                        .collect::<Vec<_>>()
                );
                for (a, b) in trace.indicators.iter().zip(&items.indicators) {
                    assert_eq!(a.delta, b.delta);
                }
            }
        }
    }
}

/// A width that is not a multiple of the 8 SIMD lanes, k above the
/// indicators' summation block (256) and not a multiple of 8, and the
/// centroids of a real hierarchy's finest level.
#[test]
fn larger_shapes_and_a_real_hierarchy() {
    for family in [Family::Dtrec, Family::RearecErl] {
        let cfg = ModelConfig {
            max_len: 10,
            d: 20,
            n_layers: 2,
            n_heads: 2,
            inner: 24,
            ..ModelConfig::reasoning(1500, family, 3)
        };
        let m = model_with(cfg, 900);
        let items = &m.params.item_emb.data[20..];
        let protos = Prototypes::build(items, 1500, 20, &PrototypeConfig::new(3, 4)).unwrap();
        let basis = IndicatorBasis::of(IndicatorSpace::Prototypes, Some(&protos)).unwrap();
        // the finest prototype level is level T_max − 1 = 2
        let k = protos.levels()[2].k;
        assert!(k > 256 && k % 8 != 0, "k = {k}");
        assert_eq!(basis.outcomes(1500), k);
        let (seqs, _) = batch(&m, 20, 31);
        let trace = m.step_trace_in(&seqs, None, &basis);
        check_against_reference(&m, &trace, &basis);
        let mut step_counts = [0usize; 4];
        for policy in random_policies(&trace, 17) {
            let out = m.score_adaptive_in(&seqs, &policy, &basis);
            let (want_scores, want_steps) = expected(&m, &trace, &policy);
            assert_eq!(out.steps, want_steps, "{family:?} {policy:?}");
            assert!(bits_equal(&out.scores, &want_scores));
            for &t in &out.steps {
                step_counts[t as usize] += 1;
            }
        }
        assert!(step_counts[1..].iter().all(|&c| c > 10), "{step_counts:?}");
    }
}

#[test]
fn batch_and_thread_independent() {
    for family in FAMILIES {
        let m = model_with(config(family, 3, 23, 8), 400);
        let basis = centroids(6, 8, 3);
        let (seqs, _) = batch(&m, 70, 13);
        let trace = m.step_trace_in(&seqs, None, &basis);
        let n = m.config().n_items;
        for policy in random_policies(&trace, 99).into_iter().take(6) {
            let all = m.score_adaptive_in(&seqs, &policy, &basis);
            assert_eq!(all, m.score_adaptive_in(&seqs, &policy, &basis));
            for row in [0usize, 1, 7, 33, 69] {
                let hist = seqs.history(row).to_vec();
                let one = SeqBatch::from_histories(&[&hist[..]], seqs.max_len(), n).unwrap();
                let alone = m.score_adaptive_in(&one, &policy, &basis);
                assert_eq!(alone.steps[0], all.steps[row], "{family:?} row {row}");
                assert!(bits_equal(
                    &alone.scores,
                    &all.scores[row * n..(row + 1) * n]
                ));
            }
        }
        let policy = &random_policies(&trace, 5)[1];
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    (
                        m.score_adaptive_in(&seqs, policy, &basis),
                        m.step_trace_in(&seqs, None, &basis),
                    )
                })
        };
        assert_eq!(in_pool(1), in_pool(3));
    }
}

#[test]
fn invalid_centroids_are_typed_errors() {
    assert_eq!(
        IndicatorCentroids::new(vec![0.5; 4], 1, 4),
        Err(BasisError::TooFewCentroids { k: 1 })
    );
    assert_eq!(
        IndicatorCentroids::new(vec![0.5; 7], 2, 4),
        Err(BasisError::ShapeMismatch { len: 7, k: 2, d: 4 })
    );
    assert_eq!(
        IndicatorCentroids::new(vec![], 2, 0),
        Err(BasisError::ShapeMismatch { len: 0, k: 2, d: 0 })
    );
    assert_eq!(
        IndicatorCentroids::new(vec![usize::MAX as f32; 4], usize::MAX, 4),
        Err(BasisError::ShapeMismatch {
            len: 4,
            k: usize::MAX,
            d: 4
        })
    );
    let mut bad = vec![0.5f32; 12];
    bad[9] = f32::NAN;
    assert_eq!(
        IndicatorCentroids::new(bad, 3, 4),
        Err(BasisError::NotFinite { row: 2 })
    );
    assert_eq!(
        IndicatorBasis::of(IndicatorSpace::Prototypes, None),
        Err(BasisError::NoPrototypes)
    );
    assert_eq!(
        IndicatorBasis::of(IndicatorSpace::Items, None),
        Ok(IndicatorBasis::Items)
    );
    // a hierarchy of T_max = 0 has only the item level
    let items: Vec<f32> = (0..40).map(|i| i as f32 * 0.1).collect();
    let flat = Prototypes::build(&items, 10, 4, &PrototypeConfig::new(0, 1)).unwrap();
    assert_eq!(
        IndicatorBasis::of(IndicatorSpace::Prototypes, Some(&flat)),
        Err(BasisError::NoPrototypeLevel)
    );
    // a finest level of a single cluster (k_min = 1, T_max = 1)
    let one = Prototypes::build(
        &items,
        10,
        4,
        &PrototypeConfig {
            k_min: 1,
            ..PrototypeConfig::new(1, 1)
        },
    )
    .unwrap();
    assert_eq!(
        IndicatorBasis::of(IndicatorSpace::Prototypes, Some(&one)),
        Err(BasisError::TooFewCentroids { k: 1 })
    );
}

#[test]
#[should_panic(expected = "indicator centroids of width 4 for a model of width 8")]
fn centroids_of_another_width_are_a_caller_bug() {
    let m = model_with(config(Family::Dtrec, 2, 23, 8), 1);
    let (seqs, _) = batch(&m, 3, 2);
    let policy = HaltingPolicy::Threshold(ThresholdRule::never());
    m.score_adaptive_in(&seqs, &policy, &centroids(3, 4, 1));
}
