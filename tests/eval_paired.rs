//! `compare_rank_files`: the paired statistics against a direct computation,
//! their symmetries, each typed error, and the stable-toolchain mirror of the
//! `ranks_compare` fuzz target (arbitrary and mutated inputs never panic).
//! `across_runs` and `compare_across_runs`: the t-test over seeds against a
//! direct computation, the agreement of its interval with its p-value, its
//! symmetry, and the refusal of runs scored on other samples.

use dtrec::data::ReadOptions;
use dtrec::lab::{
    across_runs, compare_across_runs, compare_rank_files, AcrossRunsError, RanksError,
    SplitComparison, RANKS_HEADER,
};
use proptest::prelude::*;

/// One sample as `eval --ranks-out` writes it.
#[derive(Clone, Debug)]
struct Sample {
    test: bool,
    user: String,
    rank_a: u32,
    rank_b: u32,
    steps_a: u32,
    steps_b: u32,
}

fn file(samples: &[Sample], model_b: bool) -> String {
    let mut out = format!("{RANKS_HEADER}\n");
    for s in samples {
        let (rank, steps) = if model_b {
            (s.rank_b, s.steps_b)
        } else {
            (s.rank_a, s.steps_a)
        };
        let split = if s.test { "test" } else { "validation" };
        out.push_str(&format!("{split},{},7,item,3,{rank},{steps}\n", s.user));
    }
    out
}

fn compare(a: &str, b: &str) -> Result<Vec<SplitComparison>, RanksError> {
    compare_rank_files(
        a.as_bytes(),
        "a.csv",
        b.as_bytes(),
        "b.csv",
        &ReadOptions::default(),
    )
}

fn ndcg(rank: u32) -> f64 {
    if rank <= 10 {
        1.0 / f64::from(rank + 1).log2()
    } else {
        0.0
    }
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        any::<bool>(),
        prop_oneof![
            "[a-z0-9]{1,6}",
            "\"[a-z]{0,3},[a-z]{0,3}\"" // a quoted id with a comma, as eval writes it
        ],
        prop_oneof![1u32..=12, 1u32..=20_000],
        prop_oneof![1u32..=12, 1u32..=20_000],
        0u32..=4,
        0u32..=4,
    )
        .prop_map(|(test, user, rank_a, rank_b, steps_a, steps_b)| Sample {
            test,
            user,
            rank_a,
            rank_b,
            steps_a,
            steps_b,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Means, differences, counts and steps equal a direct computation; the
    /// standard error is the sample standard deviation of the differences
    /// over √n; the interval is centred on the mean difference.
    #[test]
    fn statistics_match_a_direct_computation(samples in prop::collection::vec(sample(), 1..60)) {
        let splits = compare(&file(&samples, false), &file(&samples, true)).unwrap();
        let first_test = samples[0].test;
        prop_assert_eq!(splits[0].split, if first_test { "test" } else { "validation" });
        for split in &splits {
            let part: Vec<&Sample> =
                samples.iter().filter(|s| s.test == (split.split == "test")).collect();
            prop_assert_eq!(split.samples, part.len() as u64);
            let n = part.len() as f64;
            let diffs: Vec<f64> = part.iter().map(|s| ndcg(s.rank_b) - ndcg(s.rank_a)).collect();
            let mean_diff = diffs.iter().sum::<f64>() / n;
            let m = &split.ndcg10;
            prop_assert!((m.mean_a - part.iter().map(|s| ndcg(s.rank_a)).sum::<f64>() / n).abs() < 1e-12);
            prop_assert!((m.mean_b - part.iter().map(|s| ndcg(s.rank_b)).sum::<f64>() / n).abs() < 1e-12);
            prop_assert!((m.mean_diff - mean_diff).abs() < 1e-12);
            if part.len() >= 2 {
                let var = diffs.iter().map(|d| (d - mean_diff).powi(2)).sum::<f64>() / (n - 1.0);
                prop_assert!((m.std_error - (var / n).sqrt()).abs() < 1e-12);
                prop_assert!((0.0..=1.0).contains(&m.p_value));
                prop_assert!(m.ci95.0 <= m.mean_diff && m.mean_diff <= m.ci95.1);
                prop_assert!(((m.ci95.0 + m.ci95.1) / 2.0 - m.mean_diff).abs() < 1e-12);
            } else {
                prop_assert!(m.std_error.is_nan() && m.p_value.is_nan());
            }
            let wins = part.iter().filter(|s| ndcg(s.rank_b) > ndcg(s.rank_a)).count() as u64;
            let losses = part.iter().filter(|s| ndcg(s.rank_a) > ndcg(s.rank_b)).count() as u64;
            prop_assert_eq!((m.b_better, m.a_better), (wins, losses));
            prop_assert_eq!(m.ties, split.samples - wins - losses);
            let hits = |r: u32| u64::from(r <= 10);
            prop_assert_eq!(
                split.hr10.b_better,
                part.iter().filter(|s| hits(s.rank_b) > hits(s.rank_a)).count() as u64
            );
            let firsts = |rank: u32| f64::from(u8::from(rank == 1));
            prop_assert!((split.hr1.mean_a - part.iter().map(|s| firsts(s.rank_a)).sum::<f64>() / n).abs() < 1e-12);
            prop_assert!((split.hr1.mean_b - part.iter().map(|s| firsts(s.rank_b)).sum::<f64>() / n).abs() < 1e-12);
            let steps_b = part.iter().map(|s| f64::from(s.steps_b)).sum::<f64>() / n;
            prop_assert!((split.mean_steps_b - steps_b).abs() < 1e-12);
        }
    }

    /// Swapping the files negates every difference and keeps its spread and
    /// p-value; a file against itself differs nowhere.
    #[test]
    fn swapping_negates_and_self_is_level(samples in prop::collection::vec(sample(), 2..40)) {
        let (a, b) = (file(&samples, false), file(&samples, true));
        let forward = compare(&a, &b).unwrap();
        let backward = compare(&b, &a).unwrap();
        for (f, r) in forward.iter().zip(&backward) {
            for (mf, mr) in [(&f.ndcg10, &r.ndcg10), (&f.hr10, &r.hr10), (&f.hr1, &r.hr1)] {
                prop_assert!((mf.mean_diff + mr.mean_diff).abs() < 1e-12);
                prop_assert_eq!((mf.mean_a, mf.mean_b), (mr.mean_b, mr.mean_a));
                prop_assert_eq!((mf.b_better, mf.a_better), (mr.a_better, mr.b_better));
                if !mf.std_error.is_nan() {
                    prop_assert!((mf.std_error - mr.std_error).abs() < 1e-12);
                    prop_assert!((mf.p_value - mr.p_value).abs() < 1e-9);
                }
            }
        }
        for s in compare(&a, &a).unwrap() {
            for m in [&s.ndcg10, &s.hr10, &s.hr1] {
                prop_assert_eq!(m.mean_diff, 0.0);
                prop_assert_eq!(m.ties, s.samples);
                if s.samples >= 2 {
                    prop_assert_eq!((m.std_error, m.p_value), (0.0, 1.0));
                }
            }
        }
    }

    /// Mirror of `fuzz/fuzz_targets/ranks_compare.rs`: arbitrary bytes, and
    /// valid files with bytes replaced, give comparisons or errors that name
    /// one of the files and a line it has, never a panic.
    #[test]
    fn hostile_input_never_panics(
        samples in prop::collection::vec(sample(), 1..8),
        noise in prop::collection::vec(any::<u8>(), 0..200),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        limit in 1usize..=256,
        use_noise in any::<bool>(),
    ) {
        let a = file(&samples, false).into_bytes();
        let mut b = if use_noise { noise } else { file(&samples, true).into_bytes() };
        for (at, byte) in &edits {
            if !b.is_empty() {
                let i = at.index(b.len());
                b[i] = *byte;
            }
        }
        let options = ReadOptions { max_line_bytes: limit };
        let lines = |bytes: &[u8]| bytes.split(|&x| x == b'\n').count() as u64;
        for (x, y) in [(&a[..], &b[..]), (&b[..], &a[..])] {
            match compare_rank_files(x, "a", y, "b", &options) {
                Ok(splits) => {
                    let rows: u64 = splits.iter().map(|s| s.samples).sum();
                    prop_assert!(rows > 0 && rows < lines(x).min(lines(y)));
                    for s in &splits {
                        for m in [&s.ndcg10, &s.hr10, &s.hr1] {
                            prop_assert_eq!(m.b_better + m.a_better + m.ties, s.samples);
                        }
                    }
                }
                Err(e) => {
                    prop_assert!(matches!(e.file(), Some("a" | "b")), "{}", e);
                    if let Some(line) = e.line() {
                        prop_assert!((1..=lines(x).max(lines(y))).contains(&line), "{}", e);
                    }
                }
            }
        }
    }
}

fn error(a: &str, b: &str) -> String {
    compare(a, b).unwrap_err().to_string()
}

#[test]
fn each_error_names_the_file_the_line_and_the_field() {
    let h = RANKS_HEADER;
    let good = format!("{h}\ntest,u,3,i,1,4,2\n");
    assert_eq!(
        error("", &good),
        "a.csv: empty input (no header or data line)"
    );
    assert!(error(&good, "user,rank\n").starts_with("b.csv:1: not a ranks file"));
    assert_eq!(
        error(&good, &format!("{h}\ntest,u,3,i,1,0,2\n")),
        "b.csv:2: field `rank`: \"0\" is not a rank ≥ 1"
    );
    assert_eq!(
        error(&format!("{h}\ntest,u,3,i,1,4,-1\n"), &good),
        "a.csv:2: field `steps`: \"-1\" is not a whole number of steps"
    );
    assert_eq!(
        error(&format!("{h}\ntrain,u,3,i,1,4,2\n"), &good),
        "a.csv:2: field `split`: \"train\" is not `validation` or `test`"
    );
    assert_eq!(
        error(&format!("{h}\ntest,u,4,2\n"), &good),
        format!("a.csv:2: 4 comma-separated fields, expected 7 ({h})")
    );
    assert_eq!(
        error(&good, &format!("{h}\ntest,v,3,i,1,4,2\n")),
        "line 2: a.csv has sample \"test,u,3,i,1\" but b.csv has \"test,v,3,i,1\"; \
         the files must come from the same data and split"
    );
    assert_eq!(
        error(&good, &format!("{good}test,w,3,i,1,4,2\n")),
        "b.csv:3: more samples than a.csv, which ends at line 2"
    );
    assert_eq!(
        error(&format!("{h}\n"), &format!("{h}\n")),
        "a.csv: no sample after the header"
    );
    let long = compare_rank_files(
        good.as_bytes(),
        "a.csv",
        good.as_bytes(),
        "b.csv",
        &ReadOptions { max_line_bytes: 20 },
    )
    .unwrap_err();
    assert_eq!(
        long.to_string(),
        "a.csv:1: line longer than the limit of 20 bytes"
    );
    assert_eq!(long.line(), Some(1));
}

#[test]
fn a_hand_computed_pair() {
    // validation: A ranks 1, 3, 20; B ranks 3, 1, 2
    let h = RANKS_HEADER;
    let a =
        format!("{h}\nvalidation,x,1,i,1,1,2\nvalidation,y,1,i,1,3,2\nvalidation,z,1,i,1,20,2\n");
    let b =
        format!("{h}\nvalidation,x,1,i,1,3,1\nvalidation,y,1,i,1,1,1\nvalidation,z,1,i,1,2,1\n");
    let splits = compare(&a, &b).unwrap();
    assert_eq!(splits.len(), 1);
    let v = &splits[0];
    let (one, half, two) = (1.0, 0.5, 1.0 / 3f64.log2());
    // differences: −0.5, +0.5, +0.6309
    let diffs = [half - one, one - half, two];
    let mean = diffs.iter().sum::<f64>() / 3.0;
    assert!((v.ndcg10.mean_a - (one + half) / 3.0).abs() < 1e-15);
    assert!((v.ndcg10.mean_b - (half + one + two) / 3.0).abs() < 1e-15);
    assert!((v.ndcg10.mean_diff - mean).abs() < 1e-15);
    assert_eq!(
        (v.ndcg10.b_better, v.ndcg10.a_better, v.ndcg10.ties),
        (2, 1, 0)
    );
    assert_eq!((v.hr10.mean_a, v.hr10.mean_b), (2.0 / 3.0, 1.0));
    assert_eq!((v.hr1.mean_a, v.hr1.mean_b), (1.0 / 3.0, 1.0 / 3.0));
    assert_eq!((v.hr1.b_better, v.hr1.a_better, v.hr1.ties), (1, 1, 1));
    assert_eq!((v.mean_steps_a, v.mean_steps_b), (2.0, 1.0));
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
                let samples: Vec<Sample> = users
                    .iter()
                    .zip(run)
                    .enumerate()
                    .map(|(i, (&user, &(rank_a, rank_b, steps)))| Sample {
                        test: i >= 3,
                        user: user.to_owned(),
                        rank_a,
                        rank_b,
                        steps_a: steps,
                        steps_b: steps,
                    })
                    .collect();
                compare(&file(&samples, false), &file(&samples, true)).unwrap()
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
            let hr1 = runs.iter().map(|r| r[s].hr1.mean_diff).sum::<f64>() / n;
            prop_assert!((split.hr1.mean_diff - hr1).abs() < 1e-12);
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
    let level = |samples: &[(bool, &str)]| {
        let samples: Vec<Sample> = samples
            .iter()
            .map(|&(test, user)| Sample {
                test,
                user: user.to_owned(),
                rank_a: 4,
                rank_b: 4,
                steps_a: 1,
                steps_b: 1,
            })
            .collect();
        compare(&file(&samples, false), &file(&samples, true)).unwrap()
    };
    let first = level(&[(false, "u1"), (true, "u1"), (true, "u2")]);
    let other_user = level(&[(false, "u1"), (true, "u1"), (true, "u9")]);
    let no_validation = level(&[(true, "u1"), (true, "u2")]);
    assert_eq!(
        compare_across_runs(std::slice::from_ref(&first)).unwrap()[1]
            .ndcg10
            .runs,
        1
    );

    let err = compare_across_runs(&[first.clone(), first.clone(), other_user]).unwrap_err();
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
    let err = compare_across_runs(&[first.clone(), no_validation.clone()]);
    assert_eq!(
        err.unwrap_err(),
        AcrossRunsError::OtherSamples {
            run: 2,
            split: "validation"
        }
    );
    let err = compare_across_runs(&[no_validation, first]);
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
