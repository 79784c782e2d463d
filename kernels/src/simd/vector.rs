//! Vector kernels for `f32` (temporarily the scalar twins; SIMD follows).

use crate::reference::vector as twin;

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    twin::dot(a, b)
}

pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    twin::axpy(y, alpha, x)
}

pub fn scale(x: &mut [f32], alpha: f32) {
    twin::scale(x, alpha)
}

pub fn add(out: &mut [f32], a: &[f32], b: &[f32]) {
    twin::add(out, a, b)
}

pub fn sum(x: &[f32]) -> f32 {
    twin::sum(x)
}

pub fn max(x: &[f32]) -> f32 {
    twin::max(x)
}
