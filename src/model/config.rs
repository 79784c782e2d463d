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
        }
    }

    /// d / H.
    pub fn head_dim(&self) -> usize {
        self.d / self.n_heads
    }

    /// Number of position ids a sequence can have (dropout coordinates).
    pub fn pos_cap(&self) -> usize {
        self.max_len
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
        for (field, p) in [
            ("dropout", self.dropout),
            ("attn_dropout", self.attn_dropout),
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
