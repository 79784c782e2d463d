//! Stable-toolchain mirror of `fuzz/fuzz_targets/model_file.rs`: the model
//! file reader on hostile bytes always returns `Err`, never panics, and valid
//! files round-trip exactly.
//!
//! `cargo test --test io_fuzz_mirror` (≈ 3,000 generated cases).

use dtrec::io::{ModelFile, NamedTensor, KIND_CHECKPOINT, KIND_MODEL};
use proptest::prelude::*;

/// A random valid model: up to 4 tensors of rank ≤ 3, finite values, a
/// vocabulary of unique ids.
fn model_strategy() -> impl Strategy<Value = ModelFile> {
    let tensor = (
        "[a-z][a-z0-9._]{0,12}",
        proptest::collection::vec(0usize..4, 0..=3),
    )
        .prop_flat_map(|(name, shape)| {
            let n: usize = shape.iter().product();
            (
                Just(name),
                Just(shape),
                proptest::collection::vec(
                    any::<u32>().prop_map(|b| {
                        let v = f32::from_bits(b);
                        if v.is_finite() {
                            v
                        } else {
                            1.0
                        }
                    }),
                    n,
                ),
            )
        })
        .prop_map(|(name, shape, data)| NamedTensor::new(name, shape, data));
    (
        prop_oneof![Just(KIND_MODEL), Just(KIND_CHECKPOINT)],
        proptest::collection::btree_set("[ -~]{1,8}", 0..6),
        proptest::collection::vec(tensor, 0..4),
        any::<u64>(),
    )
        .prop_map(|(kind, vocab, mut tensors, step)| {
            tensors.sort_by(|a, b| a.name.cmp(&b.name));
            tensors.dedup_by(|a, b| a.name == b.name);
            ModelFile::new(
                kind,
                r#"{"d":4}"#,
                vocab.into_iter().collect(),
                format!(r#"{{"step":{step}}}"#),
                tensors,
            )
        })
}

fn bits(m: &ModelFile) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    m.tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                t.data.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

/// A raw safetensors container with a random (often inconsistent) tensor table.
fn raw_container_strategy() -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        "[a-z]{1,3}",
        prop_oneof![Just("F32"), Just("F16"), Just("I64"), Just("BOOL")],
        proptest::collection::vec(prop_oneof![0u64..5, Just(u64::MAX), Just(1 << 62)], 0..4),
        (0u64..64, 0u64..64),
    );
    (
        proptest::collection::vec(entry, 0..4),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(entries, data, with_metadata)| {
            let mut parts: Vec<String> = Vec::new();
            if with_metadata {
                parts.push(r#""__metadata__":{"format_version":"1","kind":"dtrec-model"}"#.into());
            }
            for (name, dtype, shape, (begin, end)) in entries {
                let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                parts.push(format!(
                    r#""{name}":{{"dtype":"{dtype}","shape":[{}],"data_offsets":[{begin},{end}]}}"#,
                    shape.join(",")
                ));
            }
            let header = format!("{{{}}}", parts.join(","));
            let mut out = (header.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(&data);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_bytes_are_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(ModelFile::from_bytes(&bytes).is_err());
    }

    #[test]
    fn random_bytes_after_a_plausible_length_prefix_are_rejected(
        len in 0u64..600,
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        prop_assert!(ModelFile::from_bytes(&bytes).is_err());
    }

    #[test]
    fn inconsistent_tensor_tables_are_rejected(bytes in raw_container_strategy()) {
        prop_assert!(ModelFile::from_bytes(&bytes).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn valid_models_round_trip_exactly(model in model_strategy()) {
        let bytes = model.to_bytes().unwrap();
        let back = ModelFile::from_bytes(&bytes).unwrap();
        prop_assert_eq!(bits(&back), bits(&model));
        prop_assert_eq!(&back.item_vocab, &model.item_vocab);
        prop_assert_eq!(&back.extra_json, &model.extra_json);
        prop_assert_eq!(&back.kind, &model.kind);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn truncations_at_every_length_are_rejected(model in model_strategy()) {
        let bytes = model.to_bytes().unwrap();
        for len in 0..bytes.len() {
            prop_assert!(ModelFile::from_bytes(&bytes[..len]).is_err(), "length {}", len);
        }
    }

    #[test]
    fn bit_flips_are_rejected(
        model in model_strategy(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let bytes = model.to_bytes().unwrap();
        let mut corrupted = bytes.clone();
        for (at, bit) in &flips {
            corrupted[at.index(bytes.len())] ^= 1 << bit;
        }
        // several flips may cancel out (same bit twice): then the file is intact
        if corrupted != bytes {
            prop_assert!(ModelFile::from_bytes(&corrupted).is_err());
        }
    }
}
