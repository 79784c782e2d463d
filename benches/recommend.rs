//! Batch-1 serving latency: `Recommender::recommend(history, 10)` with a
//! SASRec model of the issue-4 shape (d = 64, L = 50, 2 layers, 2 heads,
//! N = 3,416 items), history of 50 external ids, seen items excluded.
//! Criterion's median is the figure quoted in BENCHMARKS.md.
//!
//! Run: `cargo bench --bench recommend`

use criterion::{criterion_group, criterion_main, Criterion};
use dtrec::model::{ModelConfig, Sasrec};
use dtrec::serve::{RecommendOptions, Recommender};
use std::hint::black_box;

const N: usize = 3416;

fn recommend(c: &mut Criterion) {
    println!(
        "kernels: {}; rayon threads: {}",
        dtrec::kernels::simd_path(),
        rayon::current_num_threads()
    );
    let model = Sasrec::new(ModelConfig::sasrec(N), 3).unwrap();
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
    group.finish();
}

criterion_group!(benches, recommend);
criterion_main!(benches);
