//! LayerNorm over the last dimension: `out = (inp − mean)·rstd·γ + β`.

use super::tensor::{fit, Tensor};
use crate::kernels::Kernels;

/// Parameters of a LayerNorm of width d.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm<T> {
    /// (d), initialised to 1.
    pub gamma: Tensor<T>,
    /// (d), initialised to 0.
    pub beta: Tensor<T>,
}

/// What the forward saves: its output and per-row statistics (the input is
/// kept by the caller, who owns it anyway).
#[derive(Clone, Debug, Default)]
pub struct LayerNormCache<T> {
    /// (rows, d)
    pub out: Vec<T>,
    /// (rows)
    pub mean: Vec<T>,
    /// (rows) 1/√(var + eps), biased variance.
    pub rstd: Vec<T>,
}

impl<T: Kernels> LayerNorm<T> {
    /// γ = 1, β = 0.
    pub fn identity(d: usize) -> Self {
        LayerNorm {
            gamma: Tensor::filled(&[d], T::ONE),
            beta: Tensor::zeros(&[d]),
        }
    }

    /// All-zero parameters (the shape of a gradient buffer).
    pub fn zeros(d: usize) -> Self {
        LayerNorm {
            gamma: Tensor::zeros(&[d]),
            beta: Tensor::zeros(&[d]),
        }
    }

    /// Width d.
    pub fn width(&self) -> usize {
        self.gamma.len()
    }

    /// cache.out (rows, d) = LN(inp (rows, d)).
    pub fn forward(&self, cache: &mut LayerNormCache<T>, inp: &[T], eps: T) {
        let d = self.width();
        let rows = inp.len() / d;
        assert_eq!(
            inp.len(),
            rows * d,
            "layernorm: input is not a whole number of rows"
        );
        // the kernel writes every output, mean and rstd
        fit(&mut cache.out, rows * d);
        fit(&mut cache.mean, rows);
        fit(&mut cache.rstd, rows);
        T::layernorm_forward(
            &mut cache.out,
            &mut cache.mean,
            &mut cache.rstd,
            inp,
            &self.gamma.data,
            &self.beta.data,
            d,
            eps,
        );
    }

    /// Accumulates dinp (rows, d), dγ and dβ from dout (rows, d).
    pub fn backward(
        &self,
        grad: &mut LayerNorm<T>,
        dinp: &mut [T],
        dout: &[T],
        inp: &[T],
        cache: &LayerNormCache<T>,
    ) {
        let d = self.width();
        T::layernorm_backward(
            dinp,
            &mut grad.gamma.data,
            &mut grad.beta.data,
            dout,
            inp,
            &self.gamma.data,
            &cache.mean,
            &cache.rstd,
            d,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_two_features() {
        // For d = 2 and inp = (a, b): mean = (a+b)/2, var = ((a−b)/2)², so
        // x̂ = (±1)·|a−b|/√((a−b)² + 4·eps) ≈ (−1, +1) for a < b; the output
        // is β ± γ, and dinp is ~0 because x̂ does not depend on the scale.
        let ln: LayerNorm<f64> = LayerNorm {
            gamma: Tensor {
                shape: vec![2],
                data: vec![2.0, 3.0],
            },
            beta: Tensor {
                shape: vec![2],
                data: vec![0.5, -0.5],
            },
        };
        let inp = [1.0f64, 3.0];
        let mut cache = LayerNormCache::default();
        ln.forward(&mut cache, &inp, 0.0);
        assert!((cache.mean[0] - 2.0).abs() < 1e-15);
        assert!((cache.rstd[0] - 1.0).abs() < 1e-15);
        assert!((cache.out[0] - (0.5 - 2.0)).abs() < 1e-15);
        assert!((cache.out[1] - (-0.5 + 3.0)).abs() < 1e-15);

        let mut grad = LayerNorm::zeros(2);
        let mut dinp = [0.0; 2];
        ln.backward(&mut grad, &mut dinp, &[1.0, 1.0], &inp, &cache);
        // dβ = dout; dγ = dout ⊙ x̂ = (−1, 1).
        assert_eq!(grad.beta.data, [1.0, 1.0]);
        assert!(
            (grad.gamma.data[0] + 1.0).abs() < 1e-15 && (grad.gamma.data[1] - 1.0).abs() < 1e-15
        );
        // dx̂ = γ ⊙ dout = (2, 3); dinp = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂ ⊙ x̂))
        //      = (2 − 2.5 − (−1)(0.5), 3 − 2.5 − (1)(0.5)) = (0, 0).
        assert!(dinp[0].abs() < 1e-15 && dinp[1].abs() < 1e-15);
    }
}
