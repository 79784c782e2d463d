//! Counter-based deterministic RNG: every output is a pure function of
//! (seed, stream, counter), so results never depend on thread scheduling or on
//! the order in which values are drawn.
//!
//! The generator is **Philox4x32-10** (Salmon, Moraes, Dror, Shaw, "Parallel
//! random numbers: as easy as 1, 2, 3", SC 2011; the Random123 library), the
//! counter-based generator behind cuRAND, JAX and PyTorch's GPU RNG. It passes
//! TestU01 BigCrush. Mapping used here:
//!
//! * key (2×32 bits) = the 64-bit seed (low word first);
//! * counter (4×32 bits) = `[counter lo, counter hi, stream lo, stream hi]`;
//! * one block gives 128 bits; [`CounterRng::bits`] is the low 64 bits
//!   (words 0 and 1, word 0 least significant).
//!
//! Streams separate independent uses (e.g. one per parameter tensor, one per
//! dropout site and step) and counters index within a stream. Drawing the same
//! (stream, counter) twice gives the same value by design: a caller that wants
//! a uniform and a normal from one stream must give them distinct counters.
//!
//! The transcendental functions (log, cos) come from `libm`, so [`normal`]
//! values are identical on every platform, not just on this machine.
//!
//! [`normal`]: CounterRng::normal

use crate::real::Real;

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// One Philox4x32 S-box round.
#[inline(always)]
fn philox_round(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let p0 = u64::from(PHILOX_M0) * u64::from(ctr[0]);
    let p1 = u64::from(PHILOX_M1) * u64::from(ctr[2]);
    let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
    let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
    [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0]
}

/// The Philox4x32-10 block function of Random123: 10 rounds, with the key
/// bumped by the Weyl constants between rounds. Verified against the
/// Random123 known-answer vectors (`tests/topk_rng.rs`).
///
/// ```
/// use dtrec_kernels::rng::philox4x32_10;
/// assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
/// ```
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut ctr = philox_round(counter, key);
    let mut key = key;
    for _ in 1..10 {
        key = [
            key[0].wrapping_add(PHILOX_W0),
            key[1].wrapping_add(PHILOX_W1),
        ];
        ctr = philox_round(ctr, key);
    }
    ctr
}

/// 2⁻⁵³: maps the top 53 bits of a u64 onto [0, 1) exactly.
const TWO_POW_M53: f64 = 1.0 / (1u64 << 53) as f64;

#[inline]
fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * TWO_POW_M53
}

/// Counter-based RNG: every output is a pure function of (seed, stream,
/// counter), so results never depend on thread scheduling.
///
/// ```
/// use dtrec_kernels::rng::CounterRng;
/// let rng = CounterRng::new(42);
/// let u = rng.uniform(7, 0);
/// assert!((0.0..1.0).contains(&u));
/// assert_eq!(u, CounterRng::new(42).uniform(7, 0)); // pure function
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRng {
    seed: u64,
}

impl CounterRng {
    /// A generator keyed by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The seed this generator was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The full 128-bit Philox block for (stream, counter), as two u64.
    #[inline]
    fn block(&self, stream: u64, counter: u64) -> (u64, u64) {
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        let ctr = [
            counter as u32,
            (counter >> 32) as u32,
            stream as u32,
            (stream >> 32) as u32,
        ];
        let w = philox4x32_10(ctr, key);
        (
            u64::from(w[0]) | u64::from(w[1]) << 32,
            u64::from(w[2]) | u64::from(w[3]) << 32,
        )
    }

    /// 64 random bits for (stream, counter).
    #[inline]
    pub fn bits(&self, stream: u64, counter: u64) -> u64 {
        self.block(stream, counter).0
    }

    /// Uniform in [0, 1): the top 53 bits of [`bits`](Self::bits) times 2⁻⁵³.
    #[inline]
    pub fn uniform(&self, stream: u64, counter: u64) -> f64 {
        unit_f64(self.bits(stream, counter))
    }

    /// Standard normal N(0, 1) by Box–Muller on the two 64-bit halves of the
    /// (stream, counter) block: z = √(−2 ln u₁)·cos(2π u₂) with u₁ ∈ (0, 1]
    /// (so the log is finite: |z| ≤ √(2·53·ln 2) ≈ 8.57) and u₂ ∈ [0, 1).
    #[inline]
    pub fn normal(&self, stream: u64, counter: u64) -> f64 {
        let (lo, hi) = self.block(stream, counter);
        let u1 = 1.0 - unit_f64(lo);
        let u2 = unit_f64(hi);
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
    }

    /// `out[i] = mean + std·normal(stream, i)`, rounded to `T`.
    pub fn fill_normal<T: Real>(&self, out: &mut [T], stream: u64, mean: f64, std: f64) {
        for (i, x) in out.iter_mut().enumerate() {
            *x = T::from_f64(mean + std * self.normal(stream, i as u64));
        }
    }

    /// Inverted dropout: `mask[i] = 0` with probability p (when
    /// uniform(stream, offset + i) < p), else 1/(1−p), so `E[mask] = 1`.
    /// p = 0 gives all ones. Panics if p ∉ [0, 1) (or p is NaN).
    pub fn fill_dropout_mask<T: Real>(&self, mask: &mut [T], stream: u64, offset: u64, p: f64) {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout probability must be in [0, 1), got {p}"
        );
        let keep = T::from_f64(1.0 / (1.0 - p));
        for (i, x) in mask.iter_mut().enumerate() {
            let dropped = self.uniform(stream, offset.wrapping_add(i as u64)) < p;
            *x = if dropped { T::ZERO } else { keep };
        }
    }

    /// A uniformly random index in 0..n (exactly unbiased), for shuffling and
    /// sampling. Lemire's multiply-shift with rejection: the first draw is
    /// `bits(stream, counter)`; the rare retries (probability < n/2⁶⁴ each)
    /// use the same (stream, counter) under the keys seed + j·φ (j = 1, 2,
    /// …), so they never consume another counter. Panics if n = 0.
    pub fn below(&self, stream: u64, counter: u64, n: u64) -> u64 {
        assert!(n > 0, "below: n must be at least 1");
        let threshold = n.wrapping_neg() % n; // 2⁶⁴ mod n
        let mut draw = self.bits(stream, counter);
        let mut retry: u64 = 0;
        loop {
            let wide = u128::from(draw) * u128::from(n);
            if (wide as u64) >= threshold {
                return (wide >> 64) as u64;
            }
            retry += 1;
            let rekeyed = CounterRng::new(
                self.seed
                    .wrapping_add(retry.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            );
            draw = rekeyed.bits(stream, counter);
        }
    }
}

/// Deterministic Fisher–Yates shuffle driven by (rng, stream): for i from
/// len−1 down to 1, swap item i with item `rng.below(stream, i, i + 1)`.
/// Every permutation is equally likely.
///
/// ```
/// use dtrec_kernels::rng::{shuffle, CounterRng};
/// let mut v: Vec<u32> = (0..10).collect();
/// shuffle(&mut v, &CounterRng::new(1), 0);
/// let mut sorted = v.clone();
/// sorted.sort();
/// assert_eq!(sorted, (0..10).collect::<Vec<_>>());
/// ```
pub fn shuffle<T>(items: &mut [T], rng: &CounterRng, stream: u64) {
    for i in (1..items.len()).rev() {
        let j = rng.below(stream, i as u64, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}
