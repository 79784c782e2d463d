//! STUB: to be written.


#[allow(unused_variables)]
pub fn score(out: &mut [f32], queries: &[f32], items: &[f32], d: usize, alpha: f32) {
    todo!()
}

