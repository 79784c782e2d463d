//! The threshold calibration of Adaptive Reasoning Halting (method.md §3):
//! every threshold triple of a grid is evaluated on validation traces
//! (NDCG@10 and average steps of each sample halting where the rule says),
//! and the cheapest setting within a relative NDCG@10 tolerance of full
//! depth is chosen.

use std::fmt;

use dtrec_kernels::Real;

use super::indicators::Indicators;
use super::rules::ThresholdRule;

/// Cutoff of the calibration metric (NDCG@10).
pub const CALIBRATION_CUTOFF: u32 = 10;

/// The grid of a threshold sweep: every (θ_H, θ_D, θ_Δ) of the product,
/// in order θ_H outer, θ_Δ inner.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdGrid<T> {
    /// t_min of every rule in the sweep.
    pub t_min: usize,
    /// Candidate θ_H values.
    pub theta_h: Vec<T>,
    /// Candidate θ_D values.
    pub theta_d: Vec<T>,
    /// Candidate θ_Δ values.
    pub theta_delta: Vec<T>,
}

impl<T: Real> ThresholdGrid<T> {
    /// A grid fitted to observed indicators: on each axis, the empirical
    /// quantiles q = i/(levels − 1), i = 0 … levels − 1, of that indicator
    /// over `indicators` (NaN ignored; the quantile is the sorted value at
    /// index ⌊q·(n − 1)⌋), deduplicated, followed by +∞ (the axis imposes no
    /// condition). An axis with no finite observation is just [+∞].
    /// `levels` < 2 keeps only the minimum and +∞.
    pub fn from_quantiles(indicators: &[Indicators<T>], levels: usize, t_min: usize) -> Self {
        let axis = |get: fn(&Indicators<T>) -> T| -> Vec<T> {
            let mut v: Vec<T> = indicators.iter().map(get).filter(|x| !x.is_nan()).collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(core::cmp::Ordering::Equal));
            let mut out: Vec<T> = Vec::new();
            if !v.is_empty() {
                let levels = levels.max(1);
                for i in 0..levels {
                    let idx = if levels == 1 {
                        0
                    } else {
                        i * (v.len() - 1) / (levels - 1)
                    };
                    if out.last() != Some(&v[idx]) {
                        out.push(v[idx]);
                    }
                }
            }
            if out.last() != Some(&T::INFINITY) {
                out.push(T::INFINITY);
            }
            out
        };
        Self {
            t_min,
            theta_h: axis(|x| x.entropy),
            theta_d: axis(|x| x.js),
            theta_delta: axis(|x| x.delta),
        }
    }
}

/// One setting of the sweep and its validation outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint<T> {
    /// The thresholds.
    pub rule: ThresholdRule<T>,
    /// Mean NDCG@10 with each row predicting at its halting step.
    pub ndcg10: f64,
    /// Mean number of reasoning steps run.
    pub avg_steps: f64,
}

/// The result of [`calibrate_thresholds`].
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration<T> {
    /// Every grid setting, in grid order.
    pub curve: Vec<CurvePoint<T>>,
    /// NDCG@10 at fixed depth T_max.
    pub full_depth_ndcg10: f64,
    /// T_max (the average steps at fixed depth).
    pub t_max: usize,
    /// Relative tolerance used for the choice.
    pub tolerance: f64,
    /// Index into `curve` of the chosen setting: the fewest average steps
    /// among settings with NDCG@10 ≥ (1 − tolerance)·full depth; ties go to
    /// the higher NDCG@10, then to the earlier grid position. `None` if no
    /// setting qualifies (then run at fixed depth).
    pub chosen: Option<usize>,
}

impl<T: Real> Calibration<T> {
    /// The chosen rule, or [`ThresholdRule::never`] if none qualified.
    pub fn chosen_rule(&self) -> ThresholdRule<T> {
        self.chosen
            .map_or_else(ThresholdRule::never, |i| self.curve[i].rule)
    }

    /// Indices of the accuracy-vs-steps Pareto front (no other point has
    /// fewer-or-equal steps and strictly higher NDCG@10, or strictly fewer
    /// steps and equal-or-higher NDCG@10), sorted by average steps, one
    /// index (the first in grid order) per distinct outcome.
    pub fn pareto_front(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.curve.len()).collect();
        // fewest steps first, then best NDCG, then grid order (stable sort)
        order.sort_by(|&a, &b| {
            let (pa, pb) = (&self.curve[a], &self.curve[b]);
            pa.avg_steps
                .total_cmp(&pb.avg_steps)
                .then(pb.ndcg10.total_cmp(&pa.ndcg10))
        });
        let mut front = Vec::new();
        let mut best = f64::NEG_INFINITY;
        for i in order {
            if self.curve[i].ndcg10 > best {
                best = self.curve[i].ndcg10;
                front.push(i);
            }
        }
        front
    }
}

impl<T: Real + fmt::Display> fmt::Display for Calibration<T> {
    /// The Pareto front of the curve as a table, the chosen row marked `*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "halting calibration: full depth T_max = {} has NDCG@10 {:.4}; tolerance {:.2}%",
            self.t_max,
            self.full_depth_ndcg10,
            100.0 * self.tolerance
        )?;
        writeln!(
            f,
            "    {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
            "theta_H", "theta_D", "theta_Dlt", "NDCG@10", "avg steps", "rel. NDCG"
        )?;
        for i in self.pareto_front() {
            let p = &self.curve[i];
            let mark = if self.chosen == Some(i) { "*" } else { " " };
            let rel = if self.full_depth_ndcg10 > 0.0 {
                p.ndcg10 / self.full_depth_ndcg10
            } else {
                f64::NAN
            };
            writeln!(
                f,
                "  {mark} {:>10} {:>10} {:>10} {:>9.4} {:>9.3} {:>9.4}",
                p.rule.theta_h, p.rule.theta_d, p.rule.theta_delta, p.ndcg10, p.avg_steps, rel
            )?;
        }
        if self.chosen.is_none() {
            writeln!(f, "  no setting is within tolerance: run at fixed depth")?;
        }
        Ok(())
    }
}

/// Invalid calibration input.
#[derive(Clone, Debug, PartialEq)]
pub enum CalibrationError {
    /// No sample, or T_max = 0.
    Empty {
        /// Samples given.
        samples: usize,
        /// T_max given.
        t_max: usize,
    },
    /// `indicators` is not samples × T_max or `ranks` not samples × (T_max + 1).
    ShapeMismatch {
        /// Which matrix (`"indicators"` or `"ranks"`).
        field: &'static str,
        /// Its length.
        len: usize,
        /// The expected length.
        expected: usize,
    },
    /// A rank of 0 (ranks start at 1).
    ZeroRank {
        /// Sample of the bad rank.
        sample: usize,
        /// Step of the bad rank.
        step: usize,
    },
    /// An empty or NaN-holding grid axis (`field` names it).
    BadGrid {
        /// The axis.
        field: &'static str,
    },
    /// Tolerance not finite or outside [0, 1].
    BadTolerance(f64),
}

impl fmt::Display for CalibrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalibrationError::Empty { samples, t_max } => write!(
                f,
                "calibration needs samples and steps (got {samples} samples, T_max = {t_max})"
            ),
            CalibrationError::ShapeMismatch {
                field,
                len,
                expected,
            } => write!(
                f,
                "calibration: {field} has {len} entries, expected {expected}"
            ),
            CalibrationError::ZeroRank { sample, step } => {
                write!(
                    f,
                    "calibration: rank 0 at sample {sample}, step {step} (ranks start at 1)"
                )
            }
            CalibrationError::BadGrid { field } => {
                write!(f, "calibration: grid axis {field} is empty or holds NaN")
            }
            CalibrationError::BadTolerance(t) => {
                write!(f, "calibration: tolerance {t} is not in [0, 1]")
            }
        }
    }
}

impl std::error::Error for CalibrationError {}

/// NDCG@10 of one rank: 1/log2(rank + 1) if rank ≤ 10, else 0 (as in
/// `eval::metrics`).
pub fn ndcg_at_10(rank: u32) -> f64 {
    if (1..=CALIBRATION_CUTOFF).contains(&rank) {
        1.0 / (f64::from(rank) + 1.0).log2()
    } else {
        0.0
    }
}

/// The threshold sweep. `indicators` is (samples × T_max): entry
/// `s·T_max + t − 1` is sample s at step t; `ranks` is (samples × (T_max + 1)):
/// entry `s·(T_max + 1) + t` is the target's rank when predicting from h_t,
/// t = 0 … T_max. For every grid setting, each sample halts by
/// [`ThresholdRule::halting_step`] and scores NDCG@10 at that step's rank;
/// means are summed in f64 in sample order (deterministic).
pub fn calibrate_thresholds<T: Real>(
    indicators: &[Indicators<T>],
    ranks: &[u32],
    samples: usize,
    t_max: usize,
    grid: &ThresholdGrid<T>,
    tolerance: f64,
) -> Result<Calibration<T>, CalibrationError> {
    if samples == 0 || t_max == 0 {
        return Err(CalibrationError::Empty { samples, t_max });
    }
    let expected = samples.checked_mul(t_max);
    if expected != Some(indicators.len()) {
        return Err(CalibrationError::ShapeMismatch {
            field: "indicators",
            len: indicators.len(),
            expected: expected.unwrap_or(usize::MAX),
        });
    }
    let width = t_max + 1;
    let expected = samples.checked_mul(width);
    if expected != Some(ranks.len()) {
        return Err(CalibrationError::ShapeMismatch {
            field: "ranks",
            len: ranks.len(),
            expected: expected.unwrap_or(usize::MAX),
        });
    }
    if let Some(i) = ranks.iter().position(|&r| r == 0) {
        return Err(CalibrationError::ZeroRank {
            sample: i / width,
            step: i % width,
        });
    }
    for (field, axis) in [
        ("theta_h", &grid.theta_h),
        ("theta_d", &grid.theta_d),
        ("theta_delta", &grid.theta_delta),
    ] {
        if axis.is_empty() || axis.iter().any(|x| x.is_nan()) {
            return Err(CalibrationError::BadGrid { field });
        }
    }
    if !tolerance.is_finite() || !(0.0..=1.0).contains(&tolerance) {
        return Err(CalibrationError::BadTolerance(tolerance));
    }

    let evaluate = |rule: &ThresholdRule<T>| -> (f64, f64) {
        let mut ndcg = 0.0;
        let mut steps = 0.0;
        for s in 0..samples {
            let t = rule.halting_step(&indicators[s * t_max..(s + 1) * t_max]);
            ndcg += ndcg_at_10(ranks[s * width + t]);
            steps += t as f64;
        }
        (ndcg / samples as f64, steps / samples as f64)
    };
    let (full_depth_ndcg10, _) = evaluate(&ThresholdRule::never());

    let mut curve =
        Vec::with_capacity(grid.theta_h.len() * grid.theta_d.len() * grid.theta_delta.len());
    for &theta_h in &grid.theta_h {
        for &theta_d in &grid.theta_d {
            for &theta_delta in &grid.theta_delta {
                let rule = ThresholdRule {
                    t_min: grid.t_min,
                    theta_h,
                    theta_d,
                    theta_delta,
                };
                let (ndcg10, avg_steps) = evaluate(&rule);
                curve.push(CurvePoint {
                    rule,
                    ndcg10,
                    avg_steps,
                });
            }
        }
    }

    let floor = (1.0 - tolerance) * full_depth_ndcg10;
    let mut chosen: Option<usize> = None;
    for (i, p) in curve.iter().enumerate() {
        if p.ndcg10 < floor {
            continue;
        }
        let better = match chosen {
            None => true,
            Some(c) => {
                let q = &curve[c];
                p.avg_steps < q.avg_steps || (p.avg_steps == q.avg_steps && p.ndcg10 > q.ndcg10)
            }
        };
        if better {
            chosen = Some(i);
        }
    }
    Ok(Calibration {
        curve,
        full_depth_ndcg10,
        t_max,
        tolerance,
        chosen,
    })
}
