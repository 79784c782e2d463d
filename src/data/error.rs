//! [`DataError`]: every way reading or transforming interaction data can fail.
//!
//! Errors that come from a file carry the file's display name, the 1-based
//! physical line number (header and blank lines included) and, where one
//! column is at fault, that column's name.

use std::fmt;
use std::io;

/// An error from a reader, a filter or a split.
///
/// `file` is the display name the caller gave the reader (usually the path),
/// `line` is 1-based and counts every physical line of the input.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// The underlying reader failed (not an end of file).
    Io {
        /// Display name of the input.
        file: String,
        /// Line being read when the failure happened.
        line: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The input could not be opened.
    Open {
        /// Display name (path) of the input.
        file: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The input holds no header (delimited and atomic formats) or no line at all.
    Empty {
        /// Display name of the input.
        file: String,
    },
    /// The input has a header (or lines) but not a single interaction.
    NoInteractions {
        /// Display name of the input.
        file: String,
    },
    /// A line is longer than the configured limit; nothing beyond the limit
    /// was read into memory.
    LineTooLong {
        /// Display name of the input.
        file: String,
        /// The offending line.
        line: u64,
        /// The limit in bytes (line terminator excluded).
        limit: usize,
    },
    /// A line is not valid UTF-8.
    InvalidUtf8 {
        /// Display name of the input.
        file: String,
        /// The offending line.
        line: u64,
        /// Byte offset of the first invalid byte within the line.
        byte: usize,
    },
    /// A header cell is malformed (empty name, or an atomic cell without `:type`).
    BadHeader {
        /// Display name of the input.
        file: String,
        /// The header line.
        line: u64,
        /// The offending cell, as written.
        cell: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two header cells carry the same column name.
    DuplicateColumn {
        /// Display name of the input.
        file: String,
        /// The header line.
        line: u64,
        /// The repeated name.
        column: String,
    },
    /// A requested column is not in the header.
    UnknownColumn {
        /// Display name of the input.
        file: String,
        /// The header line.
        line: u64,
        /// The name that was asked for.
        column: String,
        /// The names the header does have.
        available: Vec<String>,
    },
    /// A row has a different number of fields than the header.
    ColumnCount {
        /// Display name of the input.
        file: String,
        /// The offending line.
        line: u64,
        /// Number of header columns.
        expected: usize,
        /// Number of fields found.
        found: usize,
    },
    /// A user or item id field is empty.
    EmptyField {
        /// Display name of the input.
        file: String,
        /// The offending line.
        line: u64,
        /// Column name (`"user"` / `"item"` for the one-user-per-line format).
        field: String,
    },
    /// A numeric field (timestamp, rating) does not parse, or is not finite.
    BadNumber {
        /// Display name of the input.
        file: String,
        /// The offending line.
        line: u64,
        /// Column name.
        field: String,
        /// The text found (truncated to 64 bytes).
        value: String,
    },
    /// A timestamp column mixes fractional values with integers that `f64`
    /// cannot hold exactly (|t| > 2^53), so no exact common order exists.
    TimestampPrecision {
        /// Display name of the input.
        file: String,
        /// The offending line.
        line: u64,
        /// Column name.
        field: String,
    },
    /// One-user-per-line format: a line names a user but no item.
    MissingItems {
        /// Display name of the input.
        file: String,
        /// The offending line.
        line: u64,
        /// The user id on that line.
        user: String,
    },
    /// One-user-per-line format: the same user appears on two lines.
    DuplicateUser {
        /// Display name of the input.
        file: String,
        /// The second line naming the user.
        line: u64,
        /// The user id.
        user: String,
    },
    /// More distinct users, items or events than `u32` ids can number.
    TooManyIds {
        /// Display name of the input.
        file: String,
        /// The line that overflowed.
        line: u64,
        /// `"users"`, `"items"` or `"events"`.
        what: &'static str,
    },
    /// An operation needs a column the store does not have (a rating filter
    /// without ratings, a temporal split without timestamps).
    MissingColumn {
        /// `"rating"` or `"timestamp"`.
        column: &'static str,
        /// The operation that needed it.
        operation: &'static str,
    },
    /// An argument is out of its domain (e.g. split fractions not in (0, 1]).
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DataError::*;
        match self {
            Io { file, line, source } => write!(f, "{file}:{line}: read error: {source}"),
            Open { file, source } => write!(f, "{file}: cannot open: {source}"),
            Empty { file } => write!(f, "{file}: empty input (no header or data line)"),
            NoInteractions { file } => write!(f, "{file}: no interaction in the input"),
            LineTooLong { file, line, limit } => {
                write!(
                    f,
                    "{file}:{line}: line longer than the limit of {limit} bytes"
                )
            }
            InvalidUtf8 { file, line, byte } => {
                write!(f, "{file}:{line}: invalid UTF-8 at byte {byte} of the line")
            }
            BadHeader {
                file,
                line,
                cell,
                reason,
            } => write!(f, "{file}:{line}: bad header cell {cell:?}: {reason}"),
            DuplicateColumn { file, line, column } => {
                write!(
                    f,
                    "{file}:{line}: column {column:?} appears twice in the header"
                )
            }
            UnknownColumn {
                file,
                line,
                column,
                available,
            } => write!(
                f,
                "{file}:{line}: no column named {column:?} in the header (columns: {})",
                available.join(", ")
            ),
            ColumnCount {
                file,
                line,
                expected,
                found,
            } => write!(
                f,
                "{file}:{line}: expected {expected} fields as in the header, found {found}"
            ),
            EmptyField { file, line, field } => {
                write!(f, "{file}:{line}: field {field:?} is empty")
            }
            BadNumber {
                file,
                line,
                field,
                value,
            } => write!(
                f,
                "{file}:{line}: field {field:?}: {value:?} is not a finite number"
            ),
            TimestampPrecision { file, line, field } => write!(
                f,
                "{file}:{line}: field {field:?}: fractional timestamps mixed with integers \
                 beyond 2^53 cannot be ordered exactly"
            ),
            MissingItems { file, line, user } => {
                write!(f, "{file}:{line}: user {user:?} has no item")
            }
            DuplicateUser { file, line, user } => {
                write!(f, "{file}:{line}: user {user:?} already had a line")
            }
            TooManyIds { file, line, what } => {
                write!(f, "{file}:{line}: too many {what} for 32-bit ids")
            }
            MissingColumn { column, operation } => {
                write!(
                    f,
                    "{operation} needs a {column} column, which this data lacks"
                )
            }
            InvalidArgument { message } => write!(f, "invalid argument: {message}"),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } | DataError::Open { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl DataError {
    /// The input's display name, if the error comes from an input.
    pub fn file(&self) -> Option<&str> {
        use DataError::*;
        match self {
            Io { file, .. }
            | Open { file, .. }
            | Empty { file }
            | NoInteractions { file }
            | LineTooLong { file, .. }
            | InvalidUtf8 { file, .. }
            | BadHeader { file, .. }
            | DuplicateColumn { file, .. }
            | UnknownColumn { file, .. }
            | ColumnCount { file, .. }
            | EmptyField { file, .. }
            | BadNumber { file, .. }
            | TimestampPrecision { file, .. }
            | MissingItems { file, .. }
            | DuplicateUser { file, .. }
            | TooManyIds { file, .. } => Some(file),
            MissingColumn { .. } | InvalidArgument { .. } => None,
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<u64> {
        use DataError::*;
        match self {
            Io { line, .. }
            | LineTooLong { line, .. }
            | InvalidUtf8 { line, .. }
            | BadHeader { line, .. }
            | DuplicateColumn { line, .. }
            | UnknownColumn { line, .. }
            | ColumnCount { line, .. }
            | EmptyField { line, .. }
            | BadNumber { line, .. }
            | TimestampPrecision { line, .. }
            | MissingItems { line, .. }
            | DuplicateUser { line, .. }
            | TooManyIds { line, .. } => Some(*line),
            Open { .. }
            | Empty { .. }
            | NoInteractions { .. }
            | MissingColumn { .. }
            | InvalidArgument { .. } => None,
        }
    }
}

/// `text` cut to at most 64 bytes (on a char boundary), for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
