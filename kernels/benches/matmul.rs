//! Matrix multiply and scoring at the model's shapes, each beside its twin.
//!
//! Throughput is reported as criterion "elements" = floating-point
//! operations (2·m·n·k per product), so `Gelem/s` reads as GFLOP/s.
//!
//! Shapes (dtrec defaults: batch B = 256, sequence L = 50, width d = 64, so
//! M = B·L = 12,800 token rows; FFN width 4d = 256):
//! * forward  X·W  (NN): 12800×64·64×64, 12800×64·64×256, 12800×256·256×64;
//! * backward dX = dY·Wᵀ (NT) and dW = Xᵀ·dY (TN) for the same three layers;
//! * scoring h·Eᵀ for 1 and 256 query rows against N = 12,102 (the Beauty
//!   catalogue: 12,101 items + the padding row) and 40,000 items, plus a
//!   sweep over 2‥64 query rows to show where sgemm catches up;
//! * top-10 of a 12,102- and 40,000-entry score row (heap vs full sort).
//!
//! The naive reference twins are far slower: for gemm they run on M/8 =
//! 1,600 rows (the group id says so, and its FLOP count is scaled to match,
//! so GFLOP/s stay comparable); for 256-row scoring they run at full size
//! with the minimum sample count.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use dtrec_kernels::rng::CounterRng;
use dtrec_kernels::{reference, simd, Trans};
use std::hint::black_box;
use std::time::Duration;

const TOKENS: usize = 256 * 50;
const D: usize = 64;
const FFN: usize = 4 * D;
/// Row divisor for the naive reference gemm (see the module docs).
const REFERENCE_SHRINK: usize = 8;

fn data(len: usize, stream: u64) -> Vec<f32> {
    let rng = CounterRng::new(5);
    (0..len)
        .map(|i| (2.0 * rng.uniform(stream, i as u64) - 1.0) as f32)
        .collect()
}

/// One gemm case: C (m×n) = op(A) (m×k) · op(B) (k×n); the token count M
/// is m for forward and dX cases and k for the dW (TN) cases.
struct GemmCase {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    ta: Trans,
    tb: Trans,
}

fn gemm_cases(tokens: usize) -> Vec<GemmCase> {
    let case = |name, m, n, k, ta, tb| GemmCase {
        name,
        m,
        n,
        k,
        ta,
        tb,
    };
    vec![
        case("fwd_NN_Mx64.64x64", tokens, D, D, Trans::N, Trans::N),
        case("fwd_NN_Mx64.64x256", tokens, FFN, D, Trans::N, Trans::N),
        case("fwd_NN_Mx256.256x64", tokens, D, FFN, Trans::N, Trans::N),
        case("bwd_dX_NT_Mx64.(64x64)T", tokens, D, D, Trans::N, Trans::T),
        case(
            "bwd_dX_NT_Mx256.(64x256)T",
            tokens,
            D,
            FFN,
            Trans::N,
            Trans::T,
        ),
        case(
            "bwd_dX_NT_Mx64.(256x64)T",
            tokens,
            FFN,
            D,
            Trans::N,
            Trans::T,
        ),
        case("bwd_dW_TN_(Mx64)T.Mx64", D, D, tokens, Trans::T, Trans::N),
        case(
            "bwd_dW_TN_(Mx64)T.Mx256",
            D,
            FFN,
            tokens,
            Trans::T,
            Trans::N,
        ),
        case(
            "bwd_dW_TN_(Mx256)T.Mx64",
            FFN,
            D,
            tokens,
            Trans::T,
            Trans::N,
        ),
    ]
}

fn bench_gemm(c: &mut Criterion) {
    let full = gemm_cases(TOKENS);
    let small = gemm_cases(TOKENS / REFERENCE_SHRINK);
    for (fc, sc) in full.iter().zip(&small) {
        let mut group = c.benchmark_group(format!("gemm/{}", fc.name));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        let (a, b) = (data(fc.m * fc.k, 1), data(fc.k * fc.n, 2));
        let mut out = vec![0.0f32; fc.m * fc.n];
        group.throughput(Throughput::Elements((2 * fc.m * fc.n * fc.k) as u64));
        group.bench_function(BenchmarkId::new("simd_sgemm", "M=12800"), |bench| {
            bench.iter(|| {
                simd::matmul::gemm(
                    fc.m,
                    fc.n,
                    fc.k,
                    1.0,
                    black_box(&a),
                    fc.ta,
                    black_box(&b),
                    fc.tb,
                    0.0,
                    &mut out,
                )
            })
        });

        let (a, b) = (data(sc.m * sc.k, 1), data(sc.k * sc.n, 2));
        let mut out = vec![0.0f32; sc.m * sc.n];
        group.throughput(Throughput::Elements((2 * sc.m * sc.n * sc.k) as u64));
        // Flat sampling: the same (small) iteration count in every sample,
        // instead of 1, 2, …, 10 iterations, keeps the slow twin's time bounded.
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function(BenchmarkId::new("reference_naive", "M=1600"), |bench| {
            bench.iter(|| {
                reference::matmul::gemm(
                    sc.m,
                    sc.n,
                    sc.k,
                    1.0,
                    black_box(&a),
                    sc.ta,
                    black_box(&b),
                    sc.tb,
                    0.0,
                    &mut out,
                )
            })
        });
        group.finish();
    }
}

fn bench_score(c: &mut Criterion) {
    let all_items = data(40_000 * D, 3);
    let all_queries = data(256 * D, 4);
    for q in [1usize, 256] {
        for n in [12_102usize, 40_000] {
            let (queries, items) = (&all_queries[..q * D], &all_items[..n * D]);
            let mut out = vec![0.0f32; q * n];
            let mut group = c.benchmark_group(format!("score/{q}x64.({n}x64)T"));
            group.throughput(Throughput::Elements((2 * q * n * D) as u64));
            group
                .sample_size(20)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
            group.bench_function("simd_score", |bench| {
                bench.iter(|| {
                    simd::score::score(&mut out, black_box(queries), black_box(items), D, 1.0)
                })
            });
            group.bench_function("matrixmultiply_sgemm", |bench| {
                bench.iter(|| {
                    simd::matmul::gemm(
                        q,
                        n,
                        D,
                        1.0,
                        black_box(queries),
                        Trans::N,
                        black_box(items),
                        Trans::T,
                        0.0,
                        &mut out,
                    )
                })
            });
            if q > 1 {
                group
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(1));
            }
            group.bench_function("reference_naive", |bench| {
                bench.iter(|| {
                    reference::score::score(&mut out, black_box(queries), black_box(items), D, 1.0)
                })
            });
            group.finish();
        }
    }
}

/// Where the scoring kernel stops paying off against sgemm: a sweep over
/// the number of query rows at the real catalogue size.
fn bench_score_rows(c: &mut Criterion) {
    let n = 12_102;
    let items = data(n * D, 3);
    let all_queries = data(64 * D, 4);
    let mut group = c.benchmark_group(format!("score_rows/qx64.({n}x64)T"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for q in [2usize, 4, 8, 16, 64] {
        let queries = &all_queries[..q * D];
        let mut out = vec![0.0f32; q * n];
        group.throughput(Throughput::Elements((2 * q * n * D) as u64));
        group.bench_function(BenchmarkId::new("simd_score", q), |bench| {
            bench.iter(|| {
                simd::score::score(&mut out, black_box(queries), black_box(&items), D, 1.0)
            })
        });
        group.bench_function(BenchmarkId::new("matrixmultiply_sgemm", q), |bench| {
            bench.iter(|| {
                simd::matmul::gemm(
                    q,
                    n,
                    D,
                    1.0,
                    black_box(queries),
                    Trans::N,
                    black_box(&items),
                    Trans::T,
                    0.0,
                    &mut out,
                )
            })
        });
    }
    group.finish();
}

/// Top-10 of one score row over the catalogue: bounded heap vs full sort.
fn bench_topk(c: &mut Criterion) {
    let mut group = c.benchmark_group("topk/k=10");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for n in [12_102usize, 40_000] {
        let scores = data(n, 6);
        let mut out = Vec::new();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("bounded_heap", n), |bench| {
            bench.iter(|| dtrec_kernels::topk::top_k(black_box(&scores), 10, &mut out))
        });
        group.bench_function(BenchmarkId::new("reference_full_sort", n), |bench| {
            bench.iter(|| {
                dtrec_kernels::topk::top_k_reference(black_box(&scores), 10, &[], &mut out)
            })
        });
    }
    group.finish();
}

fn main() {
    println!(
        "dtrec-kernels SIMD path (wide, compile time): {}",
        dtrec_kernels::simd_path()
    );
    // No plots: they add minutes of wall time and the figures are in the text.
    let mut criterion = Criterion::default().without_plots().configure_from_args();
    bench_score(&mut criterion);
    bench_score_rows(&mut criterion);
    bench_gemm(&mut criterion);
    bench_topk(&mut criterion);
    criterion.final_summary();
}
