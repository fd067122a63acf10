//! Consumer groups of a stream: the group's position, its pending entries list (PEL) and its consumers.
//!
//! Invariants: every ID in a consumer's own PEL is in the group PEL with that consumer as owner, and every group PEL
//! entry is in exactly its owner's PEL (so a consumer's pending count is the size of its set). Consumer names are
//! shared (`Arc`) between the consumer map and the PEL entries that name them. Groups and consumers are kept in
//! byte order, the order Redis's radix trees list them in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Stream, StreamId};

/// One pending (delivered, not yet acknowledged) entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    /// The consumer that owns it.
    pub consumer: Arc<[u8]>,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Consumer {
    /// Unix ms of its last attempted interaction (XREADGROUP, XCLAIM, XAUTOCLAIM).
    pub seen_time: u64,
    /// Unix ms of its last successful interaction (entries read into the PEL or claimed); `None` before any.
    pub active_time: Option<u64>,
    /// IDs it owns in the group PEL.
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerGroup {
    /// The last ID delivered to the group with `>`.
    pub last_id: StreamId,
    /// The logical read counter of `last_id` (Redis `entries_read`); `None` when unknown.
    pub entries_read: Option<i64>,
    /// The group PEL, by ID.
    pub pel: BTreeMap<StreamId, Nack>,
    /// The consumers, by name.
    pub consumers: BTreeMap<Arc<[u8]>, Consumer>,
}

/// How a claim changes an entry's delivery counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Add one (a real delivery).
    Increment,
    /// Leave it (JUSTID).
    Keep,
    /// Set it (RETRYCOUNT).
    Set(u64),
}

impl ConsumerGroup {
    /// A group positioned after `last_id`.
    pub fn new(last_id: StreamId, entries_read: Option<i64>) -> Self {
        ConsumerGroup {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Creates consumer `name` (seen now, never active); false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.into(),
            Consumer {
                seen_time: now,
                active_time: None,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// The consumer `name`, created if needed, marked as seen at `now`.
    pub fn touch_consumer(&mut self, name: &[u8], now: u64) -> &mut Consumer {
        self.create_consumer(name, now);
        let consumer = self
            .consumers
            .get_mut(name)
            .expect("the consumer was just created");
        consumer.seen_time = now;
        consumer
    }

    /// Deletes consumer `name` and its pending entries; returns how many it had (`None`: no such consumer).
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pel {
            self.pel.remove(id);
        }
        Some(consumer.pel.len())
    }

    /// Records the delivery of `id` to `consumer` (which exists) at `now`: a new pending entry, or one taken over
    /// from whoever had it (after XGROUP SETID moved the group back), with its counter restarted.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: u64) {
        let name = self.name_of(consumer);
        if let Some(old) = self.pel.insert(
            id,
            Nack {
                consumer: name.clone(),
                delivery_time: now,
                delivery_count: 1,
            },
        ) {
            self.forget_owner(&old.consumer, id);
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
            c.active_time = Some(now);
        }
    }

    /// Removes `id` from the PEL (XACK, or an entry that no longer exists); true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(nack) => {
                self.forget_owner(&nack.consumer, id);
                true
            }
            None => false,
        }
    }

    /// Gives entry `id` to `consumer` (which exists), creating the pending entry if there is none (XCLAIM's FORCE;
    /// the caller checks it may).
    pub fn claim(
        &mut self,
        id: StreamId,
        consumer: &[u8],
        delivery_time: u64,
        retry: Retry,
        now: u64,
    ) {
        let name = self.name_of(consumer);
        // A forced claim starts a new entry as Redis's `streamCreateNACK` does: delivered once.
        let nack = self.pel.entry(id).or_insert_with(|| Nack {
            consumer: name.clone(),
            delivery_time,
            delivery_count: 1,
        });
        let previous = std::mem::replace(&mut nack.consumer, name);
        nack.delivery_time = delivery_time;
        nack.delivery_count = match retry {
            Retry::Increment => nack.delivery_count + 1,
            Retry::Keep => nack.delivery_count,
            Retry::Set(n) => n,
        };
        if *previous != *consumer {
            self.forget_owner(&previous, id);
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
            c.active_time = Some(now);
        }
    }

    /// The shared name of an existing consumer (a fresh one if it is missing, which callers avoid).
    fn name_of(&self, consumer: &[u8]) -> Arc<[u8]> {
        self.consumers
            .get_key_value(consumer)
            .map_or_else(|| consumer.into(), |(k, _)| k.clone())
    }

    fn forget_owner(&mut self, owner: &[u8], id: StreamId) {
        if let Some(c) = self.consumers.get_mut(owner) {
            c.pel.remove(&id);
        }
    }
}

/// XCLAIM's options, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Skip entries delivered less than this many ms ago (0: no minimum).
    pub min_idle: u64,
    /// The delivery time to record.
    pub delivery_time: u64,
    /// What happens to the delivery counter.
    pub retry: Retry,
    /// Create pending entries for existing stream entries that are not pending.
    pub force: bool,
    /// Move the group's last ID forward to this (LASTID; `0-0` when not given).
    pub last_id: StreamId,
}

/// What XAUTOCLAIM asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoClaimScan {
    /// Where the scan of the group PEL starts.
    pub start: StreamId,
    /// Most entries to return (claimed plus deleted).
    pub count: usize,
    /// Only entries delivered at least this many ms ago.
    pub min_idle: u64,
    /// JUSTID: the delivery counters stay as they are.
    pub justid: bool,
}

/// What XAUTOCLAIM did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoClaim {
    /// The IDs claimed, in order.
    pub claimed: Vec<StreamId>,
    /// Pending IDs whose entries no longer exist, dropped from the PEL.
    pub deleted: Vec<StreamId>,
    /// Where the next call should start (`0-0`: the scan is complete).
    pub next: StreamId,
}

/// How many PEL entries XAUTOCLAIM may look at per entry it may return (Redis's `attempts_factor`).
const AUTOCLAIM_ATTEMPTS_PER_ENTRY: usize = 10;

/// Group operations that also need the entries (to know whether a pending entry still exists).
impl Stream {
    /// XREADGROUP with an explicit ID: the consumer's pending IDs after `after`, at most `count`, each with whether
    /// its entry still exists; existing ones count as delivered again now. `None` when the group does not exist.
    pub fn read_history(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        after: StreamId,
        count: Option<usize>,
        now: u64,
    ) -> Option<Vec<(StreamId, bool)>> {
        let g = self.groups.get_mut(group)?;
        let c = g.touch_consumer(consumer, now);
        let Some(start) = after.next() else {
            return Some(Vec::new());
        };
        let ids: Vec<(StreamId, bool)> = c
            .pel
            .range(start..)
            .take(count.unwrap_or(usize::MAX))
            .map(|id| (*id, self.entries.contains_key(id)))
            .collect();
        for (id, exists) in &ids {
            if let Some(nack) = g.pel.get_mut(id).filter(|_| *exists) {
                nack.delivery_time = now;
                nack.delivery_count += 1;
            }
        }
        Some(ids)
    }

    /// XCLAIM: gives `consumer` (created if needed) the pending entries among `ids` idle long enough (or, with
    /// FORCE, any existing entry); pending IDs whose entries are gone leave the PEL. Returns the IDs claimed, or
    /// `None` when the group does not exist.
    pub fn claim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        ids: &[StreamId],
        opts: &Claim,
        now: u64,
    ) -> Option<Vec<StreamId>> {
        let g = self.groups.get_mut(group)?;
        g.last_id = g.last_id.max(opts.last_id);
        g.touch_consumer(consumer, now);
        let mut claimed = Vec::new();
        for &id in ids {
            if !self.entries.contains_key(&id) {
                g.ack(id);
                continue;
            }
            match g.pel.get(&id) {
                None if !opts.force => continue,
                Some(nack) if now.saturating_sub(nack.delivery_time) < opts.min_idle => continue,
                _ => {}
            }
            g.claim(id, consumer, opts.delivery_time, opts.retry, now);
            claimed.push(id);
        }
        Some(claimed)
    }

    /// XAUTOCLAIM: scans the group PEL from `start`, giving `consumer` (created if needed) up to `count` entries
    /// idle at least `min_idle` ms, dropping (and reporting) pending IDs whose entries are gone; looks at no more
    /// than ten PEL entries per entry it may return, as Redis. `None` when the group does not exist.
    pub fn autoclaim(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        scan: AutoClaimScan,
        now: u64,
    ) -> Option<AutoClaim> {
        let g = self.groups.get_mut(group)?;
        g.touch_consumer(consumer, now);
        let mut done = AutoClaim::default();
        let mut left = scan.count;
        let mut attempts = scan.count.saturating_mul(AUTOCLAIM_ATTEMPTS_PER_ENTRY);
        let mut pos = Some(scan.start);
        while attempts > 0 && left > 0 {
            attempts -= 1;
            let Some(from) = pos else {
                break;
            };
            let Some((&id, nack)) = g.pel.range(from..).next() else {
                pos = None;
                break;
            };
            pos = id.next();
            if !self.entries.contains_key(&id) {
                g.ack(id);
                done.deleted.push(id);
                left -= 1;
                continue;
            }
            if now.saturating_sub(nack.delivery_time) < scan.min_idle {
                continue;
            }
            let retry = if scan.justid {
                Retry::Keep
            } else {
                Retry::Increment
            };
            g.claim(id, consumer, now, retry, now);
            done.claimed.push(id);
            left -= 1;
        }
        done.next = pos
            .and_then(|from| g.pel.range(from..).next())
            .map_or(StreamId::MIN, |(id, _)| *id);
        Some(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    fn pending_of(g: &ConsumerGroup, name: &[u8]) -> Vec<u64> {
        g.consumers[name].pel.iter().map(|i| i.ms).collect()
    }

    #[test]
    fn delivering_again_moves_the_entry_to_the_new_reader() {
        let mut g = ConsumerGroup::new(StreamId::MIN, None);
        g.touch_consumer(b"a", 1);
        g.touch_consumer(b"b", 1);
        g.deliver(id(1), b"a", 5);
        g.deliver(id(2), b"a", 5);
        g.deliver(id(1), b"b", 7);
        assert_eq!(pending_of(&g, b"a"), vec![2]);
        assert_eq!(pending_of(&g, b"b"), vec![1]);
        assert_eq!(g.pel[&id(1)].delivery_count, 1);
        assert_eq!(g.consumers[&b"b"[..]].active_time, Some(7));
        assert!(g.ack(id(1)));
        assert!(!g.ack(id(1)));
        assert!(pending_of(&g, b"b").is_empty());
        assert_eq!(g.delete_consumer(b"a"), Some(1));
        assert!(g.pel.is_empty());
        assert_eq!(g.delete_consumer(b"a"), None);
    }

    #[test]
    fn claims_count_deliveries_as_asked() {
        let mut g = ConsumerGroup::new(StreamId::MIN, None);
        g.touch_consumer(b"a", 1);
        g.touch_consumer(b"b", 1);
        g.deliver(id(1), b"a", 5);
        g.claim(id(1), b"b", 9, Retry::Increment, 9);
        assert_eq!(g.pel[&id(1)].delivery_count, 2);
        g.claim(id(1), b"b", 9, Retry::Keep, 9);
        assert_eq!(g.pel[&id(1)].delivery_count, 2);
        g.claim(id(1), b"a", 3, Retry::Set(7), 9);
        assert_eq!(g.pel[&id(1)].delivery_count, 7);
        assert_eq!(g.pel[&id(1)].delivery_time, 3);
        assert_eq!(pending_of(&g, b"a"), vec![1]);
        assert!(pending_of(&g, b"b").is_empty());
        // A forced claim creates the pending entry.
        g.claim(id(4), b"b", 9, Retry::Keep, 9);
        assert_eq!(g.pel[&id(4)].delivery_count, 1);
        assert_eq!(pending_of(&g, b"b"), vec![4]);
    }
}
