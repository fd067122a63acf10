//! Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID and XREAD (with BLOCK); the consumer-group commands
//! (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO) are in [`group`].
//!
//! The value lives in [`crate::store::Stream`]. Unlike the other containers a stream key survives losing its last
//! entry (XDEL, XTRIM), as in Redis; only DEL and friends remove it.
//!
//! IDs are parsed as Redis's `streamGenericParseIDOrReply` does: `ms[-seq]` with C `strtoull` leniency for numbers
//! above `i64::MAX`, `-`/`+` only where a range bound is expected, `ms-*` only in XADD.
//!
//! Approximate trimming (`~`): Redis removes only whole radix-tree nodes, which hold 100 entries or 4096 listpack
//! bytes by default (`stream-node-max-entries`, `stream-node-max-bytes`); the stream records where those nodes start
//! ([`Stream::trim`]).

mod group;

use std::time::Duration;

pub(super) use group::{group_reader_wake, reply_group_read, GroupRead, Wake};

use super::args::{c_str, is, parse_i64, Cursor};
use super::typed::{find, lookup, lookup_mut, update, Container};
use super::{blocking, flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::store::stream::{AppendError, Fields, IdSpec, StreamId, TrimTo, NODE_ENTRIES};
use crate::store::{BlockOp, Entry, Stream, Value};

const KEY1: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, WRITE | DENYOOM | FAST, KEY1, xadd),
    CommandSpec::new("xlen", 2, READONLY | FAST, KEY1, xlen),
    CommandSpec::new("xrange", -4, READONLY, KEY1, xrange),
    CommandSpec::new("xrevrange", -4, READONLY, KEY1, xrevrange),
    CommandSpec::new("xdel", -3, WRITE | FAST, KEY1, xdel),
    CommandSpec::new("xtrim", -4, WRITE, KEY1, xtrim),
    CommandSpec::new("xsetid", -3, WRITE | DENYOOM | FAST, KEY1, xsetid),
    CommandSpec::new(
        "xread",
        -4,
        READONLY | BLOCKING,
        Keys::AfterKeyword { keyword: "streams" },
        xread,
    ),
    CommandSpec::new(
        "xreadgroup",
        -7,
        WRITE | BLOCKING,
        Keys::AfterKeyword { keyword: "streams" },
        group::xreadgroup,
    ),
    CommandSpec::new("xack", -4, WRITE | FAST, KEY1, group::xack),
    CommandSpec::new("xpending", -3, READONLY, KEY1, group::xpending),
    CommandSpec::new("xclaim", -6, WRITE | FAST, KEY1, group::xclaim),
    CommandSpec::new("xautoclaim", -6, WRITE | FAST, KEY1, group::xautoclaim),
    CommandSpec::container("xgroup", 0, group::XGROUP_SUBCOMMANDS),
    CommandSpec::container("xinfo", 0, group::XINFO_SUBCOMMANDS),
];

impl Container for Stream {
    fn of(value: &Value) -> Option<&Self> {
        match value {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }
    fn of_mut(value: &mut Value) -> Option<&mut Self> {
        match value {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }
    /// A stream without entries still exists, so it never counts as empty for [`super::typed::remove_if_empty`].
    fn is_empty(&self) -> bool {
        false
    }
}

fn invalid_id() -> CmdError {
    CmdError::err("Invalid stream ID specified as stream command argument")
}

/// Redis's `string2ull`: a non-negative `i64`, else what C `strtoull` accepts whole (leading white space, a sign,
/// values up to `u64::MAX`; a `-` negates modulo 2^64 as C does).
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(n) = parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let s = &s[s
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'..=b'\r'))
        .count()..];
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// The sequence part of an ID argument.
enum Seq {
    Missing,
    Star,
    Given(u64),
}

/// Splits `ms[-seq]` (already cut at a NUL, as Redis reads it as a C string).
fn split_id(arg: &[u8], star_ok: bool) -> Option<(u64, Seq)> {
    let (ms, seq) = match arg.iter().position(|&c| c == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let seq = match seq {
        None => Seq::Missing,
        Some(b"*") if star_ok => Seq::Star,
        Some(seq) => Seq::Given(parse_u64(seq)?),
    };
    Some((parse_u64(ms)?, seq))
}

/// Redis keeps ID arguments in a 128-byte buffer and refuses longer ones.
fn id_text(arg: &[u8]) -> Result<&[u8], CmdError> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    Ok(c_str(arg))
}

/// A stream ID argument; a missing sequence reads as `missing_seq`. `-` and `+` (the extremes) only when not
/// `strict`.
fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId, CmdError> {
    let text = id_text(arg)?;
    match text {
        b"-" if !strict => Ok(StreamId::MIN),
        b"+" if !strict => Ok(StreamId::MAX),
        _ => match split_id(text, false).ok_or_else(invalid_id)? {
            (ms, Seq::Given(seq)) => Ok(StreamId::new(ms, seq)),
            (ms, _) => Ok(StreamId::new(ms, missing_seq)),
        },
    }
}

/// A strict ID with a missing sequence read as 0 (XDEL, XREAD, MINID).
fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id(arg, 0, true)
}

/// The entries of one stream: `[[id, [field, value, ...]], ...]` (arrays in RESP3 too).
fn reply_entries(out: &mut Reply, entries: &[(StreamId, &Fields)]) {
    out.array(entries.len());
    for (id, fields) in entries {
        reply_entry(out, *id, fields);
    }
}

fn reply_entry(out: &mut Reply, id: StreamId, fields: &Fields) {
    out.array(2);
    out.bulk(id.to_string().as_bytes());
    out.array(fields.len() * 2);
    for (f, v) in fields {
        out.bulk(f);
        out.bulk(v);
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// XADD and XTRIM.

/// A trimming request (XADD's options or XTRIM's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Trim {
    strategy: TrimTo,
    approx: bool,
    /// Most entries to remove (0: no limit).
    limit: u64,
}

/// The options XADD and XTRIM share, parsed as Redis's `streamParseAddOrTrimArgsOrReply`.
struct AddOrTrim {
    trim: Option<Trim>,
    nomkstream: bool,
    /// XADD's ID, and the index of its argument.
    id: Option<(IdSpec, usize)>,
}

fn parse_add_or_trim(argv: Argv, xadd: bool) -> Result<AddOrTrim, CmdError> {
    let mut strategy = None;
    let mut approx = false;
    let mut limit = None;
    let mut nomkstream = false;
    let mut id = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv.get(i);
        if xadd && c_str(opt) == b"*" {
            id = Some((IdSpec::Auto, i));
            break;
        }
        if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if strategy.is_some() {
                return Err(CmdError::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            let next = argv.get(i + 1);
            approx = more >= 2 && next == b"~";
            if more >= 2 && (next == b"~" || next == b"=") {
                i += 1;
            }
            let arg = argv.get(i + 1);
            strategy = Some(if is(opt, "maxlen") {
                let n = parse_i64(arg).ok_or(CmdError::NotInteger)?;
                TrimTo::MaxLen(
                    u64::try_from(n)
                        .map_err(|_| CmdError::err("The MAXLEN argument must be >= 0."))?,
                )
            } else {
                TrimTo::MinId(parse_strict_id(arg)?)
            });
            i += 2;
        } else if is(opt, "limit") && more > 0 {
            let n = parse_i64(argv.get(i + 1)).ok_or(CmdError::NotInteger)?;
            limit = Some(
                u64::try_from(n).map_err(|_| CmdError::err("The LIMIT argument must be >= 0."))?,
            );
            i += 2;
        } else if xadd && is(opt, "nomkstream") {
            nomkstream = true;
            i += 1;
        } else if xadd {
            id = Some((parse_add_id(opt)?, i));
            break;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if limit.is_some() && strategy.is_none() {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit.is_some() && !approx {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    // Redis's default limit for `~`: 100 nodes' worth of entries.
    let default_limit = if approx { 100 * NODE_ENTRIES as u64 } else { 0 };
    let trim = strategy.map(|strategy| Trim {
        strategy,
        approx,
        limit: limit.unwrap_or(default_limit),
    });
    Ok(AddOrTrim {
        trim,
        nomkstream,
        id,
    })
}

/// XADD's explicit ID: `ms-seq`, `ms` (sequence 0) or `ms-*`.
fn parse_add_id(arg: &[u8]) -> Result<IdSpec, CmdError> {
    let text = id_text(arg)?;
    match split_id(text, true).ok_or_else(invalid_id)? {
        (ms, Seq::Star) => Ok(IdSpec::Ms(ms)),
        (ms, Seq::Missing) => Ok(IdSpec::Exact(StreamId::new(ms, 0))),
        (ms, Seq::Given(seq)) => Ok(IdSpec::Exact(StreamId::new(ms, seq))),
    }
}

/// Trims `stream` as `trim` asks; returns how many entries went.
fn apply_trim(stream: &mut Stream, trim: Trim) -> usize {
    let limit = usize::try_from(trim.limit).unwrap_or(usize::MAX);
    stream.trim(trim.strategy, trim.approx, limit)
}

fn xadd(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let parsed = parse_add_or_trim(argv, true)?;
    let fields_at = parsed.id.map_or(argv.len() + 1, |(_, at)| at + 1);
    let pairs = argv.len().saturating_sub(fields_at);
    if fields_at > argv.len() || pairs < 2 || pairs % 2 == 1 {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    let Some((spec, _)) = parsed.id else {
        return Err(CmdError::WrongArity("xadd".into()));
    };
    if spec == IdSpec::Exact(StreamId::MIN) {
        return Err(CmdError::err(
            "The ID specified in XADD must be greater than 0-0",
        ));
    }
    let fields: Fields = argv
        .iter_from(fields_at)
        .collect::<Vec<_>>()
        .chunks_exact(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect();
    let now = ctx.now;
    let key = argv.get(1);
    let (db, out) = ctx.db_out(key);
    let add = |stream: &mut Stream| -> Result<(StreamId, bool), CmdError> {
        let id = stream.append(spec, fields, now).map_err(|e| match e {
            AppendError::NotGreater => CmdError::err(
                "The ID specified in XADD is equal or smaller than the target stream top item",
            ),
            AppendError::Exhausted => CmdError::err(
                "The stream has exhausted the last possible ID, unable to add more items",
            ),
        })?;
        let trimmed = parsed.trim.is_some_and(|trim| apply_trim(stream, trim) > 0);
        Ok((id, trimmed))
    };
    let (id, trimmed) = match lookup_mut::<Stream>(db, key, now)? {
        Some(stream) => add(stream)?,
        None if parsed.nomkstream => {
            out.null();
            return Ok(());
        }
        None => {
            let mut stream = Stream::new();
            let added = add(&mut stream)?;
            db.insert(key, Value::Stream(stream.into()), None);
            added
        }
    };
    out.bulk(id.to_string().as_bytes());
    ctx.notify(notify::STREAM, "xadd", key);
    if trimmed {
        ctx.notify(notify::STREAM, "xtrim", key);
    }
    Ok(())
}

fn xtrim(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let Some(trim) = parse_add_or_trim(argv, false)?.trim else {
        return Err(CmdError::Syntax);
    };
    let now = ctx.now;
    let key = argv.get(1);
    let (db, out) = ctx.db_out(key);
    let removed = update::<Stream, _>(db, key, now, |s| {
        let removed = apply_trim(s, trim);
        (removed, removed > 0)
    })?;
    let removed = removed.unwrap_or(0);
    out.int(removed as i64);
    if removed > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------------
// XLEN, XRANGE, XREVRANGE, XDEL.

fn xlen(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let key = argv.get(1);
    let (db, out) = ctx.db_out(key);
    let len = lookup::<Stream>(db, key, now)?.map_or(0, Stream::len);
    out.int(len as i64);
    Ok(())
}

fn xrange(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range(ctx, argv, false)
}

fn xrevrange(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range(ctx, argv, true)
}

/// A range bound: `(id` excludes `id` (and then `-`/`+` are invalid).
fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    match arg.strip_prefix(b"(") {
        Some(rest) if !rest.is_empty() => Ok((parse_id(rest, missing_seq, true)?, true)),
        _ => Ok((parse_id(arg, missing_seq, false)?, false)),
    }
}

/// A range's start bound: `(id` is exclusive, so it starts at the next ID.
fn start_bound(arg: &[u8]) -> Result<StreamId, CmdError> {
    match interval_id(arg, 0)? {
        (id, true) => id
            .next()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval")),
        (id, false) => Ok(id),
    }
}

/// A range's end bound: `(id` is exclusive, so it ends at the previous ID.
fn end_bound(arg: &[u8]) -> Result<StreamId, CmdError> {
    match interval_id(arg, u64::MAX)? {
        (id, true) => id
            .prev()
            .ok_or_else(|| CmdError::err("invalid end ID for the interval")),
        (id, false) => Ok(id),
    }
}

fn range(ctx: &mut Ctx, argv: Argv, rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (argv.get(3), argv.get(2))
    } else {
        (argv.get(2), argv.get(3))
    };
    let start = start_bound(start_arg)?;
    let end = end_bound(end_arg)?;
    let mut count = None;
    let mut i = 4;
    while i < argv.len() {
        if is(argv.get(i), "count") && i + 1 < argv.len() {
            let n = parse_i64(argv.get(i + 1)).ok_or(CmdError::NotInteger)?;
            count = Some(usize::try_from(n.max(0)).unwrap_or(usize::MAX));
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let now = ctx.now;
    let key = argv.get(1);
    let (db, out) = ctx.db_out(key);
    match lookup::<Stream>(db, key, now)? {
        None => out.array(0),
        // Redis answers COUNT 0 on an existing stream with a null array.
        Some(_) if count == Some(0) => out.null_array(),
        Some(stream) => reply_entries(out, &stream.range(start, end, rev, count)),
    }
    Ok(())
}

fn xdel(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let key = argv.get(1);
    let (db, out) = ctx.db_out(key);
    // Redis looks the key up first: a missing key deletes nothing, whatever the IDs.
    if find::<Stream>(db, key, now)?.is_none() {
        out.int(0);
        return Ok(());
    }
    let ids = argv
        .iter_from(2)
        .map(parse_strict_id)
        .collect::<Result<Vec<_>, _>>()?;
    let deleted = update::<Stream, _>(db, key, now, |s| {
        let deleted = s.delete(&ids);
        (deleted, deleted > 0)
    })?;
    let deleted = deleted.unwrap_or(0);
    out.int(deleted as i64);
    if deleted > 0 {
        ctx.notify(notify::STREAM, "xdel", key);
    }
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]: sets the bookkeeping a stream
/// keeps beside its entries (how Redis replicates and restores it), with Redis's checks in Redis's order: options,
/// then the key, then the values against the stream.
fn xsetid(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let id = parse_strict_id(argv.get(2))?;
    let (mut entries_added, mut max_deleted) = (None, None);
    let mut opts = Cursor::new(argv, 3);
    while let Some(opt) = opts.next() {
        if is(opt, "ENTRIESADDED") && opts.remaining() > 0 {
            let n = opts.int()?;
            entries_added = Some(
                u64::try_from(n).map_err(|_| CmdError::err("entries_added must be positive"))?,
            );
        } else if is(opt, "MAXDELETEDID") && opts.remaining() > 0 {
            let deleted = parse_strict_id(opts.value()?)?;
            if id < deleted {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            max_deleted = Some(deleted);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let now = ctx.now;
    let key = argv.get(1);
    let (db, out) = ctx.db_out(key);
    let checked = update::<Stream, _>(db, key, now, |s| {
        let error = if id < s.max_deleted() {
            Some("The ID specified in XSETID is smaller than current max_deleted_entry_id")
        } else if s.last().is_some_and(|(top, _)| id < *top) {
            Some("The ID specified in XSETID is smaller than the target stream top item")
        } else if entries_added.is_some_and(|n| (s.len() as u64) > n) {
            Some("The entries_added specified in XSETID is smaller than the target stream length")
        } else {
            None
        };
        if error.is_none() {
            s.set_last_id(id);
            if let Some(n) = entries_added {
                s.set_entries_added(n);
            }
            if let Some(deleted) = max_deleted.filter(|d| *d != StreamId::MIN) {
                s.set_max_deleted(deleted);
            }
        }
        (error, error.is_none())
    })?;
    match checked {
        None => Err(CmdError::NoSuchKey),
        Some(Some(error)) => Err(CmdError::err(error)),
        Some(None) => {
            out.ok();
            ctx.notify(notify::STREAM, "xsetid", key);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// XREAD.

/// XREAD's and XREADGROUP's arguments.
struct ReadArgs<'a> {
    count: Option<usize>,
    /// BLOCK's timeout (`Some(None)`: wait forever).
    block: Option<Option<Duration>>,
    /// XREADGROUP's group and consumer.
    group: Option<(&'a [u8], &'a [u8])>,
    /// XREADGROUP's NOACK.
    noack: bool,
    keys: Vec<&'a [u8]>,
    ids: Vec<&'a [u8]>,
}

/// Parses XREAD's (`group: false`) or XREADGROUP's options as Redis's `xreadCommand` does; from a script
/// (`in_script`) BLOCK is refused, as Redis 7.2 refuses it there (7.4 lets it answer at once).
fn parse_read(
    argv: Argv<'_>,
    group: bool,
    now: u64,
    in_script: bool,
) -> Result<ReadArgs<'_>, CmdError> {
    let name = if group { "xreadgroup" } else { "xread" };
    let only_xreadgroup = |opt: &str| {
        CmdError::err(format!(
            "The {opt} option is only supported by XREADGROUP. You called XREAD instead."
        ))
    };
    let mut args = ReadArgs {
        count: None,
        block: None,
        group: None,
        noack: false,
        keys: Vec::new(),
        ids: Vec::new(),
    };
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = argv.get(i);
        if is(opt, "block") && more > 0 {
            if in_script {
                return Err(CmdError::err(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(argv.get(0))
                )));
            }
            args.block = Some(blocking::parse_timeout_ms(argv.get(i + 1), now)?);
            i += 2;
        } else if is(opt, "count") && more > 0 {
            let n = parse_i64(argv.get(i + 1)).ok_or(CmdError::NotInteger)?;
            // COUNT 0 (or less) means no limit.
            args.count = usize::try_from(n).ok().filter(|&n| n > 0);
            i += 2;
        } else if is(opt, "streams") && more > 0 {
            let rest: Vec<&[u8]> = argv.iter_from(i + 1).collect();
            if rest.len() % 2 != 0 {
                let symbol = if group { '>' } else { '$' };
                return Err(CmdError::err(format!(
                    "Unbalanced '{name}' list of streams: for each stream key an ID or '{symbol}' must be specified."
                )));
            }
            let (keys, ids) = rest.split_at(rest.len() / 2);
            args.keys = keys.to_vec();
            args.ids = ids.to_vec();
            if group && args.group.is_none() {
                return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
            }
            return Ok(args);
        } else if is(opt, "group") && more >= 2 {
            if !group {
                return Err(only_xreadgroup("GROUP"));
            }
            args.group = Some((argv.get(i + 1), argv.get(i + 2)));
            i += 3;
        } else if is(opt, "noack") {
            if !group {
                return Err(only_xreadgroup("NOACK"));
            }
            args.noack = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Err(CmdError::Syntax)
}

/// Redis's XREAD and XREADGROUP look every key up again to serve it, once all are checked: a second keyspace hit or
/// miss (and `keymiss`) per key.
fn look_up_again(ctx: &mut Ctx, keys: &[&[u8]], now: u64) {
    for &key in keys {
        ctx.db(key).get(key, now);
    }
}

fn xread(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let args = parse_read(argv, false, ctx.now, ctx.client.in_script)?;
    // Redis checks each key's type and then parses its ID, key by key.
    let now = ctx.now;
    let mut after = Vec::with_capacity(args.keys.len());
    for (key, id) in args.keys.iter().zip(&args.ids) {
        let stream = lookup::<Stream>(ctx.db(key), key, now)?;
        after.push(match c_str(id) {
            b"$" => stream.map_or(StreamId::MIN, Stream::last_id),
            b">" => {
                return Err(CmdError::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> \
                     option.",
                ))
            }
            _ => parse_strict_id(id)?,
        });
    }
    look_up_again(ctx, &args.keys, now);
    let (dbs, out) = ctx.dbs_out();
    let served = reply_ready(out, &args.keys, &after, args.count, |key| {
        dbs.get(key).peek(key, now)
    });
    match args.block {
        _ if served => Ok(()),
        None => {
            out.null_array();
            Ok(())
        }
        Some(timeout) => {
            let op = BlockOp::XRead {
                after,
                count: args.count,
            };
            let keys = args.keys.iter().map(|k| k.to_vec()).collect();
            blocking::block(ctx, keys, op, timeout)
        }
    }
}

/// The entries of one stream after an ID.
type Ready<'a, 'k> = (&'k [u8], Vec<(StreamId, &'a Fields)>);

/// Writes XREAD's reply for the `keys` whose stream (found through `entry`) has entries after the matching `after`
/// ID, at most `count` each: `[[key, entries], ...]` in RESP2, a map in RESP3. Writes nothing and returns false when
/// none has. Shared by XREAD and the serving of blocked readers.
pub(super) fn reply_ready<'a, K: AsRef<[u8]>>(
    out: &mut Reply,
    keys: &[K],
    after: &[StreamId],
    count: Option<usize>,
    entry: impl Fn(&[u8]) -> Option<&'a Entry>,
) -> bool {
    let ready: Vec<Ready<'a, '_>> = keys
        .iter()
        .zip(after)
        .filter_map(|(key, &after)| {
            let key = key.as_ref();
            let Some(Value::Stream(s)) = entry(key).map(|e| &e.value) else {
                return None;
            };
            let start = s
                .last()
                .filter(|(last, _)| **last > after)
                .and(after.next())?;
            Some((key, s.range(start, StreamId::MAX, false, count)))
        })
        .collect();
    if ready.is_empty() {
        return false;
    }
    if out.resp3() {
        out.map(ready.len());
    } else {
        out.array(ready.len());
    }
    for (key, entries) in &ready {
        if !out.resp3() {
            out.array(2);
        }
        out.bulk(key);
        reply_entries(out, entries);
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;

    const NOT_GREATER: &str =
        "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n";
    const INVALID: &str = "-ERR Invalid stream ID specified as stream command argument\r\n";

    #[test]
    fn xadd_explicit_ids_must_grow() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("XADD s 1-1 a 1"), "$3\r\n1-1\r\n");
        assert_eq!(c.cmd("XADD s 1-1 a 1"), NOT_GREATER);
        assert_eq!(c.cmd("XADD s 1 a 1"), NOT_GREATER);
        assert_eq!(c.cmd("XADD s 1-* a 1"), "$3\r\n1-2\r\n");
        assert_eq!(c.cmd("XADD s 2 a 1"), "$3\r\n2-0\r\n");
        assert_eq!(
            c.cmd("XADD s 0-0 a 1"),
            "-ERR The ID specified in XADD must be greater than 0-0\r\n"
        );
        assert_eq!(c.cmd("XADD t 0-* a 1"), "$3\r\n0-1\r\n");
        assert_eq!(c.cmd("XADD s abc a 1"), INVALID);
        assert_eq!(c.cmd("XADD s - a 1"), INVALID);
        assert_eq!(c.cmd("XLEN s"), ":3\r\n");
    }

    #[test]
    fn xadd_checks_field_pairs_and_options() {
        let mut c = TestClient::new();
        let arity = "-ERR wrong number of arguments for 'xadd' command\r\n";
        assert_eq!(c.cmd("XADD s 5-1 a"), arity);
        assert_eq!(c.cmd("XADD s 5-1 a 1 b"), arity);
        assert_eq!(c.cmd("XADD s NOMKSTREAM MAXLEN 1"), arity);
        assert_eq!(
            c.cmd("XADD s MAXLEN -1 * a 1"),
            "-ERR The MAXLEN argument must be >= 0.\r\n"
        );
        assert_eq!(
            c.cmd("XADD s LIMIT 5 * a 1"),
            "-ERR syntax error, LIMIT cannot be used without specifying a trimming strategy\r\n"
        );
        assert_eq!(
            c.cmd("XADD s MAXLEN 2 LIMIT 5 * a 1"),
            "-ERR syntax error, LIMIT cannot be used without the special ~ option\r\n"
        );
        assert_eq!(
            c.cmd("XADD s MAXLEN 1 MINID 2 * a 1"),
            "-ERR syntax error, MAXLEN and MINID options at the same time are not compatible\r\n"
        );
        assert_eq!(c.cmd("XADD s NOMKSTREAM * a 1"), "$-1\r\n");
        assert_eq!(c.cmd("EXISTS s"), ":0\r\n");
        c.cmd("SET str x");
        assert_eq!(
            c.cmd("XADD str * a 1"),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
    }

    #[test]
    fn xadd_auto_ids_use_the_clock() {
        let mut c = TestClient::new();
        let reply = c.cmd("XADD s * a 1");
        let id = reply.lines().nth(1).unwrap().to_string();
        let (ms, seq) = id.split_once('-').unwrap();
        assert!(ms.parse::<u64>().unwrap() > 1_700_000_000_000);
        assert_eq!(seq, "0");
        // An explicit ID far in the future makes `*` continue its millisecond.
        c.cmd("XADD s 99999999999999-5 a 1");
        assert_eq!(c.cmd("XADD s * a 1"), "$16\r\n99999999999999-6\r\n");
    }

    #[test]
    fn xadd_maxlen_and_xtrim_trim_from_the_head() {
        let mut c = TestClient::new();
        for i in 1..=5 {
            c.cmd(&format!("XADD s {i} f v"));
        }
        c.cmd("XADD s MAXLEN 3 6 f v");
        assert_eq!(c.cmd("XLEN s"), ":3\r\n");
        assert_eq!(c.cmd("XTRIM s MINID 5"), ":1\r\n");
        assert_eq!(c.cmd("XTRIM s MAXLEN = 0"), ":2\r\n");
        // Trimming to empty keeps the key, as in Redis.
        assert_eq!(c.cmd("TYPE s"), "+stream\r\n");
        assert_eq!(c.cmd("XTRIM nokey MAXLEN 0"), ":0\r\n");
        assert_eq!(
            c.cmd("XTRIM s LIMIT 1"),
            "-ERR syntax error, LIMIT cannot be used without specifying a trimming strategy\r\n"
        );
        assert_eq!(c.cmd("XTRIM s FOO 1"), "-ERR syntax error\r\n");
    }

    #[test]
    fn approximate_trim_removes_whole_nodes_only() {
        let mut c = TestClient::new();
        for i in 1..=250 {
            c.cmd(&format!("XADD s {i} f v"));
        }
        assert_eq!(c.cmd("XTRIM s MAXLEN ~ 200"), ":0\r\n");
        assert_eq!(c.cmd("XTRIM s MAXLEN ~ 10"), ":200\r\n");
        assert_eq!(c.cmd("XLEN s"), ":50\r\n");
        for i in 251..=450 {
            c.cmd(&format!("XADD s {i} f v"));
        }
        assert_eq!(c.cmd("XTRIM s MAXLEN ~ 0 LIMIT 150"), ":100\r\n");
    }

    #[test]
    fn xrange_bounds_exclusion_and_count() {
        let mut c = TestClient::new();
        for id in ["1-1", "1-2", "2-0"] {
            c.cmd(&format!("XADD s {id} f {id}"));
        }
        let entry = |id: &str| format!("*2\r\n$3\r\n{id}\r\n*2\r\n$1\r\nf\r\n$3\r\n{id}\r\n");
        assert_eq!(
            c.cmd("XRANGE s 1 1"),
            format!("*2\r\n{}{}", entry("1-1"), entry("1-2"))
        );
        assert_eq!(
            c.cmd("XRANGE s (1-1 + COUNT 1"),
            format!("*1\r\n{}", entry("1-2"))
        );
        assert_eq!(
            c.cmd("XREVRANGE s + - COUNT 1"),
            format!("*1\r\n{}", entry("2-0"))
        );
        assert_eq!(
            c.cmd("XREVRANGE s (2-0 (1-1"),
            format!("*1\r\n{}", entry("1-2"))
        );
        assert_eq!(c.cmd("XRANGE s - + COUNT 0"), "*-1\r\n");
        assert_eq!(c.cmd("XRANGE nokey - + COUNT 0"), "*0\r\n");
        assert_eq!(c.cmd("XRANGE s 3 +"), "*0\r\n");
        assert_eq!(
            c.cmd("XRANGE s (18446744073709551615-18446744073709551615 +"),
            "-ERR invalid start ID for the interval\r\n"
        );
        assert_eq!(
            c.cmd("XRANGE s - (0-0"),
            "-ERR invalid end ID for the interval\r\n"
        );
        assert_eq!(c.cmd("XRANGE s (- +"), INVALID);
        assert_eq!(c.cmd("XRANGE s - + FOO"), "-ERR syntax error\r\n");
    }

    #[test]
    fn xdel_counts_existing_entries_and_keeps_the_top_id() {
        let mut c = TestClient::new();
        c.cmd("XADD s 1-1 a 1");
        c.cmd("XADD s 2-1 a 1");
        assert_eq!(c.cmd("XDEL s 1-1 abc"), INVALID);
        assert_eq!(c.cmd("XDEL s 1-1 2-1 3"), ":2\r\n");
        assert_eq!(c.cmd("XLEN s"), ":0\r\n");
        assert_eq!(c.cmd("XADD s 2-1 a 1"), NOT_GREATER);
        assert_eq!(c.cmd("XDEL nokey 1"), ":0\r\n");
    }

    #[test]
    fn ids_above_i64_read_like_strtoull() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("XADD s 18446744073709551615-0 a 1"),
            "$22\r\n18446744073709551615-0\r\n"
        );
        assert_eq!(c.cmd("XADD s 18446744073709551616-0 a 1"), INVALID);
        assert_eq!(c.cmd("XADD s -1-0 a 1"), INVALID);
    }

    #[test]
    fn xread_serves_streams_with_newer_entries() {
        let mut c = TestClient::new();
        c.cmd("XADD a 1-1 f v");
        c.cmd("XADD b 2-1 f v");
        let entry = |id: &str| format!("*2\r\n$3\r\n{id}\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
        assert_eq!(
            c.cmd("XREAD COUNT 1 STREAMS a b 0 2-1"),
            format!("*1\r\n*2\r\n$1\r\na\r\n*1\r\n{}", entry("1-1"))
        );
        assert_eq!(c.cmd("XREAD STREAMS a b $ $"), "*-1\r\n");
        assert_eq!(c.cmd("XREAD STREAMS nokey 0"), "*-1\r\n");
        c.cmd("HELLO 3");
        assert_eq!(
            c.cmd("XREAD STREAMS a b 0 0"),
            format!(
                "%2\r\n$1\r\na\r\n*1\r\n{}$1\r\nb\r\n*1\r\n{}",
                entry("1-1"),
                entry("2-1")
            )
        );
        assert_eq!(c.cmd("XREAD STREAMS a 5"), "_\r\n");
    }

    #[test]
    fn xread_argument_errors_read_like_redis() {
        let mut c = TestClient::new();
        c.cmd("XADD s 1-1 f v");
        c.cmd("SET str x");
        assert_eq!(
            c.cmd("XREAD STREAMS s"),
            "-ERR wrong number of arguments for 'xread' command\r\n"
        );
        assert_eq!(
            c.cmd("XREAD STREAMS s t 0"),
            "-ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.\r\n"
        );
        assert_eq!(
            c.cmd("XREAD STREAMS str s x 0"),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        );
        assert_eq!(c.cmd("XREAD STREAMS s +"), INVALID);
        assert_eq!(
            c.cmd("XREAD COUNT x STREAMS s 0"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(c.cmd("XREAD FOO STREAMS s 0"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("XREAD BLOCK -1 STREAMS s 0"),
            "-ERR timeout is negative\r\n"
        );
        assert_eq!(
            c.cmd("XREAD GROUP g c STREAMS s 0"),
            "-ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.\r\n"
        );
        assert_eq!(
            c.cmd("XREAD STREAMS s >"),
            "-ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.\r\n"
        );
    }

    #[test]
    fn streams_work_with_the_generic_key_commands() {
        let mut c = TestClient::new();
        c.cmd("XADD s 1-1 f v");
        assert_eq!(c.cmd("TYPE s"), "+stream\r\n");
        assert_eq!(c.cmd("OBJECT ENCODING s"), "$6\r\nstream\r\n");
        assert_eq!(c.cmd("COPY s t"), ":1\r\n");
        assert_eq!(c.cmd("RENAME t u"), "+OK\r\n");
        assert_eq!(c.cmd("XLEN u"), ":1\r\n");
        c.cmd("SET str x");
        // The cursor and the two stream keys, not the string.
        let scan = c.cmd("SCAN 0 COUNT 100 TYPE stream");
        assert_eq!(scan.matches("$1\r\n").count(), 3, "{scan}");
        assert!(!scan.contains("str"));
        assert_eq!(
            c.cmd("COMMAND GETKEYS XREAD COUNT 1 STREAMS a b 0 0"),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
    }
}
