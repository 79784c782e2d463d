//! Helpers of the adaptive-halting tests (`model_adaptive*.rs`): small
//! models far from the init, random batches and policies, and the family
//! prediction state recomputed from a step trace.
#![allow(dead_code)]

use dtrec::kernels::rng::CounterRng;
use dtrec::kernels::Kernels;
use dtrec::model::halting::StepTrace;
use dtrec::model::halting::{LearnedGate, ThresholdGrid, ThresholdRule};
use dtrec::model::{Family, HaltingPolicy, Model, ModelConfig};
use dtrec::SeqBatch;

pub fn model_with(cfg: ModelConfig, seed: u64) -> Model {
    let p = super::random_params(&cfg, seed);
    Model::<f64>::from_params(cfg, p).unwrap().cast::<f32>()
}

/// `b` histories of lengths 0..=L (row 0 non-empty, several empty ones
/// for b ≥ 8) with their targets.
pub fn batch(m: &Model, b: usize, seed: u64) -> (SeqBatch, Vec<u32>) {
    let tb = super::random_batch(m.config(), b, seed);
    (tb.seqs().clone(), tb.targets().to_vec())
}

pub fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Family prediction state (d) of row `row` after t steps, from a trace's
/// states, accumulated as `encode_batch` does.
pub fn prediction_state(m: &Model, trace: &StepTrace, row: usize, t: usize) -> Vec<f32> {
    let d = m.config().d;
    let s = trace.t_max + 1;
    let st = &trace.states[row * s * d..(row + 1) * s * d];
    if m.config().family == Family::RearecErl {
        let mut out = vec![0.0f32; d];
        let w = 1.0 / (t + 1) as f32;
        for h in st[..(t + 1) * d].chunks_exact(d) {
            f32::axpy(&mut out, w, h);
        }
        out
    } else {
        st[t * d..(t + 1) * d].to_vec()
    }
}

/// Random rules whose thresholds are quantiles of the observed indicators
/// (so they split the rows between steps) plus random gates.
pub fn random_policies(trace: &StepTrace, seed: u64) -> Vec<HaltingPolicy> {
    let rng = CounterRng::new(seed);
    let grid = ThresholdGrid::from_quantiles(&trace.indicators, 5, 1);
    let pick = |axis: &[f32], i: u64| axis[rng.below(0, i, axis.len() as u64) as usize];
    let mut out = Vec::new();
    for i in 0..12u64 {
        out.push(HaltingPolicy::Threshold(ThresholdRule {
            t_min: 1 + rng.below(1, i, 2) as usize,
            theta_h: pick(&grid.theta_h, 3 * i),
            theta_d: pick(&grid.theta_d, 3 * i + 1),
            theta_delta: pick(&grid.theta_delta, 3 * i + 2),
        }));
        let n = |j: u64| rng.normal(2, 4 * i + j) as f32 * 4.0;
        out.push(HaltingPolicy::Learned(LearnedGate {
            w: [n(0), n(1), n(2)],
            b: n(3),
        }));
    }
    out
}
