//! FLOP accounting per user: encoding, each reasoning step, the halting
//! indicators and the item scoring (method.md §4 "report compute too").
//!
//! Conventions: one FLOP is one floating-point add, multiply, compare, exp,
//! ln or divide; a multiply-add is 2. A matrix product (m×k)·(k×n) is
//! 2·m·n·k. In the encoder and the reasoning steps only the matrix products
//! are counted (QKV and output projections, QKᵀ and AV over the causal,
//! non-padded keys, the two FFN matrices); the element-wise work (biases,
//! LayerNorm, GELU, softmax, residuals, dropout) is O(L·d) against
//! O(L·d²) and left out, as usual. Attention heads do not change the count
//! (H·d_h = d).
//!
//! With d width, f FFN inner width, L valid history length, per layer:
//!
//! ```text
//! encoder      8·L·d² + 2·d·L(L+1) + 4·L·d·f        (query i attends to i keys)
//! step k ≥ 1   8·d²   + 4·d·(L+k)  + 4·d·f          (one token over L+k cached keys)
//! ```
//!
//! so step k costs exactly what appending one token to a length-(L+k−1)
//! sequence adds to a full re-encoding, O((L+k)·d + d²), not O((L+k)²·d).
//!
//! Item scoring of one hidden state against N items is 2·N·d. The halting
//! indicators at step t need p_t (logits 2·N·d plus softmax, 5 per item:
//! max, subtract, exp, sum, divide), Ĥ_t (3 per item: ln, multiply, add),
//! D_t (10 per item: mean 2, two ratio-ln-multiply triples 6, two adds) and
//! Δ_t (5 per dimension: difference, two multiply-adds for ‖h_t − h_{t−1}‖²
//! and ‖h_{t−1}‖²), so 2·N·d + 18·N + 5·d per step, plus p_0 once
//! (2·N·d + 5·N). The logits of the step a row halts at are its scores, so
//! an adaptive run needs no separate scoring pass.
//!
//! Over the finest prototype level instead (k centroids,
//! [`IndicatorSpace::Prototypes`]), the same counts hold with k in place
//! of N — 2·k·d + 18·k + 5·d per step, 2·k·d + 5·k for p_0 — and the item
//! scores are a separate pass, 2·N·d once per row at its halting step
//! ([`FlopCounts::with_indicator_outcomes`], [`FlopCounts::adaptive_in`]).
//!
//! ```
//! use dtrec::model::flops::{FlopCounts, FlopDims};
//! let dims = FlopDims { d: 64, inner: 256, n_layers: 2, n_heads: 2, seq_len: 50, n_items: 3416, t_max: 3 };
//! let c = FlopCounts::new(&dims).unwrap();
//! assert!(c.steps[0] * 20 < c.encoder); // a cached step is far cheaper than encoding
//! assert_eq!(c.scoring, 2 * 3416 * 64);
//! ```

use std::fmt;

use super::halting::IndicatorSpace;

/// Elementwise FLOPs per item of one softmax (max, subtract, exp, sum, divide).
pub const SOFTMAX_PER_ITEM: u64 = 5;
/// Elementwise FLOPs per item of the entropy (ln, multiply, add).
pub const ENTROPY_PER_ITEM: u64 = 3;
/// Elementwise FLOPs per item of the Jensen–Shannon divergence.
pub const JS_PER_ITEM: u64 = 10;
/// FLOPs per hidden dimension of the relative change Δ.
pub const DELTA_PER_DIM: u64 = 5;

/// Model and input sizes of one user, as plain numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlopDims {
    /// Model width d.
    pub d: u64,
    /// FFN inner width.
    pub inner: u64,
    /// Transformer layers.
    pub n_layers: u64,
    /// Attention heads (must divide d; does not change the count).
    pub n_heads: u64,
    /// Valid (non-padded) history length L of this user.
    pub seq_len: u64,
    /// Number of items N.
    pub n_items: u64,
    /// Maximum reasoning steps T_max.
    pub t_max: u64,
}

/// Invalid dimensions or a count beyond u64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlopError {
    /// A dimension that must be positive is 0, or heads do not divide d.
    BadDims {
        /// The offending field.
        field: &'static str,
    },
    /// A count overflows u64.
    Overflow,
}

impl fmt::Display for FlopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlopError::BadDims { field } => write!(f, "flops: invalid dimension {field}"),
            FlopError::Overflow => write!(f, "flops: count overflows u64"),
        }
    }
}

impl std::error::Error for FlopError {}

/// The per-user FLOP counts of one (dims) setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlopCounts {
    /// Encoding the history (all layers).
    pub encoder: u64,
    /// Reasoning step k = 1 … T_max (entry k − 1), all layers.
    pub steps: Vec<u64>,
    /// p_0 for the first indicator step: 2·m·d + 5·m over the m outcomes
    /// of the indicators (m = N items, or k prototypes).
    pub indicator_setup: u64,
    /// Indicators at one step (including that step's logits):
    /// 2·m·d + 18·m + 5·d.
    pub indicator_step: u64,
    /// Scoring one hidden state against all items: 2·N·d.
    pub scoring: u64,
}

fn mul(xs: &[u64]) -> Result<u64, FlopError> {
    xs.iter()
        .try_fold(1u64, |acc, &x| acc.checked_mul(x))
        .ok_or(FlopError::Overflow)
}

fn add(xs: &[u64]) -> Result<u64, FlopError> {
    xs.iter()
        .try_fold(0u64, |acc, &x| acc.checked_add(x))
        .ok_or(FlopError::Overflow)
}

/// One encoder layer over L valid tokens: 8·L·d² + 2·d·L(L+1) + 4·L·d·f.
pub fn encoder_layer(d: u64, inner: u64, seq_len: u64) -> Result<u64, FlopError> {
    let l = seq_len;
    add(&[
        mul(&[8, l, d, d])?,
        mul(&[2, d, l, l.checked_add(1).ok_or(FlopError::Overflow)?])?,
        mul(&[4, l, d, inner])?,
    ])
}

/// One layer of reasoning step k ≥ 1 (one token over L + k keys):
/// 8·d² + 4·d·(L + k) + 4·d·f.
pub fn step_layer(d: u64, inner: u64, seq_len: u64, k: u64) -> Result<u64, FlopError> {
    let keys = seq_len.checked_add(k).ok_or(FlopError::Overflow)?;
    add(&[mul(&[8, d, d])?, mul(&[4, d, keys])?, mul(&[4, d, inner])?])
}

impl FlopCounts {
    /// Counts for one user with `dims`, the indicators over the N items.
    pub fn new(dims: &FlopDims) -> Result<Self, FlopError> {
        Self::with_indicator_outcomes(dims, dims.n_items)
    }

    /// Counts for one user with `dims`, the indicators over `outcomes`
    /// entries (N for the item space, k for the prototype space).
    ///
    /// ```
    /// use dtrec::model::flops::{FlopCounts, FlopDims};
    /// let dims = FlopDims { d: 64, inner: 256, n_layers: 2, n_heads: 2, seq_len: 50, n_items: 12_101, t_max: 3 };
    /// let c = FlopCounts::with_indicator_outcomes(&dims, 1_329).unwrap();
    /// assert_eq!(c.indicator_step, 2 * 1_329 * 64 + 18 * 1_329 + 5 * 64);
    /// assert_eq!(c.scoring, 2 * 12_101 * 64);
    /// ```
    pub fn with_indicator_outcomes(dims: &FlopDims, outcomes: u64) -> Result<Self, FlopError> {
        for (field, v) in [
            ("d", dims.d),
            ("n_layers", dims.n_layers),
            ("n_heads", dims.n_heads),
            ("n_items", dims.n_items),
            ("indicator_outcomes", outcomes),
        ] {
            if v == 0 {
                return Err(FlopError::BadDims { field });
            }
        }
        if dims.d % dims.n_heads != 0 {
            return Err(FlopError::BadDims { field: "n_heads" });
        }
        let (d, n) = (dims.d, dims.n_items);
        let encoder = mul(&[dims.n_layers, encoder_layer(d, dims.inner, dims.seq_len)?])?;
        let steps = (1..=dims.t_max)
            .map(|k| mul(&[dims.n_layers, step_layer(d, dims.inner, dims.seq_len, k)?]))
            .collect::<Result<Vec<_>, _>>()?;
        let scoring = mul(&[2, n, d])?;
        let m = outcomes;
        let logits = mul(&[2, m, d])?;
        let indicator_setup = add(&[logits, mul(&[SOFTMAX_PER_ITEM, m])?])?;
        let indicator_step = add(&[
            logits,
            mul(&[SOFTMAX_PER_ITEM + ENTROPY_PER_ITEM + JS_PER_ITEM, m])?,
            mul(&[DELTA_PER_DIM, d])?,
        ])?;
        // the largest total any method below forms must fit, so they need no
        // overflow checks
        let all_steps = add(&steps)?;
        add(&[
            encoder,
            all_steps,
            indicator_setup,
            mul(&[dims.t_max, indicator_step])?,
            scoring,
        ])?;
        Ok(Self {
            encoder,
            steps,
            indicator_setup,
            indicator_step,
            scoring,
        })
    }

    /// Σ of the first `steps` reasoning steps (clamped to T_max).
    pub fn reasoning(&self, steps: usize) -> u64 {
        self.steps.iter().take(steps).sum()
    }

    /// A fixed-depth run of `steps` steps (clamped to T_max): encoder +
    /// reasoning + scoring.
    pub fn fixed_depth(&self, steps: usize) -> u64 {
        self.encoder + self.reasoning(steps) + self.scoring
    }

    /// Exactly what `Model::score_adaptive_in` runs for a row halting after
    /// `steps` ≥ 1 steps (clamped to T_max) with its indicators in `space`
    /// (these counts built for that space's outcomes), as
    /// (indicators, item scoring): p_0 and the indicators of every step run
    /// except T_max (where every row stops whatever its indicators); the
    /// item scoring is a separate pass of 2·N·d in the prototype space, and
    /// in the item space only at T_max (before, the halting step's logits
    /// are the scores). `steps` = 0 is (0, 2·N·d). Encoder and reasoning
    /// steps come on top.
    pub fn adaptive_in(&self, steps: usize, space: IndicatorSpace) -> (u64, u64) {
        let t_max = self.steps.len();
        let steps = steps.min(t_max);
        if steps == 0 {
            return (0, self.scoring);
        }
        let with_indicators = steps.min(t_max - 1) as u64;
        let indicators = self.indicator_setup + self.indicator_step * with_indicators;
        let scoring = match space {
            IndicatorSpace::Prototypes => self.scoring,
            IndicatorSpace::Items if steps == t_max => self.scoring,
            IndicatorSpace::Items => 0,
        };
        (indicators, scoring)
    }

    /// An adaptive run with the indicators over the items, halting after
    /// `steps` ≥ 1 steps (clamped to T_max):
    /// encoder + reasoning + p_0 + `steps` indicator steps (whose last
    /// logits are the scores). Counts the indicators also at a stop forced
    /// at T_max, so it is an upper bound by 18·N + 5·d there. `steps` = 0 is
    /// the plain encoder plus scoring.
    pub fn adaptive(&self, steps: usize) -> u64 {
        let steps = steps.min(self.steps.len());
        if steps == 0 {
            return self.fixed_depth(0);
        }
        self.encoder
            + self.reasoning(steps)
            + self.indicator_setup
            + self.indicator_step * steps as u64
    }
}
