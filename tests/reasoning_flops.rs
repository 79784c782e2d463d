//! FLOP accounting (`dtrec::model::flops`):
//!
//! * a tiny model counted by hand, matrix product by matrix product;
//! * a cached reasoning step costs exactly the increment of a full
//!   re-encoding by one token (proptest), and grows by 4·d per layer per step;
//! * fixed-depth and adaptive totals; bad dims and overflow are errors.

use dtrec::model::flops::{encoder_layer, step_layer, FlopCounts, FlopDims, FlopError};
use proptest::prelude::*;

fn tiny(n_layers: u64) -> FlopDims {
    FlopDims {
        d: 2,
        inner: 4,
        n_layers,
        n_heads: 1,
        seq_len: 3,
        n_items: 5,
        t_max: 2,
    }
}

#[test]
fn hand_counted_tiny_model() {
    // d = 2, f = 4, L = 3, N = 5, T = 2, one layer.
    // encoder: Q, K, V: 3 × (3×2)·(2×2) = 3 · 2·3·2·2 = 72; output 24;
    // QKᵀ over causal pairs 1 + 2 + 3 = 6, each 2·d = 4 → 24; AV 24;
    // FFN (3×2)·(2×4) and (3×4)·(4×2): 48 + 48 = 96. Total 240.
    // step 1 (keys L+1 = 4): QKV 3·(2·1·2·2) = 24, out 8, QKᵀ 4·4 = 16,
    // AV 16, FFN 16 + 16 = 32 → 96. Step 2 (5 keys): 24+8+20+20+32 = 104.
    // scoring 2·5·2 = 20; p_0: 20 + 5·5 = 45;
    // indicator step: 20 + 18·5 + 5·2 = 120.
    let c = FlopCounts::new(&tiny(1)).unwrap();
    assert_eq!(c.encoder, 240);
    assert_eq!(c.steps, vec![96, 104]);
    assert_eq!(c.scoring, 20);
    assert_eq!(c.indicator_setup, 45);
    assert_eq!(c.indicator_step, 120);
    assert_eq!(c.reasoning(0), 0);
    assert_eq!(c.reasoning(2), 200);
    assert_eq!(c.reasoning(9), 200);
    assert_eq!(c.fixed_depth(2), 240 + 200 + 20);
    assert_eq!(c.fixed_depth(0), 260);
    assert_eq!(c.adaptive(1), 240 + 96 + 45 + 120);
    assert_eq!(c.adaptive(2), 240 + 200 + 45 + 240);
    assert_eq!(c.adaptive(0), 260);
    // two layers double encoder and steps, not scoring or indicators
    let c2 = FlopCounts::new(&tiny(2)).unwrap();
    assert_eq!(c2.encoder, 480);
    assert_eq!(c2.steps, vec![192, 208]);
    assert_eq!(c2.scoring, 20);
    assert_eq!(c2.indicator_step, 120);
    // heads do not change the count
    let c_heads = FlopCounts::new(&FlopDims {
        n_heads: 2,
        ..tiny(1)
    })
    .unwrap();
    assert_eq!(c_heads, c);
    // an empty history: only the steps' own keys remain
    let c0 = FlopCounts::new(&FlopDims {
        seq_len: 0,
        ..tiny(1)
    })
    .unwrap();
    assert_eq!(c0.encoder, 0);
    assert_eq!(c0.steps[0], 8 * 4 + 4 * 2 + 4 * 2 * 4);
}

#[test]
fn default_config_figures() {
    // RecBole defaults on Beauty-sized N with T_max = 3: step 1 is
    // 2·(8·64² + 4·64·51 + 4·64·256) = 2·(32768 + 13056 + 65536) = 222720
    let dims = FlopDims {
        d: 64,
        inner: 256,
        n_layers: 2,
        n_heads: 2,
        seq_len: 50,
        n_items: 12101,
        t_max: 3,
    };
    let c = FlopCounts::new(&dims).unwrap();
    assert_eq!(c.steps[0], 222_720);
    // encoder: 2·(8·50·4096 + 2·64·50·51 + 4·50·64·256) = 2·(1638400 + 326400 + 3276800)
    assert_eq!(c.encoder, 10_483_200);
    assert_eq!(c.scoring, 2 * 12101 * 64);
}

#[test]
fn bad_dims_and_overflow() {
    for (field, dims) in [
        ("d", FlopDims { d: 0, ..tiny(1) }),
        (
            "n_layers",
            FlopDims {
                n_layers: 0,
                ..tiny(1)
            },
        ),
        (
            "n_heads",
            FlopDims {
                n_heads: 0,
                ..tiny(1)
            },
        ),
        (
            "n_items",
            FlopDims {
                n_items: 0,
                ..tiny(1)
            },
        ),
        (
            "n_heads",
            FlopDims {
                n_heads: 3,
                ..tiny(1)
            },
        ),
    ] {
        assert_eq!(FlopCounts::new(&dims), Err(FlopError::BadDims { field }));
    }
    let huge = FlopDims {
        d: 1 << 20,
        seq_len: 1 << 30,
        ..tiny(1)
    };
    assert_eq!(FlopCounts::new(&huge), Err(FlopError::Overflow));
    let many_items = FlopDims {
        n_items: u64::MAX / 4,
        ..tiny(1)
    };
    assert_eq!(FlopCounts::new(&many_items), Err(FlopError::Overflow));
}

proptest! {
    #[test]
    fn cached_step_equals_full_recompute_increment(
        d in 1u64..512,
        inner in 0u64..2048,
        l in 0u64..200,
        k in 1u64..8,
    ) {
        // appending the k-th reasoning token to a length L+k−1 sequence and
        // re-encoding costs exactly the cached step
        let full_new = encoder_layer(d, inner, l + k).unwrap();
        let full_old = encoder_layer(d, inner, l + k - 1).unwrap();
        prop_assert_eq!(step_layer(d, inner, l, k).unwrap(), full_new - full_old);
        // and grows by 4·d per extra key
        prop_assert_eq!(
            step_layer(d, inner, l, k + 1).unwrap() - step_layer(d, inner, l, k).unwrap(),
            4 * d
        );
    }

    #[test]
    fn totals_are_monotone(l in 0u64..100, t in 1u64..6, n in 1u64..5000) {
        let c = FlopCounts::new(&FlopDims { d: 16, inner: 32, n_layers: 2, n_heads: 2, seq_len: l, n_items: n, t_max: t }).unwrap();
        prop_assert_eq!(c.steps.len() as u64, t);
        for s in 1..=t as usize {
            prop_assert!(c.fixed_depth(s) > c.fixed_depth(s - 1));
            prop_assert!(c.adaptive(s) >= c.fixed_depth(s));
        }
        for s in 2..=t as usize {
            prop_assert_eq!(c.adaptive(s) - c.adaptive(s - 1), c.steps[s - 1] + c.indicator_step);
        }
    }
}
