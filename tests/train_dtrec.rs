//! DTRec training: the HPS objective the trainer plugs into the model is
//! exactly the per-step losses of `model::loss::hps` (weights, gathering of
//! each step's states, scattering of their gradients), the prototype
//! schedule follows the configuration, and a DTRec run with prototypes
//! resumes bit-identically from a checkpoint.

mod common;

use dtrec::data::{Interactions, Split};
use dtrec::kernels::rng::CounterRng;
use dtrec::model::loss::hps::HpsLoss;
use dtrec::model::loss::hps::{
    cluster_soft_loss, prototype_loss, ClusterMembers, ClusterTarget, ItemGradient,
};
use dtrec::model::prototypes::cluster_items;
use dtrec::model::prototypes::Prototypes;
use dtrec::model::{Family, Model, ModelConfig, StateLossArgs};
use dtrec::model::{HpsConfig, HpsVariant};
use dtrec::train::{load_checkpoint, run, save_checkpoint, TrainConfig, TrainError, TrainState};

fn small_model(n_items: usize, t_max: usize) -> Model {
    let cfg = ModelConfig {
        d: 8,
        inner: 16,
        max_len: 6,
        ..ModelConfig::reasoning(n_items, Family::Dtrec, t_max)
    };
    Model::new(cfg, 3).unwrap()
}

/// λ·(1/(T − t₀))·Σ_{t = t₀ … T−1} of the library's per-step losses
/// (t₀ = `config.first_step`), computed step by step, step t at temperature
/// α^{T−t} (the model's τ and τ_p are 1; α = `config.step_tau_growth`) and,
/// for `cluster-soft`, with ε_t on a line from `epsilon` at step 0 to
/// `epsilon_last` (when set) at step T − 1, the configured cluster target
/// and the configured item gradient.
#[allow(clippy::too_many_arguments)]
fn reference(
    variant: HpsVariant,
    protos: &Prototypes<f32>,
    config: &HpsConfig,
    states: &[f32],
    targets: &[u32],
    items: &[f32],
    t_max: usize,
    d: usize,
    dloss: f32,
) -> (f64, Vec<f32>, Vec<f32>) {
    let rows = targets.len();
    let s = t_max + 1;
    let mut dstates = vec![0.0f32; states.len()];
    let mut ditems = vec![0.0f32; items.len()];
    let first = config.first_step;
    let weight = config.lambda as f32 / (t_max - first) as f32;
    let mut total = 0.0;
    for t in first..t_max {
        let h: Vec<f32> = (0..rows)
            .flat_map(|r| states[(r * s + t) * d..(r * s + t + 1) * d].to_vec())
            .collect();
        let mut dh = vec![0.0f32; rows * d];
        let level = &protos.levels()[t];
        let temperature = config.step_tau_growth.powi((t_max - t) as i32) as f32;
        let mean = match variant {
            HpsVariant::Prototype => {
                let clusters: Vec<u32> = targets
                    .iter()
                    .map(|&y| level.item_cluster[y as usize - 1])
                    .collect();
                prototype_loss(
                    Some(&mut dh),
                    &h,
                    &level.centroids,
                    &clusters,
                    level.k,
                    d,
                    temperature,
                    dloss * weight * rows as f32,
                )
            }
            _ => {
                let members = ClusterMembers::new(&level.item_cluster, level.k);
                cluster_soft_loss(
                    Some(&mut dh),
                    Some(&mut ditems),
                    &h,
                    items,
                    targets,
                    &members,
                    d,
                    match config.epsilon_last {
                        None => config.epsilon as f32,
                        Some(last) => {
                            (config.epsilon
                                + (last - config.epsilon) * t as f64 / (t_max - 1) as f64)
                                as f32
                        }
                    },
                    config.cluster_target,
                    temperature,
                    dloss * weight * rows as f32,
                    match config.item_gradient {
                        ItemGradient::TargetLast if t == t_max - 1 => ItemGradient::Target,
                        ItemGradient::TargetLast => ItemGradient::Full,
                        option => option,
                    },
                )
            }
        };
        total += f64::from(mean) * f64::from(weight) * rows as f64;
        for r in 0..rows {
            for j in 0..d {
                dstates[(r * s + t) * d + j] += dh[r * d + j];
            }
        }
    }
    (total, dstates, ditems)
}

#[test]
fn hps_objective_is_the_weighted_mean_of_the_step_losses() {
    let (n, t_max, d, rows) = (40, 3, 8, 7);
    let model = small_model(n, t_max);
    let cases = [HpsVariant::Prototype, HpsVariant::ClusterSoft]
        .into_iter()
        .flat_map(|v| {
            [
                (v, 0, 1.0, None, ItemGradient::Full, ClusterTarget::Uniform),
                (v, 1, 1.0, None, ItemGradient::Full, ClusterTarget::Uniform),
                (v, 0, 3.0, None, ItemGradient::Full, ClusterTarget::Uniform),
                (
                    v,
                    0,
                    1.0,
                    Some(0.9),
                    ItemGradient::Full,
                    ClusterTarget::Uniform,
                ),
                (
                    v,
                    0,
                    3.0,
                    None,
                    ItemGradient::Target,
                    ClusterTarget::Uniform,
                ),
                (v, 0, 1.0, None, ItemGradient::Off, ClusterTarget::Uniform),
                (
                    v,
                    0,
                    3.0,
                    None,
                    ItemGradient::TargetLast,
                    ClusterTarget::Uniform,
                ),
                (v, 0, 3.0, None, ItemGradient::Full, ClusterTarget::Marginal),
                (
                    v,
                    1,
                    1.0,
                    Some(0.9),
                    ItemGradient::Target,
                    ClusterTarget::Marginal,
                ),
            ]
        });
    for (variant, first_step, step_tau_growth, epsilon_last, item_gradient, cluster_target) in cases
    {
        let config = HpsConfig {
            variant,
            lambda: 0.7,
            k_min: 4,
            first_step,
            step_tau_growth,
            epsilon: 0.3,
            epsilon_last,
            item_gradient,
            cluster_target,
            ..HpsConfig::default()
        };
        let protos = cluster_items(
            None,
            &model,
            &config.prototype_config(model.config().t_max, 11),
        )
        .unwrap();
        assert_eq!(protos.levels().len(), t_max + 1);
        assert_eq!(protos.levels()[0].k, 4);
        assert_eq!(protos.levels()[t_max].k, n);
        let rng = CounterRng::new(9);
        let states: Vec<f32> = (0..rows * (t_max + 1) * d)
            .map(|i| rng.normal(1, i as u64) as f32)
            .collect();
        let targets: Vec<u32> = (0..rows as u32).map(|r| 1 + (r * 13) % n as u32).collect();
        let items = &model.params.item_emb.data[d..];
        let hps = HpsLoss::new(&protos, &model, &config);
        let mut dstates = vec![0.0f32; states.len()];
        let mut ditems = vec![0.0f32; items.len()];
        let dloss = 0.25f32;
        let loss = hps.eval(StateLossArgs {
            states: &states,
            targets: &targets,
            items,
            dstates: Some(&mut dstates),
            ditems: Some(&mut ditems),
            dloss,
        });
        let (want, want_ds, want_di) = reference(
            variant, &protos, &config, &states, &targets, items, t_max, d, dloss,
        );
        assert!(
            (loss - want).abs() <= 1e-6 * want.abs(),
            "{variant:?}: {loss} vs {want}"
        );
        assert!(loss > 0.0);
        assert_eq!(dstates, want_ds, "{variant:?}: state gradients");
        assert_eq!(ditems, want_di, "{variant:?}: item gradients");
        // the final step (item level) gets no HPS gradient, nor do the
        // states before the first supervised one; every supervised one does
        let s = t_max + 1;
        for r in 0..rows {
            for t in 0..s {
                let g = &dstates[(r * s + t) * d..(r * s + t + 1) * d];
                let supervised = (first_step..t_max).contains(&t);
                assert_eq!(
                    g.iter().any(|&g| g != 0.0),
                    supervised,
                    "{variant:?} row {r} step {t}"
                );
            }
        }
        if variant == HpsVariant::Prototype || item_gradient == ItemGradient::Off {
            assert!(
                ditems.iter().all(|&g| g == 0.0),
                "{variant:?}, {item_gradient:?}: no item gradient"
            );
        } else {
            assert!(ditems.iter().any(|&g| g != 0.0));
        }
    }
}

#[test]
fn prototypes_are_refreshed_on_schedule() {
    let every2 = HpsConfig {
        warmup_epochs: 1,
        kmeans_every: 2,
        ..HpsConfig::default()
    };
    let due: Vec<usize> = (0..7).filter(|&e| every2.refresh_due(e)).collect();
    assert_eq!(due, [1, 3, 5]);
    let off = HpsConfig {
        variant: HpsVariant::Off,
        ..HpsConfig::default()
    };
    assert!((0..10).all(|e| !off.refresh_due(e)));
}

#[test]
fn refresh_is_deterministic_and_warm_started() {
    let model = small_model(50, 2);
    let config = HpsConfig {
        k_min: 5,
        ..HpsConfig::default()
    };
    let a = cluster_items(
        None,
        &model,
        &config.prototype_config(model.config().t_max, 1),
    )
    .unwrap();
    let b = cluster_items(
        None,
        &model,
        &config.prototype_config(model.config().t_max, 1),
    )
    .unwrap();
    assert_eq!(a, b, "same seed, same prototypes");
    // refreshing on an unchanged table keeps a converged clustering
    let again = cluster_items(
        Some(a.clone()),
        &model,
        &config.prototype_config(model.config().t_max, 1),
    )
    .unwrap();
    assert_eq!(again.levels()[0].item_cluster, a.levels()[0].item_cluster);
}

fn setup() -> (Interactions, Split, ModelConfig, TrainConfig) {
    let (data, split) = common::synthetic_loo(60);
    let model = ModelConfig {
        d: 16,
        inner: 32,
        max_len: 10,
        ..ModelConfig::reasoning(data.num_items(), Family::Dtrec, 2)
    };
    let train = TrainConfig {
        max_epochs: 4,
        batch_size: 64,
        threads: Some(2),
        seed: 8,
        hps: HpsConfig {
            variant: HpsVariant::ClusterSoft,
            k_min: 8,
            ..HpsConfig::default()
        },
        ..TrainConfig::default()
    };
    (data, split, model, train)
}

#[test]
fn dtrec_with_prototypes_resumes_bit_identically() {
    let (data, split, model, train) = setup();
    let vocab = data.item_ids()[1..].to_vec();
    let mut straight = TrainState::new(model.clone(), &train).unwrap();
    common::train_until(&mut straight, &data, &split, &train, 1);
    assert!(
        straight.prototypes.is_none(),
        "no prototypes during the warm-up epoch"
    );
    common::train_until(&mut straight, &data, &split, &train, 4);
    assert!(straight.prototypes.is_some());

    let mut first = TrainState::new(model, &train).unwrap();
    common::train_until(&mut first, &data, &split, &train, 2);
    assert!(first.prototypes.is_some());
    let path = std::env::temp_dir().join(format!("dtrec-hps-{}.safetensors", std::process::id()));
    save_checkpoint(&path, &first, &train, &vocab).unwrap();
    let (mut resumed, saved, _) = load_checkpoint(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(resumed.prototypes, first.prototypes);
    drop(first);
    common::train_until(&mut resumed, &data, &split, &saved, 4);
    assert_eq!(resumed.model.params, straight.model.params);
    assert_eq!(resumed.prototypes, straight.prototypes);
    let bits =
        |s: &TrainState| -> Vec<u64> { s.history.iter().map(|e| e.train_loss.to_bits()).collect() };
    assert_eq!(bits(&resumed), bits(&straight));
}

#[test]
fn hps_changes_training() {
    // the same run without HPS trains differently once prototypes exist
    let (data, split, model, train) = setup();
    let off = TrainConfig {
        hps: HpsConfig {
            variant: HpsVariant::Off,
            ..train.hps.clone()
        },
        ..train.clone()
    };
    let mut with = TrainState::new(model.clone(), &train).unwrap();
    let mut without = TrainState::new(model, &off).unwrap();
    common::train_until(&mut with, &data, &split, &train, 1);
    common::train_until(&mut without, &data, &split, &off, 1);
    assert_eq!(
        with.model.params, without.model.params,
        "identical warm-up epoch"
    );
    common::train_until(&mut with, &data, &split, &train, 2);
    common::train_until(&mut without, &data, &split, &off, 2);
    assert!(without.prototypes.is_none());
    assert_ne!(with.model.params, without.model.params);
    assert!(
        with.history[1].train_loss > without.history[1].train_loss,
        "the HPS term adds loss"
    );
}

#[test]
fn first_step_beyond_the_supervised_states_is_a_config_error() {
    let (data, split, model, train) = setup();
    let t_max = model.t_max;
    let bad = TrainConfig {
        hps: HpsConfig {
            first_step: t_max,
            ..train.hps.clone()
        },
        ..train
    };
    let mut state = TrainState::new(model, &bad).unwrap();
    let err = run(
        &mut state,
        &data,
        &split,
        &bad,
        &mut |_| {},
        &mut |_| Ok(()),
    )
    .unwrap_err();
    assert!(
        matches!(&err, TrainError::Config(m) if m.contains("hps.first_step")),
        "{err}"
    );
    assert_eq!(state.epoch, 0, "nothing trained");
}

#[test]
fn a_step_temperature_growth_below_one_is_a_config_error() {
    for growth in [0.5, 0.0, -2.0, f64::NAN, f64::INFINITY] {
        let config = HpsConfig {
            step_tau_growth: growth,
            ..HpsConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.contains("hps.step_tau_growth"), "{growth}: {err}");
    }
    let fine = HpsConfig {
        step_tau_growth: 5.0,
        ..HpsConfig::default()
    };
    assert_eq!(fine.validate(), Ok(()));
    assert_eq!(fine.step_temperature(0.1, 0, 2), 0.1 * 25.0);
    assert_eq!(fine.step_temperature(0.1, 2, 2), 0.1);
}

#[test]
fn a_last_step_epsilon_outside_zero_one_is_a_config_error() {
    for last in [-0.1, 1.5, f64::NAN] {
        let config = HpsConfig {
            epsilon_last: Some(last),
            ..HpsConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.contains("hps.epsilon_last"), "{last}: {err}");
    }
    let schedule = HpsConfig {
        epsilon: 0.2,
        epsilon_last: Some(1.0),
        ..HpsConfig::default()
    };
    assert_eq!(schedule.validate(), Ok(()));
    let steps: Vec<f64> = (0..5).map(|t| schedule.step_epsilon(t, 5)).collect();
    assert_eq!(steps, [0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
    assert_eq!(
        schedule.step_epsilon(0, 1),
        1.0,
        "one step is the last step"
    );
}

/// The item-gradient option is written to a config only when it is not the
/// default, so configs of earlier models read (and write) as before.
#[test]
fn the_hps_options_outside_method_md_round_trip_and_their_defaults_are_not_written() {
    let default = serde_json::to_string(&HpsConfig::default()).unwrap();
    for field in ["item_gradient", "cluster_target"] {
        assert!(!default.contains(field), "{default}");
    }
    let read: HpsConfig = serde_json::from_str(&default).unwrap();
    assert_eq!(read.item_gradient, ItemGradient::Full);
    assert_eq!(read.cluster_target, ClusterTarget::Uniform);
    let item_gradients = [
        ItemGradient::Target,
        ItemGradient::Off,
        ItemGradient::TargetLast,
    ]
    .map(|option| {
        let config = HpsConfig {
            item_gradient: option,
            ..HpsConfig::default()
        };
        (config, format!(r#""item_gradient":"{}""#, option.name()))
    });
    let marginal = HpsConfig {
        cluster_target: ClusterTarget::Marginal,
        ..HpsConfig::default()
    };
    let set = item_gradients.into_iter().chain([(
        marginal.clone(),
        r#""cluster_target":"marginal""#.to_string(),
    )]);
    for (config, written) in set {
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains(&written), "{text}");
        assert_eq!(serde_json::from_str::<HpsConfig>(&text).unwrap(), config);
    }
    let unknown = serde_json::to_string(&marginal)
        .unwrap()
        .replace("marginal", "popular");
    let err = serde_json::from_str::<HpsConfig>(&unknown)
        .unwrap_err()
        .to_string();
    assert!(err.contains("uniform") && err.contains("marginal"), "{err}");
}

/// DTRec generalises ReaRec-PRL: with `cluster-soft` at ε = 1 (every step's
/// target is y itself), λ_HPS = 1, step temperatures τ·α^{T−t} and PRL's
/// contrastive view, its training loss and gradient are PRL's with that α
/// (same parameters, batch and dropout masks), up to f32 summation order.
#[test]
fn dtrec_with_flat_targets_and_prl_temperatures_is_rearec_prl() {
    let (n, t_max, alpha) = (40, 2, 3.0);
    let dtrec_cfg = ModelConfig {
        // a high τ keeps the in-batch contrastive softmax far from one-hot,
        // so its term is not negligible
        tau: 3.0,
        dtrec_contrastive: true,
        ..small_model(n, t_max).config().clone()
    };
    let mut dtrec = Model::new(dtrec_cfg.clone(), 5).unwrap();
    let prl_cfg = ModelConfig {
        family: Family::RearecPrl,
        prl_alpha: alpha,
        dtrec_contrastive: false,
        ..dtrec_cfg
    };
    let mut prl = Model::from_params(prl_cfg, dtrec.params.clone()).unwrap();
    dtrec.set_contrastive(true);
    prl.set_contrastive(true);
    let config = HpsConfig {
        variant: HpsVariant::ClusterSoft,
        lambda: 1.0,
        epsilon: 1.0,
        k_min: 4,
        step_tau_growth: alpha,
        ..HpsConfig::default()
    };
    let protos = cluster_items(
        None,
        &dtrec,
        &config.prototype_config(dtrec.config().t_max, 3),
    )
    .unwrap();
    let hps = HpsLoss::new(&protos, &dtrec, &config);
    let extra = |a: StateLossArgs<'_, f32>| hps.eval(a);
    let batch = dtrec::TrainBatch::new(
        vec![0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0, 11, 12],
        vec![4, 6, 2],
        vec![13, 1, 40],
        6,
        n,
    )
    .unwrap();
    let mut g_dtrec = dtrec.params.zeros_like();
    let mut g_prl = prl.params.zeros_like();
    let l_dtrec = dtrec.loss_and_grad_extra(&mut g_dtrec, &batch, Some(7), Some(&extra));
    let l_prl = prl.loss_and_grad_extra(&mut g_prl, &batch, Some(7), None);
    assert!(
        (l_dtrec - l_prl).abs() <= 1e-5 * l_prl.abs(),
        "{l_dtrec} vs {l_prl}"
    );
    // the noise view adds the same term to both
    let mut plain = dtrec.clone();
    plain.set_contrastive(false);
    let rcl_dtrec = l_dtrec - plain.loss_extra(&batch, Some(7), Some(&extra));
    prl.set_contrastive(false);
    let rcl_prl = l_prl - prl.loss(&batch, Some(7));
    assert!(rcl_prl > 1e-2, "PRL's contrastive term {rcl_prl}");
    assert!(
        (rcl_dtrec - rcl_prl).abs() <= 1e-5 * l_prl.abs(),
        "{rcl_dtrec} vs {rcl_prl}"
    );
    for ((name, a), (_, b)) in g_dtrec.tensors().into_iter().zip(g_prl.tensors()) {
        let scale = b.data.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() <= 1e-4 * scale, "{name}: {x} vs {y}");
        }
    }
}
