//! The cosine learning rate (`TrainConfig::lr_schedule`): the trainer
//! anneals over the whole epoch budget, step by step, and the setting is
//! written to configs only when it is not the constant default.
//! (`tests/train_resume.rs` resumes part-way down the schedule.)

mod common;

use dtrec::data::{Interactions, Split};
use dtrec::model::{Family, ModelConfig};
use dtrec::train::{LrSchedule, TrainConfig, TrainState};

const LR: f64 = 1e-3;

fn setup(batch_size: usize, max_epochs: usize) -> (Interactions, Split, ModelConfig, TrainConfig) {
    let (data, split) = common::synthetic_loo(80);
    let model = common::small_model(ModelConfig::reasoning(
        data.num_items(),
        Family::RearecErl,
        1,
    ));
    let train = TrainConfig {
        max_epochs,
        batch_size,
        threads: Some(2),
        seed: 3,
        lr: LR,
        lr_schedule: LrSchedule::Cosine,
        ..TrainConfig::default()
    };
    (data, split, model, train)
}

/// With one optimizer step per epoch and three epochs, the schedule is
/// S = 3 steps, so epochs 1, 2 and 3 step with lr·½(1 + cos(π(t − 1)/3)),
/// i.e. lr, ¾·lr and ¼·lr. A constant-rate run given exactly those rates
/// epoch by epoch must end with the same bits.
#[test]
fn each_step_uses_the_half_cosine_of_its_place_in_the_epoch_budget() {
    let (data, split, model, cosine) = setup(1 << 20, 3);
    assert!(split.train.len() <= cosine.batch_size, "one step per epoch");
    let mut annealed = TrainState::new(model.clone(), &cosine).unwrap();
    common::train_until(&mut annealed, &data, &split, &cosine, 3);
    assert_eq!(annealed.adam.t, 3);
    assert_eq!(annealed.adam.config.decay_steps, 3);

    let mut by_hand = TrainState::new(model, &cosine).unwrap();
    for epoch in 0..3 {
        let rate = LR * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / 3.0).cos());
        let constant = TrainConfig {
            lr: rate,
            lr_schedule: LrSchedule::Constant,
            ..cosine.clone()
        };
        common::train_until(&mut by_hand, &data, &split, &constant, epoch + 1);
        if epoch == 0 {
            assert_eq!(rate, LR);
        }
    }
    assert_eq!(by_hand.model.params, annealed.model.params);
    assert_eq!(by_hand.adam.m, annealed.adam.m);

    let mut flat = TrainState::new(annealed.model.config().clone(), &cosine).unwrap();
    let constant = TrainConfig {
        lr_schedule: LrSchedule::Constant,
        ..cosine.clone()
    };
    common::train_until(&mut flat, &data, &split, &constant, 3);
    assert_ne!(
        flat.model.params, annealed.model.params,
        "the schedule acts"
    );
}

/// The schedule's length counts every batch of every epoch the budget
/// allows, the last one partial.
#[test]
fn the_schedule_spans_the_epoch_budget_in_batches() {
    let (data, split, model, cosine) = setup(64, 5);
    let batches = split.train.len().div_ceil(64);
    assert!(batches > 1 && split.train.len() % 64 != 0);
    let mut state = TrainState::new(model, &cosine).unwrap();
    common::train_until(&mut state, &data, &split, &cosine, 1);
    assert_eq!(state.adam.config.decay_steps, (5 * batches) as u64);
    assert_eq!(state.adam.t, batches as u64);
}

#[test]
fn the_constant_default_is_not_written_and_cosine_round_trips() {
    let default = serde_json::to_string(&TrainConfig::default()).unwrap();
    assert!(!default.contains("lr_schedule"), "{default}");
    let cosine = TrainConfig {
        lr_schedule: LrSchedule::Cosine,
        ..TrainConfig::default()
    };
    let text = serde_json::to_string(&cosine).unwrap();
    assert!(text.contains(r#""lr_schedule":"cosine""#), "{text}");
    let read: TrainConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(read, cosine);
    let err = serde_json::from_str::<TrainConfig>(r#"{"lr_schedule":"linear"}"#).unwrap_err();
    assert!(
        err.to_string().contains("constant") && err.to_string().contains("cosine"),
        "{err}"
    );
}
