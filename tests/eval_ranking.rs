//! The evaluator against a brute-force reference, and its determinism.
//!
//! * ranks equal an independent sort-based reference on random rows with
//!   ties, NaNs, infinities and random exclusion lists (proptest);
//! * metrics equal the reference's averages computed in f64 from those ranks;
//! * ranks and metrics are bit-identical for 1 and 2 threads and for several
//!   batch sizes;
//! * bad ids are typed errors naming the first bad sample.

use dtrec::eval::{BatchScorer, EvalError, Evaluator, RankError, ScoreFn, DEFAULT_CUTOFFS};
use proptest::prelude::*;

/// Reference rank: order all non-excluded items by a total order where the
/// target loses every tie and NaN counts as +∞ against it, then find the target.
fn reference_rank(scores: &[f32], target: u32, excluded: &[u32]) -> u32 {
    let y = target as usize - 1;
    let candidates: Vec<usize> = (0..scores.len())
        .filter(|&v| v == y || !excluded.contains(&(v as u32 + 1)))
        .collect();
    if scores[y].is_nan() {
        return candidates.len() as u32;
    }
    // sort descending by a key where NaN is +∞ and the target sorts after equal keys
    let key = |v: usize| {
        let s = scores[v];
        (
            if s.is_nan() {
                f64::INFINITY
            } else {
                f64::from(s)
            },
            v == y,
        )
    };
    let mut sorted = candidates.clone();
    sorted.sort_by(|&a, &b| {
        let (ka, ta) = key(a);
        let (kb, tb) = key(b);
        kb.partial_cmp(&ka).unwrap().then(ta.cmp(&tb))
    });
    sorted.iter().position(|&v| v == y).unwrap() as u32 + 1
}

/// Scores drawn from a small set so ties are frequent, plus NaN and ±∞.
fn score_strategy() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => (0i32..6).prop_map(|v| v as f32 * 0.25),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        2 => -10.0f32..10.0,
    ]
}

/// A table of per-sample score rows plus targets and exclusions.
#[derive(Debug, Clone)]
struct Case {
    num_items: usize,
    rows: Vec<f32>,
    targets: Vec<u32>,
    excluded: Vec<Vec<u32>>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..12, 1usize..40).prop_flat_map(|(num_items, num_samples)| {
        let n = num_items as u32;
        (
            proptest::collection::vec(score_strategy(), num_items * num_samples),
            proptest::collection::vec(1..=n, num_samples),
            proptest::collection::vec(proptest::collection::vec(1..=n, 0..6), num_samples),
        )
            .prop_map(move |(rows, targets, excluded)| Case {
                num_items,
                rows,
                targets,
                excluded,
            })
    })
}

fn table_scorer(case: &Case) -> impl BatchScorer + '_ {
    ScoreFn::new(case.num_items, move |samples: &[usize], out: &mut [f32]| {
        for (b, &s) in samples.iter().enumerate() {
            let n = case.num_items;
            out[b * n..(b + 1) * n].copy_from_slice(&case.rows[s * n..(s + 1) * n]);
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn ranks_and_metrics_match_reference(case in case_strategy(), batch_size in 1usize..9) {
        let scorer = table_scorer(&case);
        let eval = Evaluator { batch_size, cutoffs: vec![1, 2, 5, 10] };
        let report = eval
            .evaluate_excluding(&scorer, &case.targets, |i| &case.excluded[i])
            .unwrap();
        let n = case.num_items;
        let expected: Vec<u32> = (0..case.targets.len())
            .map(|i| reference_rank(&case.rows[i * n..(i + 1) * n], case.targets[i], &case.excluded[i]))
            .collect();
        prop_assert_eq!(&report.ranks, &expected);

        let count = expected.len() as f64;
        for c in &report.metrics.at {
            let within: Vec<f64> = expected.iter().filter(|&&r| r as usize <= c.k).map(|&r| f64::from(r)).collect();
            prop_assert_eq!(c.hr, within.len() as f64 / count);
            let ndcg: f64 = within.iter().map(|r| 1.0 / (r + 1.0).log2()).sum::<f64>() / count;
            let mrr: f64 = within.iter().map(|r| 1.0 / r).sum::<f64>() / count;
            prop_assert!((c.ndcg - ndcg).abs() <= 1e-12, "ndcg {} vs {}", c.ndcg, ndcg);
            prop_assert!((c.mrr - mrr).abs() <= 1e-12, "mrr {} vs {}", c.mrr, mrr);
        }
        let nan_rows = (0..case.targets.len())
            .filter(|&i| case.rows[i * n..(i + 1) * n].iter().any(|s| s.is_nan()))
            .count() as u64;
        prop_assert_eq!(report.metrics.samples_with_nan, nan_rows);
    }

    #[test]
    fn unmasked_rank_matches_reference(case in case_strategy()) {
        let scorer = table_scorer(&case);
        let report = Evaluator { batch_size: 4, cutoffs: vec![3] }
            .evaluate(&scorer, &case.targets)
            .unwrap();
        let n = case.num_items;
        for (i, &r) in report.ranks.iter().enumerate() {
            prop_assert_eq!(r, reference_rank(&case.rows[i * n..(i + 1) * n], case.targets[i], &[]));
        }
    }
}

/// A deterministic pseudo-random scorer with a few thousand items.
fn hashed_scorer(num_items: usize) -> impl BatchScorer {
    ScoreFn::new(num_items, move |samples: &[usize], out: &mut [f32]| {
        for (b, &s) in samples.iter().enumerate() {
            for j in 0..num_items {
                let h = (s as u64 * 1_000_003 + j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                out[b * num_items + j] = (h >> 40) as f32 / (1u64 << 24) as f32;
            }
        }
    })
}

#[test]
fn bit_identical_across_threads_and_batch_sizes() {
    let num_items = 3_000;
    let num_samples = 1_537;
    let scorer = hashed_scorer(num_items);
    let targets: Vec<u32> = (0..num_samples)
        .map(|i| (i * 7 % num_items) as u32 + 1)
        .collect();
    let history: Vec<Vec<u32>> = (0..num_samples)
        .map(|i| {
            (0..i % 13)
                .map(|k| ((i + 31 * k) % num_items) as u32 + 1)
                .collect()
        })
        .collect();

    let run = |threads: usize, batch_size: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            Evaluator {
                batch_size,
                cutoffs: DEFAULT_CUTOFFS.to_vec(),
            }
            .evaluate_excluding(&scorer, &targets, |i| &history[i])
            .unwrap()
        })
    };
    let base = run(1, 256);
    assert!(base.metrics.hr(50).unwrap() > 0.0, "{}", base.metrics);
    for (threads, batch_size) in [(2, 256), (2, 1), (2, 100), (1, 2000), (4, 37)] {
        let other = run(threads, batch_size);
        assert_eq!(other.ranks, base.ranks);
        for (a, b) in other.metrics.at.iter().zip(&base.metrics.at) {
            assert_eq!(a.hr.to_bits(), b.hr.to_bits());
            assert_eq!(a.ndcg.to_bits(), b.ndcg.to_bits());
            assert_eq!(a.mrr.to_bits(), b.mrr.to_bits());
        }
    }
}

#[test]
fn unwritten_cells_are_nan_and_count_against_the_model() {
    // The scorer writes only column 0; the other cells stay NaN.
    let scorer = ScoreFn::new(4, |_: &[usize], out: &mut [f32]| {
        for row in out.chunks_mut(4) {
            row[0] = 1.0;
        }
    });
    let report = Evaluator::default().evaluate(&scorer, &[1, 1]).unwrap();
    assert_eq!(report.ranks, vec![4, 4]);
    assert_eq!(report.metrics.samples_with_nan, 2);
}

#[test]
fn empty_sample_set_gives_zero_metrics() {
    let report = Evaluator::default()
        .evaluate(&hashed_scorer(10), &[])
        .unwrap();
    assert!(report.ranks.is_empty());
    assert_eq!(report.metrics.num_samples, 0);
    assert_eq!(report.metrics.hr(10), Some(0.0));
}

#[test]
fn invalid_inputs_are_typed_errors() {
    let scorer = hashed_scorer(5);
    let eval = Evaluator::default();
    assert_eq!(
        eval.evaluate(&scorer, &[1, 6, 0]),
        Err(EvalError::Sample {
            sample: 1,
            source: RankError::TargetOutOfRange {
                target: 6,
                num_items: 5
            }
        })
    );
    let hist = [vec![1, 2], vec![0]];
    let err = eval
        .evaluate_excluding(&scorer, &[1, 1], |i| &hist[i])
        .unwrap_err();
    assert_eq!(
        err,
        EvalError::Sample {
            sample: 1,
            source: RankError::ExcludedOutOfRange {
                item: 0,
                num_items: 5
            }
        }
    );
    assert!(err.to_string().contains("sample 1"), "{err}");
    let zero = Evaluator {
        batch_size: 0,
        cutoffs: vec![10],
    };
    assert_eq!(zero.evaluate(&scorer, &[1]), Err(EvalError::ZeroBatchSize));
    let bad_k = Evaluator {
        batch_size: 8,
        cutoffs: vec![],
    };
    assert!(matches!(
        bad_k.evaluate(&scorer, &[1]),
        Err(EvalError::Cutoffs(_))
    ));
    assert_eq!(
        eval.evaluate(&hashed_scorer(0), &[1]),
        Err(EvalError::NoItems)
    );
    let huge = Evaluator {
        batch_size: usize::MAX / 2,
        cutoffs: vec![10],
    };
    assert!(matches!(
        huge.evaluate(&scorer, &[1]),
        Err(EvalError::BatchTooLarge { .. })
    ));
}
