//! The per-sample ranks file of `dtrec eval --ranks-out`, and two such
//! files compared sample by sample.
//!
//! `eval --ranks-out` writes one CSV row per sample ([`RANKS_HEADER`]). Two
//! files written from the same data list the same samples in the same
//! order, so model B is compared with model A line by line: per split, the
//! [paired statistics](super::paired) of NDCG@10, HR@10 and HR@1, and the mean
//! reasoning steps of each.
//!
//! The reader is hostile-input code. Each line is read under a byte cap
//! ([`ReadOptions`]), a field that does not parse is an error naming the
//! file, the line and the field, and two files that disagree on a sample
//! name both files and the line. Nothing is stored per sample: memory does
//! not grow with the files.
//!
//! ```
//! use dtrec::data::ReadOptions;
//! use dtrec::lab::{compare_rank_files, RANKS_HEADER};
//!
//! let a = format!("{RANKS_HEADER}\ntest,u1,3,i9,4,1,2\ntest,u2,5,i4,7,30,2\n");
//! let b = format!("{RANKS_HEADER}\ntest,u1,3,i9,4,3,1\ntest,u2,5,i4,7,2,1\n");
//! let splits = compare_rank_files(
//!     a.as_bytes(), "a.csv", b.as_bytes(), "b.csv", &ReadOptions::default(),
//! )?;
//! let test = &splits[0];
//! assert_eq!((test.split, test.samples), ("test", 2));
//! // u1 falls from rank 1 to 3, u2 rises from 30 (a miss) to 2
//! assert_eq!((test.hr10.b_better, test.hr10.a_better, test.hr10.ties), (1, 0, 1));
//! assert_eq!(test.mean_steps_b, 1.0);
//! # Ok::<(), dtrec::lab::RanksError>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::paired::{PairedAccumulator, PairedMetric};
use crate::data::{DataError, LineReader, ReadOptions};
use crate::io::Fnv1a64;
use crate::model::halting::ndcg_at_10;

/// Header of the per-sample ranks CSV written by `dtrec eval --ranks-out`.
pub const RANKS_HEADER: &str = "split,user,history_len,target,target_train_count,rank,steps";

/// The split names a ranks file may hold, in the order `eval` writes them.
const SPLITS: [&str; 2] = ["validation", "test"];

/// Longest field value quoted in an error message, in bytes.
const QUOTED_BYTES: usize = 64;

/// One split of two ranks files compared.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitComparison {
    /// `"validation"` or `"test"`.
    pub split: &'static str,
    /// Samples of this split (the same in both files).
    pub samples: u64,
    /// FNV-1a digest of the split's sample fields (all but rank and steps)
    /// in file order: equal for two comparisons exactly when, barring a
    /// hash collision, they were scored on the same samples.
    pub samples_digest: u64,
    /// NDCG@10, B against A.
    pub ndcg10: PairedMetric,
    /// HR@10, B against A.
    pub hr10: PairedMetric,
    /// HR@1 (the target ranked first), B against A.
    pub hr1: PairedMetric,
    /// Mean reasoning steps model A ran.
    pub mean_steps_a: f64,
    /// Mean reasoning steps model B ran.
    pub mean_steps_b: f64,
}

impl SplitComparison {
    /// The metrics compared, named, in report order: NDCG@10, HR@10, HR@1.
    pub fn metrics(&self) -> [(&'static str, &PairedMetric); 3] {
        [
            ("NDCG@10", &self.ndcg10),
            ("HR@10", &self.hr10),
            ("HR@1", &self.hr1),
        ]
    }
}

/// Per-split running sums.
#[derive(Default)]
struct SplitAccumulator {
    ndcg10: PairedAccumulator,
    hr10: PairedAccumulator,
    hr1: PairedAccumulator,
    steps_a: f64,
    steps_b: f64,
    samples_digest: Fnv1a64,
}

/// Why two ranks files could not be compared.
#[derive(Debug)]
#[non_exhaustive]
pub enum RanksError {
    /// Opening or reading a file failed, a line is over the byte cap or not
    /// UTF-8, or the file is empty.
    Read(DataError),
    /// Line 1 is not [`RANKS_HEADER`].
    Header {
        /// The file.
        file: String,
        /// The line found (truncated).
        found: String,
    },
    /// A row does not have the seven fields of the header.
    FieldCount {
        /// The file.
        file: String,
        /// The row's line.
        line: u64,
        /// Comma-separated pieces found.
        found: usize,
    },
    /// A field does not parse.
    BadField {
        /// The file.
        file: String,
        /// The row's line.
        line: u64,
        /// `"split"`, `"rank"` or `"steps"`.
        field: &'static str,
        /// The text found (truncated).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The files name different samples on the same line: they were not
    /// written from the same data and split.
    SampleMismatch {
        /// File A.
        file_a: String,
        /// File B.
        file_b: String,
        /// The line.
        line: u64,
        /// Split, user, history length, target and target count in A (truncated).
        sample_a: String,
        /// The same fields in B (truncated).
        sample_b: String,
    },
    /// One file has rows past the other's end.
    LengthMismatch {
        /// The file with more rows.
        longer: String,
        /// The file that ended.
        shorter: String,
        /// The first line that only `longer` has.
        line: u64,
    },
    /// The files hold a header but no sample.
    NoSamples {
        /// File A.
        file: String,
    },
}

impl RanksError {
    /// The line the error is about, if it is about one.
    pub fn line(&self) -> Option<u64> {
        use RanksError::*;
        match self {
            Read(e) => e.line(),
            Header { .. } => Some(1),
            FieldCount { line, .. }
            | BadField { line, .. }
            | SampleMismatch { line, .. }
            | LengthMismatch { line, .. } => Some(*line),
            NoSamples { .. } => None,
        }
    }

    /// The file the error is about (file A for a mismatch).
    pub fn file(&self) -> Option<&str> {
        use RanksError::*;
        match self {
            Read(e) => e.file(),
            Header { file, .. }
            | FieldCount { file, .. }
            | BadField { file, .. }
            | NoSamples { file } => Some(file),
            SampleMismatch { file_a, .. } => Some(file_a),
            LengthMismatch { longer, .. } => Some(longer),
        }
    }
}

impl fmt::Display for RanksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RanksError::*;
        match self {
            Read(e) => write!(f, "{e}"),
            Header { file, found } => write!(
                f,
                "{file}:1: not a ranks file of `dtrec eval --ranks-out`: header {found:?}, \
                 expected {RANKS_HEADER:?}"
            ),
            FieldCount { file, line, found } => write!(
                f,
                "{file}:{line}: {found} comma-separated fields, expected 7 ({RANKS_HEADER})"
            ),
            BadField {
                file,
                line,
                field,
                value,
                expected,
            } => write!(
                f,
                "{file}:{line}: field `{field}`: {value:?} is not {expected}"
            ),
            SampleMismatch {
                file_a,
                file_b,
                line,
                sample_a,
                sample_b,
            } => write!(
                f,
                "line {line}: {file_a} has sample {sample_a:?} but {file_b} has {sample_b:?}; \
                 the files must come from the same data and split"
            ),
            LengthMismatch {
                longer,
                shorter,
                line,
            } => write!(
                f,
                "{longer}:{line}: more samples than {shorter}, which ends at line {}",
                line - 1
            ),
            NoSamples { file } => write!(f, "{file}: no sample after the header"),
        }
    }
}

impl std::error::Error for RanksError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RanksError::Read(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DataError> for RanksError {
    fn from(e: DataError) -> Self {
        RanksError::Read(e)
    }
}

/// At most [`QUOTED_BYTES`] of `text`, cut at a character boundary.
fn quoted(text: &str) -> String {
    let mut end = text.len().min(QUOTED_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// One parsed row. `sample` is the five leading fields as written (user and
/// target ids may be quoted and hold commas, so they are not split further;
/// rank and steps, the last two fields, never are).
struct Row<'a> {
    split: usize,
    sample: &'a str,
    rank: u32,
    steps: u32,
}

fn parse_row<'a>(file: &str, line: u64, text: &'a str) -> Result<Row<'a>, RanksError> {
    let mut tail = text.rsplitn(3, ',');
    let (steps, rank, sample) = match (tail.next(), tail.next(), tail.next()) {
        (Some(steps), Some(rank), Some(sample)) if sample.matches(',').count() >= 4 => {
            (steps, rank, sample)
        }
        _ => {
            return Err(RanksError::FieldCount {
                file: file.to_owned(),
                line,
                found: text.split(',').count(),
            })
        }
    };
    let bad = |field, value: &str, expected| RanksError::BadField {
        file: file.to_owned(),
        line,
        field,
        value: quoted(value),
        expected,
    };
    let split_name = sample.split(',').next().unwrap_or_default();
    let split = SPLITS
        .iter()
        .position(|&s| s == split_name)
        .ok_or_else(|| bad("split", split_name, "`validation` or `test`"))?;
    let rank = rank
        .parse::<u32>()
        .ok()
        .filter(|&r| r >= 1)
        .ok_or_else(|| bad("rank", rank, "a rank ≥ 1"))?;
    let steps = steps
        .parse::<u32>()
        .map_err(|_| bad("steps", steps, "a whole number of steps"))?;
    Ok(Row {
        split,
        sample,
        rank,
        steps,
    })
}

fn read_header<R: BufRead>(lines: &mut LineReader<R>, file: &str) -> Result<(), RanksError> {
    match lines.next_line()? {
        None => Err(DataError::Empty {
            file: file.to_owned(),
        }
        .into()),
        Some((_, text)) if text == RANKS_HEADER => Ok(()),
        Some((_, text)) => Err(RanksError::Header {
            file: file.to_owned(),
            found: quoted(text),
        }),
    }
}

/// Compares model B's ranks file with model A's, split by split, in the
/// order the splits first appear. `name_a` and `name_b` name the inputs in
/// errors. Files from different data are refused at the first line that
/// names another sample; nothing is stored per sample.
pub fn compare_rank_files<A: BufRead, B: BufRead>(
    a: A,
    name_a: &str,
    b: B,
    name_b: &str,
    options: &ReadOptions,
) -> Result<Vec<SplitComparison>, RanksError> {
    let mut lines_a = LineReader::new(a, name_a, options);
    let mut lines_b = LineReader::new(b, name_b, options);
    read_header(&mut lines_a, name_a)?;
    read_header(&mut lines_b, name_b)?;
    let mut splits: [SplitAccumulator; 2] = Default::default();
    let mut order = Vec::with_capacity(SPLITS.len());
    loop {
        let (line, text_a, text_b) = match (lines_a.next_line()?, lines_b.next_line()?) {
            (None, None) => break,
            (Some((line, _)), None) => {
                return Err(RanksError::LengthMismatch {
                    longer: name_a.to_owned(),
                    shorter: name_b.to_owned(),
                    line,
                })
            }
            (None, Some((line, _))) => {
                return Err(RanksError::LengthMismatch {
                    longer: name_b.to_owned(),
                    shorter: name_a.to_owned(),
                    line,
                })
            }
            (Some((line, text_a)), Some((_, text_b))) => (line, text_a, text_b),
        };
        let row_a = parse_row(name_a, line, text_a)?;
        let row_b = parse_row(name_b, line, text_b)?;
        if row_a.sample != row_b.sample {
            return Err(RanksError::SampleMismatch {
                file_a: name_a.to_owned(),
                file_b: name_b.to_owned(),
                line,
                sample_a: quoted(row_a.sample),
                sample_b: quoted(row_b.sample),
            });
        }
        if !order.contains(&row_a.split) {
            order.push(row_a.split);
        }
        let acc = &mut splits[row_a.split];
        acc.ndcg10
            .push(ndcg_at_10(row_a.rank), ndcg_at_10(row_b.rank));
        let hit = |rank: u32| f64::from(u8::from(rank <= 10));
        acc.hr10.push(hit(row_a.rank), hit(row_b.rank));
        let first = |rank: u32| f64::from(u8::from(rank == 1));
        acc.hr1.push(first(row_a.rank), first(row_b.rank));
        acc.steps_a += f64::from(row_a.steps);
        acc.steps_b += f64::from(row_b.steps);
        acc.samples_digest.update_prefixed(row_a.sample.as_bytes());
    }
    if order.is_empty() {
        return Err(RanksError::NoSamples {
            file: name_a.to_owned(),
        });
    }
    Ok(order
        .into_iter()
        .map(|s| {
            let acc = &splits[s];
            let samples = acc.ndcg10.samples();
            SplitComparison {
                split: SPLITS[s],
                samples,
                samples_digest: acc.samples_digest.finish(),
                ndcg10: acc.ndcg10.finish().expect("the split has a sample"),
                hr10: acc.hr10.finish().expect("the split has a sample"),
                hr1: acc.hr1.finish().expect("the split has a sample"),
                mean_steps_a: acc.steps_a / samples as f64,
                mean_steps_b: acc.steps_b / samples as f64,
            }
        })
        .collect())
}

/// [`compare_rank_files`] on two paths, with the default line cap.
pub fn compare_rank_paths(a: &Path, b: &Path) -> Result<Vec<SplitComparison>, RanksError> {
    let open = |path: &Path| {
        File::open(path)
            .map(BufReader::new)
            .map_err(|source| DataError::Open {
                file: path.display().to_string(),
                source,
            })
    };
    compare_rank_files(
        open(a)?,
        &a.display().to_string(),
        open(b)?,
        &b.display().to_string(),
        &ReadOptions::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_cuts_at_a_character_boundary() {
        let long = "é".repeat(40);
        let q = quoted(&long);
        assert_eq!(q.len(), 64);
        assert!(long.starts_with(&q));
    }
}
