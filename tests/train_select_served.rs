//! Choosing epochs under the served halting rule
//! (`TrainConfig::select_on = served`): every epoch's validation is the
//! threshold rule calibrated at that epoch, so the kept epoch's figure is
//! exactly the served rule's validation figure after training; training
//! itself is unchanged; the setting is checked and written to configs only
//! when set.

mod common;

use dtrec::data::{Interactions, Split};
use dtrec::eval::Metrics;
use dtrec::model::halting::indicators::IndicatorSpace;
use dtrec::model::HaltingRule;
use dtrec::model::{Family, ModelConfig};
use dtrec::train::{train, EpochSelection, TrainConfig, TrainOutcome, TrainState};

fn setup(family: Family, t_max: usize) -> (Interactions, Split, ModelConfig, TrainConfig) {
    let (data, split) = common::synthetic_loo(120);
    let model = common::small_model(ModelConfig::reasoning(data.num_items(), family, t_max));
    let train = TrainConfig {
        max_epochs: 4,
        patience: 100,
        threads: Some(2),
        seed: 11,
        ..TrainConfig::default()
    };
    (data, split, model, train)
}

/// `base` with its epochs chosen under the served halting rule.
fn served_from(base: &TrainConfig) -> TrainConfig {
    TrainConfig {
        select_on: EpochSelection::Served,
        ..base.clone()
    }
}

/// Every epoch's validation metrics.
fn epoch_scores(outcome: &TrainOutcome) -> Vec<Option<Metrics>> {
    outcome.history.iter().map(|e| e.valid.clone()).collect()
}

fn rule_valid(outcome: &TrainOutcome, rule: HaltingRule) -> f64 {
    let halting = outcome.halting.as_ref().expect("a reasoning model");
    let result = halting.rules.iter().find(|r| r.rule == rule).unwrap();
    result.valid.ndcg(10).unwrap()
}

/// Under `served`, the best epoch's validation NDCG@10 is the threshold
/// rule's validation figure on the kept model, to the bit, and is the best
/// of the epochs; under `fixed-depth`, it is the fixed rule's. Both runs
/// train the same parameters (the selection only reads them).
#[test]
fn served_selection_scores_each_epoch_as_the_model_is_served() {
    let (data, split, model, fixed) = setup(Family::Dtrec, 2);
    let served = served_from(&fixed);
    let by_fixed = train(&data, &split, model.clone(), &fixed, &mut |_| {}).unwrap();
    let by_served = train(&data, &split, model.clone(), &served, &mut |_| {}).unwrap();

    let best = |o: &TrainOutcome| o.valid.ndcg(10).unwrap();
    assert_eq!(best(&by_fixed), rule_valid(&by_fixed, HaltingRule::Fixed));
    assert_eq!(
        best(&by_served),
        rule_valid(&by_served, HaltingRule::Threshold)
    );
    for outcome in [&by_fixed, &by_served] {
        let epochs: Vec<f64> = outcome
            .history
            .iter()
            .map(|e| e.valid.as_ref().unwrap().ndcg(10).unwrap())
            .collect();
        assert_eq!(epochs.len(), 4);
        assert!(epochs.iter().all(|&v| v <= best(outcome)), "{epochs:?}");
        assert_eq!(epochs[outcome.best_epoch], best(outcome));
    }

    // on this data the calibrated rule stops early, so the two criteria differ
    let served_rule = by_served.halting.as_ref().unwrap().rules.iter();
    let threshold = served_rule
        .clone()
        .find(|r| r.rule == HaltingRule::Threshold);
    assert!(threshold.unwrap().valid_compute.avg_steps < 2.0);
    assert_ne!(epoch_scores(&by_fixed), epoch_scores(&by_served));

    let mut states = [&fixed, &served].map(|c| TrainState::new(model.clone(), c).unwrap());
    for (state, config) in states.iter_mut().zip([&fixed, &served]) {
        common::train_until(state, &data, &split, config, 4);
    }
    let [a, b] = states;
    assert_eq!(a.model.params, b.model.params, "training is unchanged");
    let losses = |s: &TrainState| s.history.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&a), losses(&b));
}

/// SASRec has no halting: `served` validates it at its only depth.
#[test]
fn served_selection_of_sasrec_is_fixed_depth() {
    let (data, split, _, fixed) = setup(Family::Dtrec, 2);
    let model = common::small_model(ModelConfig::sasrec(data.num_items()));
    let served = served_from(&fixed);
    let a = train(&data, &split, model.clone(), &fixed, &mut |_| {}).unwrap();
    let b = train(&data, &split, model, &served, &mut |_| {}).unwrap();
    assert_eq!(epoch_scores(&a), epoch_scores(&b));
    assert_eq!(a.best_epoch, b.best_epoch);
}

#[test]
fn served_selection_refuses_what_is_fitted_after_training() {
    let served = served_from(&TrainConfig::default());
    assert_eq!(served.validate(), Ok(()));
    let mut learned = served.clone();
    learned.halting.rule = HaltingRule::Learned;
    let err = learned.validate().unwrap_err();
    assert!(
        err.contains("`select_on = served`") && err.contains("`learned`"),
        "{err}"
    );
    let mut prototypes = served.clone();
    prototypes.halting.indicators = IndicatorSpace::Prototypes;
    let err = prototypes.validate().unwrap_err();
    assert!(
        err.contains("`select_on = served`") && err.contains("`prototypes`"),
        "{err}"
    );
}

#[test]
fn the_setting_is_written_only_when_set_and_round_trips() {
    let default = serde_json::to_string(&TrainConfig::default()).unwrap();
    assert!(!default.contains("select_on"), "{default}");
    let served = served_from(&TrainConfig::default());
    let json = serde_json::to_string(&served).unwrap();
    assert!(json.contains(r#""select_on":"served""#), "{json}");
    let back: TrainConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, served);
    let old: TrainConfig = serde_json::from_str(&default).unwrap();
    assert_eq!(old.select_on, EpochSelection::FixedDepth);
}
