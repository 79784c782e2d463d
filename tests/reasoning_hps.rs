//! HPS losses (`dtrec::model::loss::hps`):
//!
//! * cluster membership (CSR) from an item → cluster map;
//! * closed forms of both losses and their gradients on 1-d cases;
//! * `cluster_soft` with ε = 1 (or singleton clusters) is the item
//!   cross-entropy of the kernels, for both cluster targets;
//! * f64 central finite differences of the loss against the hand-derived
//!   gradients for h (both losses) and E (`cluster_soft`), on shapes that
//!   cross the row-block boundary (proptest);
//! * the item-gradient options: `Target` (items get only ε·CE(y)'s
//!   gradient) and `Off` (none), against finite differences;
//! * backward accumulates (twice → double); f32 agrees with f64.

mod common;
use common::{check_fd, normals};

use dtrec::model::loss::hps::{
    cluster_soft_loss, prototype_loss, ClusterMembers, ClusterTarget, ItemGradient, ROW_BLOCK,
};
use dtrec_kernels::rng::CounterRng;
use dtrec_kernels::Kernels;
use proptest::prelude::*;

#[test]
fn cluster_members_csr() {
    let m = ClusterMembers::new(&[1, 0, 1, 2, 1], 4);
    assert_eq!(m.k(), 4);
    assert_eq!(m.members(0), &[2]);
    assert_eq!(m.members(1), &[1, 3, 5]);
    assert_eq!(m.members(2), &[4]);
    assert!(m.members(3).is_empty());
    assert_eq!(m.cluster_of(1), 1);
    assert_eq!(m.cluster_of(4), 2);
}

#[test]
fn prototype_closed_form() {
    // h = 1, centroids 1 and −1, τ_p = 1: z = (1, −1), target 0
    // CE = ln(1 + e^{−2}); dh = (p0 − 1)·1 + p1·(−1) = −2·p1, p1 = σ(−2)
    let mut dh = [0.0f64];
    let loss = prototype_loss(Some(&mut dh), &[1.0], &[1.0, -1.0], &[0], 2, 1, 1.0, 1.0);
    let p1 = 1.0 / (1.0 + 2f64.exp());
    assert!((loss - (1.0 + (-2f64).exp()).ln()).abs() < 1e-15);
    assert!((dh[0] + 2.0 * p1).abs() < 1e-15);
    // one cluster: CE = 0 and no gradient
    let mut dh = [0.0f64; 2];
    let loss = prototype_loss(
        Some(&mut dh),
        &[0.3, -2.0],
        &[5.0, 1.0],
        &[0],
        1,
        2,
        0.5,
        1.0,
    );
    assert_eq!(loss, 0.0);
    assert_eq!(dh, [0.0, 0.0]);
}

/// Items e = (1, 0, −1), h = 1, τ = 1, so z = (1, 0, −1); y = 1, whose
/// cluster is {1, 2}; ε = ½. Checks the loss, dh = Σ (p − q)·e and
/// de_v = (p_v − q_v)·h against the given closed-form loss and target q.
fn check_three_item_case(
    cluster: ClusterTarget,
    loss_of_p: impl Fn(&[f64]) -> f64,
    q_of_p: impl Fn(&[f64]) -> [f64; 3],
) {
    let members = ClusterMembers::new(&[0, 0, 1], 2);
    let items = [1.0f64, 0.0, -1.0];
    let mut dh = [0.0];
    let mut de = [0.0; 3];
    let loss = cluster_soft_loss(
        Some(&mut dh),
        Some(&mut de),
        &[1.0],
        &items,
        &[1],
        &members,
        1,
        0.5,
        cluster,
        1.0,
        1.0,
        ItemGradient::Full,
    );
    let z = [1.0f64, 0.0, -1.0];
    let s: f64 = z.iter().map(|v| v.exp()).sum();
    let p: Vec<f64> = z.iter().map(|v| v.exp() / s).collect();
    let expect = loss_of_p(&p);
    assert!(
        (loss - expect).abs() < 1e-15,
        "{cluster:?}: {loss} vs {expect}"
    );
    let q = q_of_p(&p);
    let expect_dh: f64 = (0..3).map(|v| (p[v] - q[v]) * items[v]).sum();
    assert!(
        (dh[0] - expect_dh).abs() < 1e-15,
        "{cluster:?}: {} vs {expect_dh}",
        dh[0]
    );
    for v in 0..3 {
        assert!(
            (de[v] - (p[v] - q[v])).abs() < 1e-15,
            "{cluster:?}: item {v}"
        );
    }
}

/// `Uniform`: q = (¾, ¼, 0), loss = −¾·log p₁ − ¼·log p₂.
#[test]
fn cluster_soft_closed_form() {
    check_three_item_case(
        ClusterTarget::Uniform,
        |p| -0.75 * p[0].ln() - 0.25 * p[1].ln(),
        |_| [0.75, 0.25, 0.0],
    );
}

/// `Marginal`: the cluster part is −log(p₁ + p₂), and its half of q
/// follows p within the cluster (p₁ : p₂ = e : 1), so the unlikely member 2
/// gets less than the uniform ¼.
#[test]
fn cluster_soft_marginal_closed_form() {
    let q_of_p = |p: &[f64]| {
        let in_cluster = p[0] + p[1];
        [0.5 + 0.5 * p[0] / in_cluster, 0.5 * p[1] / in_cluster, 0.0]
    };
    check_three_item_case(
        ClusterTarget::Marginal,
        |p| -0.5 * p[0].ln() - 0.5 * (p[0] + p[1]).ln(),
        q_of_p,
    );
    let z = [1.0f64, 0.0, -1.0];
    let s: f64 = z.iter().map(|v| v.exp()).sum();
    let p: Vec<f64> = z.iter().map(|v| v.exp() / s).collect();
    assert!(q_of_p(&p)[1] < 0.25);
}

#[test]
fn cluster_soft_reduces_to_item_cross_entropy() {
    let (rows, n, d) = (11, 9, 4);
    let hidden = normals(rows * d, 1, 2, 1.0);
    let items = normals(n * d, 2, 2, 1.0);
    let targets: Vec<u32> = (0..rows as u32).map(|r| 1 + (r * 5) % n as u32).collect();
    let mut expect = 0.0;
    for r in 0..rows {
        let mut z = vec![0.0; n];
        f64::score(&mut z, &hidden[r * d..(r + 1) * d], &items, d, 1.0 / 0.7);
        expect += f64::cross_entropy(None, &z, targets[r] as usize - 1, 1.0);
    }
    expect /= rows as f64;
    // ε = 1 with coarse clusters, and any ε with singleton clusters
    let coarse = ClusterMembers::new(&(0..n as u32).map(|i| i % 3).collect::<Vec<_>>(), 3);
    let single = ClusterMembers::new(&(0..n as u32).collect::<Vec<_>>(), n);
    let cases = [(&coarse, 1.0), (&single, 0.0), (&single, 0.4)];
    for ((members, eps), cluster) in cases
        .into_iter()
        .flat_map(|case| [ClusterTarget::Uniform, ClusterTarget::Marginal].map(|c| (case, c)))
    {
        let loss = cluster_soft_loss(
            None,
            None,
            &hidden,
            &items,
            &targets,
            members,
            d,
            eps,
            cluster,
            0.7,
            1.0,
            ItemGradient::Full,
        );
        assert!(
            (loss - expect).abs() < 1e-13,
            "{cluster:?}: {loss} vs {expect}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn prototype_gradient_matches_finite_differences(
        rows in 1usize..(2 * ROW_BLOCK + 3),
        k in 1usize..7,
        d in 1usize..6,
        seed in 0u64..10_000,
        tau in 0.3f64..2.0,
        dloss in 0.2f64..2.0,
    ) {
        let mut hidden = normals(rows * d, 3, seed, 1.0);
        let cents = normals(k * d, 4, seed, 1.0);
        let rng = CounterRng::new(seed);
        let targets: Vec<u32> = (0..rows as u64).map(|r| rng.below(5, r, k as u64) as u32).collect();
        let mut dh = vec![0.0; rows * d];
        prototype_loss(Some(&mut dh), &hidden, &cents, &targets, k, d, tau, dloss);
        let f = |h: &[f64]| dloss * prototype_loss(None, h, &cents, &targets, k, d, tau, 1.0);
        check_fd(&dh, &mut hidden, &f, "dh")?;
    }

    /// `Full`: the loss's gradients for h and E. `Target`: the states get
    /// the same, the items that of ε·(−log p_y) alone (= ε times the loss at
    /// ε = 1). `Off`: the same state gradient, none for the items. Each
    /// for both cluster targets (`Uniform`, `Marginal`).
    #[test]
    fn cluster_soft_gradients_match_finite_differences(
        marginal in any::<bool>(),
        rows in 1usize..(2 * ROW_BLOCK + 3),
        n in 2usize..12,
        k in 1usize..5,
        d in 1usize..5,
        seed in 0u64..10_000,
        eps in 0.0f64..1.0,
        tau in 0.3f64..2.0,
        dloss in 0.2f64..2.0,
    ) {
        let mut hidden = normals(rows * d, 6, seed, 1.0);
        let mut items = normals(n * d, 7, seed, 1.0);
        let rng = CounterRng::new(seed);
        let map: Vec<u32> = (0..n as u64).map(|i| rng.below(8, i, k as u64) as u32).collect();
        let members = ClusterMembers::new(&map, k);
        let targets: Vec<u32> = (0..rows as u64).map(|r| 1 + rng.below(9, r, n as u64) as u32).collect();
        let cluster = if marginal { ClusterTarget::Marginal } else { ClusterTarget::Uniform };
        let loss = |h: &[f64], e: &[f64], eps: f64| {
            cluster_soft_loss(None, None, h, e, &targets, &members, d, eps, cluster, tau, 1.0, ItemGradient::Full)
        };
        let grads = |option: ItemGradient| {
            let mut dh = vec![0.0; rows * d];
            let mut de = vec![0.0; n * d];
            let value = cluster_soft_loss(Some(&mut dh), Some(&mut de), &hidden, &items, &targets, &members, d, eps, cluster, tau, dloss, option);
            (value, dh, de)
        };
        let (value, dh, de) = grads(ItemGradient::Full);
        let (target_value, target_dh, target_de) = grads(ItemGradient::Target);
        let (off_value, off_dh, off_de) = grads(ItemGradient::Off);
        let fh = |h: &[f64]| dloss * loss(h, &items, eps);
        check_fd(&dh, &mut hidden, &fh, "dh")?;
        let fe = |e: &[f64]| dloss * loss(&hidden, e, eps);
        check_fd(&de, &mut items, &fe, "dE")?;

        prop_assert_eq!(target_value, value);
        prop_assert_eq!(&target_dh, &dh);
        let fe_target = |e: &[f64]| dloss * eps * loss(&hidden, e, 1.0);
        check_fd(&target_de, &mut items, &fe_target, "dE of the target term")?;

        prop_assert_eq!(off_value, value);
        prop_assert_eq!(&off_dh, &dh);
        prop_assert!(off_de.iter().all(|&g| g == 0.0), "Off leaves dE alone: {:?}", off_de);
    }
}

#[test]
fn backward_accumulates_and_f32_agrees() {
    let (rows, n, k, d) = (13, 20, 4, 6);
    let hidden = normals(rows * d, 10, 1, 1.0);
    let items = normals(n * d, 11, 1, 1.0);
    let map: Vec<u32> = (0..n as u32).map(|i| i % k as u32).collect();
    let members = ClusterMembers::new(&map, k);
    let cents = normals(k * d, 12, 1, 1.0);
    let targets: Vec<u32> = (0..rows as u32).map(|r| 1 + (r * 7) % n as u32).collect();
    let cluster_targets: Vec<u32> = targets.iter().map(|&y| members.cluster_of(y)).collect();

    let run = |times: usize| {
        let mut dh = vec![0.0; rows * d];
        let mut de = vec![0.0; n * d];
        let mut dhp = vec![0.0; rows * d];
        for _ in 0..times {
            cluster_soft_loss(
                Some(&mut dh),
                Some(&mut de),
                &hidden,
                &items,
                &targets,
                &members,
                d,
                0.3,
                ClusterTarget::Uniform,
                1.0,
                1.0,
                ItemGradient::Full,
            );
            prototype_loss(
                Some(&mut dhp),
                &hidden,
                &cents,
                &cluster_targets,
                k,
                d,
                1.0,
                1.0,
            );
        }
        (dh, de, dhp)
    };
    let once = run(1);
    let twice = run(2);
    for (a, b) in [
        (&once.0, &twice.0),
        (&once.1, &twice.1),
        (&once.2, &twice.2),
    ] {
        assert!(a.iter().any(|&x| x != 0.0));
        for (x, y) in a.iter().zip(b) {
            // dE sums row blocks in a different association the second time
            // ((b1 + b2) + b1 + b2 vs 2·(b1 + b2)): a few ulps
            assert!((2.0 * x - y).abs() <= 1e-13 * (1.0 + y.abs()));
        }
    }

    let c = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (h32, e32, c32) = (c(&hidden), c(&items), c(&cents));
    let l64 = cluster_soft_loss(
        None,
        None,
        &hidden,
        &items,
        &targets,
        &members,
        d,
        0.3,
        ClusterTarget::Uniform,
        1.0,
        1.0,
        ItemGradient::Full,
    );
    let l32 = cluster_soft_loss(
        None,
        None,
        &h32,
        &e32,
        &targets,
        &members,
        d,
        0.3f32,
        ClusterTarget::Uniform,
        1.0,
        1.0,
        ItemGradient::Full,
    );
    // inputs rounded to f32 (2⁻²⁴ relative) move logits of size ~3 by ~1e-6
    assert!((f64::from(l32) - l64).abs() < 1e-5, "{l32} vs {l64}");
    let p64 = prototype_loss(None, &hidden, &cents, &cluster_targets, k, d, 1.0, 1.0);
    let p32 = prototype_loss(None, &h32, &c32, &cluster_targets, k, d, 1.0f32, 1.0);
    assert!((f64::from(p32) - p64).abs() < 1e-5, "{p32} vs {p64}");
}

/// `TargetLast` names a per-step schedule, not one step's gradient: the
/// kernel refuses it unresolved rather than guess the step.
#[test]
#[should_panic(expected = "resolve ItemGradient::TargetLast")]
fn cluster_soft_refuses_an_unresolved_per_step_option() {
    let members = ClusterMembers::new(&[0, 0], 1);
    let mut ditems = vec![0.0f64; 2];
    cluster_soft_loss(
        None,
        Some(&mut ditems),
        &[1.0],
        &[1.0, -1.0],
        &[1],
        &members,
        1,
        0.5,
        ClusterTarget::Uniform,
        1.0,
        1.0,
        ItemGradient::TargetLast,
    );
}
