//! Top-K selection against its full-sort twin, and the counter-based RNG:
//! Philox known-answer vectors, golden values, statistical sanity.

use dtrec_kernels::rng::{philox4x32_10, shuffle, CounterRng};
use dtrec_kernels::topk::{top_k, top_k_excluding, top_k_reference};
use proptest::prelude::*;

// ---------------------------------------------------------------- top-K ----

/// Bit-exact view of a result (NaN ≠ NaN under `==`, and −0.0 must stay −0.0).
fn bits(v: &[(u32, f32)]) -> Vec<(u32, u32)> {
    v.iter().map(|&(i, s)| (i, s.to_bits())).collect()
}

fn check_against_reference(scores: &[f32], k: usize, exclude: &[u32]) {
    let mut want = Vec::new();
    top_k_reference(scores, k, exclude, &mut want);
    let mut got = vec![(7, 7.0)]; // stale content must be cleared
    top_k_excluding(scores, k, exclude, &mut got);
    assert_eq!(
        bits(&got),
        bits(&want),
        "top_k_excluding k={k} exclude={exclude:?} scores={scores:?}"
    );
    if exclude.is_empty() {
        top_k(scores, k, &mut got);
        assert_eq!(bits(&got), bits(&want), "top_k k={k} scores={scores:?}");
    }
}

/// Scores drawn from a tiny alphabet, so ties, ±0, ±∞ and NaN are common.
fn tie_heavy_score() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(f32::NAN),
        Just(-f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(0.0f32),
        Just(-0.0f32),
        Just(1.0f32),
        Just(-1.0f32),
        Just(2.5f32),
        -3.0f32..3.0,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn top_k_matches_full_sort(
        scores in prop::collection::vec(tie_heavy_score(), 0..300),
        k in 0usize..40,
    ) {
        check_against_reference(&scores, k, &[]);
        // k at and beyond n.
        check_against_reference(&scores, scores.len(), &[]);
        check_against_reference(&scores, scores.len() + 3, &[]);
    }

    #[test]
    fn top_k_excluding_matches_full_sort(
        scores in prop::collection::vec(tie_heavy_score(), 0..200),
        k in 0usize..30,
        exclude in prop::collection::vec(0u32..220, 0..40),
    ) {
        check_against_reference(&scores, k, &exclude);
    }

    #[test]
    fn top_k_random_floats(scores in prop::collection::vec(any::<f32>(), 0..500), k in 0usize..64) {
        check_against_reference(&scores, k, &[]);
    }
}

#[test]
fn top_k_named_cases() {
    let mut out = Vec::new();
    top_k(&[], 5, &mut out);
    assert!(out.is_empty());
    top_k(&[1.0, 2.0], 0, &mut out);
    assert!(out.is_empty());

    // Ties by smaller index; NaN never ahead of a finite score, even −∞.
    top_k(
        &[f32::NAN, 1.0, f32::NEG_INFINITY, 1.0, f32::NAN],
        5,
        &mut out,
    );
    assert_eq!(
        bits(&out)[..3],
        bits(&[(1, 1.0), (3, 1.0), (2, f32::NEG_INFINITY)])[..]
    );
    assert_eq!(out[3].0, 0);
    assert_eq!(out[4].0, 4);
    assert!(out[3].1.is_nan() && out[4].1.is_nan());

    // All excluded → empty; duplicates and out-of-range exclusions are fine.
    top_k_excluding(&[1.0, 2.0, 3.0], 2, &[2, 1, 0, 1, 100], &mut out);
    assert!(out.is_empty());
    top_k_excluding(&[1.0, 2.0, 3.0], 5, &[2, 2], &mut out);
    assert_eq!(out, vec![(1, 2.0), (0, 1.0)]);

    // A long row with the best entries at the end (exercises the heap path).
    let scores: Vec<f32> = (0..10_000).map(|i| (i % 977) as f32).collect();
    top_k(&scores, 4, &mut out);
    assert_eq!(
        out,
        vec![(976, 976.0), (1953, 976.0), (2930, 976.0), (3907, 976.0)]
    );
}

// ------------------------------------------------------------------ RNG ----

/// Random123 `kat_vectors`, the three `philox4x32 10` lines:
/// counter (4 words), key (2 words) → output (4 words).
const PHILOX_KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [u32::MAX; 4],
        [u32::MAX; 2],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

#[test]
fn philox_known_answers() {
    for (ctr, key, want) in PHILOX_KAT {
        assert_eq!(philox4x32_10(ctr, key), want, "ctr {ctr:x?} key {key:x?}");
    }
}

#[test]
fn bits_uses_the_documented_counter_and_key_layout() {
    // key = seed (low word first), counter = [ctr lo, ctr hi, stream lo,
    // stream hi], bits = words 0 and 1: the third KAT line, repacked.
    let rng = CounterRng::new(0x299f31d0_a4093822);
    assert_eq!(rng.seed(), 0x299f31d0_a4093822);
    assert_eq!(
        rng.bits(0x03707344_13198a2e, 0x85a308d3_243f6a88),
        0x94fdcceb_d16cfe09
    );
    assert_eq!(CounterRng::new(0).bits(0, 0), 0xe169c58d_6627e8d5);
    assert_eq!(
        CounterRng::new(u64::MAX).bits(u64::MAX, u64::MAX),
        0x41c83b0e_408f276d
    );
    // uniform = top 53 bits · 2⁻⁵³.
    let u = CounterRng::new(0).uniform(0, 0);
    assert_eq!(
        u,
        (0xe169c58d_6627e8d5u64 >> 11) as f64 / (1u64 << 53) as f64
    );
}

/// Frozen outputs: if any of these change, every seeded experiment changes.
/// (Values were produced by this implementation once the bits() layout was
/// pinned to the Random123 vectors above; they guard the uniform/normal/
/// below/shuffle derivations against silent edits.)
#[test]
fn golden_values() {
    let rng = CounterRng::new(42);
    let got = [
        rng.bits(0, 0),
        rng.bits(1, 0),
        rng.bits(0, 1),
        rng.normal(3, 5).to_bits(),
        rng.normal(0, 0).to_bits(),
        rng.uniform(9, 1 << 40).to_bits(),
        rng.below(2, 7, 1000),
    ];
    let mut perm: Vec<u8> = (0..8).collect();
    shuffle(&mut perm, &rng, 11);
    assert_eq!(got, GOLDEN, "RNG stream changed");
    assert_eq!(perm, GOLDEN_PERM, "shuffle changed");
}

const GOLDEN: [u64; 7] = [
    0x77f5493b9ceaf053,
    0x2051e91302933769,
    0x53ba6cfdfcdb2127,
    0x3fc1fe2f2638eef8, // normal(3, 5) ≈ 0.1406
    0xbfe371e09f80c7dc, // normal(0, 0) ≈ −0.6077
    0x3fe0b0daa01b0e49, // uniform ≈ 0.5216
    980,
];
const GOLDEN_PERM: [u8; 8] = [2, 1, 6, 7, 4, 0, 5, 3];

/// Sample mean and (population) variance.
fn mean_var(xs: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let (mut n, mut s, mut s2) = (0usize, 0.0f64, 0.0f64);
    for x in xs {
        n += 1;
        s += x;
        s2 += x * x;
    }
    let mean = s / n as f64;
    (mean, s2 / n as f64 - mean * mean, n)
}

const DRAWS: u64 = 1_000_000;

#[test]
fn uniform_moments() {
    let rng = CounterRng::new(7);
    let (mean, var, n) = mean_var((0..DRAWS).map(|i| rng.uniform(3, i)));
    assert!((0..DRAWS).all(|i| (0.0..1.0).contains(&rng.uniform(3, i))));
    // U(0,1): mean 1/2 with sd √(1/12/n) ≈ 2.9e-4; variance 1/12 with sd
    // √((1/80 − 1/144)/n) ≈ 7.5e-5. Bounds are 5 sd (false alarm < 1e-6).
    let n = n as f64;
    assert!(
        (mean - 0.5).abs() < 5.0 * (1.0 / 12.0 / n).sqrt(),
        "mean {mean}"
    );
    assert!(
        (var - 1.0 / 12.0).abs() < 5.0 * ((1.0 / 80.0 - 1.0 / 144.0) / n).sqrt(),
        "var {var}"
    );
}

#[test]
fn normal_moments_and_tails() {
    let rng = CounterRng::new(8);
    let zs: Vec<f64> = (0..DRAWS).map(|i| rng.normal(1, i)).collect();
    let (mean, var, n) = mean_var(zs.iter().copied());
    let n = n as f64;
    // N(0,1): mean sd 1/√n, variance sd √(2/n); 5-sd bounds.
    assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "var {var}");
    // P(|z| > 1.959964) = 0.05, binomial sd √(0.05·0.95/n).
    let tail = zs.iter().filter(|z| z.abs() > 1.959964).count() as f64 / n;
    assert!(
        (tail - 0.05).abs() < 5.0 * (0.05 * 0.95 / n).sqrt(),
        "tail {tail}"
    );
    // Box–Muller with u₁ ∈ (0, 1] is bounded by √(2·53·ln 2).
    assert!(zs
        .iter()
        .all(|z| z.is_finite() && z.abs() <= (2.0 * 53.0 * 2f64.ln()).sqrt()));
}

#[test]
fn fill_normal_scales_and_rounds() {
    let rng = CounterRng::new(9);
    let mut a = vec![0f32; 1000];
    let mut b = vec![0f64; 1000];
    rng.fill_normal(&mut a, 4, 1.5, 0.02);
    rng.fill_normal(&mut b, 4, 1.5, 0.02);
    for i in 0..1000 {
        let want = 1.5 + 0.02 * rng.normal(4, i as u64);
        assert_eq!(b[i], want);
        assert_eq!(a[i], want as f32);
    }
}

#[test]
fn dropout_keep_rate() {
    let rng = CounterRng::new(10);
    for p in [0.1, 0.2, 0.5] {
        let mut mask = vec![f32::NAN; DRAWS as usize];
        rng.fill_dropout_mask(&mut mask, 5, 123, p);
        let keep = (1.0 / (1.0 - p)) as f32;
        assert!(mask.iter().all(|&m| m == 0.0 || m == keep));
        let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / DRAWS as f64;
        let sd = (p * (1.0 - p) / DRAWS as f64).sqrt();
        assert!((dropped - p).abs() < 5.0 * sd, "p {p}: dropped {dropped}");
        // The offset shifts the counter: element i of offset o = element i+1 of o−1.
        let mut shifted = vec![0f32; 100];
        rng.fill_dropout_mask(&mut shifted, 5, 122, p);
        assert_eq!(shifted[1..], mask[..99]);
    }
    let mut ones = vec![f64::NAN; 100];
    rng.fill_dropout_mask(&mut ones, 0, 0, 0.0);
    assert!(ones.iter().all(|&m| m == 1.0));
}

#[test]
#[should_panic(expected = "dropout probability")]
fn dropout_rejects_p_one() {
    CounterRng::new(0).fill_dropout_mask(&mut [0f32; 4], 0, 0, 1.0);
}

#[test]
#[should_panic(expected = "dropout probability")]
fn dropout_rejects_negative_p() {
    CounterRng::new(0).fill_dropout_mask(&mut [0f32; 4], 0, 0, -0.1);
}

#[test]
#[should_panic(expected = "dropout probability")]
fn dropout_rejects_nan_p() {
    CounterRng::new(0).fill_dropout_mask(&mut [0f32; 4], 0, 0, f64::NAN);
}

/// Pearson correlation of two equally long series.
fn correlation(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

#[test]
fn streams_seeds_and_neighbours_are_uncorrelated() {
    const N: u64 = 200_000;
    let rng = CounterRng::new(11);
    let series = |r: &CounterRng, stream: u64, start: u64| -> Vec<f64> {
        (start..start + N).map(|i| r.uniform(stream, i)).collect()
    };
    let base = series(&rng, 0, 0);
    // Under independence the sample correlation has sd ≈ 1/√N; 5-sd bound.
    let bound = 5.0 / (N as f64).sqrt();
    for (what, other) in [
        ("adjacent stream", series(&rng, 1, 0)),
        ("high stream bit", series(&rng, 1 << 63, 0)),
        ("adjacent seed", series(&CounterRng::new(12), 0, 0)),
        ("lag-1 counter", series(&rng, 0, 1)),
    ] {
        let r = correlation(&base, &other);
        assert!(r.abs() < bound, "{what}: correlation {r}");
    }
}

#[test]
fn below_is_in_range_and_uniform() {
    let rng = CounterRng::new(13);
    assert!((0..1000).all(|i| rng.below(0, i, 1) == 0));
    // Chi-square over 10 bins, 9 degrees of freedom: P(χ² > 40) ≈ 7e-6.
    let mut counts = [0u32; 10];
    for i in 0..100_000 {
        counts[rng.below(1, i, 10) as usize] += 1;
    }
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - 10_000.0).powi(2) / 10_000.0)
        .sum();
    assert!(chi2 < 40.0, "chi2 {chi2} counts {counts:?}");
    // n just above 2⁶³ rejects about half of the first draws: the retry path
    // must terminate and stay in range, and both halves must appear.
    let n = (1u64 << 63) + 1;
    let draws: Vec<u64> = (0..2000).map(|i| rng.below(2, i, n)).collect();
    assert!(draws.iter().all(|&x| x < n));
    // Half of 0..n lies at or above 2⁶²; binomial sd √(2000/4) ≈ 22, 5 sd.
    let upper = draws.iter().filter(|&&x| x >= 1 << 62).count();
    assert!(
        (888..1112).contains(&upper),
        "{upper} of 2000 at or above 2^62"
    );
    let odd = draws.iter().filter(|&&x| x % 2 == 1).count();
    assert!((888..1112).contains(&odd), "{odd} of 2000 odd");
    assert!((0..100).all(|i| rng.below(3, i, u64::MAX) < u64::MAX));
}

#[test]
#[should_panic(expected = "n must be at least 1")]
fn below_rejects_zero() {
    CounterRng::new(0).below(0, 0, 0);
}

#[test]
fn shuffle_is_a_deterministic_uniform_permutation() {
    let rng = CounterRng::new(14);
    let mut a: Vec<u32> = (0..100).collect();
    let mut b = a.clone();
    shuffle(&mut a, &rng, 5);
    shuffle(&mut b, &rng, 5);
    assert_eq!(a, b);
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    let mut c: Vec<u32> = (0..100).collect();
    shuffle(&mut c, &rng, 6);
    assert_ne!(a, c);
    shuffle(&mut [] as &mut [u32], &rng, 0);
    let mut one = [9];
    shuffle(&mut one, &rng, 0);
    assert_eq!(one, [9]);

    // All 6 permutations of 3 items equally likely: χ² with 5 dof, P(> 30) ≈ 1.5e-5.
    let mut counts = std::collections::HashMap::new();
    for stream in 0..60_000 {
        let mut v = [0u8, 1, 2];
        shuffle(&mut v, &rng, stream);
        *counts.entry(v).or_insert(0u32) += 1;
    }
    assert_eq!(counts.len(), 6);
    let chi2: f64 = counts
        .values()
        .map(|&c| (c as f64 - 10_000.0).powi(2) / 10_000.0)
        .sum();
    assert!(chi2 < 30.0, "chi2 {chi2} {counts:?}");
}
