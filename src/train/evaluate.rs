//! Full-ranking evaluation of a model on split samples.

use crate::data::{Batch, Interactions, Sample};
use crate::eval::{BatchScorer, EvalError, EvalReport, Evaluator};
use crate::model::{Sasrec, SeqBatch};

/// Scores split samples with a model: each sample's last `max_len` history
/// items are encoded (no dropout) and ranked against all N items.
pub struct SampleScorer<'a> {
    model: &'a Sasrec,
    data: &'a Interactions,
    samples: &'a [Sample],
}

impl<'a> SampleScorer<'a> {
    /// A scorer of `samples` (over `data`) by `model`.
    pub fn new(model: &'a Sasrec, data: &'a Interactions, samples: &'a [Sample]) -> Self {
        SampleScorer {
            model,
            data,
            samples,
        }
    }
}

impl BatchScorer for SampleScorer<'_> {
    fn num_items(&self) -> usize {
        self.model.config().n_items
    }

    fn score_batch(&self, sample_indices: &[usize], out: &mut [f32]) {
        let cfg = self.model.config();
        let batch = Batch::assemble(self.data, self.samples, sample_indices, cfg.max_len);
        let lengths = batch.lengths.iter().map(|&l| l as u32).collect();
        // Samples come from a split of `data`, whose ids the model was sized
        // for, so validation can only fail on a caller bug.
        let seqs = SeqBatch::new(batch.items, lengths, cfg.max_len, cfg.n_items)
            .expect("split samples form a valid batch for a model sized to their data");
        let hidden = self.model.encode_batch(&seqs);
        self.model.score_items(out, &hidden);
    }
}

/// Ranks each sample's target among all items with `model`; with
/// `mask_history`, the sample's history items are left out of its ranking.
pub fn evaluate(
    model: &Sasrec,
    data: &Interactions,
    samples: &[Sample],
    batch_size: usize,
    mask_history: bool,
) -> Result<EvalReport, EvalError> {
    let scorer = SampleScorer::new(model, data, samples);
    let targets: Vec<u32> = samples.iter().map(|s| s.target(data)).collect();
    let evaluator = Evaluator {
        batch_size,
        ..Evaluator::default()
    };
    if mask_history {
        evaluator.evaluate_excluding(&scorer, &targets, |i| samples[i].history(data))
    } else {
        evaluator.evaluate(&scorer, &targets)
    }
}
