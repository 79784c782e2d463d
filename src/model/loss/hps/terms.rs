//! The two Hierarchical Process Supervision losses of method.md §3 for one
//! reasoning step t, forward and hand-derived backward, generic over
//! [`Kernels`] (f32 training, f64 finite-difference checks).
//!
//! * [`prototype_loss`] (`prototype`): L_t = CE over ⟨h_t, c_i⟩/τ_p,
//!   i = 1 … k_t, target = the cluster of y at level t. Centroids carry no
//!   gradient; ∂L/∂h = Σ_i (p_i − 1[i = c(y)])·c_i/τ_p.
//! * [`cluster_soft_loss`] (`cluster_soft`): L_t = −Σ_v q_v log p_v with
//!   p = softmax(h_t·E[1..N]ᵀ/τ) and the soft target
//!   q = ε·onehot(y) + (1 − ε)·uniform(items of y's cluster at level t);
//!   ∂L/∂z = p − q (Σq = 1), so ∂L/∂h = Σ_v (p_v − q_v)·e_v/τ and
//!   ∂L/∂e_v = (p_v − q_v)·h/τ (the item table is a parameter). With
//!   [`ItemGradient::Target`] only the target's term ε·CE(y) reaches the
//!   item table: L = ε·(−log p_y) + (1 − ε)·CE(uniform(cluster), p) with the
//!   items of the second term held constant, so ∂L/∂e_v = ε·(p_v − 1[v = y])·h/τ
//!   while ∂L/∂h is unchanged.
//!   With [`ClusterTarget::Marginal`] (outside method.md) the cluster part
//!   is the cluster's total probability instead of a uniform spread:
//!   L_t = −ε·log p_y − (1 − ε)·log Σ_{v∈C(y)} p_v, so ∂L/∂z = p − q with
//!   the target q = ε·onehot(y) + (1 − ε)·p_v/P_C on the members v of y's
//!   cluster C (P_C = Σ_{v∈C} p_v): the state must put the mass on the
//!   cluster, but it chooses which members carry it.
//!
//! Both return the mean over rows and ACCUMULATE dloss·∂mean into the
//! gradients given. Rows are processed in blocks of [`ROW_BLOCK`] through
//! [`Kernels::score`], so no buffer grows with the batch beyond
//! ROW_BLOCK × N. Item ids are dense, 1 … N. Panics on inconsistent shapes
//! or out-of-range ids (caller bugs: ids were validated when the data was
//! loaded).

use dtrec_kernels::{Kernels, Trans};
use serde::{Deserialize, Serialize};

/// Which part of the `cluster_soft` loss's gradient reaches the item table.
///
/// The loss is ε·(−log p_y) + (1 − ε)·(−mean over y's cluster of log p_v).
/// Its second term pulls every member of y's cluster toward the states that
/// predict y; these options hold that pull (or the whole loss) away from
/// the item table, which the final-step loss shares, while the states get
/// the full gradient either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemGradient {
    /// The whole loss's gradient (method.md: the item table is a parameter).
    #[default]
    Full,
    /// Only the target's term ε·(−log p_y): the cluster term sees the item
    /// table as a constant.
    Target,
    /// None: the loss trains the states only, the items are constants.
    Off,
    /// `Target` at the last supervised step T_max − 1 (the served state's
    /// level, the finest clusters) and `Full` at the steps before it, so the
    /// coarse levels still group the items while the served state's cluster
    /// term leaves them alone. A training option: resolve it per step with
    /// [`ItemGradient::at_step`] before calling [`cluster_soft_loss`].
    TargetLast,
}

impl ItemGradient {
    /// The config spelling (`full`, `target`, `off`).
    pub fn name(self) -> &'static str {
        match self {
            ItemGradient::Full => "full",
            ItemGradient::Target => "target",
            ItemGradient::Off => "off",
            ItemGradient::TargetLast => "target-last",
        }
    }

    /// The gradient step `t` of a model with `t_max` steps uses: the option
    /// itself, except that `TargetLast` is `Target` at step `t_max − 1` and
    /// `Full` before it.
    ///
    /// ```
    /// use dtrec::model::loss::hps::ItemGradient;
    ///
    /// let steps: Vec<ItemGradient> = (0..3).map(|t| ItemGradient::TargetLast.at_step(t, 3)).collect();
    /// assert_eq!(steps, [ItemGradient::Full, ItemGradient::Full, ItemGradient::Target]);
    /// assert_eq!(ItemGradient::Off.at_step(2, 3), ItemGradient::Off);
    /// ```
    pub fn at_step(self, t: usize, t_max: usize) -> ItemGradient {
        match self {
            ItemGradient::TargetLast if t + 1 >= t_max => ItemGradient::Target,
            ItemGradient::TargetLast => ItemGradient::Full,
            other => other,
        }
    }
}

/// What the (1 − ε) cluster part of the `cluster_soft` target asks of a
/// state's item distribution p.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterTarget {
    /// method.md: the mass spread evenly over the members of y's cluster,
    /// −mean_{v∈C} log p_v, so every member is pulled up alike.
    #[default]
    Uniform,
    /// The cluster's total probability, −log Σ_{v∈C} p_v: the state puts
    /// the mass on y's cluster and chooses which members carry it, so a
    /// member the state thinks unlikely is not pulled up.
    Marginal,
}

impl ClusterTarget {
    /// The config spelling (`uniform`, `marginal`).
    pub fn name(self) -> &'static str {
        match self {
            ClusterTarget::Uniform => "uniform",
            ClusterTarget::Marginal => "marginal",
        }
    }
}

/// Rows per scoring block (the tuned query count of [`Kernels::score`]).
pub const ROW_BLOCK: usize = 8;

/// Items of every cluster of one level, in CSR form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterMembers {
    /// offsets[c] … offsets[c + 1] index `items` for cluster c (k + 1 values).
    offsets: Vec<usize>,
    /// Dense item ids (1 … N), grouped by cluster, ascending within one.
    items: Vec<u32>,
    /// Cluster of every item: entry i is the cluster of item i + 1.
    item_cluster: Vec<u32>,
}

impl ClusterMembers {
    /// From a level's item → cluster map (entry i = cluster of item i + 1,
    /// each < k). Panics if an entry is ≥ k.
    pub fn new(item_cluster: &[u32], k: usize) -> Self {
        let mut counts = vec![0usize; k + 1];
        for &c in item_cluster {
            assert!((c as usize) < k, "cluster id {c} out of range (k = {k})");
            counts[c as usize + 1] += 1;
        }
        for c in 0..k {
            counts[c + 1] += counts[c];
        }
        let offsets = counts.clone();
        let mut next = counts;
        let mut items = vec![0u32; item_cluster.len()];
        for (i, &c) in item_cluster.iter().enumerate() {
            items[next[c as usize]] = i as u32 + 1;
            next[c as usize] += 1;
        }
        Self {
            offsets,
            items,
            item_cluster: item_cluster.to_vec(),
        }
    }

    /// Number of clusters k.
    pub fn k(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Items (dense ids) of cluster c.
    pub fn members(&self, c: usize) -> &[u32] {
        &self.items[self.offsets[c]..self.offsets[c + 1]]
    }

    /// Cluster of dense item id `item` (1 … N). Panics if out of range.
    pub fn cluster_of(&self, item: u32) -> u32 {
        assert!(item >= 1, "item id 0 is padding");
        self.item_cluster[item as usize - 1]
    }
}

/// `prototype` HPS loss: mean over rows of CE(⟨h, c_i⟩/τ_p, c(y)).
///
/// * `dhidden`: (rows × d), accumulated if given;
/// * `hidden`: h_t, (rows × d);
/// * `centroids`: level-t centroids, (k × d), no gradient;
/// * `targets`: the cluster of each row's target at level t (rows), < k;
/// * `tau_p`: prototype temperature; `dloss`: upstream gradient of the mean.
#[allow(clippy::too_many_arguments)]
pub fn prototype_loss<T: Kernels>(
    mut dhidden: Option<&mut [T]>,
    hidden: &[T],
    centroids: &[T],
    targets: &[u32],
    k: usize,
    d: usize,
    tau_p: T,
    dloss: T,
) -> T {
    let rows = targets.len();
    assert_eq!(hidden.len(), rows * d, "hidden must be rows × d");
    assert_eq!(centroids.len(), k * d, "centroids must be k × d");
    if let Some(g) = dhidden.as_deref() {
        assert_eq!(g.len(), rows * d, "dhidden must be rows × d");
    }
    if rows == 0 {
        return T::ZERO;
    }
    let inv_rows = T::ONE / T::from_usize(rows);
    let inv_tau = T::ONE / tau_p;
    let mut total = T::ZERO;
    let mut logits = vec![T::ZERO; ROW_BLOCK * k]; // (block, k)
    let mut dlogits = vec![T::ZERO; ROW_BLOCK * k]; // (block, k)
    for start in (0..rows).step_by(ROW_BLOCK) {
        let m = ROW_BLOCK.min(rows - start);
        let h = &hidden[start * d..(start + m) * d];
        let z = &mut logits[..m * k];
        T::score(z, h, centroids, d, inv_tau);
        let dz = &mut dlogits[..m * k];
        dz.fill(T::ZERO);
        for r in 0..m {
            let target = targets[start + r] as usize;
            assert!(target < k, "target cluster {target} out of range (k = {k})");
            let zr = &z[r * k..(r + 1) * k];
            let grad = dhidden.is_some().then(|| &mut dz[r * k..(r + 1) * k]);
            total += T::cross_entropy(grad, zr, target, dloss * inv_rows);
        }
        if let Some(g) = dhidden.as_deref_mut() {
            // dh (m × d) += dz (m × k) · C (k × d) / τ_p
            T::gemm(
                m,
                d,
                k,
                inv_tau,
                dz,
                Trans::N,
                centroids,
                Trans::N,
                T::ONE,
                &mut g[start * d..(start + m) * d],
            );
        }
    }
    total * inv_rows
}

/// `cluster_soft` HPS loss: mean over rows of −Σ_v q_v log softmax(h·Eᵀ/τ)_v
/// with q = ε·onehot(y) + (1 − ε)·uniform(members of c(y)), or with
/// [`ClusterTarget::Marginal`] of −ε·log p_y − (1 − ε)·log Σ_{v∈c(y)} p_v.
///
/// * `dhidden`: (rows × d) and `ditems`: (N × d), accumulated if given;
/// * `hidden`: h_t, (rows × d); `items`: E[1..=N], (N × d);
/// * `targets`: dense item ids y (rows), 1 … N;
/// * `members`: level-t clusters of the N items;
/// * `epsilon` ∈ [0, 1]: weight of y itself; `cluster_target`: the form of
///   the cluster part; `tau`: item temperature;
///   `dloss`: upstream gradient of the mean;
/// * `item_gradient`: which part of the gradient `ditems` receives
///   (`Full`, `Target` or `Off`; a `TargetLast` option is resolved for the
///   step by [`ItemGradient::at_step`] first, and panics here).
#[allow(clippy::too_many_arguments)]
pub fn cluster_soft_loss<T: Kernels>(
    mut dhidden: Option<&mut [T]>,
    mut ditems: Option<&mut [T]>,
    hidden: &[T],
    items: &[T],
    targets: &[u32],
    members: &ClusterMembers,
    d: usize,
    epsilon: T,
    cluster_target: ClusterTarget,
    tau: T,
    dloss: T,
    item_gradient: ItemGradient,
) -> T {
    let rows = targets.len();
    assert!(d > 0, "d must be positive");
    let n = items.len() / d;
    assert_eq!(items.len(), n * d, "items must be N × d");
    assert_eq!(
        members.item_cluster.len(),
        n,
        "members must cover the N items"
    );
    assert_eq!(hidden.len(), rows * d, "hidden must be rows × d");
    if let Some(g) = dhidden.as_deref() {
        assert_eq!(g.len(), rows * d, "dhidden must be rows × d");
    }
    if let Some(g) = ditems.as_deref() {
        assert_eq!(g.len(), n * d, "ditems must be N × d");
    }
    assert!(
        item_gradient != ItemGradient::TargetLast,
        "resolve ItemGradient::TargetLast for the step with at_step"
    );
    if item_gradient == ItemGradient::Off {
        ditems = None;
    }
    assert!(
        epsilon >= T::ZERO && epsilon <= T::ONE,
        "epsilon must be in [0, 1]"
    );
    if rows == 0 {
        return T::ZERO;
    }
    let inv_rows = T::ONE / T::from_usize(rows);
    let inv_tau = T::ONE / tau;
    let need_grad = dhidden.is_some() || ditems.is_some();
    let mut total = T::ZERO;
    let mut logits = vec![T::ZERO; ROW_BLOCK * n]; // (block, N)
    let mut dlogits = vec![T::ZERO; if need_grad { ROW_BLOCK * n } else { 0 }];
    // ε·(p − onehot(y)) per row, the item table's dz under `Target`
    let target_only = ditems.is_some() && item_gradient == ItemGradient::Target;
    let mut ditem_logits = vec![T::ZERO; if target_only { ROW_BLOCK * n } else { 0 }];
    for start in (0..rows).step_by(ROW_BLOCK) {
        let m = ROW_BLOCK.min(rows - start);
        let h = &hidden[start * d..(start + m) * d];
        let z = &mut logits[..m * n];
        T::score(z, h, items, d, inv_tau);
        if need_grad {
            dlogits[..m * n].fill(T::ZERO);
        }
        if target_only {
            ditem_logits[..m * n].fill(T::ZERO);
        }
        for r in 0..m {
            let y = targets[start + r];
            assert!(
                y >= 1 && (y as usize) <= n,
                "target item {y} out of range 1..={n}"
            );
            let zr = &z[r * n..(r + 1) * n];
            // pass 1: log-sum-exp of the row
            let mut state = (T::NEG_INFINITY, T::ZERO);
            T::lse_accumulate(&mut state, zr);
            let lse = state.0 + state.1.ln();
            // pass 2: loss = lse − Σ q_v z_v (`Marginal`: with the
            // cluster's log Σ exp z in place of the spread's Σ q_v z_v)
            let group = members.members(members.cluster_of(y) as usize);
            let spread = (T::ONE - epsilon) / T::from_usize(group.len());
            // cluster_lse: log Σ_{v∈C} exp z_v (`Marginal` only)
            let (qz, cluster_lse) = match cluster_target {
                ClusterTarget::Uniform => {
                    let qz = group.iter().fold(epsilon * zr[y as usize - 1], |acc, &v| {
                        acc + spread * zr[v as usize - 1]
                    });
                    (qz, T::ZERO)
                }
                ClusterTarget::Marginal => {
                    let cluster_lse = log_sum_exp_over(zr, group);
                    let qz = epsilon * zr[y as usize - 1] + (T::ONE - epsilon) * cluster_lse;
                    (qz, cluster_lse)
                }
            };
            total += lse - qz;
            if need_grad {
                // pass 3: dz = scale·(p − q)
                let scale = dloss * inv_rows;
                let dz = &mut dlogits[r * n..(r + 1) * n];
                T::xent_backward_block(dz, zr, lse, scale);
                dz[y as usize - 1] -= scale * epsilon;
                match cluster_target {
                    ClusterTarget::Uniform => {
                        for &v in group {
                            dz[v as usize - 1] -= scale * spread;
                        }
                    }
                    ClusterTarget::Marginal => {
                        // q_v = (1 − ε)·p_v/P_C = (1 − ε)·exp(z_v − log Σ_C exp z)
                        let mass = scale * (T::ONE - epsilon);
                        for &v in group {
                            dz[v as usize - 1] -= mass * (zr[v as usize - 1] - cluster_lse).exp();
                        }
                    }
                }
            }
            if target_only {
                let scale = dloss * inv_rows * epsilon;
                let dz = &mut ditem_logits[r * n..(r + 1) * n];
                T::xent_backward_block(dz, zr, lse, scale);
                dz[y as usize - 1] -= scale;
            }
        }
        let dz = &dlogits[..if need_grad { m * n } else { 0 }];
        if let Some(g) = dhidden.as_deref_mut() {
            // dh (m × d) += dz (m × N) · E (N × d) / τ
            T::gemm(
                m,
                d,
                n,
                inv_tau,
                dz,
                Trans::N,
                items,
                Trans::N,
                T::ONE,
                &mut g[start * d..(start + m) * d],
            );
        }
        if let Some(g) = ditems.as_deref_mut() {
            // dE (N × d) += dzᵀ (N × m) · h (m × d) / τ
            let dz = if target_only {
                &ditem_logits[..m * n]
            } else {
                dz
            };
            T::gemm(n, d, m, inv_tau, dz, Trans::T, h, Trans::N, T::ONE, g);
        }
    }
    total * inv_rows
}

/// log Σ_{v∈group} exp z_v (ids 1-based), shifted by the group's maximum.
fn log_sum_exp_over<T: Kernels>(z: &[T], group: &[u32]) -> T {
    let top = group
        .iter()
        .fold(T::NEG_INFINITY, |acc, &v| acc.max(z[v as usize - 1]));
    let sum = group
        .iter()
        .fold(T::ZERO, |acc, &v| acc + (z[v as usize - 1] - top).exp());
    top + sum.ln()
}
