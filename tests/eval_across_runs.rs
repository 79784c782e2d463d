//! `across_runs` and `compare_across_runs`: the t-test over seeds against a
//! direct computation, the agreement of its interval with its p-value, its
//! symmetry, and the refusal of runs scored on other samples.

use dtrec::data::ReadOptions;
use dtrec::eval::{
    across_runs, compare_across_runs, compare_rank_files, AcrossRunsError, SplitComparison,
    RANKS_HEADER,
};
use proptest::prelude::*;

/// A ranks file: `(test split?, user, rank, steps)` per sample.
fn file(rows: &[(bool, &str, u32, u32)]) -> String {
    let mut out = format!("{RANKS_HEADER}\n");
    for &(test, user, rank, steps) in rows {
        let split = if test { "test" } else { "validation" };
        out.push_str(&format!("{split},{user},7,item,3,{rank},{steps}\n"));
    }
    out
}

fn compare(a: &str, b: &str) -> Vec<SplitComparison> {
    compare_rank_files(
        a.as_bytes(),
        "a.csv",
        b.as_bytes(),
        "b.csv",
        &ReadOptions::default(),
    )
    .unwrap()
}

fn run_means() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((0.0f64..0.1, 0.0f64..0.1), 2..9)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Means, difference, spread and counts equal a direct computation;
    /// the 95% interval excludes 0 exactly when p < 0.05.
    #[test]
    fn statistics_and_interval_agree_with_the_p_value(means in run_means()) {
        let m = across_runs(&means).unwrap();
        let n = means.len() as f64;
        let diffs: Vec<f64> = means.iter().map(|&(a, b)| b - a).collect();
        let mean_diff = diffs.iter().sum::<f64>() / n;
        let var = diffs.iter().map(|d| (d - mean_diff).powi(2)).sum::<f64>() / (n - 1.0);
        prop_assert_eq!(m.runs, means.len());
        prop_assert_eq!(m.degrees_of_freedom as usize, means.len() - 1);
        prop_assert!((m.mean_diff - mean_diff).abs() < 1e-15);
        prop_assert!((m.mean_diff - (m.mean_b - m.mean_a)).abs() < 1e-12);
        prop_assert!((m.std_error - (var / n).sqrt()).abs() < 1e-15);
        prop_assert!((m.t - mean_diff / (var / n).sqrt()).abs() <= 1e-9 * m.t.abs().max(1.0));
        prop_assert_eq!(m.b_better, diffs.iter().filter(|&&d| d > 0.0).count());
        prop_assert_eq!(m.a_better, diffs.iter().filter(|&&d| d < 0.0).count());
        prop_assert!((0.5 * (m.ci95.0 + m.ci95.1) - mean_diff).abs() < 1e-12);
        prop_assume!((m.p_value - 0.05).abs() > 1e-9);
        let excludes_zero = m.ci95.0 > 0.0 || m.ci95.1 < 0.0;
        prop_assert_eq!(excludes_zero, m.p_value < 0.05, "{:?}", m);
    }

    /// Swapping A and B negates the difference and t and keeps p.
    #[test]
    fn swapping_negates(means in run_means()) {
        let swapped: Vec<(f64, f64)> = means.iter().map(|&(a, b)| (b, a)).collect();
        let (f, r) = (across_runs(&means).unwrap(), across_runs(&swapped).unwrap());
        prop_assert!((f.mean_diff + r.mean_diff).abs() < 1e-15);
        prop_assert!((f.t + r.t).abs() <= 1e-9 * f.t.abs().max(1.0));
        prop_assert!((f.p_value - r.p_value).abs() < 1e-12);
        prop_assert_eq!((f.b_better, f.a_better), (r.a_better, r.b_better));
    }

    /// Pooled comparisons of ranks files: each split's mean difference and
    /// steps are the means over runs of the per-run figures.
    #[test]
    fn pooling_averages_the_runs(
        ranks in prop::collection::vec(prop::collection::vec((1u32..=15, 1u32..=15, 0u32..=3), 6), 2..5),
    ) {
        let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
        let runs: Vec<Vec<SplitComparison>> = ranks
            .iter()
            .map(|run| {
                let rows = |pick: fn(&(u32, u32, u32)) -> u32| -> Vec<(bool, &str, u32, u32)> {
                    users
                        .iter()
                        .zip(run)
                        .enumerate()
                        .map(|(i, (&u, r))| (i >= 3, u, pick(r), r.2))
                        .collect()
                };
                compare(&file(&rows(|r| r.0)), &file(&rows(|r| r.1)))
            })
            .collect();
        let pooled = compare_across_runs(&runs).unwrap();
        prop_assert_eq!(pooled.len(), 2);
        let n = runs.len() as f64;
        for (s, split) in pooled.iter().enumerate() {
            prop_assert_eq!((split.split, split.samples), (runs[0][s].split, 3));
            prop_assert_eq!(split.ndcg10.runs, runs.len());
            let diff = runs.iter().map(|r| r[s].ndcg10.mean_diff).sum::<f64>() / n;
            prop_assert!((split.ndcg10.mean_diff - diff).abs() < 1e-12);
            let hr = runs.iter().map(|r| r[s].hr10.mean_b).sum::<f64>() / n;
            prop_assert!((split.hr10.mean_b - hr).abs() < 1e-12);
            let steps = runs.iter().map(|r| r[s].mean_steps_a).sum::<f64>() / n;
            prop_assert!((split.mean_steps_a - steps).abs() < 1e-12);
        }
    }
}

/// Five runs differing by 0.5, 1, 1.5, 2, 2.5: t = 1.5 / √(0.625 / 5) =
/// 4.2426 on 4 degrees of freedom, p = 0.0132356 (numerical integration of
/// Student's t density),
/// interval 1.5 ± 2.776445 · 0.353553.
#[test]
fn a_hand_computed_t_test() {
    let means = [(0.0, 0.5), (1.0, 2.0), (0.5, 2.0), (1.0, 3.0), (0.0, 2.5)];
    let m = across_runs(&means).unwrap();
    assert_eq!((m.runs, m.degrees_of_freedom), (5, 4));
    assert!((m.mean_diff - 1.5).abs() < 1e-15);
    assert!((m.std_error - 0.353_553_390_6).abs() < 1e-10);
    assert!((m.t - 4.242_640_687).abs() < 1e-8);
    assert!((m.p_value - 0.013_235_6).abs() < 1e-7, "{}", m.p_value);
    let half = 2.776_445_105 * 0.353_553_390_6;
    assert!((m.ci95.0 - (1.5 - half)).abs() < 1e-8 && (m.ci95.1 - (1.5 + half)).abs() < 1e-8);
    assert_eq!((m.b_better, m.a_better), (5, 0));
}

/// A run scored on other users, or without one of the first run's splits,
/// is refused with the run and the split.
#[test]
fn runs_on_other_samples_are_refused() {
    let same = file(&[(false, "u1", 1, 1), (true, "u1", 4, 1), (true, "u2", 30, 2)]);
    let other_user = file(&[(false, "u1", 1, 1), (true, "u1", 4, 1), (true, "u9", 30, 2)]);
    let no_validation = file(&[(true, "u1", 4, 1), (true, "u2", 30, 2)]);
    let first = compare(&same, &same);
    assert_eq!(
        compare_across_runs(std::slice::from_ref(&first)).unwrap()[1]
            .ndcg10
            .runs,
        1
    );

    let err = compare_across_runs(&[
        first.clone(),
        first.clone(),
        compare(&other_user, &other_user),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        AcrossRunsError::OtherSamples {
            run: 3,
            split: "test"
        }
    );
    assert_eq!(
        err.to_string(),
        "run 3: the test split holds other samples than run 1's; every run must be scored \
         on the same data and split"
    );
    let err = compare_across_runs(&[first.clone(), compare(&no_validation, &no_validation)]);
    assert_eq!(
        err.unwrap_err(),
        AcrossRunsError::OtherSamples {
            run: 2,
            split: "validation"
        }
    );
    let err = compare_across_runs(&[compare(&no_validation, &no_validation), first]);
    assert_eq!(
        err.unwrap_err(),
        AcrossRunsError::OtherSamples {
            run: 2,
            split: "test"
        }
    );
    assert_eq!(
        compare_across_runs(&[]).unwrap_err(),
        AcrossRunsError::NoRuns
    );
}
