//! Central finite differences in f64, to check hand-derived gradients.
//!
//! Error metric: an analytic value `a` passes against the numeric `n` when
//! `|a − n| ≤ atol + rtol·max(|a|, |n|)`. With step h, the central difference
//! has truncation error ≈ h²·|f'''|/6 and rounding error ≈ ε·|f|/h (ε = 2⁻⁵²):
//! for h = 1e-5 and |f|, |f'''| = O(1) both are ≈ 1e-11. The defaults
//! (rtol 1e-6, atol 1e-8) leave three orders of margin over that noise, yet a
//! wrong gradient (a missing term, a wrong sign, a wrong mask) is off by a
//! relative O(1) and fails. The relative term handles large gradients; the
//! absolute term keeps near-zero gradients (where relative error is noise)
//! from failing spuriously.

/// Tolerances and step of a finite-difference check.
#[derive(Clone, Copy, Debug)]
pub struct FdCheck {
    pub h: f64,
    pub rtol: f64,
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
            *slot(state, i) = x0 + self.h;
            let up = loss(state);
            *slot(state, i) = x0 - self.h;
            let down = loss(state);
            *slot(state, i) = x0;
            let numeric = (up - down) / (2.0 * self.h);
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
