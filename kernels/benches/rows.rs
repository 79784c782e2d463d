//! Row kernels: each `f32` SIMD kernel beside its scalar twin (the same
//! generic reference code, instantiated at `f32`) in one criterion group,
//! at the model's row shape: B·L × d = 12,800 × 64 (B = 256, L = 50,
//! d = 64). Softmax rows are 64 wide (attention over L ≤ 64 keys);
//! cross-entropy runs 12,800 rows × 64 columns and one row of 40,000 items.
//!
//! Run: `cargo bench -p dtrec-kernels --bench rows`. Group names are
//! `<kernel>/<shape>`, the two functions `twin` and `simd`; the SIMD/twin
//! ratio is twin time ÷ simd time.
//!
//! Clock: on Linux the bench measures the benchmarking thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) by default, because the machines we share
//! run several jobs per core and wall-clock time then mostly measures the
//! scheduler; alone on a core both clocks agree. `DTREC_BENCH_CLOCK=wall`
//! switches to criterion's wall clock. The first line printed names the SIMD
//! path and the clock.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::Measurement;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use dtrec_kernels::{reference as twin, simd, AdamStep};

/// Thread CPU time as a criterion measurement (Linux, 64-bit).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod thread_cpu {
    use std::time::Duration;

    use criterion::measurement::{Measurement, ValueFormatter, WallTime};

    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock_id: i32, tp: *mut Timespec) -> i32;
    }

    /// `CLOCK_THREAD_CPUTIME_ID` from `<time.h>` on Linux.
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    /// CPU time consumed by the calling thread so far.
    pub fn now() -> Duration {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a live, writable `struct timespec` for the whole
        // call, and clock_gettime writes only that struct.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// Criterion measurement reading [`now`]; values format like durations.
    pub struct ThreadCpuTime {
        pub wall: WallTime,
    }

    impl Measurement for ThreadCpuTime {
        type Intermediate = Duration;
        type Value = Duration;
        fn start(&self) -> Duration {
            now()
        }
        fn end(&self, started: Duration) -> Duration {
            now().saturating_sub(started)
        }
        fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
            *v1 + *v2
        }
        fn zero(&self) -> Duration {
            Duration::ZERO
        }
        fn to_f64(&self, value: &Duration) -> f64 {
            value.as_nanos() as f64
        }
        fn formatter(&self) -> &dyn ValueFormatter {
            self.wall.formatter()
        }
    }
}

/// Rows of the model's activations: batch 256 × sequence length 50.
const ROWS: usize = 256 * 50;
/// Hidden size.
const D: usize = 64;
/// Items in the one long cross-entropy row.
const LONG_ROW: usize = 40_000;

/// Deterministic data in [−scale, scale) (SplitMix64).
fn data(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn group<'a, M: Measurement>(
    c: &'a mut Criterion<M>,
    name: &str,
    elements: usize,
) -> BenchmarkGroup<'a, M> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(elements as u64));
    g
}

fn vector_ops<M: Measurement>(c: &mut Criterion<M>) {
    let n = ROWS * D;
    let (x, y0) = (data(n, 1, 1.0), data(n, 2, 1.0));
    let shape = format!("{ROWS}x{D}");

    let mut g = group(c, &format!("dot_rows/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| {
            x.chunks_exact(D)
                .zip(y0.chunks_exact(D))
                .map(|(a, b)| twin::vector::dot(a, b))
                .sum::<f32>()
        })
    });
    g.bench_function("simd", |b| {
        b.iter(|| {
            x.chunks_exact(D)
                .zip(y0.chunks_exact(D))
                .map(|(a, b)| simd::vector::dot(a, b))
                .sum::<f32>()
        })
    });
    g.finish();

    let mut g = group(c, &format!("sum_rows/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| x.chunks_exact(D).map(twin::vector::sum).sum::<f32>())
    });
    g.bench_function("simd", |b| {
        b.iter(|| x.chunks_exact(D).map(simd::vector::sum).sum::<f32>())
    });
    g.finish();

    let mut g = group(c, &format!("max_rows/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| x.chunks_exact(D).map(twin::vector::max).sum::<f32>())
    });
    g.bench_function("simd", |b| {
        b.iter(|| x.chunks_exact(D).map(simd::vector::max).sum::<f32>())
    });
    g.finish();

    let mut y = y0.clone();
    let mut g = group(c, &format!("axpy/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| twin::vector::axpy(&mut y, black_box(1e-3), &x))
    });
    g.bench_function("simd", |b| {
        b.iter(|| simd::vector::axpy(&mut y, black_box(1e-3), &x))
    });
    g.finish();

    let mut g = group(c, &format!("scale/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| twin::vector::scale(&mut y, black_box(1.0)))
    });
    g.bench_function("simd", |b| {
        b.iter(|| simd::vector::scale(&mut y, black_box(1.0)))
    });
    g.finish();

    let mut out = vec![0.0f32; n];
    let mut g = group(c, &format!("add/{shape}"), n);
    g.bench_function("twin", |b| b.iter(|| twin::vector::add(&mut out, &x, &y0)));
    g.bench_function("simd", |b| b.iter(|| simd::vector::add(&mut out, &x, &y0)));
    g.finish();
}

fn softmax<M: Measurement>(c: &mut Criterion<M>) {
    let n = ROWS * D;
    let x = data(n, 3, 4.0);
    let mut out = vec![0.0f32; n];
    let shape = format!("{ROWS}x{D}");
    let mut g = group(c, &format!("softmax_forward/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| {
            for (o, r) in out.chunks_exact_mut(D).zip(x.chunks_exact(D)) {
                twin::softmax::softmax_forward(o, r, 0..D);
            }
        })
    });
    g.bench_function("simd", |b| {
        b.iter(|| {
            for (o, r) in out.chunks_exact_mut(D).zip(x.chunks_exact(D)) {
                simd::softmax::softmax_forward(o, r, 0..D);
            }
        })
    });
    g.finish();

    let dout = data(n, 4, 1.0);
    let mut dinp = vec![0.0f32; n];
    let mut g = group(c, &format!("softmax_backward/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| {
            let rows = dinp
                .chunks_exact_mut(D)
                .zip(dout.chunks_exact(D))
                .zip(out.chunks_exact(D));
            for ((dx, dy), y) in rows {
                twin::softmax::softmax_backward(dx, dy, y, 0..D);
            }
        })
    });
    g.bench_function("simd", |b| {
        b.iter(|| {
            let rows = dinp
                .chunks_exact_mut(D)
                .zip(dout.chunks_exact(D))
                .zip(out.chunks_exact(D));
            for ((dx, dy), y) in rows {
                simd::softmax::softmax_backward(dx, dy, y, 0..D);
            }
        })
    });
    g.finish();
}

fn layernorm<M: Measurement>(c: &mut Criterion<M>) {
    let n = ROWS * D;
    let x = data(n, 5, 2.0);
    let (gamma, beta) = (data(D, 6, 1.0), data(D, 7, 1.0));
    let (mut out, mut mean, mut rstd) = (vec![0.0f32; n], vec![0.0f32; ROWS], vec![0.0f32; ROWS]);
    let shape = format!("{ROWS}x{D}");
    let mut g = group(c, &format!("layernorm_forward/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| {
            twin::layernorm::layernorm_forward(
                &mut out, &mut mean, &mut rstd, &x, &gamma, &beta, D, 1e-12,
            )
        })
    });
    g.bench_function("simd", |b| {
        b.iter(|| {
            simd::layernorm::layernorm_forward(
                &mut out, &mut mean, &mut rstd, &x, &gamma, &beta, D, 1e-12,
            )
        })
    });
    g.finish();

    let dout = data(n, 8, 1.0);
    let (mut dx, mut dg, mut db) = (vec![0.0f32; n], vec![0.0f32; D], vec![0.0f32; D]);
    let mut g = group(c, &format!("layernorm_backward/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| {
            twin::layernorm::layernorm_backward(
                &mut dx, &mut dg, &mut db, &dout, &x, &gamma, &mean, &rstd, D,
            )
        })
    });
    g.bench_function("simd", |b| {
        b.iter(|| {
            simd::layernorm::layernorm_backward(
                &mut dx, &mut dg, &mut db, &dout, &x, &gamma, &mean, &rstd, D,
            )
        })
    });
    g.finish();
}

fn gelu<M: Measurement>(c: &mut Criterion<M>) {
    let n = ROWS * D;
    let x = data(n, 9, 4.0);
    let mut out = vec![0.0f32; n];
    let shape = format!("{ROWS}x{D}");
    let mut g = group(c, &format!("gelu_forward/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| twin::gelu::gelu_forward(&mut out, &x))
    });
    g.bench_function("simd", |b| {
        b.iter(|| simd::gelu::gelu_forward(&mut out, &x))
    });
    g.finish();

    let dout = data(n, 10, 1.0);
    let mut dinp = vec![0.0f32; n];
    let mut g = group(c, &format!("gelu_backward/{shape}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| twin::gelu::gelu_backward(&mut dinp, &dout, &x))
    });
    g.bench_function("simd", |b| {
        b.iter(|| simd::gelu::gelu_backward(&mut dinp, &dout, &x))
    });
    g.finish();
}

fn cross_entropy<M: Measurement>(c: &mut Criterion<M>) {
    type CrossEntropy = fn(Option<&mut [f32]>, &[f32], usize, f32) -> f32;
    let kernels: [(&str, CrossEntropy); 2] = [
        ("twin", twin::xent::cross_entropy::<f32>),
        ("simd", simd::xent::cross_entropy),
    ];
    for (rows, cols) in [(ROWS, D), (1, LONG_ROW)] {
        let n = rows * cols;
        let logits = data(n, 11, 8.0);
        let targets: Vec<usize> = data(rows, 12, 1.0)
            .iter()
            .map(|v| (v.abs() * (cols - 1) as f32) as usize)
            .collect();
        let mut dlogits = vec![0.0f32; n];
        // Mean loss over the rows: each row's gradient is scaled by 1/rows.
        let dloss = 1.0 / rows as f32;
        let shape = format!("{rows}x{cols}");

        let mut g = group(c, &format!("xent_forward/{shape}"), n);
        for (name, ce) in kernels {
            g.bench_function(name, |b| {
                b.iter(|| {
                    let rows = logits.chunks_exact(cols).zip(&targets);
                    rows.map(|(row, &t)| ce(None, row, t, 1.0)).sum::<f32>()
                })
            });
        }
        g.finish();

        let mut g = group(c, &format!("xent_fused_backward/{shape}"), n);
        for (name, ce) in kernels {
            g.bench_function(name, |b| {
                b.iter(|| {
                    let rows = dlogits
                        .chunks_exact_mut(cols)
                        .zip(logits.chunks_exact(cols))
                        .zip(&targets);
                    rows.map(|((g, row), &t)| ce(Some(g), row, t, dloss))
                        .sum::<f32>()
                })
            });
        }
        g.finish();
    }
}

fn adam<M: Measurement>(c: &mut Criterion<M>) {
    let n = ROWS * D;
    let grad = data(n, 13, 1.0);
    let (mut param, mut m, mut v) = (data(n, 14, 1.0), vec![0.0f32; n], vec![0.0f32; n]);
    let step = AdamStep {
        lr: 1e-3f32,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        bias_correction1: 0.1,
        bias_correction2: 0.001,
        decoupled: false,
    };
    let mut g = group(c, &format!("adam_update/{n}"), n);
    g.bench_function("twin", |b| {
        b.iter(|| twin::adam::adam_update(&mut param, &grad, &mut m, &mut v, &step))
    });
    g.bench_function("simd", |b| {
        b.iter(|| simd::adam::adam_update(&mut param, &grad, &mut m, &mut v, &step))
    });
    g.finish();
}

/// Every group, under the given criterion configuration.
fn run_all<M: Measurement>(mut c: Criterion<M>) {
    vector_ops(&mut c);
    softmax(&mut c);
    layernorm(&mut c);
    gelu(&mut c);
    cross_entropy(&mut c);
    adam(&mut c);
    c.final_summary();
}

/// Small samples keep the whole run well under 3 minutes on 2 cores; each
/// measurement still covers tens to thousands of kernel calls.
fn configure<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .configure_from_args()
}

fn main() {
    let path = dtrec_kernels::simd_path();
    let want_wall = std::env::var("DTREC_BENCH_CLOCK").is_ok_and(|v| v == "wall");
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    if !want_wall {
        println!("dtrec-kernels rows bench: wide SIMD path = {path}, clock = thread CPU time");
        let cpu = thread_cpu::ThreadCpuTime {
            wall: criterion::measurement::WallTime,
        };
        return run_all(configure(Criterion::default().with_measurement(cpu)));
    }
    let why = if want_wall {
        "DTREC_BENCH_CLOCK=wall"
    } else {
        "thread CPU time unavailable"
    };
    println!("dtrec-kernels rows bench: wide SIMD path = {path}, clock = wall ({why})");
    run_all(configure(Criterion::default()));
}
