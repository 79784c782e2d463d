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
//! ```
//! use dtrec::model::{AdaptiveScores, Family, HaltingPolicy, ModelConfig, Sasrec, SeqBatch};
//! use dtrec::reasoning::halting::ThresholdRule;
//! let cfg = ModelConfig { max_len: 4, d: 8, inner: 16, ..ModelConfig::reasoning(10, Family::Dtrec, 3) };
//! let model = Sasrec::new(cfg, 7).unwrap();
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

use super::batch::SeqBatch;
use super::chain::InferChain;
use super::config::Family;
use super::sasrec::{Model, Work, CHUNK};
use crate::eval::target_rank;
use crate::kernels::Kernels;
use crate::nn::attention::AttnDims;
use crate::nn::tensor::{fit, reset};
use crate::reasoning::compaction::{compact_rows, ActiveRows};
use crate::reasoning::halting::{LearnedGate, ThresholdRule};
use crate::reasoning::indicators::{fast_indicators, mixture_entropy, softmax_entropy, Indicators};

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
    /// (rows, N) logits of the current step, p_k and p_{k−1}.
    logits: Vec<f32>,
    probs: Vec<f32>,
    probs_prev: Vec<f32>,
    /// (rows) H(p_{k−1}) in nats.
    entropy_prev: Vec<f64>,
    /// (d) a prediction state (ReaRec-ERL's mean).
    mean: Vec<f32>,
    /// (N) scores of one prediction state (ReaRec-ERL's traces).
    row_scores: Vec<f32>,
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
    /// Panics if `seqs` was validated for a larger `max_len` or `n_items`
    /// than the model's (a caller bug).
    pub fn score_adaptive(&self, seqs: &SeqBatch, policy: &HaltingPolicy) -> AdaptiveScores {
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
        let mut scores = vec![0.0f32; b * n];
        let mut steps = vec![0u32; b];
        // every buffer of a ChunkWork is reset before use: which chunk a
        // work ran before never affects a result
        let run = |work: &mut ChunkWork,
                   (c, (scores, steps)): (usize, (&mut [f32], &mut [u32]))| {
            let range = c * CHUNK..c * CHUNK + steps.len();
            self.run_chunk(work, seqs, range, rule, Sink::Scores { scores, steps });
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
    /// Panics if `targets` does not hold B ids in 1..=N, or if `seqs` was
    /// validated for a larger model (caller bugs).
    pub fn step_trace(&self, seqs: &SeqBatch, targets: Option<&[u32]>) -> StepTrace {
        self.check_seqs(seqs);
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

    /// Runs the chunk `range` of `seqs` with per-row halting by `rule`
    /// (module docs) and writes its results to `sink`.
    fn run_chunk(
        &self,
        w: &mut ChunkWork,
        seqs: &SeqBatch,
        range: std::ops::Range<usize>,
        rule: Rule,
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
        let erl = cfg.family == Family::RearecErl;
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
        w.mean.resize(d, 0.0);
        // step 0: z₀, p₀, H(p₀)
        fit(&mut w.logits, nb * n);
        f32::score(&mut w.logits, &enc.h, items, d, inv_tau);
        fit(&mut w.probs_prev, nb * n);
        w.entropy_prev.clear();
        for (pr, z) in w
            .probs_prev
            .chunks_exact_mut(n)
            .zip(w.logits.chunks_exact(n))
        {
            w.entropy_prev.push(softmax_entropy(pr, z));
        }
        if let Sink::Trace {
            ranks: Some((targets, ranks)),
            ..
        } = &mut sink
        {
            // the prediction state at step 0 is h₀ for every family
            for (j, z) in w.logits.chunks_exact(n).enumerate() {
                ranks[j * s] = rank_of(z, targets[j], &mut w.rank_scratch);
            }
        }
        if t_max == 0 {
            let all = vec![true; nb];
            let halted = active.retire(&all, 0);
            self.emit(w, &mut sink, &halted, 0);
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
                // only the scores are needed (z_k, or the ERL mean's)
                if !erl {
                    fit(&mut w.logits, rows * n);
                    f32::score(&mut w.logits, h, items, d, inv_tau);
                }
                let halted = active.retire(&vec![true; rows], k);
                self.emit(w, &mut sink, &halted, k);
                break;
            }
            fit(&mut w.logits, rows * n);
            f32::score(&mut w.logits, h, items, d, inv_tau);
            fit(&mut w.probs, rows * n);
            w.stop.clear();
            for j in 0..rows {
                let (z, pr) = (
                    &w.logits[j * n..(j + 1) * n],
                    &mut w.probs[j * n..(j + 1) * n],
                );
                let entropy = softmax_entropy(pr, z);
                let mixture = mixture_entropy(pr, &w.probs_prev[j * n..(j + 1) * n]);
                let st = &w.states[j * s * d..(j + 1) * s * d];
                let ind = fast_indicators(
                    entropy,
                    w.entropy_prev[j],
                    mixture,
                    n,
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
                        let scores = if erl {
                            self.prediction_state(&mut w.mean, &st[..(k + 1) * d]);
                            fit(&mut w.row_scores, n);
                            f32::score(&mut w.row_scores, &w.mean, items, d, inv_tau);
                            &w.row_scores
                        } else {
                            z
                        };
                        ranks[row * s + k] = rank_of(scores, targets[row], &mut w.rank_scratch);
                    }
                }
            }
            let stop = std::mem::take(&mut w.stop);
            let halted = active.retire(&stop, k);
            self.emit(w, &mut sink, &halted, k);
            // p_k becomes p_{k−1}; the halted rows leave every buffer
            std::mem::swap(&mut w.probs, &mut w.probs_prev);
            compact_rows(&mut w.probs_prev, n, &stop);
            compact_rows(&mut w.entropy_prev, 1, &stop);
            compact_rows(&mut w.states, s * d, &stop);
            w.chain.compact(&stop);
            w.stop = stop;
            if active.is_empty() {
                break;
            }
        }
    }

    /// Writes the results of the rows halting after step k, `halted` =
    /// (batch position, chunk row) pairs; `w.logits` holds the running
    /// rows' z_k and `w.states` their states (not yet compacted).
    fn emit(&self, w: &mut ChunkWork, sink: &mut Sink, halted: &[(usize, usize)], k: usize) {
        let cfg = self.config();
        let (d, n, s) = (cfg.d, cfg.n_items, cfg.t_max + 1);
        match sink {
            Sink::Scores { scores, steps } => {
                for &(pos, row) in halted {
                    let out = &mut scores[row * n..(row + 1) * n];
                    if cfg.family == Family::RearecErl {
                        let st = &w.states[pos * s * d..(pos * s + k + 1) * d];
                        self.prediction_state(&mut w.mean, st);
                        let inv_tau = (1.0 / cfg.tau) as f32;
                        f32::score(out, &w.mean, &self.params.item_emb.data[d..], d, inv_tau);
                    } else {
                        out.copy_from_slice(&w.logits[pos * n..(pos + 1) * n]);
                    }
                    steps[row] = k as u32;
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
