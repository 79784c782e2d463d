//! [`ModelConfig`]: the architecture hyper-parameters, validated before use.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Architecture of the encoder (method.md §1). Defaults follow RecBole's
/// SASRec except `n_items`, which has none.
///
/// Serialized as a JSON/TOML object; unknown fields are rejected, missing
/// fields other than `n_items` take their defaults. Call
/// [`validate`](Self::validate) before building a model from untrusted input
/// ([`Model::new`](super::Model::new) does).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Number of items N; ids are 1..=N, 0 is padding.
    pub n_items: usize,
    /// Longest history kept, L (also the number of learned positions).
    #[serde(default = "defaults::max_len")]
    pub max_len: usize,
    /// Model width d.
    #[serde(default = "defaults::d")]
    pub d: usize,
    /// Transformer blocks.
    #[serde(default = "defaults::n_layers")]
    pub n_layers: usize,
    /// Attention heads H; d must be a multiple of H.
    #[serde(default = "defaults::n_heads")]
    pub n_heads: usize,
    /// Feed-forward inner width.
    #[serde(default = "defaults::inner")]
    pub inner: usize,
    /// Hidden dropout rate (input, attention output, feed-forward output).
    #[serde(default = "defaults::dropout")]
    pub dropout: f64,
    /// Dropout rate on the attention probabilities.
    #[serde(default = "defaults::dropout")]
    pub attn_dropout: f64,
    /// LayerNorm epsilon.
    #[serde(default = "defaults::ln_eps")]
    pub ln_eps: f64,
    /// Softmax temperature τ of the item scores.
    #[serde(default = "defaults::tau")]
    pub tau: f64,
    /// Standard deviation of the N(0, σ) initialisation of weights.
    #[serde(default = "defaults::init_std")]
    pub init_std: f64,
    /// Which model family (and training objective) this is (method.md §3).
    #[serde(default)]
    pub family: Family,
    /// Number of latent reasoning steps T_max after encoding (method.md §2):
    /// 0 for `sasrec`, ≥ 1 for every other family.
    #[serde(default)]
    pub t_max: usize,
    /// Dropout rate on the reasoning inputs z_k = Dropout_r(LN_in(u_k)).
    #[serde(default = "defaults::reasoning_dropout")]
    pub reasoning_dropout: f64,
    /// Hidden and attention dropout inside the reasoning steps' blocks;
    /// `None` (ReaRec's behaviour) uses `dropout` and `attn_dropout` there
    /// too. Training only, like every dropout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_dropout: Option<f64>,
    /// λ of the ReaRec-ERL KL regulariser.
    #[serde(default = "defaults::erl_lambda")]
    pub erl_lambda: f64,
    /// α, the temperature base of the ReaRec-PRL progressive losses.
    #[serde(default = "defaults::prl_alpha")]
    pub prl_alpha: f64,
    /// Standard deviation of the Gaussian noise on the reasoning inputs of
    /// ReaRec-PRL's contrastive noise view.
    #[serde(default = "defaults::prl_noise_std")]
    pub prl_noise_std: f64,
    /// DTRec also trains with ReaRec-PRL's contrastive noise view (the same
    /// L_RCL, switched on after the same warm-up). Outside method.md, whose
    /// DTRec has none; off by default and left out of the file when off.
    #[serde(default, skip_serializing_if = "crate::is_default")]
    pub dtrec_contrastive: bool,
}

/// A model family: the same encoder and reasoning chain, different
/// objectives and prediction states (method.md §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// No reasoning (t_max = 0): loss CE(h₀), predict with h₀.
    #[default]
    Sasrec,
    /// ReaRec-ERL: CE(mean(h₀…h_K)) − λ·pairwise KL; predict with the mean.
    RearecErl,
    /// ReaRec-PRL: CE(h_K) + progressive temperature CEs; predict with h_K.
    RearecPrl,
    /// DTRec: final-step CE(h_{T_max}) (HPS terms come from the trainer);
    /// predict with h_{T_max}.
    Dtrec,
}

impl Family {
    /// The config-file spelling (`sasrec`, `rearec-erl`, `rearec-prl`, `dtrec`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Sasrec => "sasrec",
            Family::RearecErl => "rearec-erl",
            Family::RearecPrl => "rearec-prl",
            Family::Dtrec => "dtrec",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod defaults {
    pub fn max_len() -> usize {
        50
    }
    pub fn d() -> usize {
        64
    }
    pub fn n_layers() -> usize {
        2
    }
    pub fn n_heads() -> usize {
        2
    }
    pub fn inner() -> usize {
        256
    }
    pub fn dropout() -> f64 {
        0.5
    }
    pub fn ln_eps() -> f64 {
        1e-12
    }
    pub fn tau() -> f64 {
        1.0
    }
    pub fn init_std() -> f64 {
        0.02
    }
    pub fn reasoning_dropout() -> f64 {
        0.2
    }
    pub fn erl_lambda() -> f64 {
        crate::model::loss::erl::DEFAULT_LAMBDA
    }
    pub fn prl_alpha() -> f64 {
        crate::model::loss::prl::DEFAULT_ALPHA
    }
    pub fn prl_noise_std() -> f64 {
        0.01
    }
}

/// Largest accepted number of parameters (2³¹ scalars, 8 GiB in f32): a
/// bound checked before any allocation, so a hostile config cannot ask for
/// unbounded memory.
pub const MAX_PARAMS: usize = 1 << 31;

/// A config field with an invalid value.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// The offending field, e.g. `"n_heads"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid model config field `{}`: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

fn err(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

impl ModelConfig {
    /// The RecBole SASRec defaults for a catalogue of `n_items` items.
    ///
    /// ```
    /// let cfg = dtrec::model::ModelConfig::sasrec(3416);
    /// assert_eq!((cfg.d, cfg.n_layers, cfg.n_heads, cfg.max_len), (64, 2, 2, 50));
    /// assert!(cfg.validate().is_ok());
    /// ```
    pub fn sasrec(n_items: usize) -> Self {
        ModelConfig {
            n_items,
            max_len: defaults::max_len(),
            d: defaults::d(),
            n_layers: defaults::n_layers(),
            n_heads: defaults::n_heads(),
            inner: defaults::inner(),
            dropout: defaults::dropout(),
            attn_dropout: defaults::dropout(),
            ln_eps: defaults::ln_eps(),
            tau: defaults::tau(),
            init_std: defaults::init_std(),
            family: Family::Sasrec,
            t_max: 0,
            reasoning_dropout: defaults::reasoning_dropout(),
            step_dropout: None,
            erl_lambda: defaults::erl_lambda(),
            prl_alpha: defaults::prl_alpha(),
            prl_noise_std: defaults::prl_noise_std(),
            dtrec_contrastive: false,
        }
    }

    /// A reasoning model of `family` with `t_max` steps on top of the
    /// SASRec defaults.
    ///
    /// ```
    /// use dtrec::model::{Family, ModelConfig};
    /// let cfg = ModelConfig::reasoning(3416, Family::Dtrec, 3);
    /// assert_eq!(cfg.pos_cap(), 50 + 3);
    /// assert!(cfg.validate().is_ok());
    /// assert!(ModelConfig::reasoning(10, Family::Dtrec, 0).validate().is_err());
    /// ```
    pub fn reasoning(n_items: usize, family: Family, t_max: usize) -> Self {
        ModelConfig {
            family,
            t_max,
            ..Self::sasrec(n_items)
        }
    }

    /// Whether this model trains with ReaRec-PRL's contrastive noise view
    /// (once the trainer switches it on): `rearec-prl` always, `dtrec` when
    /// `dtrec_contrastive` is set.
    ///
    /// ```
    /// use dtrec::model::{Family, ModelConfig};
    /// assert!(ModelConfig::reasoning(10, Family::RearecPrl, 2).uses_contrastive());
    /// let dtrec = ModelConfig::reasoning(10, Family::Dtrec, 2);
    /// assert!(!dtrec.uses_contrastive());
    /// let with = ModelConfig { dtrec_contrastive: true, ..dtrec };
    /// assert!(with.uses_contrastive() && with.validate().is_ok());
    /// ```
    pub fn uses_contrastive(&self) -> bool {
        match self.family {
            Family::RearecPrl => true,
            Family::Dtrec => self.dtrec_contrastive,
            Family::Sasrec | Family::RearecErl => false,
        }
    }

    /// d / H.
    pub fn head_dim(&self) -> usize {
        self.d / self.n_heads
    }

    /// Number of position ids a sequence can have (dropout coordinates):
    /// the history positions then one per reasoning step, max_len + t_max.
    pub fn pos_cap(&self) -> usize {
        self.max_len + self.t_max
    }

    /// Total number of scalars in the parameter set (saturating).
    pub fn n_params(&self) -> usize {
        let d = self.d;
        let block =
            4 * (d * d + d) + 2 * 2 * d + (d * self.inner + self.inner) + (self.inner * d + d);
        (self.n_items.saturating_add(1))
            .saturating_mul(d)
            .saturating_add(self.max_len.saturating_mul(d))
            .saturating_add(2 * d)
            .saturating_add(self.n_layers.saturating_mul(block))
            .saturating_add(self.t_max.saturating_mul(d))
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n_items == 0 || self.n_items >= u32::MAX as usize {
            return Err(err(
                "n_items",
                format!("must be in 1..{}, got {}", u32::MAX, self.n_items),
            ));
        }
        if self.max_len == 0 || self.max_len > 1 << 16 {
            return Err(err(
                "max_len",
                format!("must be in 1..=65536, got {}", self.max_len),
            ));
        }
        if self.d == 0 || self.d > 1 << 16 {
            return Err(err("d", format!("must be in 1..=65536, got {}", self.d)));
        }
        if self.n_layers == 0 || self.n_layers > 64 {
            return Err(err(
                "n_layers",
                format!("must be in 1..=64, got {}", self.n_layers),
            ));
        }
        if self.n_heads == 0 || self.d % self.n_heads != 0 {
            return Err(err(
                "n_heads",
                format!(
                    "must be ≥ 1 and divide d = {}, got {}",
                    self.d, self.n_heads
                ),
            ));
        }
        if self.inner == 0 || self.inner > 1 << 18 {
            return Err(err(
                "inner",
                format!("must be in 1..=262144, got {}", self.inner),
            ));
        }
        match (self.family, self.t_max) {
            (Family::Sasrec, 0) => {}
            (Family::Sasrec, t) => {
                return Err(err(
                    "t_max",
                    format!("must be 0 for family sasrec, got {t}"),
                ))
            }
            (f, t) if !(1..=64).contains(&t) => {
                return Err(err(
                    "t_max",
                    format!("must be in 1..=64 for family {f}, got {t}"),
                ))
            }
            _ => {}
        }
        for (field, p) in [
            ("dropout", self.dropout),
            ("attn_dropout", self.attn_dropout),
            ("reasoning_dropout", self.reasoning_dropout),
            ("step_dropout", self.step_dropout.unwrap_or(0.0)),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(err(field, format!("must be in [0, 1), got {p}")));
            }
        }
        if !(self.ln_eps.is_finite() && self.ln_eps > 0.0) {
            return Err(err(
                "ln_eps",
                format!("must be finite and > 0, got {}", self.ln_eps),
            ));
        }
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return Err(err(
                "tau",
                format!("must be finite and > 0, got {}", self.tau),
            ));
        }
        if !(self.init_std.is_finite() && self.init_std >= 0.0) {
            return Err(err(
                "init_std",
                format!("must be finite and ≥ 0, got {}", self.init_std),
            ));
        }
        if !(self.erl_lambda.is_finite() && self.erl_lambda >= 0.0) {
            return Err(err(
                "erl_lambda",
                format!("must be finite and ≥ 0, got {}", self.erl_lambda),
            ));
        }
        if !(self.prl_alpha.is_finite() && self.prl_alpha > 0.0) {
            return Err(err(
                "prl_alpha",
                format!("must be finite and > 0, got {}", self.prl_alpha),
            ));
        }
        if !(self.prl_noise_std.is_finite() && self.prl_noise_std >= 0.0) {
            return Err(err(
                "prl_noise_std",
                format!("must be finite and ≥ 0, got {}", self.prl_noise_std),
            ));
        }
        if self.dtrec_contrastive && !(self.family == Family::Dtrec && self.t_max > 0) {
            return Err(err(
                "dtrec_contrastive",
                format!(
                    "is for family dtrec with t_max ≥ 1, got {} with t_max {}",
                    self.family, self.t_max
                ),
            ));
        }
        if self.n_params() > MAX_PARAMS {
            return Err(err(
                "n_items",
                format!(
                    "the model would have {} parameters (limit {MAX_PARAMS})",
                    self.n_params()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_defaults() {
        let cfg: ModelConfig =
            serde_json::from_str(r#"{"n_items": 10, "d": 8, "n_heads": 4}"#).unwrap();
        assert_eq!(
            cfg,
            ModelConfig {
                d: 8,
                n_heads: 4,
                ..ModelConfig::sasrec(10)
            }
        );
        let back: ModelConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert!(serde_json::from_str::<ModelConfig>(r#"{"n_items": 10, "bogus": 1}"#).is_err());
        let erl: ModelConfig =
            serde_json::from_str(r#"{"n_items": 10, "family": "rearec-erl", "t_max": 3}"#).unwrap();
        assert_eq!(erl, ModelConfig::reasoning(10, Family::RearecErl, 3));
        assert_eq!(erl.reasoning_dropout, 0.2);
        for f in [
            Family::Sasrec,
            Family::RearecErl,
            Family::RearecPrl,
            Family::Dtrec,
        ] {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{f}\""));
        }
        assert!(serde_json::from_str::<Family>(r#""rearec""#).is_err());
        // the option outside method.md is written only when on
        let dtrec = ModelConfig::reasoning(10, Family::Dtrec, 2);
        assert!(!serde_json::to_string(&dtrec)
            .unwrap()
            .contains("contrastive"));
        let with = ModelConfig {
            dtrec_contrastive: true,
            ..dtrec
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""dtrec_contrastive":true"#), "{json}");
        assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), with);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = [
            (
                ModelConfig {
                    n_heads: 3,
                    ..ModelConfig::sasrec(5)
                },
                "n_heads",
            ),
            (
                ModelConfig {
                    dropout: 1.0,
                    ..ModelConfig::sasrec(5)
                },
                "dropout",
            ),
            (
                ModelConfig {
                    attn_dropout: -0.1,
                    ..ModelConfig::sasrec(5)
                },
                "attn_dropout",
            ),
            (
                ModelConfig {
                    step_dropout: Some(1.0),
                    ..ModelConfig::sasrec(5)
                },
                "step_dropout",
            ),
            (
                ModelConfig {
                    tau: 0.0,
                    ..ModelConfig::sasrec(5)
                },
                "tau",
            ),
            (
                ModelConfig {
                    ln_eps: f64::NAN,
                    ..ModelConfig::sasrec(5)
                },
                "ln_eps",
            ),
            (
                ModelConfig {
                    max_len: 0,
                    ..ModelConfig::sasrec(5)
                },
                "max_len",
            ),
            (ModelConfig::sasrec(0), "n_items"),
            (
                ModelConfig {
                    t_max: 2,
                    ..ModelConfig::sasrec(5)
                },
                "t_max",
            ),
            (ModelConfig::reasoning(5, Family::RearecErl, 0), "t_max"),
            (ModelConfig::reasoning(5, Family::Dtrec, 65), "t_max"),
            (
                ModelConfig {
                    reasoning_dropout: 1.0,
                    ..ModelConfig::reasoning(5, Family::Dtrec, 2)
                },
                "reasoning_dropout",
            ),
            (
                ModelConfig {
                    erl_lambda: -1.0,
                    ..ModelConfig::reasoning(5, Family::RearecErl, 2)
                },
                "erl_lambda",
            ),
            (
                ModelConfig {
                    prl_alpha: 0.0,
                    ..ModelConfig::reasoning(5, Family::RearecPrl, 2)
                },
                "prl_alpha",
            ),
            (
                ModelConfig {
                    dtrec_contrastive: true,
                    ..ModelConfig::reasoning(5, Family::RearecErl, 2)
                },
                "dtrec_contrastive",
            ),
            (
                ModelConfig {
                    d: 60_000,
                    inner: 200_000,
                    ..ModelConfig::sasrec(1_000_000)
                },
                "n_items",
            ),
        ];
        for (cfg, field) in bad {
            assert_eq!(cfg.validate().unwrap_err().field, field, "{cfg:?}");
        }
    }
}
