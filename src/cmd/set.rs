//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE, SINTER/SUNION/SDIFF and
//! their STORE forms, SINTERCARD and SSCAN.
//!
//! The value and its encodings live in [`crate::store::Set`]. Invariant: a set key is never empty; whatever takes its
//! last member deletes it, and a STORE form with an empty result deletes its destination.
//!
//! The multi-key commands lock every key's shard through their spec (sources, and for STORE forms the destination).
//! They first look each key up mutably (reclaiming expired keys, failing with WRONGTYPE before computing anything, as
//! Redis checks every key first), then read all the sets at once through shared references ([`Ctx::dbs_out`]). They
//! build results the way Redis does (an intset first, members added in Redis's iteration order), so a small result
//! has Redis's member order and encoding.

use std::hash::Hash as StdHash;

use super::args::{self, is, parse_i64, Cursor, ScanOpts};
use super::typed::{find, lookup, lookup_mut, remove_if_empty, update, upsert};
use super::{flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::glob;
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::store::{Keyspace, Set, Value};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, Keys::FIRST, sadd),
    CommandSpec::new("srem", -3, WRITE | FAST, Keys::FIRST, srem),
    CommandSpec::new("smembers", 2, READONLY, Keys::FIRST, smembers),
    CommandSpec::new("sismember", 3, READONLY | FAST, Keys::FIRST, sismember),
    CommandSpec::new("smismember", -3, READONLY | FAST, Keys::FIRST, smismember),
    CommandSpec::new("scard", 2, READONLY | FAST, Keys::FIRST, scard),
    CommandSpec::new("spop", -2, WRITE | FAST, Keys::FIRST, spop),
    CommandSpec::new("srandmember", -2, READONLY, Keys::FIRST, srandmember),
    CommandSpec::new("smove", 4, WRITE | FAST, Keys::FIRST_TWO, smove),
    CommandSpec::new("sinter", -2, READONLY, Keys::ALL, sinter),
    CommandSpec::new("sunion", -2, READONLY, Keys::ALL, sunion),
    CommandSpec::new("sdiff", -2, READONLY, Keys::ALL, sdiff),
    CommandSpec::new("sinterstore", -3, WRITE | DENYOOM, Keys::ALL, sinterstore),
    CommandSpec::new("sunionstore", -3, WRITE | DENYOOM, Keys::ALL, sunionstore),
    CommandSpec::new("sdiffstore", -3, WRITE | DENYOOM, Keys::ALL, sdiffstore),
    CommandSpec::new(
        "sintercard",
        -3,
        READONLY,
        Keys::NumKeys { at: 1, step: 1 },
        sintercard,
    ),
    CommandSpec::new("sscan", -3, READONLY, Keys::FIRST, sscan),
];

/// Adds `members` (the first of them `first`, about `size_hint` of them) to the set at `key`, created in the encoding
/// Redis picks for them when missing; returns how many were new. Adding only present members changes nothing, so it
/// spoils no WATCH (see [`update`]). WRONGTYPE for another type.
fn add_members<'m>(
    db: &mut Keyspace,
    key: &[u8],
    now: u64,
    first: &[u8],
    size_hint: usize,
    members: impl Iterator<Item = &'m [u8]>,
) -> Result<usize, CmdError> {
    let make = || Value::Set(Set::for_members(first, size_hint).into());
    upsert::<Set, _>(db, key, now, make, |set| {
        let added = members.filter(|m| set.insert(m)).count();
        (added, added > 0)
    })
}

/// Writes members as a RESP3 set (an array in RESP2).
fn reply_set<'a>(out: &mut Reply, len: usize, members: impl Iterator<Item = &'a [u8]>) {
    out.set(len);
    members.for_each(|m| out.bulk(m));
}

/// Writes members as an array.
fn reply_array<'a>(out: &mut Reply, len: usize, members: impl Iterator<Item = &'a [u8]>) {
    out.array(len);
    members.for_each(|m| out.bulk(m));
}

/// Writes a SCAN-family reply: the next cursor as a bulk string, then the items.
pub(super) fn reply_scan(out: &mut Reply, next: u64, items: &[&[u8]]) {
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    reply_array(out, items.len(), items.iter().copied());
}

/// `count` distinct elements (`count < len`) of a container of `len`, in random order, as Redis's SRANDMEMBER cases 3
/// and 4 choose: when `count` is a large share of `len`, a partial shuffle of all of them (O(len)); otherwise random
/// picks with `pick` until `count` distinct ones came up (O(count) expected).
pub(super) fn sample_distinct<T: Copy + Eq + StdHash>(
    all: impl Iterator<Item = T>,
    len: usize,
    count: usize,
    mut pick: impl FnMut() -> Option<T>,
) -> Vec<T> {
    if count.saturating_mul(3) > len {
        let mut items: Vec<T> = all.collect();
        for i in 0..count.min(items.len()) {
            let j = fastrand::usize(i..items.len());
            items.swap(i, j);
        }
        items.truncate(count);
        return items;
    }
    let mut seen = hashbrown::HashSet::with_capacity(count);
    let mut picked = Vec::with_capacity(count);
    while picked.len() < count {
        let Some(item) = pick() else { break };
        if seen.insert(item) {
            picked.push(item);
        }
    }
    picked
}

fn sadd(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let (first, n) = (argv.get(2), argv.len() - 2);
    let added = add_members(ctx.db(key), key, now, first, n, argv.iter_from(2))?;
    ctx.out.int(added as i64);
    if added > 0 {
        ctx.notify(notify::SET, "sadd", key);
    }
    Ok(())
}

fn srem(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let removed = update::<Set, _>(ctx.db(key), key, now, |set| {
        let removed = argv.iter_from(2).filter(|m| set.remove(m)).count();
        (removed, removed > 0)
    })?;
    let removed = removed.unwrap_or(0);
    ctx.out.int(removed as i64);
    if removed > 0 {
        ctx.notify_emptied(notify::SET, "srem", key);
    }
    Ok(())
}

/// Runs `f` on the set at `key` (or `None`) with the reply buffer.
fn read(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&Set>, &mut Reply)) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    f(lookup::<Set>(db, key, now)?, out);
    Ok(())
}

fn smembers(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |s, out| {
        reply_set(
            out,
            s.map_or(0, Set::len),
            s.into_iter().flat_map(Set::iter),
        )
    })
}

fn sismember(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |s, out| {
        out.int(s.is_some_and(|s| s.contains(argv.get(2))) as i64)
    })
}

fn smismember(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |s, out| {
        out.array(argv.len() - 2);
        for m in argv.iter_from(2) {
            out.int(s.is_some_and(|s| s.contains(m)) as i64);
        }
    })
}

fn scard(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |s, out| {
        out.int(s.map_or(0, Set::len) as i64)
    })
}

/// SPOP key [count]. Without a count: one member or null. With one: a set reply of up to `count` distinct members
/// (the whole set, in its order, when `count` reaches its size); the key goes when emptied.
fn spop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let count = match argv.len() {
        2 => None,
        3 => match parse_i64(argv.get(2)) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::err("value is out of range, must be positive")),
        },
        _ => return Err(CmdError::Syntax),
    };
    let (key, now) = (argv.get(1), ctx.now);
    let (db, out) = ctx.db_out(key);
    if count == Some(0) {
        // Popping nothing changes nothing, so spoils no WATCH (as in Redis); the type is still checked.
        lookup::<Set>(db, key, now)?;
        out.set(0);
        return Ok(());
    }
    let Some(set) = lookup_mut::<Set>(db, key, now)? else {
        match count {
            None => out.null(),
            Some(_) => out.set(0),
        }
        return Ok(());
    };
    // A count reaching the size returns the whole set, in its order, and deletes the key.
    let take_all = count.is_some_and(|n| n >= set.len());
    match count {
        None => match set.pop_random() {
            Some(m) => out.bulk(&m),
            None => out.null(),
        },
        Some(_) if take_all => reply_set(out, set.len(), set.iter()),
        Some(n) => {
            let picked: Vec<Vec<u8>> = sample_distinct(set.iter(), set.len(), n, || set.random())
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect();
            let size = set.len();
            picked.iter().for_each(|m| {
                set.remove(m);
            });
            // Redis's SPOP_MOVE_STRATEGY_MUL: such a pop builds a new set from the survivors.
            if n.saturating_mul(5) > size {
                set.rebuild_after_pop();
            }
            reply_set(out, picked.len(), picked.iter().map(Vec::as_slice));
        }
    }
    if take_all {
        db.remove(key, now);
    } else {
        remove_if_empty::<Set>(db, key, now);
    }
    ctx.notify_emptied(notify::SET, "spop", key);
    Ok(())
}

/// SRANDMEMBER key [count]. Without a count: one member or null. With one: distinct members (the whole set, in its
/// order, when `count` reaches its size), or with a negative count that many picks with repetition.
fn srandmember(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let count = match argv.len() {
        2 => None,
        3 => Some(args::int_in_range(argv.get(2), -i64::MAX, i64::MAX)?),
        _ => return Err(CmdError::Syntax),
    };
    read(ctx, argv.get(1), |s, out| {
        let Some(count) = count else {
            match s.and_then(Set::random) {
                Some(m) => out.bulk(m),
                None => out.null(),
            }
            return;
        };
        let Some(s) = s.filter(|_| count != 0) else {
            out.array(0);
            return;
        };
        let n = count.unsigned_abs() as usize;
        if count < 0 {
            out.array(n);
            for _ in 0..n {
                s.random().into_iter().for_each(|m| out.bulk(m));
            }
        } else if n >= s.len() {
            reply_array(out, s.len(), s.iter());
        } else {
            let picked = sample_distinct(s.iter(), s.len(), n, || s.random());
            reply_array(out, picked.len(), picked.into_iter());
        }
    })
}

/// SMOVE source destination member, in Redis's order of checks: a missing source is 0, then both types, then a move
/// onto the same key only reports membership.
fn smove(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (src, dst, member, now) = (argv.get(1), argv.get(2), argv.get(3), ctx.now);
    if find::<Set>(ctx.db(src), src, now)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    find::<Set>(ctx.db(dst), dst, now)?;
    let moved = if src == dst {
        find::<Set>(ctx.db(src), src, now)?.is_some_and(|s| s.contains(member))
    } else {
        let removed = update::<Set, _>(ctx.db(src), src, now, |s| {
            let removed = s.remove(member);
            (removed, removed)
        })?;
        removed == Some(true)
    };
    if moved && src != dst {
        ctx.notify_emptied(notify::SET, "srem", src);
        // A member the destination already has leaves it unchanged (and its WATCHes kept, as in Redis).
        if add_members(ctx.db(dst), dst, now, member, 1, std::iter::once(member))? > 0 {
            ctx.notify(notify::SET, "sadd", dst);
        }
    }
    ctx.out.int(moved as i64);
    Ok(())
}

/// Reclaims expired keys among `keys` and fails with WRONGTYPE if any holds another type, before anything is computed.
fn check_sets(ctx: &mut Ctx, keys: &[&[u8]]) -> CmdResult {
    let now = ctx.now;
    for key in keys {
        lookup::<Set>(ctx.db(key), key, now)?;
    }
    Ok(())
}

/// The members of the intersection of `sets` (a missing key is an empty set), at most `limit`, in Redis's order: the
/// smallest set's members that every other set has.
fn intersection<'a>(sets: &[Option<&'a Set>], limit: usize) -> Vec<&'a [u8]> {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
        return Vec::new();
    };
    sets.sort_by_key(|s| s.len());
    let (first, rest) = (sets[0], &sets[1..]);
    first
        .iter()
        .filter(|m| {
            rest.iter()
                .all(|s| std::ptr::eq(*s, first) || s.contains(m))
        })
        .take(limit)
        .collect()
}

/// The union of `sets`, built as Redis builds it: an intset taking each set's members in argument order.
fn union(sets: &[Option<&Set>]) -> Set {
    let mut result = Set::default();
    for m in sets.iter().flatten().flat_map(|s| s.iter()) {
        result.insert(m);
    }
    result
}

/// The first set minus the others, with the algorithm Redis would pick (which decides, for a small result, its
/// encoding): checking each member of the first set against the others when that is less work, else copying the first
/// set and removing the others' members.
fn difference(sets: &[Option<&Set>]) -> Set {
    let mut result = Set::default();
    let Some((Some(first), rest)) = sets.split_first() else {
        return result;
    };
    let others: Vec<&Set> = rest.iter().flatten().copied().collect();
    // The same key given again: everything is removed.
    if others.iter().any(|s| std::ptr::eq(*s, *first)) {
        return result;
    }
    let check_each = first.len() * (others.len() + 1) / 2;
    let remove_others = first.len() + others.iter().map(|s| s.len()).sum::<usize>();
    if check_each <= remove_others {
        for m in first
            .iter()
            .filter(|m| others.iter().all(|s| !s.contains(m)))
        {
            result.insert(m);
        }
    } else {
        first.iter().for_each(|m| {
            result.insert(m);
        });
        for m in others.iter().flat_map(|s| s.iter()) {
            if result.is_empty() {
                break;
            }
            result.remove(m);
        }
    }
    result
}

/// The sources of a multi-key set command: after [`check_sets`], the set at each key (`None` when missing).
fn with_sets<T>(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    f: impl FnOnce(&[Option<&Set>], &mut Reply) -> T,
) -> Result<T, CmdError> {
    check_sets(ctx, keys)?;
    let now = ctx.now;
    let (dbs, out) = ctx.dbs_out();
    let sets: Vec<Option<&Set>> = keys
        .iter()
        .map(|k| match dbs.get(k).peek(k, now).map(|e| &e.value) {
            Some(Value::Set(s)) => Some(&**s),
            _ => None,
        })
        .collect();
    Ok(f(&sets, out))
}

fn keys_from(argv: Argv<'_>, first: usize) -> Vec<&[u8]> {
    argv.iter_from(first).collect()
}

fn sinter(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    with_sets(ctx, &keys_from(argv, 1), |sets, out| {
        let members = intersection(sets, usize::MAX);
        reply_set(out, members.len(), members.into_iter());
    })
}

fn sunion(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    with_sets(ctx, &keys_from(argv, 1), |sets, out| {
        let result = union(sets);
        reply_set(out, result.len(), result.iter());
    })
}

fn sdiff(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    with_sets(ctx, &keys_from(argv, 1), |sets, out| {
        let result = difference(sets);
        reply_set(out, result.len(), result.iter());
    })
}

/// The STORE forms: computes `op` over the sources, then overwrites the destination with the result (dropping any
/// deadline) or deletes it when the result is empty; replies the result's size.
/// Announces `event` on the destination, or `del` when an empty result deleted it.
fn store(
    ctx: &mut Ctx,
    argv: Argv,
    event: &'static str,
    op: impl FnOnce(&[Option<&Set>]) -> Set,
) -> CmdResult {
    let (dst, now) = (argv.get(1), ctx.now);
    let result = with_sets(ctx, &keys_from(argv, 2), |sets, _| op(sets))?;
    let len = result.len();
    let db = ctx.db(dst);
    let event = if result.is_empty() {
        db.remove(dst, now).map(|_| (notify::GENERIC, "del"))
    } else {
        // Expires a destination past its deadline first, so its `expired` and `new` events are raised.
        db.find(dst, now);
        db.insert(dst, Value::Set(result.into()), None);
        Some((notify::SET, event))
    };
    ctx.out.int(len as i64);
    if let Some((class, event)) = event {
        ctx.notify(class, event, dst);
    }
    Ok(())
}

fn sinterstore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    store(ctx, argv, "sinterstore", |sets| {
        let mut result = Set::default();
        for m in intersection(sets, usize::MAX) {
            result.insert(m);
        }
        result
    })
}

fn sunionstore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    store(ctx, argv, "sunionstore", union)
}

fn sdiffstore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    store(ctx, argv, "sdiffstore", difference)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: the intersection's size, counting stopped at LIMIT (0: no limit).
fn sintercard(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let numkeys = match parse_i64(argv.get(1)) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(CmdError::err("numkeys should be greater than 0")),
    };
    if numkeys > argv.len() - 2 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let mut limit = usize::MAX;
    let mut opts = Cursor::new(argv, 2 + numkeys);
    while let Some(opt) = opts.next() {
        if !is(opt, "LIMIT") {
            return Err(CmdError::Syntax);
        }
        limit = args::intercard_limit(opts.value()?)?;
    }
    let keys: Vec<&[u8]> = (2..2 + numkeys).map(|i| argv.get(i)).collect();
    let count = with_sets(ctx, &keys, |sets, _| intersection(sets, limit).len())?;
    ctx.out.int(count as i64);
    Ok(())
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]: cursor checked first, then the key, then the options; a small
/// (intset or listpack) set is returned whole with cursor 0.
fn sscan(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let cursor = args::scan_cursor(argv.get(2))?;
    let (key, now) = (argv.get(1), ctx.now);
    let (db, out) = ctx.db_out(key);
    let Some(set) = lookup::<Set>(db, key, now)? else {
        reply_scan(out, 0, &[]);
        return Ok(());
    };
    let opts = ScanOpts::parse(argv, 3, false)?;
    let mut found = Vec::new();
    let next = set.scan(cursor, opts.count as usize, |m| {
        if opts.pattern.is_none_or(|p| glob::matches(p, m, false)) {
            found.push(m);
        }
    });
    reply_scan(out, next, &found);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::cmd::testing::TestClient;

    use crate::cmd::testing::{bulks, WRONG};

    #[test]
    fn sadd_and_srem_count_changes_and_an_emptied_set_disappears() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("SADD s a b a"), ":2\r\n");
        assert_eq!(c.cmd("SADD s b c"), ":1\r\n");
        assert_eq!(c.cmd("SCARD s"), ":3\r\n");
        assert_eq!(c.cmd("SREM s a x"), ":1\r\n");
        assert_eq!(c.cmd("SREM nokey a"), ":0\r\n");
        assert_eq!(c.cmd("SREM s b c"), ":2\r\n");
        assert_eq!(c.cmd("EXISTS s"), ":0\r\n");
        assert_eq!(c.cmd("TYPE s"), "+none\r\n");
    }

    #[test]
    fn smembers_of_integers_is_sorted_and_of_strings_in_insertion_order() {
        let mut c = TestClient::new();
        c.cmd("SADD i 3 -1 20");
        assert_eq!(
            c.cmd("SMEMBERS i"),
            "*3\r\n$2\r\n-1\r\n$1\r\n3\r\n$2\r\n20\r\n"
        );
        c.cmd("SADD i x");
        assert_eq!(bulks(&c.cmd("SMEMBERS i")), ["-1", "3", "20", "x"]);
        assert_eq!(c.cmd("OBJECT ENCODING i"), "$8\r\nlistpack\r\n");
        c.cmd("HELLO 3");
        assert_eq!(c.cmd("SMEMBERS nokey"), "~0\r\n");
        assert!(c.cmd("SMEMBERS i").starts_with("~4\r\n"));
    }

    #[test]
    fn membership_replies() {
        let mut c = TestClient::new();
        c.cmd("SADD s a 1");
        assert_eq!(c.cmd("SISMEMBER s a"), ":1\r\n");
        assert_eq!(c.cmd("SISMEMBER s b"), ":0\r\n");
        assert_eq!(c.cmd("SISMEMBER nokey b"), ":0\r\n");
        assert_eq!(c.cmd("SMISMEMBER s a b 1"), "*3\r\n:1\r\n:0\r\n:1\r\n");
        assert_eq!(c.cmd("SMISMEMBER nokey a"), "*1\r\n:0\r\n");
        assert_eq!(c.cmd("SCARD nokey"), ":0\r\n");
    }

    #[test]
    fn every_set_command_refuses_another_type() {
        let mut c = TestClient::new();
        c.cmd("SET str x");
        c.cmd("SADD s a");
        for cmd in [
            "SADD str a",
            "SREM str a",
            "SMEMBERS str",
            "SISMEMBER str a",
            "SMISMEMBER str a",
            "SCARD str",
            "SPOP str",
            "SPOP str 2",
            "SRANDMEMBER str",
            "SRANDMEMBER str 0",
            "SMOVE str s a",
            "SMOVE s str a",
            "SINTER s str",
            "SINTER nokey str",
            "SUNION s str",
            "SDIFF nokey str",
            "SINTERSTORE d s str",
            "SUNIONSTORE d str",
            "SDIFFSTORE d s str",
            "SINTERCARD 2 nokey str",
            "SSCAN str 0",
        ] {
            assert_eq!(c.cmd(cmd), WRONG, "{cmd}");
        }
        assert_eq!(c.cmd("SMEMBERS s"), "*1\r\n$1\r\na\r\n");
        assert_eq!(c.cmd("EXISTS d"), ":0\r\n");
    }

    #[test]
    fn spop_takes_members_and_deletes_the_emptied_key() {
        let mut c = TestClient::new();
        c.cmd("SADD s 1 2 3 4 5");
        let one = bulks(&c.cmd("SPOP s"));
        assert_eq!(one.len(), 1);
        let two = bulks(&c.cmd("SPOP s 2"));
        assert_eq!(two.len(), 2);
        assert_eq!(c.cmd("SCARD s"), ":2\r\n");
        let rest = bulks(&c.cmd("SPOP s 10"));
        let all: HashSet<String> = one.into_iter().chain(two).chain(rest).collect();
        assert_eq!(all.len(), 5);
        assert_eq!(c.cmd("EXISTS s"), ":0\r\n");
        assert_eq!(c.cmd("SPOP s"), "$-1\r\n");
        assert_eq!(c.cmd("SPOP s 2"), "*0\r\n");
        c.cmd("SADD s a");
        assert_eq!(c.cmd("SPOP s 0"), "*0\r\n");
        assert_eq!(
            c.cmd("SPOP s -1"),
            "-ERR value is out of range, must be positive\r\n"
        );
        assert_eq!(
            c.cmd("SPOP s x"),
            "-ERR value is out of range, must be positive\r\n"
        );
        assert_eq!(c.cmd("SPOP s 1 2"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("SPOP s"), "$1\r\na\r\n");
        assert_eq!(c.cmd("EXISTS s"), ":0\r\n");
    }

    #[test]
    fn spop_of_most_members_rebuilds_a_small_survivor_set_as_redis_7_2() {
        let mut c = TestClient::new();
        let members: Vec<String> = (0..513).map(|i| i.to_string()).collect();
        c.cmd(&format!("SADD s {}", members.join(" ")));
        assert_eq!(c.cmd("OBJECT ENCODING s"), "$9\r\nhashtable\r\n");
        // 400 x 5 > 513: the 113 survivors are copied into a new set, a listpack since they fit one.
        assert_eq!(bulks(&c.cmd("SPOP s 400")).len(), 400);
        assert_eq!(c.cmd("OBJECT ENCODING s"), "$8\r\nlistpack\r\n");
        assert_eq!(c.cmd("SCARD s"), ":113\r\n");
        // A smaller pop takes members out of the set in place: it stays a hashtable.
        c.cmd(&format!("SADD t {}", members.join(" ")));
        c.cmd("SPOP t 100");
        assert_eq!(c.cmd("OBJECT ENCODING t"), "$9\r\nhashtable\r\n");
    }

    #[test]
    fn spop_with_count_is_a_set_in_resp3() {
        let mut c = TestClient::new();
        c.cmd("HELLO 3");
        c.cmd("SADD s 1 2");
        assert_eq!(c.cmd("SPOP nokey 1"), "~0\r\n");
        assert_eq!(c.cmd("SPOP s 5"), "~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        assert_eq!(c.cmd("SPOP s"), "_\r\n");
    }

    #[test]
    fn srandmember_counts_follow_redis() {
        let mut c = TestClient::new();
        c.cmd("SADD s 1 2 3");
        assert_eq!(
            c.cmd("SRANDMEMBER s 5"),
            "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
        );
        let two: HashSet<String> = bulks(&c.cmd("SRANDMEMBER s 2")).into_iter().collect();
        assert_eq!(two.len(), 2);
        assert_eq!(bulks(&c.cmd("SRANDMEMBER s -7")).len(), 7);
        assert_eq!(c.cmd("SRANDMEMBER s 0"), "*0\r\n");
        assert_eq!(c.cmd("SRANDMEMBER nokey"), "$-1\r\n");
        assert_eq!(c.cmd("SRANDMEMBER nokey 5"), "*0\r\n");
        assert_eq!(
            c.cmd("SRANDMEMBER s x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(c.cmd("SRANDMEMBER s 1 2"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("SRANDMEMBER s -9223372036854775808"),
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
        );
        assert_eq!(c.cmd("SCARD s"), ":3\r\n");
        c.cmd("HELLO 3");
        assert!(c.cmd("SRANDMEMBER s 2").starts_with("*2\r\n"));
    }

    #[test]
    fn smove_checks_in_redis_order_and_moves_one_member() {
        let mut c = TestClient::new();
        c.cmd("SADD a 1 2");
        c.cmd("SET str x");
        assert_eq!(c.cmd("SMOVE nokey str 1"), ":0\r\n");
        assert_eq!(c.cmd("SMOVE a str 1"), WRONG);
        assert_eq!(c.cmd("SMOVE a a 1"), ":1\r\n");
        assert_eq!(c.cmd("SMOVE a a 9"), ":0\r\n");
        assert_eq!(c.cmd("SMOVE a b 9"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS b"), ":0\r\n");
        assert_eq!(c.cmd("SMOVE a b 1"), ":1\r\n");
        assert_eq!(c.cmd("SMOVE a b 2"), ":1\r\n");
        assert_eq!(c.cmd("EXISTS a"), ":0\r\n");
        assert_eq!(c.cmd("SMEMBERS b"), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        assert_eq!(c.cmd("OBJECT ENCODING b"), "$6\r\nintset\r\n");
    }

    #[test]
    fn set_algebra_follows_redis_order_and_missing_keys() {
        let mut c = TestClient::new();
        c.cmd("SADD s 3 1 2 a");
        c.cmd("SADD t 1 a zz");
        assert_eq!(bulks(&c.cmd("SINTER s t")), ["1", "a"]);
        // s is a listpack "1 2 3 a" (an intset that took a string); results are built from an intset.
        assert_eq!(bulks(&c.cmd("SUNION s t")), ["1", "2", "3", "a", "zz"]);
        assert_eq!(bulks(&c.cmd("SDIFF s t")), ["2", "3"]);
        assert_eq!(bulks(&c.cmd("SDIFF s nokey")), ["1", "2", "3", "a"]);
        assert_eq!(c.cmd("SINTER s nokey"), "*0\r\n");
        assert_eq!(c.cmd("SDIFF nokey s"), "*0\r\n");
        assert_eq!(c.cmd("SDIFF s s"), "*0\r\n");
        assert_eq!(c.cmd("SUNION nokey"), "*0\r\n");
        c.cmd("SADD i 5 3");
        // Integers gathered in an intset come out sorted, then a string turns it into a listpack.
        assert_eq!(bulks(&c.cmd("SUNION i s")), ["1", "2", "3", "5", "a"]);
        c.cmd("HELLO 3");
        assert!(c.cmd("SINTER s t").starts_with("~2\r\n"));
        assert!(c.cmd("SUNION s t").starts_with("~5\r\n"));
    }

    #[test]
    fn store_forms_overwrite_or_delete_the_destination() {
        let mut c = TestClient::new();
        c.cmd("SADD s 3 1 2 a");
        c.cmd("SADD t 1 a zz");
        c.cmd("SET d x EX 100");
        assert_eq!(c.cmd("SINTERSTORE d s t"), ":2\r\n");
        assert_eq!(c.cmd("TTL d"), ":-1\r\n");
        assert_eq!(c.cmd("SMEMBERS d"), "*2\r\n$1\r\n1\r\n$1\r\na\r\n");
        assert_eq!(c.cmd("SUNIONSTORE d s t"), ":5\r\n");
        assert_eq!(c.cmd("SDIFFSTORE d s t"), ":2\r\n");
        assert_eq!(c.cmd("SMEMBERS d"), "*2\r\n$1\r\n2\r\n$1\r\n3\r\n");
        assert_eq!(c.cmd("OBJECT ENCODING d"), "$6\r\nintset\r\n");
        assert_eq!(c.cmd("SINTERSTORE d s nokey"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS d"), ":0\r\n");
        // The destination may be a source.
        assert_eq!(c.cmd("SUNIONSTORE s s t"), ":5\r\n");
        assert_eq!(c.cmd("SDIFFSTORE t t t"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS t"), ":0\r\n");
    }

    #[test]
    fn sintercard_counts_up_to_the_limit_and_reports_redis_errors() {
        let mut c = TestClient::new();
        c.cmd("SADD s 1 2 3 4");
        c.cmd("SADD t 2 3 4 5");
        assert_eq!(c.cmd("SINTERCARD 2 s t"), ":3\r\n");
        assert_eq!(c.cmd("SINTERCARD 2 s t LIMIT 2"), ":2\r\n");
        assert_eq!(c.cmd("SINTERCARD 2 s t LIMIT 0"), ":3\r\n");
        assert_eq!(c.cmd("SINTERCARD 1 s"), ":4\r\n");
        assert_eq!(c.cmd("SINTERCARD 2 s nokey"), ":0\r\n");
        for (cmd, err) in [
            ("SINTERCARD 0 s", "ERR numkeys should be greater than 0"),
            ("SINTERCARD x s", "ERR numkeys should be greater than 0"),
            (
                "SINTERCARD 3 s t",
                "ERR Number of keys can't be greater than number of args",
            ),
            ("SINTERCARD 1 s LIMIT -1", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 s LIMIT x", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 s LIMIT", "ERR syntax error"),
            ("SINTERCARD 1 s FOO 1", "ERR syntax error"),
        ] {
            assert_eq!(c.cmd(cmd), format!("-{err}\r\n"), "{cmd}");
        }
    }

    #[test]
    fn sscan_returns_a_small_set_whole_and_walks_a_large_one() {
        let mut c = TestClient::new();
        c.cmd("SADD s a b ab");
        assert_eq!(
            c.cmd("SSCAN s 7 MATCH a*"),
            "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$2\r\nab\r\n"
        );
        assert_eq!(c.cmd("SSCAN s abc"), "-ERR invalid cursor\r\n");
        assert_eq!(c.cmd("SSCAN s 0 COUNT -1"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("SSCAN nokey 0 COUNT -1"), "*2\r\n$1\r\n0\r\n*0\r\n");
        for i in 0..1000 {
            c.run(&["SADD", "big", &format!("m{i}")]);
        }
        let (mut cursor, mut seen) = ("0".to_string(), HashSet::new());
        loop {
            let reply = c.run(&["SSCAN", "big", &cursor]);
            let items = bulks(&reply);
            cursor = items[0].clone();
            seen.extend(items.into_iter().skip(1));
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn object_encoding_and_generic_key_commands_carry_sets() {
        let mut c = TestClient::new();
        c.cmd("SADD s 1 2");
        assert_eq!(c.cmd("OBJECT ENCODING s"), "$6\r\nintset\r\n");
        c.cmd("SADD s x");
        assert_eq!(c.cmd("OBJECT ENCODING s"), "$8\r\nlistpack\r\n");
        c.run(&["SADD", "s", &"y".repeat(65)]);
        assert_eq!(c.cmd("OBJECT ENCODING s"), "$9\r\nhashtable\r\n");
        assert_eq!(c.cmd("COPY s s2"), ":1\r\n");
        assert_eq!(c.cmd("OBJECT ENCODING s2"), "$9\r\nhashtable\r\n");
        assert_eq!(c.cmd("RENAME s2 s3"), "+OK\r\n");
        assert_eq!(c.cmd("SCARD s3"), ":4\r\n");
        assert_eq!(c.cmd("TYPE s3"), "+set\r\n");
        assert!(c.cmd("SCAN 0 TYPE set COUNT 1000").contains("$2\r\ns3\r\n"));
        assert_eq!(c.cmd("DEL s s3"), ":2\r\n");
    }
}
