//! The two halting rules of Adaptive Reasoning Halting (method.md §3) as
//! pure logic over the indicators of [`super::indicators`].
//!
//! Indicator sequences are indexed by step: `indicators[t − 1]` holds the
//! indicators of step t = 1 … T_max (there are none at step 0). A halting
//! step is the number of reasoning steps run, in 1 … T_max; the prediction
//! then uses h_t.
//!
//! * [`ThresholdRule`]: stop at the first t ≥ t_min with Ĥ_t ≤ θ_H,
//!   D_t ≤ θ_D and Δ_t ≤ θ_Δ, else at T_max. A NaN indicator never passes
//!   its threshold (the row runs on, the safe side).
//! * [`LearnedGate`]: q_t = σ(w·[Ĥ_t, D_t, Δ_t] + b), stop at the first t
//!   with q_t ≥ 0.5; trained with BCE against y_t = 1[rank_t ≤ rank_{T_max}]
//!   ([`gate_labels`]), with a hand-derived gradient.
//!
//! ```
//! use dtrec::model::halting::rules::ThresholdRule;
//! use dtrec::model::halting::indicators::Indicators;
//! let rule = ThresholdRule { t_min: 1, theta_h: 0.5, theta_d: 0.1, theta_delta: 0.2 };
//! let steps = [
//!     Indicators { entropy: 0.9, js: 0.05, delta: 0.1 }, // t = 1: too uncertain
//!     Indicators { entropy: 0.4, js: 0.05, delta: 0.1 }, // t = 2: stop
//!     Indicators { entropy: 0.1, js: 0.01, delta: 0.0 },
//! ];
//! assert_eq!(rule.halting_step(&steps), 2);
//! ```

use dtrec_kernels::Real;

use super::indicators::Indicators;

/// Rule (A): fixed thresholds on the three indicators.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThresholdRule<T> {
    /// Earliest step allowed to stop (values below 1 act as 1).
    pub t_min: usize,
    /// θ_H on the normalised entropy.
    pub theta_h: T,
    /// θ_D on the Jensen–Shannon divergence (nats).
    pub theta_d: T,
    /// θ_Δ on the relative hidden-state change.
    pub theta_delta: T,
}

impl<T: Real> ThresholdRule<T> {
    /// A rule that never stops early (thresholds −∞): always T_max steps.
    pub fn never() -> Self {
        Self {
            t_min: 1,
            theta_h: T::NEG_INFINITY,
            theta_d: T::NEG_INFINITY,
            theta_delta: T::NEG_INFINITY,
        }
    }

    /// Whether a row may stop after step t (≥ 1) with indicators `ind`
    /// (not counting the forced stop at T_max).
    pub fn stops_at(&self, t: usize, ind: &Indicators<T>) -> bool {
        t >= self.t_min.max(1)
            && ind.entropy <= self.theta_h
            && ind.js <= self.theta_d
            && ind.delta <= self.theta_delta
    }

    /// Steps run for one row: the first t ≥ t_min that passes, else
    /// T_max = `indicators.len()` (0 if there are no steps).
    pub fn halting_step(&self, indicators: &[Indicators<T>]) -> usize {
        first_stop(indicators, |t, ind| self.stops_at(t, ind))
    }
}

fn first_stop<T>(
    indicators: &[Indicators<T>],
    stops: impl Fn(usize, &Indicators<T>) -> bool,
) -> usize {
    indicators
        .iter()
        .enumerate()
        .position(|(i, ind)| stops(i + 1, ind))
        .map_or(indicators.len(), |i| i + 1)
}

/// Rule (B): a logistic gate on the detached indicators. Gradients use the
/// same type (`LearnedGate` holds ∂L/∂w and ∂L/∂b in [`backward`](Self::backward)).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LearnedGate<T> {
    /// Weights of [Ĥ, D, Δ].
    pub w: [T; 3],
    /// Bias.
    pub b: T,
}

impl<T: Real> LearnedGate<T> {
    /// z = w·[Ĥ, D, Δ] + b.
    pub fn logit(&self, ind: &Indicators<T>) -> T {
        self.w[0] * ind.entropy + self.w[1] * ind.js + self.w[2] * ind.delta + self.b
    }

    /// q = σ(z), evaluated without overflow for any finite z.
    pub fn prob(&self, ind: &Indicators<T>) -> T {
        sigmoid(self.logit(ind))
    }

    /// Steps run for one row: the first t ≥ 1 with q_t ≥ 0.5, else
    /// T_max = `indicators.len()`. A NaN q never stops.
    pub fn halting_step(&self, indicators: &[Indicators<T>]) -> usize {
        let half = T::from_f64(0.5);
        first_stop(indicators, |_, ind| self.prob(ind) >= half)
    }

    /// Binary cross-entropy −[y ln q + (1 − y) ln(1 − q)] of one step, as
    /// softplus(z) − y·z (no log of a rounded 0 or 1).
    pub fn loss(&self, ind: &Indicators<T>, y: bool) -> T {
        let z = self.logit(ind);
        let yz = if y { z } else { T::ZERO };
        softplus(z) - yz
    }

    /// Accumulates dloss · ∂BCE/∂(w, b) into `grad`:
    /// ∂BCE/∂z = σ(z) − y, ∂z/∂w = [Ĥ, D, Δ], ∂z/∂b = 1.
    pub fn backward(&self, grad: &mut LearnedGate<T>, dloss: T, ind: &Indicators<T>, y: bool) {
        let target = if y { T::ONE } else { T::ZERO };
        let dz = dloss * (self.prob(ind) - target);
        grad.w[0] += dz * ind.entropy;
        grad.w[1] += dz * ind.js;
        grad.w[2] += dz * ind.delta;
        grad.b += dz;
    }

    /// Mean BCE over paired `indicators` and `labels` (any flattened rows ×
    /// steps), accumulating dloss · ∂mean/∂(w, b) into `grad` if given.
    /// An empty batch is 0. Panics if the lengths differ.
    pub fn mean_loss(
        &self,
        mut grad: Option<&mut LearnedGate<T>>,
        dloss: T,
        indicators: &[Indicators<T>],
        labels: &[bool],
    ) -> T {
        assert_eq!(
            indicators.len(),
            labels.len(),
            "one label per indicator row"
        );
        if indicators.is_empty() {
            return T::ZERO;
        }
        let inv = T::ONE / T::from_usize(indicators.len());
        let mut total = T::ZERO;
        for (ind, &y) in indicators.iter().zip(labels) {
            total += self.loss(ind, y);
            if let Some(g) = grad.as_deref_mut() {
                self.backward(g, dloss * inv, ind, y);
            }
        }
        total * inv
    }
}

/// σ(z) = 1/(1 + e^{−z}) for z ≥ 0, e^z/(1 + e^z) otherwise (no overflow).
pub fn sigmoid<T: Real>(z: T) -> T {
    if z >= T::ZERO {
        T::ONE / (T::ONE + (-z).exp())
    } else {
        let e = z.exp();
        e / (T::ONE + e)
    }
}

/// softplus(z) = ln(1 + e^z) = max(z, 0) + ln(1 + e^{−|z|}).
fn softplus<T: Real>(z: T) -> T {
    z.max(T::ZERO) + (T::ONE + (-z.abs()).exp()).ln()
}

/// Gate targets of one row from its per-step target ranks `ranks`
/// (T_max + 1 values, steps 0 … T_max): y_t = 1[rank_t ≤ rank_{T_max}] for
/// t = 1 … T_max (T_max values; the last is always true). Empty for
/// T_max = 0 or empty input.
pub fn gate_labels(ranks: &[u32]) -> Vec<bool> {
    match ranks.last() {
        Some(&last) if ranks.len() > 1 => ranks[1..].iter().map(|&r| r <= last).collect(),
        _ => Vec::new(),
    }
}
