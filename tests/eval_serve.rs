//! Serving helpers: top-k against a brute-force sort, batch = per-row, typed
//! errors.

use dtrec::eval::ScoreFn;
use dtrec::serve::{
    recommend_batch, top_k_items, ItemVocab, Recommendation, RequestError as ServeError,
};
use proptest::prelude::*;

fn vocab(n: usize) -> ItemVocab {
    ItemVocab::new((1..=n).map(|i| format!("ext{}", i * 10)).collect()).unwrap()
}

/// Reference: every non-excluded item, sorted by score descending then dense
/// id ascending, first k.
fn reference(scores: &[f32], k: usize, exclude: &[u32]) -> Vec<(String, f32)> {
    let mut items: Vec<(u32, f32)> = (1..=scores.len() as u32)
        .filter(|id| !exclude.contains(id))
        .map(|id| (id, scores[id as usize - 1]))
        .collect();
    items.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
    items
        .into_iter()
        .take(k)
        .map(|(id, s)| (format!("ext{}", id * 10), s))
        .collect()
}

fn pairs(recs: &[Recommendation]) -> Vec<(String, f32)> {
    recs.iter().map(|r| (r.item.clone(), r.score)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn top_k_matches_reference(
        (scores, exclude) in (1usize..40).prop_flat_map(|n| (
            proptest::collection::vec(prop_oneof![(0i32..5).prop_map(|v| v as f32), -3.0f32..3.0], n),
            proptest::collection::vec(1..=n as u32, 0..8),
        )),
        k in 0usize..50,
    ) {
        let v = vocab(scores.len());
        let got = top_k_items(&v, &scores, k, &exclude).unwrap();
        prop_assert_eq!(pairs(&got), reference(&scores, k, &exclude));
    }
}

#[test]
fn batch_equals_rows_for_any_threads_and_batch_size() {
    let n = 500;
    let users = 97;
    let v = vocab(n);
    let score = |u: usize, j: usize| ((u * 31 + j * 17) % 101) as f32 * 0.5 - 3.0;
    let scorer = ScoreFn::new(n, move |us: &[usize], out: &mut [f32]| {
        for (b, &u) in us.iter().enumerate() {
            for j in 0..n {
                out[b * n + j] = score(u, j);
            }
        }
    });
    let history: Vec<Vec<u32>> = (0..users)
        .map(|u| {
            (0..u % 7)
                .map(|i| ((u * 13 + i * 29) % n) as u32 + 1)
                .collect()
        })
        .collect();
    let expected: Vec<Vec<Recommendation>> = (0..users)
        .map(|u| {
            let row: Vec<f32> = (0..n).map(|j| score(u, j)).collect();
            top_k_items(&v, &row, 10, &history[u]).unwrap()
        })
        .collect();
    for (threads, batch_size) in [(1, 256), (2, 1), (2, 10), (3, 96)] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let got = pool
            .install(|| recommend_batch(&scorer, &v, users, 10, batch_size, |u| &history[u]))
            .unwrap();
        assert_eq!(got, expected, "threads {threads}, batch {batch_size}");
    }
    // no exclusion: the same as rows with an empty history
    let got = recommend_batch(&scorer, &v, 3, 5, 2, |_| &[]).unwrap();
    assert_eq!(
        got[2],
        top_k_items(&v, &(0..n).map(|j| score(2, j)).collect::<Vec<_>>(), 5, &[]).unwrap()
    );
}

#[test]
fn errors_are_typed() {
    let v = vocab(3);
    assert_eq!(
        top_k_items(&v, &[1.0, f32::NAN, f32::NAN], 2, &[]),
        Err(ServeError::NanScores {
            user: None,
            count: 2
        })
    );
    assert_eq!(
        top_k_items(&v, &[1.0, 2.0], 2, &[]),
        Err(ServeError::ScoreLength {
            vocab: 3,
            scores: 2
        })
    );
    assert_eq!(
        top_k_items(&v, &[1.0, 2.0, 3.0], 2, &[4]),
        Err(ServeError::ItemOutOfRange {
            item: 4,
            num_items: 3
        })
    );
    assert_eq!(
        top_k_items(&v, &[1.0, 2.0, 3.0], 2, &[0]),
        Err(ServeError::ItemOutOfRange {
            item: 0,
            num_items: 3
        })
    );
    // a scorer that leaves user 4's row unwritten (NaN-filled)
    let scorer = ScoreFn::new(3, |us: &[usize], out: &mut [f32]| {
        for (b, &u) in us.iter().enumerate() {
            if u != 4 {
                out[b * 3..b * 3 + 3].copy_from_slice(&[1.0, 2.0, 3.0]);
            }
        }
    });
    assert_eq!(
        recommend_batch(&scorer, &v, 6, 1, 2, |_| &[]),
        Err(ServeError::NanScores {
            user: Some(4),
            count: 3
        })
    );
    assert_eq!(
        recommend_batch(&scorer, &v, 6, 1, 0, |_| &[]),
        Err(ServeError::ZeroBatchSize)
    );
    assert_eq!(
        recommend_batch(&scorer, &vocab(4), 1, 1, 1, |_| &[]),
        Err(ServeError::ScoreLength {
            vocab: 4,
            scores: 3
        })
    );
}

#[test]
fn vocabulary_rules() {
    let v = vocab(3);
    assert_eq!(v.len(), 3);
    assert_eq!(v.to_dense(&["ext30", "ext10"]).unwrap(), vec![3, 1]);
    assert_eq!(
        v.to_dense(&["ext30", "nope"]),
        Err(ServeError::UnknownItem {
            item: "nope".into()
        })
    );
    assert_eq!(v.external_id(4), None);
    assert_eq!(
        ItemVocab::new(vec!["a".into(), "a".into()]),
        Err(ServeError::DuplicateItem { item: "a".into() })
    );
    assert_eq!(
        ItemVocab::new(vec!["a".into(), String::new()]),
        Err(ServeError::EmptyItem { dense: 2 })
    );
    let empty = ItemVocab::new(Vec::new()).unwrap();
    assert!(empty.is_empty());
    let scorer = ScoreFn::new(0, |_: &[usize], _: &mut [f32]| {});
    assert_eq!(
        recommend_batch(&scorer, &empty, 2, 5, 1, |_| &[]).unwrap(),
        vec![vec![], vec![]]
    );
}
