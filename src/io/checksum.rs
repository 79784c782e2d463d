//! 64-bit FNV-1a, the model-file checksum.
//!
//! Not cryptographic: it guards against corruption (bit rot, truncation,
//! a bad copy), not against forgery. Every step `h ← (h ⊕ b) · P` is a
//! bijection of `h` for a fixed byte and injective in the byte for a fixed
//! `h`, so two streams of equal length that differ in exactly one byte always
//! hash differently; other corruptions collide with probability ≈ 2⁻⁶⁴.

/// FNV-1a 64-bit offset basis.
const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a 64 hasher.
///
/// ```
/// use dtrec::io::Fnv1a64;
/// let mut h = Fnv1a64::new();
/// h.update(b"a");
/// assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c); // published FNV-1a test vector
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a64 {
    state: u64,
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a64 {
    /// A hasher over the empty stream.
    pub fn new() -> Self {
        Self {
            state: OFFSET_BASIS,
        }
    }

    /// Appends `bytes` to the hashed stream.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut h = self.state;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        self.state = h;
    }

    /// Appends a `u64` in little-endian order (used for lengths, so that
    /// concatenated fields cannot be re-split into a different stream).
    pub fn update_u64(&mut self, value: u64) {
        self.update(&value.to_le_bytes());
    }

    /// Appends a length-prefixed byte string.
    pub fn update_prefixed(&mut self, bytes: &[u8]) {
        self.update_u64(bytes.len() as u64);
        self.update(bytes);
    }

    /// The hash of everything appended so far.
    pub fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnv(bytes: &[u8]) -> u64 {
        let mut h = Fnv1a64::new();
        h.update(bytes);
        h.finish()
    }

    #[test]
    fn published_test_vectors() {
        // From the FNV reference test suite (Landon Curt Noll).
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut h = Fnv1a64::new();
        h.update(b"foo");
        h.update(b"bar");
        assert_eq!(h.finish(), fnv(b"foobar"));
    }

    #[test]
    fn every_single_bit_flip_changes_the_hash() {
        let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        let base = fnv(&data);
        let mut flipped = data.clone();
        for byte in 0..data.len() {
            for bit in 0..8 {
                flipped[byte] ^= 1 << bit;
                assert_ne!(fnv(&flipped), base, "byte {byte} bit {bit}");
                flipped[byte] ^= 1 << bit;
            }
        }
    }
}
