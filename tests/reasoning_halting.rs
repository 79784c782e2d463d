//! ARH halting (`dtrec::model::halting`):
//!
//! * threshold rule on hand-built sequences (t_min, all-three condition,
//!   NaN never stops, `never` runs to T_max);
//! * learned gate: closed-form probability and loss, f64 central finite
//!   differences of the mean BCE against the hand-derived gradient
//!   (proptest), backward accumulates, halting at q ≥ 0.5, labels;
//! * calibration sweep on hand-built data with hand-computed NDCG@10 and
//!   average steps, the tolerance choosing the cheapest qualifying setting
//!   with the documented tie-breaks, and invariants on random data.

use dtrec::model::halting::indicators::Indicators;
use dtrec::model::halting::{
    calibrate_thresholds, gate_labels, ndcg_at_10, sigmoid, CalibrationError, LearnedGate,
    ThresholdGrid, ThresholdRule,
};
use dtrec_kernels::rng::CounterRng;
use proptest::prelude::*;

fn ind(entropy: f64, js: f64, delta: f64) -> Indicators<f64> {
    Indicators { entropy, js, delta }
}

fn same(v: f64) -> Indicators<f64> {
    ind(v, v, v)
}

#[test]
fn threshold_rule_on_hand_built_sequences() {
    let rule = ThresholdRule {
        t_min: 1,
        theta_h: 0.3,
        theta_d: 0.1,
        theta_delta: 0.2,
    };
    // each indicator alone blocks the stop
    let seq = [
        ind(0.4, 0.0, 0.0),
        ind(0.0, 0.2, 0.0),
        ind(0.0, 0.0, 0.3),
        ind(0.3, 0.1, 0.2), // all equal to thresholds: stop (≤)
        ind(0.0, 0.0, 0.0),
    ];
    assert_eq!(rule.halting_step(&seq), 4);
    assert_eq!(rule.halting_step(&seq[..3]), 3); // never passes: T_max
                                                 // t_min delays the stop
    let easy = [same(0.0), same(0.0), same(0.0)];
    assert_eq!(rule.halting_step(&easy), 1);
    assert_eq!(ThresholdRule { t_min: 2, ..rule }.halting_step(&easy), 2);
    assert_eq!(ThresholdRule { t_min: 0, ..rule }.halting_step(&easy), 1);
    assert_eq!(ThresholdRule { t_min: 9, ..rule }.halting_step(&easy), 3);
    // NaN never passes
    assert_eq!(rule.halting_step(&[ind(f64::NAN, 0.0, 0.0), same(0.0)]), 2);
    assert_eq!(ThresholdRule::<f64>::never().halting_step(&easy), 3);
    assert_eq!(rule.halting_step(&[]), 0);
    assert!(!rule.stops_at(0, &same(0.0)));
}

#[test]
fn gate_closed_forms() {
    let gate = LearnedGate {
        w: [1.0, -2.0, 0.5],
        b: 0.25,
    };
    let x = ind(0.5, 0.25, 2.0);
    // z = 0.5 − 0.5 + 1 + 0.25 = 1.25
    assert_eq!(gate.logit(&x), 1.25);
    let q = 1.0 / (1.0 + (-1.25f64).exp());
    assert!((gate.prob(&x) - q).abs() < 1e-15);
    assert!((gate.loss(&x, true) + q.ln()).abs() < 1e-14);
    assert!((gate.loss(&x, false) + (1.0 - q).ln()).abs() < 1e-14);
    // z = 0 → ln 2 either way
    let zero = LearnedGate::<f64>::default();
    assert!((zero.loss(&x, true) - std::f64::consts::LN_2).abs() < 1e-15);
    // extreme logits: finite loss, no NaN
    let huge = LearnedGate {
        w: [0.0; 3],
        b: 800.0,
    };
    assert_eq!(huge.loss(&x, true), 0.0);
    assert!((huge.loss(&x, false) - 800.0).abs() < 1e-12);
    assert_eq!(sigmoid(-800.0f64), 0.0);
    assert_eq!(sigmoid(800.0f64), 1.0);
    assert_eq!(sigmoid(0.0f32), 0.5);
}

#[test]
fn gate_halting_and_labels() {
    // q ≥ 0.5 ⇔ z ≥ 0: z = −10·Ĥ + 3 stops once Ĥ ≤ 0.3
    let gate = LearnedGate {
        w: [-10.0, 0.0, 0.0],
        b: 3.0,
    };
    let seq = [same(0.9), same(0.5), same(0.3), same(0.1)];
    assert_eq!(gate.halting_step(&seq), 3);
    assert_eq!(gate.halting_step(&seq[..2]), 2);
    assert_eq!(gate.halting_step(&[ind(f64::NAN, 0.0, 0.0), same(0.9)]), 2);
    // labels: y_t = rank_t ≤ rank_T for t = 1..T
    assert_eq!(gate_labels(&[4, 9, 3, 5]), vec![false, true, true]);
    assert_eq!(gate_labels(&[1, 1]), vec![true]);
    assert!(gate_labels(&[3]).is_empty());
    assert!(gate_labels(&[]).is_empty());
}

#[test]
fn gate_backward_accumulates() {
    let gate = LearnedGate {
        w: [0.3, -0.7, 1.1],
        b: -0.2,
    };
    let xs = [ind(0.2, 0.1, 0.4), ind(0.9, 0.5, 0.05)];
    let ys = [true, false];
    let mut once = LearnedGate::default();
    gate.mean_loss(Some(&mut once), 1.0, &xs, &ys);
    let mut twice = LearnedGate::default();
    gate.mean_loss(Some(&mut twice), 1.0, &xs, &ys);
    gate.mean_loss(Some(&mut twice), 1.0, &xs, &ys);
    for i in 0..3 {
        assert_eq!(twice.w[i], 2.0 * once.w[i]);
    }
    assert_eq!(twice.b, 2.0 * once.b);
    assert_ne!(once.b, 0.0);
    assert_eq!(gate.mean_loss(None, 1.0, &[], &[]), 0.0);
}

proptest! {
    #[test]
    fn gate_gradient_matches_finite_differences(
        seed in 0u64..100_000,
        rows in 1usize..12,
        dloss in 0.1f64..3.0,
    ) {
        let rng = CounterRng::new(seed);
        let u = |c: u64| rng.uniform(0, c);
        let gate = LearnedGate {
            w: [4.0 * u(0) - 2.0, 4.0 * u(1) - 2.0, 4.0 * u(2) - 2.0],
            b: 2.0 * u(3) - 1.0,
        };
        let xs: Vec<Indicators<f64>> = (0..rows as u64)
            .map(|r| ind(u(10 + 3 * r), 0.7 * u(11 + 3 * r), 3.0 * u(12 + 3 * r)))
            .collect();
        let ys: Vec<bool> = (0..rows as u64).map(|r| u(100 + r) < 0.5).collect();
        let mut grad = LearnedGate::default();
        let loss = gate.mean_loss(Some(&mut grad), dloss, &xs, &ys);
        prop_assert!(loss.is_finite() && loss > 0.0);
        let f = |g: &LearnedGate<f64>| dloss * g.mean_loss(None, 1.0, &xs, &ys);
        let h = 1e-6;
        for i in 0..4 {
            let mut plus = gate;
            let mut minus = gate;
            if i < 3 {
                plus.w[i] += h;
                minus.w[i] -= h;
            } else {
                plus.b += h;
                minus.b -= h;
            }
            let fd = (f(&plus) - f(&minus)) / (2.0 * h);
            let analytic = if i < 3 { grad.w[i] } else { grad.b };
            // central differences: O(h²) truncation + O(ε/h) rounding ≈ 1e-10
            prop_assert!((fd - analytic).abs() <= 1e-7 * (1.0 + analytic.abs()),
                "param {}: fd {} analytic {}", i, fd, analytic);
        }
    }
}

/// Two samples, T_max = 2 (see the test body for the hand computation).
fn hand_data() -> (Vec<Indicators<f64>>, Vec<u32>) {
    let indicators = vec![
        // sample A: calm from step 1
        same(0.1),
        same(0.05),
        // sample B: calm only at step 2
        same(0.5),
        same(0.2),
    ];
    // ranks at steps 0, 1, 2
    let ranks = vec![5, 1, 1, 20, 30, 2];
    (indicators, ranks)
}

fn axis() -> Vec<f64> {
    vec![0.0, 0.2, 0.6]
}

#[test]
fn calibration_on_hand_built_data() {
    let (indicators, ranks) = hand_data();
    let grid = ThresholdGrid {
        t_min: 1,
        theta_h: axis(),
        theta_d: axis(),
        theta_delta: axis(),
    };
    let cal = calibrate_thresholds(&indicators, &ranks, 2, 2, &grid, 0.01).unwrap();
    // full depth: A rank 1 → 1, B rank 2 → 1/log2(3)
    let full = (1.0 + 1.0 / 3f64.log2()) / 2.0;
    assert!((cal.full_depth_ndcg10 - full).abs() < 1e-15);
    assert_eq!(cal.curve.len(), 27);
    let at = |h: f64, d: f64, x: f64| {
        cal.curve
            .iter()
            .find(|p| p.rule.theta_h == h && p.rule.theta_d == d && p.rule.theta_delta == x)
            .unwrap()
    };
    // (0.6, 0.6, 0.6): both stop at step 1; A rank 1 → 1, B rank 30 → 0
    let p = at(0.6, 0.6, 0.6);
    assert_eq!((p.ndcg10, p.avg_steps), (0.5, 1.0));
    // (0.2, 0.2, 0.2): A stops at 1, B runs to 2: full accuracy, 1.5 steps
    let p = at(0.2, 0.2, 0.2);
    assert_eq!((p.ndcg10, p.avg_steps), (cal.full_depth_ndcg10, 1.5));
    // (0, 0.6, 0.6): nobody stops early
    let p = at(0.0, 0.6, 0.6);
    assert_eq!((p.ndcg10, p.avg_steps), (cal.full_depth_ndcg10, 2.0));
    // (0.6, 0.2, 0.6): B blocked by θ_D at step 1 → same as (0.2, 0.2, 0.2)
    let p = at(0.6, 0.2, 0.6);
    assert_eq!((p.ndcg10, p.avg_steps), (cal.full_depth_ndcg10, 1.5));
    // 1% tolerance: cheapest full-accuracy setting is 1.5 steps; 7 settings
    // tie, the first in grid order (θ_H outer, ascending axes) is (0.2, 0.2, 0.2)
    let chosen = cal.chosen.unwrap();
    assert_eq!(cal.curve[chosen].rule, at(0.2, 0.2, 0.2).rule);
    assert_eq!(cal.chosen_rule(), at(0.2, 0.2, 0.2).rule);
    // Pareto front: 1 step at 0.5, 1.5 steps at full
    let front: Vec<(f64, f64)> = cal
        .pareto_front()
        .iter()
        .map(|&i| (cal.curve[i].avg_steps, cal.curve[i].ndcg10))
        .collect();
    assert_eq!(front, vec![(1.0, 0.5), (1.5, cal.full_depth_ndcg10)]);
    let table = cal.to_string();
    assert!(table.contains("*"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");

    // 50% tolerance: 0.5 ≥ 0.5·0.8155, so 1 step qualifies
    let cal = calibrate_thresholds(&indicators, &ranks, 2, 2, &grid, 0.5).unwrap();
    assert_eq!(cal.curve[cal.chosen.unwrap()].rule, at(0.6, 0.6, 0.6).rule);

    // a grid where every setting stops both at step 1 and tolerance 0:
    // nothing qualifies, the rule runs at fixed depth
    let all_stop = ThresholdGrid {
        t_min: 1,
        theta_h: vec![1.0],
        theta_d: vec![1.0],
        theta_delta: vec![1.0],
    };
    let cal = calibrate_thresholds(&indicators, &ranks, 2, 2, &all_stop, 0.0).unwrap();
    assert_eq!(cal.chosen, None);
    assert_eq!(cal.chosen_rule(), ThresholdRule::never());
    assert!(cal.to_string().contains("fixed depth"));
    // t_min = 2 forbids the early stop altogether
    let late = ThresholdGrid {
        t_min: 2,
        ..all_stop
    };
    let cal = calibrate_thresholds(&indicators, &ranks, 2, 2, &late, 0.0).unwrap();
    assert_eq!(cal.curve[0].avg_steps, 2.0);
    assert_eq!(cal.chosen, Some(0));
}

#[test]
fn calibration_rejects_bad_input() {
    let (indicators, ranks) = hand_data();
    let grid = ThresholdGrid {
        t_min: 1,
        theta_h: axis(),
        theta_d: axis(),
        theta_delta: axis(),
    };
    assert_eq!(
        calibrate_thresholds(&indicators, &ranks, 2, 0, &grid, 0.01),
        Err(CalibrationError::Empty {
            samples: 2,
            t_max: 0
        })
    );
    assert!(matches!(
        calibrate_thresholds(&indicators[..3], &ranks, 2, 2, &grid, 0.01),
        Err(CalibrationError::ShapeMismatch {
            field: "indicators",
            ..
        })
    ));
    assert!(matches!(
        calibrate_thresholds(&indicators, &ranks[..5], 2, 2, &grid, 0.01),
        Err(CalibrationError::ShapeMismatch { field: "ranks", .. })
    ));
    let mut zero = ranks.clone();
    zero[4] = 0;
    assert_eq!(
        calibrate_thresholds(&indicators, &zero, 2, 2, &grid, 0.01),
        Err(CalibrationError::ZeroRank { sample: 1, step: 1 })
    );
    let bad = ThresholdGrid {
        theta_d: vec![],
        ..grid.clone()
    };
    assert_eq!(
        calibrate_thresholds(&indicators, &ranks, 2, 2, &bad, 0.01),
        Err(CalibrationError::BadGrid { field: "theta_d" })
    );
    assert!(matches!(
        calibrate_thresholds(&indicators, &ranks, 2, 2, &grid, f64::NAN),
        Err(CalibrationError::BadTolerance(_))
    ));
}

proptest! {
    #[test]
    fn calibration_invariants(seed in 0u64..10_000, samples in 1usize..40, t_max in 1usize..5, tol in 0.0f64..0.2) {
        let rng = CounterRng::new(seed);
        let indicators: Vec<Indicators<f32>> = (0..(samples * t_max) as u64)
            .map(|i| Indicators {
                entropy: rng.uniform(1, i) as f32,
                js: (0.7 * rng.uniform(2, i)) as f32,
                delta: rng.uniform(3, i) as f32,
            })
            .collect();
        let ranks: Vec<u32> = (0..(samples * (t_max + 1)) as u64)
            .map(|i| 1 + rng.below(4, i, 15) as u32)
            .collect();
        let axis = vec![0.0f32, 0.25, 0.5, 1.0];
        let grid = ThresholdGrid { t_min: 1, theta_h: axis.clone(), theta_d: axis.clone(), theta_delta: axis };
        let cal = calibrate_thresholds(&indicators, &ranks, samples, t_max, &grid, tol).unwrap();
        prop_assert_eq!(cal.curve.len(), 64);
        let floor = (1.0 - tol) * cal.full_depth_ndcg10;
        for p in &cal.curve {
            // each point equals a direct evaluation of its rule
            let mut ndcg = 0.0;
            let mut steps = 0.0;
            for s in 0..samples {
                let t = p.rule.halting_step(&indicators[s * t_max..(s + 1) * t_max]);
                prop_assert!((1..=t_max).contains(&t));
                ndcg += ndcg_at_10(ranks[s * (t_max + 1) + t]);
                steps += t as f64;
            }
            prop_assert!((p.ndcg10 - ndcg / samples as f64).abs() < 1e-12);
            prop_assert!((p.avg_steps - steps / samples as f64).abs() < 1e-12);
        }
        // θ = 0 on every axis with continuous indicators ≈ full depth, so the
        // chosen point exists and nothing qualifying is cheaper
        if let Some(c) = cal.chosen {
            let chosen = &cal.curve[c];
            prop_assert!(chosen.ndcg10 >= floor);
            for p in &cal.curve {
                if p.ndcg10 >= floor {
                    prop_assert!(p.avg_steps >= chosen.avg_steps);
                }
            }
        } else {
            prop_assert!(cal.curve.iter().all(|p| p.ndcg10 < floor));
        }
        // determinism
        let again = calibrate_thresholds(&indicators, &ranks, samples, t_max, &grid, tol).unwrap();
        prop_assert_eq!(again, cal);
    }
}

#[test]
fn quantile_grid() {
    // entropies 0.0 … 0.9 (10 values), js all 0.2, delta with a NaN
    let inds: Vec<Indicators<f64>> = (0..10)
        .map(|i| {
            ind(
                f64::from(i) / 10.0,
                0.2,
                if i == 3 { f64::NAN } else { f64::from(i) },
            )
        })
        .collect();
    let g = ThresholdGrid::from_quantiles(&inds, 4, 1);
    // indices ⌊i·9/3⌋ = 0, 3, 6, 9
    assert_eq!(g.theta_h, vec![0.0, 0.3, 0.6, 0.9, f64::INFINITY]);
    assert_eq!(g.theta_d, vec![0.2, f64::INFINITY]);
    // 9 finite deltas (0, 1, 2, 4, …, 9): indices ⌊i·8/3⌋ = 0, 2, 5, 8
    assert_eq!(g.theta_delta, vec![0.0, 2.0, 6.0, 9.0, f64::INFINITY]);
    assert_eq!(g.t_min, 1);
    let g = ThresholdGrid::<f64>::from_quantiles(&[], 4, 2);
    assert_eq!(g.theta_h, vec![f64::INFINITY]);
    let g = ThresholdGrid::from_quantiles(&inds, 1, 1);
    assert_eq!(g.theta_h, vec![0.0, f64::INFINITY]);
    // an all-+∞ grid point never constrains: it halts every row at t_min
    let (indicators, ranks) = hand_data();
    let grid = ThresholdGrid::from_quantiles(&indicators, 3, 1);
    let cal = calibrate_thresholds(&indicators, &ranks, 2, 2, &grid, 0.01).unwrap();
    let last = cal.curve.last().unwrap();
    assert_eq!(last.rule.theta_h, f64::INFINITY);
    assert_eq!(last.avg_steps, 1.0);
}
