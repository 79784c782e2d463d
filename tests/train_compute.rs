//! Compute accounting of evaluation runs: per-user averages equal the
//! per-user FLOP counts of `model::flops`, at fixed depth and adaptive.

use dtrec::eval::ComputeReport;
use dtrec::model::flops::{FlopCounts, FlopDims};
use dtrec::model::{Family, ModelConfig};

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

/// Beauty-sized DTRec (N = 12,101, d = 64, inner 256, 2 layers, L = 50,
/// T_max = 3) with the indicators over the finest prototype level
/// (k = 1,329): halting at step 1 costs less in TOTAL than fixed depth,
/// while over the items it costs more. Every figure against a hand formula.
#[test]
fn prototype_space_accounting_beauty_sized() {
    use dtrec::model::flops::FlopCounts;
    use dtrec::model::halting::indicators::{IndicatorBasis, IndicatorCentroids, IndicatorSpace};
    let cfg = ModelConfig {
        max_len: 50,
        ..ModelConfig::reasoning(12_101, Family::Dtrec, 3)
    };
    assert_eq!(
        (cfg.d, cfg.inner, cfg.n_layers, cfg.n_heads),
        (64, 256, 2, 2)
    );
    let k = 1_329u64;
    let basis = IndicatorBasis::Prototypes(
        IndicatorCentroids::new(vec![0.0; 1_329 * 64], 1_329, 64).unwrap(),
    );
    // encoder, per layer 8·L·d² + 2·d·L(L+1) + 4·L·d·f = 1,638,400 + 326,400 + 3,276,800
    let encoder = 2 * 5_241_600u64;
    // step k, per layer 8·d² + 4·d·(L+k) + 4·d·f = 98,304 + 256·(50 + k)
    let step = |k: u64| 2 * (98_304 + 256 * (50 + k));
    assert_eq!(step(1), 222_720);
    let scoring = 2 * 12_101 * 64u64; // 1,548,928
    let fixed = encoder + step(1) + step(2) + step(3) + scoring;
    assert_eq!(fixed, 12_701_824);
    // indicators over k: p₀ 2·k·d + 5·k, each step 2·k·d + 18·k + 5·d
    let (setup_k, step_k) = (2 * k * 64 + 5 * k, 2 * k * 64 + 18 * k + 5 * 64);
    assert_eq!((setup_k, step_k), (176_757, 194_354));
    let (n, setup_n, step_n) = (12_101u64, 1_609_433u64, 1_767_066u64);
    assert_eq!(setup_n, 2 * n * 64 + 5 * n);
    assert_eq!(step_n, 2 * n * 64 + 18 * n + 5 * 64);

    let c = FlopCounts::with_indicator_outcomes(
        &dtrec::model::flops::FlopDims {
            d: 64,
            inner: 256,
            n_layers: 2,
            n_heads: 2,
            seq_len: 50,
            n_items: 12_101,
            t_max: 3,
        },
        k,
    )
    .unwrap();
    assert_eq!((c.indicator_setup, c.indicator_step), (setup_k, step_k));
    assert_eq!(
        c.adaptive_in(1, IndicatorSpace::Prototypes),
        (setup_k + step_k, scoring)
    );
    assert_eq!(
        c.adaptive_in(3, IndicatorSpace::Prototypes),
        (setup_k + 2 * step_k, scoring)
    );
    assert_eq!(c.adaptive_in(0, IndicatorSpace::Prototypes), (0, scoring));

    let one = |basis: &IndicatorBasis, steps: u32| {
        ComputeReport::from_steps_in(&cfg, &[50], &[steps], Some(basis))
    };
    let protos = one(&basis, 1);
    assert_eq!(protos.indicator_space, IndicatorSpace::Prototypes);
    assert_eq!(protos.indicator_outcomes, k);
    assert_eq!(protos.encoder_flops, encoder as f64);
    assert_eq!(protos.reasoning_flops, step(1) as f64);
    assert_eq!(protos.indicator_flops, (setup_k + step_k) as f64);
    assert_eq!(protos.scoring_flops, scoring as f64);
    assert_eq!(protos.fixed_total_flops, fixed as f64);
    let total = encoder + step(1) + setup_k + step_k + scoring;
    assert_eq!(total, 12_625_959);
    assert_eq!(protos.total_flops(), total as f64);
    assert!(protos.relative_total() < 1.0, "{}", protos.relative_total());
    assert!(protos
        .to_string()
        .contains("indicators (over 1329 prototypes)"));

    // the same halting step over the items costs more than fixed depth
    let items = one(&IndicatorBasis::Items, 1);
    assert_eq!(items.indicator_outcomes, n);
    assert_eq!(items.indicator_flops, (setup_n + step_n) as f64);
    assert_eq!(items.scoring_flops, 0.0);
    assert_eq!(
        items.total_flops(),
        (encoder + step(1) + setup_n + step_n) as f64
    );
    assert!(items.relative_total() > 1.0);
    // and over the items it is what from_steps always counted
    assert_eq!(items, ComputeReport::from_steps(&cfg, &[50], &[1], true));

    // at T_max: no indicators at the forced stop, one scoring pass
    let deep = one(&basis, 3);
    assert_eq!(deep.indicator_flops, (setup_k + 2 * step_k) as f64);
    assert_eq!(deep.scoring_flops, scoring as f64);
    // not adaptive: the basis plays no part
    let fixed_run = ComputeReport::from_steps_in(&cfg, &[50], &[3], None);
    assert_eq!(
        fixed_run,
        ComputeReport::from_steps(&cfg, &[50], &[3], false)
    );
    assert_eq!(fixed_run.total_flops(), fixed as f64);
}
