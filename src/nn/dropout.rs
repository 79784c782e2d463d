//! Inverted dropout with deterministic, counter-based masks.
//!
//! A mask value is a pure function of (step seed, stream, offset): the stream
//! names the layer and the site ([`stream_id`]), the offset names the element
//! by its *global* coordinates (sequence index in the whole batch, position
//! id, feature), never by a thread's chunk or a packed row index. So the masks
//! are the same whatever the chunking or the number of threads.
//!
//! Cost: a Philox4x32-10 block gives 128 bits and a Bernoulli draw needs
//! far fewer, so [`fill_mask`] cuts each block into eight 16-bit uniforms
//! (element e uses bits 16·(e mod 8).. of the block at counter ⌊e/8⌋, with
//! the key/counter mapping of [`CounterRng`]). The drop probability is
//! thereby rounded to a multiple of 2⁻¹⁶ (exact for 0.5; 0.2 becomes
//! 0.19999695) and the kept value is scaled by the exact inverse keep rate,
//! so `E[mask] = 1` exactly. One block per element made mask generation 29% of
//! a training step; eight per block brings it to a few percent.

use crate::kernels::rng::{philox4x32_10, CounterRng};
use crate::kernels::{Kernels, Real};

/// Where in the network a dropout mask is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Site {
    /// After the input LayerNorm (`layer` = 0 in [`stream_id`]).
    Input = 0,
    /// On the attention probabilities.
    AttnProbs = 1,
    /// On the attention output projection, before the residual.
    AttnOut = 2,
    /// On the feed-forward output, before the residual.
    FfnOut = 3,
}

/// The RNG stream of a dropout site: `layer` is 0 for the input and
/// `1 + block index` for a block's sites. Bits 16.. are left for callers that
/// need more coordinates (e.g. a reasoning step).
pub fn stream_id(layer: usize, site: Site) -> u64 {
    ((layer as u64) << 8) | site as u64
}

/// A dropout site in training mode: rate `p` ∈ [0, 1), masks from `rng`
/// on `stream`. `p == 0` means identity (no mask is drawn).
#[derive(Clone, Copy, Debug)]
pub struct DropoutSite<'a> {
    /// The counter-based source of the masks.
    pub rng: &'a CounterRng,
    /// The site's stream, so sites draw independent masks.
    pub stream: u64,
    /// The drop rate.
    pub p: f64,
}

/// Coordinates of one activation row: which sequence of the whole batch
/// (`seq`) and which position id (`pos`) it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RowId {
    /// The sequence's index in the whole batch.
    pub seq: u32,
    /// The position id the row holds.
    pub pos: u32,
}

/// `mask[i] ∈ {0, 1/(1−p̂)}` for the elements with global counters
/// `offset + i` of `stream`, where p̂ = round(p·2¹⁶)/2¹⁶ is the drop
/// probability (see the module docs). A pure function of
/// (rng seed, stream, offset + i): filling a range in pieces gives the same
/// values as filling it at once.
pub fn fill_mask<T: Real>(mask: &mut [T], rng: &CounterRng, stream: u64, offset: u64, p: f64) {
    assert!(
        (0.0..1.0).contains(&p),
        "dropout probability must be in [0, 1), got {p}"
    );
    // drop iff the 16-bit uniform u < threshold, so P(drop) = threshold / 2¹⁶
    let threshold = ((p * 65536.0).round() as u64).min(65535);
    let keep = T::from_f64(65536.0 / (65536 - threshold) as f64);
    let seed = rng.seed();
    let key = [seed as u32, (seed >> 32) as u32];
    let mut e = offset;
    let mut i = 0;
    // Leading partial block, then 8 blocks (64 elements) at a time, then the tail.
    let emit = |w: [u32; 4], e: &mut u64, i: &mut usize, mask: &mut [T]| {
        let lane0 = (*e % 8) as usize;
        let lanes = (8 - lane0).min(mask.len() - *i);
        for lane in lane0..lane0 + lanes {
            let u = (w[lane / 2] >> (16 * (lane % 2))) & 0xffff;
            mask[*i] = if u64::from(u) < threshold {
                T::ZERO
            } else {
                keep
            };
            *i += 1;
        }
        *e += lanes as u64;
    };
    if e % 8 != 0 && i < mask.len() {
        emit(
            philox4x32_10(counter(e / 8, stream), key),
            &mut e,
            &mut i,
            mask,
        );
    }
    // (e is a multiple of 8 here) branch-free body over whole 64-element runs
    while mask.len() - i >= 64 {
        let blocks = philox_x8(e / 8, stream, key);
        for (out, w) in mask[i..i + 64].chunks_exact_mut(8).zip(&blocks) {
            for (lane, m) in out.iter_mut().enumerate() {
                let u = (w[lane / 2] >> (16 * (lane % 2))) & 0xffff;
                *m = if u64::from(u) < threshold {
                    T::ZERO
                } else {
                    keep
                };
            }
        }
        i += 64;
        e += 64;
    }
    while i < mask.len() {
        emit(
            philox4x32_10(counter(e / 8, stream), key),
            &mut e,
            &mut i,
            mask,
        );
    }
}

/// The Philox counter words of [`CounterRng`]: [counter lo, hi, stream lo, hi].
#[inline]
fn counter(c: u64, stream: u64) -> [u32; 4] {
    [
        c as u32,
        (c >> 32) as u32,
        stream as u32,
        (stream >> 32) as u32,
    ]
}

/// `philox4x32_10` of the 8 consecutive counters c0..c0+8, computed lane-wise
/// (structure of arrays) so the compiler vectorises the rounds; equal to 8
/// scalar calls bit for bit (tested).
fn philox_x8(c0: u64, stream: u64, key: [u32; 2]) -> [[u32; 4]; 8] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let mut x0 = [0u32; 8];
    let mut x1 = [0u32; 8];
    let x2 = [stream as u32; 8];
    let x3 = [(stream >> 32) as u32; 8];
    for l in 0..8 {
        let c = c0.wrapping_add(l as u64);
        x0[l] = c as u32;
        x1[l] = (c >> 32) as u32;
    }
    let (mut x2, mut x3) = (x2, x3);
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        for l in 0..8 {
            let p0 = M0 * u64::from(x0[l]);
            let p1 = M1 * u64::from(x2[l]);
            let n0 = (p1 >> 32) as u32 ^ x1[l] ^ k[0];
            let n1 = p1 as u32;
            let n2 = (p0 >> 32) as u32 ^ x3[l] ^ k[1];
            let n3 = p0 as u32;
            x0[l] = n0;
            x1[l] = n1;
            x2[l] = n2;
            x3[l] = n3;
        }
    }
    std::array::from_fn(|l| [x0[l], x1[l], x2[l], x3[l]])
}

/// Fills `mask` (rows, width) for rows with ids `rows`: the element (r, c)
/// gets counter offset `(seq·pos_cap + pos)·width + c`, with `pos_cap` the
/// number of position ids a sequence can have.
pub fn fill_row_masks<T: Kernels>(
    mask: &mut [T],
    rows: &[RowId],
    width: usize,
    pos_cap: usize,
    site: &DropoutSite,
) {
    assert_eq!(mask.len(), rows.len() * width, "dropout: mask shape");
    for (m, id) in mask.chunks_exact_mut(width).zip(rows) {
        assert!(
            (id.pos as usize) < pos_cap,
            "dropout: position id beyond pos_cap"
        );
        let offset = (id.seq as u64 * pos_cap as u64 + id.pos as u64) * width as u64;
        fill_mask(m, site.rng, site.stream, offset, site.p);
    }
}

/// out = inp ⊙ mask (mask values are 0 or 1/(1−p)).
pub fn dropout_forward<T: Kernels>(out: &mut [T], inp: &[T], mask: &[T]) {
    assert!(
        out.len() == inp.len() && inp.len() == mask.len(),
        "dropout: lengths"
    );
    for ((o, &x), &m) in out.iter_mut().zip(inp).zip(mask) {
        *o = x * m;
    }
}

/// In place: x ⊙= mask.
pub fn dropout_inplace<T: Kernels>(x: &mut [T], mask: &[T]) {
    assert_eq!(x.len(), mask.len(), "dropout: lengths");
    for (o, &m) in x.iter_mut().zip(mask) {
        *o *= m;
    }
}

/// dinp += dout ⊙ mask.
pub fn dropout_backward<T: Kernels>(dinp: &mut [T], dout: &[T], mask: &[T]) {
    assert!(
        dinp.len() == dout.len() && dout.len() == mask.len(),
        "dropout backward: lengths"
    );
    for ((d, &g), &m) in dinp.iter_mut().zip(dout).zip(mask) {
        *d += g * m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_mask_and_gradient() {
        let mask = [0.0, 2.0, 2.0, 0.0];
        let inp = [1.0, 2.0, 3.0, 4.0];
        let mut out = [f64::NAN; 4];
        dropout_forward(&mut out, &inp, &mask);
        assert_eq!(out, [0.0, 4.0, 6.0, 0.0]);
        let mut dinp = [1.0; 4];
        dropout_backward(&mut dinp, &[1.0, 1.0, -1.0, 5.0], &mask);
        assert_eq!(dinp, [1.0, 3.0, -1.0, 1.0]);
    }

    #[test]
    fn mask_is_a_pure_function_of_the_counter_with_the_right_rate() {
        let rng = CounterRng::new(3);
        let mut whole = vec![0.0f64; 1003];
        fill_mask(&mut whole, &rng, 9, 5, 0.2);
        // filled in odd-sized pieces at odd offsets: identical values
        let mut pieces = vec![0.0f64; 1003];
        let mut at = 0;
        for len in [1, 2, 3, 7, 990] {
            fill_mask(&mut pieces[at..at + len], &rng, 9, 5 + at as u64, 0.2);
            at += len;
        }
        assert_eq!(whole, pieces);
        // 13107 / 65536 drop probability, keep value 65536 / 52429
        let keep = 65536.0 / 52429.0;
        assert!(whole.iter().all(|&m| m == 0.0 || m == keep));
        let mut big = vec![0.0f64; 200_000];
        fill_mask(&mut big, &rng, 1, 0, 0.2);
        let dropped = big.iter().filter(|&&m| m == 0.0).count() as f64 / big.len() as f64;
        // binomial std at n = 2e5, p = 0.2 is 0.0009: 5σ band
        assert!((dropped - 0.2).abs() < 0.0045, "drop rate {dropped}");
        let mean = big.iter().sum::<f64>() / big.len() as f64;
        assert!((mean - 1.0).abs() < 0.006, "mean {mean}");
    }

    #[test]
    fn batched_philox_equals_the_scalar_block_function() {
        for (c0, stream, seed) in [
            (0u64, 0u64, 0u64),
            (8, 3, 42),
            (u64::MAX - 20, u64::MAX, u64::MAX),
            (1 << 40, 7 << 33, 12345),
        ] {
            let key = [seed as u32, (seed >> 32) as u32];
            let got = philox_x8(c0, stream, key);
            for (l, w) in got.iter().enumerate() {
                assert_eq!(
                    *w,
                    philox4x32_10(counter(c0.wrapping_add(l as u64), stream), key)
                );
            }
        }
    }

    #[test]
    fn masks_depend_on_global_coordinates_only() {
        let rng = CounterRng::new(7);
        let site = DropoutSite {
            rng: &rng,
            stream: stream_id(1, Site::FfnOut),
            p: 0.5,
        };
        let rows = [RowId { seq: 3, pos: 4 }, RowId { seq: 0, pos: 1 }];
        let mut both = vec![0.0f64; 2 * 8];
        fill_row_masks(&mut both, &rows, 8, 10, &site);
        let mut single = vec![0.0f64; 8];
        fill_row_masks(&mut single, &rows[1..], 8, 10, &site);
        assert_eq!(
            &both[8..],
            &single[..],
            "a row's mask must not depend on the other rows drawn with it"
        );
        assert!(both.iter().all(|&m| m == 0.0 || m == 2.0));
        assert!(both.contains(&0.0) && both.contains(&2.0));
    }
}
