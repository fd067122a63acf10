//! Everything that changes atomically with the keyspace: shards, values (with the hash, set and sorted set
//! containers), expiry (and, with lists, blocked waiters).
//!
//! The keyspace is split into shards, each a `parking_lot::Mutex<Shard>` holding every database's keys for the part of
//! the ring it owns, so that MOVE and SWAPDB never cross shards. Keys are placed on shards with the same consistent-hash
//! ring the proxy uses for backends.
//!
//! Locking rule: a command locks all the shards it needs before it starts and in ascending shard index
//! ([`Store::lock`]), which makes multi-key commands atomic and rules out deadlock. Guards are never held across
//! `.await` (parking_lot guards are `!Send`, so the compiler enforces it). Nothing here knows about sockets.

mod blocking;
mod dict;
mod hash;
mod key;
mod keyspace;
mod list;
pub mod listpack;
mod set;
pub mod stream;
mod value;
mod watch;
mod zset;

use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::DefaultHashBuilder;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

pub use blocking::{BlockOp, BlockedKeys, End, Waiter};
pub use dict::Dict;
pub use key::key_heap_bytes;
pub use keyspace::{take_recorded, Entry, Keyspace, KeyspaceStats, SCAN_BUCKETS};
pub use value::{Hash, List, Set, Stream, Value, ZSet};
pub use watch::{WatchState, WatchedKeys};

use crate::ring::{Node, Ring};

/// Unix time in milliseconds: the clock expiry deadlines are measured on.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One shard: every database's keys for one arc set of the ring.
pub struct Shard {
    /// Keyspaces by database index.
    pub dbs: Box<[Keyspace]>,
    /// Clients blocked on this shard's keys.
    pub blocked: BlockedKeys,
    /// Clients watching this shard's keys.
    pub watched: WatchedKeys,
}

/// The sharded keyspace.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    ring: Ring,
    /// Per shard: connections waiting for it to be released (see [`HeldShard`]).
    waiters: Box<[Waiters]>,
}

/// Connection tasks waiting for one shard without holding their thread (see [`Store::wait_for`]).
#[derive(Default)]
struct Waiters {
    count: AtomicUsize,
    notify: Notify,
}

impl Store {
    /// A store of `shards` shards (rounded up to a power of two) with `databases` databases each, raising no
    /// keyspace notifications.
    pub fn new(shards: usize, databases: usize) -> Self {
        Self::with_events(shards, databases, crate::notify::Events::default())
    }

    /// [`Self::new`] raising the keyspace notifications that `events` enables.
    pub fn with_events(shards: usize, databases: usize, events: crate::notify::Events) -> Self {
        let n = shards.max(1).next_power_of_two();
        let hasher = DefaultHashBuilder::default();
        let ring = Ring::for_shards(
            (0..n)
                .map(|i| Node {
                    name: format!("shard-{i}"),
                    weight: 1,
                })
                .collect(),
        );
        let shards = (0..n)
            .map(|_| {
                let dbs = (0..databases).map(|_| Keyspace::new(hasher.clone(), events.clone()));
                Mutex::new(Shard {
                    dbs: dbs.collect(),
                    blocked: BlockedKeys::default(),
                    watched: WatchedKeys::default(),
                })
            })
            .collect();
        let waiters = (0..n).map(|_| Waiters::default()).collect();
        Store {
            shards,
            ring,
            waiters,
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The ring that places keys on shards (its nodes are `shard-0`, `shard-1`, ...).
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The shard that owns `key`.
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.ring.locate(key)
    }

    /// Locks the given shards. `shards` must be sorted ascending without duplicates (the deadlock-freedom rule).
    pub fn lock(&self, shards: &[usize]) -> Locked<'_> {
        // The locker never gives up, so there is always a result.
        self.lock_with(shards, |i| Some(lock_spinning(&self.shards[i])))
            .unwrap_or(Locked::None)
    }

    /// Locks every shard, in order.
    pub fn lock_all(&self) -> Locked<'_> {
        Locked::Many(
            self.shards
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.lock()))
                .collect(),
        )
    }

    /// [`Self::lock`], except that a shard still held after the usual spinning is given up on when `busy(index)`
    /// says its holder is a script past its busy threshold: then every shard taken so far is released and the
    /// answer is `None` (the caller replies BUSY). Uncontended locking costs the same as [`Self::lock`].
    pub fn lock_unless_busy(
        &self,
        shards: &[usize],
        busy: &dyn Fn(usize) -> bool,
    ) -> Option<Locked<'_>> {
        self.lock_with(shards, |i| lock_or_busy(&self.shards[i], i, busy))
    }

    /// [`Self::lock_unless_busy`] over every shard.
    pub fn lock_all_unless_busy(&self, busy: &dyn Fn(usize) -> bool) -> Option<Locked<'_>> {
        let all: Vec<usize> = (0..self.shards.len()).collect();
        self.lock_unless_busy(&all, busy)
    }

    /// Locks `shards` (ascending, no duplicates) one by one with `take`, stopping at the first it gives up on.
    fn lock_with<'a>(
        &'a self,
        shards: &[usize],
        take: impl Fn(usize) -> Option<MutexGuard<'a, Shard>>,
    ) -> Option<Locked<'a>> {
        debug_assert!(
            shards.windows(2).all(|w| w[0] < w[1]),
            "shards must be locked in ascending order"
        );
        Some(match shards {
            [] => Locked::None,
            [one] => Locked::One(*one, take(*one)?),
            many => Locked::Many(
                many.iter()
                    .map(|&i| take(i).map(|g| (i, g)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// Locks one shard on its own (background work such as active expiry).
    pub fn lock_shard(&self, idx: usize) -> MutexGuard<'_, Shard> {
        self.shards[idx].lock()
    }

    /// Locks one shard if it is free now; never waits, so it cannot deadlock whatever the caller holds.
    pub fn try_lock_shard(&self, idx: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shards[idx].try_lock()
    }

    /// Releases a command's locks, waking a connection waiting for each shard released.
    pub fn unlock(&self, locked: Locked<'_>) {
        match locked {
            Locked::None => {}
            Locked::One(idx, guard) => {
                drop(guard);
                self.released(idx);
            }
            Locked::Many(guards) => {
                for (idx, guard) in guards {
                    drop(guard);
                    self.released(idx);
                }
            }
        }
    }

    /// Wakes one connection waiting for shard `idx`, which its caller has just released.
    fn released(&self, idx: usize) {
        let waiters = &self.waiters[idx];
        // Pairs with the fence in `wait_for`: either we see the waiter, or it sees the shard free.
        fence(Ordering::SeqCst);
        if waiters.count.load(Ordering::Relaxed) > 0 {
            waiters.notify.notify_one();
        }
    }

    /// Locks `shards` (ascending, no duplicates) if each is free or frees up within a short spin (about a
    /// microsecond: one command's critical section), for callers that would rather wait in [`Self::wait_for`] than
    /// on their thread. Otherwise releases what it took and names the shard that stayed held.
    pub fn try_lock_briefly(&self, shards: &[usize]) -> Result<Locked<'_>, usize> {
        let take = |idx: usize| spin(&self.shards[idx], BRIEF_SPINS).ok_or(idx);
        match shards {
            [] => Ok(Locked::None),
            [one] => Ok(Locked::One(*one, take(*one)?)),
            many => {
                let mut guards = Vec::with_capacity(many.len());
                for &idx in many {
                    match take(idx) {
                        Ok(guard) => guards.push((idx, guard)),
                        Err(idx) => {
                            self.unlock(Locked::Many(guards));
                            return Err(idx);
                        }
                    }
                }
                Ok(Locked::Many(guards))
            }
        }
    }

    /// Waits, without holding the thread, until shard `idx` is released (or `WAIT_RECHECK` passes: a safety net for
    /// any holder that releases without [`Self::unlock`]). The task is woken by the releasing thread, so it usually
    /// runs next on that thread, where the shard's data already is.
    pub async fn wait_for(&self, idx: usize) {
        let waiters = &self.waiters[idx];
        let notified = waiters.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        waiters.count.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.shards[idx].is_locked() {
            let _ = tokio::time::timeout(WAIT_RECHECK, notified).await;
        }
        waiters.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Locks `shard`, spinning a while before parking the thread. Critical sections here last well under a
/// microsecond, while parking and waking a thread costs several: a tokio worker that parks stops every connection it
/// serves, so a short spin wins when the holder is running on another core.
fn lock_spinning(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    spin(shard, SPINS).unwrap_or_else(|| shard.lock())
}

/// [`lock_spinning`] that gives up once `busy(idx)` says the holder is a busy script. That check (a script's lock
/// can last seconds) is made only after spinning, then between timed waits.
fn lock_or_busy<'a>(
    shard: &'a Mutex<Shard>,
    idx: usize,
    busy: &dyn Fn(usize) -> bool,
) -> Option<MutexGuard<'a, Shard>> {
    if let Some(guard) = spin(shard, SPINS) {
        return Some(guard);
    }
    loop {
        if busy(idx) {
            return None;
        }
        if let Some(guard) = shard.try_lock_for(BUSY_POLL) {
            return Some(guard);
        }
    }
}

/// The spinning part of [`lock_spinning`]: the guard, or `None` when the shard stayed held for `spins` turns.
fn spin(shard: &Mutex<Shard>, spins: usize) -> Option<MutexGuard<'_, Shard>> {
    for _ in 0..spins {
        // Test before test-and-set: waiting on a read keeps the cache line shared instead of bouncing it.
        if !shard.is_locked() {
            if let Some(guard) = shard.try_lock() {
                return Some(guard);
            }
        }
        std::hint::spin_loop();
    }
    None
}

/// How long a waiter parks between two checks of whether a busy script holds the shard it waits for.
const BUSY_POLL: Duration = Duration::from_millis(2);

/// Spin iterations before parking (about 10-40 microseconds).
const SPINS: usize = 4096;

/// Spin iterations of [`Store::try_lock_briefly`].
const BRIEF_SPINS: usize = 128;

/// Longest wait in [`Store::wait_for`] before checking the shard again.
const WAIT_RECHECK: Duration = Duration::from_millis(1);

/// The one shard lock a connection keeps between the commands of a pipeline that all use that shard: a hot key then
/// changes hands between threads once per batch of requests instead of once per request, and its data stays in one
/// core's cache. The connection drops it before it writes replies or waits, so no lock is ever held across I/O (a
/// `MutexGuard` is not `Send`: the compiler rejects holding one across an `.await`).
///
/// A connection also sets `may_yield`: a command whose shard another thread holds then does not wait on the
/// thread (spinning, then parking it with every other connection it serves) but gives the thread back and waits in
/// [`Store::wait_for`]; the releasing thread wakes it, so a hot shard's work gathers on one thread. A command on
/// several shards that finds one held gives back those it took before waiting.
pub struct HeldShard<'a> {
    store: &'a Store,
    held: Option<(usize, MutexGuard<'a, Shard>)>,
    may_yield: bool,
}

impl<'a> HeldShard<'a> {
    /// Nothing held yet; `may_yield` when the caller can wait for a contended shard asynchronously.
    pub fn new(store: &'a Store, may_yield: bool) -> Self {
        HeldShard {
            store,
            held: None,
            may_yield,
        }
    }
    /// True when contended shards should be waited for asynchronously rather than on the thread.
    pub fn may_yield(&self) -> bool {
        self.may_yield
    }
    /// The held lock, when it is shard `idx`; otherwise releases whatever is held.
    pub fn take(&mut self, idx: usize) -> Option<Locked<'a>> {
        let (i, guard) = self.held.take()?;
        if i == idx {
            return Some(Locked::One(i, guard));
        }
        self.store.unlock(Locked::One(i, guard));
        None
    }
    /// Releases the held lock, if any.
    pub fn release(&mut self) {
        if let Some((idx, guard)) = self.held.take() {
            self.store.unlock(Locked::One(idx, guard));
        }
    }
    /// Keeps a command's lock for the next command when it is a single shard; releases anything else.
    pub fn keep(&mut self, locked: Locked<'a>) {
        self.release();
        match locked {
            Locked::One(idx, guard) => self.held = Some((idx, guard)),
            other => self.store.unlock(other),
        }
    }
}

impl Drop for HeldShard<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// The shards one command holds.
pub enum Locked<'a> {
    /// A command that touches no keys.
    None,
    /// The common case: one shard.
    One(usize, MutexGuard<'a, Shard>),
    /// Several shards, ascending.
    Many(Vec<(usize, MutexGuard<'a, Shard>)>),
}

impl<'a> Locked<'a> {
    /// The locked shard `idx` (`usize::MAX`: the only one held). Panics if the command did not lock it: that is a bug in a command's key spec.
    pub fn shard(&mut self, idx: usize) -> &mut Shard {
        match self {
            Locked::One(i, g) if *i == idx || idx == usize::MAX => g,
            Locked::Many(v) => match v.binary_search_by_key(&idx, |(i, _)| *i) {
                Ok(pos) => &mut v[pos].1,
                Err(_) => panic!("shard {idx} used but not locked"),
            },
            _ => panic!("shard {idx} used but not locked"),
        }
    }

    /// The locked shard `idx`, read-only, so that several shards can be read at once (`usize::MAX`: the only one
    /// held). Panics like [`Self::shard`].
    pub fn shard_ref(&self, idx: usize) -> &Shard {
        match self {
            Locked::One(i, g) if *i == idx || idx == usize::MAX => g,
            Locked::Many(v) => match v.binary_search_by_key(&idx, |(i, _)| *i) {
                Ok(pos) => &v[pos].1,
                Err(_) => panic!("shard {idx} used but not locked"),
            },
            _ => panic!("shard {idx} used but not locked"),
        }
    }

    /// True when shard `idx` is held.
    pub fn holds(&self, idx: usize) -> bool {
        match self {
            Locked::None => false,
            Locked::One(i, _) => *i == idx,
            Locked::Many(v) => v.binary_search_by_key(&idx, |(i, _)| *i).is_ok(),
        }
    }

    /// Adds shard `idx`, locked by the caller, to the held set (a script reaching a key it did not declare). How it
    /// was locked is the caller's deadlock-freedom argument: `try_lock`, or `lock` only above every held index.
    pub fn add(&mut self, idx: usize, guard: MutexGuard<'a, Shard>) {
        match std::mem::replace(self, Locked::None) {
            Locked::None => *self = Locked::One(idx, guard),
            Locked::One(i, g) => {
                let mut v = vec![(i, g), (idx, guard)];
                v.sort_unstable_by_key(|(i, _)| *i);
                *self = Locked::Many(v);
            }
            Locked::Many(mut v) => {
                let pos = v.partition_point(|(i, _)| *i < idx);
                v.insert(pos, (idx, guard));
                *self = Locked::Many(v);
            }
        }
    }

    /// The highest held shard index.
    pub fn max_index(&self) -> Option<usize> {
        match self {
            Locked::None => None,
            Locked::One(i, _) => Some(*i),
            Locked::Many(v) => v.last().map(|(i, _)| *i),
        }
    }

    /// True when exactly one shard is held: then it is the shard of every key of the command.
    pub fn is_single(&self) -> bool {
        matches!(self, Locked::One(..))
    }

    /// Every locked shard.
    pub fn all(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        self.indexed().map(|(_, s)| s)
    }

    /// Every locked shard with its index.
    pub fn indexed(&mut self) -> impl Iterator<Item = (usize, &mut Shard)> + use<'_, 'a> {
        let (one, many) = match self {
            Locked::None => (None, None),
            Locked::One(i, g) => (Some((*i, &mut **g)), None),
            Locked::Many(v) => (None, Some(v.iter_mut().map(|(i, g)| (*i, &mut **g)))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_keeps_the_held_set_sorted_and_reachable() {
        let store = Store::new(8, 1);
        let mut held = store.lock(&[]);
        assert_eq!(held.max_index(), None);
        held.add(5, store.try_lock_shard(5).unwrap());
        assert!(held.is_single() && held.holds(5));
        held.add(2, store.try_lock_shard(2).unwrap());
        held.add(7, store.lock_shard(7));
        held.add(3, store.try_lock_shard(3).unwrap());
        assert_eq!(held.max_index(), Some(7));
        for i in [2, 3, 5, 7] {
            assert!(held.holds(i), "{i}");
            held.shard(i);
        }
        assert!(!held.holds(4));
        // A held shard cannot be taken again without waiting; a free one can.
        assert!(store.try_lock_shard(3).is_none());
        assert!(store.try_lock_shard(4).is_some());
        drop(held);
        assert!(store.try_lock_shard(3).is_some());
    }
}
