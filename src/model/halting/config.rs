//! [`HaltingConfig`]: which halting rule a trained model serves with, and
//! how it is calibrated.

use serde::{Deserialize, Serialize};

use super::indicators::IndicatorSpace;

/// Which halting rule a trained model serves with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaltingRule {
    /// Always T_max steps.
    Fixed,
    /// Rule (A), thresholds calibrated on validation.
    #[default]
    Threshold,
    /// Rule (B), the logistic gate.
    Learned,
}

impl HaltingRule {
    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            HaltingRule::Fixed => "fixed",
            HaltingRule::Threshold => "threshold",
            HaltingRule::Learned => "learned",
        }
    }
}

/// Halting settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaltingConfig {
    /// The rule the saved model serves with.
    pub rule: HaltingRule,
    /// Calibration: the cheapest thresholds whose validation NDCG@10 is at
    /// least (1 − tolerance) × full depth's are chosen.
    pub tolerance: f64,
    /// Calibration grid: quantile levels per indicator axis (plus "no condition").
    pub grid_levels: usize,
    /// Earliest step allowed to stop.
    pub t_min: usize,
    /// λ_ARH, the weight of the gate's BCE loss.
    pub gate_lambda: f64,
    /// Training samples whose indicators fit the gate (evenly strided).
    pub gate_samples: usize,
    /// Full-batch Adam iterations of the gate fit.
    pub gate_iters: usize,
    /// Where the confidence and consistency indicators are computed: over
    /// all N items, or over the finest prototype level (much cheaper for
    /// large N). The prototypes are those `evaluate_trained` stores with
    /// the model: K-means of the selected model's item table, warm-started
    /// from DTRec's trained hierarchy when there is one, seeded K-means++
    /// otherwise (DTRec without HPS, ReaRec-ERL/PRL).
    pub indicators: IndicatorSpace,
}

impl Default for HaltingConfig {
    fn default() -> Self {
        HaltingConfig {
            rule: HaltingRule::default(),
            tolerance: 0.01,
            grid_levels: 8,
            t_min: 1,
            gate_lambda: 0.1,
            gate_samples: 8192,
            gate_iters: 500,
            indicators: IndicatorSpace::Items,
        }
    }
}

impl HaltingConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |field: &str, why: String| Err(format!("train config: `halting.{field}` {why}"));
        if !(0.0..=1.0).contains(&self.tolerance) {
            return bad(
                "tolerance",
                format!("must be in [0, 1], got {}", self.tolerance),
            );
        }
        if !(2..=64).contains(&self.grid_levels) {
            return bad(
                "grid_levels",
                format!("must be in 2..=64, got {}", self.grid_levels),
            );
        }
        if !(self.gate_lambda.is_finite() && self.gate_lambda > 0.0) {
            return bad(
                "gate_lambda",
                format!("must be positive, got {}", self.gate_lambda),
            );
        }
        if self.gate_samples == 0 || self.gate_iters == 0 {
            return bad("gate_samples", "and `gate_iters` must be at least 1".into());
        }
        Ok(())
    }
}
