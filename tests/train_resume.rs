//! Training is deterministic and resumable: the same seed and thread count
//! give bit-identical runs, and a run interrupted after an epoch, saved to a
//! checkpoint file and resumed from it ends with exactly the parameters,
//! optimizer moments, parameter average and epoch log of the uninterrupted
//! run, also part-way down a cosine learning-rate schedule.

mod common;

use dtrec::data::{Interactions, Split};
use dtrec::model::ModelConfig;
use dtrec::train::{load_checkpoint, save_checkpoint, LrSchedule, TrainConfig, TrainState};

fn setup() -> (Interactions, Split, ModelConfig, TrainConfig) {
    let (data, split) = common::synthetic_loo(80);
    let model = common::small_model(ModelConfig::sasrec(data.num_items()));
    let train = TrainConfig {
        max_epochs: 3,
        batch_size: 64,
        threads: Some(2),
        seed: 5,
        ..TrainConfig::default()
    };
    (data, split, model, train)
}

/// The timing-free part of the epoch log: loss bits and validation metrics.
fn losses(state: &TrainState) -> Vec<(u64, Option<dtrec::eval::Metrics>)> {
    state
        .history
        .iter()
        .map(|l| (l.train_loss.to_bits(), l.valid.clone()))
        .collect()
}

#[test]
fn same_seed_same_bits() {
    let (data, split, model, train) = setup();
    let mut a = TrainState::new(model.clone(), &train).unwrap();
    let mut b = TrainState::new(model, &train).unwrap();
    common::train_until(&mut a, &data, &split, &train, 2);
    common::train_until(&mut b, &data, &split, &train, 2);
    assert_eq!(a.model.params, b.model.params);
    assert_eq!(losses(&a), losses(&b));
}

/// Also with a moving average of the parameters (`ema_decay`), which the
/// checkpoint carries, and with a cosine learning rate, whose position the
/// optimizer's step count and the saved config restore.
#[test]
fn resume_from_checkpoint_is_bit_identical() {
    let (data, split, model, plain) = setup();
    let averaged = TrainConfig {
        ema_decay: Some(0.9),
        ..plain.clone()
    };
    let cosine = TrainConfig {
        lr_schedule: LrSchedule::Cosine,
        ..plain.clone()
    };
    for train in [plain, averaged, cosine] {
        resume_matches_straight_run(&data, &split, &model, &train);
    }
}

fn resume_matches_straight_run(
    data: &Interactions,
    split: &Split,
    model: &ModelConfig,
    train: &TrainConfig,
) {
    let vocab = data.item_ids()[1..].to_vec();

    let mut straight = TrainState::new(model.clone(), train).unwrap();
    common::train_until(&mut straight, data, split, train, 3);

    let mut first = TrainState::new(model.clone(), train).unwrap();
    common::train_until(&mut first, data, split, train, 1);
    let path =
        std::env::temp_dir().join(format!("dtrec-resume-{}.safetensors", std::process::id()));
    save_checkpoint(&path, &first, train, &vocab).unwrap();
    let (mut resumed, saved_train, saved_vocab) = load_checkpoint(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(&saved_train, train);
    assert_eq!(saved_vocab, vocab);
    assert_eq!(resumed.epoch, 1);
    assert_eq!(resumed.ema, first.ema);
    assert_eq!(resumed.ema.is_some(), train.ema_decay.is_some());
    drop(first);
    common::train_until(&mut resumed, data, split, &saved_train, 3);

    assert_eq!(resumed.epoch, straight.epoch);
    assert_eq!(
        resumed.model.params, straight.model.params,
        "parameters differ after resuming"
    );
    assert_eq!(resumed.adam.m, straight.adam.m);
    assert_eq!(resumed.adam.v, straight.adam.v);
    assert_eq!(resumed.adam.t, straight.adam.t);
    assert_eq!(resumed.ema, straight.ema);
    assert_eq!(resumed.best, straight.best);
    assert_eq!(resumed.best_params, straight.best_params);
    assert_eq!(losses(&resumed), losses(&straight));
}
