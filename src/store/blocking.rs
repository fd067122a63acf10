//! Clients blocked on keys (BLPOP, BRPOP, BLMOVE, BLMPOP...): the waiter record and the per-key FIFO queues.
//!
//! A waiter is queued on every key it waits for, possibly in several shards. Whoever completes it first must
//! *claim* it ([`Waiter::claim`]): a pusher serving it, its timeout, its client disconnecting, CLIENT UNBLOCK. Only the
//! claimer may act on it, so an element is never popped for a client that has already given up, and a waiter on
//! keys in two shards is served once. Queues drop claimed waiters lazily; the client also removes its own entries when
//! its wait ends, so keys that never receive a push do not accumulate stale waiters.
//!
//! Serving (popping for the waiter and encoding its reply) is command logic and lives in `cmd::blocking`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::stream::StreamId;

/// One end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (LPUSH/LPOP side).
    Left,
    /// The tail (RPUSH/RPOP side).
    Right,
}

/// What a blocked command does once one of its keys has data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockOp {
    /// BLPOP/BRPOP (`count: None`, reply `[key, element]`) or BLMPOP (`Some(n)`, reply `[key, [elements]]`).
    Pop {
        /// Which end to pop.
        end: End,
        /// BLMPOP's COUNT.
        count: Option<usize>,
    },
    /// BZPOPMIN/BZPOPMAX (`count: None`, reply `[key, member, score]`) or BZMPOP (`Some(n)`, reply
    /// `[key, [[member, score], ...]]`).
    ZPop {
        /// Pop the highest scores instead of the lowest.
        max: bool,
        /// BZMPOP's COUNT.
        count: Option<usize>,
    },
    /// BLMOVE/BRPOPLPUSH: pop from the ready key, push onto `dest`, reply with the element.
    Move {
        /// Destination list.
        dest: Vec<u8>,
        /// End popped from the source.
        from: End,
        /// End pushed onto the destination.
        to: End,
    },
    /// XREAD BLOCK: reply with the entries after `after[i]` of every waited-on key `i` that has some. Reading
    /// consumes nothing, so every satisfied reader on a key is served, not only the oldest.
    XRead {
        /// Per key (in `Waiter::keys` order), the ID the reader has seen (`$` already resolved).
        after: Vec<StreamId>,
        /// COUNT (None: all).
        count: Option<usize>,
    },
    /// XREADGROUP BLOCK with `>` for every key. Like Redis 7.2, which re-runs the command when a key it waits on is
    /// written, the reader is re-checked after every write to one of its keys: it is served when a stream has
    /// entries past the group's last ID, and fails (NOGROUP, WRONGTYPE) when its key or group is gone.
    XReadGroup {
        /// The group name.
        group: Vec<u8>,
        /// The consumer name.
        consumer: Vec<u8>,
        /// COUNT (None: all).
        count: Option<usize>,
        /// NOACK: delivered entries do not become pending.
        noack: bool,
    },
    /// WAIT: waits on no key (a server without replicas has none to wait for), so it ends by its timeout or CLIENT
    /// UNBLOCK, replying how many replicas acknowledged: 0.
    Wait,
}

/// A blocked client.
pub struct Waiter {
    /// The blocked client's id (CLIENT UNBLOCK).
    pub client_id: u64,
    /// Its selected database.
    pub db: usize,
    /// The keys it waits on, in argument order.
    pub keys: Vec<Vec<u8>>,
    /// The shard of each of `keys`, placed once when it blocked (serving and ending the wait find its queues there).
    pub shards: Vec<usize>,
    /// What to do when served.
    pub op: BlockOp,
    /// Whether its reply is RESP3.
    pub resp3: bool,
    claimed: AtomicBool,
    reply: Mutex<Option<oneshot::Sender<Vec<u8>>>>,
}

impl Waiter {
    /// A new, unclaimed waiter and the receiver of its eventual reply (encoded bytes).
    pub fn new(
        client_id: u64,
        db: usize,
        keys: Vec<Vec<u8>>,
        shards: Vec<usize>,
        op: BlockOp,
        resp3: bool,
    ) -> (Self, oneshot::Receiver<Vec<u8>>) {
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter {
            client_id,
            db,
            keys,
            shards,
            op,
            resp3,
            claimed: AtomicBool::new(false),
            reply: Mutex::new(Some(tx)),
        };
        (waiter, rx)
    }

    /// Takes the right to complete this waiter. True for exactly one caller, ever.
    pub fn claim(&self) -> bool {
        self.claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// True once someone has claimed it.
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// Delivers the reply; only the claimer calls this.
    pub fn complete(&self, reply: Vec<u8>) {
        if let Some(tx) = self.reply.lock().take() {
            // The receiver only disappears when its connection task is gone (server shutdown).
            let _ = tx.send(reply);
        }
    }
}

/// Waiters on one key, per database, oldest first.
type QueuesByDb = Vec<(usize, VecDeque<Arc<Waiter>>)>;

/// The FIFO queues of waiters per (database, key) in one shard.
#[derive(Default)]
pub struct BlockedKeys {
    queues: hashbrown::HashMap<Box<[u8]>, QueuesByDb>,
}

impl BlockedKeys {
    /// True when nobody in this shard waits (the common case: one branch per write command).
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Queues `waiter` on `key` of database `db`, behind earlier waiters.
    pub fn add(&mut self, db: usize, key: &[u8], waiter: Arc<Waiter>) {
        let dbs = self.queues.entry_ref(key).or_default();
        match dbs.iter_mut().find(|(d, _)| *d == db) {
            Some((_, q)) => q.push_back(waiter),
            None => dbs.push((db, [waiter].into())),
        }
    }

    /// Removes `waiter` from the queue of `key` in `db` (when its wait ended), dropping emptied queues.
    pub fn remove(&mut self, db: usize, key: &[u8], waiter: &Arc<Waiter>) {
        self.retain(db, key, |w| !Arc::ptr_eq(w, waiter));
    }

    /// Databases in which someone waits on `key`.
    pub fn dbs_waiting_on(&self, key: &[u8]) -> impl Iterator<Item = usize> + '_ {
        self.queues
            .get(key)
            .into_iter()
            .flatten()
            .map(|(db, _)| *db)
    }

    /// Every (database, key) with waiters.
    pub fn all_keys(&self) -> Vec<(usize, Vec<u8>)> {
        self.queues
            .iter()
            .flat_map(|(k, dbs)| dbs.iter().map(move |(db, _)| (*db, k.to_vec())))
            .collect()
    }

    /// The oldest waiter on `key` in `db` that nobody has claimed yet. Claimed waiters at the head of the queue are
    /// dropped on the way (O(1) each); those further back leave when their client ends its wait.
    pub fn front(&mut self, db: usize, key: &[u8]) -> Option<Arc<Waiter>> {
        let dbs = self.queues.get_mut(key)?;
        let pos = dbs.iter().position(|(d, _)| *d == db)?;
        let queue = &mut dbs[pos].1;
        while queue.front().is_some_and(|w| w.is_claimed()) {
            queue.pop_front();
        }
        let front = queue.front().cloned();
        if queue.is_empty() {
            dbs.swap_remove(pos);
            if dbs.is_empty() {
                self.queues.remove(key);
            }
        }
        front
    }

    /// Every unclaimed waiter on `key` in `db` that `wanted` picks, oldest first (no allocation when none is).
    pub fn waiting(
        &self,
        db: usize,
        key: &[u8],
        wanted: impl Fn(&Waiter) -> bool,
    ) -> Vec<Arc<Waiter>> {
        self.queues
            .get(key)
            .into_iter()
            .flatten()
            .filter(|(d, _)| *d == db)
            .flat_map(|(_, q)| q.iter().filter(|w| !w.is_claimed() && wanted(w)).cloned())
            .collect()
    }

    fn retain(&mut self, db: usize, key: &[u8], keep: impl Fn(&Arc<Waiter>) -> bool) {
        let Some(dbs) = self.queues.get_mut(key) else {
            return;
        };
        for (d, q) in dbs.iter_mut() {
            if *d == db {
                q.retain(|w| keep(w));
            }
        }
        dbs.retain(|(_, q)| !q.is_empty());
        if dbs.is_empty() {
            self.queues.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(id: u64) -> Arc<Waiter> {
        Arc::new(
            Waiter::new(
                id,
                0,
                vec![b"k".to_vec()],
                vec![0],
                BlockOp::Pop {
                    end: End::Left,
                    count: None,
                },
                false,
            )
            .0,
        )
    }

    #[test]
    fn queues_are_fifo_and_skip_claimed_waiters() {
        let mut b = BlockedKeys::default();
        let (w1, w2, w3) = (waiter(1), waiter(2), waiter(3));
        for w in [&w1, &w2, &w3] {
            b.add(0, b"k", w.clone());
        }
        assert_eq!(b.front(0, b"k").unwrap().client_id, 1);
        assert!(w1.claim());
        assert!(!w1.claim(), "a waiter is claimed once");
        assert_eq!(b.front(0, b"k").unwrap().client_id, 2);
        b.remove(0, b"k", &w2);
        assert_eq!(b.front(0, b"k").unwrap().client_id, 3);
        assert!(b.front(1, b"k").is_none(), "queues are per database");
        assert_eq!(
            b.waiting(0, b"k", |_| true)
                .iter()
                .map(|w| w.client_id)
                .collect::<Vec<_>>(),
            vec![3]
        );
        b.remove(0, b"k", &w3);
        assert!(b.is_empty());
    }
}
