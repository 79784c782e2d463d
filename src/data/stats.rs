//! Summary statistics of an [`Interactions`] store.

use std::fmt;

use super::store::Interactions;

/// Sizes and sequence-length statistics of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetStats {
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Number of events.
    pub interactions: usize,
    /// Mean events per user.
    pub mean_len: f64,
    /// Median events per user (mean of the two middle values for even counts).
    pub median_len: f64,
    /// Fewest events of a user.
    pub min_len: usize,
    /// Most events of a user.
    pub max_len: usize,
    /// `interactions / (users · items)`.
    pub density: f64,
}

impl DatasetStats {
    /// Computes the statistics of `data` (all zeros for an empty store).
    ///
    /// ```
    /// use dtrec::data::{read_s3rec, DatasetStats, ReadOptions};
    /// let s = read_s3rec("a 1 2 3\nb 1\n".as_bytes(), "mem", &ReadOptions::default())?;
    /// let st = DatasetStats::of(&s);
    /// assert_eq!((st.users, st.items, st.interactions, st.max_len), (2, 3, 4, 3));
    /// assert_eq!((st.mean_len, st.median_len), (2.0, 2.0));
    /// # Ok::<(), dtrec::data::DataError>(())
    /// ```
    pub fn of(data: &Interactions) -> DatasetStats {
        let mut lens: Vec<usize> = (0..data.num_users() as u32)
            .map(|u| data.user_len(u))
            .collect();
        lens.sort_unstable();
        let (users, items, interactions) =
            (data.num_users(), data.num_items(), data.num_interactions());
        let median_len = match lens.len() {
            0 => 0.0,
            n if n % 2 == 1 => lens[n / 2] as f64,
            n => (lens[n / 2 - 1] + lens[n / 2]) as f64 / 2.0,
        };
        let cells = users as f64 * items as f64;
        DatasetStats {
            users,
            items,
            interactions,
            mean_len: if users == 0 {
                0.0
            } else {
                interactions as f64 / users as f64
            },
            median_len,
            min_len: lens.first().copied().unwrap_or(0),
            max_len: lens.last().copied().unwrap_or(0),
            density: if cells == 0.0 {
                0.0
            } else {
                interactions as f64 / cells
            },
        }
    }
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "users         {}", self.users)?;
        writeln!(f, "items         {}", self.items)?;
        writeln!(f, "interactions  {}", self.interactions)?;
        writeln!(
            f,
            "seq length    mean {:.2}  median {}  min {}  max {}",
            self.mean_len, self.median_len, self.min_len, self.max_len
        )?;
        write!(
            f,
            "density       {:.6} ({:.4}%)",
            self.density,
            self.density * 100.0
        )
    }
}
