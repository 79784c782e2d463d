//! Scalar twin of one Adam/AdamW step.

use crate::ops::AdamStep;
use crate::real::Real;

/// One Adam (L2 penalty added to the gradient) or AdamW (decoupled decay)
/// step, element-wise:
/// g = grad (+ wd·param for Adam); param −= lr·wd·param (AdamW only);
/// m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
/// param −= lr · (m/bc₁) / (√(v/bc₂) + eps).
///
/// # Panics
/// If the four lengths differ.
pub fn adam_update<T: Real>(
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    step: &AdamStep<T>,
) {
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adam_update: length mismatch"
    );
    for i in 0..n {
        let mut g = grad[i];
        if step.decoupled {
            param[i] -= step.lr * step.weight_decay * param[i];
        } else {
            g += step.weight_decay * param[i];
        }
        m[i] = step.beta1 * m[i] + (T::ONE - step.beta1) * g;
        v[i] = step.beta2 * v[i] + (T::ONE - step.beta2) * g * g;
        let m_hat = m[i] / step.bias_correction1;
        let v_hat = v[i] / step.bias_correction2;
        param[i] -= step.lr * m_hat / (v_hat.sqrt() + step.eps);
    }
}
