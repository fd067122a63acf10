//! Generic key commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, KEYS, SCAN, RANDOMKEY, RENAME, RENAMENX, COPY, MOVE, the
//! EXPIRE and TTL families, PERSIST and OBJECT.
//!
//! Whole-keyspace commands (KEYS, SCAN, RANDOMKEY) hold every shard. A SCAN cursor is a position in the walk over
//! (shard, scan bucket) pairs: `shard * SCAN_BUCKETS + bucket`. Each call returns whole buckets, and a key never
//! changes bucket or shard, so a scan returns every key that exists from its start to its end at least once.

use super::args::{self, is, Cursor, ScanOpts};
use super::{flag::*, reply_help, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::glob;
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::store::listpack::listpack_bytes;
use crate::store::{Entry, Locked, Value, SCAN_BUCKETS};

/// The key of an OBJECT (or MEMORY USAGE) subcommand.
pub(super) const KEY2: Keys = Keys::Range {
    first: 2,
    last: 2,
    step: 1,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, Keys::ALL, del),
    CommandSpec::new("unlink", -2, WRITE | FAST, Keys::ALL, del),
    CommandSpec::new("exists", -2, READONLY | FAST, Keys::ALL, exists),
    CommandSpec::new("touch", -2, READONLY | FAST, Keys::ALL, exists),
    CommandSpec::new("type", 2, READONLY | FAST, Keys::FIRST, type_of),
    CommandSpec::new("keys", 2, READONLY | ALL_SHARDS, Keys::None, keys),
    CommandSpec::new("scan", -2, READONLY | ALL_SHARDS, Keys::None, scan),
    CommandSpec::new("randomkey", 1, READONLY | ALL_SHARDS, Keys::None, randomkey),
    CommandSpec::new("rename", 3, WRITE, Keys::FIRST_TWO, rename),
    CommandSpec::new("renamenx", 3, WRITE | FAST, Keys::FIRST_TWO, renamenx),
    CommandSpec::new("copy", -3, WRITE | DENYOOM, Keys::FIRST_TWO, copy),
    CommandSpec::new("move", 3, WRITE | FAST, Keys::FIRST, move_key),
    CommandSpec::new("expire", -3, WRITE | FAST, Keys::FIRST, expire),
    CommandSpec::new("pexpire", -3, WRITE | FAST, Keys::FIRST, pexpire),
    CommandSpec::new("expireat", -3, WRITE | FAST, Keys::FIRST, expireat),
    CommandSpec::new("pexpireat", -3, WRITE | FAST, Keys::FIRST, pexpireat),
    CommandSpec::new("ttl", 2, READONLY | FAST, Keys::FIRST, ttl),
    CommandSpec::new("pttl", 2, READONLY | FAST, Keys::FIRST, pttl),
    CommandSpec::new("expiretime", 2, READONLY | FAST, Keys::FIRST, expiretime),
    CommandSpec::new("pexpiretime", 2, READONLY | FAST, Keys::FIRST, pexpiretime),
    CommandSpec::new("persist", 2, WRITE | FAST, Keys::FIRST, persist),
    CommandSpec::container("object", 0, OBJECT_SUBCOMMANDS),
];

const OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("encoding", 3, READONLY, KEY2, object_encoding),
    CommandSpec::new("freq", 3, READONLY, KEY2, object_freq),
    CommandSpec::new("idletime", 3, READONLY, KEY2, object_idletime),
    CommandSpec::new("refcount", 3, READONLY, KEY2, object_refcount),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, object_help),
];

/// Redis's `shared.sameobjecterr`.
fn same_object() -> CmdError {
    CmdError::err("source and destination objects are the same")
}

/// DEL and UNLINK (values are freed in place: there is no background freeing to hand them to).
fn del(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut n = 0;
    for key in argv.iter_from(1) {
        let now = ctx.now;
        if ctx.db(key).remove(key, now).is_some() {
            n += 1;
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// EXISTS and TOUCH: how many of the arguments exist, counting a repeated key each time.
fn exists(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut n = 0;
    for key in argv.iter_from(1) {
        let now = ctx.now;
        n += ctx.db(key).get(key, now).is_some() as i64;
    }
    ctx.out.int(n);
    Ok(())
}

fn type_of(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let name = ctx
        .db(key)
        .get(key, now)
        .map_or("none", |e| e.value.type_name());
    ctx.out.simple(name);
    Ok(())
}

fn reply_keys(out: &mut Reply, keys: &[&[u8]]) {
    out.array(keys.len());
    for key in keys {
        out.bulk(key);
    }
}

fn keys(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let pattern = argv.get(1);
    let every = pattern == b"*";
    let (db, now) = (ctx.client.db, ctx.now);
    let mut found = Vec::new();
    for shard in ctx.shards.all() {
        let shard = &*shard;
        found.extend(
            shard.dbs[db]
                .iter(now)
                .map(Entry::key)
                .filter(|k| every || glob::matches(pattern, k, false)),
        );
    }
    reply_keys(ctx.out, &found);
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. COUNT is, as in Redis, the work per call: the walk goes
/// on over buckets and shards until it has visited at least COUNT keys (before MATCH and TYPE filter them) or reaches
/// the end, where the returned cursor is 0. A cursor past the end (never returned by us) ends the scan at once.
fn scan(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let cursor = args::scan_cursor(argv.get(1))?;
    let ScanOpts {
        count,
        pattern,
        type_name,
    } = ScanOpts::parse(argv, 2, true)?;
    let filter = ScanFilter { pattern, type_name };
    let (db, now) = (ctx.client.db, ctx.now);
    let end = (ctx.server.store.shard_count() * SCAN_BUCKETS) as u64;
    let (next, found) = match usize::try_from(cursor) {
        Ok(start) if cursor < end => scan_from(ctx.shards, db, now, start, count, &filter),
        _ => (0, Vec::new()),
    };
    ctx.out.array(2);
    ctx.out.bulk_int(next as i64);
    reply_keys(ctx.out, &found);
    Ok(())
}

/// What SCAN's MATCH and TYPE options keep.
struct ScanFilter<'a> {
    pattern: Option<&'a [u8]>,
    type_name: Option<&'a [u8]>,
}

impl ScanFilter<'_> {
    fn keeps(&self, entry: &Entry) -> bool {
        self.pattern
            .is_none_or(|p| glob::matches(p, entry.key(), false))
            && self
                .type_name
                .is_none_or(|t| is(t, entry.value.type_name()))
    }
}

/// Walks whole buckets of database `db` from position `start` until `count` keys were visited, deleting the expired
/// keys it meets (as Redis's SCAN does); returns the next position (0 at the end) and the keys `filter` keeps.
/// `shards` must hold every shard.
fn scan_from<'s>(
    shards: &'s mut Locked<'_>,
    db: usize,
    now: u64,
    start: usize,
    count: i64,
    filter: &ScanFilter,
) -> (usize, Vec<&'s [u8]>) {
    // With every shard held, `all()` yields shard i at position i. First the buckets to visit, reclaimed; then the keys.
    let mut visited = 0;
    let mut next = 0;
    'walk: for (idx, shard) in shards.all().enumerate().skip(start / SCAN_BUCKETS) {
        let (keyspace, first) = (&mut shard.dbs[db], idx * SCAN_BUCKETS);
        for pos in start.max(first)..first + SCAN_BUCKETS {
            if visited >= count {
                next = pos;
                break 'walk;
            }
            keyspace.reclaim_bucket(pos - first, now);
            visited += keyspace.bucket(pos - first, now).count() as i64;
        }
    }
    let end = if next == 0 { usize::MAX } else { next };
    let mut found = Vec::new();
    for (idx, shard) in shards.all().enumerate().skip(start / SCAN_BUCKETS) {
        let (keyspace, first) = (&shard.dbs[db], idx * SCAN_BUCKETS);
        for pos in start.max(first)..(first + SCAN_BUCKETS).min(end) {
            let kept = keyspace
                .bucket(pos - first, now)
                .filter(|e| filter.keeps(e));
            found.extend(kept.map(Entry::key));
        }
    }
    (next, found)
}

/// RANDOMKEY: a shard chosen with probability proportional to its size, then a random key in it.
fn randomkey(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let (db, now) = (ctx.client.db, ctx.now);
    let mut candidates: Vec<_> = ctx
        .shards
        .all()
        .map(|s| &mut s.dbs[db])
        .filter(|ks| !ks.is_empty())
        .collect();
    // Sizes count expired keys not yet reclaimed; a shard that turns out to hold only those drops out.
    while !candidates.is_empty() {
        let total: usize = candidates.iter().map(|ks| ks.len()).sum();
        let mut pick = fastrand::usize(..total);
        let i = candidates
            .iter()
            .position(|ks| {
                let hit = pick < ks.len();
                pick = pick.saturating_sub(ks.len());
                hit
            })
            .unwrap_or(0);
        match candidates[i].random_key(now) {
            Some(key) => {
                ctx.out.bulk(&key);
                return Ok(());
            }
            None => {
                candidates.swap_remove(i);
            }
        }
    }
    ctx.out.null();
    Ok(())
}

/// Moves `argv[1]` to `argv[2]` with its deadline. Returns false (and changes nothing) when `only_new` and the
/// destination exists; renaming a key to itself succeeds without change.
fn rename_key(ctx: &mut Ctx, argv: Argv, only_new: bool) -> Result<bool, CmdError> {
    let (src, dst, now) = (argv.get(1), argv.get(2), ctx.now);
    if !ctx.db(src).contains(src, now) {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        return Ok(!only_new);
    }
    if only_new && ctx.db(dst).contains(dst, now) {
        return Ok(false);
    }
    let entry = ctx.db(src).remove(src, now).ok_or(CmdError::NoSuchKey)?;
    let deadline = entry.expires_at();
    // Redis deletes an existing destination and adds the key anew, which announces it as `new`.
    ctx.db(dst).remove(dst, now);
    ctx.db(dst).insert(dst, entry.value, deadline);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    Ok(true)
}

fn rename(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    rename_key(ctx, argv, false)?;
    ctx.out.ok();
    Ok(())
}

fn renamenx(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let renamed = rename_key(ctx, argv, true)?;
    ctx.out.int(renamed as i64);
    Ok(())
}

/// A database index argument as MOVE and COPY ... DB take it: a 32-bit integer naming an existing database.
fn db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, CmdError> {
    let n = args::int(arg)?;
    if i32::try_from(n).is_err() {
        return Err(CmdError::err(
            "value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    usize::try_from(n)
        .ok()
        .filter(|&db| db < ctx.server.config.databases)
        .ok_or(CmdError::DbIndex)
}

/// COPY source destination [DB destination-db] [REPLACE]: the value and its deadline.
fn copy(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (src, dst, now) = (argv.get(1), argv.get(2), ctx.now);
    let (mut target_db, mut replace) = (ctx.client.db, false);
    let mut opts = Cursor::new(argv, 3);
    while let Some(opt) = opts.next() {
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "DB") && opts.remaining() > 0 {
            target_db = db_index(ctx, opts.value()?)?;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if target_db == ctx.client.db && src == dst {
        return Err(same_object());
    }
    let Some(entry) = ctx.db(src).get(src, now) else {
        ctx.out.int(0);
        return Ok(());
    };
    let (value, deadline) = (entry.value.clone(), entry.expires_at());
    let target = ctx.db_in(dst, target_db);
    let copied = replace || !target.contains(dst, now);
    if copied {
        // Replaced as Redis does it (delete, then add), so the key is announced as `new`.
        target.remove(dst, now);
        target.insert(dst, value, deadline);
        ctx.notify_in(notify::GENERIC, "copy_to", dst, target_db);
    }
    ctx.out.int(copied as i64);
    Ok(())
}

/// MOVE key db: to another database of the same shard, unless the key exists there.
fn move_key(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let target_db = db_index(ctx, argv.get(2))?;
    if target_db == ctx.client.db {
        return Err(same_object());
    }
    let moved = !ctx.db_in(key, target_db).contains(key, now)
        && match ctx.db(key).remove(key, now) {
            Some(entry) => {
                let deadline = entry.expires_at();
                ctx.db_in(key, target_db).insert(key, entry.value, deadline);
                ctx.notify(notify::GENERIC, "move_from", key);
                ctx.notify_in(notify::GENERIC, "move_to", key, target_db);
                true
            }
            None => false,
        };
    ctx.out.int(moved as i64);
    Ok(())
}

/// The NX | XX | GT | LT conditions of the EXPIRE family.
#[derive(Default)]
struct ExpireCondition {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl ExpireCondition {
    /// Parses the options after the time, as Redis's `parseExtendedExpireArgumentsOrReply`.
    fn parse(argv: Argv) -> Result<Self, CmdError> {
        let mut c = ExpireCondition::default();
        for opt in Cursor::new(argv, 3) {
            let flag = if is(opt, "NX") {
                &mut c.nx
            } else if is(opt, "XX") {
                &mut c.xx
            } else if is(opt, "GT") {
                &mut c.gt
            } else if is(opt, "LT") {
                &mut c.lt
            } else {
                return Err(CmdError::err(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(args::c_str(opt))
                )));
            };
            *flag = true;
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(CmdError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(CmdError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// True when a key whose deadline is `current` may get deadline `when` (no deadline counts as infinite).
    fn allows(&self, current: Option<i64>, when: i64) -> bool {
        !(self.nx && current.is_some()
            || self.xx && current.is_none()
            || self.gt && current.is_none_or(|c| when <= c)
            || self.lt && current.is_some_and(|c| when >= c))
    }
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: the time in `unit_ms` milliseconds, added to `now` when `relative`.
/// Negative times are allowed (Redis does); only overflow is an error. A deadline not after `now` deletes the key.
fn expire_generic(
    ctx: &mut Ctx,
    argv: Argv,
    unit_ms: i64,
    relative: bool,
    name: &str,
) -> CmdResult {
    let condition = ExpireCondition::parse(argv)?;
    let n = args::int(argv.get(2))?;
    let (key, now) = (argv.get(1), ctx.now);
    let base = if relative { now as i64 } else { 0 };
    let when = n
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base))
        .ok_or_else(|| CmdError::err(format!("invalid expire time in '{name}' command")))?;
    let (db, out) = ctx.db_out(key);
    let Some(entry) = db.find(key, now) else {
        out.int(0);
        return Ok(());
    };
    let current = entry.expires_at().map(|at| at as i64);
    if !condition.allows(current, when) {
        out.int(0);
        return Ok(());
    }
    let event = if when <= now as i64 {
        db.remove(key, now);
        "del"
    } else {
        db.set_expiry(key, Some(when as u64), now);
        "expire"
    };
    out.int(1);
    ctx.notify(notify::GENERIC, event, key);
    Ok(())
}

fn expire(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    expire_generic(ctx, argv, 1000, true, "expire")
}

fn pexpire(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    expire_generic(ctx, argv, 1, true, "pexpire")
}

fn expireat(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    expire_generic(ctx, argv, 1000, false, "expireat")
}

fn pexpireat(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    expire_generic(ctx, argv, 1, false, "pexpireat")
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 without the key, -1 without a deadline, else the time left (`absolute`:
/// the deadline), in milliseconds or in seconds rounded to the nearest as Redis does.
fn ttl_generic(ctx: &mut Ctx, argv: Argv, in_ms: bool, absolute: bool) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let reply = match ctx.db(key).get(key, now) {
        None => -2,
        Some(entry) => match entry.expires_at() {
            None => -1,
            Some(at) => {
                // Deadlines come from non-negative i64 values, so the rounding below cannot overflow a u64.
                let ms = if absolute { at } else { at.saturating_sub(now) };
                (if in_ms { ms } else { (ms + 500) / 1000 }) as i64
            }
        },
    };
    ctx.out.int(reply);
    Ok(())
}

fn ttl(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    ttl_generic(ctx, argv, false, false)
}

fn pttl(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    ttl_generic(ctx, argv, true, false)
}

fn expiretime(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    ttl_generic(ctx, argv, false, true)
}

fn pexpiretime(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    ttl_generic(ctx, argv, true, true)
}

fn persist(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let db = ctx.db(key);
    let had_deadline = db.find(key, now).is_some_and(|e| e.expires_at().is_some());
    if had_deadline {
        db.set_expiry(key, None, now);
        ctx.notify(notify::GENERIC, "persist", key);
    }
    ctx.out.int(had_deadline as i64);
    Ok(())
}

/// Runs `f` on the entry of an OBJECT subcommand's key, or replies null when there is none.
fn with_object(
    ctx: &mut Ctx,
    argv: Argv,
    f: impl FnOnce(&Entry, &mut Reply) -> CmdResult,
) -> CmdResult {
    let (key, now) = (argv.get(2), ctx.now);
    let (db, out) = ctx.db_out(key);
    match db.inspect(key, now) {
        Some(entry) => f(entry, out),
        None => {
            out.null();
            Ok(())
        }
    }
}

/// Redis keeps strings up to this length in one allocation with the object header (`embstr`).
const EMBSTR_SIZE_LIMIT: usize = 44;

/// Redis's default `list-max-listpack-size -2`: a list stays one listpack up to 8 KiB.
const LIST_MAX_LISTPACK_BYTES: usize = 8 * 1024;

/// Integers Redis shares between keys (`OBJ_SHARED_INTEGERS`); their refcount reads as `INT_MAX`.
const SHARED_INTEGERS: i64 = 10_000;

/// The integer a string value is stored as under Redis's `int` encoding, if any.
fn as_int(s: &[u8]) -> Option<i64> {
    (s.len() <= 20).then(|| args::parse_i64(s)).flatten()
}

/// OBJECT ENCODING's name for a value, by the rules Redis applies when it stores one.
fn encoding(value: &Value) -> &'static str {
    match value {
        Value::Str(s) if as_int(s).is_some() => "int",
        Value::Str(s) if s.len() <= EMBSTR_SIZE_LIMIT => "embstr",
        Value::Str(_) => "raw",
        // Every entry takes at least 2 bytes, so the first half-limit elements decide (a long list is not walked).
        Value::List(items)
            if listpack_bytes(items.iter().take(LIST_MAX_LISTPACK_BYTES / 2))
                <= LIST_MAX_LISTPACK_BYTES =>
        {
            "listpack"
        }
        Value::List(_) => "quicklist",
        Value::Hash(h) => h.encoding(),
        Value::Set(s) => s.encoding(),
        Value::ZSet(z) => z.encoding(),
        Value::Stream(_) => "stream",
    }
}

fn object_encoding(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    with_object(ctx, argv, |entry, out| {
        out.bulk(encoding(&entry.value).as_bytes());
        Ok(())
    })
}

/// Access frequency is tracked only under an LFU maxmemory policy, and ringkv has no eviction policies.
fn object_freq(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    with_object(ctx, argv, |_, _| {
        Err(CmdError::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching \
             between policies at runtime LRU and LFU data will take some time to adjust.",
        ))
    })
}

/// Access times are not tracked (no LRU eviction), so every key reads as just used.
fn object_idletime(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    with_object(ctx, argv, |_, out| {
        out.int(0);
        Ok(())
    })
}

/// Values are never shared, but Redis shares small integers and reports them as `INT_MAX`; so do we.
fn object_refcount(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    with_object(ctx, argv, |entry, out| {
        let shared = matches!(&entry.value, Value::Str(s)
            if as_int(s).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n)));
        out.int(if shared { i32::MAX as i64 } else { 1 });
        Ok(())
    })
}

fn object_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cmd::testing::{int, TestClient};

    /// The bulk strings of a flat array reply, in order.
    fn bulks(reply: &str) -> Vec<String> {
        let mut lines = reply.split("\r\n").skip(1);
        let mut out = Vec::new();
        while let (Some(len), Some(s)) = (lines.next(), lines.next()) {
            assert!(len.starts_with('$'), "not a bulk: {len:?} in {reply:?}");
            out.push(s.to_string());
        }
        out
    }

    /// One SCAN call: the next cursor and the keys.
    fn scan_once(c: &mut TestClient, args: &str) -> (u64, Vec<String>) {
        let reply = c.cmd(format!("SCAN {args}").trim_end());
        let rest = reply.strip_prefix("*2\r\n").expect("two-element reply");
        let mut parts = rest.splitn(3, "\r\n");
        let (_, cursor, keys) = (parts.next(), parts.next(), parts.next());
        let cursor = cursor.and_then(|c| c.parse().ok()).expect("cursor");
        (cursor, bulks(keys.expect("keys array")))
    }

    /// Every key a full scan returns, with how many times.
    fn full_scan(c: &mut TestClient, options: &str) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = scan_once(c, &format!("{cursor} {options}"));
            for k in keys {
                *seen.entry(k).or_default() += 1;
            }
            if next == 0 {
                return seen;
            }
            cursor = next;
        }
    }

    /// Stores `value` under `key` in database 0 straight through the store (for values no command here creates).
    fn put(c: &TestClient, key: &str, value: Value) {
        let store = &c.server.store;
        store.lock_shard(store.shard_of(key.as_bytes())).dbs[0].insert(key.as_bytes(), value, None);
    }

    fn list(items: &[&[u8]]) -> Value {
        Value::List(items.iter().map(|i| i.to_vec()).collect())
    }

    #[test]
    fn del_and_unlink_count_the_keys_they_removed() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        c.cmd("SET b 2");
        c.cmd("SET c 3");
        assert_eq!(c.cmd("DEL a a nosuch"), ":1\r\n");
        assert_eq!(c.cmd("UNLINK b c"), ":2\r\n");
        assert_eq!(c.cmd("EXISTS a b c"), ":0\r\n");
        assert_eq!(
            c.cmd("UNLINK"),
            "-ERR wrong number of arguments for 'unlink' command\r\n"
        );
    }

    #[test]
    fn exists_and_touch_count_a_repeated_key_each_time() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        assert_eq!(c.cmd("EXISTS a a nosuch a"), ":3\r\n");
        assert_eq!(c.cmd("TOUCH a nosuch a"), ":2\r\n");
        assert_eq!(
            c.cmd("TOUCH"),
            "-ERR wrong number of arguments for 'touch' command\r\n"
        );
    }

    #[test]
    fn type_names_the_value_kind_or_none() {
        let mut c = TestClient::new();
        c.cmd("SET s v");
        put(&c, "l", list(&[b"x"]));
        assert_eq!(c.cmd("TYPE s"), "+string\r\n");
        assert_eq!(c.cmd("TYPE l"), "+list\r\n");
        assert_eq!(c.cmd("TYPE nosuch"), "+none\r\n");
    }

    #[test]
    fn keys_matches_glob_patterns_over_every_shard() {
        let mut c = TestClient::new();
        for k in ["hello", "hallo", "hxllo", "world", "h*llo"] {
            c.cmd(&format!("SET {k} 1"));
        }
        let sorted = |reply: String| {
            let mut keys = bulks(&reply);
            keys.sort();
            keys
        };
        assert_eq!(sorted(c.cmd("KEYS *")).len(), 5);
        assert_eq!(sorted(c.cmd("KEYS h[ae]llo")), ["hallo", "hello"]);
        assert_eq!(sorted(c.cmd("KEYS h[^e]llo")), ["h*llo", "hallo", "hxllo"]);
        assert_eq!(sorted(c.cmd("KEYS h\\*llo")), ["h*llo"]);
        assert_eq!(sorted(c.cmd("KEYS w?rld")), ["world"]);
        assert_eq!(c.cmd("KEYS nomatch*"), "*0\r\n");
    }

    #[test]
    fn keys_and_scan_see_only_the_selected_database() {
        let mut c = TestClient::new();
        c.cmd("SET zero 1");
        c.cmd("SELECT 1");
        c.cmd("SET one 1");
        assert_eq!(bulks(&c.cmd("KEYS *")), ["one"]);
        assert_eq!(
            full_scan(&mut c, "").into_keys().collect::<Vec<_>>(),
            ["one"]
        );
    }

    #[test]
    fn a_full_scan_returns_every_key_exactly_once_when_nothing_changes() {
        let mut c = TestClient::new();
        for i in 0..500 {
            c.cmd(&format!("SET key:{i} {i}"));
        }
        let seen = full_scan(&mut c, "COUNT 7");
        assert_eq!(seen.len(), 500);
        assert!(seen.values().all(|&n| n == 1));
    }

    #[test]
    fn scan_returns_at_least_count_keys_while_more_remain() {
        let mut c = TestClient::new();
        for i in 0..300 {
            c.cmd(&format!("SET key:{i} {i}"));
        }
        let (mut cursor, mut total) = (0, 0);
        loop {
            let (next, keys) = scan_once(&mut c, &format!("{cursor} COUNT 50"));
            total += keys.len();
            if next == 0 {
                break;
            }
            assert!(keys.len() >= 50, "only {} keys before the end", keys.len());
            cursor = next;
        }
        assert_eq!(total, 300);
        let (next, keys) = scan_once(&mut c, "0 COUNT 1000");
        assert_eq!((next, keys.len()), (0, 300));
    }

    #[test]
    fn scan_filters_by_match_and_type() {
        let mut c = TestClient::new();
        for i in 0..50 {
            c.cmd(&format!("SET user:{i} x"));
            c.cmd(&format!("SET item:{i} x"));
        }
        put(&c, "user:list", list(&[b"a"]));
        let users = full_scan(&mut c, "MATCH user:* COUNT 5");
        assert_eq!(users.len(), 51);
        assert!(users.keys().all(|k| k.starts_with("user:")));
        let lists = full_scan(&mut c, "TYPE LIST");
        assert_eq!(lists.into_keys().collect::<Vec<_>>(), ["user:list"]);
        let strings = full_scan(&mut c, "MATCH * TYPE string");
        assert_eq!(strings.len(), 100);
        assert!(full_scan(&mut c, "TYPE nosuchtype").is_empty());
    }

    #[test]
    fn scan_cursor_and_option_errors_read_like_redis() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        for bad in ["abc", "1x", "+", "18446744073709551616"] {
            assert_eq!(c.run(&["SCAN", bad]), "-ERR invalid cursor\r\n", "{bad}");
        }
        assert_eq!(c.run(&["SCAN", " 1"]), "-ERR invalid cursor\r\n");
        // The cursor is checked before the options.
        assert_eq!(c.cmd("SCAN x COUNT 0"), "-ERR invalid cursor\r\n");
        assert_eq!(c.cmd("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("SCAN 0 COUNT -1"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("SCAN 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(c.cmd("SCAN 0 MATCH"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("SCAN 0 foo bar"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("SCAN"),
            "-ERR wrong number of arguments for 'scan' command\r\n"
        );
    }

    #[test]
    fn scan_accepts_what_strtoul_accepts_and_ends_past_the_last_position() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        // Empty and "+0" are cursor 0: a fresh scan.
        assert_eq!(c.run(&["SCAN", ""]), "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n");
        assert_eq!(c.cmd("SCAN +0"), "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n");
        // "-1" wraps to the largest cursor, past the end like any cursor we never returned.
        assert_eq!(c.cmd("SCAN -1"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(
            c.cmd("SCAN 18446744073709551615"),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
    }

    #[test]
    fn scan_skips_expired_keys_and_deletes_those_it_meets() {
        let mut c = TestClient::new();
        c.cmd("SET live 1");
        c.cmd("SET gone 1 PX 1");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(c.cmd("DBSIZE"), ":2\r\n", "not reclaimed yet");
        assert_eq!(bulks(&c.cmd("KEYS *")), ["live"]);
        assert_eq!(
            full_scan(&mut c, "").into_keys().collect::<Vec<_>>(),
            ["live"]
        );
        assert_eq!(
            c.cmd("DBSIZE"),
            ":1\r\n",
            "SCAN deleted it, as Redis's does"
        );
    }

    #[test]
    fn randomkey_returns_a_live_key_or_null() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("RANDOMKEY"), "$-1\r\n");
        c.cmd("SET gone 1 PX 1");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(c.cmd("RANDOMKEY"), "$-1\r\n");
        for k in ["a", "b", "c"] {
            c.cmd(&format!("SET {k} 1"));
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(bulks(&format!("*1\r\n{}", c.cmd("RANDOMKEY"))).remove(0));
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(
            c.cmd("RANDOMKEY x"),
            "-ERR wrong number of arguments for 'randomkey' command\r\n"
        );
    }

    #[test]
    fn rename_moves_the_value_and_its_deadline_over_any_destination() {
        let mut c = TestClient::new();
        c.cmd("SET src v EX 100");
        c.cmd("SET dst old");
        assert_eq!(c.cmd("RENAME src dst"), "+OK\r\n");
        assert_eq!(c.cmd("GET dst"), "$1\r\nv\r\n");
        assert_eq!(c.cmd("TTL dst"), ":100\r\n");
        assert_eq!(c.cmd("EXISTS src"), ":0\r\n");
        // A destination with a deadline loses it to the source's (none).
        c.cmd("SET plain p");
        assert_eq!(c.cmd("RENAME plain dst"), "+OK\r\n");
        assert_eq!(c.cmd("TTL dst"), ":-1\r\n");
    }

    #[test]
    fn rename_errors_and_same_key() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("RENAME nosuch x"), "-ERR no such key\r\n");
        assert_eq!(c.cmd("RENAME nosuch nosuch"), "-ERR no such key\r\n");
        assert_eq!(c.cmd("RENAMENX nosuch x"), "-ERR no such key\r\n");
        c.cmd("SET a 1 EX 50");
        assert_eq!(c.cmd("RENAME a a"), "+OK\r\n");
        assert_eq!(c.cmd("TTL a"), ":50\r\n");
        assert_eq!(c.cmd("RENAMENX a a"), ":0\r\n");
        assert_eq!(
            c.cmd("RENAME a"),
            "-ERR wrong number of arguments for 'rename' command\r\n"
        );
    }

    #[test]
    fn renamenx_refuses_an_existing_destination() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        c.cmd("SET b 2");
        assert_eq!(c.cmd("RENAMENX a b"), ":0\r\n");
        assert_eq!(c.cmd("GET b"), "$1\r\n2\r\n");
        assert_eq!(c.cmd("RENAMENX a c"), ":1\r\n");
        assert_eq!(c.cmd("GET c"), "$1\r\n1\r\n");
        assert_eq!(c.cmd("EXISTS a"), ":0\r\n");
    }

    #[test]
    fn copy_duplicates_value_and_deadline_unless_the_destination_exists() {
        let mut c = TestClient::new();
        c.cmd("SET src v EX 100");
        assert_eq!(c.cmd("COPY src dst"), ":1\r\n");
        assert_eq!(c.cmd("GET dst"), "$1\r\nv\r\n");
        assert_eq!(c.cmd("TTL dst"), ":100\r\n");
        assert_eq!(c.cmd("GET src"), "$1\r\nv\r\n");
        c.cmd("SET other o");
        assert_eq!(c.cmd("COPY other dst"), ":0\r\n");
        assert_eq!(c.cmd("GET dst"), "$1\r\nv\r\n");
        assert_eq!(c.cmd("COPY other dst replace"), ":1\r\n");
        assert_eq!(c.cmd("GET dst"), "$1\r\no\r\n");
        assert_eq!(c.cmd("TTL dst"), ":-1\r\n");
        assert_eq!(c.cmd("COPY nosuch dst REPLACE"), ":0\r\n");
    }

    #[test]
    fn copy_db_writes_into_another_database() {
        let mut c = TestClient::new();
        c.cmd("SET k v");
        assert_eq!(c.cmd("COPY k k DB 1"), ":1\r\n");
        assert_eq!(c.cmd("COPY k k DB 1"), ":0\r\n");
        assert_eq!(c.cmd("COPY k other DB 2 REPLACE"), ":1\r\n");
        assert_eq!(c.cmd("EXISTS other"), ":0\r\n");
        c.cmd("SELECT 1");
        assert_eq!(c.cmd("GET k"), "$1\r\nv\r\n");
        c.cmd("SELECT 2");
        assert_eq!(c.cmd("GET other"), "$1\r\nv\r\n");
    }

    #[test]
    fn copy_errors_read_like_redis() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        let same = "-ERR source and destination objects are the same\r\n";
        assert_eq!(c.cmd("COPY a a"), same);
        assert_eq!(c.cmd("COPY a a DB 0"), same);
        assert_eq!(c.cmd("COPY a b DB"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("COPY a b foo"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("COPY a b DB x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(c.cmd("COPY a b DB 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(c.cmd("COPY a b DB -1"), "-ERR DB index is out of range\r\n");
        // The database is checked before the key.
        assert_eq!(
            c.cmd("COPY nosuch b DB 99"),
            "-ERR DB index is out of range\r\n"
        );
        assert_eq!(
            c.cmd("COPY a b DB 99999999999"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
    }

    #[test]
    fn move_takes_the_key_with_its_deadline_to_another_database() {
        let mut c = TestClient::new();
        c.cmd("SET k v EX 100");
        assert_eq!(c.cmd("MOVE k 3"), ":1\r\n");
        assert_eq!(c.cmd("EXISTS k"), ":0\r\n");
        assert_eq!(c.cmd("MOVE k 3"), ":0\r\n");
        c.cmd("SELECT 3");
        assert_eq!(c.cmd("GET k"), "$1\r\nv\r\n");
        assert_eq!(c.cmd("TTL k"), ":100\r\n");
        // A key that exists in the target stays where it is.
        c.cmd("SELECT 0");
        c.cmd("SET k mine");
        assert_eq!(c.cmd("MOVE k 3"), ":0\r\n");
        assert_eq!(c.cmd("GET k"), "$4\r\nmine\r\n");
    }

    #[test]
    fn move_errors_read_like_redis() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        assert_eq!(
            c.cmd("MOVE a 0"),
            "-ERR source and destination objects are the same\r\n"
        );
        assert_eq!(
            c.cmd("MOVE a x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(c.cmd("MOVE a 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(c.cmd("MOVE a -1"), "-ERR DB index is out of range\r\n");
        assert_eq!(
            c.cmd("MOVE a 99999999999"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
    }

    #[test]
    fn expire_family_sets_deadlines_in_each_unit() {
        let mut c = TestClient::new();
        for k in ["a", "b", "c", "d"] {
            c.cmd(&format!("SET {k} 1"));
        }
        assert_eq!(c.cmd("EXPIRE a 100"), ":1\r\n");
        assert_eq!(c.cmd("TTL a"), ":100\r\n");
        assert_eq!(c.cmd("PEXPIRE b 100000"), ":1\r\n");
        assert!((99_000..=100_000).contains(&int(&c.cmd("PTTL b"))));
        assert_eq!(c.cmd("EXPIREAT c 4102444800"), ":1\r\n");
        assert_eq!(c.cmd("EXPIRETIME c"), ":4102444800\r\n");
        assert_eq!(c.cmd("PEXPIREAT d 4102444800123"), ":1\r\n");
        assert_eq!(c.cmd("PEXPIRETIME d"), ":4102444800123\r\n");
        assert_eq!(c.cmd("EXPIRETIME d"), ":4102444800\r\n");
        assert_eq!(c.cmd("EXPIRE nosuch 100"), ":0\r\n");
    }

    #[test]
    fn a_deadline_not_in_the_future_deletes_the_key_and_replies_one() {
        let mut c = TestClient::new();
        for k in ["a", "b", "c", "d"] {
            c.cmd(&format!("SET {k} 1"));
        }
        assert_eq!(c.cmd("EXPIRE a -1"), ":1\r\n");
        assert_eq!(c.cmd("PEXPIRE b 0"), ":1\r\n");
        assert_eq!(c.cmd("EXPIREAT c 1"), ":1\r\n");
        assert_eq!(c.cmd("PEXPIREAT d -5"), ":1\r\n");
        assert_eq!(c.cmd("EXISTS a b c d"), ":0\r\n");
    }

    #[test]
    fn expire_conditions_compare_with_the_current_deadline() {
        let mut c = TestClient::new();
        c.cmd("SET k 1");
        assert_eq!(c.cmd("EXPIRE k 100 XX"), ":0\r\n");
        assert_eq!(
            c.cmd("EXPIRE k 100 GT"),
            ":0\r\n",
            "no deadline is infinite"
        );
        assert_eq!(c.cmd("EXPIRE k 100 NX"), ":1\r\n");
        assert_eq!(c.cmd("EXPIRE k 200 NX"), ":0\r\n");
        assert_eq!(c.cmd("EXPIRE k 50 GT"), ":0\r\n");
        assert_eq!(c.cmd("EXPIRE k 200 gt"), ":1\r\n");
        assert_eq!(c.cmd("EXPIRE k 300 LT"), ":0\r\n");
        assert_eq!(c.cmd("EXPIRE k 150 XX LT"), ":1\r\n");
        assert_eq!(c.cmd("TTL k"), ":150\r\n");
        c.cmd("PERSIST k");
        assert_eq!(c.cmd("EXPIRE k 100 LT"), ":1\r\n", "any deadline is less");
        assert_eq!(c.cmd("TTL k"), ":100\r\n");
    }

    #[test]
    fn expire_errors_read_like_redis() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        let nx = "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n";
        assert_eq!(c.cmd("EXPIRE a 10 NX XX"), nx);
        assert_eq!(c.cmd("EXPIRE a 10 LT NX"), nx);
        assert_eq!(
            c.cmd("EXPIRE a 10 GT LT"),
            "-ERR GT and LT options at the same time are not compatible\r\n"
        );
        assert_eq!(c.cmd("EXPIRE a 10 foo"), "-ERR Unsupported option foo\r\n");
        // Options are checked before the time.
        assert_eq!(c.cmd("EXPIRE a x foo"), "-ERR Unsupported option foo\r\n");
        // Redis formats the option with %s: a NUL ends it.
        assert_eq!(
            c.run(&["EXPIRE", "a", "10", "f\0oo"]),
            "-ERR Unsupported option f\r\n"
        );
        assert_eq!(
            c.cmd("EXPIRE a x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            c.cmd("EXPIRE a 9223372036854775"),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(
            c.cmd("EXPIRE a -9223372036854775808"),
            "-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(
            c.cmd("PEXPIRE a 9223372036854775807"),
            "-ERR invalid expire time in 'pexpire' command\r\n"
        );
        assert_eq!(
            c.cmd("EXPIREAT a 9223372036854775807"),
            "-ERR invalid expire time in 'expireat' command\r\n"
        );
        assert_eq!(
            c.cmd("EXPIRE a"),
            "-ERR wrong number of arguments for 'expire' command\r\n"
        );
    }

    #[test]
    fn ttl_family_replies_minus_two_without_key_and_minus_one_without_deadline() {
        let mut c = TestClient::new();
        c.cmd("SET k 1");
        for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
            assert_eq!(c.cmd(&format!("{cmd} nosuch")), ":-2\r\n", "{cmd}");
            assert_eq!(c.cmd(&format!("{cmd} k")), ":-1\r\n", "{cmd}");
        }
    }

    #[test]
    fn ttl_rounds_to_the_nearest_second() {
        let mut c = TestClient::new();
        c.cmd("SET k 1 PX 1600");
        assert_eq!(c.cmd("TTL k"), ":2\r\n");
        c.cmd("SET k 1 PX 1400");
        assert_eq!(c.cmd("TTL k"), ":1\r\n");
    }

    #[test]
    fn the_largest_deadline_reads_back_in_every_unit() {
        let mut c = TestClient::new();
        c.cmd("SET k 1");
        assert_eq!(c.cmd("PEXPIREAT k 9223372036854775807"), ":1\r\n");
        assert_eq!(c.cmd("PEXPIRETIME k"), ":9223372036854775807\r\n");
        assert_eq!(c.cmd("EXPIRETIME k"), ":9223372036854776\r\n");
        assert!(int(&c.cmd("TTL k")) > 9_000_000_000_000_000);
    }

    #[test]
    fn persist_removes_a_deadline_and_says_whether_there_was_one() {
        let mut c = TestClient::new();
        c.cmd("SET k 1 EX 100");
        assert_eq!(c.cmd("PERSIST k"), ":1\r\n");
        assert_eq!(c.cmd("TTL k"), ":-1\r\n");
        assert_eq!(c.cmd("PERSIST k"), ":0\r\n");
        assert_eq!(c.cmd("PERSIST nosuch"), ":0\r\n");
    }

    #[test]
    fn object_encoding_follows_redis_storage_rules() {
        let mut c = TestClient::new();
        let long_int = "1234567890123456789";
        let too_long_int = "12345678901234567890";
        let embstr = "x".repeat(44);
        let raw = "x".repeat(45);
        for (value, encoding) in [
            ("12", "int"),
            ("-7", "int"),
            (long_int, "int"),
            (too_long_int, "embstr"),
            ("01", "embstr"),
            ("hello", "embstr"),
            (embstr.as_str(), "embstr"),
            (raw.as_str(), "raw"),
        ] {
            c.run(&["SET", "k", value]);
            assert_eq!(
                c.cmd("OBJECT ENCODING k"),
                format!("${}\r\n{encoding}\r\n", encoding.len()),
                "{value}"
            );
        }
        put(&c, "small", list(&[b"a", b"b"]));
        assert_eq!(c.cmd("OBJECT ENCODING small"), "$8\r\nlistpack\r\n");
        let big = vec![vec![b'x'; 100]; 100];
        put(&c, "big", Value::List(big.into_iter().collect()));
        assert_eq!(c.cmd("OBJECT ENCODING big"), "$9\r\nquicklist\r\n");
        assert_eq!(c.cmd("OBJECT ENCODING nosuch"), "$-1\r\n");
    }

    #[test]
    fn listpack_size_estimate_switches_near_eight_kib() {
        // Ten-byte items take 12 bytes each: 600 of them fit in 8 KiB, 700 do not.
        let items = vec![vec![b'x'; 10]; 700];
        assert_eq!(
            listpack_bytes(items.iter().map(Vec::as_slice).take(600)),
            7 + 600 * 12
        );
        assert!(
            listpack_bytes(items.iter().map(Vec::as_slice).take(600)) <= LIST_MAX_LISTPACK_BYTES
        );
        assert!(listpack_bytes(items.iter().map(Vec::as_slice)) > LIST_MAX_LISTPACK_BYTES);
        assert_eq!(listpack_bytes(std::iter::empty()), 7);
    }

    #[test]
    fn object_freq_idletime_refcount_read_like_redis_under_noeviction() {
        let mut c = TestClient::new();
        c.cmd("SET k hello");
        c.cmd("SET small 9999");
        c.cmd("SET big 10000");
        assert_eq!(
            c.cmd("OBJECT FREQ k"),
            "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
             switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n"
        );
        assert_eq!(c.cmd("OBJECT IDLETIME k"), ":0\r\n");
        assert_eq!(c.cmd("OBJECT REFCOUNT k"), ":1\r\n");
        assert_eq!(c.cmd("OBJECT REFCOUNT small"), ":2147483647\r\n");
        assert_eq!(c.cmd("OBJECT REFCOUNT big"), ":1\r\n");
        for sub in ["FREQ", "IDLETIME", "REFCOUNT"] {
            assert_eq!(c.cmd(&format!("OBJECT {sub} nosuch")), "$-1\r\n", "{sub}");
        }
    }

    #[test]
    fn object_is_a_container_with_help_and_arity_per_subcommand() {
        let mut c = TestClient::new();
        let help = c.cmd("OBJECT HELP");
        assert!(help.starts_with(
            "*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+ENCODING <key>\r\n"
        ));
        assert!(help.contains("+REFCOUNT <key>\r\n+    Return the number of references"));
        assert_eq!(
            c.cmd("OBJECT foo"),
            "-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n"
        );
        assert_eq!(
            c.cmd("OBJECT"),
            "-ERR wrong number of arguments for 'object' command\r\n"
        );
        assert_eq!(
            c.cmd("OBJECT ENCODING"),
            "-ERR wrong number of arguments for 'object|encoding' command\r\n"
        );
        assert_eq!(
            c.cmd("OBJECT HELP x"),
            "-ERR wrong number of arguments for 'object|help' command\r\n"
        );
    }
}
