//! WATCH: which clients watch which keys, so that a write can spoil their transactions.
//!
//! A client's watch is one shared flag ([`WatchState`]); every key it watches is registered in the shard that owns
//! the key. After every write command the dispatcher marks the flags of the watchers of that command's keys, while
//! still holding the shard locks, so EXEC (which checks the flag under its own locks) sees every write that finished
//! before it. The client removes its registrations when its watch ends (EXEC, DISCARD, UNWATCH, RESET, disconnect).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One client's watch: set when any watched key is written.
#[derive(Default, Debug)]
pub struct WatchState {
    dirty: AtomicBool,
}

impl WatchState {
    /// Marks the transaction as spoiled.
    pub fn spoil(&self) {
        self.dirty.store(true, Ordering::Release);
    }
    /// True once a watched key was written.
    pub fn is_spoiled(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }
}

/// The watchers of one key: (database, watch).
type Watchers = Vec<(usize, Arc<WatchState>)>;

/// The watchers of one shard's keys, per database.
#[derive(Default)]
pub struct WatchedKeys {
    keys: hashbrown::HashMap<Box<[u8]>, Watchers>,
}

impl WatchedKeys {
    /// True when nobody watches a key of this shard.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Registers `state` as a watcher of `key` in `db`; false when it already was (Redis ignores a repeated WATCH of
    /// a key, so a client watching in a loop does not pile up registrations).
    pub fn add(&mut self, db: usize, key: &[u8], state: &Arc<WatchState>) -> bool {
        let watchers = self.keys.entry_ref(key).or_default();
        if watchers
            .iter()
            .any(|(d, s)| *d == db && Arc::ptr_eq(s, state))
        {
            return false;
        }
        watchers.push((db, state.clone()));
        true
    }
    /// Removes `state`'s registration on `key` in `db`.
    pub fn remove(&mut self, db: usize, key: &[u8], state: &Arc<WatchState>) {
        if let Some(watchers) = self.keys.get_mut(key) {
            watchers.retain(|(d, s)| !(*d == db && Arc::ptr_eq(s, state)));
            if watchers.is_empty() {
                self.keys.remove(key);
            }
        }
    }
    /// Spoils the watchers of `key` in `db` (a write changed it there).
    pub fn touch(&self, db: usize, key: &[u8]) {
        for (_, state) in self
            .keys
            .get(key)
            .into_iter()
            .flatten()
            .filter(|(d, _)| *d == db)
        {
            state.spoil();
        }
    }
    /// Spoils every watcher of this shard's keys in `db` (FLUSHALL, FLUSHDB, SWAPDB changed it).
    pub fn touch_db(&self, db: usize) {
        self.keys
            .values()
            .flatten()
            .filter(|(d, _)| *d == db)
            .for_each(|(_, s)| s.spoil());
    }
}
