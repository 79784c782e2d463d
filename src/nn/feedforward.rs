//! Position-wise feed-forward: `out = GELU(inp · w1 + b1) · w2 + b2`, with the
//! exact (erf) GELU.

use super::linear::Linear;
use super::tensor::{fit, reset};
use crate::kernels::Kernels;

/// Parameters: `ff1` maps d → inner, `ff2` maps inner → d.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedForward<T> {
    /// d → inner, followed by GELU.
    pub ff1: Linear<T>,
    /// inner → d.
    pub ff2: Linear<T>,
}

/// What the forward saves.
#[derive(Clone, Debug, Default)]
pub struct FeedForwardCache<T> {
    /// (rows, inner) pre-activation inp · w1 + b1.
    pub pre: Vec<T>,
    /// (rows, inner) GELU(pre).
    pub act: Vec<T>,
    /// (rows, d) the output.
    pub out: Vec<T>,
}

/// Scratch for the backward, reused between calls.
#[derive(Clone, Debug, Default)]
pub struct FeedForwardScratch<T> {
    /// (rows, inner)
    dact: Vec<T>,
    /// (rows, inner)
    dpre: Vec<T>,
}

impl<T: Kernels> FeedForward<T> {
    /// All-zero parameters.
    pub fn zeros(d: usize, inner: usize) -> Self {
        FeedForward {
            ff1: Linear::zeros(d, inner),
            ff2: Linear::zeros(inner, d),
        }
    }

    /// cache.out (rows, d) = FFN(inp (rows, d)).
    pub fn forward(&self, cache: &mut FeedForwardCache<T>, inp: &[T]) {
        let (d, inner) = (self.ff1.d_in(), self.ff1.d_out());
        let rows = inp.len() / d;
        // all three are overwritten below
        fit(&mut cache.pre, rows * inner);
        fit(&mut cache.act, rows * inner);
        fit(&mut cache.out, rows * d);
        self.ff1.forward(&mut cache.pre, inp);
        T::gelu_forward(&mut cache.act, &cache.pre);
        self.ff2.forward(&mut cache.out, &cache.act);
    }

    /// Accumulates dinp (rows, d) and the parameter gradients from dout (rows, d).
    pub fn backward(
        &self,
        grad: &mut FeedForward<T>,
        dinp: &mut [T],
        dout: &[T],
        inp: &[T],
        cache: &FeedForwardCache<T>,
        scratch: &mut FeedForwardScratch<T>,
    ) {
        let n = cache.pre.len();
        reset(&mut scratch.dact, n);
        reset(&mut scratch.dpre, n);
        // out = act · w2 + b2
        self.ff2
            .backward(&mut grad.ff2, Some(&mut scratch.dact), dout, &cache.act);
        // act = GELU(pre)
        T::gelu_backward(&mut scratch.dpre, &scratch.dact, &cache.pre);
        // pre = inp · w1 + b1
        self.ff1
            .backward(&mut grad.ff1, Some(dinp), &scratch.dpre, inp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::tensor::Tensor;

    #[test]
    fn closed_form_one_feature() {
        // d = inner = 1, w1 = 2, b1 = 0, w2 = 3, b2 = 1: out = 3·GELU(2x) + 1.
        let ffn = FeedForward {
            ff1: Linear {
                w: Tensor {
                    shape: vec![1, 1],
                    data: vec![2.0],
                },
                b: Tensor {
                    shape: vec![1],
                    data: vec![0.0],
                },
            },
            ff2: Linear {
                w: Tensor {
                    shape: vec![1, 1],
                    data: vec![3.0],
                },
                b: Tensor {
                    shape: vec![1],
                    data: vec![1.0],
                },
            },
        };
        let x: f64 = 0.5;
        let mut cache = FeedForwardCache::default();
        ffn.forward(&mut cache, &[x]);
        // GELU(1) = Φ(1) = 0.8413447460685429.
        let phi1 = 0.841_344_746_068_542_9;
        assert!((cache.out[0] - (3.0 * phi1 + 1.0)).abs() < 1e-12);

        let mut grad = FeedForward::zeros(1, 1);
        let mut dinp = [0.0];
        ffn.backward(
            &mut grad,
            &mut dinp,
            &[1.0],
            &[x],
            &cache,
            &mut FeedForwardScratch::default(),
        );
        // d out / dx = 3 · GELU'(1) · 2, GELU'(z) = Φ(z) + z·φ(z), φ(1) = e^{−1/2}/√(2π).
        let pdf1 = (-0.5f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        assert!((dinp[0] - 6.0 * (phi1 + pdf1)).abs() < 1e-12);
        assert!((grad.ff2.w.data[0] - phi1).abs() < 1e-12);
        assert_eq!(grad.ff2.b.data[0], 1.0);
        assert!((grad.ff1.w.data[0] - 3.0 * (phi1 + pdf1) * x).abs() < 1e-12);
    }
}
