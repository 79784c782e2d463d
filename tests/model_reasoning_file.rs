//! A reasoning model goes through the model file and the recommender
//! unchanged: the config (family, t_max, …) and `reason_pos` are stored,
//! loading restores bit-identical prediction states, and `recommend`
//! scores with the family's prediction state (h_T for DTRec).

use dtrec::model::{Family, Model, ModelConfig};
use dtrec::serve::{RecommendOptions, Recommender};

#[test]
fn dtrec_model_file_round_trip_and_recommend_uses_the_final_state() {
    let cfg = ModelConfig {
        max_len: 5,
        d: 8,
        inner: 16,
        ..ModelConfig::reasoning(6, Family::Dtrec, 2)
    };
    let model = Model::new(cfg.clone(), 3).unwrap();
    let vocab: Vec<String> = (1..=6).map(|i| format!("item{i}")).collect();
    let rec = Recommender::new(model.clone(), vocab).unwrap();
    let path = std::env::temp_dir().join(format!("dtrec_reasoning_{}.dtrec", std::process::id()));
    rec.save(&path).unwrap();
    let back = Recommender::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back.model().config(), &cfg);
    assert_eq!(back.model().params, model.params);

    let history = ["item2", "item5", "item1"];
    let got = back
        .recommend(&history, 6, &RecommendOptions::default())
        .unwrap();
    // the same ranking from h_T computed by hand through encode_steps
    let steps = model.encode(&[0, 0, 2, 5, 1], &[3]).unwrap();
    let all =
        model.encode_steps(&dtrec::SeqBatch::new(vec![0, 0, 2, 5, 1], vec![3], 5, 6).unwrap());
    assert_eq!(&steps[..], &all[2 * 8..3 * 8], "encode = h_T");
    let mut scores = vec![0.0f32; 6];
    model.score_items(&mut scores, &steps);
    for r in &got {
        let j: usize = r.item[4..].parse::<usize>().unwrap() - 1;
        assert_eq!(r.score, scores[j], "{}", r.item);
    }
    // h_T differs from h₀ (the reasoning steps matter for the ranking scores)
    assert_ne!(&all[..8], &all[2 * 8..3 * 8]);
}
