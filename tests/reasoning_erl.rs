//! ReaRec-ERL objective (`dtrec::model::loss::erl`):
//!
//! * one state: the loss is the plain item cross-entropy, KL = 0;
//! * identical states: KL = 0 and the KL contributes no gradient;
//! * the value equals a brute-force f64 reference (pairwise KL summed over
//!   items, no S×S product), and the hand gradient equals central finite
//!   differences of that reference with the stop-gradient made explicit
//!   (the detached p_i are evaluated at frozen copies of h and E), on random
//!   shapes (proptest);
//! * a batch split into several sample blocks (by the block cap and by the
//!   logits budget at large N) equals the same samples one at a time;
//! * backward accumulates; f32 agrees with f64.

mod common;
use common::{check_blocks_equal_one_by_one, check_fd, normals};

use dtrec::model::loss::erl::{erl_loss, ErlLoss};
use dtrec_kernels::rng::CounterRng;
use dtrec_kernels::Kernels;
use proptest::prelude::*;

fn log_softmax(h: &[f64], e: &[f64], d: usize, tau: f64) -> Vec<f64> {
    let z: Vec<f64> = e
        .chunks_exact(d)
        .map(|row| row.iter().zip(h).map(|(a, b)| a * b).sum::<f64>() / tau)
        .collect();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// Brute-force ERL loss; `h_det`/`e_det` feed the stop-gradient p_i.
#[allow(clippy::too_many_arguments)]
fn reference(
    h: &[f64],
    e: &[f64],
    h_det: &[f64],
    e_det: &[f64],
    targets: &[u32],
    s: usize,
    d: usize,
    tau: f64,
    lambda: f64,
) -> (f64, f64, f64) {
    let rows = targets.len();
    let (mut ce, mut kl) = (0.0, 0.0);
    for r in 0..rows {
        let hs = &h[r * s * d..(r + 1) * s * d];
        let mut hbar = vec![0.0; d];
        for t in 0..s {
            for j in 0..d {
                hbar[j] += hs[t * d + j] / s as f64;
            }
        }
        ce -= log_softmax(&hbar, e, d, tau)[targets[r] as usize - 1];
        if s > 1 {
            let mut pair_sum = 0.0;
            for j in 0..s {
                let lpj = log_softmax(&hs[j * d..(j + 1) * d], e, d, tau);
                for i in 0..s {
                    if i == j {
                        continue;
                    }
                    let hd = &h_det[(r * s + i) * d..(r * s + i + 1) * d];
                    let lpi = log_softmax(hd, e_det, d, tau);
                    pair_sum += lpj
                        .iter()
                        .zip(&lpi)
                        .map(|(a, b)| a.exp() * (a - b))
                        .sum::<f64>();
                }
            }
            kl += pair_sum / (s * (s - 1)) as f64;
        }
    }
    let (ce, kl) = (ce / rows as f64, kl / rows as f64);
    (ce - lambda * kl, ce, kl)
}

#[test]
fn single_state_is_item_cross_entropy() {
    let (rows, n, d) = (5, 7, 3);
    let h = normals(rows * d, 1, 1, 1.0);
    let e = normals(n * d, 2, 1, 1.0);
    let targets = [1u32, 7, 3, 3, 5];
    let out = erl_loss(None, None, &h, &e, &targets, 1, d, 0.5, 0.05, 1.0);
    let mut expect = 0.0;
    for r in 0..rows {
        let mut z = vec![0.0; n];
        f64::score(&mut z, &h[r * d..(r + 1) * d], &e, d, 2.0);
        expect += f64::cross_entropy(None, &z, targets[r] as usize - 1, 1.0);
    }
    assert!((out.ce - expect / rows as f64).abs() < 1e-14);
    assert_eq!(out.kl, 0.0);
    assert_eq!(out.total, out.ce);
}

#[test]
fn identical_states_have_no_kl_and_no_kl_gradient() {
    let (n, d, s) = (6, 4, 3);
    let one = normals(d, 3, 2, 1.0);
    let h: Vec<f64> = (0..s).flat_map(|_| one.clone()).collect();
    let e = normals(n * d, 4, 2, 1.0);
    let mut with_kl = vec![0.0; s * d];
    let out = erl_loss(Some(&mut with_kl), None, &h, &e, &[2], s, d, 1.0, 0.5, 1.0);
    assert!(out.kl.abs() < 1e-15);
    let mut no_kl = vec![0.0; s * d];
    erl_loss(Some(&mut no_kl), None, &h, &e, &[2], s, d, 1.0, 0.0, 1.0);
    for (a, b) in with_kl.iter().zip(&no_kl) {
        assert!((a - b).abs() < 1e-15);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gradient_matches_finite_differences_with_stopgrad(
        rows in 1usize..4,
        s in 1usize..5,
        n in 2usize..9,
        d in 1usize..5,
        seed in 0u64..10_000,
        tau in 0.3f64..2.0,
        lambda in 0.0f64..1.0,
        dloss in 0.2f64..2.0,
    ) {
        let mut h = normals(rows * s * d, 5, seed, 1.0);
        let mut e = normals(n * d, 6, seed, 1.0);
        let rng = CounterRng::new(seed);
        let targets: Vec<u32> = (0..rows as u64).map(|r| 1 + rng.below(7, r, n as u64) as u32).collect();
        let mut dh = vec![0.0; h.len()];
        let mut de = vec![0.0; e.len()];
        let out = erl_loss(Some(&mut dh), Some(&mut de), &h, &e, &targets, s, d, tau, lambda, dloss);
        let (total, ce, kl) = reference(&h, &e, &h, &e, &targets, s, d, tau, lambda);
        prop_assert!((out.total - total).abs() < 1e-12 && (out.ce - ce).abs() < 1e-12);
        prop_assert!((out.kl - kl).abs() < 1e-12 && out.kl >= -1e-15);
        let (h0, e0) = (h.clone(), e.clone());
        let fh = |x: &[f64]| dloss * reference(x, &e0, &h0, &e0, &targets, s, d, tau, lambda).0;
        check_fd(&dh, &mut h, &fh, "dh")?;
        let fe = |x: &[f64]| dloss * reference(&h0, x, &h0, &e0, &targets, s, d, tau, lambda).0;
        check_fd(&de, &mut e, &fe, "dE")?;
    }
}

#[test]
fn accumulates_and_f32_agrees() {
    let (rows, s, n, d) = (3, 4, 30, 8);
    let h = normals(rows * s * d, 8, 3, 1.0);
    let e = normals(n * d, 9, 3, 1.0);
    let targets = [4u32, 30, 1];
    let run = |times: usize| {
        let mut dh = vec![0.0; h.len()];
        let mut de = vec![0.0; e.len()];
        for _ in 0..times {
            erl_loss(
                Some(&mut dh),
                Some(&mut de),
                &h,
                &e,
                &targets,
                s,
                d,
                1.0,
                0.05,
                1.0,
            );
        }
        (dh, de)
    };
    let (once, twice) = (run(1), run(2));
    for (a, b) in [(&once.0, &twice.0), (&once.1, &twice.1)] {
        assert!(a.iter().any(|&x| x != 0.0));
        for (x, y) in a.iter().zip(b) {
            // rows accumulate into dE in another association on the second
            // pass: a few ulps
            assert!((2.0 * x - y).abs() <= 1e-13 * (1.0 + y.abs()));
        }
    }
    let c = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let o64: ErlLoss<f64> = erl_loss(None, None, &h, &e, &targets, s, d, 1.0, 0.05, 1.0);
    let o32 = erl_loss(
        None,
        None,
        &c(&h),
        &c(&e),
        &targets,
        s,
        d,
        1.0f32,
        0.05,
        1.0,
    );
    // inputs rounded to f32 move logits of size ~3 by ~1e-6; N = 30 terms
    assert!(
        (f64::from(o32.total) - o64.total).abs() < 1e-5,
        "{o32:?} {o64:?}"
    );
    assert!((f64::from(o32.kl) - o64.kl).abs() < 1e-5, "{o32:?} {o64:?}");
}

/// The ERL loss at τ 0.7, λ 0.3 over `shape` = (rows, S, N, d), against
/// one sample at a time; returns its (total, ce, kl).
fn erl_blocks_equal_one_by_one(shape: (usize, usize, usize, usize), seed: u64) -> Vec<f64> {
    let (s, d) = (shape.1, shape.3);
    let loss = |dh: Option<&mut [f64]>,
                de: Option<&mut [f64]>,
                h: &[f64],
                e: &[f64],
                y: &[u32],
                dloss: f64| {
        let out = erl_loss(dh, de, h, e, y, s, d, 0.7, 0.3, dloss);
        vec![out.total, out.ce, out.kl]
    };
    check_blocks_equal_one_by_one(&loss, shape, seed)
}

#[test]
fn blocks_of_samples_equal_one_sample_at_a_time() {
    // small N: blocks of the 64-sample cap (64 + 64 + 22)
    let small = erl_blocks_equal_one_by_one((150, 3, 7, 3), 1);
    // N = 10,000 with S + 1 = 4 rows per sample: the logits budget (2^21)
    // holds 52 samples (52 + 8)
    let large = erl_blocks_equal_one_by_one((60, 3, 10_000, 4), 2);
    for parts in [small, large] {
        assert!(parts[2] > 1e-6, "the KL term must take part: {parts:?}");
    }
}
