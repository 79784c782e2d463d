//! `f32` scoring kernel: out = α·Q·Itemsᵀ for a few query rows (h·Eᵀ at
//! serving and evaluation time), hand-written with `wide`.
//!
//! For one query row `matrixmultiply::sgemm` wastes most of its micro-kernel
//! (it pads the single row to a full register tile) and first packs all of
//! the item matrix; here the item rows are streamed once, straight from the
//! caller's slice:
//!
//! * queries are taken in chunks of up to 8 rows (R);
//! * each step computes an R×IB block of dot products with R·IB ≤ 8
//!   accumulators of 8 lanes (register blocking: IB = 8, 4, 2, 2, 1, 1, 1, 1
//!   items for R = 1‥8), one FMA per (query row, item row, 8 columns), so
//!   every item load feeds R FMAs and every query load IB FMAs;
//! * the ≤ 8 accumulators are reduced together by one 8×8 transpose and 7
//!   vector adds (instead of 8 separate horizontal sums), giving the R·IB
//!   dot products in one vector;
//! * a width d that is not a multiple of 8 is finished with one zero-padded
//!   chunk; item counts not a multiple of IB with 1-item blocks;
//! * with more than 8 query rows the items are walked in blocks of about
//!   128 KiB, and every query chunk visits a block while it is in L2.
//!
//! Single-threaded by design: parallelism (e.g. over users) is the caller's.
//!
//! Measured on one Zen 4 core (x86-64-v3 build, d = 64, N = 12,102; best of
//! many runs, `benches/matmul.rs` has the criterion version): ~30 GFLOP/s
//! for 1 query row (item streaming from L3 is the limit; sgemm: 2.7, so
//! ~11×), ~75 GFLOP/s for 4‥32 rows; from about 64 rows on sgemm's packed
//! micro-kernel catches up (256 rows: 71 vs 73–77 GFLOP/s), so large
//! batches may as well call `gemm(N, T)`.
//!
//! Every dot product uses the same lane split and reduction tree whatever
//! the block it falls in, so a row's scores are bit-identical whether it is
//! scored alone or in a batch.
//!
//! Accuracy: each dot product is 8 interleaved partial sums over d/8 terms
//! each, combined pairwise, in f32 with FMA. Its error is bounded by about
//! (d/8 + 3)·ε·Σ|qᵢ||eᵢ| (ε = 2⁻²⁴), no worse than a sequential loop.

use wide::f32x8;

use crate::reference::score::check_score_shapes;

const LANES: usize = 8;
/// Items per cache block when more than one query chunk shares the items.
const BLOCK_BYTES: usize = 128 * 1024;

#[inline(always)]
fn load(row: &[f32], at: usize) -> f32x8 {
    let chunk: [f32; LANES] = row[at..at + LANES].try_into().expect("8 lanes");
    f32x8::from(chunk)
}

/// Zero-padded last partial chunk (columns d8‥d) of a row; zeros beyond d,
/// so the padding of the other operand never contributes (even if not 0).
#[inline(always)]
fn load_tail(row: &[f32], d8: usize) -> f32x8 {
    let mut chunk = [0.0f32; LANES];
    let tail = &row[d8..];
    chunk[..tail.len()].copy_from_slice(tail);
    f32x8::from(chunk)
}

/// Horizontal sums of 8 vectors at once: lane t of the result is the sum of
/// the lanes of `v[t]` (transpose, then add the rows pairwise).
#[inline(always)]
fn reduce8(v: [f32x8; 8]) -> f32x8 {
    let t = f32x8::transpose(v);
    ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))
}

/// The R×IB dot products of `queries` rows with `items` rows (each of
/// length d = d8 + tail), in lanes r·IB + b of the returned vector.
/// `query_tails[r]` is the zero-padded tail chunk of query row r.
#[inline(always)]
fn block_dots<const R: usize, const IB: usize>(
    queries: &[&[f32]; R],
    query_tails: &[f32x8; R],
    items: &[&[f32]; IB],
    d8: usize,
    has_tail: bool,
) -> f32x8 {
    let mut acc = [[f32x8::ZERO; IB]; R];
    let mut at = 0;
    while at < d8 {
        let item_chunks: [f32x8; IB] = core::array::from_fn(|b| load(items[b], at));
        for r in 0..R {
            let query_chunk = load(queries[r], at);
            for b in 0..IB {
                acc[r][b] = query_chunk.mul_add(item_chunks[b], acc[r][b]);
            }
        }
        at += LANES;
    }
    if has_tail {
        let item_chunks: [f32x8; IB] = core::array::from_fn(|b| load_tail(items[b], d8));
        for r in 0..R {
            for b in 0..IB {
                acc[r][b] = query_tails[r].mul_add(item_chunks[b], acc[r][b]);
            }
        }
    }
    let mut flat = [f32x8::ZERO; 8];
    for r in 0..R {
        for b in 0..IB {
            flat[r * IB + b] = acc[r][b];
        }
    }
    reduce8(flat)
}

/// Signature of [`chunk_kernel`]: (out rows, query rows, items, d, n,
/// first item, end item, α).
type ChunkKernel = fn(&mut [f32], &[f32], &[f32], usize, usize, usize, usize, f32);

/// out rows (R×n, row stride n) for items `first..last`, R·IB ≤ 8.
#[allow(clippy::too_many_arguments)]
fn chunk_kernel<const R: usize, const IB: usize>(
    out: &mut [f32],
    queries: &[f32],
    items: &[f32],
    d: usize,
    n: usize,
    first: usize,
    last: usize,
    alpha: f32,
) {
    let d8 = d - d % LANES;
    let has_tail = d8 < d;
    let query_rows: [&[f32]; R] = core::array::from_fn(|r| &queries[r * d..(r + 1) * d]);
    let query_tails: [f32x8; R] = core::array::from_fn(|r| load_tail(query_rows[r], d8));
    let alpha_v = f32x8::splat(alpha);
    let mut j = first;
    while j + IB <= last {
        let item_rows: [&[f32]; IB] =
            core::array::from_fn(|b| &items[(j + b) * d..(j + b + 1) * d]);
        let dots = (block_dots::<R, IB>(&query_rows, &query_tails, &item_rows, d8, has_tail)
            * alpha_v)
            .to_array();
        if R == 1 && IB == LANES {
            out[j..j + LANES].copy_from_slice(&dots);
        } else {
            for r in 0..R {
                out[r * n + j..r * n + j + IB].copy_from_slice(&dots[r * IB..(r + 1) * IB]);
            }
        }
        j += IB;
    }
    while j < last {
        let item_row = [&items[j * d..(j + 1) * d]];
        let dots = (block_dots::<R, 1>(&query_rows, &query_tails, &item_row, d8, has_tail)
            * alpha_v)
            .to_array();
        for r in 0..R {
            out[r * n + j] = dots[r];
        }
        j += 1;
    }
}

/// out (q×n) = α · queries (q×d) · itemsᵀ (items is n×d), with
/// q = queries.len()/d and n = items.len()/d. `out` is only written (NaN
/// in it is fine); α = 0 gives zeros without reading the inputs, like
/// [`gemm`](super::matmul::gemm) with β = 0. Tuned for q ≤ 8; any q works.
///
/// Panics if d = 0 or a slice length does not match.
///
/// ```
/// use dtrec_kernels::simd::score::score;
/// let items = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3 items, d = 2
/// let mut out = [f32::NAN; 3];
/// score(&mut out, &[2.0, 3.0], &items, 2, 0.5);
/// assert_eq!(out, [1.0, 1.5, 2.5]);
/// ```
pub fn score(out: &mut [f32], queries: &[f32], items: &[f32], d: usize, alpha: f32) {
    let (q, n) = check_score_shapes(out.len(), queries.len(), items.len(), d);
    if q == 0 || n == 0 {
        return;
    }
    if alpha == 0.0 {
        out.fill(0.0);
        return;
    }
    let block = if q <= LANES {
        n
    } else {
        (BLOCK_BYTES / (d * 4)).max(LANES)
    };
    let mut first = 0;
    while first < n {
        let last = (first + block).min(n);
        for (c, chunk) in queries.chunks(LANES * d).enumerate() {
            let rows = chunk.len() / d;
            let out_rows = &mut out[c * LANES * n..(c * LANES + rows) * n];
            let kernel: ChunkKernel = match rows {
                1 => chunk_kernel::<1, 8>,
                2 => chunk_kernel::<2, 4>,
                3 => chunk_kernel::<3, 2>,
                4 => chunk_kernel::<4, 2>,
                5 => chunk_kernel::<5, 1>,
                6 => chunk_kernel::<6, 1>,
                7 => chunk_kernel::<7, 1>,
                8 => chunk_kernel::<8, 1>,
                _ => unreachable!("chunks of at most 8 rows"),
            };
            kernel(out_rows, chunk, items, d, n, first, last, alpha);
        }
        first = last;
    }
}
