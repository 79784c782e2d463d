#![no_main]
//! Fuzz `compare_rank_files` (two `eval --ranks-out` files, paired by line).
//! Input: first byte = per-line limit − 1; the rest is file A, a NUL byte,
//! then file B. Stable mirror: tests/eval_paired.rs.

use dtrec::data::ReadOptions;
use dtrec::lab::compare_rank_files;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let options = ReadOptions {
        max_line_bytes: first as usize + 1,
    };
    let (a, b) = match rest.iter().position(|&byte| byte == 0) {
        Some(cut) => (&rest[..cut], &rest[cut + 1..]),
        None => (rest, rest),
    };
    let lines = |bytes: &[u8]| bytes.split(|&byte| byte == b'\n').count() as u64;
    match compare_rank_files(a, "a", b, "b", &options) {
        Ok(splits) => {
            assert!(!splits.is_empty());
            let rows: u64 = splits.iter().map(|s| s.samples).sum();
            assert!(rows < lines(a).min(lines(b)));
            for s in &splits {
                for m in [&s.ndcg10, &s.hr10, &s.hr1] {
                    assert_eq!(m.b_better + m.a_better + m.ties, s.samples);
                    assert!((0.0..=1.0).contains(&m.mean_a) && (0.0..=1.0).contains(&m.mean_b));
                    assert!(m.p_value.is_nan() == (s.samples < 2));
                }
            }
        }
        Err(e) => {
            assert!(matches!(e.file(), Some("a" | "b")), "{e}");
            if let Some(line) = e.line() {
                assert!((1..=lines(a).max(lines(b))).contains(&line), "{e}");
            }
            assert!(!e.to_string().is_empty());
        }
    }
});
