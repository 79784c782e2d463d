//! A streaming line reader with a hard per-line byte limit.
//!
//! One buffer is reused for every line. Each read goes through
//! `Read::take(limit + 1)`, so a line that claims to be 10 GB long costs at
//! most `limit + 1` bytes of memory before [`DataError::LineTooLong`] is
//! returned.

use std::io::{BufRead, ErrorKind, Read};

use super::error::DataError;

/// Default per-line limit: 1 MiB (the longest Beauty.txt line is ~2 KB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// Options shared by every reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Longest accepted line in bytes, terminator excluded.
    pub max_line_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Reads `\n`-terminated lines (a trailing `\r` is stripped) as `&str`.
pub(crate) struct LineReader<R> {
    reader: R,
    name: String,
    buf: Vec<u8>,
    line: u64,
    max_line_bytes: usize,
}

impl<R: BufRead> LineReader<R> {
    pub(crate) fn new(reader: R, name: &str, options: &ReadOptions) -> Self {
        LineReader {
            reader,
            name: name.to_owned(),
            buf: Vec::new(),
            line: 0,
            max_line_bytes: options.max_line_bytes,
        }
    }

    /// The next line's 1-based number and text without its terminator, or
    /// `None` at end of input. A UTF-8 byte-order mark at the start of line 1
    /// is skipped.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, &str)>, DataError> {
        self.buf.clear();
        let limit = self.max_line_bytes as u64 + 1;
        let next = self.line + 1;
        let n = loop {
            match (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(DataError::Io {
                        file: self.name.clone(),
                        line: next,
                        source,
                    })
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        self.line = next;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > self.max_line_bytes {
            return Err(DataError::LineTooLong {
                file: self.name.clone(),
                line: self.line,
                limit: self.max_line_bytes,
            });
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let start = if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        match std::str::from_utf8(&self.buf[start..]) {
            Ok(text) => Ok(Some((self.line, text))),
            Err(e) => Err(DataError::InvalidUtf8 {
                file: self.name.clone(),
                line: self.line,
                byte: start + e.valid_up_to(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, String>> {
        let opts = ReadOptions {
            max_line_bytes: max,
        };
        let mut reader = LineReader::new(input, "t", &opts);
        let mut out = Vec::new();
        loop {
            match reader.next_line() {
                Ok(Some((_, l))) => out.push(Ok(l.to_owned())),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf_and_bom() {
        let got = lines(b"\xEF\xBB\xBFa b\r\nc\n\nlast", 100);
        let want: Vec<Result<String, String>> = ["a b", "c", "", "last"]
            .iter()
            .map(|s| Ok(s.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn limit_is_exact() {
        assert_eq!(lines(b"abcd\n", 4), vec![Ok("abcd".to_string())]);
        assert_eq!(lines(b"abcd", 4), vec![Ok("abcd".to_string())]);
        assert_eq!(
            lines(b"abcde\n", 4),
            vec![Err("t:1: line longer than the limit of 4 bytes".to_string())]
        );
    }

    #[test]
    fn endless_line_is_bounded() {
        // An endless reader with no newline: must stop after limit + 1 bytes.
        let endless = std::io::BufReader::new(std::io::repeat(b'x'));
        let opts = ReadOptions {
            max_line_bytes: 1000,
        };
        let mut reader = LineReader::new(endless, "inf", &opts);
        let err = reader.next_line().unwrap_err();
        assert!(matches!(
            err,
            DataError::LineTooLong {
                line: 1,
                limit: 1000,
                ..
            }
        ));
        assert!(reader.buf.capacity() < 1 << 16);
    }

    #[test]
    fn invalid_utf8_names_line_and_byte() {
        let got = lines(b"ok\nab\xFFc\n", 100);
        assert_eq!(
            got[1],
            Err("t:2: invalid UTF-8 at byte 2 of the line".to_string())
        );
    }
}
