//! Model files of reasoning models: the halting policy and the prototype
//! hierarchy survive a save/load round trip exactly, and stored values a
//! hostile file could corrupt are rejected with a typed error naming the
//! field, never a panic.

use dtrec::io::{ModelFile, ModelFileErrorKind};
use dtrec::io::{StoredHalting, PROTOTYPES_PREFIX};
use dtrec::model::halting::{LearnedGate, ThresholdRule};
use dtrec::model::prototypes::cluster_items;
use dtrec::model::HpsConfig;
use dtrec::model::{Family, HaltingPolicy, Model, ModelConfig};
use dtrec::serve::{Recommender, ServeError};

fn recommender(policy: HaltingPolicy) -> Recommender {
    let cfg = ModelConfig {
        d: 8,
        inner: 16,
        max_len: 6,
        ..ModelConfig::reasoning(30, Family::Dtrec, 2)
    };
    let model = Model::new(cfg, 4).unwrap();
    let hps = HpsConfig {
        k_min: 3,
        ..HpsConfig::default()
    };
    let protos = cluster_items(None, &model, &hps.prototype_config(2, 2)).unwrap();
    let vocab = (0..30).map(|i| format!("item{i}")).collect();
    Recommender::new(model, vocab)
        .unwrap()
        .with_halting(policy)
        .with_prototypes(protos)
        .unwrap()
}

fn policies() -> Vec<HaltingPolicy> {
    vec![
        HaltingPolicy::Fixed,
        HaltingPolicy::Threshold(ThresholdRule {
            t_min: 1,
            theta_h: 0.75,
            theta_d: f32::INFINITY,
            theta_delta: 0.125,
        }),
        HaltingPolicy::Learned(LearnedGate {
            w: [-3.5, 1.25, -0.5],
            b: 2.0,
        }),
    ]
}

#[test]
fn halting_and_prototypes_round_trip() {
    for policy in policies() {
        let rec = recommender(policy.clone());
        let bytes = rec.to_file().to_bytes().unwrap();
        let back = Recommender::from_file(&ModelFile::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(back.halting(), &policy);
        assert_eq!(back.prototypes(), rec.prototypes());
        assert_eq!(back.model(), rec.model());
        // the same content gives the same bytes
        assert_eq!(back.to_file().to_bytes().unwrap(), bytes);
    }
}

#[test]
fn infinite_thresholds_are_stored_as_absent() {
    let stored = StoredHalting::from_policy(&policies()[1]);
    let json = serde_json::to_string(&stored).unwrap();
    assert!(json.contains("\"theta_d\":null"), "{json}");
    assert_eq!(stored.to_policy().unwrap(), policies()[1]);
    // a rule that never stops is stored as fixed depth
    let never = StoredHalting::from_policy(&HaltingPolicy::Threshold(ThresholdRule::never()));
    assert_eq!(never, StoredHalting::Fixed);
}

fn invalid_field(file: &ModelFile) -> &'static str {
    match Recommender::from_file(file) {
        Err(ServeError::File(e)) => match &e.kind {
            ModelFileErrorKind::InvalidField { field, .. } => field,
            ModelFileErrorKind::MissingTensor { .. } => "missing tensor",
            ModelFileErrorKind::ShapeMismatch { .. } => "shape",
            other => panic!("unexpected error kind {other:?}"),
        },
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a corrupt file was accepted"),
    }
}

#[test]
fn corrupt_prototypes_and_policies_are_rejected() {
    let rec = recommender(policies()[1].clone());
    let good = rec.to_file();
    let edit = |f: &dyn Fn(&mut ModelFile)| {
        let mut file = good.clone();
        f(&mut file);
        file
    };
    let ids = format!("{PROTOTYPES_PREFIX}1.item_cluster");
    let cases: Vec<(ModelFile, &str)> = vec![
        (
            edit(&|f| f.tensors.iter_mut().find(|t| t.name == ids).unwrap().data[3] = 1e6),
            "prototypes",
        ),
        (
            edit(&|f| f.tensors.iter_mut().find(|t| t.name == ids).unwrap().data[0] = 0.5),
            "prototypes",
        ),
        (
            edit(&|f| f.tensors.retain(|t| t.name != ids)),
            "missing tensor",
        ),
        (
            edit(&|f| f.extra_json = f.extra_json.replace("\"t_min\":1", "\"t_min\":1000")),
            "extra",
        ),
        (
            edit(&|f| {
                f.extra_json = f
                    .extra_json
                    .replace("\"rule\":\"threshold\"", "\"rule\":\"psychic\"")
            }),
            "extra",
        ),
        (
            edit(&|f| f.extra_json = f.extra_json.replace("\"k_min\":3", "\"k_min\":4")),
            "prototypes",
        ),
    ];
    for (i, (file, field)) in cases.iter().enumerate() {
        assert_ne!(file, &good, "case {i} changed nothing");
        assert_eq!(invalid_field(file), *field, "case {i}");
    }
}

/// One field-level corruption of a valid file (what a hostile writer
/// controls once the container's checksum is recomputed).
#[derive(Clone, Debug)]
enum Mutation {
    /// Set value `at` (modulo the length) of tensor `tensor` to `value`.
    Value {
        tensor: usize,
        at: usize,
        value: f32,
    },
    /// Replace the shape of tensor `tensor`.
    Shape { tensor: usize, shape: Vec<usize> },
    /// Drop tensor `tensor`.
    Drop { tensor: usize },
    /// Replace the first occurrence of `from` in the extra JSON by `to`.
    Extra { from: &'static str, to: String },
}

fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    let value = prop_oneof![
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(-1.0f32),
        Just(0.5f32),
        Just(1e9f32),
        Just(16_777_216.0f32),
        -100.0f32..100.0
    ];
    let extra_key = prop_oneof![
        Just("\"t_min\":1"),
        Just("\"k_min\":3"),
        Just("\"t_max\":2"),
        Just("\"theta_h\":0.75"),
        Just("\"rule\":\"threshold\""),
        Just("\"layout\":\"flat\""),
        Just("\"kmeans_iters\":25"),
        Just("\"indicators\":\"prototypes\""),
    ];
    let extra_to = prop_oneof![
        Just("\"t_min\":999999999999".to_string()),
        Just("\"k_min\":0".to_string()),
        Just("\"k_min\":1000000".to_string()),
        Just("\"t_max\":64".to_string()),
        Just("\"t_max\":18446744073709551615".to_string()),
        Just("\"theta_h\":1e40".to_string()),
        Just("\"rule\":\"learned\"".to_string()),
        Just("\"layout\":\"nested\"".to_string()),
        Just("\"kmeans_iters\":0".to_string()),
        Just("\"junk\":[".to_string()),
        Just("\"indicators\":\"items\"".to_string()),
        Just("\"indicators\":null".to_string()),
        "[ -~]{0,12}",
    ];
    prop_oneof![
        (0usize..64, any::<usize>(), value).prop_map(|(tensor, at, value)| Mutation::Value {
            tensor,
            at,
            value
        }),
        (0usize..64, proptest::collection::vec(0usize..40, 0..3))
            .prop_map(|(tensor, shape)| Mutation::Shape { tensor, shape }),
        (0usize..64).prop_map(|tensor| Mutation::Drop { tensor }),
        (extra_key, extra_to).prop_map(|(from, to)| Mutation::Extra { from, to }),
    ]
}

fn apply(file: &mut ModelFile, m: &Mutation) {
    let n = file.tensors.len();
    match m {
        Mutation::Value { tensor, at, value } => {
            let t = &mut file.tensors[tensor % n];
            if !t.data.is_empty() {
                let i = at % t.data.len();
                t.data[i] = *value;
            }
        }
        Mutation::Shape { tensor, shape } => file.tensors[tensor % n].shape = shape.clone(),
        Mutation::Drop { tensor } => {
            file.tensors.remove(tensor % n);
        }
        Mutation::Extra { from, to } => {
            file.extra_json = file.extra_json.replacen(from, to, 1);
            file.config_json = file.config_json.replacen(from, to, 1);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Corrupted reasoning model files load into a typed error or a model
    /// that serves without panicking; never a panic.
    #[test]
    fn corrupted_reasoning_files_never_panic(
        policy in 0usize..3,
        prototype_space in proptest::bool::ANY,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut rec = recommender(policies()[policy].clone());
        if prototype_space {
            rec = rec
                .with_indicators(dtrec::model::halting::indicators::IndicatorSpace::Prototypes)
                .unwrap();
        }
        let good = rec.to_file();
        let mut file = good.clone();
        for m in &mutations {
            apply(&mut file, m);
        }
        // through the byte format too, as a reader would see it
        let Ok(bytes) = file.to_bytes() else { return Ok(()) };
        let Ok(parsed) = ModelFile::from_bytes(&bytes) else { return Ok(()) };
        if let Ok(rec) = Recommender::from_file(&parsed) {
            let top = rec.recommend(&["item1", "item2"], 3, &Default::default());
            proptest::prop_assert!(top.is_ok() || parsed != good);
            let _ = rec.trajectory(&["item3"], 2);
        }
    }
}

/// The indicator space is stored with the policy: a prototype-space model
/// round-trips exactly; item-space files carry no `indicators` field (the
/// old format) and such a file loads as the item space; a corrupted or
/// unsatisfiable field is a typed error; serving halts in the stored space.
#[test]
fn indicator_space_round_trip_old_format_and_corruption() {
    use dtrec::model::halting::indicators::{IndicatorBasis, IndicatorSpace};
    use dtrec::SeqBatch;

    let rec = recommender(policies()[1].clone())
        .with_indicators(IndicatorSpace::Prototypes)
        .unwrap();
    // level T_max − 1 = 1 of the hierarchy (k_min 3, N 30: 3, 9, 30)
    let k = rec.prototypes().unwrap().levels()[1].k;
    assert_eq!(rec.indicators().outcomes(30), k);
    let file = rec.to_file();
    assert!(
        file.extra_json.contains("\"indicators\":\"prototypes\""),
        "{}",
        file.extra_json
    );
    let bytes = file.to_bytes().unwrap();
    let back = Recommender::from_file(&ModelFile::from_bytes(&bytes).unwrap()).unwrap();
    assert_eq!(back.indicators(), rec.indicators());
    assert_eq!(back.halting(), rec.halting());
    assert_eq!(back.to_file().to_bytes().unwrap(), bytes);

    // the item space writes the format of before the option: no field
    let items = recommender(policies()[1].clone());
    assert!(!items.to_file().extra_json.contains("indicators"));
    // a file without the field loads as the item space
    let mut old = file.clone();
    old.extra_json = old.extra_json.replace(",\"indicators\":\"prototypes\"", "");
    assert_ne!(old, file);
    let loaded = Recommender::from_file(&old).unwrap();
    assert_eq!(loaded.indicators(), &IndicatorBasis::Items);

    // corrupted values: typed errors naming the field
    let mut bad = file.clone();
    bad.extra_json = bad.extra_json.replace("\"prototypes\"", "\"psychic\"");
    assert_eq!(invalid_field(&bad), "extra");
    let mut bad = file.clone();
    bad.extra_json = bad
        .extra_json
        .replace("\"indicators\":\"prototypes\"", "\"indicators\":7");
    assert_eq!(invalid_field(&bad), "extra");
    // the prototype space without a stored hierarchy
    let bare = Recommender::new(rec.model().clone(), rec.vocab().to_vec())
        .unwrap()
        .with_halting(policies()[1].clone());
    let mut bad = bare.to_file();
    bad.extra_json = bad.extra_json.replace(
        "\"prototypes\":null",
        "\"prototypes\":null,\"indicators\":\"prototypes\"",
    );
    assert!(
        bad.extra_json.contains("\"indicators\""),
        "{}",
        bad.extra_json
    );
    assert_eq!(invalid_field(&bad), "indicators");

    // serving halts in the stored space: the trajectory's halting step and
    // the recommendations are those of score_adaptive_in
    let history = ["item3", "item7", "item1", "item12"];
    let dense: Vec<u32> = [4u32, 8, 2, 13].to_vec();
    let seqs = SeqBatch::from_histories(&[&dense[..]], 6, 30).unwrap();
    let scored = back
        .model()
        .score_adaptive_in(&seqs, back.halting(), back.indicators());
    let trajectory = back.trajectory(&history, 3).unwrap();
    assert_eq!(trajectory.halting_step, scored.steps[0] as usize);
    assert_eq!(trajectory.indicators, IndicatorSpace::Prototypes);
    let top = back.recommend(&history, 1, &Default::default()).unwrap();
    let best = scored
        .scores
        .iter()
        .enumerate()
        .filter(|(j, _)| !dense.contains(&(*j as u32 + 1)))
        .map(|(_, &s)| s)
        .fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(top[0].score, best);
}
