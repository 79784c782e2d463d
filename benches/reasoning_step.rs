//! Training steps and batch-1 encoding of the reasoning families at the
//! issue-5 target shape: d = 64, L = 50, B = 256, N = 3,416, 2 layers,
//! T_max = 3 (SASRec for reference), on the ambient rayon pool (set
//! RAYON_NUM_THREADS=2 to match the target machine). Throughput in training
//! sequences/s; batch `beauty_lengths` draws history lengths like Beauty's
//! training prefixes (mean ≈ 8.9), `full` uses L = 50 for every history.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench reasoning_step`

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use dtrec::model::loss::hps::HpsLoss;
use dtrec::model::prototypes::cluster_items;
use dtrec::model::{Family, Model, ModelConfig, StateLossArgs};
use dtrec::model::{HpsConfig, HpsVariant};
use std::hint::black_box;

mod common;
use common::{batch, bench_batches, B, L, N};

const T_MAX: usize = 3;

/// (config, contrastive noise view on, label)
fn configs() -> Vec<(ModelConfig, bool, String)> {
    let mut out: Vec<_> = [
        ModelConfig::sasrec(N),
        ModelConfig::reasoning(N, Family::Dtrec, T_MAX),
        ModelConfig::reasoning(N, Family::RearecErl, T_MAX),
        ModelConfig::reasoning(N, Family::RearecPrl, T_MAX),
    ]
    .into_iter()
    .map(|c| {
        let label = c.family.to_string();
        (c, false, label)
    })
    .collect();
    out.push((
        ModelConfig::reasoning(N, Family::RearecPrl, T_MAX),
        true,
        "rearec-prl-rcl".into(),
    ));
    out
}

/// Benches one training step `step(seed)` with criterion, then prints its
/// wall-clock throughput over 5 more steps.
fn bench_step<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mut step: impl FnMut(u64) -> R,
) {
    let mut seed = 0u64;
    group.bench_function(id, |bench| {
        bench.iter(|| {
            seed += 1;
            black_box(step(seed))
        })
    });
    let t0 = std::time::Instant::now();
    let reps = 5;
    for s in 0..reps {
        black_box(step(1000 + s));
    }
    let secs = t0.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{id}: wall {:.1} ms/step = {:.0} sequences/s",
        secs * 1e3,
        B as f64 / secs
    );
}

fn train_step(c: &mut Criterion) {
    println!(
        "kernels: {}; rayon threads: {}",
        dtrec::kernels::simd_path(),
        rayon::current_num_threads()
    );
    let batches = bench_batches();
    let mut group = c.benchmark_group("reasoning_train_step_d64_L50_B256_N3416_T3");
    group.sample_size(10);
    group.throughput(Throughput::Elements(B as u64));
    for (cfg, contrastive, label) in configs() {
        let mut model = Model::new(cfg, 1).unwrap();
        model.set_contrastive(contrastive);
        for (name, batch) in &batches {
            let mut grads = model.params.zeros_like();
            bench_step(&mut group, &format!("{label}_{name}"), |seed| {
                grads.zero_grad();
                model.loss_and_grad(&mut grads, batch, seed)
            });
        }
    }
    group.finish();
}

/// DTRec training steps with Hierarchical Process Supervision on (both
/// variants), over prototypes clustered from the model's item table, as the
/// trainer runs them after its warm-up epoch.
fn train_step_hps(c: &mut Criterion) {
    let batches = bench_batches();
    let mut group = c.benchmark_group("dtrec_hps_train_step_d64_L50_B256_N3416_T3");
    group.sample_size(10);
    group.throughput(Throughput::Elements(B as u64));
    let model = Model::new(ModelConfig::reasoning(N, Family::Dtrec, T_MAX), 1).unwrap();
    for variant in [HpsVariant::Prototype, HpsVariant::ClusterSoft] {
        let config = HpsConfig {
            variant,
            ..HpsConfig::default()
        };
        let protos = cluster_items(
            None,
            &model,
            &config.prototype_config(model.config().t_max, 1),
        )
        .unwrap();
        let hps = HpsLoss::new(&protos, &model, &config);
        let extra = |args: StateLossArgs<'_, f32>| hps.eval(args);
        for (name, batch) in &batches {
            let mut grads = model.params.zeros_like();
            let id = format!("dtrec_hps_{}_{name}", variant.name());
            bench_step(&mut group, &id, |seed| {
                grads.zero_grad();
                model.loss_and_grad_extra(&mut grads, batch, Some(seed), Some(&extra))
            });
        }
    }
    group.finish();
}

/// Batch-1 inference: encode one full-length history (encoder + T_max
/// reasoning steps) and score all N items.
fn encode_and_score_b1(c: &mut Criterion) {
    let one = batch(|_| L, 5);
    let items = &one.seqs().items()[..L];
    let lengths = &one.seqs().lengths()[..1];
    let mut scores = vec![0.0f32; N];
    let mut group = c.benchmark_group("reasoning_infer_b1_d64_L50_N3416_T3");
    for (cfg, contrastive, label) in configs() {
        if contrastive {
            continue; // training-only
        }
        let model = Model::new(cfg, 1).unwrap();
        group.bench_function(format!("{label}_encode_and_score"), |bench| {
            bench.iter(|| {
                let h = model.encode(items, lengths).unwrap();
                model.score_items(&mut scores, &h);
                black_box(scores[0])
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train_step, train_step_hps, encode_and_score_b1);
criterion_main!(benches);
