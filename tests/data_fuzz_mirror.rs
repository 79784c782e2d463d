//! Stable-toolchain mirror of the `fuzz/` targets: random bytes and mutated
//! valid files fed to every reader (1,000 cases each per strategy). A reader
//! must return either a store that passes `Interactions::validate` or an
//! error naming the input and a line that exists; it must never panic.

use dtrec::data::{
    read_atomic, read_delimited, read_s3rec, Columns, DataError, Interactions, ReadOptions,
};
use proptest::prelude::*;

const ATOMIC: &str = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
    196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n\
    22\t377\t1\t878887116.5\n186\t242\t5\t881250949\n";
const CSV: &str = "user,item,ts,stars\na,x,3,4.5\nb,y,1,3\na,y,3,2\nc,x,-7,1e2\n";
const S3REC: &str = "1 1 2 3 4\n2 3 4 5\n3 1 5 6 7 8\n";

#[derive(Clone, Copy, Debug)]
enum Reader {
    Atomic,
    Csv,
    S3rec,
}

fn run(reader: Reader, bytes: &[u8], max_line_bytes: usize) -> Result<Interactions, DataError> {
    let opts = ReadOptions { max_line_bytes };
    match reader {
        Reader::Atomic => {
            let cols = Columns::recbole().with_rating("rating");
            read_atomic(bytes, "in", &cols, &opts)
        }
        Reader::Csv => {
            let cols = Columns::new("user", "item")
                .with_timestamp("ts")
                .with_rating("stars");
            read_delimited(bytes, "in", ',', &cols, &opts)
        }
        Reader::S3rec => read_s3rec(bytes, "in", &opts),
    }
}

/// The reader's contract on arbitrary input.
fn check(reader: Reader, bytes: &[u8], max_line_bytes: usize) -> Result<(), TestCaseError> {
    match run(reader, bytes, max_line_bytes) {
        Ok(store) => {
            prop_assert!(store.validate().is_ok(), "{:?}", store.validate());
            prop_assert!(store.num_interactions() > 0);
        }
        Err(e) => {
            prop_assert_eq!(e.file(), Some("in"), "{}", e);
            let lines = bytes.split(|&b| b == b'\n').count() as u64;
            if let Some(line) = e.line() {
                prop_assert!(
                    (1..=lines).contains(&line),
                    "line {} of {}: {}",
                    line,
                    lines,
                    e
                );
            }
            prop_assert!(!e.to_string().is_empty());
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, &'static str),
    Delete(usize, usize),
    DuplicateLine(usize),
    Truncate(usize),
}

const SPECIAL: &[&str] = &[
    "\t",
    ",",
    "\n",
    "\r",
    " ",
    ":",
    "\u{FEFF}",
    "\u{e9}",
    "-1",
    "1e999",
    "NaN",
    "0.5",
    "9223372036854775808",
    "<0xFF>",
    "",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), prop::sample::select(SPECIAL)).prop_map(|(p, s)| Mutation::Insert(p, s)),
        (any::<usize>(), 1usize..8).prop_map(|(p, n)| Mutation::Delete(p, n)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(base: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Flip(p, b) if len > 0 => bytes[p % len] = b,
            Mutation::Insert(p, s) => {
                let at = p % (len + 1);
                let s = if s == "<0xFF>" {
                    vec![0xFF]
                } else {
                    s.as_bytes().to_vec()
                };
                bytes.splice(at..at, s);
            }
            Mutation::Delete(p, n) if len > 0 => {
                let at = p % len;
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::DuplicateLine(k) => {
                let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
                let line = lines[k % lines.len()].to_vec();
                bytes.extend_from_slice(&line);
                bytes.push(b'\n');
            }
            Mutation::Truncate(p) => bytes.truncate(p % (len + 1)),
            _ => {}
        }
    }
    bytes
}

fn base(reader: Reader) -> &'static str {
    match reader {
        Reader::Atomic => ATOMIC,
        Reader::Csv => CSV,
        Reader::S3rec => S3REC,
    }
}

/// Random bytes biased toward the formats' own alphabet.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = prop::sample::select(b"0123456789abc:\t, \n\r.-e\xFF\xC3".to_vec());
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(alphabet, 0..256),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn atomic_random_bytes(bytes in noise(), max_line in 1usize..128) {
        check(Reader::Atomic, &bytes, max_line)?;
    }

    #[test]
    fn atomic_mutated(ms in prop::collection::vec(mutation(), 1..6), max_line in 8usize..256) {
        check(Reader::Atomic, &mutate(base(Reader::Atomic), &ms), max_line)?;
    }

    #[test]
    fn csv_random_bytes(bytes in noise(), max_line in 1usize..128) {
        check(Reader::Csv, &bytes, max_line)?;
    }

    #[test]
    fn csv_mutated(ms in prop::collection::vec(mutation(), 1..6), max_line in 8usize..256) {
        check(Reader::Csv, &mutate(base(Reader::Csv), &ms), max_line)?;
    }

    #[test]
    fn s3rec_random_bytes(bytes in noise(), max_line in 1usize..128) {
        check(Reader::S3rec, &bytes, max_line)?;
    }

    #[test]
    fn s3rec_mutated(ms in prop::collection::vec(mutation(), 1..6), max_line in 8usize..256) {
        check(Reader::S3rec, &mutate(base(Reader::S3rec), &ms), max_line)?;
    }
}

#[test]
fn unmutated_bases_parse() {
    for reader in [Reader::Atomic, Reader::Csv, Reader::S3rec] {
        let store = run(reader, base(reader).as_bytes(), 1 << 20).unwrap();
        store.validate().unwrap();
    }
}
