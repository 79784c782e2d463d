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
//! After criterion, every kernel is measured once more in paired rounds
//! (twin and SIMD alternating on the same buffers, 21 rounds), and a summary
//! table prints each median ratio, its range over the rounds and issue 2's
//! target for it. Criterion times the two sides in separate windows seconds
//! apart, so a neighbour's load that comes and goes (the machines are shared,
//! and the L3 cache with them) can move one side and not the other; within a
//! round it hits both alike. A name filter (`-- layernorm`) applies to both.
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
use criterion::{Criterion, Throughput};
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
/// Alternating twin/SIMD rounds of the paired ratio.
const ROUNDS: usize = 21;
/// Each side of a round runs at least this long.
const ROUND_TIME: Duration = Duration::from_millis(8);

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

/// Which implementation one call runs.
#[derive(Clone, Copy)]
enum Side {
    Twin,
    Simd,
}

/// What issue 2 asks of a kernel's twin ÷ SIMD time ratio.
#[derive(Clone, Copy)]
enum Target {
    /// At least this many times faster (softmax, layernorm, GELU, cross-entropy).
    AtLeast(f64),
    /// Element-wise ops the compiler already vectorises: no slower.
    NoSlower,
    /// Reported, no target.
    None,
}

/// The paired measurement of one kernel: per-call times and the ratio of
/// every round.
struct Paired {
    name: String,
    target: Target,
    twin: Duration,
    simd: Duration,
    ratios: Vec<f64>,
}

impl Paired {
    fn median_ratio(&self) -> f64 {
        self.ratios[self.ratios.len() / 2]
    }

    fn verdict(&self) -> &'static str {
        let r = self.median_ratio();
        match self.target {
            Target::AtLeast(x) if r >= x => "met",
            Target::NoSlower if r >= 1.0 => "met",
            Target::AtLeast(_) | Target::NoSlower => "MISSED",
            Target::None => "",
        }
    }
}

/// Criterion plus the paired summary printed at the end.
struct Bench<M: Measurement> {
    criterion: Criterion<M>,
    clock: fn() -> Duration,
    /// Name filter given on the command line (criterion's positional
    /// argument): groups it does not match are skipped by criterion, and
    /// by the paired rounds too.
    filter: Option<String>,
    paired: Vec<Paired>,
}

impl<M: Measurement> Bench<M> {
    /// Benchmarks `kernel(Side::Twin)` against `kernel(Side::Simd)`: one
    /// criterion group `name` (functions `twin` and `simd`), then
    /// [`ROUNDS`] alternating rounds on the same buffers for the summary.
    fn compare<R>(
        &mut self,
        name: &str,
        elements: usize,
        target: Target,
        mut kernel: impl FnMut(Side) -> R,
    ) {
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !name.contains(f.as_str()))
        {
            return;
        }
        let mut g = self.criterion.benchmark_group(name);
        g.throughput(Throughput::Elements(elements as u64));
        g.bench_function("twin", |b| b.iter(|| kernel(Side::Twin)));
        g.bench_function("simd", |b| b.iter(|| kernel(Side::Simd)));
        g.finish();
        let paired = paired_rounds(self.clock, &mut kernel);
        self.paired.push(Paired {
            name: name.to_string(),
            target,
            ..paired
        });
    }

    fn summary(self) {
        self.criterion.final_summary();
        if self.paired.is_empty() {
            return;
        }
        println!("\npaired twin/SIMD ratios ({ROUNDS} alternating rounds, each side ≥ {ROUND_TIME:?} per round; times are per call, medians):");
        println!(
            "{:<40} {:>11} {:>11} {:>7} {:>13}  target",
            "kernel", "twin", "simd", "ratio", "range"
        );
        for p in &self.paired {
            let target = match p.target {
                Target::AtLeast(x) => format!("≥ {x}× {}", p.verdict()),
                Target::NoSlower => format!("≥ 1× {}", p.verdict()),
                Target::None => String::new(),
            };
            let range = format!("{:.2}–{:.2}×", p.ratios[0], p.ratios[p.ratios.len() - 1]);
            println!(
                "{:<40} {:>11} {:>11} {:>6.2}× {range:>13}  {target}",
                p.name,
                format!("{:.1?}", p.twin),
                format!("{:.1?}", p.simd),
                p.median_ratio(),
            );
        }
    }
}

/// [`ROUNDS`] rounds of twin then SIMD (SIMD first in odd rounds), each side
/// repeated to at least [`ROUND_TIME`]: load from other jobs that comes and
/// goes hits both sides of a round alike, which two separate criterion
/// measurements seconds apart do not guarantee. Ratios come back sorted.
fn paired_rounds<R>(clock: fn() -> Duration, kernel: &mut impl FnMut(Side) -> R) -> Paired {
    let time = |kernel: &mut dyn FnMut(Side) -> R, side, calls: u32| {
        let start = clock();
        for _ in 0..calls {
            black_box(kernel(side));
        }
        clock().saturating_sub(start) / calls
    };
    let once = time(kernel, Side::Twin, 1).max(Duration::from_nanos(100));
    let calls = (ROUND_TIME.as_nanos() / once.as_nanos()).clamp(1, 1_000_000) as u32;
    let (mut twin, mut simd) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 {
            [Side::Twin, Side::Simd]
        } else {
            [Side::Simd, Side::Twin]
        };
        for side in order {
            let t = time(kernel, side, calls * simd_share(side, &twin, &simd));
            match side {
                Side::Twin => twin.push(t),
                Side::Simd => simd.push(t),
            }
        }
    }
    let mut ratios: Vec<f64> = twin
        .iter()
        .zip(&simd)
        .map(|(t, s)| t.as_secs_f64() / s.as_secs_f64().max(1e-12))
        .collect();
    ratios.sort_by(f64::total_cmp);
    twin.sort();
    simd.sort();
    Paired {
        name: String::new(),
        target: Target::None,
        twin: twin[ROUNDS / 2],
        simd: simd[ROUNDS / 2],
        ratios,
    }
}

/// Call-count multiplier of `side`: the SIMD side repeats as often as it
/// takes to run about as long as the twin (from the first round on).
fn simd_share(side: Side, twin: &[Duration], simd: &[Duration]) -> u32 {
    match (side, twin.first(), simd.first()) {
        (Side::Simd, Some(t), Some(s)) => (t.as_nanos() / s.as_nanos().max(1)).clamp(1, 64) as u32,
        _ => 1,
    }
}

fn vector_ops<M: Measurement>(b: &mut Bench<M>) {
    let n = ROWS * D;
    let (x, y0) = (data(n, 1, 1.0), data(n, 2, 1.0));
    let shape = format!("{ROWS}x{D}");
    let rows = || x.chunks_exact(D).zip(y0.chunks_exact(D));

    b.compare(
        &format!("dot_rows/{shape}"),
        n,
        Target::None,
        |side| match side {
            Side::Twin => rows().map(|(a, b)| twin::vector::dot(a, b)).sum::<f32>(),
            Side::Simd => rows().map(|(a, b)| simd::vector::dot(a, b)).sum::<f32>(),
        },
    );
    b.compare(
        &format!("sum_rows/{shape}"),
        n,
        Target::None,
        |side| match side {
            Side::Twin => x.chunks_exact(D).map(twin::vector::sum).sum::<f32>(),
            Side::Simd => x.chunks_exact(D).map(simd::vector::sum).sum::<f32>(),
        },
    );
    b.compare(
        &format!("max_rows/{shape}"),
        n,
        Target::None,
        |side| match side {
            Side::Twin => x.chunks_exact(D).map(twin::vector::max).sum::<f32>(),
            Side::Simd => x.chunks_exact(D).map(simd::vector::max).sum::<f32>(),
        },
    );

    let mut y = y0.clone();
    b.compare(
        &format!("axpy/{shape}"),
        n,
        Target::NoSlower,
        |side| match side {
            Side::Twin => twin::vector::axpy(&mut y, black_box(1e-3), &x),
            Side::Simd => simd::vector::axpy(&mut y, black_box(1e-3), &x),
        },
    );
    b.compare(
        &format!("scale/{shape}"),
        n,
        Target::NoSlower,
        |side| match side {
            Side::Twin => twin::vector::scale(&mut y, black_box(1.0)),
            Side::Simd => simd::vector::scale(&mut y, black_box(1.0)),
        },
    );

    let mut out = vec![0.0f32; n];
    b.compare(
        &format!("add/{shape}"),
        n,
        Target::NoSlower,
        |side| match side {
            Side::Twin => twin::vector::add(&mut out, &x, &y0),
            Side::Simd => simd::vector::add(&mut out, &x, &y0),
        },
    );
}

fn softmax<M: Measurement>(b: &mut Bench<M>) {
    let n = ROWS * D;
    let x = data(n, 3, 4.0);
    let mut out = vec![0.0f32; n];
    let shape = format!("{ROWS}x{D}");
    b.compare(
        &format!("softmax_forward/{shape}"),
        n,
        Target::AtLeast(4.0),
        |side| {
            let rows = out.chunks_exact_mut(D).zip(x.chunks_exact(D));
            match side {
                Side::Twin => rows.for_each(|(o, r)| twin::softmax::softmax_forward(o, r, 0..D)),
                Side::Simd => rows.for_each(|(o, r)| simd::softmax::softmax_forward(o, r, 0..D)),
            }
        },
    );

    let dout = data(n, 4, 1.0);
    let mut dinp = vec![0.0f32; n];
    b.compare(
        &format!("softmax_backward/{shape}"),
        n,
        Target::AtLeast(4.0),
        |side| {
            let rows = dinp
                .chunks_exact_mut(D)
                .zip(dout.chunks_exact(D))
                .zip(out.chunks_exact(D));
            match side {
                Side::Twin => {
                    rows.for_each(|((dx, dy), y)| twin::softmax::softmax_backward(dx, dy, y, 0..D))
                }
                Side::Simd => {
                    rows.for_each(|((dx, dy), y)| simd::softmax::softmax_backward(dx, dy, y, 0..D))
                }
            }
        },
    );
}

fn layernorm<M: Measurement>(b: &mut Bench<M>) {
    let n = ROWS * D;
    let x = data(n, 5, 2.0);
    let (gamma, beta) = (data(D, 6, 1.0), data(D, 7, 1.0));
    let (mut out, mut mean, mut rstd) = (vec![0.0f32; n], vec![0.0f32; ROWS], vec![0.0f32; ROWS]);
    let shape = format!("{ROWS}x{D}");
    b.compare(
        &format!("layernorm_forward/{shape}"),
        n,
        Target::AtLeast(4.0),
        |side| {
            let forward = match side {
                Side::Twin => twin::layernorm::layernorm_forward::<f32>,
                Side::Simd => simd::layernorm::layernorm_forward,
            };
            forward(&mut out, &mut mean, &mut rstd, &x, &gamma, &beta, D, 1e-12)
        },
    );

    let dout = data(n, 8, 1.0);
    let (mut dx, mut dg, mut db) = (vec![0.0f32; n], vec![0.0f32; D], vec![0.0f32; D]);
    b.compare(
        &format!("layernorm_backward/{shape}"),
        n,
        Target::AtLeast(4.0),
        |side| {
            let backward = match side {
                Side::Twin => twin::layernorm::layernorm_backward::<f32>,
                Side::Simd => simd::layernorm::layernorm_backward,
            };
            backward(
                &mut dx, &mut dg, &mut db, &dout, &x, &gamma, &mean, &rstd, D,
            )
        },
    );
}

fn gelu<M: Measurement>(b: &mut Bench<M>) {
    let n = ROWS * D;
    let x = data(n, 9, 4.0);
    let mut out = vec![0.0f32; n];
    let shape = format!("{ROWS}x{D}");
    b.compare(
        &format!("gelu_forward/{shape}"),
        n,
        Target::AtLeast(4.0),
        |side| match side {
            Side::Twin => twin::gelu::gelu_forward(&mut out, &x),
            Side::Simd => simd::gelu::gelu_forward(&mut out, &x),
        },
    );

    let dout = data(n, 10, 1.0);
    let mut dinp = vec![0.0f32; n];
    b.compare(
        &format!("gelu_backward/{shape}"),
        n,
        Target::AtLeast(4.0),
        |side| match side {
            Side::Twin => twin::gelu::gelu_backward(&mut dinp, &dout, &x),
            Side::Simd => simd::gelu::gelu_backward(&mut dinp, &dout, &x),
        },
    );
}

fn cross_entropy<M: Measurement>(b: &mut Bench<M>) {
    type CrossEntropy = fn(Option<&mut [f32]>, &[f32], usize, f32) -> f32;
    let kernel = |side| -> CrossEntropy {
        match side {
            Side::Twin => twin::xent::cross_entropy::<f32>,
            Side::Simd => simd::xent::cross_entropy,
        }
    };
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
        let target = if rows == ROWS {
            Target::AtLeast(4.0)
        } else {
            Target::None
        };

        b.compare(&format!("xent_forward/{shape}"), n, target, |side| {
            let ce = kernel(side);
            let rows = logits.chunks_exact(cols).zip(&targets);
            rows.map(|(row, &t)| ce(None, row, t, 1.0)).sum::<f32>()
        });
        b.compare(&format!("xent_fused_backward/{shape}"), n, target, |side| {
            let ce = kernel(side);
            let rows = dlogits
                .chunks_exact_mut(cols)
                .zip(logits.chunks_exact(cols))
                .zip(&targets);
            rows.map(|((g, row), &t)| ce(Some(g), row, t, dloss))
                .sum::<f32>()
        });
    }
}

fn adam<M: Measurement>(b: &mut Bench<M>) {
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
    b.compare(&format!("adam_update/{n}"), n, Target::NoSlower, |side| {
        let update = match side {
            Side::Twin => twin::adam::adam_update::<f32>,
            Side::Simd => simd::adam::adam_update,
        };
        update(&mut param, &grad, &mut m, &mut v, &step)
    });
}

/// Every group, under the given criterion configuration and clock.
fn run_all<M: Measurement>(criterion: Criterion<M>, clock: fn() -> Duration) {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut b = Bench {
        criterion,
        clock,
        filter,
        paired: Vec::new(),
    };
    vector_ops(&mut b);
    softmax(&mut b);
    layernorm(&mut b);
    gelu(&mut b);
    cross_entropy(&mut b);
    adam(&mut b);
    b.summary();
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

/// Wall-clock time since the first call.
fn wall_now() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
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
        return run_all(
            configure(Criterion::default().with_measurement(cpu)),
            thread_cpu::now,
        );
    }
    let why = if want_wall {
        "DTREC_BENCH_CLOCK=wall"
    } else {
        "thread CPU time unavailable"
    };
    println!("dtrec-kernels rows bench: wide SIMD path = {path}, clock = wall ({why})");
    run_all(configure(Criterion::default()), wall_now);
}
