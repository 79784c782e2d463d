//! Full-ranking evaluation of a model on split samples, with the model's
//! halting policy and its compute accounting.

use std::sync::atomic::{AtomicU32, Ordering};

use super::compute::ComputeReport;
use super::evaluator::{BatchScorer, EvalError, EvalReport, Evaluator};
use crate::data::{assemble, Interactions, Sample};
use crate::model::halting::indicators::IndicatorBasis;
use crate::model::{HaltingPolicy, Model};

/// Scores split samples with a model: each sample's last `max_len` history
/// items are encoded (no dropout), reasoned over under a halting policy and
/// ranked against all N items. Records every sample's number of steps.
pub struct SampleScorer<'a> {
    model: &'a Model,
    data: &'a Interactions,
    samples: &'a [Sample],
    policy: HaltingPolicy,
    basis: IndicatorBasis,
    steps: Vec<AtomicU32>,
}

impl<'a> SampleScorer<'a> {
    /// A scorer of `samples` (over `data`) by `model` at fixed depth.
    pub fn new(model: &'a Model, data: &'a Interactions, samples: &'a [Sample]) -> Self {
        Self::with_policy(model, data, samples, HaltingPolicy::Fixed)
    }

    /// A scorer that halts by `policy`, its indicators over the items.
    pub fn with_policy(
        model: &'a Model,
        data: &'a Interactions,
        samples: &'a [Sample],
        policy: HaltingPolicy,
    ) -> Self {
        Self::with_policy_in(model, data, samples, policy, IndicatorBasis::Items)
    }

    /// A scorer that halts by `policy`, its indicators over `basis`.
    /// Panics if the basis' centroids are not of the model's width.
    pub fn with_policy_in(
        model: &'a Model,
        data: &'a Interactions,
        samples: &'a [Sample],
        policy: HaltingPolicy,
        basis: IndicatorBasis,
    ) -> Self {
        if let IndicatorBasis::Prototypes(c) = &basis {
            assert_eq!(
                c.d(),
                model.config().d,
                "indicator centroids of another width"
            );
        }
        SampleScorer {
            model,
            data,
            samples,
            policy,
            basis,
            steps: samples.iter().map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Reasoning steps run per sample (0 before it was scored).
    pub fn steps(&self) -> Vec<u32> {
        self.steps
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect()
    }
}

impl BatchScorer for SampleScorer<'_> {
    fn num_items(&self) -> usize {
        self.model.config().n_items
    }

    fn score_batch(&self, sample_indices: &[usize], out: &mut [f32]) {
        let cfg = self.model.config();
        let batch = assemble(self.data, self.samples, sample_indices, cfg.max_len);
        let seqs = batch.seqs();
        if self.policy == HaltingPolicy::Fixed {
            let hidden = self.model.encode_batch(seqs);
            self.model.score_items(out, &hidden);
            for &i in sample_indices {
                self.steps[i].store(cfg.t_max as u32, Ordering::Relaxed);
            }
        } else {
            let scored = self
                .model
                .score_adaptive_in(seqs, &self.policy, &self.basis);
            out.copy_from_slice(&scored.scores);
            for (&i, &s) in sample_indices.iter().zip(&scored.steps) {
                self.steps[i].store(s, Ordering::Relaxed);
            }
        }
    }
}

/// An evaluation with its compute accounting.
#[derive(Clone, Debug)]
pub struct PolicyReport {
    /// Metrics and per-sample ranks.
    pub report: EvalReport,
    /// Steps and FLOPs per user.
    pub compute: ComputeReport,
    /// Steps run per sample.
    pub steps: Vec<u32>,
}

/// Ranks each sample's target among all items with `model` at fixed
/// depth; with `mask_history`, the sample's history items are left out of
/// its ranking.
pub fn evaluate(
    model: &Model,
    data: &Interactions,
    samples: &[Sample],
    batch_size: usize,
    mask_history: bool,
) -> Result<EvalReport, EvalError> {
    evaluate_policy(
        model,
        data,
        samples,
        &HaltingPolicy::Fixed,
        batch_size,
        mask_history,
    )
    .map(|r| r.report)
}

/// [`evaluate`] with halting by `policy` (indicators over the items), plus
/// the compute accounting.
pub fn evaluate_policy(
    model: &Model,
    data: &Interactions,
    samples: &[Sample],
    policy: &HaltingPolicy,
    batch_size: usize,
    mask_history: bool,
) -> Result<PolicyReport, EvalError> {
    evaluate_policy_in(
        model,
        data,
        samples,
        policy,
        &IndicatorBasis::Items,
        batch_size,
        mask_history,
    )
}

/// [`evaluate_policy`] with the halting indicators over `basis`; the
/// compute accounting counts them there.
pub fn evaluate_policy_in(
    model: &Model,
    data: &Interactions,
    samples: &[Sample],
    policy: &HaltingPolicy,
    basis: &IndicatorBasis,
    batch_size: usize,
    mask_history: bool,
) -> Result<PolicyReport, EvalError> {
    let scorer = SampleScorer::with_policy_in(model, data, samples, policy.clone(), basis.clone());
    let targets: Vec<u32> = samples.iter().map(|s| s.target(data)).collect();
    let evaluator = Evaluator {
        batch_size,
        ..Evaluator::default()
    };
    let report = if mask_history {
        evaluator.evaluate_excluding(&scorer, &targets, |i| samples[i].history(data))?
    } else {
        evaluator.evaluate(&scorer, &targets)?
    };
    let steps = scorer.steps();
    let max_len = model.config().max_len;
    let lens: Vec<usize> = samples
        .iter()
        .map(|s| s.history(data).len().min(max_len))
        .collect();
    let adaptive = *policy != HaltingPolicy::Fixed && model.config().t_max > 0;
    let compute =
        ComputeReport::from_steps_in(model.config(), &lens, &steps, adaptive.then_some(basis));
    Ok(PolicyReport {
        report,
        compute,
        steps,
    })
}
