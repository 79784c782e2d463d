//! Adaptive Reasoning Halting at inference (method.md §3, issue 5): each
//! row runs reasoning steps until its halting rule says stop, and halted
//! rows leave the batch.
//!
//! Execution. Histories are processed in chunks of [`CHUNK`] (in parallel
//! over chunks for large batches, like [`Model::encode_batch`]; a row's
//! result does not depend on the chunking or the thread count). Per chunk:
//!
//! 1. the encoder runs once without dropout (packed rows, the last block
//!    only for the last column), giving h₀ and every layer's history K/V;
//! 2. step 0: the logits z₀ = h₀·E[1..N]ᵀ/τ of every row, p₀ = softmax(z₀)
//!    and H(p₀);
//! 3. step k = 1 … T_max, for the RUNNING rows only: one cached reasoning
//!    step (`InferChain::step`), their logits z_k (one scoring pass),
//!    p_k and the indicators Ĥ_k, D_k = JS(p_k, p_{k−1}), Δ_k on the fast
//!    f32 path ([`softmax_entropy`], [`mixture_entropy`],
//!    [`fast_indicators`]); the rows whose rule stops (all of them at
//!    T_max) emit their scores — z_k itself for DTRec and ReaRec-PRL, the
//!    scores of mean(h₀ … h_k) for ReaRec-ERL — and are compacted away
//!    ([`ActiveRows`], [`compact_rows`]): their keys, values, queries,
//!    blocks and logits are no longer computed. At k = T_max every running
//!    row stops whatever its indicators, so they are not computed there
//!    (nor z_T for ReaRec-ERL, which scores its mean state).
//!
//! [`HaltingPolicy::Fixed`] skips the indicators entirely: it is
//! [`Model::encode_batch`] + [`Model::score_items`], bit for bit.
//!
//! Indicator space. The above is the item space ([`IndicatorBasis::Items`],
//! what [`Model::score_adaptive`] and [`Model::step_trace`] use). With
//! [`IndicatorBasis::Prototypes`] ([`Model::score_adaptive_in`],
//! [`Model::step_trace_in`]) the logits of steps 0 … T_max − 1 are
//! z_k = h_k·Cᵀ/τ over the k centroids C instead (same fast path, with k
//! outcomes), and the item scores (N) are computed only for the rows that
//! halt, once, from their prediction state at that step (one batched
//! scoring pass over the halted rows of the step).
//!
//! ```
//! use dtrec::model::halting::{AdaptiveScores, ThresholdRule};
//! use dtrec::model::{Family, HaltingPolicy, Model, ModelConfig};
//! use dtrec::SeqBatch;
//! let cfg = ModelConfig { max_len: 4, d: 8, inner: 16, ..ModelConfig::reasoning(10, Family::Dtrec, 3) };
//! let model = Model::new(cfg, 7).unwrap();
//! let seqs = SeqBatch::new(vec![0, 1, 2, 3, 0, 0, 0, 0], vec![3, 0], 4, 10).unwrap();
//! // stop as soon as allowed (thresholds +∞): one step per row
//! let eager = ThresholdRule { t_min: 1, theta_h: f32::INFINITY, theta_d: f32::INFINITY, theta_delta: f32::INFINITY };
//! let AdaptiveScores { scores, steps } = model.score_adaptive(&seqs, &HaltingPolicy::Threshold(eager));
//! assert_eq!((scores.len(), steps), (2 * 10, vec![1, 1]));
//! let fixed = model.score_adaptive(&seqs, &HaltingPolicy::Fixed);
//! assert_eq!(fixed.steps, vec![3, 3]);
//! // per-step diagnostics at full depth: states, indicators, target ranks
//! let trace = model.step_trace(&seqs, Some(&[4, 9]));
//! assert_eq!((trace.indicators.len(), trace.ranks.len()), (2 * 3, 2 * 4));
//! ```

use rayon::prelude::*;

use crate::batch::SeqBatch;
use crate::eval::target_rank;
use crate::kernels::Kernels;
use crate::model::chain::InferChain;
use crate::model::encoder::Work;
use crate::model::halting::compaction::{compact_rows, ActiveRows};
use crate::model::halting::indicators::{
    fast_indicators, mixture_entropy, softmax_entropy, IndicatorBasis, Indicators,
};
use crate::model::halting::{LearnedGate, ThresholdRule};
use crate::model::{Family, Model, CHUNK};
use crate::nn::attention::AttnDims;
use crate::nn::tensor::{fit, reset};

/// How a reasoning model picks its number of steps at inference.
#[derive(Clone, Debug, PartialEq)]
pub enum HaltingPolicy {
    /// Always T_max steps: scores from the family's prediction state exactly as
    /// `encode_batch` + `score_items` (bit-identical).
    Fixed,
    /// Rule (A) of method.md: stop at the first t ≥ t_min whose indicators
    /// pass every threshold ([`ThresholdRule::stops_at`]).
    Threshold(ThresholdRule<f32>),
    /// Rule (B) of method.md: stop at the first t with
    /// [`LearnedGate::prob`] ≥ 0.5.
    Learned(LearnedGate<f32>),
}

/// Output of adaptive scoring.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveScores {
    /// (B, N) full-ranking scores (h·E[1..N]ᵀ/τ, column j = item j+1) from each row's
    /// prediction state at its halting step.
    pub scores: Vec<f32>,
    /// (B) reasoning steps run per row: 1..=T_max (T_max under Fixed; 0 for SASRec / T_max = 0).
    pub steps: Vec<u32>,
}

/// Full-depth per-step diagnostics (for threshold calibration, gate fitting, trajectory printing).
#[derive(Clone, Debug, PartialEq)]
pub struct StepTrace {
    /// T_max of the model (0 for SASRec: no indicators, one state).
    pub t_max: usize,
    /// (B, T+1, d) states h_0..h_T (no dropout), as encode_steps.
    pub states: Vec<f32>,
    /// (B × T_max) indicators; row b step t (1..=T) at b*T_max + t-1.
    pub indicators: Vec<Indicators<f32>>,
    /// (B × (T_max+1)) rank of each row's target when predicting from step t's prediction
    /// state (rank = 1 + #{v ≠ y : s_v ≥ s_y}, ties against the model — same as eval::target_rank);
    /// empty when no targets are given.
    pub ranks: Vec<u32>,
}

/// When a running row stops (besides the forced stop at T_max).
#[derive(Clone, Copy)]
enum Rule<'a> {
    Never,
    Threshold(&'a ThresholdRule<f32>),
    Learned(&'a LearnedGate<f32>),
}

impl Rule<'_> {
    /// The same decision as the rules' `halting_step` at step t.
    fn stops(&self, t: usize, ind: &Indicators<f32>) -> bool {
        match self {
            Rule::Never => false,
            Rule::Threshold(rule) => rule.stops_at(t, ind),
            Rule::Learned(gate) => gate.prob(ind) >= 0.5,
        }
    }
}

/// Where a chunk's results go (slices of the chunk's rows).
enum Sink<'a> {
    /// Scores (nb, N) and steps (nb) at each row's halting step.
    Scores {
        scores: &'a mut [f32],
        steps: &'a mut [u32],
    },
    /// Full-depth trace: states (nb, T+1, d), indicators (nb, T), ranks
    /// (nb, T+1) of `targets` (nb) when given.
    Trace {
        states: &'a mut [f32],
        indicators: &'a mut [Indicators<f32>],
        ranks: Option<(&'a [u32], &'a mut [u32])>,
    },
}

/// Buffers of one chunk run, reused from chunk to chunk.
#[derive(Debug, Default)]
struct ChunkWork {
    /// The encoder's packed rows, per-layer keys/values and h₀ (no dropout).
    encoder: Work<f32>,
    chain: InferChain<f32>,
    /// (rows, T+1, d) states h₀ … h_k of the running rows.
    states: Vec<f32>,
    /// (rows, m) logits of the current step, p_k and p_{k−1}, over the m
    /// outcomes of the indicator space (N items or k centroids).
    logits: Vec<f32>,
    probs: Vec<f32>,
    probs_prev: Vec<f32>,
    /// (rows) H(p_{k−1}) in nats.
    entropy_prev: Vec<f64>,
    /// (rows, d) prediction states of the rows being scored.
    pred_states: Vec<f32>,
    /// (rows, N) item scores of `pred_states`.
    item_scores: Vec<f32>,
    stop: Vec<bool>,
    rank_scratch: Vec<u32>,
}

impl Model<f32> {
    /// Scores (B, N) of every history with per-row Adaptive Reasoning
    /// Halting under `policy` (module docs): each row stops at the step its
    /// rule picks (the rules' `halting_step` semantics: t_min respected, a
    /// row that never stops runs to T_max) and is scored from its family's
    /// prediction state at that step (h_t; mean(h₀ … h_t) for ReaRec-ERL).
    /// Halted rows leave the batch. SASRec (T_max = 0) and
    /// [`HaltingPolicy::Fixed`] give exactly `encode_batch` + `score_items`.
    /// Deterministic whatever the thread count.
    ///
    /// The indicators are over the items ([`IndicatorBasis::Items`]; see
    /// [`score_adaptive_in`](Self::score_adaptive_in) for the prototype
    /// space).
    ///
    /// Panics if `seqs` was validated for a larger `max_len` or `n_items`
    /// than the model's (a caller bug).
    pub fn score_adaptive(&self, seqs: &SeqBatch, policy: &HaltingPolicy) -> AdaptiveScores {
        self.score_adaptive_in(seqs, policy, &IndicatorBasis::Items)
    }

    /// [`score_adaptive`](Self::score_adaptive) with the indicators
    /// computed over `basis` (module docs): with
    /// [`IndicatorBasis::Prototypes`], p_t is over its k centroids and each
    /// row's item scores are computed once, at its halting step. The scores
    /// are those of the same prediction state as in the item space; only
    /// the indicators (hence the halting steps) differ. Ignored by
    /// [`HaltingPolicy::Fixed`] and SASRec.
    ///
    /// Panics if the centroids are not of the model's width d, or if `seqs`
    /// was validated for a larger `max_len` or `n_items` than the model's
    /// (caller bugs).
    pub fn score_adaptive_in(
        &self,
        seqs: &SeqBatch,
        policy: &HaltingPolicy,
        basis: &IndicatorBasis,
    ) -> AdaptiveScores {
        let (n, t_max) = (self.config().n_items, self.config().t_max);
        let b = seqs.len();
        let rule = match policy {
            HaltingPolicy::Threshold(rule) => Rule::Threshold(rule),
            HaltingPolicy::Learned(gate) => Rule::Learned(gate),
            HaltingPolicy::Fixed => Rule::Never,
        };
        if matches!(policy, HaltingPolicy::Fixed) || t_max == 0 {
            let hidden = self.encode_batch(seqs);
            let mut scores = vec![0.0; b * n];
            self.score_items(&mut scores, &hidden);
            return AdaptiveScores {
                scores,
                steps: vec![t_max as u32; b],
            };
        }
        self.check_seqs(seqs);
        self.check_basis(basis);
        let mut scores = vec![0.0f32; b * n];
        let mut steps = vec![0u32; b];
        // every buffer of a ChunkWork is reset before use: which chunk a
        // work ran before never affects a result
        let run = |work: &mut ChunkWork,
                   (c, (scores, steps)): (usize, (&mut [f32], &mut [u32]))| {
            let range = c * CHUNK..c * CHUNK + steps.len();
            self.run_chunk(
                work,
                seqs,
                range,
                rule,
                basis,
                Sink::Scores { scores, steps },
            );
        };
        if b <= CHUNK {
            let mut work = ChunkWork::default();
            scores
                .chunks_mut(CHUNK * n)
                .zip(steps.chunks_mut(CHUNK))
                .enumerate()
                .for_each(|chunk| run(&mut work, chunk));
        } else {
            scores
                .par_chunks_mut(CHUNK * n)
                .zip(steps.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each_init(ChunkWork::default, run);
        }
        AdaptiveScores { scores, steps }
    }

    /// Every row at full depth T_max with its per-step diagnostics
    /// ([`StepTrace`]): the states h₀ … h_T, the indicators of steps
    /// 1 … T (computed exactly as [`score_adaptive`](Self::score_adaptive)
    /// computes them, so applying a rule to them reproduces its decisions)
    /// and, with `targets` (B dense ids), the target's rank at every step.
    /// Parallel over chunks for large batches; deterministic.
    ///
    /// The indicators are over the items; see
    /// [`step_trace_in`](Self::step_trace_in) for the prototype space.
    ///
    /// Panics if `targets` does not hold B ids in 1..=N, or if `seqs` was
    /// validated for a larger model (caller bugs).
    pub fn step_trace(&self, seqs: &SeqBatch, targets: Option<&[u32]>) -> StepTrace {
        self.step_trace_in(seqs, targets, &IndicatorBasis::Items)
    }

    /// [`step_trace`](Self::step_trace) with the indicators computed over
    /// `basis`, exactly as [`score_adaptive_in`](Self::score_adaptive_in)
    /// computes them with the same basis (states and ranks do not depend
    /// on the basis).
    ///
    /// Panics if the centroids are not of the model's width d, if
    /// `targets` does not hold B ids in 1..=N, or if `seqs` was validated
    /// for a larger model (caller bugs).
    pub fn step_trace_in(
        &self,
        seqs: &SeqBatch,
        targets: Option<&[u32]>,
        basis: &IndicatorBasis,
    ) -> StepTrace {
        self.check_seqs(seqs);
        self.check_basis(basis);
        let cfg = self.config();
        let (d, t_max, s) = (cfg.d, cfg.t_max, cfg.t_max + 1);
        let b = seqs.len();
        if let Some(t) = targets {
            assert_eq!(t.len(), b, "step_trace: one target per history");
        }
        let n_chunks = b.div_ceil(CHUNK);
        let run = |work: &mut ChunkWork, c: usize| {
            let range = c * CHUNK..(c * CHUNK + CHUNK).min(b);
            let nb = range.len();
            let mut states = vec![0.0f32; nb * s * d];
            let mut indicators = vec![Indicators::default(); nb * t_max];
            let mut ranks = vec![0u32; if targets.is_some() { nb * s } else { 0 }];
            let chunk_targets = targets.map(|t| &t[range.clone()]);
            self.run_chunk(
                work,
                seqs,
                range,
                Rule::Never,
                basis,
                Sink::Trace {
                    states: &mut states,
                    indicators: &mut indicators,
                    ranks: chunk_targets.map(|t| (t, &mut ranks[..])),
                },
            );
            (states, indicators, ranks)
        };
        let parts: Vec<_> = if b <= CHUNK {
            let mut work = ChunkWork::default();
            (0..n_chunks).map(|c| run(&mut work, c)).collect()
        } else {
            (0..n_chunks)
                .into_par_iter()
                .map_init(ChunkWork::default, run)
                .collect()
        };
        let mut trace = StepTrace {
            t_max,
            states: Vec::with_capacity(b * s * d),
            indicators: Vec::with_capacity(b * t_max),
            ranks: Vec::new(),
        };
        for (states, indicators, ranks) in parts {
            trace.states.extend_from_slice(&states);
            trace.indicators.extend_from_slice(&indicators);
            trace.ranks.extend_from_slice(&ranks);
        }
        trace
    }

    fn check_basis(&self, basis: &IndicatorBasis) {
        if let IndicatorBasis::Prototypes(c) = basis {
            assert_eq!(
                c.d(),
                self.config().d,
                "indicator centroids of width {} for a model of width {}",
                c.d(),
                self.config().d
            );
        }
    }

    fn check_seqs(&self, seqs: &SeqBatch) {
        let cfg = self.config();
        assert!(
            seqs.max_len() <= cfg.max_len && seqs.n_items() <= cfg.n_items,
            "batch validated for max_len {} / n_items {}, model has {} / {}",
            seqs.max_len(),
            seqs.n_items(),
            cfg.max_len,
            cfg.n_items
        );
    }

    /// The prediction state of a row whose states h₀ … h_k are `states`
    /// ((k+1) × d) into `out` (d): h_k, or for ReaRec-ERL their mean
    /// accumulated exactly as `encode_batch` does.
    fn prediction_state(&self, out: &mut [f32], states: &[f32]) {
        let d = out.len();
        if self.config().family == Family::RearecErl {
            out.fill(0.0);
            let w = 1.0 / (states.len() / d) as f32;
            for h in states.chunks_exact(d) {
                f32::axpy(out, w, h);
            }
        } else {
            out.copy_from_slice(&states[states.len() - d..]);
        }
    }

    /// Runs the chunk `range` of `seqs` with per-row halting by `rule`,
    /// the indicators over `basis` (module docs), and writes its results
    /// to `sink`.
    #[allow(clippy::too_many_arguments)]
    fn run_chunk(
        &self,
        w: &mut ChunkWork,
        seqs: &SeqBatch,
        range: std::ops::Range<usize>,
        rule: Rule,
        basis: &IndicatorBasis,
        mut sink: Sink,
    ) {
        let cfg = self.config();
        let p = &self.params;
        let (d, n, t_max) = (cfg.d, cfg.n_items, cfg.t_max);
        let s = t_max + 1;
        let dims = AttnDims {
            d,
            n_heads: cfg.n_heads,
            pos_cap: cfg.pos_cap(),
        };
        let eps = cfg.ln_eps as f32;
        let inv_tau = (1.0 / cfg.tau) as f32;
        let items = &p.item_emb.data[d..];
        // the support of p_t, (m × d): the items, whose logits are then also
        // the scores, or the k centroids
        let (support, m) = match basis {
            IndicatorBasis::Items => (items, n),
            IndicatorBasis::Prototypes(c) => (c.as_slice(), c.k()),
        };
        let logits_are_scores = matches!(basis, IndicatorBasis::Items);
        // rows whose scores are not z_k need their own scoring pass
        let own_scores = cfg.family == Family::RearecErl || !logits_are_scores;
        let trace_ranks = matches!(sink, Sink::Trace { ranks: Some(_), .. });
        let nb = range.len();
        self.layout(&mut w.encoder, seqs, range);
        self.forward_chunk(&mut w.encoder, nb, None);
        let enc = &w.encoder;
        if t_max > 0 {
            w.chain
                .start(p, d, &enc.h, &enc.blocks, &enc.seq_start, &enc.seq_len);
        }
        let mut active = ActiveRows::new(nb);
        reset(&mut w.states, nb * s * d);
        for (st, h) in w.states.chunks_exact_mut(s * d).zip(enc.h.chunks_exact(d)) {
            st[..d].copy_from_slice(h);
        }
        // step 0: z₀, p₀, H(p₀) over the m outcomes
        fit(&mut w.logits, nb * m);
        f32::score(&mut w.logits, &enc.h, support, d, inv_tau);
        fit(&mut w.probs_prev, nb * m);
        w.entropy_prev.clear();
        for (pr, z) in w
            .probs_prev
            .chunks_exact_mut(m)
            .zip(w.logits.chunks_exact(m))
        {
            w.entropy_prev.push(softmax_entropy(pr, z));
        }
        if let Sink::Trace {
            ranks: Some((targets, ranks)),
            ..
        } = &mut sink
        {
            // the prediction state at step 0 is h₀ for every family
            let scores = if logits_are_scores {
                &w.logits
            } else {
                fit(&mut w.item_scores, nb * n);
                f32::score(&mut w.item_scores, &enc.h, items, d, inv_tau);
                &w.item_scores
            };
            for (j, z) in scores.chunks_exact(n).enumerate() {
                ranks[j * s] = rank_of(z, targets[j], &mut w.rank_scratch);
            }
        }
        if t_max == 0 {
            let all = vec![true; nb];
            let halted = active.retire(&all, 0);
            self.emit(w, &mut sink, &halted, 0, logits_are_scores);
            return;
        }
        for k in 1..=t_max {
            let rows = active.len();
            w.chain.step(p, dims, eps);
            let h = w.chain.hidden();
            for (st, hk) in w.states.chunks_exact_mut(s * d).zip(h.chunks_exact(d)) {
                st[k * d..(k + 1) * d].copy_from_slice(hk);
            }
            if k == t_max && matches!(sink, Sink::Scores { .. }) {
                // every running row stops here whatever its indicators:
                // only the scores are needed (z_k over the items, or what
                // `emit` scores from the prediction states)
                if !own_scores {
                    fit(&mut w.logits, rows * n);
                    f32::score(&mut w.logits, h, items, d, inv_tau);
                }
                let halted = active.retire(&vec![true; rows], k);
                self.emit(w, &mut sink, &halted, k, logits_are_scores);
                break;
            }
            fit(&mut w.logits, rows * m);
            f32::score(&mut w.logits, h, support, d, inv_tau);
            fit(&mut w.probs, rows * m);
            if trace_ranks && own_scores {
                self.score_states(w, 0..rows, k);
            }
            w.stop.clear();
            for j in 0..rows {
                let (z, pr) = (
                    &w.logits[j * m..(j + 1) * m],
                    &mut w.probs[j * m..(j + 1) * m],
                );
                let entropy = softmax_entropy(pr, z);
                let mixture = mixture_entropy(pr, &w.probs_prev[j * m..(j + 1) * m]);
                let st = &w.states[j * s * d..(j + 1) * s * d];
                let ind = fast_indicators(
                    entropy,
                    w.entropy_prev[j],
                    mixture,
                    m,
                    &st[k * d..(k + 1) * d],
                    &st[(k - 1) * d..k * d],
                );
                w.entropy_prev[j] = entropy;
                w.stop.push(k == t_max || rule.stops(k, &ind));
                if let Sink::Trace {
                    indicators, ranks, ..
                } = &mut sink
                {
                    let row = active.active()[j];
                    indicators[row * t_max + k - 1] = ind;
                    if let Some((targets, ranks)) = ranks {
                        let scores = if own_scores {
                            &w.item_scores[j * n..(j + 1) * n]
                        } else {
                            z
                        };
                        ranks[row * s + k] = rank_of(scores, targets[row], &mut w.rank_scratch);
                    }
                }
            }
            let stop = std::mem::take(&mut w.stop);
            let halted = active.retire(&stop, k);
            self.emit(w, &mut sink, &halted, k, logits_are_scores);
            // p_k becomes p_{k−1}; the halted rows leave every buffer
            std::mem::swap(&mut w.probs, &mut w.probs_prev);
            compact_rows(&mut w.probs_prev, m, &stop);
            compact_rows(&mut w.entropy_prev, 1, &stop);
            compact_rows(&mut w.states, s * d, &stop);
            w.chain.compact(&stop);
            w.stop = stop;
            if active.is_empty() {
                break;
            }
        }
    }

    /// Item scores (rows × N) into `w.item_scores` of the prediction
    /// states after step k of the running rows at `positions` (`w.states`
    /// not yet compacted), in one batched scoring pass (the kernel scores a
    /// row bit-identically alone or in a batch, so a row's scores do not
    /// depend on which rows share the pass).
    fn score_states(
        &self,
        w: &mut ChunkWork,
        positions: impl ExactSizeIterator<Item = usize>,
        k: usize,
    ) {
        let cfg = self.config();
        let (d, n, s) = (cfg.d, cfg.n_items, cfg.t_max + 1);
        let rows = positions.len();
        fit(&mut w.pred_states, rows * d);
        for (out, pos) in w.pred_states.chunks_exact_mut(d).zip(positions) {
            self.prediction_state(out, &w.states[pos * s * d..(pos * s + k + 1) * d]);
        }
        fit(&mut w.item_scores, rows * n);
        let inv_tau = (1.0 / cfg.tau) as f32;
        f32::score(
            &mut w.item_scores,
            &w.pred_states,
            &self.params.item_emb.data[d..],
            d,
            inv_tau,
        );
    }

    /// Writes the results of the rows halting after step k, `halted` =
    /// (batch position, chunk row) pairs; `w.states` holds the running
    /// rows' states (not yet compacted) and, if `logits_are_scores`,
    /// `w.logits` their item logits z_k.
    fn emit(
        &self,
        w: &mut ChunkWork,
        sink: &mut Sink,
        halted: &[(usize, usize)],
        k: usize,
        logits_are_scores: bool,
    ) {
        let cfg = self.config();
        let (d, n, s) = (cfg.d, cfg.n_items, cfg.t_max + 1);
        match sink {
            Sink::Scores { scores, steps } => {
                if logits_are_scores && cfg.family != Family::RearecErl {
                    for &(pos, row) in halted {
                        scores[row * n..(row + 1) * n]
                            .copy_from_slice(&w.logits[pos * n..(pos + 1) * n]);
                        steps[row] = k as u32;
                    }
                } else {
                    // the halted rows' prediction states, scored in one pass
                    self.score_states(w, halted.iter().map(|&(pos, _)| pos), k);
                    for (j, &(_, row)) in halted.iter().enumerate() {
                        scores[row * n..(row + 1) * n]
                            .copy_from_slice(&w.item_scores[j * n..(j + 1) * n]);
                        steps[row] = k as u32;
                    }
                }
            }
            Sink::Trace { states, .. } => {
                for &(pos, row) in halted {
                    states[row * s * d..(row + 1) * s * d]
                        .copy_from_slice(&w.states[pos * s * d..(pos + 1) * s * d]);
                }
            }
        }
    }
}

/// eval's target rank (no exclusions); the target was checked by the caller.
fn rank_of(scores: &[f32], target: u32, scratch: &mut Vec<u32>) -> u32 {
    target_rank(scores, target, &[], scratch)
        .unwrap_or_else(|e| panic!("step_trace: bad target: {e}"))
}
