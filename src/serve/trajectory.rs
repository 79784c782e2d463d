//! Interpretability: the reasoning trajectory of one user — per step the
//! halting indicators, the gate's probability, the best prototype at each
//! level of the hierarchy and the top items.

use std::fmt;

use super::vocab::{top_k_items, Recommendation};
use super::{Recommender, ServeError};
use crate::batch::SeqBatch;
use crate::model::halting::indicators::{IndicatorSpace, Indicators};
use crate::model::HaltingPolicy;

/// One step of a trajectory.
#[derive(Clone, Debug, PartialEq)]
pub struct TrajectoryStep {
    /// Step t (0 = the encoder's h₀).
    pub step: usize,
    /// Ĥ_t, D_t, Δ_t (None at step 0).
    pub indicators: Option<Indicators<f32>>,
    /// Whether the serving policy stops here.
    pub halts: bool,
    /// Per level of the hierarchy (coarse to fine): the best prototype's
    /// cluster id, its score ⟨h_t, c⟩ and its number of items.
    pub prototypes: Vec<(u32, f32, usize)>,
    /// The top items predicted from h_t.
    pub top_items: Vec<Recommendation>,
}

/// The full-depth trajectory of one history.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// Steps 0 … T_max.
    pub steps: Vec<TrajectoryStep>,
    /// The step the serving policy halts at (T_max at fixed depth, 0 for SASRec).
    pub halting_step: usize,
    /// The serving policy's name.
    pub policy: &'static str,
    /// The space of the indicators.
    pub indicators: IndicatorSpace,
}

impl Recommender {
    /// The trajectory of `history` (external ids, oldest first; unknown
    /// ids are an error): every step runs, and the serving policy's halting
    /// step is marked. `k` items per step, history excluded.
    pub fn trajectory(&self, history: &[&str], k: usize) -> Result<Trajectory, ServeError> {
        let cfg = self.model().config();
        let dense = self.vocab.to_dense(history)?;
        let l = cfg.max_len;
        let kept = &dense[dense.len().saturating_sub(l)..];
        let mut items = vec![0u32; l];
        items[l - kept.len()..].copy_from_slice(kept);
        let seqs = SeqBatch::new(items, vec![kept.len() as u32], l, cfg.n_items)
            .expect("dense ids come from the vocabulary");
        let trace = self.model().step_trace_in(&seqs, None, &self.indicators);
        let (d, t_max) = (cfg.d, cfg.t_max);
        let halting_step = match &self.halting {
            _ if t_max == 0 => 0,
            HaltingPolicy::Fixed => t_max,
            HaltingPolicy::Threshold(rule) => rule.halting_step(&trace.indicators),
            HaltingPolicy::Learned(gate) => gate.halting_step(&trace.indicators),
        };
        let mut scores = vec![0.0f32; cfg.n_items];
        let mut steps = Vec::with_capacity(t_max + 1);
        for t in 0..=t_max {
            let h = &trace.states[t * d..(t + 1) * d];
            self.model().score_items(&mut scores, h);
            let prototypes = self.prototypes.as_ref().map_or_else(Vec::new, |p| {
                (0..p.levels().len())
                    .filter_map(|level| {
                        let (c, score) = p.top_cluster(level, h)?;
                        let size = p.levels()[level]
                            .item_cluster
                            .iter()
                            .filter(|&&x| x == c)
                            .count();
                        Some((c, score, size))
                    })
                    .collect()
            });
            steps.push(TrajectoryStep {
                step: t,
                indicators: t.checked_sub(1).map(|i| trace.indicators[i]),
                halts: t == halting_step,
                prototypes,
                top_items: top_k_items(&self.vocab, &scores, k, &dense)?,
            });
        }
        let policy = match &self.halting {
            _ if t_max == 0 => "none",
            HaltingPolicy::Fixed => "fixed",
            HaltingPolicy::Threshold(_) => "threshold",
            HaltingPolicy::Learned(_) => "learned",
        };
        Ok(Trajectory {
            steps,
            halting_step,
            policy,
            indicators: self.indicators.space(),
        })
    }
}

impl fmt::Display for Trajectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "reasoning trajectory ({} steps; the {} policy halts after step {}; indicators over the {})",
            self.steps.len().saturating_sub(1),
            self.policy,
            self.halting_step,
            self.indicators.name()
        )?;
        for s in &self.steps {
            let mark = if s.halts { "*" } else { " " };
            match &s.indicators {
                Some(i) => write!(
                    f,
                    "{mark} step {}: entropy {:.4}  JS {:.5}  delta {:.4}",
                    s.step, i.entropy, i.js, i.delta
                )?,
                None => write!(f, "{mark} step {}: (encoder output)", s.step)?,
            }
            writeln!(f)?;
            if !s.prototypes.is_empty() {
                let levels: Vec<String> = s
                    .prototypes
                    .iter()
                    .enumerate()
                    .map(|(level, (c, score, size))| {
                        format!("L{level}:#{c}({size} items, {score:.2})")
                    })
                    .collect();
                writeln!(f, "    prototypes {}", levels.join("  "))?;
            }
            let items: Vec<String> = s
                .top_items
                .iter()
                .map(|r| format!("{} ({:.2})", r.item, r.score))
                .collect();
            writeln!(f, "    top items  {}", items.join(", "))?;
        }
        Ok(())
    }
}
