//! [`TrainConfig`]: optimisation, early stopping and evaluation settings.

use serde::{Deserialize, Serialize};

use super::optim::AdamConfig;
use crate::model::halting::indicators::IndicatorSpace;
use crate::model::{HaltingConfig, HaltingRule, HpsConfig};

/// The learning rate over training (times the warm-up's factor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// `lr` at every step.
    #[default]
    Constant,
    /// Cosine annealing over the epoch budget: with S = `max_epochs` ×
    /// batches per epoch, step t (1, 2, …) uses lr·½(1 + cos(π(t − 1)/S)),
    /// so the rate falls from `lr` toward 0 at the end of the last epoch
    /// (early stopping may end training before that).
    Cosine,
}

impl LrSchedule {
    /// The config spelling (`constant`, `cosine`).
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Constant => "constant",
            LrSchedule::Cosine => "cosine",
        }
    }
}

/// What each epoch's validation scores, for early stopping and for the
/// epoch whose parameters are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpochSelection {
    /// NDCG@10 at fixed depth: every user reasons for T_max steps.
    #[default]
    FixedDepth,
    /// NDCG@10 of the model as it is served: under the `threshold` halting
    /// rule, with thresholds calibrated on validation at that epoch exactly
    /// as after training, so the kept epoch is the best one under the rule
    /// it serves with. The same as `fixed-depth` for the `fixed` rule and
    /// for SASRec; the `learned` rule and indicators over the prototypes
    /// are rejected (the gate and the prototypes are fitted after
    /// training, not per epoch).
    Served,
}

impl EpochSelection {
    /// The config spelling (`fixed-depth`, `served`).
    pub fn name(self) -> &'static str {
        match self {
            EpochSelection::FixedDepth => "fixed-depth",
            EpochSelection::Served => "served",
        }
    }
}

/// How a model is trained and selected. Serialized as a JSON/TOML object;
/// missing fields take their defaults (RecBole SASRec where one exists).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Upper bound on epochs; early stopping usually ends training first.
    pub max_epochs: usize,
    /// Training sequences per optimizer step, B.
    pub batch_size: usize,
    /// Stop after this many epochs without a better validation NDCG@10.
    pub patience: usize,
    /// Seed of initialisation, shuffling and dropout masks.
    pub seed: u64,
    /// Adam learning rate.
    pub lr: f64,
    /// L2 penalty (Adam) or decoupled decay (AdamW); never on biases or LayerNorm.
    pub weight_decay: f64,
    /// `true`: AdamW.
    pub decoupled_weight_decay: bool,
    /// Rescale gradients to at most this global L2 norm.
    pub clip_norm: Option<f64>,
    /// Optimizer steps of linear learning-rate warm-up (0 = none).
    pub warmup_steps: u64,
    /// How the learning rate changes over the epoch budget `max_epochs`.
    /// Written to a config only when not `constant`.
    #[serde(skip_serializing_if = "crate::is_default")]
    pub lr_schedule: LrSchedule,
    /// Decay β of an exponential moving average of the parameters, updated
    /// after every optimizer step as `ema ← β·ema + (1 − β)·θ` from the
    /// initial parameters. When set, validation scores the average, and the
    /// average of the best epoch is the model kept; training itself is
    /// unchanged. `None` (the default) keeps the raw parameters. Written to
    /// a config only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_decay: Option<f64>,
    /// Worker threads (rayon); `None` uses all cores. Training is
    /// bit-identical for the same seed and thread count.
    pub threads: Option<usize>,
    /// Samples scored per evaluation batch.
    pub eval_batch_size: usize,
    /// Exclude each user's history items from the ranking in evaluation
    /// (off by default, as in RecBole and ReaRec).
    pub mask_history: bool,
    /// Evaluate on validation every this many epochs.
    pub eval_every: usize,
    /// What that validation scores (fixed depth, or the served halting
    /// rule). Written to a config only when not `fixed-depth`.
    #[serde(skip_serializing_if = "crate::is_default")]
    pub select_on: EpochSelection,
    /// DTRec's Hierarchical Process Supervision (ignored by other families).
    pub hps: HpsConfig,
    /// Adaptive Reasoning Halting: how the trained model picks its number
    /// of steps at inference (reasoning families only).
    pub halting: HaltingConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            max_epochs: 200,
            batch_size: 256,
            patience: 10,
            seed: 42,
            lr: 1e-3,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            clip_norm: None,
            warmup_steps: 0,
            lr_schedule: LrSchedule::Constant,
            ema_decay: None,
            threads: None,
            eval_batch_size: 256,
            mask_history: false,
            eval_every: 1,
            select_on: EpochSelection::FixedDepth,
            hps: HpsConfig::default(),
            halting: HaltingConfig::default(),
        }
    }
}

impl TrainConfig {
    /// The optimizer settings for a training set of `train_samples`
    /// sequences (the length of a cosine schedule counts its batches).
    ///
    /// ```
    /// use dtrec::train::{LrSchedule, TrainConfig};
    /// let train = TrainConfig { max_epochs: 3, batch_size: 100, ..TrainConfig::default() };
    /// assert_eq!(train.adam(1_000).decay_steps, 0);
    /// let cosine = TrainConfig { lr_schedule: LrSchedule::Cosine, ..train };
    /// assert_eq!(cosine.adam(1_001).decay_steps, 3 * 11);
    /// ```
    pub fn adam(&self, train_samples: usize) -> AdamConfig {
        let decay_steps = match self.lr_schedule {
            LrSchedule::Constant => 0,
            LrSchedule::Cosine => {
                let batches = train_samples.div_ceil(self.batch_size.max(1)) as u64;
                (self.max_epochs as u64).saturating_mul(batches)
            }
        };
        AdamConfig {
            lr: self.lr,
            weight_decay: self.weight_decay,
            decoupled: self.decoupled_weight_decay,
            clip_norm: self.clip_norm,
            warmup_steps: self.warmup_steps,
            decay_steps,
            ..AdamConfig::default()
        }
    }

    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("eval_every", self.eval_every),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("train config: `{name}` must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "train config: `lr` must be a positive number, got {}",
                self.lr
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "train config: `weight_decay` must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(format!(
                    "train config: `clip_norm` must be positive, got {c}"
                ));
            }
        }
        if let Some(decay) = self.ema_decay {
            if !(decay > 0.0 && decay < 1.0) {
                return Err(format!(
                    "train config: `ema_decay` must be in (0, 1), got {decay}"
                ));
            }
        }
        if self.threads == Some(0) {
            return Err("train config: `threads` must be at least 1".into());
        }
        if self.select_on == EpochSelection::Served {
            if self.halting.rule == HaltingRule::Learned {
                return Err(
                    "train config: `select_on = served` supports the `fixed` and \
                            `threshold` halting rules, not `learned`"
                        .into(),
                );
            }
            if self.halting.indicators != IndicatorSpace::Items {
                return Err("train config: `select_on = served` needs the halting \
                            indicators over the items, not `prototypes`"
                    .into());
            }
        }
        self.hps.validate()?;
        self.halting.validate()
    }
}
