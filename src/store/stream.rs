//! The stream value: entries ordered by ID, and the bookkeeping Redis keeps beside them.
//!
//! Invariants: every entry's ID is at most `last_id` (IDs only grow: an XADD must exceed `last_id` even after the
//! entries above it were deleted); `max_deleted` is the largest ID ever removed by XDEL; `entries_added`
//! counts every entry ever appended. Unlike the other containers a stream may exist with no entries.
//!
//! `max_deleted` follows Redis: only XDEL records a tombstone; trimming moves the first entry but leaves no
//! tombstone, so a group's read counter (and lag) stays computable after trimming.
//!
//! Redis keeps a stream's entries in radix-tree nodes (listpacks) of up to 100 entries (`stream-node-max-entries`) and
//! 4096 bytes (`stream-node-max-bytes`) each, and trims them node by node: approximate trimming (`~`) removes whole
//! nodes only. The entries live in one map here, but the stream records where Redis's nodes would start and how many
//! listpack bytes each has taken ([`Node`]), so trimming removes what Redis removes and XINFO counts the same nodes.

pub mod group;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::ops::Bound;

use group::ConsumerGroup;

use super::listpack;

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

/// Entries per radix-tree node in Redis (its `stream-node-max-entries` default).
pub const NODE_ENTRIES: usize = 100;

/// A Redis radix-tree node takes no entry that would bring its listpack to this many bytes (`stream-node-max-bytes`
/// default), counting the new entry's fields and values as their plain length.
const NODE_BYTES: usize = 4096;

/// An entry's flags in a node: its field names are the master entry's, so only the values are stored.
const SAME_FIELDS: i64 = 2;

/// How far XADD's or XTRIM's trimming goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimTo {
    /// MAXLEN: keep at most this many entries.
    MaxLen(u64),
    /// MINID: drop the entries below this ID.
    MinId(StreamId),
}

/// One of Redis's radix-tree nodes: the first and last IDs appended into it, how many entries were (live, or
/// deleted since: Redis keeps both in the node), and the size of its listpack, whose first part (the master entry)
/// names the first entry's fields.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    first: StreamId,
    last: StreamId,
    appended: usize,
    /// Listpack bytes: deleting an entry only flags it, so appends alone change this.
    bytes: usize,
    /// The master entry's field names.
    master_fields: Vec<Vec<u8>>,
}

impl Node {
    /// A node for `fields` at `id`: its listpack holds the master entry (live count, deleted count, the number of
    /// fields, their names, a terminating 0) and no entry yet.
    fn new(id: StreamId, fields: &Fields) -> Node {
        let names = fields.iter().map(|(f, _)| f.as_slice());
        let bytes = listpack::FRAME_BYTES
            + listpack::int_bytes(1)
            + listpack::int_bytes(0)
            + listpack::int_bytes(fields.len() as i64)
            + names.map(listpack::element_bytes).sum::<usize>()
            + listpack::int_bytes(0);
        Node {
            first: id,
            last: id,
            appended: 0,
            bytes,
            master_fields: fields.iter().map(|(f, _)| f.clone()).collect(),
        }
    }

    /// True when Redis would append an entry with `fields` here rather than open a new node.
    fn takes(&self, fields: &Fields) -> bool {
        let plain: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        self.appended < NODE_ENTRIES && self.bytes + plain < NODE_BYTES
    }

    /// Appends an entry: its flags, its ID as the difference from the master ID, its fields (only the values when
    /// the names are the master's), and the count of those elements for walking backwards.
    fn append(&mut self, id: StreamId, fields: &Fields) {
        let same = fields.len() == self.master_fields.len()
            && fields
                .iter()
                .zip(&self.master_fields)
                .all(|((f, _), m)| f == m);
        let values: usize = fields.iter().map(|(_, v)| listpack::element_bytes(v)).sum();
        let (stored, elements) = if same {
            (values, fields.len() + 3)
        } else {
            let names: usize = fields.iter().map(|(f, _)| listpack::element_bytes(f)).sum();
            let count = listpack::int_bytes(fields.len() as i64);
            (count + names + values, 2 * fields.len() + 4)
        };
        // Redis subtracts as unsigned 64-bit numbers and stores the result as a signed one.
        let ms = id.ms.wrapping_sub(self.first.ms) as i64;
        let seq = id.seq.wrapping_sub(self.first.seq) as i64;
        self.bytes += listpack::int_bytes(if same { SAME_FIELDS } else { 0 })
            + listpack::int_bytes(ms)
            + listpack::int_bytes(seq)
            + stored
            + listpack::int_bytes(elements as i64);
        self.appended += 1;
        self.last = id;
    }
}

/// A stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    entries: BTreeMap<StreamId, Fields>,
    last_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    groups: BTreeMap<Vec<u8>, ConsumerGroup>,
    /// Redis's nodes, oldest first (see the module documentation).
    nodes: VecDeque<Node>,
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
        match self.nodes.back_mut() {
            Some(node) if node.takes(&fields) => node.append(id, &fields),
            _ => {
                let mut node = Node::new(id, &fields);
                node.append(id, &fields);
                self.nodes.push_back(node);
            }
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

    /// Deletes the entries with these IDs; returns how many existed. A node left without entries goes, as in Redis.
    pub fn delete(&mut self, ids: &[StreamId]) -> usize {
        let mut deleted = 0;
        for id in ids {
            if self.entries.remove(id).is_some() {
                self.max_deleted = self.max_deleted.max(*id);
                deleted += 1;
                let node = self
                    .nodes
                    .partition_point(|n| n.first <= *id)
                    .checked_sub(1);
                if let Some(node) = node.filter(|&i| self.node_entries(i).next().is_none()) {
                    self.nodes.remove(node);
                }
            }
        }
        deleted
    }

    /// The IDs of node `i`'s entries.
    fn node_entries(&self, i: usize) -> impl Iterator<Item = &StreamId> {
        let end = match self.nodes.get(i + 1) {
            Some(next) => Bound::Excluded(next.first),
            None => Bound::Unbounded,
        };
        let span = (Bound::Included(self.nodes[i].first), end);
        self.entries.range(span).map(|(id, _)| id)
    }

    /// Trims from the oldest entries as Redis's `streamTrim`: node by node, removing a whole node when what stays
    /// still satisfies `to`, at most `limit` entries (0: no limit); at the first node that cannot go whole, an exact
    /// trim removes its entries one by one as far as `to` allows, an approximate one (`approx`) stops. Returns how
    /// many entries went. Trimming leaves no tombstone (`max_deleted` is XDEL's), as in Redis.
    pub fn trim(&mut self, to: TrimTo, approx: bool, limit: usize) -> usize {
        // Nothing to look at (XADD ... MAXLEN ~ n trims on every append): as Redis, which stops at once when the
        // stream is short enough, or (approximate MINID) when the first node cannot go.
        let nothing = match to {
            TrimTo::MaxLen(max) => self.len() as u64 <= max,
            TrimTo::MinId(min) => approx && self.nodes.front().is_none_or(|n| n.last >= min),
        };
        if nothing {
            return 0;
        }
        let mut removed = 0;
        while !self.nodes.is_empty() {
            let live: Vec<StreamId> = self.node_entries(0).copied().collect();
            if limit > 0 && removed + live.len() > limit {
                break;
            }
            let whole = match to {
                TrimTo::MaxLen(max) => (self.len() - live.len()) as u64 >= max,
                // The node's last entry, deleted or not, as Redis reads it.
                TrimTo::MinId(min) => self.nodes[0].last < min,
            };
            if !whole {
                if !approx {
                    for id in live {
                        let keep = match to {
                            TrimTo::MaxLen(max) => self.len() as u64 <= max,
                            TrimTo::MinId(min) => id >= min,
                        };
                        if keep {
                            break;
                        }
                        self.entries.remove(&id);
                        removed += 1;
                    }
                }
                break;
            }
            for id in &live {
                self.entries.remove(id);
            }
            removed += live.len();
            self.nodes.pop_front();
        }
        removed
    }

    /// How many of Redis's radix-tree nodes the stream would have (XINFO STREAM's `radix-tree-keys`).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
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

    /// A stream of `n` entries with IDs 1-0 ..= n-0.
    fn stream_of(n: u64) -> Stream {
        let mut s = Stream::new();
        for ms in 1..=n {
            s.append(IdSpec::Ms(ms), f(), 0).unwrap();
        }
        s
    }

    #[test]
    fn trim_removes_the_oldest_entries_node_by_node() {
        let mut s = stream_of(250);
        assert_eq!(s.nodes(), 3);
        // Approximate: whole nodes only, while what stays is enough; the last node (50 entries) goes too.
        assert_eq!(s.trim(TrimTo::MaxLen(160), true, 0), 0);
        assert_eq!(s.trim(TrimTo::MaxLen(150), true, 0), 100);
        assert_eq!(s.trim(TrimTo::MinId(StreamId::new(200, 0)), true, 0), 0);
        assert_eq!(s.trim(TrimTo::MaxLen(0), true, 120), 100);
        // Exact: into the first node that cannot go whole.
        assert_eq!(s.trim(TrimTo::MinId(StreamId::new(204, 0)), false, 0), 3);
        assert_eq!(s.first().map(|(id, _)| *id), Some(StreamId::new(204, 0)));
        // Trimming leaves no tombstone: only XDEL does.
        assert_eq!(s.max_deleted(), StreamId::MIN);
        assert_eq!(s.trim(TrimTo::MaxLen(0), true, 0), 47);
        assert!(s.is_empty() && s.nodes() == 0);
    }

    #[test]
    fn a_node_emptied_by_xdel_goes_and_appends_fill_the_last_node() {
        let mut s = stream_of(101);
        assert_eq!(s.nodes(), 2);
        assert_eq!(s.delete(&[StreamId::new(101, 0)]), 1);
        // The first node holds 100 (live or deleted): the next entry starts a node again.
        assert_eq!(s.nodes(), 1);
        s.append(IdSpec::Ms(102), f(), 0).unwrap();
        assert_eq!(s.nodes(), 2);
    }

    #[test]
    fn a_node_closes_before_its_listpack_reaches_4096_bytes() {
        let mut s = Stream::new();
        let big = || vec![(b"payload".to_vec(), vec![b'x'; 300])];
        // The master entry takes 7 + 2 + 2 + 2 + 9 + 2 = 24 bytes, and each entry 2 + 2 + 2 + 304 + 2 = 312 (only
        // its value: the field name is the master's). An entry's 307 plain bytes fit after 12 entries (24 + 12 x 312
        // + 307 = 4075 < 4096), not after 13: 13 entries a node, as Redis's XINFO shows.
        for seq in 1..=26 {
            s.append(IdSpec::Exact(StreamId::new(1, seq)), big(), 0)
                .unwrap();
        }
        assert_eq!(s.nodes(), 2);
        s.append(IdSpec::Exact(StreamId::new(1, 27)), big(), 0)
            .unwrap();
        assert_eq!(s.nodes(), 3);
        // Other field names are stored with each entry, and a value that reads as an integer is stored as one.
        let mut s = Stream::new();
        s.append(IdSpec::Ms(1), big(), 0).unwrap();
        let mut node = s.nodes[0].clone();
        node.append(
            StreamId::new(2, 0),
            &vec![(b"n".to_vec(), b"1000".to_vec())],
        );
        // flags 2, ms 2, seq 2, field count 2, "n" 3, 1000 3, element count 2.
        assert_eq!(node.bytes - s.nodes[0].bytes, 16);
    }

    #[test]
    fn next_and_prev_carry_between_parts() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
    }
}
