//! STUB: to be written.


#[allow(unused_variables)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    todo!()
}

#[allow(unused_variables)]
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    todo!()
}

#[allow(unused_variables)]
pub fn scale(x: &mut [f32], alpha: f32) {
    todo!()
}

#[allow(unused_variables)]
pub fn add(out: &mut [f32], a: &[f32], b: &[f32]) {
    todo!()
}

#[allow(unused_variables)]
pub fn sum(x: &[f32]) -> f32 {
    todo!()
}

#[allow(unused_variables)]
pub fn max(x: &[f32]) -> f32 {
    todo!()
}

