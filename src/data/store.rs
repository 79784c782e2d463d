//! The [`Interactions`] store and its [`InteractionsBuilder`].
//!
//! Ids: users are numbered `0..U` and items `1..=N` (0 is the padding id) in
//! order of first appearance in the input, so the same input always gives the
//! same ids. Each user's events sit in one flat buffer, user `u` owning
//! `items()[offsets()[u]..offsets()[u + 1]]` (CSR layout), ordered by a
//! STABLE sort on the timestamp: events with equal timestamps keep their
//! input order. Without a timestamp column the input order is the time order.

use std::collections::HashMap;
use std::fmt;

/// One parsed timestamp cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeValue {
    /// An integer timestamp (e.g. Unix seconds).
    Int(i64),
    /// A fractional timestamp; always finite.
    Float(f64),
}

impl TimeValue {
    /// Parses a timestamp cell: as `i64` when it is an integer, else as a
    /// finite `f64`. `None` for anything else (empty, NaN, ±inf, text).
    pub fn parse(text: &str) -> Option<TimeValue> {
        if let Ok(v) = text.parse::<i64>() {
            return Some(TimeValue::Int(v));
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(TimeValue::Float(v)),
            _ => None,
        }
    }
}

/// Per-event timestamps, parallel to [`Interactions::items`]. Integer when
/// every cell was an integer, otherwise `f64` (never `f32`: seconds since
/// 1970 need ~31 bits of mantissa).
#[derive(Clone, Debug, PartialEq)]
pub enum Timestamps {
    /// Every timestamp was an integer.
    Int(Vec<i64>),
    /// At least one timestamp was fractional; all are held as `f64`.
    Float(Vec<f64>),
}

impl Timestamps {
    /// Number of timestamps.
    pub fn len(&self) -> usize {
        match self {
            Timestamps::Int(v) => v.len(),
            Timestamps::Float(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Timestamp of flat event `index`.
    pub fn get(&self, index: usize) -> TimeValue {
        match self {
            Timestamps::Int(v) => TimeValue::Int(v[index]),
            Timestamps::Float(v) => TimeValue::Float(v[index]),
        }
    }

    /// Timestamp of flat event `index` as `f64` (exact for |t| ≤ 2^53).
    pub fn get_f64(&self, index: usize) -> f64 {
        match self {
            Timestamps::Int(v) => v[index] as f64,
            Timestamps::Float(v) => v[index],
        }
    }

    fn select(&self, keep: &[usize]) -> Timestamps {
        match self {
            Timestamps::Int(v) => Timestamps::Int(keep.iter().map(|&i| v[i]).collect()),
            Timestamps::Float(v) => Timestamps::Float(keep.iter().map(|&i| v[i]).collect()),
        }
    }
}

/// Why [`InteractionsBuilder::push`] refused an event. Readers turn it into a
/// [`DataError`](super::DataError) naming file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// More than `u32::MAX` users.
    TooManyUsers,
    /// More than `u32::MAX - 1` items (0 is padding).
    TooManyItems,
    /// Fractional timestamps mixed with integers beyond ±2^53.
    TimestampPrecision,
    /// A timestamp (or rating) was given to a builder created without that
    /// column, or was missing in a builder created with it.
    ColumnMismatch(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::TooManyUsers => write!(f, "too many users for 32-bit ids"),
            BuildError::TooManyItems => write!(f, "too many items for 32-bit ids"),
            BuildError::TimestampPrecision => write!(
                f,
                "fractional timestamps mixed with integers beyond 2^53 cannot be ordered exactly"
            ),
            BuildError::ColumnMismatch(c) => {
                write!(f, "{c} given inconsistently with the builder's columns")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Largest integer magnitude an `f64` holds exactly.
const F64_EXACT: i64 = 1 << 53;

enum TimeColumn {
    Absent,
    Int(Vec<i64>),
    Float(Vec<f64>),
}

/// Collects events in input order, assigning dense ids on first appearance;
/// [`finish`](Self::finish) groups them per user and sorts them stably by time.
pub struct InteractionsBuilder {
    user_index: HashMap<String, u32>,
    item_index: HashMap<String, u32>,
    user_ids: Vec<String>,
    item_ids: Vec<String>,
    event_user: Vec<u32>,
    event_item: Vec<u32>,
    times: TimeColumn,
    ratings: Option<Vec<f64>>,
}

impl InteractionsBuilder {
    /// A builder whose events carry a timestamp iff `with_time`, and a rating
    /// iff `with_rating`.
    pub fn new(with_time: bool, with_rating: bool) -> Self {
        InteractionsBuilder {
            user_index: HashMap::new(),
            item_index: HashMap::new(),
            user_ids: Vec::new(),
            item_ids: vec![String::new()],
            event_user: Vec::new(),
            event_item: Vec::new(),
            times: if with_time {
                TimeColumn::Int(Vec::new())
            } else {
                TimeColumn::Absent
            },
            ratings: with_rating.then(Vec::new),
        }
    }

    /// Number of events pushed so far.
    pub fn len(&self) -> usize {
        self.event_item.len()
    }

    /// Whether no event was pushed.
    pub fn is_empty(&self) -> bool {
        self.event_item.is_empty()
    }

    /// Whether `user` was already seen.
    pub fn has_user(&self, user: &str) -> bool {
        self.user_index.contains_key(user)
    }

    /// Appends one event. On error nothing is recorded.
    pub fn push(
        &mut self,
        user: &str,
        item: &str,
        time: Option<TimeValue>,
        rating: Option<f64>,
    ) -> Result<(), BuildError> {
        match (&self.times, time) {
            (TimeColumn::Absent, Some(_)) => return Err(BuildError::ColumnMismatch("timestamp")),
            (TimeColumn::Int(_) | TimeColumn::Float(_), None) => {
                return Err(BuildError::ColumnMismatch("timestamp"))
            }
            _ => {}
        }
        if self.ratings.is_some() != rating.is_some() {
            return Err(BuildError::ColumnMismatch("rating"));
        }
        // Check everything that can fail before mutating anything.
        let new_user = !self.user_index.contains_key(user);
        let new_item = !self.item_index.contains_key(item);
        if new_user && self.user_ids.len() >= u32::MAX as usize {
            return Err(BuildError::TooManyUsers);
        }
        if new_item && self.item_ids.len() > u32::MAX as usize - 1 {
            return Err(BuildError::TooManyItems);
        }
        if let Some(t) = time {
            self.push_time(t)?;
        }
        if let (Some(r), Some(v)) = (rating, self.ratings.as_mut()) {
            v.push(r);
        }
        let u = match self.user_index.get(user) {
            Some(&u) => u,
            None => {
                let u = self.user_ids.len() as u32;
                self.user_index.insert(user.to_owned(), u);
                self.user_ids.push(user.to_owned());
                u
            }
        };
        let i = match self.item_index.get(item) {
            Some(&i) => i,
            None => {
                let i = self.item_ids.len() as u32;
                self.item_index.insert(item.to_owned(), i);
                self.item_ids.push(item.to_owned());
                i
            }
        };
        self.event_user.push(u);
        self.event_item.push(i);
        Ok(())
    }

    fn push_time(&mut self, t: TimeValue) -> Result<(), BuildError> {
        let exact = |v: i64| (-F64_EXACT..=F64_EXACT).contains(&v);
        match (&mut self.times, t) {
            (TimeColumn::Int(v), TimeValue::Int(x)) => v.push(x),
            (TimeColumn::Float(v), TimeValue::Float(x)) => v.push(x),
            (TimeColumn::Float(v), TimeValue::Int(x)) => {
                if !exact(x) {
                    return Err(BuildError::TimestampPrecision);
                }
                v.push(x as f64);
            }
            (TimeColumn::Int(v), TimeValue::Float(x)) => {
                if !v.iter().all(|&i| exact(i)) {
                    return Err(BuildError::TimestampPrecision);
                }
                let mut f: Vec<f64> = v.iter().map(|&i| i as f64).collect();
                f.push(x);
                self.times = TimeColumn::Float(f);
            }
            (TimeColumn::Absent, _) => return Err(BuildError::ColumnMismatch("timestamp")),
        }
        Ok(())
    }

    /// Groups events per user (users in id order) and orders each user's
    /// events by a stable sort on the timestamp (ties keep push order).
    pub fn finish(self) -> Interactions {
        let num_users = self.user_ids.len();
        let num_events = self.event_item.len();
        let mut offsets = vec![0usize; num_users + 1];
        for &u in &self.event_user {
            offsets[u as usize + 1] += 1;
        }
        for u in 0..num_users {
            offsets[u + 1] += offsets[u];
        }
        // Counting sort by user: stable, so each user's events stay in push order.
        let mut order = vec![0usize; num_events];
        let mut cursor = offsets.clone();
        for (e, &u) in self.event_user.iter().enumerate() {
            order[cursor[u as usize]] = e;
            cursor[u as usize] += 1;
        }
        for u in 0..num_users {
            let slot = &mut order[offsets[u]..offsets[u + 1]];
            // `sort_by_key` / `sort_by` are stable merge sorts.
            match &self.times {
                TimeColumn::Absent => {}
                TimeColumn::Int(t) => slot.sort_by_key(|&e| t[e]),
                TimeColumn::Float(t) => slot.sort_by(|&a, &b| t[a].total_cmp(&t[b])),
            }
        }
        let items = order.iter().map(|&e| self.event_item[e]).collect();
        let timestamps = match &self.times {
            TimeColumn::Absent => None,
            TimeColumn::Int(t) => Some(Timestamps::Int(order.iter().map(|&e| t[e]).collect())),
            TimeColumn::Float(t) => Some(Timestamps::Float(order.iter().map(|&e| t[e]).collect())),
        };
        let ratings = self
            .ratings
            .as_ref()
            .map(|r| order.iter().map(|&e| r[e]).collect());
        Interactions {
            user_ids: self.user_ids,
            item_ids: self.item_ids,
            offsets,
            items,
            timestamps,
            ratings,
        }
    }
}

/// Users' time-ordered item sequences in one flat buffer (CSR), with the
/// external ids they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Interactions {
    user_ids: Vec<String>,
    item_ids: Vec<String>,
    offsets: Vec<usize>,
    items: Vec<u32>,
    timestamps: Option<Timestamps>,
    ratings: Option<Vec<f64>>,
}

impl Interactions {
    /// Number of users `U` (internal ids `0..U`). Every user has ≥ 1 event.
    pub fn num_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Number of items `N` (internal ids `1..=N`; 0 is padding).
    pub fn num_items(&self) -> usize {
        self.item_ids.len() - 1
    }

    /// Total number of events.
    pub fn num_interactions(&self) -> usize {
        self.items.len()
    }

    /// CSR offsets, length `U + 1`: user `u` owns flat events
    /// `offsets[u]..offsets[u + 1]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// All events' internal item ids, user after user, each user's in time order.
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// Per-event timestamps parallel to [`items`](Self::items), if the input had them.
    pub fn timestamps(&self) -> Option<&Timestamps> {
        self.timestamps.as_ref()
    }

    /// Per-event ratings parallel to [`items`](Self::items), if the input had them.
    pub fn ratings(&self) -> Option<&[f64]> {
        self.ratings.as_deref()
    }

    /// Flat index range of user `u`'s events. Panics if `u >= num_users()`.
    pub fn user_range(&self, u: u32) -> std::ops::Range<usize> {
        self.offsets[u as usize]..self.offsets[u as usize + 1]
    }

    /// User `u`'s item ids in time order. Panics if `u >= num_users()`.
    pub fn user_items(&self, u: u32) -> &[u32] {
        &self.items[self.user_range(u)]
    }

    /// Number of events of user `u`.
    pub fn user_len(&self, u: u32) -> usize {
        self.offsets[u as usize + 1] - self.offsets[u as usize]
    }

    /// External ids of the users, indexed by internal user id.
    pub fn user_ids(&self) -> &[String] {
        &self.user_ids
    }

    /// External ids of the items, indexed by internal item id; entry 0 is
    /// the empty string standing for padding.
    pub fn item_ids(&self) -> &[String] {
        &self.item_ids
    }

    /// External id of user `u`, as written in the input.
    pub fn user_id(&self, u: u32) -> Option<&str> {
        self.user_ids.get(u as usize).map(String::as_str)
    }

    /// External id of item `i` as written in the input; `None` for 0 (padding)
    /// and out-of-range ids.
    pub fn item_id(&self, i: u32) -> Option<&str> {
        if i == 0 {
            return None;
        }
        self.item_ids.get(i as usize).map(String::as_str)
    }

    /// External id of user `u` parsed as an integer, if it is one.
    pub fn user_id_int(&self, u: u32) -> Option<i64> {
        self.user_id(u)?.parse().ok()
    }

    /// External id of item `i` parsed as an integer, if it is one.
    pub fn item_id_int(&self, i: u32) -> Option<i64> {
        self.item_id(i)?.parse().ok()
    }

    /// External → internal item id map (built on each call: O(N)).
    pub fn item_lookup(&self) -> HashMap<&str, u32> {
        self.item_ids
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect()
    }

    /// External → internal user id map (built on each call: O(U)).
    pub fn user_lookup(&self) -> HashMap<&str, u32> {
        self.user_ids
            .iter()
            .enumerate()
            .map(|(u, s)| (s.as_str(), u as u32))
            .collect()
    }

    /// Checks the structural invariants: offsets start at 0, end at the event
    /// count and strictly increase (every user has ≥ 1 event); item ids are
    /// in `1..=N` and every item occurs; external ids are unique and
    /// non-empty; per-event columns have the event count; each user's
    /// timestamps are non-decreasing. Always `Ok` for stores built by this
    /// module; the fuzz targets and property tests call it on every result.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.items.len();
        if self.offsets.first() != Some(&0) || self.offsets.last() != Some(&n) {
            return Err(format!(
                "offsets {:?}.. do not span 0..{n}",
                self.offsets.first()
            ));
        }
        if self.offsets.len() != self.user_ids.len() + 1
            || self.offsets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err("offsets not strictly increasing or wrong length".into());
        }
        let mut used = vec![false; self.item_ids.len()];
        for &i in &self.items {
            if i == 0 || i as usize >= self.item_ids.len() {
                return Err(format!("item id {i} out of 1..={}", self.num_items()));
            }
            used[i as usize] = true;
        }
        if used.iter().skip(1).any(|&u| !u) {
            return Err("an item id has no event".into());
        }
        let unique = |ids: &[String]| {
            let set: std::collections::HashSet<&String> = ids.iter().collect();
            set.len() == ids.len() && ids.iter().all(|s| !s.is_empty())
        };
        if !self.item_ids[0].is_empty() || !unique(&self.item_ids[1..]) || !unique(&self.user_ids) {
            return Err("external ids not unique, empty, or padding entry not empty".into());
        }
        if self.ratings.as_ref().is_some_and(|r| r.len() != n) {
            return Err("ratings length differs from the event count".into());
        }
        if let Some(t) = &self.timestamps {
            if t.len() != n {
                return Err("timestamps length differs from the event count".into());
            }
            for u in 0..self.num_users() as u32 {
                let r = self.user_range(u);
                let sorted = match t {
                    Timestamps::Int(v) => v[r].windows(2).all(|w| w[0] <= w[1]),
                    Timestamps::Float(v) => v[r].windows(2).all(|w| w[0] <= w[1]),
                };
                if !sorted {
                    return Err(format!("user {u}'s timestamps are not sorted"));
                }
            }
        }
        Ok(())
    }

    /// The store restricted to the flat events where `keep[e]` is true.
    /// Users left with no event disappear; user and item ids are compacted
    /// keeping their relative order (so they stay in order of first
    /// appearance of the original input). Event order is unchanged.
    pub(crate) fn retain_events(&self, keep: &[bool]) -> Interactions {
        debug_assert_eq!(keep.len(), self.items.len());
        let mut item_map = vec![0u32; self.item_ids.len()];
        for (e, &i) in self.items.iter().enumerate() {
            if keep[e] {
                item_map[i as usize] = 1;
            }
        }
        let mut item_ids = vec![String::new()];
        for (old, slot) in item_map.iter_mut().enumerate().skip(1) {
            if *slot != 0 {
                *slot = item_ids.len() as u32;
                item_ids.push(self.item_ids[old].clone());
            }
        }
        let mut user_ids = Vec::new();
        let mut offsets = vec![0usize];
        let mut kept = Vec::new();
        for u in 0..self.num_users() {
            let before = kept.len();
            kept.extend(self.user_range(u as u32).filter(|&e| keep[e]));
            if kept.len() > before {
                user_ids.push(self.user_ids[u].clone());
                offsets.push(kept.len());
            }
        }
        Interactions {
            user_ids,
            item_ids,
            offsets,
            items: kept
                .iter()
                .map(|&e| item_map[self.items[e] as usize])
                .collect(),
            timestamps: self.timestamps.as_ref().map(|t| t.select(&kept)),
            ratings: self
                .ratings
                .as_ref()
                .map(|r| kept.iter().map(|&e| r[e]).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_appearance_and_sort_is_stable() {
        let mut b = InteractionsBuilder::new(true, false);
        for (u, i, t) in [
            ("u9", "b", 5),
            ("u1", "a", 3),
            ("u9", "a", 5),
            ("u9", "c", 1),
            ("u1", "c", 3),
        ] {
            b.push(u, i, Some(TimeValue::Int(t)), None).unwrap();
        }
        let s = b.finish();
        assert_eq!(s.user_ids(), ["u9", "u1"]);
        assert_eq!(s.item_ids(), ["", "b", "a", "c"]);
        // u9: c@1 first, then b@5 and a@5 in input order.
        assert_eq!(s.user_items(0), [3, 1, 2]);
        assert_eq!(s.user_items(1), [2, 3]);
        assert_eq!(s.offsets(), [0, 3, 5]);
        assert_eq!(s.timestamps(), Some(&Timestamps::Int(vec![1, 5, 5, 3, 3])));
    }

    #[test]
    fn mixed_timestamps_become_f64_and_sort_by_value() {
        let mut b = InteractionsBuilder::new(true, false);
        b.push("u", "x", Some(TimeValue::Int(3)), None).unwrap();
        b.push("u", "y", Some(TimeValue::Float(2.5)), None).unwrap();
        let s = b.finish();
        assert_eq!(s.user_items(0), [2, 1]);
        assert_eq!(s.timestamps(), Some(&Timestamps::Float(vec![2.5, 3.0])));
    }

    #[test]
    fn imprecise_mix_is_refused() {
        let mut b = InteractionsBuilder::new(true, false);
        b.push("u", "x", Some(TimeValue::Int(1 << 60)), None)
            .unwrap();
        let e = b.push("u", "y", Some(TimeValue::Float(0.5)), None);
        assert_eq!(e, Err(BuildError::TimestampPrecision));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn column_mismatch_is_refused() {
        let mut b = InteractionsBuilder::new(false, true);
        assert!(b
            .push("u", "x", Some(TimeValue::Int(1)), Some(1.0))
            .is_err());
        assert!(b.push("u", "x", None, None).is_err());
        assert!(b.is_empty());
    }

    #[test]
    fn retain_compacts_ids_in_order() {
        let mut b = InteractionsBuilder::new(false, false);
        for (u, i) in [("a", "1"), ("a", "2"), ("b", "2"), ("c", "3"), ("c", "1")] {
            b.push(u, i, None, None).unwrap();
        }
        let s = b.finish();
        let keep = [false, true, false, true, true];
        let r = s.retain_events(&keep);
        assert_eq!(r.user_ids(), ["a", "c"]);
        assert_eq!(r.item_ids(), ["", "1", "2", "3"]);
        assert_eq!(r.items(), [2, 3, 1]);
        let keep = [false, true, true, true, false];
        let r = s.retain_events(&keep);
        assert_eq!(r.item_ids(), ["", "2", "3"]);
        assert_eq!(r.items(), [1, 1, 2]);
        assert_eq!(r.offsets(), [0, 1, 2, 3]);
    }
}
