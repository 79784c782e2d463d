//! Shape and batches shared by the training benches: d = 64 models on
//! B = 256 histories of up to L = 50 items over N = 3,416 items.

use dtrec::kernels::rng::CounterRng;
use dtrec::TrainBatch;

pub const B: usize = 256;
pub const L: usize = 50;
pub const N: usize = 3416;

/// B random histories with `lengths(b)` items each (left-padded) and
/// random targets, drawn from `seed`.
pub fn batch(lengths: impl Fn(usize) -> usize, seed: u64) -> TrainBatch {
    let rng = CounterRng::new(seed);
    let mut items = vec![0u32; B * L];
    let mut lens = vec![];
    for b in 0..B {
        let len = lengths(b);
        for c in L - len..L {
            items[b * L + c] = 1 + rng.below(0, (b * L + c) as u64, N as u64) as u32;
        }
        lens.push(len as u32);
    }
    let targets = (0..B)
        .map(|b| 1 + rng.below(1, b as u64, N as u64) as u32)
        .collect();
    TrainBatch::new(items, lens, targets, L, N).unwrap()
}

/// The two batches of every training bench: `full` (every history L items,
/// the worst case) and `beauty_lengths` (lengths like Beauty's training
/// prefixes: about 8.9 items on average, 1 + geometric-like, capped at L).
pub fn bench_batches() -> [(&'static str, TrainBatch); 2] {
    let rng = CounterRng::new(9);
    let beauty = |b: usize| (1 + (-(1.0 - rng.uniform(5, b as u64)).ln() * 7.9) as usize).min(L);
    [
        ("full", batch(|_| L, 3)),
        ("beauty_lengths", batch(beauty, 4)),
    ]
}
