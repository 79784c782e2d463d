//! Row kernels: SIMD against scalar twins, plus closed-form cases.

use dtrec_kernels::reference;

#[test]
fn softmax_of_zero_and_ln3_is_quarter_three_quarters() {
    let mut out = [f64::NAN; 2];
    reference::softmax::softmax_forward(&mut out, &[0.0, 3f64.ln()], 0..2);
    assert!(
        (out[0] - 0.25).abs() < 1e-15 && (out[1] - 0.75).abs() < 1e-15,
        "{out:?}"
    );
}

#[test]
fn cross_entropy_of_uniform_row_is_ln_n() {
    let logits = [2.0f64; 5];
    let mut g = [0.0f64; 5];
    let loss = reference::xent::cross_entropy(Some(&mut g), &logits, 3, 1.0);
    assert!((loss - 5f64.ln()).abs() < 1e-15);
    assert!((g[3] + 0.8).abs() < 1e-15 && (g[0] - 0.2).abs() < 1e-15);
}
