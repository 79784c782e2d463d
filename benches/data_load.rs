//! Data pipeline throughput at real sizes: reading Beauty.txt (S3-Rec) and
//! building its leave-one-out split, and assembling `(B, L) = (256, 50)`
//! batches from it, serial vs rayon.
//!
//! `cargo bench --bench data_load` (skips the Beauty groups if the shared file is missing).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dtrec::data::{assemble, leave_one_out, load, read_s3rec, shared_dataset, Format, ReadOptions};

fn beauty(c: &mut Criterion) {
    let path = shared_dataset("Beauty.txt");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("skipping: {} missing", path.display());
        return;
    };
    let mut group = c.benchmark_group("beauty");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("read_s3rec (from memory)", |b| {
        b.iter(|| read_s3rec(black_box(&bytes[..]), "Beauty.txt", &ReadOptions::default()).unwrap())
    });
    group.bench_function("load file + leave_one_out", |b| {
        b.iter(|| {
            let data = load(&path, &Format::S3rec, &ReadOptions::default()).unwrap();
            leave_one_out(&data).unwrap().train.len()
        })
    });
    group.finish();

    let data = load(&path, &Format::S3rec, &ReadOptions::default()).unwrap();
    let split = leave_one_out(&data).unwrap();
    let indices: Vec<usize> = (0..256).map(|k| k * 487 % split.train.len()).collect();
    let mut group = c.benchmark_group("batch_256x50");
    group.throughput(Throughput::Elements(indices.len() as u64));
    group.bench_function("assemble", |b| {
        b.iter(|| assemble(&data, &split.train, black_box(&indices), 50))
    });
    group.finish();
}

criterion_group!(benches, beauty);
criterion_main!(benches);
