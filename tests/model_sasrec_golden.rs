//! SASRec path unchanged by the reasoning chain (issue 5): the exact f32 bits
//! of `loss_and_grad`'s loss, an FNV-1a hash of every gradient's bits and of
//! `encode_batch`'s output, for a fixed batch, seed and thread count. The
//! constants were recorded on main before the reasoning chain was added
//! (commit 126b54a) and held until the kernel rework of commit 3041b6f
//! (backward row kernels of ≤ 64 columns kept in registers), which rounds
//! the backward pass differently — the loss and the encoding bits are
//! unchanged, the gradient hash was re-recorded there. Any other change to
//! the SASRec arithmetic breaks this test.

use dtrec::kernels::rng::CounterRng;
use dtrec::model::{Model, ModelConfig};
use dtrec::TrainBatch;

fn fnv(hash: &mut u64, bits: u32) {
    for byte in bits.to_le_bytes() {
        *hash ^= byte as u64;
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

fn batch(cfg: &ModelConfig, b: usize) -> TrainBatch {
    let rng = CounterRng::new(99);
    let l = cfg.max_len;
    let mut items = vec![0u32; b * l];
    let mut lengths = vec![];
    for r in 0..b {
        let len = rng.below(0, r as u64, l as u64 + 1) as usize;
        for c in l - len..l {
            items[r * l + c] = 1 + rng.below(1, (r * l + c) as u64, cfg.n_items as u64) as u32;
        }
        lengths.push(len as u32);
    }
    let targets = (0..b)
        .map(|r| 1 + rng.below(2, r as u64, cfg.n_items as u64) as u32)
        .collect();
    TrainBatch::new(items, lengths, targets, l, cfg.n_items).unwrap()
}

#[test]
fn sasrec_loss_gradient_and_encoding_bits_are_unchanged() {
    let cfg = ModelConfig {
        max_len: 9,
        d: 16,
        n_heads: 2,
        inner: 24,
        dropout: 0.3,
        attn_dropout: 0.2,
        ..ModelConfig::sasrec(40)
    };
    let model = Model::new(cfg.clone(), 17).unwrap();
    let batch = batch(&cfg, 70); // more than one CHUNK
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let (loss, grad_hash, enc_hash) = pool.install(|| {
        let mut grads = model.params.zeros_like();
        let loss = model.loss_and_grad(&mut grads, &batch, 1234);
        let mut g = 0xcbf2_9ce4_8422_2325u64;
        grads.visit(|_, t| t.data.iter().for_each(|x| fnv(&mut g, x.to_bits())));
        let mut e = 0xcbf2_9ce4_8422_2325u64;
        for x in model.encode_batch(batch.seqs()) {
            fnv(&mut e, x.to_bits());
        }
        (loss, g, e)
    });
    assert_eq!(
        (loss.to_bits(), grad_hash, enc_hash),
        (0x406d_3b7d, 0x8642_93fd_57b1_bdef, 0x5ac0_4955_9dbe_220f),
        "SASRec arithmetic changed"
    );
}
