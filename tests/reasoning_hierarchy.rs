//! HPS hierarchy (`dtrec::model::prototypes`):
//!
//! * the geometric schedule has exact hand-computed values (including exact
//!   powers that a naive `floor(powf)` gets wrong: 8192/16 over 3 steps →
//!   128 and 1024, not 127 and 1023), and its invariants hold for any input;
//! * flat prototypes: one K-means per level, the item level is the identity;
//! * nested prototypes: items in the same fine cluster share every coarser
//!   cluster;
//! * refresh warm-starts every level from the previous centroids (equal to a
//!   direct warm-started K-means) and is a fixed point on unchanged rows.

use dtrec::model::prototypes::kmeans::{kmeans, KMeansConfig};
use dtrec::model::prototypes::{
    cluster_schedule, HierarchyError, HierarchyLayout, PrototypeConfig, Prototypes,
};
use dtrec_kernels::rng::CounterRng;
use proptest::prelude::*;

fn rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let rng = CounterRng::new(seed);
    (0..n * d).map(|i| rng.normal(5, i as u64) as f32).collect()
}

#[test]
fn schedule_exact_values() {
    // 16·213.5^{t/4} = 16, 61.16, 233.79, 893.65, 3416
    assert_eq!(
        cluster_schedule(3416, 16, 4).unwrap(),
        vec![16, 61, 233, 893, 3416]
    );
    // 10·100^{t/3} = 10, 46.42, 215.44, 1000
    assert_eq!(
        cluster_schedule(1000, 10, 3).unwrap(),
        vec![10, 46, 215, 1000]
    );
    // exact powers: 16·512^{1/3} = 128, 16·512^{2/3} = 1024
    assert_eq!(
        cluster_schedule(8192, 16, 3).unwrap(),
        vec![16, 128, 1024, 8192]
    );
    assert_eq!(cluster_schedule(256, 16, 2).unwrap(), vec![16, 64, 256]);
    // 16·6.25^{t/4} = 16, 25.30, 40, 63.25, 100
    assert_eq!(
        cluster_schedule(100, 16, 4).unwrap(),
        vec![16, 25, 40, 63, 100]
    );
    // k_min clamped to N
    assert_eq!(cluster_schedule(10, 16, 3).unwrap(), vec![10, 10, 10, 10]);
    // T_max = 0: only the item level; T_max = 1: k_min then N
    assert_eq!(cluster_schedule(50, 16, 0).unwrap(), vec![50]);
    assert_eq!(cluster_schedule(50, 16, 1).unwrap(), vec![16, 50]);
    assert_eq!(cluster_schedule(1, 1, 3).unwrap(), vec![1, 1, 1, 1]);
    assert_eq!(cluster_schedule(0, 16, 3), Err(HierarchyError::NoItems));
    assert_eq!(cluster_schedule(5, 0, 3), Err(HierarchyError::ZeroKMin));
}

proptest! {
    #[test]
    fn schedule_invariants(n in 1usize..100_000, k_min in 1usize..200, t_max in 0usize..8) {
        let s = cluster_schedule(n, k_min, t_max).unwrap();
        prop_assert_eq!(s.len(), t_max + 1);
        prop_assert_eq!(*s.last().unwrap(), n);
        prop_assert_eq!(s[0], if t_max == 0 { n } else { k_min.min(n) });
        prop_assert!(s.windows(2).all(|w| w[0] <= w[1]));
        // each inner value is the floor of the formula (±1 for the exact-power snap)
        for (t, &k) in s.iter().enumerate().take(t_max).skip(1) {
            let km = k_min.min(n) as f64;
            let x = km * (n as f64 / km).powf(t as f64 / t_max as f64);
            prop_assert!((k as f64 - x.floor()).abs() <= 1.0, "t {} k {} x {}", t, k, x);
        }
    }
}

fn config(layout: HierarchyLayout, iters: usize) -> PrototypeConfig {
    PrototypeConfig {
        k_min: 4,
        layout,
        kmeans_iters: iters,
        ..PrototypeConfig::new(3, 17)
    }
}

#[test]
fn flat_levels_follow_the_schedule() {
    let (n, d) = (300, 6);
    let e = rows(n, d, 1);
    let p = Prototypes::build(&e, n, d, &config(HierarchyLayout::Flat, 25)).unwrap();
    let schedule = cluster_schedule(n, 4, 3).unwrap();
    assert_eq!(p.levels().len(), 4);
    for (t, level) in p.levels().iter().enumerate() {
        assert_eq!(level.k, schedule[t]);
        assert_eq!(level.centroids.len(), level.k * d);
        assert_eq!(level.item_cluster.len(), n);
        assert!(level.item_cluster.iter().all(|&c| (c as usize) < level.k));
    }
    // flat level 1 is exactly K-means on the items with seed + 1
    let direct = kmeans(&e, n, d, &KMeansConfig::new(schedule[1], 18), None).unwrap();
    assert_eq!(p.levels()[1].centroids, direct.centroids);
    assert_eq!(p.levels()[1].item_cluster, direct.assignments);
    // item level: identity, centroids are the rows
    let last = &p.levels()[3];
    assert_eq!(last.item_cluster, (0..n as u32).collect::<Vec<_>>());
    assert_eq!(last.centroids, e);
    assert_eq!(p.cluster_of(3, 1), Some(0));
    assert_eq!(p.cluster_of(3, n as u32), Some(n as u32 - 1));
    assert_eq!(p.cluster_of(0, 0), None);
    assert_eq!(p.cluster_of(0, n as u32 + 1), None);
    assert_eq!(p.cluster_of(4, 1), None);
    // deterministic, and parallel equals serial
    let again = Prototypes::build(&e, n, d, &config(HierarchyLayout::Flat, 25)).unwrap();
    assert_eq!(again, p);
    let par_cfg = PrototypeConfig {
        parallel: true,
        ..config(HierarchyLayout::Flat, 25)
    };
    let par = Prototypes::build(&e, n, d, &par_cfg).unwrap();
    assert_eq!(par.levels(), p.levels());
}

#[test]
fn nested_maps_are_consistent() {
    let (n, d) = (400, 5);
    let e = rows(n, d, 2);
    let p = Prototypes::build(&e, n, d, &config(HierarchyLayout::Nested, 25)).unwrap();
    let levels = p.levels();
    assert_eq!(levels.len(), 4);
    for t in 0..3 {
        let (coarse, fine) = (&levels[t], &levels[t + 1]);
        assert!(coarse.k <= fine.k);
        // the fine → coarse map is a function: every fine cluster lands in one coarse cluster
        let mut up = vec![None; fine.k];
        for item in 0..n {
            let f = fine.item_cluster[item] as usize;
            let c = coarse.item_cluster[item];
            match up[f] {
                None => up[f] = Some(c),
                Some(prev) => assert_eq!(prev, c, "level {t}: fine cluster {f} split"),
            }
        }
    }
    // nested level 2 clusters the item rows; level 1 clusters level 2's centroids
    let schedule = cluster_schedule(n, 4, 3).unwrap();
    let direct = kmeans(
        &levels[2].centroids,
        levels[2].k,
        d,
        &KMeansConfig::new(schedule[1], 18),
        None,
    )
    .unwrap();
    assert_eq!(levels[1].centroids, direct.centroids);
}

#[test]
fn refresh_warm_starts_every_level() {
    let (n, d) = (250, 4);
    for layout in [HierarchyLayout::Flat, HierarchyLayout::Nested] {
        let e = rows(n, d, 3);
        let cfg = config(layout, 500);
        let mut p = Prototypes::build(&e, n, d, &cfg).unwrap();
        // unchanged rows: converged levels are a fixed point
        let before = p.clone();
        p.refresh(&e, n, d).unwrap();
        assert_eq!(p, before, "{layout:?}");

        // moved rows: each flat level equals K-means warm-started from the
        // previous centroids (not a fresh seeding)
        let moved: Vec<f32> = e
            .iter()
            .zip(rows(n, d, 4))
            .map(|(a, b)| a + 0.3 * b)
            .collect();
        p.refresh(&moved, n, d).unwrap();
        if layout == HierarchyLayout::Flat {
            for t in 0..3 {
                let prev = &before.levels()[t];
                let kcfg = KMeansConfig {
                    max_iters: 500,
                    ..KMeansConfig::new(prev.k, 17 + t as u64)
                };
                let direct = kmeans(&moved, n, d, &kcfg, Some(&prev.centroids)).unwrap();
                assert_eq!(p.levels()[t].centroids, direct.centroids, "level {t}");
                assert_eq!(p.levels()[t].item_cluster, direct.assignments);
            }
        }
        assert_eq!(p.levels()[3].centroids, moved);
        assert_eq!(
            p.refresh(&moved[..d], 1, d),
            Err(HierarchyError::RefreshMismatch)
        );
        // a failed refresh keeps the previous levels
        let kept = p.clone();
        let mut bad = moved.clone();
        bad[7] = f32::NAN;
        assert!(matches!(
            p.refresh(&bad, n, d),
            Err(HierarchyError::KMeans { .. })
        ));
        assert_eq!(p, kept);
    }
}

#[test]
fn bad_shapes_are_errors() {
    let cfg = config(HierarchyLayout::Flat, 5);
    assert_eq!(
        Prototypes::build(&[0.0f32; 10], 3, 4, &cfg),
        Err(HierarchyError::ShapeMismatch {
            len: 10,
            n_items: 3,
            d: 4
        })
    );
    assert_eq!(
        Prototypes::<f32>::build(&[], 0, 4, &cfg),
        Err(HierarchyError::NoItems)
    );
}

#[test]
fn level_logits_and_top_cluster_match_brute_force() {
    let (n, d) = (120, 5);
    let e = rows(n, d, 9);
    let p = Prototypes::build(&e, n, d, &config(HierarchyLayout::Flat, 25)).unwrap();
    let h = rows(3, d, 10);
    for t in 0..p.levels().len() {
        let level = &p.levels()[t];
        let logits = p.level_logits(t, &h, 0.5).unwrap();
        assert_eq!(logits.len(), 3 * level.k);
        for r in 0..3 {
            let hr = &h[r * d..(r + 1) * d];
            let brute: Vec<f64> = level
                .centroids
                .chunks_exact(d)
                .map(|c| {
                    c.iter()
                        .zip(hr)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum()
                })
                .collect();
            for (i, &b) in brute.iter().enumerate() {
                assert!((f64::from(logits[r * level.k + i]) - b / 0.5).abs() < 1e-4);
            }
            let (top, score) = p.top_cluster(t, hr).unwrap();
            let best = brute.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            // the f32 winner is within rounding of the f64 maximum
            assert!(brute[top as usize] >= best - 1e-4, "level {t}");
            assert!((f64::from(score) - brute[top as usize]).abs() < 1e-4);
        }
    }
    assert!(p.level_logits(4, &h, 1.0).is_none());
    assert!(p.top_cluster(4, &h[..d]).is_none());
}
