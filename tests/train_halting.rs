//! The halting stage after training: the threshold sweep's predictions
//! (from full-depth traces) agree with what adaptive evaluation measures
//! (per-row early exit), the chosen thresholds honour the tolerance on
//! validation, the gate fit lowers its loss, and the compute accounting is
//! consistent with the steps taken.

use dtrec::data::batches_in_order;
use dtrec::data::{leave_one_out, synthetic::SyntheticConfig};
use dtrec::model::halting::fit::{fit_gate, trace};
use dtrec::model::halting::IndicatorBasis;
use dtrec::model::halting::LearnedGate;
use dtrec::model::{Family, HaltingPolicy, ModelConfig};
use dtrec::model::{HaltingConfig, HaltingRule};
use dtrec::train::{train, TrainConfig};

#[test]
fn calibration_matches_adaptive_evaluation() {
    let synth = SyntheticConfig {
        num_users: 150,
        ..SyntheticConfig::default()
    }
    .generate()
    .unwrap();
    let data = &synth.interactions;
    let split = leave_one_out(data).unwrap();
    let model = ModelConfig {
        d: 16,
        inner: 32,
        max_len: 12,
        ..ModelConfig::reasoning(data.num_items(), Family::Dtrec, 3)
    };
    let config = TrainConfig {
        max_epochs: 3,
        threads: Some(2),
        eval_batch_size: 37, // batches must not matter
        halting: HaltingConfig {
            tolerance: 0.05,
            ..HaltingConfig::default()
        },
        ..TrainConfig::default()
    };
    let outcome = train(data, &split, model, &config, &mut |_| {}).unwrap();
    let h = outcome
        .halting
        .as_ref()
        .expect("reasoning models are calibrated");
    let cal = &h.calibration;
    let rule = |r: HaltingRule| h.rules.iter().find(|x| x.rule == r).unwrap();

    // full depth: the sweep's reference equals the fixed-depth evaluation
    let fixed = rule(HaltingRule::Fixed);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9;
    assert!(close(cal.full_depth_ndcg10, fixed.valid.ndcg(10).unwrap()));
    assert_eq!(fixed.valid_compute.avg_steps, 3.0);
    assert_eq!(fixed.test_compute.relative_reasoning(), 1.0);

    // the chosen thresholds: predicted = measured, within tolerance
    let threshold = rule(HaltingRule::Threshold);
    let measured = threshold.valid.ndcg(10).unwrap();
    match cal.chosen {
        Some(i) => {
            let p = &cal.curve[i];
            assert!(close(p.ndcg10, measured), "{} vs {measured}", p.ndcg10);
            assert!(close(p.avg_steps, threshold.valid_compute.avg_steps));
            assert!(measured >= (1.0 - cal.tolerance) * cal.full_depth_ndcg10 - 1e-12);
            assert!(p.avg_steps <= 3.0);
        }
        None => assert_eq!(threshold.policy, HaltingPolicy::Fixed),
    }
    // every grid point: fewer steps never costs more reasoning FLOPs
    let c = &threshold.valid_compute;
    assert!(c.reasoning_flops <= c.fixed_reasoning_flops * (1.0 + 1e-12));
    assert_eq!(
        c.steps_histogram.iter().sum::<u64>(),
        split.valid.len() as u64
    );

    // the served policy is the configured (default: threshold) one
    assert_eq!(h.policy, threshold.policy);
    assert_eq!(outcome.test, threshold.test);
    assert!(outcome.prototypes.is_some());

    // learned gate: the fit beats the untrained gate on its own loss
    // on the training samples the trainer fits it on: evenly strided
    let take = config.halting.gate_samples.min(split.train.len());
    let strided: Vec<_> = (0..take)
        .map(|i| split.train[i * split.train.len() / take])
        .collect();
    let max_len = outcome.model.config().max_len;
    let batches = batches_in_order(data, &strided, 64, max_len);
    let items = IndicatorBasis::Items;
    let (gate, loss) = fit_gate(&outcome.model, &items, &batches, &config.halting);
    assert_eq!(gate, h.gate, "the fit is deterministic");
    let (ind, ranks) = trace(&outcome.model, &items, &batches);
    assert_eq!(ind.len() * 4, ranks.len() * 3);
    let untrained = LearnedGate::<f32>::default();
    let labels: Vec<bool> = ranks
        .chunks_exact(4)
        .flat_map(dtrec::model::halting::gate_labels)
        .collect();
    let lambda = config.halting.gate_lambda as f32;
    let base = f64::from(lambda * untrained.mean_loss(None, 1.0, &ind, &labels));
    assert!(loss < base, "fitted {loss} vs untrained {base}");
}
