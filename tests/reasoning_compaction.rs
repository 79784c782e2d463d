//! Batch compaction (`dtrec::model::halting::compaction`): a batched run with
//! per-row early exit gives every row exactly the halting step of running it
//! alone through [`ThresholdRule::halting_step`], and the compacted buffers
//! stay aligned with the running rows after every step (proptest).

use dtrec::model::halting::compaction::{compact_rows, ActiveRows};
use dtrec::model::halting::indicators::Indicators;
use dtrec::model::halting::ThresholdRule;
use dtrec_kernels::rng::CounterRng;
use proptest::prelude::*;

#[test]
fn compact_edge_cases() {
    let mut v: Vec<u8> = vec![];
    compact_rows(&mut v, 3, &[]);
    assert!(v.is_empty());
    let mut v = vec![1u8, 2, 3, 4];
    compact_rows(&mut v, 2, &[true, true]);
    assert!(v.is_empty());
    let mut v = vec![1u8, 2, 3, 4];
    compact_rows(&mut v, 2, &[false, false]);
    assert_eq!(v, vec![1, 2, 3, 4]);
    let mut v = vec![1u8, 2, 3];
    compact_rows(&mut v, 1, &[true, false, true]);
    assert_eq!(v, vec![2]);
    let mut rows = ActiveRows::new(0);
    assert!(rows.is_empty());
    assert!(rows.retire(&[], 1).is_empty());
    assert!(rows.finish(3).is_empty());
}

proptest! {
    #[test]
    fn batched_early_exit_equals_per_row(
        n_rows in 0usize..40,
        t_max in 1usize..6,
        width in 1usize..5,
        seed in 0u64..10_000,
        theta in 0.0f64..1.0,
        t_min in 0usize..3,
    ) {
        let rng = CounterRng::new(seed);
        // indicators (rows × t_max), entry r·t_max + t − 1 = step t
        let indicators: Vec<Indicators<f64>> = (0..(n_rows * t_max) as u64)
            .map(|i| Indicators { entropy: rng.uniform(0, i), js: 0.5 * rng.uniform(1, i), delta: rng.uniform(2, i) })
            .collect();
        let rule = ThresholdRule { t_min, theta_h: theta, theta_d: theta, theta_delta: theta };

        // per-row reference
        let expect: Vec<usize> = (0..n_rows)
            .map(|r| rule.halting_step(&indicators[r * t_max..(r + 1) * t_max]))
            .collect();

        // batched: a buffer whose rows carry their original row id
        let mut rows = ActiveRows::new(n_rows);
        let mut buf: Vec<f64> = (0..n_rows).flat_map(|r| vec![r as f64; width]).collect();
        let mut outputs = vec![None; n_rows];
        for t in 1..=t_max {
            for (pos, &row) in rows.active().iter().enumerate() {
                prop_assert!(buf[pos * width..(pos + 1) * width].iter().all(|&x| x == row as f64));
            }
            let stop: Vec<bool> = rows
                .active()
                .iter()
                .map(|&r| t == t_max || rule.stops_at(t, &indicators[r * t_max + t - 1]))
                .collect();
            for (pos, row) in rows.retire(&stop, t) {
                outputs[row] = Some(buf[pos * width]);
            }
            compact_rows(&mut buf, width, &stop);
            prop_assert_eq!(buf.len(), rows.len() * width);
        }
        prop_assert!(rows.is_empty());
        prop_assert_eq!(rows.finish(t_max), expect);
        for (r, out) in outputs.iter().enumerate() {
            prop_assert_eq!(*out, Some(r as f64));
        }
    }
}
