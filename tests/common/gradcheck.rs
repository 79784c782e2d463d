//! Central finite differences in f64, to check hand-derived gradients.
//!
//! Estimate: Richardson extrapolation of two central differences,
//! `n = (4·D(h/2) − D(h)) / 3` with `D(h) = (f(x+h) − f(x−h)) / 2h`, which
//! cancels the h² truncation term and leaves O(h⁴). Plain central
//! differences were not enough: through a LayerNorm of width 2 (nearly a sign
//! function) a proptest case had a third derivative of about 1e5, so D(1e-5)
//! was off by 2e-6 while the analytic gradient was right: the error shrank
//! exactly as h² when h went from 1e-4 down to 3e-7.
//!
//! Error metric: an analytic value `a` passes against the numeric `n` when
//! `|a − n| ≤ atol + rtol·max(|a|, |n|)`, rtol = 1e-6, atol = 1e-8. With
//! h = 1e-5 the truncation error is O(h⁴) and the rounding error ≈ ε·|f|/h ≈
//! 2e-11 for |f| = O(1) (ε = 2⁻⁵²): orders of margin, yet a wrong gradient
//! (a missing term, a wrong sign, a wrong mask) is off by a relative O(1)
//! and fails. The relative term handles large gradients; the absolute term
//! keeps near-zero gradients (where relative error is noise) from failing
//! spuriously.
//!
//! Precondition: h must be small against the scale on which f varies. A
//! LayerNorm row with standard deviation σ varies on the scale σ, and its
//! (x − mean) loses digits to cancellation as σ → 0; a proptest case with
//! σ ≈ 1e-4 (width 2, inputs nearly tied) gave differences off by 6e-5
//! relative. Tests therefore draw LayerNorm inputs with σ well above h. The
//! whole-model tests cannot see their rows, so they leave out width 2, where
//! one chance near-tie of two inputs is enough: a case there had the loss
//! jump by 2e-13 at isolated points while the gradient was right to 5e-12 at
//! every h from 1e-3 to 1e-5; in another, central differences were off by
//! 3e-7 at h = 1e-4 (truncation) and by 7e-8 at h = 1e-5 (rounding flips),
//! against a tolerance of 1.5e-8.

/// Tolerances and step of a finite-difference check.
#[derive(Clone, Copy, Debug)]
pub struct FdCheck {
    /// Step of the central difference.
    pub h: f64,
    /// Tolerance relative to the larger of the two gradients.
    pub rtol: f64,
    /// Absolute tolerance, added to the relative one.
    pub atol: f64,
}

impl Default for FdCheck {
    fn default() -> Self {
        FdCheck {
            h: 1e-5,
            rtol: 1e-6,
            atol: 1e-8,
        }
    }
}

impl FdCheck {
    /// Checks `analytic[i]` against the central difference of `loss` in
    /// coordinate i, for every i in `indices`. `slot(state, i)` gives the
    /// coordinate to perturb; it is restored exactly afterwards. Returns the
    /// number of coordinates checked, or a message naming the first failure.
    pub fn check<S>(
        &self,
        what: &str,
        state: &mut S,
        indices: impl IntoIterator<Item = usize>,
        analytic: &[f64],
        slot: impl Fn(&mut S, usize) -> &mut f64,
        loss: impl Fn(&S) -> f64,
    ) -> Result<usize, String> {
        let mut checked = 0;
        for i in indices {
            let x0 = *slot(state, i);
            let central = |state: &mut S, h: f64| {
                *slot(state, i) = x0 + h;
                let up = loss(state);
                *slot(state, i) = x0 - h;
                let down = loss(state);
                *slot(state, i) = x0;
                (up - down) / (2.0 * h)
            };
            let wide = central(state, self.h);
            let narrow = central(state, self.h / 2.0);
            let numeric = (4.0 * narrow - wide) / 3.0;
            let a = analytic[i];
            // written so that a NaN on either side fails the check
            let within = (a - numeric).abs() <= self.atol + self.rtol * a.abs().max(numeric.abs());
            if !within {
                return Err(format!(
                    "{what}[{i}]: analytic {a:e} vs numeric {numeric:e} (diff {:e})",
                    (a - numeric).abs()
                ));
            }
            checked += 1;
        }
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_right_gradient_and_rejects_a_wrong_one() {
        // f(x) = x0² · sin(x1): ∇f = (2 x0 sin x1, x0² cos x1).
        let mut x = vec![1.3, 0.4];
        let f = |x: &Vec<f64>| x[0] * x[0] * x[1].sin();
        let good = [2.0 * 1.3 * 0.4f64.sin(), 1.69 * 0.4f64.cos()];
        assert_eq!(
            FdCheck::default().check("f", &mut x, 0..2, &good, |x, i| &mut x[i], f),
            Ok(2)
        );
        let bad = [good[0], good[1] * 1.001];
        assert!(FdCheck::default()
            .check("f", &mut x, 0..2, &bad, |x, i| &mut x[i], f)
            .is_err());
        assert_eq!(x, vec![1.3, 0.4], "coordinates are restored");
    }
}
