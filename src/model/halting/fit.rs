//! Fitting the halting rules to a trained model (method.md §3): the
//! threshold rule calibrated on validation batches, and the learned gate
//! fitted with its BCE loss on training batches.
//!
//! The gate's inputs are the detached indicators, so its loss never reaches
//! the model's parameters: training it jointly or on the finished model
//! optimises the same four numbers. It is fitted on the selected (best
//! validation) model, so the gate matches the model it serves, by
//! full-batch Adam on λ_ARH·mean BCE over the indicators of the given
//! batches.
//!
//! Both are fitted on indicators computed in the space the model will
//! serve with (the [`IndicatorBasis`]): thresholds on Ĥ normalised by
//! ln k do not transfer to Ĥ normalised by ln N.

use super::calibration::{calibrate_thresholds, Calibration, CalibrationError, ThresholdGrid};
use super::indicators::{IndicatorBasis, Indicators};
use super::rules::{gate_labels, LearnedGate};
use super::{HaltingConfig, StepTrace};
use crate::batch::TrainBatch;
use crate::kernels::{AdamStep, Kernels};
use crate::model::Model;

/// Full-depth traces of every sample of `batches`: indicators over `basis`
/// (samples × T_max) and target ranks (samples × (T_max + 1)).
pub fn trace(
    model: &Model,
    basis: &IndicatorBasis,
    batches: &[TrainBatch],
) -> (Vec<Indicators<f32>>, Vec<u32>) {
    let mut indicators = Vec::new();
    let mut ranks = Vec::new();
    for batch in batches {
        let StepTrace {
            indicators: ind,
            ranks: r,
            ..
        } = model.step_trace_in(batch.seqs(), Some(batch.targets()), basis);
        indicators.extend(ind);
        ranks.extend(r);
    }
    (indicators, ranks)
}

/// The threshold sweep on `batches` (validation), the indicators over
/// `basis`: prints nothing; the result's `Display` is the
/// accuracy-vs-average-steps curve.
pub fn calibrate(
    model: &Model,
    basis: &IndicatorBasis,
    batches: &[TrainBatch],
    config: &HaltingConfig,
) -> Result<Calibration<f32>, CalibrationError> {
    let t_max = model.config().t_max;
    let (indicators, ranks) = trace(model, basis, batches);
    let samples = batches.iter().map(TrainBatch::len).sum();
    let grid = ThresholdGrid::from_quantiles(&indicators, config.grid_levels, config.t_min);
    calibrate_thresholds(&indicators, &ranks, samples, t_max, &grid, config.tolerance)
}

/// Fits the learned gate on the samples of `batches` (training samples),
/// starting from w = 0, b = 0, on indicators over `basis`. Returns the gate
/// and its final mean BCE (× λ_ARH).
pub fn fit_gate(
    model: &Model,
    basis: &IndicatorBasis,
    batches: &[TrainBatch],
    config: &HaltingConfig,
) -> (LearnedGate<f32>, f64) {
    let t_max = model.config().t_max;
    let (indicators, ranks) = trace(model, basis, batches);
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
