//! The default synthetic dataset has learnable sequential structure: a
//! first-order Markov baseline fitted on the leave-one-out training part
//! beats popularity by a wide margin on the test targets, and complex users
//! are harder than simple ones.

use std::collections::HashMap;

use dtrec::data::synthetic::{default_dataset, UserKind};
use dtrec::data::{leave_one_out, DatasetStats};

/// 1 if `target` is among the 10 best of `score` (ties broken by smaller id).
fn hit_at_10(score: &[f64], target: u32) -> bool {
    let t = score[target as usize];
    let better = score
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(i, &s)| s > t || (s == t && (i as u32) < target))
        .count();
    better < 10
}

#[test]
fn markov_beats_popularity_and_complex_users_are_harder() {
    let d = default_dataset();
    let data = &d.interactions;
    println!("{}", DatasetStats::of(data));
    let split = leave_one_out(data).unwrap();
    let n = data.num_items();
    let mut popularity = vec![0.0; n + 1];
    let mut transitions: HashMap<(u32, u32), f64> = HashMap::new();
    for u in 0..data.num_users() as u32 {
        let items = data.user_items(u);
        let train = &items[..items.len() - 2];
        for &i in train {
            popularity[i as usize] += 1.0;
        }
        for w in train.windows(2) {
            *transitions.entry((w[0], w[1])).or_default() += 1.0;
        }
    }
    let max_pop = popularity.iter().cloned().fold(0.0, f64::max);
    let mut hits = HashMap::new();
    for s in &split.test {
        let target = s.target(data);
        let last = *s.history(data).last().unwrap();
        // Markov score: transition count, popularity as a tie-breaker below 1.
        let markov: Vec<f64> = (0..=n as u32)
            .map(|j| {
                transitions.get(&(last, j)).copied().unwrap_or(0.0)
                    + popularity[j as usize] / (max_pop + 1.0)
            })
            .collect();
        let kind = d.user_kind[s.user as usize];
        let e = hits.entry(kind).or_insert([0usize; 3]);
        e[0] += hit_at_10(&popularity, target) as usize;
        e[1] += hit_at_10(&markov, target) as usize;
        e[2] += 1;
    }
    let rate = |k: UserKind, col: usize| hits[&k][col] as f64 / hits[&k][2] as f64;
    let total = |col: usize| {
        (hits[&UserKind::Simple][col] + hits[&UserKind::Complex][col]) as f64
            / split.test.len() as f64
    };
    println!(
        "HR@10 popularity {:.4}, markov {:.4}; markov simple {:.4}, complex {:.4}",
        total(0),
        total(1),
        rate(UserKind::Simple, 1),
        rate(UserKind::Complex, 1)
    );
    assert!(
        total(1) > 3.0 * total(0) && total(1) > 0.2,
        "markov {} vs pop {}",
        total(1),
        total(0)
    );
    assert!(rate(UserKind::Complex, 1) < rate(UserKind::Simple, 1) - 0.1);
}
