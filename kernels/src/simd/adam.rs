//! One Adam/AdamW step for `f32` on `wide` lanes.

use super::vector::{load, store, Lanes, LANES};
use crate::ops::AdamStep;

/// The step's scalars, splatted once.
struct StepLanes {
    lr: Lanes,
    beta1: Lanes,
    one_minus_beta1: Lanes,
    beta2: Lanes,
    one_minus_beta2: Lanes,
    eps: Lanes,
    weight_decay: Lanes,
    /// 1 − lr·wd for AdamW, 1 for Adam.
    keep: Lanes,
    inv_bc1: Lanes,
    inv_bc2: Lanes,
    decoupled: bool,
}

impl StepLanes {
    fn new(step: &AdamStep<f32>) -> Self {
        let keep = if step.decoupled {
            1.0 - step.lr * step.weight_decay
        } else {
            1.0
        };
        StepLanes {
            lr: Lanes::splat(step.lr),
            beta1: Lanes::splat(step.beta1),
            one_minus_beta1: Lanes::splat(1.0 - step.beta1),
            beta2: Lanes::splat(step.beta2),
            one_minus_beta2: Lanes::splat(1.0 - step.beta2),
            eps: Lanes::splat(step.eps),
            weight_decay: Lanes::splat(step.weight_decay),
            keep: Lanes::splat(keep),
            inv_bc1: Lanes::splat(1.0 / step.bias_correction1),
            inv_bc2: Lanes::splat(1.0 / step.bias_correction2),
            decoupled: step.decoupled,
        }
    }

    /// Updates (param, m, v) given grad; returns the new (param, m, v).
    /// The decay is folded as param·(1 − lr·wd) (one rounding) and the bias
    /// corrections as multiplications by their reciprocals: each differs
    /// from the twin's literal formula by about one ulp.
    #[inline(always)]
    fn apply(&self, param: Lanes, grad: Lanes, m: Lanes, v: Lanes) -> (Lanes, Lanes, Lanes) {
        let g = if self.decoupled {
            grad
        } else {
            self.weight_decay.mul_add(param, grad)
        };
        let param = param * self.keep;
        let m = self.beta1.mul_add(m, self.one_minus_beta1 * g);
        let v = self.beta2.mul_add(v, self.one_minus_beta2 * g * g);
        let m_hat = m * self.inv_bc1;
        let v_hat = v * self.inv_bc2;
        let param = param - self.lr * m_hat / (v_hat.sqrt() + self.eps);
        (param, m, v)
    }
}

/// One Adam (L2 penalty added to the gradient) or AdamW (decoupled decay)
/// step, element-wise: g = grad (+ wd·param for Adam); param −= lr·wd·param
/// (AdamW only); m = β₁m + (1−β₁)g; v = β₂v + (1−β₂)g²;
/// param −= lr · (m/bc₁) / (√(v/bc₂) + eps).
///
/// # Panics
/// If the four lengths differ.
pub fn adam_update(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: &AdamStep<f32>,
) {
    let n = param.len();
    assert!(
        grad.len() == n && m.len() == n && v.len() == n,
        "adam_update: length mismatch"
    );
    let s = StepLanes::new(step);
    let mut cp = param.chunks_exact_mut(LANES);
    let mut cg = grad.chunks_exact(LANES);
    let mut cm = m.chunks_exact_mut(LANES);
    let mut cv = v.chunks_exact_mut(LANES);
    for (((p, g), mc), vc) in (&mut cp).zip(&mut cg).zip(&mut cm).zip(&mut cv) {
        let (p_new, m_new, v_new) = s.apply(load(p), load(g), load(mc), load(vc));
        store(p, p_new);
        store(mc, m_new);
        store(vc, v_new);
    }
    let tail = cp.into_remainder().iter_mut().zip(cg.remainder());
    for ((p, &g), (mi, vi)) in tail.zip(cm.into_remainder().iter_mut().zip(cv.into_remainder())) {
        let (p_new, m_new, v_new) = s.apply(
            Lanes::splat(*p),
            Lanes::splat(g),
            Lanes::splat(*mi),
            Lanes::splat(*vi),
        );
        *p = p_new.as_array()[0];
        *mi = m_new.as_array()[0];
        *vi = v_new.as_array()[0];
    }
}
