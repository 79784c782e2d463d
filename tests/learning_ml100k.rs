//! A real learning check on MovieLens-100K: a few epochs of SASRec must rank
//! the held-out next item clearly better than the popularity baseline under
//! the same protocol (leave-one-out, full ranking, history not masked). It
//! fails if training breaks: gradients, optimizer, batching or evaluation.
//!
//! Needs `.ci/fetch-ml100k.sh`; skipped when the file is missing, unless
//! `CI=true`, where it fails.

mod common;

use dtrec::data::{leave_one_out, load, Columns, Format, ReadOptions, Sample};
use dtrec::eval::{Evaluator, PopRec};
use dtrec::model::ModelConfig;
use dtrec::train::{train, TrainConfig};

#[test]
fn sasrec_beats_popularity_on_ml100k() {
    let Some(path) = common::require_ml100k() else {
        return;
    };
    let data = load(
        &path,
        &Format::Atomic(Columns::recbole()),
        &ReadOptions::default(),
    )
    .unwrap();
    let mut split = leave_one_out(&data).unwrap();
    // Keep each user's 30 most recent training prefixes so the check runs in
    // the test profile in well under a minute; validation and test are whole.
    split
        .train
        .retain(|s: &Sample| s.end as usize + 32 >= data.user_len(s.user));

    let n = data.num_items();
    let train_seqs: Vec<&[u32]> = (0..data.num_users() as u32)
        .map(|u| {
            let items = data.user_items(u);
            &items[..items.len() - 2]
        })
        .collect();
    let keys: Vec<u64> = (1..=n as u32)
        .map(|i| data.item_id_int(i).unwrap() as u64)
        .collect();
    let pop = PopRec::fit(n, train_seqs.iter().copied(), &keys).unwrap();
    let targets: Vec<u32> = split.test.iter().map(|s| s.target(&data)).collect();
    let pop_ndcg = Evaluator::default()
        .evaluate(&pop, &targets)
        .unwrap()
        .metrics
        .ndcg(10)
        .unwrap();

    let model = ModelConfig {
        d: 32,
        inner: 64,
        dropout: 0.2,
        attn_dropout: 0.2,
        ..ModelConfig::sasrec(n)
    };
    let config = TrainConfig {
        max_epochs: 4,
        patience: 4,
        batch_size: 128,
        seed: 7,
        threads: Some(2),
        ..TrainConfig::default()
    };
    let outcome = train(&data, &split, model, &config, &mut |_| {}).unwrap();
    let ndcg = outcome.test.ndcg(10).unwrap();
    println!(
        "popularity NDCG@10 {pop_ndcg:.4}, SASRec after {} epochs {ndcg:.4}",
        outcome.history.len()
    );
    assert!(
        ndcg > 1.25 * pop_ndcg,
        "SASRec NDCG@10 {ndcg:.4} is not clearly above popularity {pop_ndcg:.4}"
    );
}
