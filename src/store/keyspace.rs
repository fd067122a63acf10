//! One database's keys inside one shard: the map, the expiry index, and the scan order.
//!
//! Invariants:
//! - An entry with a deadline is in `expires` exactly once, under that deadline; without one it is absent from it.
//! - A key is never returned after its deadline: every lookup checks the deadline and deletes the key when it passed.
//! - Keys live in [`SCAN_BUCKETS`] tables chosen by middle bits of their hash. A key never changes table, so a SCAN
//!   cursor that walks tables in order visits every key that exists for the whole scan, whatever else changes.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry as Slot, HashTable};
use hashbrown::DefaultHashBuilder;

use super::key::Key;
use super::value::Value;
use crate::notify::{self, Events};

thread_local! {
    /// Set when this thread records a modification or a flush for client-side caching (see [`Keyspace::take_modified`]).
    static RECORDED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread recorded a modification or a flush since the last call (which clears it). A command runs on
/// one thread, so after a command of a transaction or script it says whether the keyspaces have anything to take: a
/// step need not look through every shard it holds otherwise (a script's first run holds all of them).
pub fn take_recorded() -> bool {
    RECORDED.replace(false)
}

/// Tables per keyspace; a SCAN step returns whole tables. The server has many shards (256 on two cores), so 16
/// tables each still give a SCAN step a few hundred keys per million (it had 32 shards of 64 tables before), and a
/// lookup reaches a small set of table headers.
pub const SCAN_BUCKETS: usize = 16;

/// How a command looks a key up (Redis's lookup flags): only a read counts as a keyspace hit or miss.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// To read it (`lookupKeyRead`).
    Read,
    /// To read its metadata, announcing no miss (OBJECT: `LOOKUP_NONOTIFY`).
    Inspect,
    /// To decide a write, changing nothing yet (`lookupKeyWrite`).
    Look,
    /// To change it in place: a modification for WATCH and client-side caching.
    Write,
}

/// A key, its value and its deadline.
#[derive(Debug)]
pub struct Entry {
    key: Key,
    /// The value; handlers change it in place.
    pub value: Value,
    expires_at: u64,
}

impl Entry {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    /// Deadline in Unix milliseconds, if any.
    pub fn expires_at(&self) -> Option<u64> {
        (self.expires_at != 0).then_some(self.expires_at)
    }
}

/// Counters kept under the shard lock and summed for INFO.
#[derive(Default, Debug, Clone, Copy)]
pub struct KeyspaceStats {
    /// Keys deleted because their deadline passed.
    pub expired: u64,
    /// Lookups that found a key.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

/// The keys of one database in one shard.
pub struct Keyspace {
    tables: Box<[HashTable<Entry>]>,
    expires: BTreeSet<(u64, Box<[u8]>)>,
    len: usize,
    hasher: DefaultHashBuilder,
    /// Counters for INFO.
    pub stats: KeyspaceStats,
    version: u64,
    /// The enabled keyspace notification classes (see [`crate::notify`]).
    events: Events,
    /// Events the keyspace itself raised (`expired`, `new`, `keymiss`) and nobody has published yet: the command's
    /// dispatcher (or the active expiry) publishes them, in order, before the command's own events. Filled only while
    /// their class is enabled.
    pending: Vec<(&'static str, Box<[u8]>)>,
    /// Keys modified since the dispatcher last took them, recorded only while a client tracks keys (see
    /// [`crate::tracking`]), and whether the keyspace was flushed.
    modified: Vec<Box<[u8]>>,
    flushed: bool,
}

impl Keyspace {
    /// An empty keyspace hashing with `hasher` (shared by all keyspaces, so scan buckets agree), raising the
    /// notifications `events` enables.
    pub fn new(hasher: DefaultHashBuilder, events: Events) -> Self {
        Keyspace {
            tables: (0..SCAN_BUCKETS).map(|_| HashTable::new()).collect(),
            expires: BTreeSet::new(),
            len: 0,
            hasher,
            stats: KeyspaceStats::default(),
            version: 0,
            events,
            pending: Vec::new(),
            modified: Vec::new(),
            flushed: false,
        }
    }

    /// Queues event `event` of `class` for `key` when that class is enabled (a relaxed load otherwise).
    fn raise(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if notify::wanted(notify::load(&self.events), class) {
            self.pending.push((event, key.into()));
        }
    }

    /// Records `key` as modified for client-side caching when a client tracks keys (a relaxed load otherwise).
    #[inline]
    fn touched(&mut self, key: &[u8]) {
        if notify::load(&self.events) & notify::TRACKING != 0 {
            self.record_modified(key);
        }
    }

    /// Out of line, so that the hot paths carry only the load and the test.
    #[cold]
    #[inline(never)]
    fn record_modified(&mut self, key: &[u8]) {
        self.modified.push(key.into());
        RECORDED.set(true);
    }

    /// The keys modified since the last call (in order, possibly repeated) and whether the keyspace was flushed
    /// meanwhile; empty unless a client tracks keys.
    pub fn take_modified(&mut self) -> Option<(Vec<Box<[u8]>>, bool)> {
        if self.modified.is_empty() && !self.flushed {
            return None;
        }
        Some((
            std::mem::take(&mut self.modified),
            std::mem::take(&mut self.flushed),
        ))
    }

    /// True when events wait in [`Self::take_events`].
    pub fn has_events(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The `expired`, `new` and `keymiss` events raised since the last call, oldest first, as `(event, key)`.
    pub fn take_events(&mut self) -> Vec<(&'static str, Box<[u8]>)> {
        std::mem::take(&mut self.pending)
    }

    /// Number of keys, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Number of keys with a deadline.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Bytes of the key tables' allocations (slots at capacity, each an [`Entry`], and control bytes): MEMORY
    /// STATS's `overhead.hashtable.main`.
    pub fn table_bytes(&self) -> usize {
        self.tables.iter().map(HashTable::allocation_size).sum()
    }

    /// An estimate of the expiry index's bytes: per deadline its B-tree slot, with nodes taken as two-thirds full,
    /// and the key copy it holds. O(keys with a deadline): MEMORY STATS's `overhead.hashtable.expires`.
    pub fn expires_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, Box<[u8]>)>() * 3 / 2;
        self.expires.iter().map(|(_, key)| slot + key.len()).sum()
    }

    fn locate(&self, key: &[u8]) -> (u64, usize) {
        let hash = self.hasher.hash_one(key);
        // Bits 32..38: hashbrown places an entry with the low bits and tags it with the top 7, so choosing the table
        // with either would leave the keys of one table sharing them (top bits: a tag that matches half the probed
        // entries, each then compared byte by byte; low bits: clustered positions).
        (hash, (hash >> 32) as usize % SCAN_BUCKETS)
    }

    /// The live entry for `key` for a command that reads it (Redis's `lookupKeyRead`), deleting it first if its
    /// deadline has passed: counts a keyspace hit or miss (INFO) and announces a miss (`keymiss`, class `m`).
    pub fn get(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.lookup(key, now, Access::Read).map(|e| &*e)
    }

    /// [`Self::get`] without the `keymiss` announcement, as Redis's OBJECT looks keys up.
    pub fn inspect(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.lookup(key, now, Access::Inspect).map(|e| &*e)
    }

    /// The live entry for `key` as a command that writes looks at it first (Redis's `lookupKeyWrite`: no hit or miss
    /// counted), deleting it first if its deadline has passed. Looking changes nothing, so a SET NX that finds the
    /// key spoils no WATCH.
    pub fn find(&mut self, key: &[u8], now: u64) -> Option<&Entry> {
        self.lookup(key, now, Access::Look).map(|e| &*e)
    }

    /// The live entry for `key`, to change in place (a write lookup, as [`Self::find`]). This counts as a
    /// modification of the keyspace (see [`Self::version`]).
    pub fn get_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.lookup(key, now, Access::Write)
    }

    /// A counter that moves whenever this keyspace is modified: keys inserted, removed, changed through
    /// [`Self::get_mut`], given or cleared a deadline. WATCH compares it before and after a command.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Counts a change to the keyspace as a whole (SWAPDB gave it another index), so WATCH sees it.
    pub fn mark_changed(&mut self) {
        self.version = self.version.wrapping_add(1);
    }

    /// Puts back a [`Self::version`] read before a command that failed: it changed nothing, though it may have taken a
    /// value through [`Self::get_mut`] before finding out.
    pub fn restore_version(&mut self, version: u64) {
        self.version = version;
    }

    fn lookup(&mut self, key: &[u8], now: u64, access: Access) -> Option<&mut Entry> {
        let (hash, table) = self.locate(key);
        let expired = match self.tables[table].find(hash, |e| *e.key == *key) {
            None => return self.missed(key, access),
            Some(e) => e.expires_at != 0 && e.expires_at <= now,
        };
        if expired {
            self.remove_located(hash, table, key);
            self.raise(notify::EXPIRED, "expired", key);
            self.stats.expired += 1;
            return self.missed(key, access);
        }
        match access {
            Access::Read | Access::Inspect => self.stats.hits += 1,
            Access::Look => {}
            Access::Write => {
                self.version = self.version.wrapping_add(1);
                self.touched(key);
            }
        }
        self.tables[table].find_mut(hash, |e| *e.key == *key)
    }

    /// A lookup that found no live key: a read counts and announces the miss.
    fn missed(&mut self, key: &[u8], access: Access) -> Option<&mut Entry> {
        match access {
            Access::Read => {
                self.stats.misses += 1;
                self.raise(notify::KEY_MISS, "keymiss", key);
            }
            Access::Inspect => self.stats.misses += 1,
            Access::Look | Access::Write => {}
        }
        None
    }

    /// The live entry for `key` without changing anything (an expired key reads as absent but stays until the next
    /// [`Self::get`]): for commands that read several keys at once through shared references.
    pub fn peek(&self, key: &[u8], now: u64) -> Option<&Entry> {
        let (hash, table) = self.locate(key);
        self.tables[table]
            .find(hash, |e| *e.key == *key)
            .filter(|e| e.expires_at == 0 || e.expires_at > now)
    }

    /// True when `key` exists (and is live), as a write command looks (no hit or miss counted, see [`Self::find`]).
    pub fn contains(&mut self, key: &[u8], now: u64) -> bool {
        self.find(key, now).is_some()
    }

    /// The live entry for `key`, created with `make()` and no deadline when absent.
    pub fn get_or_insert_with(
        &mut self,
        key: &[u8],
        now: u64,
        make: impl FnOnce() -> Value,
    ) -> &mut Entry {
        if self.find(key, now).is_none() {
            self.insert(key, make(), None);
        }
        self.get_mut(key, now).expect("entry was just ensured")
    }

    /// Sets `key` to `value` with deadline `expires_at`, replacing any previous entry. Returns the previous value.
    pub fn insert(&mut self, key: &[u8], value: Value, expires_at: Option<u64>) -> Option<Value> {
        self.version = self.version.wrapping_add(1);
        self.touched(key);
        let (hash, table) = self.locate(key);
        let deadline = expires_at.unwrap_or(0);
        let hasher = &self.hasher;
        let old = match self.tables[table].entry(
            hash,
            |e| *e.key == *key,
            |e| hasher.hash_one(&*e.key),
        ) {
            Slot::Occupied(mut slot) => {
                let e = slot.get_mut();
                let old_deadline = std::mem::replace(&mut e.expires_at, deadline);
                let old = std::mem::replace(&mut e.value, value);
                if old_deadline != 0 {
                    self.expires.remove(&(old_deadline, Box::from(key)));
                }
                Some(old)
            }
            Slot::Vacant(slot) => {
                slot.insert(Entry {
                    key: key.into(),
                    value,
                    expires_at: deadline,
                });
                self.len += 1;
                self.raise(notify::NEW, "new", key);
                None
            }
        };
        if deadline != 0 {
            self.expires.insert((deadline, key.into()));
        }
        old
    }

    /// Deletes `key` if it is live; returns its entry.
    pub fn remove(&mut self, key: &[u8], now: u64) -> Option<Entry> {
        self.find(key, now)?;
        let (hash, table) = self.locate(key);
        self.remove_located(hash, table, key)
    }

    fn remove_located(&mut self, hash: u64, table: usize, key: &[u8]) -> Option<Entry> {
        let slot = self.tables[table]
            .find_entry(hash, |e| *e.key == *key)
            .ok()?;
        let (entry, _) = slot.remove();
        self.len -= 1;
        self.version = self.version.wrapping_add(1);
        self.touched(key);
        if entry.expires_at != 0 {
            self.expires
                .remove(&(entry.expires_at, Box::from(&*entry.key)));
        }
        Some(entry)
    }

    /// Sets (or with `None` clears) the deadline of a live key. Returns false when the key does not exist.
    pub fn set_expiry(&mut self, key: &[u8], expires_at: Option<u64>, now: u64) -> bool {
        let Some(e) = self.get_mut(key, now) else {
            return false;
        };
        let old = std::mem::replace(&mut e.expires_at, expires_at.unwrap_or(0));
        if old != 0 {
            self.expires.remove(&(old, Box::from(key)));
        }
        if let Some(at) = expires_at {
            self.expires.insert((at, key.into()));
        }
        true
    }

    /// Deletes up to `max` keys whose deadline has passed, oldest deadline first. Returns how many it deleted.
    pub fn expire_step(&mut self, now: u64, max: usize) -> usize {
        let mut done = 0;
        while done < max {
            match self.expires.first() {
                Some((at, _)) if *at <= now => {
                    let (_, key) = self.expires.pop_first().expect("first exists");
                    let (hash, table) = self.locate(&key);
                    if let Ok(slot) = self.tables[table].find_entry(hash, |e| *e.key == *key) {
                        slot.remove();
                        self.len -= 1;
                    }
                    self.touched(&key);
                    self.raise(notify::EXPIRED, "expired", &key);
                    self.stats.expired += 1;
                    done += 1;
                }
                _ => break,
            }
        }
        done
    }

    /// Deletes the keys of scan bucket `bucket` whose deadline has passed, as a lookup of each would (an `expired`
    /// event each): SCAN reclaims the expired keys it meets, as Redis's does.
    pub fn reclaim_bucket(&mut self, bucket: usize, now: u64) {
        let expired: Vec<Vec<u8>> = self.tables[bucket]
            .iter()
            .filter(|e| e.expires_at != 0 && e.expires_at <= now)
            .map(|e| e.key.to_vec())
            .collect();
        for key in expired {
            self.lookup(&key, now, Access::Look);
        }
    }

    /// Live entries of scan bucket `bucket`.
    pub fn bucket(&self, bucket: usize, now: u64) -> impl Iterator<Item = &Entry> {
        self.tables[bucket]
            .iter()
            .filter(move |e| e.expires_at == 0 || e.expires_at > now)
    }

    /// All live entries.
    pub fn iter(&self, now: u64) -> impl Iterator<Item = &Entry> {
        (0..SCAN_BUCKETS).flat_map(move |b| self.bucket(b, now))
    }

    /// A random live key, if any.
    pub fn random_key(&mut self, now: u64) -> Option<Vec<u8>> {
        // Expired keys found on the way are reclaimed, so the loop ends: each miss shrinks the keyspace.
        while self.len > 0 {
            let nonempty: Vec<usize> = (0..SCAN_BUCKETS)
                .filter(|&b| !self.tables[b].is_empty())
                .collect();
            let table = &self.tables[nonempty[fastrand::usize(..nonempty.len())]];
            let key = table
                .iter()
                .nth(fastrand::usize(..table.len()))?
                .key
                .to_vec();
            if self.find(&key, now).is_some() {
                return Some(key);
            }
        }
        None
    }

    /// Deletes every key.
    pub fn clear(&mut self) {
        for t in self.tables.iter_mut() {
            *t = HashTable::new();
        }
        self.expires.clear();
        // Redis tells trackers about every flush, even of an empty database.
        if notify::load(&self.events) & notify::TRACKING != 0 {
            self.flushed = true;
            RECORDED.set(true);
        }
        if self.len > 0 {
            self.version = self.version.wrapping_add(1);
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks() -> Keyspace {
        Keyspace::new(DefaultHashBuilder::default(), Events::default())
    }

    #[test]
    fn a_key_is_never_seen_after_its_deadline() {
        let mut k = ks();
        k.insert(b"lock", Value::Str(b"t".to_vec()), Some(1000));
        assert!(k.get(b"lock", 999).is_some());
        assert!(k.get(b"lock", 1000).is_none());
        assert_eq!(k.len(), 0);
        assert_eq!(k.expires_len(), 0);
    }

    #[test]
    fn expire_step_reclaims_in_deadline_order_and_is_bounded() {
        let mut k = ks();
        for i in 0..10u64 {
            k.insert(
                format!("k{i}").as_bytes(),
                Value::Str(vec![]),
                Some(100 + i),
            );
        }
        k.insert(b"forever", Value::Str(vec![]), None);
        assert_eq!(k.expire_step(105, 3), 3);
        assert_eq!(k.expire_step(105, 100), 3);
        assert_eq!(k.len(), 5);
        assert!(k.get(b"k6", 105).is_some());
    }

    #[test]
    fn an_entry_taken_out_and_put_back_under_another_key_keeps_its_deadline() {
        // RENAME, MOVE and COPY rely on this: `remove` hands back the deadline and `insert` indexes it anew.
        let mut k = ks();
        k.insert(b"old", Value::Str(b"v".to_vec()), Some(500));
        k.insert(b"new", Value::Str(b"x".to_vec()), None);
        let entry = k.remove(b"old", 10).expect("live");
        let deadline = entry.expires_at();
        assert_eq!(deadline, Some(500));
        k.insert(b"new", entry.value, deadline);
        assert_eq!((k.len(), k.expires_len()), (1, 1));
        assert_eq!(k.get(b"new", 10).and_then(|e| e.expires_at()), Some(500));
        assert_eq!(k.expire_step(500, 10), 1);
        assert!(k.is_empty());
    }

    #[test]
    fn overwriting_clears_or_replaces_the_deadline() {
        let mut k = ks();
        k.insert(b"a", Value::Str(vec![]), Some(100));
        k.insert(b"a", Value::Str(vec![]), None);
        assert_eq!(k.expires_len(), 0);
        assert!(k.get(b"a", 1000).is_some());
        assert!(k.set_expiry(b"a", Some(50), 10));
        assert_eq!(k.expires_len(), 1);
        assert!(k.remove(b"a", 10).is_some());
        assert_eq!(k.expires_len(), 0);
    }
}
