//! Per-row early exit with batch compaction (method.md §3, ARH at
//! inference): after each reasoning step the rows that halt leave the batch
//! and the rest are packed to the front of every per-row buffer, so later
//! steps only compute the rows still running.
//!
//! [`ActiveRows`] maps batch positions to original rows and records each
//! row's halting step; [`compact_rows`] packs any row-major buffer with the
//! same keep-mask. Both are stable (running rows keep their relative order),
//! so a batched run produces exactly the per-row decisions of running every
//! row alone.
//!
//! ```
//! use dtrec::model::halting::compaction::{compact_rows, ActiveRows};
//! let mut rows = ActiveRows::new(3);
//! let mut hidden = vec![0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0]; // (3 × 2)
//! let stop = [false, true, false]; // row 1 halts after step 1
//! let halted = rows.retire(&stop, 1);
//! assert_eq!(halted, vec![(1, 1)]); // (batch position, original row)
//! compact_rows(&mut hidden, 2, &stop);
//! assert_eq!(hidden, vec![0.0, 0.0, 2.0, 2.0]);
//! assert_eq!(rows.active(), &[0, 2]);
//! assert_eq!(rows.finish(4), vec![4, 1, 4]);
//! ```

/// Which original rows are still running, and when the others halted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveRows {
    /// Original row of each batch position, ascending.
    active: Vec<usize>,
    /// Halting step of every original row (None while running).
    halted_at: Vec<Option<usize>>,
}

impl ActiveRows {
    /// All `rows` rows running.
    pub fn new(rows: usize) -> Self {
        Self {
            active: (0..rows).collect(),
            halted_at: vec![None; rows],
        }
    }

    /// Original row of each current batch position.
    pub fn active(&self) -> &[usize] {
        &self.active
    }

    /// Rows still running.
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// Whether every row has halted.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Halting step of every original row so far (None = running).
    pub fn halted_at(&self) -> &[Option<usize>] {
        &self.halted_at
    }

    /// Retires the batch positions with `stop[i]` (one flag per running
    /// row) as halted after `step`. Returns (batch position, original row)
    /// of each halted row, in batch order, so the caller can copy their
    /// outputs out before compacting its buffers with the same `stop`.
    /// Panics if `stop.len()` differs from [`len`](Self::len).
    pub fn retire(&mut self, stop: &[bool], step: usize) -> Vec<(usize, usize)> {
        assert_eq!(
            stop.len(),
            self.active.len(),
            "one stop flag per running row"
        );
        let mut halted = Vec::new();
        let mut kept = Vec::with_capacity(self.active.len());
        for (pos, (&row, &s)) in self.active.iter().zip(stop).enumerate() {
            if s {
                self.halted_at[row] = Some(step);
                halted.push((pos, row));
            } else {
                kept.push(row);
            }
        }
        self.active = kept;
        halted
    }

    /// Halting steps of all rows, the ones still running set to `t_max`.
    pub fn finish(&self, t_max: usize) -> Vec<usize> {
        self.halted_at.iter().map(|h| h.unwrap_or(t_max)).collect()
    }
}

/// Packs the rows of `buf` (rows × width, row-major) whose `stop` flag is
/// false to the front, in order, and truncates the rest: the buffer becomes
/// (kept × width). Panics if `buf.len() != stop.len() · width`.
pub fn compact_rows<T: Copy>(buf: &mut Vec<T>, width: usize, stop: &[bool]) {
    assert_eq!(buf.len(), stop.len() * width, "buffer must be rows × width");
    let mut dst = 0;
    for (src, &s) in stop.iter().enumerate() {
        if s {
            continue;
        }
        if dst != src {
            buf.copy_within(src * width..(src + 1) * width, dst * width);
        }
        dst += 1;
    }
    buf.truncate(dst * width);
}
