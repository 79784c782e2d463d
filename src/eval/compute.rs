//! Compute accounting of an evaluation run (method.md §4): average
//! reasoning steps and FLOPs per user, split into encoding, reasoning
//! steps, halting indicators and item scoring, next to what fixed depth
//! T_max would cost on the same users (see [`crate::model::flops`] for
//! the counting conventions). Adaptive runs are counted as
//! [`Model::score_adaptive`](crate::model::Model::score_adaptive) executes
//! them for DTRec and ReaRec-PRL (a step's logits serve as the indicators'
//! input and, at the halting step, as the scores); for ReaRec-ERL, which
//! scores the mean state, that is a lower bound by one scoring pass.
//! With the indicators over the finest prototype level
//! ([`ComputeReport::from_steps_in`] with [`IndicatorBasis::Prototypes`]),
//! the count is exact for every family: indicators over the k centroids
//! and one item scoring pass per user at its halting step.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::flops::{FlopCounts, FlopDims};
use crate::model::halting::indicators::{IndicatorBasis, IndicatorSpace};
use crate::model::ModelConfig;

/// Per-user averages of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComputeReport {
    /// Users (samples) counted.
    pub users: u64,
    /// T_max of the model.
    pub t_max: usize,
    /// Whether the halting indicators ran (an adaptive policy).
    pub adaptive: bool,
    /// The space the indicators ran in (items when not adaptive).
    #[serde(default)]
    pub indicator_space: IndicatorSpace,
    /// Outcomes of the indicators' distributions: N items or k prototypes
    /// (0 when not adaptive).
    #[serde(default)]
    pub indicator_outcomes: u64,
    /// Mean reasoning steps run.
    pub avg_steps: f64,
    /// Users per number of steps run (entry t = users that ran t steps).
    pub steps_histogram: Vec<u64>,
    /// Mean FLOPs of encoding the history.
    pub encoder_flops: f64,
    /// Mean FLOPs of the reasoning steps run.
    pub reasoning_flops: f64,
    /// Mean FLOPs of the halting indicators (0 at fixed depth).
    pub indicator_flops: f64,
    /// Mean FLOPs of scoring all items (0 when the last indicator step's
    /// logits are the scores).
    pub scoring_flops: f64,
    /// Mean FLOPs of the reasoning steps at fixed depth T_max.
    pub fixed_reasoning_flops: f64,
    /// Mean total FLOPs at fixed depth T_max (encoder + T_max steps + scoring).
    pub fixed_total_flops: f64,
}

impl ComputeReport {
    /// Mean total FLOPs per user.
    pub fn total_flops(&self) -> f64 {
        self.encoder_flops + self.reasoning_flops + self.indicator_flops + self.scoring_flops
    }

    /// Reasoning FLOPs relative to fixed depth (1 for SASRec, which has none).
    pub fn relative_reasoning(&self) -> f64 {
        if self.fixed_reasoning_flops > 0.0 {
            self.reasoning_flops / self.fixed_reasoning_flops
        } else {
            1.0
        }
    }

    /// Total FLOPs relative to fixed depth.
    pub fn relative_total(&self) -> f64 {
        self.total_flops() / self.fixed_total_flops
    }

    /// Accounts `steps[i]` reasoning steps for a user with valid history
    /// length `history_lens[i]` (already capped at max_len), the indicators
    /// (if `adaptive`) over the items. Panics if the slices differ in
    /// length or the model dimensions are invalid (a model that was built
    /// has valid ones).
    pub fn from_steps(
        config: &ModelConfig,
        history_lens: &[usize],
        steps: &[u32],
        adaptive: bool,
    ) -> Self {
        Self::from_steps_in(
            config,
            history_lens,
            steps,
            adaptive.then_some(&IndicatorBasis::Items),
        )
    }

    /// [`from_steps`](Self::from_steps) with the indicators of an adaptive
    /// run over `indicators` (`None`: fixed depth, no indicators), counted
    /// as [`FlopCounts::adaptive_in`]. Panics as `from_steps`.
    pub fn from_steps_in(
        config: &ModelConfig,
        history_lens: &[usize],
        steps: &[u32],
        indicators: Option<&IndicatorBasis>,
    ) -> Self {
        assert_eq!(history_lens.len(), steps.len(), "one step count per user");
        let t_max = config.t_max;
        let adaptive = indicators.is_some();
        let space = indicators.map_or(IndicatorSpace::Items, IndicatorBasis::space);
        let outcomes = indicators.map_or(config.n_items, |b| b.outcomes(config.n_items)) as u64;
        let mut counts: BTreeMap<usize, FlopCounts> = BTreeMap::new();
        let mut out = ComputeReport {
            users: steps.len() as u64,
            t_max,
            adaptive,
            indicator_space: space,
            indicator_outcomes: if adaptive { outcomes } else { 0 },
            avg_steps: 0.0,
            steps_histogram: vec![0; t_max + 1],
            encoder_flops: 0.0,
            reasoning_flops: 0.0,
            indicator_flops: 0.0,
            scoring_flops: 0.0,
            fixed_reasoning_flops: 0.0,
            fixed_total_flops: 0.0,
        };
        for (&len, &s) in history_lens.iter().zip(steps) {
            let c = counts.entry(len).or_insert_with(|| {
                let dims = FlopDims {
                    d: config.d as u64,
                    inner: config.inner as u64,
                    n_layers: config.n_layers as u64,
                    n_heads: config.n_heads as u64,
                    seq_len: len as u64,
                    n_items: config.n_items as u64,
                    t_max: t_max as u64,
                };
                FlopCounts::with_indicator_outcomes(&dims, outcomes)
                    .expect("a built model has valid dimensions")
            });
            let s = (s as usize).min(t_max);
            out.steps_histogram[s] += 1;
            out.avg_steps += s as f64;
            out.encoder_flops += c.encoder as f64;
            out.reasoning_flops += c.reasoning(s) as f64;
            if adaptive && s > 0 {
                // as `Model::score_adaptive_in` runs: p₀, then each step's
                // logits with its indicators, except at T_max, where every
                // row stops anyway; item scores once per row unless the
                // halting step's item logits are them
                let (indicators, scoring) = c.adaptive_in(s, space);
                out.indicator_flops += indicators as f64;
                out.scoring_flops += scoring as f64;
            } else {
                out.scoring_flops += c.scoring as f64;
            }
            out.fixed_reasoning_flops += c.reasoning(t_max) as f64;
            out.fixed_total_flops += c.fixed_depth(t_max) as f64;
        }
        let n = (steps.len() as f64).max(1.0);
        for x in [
            &mut out.avg_steps,
            &mut out.encoder_flops,
            &mut out.reasoning_flops,
            &mut out.indicator_flops,
            &mut out.scoring_flops,
            &mut out.fixed_reasoning_flops,
            &mut out.fixed_total_flops,
        ] {
            *x /= n;
        }
        out
    }
}

impl fmt::Display for ComputeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = |x: f64| x / 1e6;
        writeln!(
            f,
            "compute per user: {:.3} of {} reasoning steps on average (users per steps: {:?})",
            self.avg_steps, self.t_max, self.steps_histogram
        )?;
        let over = match self.indicator_space {
            IndicatorSpace::Prototypes if self.adaptive => {
                format!(" (over {} prototypes)", self.indicator_outcomes)
            }
            _ => String::new(),
        };
        writeln!(
            f,
            "  MFLOPs: encoder {:.3}, reasoning {:.3}, indicators{over} {:.3}, scoring {:.3}, total {:.3}",
            m(self.encoder_flops),
            m(self.reasoning_flops),
            m(self.indicator_flops),
            m(self.scoring_flops),
            m(self.total_flops())
        )?;
        write!(
            f,
            "  vs fixed depth: reasoning {:.1}%, total {:.1}%",
            100.0 * self.relative_reasoning(),
            100.0 * self.relative_total()
        )
    }
}
