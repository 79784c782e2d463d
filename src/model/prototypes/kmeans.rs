//! K-means++ on the rows of an (n × d) row-major matrix: seeded and
//! deterministic, warm-startable, with a bounded number of Lloyd iterations.
//!
//! * **Seeding** (no warm start): K-means++ (Arthur & Vassilvitskii 2007).
//!   The first centre is row `below(0, 0, n)`; centre j ≥ 1 is drawn with
//!   probability ∝ D²(x) (squared distance to the nearest chosen centre) by
//!   inverting the f64 cumulative sum of D² (summed in row order) at
//!   `uniform(1, j)·ΣD²`. If every D² is 0 (fewer distinct rows than k) the
//!   centre is row `below(2, j, n)`. Streams are those of
//!   [`CounterRng::new(seed)`](CounterRng).
//! * **Lloyd**: assign every row to its nearest centroid (lowest index on
//!   ties), recompute centroids as f64 means of their rows (summed in row
//!   order), repeat at most `max_iters` times; stop early when an
//!   assignment step changes no row.
//! * **Empty clusters**: after an assignment step, each empty cluster (in
//!   increasing index order) takes the row farthest from its centroid (lowest
//!   row index on ties) among rows whose cluster keeps at least one other
//!   row; that row moves to the empty cluster before the means are computed.
//! * **k ≥ n**: every row is its own cluster (centroid i = row i, n
//!   centroids), no iteration.
//!
//! Distances use the kernels: ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖², with the x·c
//! block from [`Kernels::gemm`] and the norms from [`Kernels::dot`], clamped
//! at 0 (the expansion can round slightly below 0 for near-equal vectors).
//! Rows are processed in fixed blocks of [`ROW_BLOCK`] rows whether or not
//! the assignment runs in parallel, so the parallel result is bit-identical
//! to the serial one by construction (each block's gemm sees the same
//! operands).
//!
//! ```
//! use dtrec::model::prototypes::kmeans::{kmeans, KMeansConfig};
//! // two blobs on a line: {0, 0.1} and {10, 10.1}
//! let rows = [0.0f32, 0.1, 10.0, 10.1];
//! let fit = kmeans(&rows, 4, 1, &KMeansConfig::new(2, 7), None).unwrap();
//! assert_eq!(fit.assignments[0], fit.assignments[1]);
//! assert_eq!(fit.assignments[2], fit.assignments[3]);
//! assert_ne!(fit.assignments[0], fit.assignments[2]);
//! ```

use std::fmt;

use dtrec_kernels::rng::CounterRng;
use dtrec_kernels::{Kernels, Trans};
use rayon::prelude::*;

/// Rows per block of the assignment step (fixed, so serial and parallel runs
/// compute exactly the same products).
pub const ROW_BLOCK: usize = 256;

/// Default number of Lloyd iterations (method.md §3: "~25").
pub const DEFAULT_MAX_ITERS: usize = 25;

/// RNG stream of the first K-means++ centre.
const STREAM_FIRST: u64 = 0;
/// RNG stream of the D²-weighted draws.
const STREAM_DSQ: u64 = 1;
/// RNG stream of the uniform fallback when every D² is 0.
const STREAM_FALLBACK: u64 = 2;

/// Settings of one K-means run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KMeansConfig {
    /// Number of clusters requested (≥ 1). With k ≥ n the result has n.
    pub k: usize,
    /// Maximum number of Lloyd iterations (update + assignment); 0 returns
    /// the seeding (or warm start) with its assignment.
    pub max_iters: usize,
    /// Seed of the K-means++ draws.
    pub seed: u64,
    /// Run the assignment step on the rayon pool (bit-identical to serial).
    pub parallel: bool,
}

impl KMeansConfig {
    /// `k` clusters, `seed`, [`DEFAULT_MAX_ITERS`] iterations, serial.
    pub fn new(k: usize, seed: u64) -> Self {
        Self {
            k,
            max_iters: DEFAULT_MAX_ITERS,
            seed,
            parallel: false,
        }
    }
}

/// The result of [`kmeans`].
#[derive(Clone, Debug, PartialEq)]
pub struct KMeansFit<T> {
    /// Centroids, (k × d) row-major, k = min(requested k, n).
    pub centroids: Vec<T>,
    /// Cluster of every row (n), each < k: the nearest returned centroid
    /// (lowest index on ties, by the kernel distance).
    pub assignments: Vec<u32>,
    /// Number of centroids (rows of `centroids`).
    pub k: usize,
    /// Width of every row.
    pub d: usize,
    /// Lloyd iterations run (update + assignment steps).
    pub iterations: usize,
    /// Whether the last assignment step changed no row (a fixed point).
    pub converged: bool,
    /// Inertia Σ‖x − c_a(x)‖² after the initial assignment and after each
    /// iteration (`iterations + 1` values), summed in f64 from exact
    /// differences (not the kernel expansion).
    pub inertia: Vec<f64>,
}

/// Invalid K-means input (a caller error, reported instead of a panic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KMeansError {
    /// k = 0.
    ZeroClusters,
    /// n = 0 or d = 0.
    EmptyInput {
        /// Rows.
        n: usize,
        /// Width.
        d: usize,
    },
    /// `data.len() != n·d` (or n·d overflows).
    ShapeMismatch {
        /// Slice length.
        len: usize,
        /// Rows.
        n: usize,
        /// Width.
        d: usize,
    },
    /// A NaN or infinite entry.
    NonFinite {
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
    },
    /// Warm-start centroids are not (min(k, n) × d), or not finite.
    BadWarmStart {
        /// Slice length given.
        len: usize,
        /// Expected length.
        expected: usize,
    },
    /// n does not fit the u32 assignments.
    TooManyRows {
        /// Rows.
        n: usize,
    },
}

impl fmt::Display for KMeansError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KMeansError::ZeroClusters => write!(f, "k-means: k must be at least 1"),
            KMeansError::EmptyInput { n, d } => {
                write!(f, "k-means: empty input ({n} rows of width {d})")
            }
            KMeansError::ShapeMismatch { len, n, d } => {
                write!(f, "k-means: data has {len} values, expected {n}×{d}")
            }
            KMeansError::NonFinite { row, col } => {
                write!(f, "k-means: non-finite value at row {row}, column {col}")
            }
            KMeansError::BadWarmStart { len, expected } => write!(
                f,
                "k-means: warm-start centroids have {len} values (expected {expected}, all finite)"
            ),
            KMeansError::TooManyRows { n } => {
                write!(f, "k-means: {n} rows exceed the u32 cluster ids")
            }
        }
    }
}

impl std::error::Error for KMeansError {}

/// Clusters the n rows of `data` (n × d, row-major) into
/// min(`config.k`, n) clusters. `warm_start`, if given, holds min(k, n) × d
/// starting centroids and replaces the K-means++ seeding (it is ignored when
/// k ≥ n, where the answer is fixed).
///
/// Deterministic: the result depends only on the inputs and `config.seed`
/// (not on `config.parallel` or the thread count).
pub fn kmeans<T: Kernels>(
    data: &[T],
    n: usize,
    d: usize,
    config: &KMeansConfig,
    warm_start: Option<&[T]>,
) -> Result<KMeansFit<T>, KMeansError> {
    validate(data, n, d, config.k)?;
    if config.k >= n {
        return Ok(singletons(data, n, d));
    }
    let k = config.k;
    let mut centroids = match warm_start {
        Some(c) => {
            if c.len() != k * d || c.iter().any(|x| !x.is_finite()) {
                return Err(KMeansError::BadWarmStart {
                    len: c.len(),
                    expected: k * d,
                });
            }
            c.to_vec()
        }
        None => seed_plus_plus(data, n, d, k, config.seed),
    };
    let row_norms: Vec<T> = data.chunks_exact(d).map(|x| T::dot(x, x)).collect();

    // pass 0: assignment to the starting centroids
    let (mut assignments, mut dist) = assign(data, &row_norms, &centroids, d, config.parallel);
    let mut inertia = vec![exact_inertia(data, &centroids, &assignments, d)];
    let mut iterations = 0;
    let mut converged = false;
    while iterations < config.max_iters {
        iterations += 1;
        // pass 1: empty clusters take the farthest rows, then centroids = means
        let assigned = assignments.clone();
        relocate_empty(&mut assignments, &mut dist, k);
        centroids = means(data, &assignments, &centroids, d);
        // pass 2: re-assign; converged when the assignment step reproduces
        // the previous one (rows moved by relocation that return to their
        // cluster only do so on exact distance ties, i.e. duplicate rows)
        let (next, next_dist) = assign(data, &row_norms, &centroids, d, config.parallel);
        let unchanged = next == assigned;
        assignments = next;
        dist = next_dist;
        inertia.push(exact_inertia(data, &centroids, &assignments, d));
        if unchanged {
            converged = true;
            break;
        }
    }
    Ok(KMeansFit {
        centroids,
        assignments,
        k,
        d,
        iterations,
        converged,
        inertia,
    })
}

/// Squared distances (m × k, row-major) from the rows of `rows` (m × d) to
/// the centroids (k × d) by the kernel expansion, clamped at 0.
pub fn squared_distances<T: Kernels>(rows: &[T], centroids: &[T], d: usize) -> Vec<T> {
    assert!(d > 0 && rows.len() % d == 0 && centroids.len() % d == 0);
    let m = rows.len() / d;
    let k = centroids.len() / d;
    let row_norms: Vec<T> = rows.chunks_exact(d).map(|x| T::dot(x, x)).collect();
    let cent_norms: Vec<T> = centroids.chunks_exact(d).map(|c| T::dot(c, c)).collect();
    let mut out = vec![T::ZERO; m * k];
    distance_block(&mut out, rows, &row_norms, centroids, &cent_norms, d);
    out
}

fn validate<T: Kernels>(data: &[T], n: usize, d: usize, k: usize) -> Result<(), KMeansError> {
    if k == 0 {
        return Err(KMeansError::ZeroClusters);
    }
    if n == 0 || d == 0 {
        return Err(KMeansError::EmptyInput { n, d });
    }
    if n.checked_mul(d) != Some(data.len()) {
        return Err(KMeansError::ShapeMismatch {
            len: data.len(),
            n,
            d,
        });
    }
    if u32::try_from(n).is_err() {
        return Err(KMeansError::TooManyRows { n });
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(KMeansError::NonFinite {
            row: i / d,
            col: i % d,
        });
    }
    Ok(())
}

fn singletons<T: Kernels>(data: &[T], n: usize, d: usize) -> KMeansFit<T> {
    KMeansFit {
        centroids: data.to_vec(),
        assignments: (0..n as u32).collect(),
        k: n,
        d,
        iterations: 0,
        converged: true,
        inertia: vec![0.0],
    }
}

/// K-means++ seeding (see the module docs for the exact draws).
fn seed_plus_plus<T: Kernels>(data: &[T], n: usize, d: usize, k: usize, seed: u64) -> Vec<T> {
    let rng = CounterRng::new(seed);
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let row_norms: Vec<T> = data.chunks_exact(d).map(|x| T::dot(x, x)).collect();
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.below(STREAM_FIRST, 0, n as u64) as usize;
    centroids.extend_from_slice(row(first));
    // D² to the nearest chosen centre, kept in f64 for the cumulative draw
    let mut dsq: Vec<f64> = (0..n)
        .map(|i| expanded_sq(row(i), row_norms[i], row(first), row_norms[first]))
        .collect();
    for j in 1..k {
        let total: f64 = dsq.iter().sum();
        let chosen = if total > 0.0 {
            let target = rng.uniform(STREAM_DSQ, j as u64) * total;
            let mut acc = 0.0;
            // first row whose cumulative D² exceeds the target; rows with
            // D² = 0 (already centres) can never be picked
            let mut pick = None;
            for (i, &w) in dsq.iter().enumerate() {
                acc += w;
                if w > 0.0 && acc > target {
                    pick = Some(i);
                    break;
                }
            }
            // rounding can leave acc ≤ target at the end: take the last row
            // with positive weight
            pick.unwrap_or_else(|| dsq.iter().rposition(|&w| w > 0.0).unwrap_or(0))
        } else {
            rng.below(STREAM_FALLBACK, j as u64, n as u64) as usize
        };
        centroids.extend_from_slice(row(chosen));
        let c = row(chosen);
        let cc = row_norms[chosen];
        for (i, v) in dsq.iter_mut().enumerate() {
            let e = expanded_sq(row(i), row_norms[i], c, cc);
            if e < *v {
                *v = e;
            }
        }
    }
    centroids
}

/// ‖x − c‖² by the expansion with the kernel dot, clamped at 0, as f64.
fn expanded_sq<T: Kernels>(x: &[T], xx: T, c: &[T], cc: T) -> f64 {
    let two = T::from_f64(2.0);
    let v = xx - two * T::dot(x, c) + cc;
    v.max(T::ZERO).to_f64()
}

/// out (m × k) = clamp₀(‖x‖² − 2·X·Cᵀ + ‖c‖²).
fn distance_block<T: Kernels>(
    out: &mut [T],
    rows: &[T],
    row_norms: &[T],
    centroids: &[T],
    cent_norms: &[T],
    d: usize,
) {
    let m = row_norms.len();
    let k = cent_norms.len();
    T::gemm(
        m,
        k,
        d,
        T::from_f64(-2.0),
        rows,
        Trans::N,
        centroids,
        Trans::T,
        T::ZERO,
        out,
    );
    for (dist_row, &xx) in out.chunks_exact_mut(k).zip(row_norms) {
        for (v, &cc) in dist_row.iter_mut().zip(cent_norms) {
            *v = (*v + xx + cc).max(T::ZERO);
        }
    }
}

/// Nearest centroid of every row (lowest index on ties) and its squared
/// distance, block by block.
fn assign<T: Kernels>(
    data: &[T],
    row_norms: &[T],
    centroids: &[T],
    d: usize,
    parallel: bool,
) -> (Vec<u32>, Vec<T>) {
    let k = centroids.len() / d;
    let cent_norms: Vec<T> = centroids.chunks_exact(d).map(|c| T::dot(c, c)).collect();
    let block = |(rows, norms): (&[T], &[T])| -> Vec<(u32, T)> {
        let mut dist = vec![T::ZERO; norms.len() * k];
        distance_block(&mut dist, rows, norms, centroids, &cent_norms, d);
        dist.chunks_exact(k)
            .map(|r| {
                let mut best = 0;
                for j in 1..k {
                    // strict: the lowest index wins ties
                    if r[j] < r[best] {
                        best = j;
                    }
                }
                (best as u32, r[best])
            })
            .collect()
    };
    let blocks: Vec<Vec<(u32, T)>> = if parallel {
        data.par_chunks(ROW_BLOCK * d)
            .zip(row_norms.par_chunks(ROW_BLOCK))
            .map(block)
            .collect()
    } else {
        data.chunks(ROW_BLOCK * d)
            .zip(row_norms.chunks(ROW_BLOCK))
            .map(block)
            .collect()
    };
    blocks.into_iter().flatten().unzip()
}

/// Moves the farthest rows into empty clusters.
fn relocate_empty<T: Kernels>(assignments: &mut [u32], dist: &mut [T], k: usize) {
    let mut counts = vec![0usize; k];
    for &a in assignments.iter() {
        counts[a as usize] += 1;
    }
    for j in 0..k {
        if counts[j] > 0 {
            continue;
        }
        // k < n, so by pigeonhole some cluster holds ≥ 2 rows while one is
        // empty: a donor always exists
        let mut far: Option<usize> = None;
        for (i, &a) in assignments.iter().enumerate() {
            if counts[a as usize] < 2 {
                continue;
            }
            if far.is_none_or(|f| dist[i] > dist[f]) {
                far = Some(i);
            }
        }
        if let Some(i) = far {
            counts[assignments[i] as usize] -= 1;
            assignments[i] = j as u32;
            counts[j] = 1;
            dist[i] = T::ZERO;
        }
    }
}

/// Centroids = f64 means of their rows (row order); a cluster with no row
/// keeps its previous centroid (cannot happen after `relocate_empty`).
fn means<T: Kernels>(data: &[T], assignments: &[u32], previous: &[T], d: usize) -> Vec<T> {
    let k = previous.len() / d;
    let mut sums = vec![0.0f64; k * d];
    let mut counts = vec![0usize; k];
    for (x, &a) in data.chunks_exact(d).zip(assignments) {
        let a = a as usize;
        counts[a] += 1;
        for (s, &v) in sums[a * d..(a + 1) * d].iter_mut().zip(x) {
            *s += v.to_f64();
        }
    }
    let mut out = previous.to_vec();
    for j in 0..k {
        if counts[j] == 0 {
            continue;
        }
        let inv = counts[j] as f64;
        for (o, &s) in out[j * d..(j + 1) * d]
            .iter_mut()
            .zip(&sums[j * d..(j + 1) * d])
        {
            *o = T::from_f64(s / inv);
        }
    }
    out
}

/// Σ‖x − c_a(x)‖² from exact differences, in f64 (row order).
pub fn exact_inertia<T: Kernels>(
    data: &[T],
    centroids: &[T],
    assignments: &[u32],
    d: usize,
) -> f64 {
    data.chunks_exact(d)
        .zip(assignments)
        .map(|(x, &a)| {
            let c = &centroids[a as usize * d..(a as usize + 1) * d];
            x.iter()
                .zip(c)
                .map(|(&u, &v)| {
                    let e = u.to_f64() - v.to_f64();
                    e * e
                })
                .sum::<f64>()
        })
        .sum()
}
