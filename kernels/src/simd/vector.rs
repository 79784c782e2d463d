//! Vector kernels for `f32` on `wide` lanes, plus the lane helpers the other
//! row kernels share (whole-lane and padded loads/stores, a vectorised exp).
//!
//! Reductions (`dot`, `sum`, `max`) keep `ACCUMULATORS` independent lane
//! accumulators: that hides the add latency, and summing in 32 partial sums
//! instead of one also shrinks the rounding error of long sums (each partial
//! sum sees 1/32 of the terms), so they are at least as accurate as the
//! left-to-right scalar twin, though not bit-identical to it.

use wide::{f32x8, u32x8};

/// The lane type every `f32` row kernel computes in: one AVX2 register.
/// `wide::f32x16` (one AVX-512 register, two AVX2 registers) was measured
/// too: on an AVX-512 build it made the exp-heavy kernels (GELU, cross
/// entropy) 1.3–1.6× faster but the short-row softmax/layernorm backward
/// kernels 5–8% slower, and on AVX2 it was slower or equal except GELU.
/// One lane type keeps the code simple.
pub(crate) type Lanes = f32x8;
/// The unsigned-integer twin of [`Lanes`] (for exponent bit tricks).
type LaneBits = u32x8;
/// Floats per [`Lanes`].
pub(crate) const LANES: usize = 8;
/// Independent accumulators in long reductions.
const ACCUMULATORS: usize = 4;
/// Floats consumed per unrolled reduction step.
const STRIDE: usize = LANES * ACCUMULATORS;

/// Loads exactly [`LANES`] floats (`chunk` comes from `chunks_exact(LANES)`).
#[inline(always)]
pub(crate) fn load(chunk: &[f32]) -> Lanes {
    let array: [f32; LANES] = chunk.try_into().expect("chunk of exactly LANES floats");
    Lanes::new(array)
}

/// Stores exactly [`LANES`] floats.
#[inline(always)]
pub(crate) fn store(chunk: &mut [f32], v: Lanes) {
    chunk.copy_from_slice(v.as_array());
}

/// Loads a tail of fewer than [`LANES`] floats, padding with `fill`. Written
/// as a fixed-trip select loop (compiled to a masked load) rather than a
/// copy, which would become a `memcpy` call and force every live vector
/// register of the caller onto the stack.
#[inline(always)]
pub(crate) fn load_padded(part: &[f32], fill: f32) -> Lanes {
    let mut array = [fill; LANES];
    for (i, slot) in array.iter_mut().enumerate() {
        if i < part.len() {
            *slot = part[i];
        }
    }
    Lanes::new(array)
}

/// Stores the first `part.len()` (< [`LANES`]) lanes of `v` (a fixed-trip
/// loop, for the same reason as [`load_padded`]).
#[inline(always)]
pub(crate) fn store_part(part: &mut [f32], v: Lanes) {
    let lanes = v.as_array();
    for (i, slot) in part.iter_mut().enumerate().take(LANES) {
        *slot = lanes[i];
    }
}

/// Largest lane of `v` (the lanes hold no NaN in our uses): three
/// shuffle-and-max steps (halves, pairs, neighbours), a dependency chain of
/// six instructions instead of seven dependent scalar maxima.
#[inline(always)]
pub(crate) fn reduce_max(v: Lanes) -> f32 {
    let a = v.to_array();
    let m = v.fast_max(Lanes::new([a[4], a[5], a[6], a[7], a[0], a[1], a[2], a[3]]));
    let a = m.to_array();
    let m = m.fast_max(Lanes::new([a[2], a[3], a[0], a[1], a[6], a[7], a[4], a[5]]));
    let a = m.to_array();
    let m = m.fast_max(Lanes::new([a[1], a[0], a[3], a[2], a[5], a[4], a[7], a[6]]));
    m.to_array()[0]
}

/// Lane-wise maximum that propagates a NaN in `x` (x86 `maxps` returns its
/// second operand when either is NaN).
#[inline(always)]
pub(crate) fn max_keep_nan(seed: Lanes, x: Lanes) -> Lanes {
    seed.fast_max(x)
}

/// Lane-wise e^x, to about 2 ulp for −87 ≤ x ≤ 88.3; results below e^−87
/// (≈ 1.6e−38, the edge of the normal range) are flushed to exactly 0, so
/// −∞ gives 0; x ≳ 88.4 gives +∞; NaN gives NaN.
///
/// Method (Cephes `expf`): x = n·ln2 + r with n = round(x·log₂e) and
/// |r| ≤ ln2/2, r computed in two steps with ln2 split into a short high
/// part (exact product n·LN2_HI) and a low correction; e^r by Cephes'
/// degree-7 minimax polynomial (relative error ~1e−7 on that interval); 2ⁿ
/// built directly in the exponent bits. The rounding of x·log₂e uses the
/// 1.5·2²³ trick: adding it pushes the fraction out of the mantissa, so the
/// low mantissa bits of the sum hold n and can be shifted into the exponent
/// field without a float→int conversion.
#[inline(always)]
pub(crate) fn exp(x: Lanes) -> Lanes {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND_MAGIC: f32 = 12_582_912.0; // 1.5·2²³
    const LO: f32 = -87.0;
    const HI: f32 = 88.5;
    // Clamp into the range where 2ⁿ is a normal float (n ∈ [−126, 128]);
    // `fast_max/fast_min` with x second keep a NaN in x.
    let xc = Lanes::splat(HI).fast_min(Lanes::splat(LO).fast_max(x));
    let shifted = xc.mul_add(Lanes::splat(LOG2E), Lanes::splat(ROUND_MAGIC));
    let n = shifted - Lanes::splat(ROUND_MAGIC);
    let r = n.mul_neg_add(Lanes::splat(LN2_HI), xc);
    let r = n.mul_neg_add(Lanes::splat(LN2_LO), r);
    let mut p = Lanes::splat(1.987_569_2e-4);
    p = p.mul_add(r, Lanes::splat(1.398_199_9e-3));
    p = p.mul_add(r, Lanes::splat(8.333_452e-3));
    p = p.mul_add(r, Lanes::splat(4.166_579_6e-2));
    p = p.mul_add(r, Lanes::splat(1.666_666_5e-1));
    p = p.mul_add(r, Lanes::splat(0.5)); // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let e_r = p.mul_add(r * r, r) + Lanes::ONE;
    // The low bits of `shifted` are n (two's complement); the bits above
    // the exponent field fall off in the shift.
    let two_n = Lanes::from_bits((shifted.to_bits() + LaneBits::splat(127)) << 23);
    let result = e_r * two_n;
    // Flush: keep lanes with x ≥ LO (false for −∞; NaN is kept as NaN by
    // the `| is_nan` term).
    let keep = x.simd_ge(Lanes::splat(LO)) | x.simd_ne(x);
    result & keep
}

/// Σ aᵢ·bᵢ in `ACCUMULATORS`×`LANES` partial sums.
///
/// # Panics
/// If `a.len() != b.len()`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: length mismatch");
    let mut acc = [Lanes::ZERO; ACCUMULATORS];
    let (a_main, a_rest) = a.split_at(a.len() - a.len() % STRIDE);
    let (b_main, b_rest) = b.split_at(a_main.len());
    for (ca, cb) in a_main.chunks_exact(STRIDE).zip(b_main.chunks_exact(STRIDE)) {
        for (k, slot) in acc.iter_mut().enumerate() {
            let lane = k * LANES..(k + 1) * LANES;
            *slot = load(&ca[lane.clone()]).mul_add(load(&cb[lane]), *slot);
        }
    }
    let mut ca = a_rest.chunks_exact(LANES);
    let mut cb = b_rest.chunks_exact(LANES);
    for (xa, xb) in (&mut ca).zip(&mut cb) {
        acc[0] = load(xa).mul_add(load(xb), acc[0]);
    }
    let tail = load_padded(ca.remainder(), 0.0) * load_padded(cb.remainder(), 0.0);
    ((acc[0] + acc[1]) + (acc[2] + acc[3]) + tail).reduce_add()
}

/// Floats before the first 32-byte boundary of `x` (0..LANES): the
/// element-wise kernels handle them one by one so that every lane group of
/// the written slice, and of inputs with the same misalignment (the usual
/// case: the system allocator returns 16-byte aligned blocks), is aligned
/// and no load or store straddles two cache lines. Element-wise results do
/// not depend on this split (the head computes each element exactly as the
/// lanes do), so it does not affect determinism.
#[inline(always)]
fn unaligned_head(x: &[f32]) -> usize {
    x.as_ptr().align_offset(LANES * 4).min(x.len())
}

/// y += α·x (one fused multiply-add per element).
///
/// # Panics
/// If `y.len() != x.len()`.
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len(), "axpy: length mismatch");
    let (y_head, y) = y.split_at_mut(unaligned_head(y));
    let (x_head, x) = x.split_at(y_head.len());
    for (yi, &xi) in y_head.iter_mut().zip(x_head) {
        *yi = alpha.mul_add(xi, *yi);
    }
    let a = Lanes::splat(alpha);
    let mut cy = y.chunks_exact_mut(LANES);
    let mut cx = x.chunks_exact(LANES);
    for (yc, xc) in (&mut cy).zip(&mut cx) {
        store(yc, a.mul_add(load(xc), load(yc)));
    }
    for (yi, &xi) in cy.into_remainder().iter_mut().zip(cx.remainder()) {
        *yi = alpha.mul_add(xi, *yi);
    }
}

/// x *= α.
pub fn scale(x: &mut [f32], alpha: f32) {
    let (head, x) = x.split_at_mut(unaligned_head(x));
    for xi in head {
        *xi *= alpha;
    }
    let a = Lanes::splat(alpha);
    let mut cx = x.chunks_exact_mut(LANES);
    for c in &mut cx {
        store(c, load(c) * a);
    }
    for xi in cx.into_remainder() {
        *xi *= alpha;
    }
}

/// out = a + b (out is only written).
///
/// # Panics
/// If the three lengths differ.
pub fn add(out: &mut [f32], a: &[f32], b: &[f32]) {
    assert_eq!(out.len(), a.len(), "add: length mismatch");
    assert_eq!(out.len(), b.len(), "add: length mismatch");
    let (out_head, out) = out.split_at_mut(unaligned_head(out));
    let ((a_head, a), (b_head, b)) = (a.split_at(out_head.len()), b.split_at(out_head.len()));
    for ((o, &xa), &xb) in out_head.iter_mut().zip(a_head).zip(b_head) {
        *o = xa + xb;
    }
    // Four lane groups per step: the loop overhead of one group per step
    // (the compiler does not unroll this loop by itself) shows when the
    // three streams come from L1/L2.
    let mut wide_o = out.chunks_exact_mut(STRIDE);
    let mut wide_a = a.chunks_exact(STRIDE);
    let mut wide_b = b.chunks_exact(STRIDE);
    for ((o, xa), xb) in (&mut wide_o).zip(&mut wide_a).zip(&mut wide_b) {
        for ((o, xa), xb) in o
            .chunks_exact_mut(LANES)
            .zip(xa.chunks_exact(LANES))
            .zip(xb.chunks_exact(LANES))
        {
            store(o, load(xa) + load(xb));
        }
    }
    let mut co = wide_o.into_remainder().chunks_exact_mut(LANES);
    let mut ca = wide_a.remainder().chunks_exact(LANES);
    let mut cb = wide_b.remainder().chunks_exact(LANES);
    for ((o, xa), xb) in (&mut co).zip(&mut ca).zip(&mut cb) {
        store(o, load(xa) + load(xb));
    }
    for ((o, &xa), &xb) in co
        .into_remainder()
        .iter_mut()
        .zip(ca.remainder())
        .zip(cb.remainder())
    {
        *o = xa + xb;
    }
}

/// Σ xᵢ in `ACCUMULATORS`×`LANES` partial sums (0 for an empty slice).
#[inline]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [Lanes::ZERO; ACCUMULATORS];
    let mut chunks = x.chunks_exact(STRIDE);
    for c in &mut chunks {
        for (k, slot) in acc.iter_mut().enumerate() {
            *slot += load(&c[k * LANES..(k + 1) * LANES]);
        }
    }
    let mut rest = chunks.remainder().chunks_exact(LANES);
    for c in &mut rest {
        acc[0] += load(c);
    }
    let tail = load_padded(rest.remainder(), 0.0);
    ((acc[0] + acc[1]) + (acc[2] + acc[3]) + tail).reduce_add()
}

/// max xᵢ, seeded with −∞ (so an empty slice gives −∞). Which value wins
/// when NaN is present is unspecified.
#[inline]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [Lanes::splat(f32::NEG_INFINITY); ACCUMULATORS];
    let mut chunks = x.chunks_exact(STRIDE);
    for c in &mut chunks {
        for (k, slot) in acc.iter_mut().enumerate() {
            *slot = max_keep_nan(*slot, load(&c[k * LANES..(k + 1) * LANES]));
        }
    }
    let mut rest = chunks.remainder().chunks_exact(LANES);
    for c in &mut rest {
        acc[0] = max_keep_nan(acc[0], load(c));
    }
    let tail = load_padded(rest.remainder(), f32::NEG_INFINITY);
    let m = max_keep_nan(max_keep_nan(acc[0], acc[1]), max_keep_nan(acc[2], acc[3]));
    reduce_max(max_keep_nan(m, tail))
}
