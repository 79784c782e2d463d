//! PopRec on MovieLens-100K against the reference of
//! `/work/shared/datasets/README.md`: Recall@10 = 0.0859, NDCG@10 = 0.0449
//! over 943 users (leave-one-out on a stable timestamp sort, counts over every
//! user's training part, ties broken by the smaller integer item id, the
//! user's earlier items — validation item included — excluded from ranking).
//!
//! The file may not be redistributed: `.ci/fetch-ml100k.sh` puts it at
//! `dtrec::data::ml100k_path()`. A missing file skips the test with a message,
//! unless `CI=true`, where it fails.
//!
//! It parses the file itself (a few lines) so that it checks the evaluation
//! code alone, independent of the data readers.

mod common;

use dtrec::eval::{Evaluator, PopRec};
use std::collections::HashMap;

#[test]
fn poprec_matches_ml100k_reference() {
    let Some(path) = common::require_ml100k() else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read ml-100k.inter");

    // (user, external item, timestamp) in file order; dense ids by first appearance
    let mut item_dense: HashMap<u64, u32> = HashMap::new();
    let mut item_keys: Vec<u64> = Vec::new();
    let mut user_events: HashMap<u64, Vec<(i64, u32)>> = HashMap::new();
    let mut user_order: Vec<u64> = Vec::new();
    for (line_no, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "line {}", line_no + 1);
        let user: u64 = fields[0].parse().unwrap();
        let item: u64 = fields[1].parse().unwrap();
        let ts: i64 = fields[3].parse().unwrap();
        let next = item_dense.len() as u32 + 1;
        let dense = *item_dense.entry(item).or_insert_with(|| {
            item_keys.push(item);
            next
        });
        user_events
            .entry(user)
            .or_insert_with(|| {
                user_order.push(user);
                Vec::new()
            })
            .push((ts, dense));
    }
    assert_eq!(user_order.len(), 943);
    assert_eq!(item_keys.len(), 1682);

    let mut train: Vec<Vec<u32>> = Vec::new();
    let mut history: Vec<Vec<u32>> = Vec::new();
    let mut targets: Vec<u32> = Vec::new();
    for user in &user_order {
        let mut events = user_events[user].clone();
        events.sort_by_key(|&(ts, _)| ts); // stable: ties keep file order
        let items: Vec<u32> = events.iter().map(|&(_, i)| i).collect();
        let n = items.len();
        train.push(items[..n - 2].to_vec());
        history.push(items[..n - 1].to_vec());
        targets.push(items[n - 1]);
    }

    let pop = PopRec::fit(
        item_keys.len(),
        train.iter().map(|s| s.as_slice()),
        &item_keys,
    )
    .unwrap();
    let report = Evaluator::default()
        .evaluate_excluding(&pop, &targets, |u| &history[u])
        .unwrap();
    let m = &report.metrics;
    println!("{m}");
    assert_eq!(m.num_samples, 943);
    assert_eq!(format!("{:.4}", m.recall(10).unwrap()), "0.0859");
    assert_eq!(format!("{:.4}", m.ndcg(10).unwrap()), "0.0449");
}

/// The same reference through the crate's own reader and leave-one-out split.
#[test]
fn poprec_matches_ml100k_reference_through_the_data_readers() {
    use dtrec::data::{leave_one_out, load, Columns, Format, ReadOptions};
    let Some(path) = common::require_ml100k() else {
        return;
    };
    let data = load(
        &path,
        &Format::Atomic(Columns::recbole()),
        &ReadOptions::default(),
    )
    .unwrap();
    let split = leave_one_out(&data).unwrap();
    let num_items = data.num_items();
    // tie-break by the external item id read as an integer
    let keys: Vec<i64> = (1..=num_items as u32)
        .map(|i| data.item_id_int(i).expect("ML-100K item ids are integers"))
        .collect();
    // training part = every user's history before the validation target
    let pop = PopRec::fit(
        num_items,
        split.valid.iter().map(|s| s.history(&data)),
        &keys,
    )
    .unwrap();
    let targets: Vec<u32> = split.test.iter().map(|s| s.target(&data)).collect();
    let report = Evaluator::default()
        .evaluate_excluding(&pop, &targets, |i| split.test[i].history(&data))
        .unwrap();
    let m = &report.metrics;
    assert_eq!(m.num_samples, 943);
    assert_eq!(format!("{:.4}", m.recall(10).unwrap()), "0.0859");
    assert_eq!(format!("{:.4}", m.ndcg(10).unwrap()), "0.0449");
}
