//! The parts of a model file beyond the parameters: the halting policy and
//! its indicator space (JSON in the file's `extra`; `"indicators":
//! "prototypes"` refers to the finest level of the stored hierarchy, and
//! is absent for the item space, so such files are byte-identical to
//! those written before the option existed) and the prototype hierarchy (tensors
//! `prototypes.<t>.centroids` (k_t × d) and `prototypes.<t>.item_cluster`
//! (N), cluster ids stored exactly as f32 integers).

use serde::{Deserialize, Serialize};

use crate::io::{ModelFile, ModelFileError, ModelFileErrorKind, NamedTensor};
use crate::model::halting::indicators::IndicatorSpace;
use crate::model::halting::{LearnedGate, ThresholdRule};
use crate::model::prototypes::{PrototypeConfig, PrototypeLevel, Prototypes};
use crate::model::HaltingPolicy;

/// Tensor-name prefix of the prototype hierarchy.
pub const PROTOTYPES_PREFIX: &str = "prototypes.";

/// Largest cluster id an f32 holds exactly (2^24).
const MAX_EXACT_ID: u32 = 1 << 24;

/// A halting policy as stored in a model file (JSON): thresholds `None`
/// mean "no condition" (+∞), which JSON cannot spell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StoredHalting {
    /// Always T_max steps.
    Fixed,
    /// Rule (A).
    Threshold {
        /// First step at which a row may stop.
        t_min: usize,
        /// Bound on the normalised entropy Ĥ_t.
        theta_h: Option<f32>,
        /// Bound on the Jensen–Shannon divergence D_t.
        theta_d: Option<f32>,
        /// Bound on the relative hidden-state change Δ_t.
        theta_delta: Option<f32>,
    },
    /// Rule (B).
    Learned {
        /// Gate weights on [Ĥ_t, D_t, Δ_t].
        w: [f32; 3],
        /// Gate bias.
        b: f32,
    },
}

impl StoredHalting {
    /// The stored form of `policy`; a threshold rule with a −∞ threshold
    /// (never stops) is stored as `Fixed`.
    pub fn from_policy(policy: &HaltingPolicy) -> Self {
        let opt = |x: f32| (x != f32::INFINITY).then_some(x);
        match policy {
            HaltingPolicy::Fixed => StoredHalting::Fixed,
            HaltingPolicy::Threshold(r)
                if [r.theta_h, r.theta_d, r.theta_delta].contains(&f32::NEG_INFINITY) =>
            {
                StoredHalting::Fixed
            }
            HaltingPolicy::Threshold(r) => StoredHalting::Threshold {
                t_min: r.t_min,
                theta_h: opt(r.theta_h),
                theta_d: opt(r.theta_d),
                theta_delta: opt(r.theta_delta),
            },
            HaltingPolicy::Learned(g) => StoredHalting::Learned { w: g.w, b: g.b },
        }
    }

    /// The policy, after checking every number is finite and t_min is sane
    /// (the message names the bad field).
    pub fn to_policy(&self) -> Result<HaltingPolicy, String> {
        let finite = |name: &str, x: f32| {
            if x.is_finite() {
                Ok(x)
            } else {
                Err(format!("halting.{name} is not finite"))
            }
        };
        Ok(match self {
            StoredHalting::Fixed => HaltingPolicy::Fixed,
            StoredHalting::Threshold {
                t_min,
                theta_h,
                theta_d,
                theta_delta,
            } => {
                if *t_min > 64 {
                    return Err(format!("halting.t_min {t_min} exceeds 64"));
                }
                let get = |name: &str, x: &Option<f32>| match x {
                    Some(v) => finite(name, *v),
                    None => Ok(f32::INFINITY),
                };
                HaltingPolicy::Threshold(ThresholdRule {
                    t_min: *t_min,
                    theta_h: get("theta_h", theta_h)?,
                    theta_d: get("theta_d", theta_d)?,
                    theta_delta: get("theta_delta", theta_delta)?,
                })
            }
            StoredHalting::Learned { w, b } => {
                for (i, &x) in w.iter().enumerate() {
                    finite(&format!("w[{i}]"), x)?;
                }
                HaltingPolicy::Learned(LearnedGate {
                    w: *w,
                    b: finite("b", *b)?,
                })
            }
        })
    }
}

/// The extra JSON of a model file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelExtra {
    /// The halting policy (fixed depth when absent).
    pub halting: Option<StoredHalting>,
    /// The prototype hierarchy's settings, when its tensors are stored.
    pub prototypes: Option<PrototypeConfig>,
    /// The space of the halting indicators (items when absent; the
    /// prototype space needs the stored hierarchy).
    #[serde(skip_serializing_if = "crate::is_default")]
    pub indicators: IndicatorSpace,
}

/// The hierarchy's tensors, named under [`PROTOTYPES_PREFIX`].
pub fn prototypes_to_tensors(prototypes: &Prototypes<f32>) -> Vec<NamedTensor> {
    let d = prototypes.d();
    let mut out = Vec::new();
    for (t, level) in prototypes.levels().iter().enumerate() {
        out.push(NamedTensor::new(
            format!("{PROTOTYPES_PREFIX}{t}.centroids"),
            vec![level.k, d],
            level.centroids.clone(),
        ));
        out.push(NamedTensor::new(
            format!("{PROTOTYPES_PREFIX}{t}.item_cluster"),
            vec![level.item_cluster.len()],
            level.item_cluster.iter().map(|&c| c as f32).collect(),
        ));
    }
    out
}

/// Reads the hierarchy of `config` for N items of width d from `file`'s
/// tensors, validating shapes, ids and the cluster schedule.
pub fn prototypes_from_file(
    file: &ModelFile,
    config: &PrototypeConfig,
    n_items: usize,
    d: usize,
) -> Result<Prototypes<f32>, ModelFileError> {
    let invalid = |reason: String| {
        ModelFileError::new(ModelFileErrorKind::InvalidField {
            field: "prototypes",
            reason,
        })
    };
    let mut levels = Vec::new();
    for t in 0..=config.t_max.min(64) {
        let name = format!("{PROTOTYPES_PREFIX}{t}.centroids");
        let centroids = file.tensor(&name).ok_or_else(|| {
            ModelFileError::new(ModelFileErrorKind::MissingTensor {
                tensor: name.clone(),
            })
        })?;
        let k = match centroids.shape.as_slice() {
            [k, w] if *w == d => *k,
            _ => return Err(invalid(format!("{name} has shape {:?}", centroids.shape))),
        };
        let ids =
            file.expect_tensor(&format!("{PROTOTYPES_PREFIX}{t}.item_cluster"), &[n_items])?;
        let item_cluster = ids
            .data
            .iter()
            .map(|&x| {
                if x >= 0.0 && x < MAX_EXACT_ID as f32 && x.fract() == 0.0 {
                    Ok(x as u32)
                } else {
                    Err(invalid(format!(
                        "level {t}: cluster id {x} is not a small integer"
                    )))
                }
            })
            .collect::<Result<Vec<u32>, _>>()?;
        levels.push(PrototypeLevel {
            k,
            centroids: centroids.data.clone(),
            item_cluster,
        });
    }
    Prototypes::from_levels(config.clone(), n_items, d, levels).map_err(|e| invalid(e.to_string()))
}
