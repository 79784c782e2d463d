//! Model and training settings from a TOML/JSON file plus command-line
//! overrides.

use std::path::PathBuf;

use clap::Args;
use dtrec::model::ModelConfig;
use dtrec::train::{LrSchedule, TrainConfig};
use serde::Deserialize;

/// A config file: `[model]` (ModelConfig fields except `n_items`, which
/// comes from the data) and `[train]` (TrainConfig fields).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    model: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    train: TrainConfig,
}

#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// TOML or JSON file with `[model]` and `[train]` sections.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model family: sasrec, rearec-erl, rearec-prl or dtrec.
    #[arg(long)]
    pub family: Option<String>,
    /// DTRec's process supervision: off, prototype or cluster-soft.
    #[arg(long)]
    pub hps: Option<String>,
    /// λ_HPS, the weight of the step losses.
    #[arg(long)]
    pub lambda_hps: Option<f64>,
    /// `cluster-soft`: ε, the weight of the target item itself in each
    /// step's soft target (the rest is spread over its cluster).
    #[arg(long)]
    pub hps_epsilon: Option<f64>,
    /// `cluster-soft`: ε of the last HPS step T_max − 1; the steps between
    /// interpolate linearly from `--hps-epsilon` at step 0 (method.md's
    /// per-step ε_t). Unset: every step uses `--hps-epsilon`.
    #[arg(long)]
    pub hps_epsilon_last: Option<f64>,
    /// `cluster-soft`: which part of its gradient trains the item table:
    /// full (method.md), target (only the target item's term; the cluster
    /// term sees the items as constants), target-last (target at the served
    /// step T_max − 1, full at the steps before it) or off (it trains the
    /// states only).
    #[arg(long)]
    pub hps_item_gradient: Option<String>,
    /// `cluster-soft`: the form of the target's (1 − ε) cluster part:
    /// uniform (spread evenly over y's cluster, method.md) or marginal (the
    /// cluster's total probability, −log Σ_{v∈C} p_v; outside method.md).
    #[arg(long)]
    pub hps_cluster_target: Option<String>,
    /// α of the HPS step temperatures: step t is scored at τ·α^(T_max − t),
    /// ReaRec-PRL's softening of earlier steps (1 = method.md).
    #[arg(long)]
    pub hps_tau_growth: Option<f64>,
    /// DTRec also trains with ReaRec-PRL's contrastive noise view
    /// (outside method.md).
    #[arg(long)]
    pub dtrec_contrastive: bool,
    /// Re-cluster the prototypes every this many epochs.
    #[arg(long)]
    pub kmeans_every: Option<usize>,
    /// Prototype hierarchy: flat or nested.
    #[arg(long)]
    pub hierarchy: Option<String>,
    /// Halting rule the saved model serves with: fixed, threshold or learned.
    #[arg(long)]
    pub halting: Option<String>,
    /// Threshold calibration: relative NDCG@10 tolerance of full depth.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Halting indicators over all items, or over the finest prototype level
    /// (cheaper for large item counts): items or prototypes.
    #[arg(long)]
    pub indicators: Option<String>,
    /// Dropout on the reasoning inputs.
    #[arg(long)]
    pub reasoning_dropout: Option<f64>,
    /// Hidden and attention dropout inside the reasoning steps (default: --dropout).
    #[arg(long)]
    pub step_dropout: Option<f64>,
    /// First state the HPS step losses supervise (0 = h0, method.md).
    #[arg(long)]
    pub hps_first_step: Option<usize>,
    /// Optimizer steps of linear learning-rate warm-up.
    #[arg(long)]
    pub warmup_steps: Option<u64>,
    /// Learning rate over the epoch budget `--epochs`: constant (default)
    /// or cosine (annealed from `--lr` toward 0 at the last epoch).
    #[arg(long)]
    pub lr_schedule: Option<String>,
    /// Validate and keep an exponential moving average of the parameters
    /// with this decay β in (0, 1), e.g. 0.999 (default: the raw parameters).
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// What each epoch's validation scores for early stopping and the kept
    /// epoch: fixed-depth (default) or served (the threshold rule,
    /// calibrated on validation every epoch). The experiment command
    /// applies it to the DTRec runs only, the ones it reports as served.
    #[arg(long)]
    pub select_on: Option<String>,
    /// Reasoning steps T_max (0 for sasrec; 1 or more for the others).
    #[arg(long)]
    pub t_max: Option<usize>,
    /// Model width d.
    #[arg(long)]
    pub d: Option<usize>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    /// Feed-forward inner width.
    #[arg(long)]
    pub inner: Option<usize>,
    /// Hidden and attention dropout.
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Longest history kept, L.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Softmax temperature τ.
    #[arg(long)]
    pub tau: Option<f64>,
    /// Maximum epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Early-stopping patience in epochs.
    #[arg(long)]
    pub patience: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Exclude history items from the ranking in evaluation.
    #[arg(long)]
    pub mask_history: bool,
}

impl ConfigArgs {
    /// The model and training configuration for `n_items` items.
    pub fn resolve(&self, n_items: usize) -> Result<(ModelConfig, TrainConfig), String> {
        let file = match &self.config {
            None => ConfigFile::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let parsed = if path.extension().is_some_and(|e| e == "json") {
                    serde_json::from_str(&text).map_err(|e| e.to_string())
                } else {
                    toml::from_str(&text).map_err(|e| e.to_string())
                };
                parsed.map_err(|e| format!("{}: {e}", path.display()))?
            }
        };
        let mut model = file.model;
        model.insert("n_items".into(), n_items.into());
        let set = |m: &mut serde_json::Map<String, serde_json::Value>,
                   key: &str,
                   v: Option<serde_json::Value>| {
            if let Some(v) = v {
                m.insert(key.into(), v);
            }
        };
        set(&mut model, "family", self.family.clone().map(Into::into));
        set(&mut model, "t_max", self.t_max.map(Into::into));
        set(&mut model, "d", self.d.map(Into::into));
        set(&mut model, "n_layers", self.layers.map(Into::into));
        set(&mut model, "n_heads", self.heads.map(Into::into));
        set(&mut model, "inner", self.inner.map(Into::into));
        set(&mut model, "dropout", self.dropout.map(Into::into));
        set(&mut model, "attn_dropout", self.dropout.map(Into::into));
        set(&mut model, "max_len", self.max_len.map(Into::into));
        set(&mut model, "tau", self.tau.map(Into::into));
        set(
            &mut model,
            "reasoning_dropout",
            self.reasoning_dropout.map(Into::into),
        );
        set(
            &mut model,
            "step_dropout",
            self.step_dropout.map(Into::into),
        );
        if self.dtrec_contrastive {
            model.insert("dtrec_contrastive".into(), true.into());
        }
        let model: ModelConfig = serde_json::from_value(serde_json::Value::Object(model))
            .map_err(|e| format!("model config: {e}"))?;
        model.validate().map_err(|e| e.to_string())?;
        let mut train = file.train;
        train.max_epochs = self.epochs.unwrap_or(train.max_epochs);
        train.batch_size = self.batch_size.unwrap_or(train.batch_size);
        train.lr = self.lr.unwrap_or(train.lr);
        train.weight_decay = self.weight_decay.unwrap_or(train.weight_decay);
        train.patience = self.patience.unwrap_or(train.patience);
        train.seed = self.seed.unwrap_or(train.seed);
        train.threads = self.threads.or(train.threads);
        train.mask_history |= self.mask_history;
        if let Some(v) = parse_name("hps", &self.hps)? {
            train.hps.variant = v;
        }
        if let Some(v) = parse_name("lr-schedule", &self.lr_schedule)? {
            train.lr_schedule = v;
        }
        if let Some(v) = parse_name("hps-item-gradient", &self.hps_item_gradient)? {
            train.hps.item_gradient = v;
        }
        if let Some(v) = parse_name("hps-cluster-target", &self.hps_cluster_target)? {
            train.hps.cluster_target = v;
        }
        if let Some(v) = parse_name("hierarchy", &self.hierarchy)? {
            train.hps.layout = v;
        }
        if let Some(v) = parse_name("halting", &self.halting)? {
            train.halting.rule = v;
        }
        if let Some(v) = parse_name("indicators", &self.indicators)? {
            train.halting.indicators = v;
        }
        train.hps.lambda = self.lambda_hps.unwrap_or(train.hps.lambda);
        train.hps.epsilon = self.hps_epsilon.unwrap_or(train.hps.epsilon);
        if let Some(last) = self.hps_epsilon_last {
            train.hps.epsilon_last = Some(last);
        }
        train.hps.step_tau_growth = self.hps_tau_growth.unwrap_or(train.hps.step_tau_growth);
        train.hps.kmeans_every = self.kmeans_every.unwrap_or(train.hps.kmeans_every);
        train.hps.first_step = self.hps_first_step.unwrap_or(train.hps.first_step);
        train.warmup_steps = self.warmup_steps.unwrap_or(train.warmup_steps);
        if let Some(decay) = self.ema_decay {
            train.ema_decay = Some(decay);
        }
        train.halting.tolerance = self.tolerance.unwrap_or(train.halting.tolerance);
        if let Some(v) = parse_name("select-on", &self.select_on)? {
            train.select_on = v;
        }
        train.validate()?;
        Ok((model, train))
    }
}

/// The learning rate as logs and result headers print it: `0.001`, or
/// `0.001 cosine-annealed` under [`LrSchedule::Cosine`].
pub fn describe_lr(train: &TrainConfig) -> String {
    match train.lr_schedule {
        LrSchedule::Constant => train.lr.to_string(),
        LrSchedule::Cosine => format!("{} cosine-annealed", train.lr),
    }
}

/// A kebab-case option value (`--flag name`) as the config enum it names.
pub fn parse_name<T: serde::de::DeserializeOwned>(
    flag: &str,
    value: &Option<String>,
) -> Result<Option<T>, String> {
    value
        .as_ref()
        .map(|s| {
            serde_json::from_value(serde_json::Value::String(s.clone()))
                .map_err(|e| format!("--{flag}: {e}"))
        })
        .transpose()
}
