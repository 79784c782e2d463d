//! Malformed input of every kind gives a typed error naming file and line.

use std::io::Read;

use dtrec::data::{read_atomic, read_delimited, read_s3rec, Columns, DataError, ReadOptions};

const ATOMIC_HEADER: &str = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n";

fn atomic(text: &[u8]) -> Result<dtrec::data::Interactions, DataError> {
    let cols = Columns::recbole().with_rating("rating");
    read_atomic(text, "f.inter", &cols, &ReadOptions::default())
}

fn csv(text: &[u8]) -> Result<dtrec::data::Interactions, DataError> {
    let cols = Columns::new("u", "i").with_timestamp("t");
    read_delimited(text, "f.csv", ',', &cols, &ReadOptions::default())
}

fn s3rec(text: &[u8]) -> Result<dtrec::data::Interactions, DataError> {
    read_s3rec(text, "f.txt", &ReadOptions::default())
}

/// Asserts the error's file, line and that Display says `file:line`.
fn at(err: DataError, file: &str, line: u64) -> DataError {
    assert_eq!(err.file(), Some(file), "{err}");
    assert_eq!(err.line(), Some(line), "{err}");
    assert!(
        err.to_string().starts_with(&format!("{file}:{line}: ")),
        "{err}"
    );
    err
}

#[test]
fn wrong_column_count() {
    let text = format!("{ATOMIC_HEADER}1\t2\t3\t4\n1\t2\t3\n");
    let e = at(atomic(text.as_bytes()).unwrap_err(), "f.inter", 3);
    assert!(matches!(
        e,
        DataError::ColumnCount {
            expected: 4,
            found: 3,
            ..
        }
    ));
    let e = at(csv(b"u,i,t\na,b,1\n\na,b,1,9\n").unwrap_err(), "f.csv", 4);
    assert!(matches!(
        e,
        DataError::ColumnCount {
            expected: 3,
            found: 4,
            ..
        }
    ));
}

#[test]
fn non_numeric_timestamp_and_rating() {
    let text = format!("{ATOMIC_HEADER}1\t2\t3\t17x\n");
    let e = at(atomic(text.as_bytes()).unwrap_err(), "f.inter", 2);
    assert!(
        matches!(&e, DataError::BadNumber { field, value, .. } if field == "timestamp" && value == "17x")
    );
    let text = format!("{ATOMIC_HEADER}1\t2\tNaN\t17\n");
    let e = at(atomic(text.as_bytes()).unwrap_err(), "f.inter", 2);
    assert!(matches!(&e, DataError::BadNumber { field, .. } if field == "rating"));
    for bad in ["inf", "", "1e400", "0x10"] {
        let text = format!("u,i,t\na,b,{bad}\n");
        let e = at(csv(text.as_bytes()).unwrap_err(), "f.csv", 2);
        assert!(
            matches!(&e, DataError::BadNumber { field, .. } if field == "t"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn unknown_column_lists_the_header() {
    let cols = Columns::recbole().with_rating("stars");
    let e = read_atomic(
        ATOMIC_HEADER.as_bytes(),
        "f.inter",
        &cols,
        &ReadOptions::default(),
    )
    .unwrap_err();
    let e = at(e, "f.inter", 1);
    assert!(
        matches!(&e, DataError::UnknownColumn { column, available, .. }
        if column == "stars" && available.len() == 4)
    );
    let e = at(csv(b"user,i,t\n").unwrap_err(), "f.csv", 1);
    assert!(matches!(&e, DataError::UnknownColumn { column, .. } if column == "u"));
}

#[test]
fn bad_headers() {
    let e = at(
        atomic(b"user_id\titem_id:token\n").unwrap_err(),
        "f.inter",
        1,
    );
    assert!(matches!(e, DataError::BadHeader { .. }));
    let e = at(csv(b"u,i,,t\n").unwrap_err(), "f.csv", 1);
    assert!(matches!(e, DataError::BadHeader { .. }));
    let e = at(csv(b"u,i,t,u\n").unwrap_err(), "f.csv", 1);
    assert!(matches!(e, DataError::DuplicateColumn { .. }));
}

#[test]
fn empty_inputs() {
    for r in [atomic(b""), csv(b"\n\n"), s3rec(b"")] {
        let e = r.unwrap_err();
        assert!(matches!(e, DataError::Empty { .. }), "{e}");
        assert!(e.file().is_some());
    }
    assert!(matches!(
        atomic(ATOMIC_HEADER.as_bytes()),
        Err(DataError::NoInteractions { .. })
    ));
    assert!(matches!(
        s3rec(b"  \n\n"),
        Err(DataError::NoInteractions { .. })
    ));
}

#[test]
fn empty_id_fields() {
    let e = at(csv(b"u,i,t\n ,b,1\n").unwrap_err(), "f.csv", 2);
    assert!(matches!(&e, DataError::EmptyField { field, .. } if field == "u"));
    let e = at(csv(b"u,i,t\na,,1\n").unwrap_err(), "f.csv", 2);
    assert!(matches!(&e, DataError::EmptyField { field, .. } if field == "i"));
}

#[test]
fn invalid_utf8() {
    let mut text = ATOMIC_HEADER.as_bytes().to_vec();
    text.extend_from_slice(b"1\t2\t3\t4\n1\t\xC3\x28\t3\t4\n");
    let e = at(atomic(&text).unwrap_err(), "f.inter", 3);
    assert!(matches!(e, DataError::InvalidUtf8 { byte: 2, .. }));
    let e = at(s3rec(b"\xFF 1 2\n").unwrap_err(), "f.txt", 1);
    assert!(matches!(e, DataError::InvalidUtf8 { byte: 0, .. }));
    let e = at(csv(b"u,i,t\xE2\x82\n").unwrap_err(), "f.csv", 1);
    assert!(matches!(e, DataError::InvalidUtf8 { .. }));
}

/// A reader yielding `prefix` then `claimed` bytes of `b'7'` without a newline.
fn huge_line(prefix: &'static str, claimed: u64) -> impl Read {
    prefix.as_bytes().chain(std::io::repeat(b'7').take(claimed))
}

#[test]
fn ten_gigabyte_line_is_refused_without_allocating_it() {
    const TEN_GB: u64 = 10 << 30;
    let opts = ReadOptions::default();
    let limit = opts.max_line_bytes;
    let e = read_atomic(
        huge_line(ATOMIC_HEADER, TEN_GB),
        "big.inter",
        &Columns::recbole(),
        &opts,
    )
    .unwrap_err();
    let e = at(e, "big.inter", 2);
    assert!(matches!(e, DataError::LineTooLong { limit: l, .. } if l == limit));
    let cols = Columns::new("u", "i");
    let e = read_delimited(
        huge_line("u,i\na,b\n", TEN_GB),
        "big.csv",
        ',',
        &cols,
        &opts,
    )
    .unwrap_err();
    at(e, "big.csv", 3);
    let e = read_s3rec(huge_line("", TEN_GB), "big.txt", &opts).unwrap_err();
    at(e, "big.txt", 1);
    // The limit is configurable.
    let small = ReadOptions { max_line_bytes: 8 };
    let e = read_s3rec("1 2 3\n1000 2000 3000\n".as_bytes(), "s.txt", &small).unwrap_err();
    assert!(matches!(
        at(e, "s.txt", 2),
        DataError::LineTooLong { limit: 8, .. }
    ));
}

#[test]
fn s3rec_specific_errors() {
    let e = at(s3rec(b"1 2 3\n2\n").unwrap_err(), "f.txt", 2);
    assert!(matches!(&e, DataError::MissingItems { user, .. } if user == "2"));
    let e = at(s3rec(b"1 2 3\n\n1 4\n").unwrap_err(), "f.txt", 3);
    assert!(matches!(&e, DataError::DuplicateUser { user, .. } if user == "1"));
}

#[test]
fn precision_loss_is_refused() {
    let e = at(
        csv(b"u,i,t\na,b,9007199254740993\na,c,0.5\n").unwrap_err(),
        "f.csv",
        3,
    );
    assert!(matches!(e, DataError::TimestampPrecision { .. }));
}

#[test]
fn io_errors_are_reported_with_line() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            self.0 = 0;
            let text = b"1 2 3\n4 5";
            buf[..text.len()].copy_from_slice(text);
            Ok(text.len())
        }
    }
    let e = read_s3rec(Failing(1), "f.txt", &ReadOptions::default()).unwrap_err();
    let e = at(e, "f.txt", 2);
    assert!(matches!(e, DataError::Io { .. }));
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn missing_file_is_an_open_error() {
    let e = dtrec::data::load(
        std::path::Path::new("/nonexistent/x.inter"),
        &dtrec::data::Format::S3rec,
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::Open { .. }));
    assert_eq!(e.file(), Some("/nonexistent/x.inter"));
}
