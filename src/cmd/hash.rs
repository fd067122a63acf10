//! Hash commands: HSET/HSETNX/HMSET, reads (HGET, HMGET, HGETALL, HKEYS, HVALS, HLEN, HEXISTS, HSTRLEN), HDEL,
//! HINCRBY/HINCRBYFLOAT, HRANDFIELD and HSCAN.
//!
//! The value and its encodings live in [`crate::store::Hash`]; this file parses, applies one operation and replies.
//! Invariant: a hash key is never empty. HDEL of the last field deletes the key, and no command creates a hash it does
//! not put a field in (HINCRBY* parse their increment before they create anything).

use super::args::{self, is, ScanOpts};
use super::long_double::LongDouble;
use super::set::{reply_scan, sample_distinct};
use super::typed::{find, lookup, update, upsert};
use super::{flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::glob;
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::store::{Hash, Keyspace, Value};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, Keys::FIRST, hset),
    CommandSpec::new("hsetnx", 4, WRITE | DENYOOM | FAST, Keys::FIRST, hsetnx),
    CommandSpec::new("hmset", -4, WRITE | DENYOOM | FAST, Keys::FIRST, hmset),
    CommandSpec::new("hget", 3, READONLY | FAST, Keys::FIRST, hget),
    CommandSpec::new("hmget", -3, READONLY | FAST, Keys::FIRST, hmget),
    CommandSpec::new("hgetall", 2, READONLY, Keys::FIRST, hgetall),
    CommandSpec::new("hkeys", 2, READONLY, Keys::FIRST, hkeys),
    CommandSpec::new("hvals", 2, READONLY, Keys::FIRST, hvals),
    CommandSpec::new("hdel", -3, WRITE | FAST, Keys::FIRST, hdel),
    CommandSpec::new("hexists", 3, READONLY | FAST, Keys::FIRST, hexists),
    CommandSpec::new("hlen", 2, READONLY | FAST, Keys::FIRST, hlen),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, Keys::FIRST, hstrlen),
    CommandSpec::new("hincrby", 4, WRITE | DENYOOM | FAST, Keys::FIRST, hincrby),
    CommandSpec::new(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        Keys::FIRST,
        hincrbyfloat,
    ),
    CommandSpec::new("hrandfield", -2, READONLY, Keys::FIRST, hrandfield),
    CommandSpec::new("hscan", -3, READONLY, Keys::FIRST, hscan),
];

/// The hash at `key`, created empty when missing (the caller must then put a field in it); WRONGTYPE for another type.
fn lookup_or_create<'a>(
    db: &'a mut Keyspace,
    key: &[u8],
    now: u64,
) -> Result<&'a mut Hash, CmdError> {
    match &mut db
        .get_or_insert_with(key, now, || Value::Hash(Box::default()))
        .value
    {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

/// HSET and HMSET: sets every field/value pair; returns how many fields are new. An odd pair count is an arity error,
/// as in Redis.
fn set_pairs(ctx: &mut Ctx, argv: Argv, name: &str) -> Result<usize, CmdError> {
    if argv.len() % 2 == 1 {
        return Err(CmdError::WrongArity(name.to_string()));
    }
    let (key, now) = (argv.get(1), ctx.now);
    let hash = lookup_or_create(ctx.db(key), key, now)?;
    let added = (2..argv.len())
        .step_by(2)
        .filter(|&i| hash.set(argv.get(i), argv.get(i + 1)))
        .count();
    ctx.notify(notify::HASH, "hset", key);
    Ok(added)
}

fn hset(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let added = set_pairs(ctx, argv, "hset")?;
    ctx.out.int(added as i64);
    Ok(())
}

fn hmset(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    set_pairs(ctx, argv, "hmset")?;
    ctx.out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, field, now) = (argv.get(1), argv.get(2), ctx.now);
    // An existing field leaves the hash unchanged, and its WATCHes kept, as in Redis.
    let make = || Value::Hash(Box::default());
    let added = upsert::<Hash, _>(ctx.db(key), key, now, make, |hash| {
        let added = hash.get(field).is_none() && hash.set(field, argv.get(3));
        (added, added)
    })?;
    ctx.out.int(added as i64);
    if added {
        ctx.notify(notify::HASH, "hset", key);
    }
    Ok(())
}

/// Runs `f` on the hash at `key` (or `None`) with the reply buffer.
fn read(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&Hash>, &mut Reply)) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    f(lookup::<Hash>(db, key, now)?, out);
    Ok(())
}

fn hget(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |h, out| {
        match h.and_then(|h| h.get(argv.get(2))) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    })
}

fn hmget(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |h, out| {
        out.array(argv.len() - 2);
        for field in argv.iter_from(2) {
            match h.and_then(|h| h.get(field)) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
    })
}

/// HGETALL (a map), HKEYS, HVALS: every pair, field or value in the hash's order.
fn read_all(ctx: &mut Ctx, argv: Argv, fields: bool, values: bool) -> CmdResult {
    read(ctx, argv.get(1), |h, out| {
        let len = h.map_or(0, Hash::len);
        if fields && values {
            out.map(len);
        } else {
            out.array(len);
        }
        for (f, v) in h.into_iter().flat_map(Hash::iter) {
            if fields {
                out.bulk(f);
            }
            if values {
                out.bulk(v);
            }
        }
    })
}

fn hgetall(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read_all(ctx, argv, true, true)
}

fn hkeys(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read_all(ctx, argv, true, false)
}

fn hvals(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read_all(ctx, argv, false, true)
}

fn hexists(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |h, out| {
        out.int(h.is_some_and(|h| h.get(argv.get(2)).is_some()) as i64)
    })
}

fn hlen(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |h, out| {
        out.int(h.map_or(0, Hash::len) as i64)
    })
}

fn hstrlen(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |h, out| {
        out.int(h.and_then(|h| h.get(argv.get(2))).map_or(0, <[u8]>::len) as i64)
    })
}

fn hdel(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let removed = update::<Hash, _>(ctx.db(key), key, now, |hash| {
        let removed = argv.iter_from(2).filter(|f| hash.remove(f)).count();
        (removed, removed > 0)
    })?;
    let removed = removed.unwrap_or(0);
    ctx.out.int(removed as i64);
    if removed > 0 {
        ctx.notify_emptied(notify::HASH, "hdel", key);
    }
    Ok(())
}

/// HINCRBY and HINCRBYFLOAT: reads the field's current value with `parse` (`None` for a missing field), computes the
/// new one with `step`, stores it as `text` makes it and returns it. An error from either leaves everything unchanged.
fn increment<T>(
    ctx: &mut Ctx,
    argv: Argv,
    event: &'static str,
    parse: impl FnOnce(Option<&[u8]>) -> Result<T, CmdError>,
    step: impl FnOnce(T) -> Result<T, CmdError>,
    text: impl FnOnce(&T) -> Vec<u8>,
) -> Result<T, CmdError> {
    let (key, field, now) = (argv.get(1), argv.get(2), ctx.now);
    let db = ctx.db(key);
    let value = step(parse(
        find::<Hash>(db, key, now)?.and_then(|h| h.get(field)),
    )?)?;
    // Created only now, with the field in it: a failed increment never leaves an empty hash behind.
    lookup_or_create(db, key, now)?.set(field, &text(&value));
    ctx.notify(notify::HASH, event, key);
    Ok(value)
}

fn hincrby(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let incr = args::int(argv.get(3))?;
    let value = increment(
        ctx,
        argv,
        "hincrby",
        |v| match v {
            None => Ok(0),
            Some(v) => {
                args::parse_i64(v).ok_or_else(|| CmdError::err("hash value is not an integer"))
            }
        },
        |current: i64| current.checked_add(incr).ok_or(CmdError::Overflow),
        |value| itoa::Buffer::new().format(*value).as_bytes().to_vec(),
    )?;
    ctx.out.int(value);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    // Redis computes in long double, like INCRBYFLOAT; `to_human` is `None` for NaN and infinities.
    let incr = LongDouble::parse(argv.get(3)).ok_or(CmdError::NotFloat)?;
    if incr.to_human().is_none() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let text = |v: &LongDouble| v.to_human().unwrap_or_default();
    let value = increment(
        ctx,
        argv,
        "hincrbyfloat",
        |v| match v {
            None => Ok(LongDouble::ZERO),
            Some(v) => {
                LongDouble::parse(v).ok_or_else(|| CmdError::err("hash value is not a float"))
            }
        },
        |current: LongDouble| {
            Some(current.add(incr))
                .filter(|v| v.to_human().is_some())
                .ok_or_else(|| CmdError::err("increment would produce NaN or Infinity"))
        },
        |value| text(value).into_bytes(),
    )?;
    ctx.out.bulk(text(&value).as_bytes());
    Ok(())
}

/// The bound Redis puts on a WITHVALUES count (`LONG_MAX / 2`), so that the reply length cannot overflow.
const MAX_WITHVALUES_COUNT: i64 = i64::MAX / 2;

/// HRANDFIELD key [count [WITHVALUES]]. Without a count: one field or null. With one: distinct fields (all of them,
/// in the hash's order, when the count reaches the size), or with a negative count that many picks with repetition;
/// WITHVALUES pairs each with its value (flat in RESP2, two-element arrays in RESP3).
fn hrandfield(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    if argv.len() == 2 {
        return read(ctx, argv.get(1), |h, out| match h.and_then(Hash::random) {
            Some((f, _)) => out.bulk(f),
            None => out.null(),
        });
    }
    let count = args::int_in_range(argv.get(2), -i64::MAX, i64::MAX)?;
    let with_values = match argv.len() {
        3 => false,
        4 if is(argv.get(3), "WITHVALUES") => true,
        _ => return Err(CmdError::Syntax),
    };
    if with_values && !(-MAX_WITHVALUES_COUNT..=MAX_WITHVALUES_COUNT).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    read(ctx, argv.get(1), |h, out| {
        let Some(h) = h.filter(|_| count != 0) else {
            out.array(0);
            return;
        };
        let header = |out: &mut Reply, n: usize| {
            out.array(if with_values && !out.resp3() {
                2 * n
            } else {
                n
            })
        };
        let pair = |out: &mut Reply, (f, v): (&[u8], &[u8])| {
            if with_values && out.resp3() {
                out.array(2);
            }
            out.bulk(f);
            if with_values {
                out.bulk(v);
            }
        };
        let n = count.unsigned_abs() as usize;
        if count < 0 {
            header(out, n);
            for _ in 0..n {
                h.random().into_iter().for_each(|p| pair(out, p));
            }
        } else if n >= h.len() {
            header(out, h.len());
            h.iter().for_each(|p| pair(out, p));
        } else {
            let picked = sample_distinct(h.iter(), h.len(), n, || h.random());
            header(out, picked.len());
            picked.into_iter().for_each(|p| pair(out, p));
        }
    })
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]. As in Redis the cursor is checked first, then the key, then the
/// options; a small (listpack) hash is returned whole with cursor 0.
fn hscan(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let cursor = args::scan_cursor(argv.get(2))?;
    let (key, now) = (argv.get(1), ctx.now);
    let (db, out) = ctx.db_out(key);
    let Some(hash) = lookup::<Hash>(db, key, now)? else {
        reply_scan(out, 0, &[]);
        return Ok(());
    };
    let opts = ScanOpts::parse(argv, 3, false)?;
    let mut found = Vec::new();
    let next = hash.scan(cursor, opts.count as usize, |f, v| {
        if opts.pattern.is_none_or(|p| glob::matches(p, f, false)) {
            found.push(f);
            found.push(v);
        }
    });
    reply_scan(out, next, &found);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;

    #[test]
    fn hset_counts_new_fields_and_hgetall_keeps_insertion_order() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("HSET h b 1 a 2"), ":2\r\n");
        assert_eq!(c.cmd("HSET h a 3 c 4"), ":1\r\n");
        assert_eq!(
            c.cmd("HGETALL h"),
            "*6\r\n$1\r\nb\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nc\r\n$1\r\n4\r\n"
        );
        assert_eq!(c.cmd("HKEYS h"), "*3\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n");
        assert_eq!(c.cmd("HVALS h"), "*3\r\n$1\r\n1\r\n$1\r\n3\r\n$1\r\n4\r\n");
        assert_eq!(c.cmd("HMSET h d 5"), "+OK\r\n");
        assert_eq!(c.cmd("HLEN h"), ":4\r\n");
        assert_eq!(c.cmd("TYPE h"), "+hash\r\n");
    }

    #[test]
    fn hgetall_is_a_map_in_resp3() {
        let mut c = TestClient::new();
        c.cmd("HELLO 3");
        c.cmd("HSET h f v");
        assert_eq!(c.cmd("HGETALL h"), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
        assert_eq!(c.cmd("HGETALL nokey"), "%0\r\n");
        assert_eq!(c.cmd("HGET h nope"), "_\r\n");
    }

    #[test]
    fn odd_pairs_are_an_arity_error_naming_the_command() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("HSET h a 1 b"),
            "-ERR wrong number of arguments for 'hset' command\r\n"
        );
        assert_eq!(
            c.cmd("HMSET h a 1 b"),
            "-ERR wrong number of arguments for 'hmset' command\r\n"
        );
        assert_eq!(c.cmd("EXISTS h"), ":0\r\n");
    }

    #[test]
    fn reads_of_a_missing_key_or_field() {
        let mut c = TestClient::new();
        c.cmd("HSET h a 1");
        assert_eq!(c.cmd("HGET h b"), "$-1\r\n");
        assert_eq!(c.cmd("HGET nokey b"), "$-1\r\n");
        assert_eq!(c.cmd("HMGET h a b"), "*2\r\n$1\r\n1\r\n$-1\r\n");
        assert_eq!(c.cmd("HEXISTS h a"), ":1\r\n");
        assert_eq!(c.cmd("HEXISTS h b"), ":0\r\n");
        assert_eq!(c.cmd("HSTRLEN h a"), ":1\r\n");
        assert_eq!(c.cmd("HSTRLEN h b"), ":0\r\n");
        assert_eq!(c.cmd("HLEN nokey"), ":0\r\n");
        assert_eq!(c.cmd("HGETALL nokey"), "*0\r\n");
    }

    #[test]
    fn hsetnx_sets_only_a_new_field() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("HSETNX h a 1"), ":1\r\n");
        assert_eq!(c.cmd("HSETNX h a 2"), ":0\r\n");
        assert_eq!(c.cmd("HGET h a"), "$1\r\n1\r\n");
    }

    #[test]
    fn hdel_of_the_last_field_deletes_the_key() {
        let mut c = TestClient::new();
        c.cmd("HSET h a 1 b 2");
        assert_eq!(c.cmd("HDEL h a nope a"), ":1\r\n");
        assert_eq!(c.cmd("HDEL nokey a"), ":0\r\n");
        assert_eq!(c.cmd("HDEL h b"), ":1\r\n");
        assert_eq!(c.cmd("EXISTS h"), ":0\r\n");
        assert_eq!(c.cmd("TYPE h"), "+none\r\n");
    }

    #[test]
    fn every_hash_command_refuses_another_type() {
        let mut c = TestClient::new();
        c.cmd("SET s x");
        let wrong = crate::cmd::testing::WRONG;
        for cmd in [
            "HSET s a 1",
            "HSETNX s a 1",
            "HMSET s a 1",
            "HGET s a",
            "HMGET s a",
            "HGETALL s",
            "HKEYS s",
            "HVALS s",
            "HDEL s a",
            "HEXISTS s a",
            "HLEN s",
            "HSTRLEN s a",
            "HINCRBY s a 1",
            "HINCRBYFLOAT s a 1",
            "HRANDFIELD s",
            "HRANDFIELD s 2",
            "HSCAN s 0",
        ] {
            assert_eq!(c.cmd(cmd), wrong, "{cmd}");
        }
        assert_eq!(c.cmd("GET s"), "$1\r\nx\r\n");
    }

    #[test]
    fn hincrby_counts_and_reports_redis_errors() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("HINCRBY h n 5"), ":5\r\n");
        assert_eq!(c.cmd("HINCRBY h n -7"), ":-2\r\n");
        c.cmd("HSET h s abc h2 9223372036854775807");
        c.run(&["HSET", "h", "sp", " 12"]);
        assert_eq!(
            c.cmd("HINCRBY h sp 1"),
            "-ERR hash value is not an integer\r\n"
        );
        assert_eq!(
            c.cmd("HINCRBY h s 1"),
            "-ERR hash value is not an integer\r\n"
        );
        assert_eq!(
            c.cmd("HINCRBY h h2 1"),
            "-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(
            c.cmd("HINCRBY h n x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            c.cmd("HINCRBY nokey n x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(c.cmd("EXISTS nokey"), ":0\r\n");
        assert_eq!(c.cmd("HGET h h2"), "$19\r\n9223372036854775807\r\n");
    }

    #[test]
    fn hincrbyfloat_formats_like_redis_and_reports_its_errors() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("HINCRBYFLOAT h f 1.5"), "$3\r\n1.5\r\n");
        assert_eq!(c.cmd("HINCRBYFLOAT h f 1.5"), "$1\r\n3\r\n");
        assert_eq!(c.cmd("HINCRBYFLOAT h f -3"), "$1\r\n0\r\n");
        c.cmd("HSET h s abc big 1e308");
        assert_eq!(
            c.cmd("HINCRBYFLOAT h s 1"),
            "-ERR hash value is not a float\r\n"
        );
        assert_eq!(
            c.cmd("HINCRBYFLOAT h f x"),
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(
            c.cmd("HINCRBYFLOAT h f inf"),
            "-ERR value is NaN or Infinity\r\n"
        );
        // Long double, like Redis: 2e308 is still finite (Redis 7.0 prints the same 309 digits).
        assert!(c
            .cmd("HINCRBYFLOAT h big 1e308")
            .starts_with("$309\r\n1999999"));
        c.cmd("HSET h huge 1e4932");
        assert_eq!(
            c.cmd("HINCRBYFLOAT h huge 1e4932"),
            "-ERR increment would produce NaN or Infinity\r\n"
        );
        assert_eq!(
            c.cmd("HINCRBYFLOAT nokey f inf"),
            "-ERR value is NaN or Infinity\r\n"
        );
        assert_eq!(c.cmd("EXISTS nokey"), ":0\r\n");
    }

    #[test]
    fn hrandfield_counts_follow_redis() {
        let mut c = TestClient::new();
        c.cmd("HSET h a 1 b 2 c 3");
        assert!(
            ["$1\r\na\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"].contains(&c.cmd("HRANDFIELD h").as_str())
        );
        assert_eq!(c.cmd("HRANDFIELD h 0"), "*0\r\n");
        assert_eq!(c.cmd("HRANDFIELD nokey"), "$-1\r\n");
        assert_eq!(c.cmd("HRANDFIELD nokey 3"), "*0\r\n");
        // A count at least the size returns the whole hash in its order.
        assert_eq!(
            c.cmd("HRANDFIELD h 5 WITHVALUES"),
            "*6\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"
        );
        let two = c.cmd("HRANDFIELD h 2");
        assert!(two.starts_with("*2\r\n"));
        let five = c.cmd("HRANDFIELD h -5");
        assert_eq!(five.matches("\r\n$1\r\n").count(), 5, "{five}");
        assert_eq!(
            c.cmd("HRANDFIELD h x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(c.cmd("HRANDFIELD h 1 foo"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("HRANDFIELD h 1 WITHVALUES x"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            c.cmd("HRANDFIELD h -9223372036854775808"),
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
        );
        assert_eq!(
            c.cmd("HRANDFIELD h -4611686018427387904 WITHVALUES"),
            "-ERR value is out of range\r\n"
        );
    }

    #[test]
    fn hrandfield_withvalues_pairs_are_arrays_in_resp3() {
        let mut c = TestClient::new();
        c.cmd("HELLO 3");
        c.cmd("HSET h a 1");
        assert_eq!(
            c.cmd("HRANDFIELD h -2 WITHVALUES"),
            "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        assert_eq!(c.cmd("HRANDFIELD h 1"), "*1\r\n$1\r\na\r\n");
    }

    #[test]
    fn hscan_returns_a_small_hash_whole_and_checks_cursor_key_then_options() {
        let mut c = TestClient::new();
        c.cmd("HSET h a 1 b 2 ab 3");
        assert_eq!(
            c.cmd("HSCAN h 0 MATCH a*"),
            "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$2\r\nab\r\n$1\r\n3\r\n"
        );
        assert_eq!(c.cmd("HSCAN h x"), "-ERR invalid cursor\r\n");
        assert_eq!(c.cmd("HSCAN nokey 0 COUNT 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(c.cmd("HSCAN h 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("HSCAN h 0 NOVALUES"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("HSCAN h 0 TYPE hash"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("HSCAN h 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn hscan_walks_a_large_hash_in_steps() {
        let mut c = TestClient::new();
        for i in 0..1000 {
            c.run(&["HSET", "h", &format!("f{i}"), "v"]);
        }
        let (mut cursor, mut fields, mut calls) =
            ("0".to_string(), std::collections::HashSet::new(), 0);
        loop {
            let reply = c.run(&["HSCAN", "h", &cursor, "COUNT", "10"]);
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_string();
            fields.extend(
                lines
                    .iter()
                    .filter(|l| l.starts_with('f'))
                    .map(|l| l.to_string()),
            );
            calls += 1;
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(fields.len(), 1000);
        assert!(calls > 3, "{calls}");
    }

    #[test]
    fn object_encoding_switches_to_hashtable_for_good() {
        let mut c = TestClient::new();
        c.cmd("HSET h f v");
        assert_eq!(c.cmd("OBJECT ENCODING h"), "$8\r\nlistpack\r\n");
        c.run(&["HSET", "h", "long", &"x".repeat(65)]);
        assert_eq!(c.cmd("OBJECT ENCODING h"), "$9\r\nhashtable\r\n");
        c.cmd("HDEL h long");
        assert_eq!(c.cmd("OBJECT ENCODING h"), "$9\r\nhashtable\r\n");
        for i in 0..512 {
            c.run(&["HSET", "g", &i.to_string(), "v"]);
        }
        assert_eq!(c.cmd("OBJECT ENCODING g"), "$8\r\nlistpack\r\n");
        c.cmd("HSET g 512 v");
        assert_eq!(c.cmd("OBJECT ENCODING g"), "$9\r\nhashtable\r\n");
    }

    #[test]
    fn generic_key_commands_carry_hashes() {
        let mut c = TestClient::new();
        c.cmd("HSET h a 1");
        assert_eq!(c.cmd("COPY h h2"), ":1\r\n");
        assert_eq!(c.cmd("RENAME h h3"), "+OK\r\n");
        assert_eq!(c.cmd("HGET h3 a"), "$1\r\n1\r\n");
        assert_eq!(c.cmd("HGET h2 a"), "$1\r\n1\r\n");
        assert_eq!(
            c.cmd("SCAN 0 TYPE hash COUNT 1000"),
            c.cmd("SCAN 0 TYPE HASH COUNT 1000")
        );
        assert!(c
            .cmd("SCAN 0 TYPE hash COUNT 1000")
            .contains("$2\r\nh2\r\n"));
        assert!(!c.cmd("SCAN 0 TYPE set COUNT 1000").contains("h2"));
        assert_eq!(c.cmd("DEL h2 h3"), ":2\r\n");
    }
}
