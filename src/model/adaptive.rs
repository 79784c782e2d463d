//! Adaptive Reasoning Halting at inference (method.md §3), first version:
//! every row runs all T_max steps (`encode_steps`), then each row's halting
//! step is picked from its indicators and it is scored from that step's
//! prediction state. Same results as per-row early exit, without its
//! savings; the early-exit version with batch compaction replaces this.
use super::{Family, Model, SeqBatch};
use crate::eval::target_rank;
use crate::reasoning::halting::{LearnedGate, ThresholdRule};
use crate::reasoning::indicators::{item_probabilities, step_indicators, Indicators};

#[derive(Clone, Debug, PartialEq)]
pub enum HaltingPolicy {
    Fixed,
    Threshold(ThresholdRule<f32>),
    Learned(LearnedGate<f32>),
}
pub struct AdaptiveScores {
    pub scores: Vec<f32>,
    pub steps: Vec<u32>,
}
pub struct StepTrace {
    pub t_max: usize,
    pub states: Vec<f32>,
    pub indicators: Vec<Indicators<f32>>,
    pub ranks: Vec<u32>,
}
impl Model<f32> {
    fn prediction_states(&self, states: &[f32], b: usize) -> Vec<f32> {
        let cfg = self.config();
        let (d, s) = (cfg.d, cfg.t_max + 1);
        let mut out = states.to_vec();
        if cfg.family == Family::RearecErl {
            for r in 0..b {
                let mut acc = vec![0.0f32; d];
                for t in 0..s {
                    let h = &states[(r * s + t) * d..(r * s + t + 1) * d];
                    for j in 0..d {
                        acc[j] += h[j];
                    }
                    for j in 0..d {
                        out[(r * s + t) * d + j] = acc[j] / (t + 1) as f32;
                    }
                }
            }
        }
        out
    }

    pub fn score_adaptive(&self, seqs: &SeqBatch, policy: &HaltingPolicy) -> AdaptiveScores {
        let cfg = self.config();
        let (n, t_max, d) = (cfg.n_items, cfg.t_max, cfg.d);
        let b = seqs.len();
        if *policy == HaltingPolicy::Fixed || t_max == 0 {
            let h = self.encode_batch(seqs);
            let mut scores = vec![0.0; b * n];
            self.score_items(&mut scores, &h);
            return AdaptiveScores {
                scores,
                steps: vec![t_max as u32; b],
            };
        }
        let trace = self.step_trace(seqs, None);
        let pred = self.prediction_states(&trace.states, b);
        let mut scores = vec![0.0; b * n];
        let mut steps = Vec::with_capacity(b);
        for r in 0..b {
            let ind = &trace.indicators[r * t_max..(r + 1) * t_max];
            let t = match policy {
                HaltingPolicy::Threshold(rule) => rule.halting_step(ind),
                HaltingPolicy::Learned(g) => g.halting_step(ind),
                HaltingPolicy::Fixed => t_max,
            };
            let s = t_max + 1;
            self.score_items(
                &mut scores[r * n..(r + 1) * n],
                &pred[(r * s + t) * d..(r * s + t + 1) * d],
            );
            steps.push(t as u32);
        }
        AdaptiveScores { scores, steps }
    }

    pub fn step_trace(&self, seqs: &SeqBatch, targets: Option<&[u32]>) -> StepTrace {
        let cfg = self.config();
        let (n, t_max, d) = (cfg.n_items, cfg.t_max, cfg.d);
        let s = t_max + 1;
        let b = seqs.len();
        let states = self.encode_steps(seqs);
        let pred = self.prediction_states(&states, b);
        let items = &self.params.item_emb.data[d..];
        let mut indicators = vec![Indicators::default(); b * t_max];
        let mut ranks = Vec::new();
        let mut probs = vec![0.0f32; s * n];
        let mut scores = vec![0.0f32; n];
        for r in 0..b {
            let h = &states[r * s * d..(r + 1) * s * d];
            item_probabilities(&mut probs, h, items, s, n, d, cfg.tau as f32);
            for t in 1..s {
                step_indicators(
                    &mut indicators[r * t_max + t - 1..r * t_max + t],
                    &probs[t * n..(t + 1) * n],
                    &probs[(t - 1) * n..t * n],
                    &h[t * d..(t + 1) * d],
                    &h[(t - 1) * d..t * d],
                    n,
                    d,
                );
            }
            if let Some(y) = targets {
                for t in 0..s {
                    self.score_items(&mut scores, &pred[(r * s + t) * d..(r * s + t + 1) * d]);
                    ranks.push(target_rank(&scores, y[r], &[], &mut Vec::new()).unwrap());
                }
            }
        }
        StepTrace {
            t_max,
            states,
            indicators,
            ranks,
        }
    }
}
