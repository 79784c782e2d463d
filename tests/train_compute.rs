//! Compute accounting of evaluation runs: per-user averages equal the
//! per-user FLOP counts of `reasoning::flops`, at fixed depth and adaptive.

use dtrec::model::{Family, ModelConfig};
use dtrec::reasoning::flops::{FlopCounts, FlopDims};
use dtrec::train::ComputeReport;

fn counts(cfg: &ModelConfig, len: usize) -> FlopCounts {
    FlopCounts::new(&FlopDims {
        d: cfg.d as u64,
        inner: cfg.inner as u64,
        n_layers: cfg.n_layers as u64,
        n_heads: cfg.n_heads as u64,
        seq_len: len as u64,
        n_items: cfg.n_items as u64,
        t_max: cfg.t_max as u64,
    })
    .unwrap()
}

#[test]
fn adaptive_and_fixed_accounting() {
    let cfg = ModelConfig::reasoning(3416, Family::Dtrec, 4);
    let lens = [50, 3, 17, 50];
    let steps = [1, 4, 2, 1];
    let r = ComputeReport::from_steps(&cfg, &lens, &steps, true);
    assert_eq!(r.users, 4);
    assert_eq!(r.steps_histogram, [0, 2, 1, 0, 1]);
    assert!((r.avg_steps - 2.0).abs() < 1e-12);
    let mean = |f: &dyn Fn(&FlopCounts, u32) -> u64| -> f64 {
        lens.iter()
            .zip(steps)
            .map(|(&l, s)| f(&counts(&cfg, l), s) as f64)
            .sum::<f64>()
            / 4.0
    };
    let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} vs {b}");
    close(r.encoder_flops, mean(&|c, _| c.encoder));
    close(r.reasoning_flops, mean(&|c, s| c.reasoning(s as usize)));
    close(r.fixed_reasoning_flops, mean(&|c, _| c.reasoning(4)));
    // indicators at every step run except T_max, where the logits are the scores
    close(
        r.indicator_flops,
        mean(&|c, s| c.indicator_setup + c.indicator_step * u64::from(s.min(3))),
    );
    close(
        r.scoring_flops,
        mean(&|c, s| if s == 4 { c.scoring } else { 0 }),
    );
    let bound = mean(&|c, s| c.adaptive(s as usize));
    assert!(r.total_flops() <= bound && r.total_flops() > 0.99 * bound);
    close(r.fixed_total_flops, mean(&|c, _| c.fixed_depth(4)));
    assert!(r.relative_reasoning() < 0.6 && r.relative_reasoning() > 0.4);

    let fixed = ComputeReport::from_steps(&cfg, &lens, &[4; 4], false);
    close(fixed.relative_reasoning(), 1.0);
    close(fixed.relative_total(), 1.0);
    close(fixed.indicator_flops, 0.0);
    close(fixed.total_flops(), mean(&|c, _| c.fixed_depth(4)));
}

#[test]
fn sasrec_has_no_reasoning() {
    let cfg = ModelConfig::sasrec(100);
    let r = ComputeReport::from_steps(&cfg, &[5, 9], &[0, 0], false);
    assert_eq!(r.steps_histogram, [2]);
    assert_eq!(r.reasoning_flops, 0.0);
    assert_eq!(r.relative_reasoning(), 1.0);
    assert!((r.relative_total() - 1.0).abs() < 1e-12);
    assert!(r.to_string().contains("0.000 of 0 reasoning steps"));
}
