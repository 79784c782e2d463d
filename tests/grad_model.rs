//! Whole-model gradient check (f64): the mean full-softmax cross-entropy of
//! a random batch, with dropout ON (masks fixed by the step seed), against
//! central finite differences for EVERY element of EVERY parameter tensor,
//! over small random shapes (B ≤ 3, L ≤ 5, d ≤ 8 but not 2, H ∈ {1, 2}, N ≤ 11,
//! 1–2 layers). Metric: see `common::gradcheck`.

mod common;
use common::{fd_checkable_width, random_batch, random_params};

use common::gradcheck::FdCheck;
use dtrec::model::{Model, ModelConfig};
use dtrec::TrainBatch;
use proptest::prelude::*;

/// Checks every element of every tensor; returns the number checked.
fn check_model(model: &mut Model<f64>, batch: &TrainBatch, seed: u64) -> Result<usize, String> {
    let mut grads = model.params.zeros_like();
    let loss = model.loss_and_grad_with(&mut grads, batch, Some(seed));
    let fwd = model.loss(batch, Some(seed));
    if (loss - fwd).abs() > 1e-12 * loss.abs().max(1.0) {
        return Err(format!("loss_and_grad {loss} vs loss {fwd}"));
    }
    let mut checked = 0;
    let grads: Vec<(String, Vec<f64>)> = grads
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data.clone()))
        .collect();
    for (k, (name, g)) in grads.iter().enumerate() {
        checked += FdCheck::default().check(
            name,
            model,
            0..g.len(),
            g,
            |m, i| &mut m.params.tensors_mut().into_iter().nth(k).unwrap().1.data[i],
            |m| m.loss(batch, Some(seed)),
        )?;
    }
    Ok(checked)
}

fn config(
    n_items: usize,
    max_len: usize,
    heads: usize,
    dh: usize,
    layers: usize,
    inner: usize,
    tau: f64,
) -> ModelConfig {
    ModelConfig {
        n_items,
        max_len,
        d: heads * dh,
        n_layers: layers,
        n_heads: heads,
        inner,
        dropout: 0.3,
        attn_dropout: 0.2,
        tau,
        ..ModelConfig::sasrec(n_items)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn whole_model_every_parameter(b in 1usize..4, l in 1usize..6, heads in 1usize..3, dh in 1usize..5, layers in 1usize..3,
                                   inner in 1usize..9, n in 1usize..12, tau in 0.5f64..1.5, seed in any::<u64>()) {
        prop_assume!(fd_checkable_width(heads * dh), "width-2 LayerNorm rows can tie");
        let cfg = config(n, l, heads, dh, layers, inner, tau);
        let mut model = Model::from_params(cfg.clone(), random_params(&cfg, seed)).unwrap();
        let batch = random_batch(&cfg, b, seed ^ 1);
        let n_params = model.params.n_scalars();
        let checked = check_model(&mut model, &batch, seed ^ 2).map_err(TestCaseError::fail)?;
        prop_assert_eq!(checked, n_params);
    }
}

/// A fixed tiny model where every tensor is reachable (lengths ≥ 2 so
/// attention scores matter): every tensor's gradient is non-zero and matches
/// finite differences — a disconnected tensor would show as all-zero.
#[test]
fn every_tensor_receives_gradient() {
    let cfg = config(7, 4, 2, 2, 2, 6, 0.8);
    let mut model = Model::from_params(cfg.clone(), random_params(&cfg, 11)).unwrap();
    let batch = TrainBatch::new(
        vec![0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 2, 2],
        vec![3, 4, 2],
        vec![4, 1, 7],
        4,
        7,
    )
    .unwrap();
    let mut grads = model.params.zeros_like();
    model.loss_and_grad_with(&mut grads, &batch, Some(5));
    for (name, t) in grads.tensors() {
        if name.ends_with(".k.b") {
            // Softmax is shift-invariant and b_k shifts a query row's scores
            // by the constant ⟨q, b_k⟩: the true gradient is exactly zero.
            assert!(
                t.data.iter().all(|g| g.abs() < 1e-12),
                "{name} should have zero gradient"
            );
        } else {
            assert!(
                t.data.iter().any(|&g| g.abs() > 1e-6),
                "{name} got no gradient"
            );
        }
    }
    assert!(
        grads.item_emb.data[..cfg.d].iter().all(|&g| g == 0.0),
        "padding row must get none"
    );
    let n = check_model(&mut model, &batch, 5).unwrap();
    assert_eq!(n, model.params.n_scalars());
}
