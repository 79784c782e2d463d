//! The training loop: epochs of shuffled mini-batches, validation after each
//! epoch, early stopping, the best model kept and evaluated on test.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::config::{EpochSelection, TrainConfig};
use super::optim::Adam;
use crate::data::{batches_in_order, BatchConfig, EpochBatches, Interactions, Sample, Split};
use crate::eval::{
    evaluate, evaluate_policy, evaluate_policy_in, ComputeReport, EvalError, Metrics,
};
use crate::kernels::rng::CounterRng;
use crate::model::halting::fit::{calibrate, fit_gate};
use crate::model::halting::{Calibration, IndicatorBasis, LearnedGate};
use crate::model::loss::hps::HpsLoss;
use crate::model::prototypes::{cluster_items, HierarchyError, Prototypes};
use crate::model::{
    ConfigError, Family, HaltingPolicy, HaltingRule, HpsVariant, Model, ModelConfig, Params,
    StateLossArgs,
};

/// RNG stream of the per-step dropout seeds (the shuffle uses the epoch
/// number as its stream, the initialisation its own streams).
const DROPOUT_SEED_STREAM: u64 = 0xD50_0001;

/// ReaRec-PRL (and DTRec with `dtrec_contrastive`) trains without its
/// contrastive noise view for this many epochs, then with it (method.md §3).
pub const PRL_WARMUP_EPOCHS: usize = 2;

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 0-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's sequences.
    pub train_loss: f64,
    /// Wall time of the training part (without validation), seconds.
    pub train_seconds: f64,
    /// Training throughput, sequences per second.
    pub sequences_per_second: f64,
    /// Validation metrics, when evaluated this epoch.
    pub valid: Option<Metrics>,
    /// Whether this epoch set a new best validation NDCG@10.
    pub improved: bool,
}

/// What the loop reports while it runs (for progress bars and logs).
#[derive(Debug)]
pub enum Progress<'a> {
    /// An epoch of `batches` optimizer steps starts.
    EpochStart {
        /// The epoch (0-based).
        epoch: usize,
        /// Optimizer steps it will take.
        batches: usize,
    },
    /// Step `step` (1-based) of the epoch finished with this batch's mean loss.
    Step {
        /// The epoch (0-based).
        epoch: usize,
        /// The step within it (1-based).
        step: usize,
        /// The batch's mean loss.
        loss: f64,
    },
    /// An epoch finished (validation included).
    EpochEnd(&'a EpochLog),
}

/// Why training could not run.
#[derive(Debug)]
pub enum TrainError {
    /// The model configuration is invalid.
    Model(ConfigError),
    /// The training configuration is invalid (the message names the field).
    Config(String),
    /// The data cannot be trained on (e.g. no training samples).
    Data(String),
    /// Evaluation failed.
    Eval(EvalError),
    /// Clustering the item table into HPS prototypes failed.
    Prototypes(HierarchyError),
    /// The halting calibration failed.
    Halting(String),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Model(e) => write!(f, "model config: {e}"),
            TrainError::Config(m) | TrainError::Data(m) => f.write_str(m),
            TrainError::Eval(e) => write!(f, "evaluation: {e}"),
            TrainError::Prototypes(e) => write!(f, "HPS prototypes: {e}"),
            TrainError::Halting(m) => write!(f, "halting: {m}"),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<EvalError> for TrainError {
    fn from(e: EvalError) -> Self {
        TrainError::Eval(e)
    }
}

/// Everything a run needs to continue exactly where it stopped: the model,
/// the optimizer moments, the epoch counter and the early-stopping state.
/// (All randomness is counter-based on (seed, epoch, step), so no RNG state
/// needs saving.)
#[derive(Clone, Debug)]
pub struct TrainState {
    /// The model being trained (its current parameters).
    pub model: Model,
    /// The optimizer; [`run`] sets its settings from the run's
    /// [`TrainConfig`] and training data (a cosine schedule's length).
    pub adam: Adam<f32>,
    /// The next epoch to run.
    pub epoch: usize,
    /// Best validation NDCG@10 so far and its epoch.
    pub best: Option<(usize, f64)>,
    /// Parameters of the best epoch.
    pub best_params: Option<Params<f32>>,
    /// Epochs since the last improvement.
    pub stale_epochs: usize,
    /// The moving average of the parameters, when `TrainConfig::ema_decay`
    /// is set (validation scores it, and it is what `best_params` keeps).
    pub ema: Option<Params<f32>>,
    /// Every finished epoch's log, in order.
    pub history: Vec<EpochLog>,
    /// DTRec's HPS prototype hierarchy (after the warm-up epochs).
    pub prototypes: Option<Prototypes<f32>>,
}

impl TrainState {
    /// A fresh state: initialised model (seeded by `train.seed`), zero moments.
    pub fn new(model: ModelConfig, train: &TrainConfig) -> Result<Self, TrainError> {
        train.validate().map_err(TrainError::Config)?;
        let model = Model::new(model, train.seed).map_err(TrainError::Model)?;
        let adam = Adam::new(&model.params, train.adam(0));
        let ema = train.ema_decay.map(|_| model.params.clone());
        Ok(TrainState {
            model,
            adam,
            epoch: 0,
            best: None,
            best_params: None,
            stale_epochs: 0,
            ema,
            history: Vec::new(),
            prototypes: None,
        })
    }

    /// Whether early stopping or the epoch limit has ended training.
    pub fn finished(&self, train: &TrainConfig) -> bool {
        self.epoch >= train.max_epochs
            || (self.best.is_some() && self.stale_epochs >= train.patience)
    }

    /// The best model so far (the current one before any validation).
    pub fn best_model(&self) -> Model {
        match &self.best_params {
            Some(p) => Model::from_params(self.model.config().clone(), p.clone())
                .expect("best parameters have the model's shapes"),
            None => self.model.clone(),
        }
    }
}

/// Result of a finished run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The model of the best validation epoch.
    pub model: Model,
    /// Epoch (0-based) of the best validation NDCG@10.
    pub best_epoch: usize,
    /// Validation metrics of the best epoch.
    pub valid: Metrics,
    /// Test metrics of the best model, halting by the configured rule.
    pub test: Metrics,
    /// Steps and FLOPs per test user under that rule.
    pub test_compute: ComputeReport,
    /// Every epoch's log, in order.
    pub history: Vec<EpochLog>,
    /// Adaptive halting of a reasoning model (None for SASRec).
    pub halting: Option<HaltingOutcome>,
    /// The prototype hierarchy of the returned model's item table (reasoning
    /// families; used to print trajectories).
    pub prototypes: Option<Prototypes<f32>>,
}

/// What the halting stage of a finished reasoning run found.
#[derive(Clone, Debug)]
pub struct HaltingOutcome {
    /// The threshold sweep on validation (its `Display` is the curve).
    pub calibration: Calibration<f32>,
    /// The fitted learned gate and its final BCE (× λ_ARH).
    pub gate: LearnedGate<f32>,
    /// The gate's final BCE loss (× λ_ARH).
    pub gate_loss: f64,
    /// The policy the model serves with (`TrainConfig::halting.rule`).
    pub policy: HaltingPolicy,
    /// What every rule's indicators were computed over
    /// (`TrainConfig::halting.indicators`): the items, or the finest level
    /// of [`TrainedEvaluation::prototypes`].
    pub indicators: IndicatorBasis,
    /// Validation and test results of every rule (fixed, threshold, learned).
    pub rules: Vec<RuleResult>,
}

/// One halting rule's validation and test results.
#[derive(Clone, Debug)]
pub struct RuleResult {
    /// The rule.
    pub rule: HaltingRule,
    /// The rule as calibrated or fitted on validation.
    pub policy: HaltingPolicy,
    /// Validation metrics under it.
    pub valid: Metrics,
    /// Steps and FLOPs per validation user under it.
    pub valid_compute: ComputeReport,
    /// Test metrics under it.
    pub test: Metrics,
    /// Steps and FLOPs per test user under it.
    pub test_compute: ComputeReport,
}

/// Trains a fresh model on `split.train`, early-stops on `split.valid` and
/// evaluates the best model on `split.test`.
pub fn train(
    data: &Interactions,
    split: &Split,
    model: ModelConfig,
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome, TrainError> {
    config.validate().map_err(TrainError::Config)?;
    let mut state = TrainState::new(model, config)?;
    run(&mut state, data, split, config, progress, &mut |_| Ok(()))?;
    finish(&state, data, split, config)
}

/// Runs epochs on `state` until it is [finished](TrainState::finished),
/// calling `after_epoch` with the state after each epoch (e.g. to write a
/// checkpoint; an error there stops the run). Inside a rayon pool of
/// `config.threads` threads when set.
pub fn run(
    state: &mut TrainState,
    data: &Interactions,
    split: &Split,
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
    after_epoch: &mut dyn FnMut(&TrainState) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    config.validate().map_err(TrainError::Config)?;
    if split.train.is_empty() || split.valid.is_empty() {
        return Err(TrainError::Data("no training or validation samples".into()));
    }
    let model_cfg = state.model.config();
    if model_cfg.family == Family::Dtrec
        && config.hps.variant != HpsVariant::Off
        && config.hps.first_step >= model_cfg.t_max.max(1)
    {
        return Err(TrainError::Config(format!(
            "train config: `hps.first_step` must be below T_max = {}, got {}",
            model_cfg.t_max, config.hps.first_step
        )));
    }
    let model_items = model_cfg.n_items;
    if data.num_items() > model_items {
        return Err(TrainError::Data(format!(
            "the data has {} items but the model only {model_items}",
            data.num_items()
        )));
    }
    state.adam.config = config.adam(split.train.len());
    let pool = Threads::new(config.threads);
    while !state.finished(config) {
        run_epoch(state, data, split, config, &pool, progress)?;
        after_epoch(state)?;
    }
    Ok(())
}

/// Evaluates the best model of a finished run on test (see
/// [`evaluate_trained`]).
pub fn finish(
    state: &TrainState,
    data: &Interactions,
    split: &Split,
    config: &TrainConfig,
) -> Result<TrainOutcome, TrainError> {
    let (best_epoch, _) = state
        .best
        .ok_or_else(|| TrainError::Data("no validation epoch ran".into()))?;
    let model = state.best_model();
    let valid = state.history[best_epoch]
        .valid
        .clone()
        .expect("the best epoch was validated");
    let evaluated = evaluate_trained(&model, state.prototypes.clone(), data, split, config)?;
    Ok(TrainOutcome {
        model,
        best_epoch,
        valid,
        test: evaluated.test,
        test_compute: evaluated.test_compute,
        history: state.history.clone(),
        halting: evaluated.halting,
        prototypes: evaluated.prototypes,
    })
}

/// What [`evaluate_trained`] found.
#[derive(Clone, Debug)]
pub struct TrainedEvaluation {
    /// Test metrics under the configured halting rule.
    pub test: Metrics,
    /// Steps and FLOPs per test user under that rule.
    pub test_compute: ComputeReport,
    /// The halting stage (reasoning models).
    pub halting: Option<HaltingOutcome>,
    /// The hierarchy of the model's item table (reasoning models).
    pub prototypes: Option<Prototypes<f32>>,
}

/// The evaluation stage after training, on a selected model: for a
/// reasoning model, clusters the item table into prototypes (warm-started
/// from `warm`, the trained DTRec hierarchy when there is one; from
/// scratch, seeded, otherwise), calibrates the halting thresholds on
/// validation, fits the learned gate on training samples and evaluates
/// every rule on validation and test (the configured rule's test is the
/// result), all with the indicators in `config.halting.indicators` (for
/// the prototype space, over the finest level of those prototypes, which
/// are returned to be stored with the model). SASRec is just evaluated on
/// test.
pub fn evaluate_trained(
    model: &Model,
    warm: Option<Prototypes<f32>>,
    data: &Interactions,
    split: &Split,
    config: &TrainConfig,
) -> Result<TrainedEvaluation, TrainError> {
    let pool = Threads::new(config.threads);
    let batch = config.eval_batch_size;
    let mask = config.mask_history;
    if model.config().t_max == 0 {
        let test = pool.run(|| {
            evaluate_policy(model, data, &split.test, &HaltingPolicy::Fixed, batch, mask)
        })?;
        return Ok(TrainedEvaluation {
            test: test.report.metrics,
            test_compute: test.compute,
            halting: None,
            prototypes: None,
        });
    }
    let prototype_config = config
        .hps
        .prototype_config(model.config().t_max, config.seed);
    let prototypes = pool
        .run(|| cluster_items(warm, model, &prototype_config))
        .map_err(TrainError::Prototypes)?;
    let basis = IndicatorBasis::of(config.halting.indicators, Some(&prototypes))
        .map_err(|e| TrainError::Halting(e.to_string()))?;
    let halting = pool.run(|| -> Result<HaltingOutcome, TrainError> {
        let max_len = model.config().max_len;
        let valid = batches_in_order(data, &split.valid, batch, max_len);
        let calibration = calibrate(model, &basis, &valid, &config.halting)
            .map_err(|e| TrainError::Halting(e.to_string()))?;
        let gate_samples = evenly_strided(&split.train, config.halting.gate_samples);
        let gate_batches = batches_in_order(data, &gate_samples, batch, max_len);
        let (gate, gate_loss) = fit_gate(model, &basis, &gate_batches, &config.halting);
        let rules = [
            (HaltingRule::Fixed, HaltingPolicy::Fixed),
            (
                HaltingRule::Threshold,
                HaltingPolicy::Threshold(calibration.chosen_rule()),
            ),
            (HaltingRule::Learned, HaltingPolicy::Learned(gate)),
        ];
        let mut results = Vec::new();
        for (rule, policy) in rules {
            let v = evaluate_policy_in(model, data, &split.valid, &policy, &basis, batch, mask)?;
            let t = evaluate_policy_in(model, data, &split.test, &policy, &basis, batch, mask)?;
            results.push(RuleResult {
                rule,
                policy,
                valid: v.report.metrics,
                valid_compute: v.compute,
                test: t.report.metrics,
                test_compute: t.compute,
            });
        }
        let policy = results
            .iter()
            .find(|r| r.rule == config.halting.rule)
            .expect("every rule was evaluated")
            .policy
            .clone();
        Ok(HaltingOutcome {
            calibration,
            gate,
            gate_loss,
            policy,
            indicators: basis.clone(),
            rules: results,
        })
    })?;
    let chosen = halting
        .rules
        .iter()
        .find(|r| r.rule == config.halting.rule)
        .expect("every rule was evaluated");
    let (test, test_compute) = (chosen.test.clone(), chosen.test_compute.clone());
    Ok(TrainedEvaluation {
        test,
        test_compute,
        halting: Some(halting),
        prototypes: Some(prototypes),
    })
}

/// The rayon pool heavy work runs in: a dedicated one of a fixed size, or
/// the global pool.
struct Threads(Option<rayon::ThreadPool>);

impl Threads {
    fn new(threads: Option<usize>) -> Self {
        Threads(threads.map(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("a rayon pool of a positive size builds")
        }))
    }

    fn run<R: Send>(&self, job: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(pool) => pool.install(job),
            None => job(),
        }
    }
}

/// Validation metrics of `model` as `config.select_on` scores an epoch: at
/// fixed depth, or under the served threshold rule calibrated on
/// validation as [`evaluate_trained`] calibrates it (same indicators, grid
/// and tolerance, so the kept epoch's figure is the one reported after
/// training).
fn validate_epoch(
    model: &Model,
    data: &Interactions,
    split: &Split,
    config: &TrainConfig,
) -> Result<Metrics, TrainError> {
    let (batch, mask) = (config.eval_batch_size, config.mask_history);
    let served_threshold = config.select_on == EpochSelection::Served
        && config.halting.rule == HaltingRule::Threshold
        && model.config().t_max > 0;
    if !served_threshold {
        return Ok(evaluate(model, data, &split.valid, batch, mask)?.metrics);
    }
    let basis = IndicatorBasis::Items;
    let valid = batches_in_order(data, &split.valid, batch, model.config().max_len);
    let calibration = calibrate(model, &basis, &valid, &config.halting)
        .map_err(|e| TrainError::Halting(e.to_string()))?;
    let policy = HaltingPolicy::Threshold(calibration.chosen_rule());
    let served = evaluate_policy_in(model, data, &split.valid, &policy, &basis, batch, mask)?;
    Ok(served.report.metrics)
}

fn run_epoch(
    state: &mut TrainState,
    data: &Interactions,
    split: &Split,
    config: &TrainConfig,
    pool: &Threads,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), TrainError> {
    let epoch = state.epoch;
    let cfg = state.model.config().clone();
    state
        .model
        .set_contrastive(cfg.uses_contrastive() && epoch >= PRL_WARMUP_EPOCHS);
    let hps_on = cfg.family == Family::Dtrec && cfg.t_max > 0;
    if hps_on && config.hps.refresh_due(epoch) {
        let current = state.prototypes.take();
        let model = &state.model;
        let prototype_config = config.hps.prototype_config(cfg.t_max, config.seed);
        let fresh = pool
            .run(|| cluster_items(current, model, &prototype_config))
            .map_err(TrainError::Prototypes)?;
        state.prototypes = Some(fresh);
    }
    let batches = BatchConfig {
        batch_size: config.batch_size,
        max_len: cfg.max_len,
        shuffle: true,
        seed: config.seed,
        drop_last: false,
    };
    let n_batches = split.train.len().div_ceil(config.batch_size);
    progress(Progress::EpochStart {
        epoch,
        batches: n_batches,
    });
    let rng = CounterRng::new(config.seed);
    let mut grads = state.model.params.zeros_like();
    let (mut loss_sum, mut seen) = (0.0f64, 0usize);
    let start = Instant::now();
    let hps = state
        .prototypes
        .as_ref()
        .filter(|_| hps_on)
        .map(|p| HpsLoss::new(p, &state.model, &config.hps));
    let iter = EpochBatches::new(data, &split.train, &batches, epoch as u64)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    for (step, batch) in iter.enumerate() {
        let rows = batch.len();
        let step_seed = rng.bits(DROPOUT_SEED_STREAM, ((epoch as u64) << 32) | step as u64);
        grads.zero_grad();
        let model = &state.model;
        let loss = match &hps {
            Some(hps) => {
                let extra = |args: StateLossArgs<'_, f32>| hps.eval(args);
                pool.run(|| {
                    model.loss_and_grad_extra(&mut grads, &batch, Some(step_seed), Some(&extra))
                })
            }
            None => pool.run(|| model.loss_and_grad(&mut grads, &batch, step_seed)) as f64,
        };
        state.adam.step(&mut state.model.params, &mut grads);
        if let (Some(ema), Some(decay)) = (&mut state.ema, config.ema_decay) {
            ema.ema_toward(&state.model.params, decay as f32);
        }
        loss_sum += loss * rows as f64;
        seen += rows;
        progress(Progress::Step {
            epoch,
            step: step + 1,
            loss,
        });
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let averaged = state.ema.as_ref().map(|ema| {
        Model::from_params(cfg.clone(), ema.clone())
            .expect("the moving average has the model's shapes")
    });
    let validated = averaged.as_ref().unwrap_or(&state.model);
    let valid = if (epoch + 1) % config.eval_every == 0 {
        Some(pool.run(|| validate_epoch(validated, data, split, config))?)
    } else {
        None
    };
    let ndcg = valid
        .as_ref()
        .and_then(|m| m.ndcg(10))
        .unwrap_or(f64::NEG_INFINITY);
    let improved = valid.is_some() && state.best.is_none_or(|(_, best)| ndcg > best);
    if improved {
        state.best = Some((epoch, ndcg));
        state.best_params = Some(validated.params.clone());
        state.stale_epochs = 0;
    } else {
        state.stale_epochs += 1;
    }
    state.history.push(EpochLog {
        epoch,
        train_loss: loss_sum / seen.max(1) as f64,
        train_seconds,
        sequences_per_second: seen as f64 / train_seconds.max(1e-9),
        valid,
        improved,
    });
    state.epoch += 1;
    progress(Progress::EpochEnd(
        state.history.last().expect("just pushed"),
    ));
    Ok(())
}

/// Up to `count` of `samples`, evenly strided (the learned gate's fitting
/// set).
fn evenly_strided(samples: &[Sample], count: usize) -> Vec<Sample> {
    let take = count.min(samples.len());
    (0..take)
        .map(|i| samples[i * samples.len() / take.max(1)])
        .collect()
}
