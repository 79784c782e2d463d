//! Whole-model gradient checks (f64) of the reasoning families (issue 5
//! deliverable 7): the mean loss of a random batch, dropout ON everywhere
//! (input, blocks, attention, reasoning dropout; masks fixed by the step
//! seed), against central finite differences for EVERY element of EVERY
//! parameter tensor, `reason_pos` included, through the whole chain of
//! cached one-token steps (the chain itself has no stop-gradient). Tiny
//! shapes: B ≤ 3, L ≤ 4, d ≤ 8 but not 2, T_max ≤ 2, N ≤ 9. Metric: see
//! `common::gradcheck`.
//!
//! ReaRec-ERL's KL term detaches p_i (method.md §3), so its gradient is not
//! the derivative of the loss value. For ERL the differentiated function is
//! the loss with the stop-gradient made explicit: an independent brute-force
//! ERL loss whose detached p_i come from states and item embeddings frozen
//! at the unperturbed parameters (`states_with`), while the rest moves with
//! the perturbation. Its value at the unperturbed point must equal the
//! model's loss.

mod common;
use common::{fd_checkable_width, random_batch, random_params};

use common::gradcheck::FdCheck;
use dtrec::kernels::rng::CounterRng;
use dtrec::model::{Family, Model, ModelConfig};
use dtrec::TrainBatch;
use proptest::prelude::*;

const FAMILIES: [Family; 3] = [Family::RearecErl, Family::RearecPrl, Family::Dtrec];

fn log_softmax(h: &[f64], e: &[f64], d: usize, tau: f64) -> Vec<f64> {
    let z: Vec<f64> = e
        .chunks_exact(d)
        .map(|row| row.iter().zip(h).map(|(a, b)| a * b).sum::<f64>() / tau)
        .collect();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// Brute-force mean ERL loss CE(h̄) − λ·mean_{i≠j} KL(p_j ‖ p_i), with
/// p_i computed from the detached `h_det`, `e_det`.
#[allow(clippy::too_many_arguments)]
fn erl_reference(
    h: &[f64],
    e: &[f64],
    h_det: &[f64],
    e_det: &[f64],
    targets: &[u32],
    s: usize,
    d: usize,
    tau: f64,
    lambda: f64,
) -> f64 {
    let rows = targets.len();
    let mut total = 0.0;
    for r in 0..rows {
        let hs = &h[r * s * d..(r + 1) * s * d];
        let mut hbar = vec![0.0; d];
        for t in 0..s {
            for j in 0..d {
                hbar[j] += hs[t * d + j] / s as f64;
            }
        }
        total -= log_softmax(&hbar, e, d, tau)[targets[r] as usize - 1];
        let mut pair_sum = 0.0;
        for j in 0..s {
            let lpj = log_softmax(&hs[j * d..(j + 1) * d], e, d, tau);
            for i in (0..s).filter(|&i| i != j) {
                let hd = &h_det[(r * s + i) * d..(r * s + i + 1) * d];
                let lpi = log_softmax(hd, e_det, d, tau);
                pair_sum += lpj
                    .iter()
                    .zip(&lpi)
                    .map(|(a, b)| a.exp() * (a - b))
                    .sum::<f64>();
            }
        }
        total -= lambda * pair_sum / (s * (s - 1)) as f64;
    }
    total / rows as f64
}

/// The function whose derivative `loss_and_grad` computes: the loss itself,
/// or for ERL the loss with its stop-gradient made explicit (see the top).
fn objective(model: &Model<f64>) -> impl Fn(&Model<f64>, &TrainBatch, u64) -> f64 {
    let cfg = model.config().clone();
    let d = cfg.d;
    let frozen = model.clone();
    let e_det = model.params.item_emb.data[d..].to_vec();
    move |m, batch, seed| {
        if cfg.family != Family::RearecErl {
            return m.loss(batch, Some(seed));
        }
        let h_det = frozen.states_with(batch.seqs(), Some(seed));
        erl_reference(
            &m.states_with(batch.seqs(), Some(seed)),
            &m.params.item_emb.data[d..],
            &h_det,
            &e_det,
            batch.targets(),
            cfg.t_max + 1,
            d,
            cfg.tau,
            cfg.erl_lambda,
        )
    }
}

/// Checks every element of every tensor; returns the number checked.
fn check_model(model: &mut Model<f64>, batch: &TrainBatch, seed: u64) -> Result<usize, String> {
    let mut grads = model.params.zeros_like();
    let loss = model.loss_and_grad_with(&mut grads, batch, Some(seed));
    let fwd = model.loss(batch, Some(seed));
    let f = objective(model);
    let reference = f(model, batch, seed);
    for (what, value) in [("loss", fwd), ("reference objective", reference)] {
        if (loss - value).abs() > 1e-12 * loss.abs().max(1.0) {
            return Err(format!("loss_and_grad {loss} vs {what} {value}"));
        }
    }
    let grads: Vec<(String, Vec<f64>)> = grads
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data.clone()))
        .collect();
    let mut checked = 0;
    for (k, (name, g)) in grads.iter().enumerate() {
        checked += FdCheck::default().check(
            name,
            model,
            0..g.len(),
            g,
            |m, i| &mut m.params.tensors_mut().into_iter().nth(k).unwrap().1.data[i],
            |m| f(m, batch, seed),
        )?;
    }
    Ok(checked)
}

#[allow(clippy::too_many_arguments)]
fn config(
    family: Family,
    t_max: usize,
    n_items: usize,
    max_len: usize,
    heads: usize,
    dh: usize,
    layers: usize,
    inner: usize,
    tau: f64,
) -> ModelConfig {
    ModelConfig {
        max_len,
        d: heads * dh,
        n_layers: layers,
        n_heads: heads,
        inner,
        dropout: 0.3,
        attn_dropout: 0.2,
        reasoning_dropout: 0.25,
        tau,
        erl_lambda: 0.3, // larger than the default so the KL term matters
        prl_alpha: 2.0,
        ..ModelConfig::reasoning(n_items, family, t_max)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn whole_reasoning_model_every_parameter(fam in 0usize..5, t_max in 1usize..3, b in 1usize..4,
                                             l in 1usize..5, heads in 1usize..3, dh in 1usize..5,
                                             layers in 1usize..3, inner in 1usize..7, n in 1usize..10,
                                             tau in 0.5f64..1.5, sd in 0usize..3, seed in any::<u64>()) {
        prop_assume!(fd_checkable_width(heads * dh), "width-2 LayerNorm rows can tie");
        // fam = 3, 4: ReaRec-PRL, DTRec with the contrastive noise view on
        let family = [FAMILIES[0], FAMILIES[1], FAMILIES[2], Family::RearecPrl, Family::Dtrec][fam];
        let cfg = ModelConfig {
            // the steps' own block dropout: the encoder's, none, or another rate
            step_dropout: [None, Some(0.0), Some(0.4)][sd],
            dtrec_contrastive: fam == 4,
            ..config(family, t_max, n, l, heads, dh, layers, inner, tau)
        };
        let mut model = Model::from_params(cfg.clone(), random_params(&cfg, seed)).unwrap();
        model.set_contrastive(fam >= 3);
        let batch = random_batch(&cfg, b, seed ^ 1);
        let n_params = model.params.n_scalars();
        let checked = check_model(&mut model, &batch, seed ^ 2).map_err(TestCaseError::fail)?;
        prop_assert_eq!(checked, n_params);
    }
}

/// Per family (and ReaRec-PRL and DTRec with the contrastive noise view), a fixed tiny
/// model (lengths ≥ 2, one empty history, T_max = 2, two layers): every
/// tensor, `reason_pos` included, receives a non-zero gradient that matches
/// finite differences.
#[test]
fn every_family_every_tensor_receives_a_checked_gradient() {
    let runs = FAMILIES.iter().map(|&f| (f, false));
    let with_noise_view = [(Family::RearecPrl, true), (Family::Dtrec, true)];
    for (family, contrastive) in runs.chain(with_noise_view) {
        let cfg = ModelConfig {
            dtrec_contrastive: family == Family::Dtrec && contrastive,
            ..config(family, 2, 7, 4, 2, 2, 2, 5, 0.8)
        };
        let mut model = Model::from_params(cfg.clone(), random_params(&cfg, 11)).unwrap();
        model.set_contrastive(contrastive);
        if contrastive {
            // the noise view adds a term
            let mut off = model.clone();
            off.set_contrastive(false);
            let batch = random_batch(&cfg, 3, 1);
            assert!((model.loss(&batch, Some(5)) - off.loss(&batch, Some(5))).abs() > 1e-3);
            assert_eq!(
                model.loss(&batch, None),
                off.loss(&batch, None),
                "eval: no noise view"
            );
        }
        let batch = TrainBatch::new(
            vec![0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0],
            vec![3, 4, 0],
            vec![4, 1, 7],
            4,
            7,
        )
        .unwrap();
        let mut grads = model.params.zeros_like();
        model.loss_and_grad_with(&mut grads, &batch, Some(5));
        for (name, t) in grads.tensors() {
            if name.ends_with(".k.b") {
                // softmax shift invariance: ⟨q, b_k⟩ shifts a row's scores
                assert!(t.data.iter().all(|g| g.abs() < 1e-12), "{family} {name}");
            } else {
                assert!(
                    t.data.iter().any(|&g| g.abs() > 1e-6),
                    "{family}: {name} got no gradient"
                );
            }
        }
        assert!(grads.item_emb.data[..cfg.d].iter().all(|&g| g == 0.0));
        let n = check_model(&mut model, &batch, 5).unwrap_or_else(|e| panic!("{family}: {e}"));
        assert_eq!(n, model.params.n_scalars());
    }
}

/// DTRec with HPS through the [`StateLoss`] hook: L = CE(h_T) + λ·mean_t L_t
/// with `cluster_soft` at step 0 and `prototype` at step 1 (fixed clusters
/// and centroids, as the trainer would pass them), checked against finite
/// differences of `loss_extra` for every parameter; also the hook on a
/// SASRec model (one state).
#[test]
fn extra_state_loss_hook_gradients_hps() {
    use dtrec::model::loss::hps::{
        cluster_soft_loss, prototype_loss, ClusterMembers, ClusterTarget, ItemGradient,
    };
    use dtrec::model::StateLossArgs;
    let n_items = 7;
    let members = ClusterMembers::new(&[0, 1, 0, 1, 1, 0, 1], 2);
    let item_cluster = [2u32, 0, 1, 2, 0, 1, 1]; // level-1 cluster of item i + 1
    for (family, t_max) in [(Family::Dtrec, 2), (Family::Sasrec, 0)] {
        let cfg = config(family, t_max, n_items, 4, 2, 2, 2, 5, 0.8);
        let d = cfg.d;
        let s = t_max + 1;
        let mut centroids = vec![0.0; 3 * d];
        CounterRng::new(4).fill_normal(&mut centroids, 0, 0.0, 0.7);
        let lambda = 0.7;
        let hps = |a: StateLossArgs<'_, f64>| -> f64 {
            let rows = a.targets.len();
            let n_levels = s.max(2) - 1; // steps 0 … T−1 (SASRec: step 0)
            let w = a.dloss * lambda / n_levels as f64 * rows as f64;
            let step = |t: usize| -> Vec<f64> {
                (0..rows)
                    .flat_map(|r| a.states[(r * s + t) * d..(r * s + t + 1) * d].to_vec())
                    .collect()
            };
            let (mut dstates, mut ditems) = (a.dstates, a.ditems);
            let mut total = 0.0;
            for t in 0..n_levels {
                let h = step(t);
                let mut dh = dstates.as_ref().map(|_| vec![0.0; rows * d]);
                let lt = if t == 0 {
                    cluster_soft_loss(
                        dh.as_deref_mut(),
                        ditems.as_deref_mut(),
                        &h,
                        a.items,
                        a.targets,
                        &members,
                        d,
                        0.3,
                        ClusterTarget::Uniform,
                        0.8,
                        w,
                        ItemGradient::Full,
                    )
                } else {
                    let targets: Vec<u32> = a
                        .targets
                        .iter()
                        .map(|&y| item_cluster[y as usize - 1])
                        .collect();
                    prototype_loss(dh.as_deref_mut(), &h, &centroids, &targets, 3, d, 0.9, w)
                };
                total += lambda / n_levels as f64 * lt * rows as f64;
                if let (Some(ds), Some(dh)) = (dstates.as_deref_mut(), dh) {
                    for r in 0..rows {
                        for c in 0..d {
                            ds[(r * s + t) * d + c] += dh[r * d + c];
                        }
                    }
                }
            }
            total
        };
        let mut model = Model::from_params(cfg.clone(), random_params(&cfg, 12)).unwrap();
        let batch = random_batch(&cfg, 3, 8);
        let mut grads = model.params.zeros_like();
        let loss = model.loss_and_grad_extra(&mut grads, &batch, Some(6), Some(&hps));
        let plain = model.loss(&batch, Some(6));
        let fwd = model.loss_extra(&batch, Some(6), Some(&hps));
        assert!((loss - fwd).abs() < 1e-12, "{family}: {loss} vs {fwd}");
        assert!(
            loss - plain > 1e-3,
            "{family}: the HPS term adds to the loss"
        );
        let grads: Vec<Vec<f64>> = grads
            .tensors()
            .into_iter()
            .map(|(_, t)| t.data.clone())
            .collect();
        let mut checked = 0;
        for (k, g) in grads.iter().enumerate() {
            checked += FdCheck::default()
                .check(
                    &format!("{family} tensor {k}"),
                    &mut model,
                    0..g.len(),
                    g,
                    |m, i| &mut m.params.tensors_mut().into_iter().nth(k).unwrap().1.data[i],
                    |m| m.loss_extra(&batch, Some(6), Some(&hps)),
                )
                .unwrap();
        }
        assert_eq!(checked, model.params.n_scalars());
    }
}
