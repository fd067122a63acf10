//! The stream value: entries ordered by ID, and the bookkeeping Redis keeps beside them.
//!
//! Invariants: every entry's ID is at most `last_id` (IDs only grow: an XADD must exceed `last_id` even after the
//! entries above it were deleted); `max_deleted` is the largest ID ever removed by XDEL; `entries_added`
//! counts every entry ever appended. Unlike the other containers a stream may exist with no entries.
//!
//! `max_deleted` follows Redis: only XDEL records a tombstone; trimming moves the first entry but leaves no
//! tombstone, so a group's read counter (and lag) stays computable after trimming.

pub mod group;

use std::collections::BTreeMap;
use std::fmt;

use group::ConsumerGroup;

/// A stream entry ID: milliseconds and a sequence number, ordered as the pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID, `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An ID from its parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID (Redis `streamIncrID`), `None` past the largest.
    pub fn next(self) -> Option<Self> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_add(1).map(|ms| StreamId::new(ms, 0)),
        }
    }

    /// The previous ID (Redis `streamDecrID`), `None` before `0-0`.
    pub fn prev(self) -> Option<Self> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_sub(1).map(|ms| StreamId::new(ms, u64::MAX)),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// An entry's field/value pairs, in the order they were added.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Why an append was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not greater than the stream's last ID.
    NotGreater,
    /// The stream already used the largest possible ID.
    Exhausted,
}

/// The ID an XADD asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSpec {
    /// `*`: from the clock.
    Auto,
    /// `ms-*`: this millisecond, the next free sequence.
    Ms(u64),
    /// A full ID.
    Exact(StreamId),
}

/// A stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    entries: BTreeMap<StreamId, Fields>,
    last_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    groups: BTreeMap<Vec<u8>, ConsumerGroup>,
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it holds no entry (the key still exists).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The largest ID ever added (or set).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The largest ID ever deleted by XDEL.
    pub fn max_deleted(&self) -> StreamId {
        self.max_deleted
    }

    /// How many entries were ever appended.
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// The first entry, if any.
    pub fn first(&self) -> Option<(&StreamId, &Fields)> {
        self.entries.first_key_value()
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<(&StreamId, &Fields)> {
        self.entries.last_key_value()
    }

    /// Appends an entry, choosing its ID as Redis's `streamAppendItem` does (`now` is the clock for `*`).
    pub fn append(
        &mut self,
        spec: IdSpec,
        fields: Fields,
        now: u64,
    ) -> Result<StreamId, AppendError> {
        if self.last_id == StreamId::MAX {
            return Err(AppendError::Exhausted);
        }
        let id = match spec {
            IdSpec::Auto if now > self.last_id.ms => StreamId::new(now, 0),
            IdSpec::Auto => self.last_id.next().ok_or(AppendError::Exhausted)?,
            IdSpec::Ms(ms) if ms == self.last_id.ms => StreamId::new(
                ms,
                self.last_id
                    .seq
                    .checked_add(1)
                    .ok_or(AppendError::NotGreater)?,
            ),
            IdSpec::Ms(ms) => StreamId::new(ms, 0),
            IdSpec::Exact(id) => id,
        };
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added += 1;
        Ok(id)
    }

    /// Entries with IDs in `start..=end`, ascending or (`rev`) descending, at most `count` of them (`None`: all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: Option<usize>,
    ) -> Vec<(StreamId, &Fields)> {
        if start > end {
            return Vec::new();
        }
        let range = self.entries.range(start..=end).map(|(id, f)| (*id, f));
        let limit = count.unwrap_or(usize::MAX);
        if rev {
            range.rev().take(limit).collect()
        } else {
            range.take(limit).collect()
        }
    }

    /// Deletes the entries with these IDs; returns how many existed.
    pub fn delete(&mut self, ids: &[StreamId]) -> usize {
        let mut deleted = 0;
        for id in ids {
            if self.entries.remove(id).is_some() {
                self.max_deleted = self.max_deleted.max(*id);
                deleted += 1;
            }
        }
        deleted
    }

    /// How many entries have IDs below `id`.
    pub fn count_below(&self, id: StreamId) -> usize {
        self.entries.range(..id).count()
    }

    /// Removes the first `n` entries (fewer if there are fewer); returns how many were removed. Trimming leaves no
    /// tombstone (`max_deleted` is XDEL's), as in Redis.
    pub fn trim_head(&mut self, n: usize) -> usize {
        let mut removed = 0;
        while removed < n && self.entries.pop_first().is_some() {
            removed += 1;
        }
        removed
    }

    /// The entry with this ID, if it exists.
    pub fn get(&self, id: StreamId) -> Option<&Fields> {
        self.entries.get(&id)
    }

    /// The first entry's ID, `0-0` when empty (Redis's `recorded-first-entry-id`).
    pub fn first_id(&self) -> StreamId {
        self.first().map_or(StreamId::MIN, |(id, _)| *id)
    }

    /// The consumer groups, by name.
    pub fn groups(&self) -> &BTreeMap<Vec<u8>, ConsumerGroup> {
        &self.groups
    }

    /// The group `name`.
    pub fn group(&self, name: &[u8]) -> Option<&ConsumerGroup> {
        self.groups.get(name)
    }

    /// The group `name`, to change.
    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut ConsumerGroup> {
        self.groups.get_mut(name)
    }

    /// Creates group `name`; false if it exists.
    pub fn create_group(
        &mut self,
        name: &[u8],
        last_id: StreamId,
        entries_read: Option<i64>,
    ) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups
            .insert(name.to_vec(), ConsumerGroup::new(last_id, entries_read));
        true
    }

    /// Deletes group `name`; false if it did not exist.
    pub fn destroy_group(&mut self, name: &[u8]) -> bool {
        self.groups.remove(name).is_some()
    }

    /// True when an XDEL tombstone lies in `start..=end` (Redis `streamRangeHasTombstones`).
    fn has_tombstones_from(&self, start: StreamId) -> bool {
        !self.is_empty()
            && self.max_deleted != StreamId::MIN
            && self.first_id() <= self.max_deleted
            && start <= self.max_deleted
    }

    /// The logical read counter of `id` (how many entries were added up to it) when it can be known without
    /// counting, as Redis's `streamEstimateDistanceFromFirstEverEntry`.
    pub fn estimate_entries_read(&self, id: StreamId) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(added);
        }
        if id == self.last_id {
            return Some(added);
        }
        if id > self.last_id {
            return None;
        }
        let first = self.first_id();
        if self.max_deleted == StreamId::MIN || self.max_deleted < first {
            let len = self.len() as i64;
            if id < first {
                return Some(added - len);
            }
            if id == first {
                return Some(added - len + 1);
            }
        }
        None
    }

    /// How many entries the group has yet to be delivered, when that can be known (XINFO's `lag`).
    pub fn lag(&self, group: &ConsumerGroup) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        match group.entries_read {
            Some(read) if !self.has_tombstones_from(group.last_id) => Some(added - read),
            _ => self
                .estimate_entries_read(group.last_id)
                .map(|read| added - read),
        }
    }

    /// Delivers to `consumer` of `group` (both exist) up to `count` entries after the group's last ID, moving the
    /// group's position and read counter; unless `noack`, they become pending for the consumer. Returns their IDs.
    pub fn read_group(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        count: Option<usize>,
        noack: bool,
        now: u64,
    ) -> Vec<StreamId> {
        let Some(g) = self.groups.get(group) else {
            return Vec::new();
        };
        let Some(start) = g.last_id.next() else {
            return Vec::new();
        };
        let ids: Vec<StreamId> = self
            .entries
            .range(start..)
            .take(count.unwrap_or(usize::MAX))
            .map(|(id, _)| *id)
            .collect();
        let mut read = g.entries_read;
        for &id in &ids {
            read = match read {
                Some(read) if !self.has_tombstones_from(id) => Some(read + 1),
                _ => self.estimate_entries_read(id),
            };
        }
        let Some(g) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        if let Some(&last) = ids.last() {
            g.last_id = last;
            g.entries_read = read;
        }
        if !noack {
            for &id in &ids {
                g.deliver(id, consumer, now);
            }
        }
        ids
    }

    /// Sets the last ID (XSETID); the caller checks it is not below the last entry.
    pub fn set_last_id(&mut self, id: StreamId) {
        self.last_id = id;
    }

    /// Sets the count of entries ever appended (XSETID ENTRIESADDED).
    pub fn set_entries_added(&mut self, n: u64) {
        self.entries_added = n;
    }

    /// Sets the largest ID deleted by XDEL (XSETID MAXDELETEDID).
    pub fn set_max_deleted(&mut self, id: StreamId) {
        self.max_deleted = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Fields {
        vec![(b"f".to_vec(), b"v".to_vec())]
    }

    #[test]
    fn auto_ids_follow_the_clock_then_the_sequence() {
        let mut s = Stream::new();
        assert_eq!(s.append(IdSpec::Auto, f(), 5), Ok(StreamId::new(5, 0)));
        assert_eq!(s.append(IdSpec::Auto, f(), 5), Ok(StreamId::new(5, 1)));
        // A clock that went backwards keeps the last millisecond.
        assert_eq!(s.append(IdSpec::Auto, f(), 3), Ok(StreamId::new(5, 2)));
        assert_eq!(s.append(IdSpec::Ms(5), f(), 0), Ok(StreamId::new(5, 3)));
        assert_eq!(
            s.append(IdSpec::Ms(4), f(), 0),
            Err(AppendError::NotGreater)
        );
        assert_eq!(s.append(IdSpec::Ms(9), f(), 0), Ok(StreamId::new(9, 0)));
        assert_eq!(s.entries_added(), 5);
    }

    #[test]
    fn ids_never_go_back_after_deletes() {
        let mut s = Stream::new();
        s.append(IdSpec::Exact(StreamId::new(1, 1)), f(), 0)
            .unwrap();
        assert_eq!(s.delete(&[StreamId::new(1, 1), StreamId::new(7, 7)]), 1);
        assert!(s.is_empty());
        assert_eq!(s.max_deleted(), StreamId::new(1, 1));
        assert_eq!(
            s.append(IdSpec::Exact(StreamId::new(1, 1)), f(), 0),
            Err(AppendError::NotGreater)
        );
        s.set_last_id(StreamId::MAX);
        assert_eq!(s.append(IdSpec::Auto, f(), 0), Err(AppendError::Exhausted));
    }

    #[test]
    fn trim_head_removes_the_oldest_entries() {
        let mut s = Stream::new();
        for ms in 1..=10 {
            s.append(IdSpec::Ms(ms), f(), 0).unwrap();
        }
        assert_eq!(s.count_below(StreamId::new(4, 0)), 3);
        assert_eq!(s.trim_head(3), 3);
        assert_eq!(s.first().map(|(id, _)| *id), Some(StreamId::new(4, 0)));
        // Trimming leaves no tombstone: only XDEL does.
        assert_eq!(s.max_deleted(), StreamId::MIN);
        assert_eq!(s.trim_head(100), 7);
        assert!(s.is_empty());
    }

    #[test]
    fn next_and_prev_carry_between_parts() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
    }
}
