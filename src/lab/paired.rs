//! Paired statistics of two models scored on the same samples: the mean
//! difference B − A of a per-sample metric, its standard error over
//! samples, a 95% interval and a two-sided p-value, all by the normal
//! approximation (sound for the thousands of samples of a recommender's
//! validation or test split).
//!
//! **What the interval covers**: which samples happen to be in the split,
//! with both models fixed. It does not cover training noise (another seed
//! gives another model); train several seeds for that.
//!
//! ```
//! use dtrec::lab::paired_metric;
//!
//! let m = paired_metric(&[0.0, 1.0, 1.0, 0.0], &[1.0, 1.0, 0.0, 2.0]);
//! assert_eq!(m.mean_diff, 0.5);
//! assert_eq!((m.b_better, m.a_better, m.ties), (2, 1, 1));
//! assert!(m.ci95.0 < 0.5 && 0.5 < m.ci95.1);
//! ```

use dtrec_kernels::Real;

/// The 97.5% quantile of the standard normal distribution (a two-sided 95% interval).
const Z_975: f64 = 1.959_963_984_540_054;

/// One metric's paired comparison on one split. Differences are B − A.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedMetric {
    /// Mean of the metric for model A.
    pub mean_a: f64,
    /// Mean of the metric for model B.
    pub mean_b: f64,
    /// Mean of the per-sample difference B − A (equals `mean_b − mean_a` up
    /// to rounding).
    pub mean_diff: f64,
    /// Standard error of `mean_diff`: the sample standard deviation of the
    /// differences over √n. NaN with fewer than two samples.
    pub std_error: f64,
    /// 95% interval of the mean difference, `mean_diff ± 1.96·std_error`.
    pub ci95: (f64, f64),
    /// `mean_diff / std_error`; 0 when every difference is 0, ±∞ when every
    /// difference is the same non-zero value.
    pub z: f64,
    /// Two-sided p-value of "no difference", from the normal approximation.
    pub p_value: f64,
    /// Samples on which B scores higher than A.
    pub b_better: u64,
    /// Samples on which A scores higher than B.
    pub a_better: u64,
    /// Samples on which both score the same.
    pub ties: u64,
}

/// Accumulates one metric over pairs in one pass (Welford's update for the
/// variance of the differences: no catastrophic cancellation, deterministic
/// in input order).
#[derive(Clone, Debug, Default)]
pub struct PairedAccumulator {
    samples: u64,
    sum_a: f64,
    sum_b: f64,
    mean_diff: f64,
    sum_sq_dev: f64,
    b_better: u64,
    a_better: u64,
}

impl PairedAccumulator {
    /// Adds one sample's metric under A and under B.
    pub fn push(&mut self, a: f64, b: f64) {
        self.samples += 1;
        self.sum_a += a;
        self.sum_b += b;
        let diff = b - a;
        let delta = diff - self.mean_diff;
        self.mean_diff += delta / self.samples as f64;
        self.sum_sq_dev += delta * (diff - self.mean_diff);
        if b > a {
            self.b_better += 1;
        } else if a > b {
            self.a_better += 1;
        }
    }

    /// Number of pairs pushed.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The comparison of everything pushed; `None` before the first pair.
    pub fn finish(&self) -> Option<PairedMetric> {
        if self.samples == 0 {
            return None;
        }
        let n = self.samples as f64;
        let std_error = if self.samples < 2 {
            f64::NAN
        } else {
            (self.sum_sq_dev / (n - 1.0) / n).sqrt()
        };
        let z = if std_error > 0.0 {
            self.mean_diff / std_error
        } else if std_error == 0.0 && self.mean_diff == 0.0 {
            0.0
        } else if std_error == 0.0 {
            self.mean_diff.signum() * f64::INFINITY
        } else {
            f64::NAN
        };
        Some(PairedMetric {
            mean_a: self.sum_a / n,
            mean_b: self.sum_b / n,
            mean_diff: self.mean_diff,
            std_error,
            ci95: (
                self.mean_diff - Z_975 * std_error,
                self.mean_diff + Z_975 * std_error,
            ),
            z,
            p_value: two_sided_p(z),
            b_better: self.b_better,
            a_better: self.a_better,
            ties: self.samples - self.b_better - self.a_better,
        })
    }
}

/// P(|Z| ≥ |z|) for a standard normal Z: erfc(|z|/√2). NaN stays NaN.
fn two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    (1.0 - Real::erf(z.abs() / std::f64::consts::SQRT_2)).clamp(0.0, 1.0)
}

/// The paired comparison of one metric over two equally long slices.
///
/// # Panics
/// If the slices differ in length or are empty.
pub fn paired_metric(a: &[f64], b: &[f64]) -> PairedMetric {
    assert_eq!(a.len(), b.len(), "paired slices must be equally long");
    let mut acc = PairedAccumulator::default();
    for (&x, &y) in a.iter().zip(b) {
        acc.push(x, y);
    }
    acc.finish().expect("at least one pair")
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_metric_by_hand() {
        // differences 1, 0, −1, 2: mean 0.5, sample variance 5/3
        let m = paired_metric(&[0.0, 1.0, 1.0, 0.0], &[1.0, 1.0, 0.0, 2.0]);
        assert_eq!((m.mean_a, m.mean_b, m.mean_diff), (0.5, 1.0, 0.5));
        let se = (5.0f64 / 3.0 / 4.0).sqrt();
        assert!((m.std_error - se).abs() < 1e-15);
        assert!((m.z - 0.5 / se).abs() < 1e-12);
        assert!((m.ci95.0 - (0.5 - Z_975 * se)).abs() < 1e-15);
        assert_eq!((m.b_better, m.a_better, m.ties), (2, 1, 1));
        // z = √0.6: two-sided p = erfc(z/√2) = 0.4385780261 (Python's math.erfc)
        assert!(
            (m.p_value - 0.438_578_026_081).abs() < 1e-9,
            "{}",
            m.p_value
        );
    }

    #[test]
    fn degenerate_spreads() {
        let same = paired_metric(&[0.3, 0.1], &[0.3, 0.1]);
        assert_eq!((same.z, same.p_value, same.std_error), (0.0, 1.0, 0.0));
        let shifted = paired_metric(&[0.25, 0.5], &[0.5, 0.75]);
        assert_eq!((shifted.z, shifted.p_value), (f64::INFINITY, 0.0));
        let one = paired_metric(&[0.0], &[1.0]);
        assert!(one.std_error.is_nan() && one.z.is_nan() && one.p_value.is_nan());
        assert_eq!(one.mean_diff, 1.0);
    }

    #[test]
    fn two_sided_p_at_known_quantiles() {
        assert!((two_sided_p(Z_975) - 0.05).abs() < 1e-12);
        assert!((two_sided_p(-2.575_829_303_548_9) - 0.01).abs() < 1e-12);
        assert_eq!(two_sided_p(0.0), 1.0);
    }
}
