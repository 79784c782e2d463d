//! Reader for the one-user-per-line format of the S3-Rec benchmark files:
//! `user item item ...`, fields separated by ASCII whitespace, items already
//! in time order. There are no timestamps; lines with only whitespace are
//! skipped; a user may appear on one line only.

use std::io::{BufReader, Read};

use super::error::{excerpt, DataError};
use super::lines::{LineReader, ReadOptions};
use super::store::{Interactions, InteractionsBuilder};
use super::tabular::build_error;

/// Reads `user item item ...` lines (e.g. `../shared/datasets/s3rec/Beauty.txt`).
///
/// ```
/// use dtrec::data::{read_s3rec, ReadOptions};
/// let s = read_s3rec("1 10 11 12\n2 11 13\n".as_bytes(), "mem", &ReadOptions::default())?;
/// assert_eq!((s.num_users(), s.num_items()), (2, 4));
/// assert_eq!(s.user_items(1), [2, 4]);
/// assert_eq!(s.item_id(4), Some("13"));
/// # Ok::<(), dtrec::data::DataError>(())
/// ```
pub fn read_s3rec(
    reader: impl Read,
    name: &str,
    options: &ReadOptions,
) -> Result<Interactions, DataError> {
    let mut lines = LineReader::new(BufReader::new(reader), name, options);
    let mut builder = InteractionsBuilder::new(false, false);
    let mut saw_line = false;
    while let Some((line, row)) = lines.next_line()? {
        saw_line = true;
        let mut fields = row.split_ascii_whitespace();
        let Some(user) = fields.next() else {
            continue;
        };
        if builder.has_user(user) {
            return Err(DataError::DuplicateUser {
                file: name.to_owned(),
                line,
                user: excerpt(user),
            });
        }
        let mut any = false;
        for item in fields {
            any = true;
            builder
                .push(user, item, None, None)
                .map_err(|e| build_error(e, name, line, None))?;
        }
        if !any {
            return Err(DataError::MissingItems {
                file: name.to_owned(),
                line,
                user: excerpt(user),
            });
        }
    }
    if !saw_line {
        return Err(DataError::Empty {
            file: name.to_owned(),
        });
    }
    if builder.is_empty() {
        return Err(DataError::NoInteractions {
            file: name.to_owned(),
        });
    }
    Ok(builder.finish())
}
