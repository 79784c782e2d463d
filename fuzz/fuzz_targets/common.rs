// Shared by the reader fuzz targets: the readers' contract on arbitrary input.
// Run from the repository root, e.g.
//   cargo +nightly fuzz run read_atomic -- -max_total_time=60
// Seed inputs (first byte = per-line limit − 1) are in fuzz/seeds/; copy one
// into fuzz/corpus/<target>/ to start from a valid file.
// Stable mirror: tests/data_fuzz_mirror.rs.

use dtrec::data::{DataError, Interactions, ReadOptions};

/// Splits the fuzzer input into a per-line limit (first byte, 1..=256 bytes,
/// so the limit path is exercised) and the file bytes.
pub fn options_and_bytes(data: &[u8]) -> (ReadOptions, &[u8]) {
    match data.split_first() {
        Some((&first, rest)) => (
            ReadOptions {
                max_line_bytes: first as usize + 1,
            },
            rest,
        ),
        None => (ReadOptions::default(), data),
    }
}

/// A store must be structurally valid; an error must name the input and,
/// if it has a line, one that exists.
pub fn check(result: Result<Interactions, DataError>, bytes: &[u8]) {
    match result {
        Ok(store) => {
            if let Err(why) = store.validate() {
                panic!("invalid store: {why}");
            }
            assert!(store.num_interactions() > 0);
        }
        Err(e) => {
            assert_eq!(e.file(), Some("fuzz"), "{e}");
            if let Some(line) = e.line() {
                let lines = bytes.split(|&b| b == b'\n').count() as u64;
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
            assert!(!e.to_string().is_empty());
        }
    }
}
