//! DTRec's Hierarchical Process Supervision in the training loop
//! (method.md §3): the prototype hierarchy is (re)clustered from the item
//! table on a schedule, and each reasoning step t < T_max gets a
//! coarse-to-fine target from it.
//!
//! Schedule. Epochs `0 … warmup_epochs − 1` train on the final-step item
//! loss alone; from epoch `warmup_epochs` on, the hierarchy is rebuilt at the
//! start of every `kmeans_every`-th epoch (K-means++ seeded from the run's
//! seed the first time, warm-started from the previous centroids after), on
//! the detached rows E[1..N] of the current model.
//!
//! Loss. With states h₀ … h_T of a row and its target y,
//! L_HPS = (1/T_max)·Σ_{t<T_max} L_t and the model's loss gains λ_HPS·L_HPS:
//! * `prototype`: L_t = CE(⟨h_t, c_i^{(t)}⟩/τ_p, cluster of y at level t);
//! * `cluster-soft`: L_t = CE over items against ε_t·onehot(y) + (1 − ε_t)·
//!   uniform(items in y's level-t cluster). method.md writes the target's
//!   own weight per step, ε_t: by default every step uses `epsilon`; with
//!   `epsilon_last`, step 0 uses `epsilon`, the last step T_max − 1 uses
//!   `epsilon_last`, and the steps between interpolate linearly, so the
//!   coarse steps can lean on the clusters and the fine ones on y itself.
//!
//! Cluster target. method.md spreads `cluster-soft`'s (1 − ε) cluster
//! mass uniformly over the members of y's cluster. `cluster_target` =
//! `marginal` (outside method.md) asks instead for the cluster's total
//! probability, −log Σ_{v∈C} p_v, so the state chooses which members carry
//! it and an unlikely member is not pulled up with y.
//!
//! Item gradient. `cluster-soft` scores the shared item table, so by
//! default (method.md) its gradient trains the items too, and the
//! cluster part of its target pulls every member of y's cluster toward the
//! states that predict y. `item_gradient` = `target` keeps only the target
//! term's item gradient (ReaRec-PRL's), `off` none; the states get the full
//! gradient either way. Chosen, like every option, on validation data.
//!
//! Step temperatures. method.md scores every step at one temperature (τ_p
//! for `prototype`, τ for `cluster-soft`). The option `step_tau_growth` = α
//! (default 1, method.md) scores step t at that temperature times
//! α^{T_max − t}, the softening ReaRec-PRL gives its earlier steps: the
//! earlier the step, the weaker its pull. It is outside method.md and, like
//! every option, chosen on validation data.

use serde::{Deserialize, Serialize};

use crate::model::prototypes::{HierarchyLayout, PrototypeConfig, Prototypes};
use crate::model::{Model, StateLossArgs};

mod terms;

pub use terms::{
    cluster_soft_loss, prototype_loss, ClusterMembers, ClusterTarget, ItemGradient, ROW_BLOCK,
};

/// RNG seed offset of the K-means seeding (kept apart from the other streams).
pub const KMEANS_SEED_OFFSET: u64 = 0x4B4D_0000;

/// Which HPS loss DTRec trains with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HpsVariant {
    /// No process supervision: the final-step item loss only (an ablation).
    Off,
    /// CE over the level-t prototypes (method.md (a)).
    #[default]
    Prototype,
    /// CE over items with a soft target spread over y's cluster (method.md (b)).
    ClusterSoft,
}

impl HpsVariant {
    /// The config spelling (`off`, `prototype`, `cluster-soft`).
    pub fn name(self) -> &'static str {
        match self {
            HpsVariant::Off => "off",
            HpsVariant::Prototype => "prototype",
            HpsVariant::ClusterSoft => "cluster-soft",
        }
    }
}

/// HPS settings (used by the `dtrec` family only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HpsConfig {
    /// The loss variant, or `off`.
    pub variant: HpsVariant,
    /// λ_HPS, the weight of the mean step loss.
    pub lambda: f64,
    /// Epochs of plain final-step training before the first clustering.
    pub warmup_epochs: usize,
    /// Re-cluster every this many epochs after the warm-up.
    pub kmeans_every: usize,
    /// Cluster count k₀ of the coarsest level.
    pub k_min: usize,
    /// Flat (every level clusters the items) or nested (each level clusters
    /// the finer level's centroids).
    pub layout: HierarchyLayout,
    /// Lloyd iterations per level and refresh.
    pub kmeans_iters: usize,
    /// Prototype temperature τ_p; `None` uses the model's τ.
    pub tau_p: Option<f64>,
    /// `cluster-soft`: weight ε of the target item itself in the soft target
    /// (of step 0 when `epsilon_last` is set, of every step otherwise).
    pub epsilon: f64,
    /// `cluster-soft`: ε of the last step T_max − 1, the steps between
    /// interpolated linearly from `epsilon` at step 0 (see
    /// [`HpsConfig::step_epsilon`]); `None` (the default) uses `epsilon` at
    /// every step. Written to a config only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon_last: Option<f64>,
    /// `cluster-soft`: the form of the (1 − ε) cluster part, `uniform`
    /// (the default and method.md) or `marginal` (the cluster's total
    /// probability). Written to a config only when not `uniform`.
    #[serde(skip_serializing_if = "crate::is_default")]
    pub cluster_target: ClusterTarget,
    /// `cluster-soft`: which part of its gradient reaches the item table
    /// (`full`, the default and method.md; `target`; `off`; `target-last`,
    /// `target` at the last step only). Written to a config only when not
    /// `full`.
    #[serde(skip_serializing_if = "crate::is_default")]
    pub item_gradient: ItemGradient,
    /// First state the step losses supervise: 0 (method.md: h₀ … h_{T−1},
    /// the encoder's output included) or 1 … T_max − 1 (h₀ gets no step
    /// loss, so the encoder learns from the item loss alone).
    /// L_HPS stays the mean over the supervised states.
    pub first_step: usize,
    /// α ≥ 1 of the step temperatures: step t is scored at the variant's
    /// temperature times α^{T_max − t}. 1 (the default) is method.md.
    pub step_tau_growth: f64,
}

impl Default for HpsConfig {
    fn default() -> Self {
        let proto = PrototypeConfig::new(1, 0);
        HpsConfig {
            variant: HpsVariant::default(),
            lambda: 1.0,
            warmup_epochs: 1,
            kmeans_every: 1,
            k_min: proto.k_min,
            layout: proto.layout,
            kmeans_iters: proto.kmeans_iters,
            tau_p: None,
            epsilon: 0.1,
            epsilon_last: None,
            cluster_target: ClusterTarget::Uniform,
            item_gradient: ItemGradient::Full,
            first_step: 0,
            step_tau_growth: 1.0,
        }
    }
}

impl HpsConfig {
    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |field: &str, why: String| Err(format!("train config: `hps.{field}` {why}"));
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad("lambda", format!("must be ≥ 0, got {}", self.lambda));
        }
        if self.kmeans_every == 0 {
            return bad("kmeans_every", "must be at least 1".into());
        }
        if self.k_min == 0 {
            return bad("k_min", "must be at least 1".into());
        }
        if self.kmeans_iters == 0 {
            return bad("kmeans_iters", "must be at least 1".into());
        }
        if let Some(t) = self.tau_p {
            if !(t.is_finite() && t > 0.0) {
                return bad("tau_p", format!("must be positive, got {t}"));
            }
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            return bad(
                "epsilon",
                format!("must be in [0, 1], got {}", self.epsilon),
            );
        }
        if let Some(last) = self.epsilon_last {
            if !(0.0..=1.0).contains(&last) {
                return bad("epsilon_last", format!("must be in [0, 1], got {last}"));
            }
        }
        if !(self.step_tau_growth.is_finite() && self.step_tau_growth >= 1.0) {
            return bad(
                "step_tau_growth",
                format!("must be a finite number ≥ 1, got {}", self.step_tau_growth),
            );
        }
        Ok(())
    }

    /// The temperature step `t` of a model with `t_max` steps is scored at,
    /// for a variant whose method.md temperature is `base`.
    pub fn step_temperature(&self, base: f64, t: usize, t_max: usize) -> f64 {
        let power = i32::try_from(t_max.saturating_sub(t)).unwrap_or(i32::MAX);
        base * self.step_tau_growth.powi(power)
    }

    /// `cluster-soft`'s ε_t, the target item's own weight at step `t` of a
    /// model with `t_max` steps: `epsilon` at every step, or with
    /// `epsilon_last` a line from `epsilon` at step 0 to `epsilon_last` at
    /// step `t_max − 1`.
    ///
    /// ```
    /// use dtrec::model::HpsConfig;
    ///
    /// let flat = HpsConfig { epsilon: 0.5, ..HpsConfig::default() };
    /// assert_eq!(flat.step_epsilon(2, 3), 0.5);
    /// let schedule = HpsConfig { epsilon: 0.5, epsilon_last: Some(1.0), ..HpsConfig::default() };
    /// let steps: Vec<f64> = (0..3).map(|t| schedule.step_epsilon(t, 3)).collect();
    /// assert_eq!(steps, [0.5, 0.75, 1.0]);
    /// ```
    pub fn step_epsilon(&self, t: usize, t_max: usize) -> f64 {
        match self.epsilon_last {
            None => self.epsilon,
            Some(last) if t + 1 >= t_max => last,
            Some(last) => self.epsilon + (last - self.epsilon) * t as f64 / (t_max - 1) as f64,
        }
    }

    /// Whether the hierarchy is (re)built at the start of `epoch`.
    pub fn refresh_due(&self, epoch: usize) -> bool {
        self.variant != HpsVariant::Off
            && epoch >= self.warmup_epochs
            && (epoch - self.warmup_epochs) % self.kmeans_every == 0
    }

    /// The hierarchy settings for a model with `t_max` steps in a run
    /// seeded by `seed` (the K-means seeding draws from its own stream,
    /// `seed` + [`KMEANS_SEED_OFFSET`]).
    pub fn prototype_config(&self, t_max: usize, seed: u64) -> PrototypeConfig {
        PrototypeConfig {
            k_min: self.k_min,
            t_max,
            layout: self.layout,
            kmeans_iters: self.kmeans_iters,
            seed: seed.wrapping_add(KMEANS_SEED_OFFSET),
            parallel: true,
        }
    }
}

/// The HPS objective of one training step, over fixed prototypes.
pub struct HpsLoss<'a> {
    prototypes: &'a Prototypes<f32>,
    /// Per level t < T_max, the clusters' members (`cluster-soft` only).
    members: Vec<ClusterMembers>,
    variant: HpsVariant,
    lambda: f32,
    t_max: usize,
    first_step: usize,
    d: usize,
    /// Per step t < T_max, the temperature of its loss.
    step_tau: Vec<f32>,
    /// Per step t < T_max, `cluster-soft`'s ε_t.
    step_epsilon: Vec<f32>,
    cluster_target: ClusterTarget,
    item_gradient: ItemGradient,
}

impl<'a> HpsLoss<'a> {
    /// The objective of `config` for `model` over `prototypes` (built for
    /// the model's N, d and T_max).
    pub fn new(prototypes: &'a Prototypes<f32>, model: &Model, config: &HpsConfig) -> Self {
        let cfg = model.config();
        let base_tau = match config.variant {
            HpsVariant::Prototype => config.tau_p.unwrap_or(cfg.tau),
            _ => cfg.tau,
        };
        let members = match config.variant {
            HpsVariant::ClusterSoft => prototypes.levels()[..cfg.t_max]
                .iter()
                .map(|l| ClusterMembers::new(&l.item_cluster, l.k))
                .collect(),
            _ => Vec::new(),
        };
        HpsLoss {
            prototypes,
            members,
            variant: config.variant,
            lambda: config.lambda as f32,
            t_max: cfg.t_max,
            first_step: config.first_step,
            d: cfg.d,
            step_tau: (0..cfg.t_max)
                .map(|t| config.step_temperature(base_tau, t, cfg.t_max) as f32)
                .collect(),
            step_epsilon: (0..cfg.t_max)
                .map(|t| config.step_epsilon(t, cfg.t_max) as f32)
                .collect(),
            cluster_target: config.cluster_target,
            item_gradient: config.item_gradient,
        }
    }

    /// λ_HPS · Σ_rows L_HPS of one chunk, accumulating its gradient (see
    /// [`crate::model::StateLoss`]).
    pub fn eval(&self, args: StateLossArgs<'_, f32>) -> f64 {
        let StateLossArgs {
            states,
            targets,
            items,
            mut dstates,
            mut ditems,
            dloss,
        } = args;
        let (d, s, rows) = (self.d, self.t_max + 1, targets.len());
        if rows == 0 || self.t_max == 0 || self.variant == HpsVariant::Off {
            return 0.0;
        }
        // the step losses are means over the chunk: weight each row by dloss
        let first = self.first_step.min(self.t_max - 1);
        let weight = self.lambda / (self.t_max - first) as f32;
        let dmean = dloss * weight * rows as f32;
        let mut hidden = vec![0.0f32; rows * d];
        let mut dhidden = vec![0.0f32; rows * d];
        let mut total = 0.0f64;
        for t in first..self.t_max {
            for (r, h) in hidden.chunks_exact_mut(d).enumerate() {
                h.copy_from_slice(&states[(r * s + t) * d..(r * s + t + 1) * d]);
            }
            dhidden.fill(0.0);
            let dh = dstates.is_some().then_some(&mut dhidden[..]);
            let mean = match self.variant {
                HpsVariant::Prototype => {
                    let level = &self.prototypes.levels()[t];
                    let clusters: Vec<u32> = targets
                        .iter()
                        .map(|&y| level.item_cluster[y as usize - 1])
                        .collect();
                    prototype_loss(
                        dh,
                        &hidden,
                        &level.centroids,
                        &clusters,
                        level.k,
                        d,
                        self.step_tau[t],
                        dmean,
                    )
                }
                HpsVariant::ClusterSoft => cluster_soft_loss(
                    dh,
                    ditems.as_deref_mut(),
                    &hidden,
                    items,
                    targets,
                    &self.members[t],
                    d,
                    self.step_epsilon[t],
                    self.cluster_target,
                    self.step_tau[t],
                    dmean,
                    self.item_gradient.at_step(t, self.t_max),
                ),
                HpsVariant::Off => unreachable!("returned above"),
            };
            total += f64::from(mean) * f64::from(weight) * rows as f64;
            if let Some(ds) = dstates.as_deref_mut() {
                for (r, g) in dhidden.chunks_exact(d).enumerate() {
                    let dst = &mut ds[(r * s + t) * d..(r * s + t + 1) * d];
                    for (a, &b) in dst.iter_mut().zip(g) {
                        *a += b;
                    }
                }
            }
        }
        total
    }
}
