//! Helpers shared by the integration tests.

use std::path::PathBuf;

pub mod adaptive;
#[allow(dead_code)]
pub mod gradcheck;

#[allow(dead_code)]
/// `path` if the dataset file exists. Otherwise the test is skipped with a
/// message (`None`), except under `CI=true`, where a missing file fails it:
/// CI fetches the data first, so a missing file there is a broken setup.
pub fn require_dataset(path: PathBuf, how: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing (CI=true): {how}", path.display());
    }
    eprintln!("SKIPPED: {} is missing ({how})", path.display());
    None
}

#[allow(dead_code)]
/// MovieLens-100K where `.ci/fetch-ml100k.sh` puts it (see [`require_dataset`]).
pub fn require_ml100k() -> Option<PathBuf> {
    require_dataset(dtrec::data::ml100k_path(), "run .ci/fetch-ml100k.sh")
}

/// The built-in synthetic dataset with `num_users` users, split
/// leave-one-out.
#[allow(dead_code)]
pub fn synthetic_loo(num_users: usize) -> (dtrec::data::Interactions, dtrec::data::Split) {
    let synth = dtrec::data::synthetic::SyntheticConfig {
        num_users,
        ..dtrec::data::synthetic::SyntheticConfig::default()
    }
    .generate()
    .unwrap();
    let split = dtrec::data::leave_one_out(&synth.interactions).unwrap();
    (synth.interactions, split)
}

/// `base` at the width and length the training tests use: d = 16, an inner
/// width of 32, sequences of at most 12 items.
#[allow(dead_code)]
pub fn small_model(base: dtrec::model::ModelConfig) -> dtrec::model::ModelConfig {
    dtrec::model::ModelConfig {
        d: 16,
        inner: 32,
        max_len: 12,
        ..base
    }
}

/// `n` draws of `scale`·N(0, 1) from stream `stream` of the counter-based RNG
/// seeded with `seed` (deterministic test data).
#[allow(dead_code)]
pub fn normals(n: usize, stream: u64, seed: u64, scale: f64) -> Vec<f64> {
    let rng = dtrec::kernels::rng::CounterRng::new(seed);
    (0..n)
        .map(|i| scale * rng.normal(stream, i as u64))
        .collect()
}

/// Checks `analytic` against central finite differences of `f` at `params`,
/// element by element, inside a proptest case.
#[allow(dead_code)]
pub fn check_fd(
    analytic: &[f64],
    params: &mut [f64],
    f: &dyn Fn(&[f64]) -> f64,
    what: &str,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let h = 1e-6;
    for i in 0..params.len() {
        let orig = params[i];
        params[i] = orig + h;
        let up = f(params);
        params[i] = orig - h;
        let down = f(params);
        params[i] = orig;
        let fd = (up - down) / (2.0 * h);
        // central differences: O(h²) truncation + O(ε/h) rounding ≈ 1e-10 at
        // these scales, far below the tolerance
        proptest::prop_assert!(
            (fd - analytic[i]).abs() <= 1e-7 * (1.0 + analytic[i].abs()),
            "{} [{}]: fd {} analytic {}",
            what,
            i,
            fd,
            analytic[i]
        );
    }
    Ok(())
}

/// Whether a whole-model finite-difference check can run at width `d`. A
/// width-2 LayerNorm is a sign function of its two inputs: when they nearly
/// tie, its output is flat up to rounding flips of hundreds of ulps and
/// varies on a scale far below h, so finite differences are noise
/// (`common::gradcheck`). The layer tests guard their rows' spread
/// directly; a whole model's rows are internal, so width 2 is left out
/// (width 1 is exact: x − mean = 0).
#[allow(dead_code)]
pub fn fd_checkable_width(d: usize) -> bool {
    d != 2
}

/// Parameters drawn far from the N(0, 0.02) init so every nonlinearity is
/// exercised (γ around 1, everything else N(0, 0.5)); padding row stays 0.
#[allow(dead_code)]
pub fn random_params(cfg: &dtrec::model::ModelConfig, seed: u64) -> dtrec::model::Params<f64> {
    let mut p = dtrec::model::Params::<f64>::zeros(cfg);
    let rng = dtrec::kernels::rng::CounterRng::new(seed);
    for (k, (name, t)) in p.tensors_mut().into_iter().enumerate() {
        let mean = if name.ends_with(".gamma") { 1.0 } else { 0.0 };
        rng.fill_normal(&mut t.data, k as u64, mean, 0.5);
    }
    p.item_emb.data[..cfg.d].fill(0.0);
    p
}

/// A random left-padded batch (lengths 0..=L, at least one non-empty).
#[allow(dead_code)]
pub fn random_batch(cfg: &dtrec::model::ModelConfig, b: usize, seed: u64) -> dtrec::TrainBatch {
    let rng = dtrec::kernels::rng::CounterRng::new(seed);
    let l = cfg.max_len;
    let mut items = vec![0u32; b * l];
    let mut lengths = vec![];
    for r in 0..b {
        let len = if r == 0 {
            1 + rng.below(1, 0, l as u64) as usize
        } else {
            rng.below(1, r as u64, l as u64 + 1) as usize
        };
        for c in l - len..l {
            items[r * l + c] = 1 + rng.below(2, (r * l + c) as u64, cfg.n_items as u64) as u32;
        }
        lengths.push(len as u32);
    }
    let targets = (0..b)
        .map(|r| 1 + rng.below(3, r as u64, cfg.n_items as u64) as u32)
        .collect();
    dtrec::TrainBatch::new(items, lengths, targets, l, cfg.n_items).unwrap()
}

/// Runs `state` until `epochs` epochs are done in all, or until `train`
/// ends it first, without callbacks. `train` is passed to the trainer
/// unchanged (its `max_epochs` sets a cosine schedule's length), and the
/// run is paused through the after-epoch hook, as an interrupted one is.
#[allow(dead_code)]
pub fn train_until(
    state: &mut dtrec::train::TrainState,
    data: &dtrec::data::Interactions,
    split: &dtrec::data::Split,
    train: &dtrec::train::TrainConfig,
    epochs: usize,
) {
    const PAUSE: &str = "train_until: paused";
    let mut pause = |s: &dtrec::train::TrainState| {
        if s.epoch >= epochs {
            Err(dtrec::train::TrainError::Data(PAUSE.into()))
        } else {
            Ok(())
        }
    };
    if state.epoch >= epochs {
        return;
    }
    match dtrec::train::run(state, data, split, train, &mut |_| {}, &mut pause) {
        Ok(()) => {}
        Err(dtrec::train::TrainError::Data(m)) if m == PAUSE => {}
        Err(e) => panic!("training failed: {e}"),
    }
}

/// A per-state item loss as the block test sees it: (dhidden, ditems,
/// hidden, items, targets, dloss) → its reported parts (total first).
#[allow(dead_code)]
pub type StateLossFn<'a> =
    &'a dyn Fn(Option<&mut [f64]>, Option<&mut [f64]>, &[f64], &[f64], &[u32], f64) -> Vec<f64>;

/// Checks that `loss` over `rows` samples with `states` states each equals
/// one call per sample (parts averaged, gradients summed at dloss / rows):
/// the loss's sample blocks must neither mix samples nor drop or repeat one
/// at a block edge. Returns the parts of the whole batch.
#[allow(dead_code)]
pub fn check_blocks_equal_one_by_one(
    loss: StateLossFn,
    (rows, states, n, d): (usize, usize, usize, usize),
    seed: u64,
) -> Vec<f64> {
    let h = normals(rows * states * d, 10, seed, 1.0);
    let e = normals(n * d, 11, seed, 0.5);
    let rng = dtrec::kernels::rng::CounterRng::new(seed);
    let targets: Vec<u32> = (0..rows as u64)
        .map(|r| 1 + rng.below(12, r, n as u64) as u32)
        .collect();
    let dloss = 1.5;
    let mut dh = vec![0.0; h.len()];
    let mut de = vec![0.0; e.len()];
    let all = loss(Some(&mut dh), Some(&mut de), &h, &e, &targets, dloss);
    let mut parts = vec![0.0; all.len()];
    let mut dh_one = vec![0.0; h.len()];
    let mut de_one = vec![0.0; e.len()];
    for r in 0..rows {
        let span = r * states * d..(r + 1) * states * d;
        let one = loss(
            Some(&mut dh_one[span.clone()]),
            Some(&mut de_one),
            &h[span],
            &e,
            &targets[r..r + 1],
            dloss / rows as f64,
        );
        for (sum, part) in parts.iter_mut().zip(one) {
            *sum += part / rows as f64;
        }
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + b.abs());
    for (i, (a, b)) in all.iter().zip(&parts).enumerate() {
        assert!(close(*a, *b), "part {i}: blocked {a} vs one by one {b}");
    }
    for (name, a, b) in [("dh", &dh, &dh_one), ("dE", &de, &de_one)] {
        assert!(b.iter().any(|&x| x != 0.0), "{name} is all zero");
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            assert!(close(*x, *y), "{name}[{i}]: blocked {x} vs one by one {y}");
        }
    }
    all
}
