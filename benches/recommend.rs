//! Batch-1 serving latency: `Recommender::recommend(history, 10)` with a
//! SASRec model of the issue-4 shape (d = 64, L = 50, 2 layers, 2 heads,
//! N = 3,416 items), history of 50 external ids, seen items excluded; and
//! the same call with a DTRec model at T_max = 3 (fixed depth, and halting
//! by a threshold rule that never stops early).
//! Criterion's median is the figure quoted in BENCHMARKS.md.
//!
//! Beside it, group `adaptive_batch1_n3416` scores one history of 50 items
//! with a DTRec model of the same shape at T_max = 3 through
//! `Model::score_adaptive`: `fixed` (= encode_batch + score_items),
//! `threshold_never_stops` (all 3 steps, with the per-step logits and
//! indicators) and `threshold_stops_at_1` (thresholds +∞: one step); the
//! two threshold cases again with the indicators over the finest prototype
//! level (`_prototypes`: K-means of the item table, 571 centroids for
//! N = 3,416 at T_max = 3; item scores only at the halting step).
//!
//! Run: `cargo bench --bench recommend`

use criterion::{criterion_group, criterion_main, Criterion};
use dtrec::model::halting::indicators::{IndicatorBasis, IndicatorSpace};
use dtrec::model::halting::ThresholdRule;
use dtrec::model::prototypes::cluster_items;
use dtrec::model::HpsConfig;
use dtrec::model::{Family, HaltingPolicy, Model, ModelConfig};
use dtrec::serve::{RecommendOptions, Recommender};
use dtrec::SeqBatch;
use std::hint::black_box;

const N: usize = 3416;

fn recommend(c: &mut Criterion) {
    println!(
        "kernels: {}; rayon threads: {}",
        dtrec::kernels::simd_path(),
        rayon::current_num_threads()
    );
    let model = Model::new(ModelConfig::sasrec(N), 3).unwrap();
    let vocab: Vec<String> = (1..=N).map(|i| format!("item{i}")).collect();
    let rec = Recommender::new(model, vocab).unwrap();
    let history: Vec<String> = (0..50)
        .map(|k| format!("item{}", 1 + (k * 67) % N))
        .collect();
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    let options = RecommendOptions::default();
    let mut group = c.benchmark_group("recommend_batch1_n3416");
    for len in [10, 50] {
        let h = &history[50 - len..];
        group.bench_function(format!("history_{len}"), |b| {
            b.iter(|| black_box(rec.recommend(black_box(h), 10, &options).unwrap()))
        });
    }
    // the full serving call of a DTRec model at T_max = 3, at fixed depth
    // and with a threshold rule that never stops early (the worst case:
    // every step and its indicators run)
    let dtrec = Model::new(ModelConfig::reasoning(N, Family::Dtrec, 3), 3).unwrap();
    let never = ThresholdRule {
        t_min: 1,
        theta_h: f32::NEG_INFINITY,
        theta_d: f32::NEG_INFINITY,
        theta_delta: f32::NEG_INFINITY,
    };
    for (name, policy) in [
        ("dtrec_t3_fixed", HaltingPolicy::Fixed),
        (
            "dtrec_t3_threshold_never_stops",
            HaltingPolicy::Threshold(never),
        ),
    ] {
        let rec = Recommender::new(dtrec.clone(), rec.vocab().to_vec())
            .unwrap()
            .with_halting(policy);
        group.bench_function(format!("{name}_history_50"), |b| {
            b.iter(|| black_box(rec.recommend(black_box(&history), 10, &options).unwrap()))
        });
    }
    group.finish();
}

fn adaptive(c: &mut Criterion) {
    let model = Model::new(ModelConfig::reasoning(N, Family::Dtrec, 3), 3).unwrap();
    let history: Vec<u32> = (0..50).map(|k| 1 + (k * 67) % N as u32).collect();
    let seqs = SeqBatch::from_histories(&[&history[..]], 50, N).unwrap();
    let stop_at_1 = ThresholdRule {
        t_min: 1,
        theta_h: f32::INFINITY,
        theta_d: f32::INFINITY,
        theta_delta: f32::INFINITY,
    };
    let protos = cluster_items(
        None,
        &model,
        &HpsConfig::default().prototype_config(model.config().t_max, 1),
    )
    .unwrap();
    let prototypes = IndicatorBasis::of(IndicatorSpace::Prototypes, Some(&protos)).unwrap();
    let items = IndicatorBasis::Items;
    let never = HaltingPolicy::Threshold(ThresholdRule::never());
    let at_1 = HaltingPolicy::Threshold(stop_at_1);
    let mut group = c.benchmark_group("adaptive_batch1_n3416");
    for (name, policy, basis) in [
        ("fixed", &HaltingPolicy::Fixed, &items),
        ("threshold_never_stops", &never, &items),
        ("threshold_stops_at_1", &at_1, &items),
        ("threshold_never_stops_prototypes", &never, &prototypes),
        ("threshold_stops_at_1_prototypes", &at_1, &prototypes),
    ] {
        let steps = model.score_adaptive_in(&seqs, policy, basis).steps;
        println!("{name}: steps {steps:?}");
        group.bench_function(name, |b| {
            b.iter(|| black_box(model.score_adaptive_in(black_box(&seqs), policy, basis)))
        });
    }
    group.finish();
}

criterion_group!(benches, recommend, adaptive);
criterion_main!(benches);
