//! ReaRec-PRL objective (`dtrec::model::loss::prl`):
//!
//! * one state: the item loss is the plain item cross-entropy;
//! * the value equals a brute-force f64 reference with temperatures
//!   τ·α^{K−k}, and the hand gradients for h and E equal central finite
//!   differences (proptest);
//! * the contrastive loss has its closed form on a 2-row case, is 0 for one
//!   row or one state, and its gradients for both views equal finite
//!   differences (proptest);
//! * a batch split into several row blocks (by the block cap and by the
//!   logits budget at large N) equals the same samples one at a time;
//! * backward accumulates.

mod common;
use common::{check_blocks_equal_one_by_one, check_fd, normals};

use dtrec::model::loss::prl::{prl_item_loss, rcl_loss};
use dtrec_kernels::rng::CounterRng;
use dtrec_kernels::Kernels;
use proptest::prelude::*;

fn ce_ref(h: &[f64], e: &[f64], d: usize, tau: f64, y: usize) -> f64 {
    let z: Vec<f64> = e
        .chunks_exact(d)
        .map(|row| row.iter().zip(h).map(|(a, b)| a * b).sum::<f64>() / tau)
        .collect();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - z[y]
}

#[allow(clippy::too_many_arguments)]
fn item_reference(
    h: &[f64],
    e: &[f64],
    targets: &[u32],
    s: usize,
    d: usize,
    tau: f64,
    alpha: f64,
) -> f64 {
    let k = s - 1;
    let mut total = 0.0;
    for (r, &y) in targets.iter().enumerate() {
        let state = |t: usize| &h[(r * s + t) * d..(r * s + t + 1) * d];
        total += ce_ref(state(k), e, d, tau, y as usize - 1);
        for t in 0..k {
            total += ce_ref(
                state(t),
                e,
                d,
                tau * alpha.powi((k - t) as i32),
                y as usize - 1,
            ) / k as f64;
        }
    }
    total / targets.len() as f64
}

fn rcl_reference(noisy: &[f64], clean: &[f64], rows: usize, s: usize, d: usize, tau: f64) -> f64 {
    let mut total = 0.0;
    for k in 1..s {
        let state = |v: &[f64], r: usize| v[(r * s + k) * d..(r * s + k + 1) * d].to_vec();
        let cl: Vec<f64> = (0..rows).flat_map(|r| state(clean, r)).collect();
        for a in 0..rows {
            total += ce_ref(&state(noisy, a), &cl, d, tau, a);
        }
    }
    total / (rows * (s - 1)) as f64
}

#[test]
fn single_state_is_item_cross_entropy() {
    let (n, d) = (6, 3);
    let h = normals(2 * d, 1, 1, 1.0);
    let e = normals(n * d, 2, 1, 1.0);
    let out = prl_item_loss(None, None, &h, &e, &[2, 6], 1, d, 0.7, 5.0, 1.0);
    let mut expect = 0.0;
    for (r, y) in [2usize, 6].into_iter().enumerate() {
        let mut z = vec![0.0; n];
        f64::score(&mut z, &h[r * d..(r + 1) * d], &e, d, 1.0 / 0.7);
        expect += f64::cross_entropy(None, &z, y - 1, 1.0);
    }
    assert!((out.final_ce - expect / 2.0).abs() < 1e-14);
    assert_eq!(out.progressive, 0.0);
    assert_eq!(out.total, out.final_ce);
}

#[test]
fn rcl_closed_forms() {
    // rows 2, states 2, d 1: step-1 states noisy (1, −1), clean (1, −1), τ = 1:
    // logits [[1, −1], [−1, 1]], each row CE = ln(1 + e^{−2})
    let noisy = [9.0, 1.0, 9.0, -1.0];
    let clean = [7.0, 1.0, 7.0, -1.0];
    let loss = rcl_loss::<f64>(None, None, &noisy, &clean, 2, 2, 1, 1.0, 1.0);
    assert!((loss - (1.0 + (-2f64).exp()).ln()).abs() < 1e-15);
    // step 0 is not used: changing it changes nothing
    let clean0 = [-3.0, 1.0, 4.0, -1.0];
    assert_eq!(
        rcl_loss::<f64>(None, None, &noisy, &clean0, 2, 2, 1, 1.0, 1.0),
        loss
    );
    // one row: softmax over one logit; one state: no reasoning step
    assert_eq!(
        rcl_loss::<f64>(None, None, &[1.0, 2.0], &[3.0, 4.0], 1, 2, 1, 1.0, 1.0),
        0.0
    );
    assert_eq!(
        rcl_loss::<f64>(None, None, &[1.0, 2.0], &[3.0, 4.0], 2, 1, 1, 1.0, 1.0),
        0.0
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn item_loss_value_and_gradients(
        rows in 1usize..20,
        s in 1usize..5,
        n in 2usize..9,
        d in 1usize..5,
        seed in 0u64..10_000,
        tau in 0.3f64..2.0,
        alpha in 1.0f64..6.0,
        dloss in 0.2f64..2.0,
    ) {
        let mut h = normals(rows * s * d, 3, seed, 1.0);
        let mut e = normals(n * d, 4, seed, 1.0);
        let rng = CounterRng::new(seed);
        let targets: Vec<u32> = (0..rows as u64).map(|r| 1 + rng.below(5, r, n as u64) as u32).collect();
        let mut dh = vec![0.0; h.len()];
        let mut de = vec![0.0; e.len()];
        let out = prl_item_loss(Some(&mut dh), Some(&mut de), &h, &e, &targets, s, d, tau, alpha, dloss);
        prop_assert!((out.total - item_reference(&h, &e, &targets, s, d, tau, alpha)).abs() < 1e-12);
        prop_assert!((out.total - out.final_ce - out.progressive).abs() < 1e-15);
        let e0 = e.clone();
        let fh = |x: &[f64]| dloss * item_reference(x, &e0, &targets, s, d, tau, alpha);
        check_fd(&dh, &mut h, &fh, "dh")?;
        let h0 = h.clone();
        let fe = |x: &[f64]| dloss * item_reference(&h0, x, &targets, s, d, tau, alpha);
        check_fd(&de, &mut e, &fe, "dE")?;
    }

    #[test]
    fn rcl_value_and_gradients(
        rows in 1usize..6,
        s in 1usize..4,
        d in 1usize..5,
        seed in 0u64..10_000,
        tau in 0.3f64..2.0,
        dloss in 0.2f64..2.0,
    ) {
        let mut clean = normals(rows * s * d, 6, seed, 1.0);
        let mut noisy: Vec<f64> = clean.iter().zip(normals(rows * s * d, 7, seed, 0.3)).map(|(a, b)| a + b).collect();
        let mut dn = vec![0.0; noisy.len()];
        let mut dc = vec![0.0; clean.len()];
        let loss = rcl_loss(Some(&mut dn), Some(&mut dc), &noisy, &clean, rows, s, d, tau, dloss);
        let reference = if s > 1 { rcl_reference(&noisy, &clean, rows, s, d, tau) } else { 0.0 };
        prop_assert!((loss - reference).abs() < 1e-12);
        let c0 = clean.clone();
        let fnoisy = |x: &[f64]| dloss * rcl_loss(None, None, x, &c0, rows, s, d, tau, 1.0);
        check_fd(&dn, &mut noisy, &fnoisy, "dnoisy")?;
        let n0 = noisy.clone();
        let fclean = |x: &[f64]| dloss * rcl_loss(None, None, &n0, x, rows, s, d, tau, 1.0);
        check_fd(&dc, &mut clean, &fclean, "dclean")?;
    }
}

#[test]
fn backward_accumulates() {
    let (rows, s, n, d) = (3, 3, 12, 4);
    let h = normals(rows * s * d, 8, 2, 1.0);
    let e = normals(n * d, 9, 2, 1.0);
    let hn: Vec<f64> = h.iter().map(|x| x + 0.01).collect();
    let run = |times: usize| {
        let mut dh = vec![0.0; h.len()];
        let mut de = vec![0.0; e.len()];
        let mut dn = vec![0.0; h.len()];
        for _ in 0..times {
            prl_item_loss(
                Some(&mut dh),
                Some(&mut de),
                &h,
                &e,
                &[1, 12, 5],
                s,
                d,
                1.0,
                5.0,
                1.0,
            );
            rcl_loss(Some(&mut dn), Some(&mut dh), &hn, &h, rows, s, d, 1.0, 1.0);
        }
        (dh, de, dn)
    };
    let (once, twice) = (run(1), run(2));
    for (a, b) in [
        (&once.0, &twice.0),
        (&once.1, &twice.1),
        (&once.2, &twice.2),
    ] {
        assert!(a.iter().any(|&x| x != 0.0));
        for (x, y) in a.iter().zip(b) {
            // contributions add in another association on the second pass
            assert!((2.0 * x - y).abs() <= 1e-13 * (1.0 + y.abs()));
        }
    }
}

/// The PRL item loss at τ 0.7, α 5 over `shape` = (rows, S, N, d),
/// against one sample at a time; returns its (total, final CE, progressive).
fn prl_blocks_equal_one_by_one(shape: (usize, usize, usize, usize), seed: u64) -> Vec<f64> {
    let (s, d) = (shape.1, shape.3);
    let loss = |dh: Option<&mut [f64]>,
                de: Option<&mut [f64]>,
                h: &[f64],
                e: &[f64],
                y: &[u32],
                dloss: f64| {
        let out = prl_item_loss(dh, de, h, e, y, s, d, 0.7, 5.0, dloss);
        vec![out.total, out.final_ce, out.progressive]
    };
    check_blocks_equal_one_by_one(&loss, shape, seed)
}

#[test]
fn blocks_of_samples_equal_one_sample_at_a_time() {
    // small N: blocks of the 64-row cap (64 + 64 + 22)
    let small = prl_blocks_equal_one_by_one((150, 3, 7, 3), 1);
    // N = 40,000: the logits budget (2^21) holds 52 rows (52 + 8)
    let large = prl_blocks_equal_one_by_one((60, 3, 40_000, 4), 2);
    for parts in [small, large] {
        assert!(
            parts[2] > 1e-6,
            "the earlier steps must take part: {parts:?}"
        );
    }
}
