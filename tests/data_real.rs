//! Acceptance checks on the real datasets: the S3-Rec files in
//! `../shared/datasets/s3rec` and MovieLens-100K fetched by
//! `.ci/fetch-ml100k.sh`. A missing file skips the test with a message,
//! unless `CI=true`, where it fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dtrec::data::{
    leave_one_out, load, shared_dataset, Columns, DatasetStats, Format, ReadOptions,
};

mod common;
use common::{require_dataset as require, require_ml100k};

fn check_s3rec(name: &str, users: usize, items: usize, interactions: usize) {
    let Some(path) = require(shared_dataset(name), "set DTREC_SHARED_DIR") else {
        return;
    };
    let data = load(&path, &Format::S3rec, &ReadOptions::default()).unwrap();
    let stats = DatasetStats::of(&data);
    assert_eq!(
        (stats.users, stats.items, stats.interactions),
        (users, items, interactions)
    );
    let split = leave_one_out(&data).unwrap();
    assert_eq!(split.test.len(), users);
    assert_eq!(split.valid.len(), users);
    assert_eq!(split.train.len(), interactions - 3 * users);
    assert_eq!(split.report.dropped_users, 0);
    // Ids are the file's order of first appearance: the first line's user and
    // its first item get internal ids 0 and 1.
    let first_line = std::fs::read_to_string(&path).unwrap();
    let mut fields = first_line.lines().next().unwrap().split(' ');
    assert_eq!(data.user_id(0), fields.next());
    assert_eq!(data.item_id(1), fields.next());
}

#[test]
fn beauty_counts_and_leave_one_out() {
    check_s3rec("Beauty.txt", 22_363, 12_101, 198_502);
}

#[test]
fn lastfm_counts_and_leave_one_out() {
    check_s3rec("LastFM.txt", 1_090, 3_646, 52_551);
}

fn ml100k() -> Option<(PathBuf, dtrec::data::Interactions)> {
    let path = require_ml100k()?;
    let columns = Columns::recbole().with_rating("rating");
    let data = load(&path, &Format::Atomic(columns), &ReadOptions::default()).unwrap();
    Some((path, data))
}

#[test]
fn ml100k_counts_and_leave_one_out() {
    let Some((_, data)) = ml100k() else {
        return;
    };
    let stats = DatasetStats::of(&data);
    assert_eq!(
        (stats.users, stats.items, stats.interactions),
        (943, 1_682, 100_000)
    );
    let split = leave_one_out(&data).unwrap();
    assert_eq!(
        (split.train.len(), split.valid.len(), split.test.len()),
        (97_171, 943, 943)
    );
}

/// The store's per-user order equals an independent stable sort of the
/// file's rows by integer timestamp (ties in file order).
#[test]
fn ml100k_order_is_stable_sort_by_timestamp() {
    let Some((path, data)) = ml100k() else {
        return;
    };
    let text = std::fs::read_to_string(Path::new(&path)).unwrap();
    let mut per_user: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
    for row in text.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        per_user
            .entry(f[0])
            .or_default()
            .push((f[3].parse().unwrap(), f[1]));
    }
    let mut tied_last_two = 0;
    for u in 0..data.num_users() as u32 {
        let mut rows = per_user[data.user_id(u).unwrap()].clone();
        rows.sort_by_key(|r| r.0); // stable
        let expected: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let got: Vec<&str> = data
            .user_items(u)
            .iter()
            .map(|&i| data.item_id(i).unwrap())
            .collect();
        assert_eq!(got, expected, "user {}", data.user_id(u).unwrap());
        let n = rows.len();
        tied_last_two += (rows[n - 1].0 == rows[n - 2].0) as usize;
    }
    // The datasets README: for 415 of 943 users the last two events are tied.
    assert_eq!(tied_last_two, 415);
}
