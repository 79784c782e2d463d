//! The parameters' moving average (`TrainConfig::ema_decay`): it follows
//! the optimizer's steps by the EMA recursion, validation scores it, the
//! best epoch keeps it, and the setting is checked and written to configs
//! only when set. (`tests/train_resume.rs` resumes it from a checkpoint.)

mod common;

use dtrec::data::{Interactions, Split};
use dtrec::eval::evaluate;
use dtrec::model::{Family, Model, ModelConfig, Params};
use dtrec::train::{TrainConfig, TrainState};

const DECAY: f64 = 0.9;

fn setup(batch_size: usize) -> (Interactions, Split, ModelConfig, TrainConfig) {
    let (data, split) = common::synthetic_loo(80);
    let model = common::small_model(ModelConfig::reasoning(
        data.num_items(),
        Family::RearecErl,
        1,
    ));
    let train = TrainConfig {
        max_epochs: 3,
        batch_size,
        threads: Some(2),
        seed: 7,
        ema_decay: Some(DECAY),
        ..TrainConfig::default()
    };
    (data, split, model, train)
}

fn values(params: &Params<f32>) -> Vec<f64> {
    let mut out = Vec::new();
    params.visit(|_, t| out.extend(t.data.iter().map(|&x| x as f64)));
    out
}

/// With one optimizer step per epoch, θ₀ (the initialisation), θ₁ and θ₂
/// are the parameters after 0, 1 and 2 epochs, and after two steps the
/// average must be β²θ₀ + β(1 − β)θ₁ + (1 − β)θ₂, the closed form of the
/// recursion (computed here in f64, the trainer runs it in f32).
#[test]
fn the_average_is_the_closed_form_of_the_recursion() {
    let (data, split, model, train) = setup(1 << 20);
    assert!(split.train.len() <= train.batch_size, "one step per epoch");
    let theta0 = values(&Model::new(model.clone(), train.seed).unwrap().params);
    let mut one = TrainState::new(model.clone(), &train).unwrap();
    common::train_until(&mut one, &data, &split, &train, 1);
    let mut two = TrainState::new(model, &train).unwrap();
    common::train_until(&mut two, &data, &split, &train, 2);
    assert_eq!(two.adam.t, 2);
    let (theta1, theta2) = (values(&one.model.params), values(&two.model.params));
    let average = values(two.ema.as_ref().expect("ema_decay is set"));
    let b = DECAY;
    let mut moved = 0;
    for i in 0..average.len() {
        let expected = b * b * theta0[i] + b * (1.0 - b) * theta1[i] + (1.0 - b) * theta2[i];
        assert!(
            (average[i] - expected).abs() <= 1e-6 * (1.0 + expected.abs()),
            "value {i}: average {} expected {expected}",
            average[i]
        );
        moved += usize::from(theta2[i] != theta0[i]);
    }
    assert!(moved > average.len() / 2, "training moved the parameters");
    assert_ne!(average, theta2, "the average is not the raw parameters");
}

/// Validation scored the average, and the best epoch kept that average.
#[test]
fn validation_scores_the_average_and_the_best_epoch_keeps_it() {
    let (data, split, model, train) = setup(64);
    let mut state = TrainState::new(model, &train).unwrap();
    common::train_until(&mut state, &data, &split, &train, 1);
    let ema = state.ema.clone().expect("ema_decay is set");
    assert_ne!(ema, state.model.params);
    assert_eq!(state.best.map(|(epoch, _)| epoch), Some(0));
    assert_eq!(state.best_params.as_ref(), Some(&ema));
    let logged = state.history[0].valid.clone().expect("validated");
    let scored = |params: Params<f32>| {
        let model = Model::from_params(state.model.config().clone(), params).unwrap();
        evaluate(&model, &data, &split.valid, 256, false)
            .unwrap()
            .metrics
    };
    assert_eq!(scored(ema), logged, "validation scored the average");
    assert_ne!(
        scored(state.model.params.clone()),
        logged,
        "the raw parameters score differently"
    );
}

#[test]
fn a_decay_outside_zero_one_is_a_config_error_and_the_default_is_not_written() {
    for decay in [0.0, 1.0, -0.5, f64::NAN] {
        let config = TrainConfig {
            ema_decay: Some(decay),
            ..TrainConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.contains("`ema_decay`"), "{decay}: {err}");
        let (_, _, model, _) = setup(64);
        assert!(TrainState::new(model, &config).is_err(), "{decay}");
    }
    let default = serde_json::to_string(&TrainConfig::default()).unwrap();
    assert!(!default.contains("ema_decay"), "{default}");
    let set = TrainConfig {
        ema_decay: Some(0.999),
        ..TrainConfig::default()
    };
    let read: TrainConfig = serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
    assert_eq!(read, set);
}
