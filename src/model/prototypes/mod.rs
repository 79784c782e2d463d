//! The cluster hierarchy of Hierarchical Process Supervision (method.md §3):
//! the geometric cluster-count schedule and the per-level item
//! [`Prototypes`] (centroids + item → cluster maps).
//!
//! Level t ∈ 0 … T_max supervises reasoning step t; level T_max is the item
//! level (k = N, every item its own cluster).
//!
//! ```
//! use dtrec::model::prototypes::cluster_schedule;
//! assert_eq!(cluster_schedule(256, 16, 2).unwrap(), vec![16, 64, 256]);
//! ```

use std::fmt;

use dtrec_kernels::{Kernels, Trans};

use crate::model::Model;

pub mod kmeans;

use kmeans::{kmeans, KMeansConfig, KMeansError, DEFAULT_MAX_ITERS};

/// Default smallest cluster count (method.md §3: k_min = 16).
pub const DEFAULT_K_MIN: usize = 16;

/// An invalid hierarchy request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HierarchyError {
    /// N = 0 (no item to cluster).
    NoItems,
    /// k_min = 0.
    ZeroKMin,
    /// The item table is not N × d (`len` values given).
    ShapeMismatch {
        /// Slice length.
        len: usize,
        /// Items N.
        n_items: usize,
        /// Width d.
        d: usize,
    },
    /// Refreshing with a different N, d or configuration than the build.
    RefreshMismatch,
    /// A stored level is inconsistent (see [`Prototypes::from_levels`]).
    BadLevel {
        /// The level (or the level count, for a wrong number of levels).
        level: usize,
        /// What is wrong.
        reason: String,
    },
    /// A K-means run failed (non-finite embeddings, …) at `level`.
    KMeans {
        /// Level being clustered.
        level: usize,
        /// The K-means error.
        source: KMeansError,
    },
}

impl fmt::Display for HierarchyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HierarchyError::NoItems => write!(f, "hierarchy: no items to cluster (N = 0)"),
            HierarchyError::ZeroKMin => write!(f, "hierarchy: k_min must be at least 1"),
            HierarchyError::ShapeMismatch { len, n_items, d } => write!(
                f,
                "hierarchy: item table has {len} values, expected {n_items}×{d}"
            ),
            HierarchyError::RefreshMismatch => write!(
                f,
                "hierarchy: refresh with a different item count, width or configuration"
            ),
            HierarchyError::BadLevel { level, reason } => {
                write!(f, "hierarchy: stored level {level}: {reason}")
            }
            HierarchyError::KMeans { level, source } => {
                write!(f, "hierarchy: clustering level {level}: {source}")
            }
        }
    }
}

impl std::error::Error for HierarchyError {}

/// Cluster counts k_t = ⌊k_min · (N/k_min)^{t/T_max}⌋ for t = 0 … T_max
/// (T_max + 1 values), with k_min clamped to N, the last value exactly N
/// and the sequence non-decreasing. T_max = 0 gives `[N]` (only the item
/// level).
///
/// The power is evaluated in f64; a value within 1e-9 (relative) of an
/// integer is taken as that integer, so exact cases such as
/// N = 256, k_min = 16, T_max = 2 → 64 are not lost to the rounding of
/// `powf` (63.99999… would floor to 63).
pub fn cluster_schedule(
    n_items: usize,
    k_min: usize,
    t_max: usize,
) -> Result<Vec<usize>, HierarchyError> {
    if n_items == 0 {
        return Err(HierarchyError::NoItems);
    }
    if k_min == 0 {
        return Err(HierarchyError::ZeroKMin);
    }
    if t_max == 0 {
        return Ok(vec![n_items]);
    }
    let k_min = k_min.min(n_items);
    let ratio = n_items as f64 / k_min as f64;
    let mut out = Vec::with_capacity(t_max + 1);
    for t in 0..=t_max {
        let k = if t == 0 {
            k_min
        } else if t == t_max {
            n_items
        } else {
            let x = k_min as f64 * ratio.powf(t as f64 / t_max as f64);
            let nearest = x.round();
            let k = if (x - nearest).abs() <= 1e-9 * nearest.max(1.0) {
                nearest
            } else {
                x.floor()
            };
            (k as usize).clamp(k_min, n_items)
        };
        let prev = out.last().copied().unwrap_or(k);
        out.push(k.max(prev));
    }
    Ok(out)
}

/// How the levels are clustered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HierarchyLayout {
    /// Every level clusters the item rows independently.
    Flat,
    /// Level t < T_max clusters the centroids of level t + 1 (unweighted:
    /// every finer centroid counts once); item maps are composed, so items
    /// sharing a fine cluster always share every coarser one.
    Nested,
}

/// Settings of the prototype hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrototypeConfig {
    /// Smallest cluster count k_0 (clamped to N).
    pub k_min: usize,
    /// Number of reasoning steps T_max (levels 0 … T_max).
    pub t_max: usize,
    /// Flat or nested clustering.
    pub layout: HierarchyLayout,
    /// Lloyd iterations per level and refresh.
    pub kmeans_iters: usize,
    /// Seed; level t uses `seed + t` (wrapping).
    pub seed: u64,
    /// Parallel K-means assignment (bit-identical to serial).
    pub parallel: bool,
}

impl PrototypeConfig {
    /// Defaults of method.md §3: k_min = 16, 25 Lloyd iterations, flat.
    pub fn new(t_max: usize, seed: u64) -> Self {
        Self {
            k_min: DEFAULT_K_MIN,
            t_max,
            layout: HierarchyLayout::Flat,
            kmeans_iters: DEFAULT_MAX_ITERS,
            seed,
            parallel: false,
        }
    }
}

/// One level of the hierarchy.
#[derive(Clone, Debug, PartialEq)]
pub struct PrototypeLevel<T> {
    /// Number of clusters k_t.
    pub k: usize,
    /// Centroids, (k × d) row-major; no gradient flows into them.
    pub centroids: Vec<T>,
    /// Cluster of every item (N): entry i is the cluster of dense item id
    /// i + 1 (id 0 is padding and has none).
    pub item_cluster: Vec<u32>,
}

/// Per-level centroids and item → cluster maps for t = 0 … T_max.
#[derive(Clone, Debug, PartialEq)]
pub struct Prototypes<T> {
    config: PrototypeConfig,
    n_items: usize,
    d: usize,
    levels: Vec<PrototypeLevel<T>>,
}

impl<T: Kernels> Prototypes<T> {
    /// Clusters `item_rows` = E[1..=N] (N × d, row-major, the item table
    /// without its padding row) into the levels of
    /// [`cluster_schedule`]`(N, k_min, T_max)`, seeding with K-means++.
    pub fn build(
        item_rows: &[T],
        n_items: usize,
        d: usize,
        config: &PrototypeConfig,
    ) -> Result<Self, HierarchyError> {
        let mut out = Self {
            config: config.clone(),
            n_items,
            d,
            levels: Vec::new(),
        };
        out.levels = out.cluster(item_rows, None)?;
        Ok(out)
    }

    /// Re-clusters new `item_rows` (same N × d) with the same configuration,
    /// every level warm-started from its current centroids.
    pub fn refresh(
        &mut self,
        item_rows: &[T],
        n_items: usize,
        d: usize,
    ) -> Result<(), HierarchyError> {
        if n_items != self.n_items || d != self.d {
            return Err(HierarchyError::RefreshMismatch);
        }
        let previous = std::mem::take(&mut self.levels);
        match self.cluster(item_rows, Some(&previous)) {
            Ok(levels) => {
                self.levels = levels;
                Ok(())
            }
            Err(e) => {
                self.levels = previous;
                Err(e)
            }
        }
    }

    /// Rebuilds a hierarchy from stored levels (a model file or a
    /// checkpoint), validating everything a hostile file could get wrong:
    /// T_max + 1 levels whose cluster counts follow
    /// [`cluster_schedule`]`(N, k_min, T_max)` (capped at N), centroids
    /// (k × d) all finite, one cluster id < k per item.
    pub fn from_levels(
        config: PrototypeConfig,
        n_items: usize,
        d: usize,
        levels: Vec<PrototypeLevel<T>>,
    ) -> Result<Self, HierarchyError> {
        let schedule = cluster_schedule(n_items, config.k_min, config.t_max)?;
        let bad = |level: usize, reason: String| HierarchyError::BadLevel { level, reason };
        if levels.len() != schedule.len() {
            return Err(bad(
                levels.len(),
                format!("{} levels, expected {}", levels.len(), schedule.len()),
            ));
        }
        for (t, (level, &k)) in levels.iter().zip(&schedule).enumerate() {
            let k = k.min(n_items);
            if level.k != k {
                return Err(bad(t, format!("{} clusters, expected {k}", level.k)));
            }
            if Some(level.centroids.len()) != k.checked_mul(d) {
                return Err(bad(t, format!("centroids are not {k}×{d}")));
            }
            if level.centroids.iter().any(|c| !c.is_finite()) {
                return Err(bad(t, "a centroid value is not finite".into()));
            }
            if level.item_cluster.len() != n_items {
                return Err(bad(
                    t,
                    format!(
                        "{} item clusters for {n_items} items",
                        level.item_cluster.len()
                    ),
                ));
            }
            if let Some(c) = level.item_cluster.iter().find(|&&c| c as usize >= k) {
                return Err(bad(t, format!("cluster id {c} is not below k = {k}")));
            }
        }
        Ok(Self {
            config,
            n_items,
            d,
            levels,
        })
    }

    /// The levels, t = 0 … T_max (coarse to fine).
    pub fn levels(&self) -> &[PrototypeLevel<T>] {
        &self.levels
    }

    /// Level t, if t ≤ T_max.
    pub fn level(&self, t: usize) -> Option<&PrototypeLevel<T>> {
        self.levels.get(t)
    }

    /// Cluster of dense item id `item` (1 ≤ item ≤ N) at level t.
    pub fn cluster_of(&self, t: usize, item: u32) -> Option<u32> {
        let idx = (item as usize).checked_sub(1)?;
        self.levels.get(t)?.item_cluster.get(idx).copied()
    }

    /// Prototype logits of level t: out (rows × k_t) = hidden (rows × d) ·
    /// centroidsᵀ / τ (the `prototype` HPS logits, also usable for the
    /// indicators over a prototype level when N is very large). None if
    /// t > T_max. Panics if `hidden.len()` is not a multiple of d.
    pub fn level_logits(&self, t: usize, hidden: &[T], tau: T) -> Option<Vec<T>> {
        let level = self.levels.get(t)?;
        assert_eq!(hidden.len() % self.d, 0, "hidden must be rows × d");
        let rows = hidden.len() / self.d;
        let mut out = vec![T::ZERO; rows * level.k];
        T::gemm(
            rows,
            level.k,
            self.d,
            T::ONE / tau,
            hidden,
            Trans::N,
            &level.centroids,
            Trans::T,
            T::ZERO,
            &mut out,
        );
        Some(out)
    }

    /// The highest-scoring prototype ⟨h, c_i⟩ of level t for one hidden
    /// state h (d), lowest index on ties, with its score; for printing a
    /// reasoning trajectory. None if t > T_max. Panics if `h.len() != d`.
    pub fn top_cluster(&self, t: usize, h: &[T]) -> Option<(u32, T)> {
        assert_eq!(h.len(), self.d, "h must have width d");
        let scores = self.level_logits(t, h, T::ONE)?;
        let mut best = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s > scores[best] {
                best = i;
            }
        }
        Some((best as u32, scores[best]))
    }

    /// Number of items N.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Embedding width d.
    pub fn d(&self) -> usize {
        self.d
    }

    /// The configuration the hierarchy was built with.
    pub fn config(&self) -> &PrototypeConfig {
        &self.config
    }

    fn cluster(
        &self,
        item_rows: &[T],
        warm: Option<&[PrototypeLevel<T>]>,
    ) -> Result<Vec<PrototypeLevel<T>>, HierarchyError> {
        let (n, d) = (self.n_items, self.d);
        let schedule = cluster_schedule(n, self.config.k_min, self.config.t_max)?;
        if n.checked_mul(d) != Some(item_rows.len()) || d == 0 {
            return Err(HierarchyError::ShapeMismatch {
                len: item_rows.len(),
                n_items: n,
                d,
            });
        }
        let run = |t: usize, points: &[T], n_points: usize| {
            let cfg = KMeansConfig {
                k: schedule[t],
                max_iters: self.config.kmeans_iters,
                seed: self.config.seed.wrapping_add(t as u64),
                parallel: self.config.parallel,
            };
            let start = warm
                .and_then(|w| w.get(t))
                .filter(|l| l.k == schedule[t].min(n_points))
                .map(|l| l.centroids.as_slice());
            kmeans(points, n_points, d, &cfg, start)
                .map_err(|source| HierarchyError::KMeans { level: t, source })
        };
        let mut levels: Vec<Option<PrototypeLevel<T>>> = vec![None; schedule.len()];
        match self.config.layout {
            HierarchyLayout::Flat => {
                for (t, slot) in levels.iter_mut().enumerate() {
                    let fit = run(t, item_rows, n)?;
                    *slot = Some(PrototypeLevel {
                        k: fit.k,
                        centroids: fit.centroids,
                        item_cluster: fit.assignments,
                    });
                }
            }
            HierarchyLayout::Nested => {
                // finest first: level T_max clusters the items, then each
                // coarser level clusters the centroids just computed
                let mut finer: Option<PrototypeLevel<T>> = None;
                for t in (0..schedule.len()).rev() {
                    let level = match &finer {
                        None => {
                            let fit = run(t, item_rows, n)?;
                            PrototypeLevel {
                                k: fit.k,
                                centroids: fit.centroids,
                                item_cluster: fit.assignments,
                            }
                        }
                        Some(f) => {
                            let fit = run(t, &f.centroids, f.k)?;
                            let item_cluster = f
                                .item_cluster
                                .iter()
                                .map(|&c| fit.assignments[c as usize])
                                .collect();
                            PrototypeLevel {
                                k: fit.k,
                                centroids: fit.centroids,
                                item_cluster,
                            }
                        }
                    };
                    levels[t] = Some(level.clone());
                    finer = Some(level);
                }
            }
        }
        Ok(levels.into_iter().flatten().collect())
    }
}

/// Builds (or, when `current` holds a hierarchy, warm-refreshes) the
/// prototypes of the model's item rows E[1..N] under `config` (its `t_max`
/// and seed are used only for a fresh build; a refresh keeps the current
/// hierarchy's).
pub fn cluster_items(
    current: Option<Prototypes<f32>>,
    model: &Model,
    config: &PrototypeConfig,
) -> Result<Prototypes<f32>, HierarchyError> {
    let cfg = model.config();
    let (n, d) = (cfg.n_items, cfg.d);
    let rows = &model.params.item_emb.data[d..];
    match current {
        Some(mut p) => {
            p.refresh(rows, n, d)?;
            Ok(p)
        }
        None => Prototypes::build(rows, n, d, config),
    }
}
