//! SplitMix64 (Steele, Lea & Flood 2014): the sequential generator behind the
//! synthetic dataset. It is private to `data` and frozen, so the dataset a
//! seed gives never changes with the kernels' RNG. (Epoch shuffling uses
//! `dtrec_kernels::rng`.)

/// SplitMix64 state.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for sub-stream `stream` of `seed` (independent streams
    /// for e.g. each epoch or each user).
    pub(crate) fn with_stream(seed: u64, stream: u64) -> Self {
        let mut g = SplitMix64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = g.next_u64();
        SplitMix64(s ^ stream)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; `n > 0`). The bias is
    /// below n / 2^64, irrelevant at our sizes.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Index drawn from unnormalised non-negative `weights` (sum > 0).
    pub(crate) fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.next_f64() * total;
        for (k, &w) in weights.iter().enumerate() {
            if x < w {
                return k;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_covers_range_uniformly() {
        let mut g = SplitMix64::with_stream(1, 0);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[g.below(5) as usize] += 1;
        }
        // Each bucket expects 10,000 with sd ≈ 89; 5 sd is a loose bound.
        assert!(
            counts.iter().all(|&c| (9_550..=10_450).contains(&c)),
            "{counts:?}"
        );
    }
}
