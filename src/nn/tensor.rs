//! [`Tensor`]: a named parameter's shape and row-major data, and small buffer
//! helpers shared by the layers.

use crate::kernels::Real;

/// A dense row-major tensor: `data.len() == shape.iter().product()`.
///
/// Parameters and their gradients (and the optimizer's moments) are all
/// `Tensor`s of the same shape, so one visitor walks them together.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    /// Dimensions, outermost first, e.g. `[rows, cols]`.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<T>,
}

impl<T: Real> Tensor<T> {
    /// An all-zero tensor of the given shape.
    pub fn zeros(shape: &[usize]) -> Self {
        let n = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: vec![T::ZERO; n],
        }
    }

    /// A tensor of the given shape filled with `value`.
    pub fn filled(shape: &[usize], value: T) -> Self {
        let n = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            data: vec![value; n],
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same values converted to another scalar type (through `f64`).
    pub fn cast<U: Real>(&self) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| U::from_f64(x.to_f64())).collect(),
        }
    }

    /// Sets every element to zero, keeping the allocation.
    pub fn zero(&mut self) {
        self.data.fill(T::ZERO);
    }
}

/// Makes `buf` exactly `n` zeros long, reusing its allocation when it is big
/// enough (workspace buffers are reset once per forward, never reallocated in
/// the steady state).
pub(crate) fn reset<T: Real>(buf: &mut Vec<T>, n: usize) {
    buf.clear();
    buf.resize(n, T::ZERO);
}

/// Makes `buf` exactly `n` long WITHOUT clearing the elements it keeps: only
/// for outputs the caller then overwrites completely (saves the memset that
/// [`reset`] pays, ~3% of a training step).
pub(crate) fn fit<T: Real>(buf: &mut Vec<T>, n: usize) {
    buf.resize(n, T::ZERO);
}
