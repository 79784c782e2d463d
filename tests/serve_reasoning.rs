//! Model files of reasoning models: the halting policy and the prototype
//! hierarchy survive a save/load round trip exactly, and stored values a
//! hostile file could corrupt are rejected with a typed error naming the
//! field, never a panic.

use dtrec::io::{ModelFile, ModelFileErrorKind};
use dtrec::model::{Family, HaltingPolicy, ModelConfig, Sasrec};
use dtrec::reasoning::halting::{LearnedGate, ThresholdRule};
use dtrec::serve::{Recommender, ServeError, StoredHalting, PROTOTYPES_PREFIX};
use dtrec::train::hps::cluster_items;
use dtrec::train::HpsConfig;

fn recommender(policy: HaltingPolicy) -> Recommender {
    let cfg = ModelConfig {
        d: 8,
        inner: 16,
        max_len: 6,
        ..ModelConfig::reasoning(30, Family::Dtrec, 2)
    };
    let model = Sasrec::new(cfg, 4).unwrap();
    let protos = cluster_items(
        None,
        &model,
        &HpsConfig {
            k_min: 3,
            ..HpsConfig::default()
        },
        2,
    )
    .unwrap();
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
