//! ARH indicators (`dtrec::model::halting::indicators`):
//!
//! * closed forms: uniform → Ĥ = 1, near one-hot → Ĥ ≈ 0, two-point
//!   entropy, JS of identical rows = 0, JS of disjoint rows = ln 2, a
//!   hand-computed JS, hand-computed Δ;
//! * JS is symmetric (bit for bit) and bounded in [0, ln 2], Ĥ in [0, 1]
//!   (proptest on random rows);
//! * `item_probabilities` equals a brute-force f64 softmax of h·Eᵀ/τ, and is
//!   stable for huge logits;
//! * f32 and f64 agree; the batched `step_indicators` equals the per-row
//!   functions.

mod common;
use common::normals;

use dtrec::model::halting::indicators::{
    item_probabilities, jensen_shannon, normalized_entropy, relative_change, step_indicators,
    Indicators,
};
use proptest::prelude::*;

const LN2: f64 = std::f64::consts::LN_2;

fn softmax64(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|&v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn entropy_closed_forms() {
    for n in [2usize, 3, 10, 3416] {
        let u32_row = vec![1.0f32 / n as f32; n];
        assert!((normalized_entropy(&u32_row) - 1.0).abs() < 1e-6, "n {n}");
        let u64_row = vec![1.0f64 / n as f64; n];
        assert!((normalized_entropy(&u64_row) - 1.0).abs() < 1e-12, "n {n}");
    }
    // near one-hot from logits [30, 0, …, 0]: H ≈ 30·(N−1)·e^{-30}
    let mut z = vec![0.0f64; 100];
    z[3] = 30.0;
    let p = softmax64(&z);
    let h = normalized_entropy(&p);
    assert!(h > 0.0 && h < 1e-9, "{h}");
    // exact one-hot: 0
    let mut one = vec![0.0f32; 50];
    one[7] = 1.0;
    assert_eq!(normalized_entropy(&one), 0.0);
    // two points: H(a) / ln 2
    for a in [0.1f64, 0.25, 0.5, 0.9] {
        let expected = (-a * a.ln() - (1.0 - a) * (1.0 - a).ln()) / LN2;
        assert!((normalized_entropy(&[a, 1.0 - a]) - expected).abs() < 1e-15);
    }
    // three points out of 4 equally likely: ln 3 / ln 4
    let h = normalized_entropy(&[1.0 / 3.0, 0.0, 1.0 / 3.0, 1.0 / 3.0]);
    assert!((h - 3f64.ln() / 4f64.ln()).abs() < 1e-15);
    assert_eq!(normalized_entropy::<f64>(&[1.0]), 0.0);
    assert_eq!(normalized_entropy::<f64>(&[]), 0.0);
}

#[test]
fn js_closed_forms() {
    let p = softmax64(&normals(64, 1, 1, 2.0));
    assert_eq!(jensen_shannon(&p, &p), 0.0);
    // disjoint supports: ln 2
    let js = jensen_shannon(&[1.0f64, 0.0], &[0.0, 1.0]);
    assert!((js - LN2).abs() < 1e-15, "{js}");
    let js32 = jensen_shannon(&[0.5f32, 0.5, 0.0, 0.0], &[0.0, 0.0, 0.25, 0.75]);
    assert!((f64::from(js32) - LN2).abs() < 1e-7);
    // p = (1, 0), q = (½, ½), m = (¾, ¼):
    // JS = ½·ln(4/3) + ¼·(ln(2/3) + ln 2)
    let expected = 0.5 * (4.0f64 / 3.0).ln() + 0.25 * ((2.0f64 / 3.0).ln() + LN2);
    let js = jensen_shannon(&[1.0f64, 0.0], &[0.5, 0.5]);
    assert!((js - expected).abs() < 1e-15, "{js} vs {expected}");
}

#[test]
fn delta_closed_forms() {
    let d = relative_change(&[3.0f64, 4.0], &[0.0, 0.0]);
    assert!((d - 5.0 / 1e-6).abs() < 1e-6);
    let d = relative_change(&[1.0f64, 1.0], &[1.0, 0.0]);
    assert!((d - 1.0 / (1.0 + 1e-6)).abs() < 1e-15);
    // scale invariance up to the ε: Δ(2h, 2h') ≈ Δ(h, h')
    let h = normals(16, 2, 3, 1.0);
    let hp = normals(16, 3, 3, 1.0);
    let h2: Vec<f64> = h.iter().map(|x| 2.0 * x).collect();
    let hp2: Vec<f64> = hp.iter().map(|x| 2.0 * x).collect();
    assert!((relative_change(&h, &hp) - relative_change(&h2, &hp2)).abs() < 1e-6);
    assert_eq!(relative_change(&h, &h), 0.0);
}

#[test]
fn item_probabilities_match_brute_force_and_are_stable() {
    let (rows, n, d) = (3, 37, 8);
    let hidden = normals(rows * d, 4, 5, 1.0);
    let items = normals(n * d, 5, 5, 1.0);
    let tau = 0.07;
    let mut probs = vec![f64::NAN; rows * n];
    item_probabilities(&mut probs, &hidden, &items, rows, n, d, tau);
    for r in 0..rows {
        let z: Vec<f64> = (0..n)
            .map(|i| {
                (0..d)
                    .map(|j| hidden[r * d + j] * items[i * d + j])
                    .sum::<f64>()
                    / tau
            })
            .collect();
        let expect = softmax64(&z);
        for i in 0..n {
            assert!((probs[r * n + i] - expect[i]).abs() < 1e-12);
        }
    }
    // logits in the thousands: no NaN, sums to 1, f32 too
    let big: Vec<f32> = hidden.iter().map(|&x| (x * 300.0) as f32).collect();
    let items32: Vec<f32> = items.iter().map(|&x| x as f32).collect();
    let mut p32 = vec![f32::NAN; rows * n];
    item_probabilities(&mut p32, &big, &items32, rows, n, d, 0.07f32);
    for row in p32.chunks_exact(n) {
        assert!(row.iter().all(|p| p.is_finite() && *p >= 0.0));
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn f32_and_f64_agree_and_batched_equals_rowwise() {
    let (rows, n, d) = (4, 3416, 16);
    let h_prev = normals(rows * d, 6, 7, 1.0);
    let h: Vec<f64> = h_prev
        .iter()
        .zip(normals(rows * d, 7, 7, 0.3))
        .map(|(a, b)| a + b)
        .collect();
    let items = normals(n * d, 8, 7, 0.5);
    let run64 = |hh: &[f64]| {
        let mut p = vec![0.0; rows * n];
        item_probabilities(&mut p, hh, &items, rows, n, d, 1.0);
        p
    };
    let (p, q) = (run64(&h), run64(&h_prev));
    let mut ind64 = vec![Indicators::default(); rows];
    step_indicators(&mut ind64, &p, &q, &h, &h_prev, n, d);

    let c = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let (h32, hp32, items32) = (c(&h), c(&h_prev), c(&items));
    let run32 = |hh: &[f32]| {
        let mut p = vec![0.0f32; rows * n];
        item_probabilities(&mut p, hh, &items32, rows, n, d, 1.0);
        p
    };
    let (p32, q32) = (run32(&h32), run32(&hp32));
    let mut ind32 = vec![Indicators::default(); rows];
    step_indicators(&mut ind32, &p32, &q32, &h32, &hp32, n, d);

    for r in 0..rows {
        let (a, b) = (ind32[r], ind64[r]);
        // f32 probabilities carry ~1e-7 relative error each (f32 logits of
        // magnitude ~2, exp); the f64-accumulated sums keep it at that order
        assert!(
            (f64::from(a.entropy) - b.entropy).abs() < 1e-5,
            "{a:?} {b:?}"
        );
        assert!((f64::from(a.js) - b.js).abs() < 1e-5, "{a:?} {b:?}");
        assert!((f64::from(a.delta) - b.delta).abs() < 1e-5 * b.delta.max(1.0));
        assert!(b.entropy > 0.0 && b.entropy < 1.0 && b.js > 0.0 && b.delta > 0.0);

        let (pr, qr) = (&p[r * n..(r + 1) * n], &q[r * n..(r + 1) * n]);
        assert_eq!(b.entropy, normalized_entropy(pr));
        assert_eq!(b.js, jensen_shannon(pr, qr));
        assert_eq!(
            b.delta,
            relative_change(&h[r * d..(r + 1) * d], &h_prev[r * d..(r + 1) * d])
        );
    }
}

proptest! {
    #[test]
    fn js_symmetric_and_bounded(
        n in 1usize..64,
        seed in 0u64..10_000,
        scale in 0.0f64..20.0,
        zero_some in any::<bool>(),
    ) {
        let mut p = softmax64(&normals(n, 10, seed, scale));
        let q = softmax64(&normals(n, 11, seed, scale));
        if zero_some && n > 1 {
            // disjoint mass somewhere: renormalise p without entry 0
            p[0] = 0.0;
            let s: f64 = p.iter().sum();
            p.iter_mut().for_each(|v| *v /= s);
        }
        let a = jensen_shannon(&p, &q);
        let b = jensen_shannon(&q, &p);
        prop_assert_eq!(a.to_bits(), b.to_bits());
        prop_assert!((0.0..=LN2).contains(&a));
        let h = normalized_entropy(&p);
        prop_assert!((0.0..=1.0).contains(&h));
        // f-divergence bound D_f ≤ (f(0) + f*(0))·TV; for JS in nats that is ln 2·TV
        let tv: f64 = p.iter().zip(&q).map(|(x, y)| (x - y).abs()).sum::<f64>() * 0.5;
        prop_assert!(a <= LN2 * tv + 1e-12, "js {} tv {}", a, tv);
        let p32: Vec<f32> = p.iter().map(|&x| x as f32).collect();
        let q32: Vec<f32> = q.iter().map(|&x| x as f32).collect();
        let a32 = jensen_shannon(&p32, &q32);
        prop_assert!((0.0..=std::f32::consts::LN_2).contains(&a32));
    }
}
