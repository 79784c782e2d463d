//! Every family's training arithmetic, pinned: each recipe shape (SASRec;
//! ReaRec-ERL with the parameter average; ReaRec-PRL with its contrastive
//! view; DTRec with `cluster-soft` HPS, PRL's contrastive view and step
//! temperature growth; DTRec with `prototype` HPS) trains for four epochs
//! on the built-in synthetic data with two threads, and an FNV-1a hash of
//! the bits of every epoch's training loss and validation NDCG@10 and of
//! the final parameters (and the average, where kept) must equal the
//! constant recorded when this test was written (commit c608f40, before
//! the upper floors were restructured). Any change to what training
//! computes breaks it; a change that only moves code must not.

mod common;

use dtrec::model::{Family, ModelConfig};
use dtrec::model::{HpsConfig, HpsVariant};
use dtrec::train::{TrainConfig, TrainState};

fn fnv(hash: &mut u64, bits: u64) {
    for byte in bits.to_le_bytes() {
        *hash ^= byte as u64;
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

/// The hash of a four-epoch run of `model` with `train` (epochs and threads
/// set here).
fn run_hash(model: ModelConfig, train: TrainConfig) -> u64 {
    let (data, split) = common::synthetic_loo(240);
    let model = ModelConfig {
        n_items: data.num_items(),
        ..common::small_model(model)
    };
    let train = TrainConfig {
        max_epochs: 4,
        patience: 10,
        batch_size: 64,
        threads: Some(2),
        seed: 11,
        ..train
    };
    let mut state = TrainState::new(model, &train).unwrap();
    common::train_until(&mut state, &data, &split, &train, 4);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for e in &state.history {
        fnv(&mut h, e.train_loss.to_bits());
        let ndcg = e.valid.as_ref().and_then(|m| m.ndcg(10)).unwrap_or(-1.0);
        fnv(&mut h, ndcg.to_bits());
    }
    state
        .model
        .params
        .visit(|_, t| t.data.iter().for_each(|x| fnv(&mut h, x.to_bits() as u64)));
    if let Some(ema) = &state.ema {
        ema.visit(|_, t| t.data.iter().for_each(|x| fnv(&mut h, x.to_bits() as u64)));
    }
    h
}

#[test]
fn sasrec_training_bits_are_unchanged() {
    let h = run_hash(
        ModelConfig {
            tau: 0.1,
            ..ModelConfig::sasrec(1)
        },
        TrainConfig::default(),
    );
    assert_eq!(h, 0x484e015b3703ad65, "SASRec training arithmetic changed");
}

#[test]
fn erl_training_bits_are_unchanged() {
    let h = run_hash(
        ModelConfig {
            tau: 0.1,
            ..ModelConfig::reasoning(1, Family::RearecErl, 2)
        },
        TrainConfig {
            ema_decay: Some(0.999),
            ..TrainConfig::default()
        },
    );
    assert_eq!(
        h, 0x7b4b905c9b1291b3,
        "ReaRec-ERL training arithmetic changed"
    );
}

#[test]
fn prl_training_bits_are_unchanged() {
    let h = run_hash(
        ModelConfig {
            tau: 0.1,
            ..ModelConfig::reasoning(1, Family::RearecPrl, 2)
        },
        TrainConfig::default(),
    );
    assert_eq!(
        h, 0x5438ba93f0b5c712,
        "ReaRec-PRL training arithmetic changed"
    );
}

#[test]
fn dtrec_cluster_soft_training_bits_are_unchanged() {
    let h = run_hash(
        ModelConfig {
            tau: 0.1,
            dtrec_contrastive: true,
            ..ModelConfig::reasoning(1, Family::Dtrec, 2)
        },
        TrainConfig {
            hps: HpsConfig {
                variant: HpsVariant::ClusterSoft,
                lambda: 1.0,
                epsilon: 0.9,
                step_tau_growth: 5.0,
                k_min: 4,
                ..HpsConfig::default()
            },
            ..TrainConfig::default()
        },
    );
    assert_eq!(
        h, 0x47ad32d984bc4caa,
        "DTRec (cluster-soft) training arithmetic changed"
    );
}

#[test]
fn dtrec_prototype_training_bits_are_unchanged() {
    let h = run_hash(
        ModelConfig::reasoning(1, Family::Dtrec, 3),
        TrainConfig {
            hps: HpsConfig {
                variant: HpsVariant::Prototype,
                k_min: 4,
                ..HpsConfig::default()
            },
            ..TrainConfig::default()
        },
    );
    assert_eq!(
        h, 0xdd79612d5ac2772e,
        "DTRec (prototype) training arithmetic changed"
    );
}
