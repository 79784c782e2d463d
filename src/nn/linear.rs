//! Linear layer: `out = inp · w + b` over a batch of rows.

use super::tensor::Tensor;
use crate::kernels::{Kernels, Trans};

/// Parameters of a linear map from `d_in` to `d_out` features.
///
/// `w` is stored `(d_in, d_out)` row-major (the transpose of PyTorch's
/// `nn.Linear.weight`), so the forward is one plain `gemm`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<T> {
    /// (d_in, d_out)
    pub w: Tensor<T>,
    /// (d_out)
    pub b: Tensor<T>,
}

impl<T: Kernels> Linear<T> {
    /// All-zero parameters (use the model's initialiser for training).
    pub fn zeros(d_in: usize, d_out: usize) -> Self {
        Linear {
            w: Tensor::zeros(&[d_in, d_out]),
            b: Tensor::zeros(&[d_out]),
        }
    }

    /// Input width.
    pub fn d_in(&self) -> usize {
        self.w.shape[0]
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.w.shape[1]
    }

    /// out (rows, d_out) = inp (rows, d_in) · w + b. `out` is overwritten.
    pub fn forward(&self, out: &mut [T], inp: &[T]) {
        let (d_in, d_out) = (self.d_in(), self.d_out());
        let rows = inp.len() / d_in;
        assert_eq!(
            inp.len(),
            rows * d_in,
            "linear: input is not a whole number of rows"
        );
        assert_eq!(out.len(), rows * d_out, "linear: output shape");
        for row in out.chunks_exact_mut(d_out) {
            row.copy_from_slice(&self.b.data);
        }
        T::gemm(
            rows,
            d_out,
            d_in,
            T::ONE,
            inp,
            Trans::N,
            &self.w.data,
            Trans::N,
            T::ONE,
            out,
        );
    }

    /// Backward of [`forward`](Self::forward), accumulating:
    /// dinp += dout · wᵀ (skipped when `dinp` is `None`), dw += inpᵀ · dout,
    /// db += Σ_rows dout.
    pub fn backward(&self, grad: &mut Linear<T>, dinp: Option<&mut [T]>, dout: &[T], inp: &[T]) {
        let (d_in, d_out) = (self.d_in(), self.d_out());
        let rows = inp.len() / d_in;
        assert_eq!(dout.len(), rows * d_out, "linear backward: dout shape");
        if let Some(dinp) = dinp {
            assert_eq!(dinp.len(), rows * d_in, "linear backward: dinp shape");
            // forward: out = inp · w  ⇒  dinp += dout · wᵀ
            T::gemm(
                rows,
                d_in,
                d_out,
                T::ONE,
                dout,
                Trans::N,
                &self.w.data,
                Trans::T,
                T::ONE,
                dinp,
            );
        }
        // ⇒ dw += inpᵀ · dout
        T::gemm(
            d_in,
            d_out,
            rows,
            T::ONE,
            inp,
            Trans::T,
            dout,
            Trans::N,
            T::ONE,
            &mut grad.w.data,
        );
        // forward: out += b (every row)  ⇒  db += Σ_rows dout
        for row in dout.chunks_exact(d_out) {
            T::axpy(&mut grad.b.data, T::ONE, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Linear<f64> {
        // w = [[1, 2, 3], [4, 5, 6]] (d_in 2, d_out 3), b = [0.5, -1, 2]
        Linear {
            w: Tensor {
                shape: vec![2, 3],
                data: vec![1., 2., 3., 4., 5., 6.],
            },
            b: Tensor {
                shape: vec![3],
                data: vec![0.5, -1., 2.],
            },
        }
    }

    #[test]
    fn closed_form_forward_and_backward() {
        let lin = tiny();
        let inp = [1.0, -1.0, 2.0, 0.5];
        let mut out = [f64::NAN; 6];
        lin.forward(&mut out, &inp);
        assert_eq!(
            out,
            [
                1. - 4. + 0.5,
                2. - 5. - 1.,
                3. - 6. + 2.,
                2. + 2. + 0.5,
                4. + 2.5 - 1.,
                6. + 3. + 2.
            ]
        );

        let dout = [1.0, 0.0, -1.0, 2.0, 1.0, 0.0];
        let mut grad = Linear::zeros(2, 3);
        let mut dinp = [0.0; 4];
        lin.backward(&mut grad, Some(&mut dinp), &dout, &inp);
        // dinp = dout · wᵀ
        assert_eq!(dinp, [1. - 3., 4. - 6., 2. + 2., 8. + 5.]);
        // dw = inpᵀ · dout
        assert_eq!(grad.w.data, [1. + 4., 0. + 2., -1., -1. + 1., 0. + 0.5, 1.]);
        assert_eq!(grad.b.data, [3., 1., -1.]);
    }

    #[test]
    fn backward_twice_doubles() {
        let lin = tiny();
        let inp = [0.3, -0.7, 1.1, 0.2];
        let dout = [0.5, -0.25, 1.0, -1.5, 0.75, 0.1];
        let mut once = Linear::zeros(2, 3);
        let mut d1 = [0.0; 4];
        lin.backward(&mut once, Some(&mut d1), &dout, &inp);
        let mut twice = Linear::zeros(2, 3);
        let mut d2 = [0.0; 4];
        lin.backward(&mut twice, Some(&mut d2), &dout, &inp);
        lin.backward(&mut twice, Some(&mut d2), &dout, &inp);
        for (a, b) in d1.iter().zip(&d2) {
            assert_eq!(2.0 * a, *b);
        }
        for (a, b) in once.w.data.iter().zip(&twice.w.data) {
            assert_eq!(2.0 * a, *b);
        }
    }
}
