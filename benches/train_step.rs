//! One SASRec training step (`loss_and_grad`) at the issue-4 target shape:
//! d = 64, L = 50, B = 256, N = 3,416 (Beauty), 2 layers, 2 heads, inner 256,
//! dropout 0.5, on the ambient rayon pool (set RAYON_NUM_THREADS=2 to match
//! the target machine). Throughput is reported in training sequences/s.
//!
//! Two batches: `full` — every history has all L = 50 items (the worst case,
//! and what a padded PyTorch implementation always pays); `beauty_lengths` —
//! lengths drawn like Beauty's training prefixes (mostly short), where
//! skipping padded columns pays off.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench train_step`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dtrec::model::{Model, ModelConfig};
use std::hint::black_box;

mod common;
use common::{batch, bench_batches, B, L, N};

fn train_step(c: &mut Criterion) {
    println!(
        "kernels: {}; rayon threads: {}",
        dtrec::kernels::simd_path(),
        rayon::current_num_threads()
    );
    let model = Model::new(ModelConfig::sasrec(N), 1).unwrap();
    let batches = bench_batches();
    let mut group = c.benchmark_group("train_step_d64_L50_B256_N3416");
    group.sample_size(20);
    group.throughput(Throughput::Elements(B as u64));
    for (name, batch) in &batches {
        let mut grads = model.params.zeros_like();
        let mut step = 0u64;
        group.bench_function(*name, |bench| {
            bench.iter(|| {
                grads.zero_grad();
                step += 1;
                black_box(model.loss_and_grad(&mut grads, batch, step))
            })
        });
        // Plain figures for the report: wall clock, and process CPU time (on a
        // shared machine the wall clock includes time stolen by other
        // processes; CPU time / threads is the uncontended wall time of a
        // perfectly parallel step).
        let (t0, c0) = (std::time::Instant::now(), cpu_seconds());
        let reps = 10;
        for s in 0..reps {
            grads.zero_grad();
            black_box(model.loss_and_grad(&mut grads, batch, 1000 + s));
        }
        let secs = t0.elapsed().as_secs_f64() / reps as f64;
        print!(
            "{name}: wall {:.1} ms/step = {:.0} sequences/s",
            secs * 1e3,
            B as f64 / secs
        );
        if let (Some(c0), Some(c1)) = (c0, cpu_seconds()) {
            let cpu = (c1 - c0) / reps as f64;
            let threads = rayon::current_num_threads() as f64;
            print!(
                "; CPU {:.1} ms/step = {:.0} sequences/s at {threads} threads without contention",
                cpu * 1e3,
                B as f64 * threads / cpu
            );
        }
        println!();
    }
    group.finish();
}

/// User + system CPU seconds of this process (Linux `/proc`), if available.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields after the command name: [0] state … [11] utime, [12] stime (clock ticks, 100 Hz on Linux)
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Batch-1 inference at the same shape: encode one full-length history and
/// score all N items (what `recommend` does before top-k).
fn encode_and_score_b1(c: &mut Criterion) {
    let model = Model::new(ModelConfig::sasrec(N), 1).unwrap();
    let one = batch(|_| L, 5);
    let items = &one.seqs().items()[..L];
    let lengths = &one.seqs().lengths()[..1];
    let mut scores = vec![0.0f32; N];
    let mut group = c.benchmark_group("infer_b1_d64_L50_N3416");
    group.bench_function("encode", |bench| {
        bench.iter(|| black_box(model.encode(items, lengths).unwrap()))
    });
    group.bench_function("encode_and_score", |bench| {
        bench.iter(|| {
            let h = model.encode(items, lengths).unwrap();
            model.score_items(&mut scores, &h);
            black_box(scores[0])
        })
    });
    group.finish();
}

criterion_group!(benches, train_step, encode_and_score_b1);
criterion_main!(benches);
