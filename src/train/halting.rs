//! Adaptive Reasoning Halting after training (method.md §3): the threshold
//! rule calibrated on validation data, the learned gate fitted with its BCE
//! loss, and the serialisable form of the chosen policy.
//!
//! The gate's inputs are the detached indicators, so its loss never reaches
//! the model's parameters: training it jointly or on the finished model
//! optimises the same four numbers. We fit it on the selected (best
//! validation) model, so the gate matches the model it serves, by full-batch
//! Adam on λ_ARH·mean BCE over the indicators of a fixed, evenly strided
//! subset of the training samples.
//!
//! Both are fitted on indicators computed in the space the model will
//! serve with (`HaltingConfig::indicators`; the `_in` functions take the
//! [`IndicatorBasis`]): thresholds on Ĥ normalised by ln k do not transfer
//! to Ĥ normalised by ln N.

use serde::{Deserialize, Serialize};

use crate::data::{Batch, Interactions, Sample};
use crate::kernels::{AdamStep, Kernels};
use crate::model::{Sasrec, SeqBatch, StepTrace};
use crate::reasoning::halting::{
    calibrate_thresholds, gate_labels, Calibration, CalibrationError, LearnedGate, ThresholdGrid,
};
use crate::reasoning::indicators::{IndicatorBasis, IndicatorSpace, Indicators};

/// Which halting rule a trained model serves with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaltingRule {
    /// Always T_max steps.
    Fixed,
    /// Rule (A), thresholds calibrated on validation.
    #[default]
    Threshold,
    /// Rule (B), the logistic gate.
    Learned,
}

impl HaltingRule {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            HaltingRule::Fixed => "fixed",
            HaltingRule::Threshold => "threshold",
            HaltingRule::Learned => "learned",
        }
    }
}

/// Halting settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaltingConfig {
    /// The rule the saved model serves with.
    pub rule: HaltingRule,
    /// Calibration: the cheapest thresholds whose validation NDCG@10 is at
    /// least (1 − tolerance) × full depth's are chosen.
    pub tolerance: f64,
    /// Calibration grid: quantile levels per indicator axis (plus "no condition").
    pub grid_levels: usize,
    /// Earliest step allowed to stop.
    pub t_min: usize,
    /// λ_ARH, the weight of the gate's BCE loss.
    pub gate_lambda: f64,
    /// Training samples whose indicators fit the gate (evenly strided).
    pub gate_samples: usize,
    /// Full-batch Adam iterations of the gate fit.
    pub gate_iters: usize,
    /// Where the confidence and consistency indicators are computed: over
    /// all N items, or over the finest prototype level (much cheaper for
    /// large N). The prototypes are those `evaluate_trained` stores with
    /// the model: K-means of the selected model's item table, warm-started
    /// from DTRec's trained hierarchy when there is one, seeded K-means++
    /// otherwise (DTRec without HPS, ReaRec-ERL/PRL).
    pub indicators: IndicatorSpace,
}

impl Default for HaltingConfig {
    fn default() -> Self {
        HaltingConfig {
            rule: HaltingRule::default(),
            tolerance: 0.01,
            grid_levels: 8,
            t_min: 1,
            gate_lambda: 0.1,
            gate_samples: 8192,
            gate_iters: 500,
            indicators: IndicatorSpace::Items,
        }
    }
}

impl HaltingConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |field: &str, why: String| Err(format!("train config: `halting.{field}` {why}"));
        if !(0.0..=1.0).contains(&self.tolerance) {
            return bad(
                "tolerance",
                format!("must be in [0, 1], got {}", self.tolerance),
            );
        }
        if !(2..=64).contains(&self.grid_levels) {
            return bad(
                "grid_levels",
                format!("must be in 2..=64, got {}", self.grid_levels),
            );
        }
        if !(self.gate_lambda.is_finite() && self.gate_lambda > 0.0) {
            return bad(
                "gate_lambda",
                format!("must be positive, got {}", self.gate_lambda),
            );
        }
        if self.gate_samples == 0 || self.gate_iters == 0 {
            return bad("gate_samples", "and `gate_iters` must be at least 1".into());
        }
        Ok(())
    }
}

/// Full-depth traces of `samples`, in batches of `batch_size`: indicators
/// (samples × T_max, over the items) and target ranks (samples × (T_max + 1)).
pub fn trace_samples(
    model: &Sasrec,
    data: &Interactions,
    samples: &[Sample],
    batch_size: usize,
) -> (Vec<Indicators<f32>>, Vec<u32>) {
    trace_samples_in(model, &IndicatorBasis::Items, data, samples, batch_size)
}

/// [`trace_samples`] with the indicators over `basis`.
pub fn trace_samples_in(
    model: &Sasrec,
    basis: &IndicatorBasis,
    data: &Interactions,
    samples: &[Sample],
    batch_size: usize,
) -> (Vec<Indicators<f32>>, Vec<u32>) {
    let cfg = model.config();
    let mut indicators = Vec::new();
    let mut ranks = Vec::new();
    let all: Vec<usize> = (0..samples.len()).collect();
    for idx in all.chunks(batch_size.max(1)) {
        let batch = Batch::assemble(data, samples, idx, cfg.max_len);
        let lengths = batch.lengths.iter().map(|&l| l as u32).collect();
        let seqs = SeqBatch::new(batch.items, lengths, cfg.max_len, cfg.n_items)
            .expect("split samples form a valid batch for a model sized to their data");
        let targets: Vec<u32> = idx.iter().map(|&i| samples[i].target(data)).collect();
        let StepTrace {
            indicators: ind,
            ranks: r,
            ..
        } = model.step_trace_in(&seqs, Some(&targets), basis);
        indicators.extend(ind);
        ranks.extend(r);
    }
    (indicators, ranks)
}

/// The threshold sweep on `samples` (validation), the indicators over the
/// items (`config.indicators` is not consulted: see [`calibrate_in`]):
/// prints nothing; the result's `Display` is the accuracy-vs-average-steps
/// curve.
pub fn calibrate(
    model: &Sasrec,
    data: &Interactions,
    samples: &[Sample],
    config: &HaltingConfig,
    batch_size: usize,
) -> Result<Calibration<f32>, CalibrationError> {
    calibrate_in(
        model,
        &IndicatorBasis::Items,
        data,
        samples,
        config,
        batch_size,
    )
}

/// [`calibrate`] with the indicators over `basis`.
pub fn calibrate_in(
    model: &Sasrec,
    basis: &IndicatorBasis,
    data: &Interactions,
    samples: &[Sample],
    config: &HaltingConfig,
    batch_size: usize,
) -> Result<Calibration<f32>, CalibrationError> {
    let t_max = model.config().t_max;
    let (indicators, ranks) = trace_samples_in(model, basis, data, samples, batch_size);
    let grid = ThresholdGrid::from_quantiles(&indicators, config.grid_levels, config.t_min);
    calibrate_thresholds(
        &indicators,
        &ranks,
        samples.len(),
        t_max,
        &grid,
        config.tolerance,
    )
}

/// Fits the learned gate on up to `config.gate_samples` of `samples`
/// (training samples, evenly strided), starting from w = 0, b = 0, on
/// indicators over the items (see [`fit_gate_in`]).
/// Returns the gate and its final mean BCE.
pub fn fit_gate(
    model: &Sasrec,
    data: &Interactions,
    samples: &[Sample],
    config: &HaltingConfig,
    batch_size: usize,
) -> (LearnedGate<f32>, f64) {
    fit_gate_in(
        model,
        &IndicatorBasis::Items,
        data,
        samples,
        config,
        batch_size,
    )
}

/// [`fit_gate`] on indicators over `basis`.
pub fn fit_gate_in(
    model: &Sasrec,
    basis: &IndicatorBasis,
    data: &Interactions,
    samples: &[Sample],
    config: &HaltingConfig,
    batch_size: usize,
) -> (LearnedGate<f32>, f64) {
    let t_max = model.config().t_max;
    let take = config.gate_samples.min(samples.len());
    let subset: Vec<Sample> = (0..take)
        .map(|i| samples[i * samples.len() / take.max(1)])
        .collect();
    let (indicators, ranks) = trace_samples_in(model, basis, data, &subset, batch_size);
    let labels: Vec<bool> = ranks
        .chunks_exact(t_max + 1)
        .flat_map(gate_labels)
        .collect();
    // Adam (β₁ 0.9, β₂ 0.999, lr 0.05) on the four numbers [w; b], in f64
    let (b1, b2) = (0.9f64, 0.999f64);
    let mut theta = [0.0f64; 4];
    let (mut m, mut v) = ([0.0f64; 4], [0.0f64; 4]);
    let lambda = config.gate_lambda as f32;
    let mut gate = LearnedGate::<f32>::default();
    let mut loss = 0.0f32;
    for step in 1..=config.gate_iters {
        let mut grad = LearnedGate::<f32>::default();
        loss = lambda * gate.mean_loss(Some(&mut grad), lambda, &indicators, &labels);
        let g = [grad.w[0], grad.w[1], grad.w[2], grad.b].map(f64::from);
        let adam = AdamStep {
            lr: 0.05,
            beta1: b1,
            beta2: b2,
            eps: 1e-8,
            weight_decay: 0.0,
            bias_correction1: 1.0 - b1.powi(step as i32),
            bias_correction2: 1.0 - b2.powi(step as i32),
            decoupled: false,
        };
        f64::adam_update(&mut theta, &g, &mut m, &mut v, &adam);
        gate = LearnedGate {
            w: [theta[0] as f32, theta[1] as f32, theta[2] as f32],
            b: theta[3] as f32,
        };
    }
    (gate, f64::from(loss))
}
