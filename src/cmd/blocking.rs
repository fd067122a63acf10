//! What blocking commands share: timeouts, queuing a waiter, serving waiters after a write, ending a wait.
//!
//! Redis's rules, which this module keeps:
//! - Waiters are served after the whole command that made their key non-empty (so `LPUSH k a b c` gives a BLPOP
//!   waiter `c`), oldest waiter first, while the pusher still holds the shard locks: no other client can slip in.
//! - Serving a BLMOVE may push onto another watched key; that key is served in the same pass (chains).
//! - A waiter is claimed before it is served, so a client that timed out, disconnected or was unblocked never
//!   receives (and so never loses) an element.
//!
//! Which keys to look at comes from the write command's key spec, so every writer (pushes, moves, RENAME, COPY,
//! transactions) wakes waiters without knowing about them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::args;
use super::list::{self, Keyspaces};
use super::long_double::LongDouble;
use super::{
    notify_emptied, notify_held, publish_pending, CmdError, CmdResult, CommandSpec, Ctx, Flow,
    KeyShards,
};
use super::{stream, zset};
use crate::client::Blocked;
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::server::ServerState;
use crate::store::{BlockOp, Keyspace, Locked, Waiter};

/// Parses a blocking timeout in seconds (0 waits forever) at Unix time `now` (ms) with Redis's errors. Redis reads it
/// as a `long double` (`strtold`: hexadecimal floats too, and `1e400` is "out of range" rather than "not a float").
pub fn parse_timeout(arg: &[u8], now: u64) -> Result<Option<Duration>, CmdError> {
    if let Some(ms) = plain_decimal_ms(arg) {
        return Ok((ms > 0).then(|| Duration::from_millis(ms)));
    }
    let secs = LongDouble::parse(arg)
        .ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?
        .to_f64();
    let ms = (secs * 1000.0).ceil();
    // In f64 (Redis: long double) the limit rounds to a multiple of 1024 ms, so `>=` keeps every accepted timeout
    // below it; only timeouts within seconds of the limit (292 million years) can be judged unlike Redis.
    if ms >= latest_deadline(now) as f64 {
        return Err(out_of_range());
    }
    if ms < 0.0 {
        return Err(CmdError::err("timeout is negative"));
    }
    // Durations far beyond any real wait are clamped so that deadline arithmetic cannot overflow.
    const FOREVER_MS: f64 = 100.0 * 365.0 * 24.0 * 3600.0 * 1000.0;
    Ok((ms > 0.0).then(|| Duration::from_millis(ms.min(FOREVER_MS) as u64)))
}

/// Parses a blocking timeout in milliseconds (XREAD's BLOCK, WAIT; 0 waits forever) at Unix time `now` (ms) with
/// Redis's errors.
pub fn parse_timeout_ms(arg: &[u8], now: u64) -> Result<Option<Duration>, CmdError> {
    let ms = args::parse_i64(arg)
        .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if ms > latest_deadline(now) {
        return Err(out_of_range());
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

/// The longest timeout Redis accepts at `now`, in milliseconds: its deadline (now + timeout) must fit a `long long`.
fn latest_deadline(now: u64) -> i64 {
    i64::MAX - now as i64
}

fn out_of_range() -> CmdError {
    CmdError::err("timeout is out of range")
}

/// Milliseconds, rounded up, of a plain decimal number of seconds (`5`, `0.25`: at most 9 digits on each side of the
/// point), computed exactly; `None` for anything else, which takes the long-double path Redis uses. Every blocking
/// command parses a timeout, and the long-double parser costs microseconds.
fn plain_decimal_ms(arg: &[u8]) -> Option<u64> {
    let (int, frac) = match arg.iter().position(|&c| c == b'.') {
        Some(dot) => (&arg[..dot], &arg[dot + 1..]),
        None => (arg, &b""[..]),
    };
    let digits = |s: &[u8]| s.len() <= 9 && s.iter().all(u8::is_ascii_digit);
    if int.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    let value = |s: &[u8]| s.iter().fold(0u64, |n, &c| n * 10 + (c - b'0') as u64);
    // The fraction in nanoseconds, then rounded up to whole milliseconds.
    let frac_ns = value(frac) * 10u64.pow(9 - frac.len() as u32);
    Some(value(int) * 1000 + frac_ns.div_ceil(1_000_000))
}

/// Blocks the calling client on `keys` (all locked by the command) until one can serve `op` or `timeout` passes.
pub fn block(
    ctx: &mut Ctx,
    keys: Vec<Vec<u8>>,
    op: BlockOp,
    timeout: Option<Duration>,
) -> CmdResult {
    if ctx.client.in_exec {
        // Inside a transaction a blocking command answers at once, as its timeout would (BLMOVE: a plain nil).
        match op {
            BlockOp::Move { .. } => ctx.out.null(),
            BlockOp::Wait => ctx.out.int(0),
            BlockOp::Pop { .. }
            | BlockOp::ZPop { .. }
            | BlockOp::XRead { .. }
            | BlockOp::XReadGroup { .. } => ctx.out.null_array(),
        }
        return Ok(());
    }
    let db = ctx.client.db;
    let shards = keys.iter().map(|k| ctx.server.store.shard_of(k)).collect();
    let (waiter, reply) = Waiter::new(ctx.client.id(), db, keys, shards, op, ctx.out.resp3());
    let waiter = Arc::new(waiter);
    for (key, &idx) in waiter.keys.iter().zip(&waiter.shards) {
        ctx.shards.shard(idx).blocked.add(db, key, waiter.clone());
    }
    *ctx.client.info.waiter.lock() = Some(waiter.clone());
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    ctx.client.blocked = Some(Blocked {
        waiter,
        reply,
        deadline,
    });
    ctx.flow = Flow::Block;
    Ok(())
}

/// A key whose waiters may now be served: its database, the key, and the shard that owns it.
pub struct Ready {
    db: usize,
    key: Vec<u8>,
    shard: usize,
}

/// Keys whose waiters are still to be served, in the order they became ready.
pub type Pending = VecDeque<Ready>;

/// After a write command: the keys it wrote that clients wait on, to serve with [`serve`] once the whole command (or
/// transaction, or script) has run.
pub fn ready_after_write(
    server: &ServerState,
    shards: &mut Locked,
    spec: &CommandSpec,
    argv: Argv,
    key_shards: &KeyShards,
) -> Pending {
    let mut ready = Pending::new();
    if spec.has(super::flag::READIES_NONE) {
        return ready;
    }
    if spec.has(super::flag::ALL_SHARDS) {
        for (shard, s) in shards.indexed() {
            let keys = s.blocked.all_keys().into_iter();
            ready.extend(keys.map(|(db, key)| Ready { db, key, shard }));
        }
    } else {
        for i in spec.key_indices(argv) {
            let key = argv.get(i);
            let shard = key_shards.shard_of(&server.store, key);
            let dbs = shards.shard(shard).blocked.dbs_waiting_on(key);
            ready.extend(dbs.map(|db| Ready {
                db,
                key: key.to_vec(),
                shard,
            }));
        }
    }
    ready
}

/// The shards a serving pass holds, seen as keyspaces of one database (for the list operations).
struct Held<'a, 'l> {
    server: &'a ServerState,
    shards: &'a mut Locked<'l>,
    db: usize,
}

impl Keyspaces for Held<'_, '_> {
    fn keyspace(&mut self, key: &[u8]) -> &mut Keyspace {
        let idx = self.server.store.shard_of(key);
        &mut self.shards.shard(idx).dbs[self.db]
    }
}

/// Serves what [`serve`] left pending, holding every shard (so it finishes).
pub fn serve_pending(server: &ServerState, all: &mut Locked, pending: Pending, now: u64) {
    let left = serve(server, all, pending, now);
    debug_assert!(left.is_empty(), "serving with every shard held finishes");
}

/// Serves the waiters on each ready (db, key), oldest first, while the key has data. Keys are taken in the order they
/// became ready, and a BLMOVE destination joins the end, as Redis's `handleClientsBlockedOnKeys` does (a waiter on
/// both a key readied by the write and a destination gets the key's element). Stops at a waiter that needs a shard
/// not held and returns the keys left (that one first); empty when all is served.
pub fn serve(server: &ServerState, shards: &mut Locked, mut ready: Pending, now: u64) -> Pending {
    let store = &server.store;
    // Read only here, where a waiter may be served: a write with nobody blocked never gets this far.
    let events = notify::load(&server.settings.keyspace_events);
    while let Some(Ready { db, key, shard }) = ready.pop_front() {
        if !serve_stream_readers(server, shards, db, &key, shard, now) {
            ready.push_front(Ready { db, key, shard });
            return ready;
        }
        loop {
            let s = shards.shard(shard);
            let Some(waiter) = s.blocked.front(db, &key) else {
                break;
            };
            let keyspace = &mut s.dbs[db];
            let has_data = match waiter.op {
                BlockOp::ZPop { .. } => zset::has_members(keyspace, &key, now),
                // Served by `serve_stream_readers`; an unsatisfied reader waits for a newer entry.
                BlockOp::XRead { .. } | BlockOp::XReadGroup { .. } => false,
                _ => list::has_elements(keyspace, &key, now),
            };
            if !has_data {
                break;
            }
            let dest_shard = match &waiter.op {
                BlockOp::Move { dest, .. } => store.shard_of(dest),
                _ => shard,
            };
            if !shards.holds(dest_shard) {
                ready.push_front(Ready { db, key, shard });
                return ready;
            }
            if !waiter.claim() {
                continue; // timed out or disconnected meanwhile; `front` drops it next round
            }
            let mut out = Reply::with_capacity(waiter.resp3, 64 + key.len());
            match &waiter.op {
                BlockOp::Pop { end, count } => {
                    let n = count.unwrap_or(1);
                    let keyspace = &mut shards.shard(shard).dbs[db];
                    let popped = list::pop(keyspace, &key, *end, n, now);
                    let elements = popped.ok().flatten().unwrap_or_default();
                    let event = (notify::LIST, end.pop_event());
                    notify_emptied(server, shards, events, db, now, event, &key);
                    out.array(2);
                    out.bulk(&key);
                    match count {
                        None => out.bulk(elements.first().map_or(&[][..], Vec::as_slice)),
                        Some(_) => {
                            out.array(elements.len());
                            elements.iter().for_each(|e| out.bulk(e));
                        }
                    }
                }
                BlockOp::ZPop { max, count } => {
                    let n = count.unwrap_or(1);
                    let keyspace = &mut shards.shard(shard).dbs[db];
                    let popped = zset::pop_key(keyspace, &key, *max, n, now);
                    let popped = popped.ok().flatten().unwrap_or_default();
                    let event = (notify::ZSET, zset::pop_event(*max));
                    notify_emptied(server, shards, events, db, now, event, &key);
                    zset::reply_key_popped(&mut out, &key, &popped, *count);
                }
                BlockOp::Move { dest, from, to } => {
                    let mut held = Held {
                        server,
                        shards: &mut *shards,
                        db,
                    };
                    match list::move_element(&mut held, &key, dest, *from, *to, now) {
                        Ok(Some(element)) => {
                            out.bulk(&element);
                            // The push changed the destination: its WATCHes are spoiled (Redis's
                            // signalModifiedKey in lmoveHandlePush).
                            shards.shard(dest_shard).watched.touch(db, dest);
                            notify_held(
                                server,
                                shards,
                                events,
                                db,
                                notify::LIST,
                                to.push_event(),
                                dest,
                            );
                            let event = (notify::LIST, from.pop_event());
                            notify_emptied(server, shards, events, db, now, event, &key);
                            ready.push_back(Ready {
                                db,
                                key: dest.clone(),
                                shard: dest_shard,
                            });
                        }
                        Ok(None) => out.null_array(),
                        Err(e) => out.error(&e.to_string()),
                    }
                }
                BlockOp::XRead { .. } | BlockOp::XReadGroup { .. } | BlockOp::Wait => {
                    unreachable!("readers are never judged to have data here, and WAIT has no key")
                }
            }
            waiter.complete(out.buf);
        }
    }
    // A key the serving created (a BLMOVE destination) is announced even when no list event is enabled.
    if notify::wanted(events, notify::RAISED) {
        publish_pending(server, shards, events);
    }
    Pending::new()
}

/// Serves every XREAD and XREADGROUP blocked on `key` (in `db`) that the write made ready, oldest first: plain
/// readers take nothing away, so one does not starve another; a group reader takes the new entries from its group,
/// so the next reader of that group waits for more. Returns false when a reader also waits on a key in a shard not
/// held (its reply covers all its keys, as Redis 7.2's re-executed command does).
fn serve_stream_readers(
    server: &ServerState,
    shards: &mut Locked,
    db: usize,
    key: &[u8],
    shard: usize,
    now: u64,
) -> bool {
    let store = &server.store;
    let readers = shards.shard(shard).blocked.waiting(db, key, |w| {
        matches!(w.op, BlockOp::XRead { .. } | BlockOp::XReadGroup { .. })
    });
    for waiter in readers {
        if waiter.shards.iter().any(|&i| !shards.holds(i)) {
            return false;
        }
        let mut out = Reply::scratch(waiter.resp3);
        match &waiter.op {
            BlockOp::XRead { after, count } => {
                let held = &*shards;
                let served = stream::reply_ready(&mut out, &waiter.keys, after, *count, |k| {
                    held.shard_ref(store.shard_of(k)).dbs[db].peek(k, now)
                });
                if served && waiter.claim() {
                    waiter.complete(out.buf);
                }
            }
            BlockOp::XReadGroup {
                group,
                consumer,
                count,
                noack,
            } => {
                let mut held = Held {
                    server,
                    shards: &mut *shards,
                    db,
                };
                let read = stream::GroupRead {
                    group,
                    consumer,
                    count: *count,
                    noack: *noack,
                };
                let wake = stream::group_reader_wake(&mut held, &waiter.keys, group, now);
                if wake == stream::Wake::Wait || !waiter.claim() {
                    continue;
                }
                if let stream::Wake::Fail(e) = wake {
                    out.error(&e.to_string());
                } else {
                    stream::reply_group_read(&mut held, &mut out, &waiter.keys, &read, now);
                }
                waiter.complete(out.buf);
            }
            _ => {}
        }
    }
    true
}

/// Ends a wait: removes the waiter from every queue it is still in. Called by the waiting connection.
pub fn end_wait(server: &ServerState, waiter: &Arc<Waiter>) {
    let mut idx = waiter.shards.clone();
    idx.sort_unstable();
    idx.dedup();
    let mut shards = server.store.lock(&idx);
    for (key, &shard) in waiter.keys.iter().zip(&waiter.shards) {
        shards.shard(shard).blocked.remove(waiter.db, key, waiter);
    }
    server.store.unlock(shards);
}

/// The reply of a wait that timed out (or was unblocked with TIMEOUT): a null array, as Redis (WAIT: the replicas
/// that acknowledged, none).
pub fn timeout_reply(op: &BlockOp, resp3: bool) -> Vec<u8> {
    let mut out = Reply::scratch(resp3);
    match op {
        BlockOp::Wait => out.int(0),
        _ => out.null_array(),
    }
    out.buf
}

/// CLIENT UNBLOCK: completes `waiter` as a timeout or with the UNBLOCKED error. False if it was already completing.
pub fn unblock(waiter: &Waiter, with_error: bool) -> bool {
    if !waiter.claim() {
        return false;
    }
    let reply = if with_error {
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec()
    } else {
        timeout_reply(&waiter.op, waiter.resp3)
    };
    waiter.complete(reply);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_take_the_exact_fast_path() {
        for (arg, ms) in [
            ("0", 0),
            ("5", 5000),
            ("0.25", 250),
            ("0.0011", 2),
            ("1.", 1000),
            ("0.001", 1),
        ] {
            assert_eq!(plain_decimal_ms(arg.as_bytes()), Some(ms), "{arg}");
        }
        for arg in ["-1", "1e3", "inf", "", ".5", "0x10", "1234567890"] {
            assert_eq!(plain_decimal_ms(arg.as_bytes()), None, "{arg}");
        }
        assert_eq!(
            parse_timeout(b"0.25", 0).unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_timeout(b"0", 0).unwrap(), None);
        assert_eq!(
            parse_timeout(b".5", 0).unwrap(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_timeout(b"-0.5", 0).unwrap_err().to_string(),
            "ERR timeout is negative"
        );
    }

    #[test]
    fn a_deadline_past_the_largest_millisecond_is_out_of_range() {
        let now = 1_800_000_000_000;
        let out_of_range = "ERR timeout is out of range";
        // 9223372036854000 s: below i64::MAX milliseconds, but not once now is added.
        assert!(parse_timeout(b"9223372036854000", 0).unwrap().is_some());
        assert_eq!(
            parse_timeout(b"9223372036854000", now)
                .unwrap_err()
                .to_string(),
            out_of_range
        );
        assert_eq!(
            parse_timeout(b"9223372036854776", 0)
                .unwrap_err()
                .to_string(),
            out_of_range
        );
        assert!(parse_timeout(b"1e15", now).unwrap().is_some());
        let max = i64::MAX.to_string();
        assert_eq!(
            parse_timeout_ms(max.as_bytes(), 0).unwrap(),
            Some(Duration::from_millis(i64::MAX as u64))
        );
        assert_eq!(
            parse_timeout_ms(max.as_bytes(), now)
                .unwrap_err()
                .to_string(),
            out_of_range
        );
        assert_eq!(parse_timeout_ms(b"0", now).unwrap(), None);
        assert_eq!(
            parse_timeout_ms(b"-1", now).unwrap_err().to_string(),
            "ERR timeout is negative"
        );
        assert_eq!(
            parse_timeout_ms(b"1.5", now).unwrap_err().to_string(),
            "ERR timeout is not an integer or out of range"
        );
    }
}
