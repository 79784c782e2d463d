//! K-means++ (`dtrec::model::prototypes::kmeans`):
//!
//! * well-separated blobs are recovered exactly (as a partition);
//! * the same seed gives bit-identical results, different seeds are allowed
//!   to differ, and parallel assignment is bit-identical to serial;
//! * a warm start from a converged solution is a fixed point;
//! * inertia never increases over iterations;
//! * on random inputs every row is assigned to its nearest returned centroid
//!   (checked against brute force in f64), in f32 and f64 (proptest);
//! * k ≥ n gives singletons, empty clusters are re-seeded, bad input is a
//!   typed error.

use dtrec::model::prototypes::kmeans::{
    exact_inertia, kmeans, squared_distances, KMeansConfig, KMeansError, ROW_BLOCK,
};
use dtrec_kernels::rng::CounterRng;
use dtrec_kernels::Kernels;
use proptest::prelude::*;

/// `blobs` Gaussian blobs of `per` points in d dims: centres at 100·e_b
/// (and −100·e_b beyond d), noise N(0, 0.5²). Returns rows and true labels.
fn blobs(n_blobs: usize, per: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let rng = CounterRng::new(seed);
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let mut counter = 0u64;
    for b in 0..n_blobs {
        for _ in 0..per {
            for j in 0..d {
                let centre = if j == b % d {
                    if b < d {
                        100.0
                    } else {
                        -100.0
                    }
                } else {
                    0.0
                };
                rows.push((centre + 0.5 * rng.normal(9, counter)) as f32);
                counter += 1;
            }
            labels.push(b);
        }
    }
    (rows, labels)
}

/// Whether two labelings define the same partition.
fn same_partition(a: &[u32], b: &[usize]) -> bool {
    let mut map_ab = std::collections::HashMap::new();
    let mut map_ba = std::collections::HashMap::new();
    a.iter()
        .zip(b)
        .all(|(&x, &y)| *map_ab.entry(x).or_insert(y) == y && *map_ba.entry(y).or_insert(x) == x)
}

fn random_rows(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let rng = CounterRng::new(seed);
    (0..n * d).map(|i| rng.normal(3, i as u64)).collect()
}

/// Brute-force squared distance in f64.
fn sq(x: &[f64], c: &[f64]) -> f64 {
    x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum()
}

#[test]
fn recovers_separated_blobs_exactly() {
    for seed in 0..5 {
        let (rows, labels) = blobs(6, 40, 4, 100 + seed);
        let n = labels.len();
        let fit = kmeans(&rows, n, 4, &KMeansConfig::new(6, seed), None).unwrap();
        assert_eq!(fit.k, 6);
        assert!(fit.converged, "seed {seed}: not converged");
        assert!(
            same_partition(&fit.assignments, &labels),
            "seed {seed}: partition differs"
        );
    }
}

#[test]
fn deterministic_per_seed_and_parallel_equals_serial() {
    // more rows than one block, so the parallel path really splits
    let (rows, labels) = blobs(5, 2 * ROW_BLOCK / 5 + 30, 8, 7);
    let n = labels.len();
    assert!(n > ROW_BLOCK);
    let cfg = KMeansConfig::new(12, 3);
    let a = kmeans(&rows, n, 8, &cfg, None).unwrap();
    let b = kmeans(&rows, n, 8, &cfg, None).unwrap();
    assert_eq!(a, b);
    let par = KMeansConfig {
        parallel: true,
        ..cfg.clone()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let c = pool.install(|| kmeans(&rows, n, 8, &par, None).unwrap());
    assert_eq!(
        a.centroids.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        c.centroids.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(a.assignments, c.assignments);
    // a different seed is a different (but equally valid) run: over many
    // seeds on unstructured data not all results coincide
    let data = random_rows(200, 3, 1);
    let fits: Vec<_> = (0..6)
        .map(|s| kmeans(&data, 200, 3, &KMeansConfig::new(9, s), None).unwrap())
        .collect();
    assert!(fits.iter().any(|f| f.centroids != fits[0].centroids));
}

#[test]
fn warm_start_from_solution_is_a_fixed_point() {
    let data = random_rows(300, 5, 11);
    let cfg = KMeansConfig {
        max_iters: 500,
        ..KMeansConfig::new(7, 5)
    };
    let first = kmeans(&data, 300, 5, &cfg, None).unwrap();
    assert!(first.converged);
    let again = kmeans(&data, 300, 5, &cfg, Some(&first.centroids)).unwrap();
    assert_eq!(again.centroids, first.centroids);
    assert_eq!(again.assignments, first.assignments);
    assert_eq!(again.iterations, 1);
    assert!(again.converged);

    // the same in f32 through the SIMD gemm
    let data32: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    let first = kmeans(&data32, 300, 5, &cfg, None).unwrap();
    assert!(first.converged);
    let again = kmeans(&data32, 300, 5, &cfg, Some(&first.centroids)).unwrap();
    assert_eq!(again.centroids, first.centroids);
    assert_eq!(again.assignments, first.assignments);
}

#[test]
fn inertia_never_increases() {
    for seed in 0..8 {
        let data = random_rows(400, 6, 20 + seed);
        let fit = kmeans(&data, 400, 6, &KMeansConfig::new(15, seed), None).unwrap();
        assert_eq!(fit.inertia.len(), fit.iterations + 1);
        for w in fit.inertia.windows(2) {
            // f64 rows and centroids: Lloyd's monotonicity holds up to the
            // rounding of the means (one ulp per coordinate), far below 1e-12
            assert!(w[1] <= w[0] * (1.0 + 1e-12), "{:?}", fit.inertia);
        }
        let last = *fit.inertia.last().unwrap();
        let recomputed = exact_inertia(&data, &fit.centroids, &fit.assignments, 6);
        assert_eq!(last, recomputed);
        assert!(
            fit.inertia[0] > last,
            "Lloyd made no progress from the seeding"
        );
    }
}

#[test]
fn k_at_least_n_gives_singletons() {
    let data = random_rows(5, 3, 2);
    for k in [5, 6, 100] {
        let fit = kmeans(&data, 5, 3, &KMeansConfig::new(k, 0), None).unwrap();
        assert_eq!(fit.k, 5);
        assert_eq!(fit.assignments, vec![0, 1, 2, 3, 4]);
        assert_eq!(fit.centroids, data);
        assert_eq!(fit.inertia, vec![0.0]);
    }
}

#[test]
fn empty_clusters_are_reseeded_from_farthest_rows() {
    // a warm start with two centroids far from every row: both clusters are
    // empty after the first assignment and must take the farthest rows
    let data = [0.0f64, 1.0, 2.0, 10.0];
    let warm = [1.0, 1000.0, 2000.0];
    let cfg = KMeansConfig {
        max_iters: 50,
        ..KMeansConfig::new(3, 0)
    };
    let fit = kmeans(&data, 4, 1, &cfg, Some(&warm)).unwrap();
    let mut counts = [0; 3];
    for &a in &fit.assignments {
        counts[a as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c > 0), "{:?}", fit.assignments);
    // optimum for k = 3 on {0, 1, 2, 10}: {0, 1} {2} {10} or {0} {1, 2} {10}
    assert!((exact_inertia(&data, &fit.centroids, &fit.assignments, 1) - 0.5).abs() < 1e-12);

    // fewer distinct rows than k: terminates at once with every centroid on
    // the only distinct row and zero inertia
    let dup = [3.0f64; 6];
    let fit = kmeans(&dup, 6, 1, &KMeansConfig::new(4, 1), None).unwrap();
    assert!(fit.converged);
    assert_eq!(fit.iterations, 1);
    assert!(fit.centroids.iter().all(|&c| c == 3.0));
    assert_eq!(*fit.inertia.last().unwrap(), 0.0);
}

#[test]
fn bad_input_is_a_typed_error() {
    let cfg = KMeansConfig::new(2, 0);
    assert_eq!(
        kmeans(&[1.0f32; 4], 2, 2, &KMeansConfig::new(0, 0), None),
        Err(KMeansError::ZeroClusters)
    );
    assert_eq!(
        kmeans::<f32>(&[], 0, 2, &cfg, None),
        Err(KMeansError::EmptyInput { n: 0, d: 2 })
    );
    assert_eq!(
        kmeans(&[1.0f32; 5], 2, 2, &cfg, None),
        Err(KMeansError::ShapeMismatch { len: 5, n: 2, d: 2 })
    );
    assert_eq!(
        kmeans(&[1.0f32, 2.0, f32::NAN, 0.0, 1.0, 1.0], 3, 2, &cfg, None),
        Err(KMeansError::NonFinite { row: 1, col: 0 })
    );
    assert_eq!(
        kmeans(&[1.0f32; 6], 3, 2, &cfg, Some(&[0.0; 3])),
        Err(KMeansError::BadWarmStart {
            len: 3,
            expected: 4
        })
    );
    assert!(kmeans(
        &[1.0f32; 6],
        3,
        2,
        &cfg,
        Some(&[0.0, 0.0, f32::INFINITY, 0.0])
    )
    .is_err());
}

/// Every row's assigned centroid is a nearest one. `slack(x, c)` bounds the
/// kernel-distance rounding error for that pair.
fn check_nearest<T: Kernels>(
    data: &[T],
    fit_centroids: &[T],
    assignments: &[u32],
    d: usize,
    rel: f64,
) {
    let to64 = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<_>>();
    let data = to64(data);
    let cents = to64(fit_centroids);
    for (i, x) in data.chunks_exact(d).enumerate() {
        let a = assignments[i] as usize;
        let xx: f64 = x.iter().map(|v| v * v).sum();
        let own = sq(x, &cents[a * d..(a + 1) * d]);
        for (j, c) in cents.chunks_exact(d).enumerate() {
            let cc: f64 = c.iter().map(|v| v * v).sum();
            // the expansion ‖x‖² − 2x·c + ‖c‖² loses about rel·(‖x‖² + ‖c‖²)
            let slack = rel * (xx + cc + 1.0);
            assert!(
                own <= sq(x, c) + slack,
                "row {i}: assigned {a} at {own}, centroid {j} at {}",
                sq(x, c)
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn assignments_are_nearest_centroid(
        n in 1usize..300,
        d in 1usize..9,
        k in 1usize..20,
        seed in 0u64..1000,
        iters in 0usize..6,
        parallel in any::<bool>(),
    ) {
        let data = random_rows(n, d, seed);
        let cfg = KMeansConfig { k, max_iters: iters, seed, parallel };
        let fit = kmeans(&data, n, d, &cfg, None).unwrap();
        prop_assert_eq!(fit.k, k.min(n));
        prop_assert_eq!(fit.centroids.len(), fit.k * d);
        prop_assert!(fit.assignments.iter().all(|&a| (a as usize) < fit.k));
        check_nearest(&data, &fit.centroids, &fit.assignments, d, 1e-12);
        let dist = squared_distances(&data, &fit.centroids, d);
        prop_assert_eq!(dist.len(), n * fit.k);
        for (i, x) in data.chunks_exact(d).enumerate() {
            for (j, c) in fit.centroids.chunks_exact(d).enumerate() {
                let xx: f64 = x.iter().map(|v| v * v).sum();
                let cc: f64 = c.iter().map(|v| v * v).sum();
                prop_assert!((dist[i * fit.k + j] - sq(x, c)).abs() <= 1e-12 * (xx + cc + 1.0));
                prop_assert!(dist[i * fit.k + j] >= 0.0);
            }
        }

        let data32: Vec<f32> = data.iter().map(|&x| x as f32).collect();
        let fit32 = kmeans(&data32, n, d, &cfg, None).unwrap();
        // f32 expansion: a few ulps (2⁻²⁴ ≈ 6e-8) of ‖x‖² + ‖c‖², times d terms
        check_nearest(&data32, &fit32.centroids, &fit32.assignments, d, 1e-6);
        let serial = kmeans(&data32, n, d, &KMeansConfig { parallel: false, ..cfg }, None).unwrap();
        prop_assert_eq!(serial, fit32);
    }
}
