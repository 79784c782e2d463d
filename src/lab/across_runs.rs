//! Two model families compared over several training runs: one paired
//! comparison per seed (model A and model B trained with that seed, scored
//! on the same samples), then a paired t-test over the seeds.
//!
//! [`paired_metric`](super::paired_metric)'s interval covers which users
//! are in the split, with both models fixed. Training noise (another seed
//! gives another model) is of the same size as the gaps between families,
//! so a claim that B beats A needs the spread over seeds too. Here each
//! run contributes its mean difference B − A on the split; the test is
//! Student's t over those differences with runs − 1 degrees of freedom.
//! The split's samples are fixed across runs, so this interval covers the
//! training noise on this split, not the choice of users.
//!
//! ```
//! use dtrec::lab::across_runs;
//!
//! // three seeds: B − A = +0.001, +0.002, +0.003
//! let m = across_runs(&[(0.040, 0.041), (0.040, 0.042), (0.041, 0.044)]).unwrap();
//! assert_eq!(m.runs, 3);
//! assert!((m.mean_diff - 0.002).abs() < 1e-12);
//! assert_eq!((m.b_better, m.a_better), (3, 0));
//! // t = 0.002 / (0.001 / √3) = 3.46 with 2 degrees of freedom: p ≈ 0.074
//! assert!((m.p_value - 0.0742).abs() < 1e-4);
//! ```

use super::ranks_file::SplitComparison;
use std::fmt;

/// One metric over several runs. Differences are B − A.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunsMetric {
    /// Runs (seeds) compared.
    pub runs: usize,
    /// Mean over runs of model A's metric.
    pub mean_a: f64,
    /// Mean over runs of model B's metric.
    pub mean_b: f64,
    /// Mean over runs of the difference B − A.
    pub mean_diff: f64,
    /// Standard deviation of the per-run differences over √runs; NaN with
    /// one run.
    pub std_error: f64,
    /// `mean_diff / std_error`; 0 when every difference is 0, ±∞ when
    /// every run differs by the same non-zero amount.
    pub t: f64,
    /// Degrees of freedom of the t-test, runs − 1.
    pub degrees_of_freedom: u32,
    /// 95% interval of the mean difference, `mean_diff ± t_{0.975}·std_error`.
    pub ci95: (f64, f64),
    /// Two-sided p-value of "no difference" from Student's t.
    pub p_value: f64,
    /// Runs in which B scores higher than A.
    pub b_better: usize,
    /// Runs in which A scores higher than B.
    pub a_better: usize,
}

/// Paired t-test over runs, from each run's `(mean of A, mean of B)`.
/// `None` without runs. A non-finite mean gives NaN statistics.
pub fn across_runs(means: &[(f64, f64)]) -> Option<RunsMetric> {
    if means.is_empty() {
        return None;
    }
    let n = means.len() as f64;
    let mean_a = means.iter().map(|m| m.0).sum::<f64>() / n;
    let mean_b = means.iter().map(|m| m.1).sum::<f64>() / n;
    let diffs = || means.iter().map(|&(a, b)| b - a);
    let mean_diff = diffs().sum::<f64>() / n;
    let degrees_of_freedom = (means.len() - 1) as u32;
    let std_error = if degrees_of_freedom == 0 {
        f64::NAN
    } else {
        (diffs().map(|d| (d - mean_diff).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
    };
    let t = if std_error > 0.0 {
        mean_diff / std_error
    } else if std_error == 0.0 && mean_diff == 0.0 {
        0.0
    } else if std_error == 0.0 {
        mean_diff.signum() * f64::INFINITY
    } else {
        f64::NAN
    };
    let half_width = if degrees_of_freedom == 0 {
        f64::NAN
    } else {
        student_t_975(degrees_of_freedom) * std_error
    };
    Some(RunsMetric {
        runs: means.len(),
        mean_a,
        mean_b,
        mean_diff,
        std_error,
        t,
        degrees_of_freedom,
        ci95: (mean_diff - half_width, mean_diff + half_width),
        p_value: student_t_two_sided_p(t, degrees_of_freedom),
        b_better: diffs().filter(|&d| d > 0.0).count(),
        a_better: diffs().filter(|&d| d < 0.0).count(),
    })
}

/// One split compared over several runs.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitAcrossRuns {
    /// `"validation"` or `"test"`.
    pub split: &'static str,
    /// Samples of the split (the same in every run).
    pub samples: u64,
    /// NDCG@10 over runs, B against A.
    pub ndcg10: RunsMetric,
    /// HR@10 over runs, B against A.
    pub hr10: RunsMetric,
    /// HR@1 over runs, B against A.
    pub hr1: RunsMetric,
    /// Mean over runs of model A's mean reasoning steps.
    pub mean_steps_a: f64,
    /// Mean over runs of model B's mean reasoning steps.
    pub mean_steps_b: f64,
}

impl SplitAcrossRuns {
    /// The metrics compared, named, in report order: NDCG@10, HR@10, HR@1.
    pub fn metrics(&self) -> [(&'static str, &RunsMetric); 3] {
        [
            ("NDCG@10", &self.ndcg10),
            ("HR@10", &self.hr10),
            ("HR@1", &self.hr1),
        ]
    }
}

/// Why runs cannot be pooled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcrossRunsError {
    /// No run was given.
    NoRuns,
    /// A run's splits, or a split's samples, differ from the first run's:
    /// its files were written from other data.
    OtherSamples {
        /// The run, counted from 1.
        run: usize,
        /// The split that differs, the first run's split this run lacks, or
        /// this run's split the first run lacks.
        split: &'static str,
    },
}

impl fmt::Display for AcrossRunsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcrossRunsError::NoRuns => write!(f, "no run to compare"),
            AcrossRunsError::OtherSamples { run, split } => write!(
                f,
                "run {run}: the {split} split holds other samples than run 1's; every run \
                 must be scored on the same data and split"
            ),
        }
    }
}

impl std::error::Error for AcrossRunsError {}

/// Pools per-run comparisons (each from
/// [`compare_rank_files`](super::compare_rank_files)) split by split, in
/// the first run's split order. Every run must hold the same splits with
/// the same samples (checked by their digests).
pub fn compare_across_runs(
    runs: &[Vec<SplitComparison>],
) -> Result<Vec<SplitAcrossRuns>, AcrossRunsError> {
    let first = runs.first().ok_or(AcrossRunsError::NoRuns)?;
    for (i, run) in runs.iter().enumerate().skip(1) {
        let mismatch = first
            .iter()
            .zip(run)
            .find(|(a, b)| a.split != b.split || a.samples_digest != b.samples_digest)
            .map(|(a, _)| a.split);
        let extra_or_missing = match run.len().cmp(&first.len()) {
            std::cmp::Ordering::Less => Some(first[run.len()].split),
            std::cmp::Ordering::Greater => Some(run[first.len()].split),
            std::cmp::Ordering::Equal => None,
        };
        if let Some(split) = mismatch.or(extra_or_missing) {
            return Err(AcrossRunsError::OtherSamples { run: i + 1, split });
        }
    }
    let n = runs.len() as f64;
    Ok(first
        .iter()
        .enumerate()
        .map(|(s, head)| {
            let pooled = |metric: fn(&SplitComparison) -> (f64, f64)| {
                let means: Vec<(f64, f64)> = runs.iter().map(|run| metric(&run[s])).collect();
                across_runs(&means).expect("at least one run")
            };
            SplitAcrossRuns {
                split: head.split,
                samples: head.samples,
                ndcg10: pooled(|c| (c.ndcg10.mean_a, c.ndcg10.mean_b)),
                hr10: pooled(|c| (c.hr10.mean_a, c.hr10.mean_b)),
                hr1: pooled(|c| (c.hr1.mean_a, c.hr1.mean_b)),
                mean_steps_a: runs.iter().map(|run| run[s].mean_steps_a).sum::<f64>() / n,
                mean_steps_b: runs.iter().map(|run| run[s].mean_steps_b).sum::<f64>() / n,
            }
        })
        .collect())
}

/// P(|T| ≥ |t|) for Student's t with `df ≥ 1` degrees of freedom; NaN for
/// NaN or `df = 0`.
///
/// Abramowitz & Stegun 26.7.3–26.7.4, exact for whole `df`: with
/// θ = atan(|t|/√df), P(|T| < |t|) is
/// `sin θ · Σ_{j<df/2} c_j cos^{2j} θ` (c_0 = 1, c_j = c_{j−1}(2j−1)/(2j))
/// for even df, and `(2/π)(θ + sin θ · Σ_{j<(df−1)/2} d_j cos^{2j+1} θ)`
/// (d_0 = 1, d_j = d_{j−1}(2j)/(2j+1)) for odd df.
pub(crate) fn student_t_two_sided_p(t: f64, df: u32) -> f64 {
    if t.is_nan() || df == 0 {
        return f64::NAN;
    }
    let theta = (t.abs() / f64::from(df).sqrt()).atan();
    let (sin, cos) = theta.sin_cos();
    let cos2 = cos * cos;
    let inside = if df % 2 == 0 {
        let mut term = 1.0;
        let mut sum = 1.0;
        for j in 1..df / 2 {
            term *= cos2 * f64::from(2 * j - 1) / f64::from(2 * j);
            sum += term;
        }
        sin * sum
    } else {
        let mut term = cos;
        let mut sum = if df > 1 { cos } else { 0.0 };
        for j in 1..(df - 1) / 2 {
            term *= cos2 * f64::from(2 * j) / f64::from(2 * j + 1);
            sum += term;
        }
        std::f64::consts::FRAC_2_PI * (theta + sin * sum)
    };
    (1.0 - inside).clamp(0.0, 1.0)
}

/// The 97.5% quantile of Student's t with `df ≥ 1` degrees of freedom (the
/// half-width factor of a two-sided 95% interval), by bisection on
/// [`student_t_two_sided_p`].
pub(crate) fn student_t_975(df: u32) -> f64 {
    // p(t) falls from 1 at t = 0; at df = 1 it is 0.05 at t = 12.7, and below
    // that for every larger df
    let (mut low, mut high) = (0.0f64, 16.0f64);
    for _ in 0..128 {
        let mid = 0.5 * (low + high);
        if student_t_two_sided_p(mid, df) > 0.05 {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_published_tables() {
        // two-sided 5% critical values of Student's t
        for (df, t) in [
            (1, 12.706_204_736),
            (2, 4.302_652_730),
            (3, 3.182_446_305),
            (4, 2.776_445_105),
            (5, 2.570_581_836),
            (10, 2.228_138_852),
            (30, 2.042_272_456),
        ] {
            assert!(
                (student_t_975(df) - t).abs() < 1e-8,
                "df {df}: {} against {t}",
                student_t_975(df)
            );
            assert!((student_t_two_sided_p(t, df) - 0.05).abs() < 1e-10);
        }
    }

    #[test]
    fn closed_forms_at_one_and_two_degrees() {
        for t in [0.0, 0.3, 1.0, 2.5, 10.0, -4.0] {
            // Cauchy: P(|T| ≥ t) = 1 − (2/π) atan|t|
            let cauchy = 1.0 - std::f64::consts::FRAC_2_PI * f64::atan(f64::abs(t));
            assert!((student_t_two_sided_p(t, 1) - cauchy).abs() < 1e-15);
            // df 2: P(|T| ≥ t) = 1 − |t|/√(2 + t²)
            let two = 1.0 - t.abs() / (2.0 + t * t).sqrt();
            assert!((student_t_two_sided_p(t, 2) - two).abs() < 1e-15);
        }
    }

    #[test]
    fn large_degrees_approach_the_normal() {
        assert!((student_t_975(2000) - 1.959_963_985).abs() < 1.5e-3);
        assert_eq!(student_t_two_sided_p(0.0, 7), 1.0);
        assert!(student_t_two_sided_p(f64::INFINITY, 7) == 0.0);
        assert!(student_t_two_sided_p(f64::NAN, 7).is_nan());
        assert!(student_t_two_sided_p(1.0, 0).is_nan());
    }

    #[test]
    fn one_run_and_constant_differences() {
        let one = across_runs(&[(0.04, 0.05)]).unwrap();
        assert_eq!((one.runs, one.degrees_of_freedom), (1, 0));
        assert!(one.std_error.is_nan() && one.p_value.is_nan() && one.ci95.0.is_nan());
        let same = across_runs(&[(0.25, 0.5), (0.5, 0.75)]).unwrap();
        assert_eq!((same.t, same.p_value), (f64::INFINITY, 0.0));
        let level = across_runs(&[(0.25, 0.25), (0.5, 0.5)]).unwrap();
        assert_eq!(
            (level.t, level.p_value, level.b_better, level.a_better),
            (0.0, 1.0, 0, 0)
        );
        assert!(across_runs(&[]).is_none());
    }
}
