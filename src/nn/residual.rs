//! Residual connection: `out = a + b`; the gradient flows unchanged into both.

use crate::kernels::Kernels;

/// out = a + b.
pub fn residual_forward<T: Kernels>(out: &mut [T], a: &[T], b: &[T]) {
    <T as Kernels>::add(out, a, b);
}

/// da += dout, db += dout.
pub fn residual_backward<T: Kernels>(da: &mut [T], db: &mut [T], dout: &[T]) {
    T::axpy(da, T::ONE, dout);
    T::axpy(db, T::ONE, dout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form() {
        let mut out = [0.0; 2];
        residual_forward(&mut out, &[1.0, 2.0], &[0.5, -4.0]);
        assert_eq!(out, [1.5, -2.0]);
        let (mut da, mut db) = ([1.0, 1.0], [0.0, 0.0]);
        residual_backward(&mut da, &mut db, &[2.0, 3.0]);
        assert_eq!((da, db), ([3.0, 4.0], [2.0, 3.0]));
    }
}
