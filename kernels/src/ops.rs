//! [`Kernels`]: one trait the model's layer code is written against, so the
//! same layer runs on `f32` (SIMD kernels) for training and serving and on
//! `f64` (the scalar reference twins) for finite-difference gradient checks.
//!
//! Conventions (all kernels): row-major slices with explicit dims; outputs
//! first, then inputs, then parameters, then dims; backward kernels take the
//! gradient of the output first and ACCUMULATE (`+=`) into input gradients.
//! Every function panics on inconsistent slice lengths (a caller bug, never a
//! data error): shapes are checked with `assert!` before any work.

use core::ops::Range;

use crate::real::Real;
use crate::{reference, simd};

/// Whether a matmul operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// op(X) = X.
    N,
    /// op(X) = Xᵀ (read through swapped strides, never copied).
    T,
}

/// Hyper-parameters of one Adam/AdamW step, with bias corrections
/// precomputed by the caller: `bias_correction1 = 1 − β₁ᵗ`,
/// `bias_correction2 = 1 − β₂ᵗ` for step t ≥ 1.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep<T> {
    /// Learning rate of this step.
    pub lr: T,
    /// Decay of the first-moment estimate, β₁.
    pub beta1: T,
    /// Decay of the second-moment estimate, β₂.
    pub beta2: T,
    /// Added to the root of the corrected second moment in the denominator.
    pub eps: T,
    /// L2 penalty (Adam, added to the gradient) or decoupled decay (AdamW).
    pub weight_decay: T,
    /// 1 − β₁ᵗ.
    pub bias_correction1: T,
    /// 1 − β₂ᵗ.
    pub bias_correction2: T,
    /// `true`: AdamW, `param -= lr·wd·param` before the Adam update.
    /// `false`: classic Adam, `grad += wd·param`.
    pub decoupled: bool,
}

/// The kernel set of one scalar type. See the module docs for conventions.
pub trait Kernels: Real {
    /// C (m×n) ← α·op(A)·op(B) + β·C. op(A) is m×k: A is stored m×k (row-major)
    /// for `Trans::N` and k×m for `Trans::T`; likewise op(B) is k×n.
    /// With β = 0, C is only written, never read (NaN in C is fine).
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        n: usize,
        k: usize,
        alpha: Self,
        a: &[Self],
        ta: Trans,
        b: &[Self],
        tb: Trans,
        beta: Self,
        c: &mut [Self],
    );

    /// out (q×n) = α · queries (q×d) · itemsᵀ (items is n×d). Tuned for q ≤ 8.
    fn score(out: &mut [Self], queries: &[Self], items: &[Self], d: usize, alpha: Self);

    /// Σ a_i b_i.
    fn dot(a: &[Self], b: &[Self]) -> Self;
    /// y += α·x.
    fn axpy(y: &mut [Self], alpha: Self, x: &[Self]);
    /// x *= α.
    fn scale(x: &mut [Self], alpha: Self);
    /// out = a + b.
    fn add(out: &mut [Self], a: &[Self], b: &[Self]);
    /// Σ x_i (0 for an empty slice).
    fn sum(x: &[Self]) -> Self;
    /// max x_i (−∞ for an empty slice).
    fn max(x: &[Self]) -> Self;

    /// One row: `out[valid] = softmax(inp[valid])`; out is 0 outside `valid`.
    /// An empty `valid` gives an all-zero row, never NaN.
    fn softmax_forward(out: &mut [Self], inp: &[Self], valid: Range<usize>);
    /// One row: `dinp[valid] += out ⊙ (dout − ⟨out, dout⟩)` over `valid`. O(n).
    fn softmax_backward(dinp: &mut [Self], dout: &[Self], out: &[Self], valid: Range<usize>);

    /// Rows of width d: out = (inp − mean)·rstd·γ + β, saving per-row mean and
    /// rstd = 1/√(var + eps) (biased variance). rows = inp.len() / d.
    #[allow(clippy::too_many_arguments)]
    fn layernorm_forward(
        out: &mut [Self],
        mean: &mut [Self],
        rstd: &mut [Self],
        inp: &[Self],
        gamma: &[Self],
        beta: &[Self],
        d: usize,
        eps: Self,
    );
    /// Accumulates dinp, dgamma, dbeta from dout, given the forward's saved
    /// mean and rstd.
    #[allow(clippy::too_many_arguments)]
    fn layernorm_backward(
        dinp: &mut [Self],
        dgamma: &mut [Self],
        dbeta: &mut [Self],
        dout: &[Self],
        inp: &[Self],
        gamma: &[Self],
        mean: &[Self],
        rstd: &[Self],
        d: usize,
    );

    /// out = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) element-wise.
    fn gelu_forward(out: &mut [Self], inp: &[Self]);
    /// dinp += dout · (Φ(x) + x·φ(x)).
    fn gelu_backward(dinp: &mut [Self], dout: &[Self], inp: &[Self]);

    /// Online log-sum-exp over a row seen in column blocks: folds `block` into
    /// `state = (running max m, Σ exp(x − m))`. Start from (−∞, 0).
    fn lse_accumulate(state: &mut (Self, Self), block: &[Self]);
    /// dlogits += scale · exp(logits − lse) for one column block (the softmax
    /// part of the cross-entropy gradient; the caller subtracts `scale` at the
    /// target column).
    fn xent_backward_block(dlogits: &mut [Self], logits: &[Self], lse: Self, scale: Self);
    /// Fused one-row cross-entropy: returns `−log softmax(logits)[target]` and,
    /// if `dlogits` is given, accumulates dloss·(softmax − onehot(target)).
    /// Walks the row in column blocks (two passes) so no temporaries scale
    /// with the row length.
    fn cross_entropy(
        dlogits: Option<&mut [Self]>,
        logits: &[Self],
        target: usize,
        dloss: Self,
    ) -> Self;

    /// One Adam/AdamW step over a parameter slice and its moment buffers.
    fn adam_update(
        param: &mut [Self],
        grad: &[Self],
        m: &mut [Self],
        v: &mut [Self],
        step: &AdamStep<Self>,
    );
}

macro_rules! forward_kernels {
    ($t:ty, $m:ident) => {
        impl Kernels for $t {
            fn gemm(
                m: usize,
                n: usize,
                k: usize,
                alpha: Self,
                a: &[Self],
                ta: Trans,
                b: &[Self],
                tb: Trans,
                beta: Self,
                c: &mut [Self],
            ) {
                $m::matmul::gemm(m, n, k, alpha, a, ta, b, tb, beta, c)
            }
            fn score(out: &mut [Self], queries: &[Self], items: &[Self], d: usize, alpha: Self) {
                $m::score::score(out, queries, items, d, alpha)
            }
            fn dot(a: &[Self], b: &[Self]) -> Self {
                $m::vector::dot(a, b)
            }
            fn axpy(y: &mut [Self], alpha: Self, x: &[Self]) {
                $m::vector::axpy(y, alpha, x)
            }
            fn scale(x: &mut [Self], alpha: Self) {
                $m::vector::scale(x, alpha)
            }
            fn add(out: &mut [Self], a: &[Self], b: &[Self]) {
                $m::vector::add(out, a, b)
            }
            fn sum(x: &[Self]) -> Self {
                $m::vector::sum(x)
            }
            fn max(x: &[Self]) -> Self {
                $m::vector::max(x)
            }
            fn softmax_forward(out: &mut [Self], inp: &[Self], valid: Range<usize>) {
                $m::softmax::softmax_forward(out, inp, valid)
            }
            fn softmax_backward(
                dinp: &mut [Self],
                dout: &[Self],
                out: &[Self],
                valid: Range<usize>,
            ) {
                $m::softmax::softmax_backward(dinp, dout, out, valid)
            }
            fn layernorm_forward(
                out: &mut [Self],
                mean: &mut [Self],
                rstd: &mut [Self],
                inp: &[Self],
                gamma: &[Self],
                beta: &[Self],
                d: usize,
                eps: Self,
            ) {
                $m::layernorm::layernorm_forward(out, mean, rstd, inp, gamma, beta, d, eps)
            }
            fn layernorm_backward(
                dinp: &mut [Self],
                dgamma: &mut [Self],
                dbeta: &mut [Self],
                dout: &[Self],
                inp: &[Self],
                gamma: &[Self],
                mean: &[Self],
                rstd: &[Self],
                d: usize,
            ) {
                $m::layernorm::layernorm_backward(
                    dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, d,
                )
            }
            fn gelu_forward(out: &mut [Self], inp: &[Self]) {
                $m::gelu::gelu_forward(out, inp)
            }
            fn gelu_backward(dinp: &mut [Self], dout: &[Self], inp: &[Self]) {
                $m::gelu::gelu_backward(dinp, dout, inp)
            }
            fn lse_accumulate(state: &mut (Self, Self), block: &[Self]) {
                $m::xent::lse_accumulate(state, block)
            }
            fn xent_backward_block(dlogits: &mut [Self], logits: &[Self], lse: Self, scale: Self) {
                $m::xent::xent_backward_block(dlogits, logits, lse, scale)
            }
            fn cross_entropy(
                dlogits: Option<&mut [Self]>,
                logits: &[Self],
                target: usize,
                dloss: Self,
            ) -> Self {
                $m::xent::cross_entropy(dlogits, logits, target, dloss)
            }
            fn adam_update(
                param: &mut [Self],
                grad: &[Self],
                m: &mut [Self],
                v: &mut [Self],
                step: &AdamStep<Self>,
            ) {
                $m::adam::adam_update(param, grad, m, v, step)
            }
        }
    };
}

forward_kernels!(f32, simd);
forward_kernels!(f64, reference);
