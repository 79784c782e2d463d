//! Readers for header-first tabular text: RecBole atomic `.inter` files and
//! delimited (CSV/TSV) files.
//!
//! Both are streamed line by line through one reused buffer. The first
//! non-empty line is the header; empty lines are skipped; every other line
//! must have exactly as many fields as the header. Fields are split on the
//! delimiter with NO quoting engine: a quote character is ordinary data and a
//! field can never contain the delimiter. The user and item fields are taken
//! as written after trimming ASCII whitespace; the timestamp must be an
//! integer or a finite decimal number; the rating a finite number.

use std::io::{BufReader, Read};

use super::error::{excerpt, DataError};
use super::lines::{LineReader, ReadOptions};
use super::store::{BuildError, Interactions, InteractionsBuilder, TimeValue};

/// Which columns hold the user, item, timestamp and (optional) rating.
///
/// Names are matched exactly against the header; for atomic files the
/// `:type` suffix of each header cell is ignored (`user_id:token` is column
/// `user_id`). Without a timestamp column the file's row order is the time
/// order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    /// User id column.
    pub user: String,
    /// Item id column.
    pub item: String,
    /// Timestamp column, if any.
    pub timestamp: Option<String>,
    /// Rating column, if any (needed by the rating filter).
    pub rating: Option<String>,
}

impl Columns {
    /// User and item columns only (row order is the time order).
    pub fn new(user: &str, item: &str) -> Self {
        Columns {
            user: user.to_owned(),
            item: item.to_owned(),
            timestamp: None,
            rating: None,
        }
    }

    /// RecBole's names: `user_id`, `item_id`, `timestamp`, no rating.
    pub fn recbole() -> Self {
        Columns::new("user_id", "item_id").with_timestamp("timestamp")
    }

    /// Sets the timestamp column.
    pub fn with_timestamp(mut self, name: &str) -> Self {
        self.timestamp = Some(name.to_owned());
        self
    }

    /// Sets the rating column.
    pub fn with_rating(mut self, name: &str) -> Self {
        self.rating = Some(name.to_owned());
        self
    }
}

impl Default for Columns {
    fn default() -> Self {
        Columns::recbole()
    }
}

#[derive(Clone, Copy)]
enum HeaderStyle {
    /// `name:type` cells.
    Atomic,
    /// Plain names.
    Plain,
}

/// Reads a RecBole atomic interaction file (`.inter`): tab separated, header
/// cells `name:type` (e.g. `user_id:token  item_id:token  rating:float
/// timestamp:float`). The type names are not checked.
///
/// ```
/// use dtrec::data::{read_atomic, Columns, ReadOptions};
/// let text = "user_id:token\titem_id:token\ttimestamp:float\n\
///             7\t42\t20\n7\t43\t10\n8\t42\t5\n";
/// let s = read_atomic(text.as_bytes(), "mem", &Columns::recbole(), &ReadOptions::default())?;
/// assert_eq!((s.num_users(), s.num_items(), s.num_interactions()), (2, 2, 3));
/// assert_eq!(s.user_items(0), [2, 1]); // item "43" (t=10) before "42" (t=20)
/// # Ok::<(), dtrec::data::DataError>(())
/// ```
pub fn read_atomic(
    reader: impl Read,
    name: &str,
    columns: &Columns,
    options: &ReadOptions,
) -> Result<Interactions, DataError> {
    read_table(reader, name, '\t', HeaderStyle::Atomic, columns, options)
}

/// Reads delimited text with a header of plain column names (CSV with
/// `delimiter = ','`, TSV with `'\t'`, …). No quoting (see the module doc).
///
/// ```
/// use dtrec::data::{read_delimited, Columns, ReadOptions};
/// let text = "uid,iid,ts,stars\na,x,1,5\na,y,2,3\n";
/// let cols = Columns::new("uid", "iid").with_timestamp("ts").with_rating("stars");
/// let s = read_delimited(text.as_bytes(), "mem", ',', &cols, &ReadOptions::default())?;
/// assert_eq!(s.ratings(), Some(&[5.0, 3.0][..]));
/// # Ok::<(), dtrec::data::DataError>(())
/// ```
pub fn read_delimited(
    reader: impl Read,
    name: &str,
    delimiter: char,
    columns: &Columns,
    options: &ReadOptions,
) -> Result<Interactions, DataError> {
    read_table(
        reader,
        name,
        delimiter,
        HeaderStyle::Plain,
        columns,
        options,
    )
}

/// Column indices of the requested fields plus their names (for errors).
struct Layout {
    width: usize,
    user: usize,
    item: usize,
    timestamp: Option<usize>,
    rating: Option<usize>,
}

fn parse_header(
    header: &str,
    file: &str,
    line: u64,
    delimiter: char,
    style: HeaderStyle,
    columns: &Columns,
) -> Result<Layout, DataError> {
    let mut names: Vec<String> = Vec::new();
    for cell in header.split(delimiter) {
        let cell = cell.trim();
        let name = match style {
            HeaderStyle::Plain => cell,
            HeaderStyle::Atomic => match cell.split_once(':') {
                Some((n, t)) if !t.trim().is_empty() => n.trim(),
                _ => {
                    return Err(DataError::BadHeader {
                        file: file.to_owned(),
                        line,
                        cell: excerpt(cell),
                        reason: "atomic header cells must be `name:type`",
                    })
                }
            },
        };
        if name.is_empty() {
            return Err(DataError::BadHeader {
                file: file.to_owned(),
                line,
                cell: excerpt(cell),
                reason: "empty column name",
            });
        }
        if names.iter().any(|n| n == name) {
            return Err(DataError::DuplicateColumn {
                file: file.to_owned(),
                line,
                column: excerpt(name),
            });
        }
        names.push(name.to_owned());
    }
    let find = |wanted: &str| {
        names
            .iter()
            .position(|n| n == wanted)
            .ok_or_else(|| DataError::UnknownColumn {
                file: file.to_owned(),
                line,
                column: wanted.to_owned(),
                available: names.iter().map(|n| excerpt(n)).collect(),
            })
    };
    Ok(Layout {
        width: names.len(),
        user: find(&columns.user)?,
        item: find(&columns.item)?,
        timestamp: columns.timestamp.as_deref().map(find).transpose()?,
        rating: columns.rating.as_deref().map(find).transpose()?,
    })
}

fn read_table(
    reader: impl Read,
    name: &str,
    delimiter: char,
    style: HeaderStyle,
    columns: &Columns,
    options: &ReadOptions,
) -> Result<Interactions, DataError> {
    let mut lines = LineReader::new(BufReader::new(reader), name, options);
    let layout = loop {
        match lines.next_line()? {
            None => {
                return Err(DataError::Empty {
                    file: name.to_owned(),
                })
            }
            Some((_, "")) => continue,
            Some((line, header)) => {
                break parse_header(header, name, line, delimiter, style, columns)?;
            }
        }
    };
    let mut builder = InteractionsBuilder::new(layout.timestamp.is_some(), layout.rating.is_some());
    while let Some((line, row)) = lines.next_line()? {
        if row.is_empty() {
            continue;
        }
        let (mut user, mut item, mut time, mut rating) = ("", "", "", "");
        let mut found = 0usize;
        for (k, field) in row.split(delimiter).enumerate() {
            found += 1;
            if k == layout.user {
                user = field.trim();
            }
            if k == layout.item {
                item = field.trim();
            }
            if Some(k) == layout.timestamp {
                time = field.trim();
            }
            if Some(k) == layout.rating {
                rating = field.trim();
            }
        }
        if found != layout.width {
            return Err(DataError::ColumnCount {
                file: name.to_owned(),
                line,
                expected: layout.width,
                found,
            });
        }
        let empty = |field: &str| DataError::EmptyField {
            file: name.to_owned(),
            line,
            field: field.to_owned(),
        };
        if user.is_empty() {
            return Err(empty(&columns.user));
        }
        if item.is_empty() {
            return Err(empty(&columns.item));
        }
        let bad_number = |field: &Option<String>, value: &str| DataError::BadNumber {
            file: name.to_owned(),
            line,
            field: field.clone().unwrap_or_default(),
            value: excerpt(value),
        };
        let time = match layout.timestamp {
            None => None,
            Some(_) => {
                Some(TimeValue::parse(time).ok_or_else(|| bad_number(&columns.timestamp, time))?)
            }
        };
        let rating = match layout.rating {
            None => None,
            Some(_) => match rating.parse::<f64>() {
                Ok(r) if r.is_finite() => Some(r),
                _ => return Err(bad_number(&columns.rating, rating)),
            },
        };
        builder
            .push(user, item, time, rating)
            .map_err(|e| build_error(e, name, line, columns.timestamp.as_deref()))?;
    }
    if builder.is_empty() {
        return Err(DataError::NoInteractions {
            file: name.to_owned(),
        });
    }
    Ok(builder.finish())
}

/// Attaches file and line to a builder refusal.
pub(crate) fn build_error(
    e: BuildError,
    file: &str,
    line: u64,
    time_field: Option<&str>,
) -> DataError {
    match e {
        BuildError::TooManyUsers => DataError::TooManyIds {
            file: file.to_owned(),
            line,
            what: "users",
        },
        BuildError::TooManyItems => DataError::TooManyIds {
            file: file.to_owned(),
            line,
            what: "items",
        },
        BuildError::TimestampPrecision => DataError::TimestampPrecision {
            file: file.to_owned(),
            line,
            field: time_field.unwrap_or("timestamp").to_owned(),
        },
        BuildError::ColumnMismatch(c) => DataError::InvalidArgument {
            message: format!("{file}:{line}: internal column mismatch ({c})"),
        },
    }
}
