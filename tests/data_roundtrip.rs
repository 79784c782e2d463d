//! Property tests against naive models: readers (ids by first appearance,
//! stable time sort), filters, splits and batches.

use std::collections::{HashMap, HashSet};

use dtrec::data::{
    assemble, leave_one_out, read_atomic, read_delimited, read_s3rec, temporal_split, Columns,
    DuplicatePolicy, Interactions, InteractionsBuilder, ReadOptions, Sample, TemporalConfig,
    TimeValue,
};
use proptest::prelude::*;

/// (user, item, time, rating) rows in input order.
type Rows = Vec<(u8, u8, i64, u8)>;

fn rows() -> impl Strategy<Value = Rows> {
    prop::collection::vec((0u8..6, 0u8..12, 0i64..6, 0u8..6), 1..60)
}

/// Naive model: (user ids, item ids, per-user (item, time) sequences).
type Naive = (Vec<String>, Vec<String>, Vec<Vec<(String, i64)>>);

/// Naive model: ids by first appearance, each user's rows stably sorted by time.
fn naive(rows: &Rows) -> Naive {
    let mut users: Vec<String> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    for (u, i, _, _) in rows {
        let (u, i) = (format!("u{u}"), format!("i{i}"));
        if !users.contains(&u) {
            users.push(u);
        }
        if !items.contains(&i) {
            items.push(i);
        }
    }
    let mut seqs: Vec<Vec<(String, i64)>> = users
        .iter()
        .map(|name| {
            rows.iter()
                .filter(|r| &format!("u{}", r.0) == name)
                .map(|r| (format!("i{}", r.1), r.2))
                .collect()
        })
        .collect();
    for s in &mut seqs {
        s.sort_by_key(|e| e.1);
    }
    (users, items, seqs)
}

fn external_seq(store: &Interactions, u: u32) -> Vec<String> {
    store
        .user_items(u)
        .iter()
        .map(|&i| store.item_id(i).unwrap().to_owned())
        .collect()
}

fn assert_matches_naive(store: &Interactions, rows: &Rows) -> Result<(), TestCaseError> {
    let (users, items, seqs) = naive(rows);
    prop_assert_eq!(store.user_ids(), &users[..]);
    prop_assert_eq!(&store.item_ids()[1..], &items[..]);
    for (u, seq) in seqs.iter().enumerate() {
        let want: Vec<String> = seq.iter().map(|e| e.0.clone()).collect();
        prop_assert_eq!(external_seq(store, u as u32), want);
    }
    prop_assert!(store.validate().is_ok());
    Ok(())
}

fn store_from(rows: &Rows) -> Interactions {
    let mut b = InteractionsBuilder::new(true, true);
    for &(u, i, t, r) in rows {
        b.push(
            &format!("u{u}"),
            &format!("i{i}"),
            Some(TimeValue::Int(t)),
            Some(r as f64),
        )
        .unwrap();
    }
    b.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn atomic_and_csv_match_naive_model(rows in rows()) {
        let mut atomic = String::from("rating:float\tuser_id:token\titem_id:token\ttimestamp:float\n");
        let mut csv = String::from("t;u;i;r\n");
        for &(u, i, t, r) in &rows {
            atomic += &format!("{r}\tu{u}\ti{i}\t{t}\n");
            csv += &format!("{t};u{u};i{i};{r}\n");
        }
        let opts = ReadOptions::default();
        let a = read_atomic(atomic.as_bytes(), "a", &Columns::recbole().with_rating("rating"), &opts).unwrap();
        assert_matches_naive(&a, &rows)?;
        let cols = Columns::new("u", "i").with_timestamp("t").with_rating("r");
        let c = read_delimited(csv.as_bytes(), "c", ';', &cols, &opts).unwrap();
        prop_assert_eq!(&a, &c);
    }

    #[test]
    fn s3rec_keeps_line_order(seqs in prop::collection::vec(prop::collection::vec(0u8..20, 1..10), 1..8)) {
        let text: String = seqs.iter().enumerate().map(|(u, s)| {
            let items: Vec<String> = s.iter().map(|i| i.to_string()).collect();
            format!("{u} {}\n", items.join(" "))
        }).collect();
        let store = read_s3rec(text.as_bytes(), "s", &ReadOptions::default()).unwrap();
        prop_assert_eq!(store.num_users(), seqs.len());
        for (u, s) in seqs.iter().enumerate() {
            let want: Vec<String> = s.iter().map(|i| i.to_string()).collect();
            prop_assert_eq!(external_seq(&store, u as u32), want);
        }
    }

    #[test]
    fn k_core_is_the_maximal_core(rows in rows(), ku in 1usize..4, ki in 1usize..4) {
        let store = store_from(&rows);
        let core = store.k_core(ku, ki);
        prop_assert!(core.validate().is_ok());
        // Naive: repeatedly delete violating (user, item) events until stable.
        let mut events: Vec<(String, String)> = (0..store.num_users() as u32)
            .flat_map(|u| external_seq(&store, u).into_iter().map(move |i| (u, i)))
            .map(|(u, i)| (store.user_id(u).unwrap().to_owned(), i))
            .collect();
        loop {
            let mut uc: HashMap<String, usize> = HashMap::new();
            let mut ic: HashMap<String, usize> = HashMap::new();
            for (u, i) in &events {
                *uc.entry(u.clone()).or_default() += 1;
                *ic.entry(i.clone()).or_default() += 1;
            }
            let before = events.len();
            events.retain(|(u, i)| uc[u] >= ku && ic[i] >= ki);
            if events.len() == before {
                break;
            }
        }
        let got: Vec<(String, String)> = (0..core.num_users() as u32)
            .flat_map(|u| external_seq(&core, u).into_iter().map(move |i| (u, i)))
            .map(|(u, i)| (core.user_id(u).unwrap().to_owned(), i))
            .collect();
        prop_assert_eq!(got, events);
    }

    #[test]
    fn filters_keep_valid_stores(rows in rows(), t in 0.0f64..5.0, m in 1usize..5) {
        let store = store_from(&rows);
        let r = store.filter_rating_above(t).unwrap();
        prop_assert!(r.validate().is_ok());
        prop_assert!(r.ratings().unwrap().iter().all(|&x| x > t));
        let kept = store.ratings().unwrap().iter().filter(|&&x| x > t).count();
        prop_assert_eq!(r.num_interactions(), kept);
        for policy in [DuplicatePolicy::KeepFirst, DuplicatePolicy::KeepLast] {
            let d = store.dedup(policy);
            prop_assert!(d.validate().is_ok());
            for u in 0..d.num_users() as u32 {
                let items = d.user_items(u);
                let set: HashSet<&u32> = items.iter().collect();
                prop_assert_eq!(set.len(), items.len());
            }
        }
        let h = store.min_history(m);
        prop_assert!(h.validate().is_ok());
        prop_assert!((0..h.num_users() as u32).all(|u| h.user_len(u) >= m));
    }

    #[test]
    fn leave_one_out_partitions_events(rows in rows()) {
        let store = store_from(&rows);
        let split = leave_one_out(&store).unwrap();
        let mut expected_train = 0;
        let mut users = 0;
        for u in 0..store.num_users() as u32 {
            let n = store.user_len(u);
            if n >= 3 {
                users += 1;
                expected_train += n - 3;
            }
        }
        prop_assert_eq!(split.train.len(), expected_train);
        prop_assert_eq!(split.test.len(), users);
        prop_assert_eq!(split.report.dropped_users, store.num_users() - users);
        let all: HashSet<Sample> = split.train.iter().chain(&split.valid).chain(&split.test).copied().collect();
        prop_assert_eq!(all.len(), split.train.len() + 2 * users);
    }

    #[test]
    fn temporal_split_matches_definition(rows in rows(), mh in 0usize..4) {
        let store = store_from(&rows);
        let config = TemporalConfig { min_history: mh, ..TemporalConfig::default() };
        let split = temporal_split(&store, &config).unwrap();
        let times = store.timestamps().unwrap();
        let lo = (0..store.num_interactions()).map(|e| times.get_f64(e)).fold(f64::INFINITY, f64::min);
        let hi = (0..store.num_interactions()).map(|e| times.get_f64(e)).fold(f64::NEG_INFINITY, f64::max);
        let time_of = |s: &Sample| times.get_f64(store.user_range(s.user).start + s.end as usize) - lo;
        let span = hi - lo;
        for s in &split.train {
            prop_assert!(time_of(s) < 0.8 * span && s.end as usize >= mh.max(1));
        }
        let seen: HashSet<u32> = split.train.iter().flat_map(|s| store.user_items(s.user)[..=s.end as usize].to_vec()).collect();
        for s in &split.valid {
            prop_assert!(time_of(s) >= 0.8 * span && time_of(s) < 0.9 * span);
            prop_assert!(store.user_items(s.user)[..=s.end as usize].iter().all(|i| seen.contains(i)));
        }
        for s in &split.test {
            prop_assert!(time_of(s) >= 0.9 * span);
        }
        let candidates: usize = (0..store.num_users() as u32).map(|u| store.user_len(u).saturating_sub(1)).sum();
        let r = &split.report;
        prop_assert_eq!(split.train.len() + split.valid.len() + split.test.len()
            + r.dropped_short_history + r.dropped_unseen_items, candidates);
    }

    #[test]
    fn batch_rows_hold_the_last_l_items(rows in rows(), l in 1usize..6) {
        let store = store_from(&rows);
        let samples: Vec<Sample> = (0..store.num_users() as u32)
            .flat_map(|u| (1..store.user_len(u) as u32).map(move |end| Sample { user: u, end }))
            .collect();
        let indices: Vec<usize> = (0..samples.len()).rev().collect();
        let b = assemble(&store, &samples, &indices, l);
        let items = b.seqs().items();
        prop_assert_eq!(items.len(), indices.len() * l);
        for (r, &k) in indices.iter().enumerate() {
            let s = samples[k];
            let hist = &store.user_items(s.user)[..s.end as usize];
            let kept = &hist[hist.len().saturating_sub(l)..];
            let row = &items[r * l..(r + 1) * l];
            prop_assert_eq!(&row[l - kept.len()..], kept);
            prop_assert!(row[..l - kept.len()].iter().all(|&x| x == 0));
            prop_assert_eq!(b.seqs().lengths()[r] as usize, kept.len());
            prop_assert_eq!(b.targets()[r], store.user_items(s.user)[s.end as usize]);
        }
    }
}
