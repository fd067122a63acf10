//! Consumer-group commands: XGROUP, XREADGROUP (with BLOCK), XACK, XPENDING, XCLAIM, XAUTOCLAIM and XINFO.
//!
//! The group state lives in [`crate::store::stream::group`]; this file parses, checks in Redis's order (options
//! first where Redis parses them first, then the key and group), runs one store operation and replies. Behaviour is
//! Redis 7.2's: consumers carry `seen-time` (any attempt) and `active-time` (a successful read or claim), a blocked
//! XREADGROUP fails with NOGROUP or WRONGTYPE when its key or group goes away (7.2 re-runs the command), and
//! XAUTOCLAIM reports the deleted IDs it dropped as a third element.

use std::borrow::Cow;

use super::super::args::{c_str, is, parse_i64};
use super::super::list::Keyspaces;
use super::super::typed::{lookup, lookup_mut, update};
use super::super::{blocking, flag::*, reply_help, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use super::{end_bound, parse_id, parse_strict_id, reply_entries, reply_entry, start_bound};
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::store::stream::group::{AutoClaimScan, Claim, ConsumerGroup, Retry};
use crate::store::stream::StreamId;
use crate::store::{BlockOp, Keyspace, Stream, Value};

const KEY2: Keys = Keys::Range {
    first: 2,
    last: 2,
    step: 1,
};

/// XGROUP's subcommands.
pub(in crate::cmd) const XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    // Of XGROUP's writes only DESTROY readies the key (its blocked readers get NOGROUP), as in Redis.
    CommandSpec::new(
        "create",
        -5,
        WRITE | DENYOOM | READIES_NONE,
        KEY2,
        xgroup_create,
    ),
    CommandSpec::new("setid", -5, WRITE | READIES_NONE, KEY2, xgroup_setid),
    CommandSpec::new("destroy", 4, WRITE, KEY2, xgroup_destroy),
    CommandSpec::new(
        "createconsumer",
        5,
        WRITE | DENYOOM | READIES_NONE,
        KEY2,
        xgroup_createconsumer,
    ),
    CommandSpec::new(
        "delconsumer",
        5,
        WRITE | READIES_NONE,
        KEY2,
        xgroup_delconsumer,
    ),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, xgroup_help),
];

/// XINFO's subcommands.
pub(in crate::cmd) const XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("stream", -3, READONLY, KEY2, xinfo_stream),
    CommandSpec::new("groups", 3, READONLY, KEY2, xinfo_groups),
    CommandSpec::new("consumers", 4, READONLY, KEY2, xinfo_consumers),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, xinfo_help),
];

/// An argument as Redis prints it with `%s`: cut at a NUL.
fn text(arg: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(c_str(arg))
}

/// The NOGROUP error of XREADGROUP.
fn nogroup_read(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Coded(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        text(key),
        text(group)
    ))
}

/// The NOGROUP error of XPENDING, XCLAIM and XAUTOCLAIM.
fn nogroup_key(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Coded(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(key),
        text(group)
    ))
}

/// The NOGROUP error of XGROUP and XINFO CONSUMERS.
fn nogroup_named(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Coded(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    ))
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(argv: Argv, command: &str) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {command} HELP.",
        text(argv.get(1)).chars().take(128).collect::<String>()
    ))
}

/// Milliseconds from `then` to `now`, never negative.
fn elapsed(now: u64, then: u64) -> i64 {
    i64::try_from(now.saturating_sub(then)).unwrap_or(i64::MAX)
}

/// An ID as a bulk string.
fn reply_id(out: &mut Reply, id: StreamId) {
    out.bulk(id.to_string().as_bytes());
}

/// The entry `id` of `stream` as `[id, [field, value...]]` (it exists: the caller just found it).
fn reply_stream_entry(out: &mut Reply, stream: &Stream, id: StreamId) {
    match stream.get(id) {
        Some(fields) => reply_entry(out, id, fields),
        None => out.null_array(),
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// XREADGROUP.

/// The group side of an XREADGROUP: who reads and how.
pub(in crate::cmd) struct GroupRead<'a> {
    /// The group name.
    pub group: &'a [u8],
    /// The consumer name (created on first use).
    pub consumer: &'a [u8],
    /// COUNT (None: all).
    pub count: Option<usize>,
    /// NOACK: new entries do not become pending.
    pub noack: bool,
}

/// What a blocked XREADGROUP does after a write to one of its keys.
#[derive(Debug, PartialEq)]
pub(in crate::cmd) enum Wake {
    /// Nothing new for its group: keep waiting.
    Wait,
    /// A stream has entries past its group's last ID: serve it.
    Ready,
    /// Its key or group is gone, or the key holds another type: fail with this error.
    Fail(CmdError),
}

/// Judges a blocked XREADGROUP (every ID `>`) on `keys` as Redis 7.2 would when re-running it, without changing
/// anything (the caller claims the waiter before serving it).
pub(in crate::cmd) fn group_reader_wake<K: AsRef<[u8]>>(
    dbs: &mut impl Keyspaces,
    keys: &[K],
    group: &[u8],
    now: u64,
) -> Wake {
    let mut ready = false;
    for key in keys {
        let key = key.as_ref();
        let stream = match lookup::<Stream>(dbs.keyspace(key), key, now) {
            Ok(stream) => stream,
            Err(e) => return Wake::Fail(e),
        };
        let Some((stream, g)) = stream.and_then(|s| Some((s, s.group(group)?))) else {
            return Wake::Fail(nogroup_read(key, group));
        };
        ready |= stream.last().is_some_and(|(last, _)| *last > g.last_id);
    }
    if ready {
        Wake::Ready
    } else {
        Wake::Wait
    }
}

/// Serves a blocked XREADGROUP that [`group_reader_wake`] found ready: its new entries on every key.
pub(in crate::cmd) fn reply_group_read<K: AsRef<[u8]>>(
    dbs: &mut impl Keyspaces,
    out: &mut Reply,
    keys: &[K],
    read: &GroupRead,
    now: u64,
) {
    read_group_keys(dbs, out, keys, &vec![None; keys.len()], read, now);
}

/// Reads for `read` on each key (whose stream and group exist): with `Some(id)` the consumer's pending entries after
/// `id` (always replied, even empty), with `None` (`>`) the group's new entries (replied when there are some). Writes
/// XREAD's reply shape and returns true, or writes nothing and returns false when no key was served. A key that
/// delivers nothing keeps its keyspace version (see [`update`]): as in Redis, a read that hands out no entry spoils
/// no WATCH, though it may have created or touched the consumer.
fn read_group_keys<K: AsRef<[u8]>>(
    dbs: &mut impl Keyspaces,
    out: &mut Reply,
    keys: &[K],
    ids: &[Option<StreamId>],
    read: &GroupRead,
    now: u64,
) -> bool {
    let mut parts: Vec<(&[u8], Reply)> = Vec::new();
    for (key, id) in keys.iter().zip(ids) {
        let key = key.as_ref();
        let mut part = Reply::scratch(out.resp3());
        let served = update::<Stream, _>(dbs.keyspace(key), key, now, |stream| {
            let delivered = read_group_key(stream, &mut part, *id, read, now);
            (delivered.is_some(), delivered == Some(true))
        });
        if let Ok(Some(true)) = served {
            parts.push((key, part));
        }
    }
    if parts.is_empty() {
        return false;
    }
    if out.resp3() {
        out.map(parts.len());
    } else {
        out.array(parts.len());
    }
    for (key, part) in &parts {
        if !out.resp3() {
            out.array(2);
        }
        out.bulk(key);
        out.raw(&part.buf);
    }
    true
}

/// One key of [`read_group_keys`]: writes its part of the reply into `part` and returns whether it delivered any
/// entry, or `None` when the key is not served.
fn read_group_key(
    stream: &mut Stream,
    part: &mut Reply,
    id: Option<StreamId>,
    read: &GroupRead,
    now: u64,
) -> Option<bool> {
    match id {
        Some(after) => {
            let history = stream.read_history(read.group, read.consumer, after, read.count, now)?;
            part.array(history.len());
            for &(id, exists) in &history {
                if exists {
                    reply_stream_entry(part, stream, id);
                } else {
                    // Deleted since it was delivered: the ID with a null for the fields, as Redis.
                    part.array(2);
                    reply_id(part, id);
                    part.null_array();
                }
            }
            Some(!history.is_empty())
        }
        None => {
            stream
                .group_mut(read.group)?
                .touch_consumer(read.consumer, now);
            let delivered =
                stream.read_group(read.group, read.consumer, read.count, read.noack, now);
            if delivered.is_empty() {
                return None;
            }
            let entries: Vec<_> = delivered
                .iter()
                .filter_map(|&id| Some((id, stream.get(id)?)))
                .collect();
            reply_entries(part, &entries);
            Some(true)
        }
    }
}

pub(in crate::cmd) fn xreadgroup(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let args = super::parse_read(argv, true, ctx.now, ctx.client.in_script)?;
    let Some((group, consumer)) = args.group else {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    };
    // Redis checks each key's type and group, then parses its ID, key by key.
    let now = ctx.now;
    let mut ids = Vec::with_capacity(args.keys.len());
    let mut new_consumer_on: Vec<&[u8]> = Vec::new();
    for (key, id) in args.keys.iter().zip(&args.ids) {
        let stream = lookup::<Stream>(ctx.db(key), key, now)?;
        let Some(stream) = stream.filter(|s| s.group(group).is_some()) else {
            return Err(nogroup_read(key, group));
        };
        if creates_consumer(stream, group, consumer) && !new_consumer_on.contains(&&key[..]) {
            new_consumer_on.push(key);
        }
        ids.push(match c_str(id) {
            b"$" => {
                return Err(CmdError::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this \
                     consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just \
                     return an empty result set.",
                ))
            }
            b">" => None,
            // Redis stands for `>` by the largest ID, so that ID written out reads new entries too.
            _ => Some(parse_strict_id(id)?).filter(|id| *id != StreamId::MAX),
        });
    }
    super::look_up_again(ctx, &args.keys, now);
    for key in new_consumer_on {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    let read = GroupRead {
        group,
        consumer,
        count: args.count,
        noack: args.noack,
    };
    let mut out = Reply::scratch(ctx.out.resp3());
    if read_group_keys(ctx, &mut out, &args.keys, &ids, &read, now) {
        ctx.out.raw(&out.buf);
        return Ok(());
    }
    match args.block {
        None => {
            ctx.out.null_array();
            Ok(())
        }
        // Only `>` reads reach here: an explicit ID always answers with the consumer's history.
        Some(timeout) => {
            let op = BlockOp::XReadGroup {
                group: group.to_vec(),
                consumer: consumer.to_vec(),
                count: args.count,
                noack: args.noack,
            };
            let keys = args.keys.iter().map(|k| k.to_vec()).collect();
            blocking::block(ctx, keys, op, timeout)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// XGROUP.

/// XGROUP's ENTRIESREAD value: a count, or -1 for unknown.
fn parse_entries_read(arg: &[u8]) -> Result<Option<i64>, CmdError> {
    match parse_i64(arg).ok_or(CmdError::NotInteger)? {
        -1 => Ok(None),
        n if n < 0 => Err(CmdError::err(
            "value for ENTRIESREAD must be positive or -1",
        )),
        n => Ok(Some(n)),
    }
}

/// XGROUP's checks after a subcommand's options: the key must hold a stream (unless MKSTREAM creates it) and, when
/// `need_group`, the group must exist. Returns the stream, if any.
fn xgroup_stream<'a>(
    db: &'a mut Keyspace,
    argv: Argv,
    now: u64,
    mkstream: bool,
    need_group: bool,
) -> Result<Option<&'a mut Stream>, CmdError> {
    let (key, group) = (argv.get(2), argv.get(3));
    let stream = lookup_mut::<Stream>(db, key, now)?;
    if mkstream {
        return Ok(stream);
    }
    let Some(stream) = stream else {
        return Err(CmdError::err(
            "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM \
             option to create an empty stream automatically.",
        ));
    };
    if need_group && stream.group(group).is_none() {
        return Err(nogroup_named(key, group));
    }
    Ok(Some(stream))
}

/// The group `argv[3]` of a stream that [`xgroup_stream`] checked has it.
fn checked_group<'a>(
    stream: Option<&'a mut Stream>,
    argv: Argv,
) -> Result<&'a mut ConsumerGroup, CmdError> {
    stream
        .and_then(|s| s.group_mut(argv.get(3)))
        .ok_or_else(|| nogroup_named(argv.get(2), argv.get(3)))
}

/// XGROUP CREATE/SETID's ID: `$` is the stream's last ID.
fn group_start(arg: &[u8], stream: Option<&Stream>, strict: bool) -> Result<StreamId, CmdError> {
    match c_str(arg) {
        b"$" => Ok(stream.map_or(StreamId::MIN, Stream::last_id)),
        _ => parse_id(arg, 0, strict),
    }
}

/// The options after XGROUP CREATE/SETID's ID, read as Redis does before it looks the key up: MKSTREAM (CREATE only)
/// and ENTRIESREAD n, in any number; the subcommand checks its argument count only after the key and group checks.
/// Returns MKSTREAM and the last ENTRIESREAD.
fn group_options(argv: Argv, create: bool) -> Result<(bool, Option<i64>), CmdError> {
    let (mut mkstream, mut entries_read) = (false, None);
    let mut i = 5;
    while i < argv.len() {
        if create && is(argv.get(i), "mkstream") {
            mkstream = true;
            i += 1;
        } else if is(argv.get(i), "entriesread") && i + 1 < argv.len() {
            entries_read = parse_entries_read(argv.get(i + 1))?;
            i += 2;
        } else {
            return Err(subcommand_syntax(argv, "XGROUP"));
        }
    }
    Ok((mkstream, entries_read))
}

fn xgroup_create(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (mkstream, entries_read) = group_options(argv, true)?;
    let now = ctx.now;
    let key = argv.get(2);
    let (db, out) = ctx.db_out(key);
    let stream = xgroup_stream(db, argv, now, mkstream, false)?;
    if argv.len() > 8 {
        return Err(subcommand_syntax(argv, "XGROUP"));
    }
    let id = group_start(argv.get(4), stream.as_deref(), true)?;
    let created = match stream {
        Some(stream) => stream.create_group(argv.get(3), id, entries_read),
        None => {
            let mut stream = Stream::new();
            stream.create_group(argv.get(3), id, entries_read);
            db.insert(key, Value::Stream(stream.into()), None);
            true
        }
    };
    if !created {
        return Err(CmdError::Coded(
            "BUSYGROUP Consumer Group name already exists".into(),
        ));
    }
    out.ok();
    ctx.notify(notify::STREAM, "xgroup-create", key);
    Ok(())
}

fn xgroup_setid(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (_, entries_read) = group_options(argv, false)?;
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(2));
    let stream = xgroup_stream(db, argv, now, false, true)?;
    if argv.len() != 5 && argv.len() != 7 {
        return Err(subcommand_syntax(argv, "XGROUP"));
    }
    let id = group_start(argv.get(4), stream.as_deref(), false)?;
    let group = checked_group(stream, argv)?;
    group.last_id = id;
    group.entries_read = entries_read;
    out.ok();
    ctx.notify(notify::STREAM, "xgroup-setid", argv.get(2));
    Ok(())
}

fn xgroup_destroy(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(2));
    let destroyed =
        xgroup_stream(db, argv, now, false, false)?.is_some_and(|s| s.destroy_group(argv.get(3)));
    // Blocked readers of the group are woken by the after-write pass and fail with NOGROUP.
    out.int(i64::from(destroyed));
    if destroyed {
        ctx.notify(notify::STREAM, "xgroup-destroy", argv.get(2));
    }
    Ok(())
}

fn xgroup_createconsumer(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(2));
    let group = checked_group(xgroup_stream(db, argv, now, false, true)?, argv)?;
    let created = group.create_consumer(argv.get(4), now);
    out.int(i64::from(created));
    if created {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", argv.get(2));
    }
    Ok(())
}

fn xgroup_delconsumer(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(2));
    let group = checked_group(xgroup_stream(db, argv, now, false, true)?, argv)?;
    let deleted = group.delete_consumer(argv.get(4));
    out.int(deleted.unwrap_or(0) as i64);
    if deleted.is_some() {
        ctx.notify(notify::STREAM, "xgroup-delconsumer", argv.get(2));
    }
    Ok(())
}

fn xgroup_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------------
// XACK, XPENDING.

pub(in crate::cmd) fn xack(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (key, group) = (argv.get(1), argv.get(2));
    let (db, out) = ctx.db_out(key);
    // No key or group: nothing to acknowledge, and Redis answers before looking at the IDs.
    if lookup::<Stream>(db, key, now)?
        .and_then(|s| s.group(group))
        .is_none()
    {
        out.int(0);
        return Ok(());
    }
    let ids = argv
        .iter_from(3)
        .map(parse_strict_id)
        .collect::<Result<Vec<_>, _>>()?;
    let acked = update::<Stream, _>(db, key, now, |s| {
        let acked = s
            .group_mut(group)
            .map_or(0, |g| ids.iter().filter(|&&id| g.ack(id)).count());
        (acked, acked > 0)
    })?;
    out.int(acked.unwrap_or(0) as i64);
    Ok(())
}

/// XPENDING's extended form.
struct PendingRange<'a> {
    min_idle: i64,
    start: StreamId,
    end: StreamId,
    count: usize,
    consumer: Option<&'a [u8]>,
}

fn parse_pending_range(argv: Argv) -> Result<Option<PendingRange>, CmdError> {
    let argc = argv.len();
    if argc == 3 {
        return Ok(None);
    }
    if !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut at = 3;
    let mut min_idle = 0;
    if is(argv.get(3), "idle") {
        min_idle = parse_i64(argv.get(4)).ok_or(CmdError::NotInteger)?;
        if argc < 8 {
            return Err(CmdError::Syntax);
        }
        at += 2;
    }
    let count = parse_i64(argv.get(at + 2)).ok_or(CmdError::NotInteger)?;
    Ok(Some(PendingRange {
        min_idle,
        start: start_bound(argv.get(at))?,
        end: end_bound(argv.get(at + 1))?,
        count: usize::try_from(count.max(0)).unwrap_or(usize::MAX),
        consumer: (at + 3 < argc).then(|| argv.get(at + 3)),
    }))
}

pub(in crate::cmd) fn xpending(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let range = parse_pending_range(argv)?;
    let now = ctx.now;
    let (key, group) = (argv.get(1), argv.get(2));
    let (db, out) = ctx.db_out(key);
    let g = lookup::<Stream>(db, key, now)?
        .and_then(|s| s.group(group))
        .ok_or_else(|| nogroup_key(key, group))?;
    let Some(range) = range else {
        reply_pending_summary(out, g);
        return Ok(());
    };
    let ids: Box<dyn Iterator<Item = &StreamId>> = match range.consumer {
        None => Box::new(g.pel.keys()),
        Some(name) => match g.consumers.get(name) {
            Some(c) => Box::new(c.pel.iter()),
            None => {
                out.array(0);
                return Ok(());
            }
        },
    };
    let rows: Vec<_> = ids
        .skip_while(|id| **id < range.start)
        .take_while(|id| **id <= range.end)
        .filter_map(|id| Some((*id, g.pel.get(id)?)))
        .filter(|(_, nack)| {
            range.min_idle == 0 || elapsed(now, nack.delivery_time) >= range.min_idle
        })
        .take(range.count)
        .collect();
    out.array(rows.len());
    for (id, nack) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&nack.consumer);
        out.int(elapsed(now, nack.delivery_time));
        out.int(nack.delivery_count as i64);
    }
    Ok(())
}

/// XPENDING key group: `[count, first, last, [[consumer, count], ...]]`.
fn reply_pending_summary(out: &mut Reply, g: &ConsumerGroup) {
    out.array(4);
    out.int(g.pel.len() as i64);
    let (Some((first, _)), Some((last, _))) = (g.pel.first_key_value(), g.pel.last_key_value())
    else {
        out.null();
        out.null();
        out.null_array();
        return;
    };
    reply_id(out, *first);
    reply_id(out, *last);
    let owners: Vec<_> = g
        .consumers
        .iter()
        .filter(|(_, c)| !c.pel.is_empty())
        .collect();
    out.array(owners.len());
    for (name, c) in owners {
        out.array(2);
        out.bulk(name);
        out.bulk_int(c.pel.len() as i64);
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// XCLAIM, XAUTOCLAIM.

/// A millisecond argument with the command's own error text.
fn int_arg(arg: &[u8], msg: &str) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or_else(|| CmdError::err(msg))
}

/// A minimum idle time: negative reads as 0.
fn min_idle_arg(arg: &[u8], command: &str) -> Result<u64, CmdError> {
    let ms = int_arg(
        arg,
        &format!("Invalid min-idle-time argument for {command}"),
    )?;
    Ok(ms.max(0) as u64)
}

/// The replies of claimed entries: IDs (JUSTID) or whole entries.
fn reply_claimed(out: &mut Reply, stream: &Stream, ids: &[StreamId], justid: bool) {
    out.array(ids.len());
    for &id in ids {
        if justid {
            reply_id(out, id);
        } else {
            reply_stream_entry(out, stream, id);
        }
    }
}

pub(in crate::cmd) fn xclaim(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (key, group) = (argv.get(1), argv.get(2));
    if lookup::<Stream>(ctx.db(key), key, now)?
        .and_then(|s| s.group(group))
        .is_none()
    {
        return Err(nogroup_key(key, group));
    }
    let min_idle = min_idle_arg(argv.get(4), "XCLAIM")?;
    // IDs run until the first argument that is not one; options follow.
    let mut ids = Vec::new();
    let mut i = 5;
    while i < argv.len() {
        match parse_strict_id(argv.get(i)) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        i += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut delivery_time = None;
    let mut retry_count = -1;
    let mut last_id = StreamId::MIN;
    let now_ms = i64::try_from(now).unwrap_or(i64::MAX);
    while i < argv.len() {
        let opt = argv.get(i);
        let more = i + 1 < argv.len();
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more {
            i += 1;
            let idle = int_arg(argv.get(i), "Invalid IDLE option argument for XCLAIM")?;
            delivery_time = Some(now_ms.wrapping_sub(idle));
        } else if is(opt, "time") && more {
            i += 1;
            delivery_time = Some(int_arg(
                argv.get(i),
                "Invalid TIME option argument for XCLAIM",
            )?);
        } else if is(opt, "retrycount") && more {
            i += 1;
            retry_count = int_arg(argv.get(i), "Invalid RETRYCOUNT option argument for XCLAIM")?;
        } else if is(opt, "lastid") && more {
            i += 1;
            last_id = parse_strict_id(argv.get(i))?;
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                text(opt)
            )));
        }
        i += 1;
    }
    // A delivery time in the future or before 1970 is taken as now, as Redis does.
    let delivery_time = match delivery_time {
        Some(t) if (0..=now_ms).contains(&t) => t as u64,
        _ => now,
    };
    let retry = match u64::try_from(retry_count) {
        Ok(n) => Retry::Set(n),
        Err(_) if justid => Retry::Keep,
        Err(_) => Retry::Increment,
    };
    let opts = Claim {
        min_idle,
        delivery_time,
        retry,
        force,
        last_id,
    };
    let (db, out) = ctx.db_out(key);
    let mut created = false;
    // Claiming nothing spoils no WATCH (see [`update`]), though the consumer may have been created.
    let found = update::<Stream, _>(db, key, now, |stream| {
        created = creates_consumer(stream, group, argv.get(3));
        let Some(claimed) = stream.claim(group, argv.get(3), &ids, &opts, now) else {
            return (false, false);
        };
        reply_claimed(out, stream, &claimed, justid);
        (true, !claimed.is_empty())
    })?;
    claimed_by(ctx, found, key, group, created)
}

/// XAUTOCLAIM's COUNT bound: Redis keeps `count * 10` attempts and `count` IDs within a `long`.
const AUTOCLAIM_MAX_COUNT: i64 = i64::MAX / 16;

pub(in crate::cmd) fn xautoclaim(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let min_idle = min_idle_arg(argv.get(4), "XAUTOCLAIM")?;
    let start = start_bound(argv.get(5))?;
    let mut count = 100;
    let mut justid = false;
    let mut i = 6;
    while i < argv.len() {
        let opt = argv.get(i);
        if is(opt, "count") && i + 1 < argv.len() {
            let n = parse_i64(argv.get(i + 1))
                .filter(|n| (1..=AUTOCLAIM_MAX_COUNT).contains(n))
                .ok_or_else(|| CmdError::err("COUNT must be > 0"))?;
            count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if is(opt, "justid") {
            justid = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let scan = AutoClaimScan {
        start,
        count,
        min_idle,
        justid,
    };
    let now = ctx.now;
    let (key, group) = (argv.get(1), argv.get(2));
    // Redis reads the key (a keyspace hit or miss) before it claims.
    lookup::<Stream>(ctx.db(key), key, now)?;
    let (db, out) = ctx.db_out(key);
    let mut created = false;
    // Claiming and dropping nothing spoils no WATCH (see [`update`]), though the consumer may have been created.
    let found = update::<Stream, _>(db, key, now, |stream| {
        created = creates_consumer(stream, group, argv.get(3));
        let Some(done) = stream.autoclaim(group, argv.get(3), scan, now) else {
            return (false, false);
        };
        out.array(3);
        reply_id(out, done.next);
        reply_claimed(out, stream, &done.claimed, justid);
        out.array(done.deleted.len());
        for &id in &done.deleted {
            reply_id(out, id);
        }
        (true, !done.claimed.is_empty() || !done.deleted.is_empty())
    })?;
    claimed_by(ctx, found, key, group, created)
}

/// True when `consumer` is missing from `stream`'s existing `group`: reading or claiming for it creates it, which
/// Redis 7.2 announces as `xgroup-createconsumer`.
fn creates_consumer(stream: &Stream, group: &[u8], consumer: &[u8]) -> bool {
    stream
        .group(group)
        .is_some_and(|g| !g.consumers.contains_key(consumer))
}

/// The end of XCLAIM and XAUTOCLAIM: NOGROUP unless the group was `found`, else the announcement of a consumer the
/// claim `created`.
fn claimed_by(
    ctx: &mut Ctx,
    found: Option<bool>,
    key: &[u8],
    group: &[u8],
    created: bool,
) -> CmdResult {
    if found != Some(true) {
        return Err(nogroup_key(key, group));
    }
    if created {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------------
// XINFO.

/// The stream at `argv[2]` for XINFO: `ERR no such key` when missing.
fn info_stream<'a>(db: &'a mut Keyspace, argv: Argv, now: u64) -> Result<&'a Stream, CmdError> {
    lookup::<Stream>(db, argv.get(2), now)?.ok_or(CmdError::NoSuchKey)
}

/// The keys of Redis's radix tree: one per node of up to 100 entries or 4096 bytes ([`Stream::nodes`]).
fn radix_keys(stream: &Stream) -> i64 {
    stream.nodes() as i64
}

/// An `int` field, or a null when unknown.
fn int_or_null(out: &mut Reply, n: Option<i64>) {
    match n {
        Some(n) => out.int(n),
        None => out.null(),
    }
}

/// The fields XINFO STREAM shows in both forms, before the entries.
fn reply_stream_head(out: &mut Reply, s: &Stream) {
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(radix_keys(s));
    out.bulk(b"radix-tree-nodes");
    out.int(radix_keys(s) + 1);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id());
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted());
    out.bulk(b"entries-added");
    out.int(s.entries_added() as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id());
}

fn xinfo_stream(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    // Redis looks the key up before it reads the options.
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(2));
    let s = info_stream(db, argv, now)?;
    // XINFO STREAM key [FULL [COUNT n]]: COUNT 0 shows everything, a negative one the default.
    let full_count = match argv.len() {
        3 => None,
        4 | 6 if is(argv.get(3), "full") => match argv.len() {
            6 if is(argv.get(4), "count") => {
                let n = parse_i64(argv.get(5)).ok_or(CmdError::NotInteger)?;
                Some(if n < 0 { 10 } else { n as usize })
            }
            6 => return Err(subcommand_syntax(argv, "XINFO")),
            _ => Some(10),
        },
        _ => return Err(subcommand_syntax(argv, "XINFO")),
    };
    let Some(count) = full_count else {
        out.map(10);
        reply_stream_head(out, s);
        out.bulk(b"groups");
        out.int(s.groups().len() as i64);
        for (name, last) in [(&b"first-entry"[..], false), (b"last-entry", true)] {
            out.bulk(name);
            let entry = if last { s.last() } else { s.first() };
            match entry {
                Some((id, fields)) => reply_entry(out, *id, fields),
                None => out.null(),
            }
        }
        return Ok(());
    };
    let limit = (count > 0).then_some(count);
    out.map(9);
    reply_stream_head(out, s);
    out.bulk(b"entries");
    reply_entries(out, &s.range(StreamId::MIN, StreamId::MAX, false, limit));
    out.bulk(b"groups");
    out.array(s.groups().len());
    let limit = limit.unwrap_or(usize::MAX);
    for (name, g) in s.groups() {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        int_or_null(out, g.entries_read);
        out.bulk(b"lag");
        int_or_null(out, s.lag(g));
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let pending: Vec<_> = g.pel.iter().take(limit).collect();
        out.array(pending.len());
        for (id, nack) in pending {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&nack.consumer);
            out.int(nack.delivery_time as i64);
            out.int(nack.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(5);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"seen-time");
            out.int(c.seen_time as i64);
            out.bulk(b"active-time");
            out.int(c.active_time.map_or(-1, |t| t as i64));
            out.bulk(b"pel-count");
            out.int(c.pel.len() as i64);
            out.bulk(b"pending");
            let pending: Vec<_> = c.pel.iter().take(limit).collect();
            out.array(pending.len());
            for id in pending {
                let nack = g.pel.get(id);
                out.array(3);
                reply_id(out, *id);
                out.int(nack.map_or(0, |n| n.delivery_time as i64));
                out.int(nack.map_or(0, |n| n.delivery_count as i64));
            }
        }
    }
    Ok(())
}

fn xinfo_groups(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(2));
    let s = info_stream(db, argv, now)?;
    out.array(s.groups().len());
    for (name, g) in s.groups() {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.int(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        int_or_null(out, g.entries_read);
        out.bulk(b"lag");
        int_or_null(out, s.lag(g));
    }
    Ok(())
}

fn xinfo_consumers(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(2));
    let s = info_stream(db, argv, now)?;
    let g = s
        .group(argv.get(3))
        .ok_or_else(|| nogroup_named(argv.get(2), argv.get(3)))?;
    out.array(g.consumers.len());
    for (name, c) in &g.consumers {
        out.map(4);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"pending");
        out.int(c.pel.len() as i64);
        out.bulk(b"idle");
        out.int(elapsed(now, c.seen_time));
        // 7.2: ms since the last successful interaction, -1 if none yet.
        out.bulk(b"inactive");
        out.int(c.active_time.map_or(-1, |t| elapsed(now, t)));
    }
    Ok(())
}

fn xinfo_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::{TestClient, WRONG};

    fn entry(id: &str, f: &str, v: &str) -> String {
        format!(
            "*2\r\n${}\r\n{id}\r\n*2\r\n${}\r\n{f}\r\n${}\r\n{v}\r\n",
            id.len(),
            f.len(),
            v.len()
        )
    }

    fn three_entries() -> TestClient {
        let mut c = TestClient::new();
        for (id, v) in [("1-1", "1"), ("2-1", "2"), ("3-1", "3")] {
            c.cmd(&format!("XADD s {id} a {v}"));
        }
        assert_eq!(c.cmd("XGROUP CREATE s g 0"), "+OK\r\n");
        c
    }

    #[test]
    fn xgroup_create_checks_key_group_and_options_in_redis_order() {
        let mut c = three_entries();
        assert_eq!(
            c.cmd("XGROUP CREATE s g $"),
            "-BUSYGROUP Consumer Group name already exists\r\n"
        );
        assert!(c
            .cmd("XGROUP CREATE nokey g $")
            .starts_with("-ERR The XGROUP subcommand requires the key to exist."));
        assert_eq!(
            c.cmd("XGROUP CREATE s g2 $ ENTRIESREAD -2"),
            "-ERR value for ENTRIESREAD must be positive or -1\r\n"
        );
        assert_eq!(
            c.cmd("XGROUP CREATE s g2 $ foo"),
            "-ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.\r\n"
        );
        assert_eq!(
            c.cmd("XGROUP SETID s nog 0"),
            "-NOGROUP No such consumer group 'nog' for key name 's'\r\n"
        );
        assert_eq!(c.cmd("XGROUP CREATE e g $ MKSTREAM"), "+OK\r\n");
        assert_eq!(c.cmd("XLEN e"), ":0\r\n");
        c.cmd("SET str x");
        assert_eq!(c.cmd("XGROUP CREATE str g $ MKSTREAM"), WRONG);
        assert_eq!(c.cmd("XGROUP DESTROY s g"), ":1\r\n");
        assert_eq!(c.cmd("XGROUP DESTROY s g"), ":0\r\n");
    }

    #[test]
    fn xreadgroup_delivers_new_entries_once_and_replays_the_consumers_history() {
        let mut c = three_entries();
        assert_eq!(
            c.cmd("XREADGROUP GROUP g a COUNT 2 STREAMS s >"),
            format!(
                "*1\r\n*2\r\n$1\r\ns\r\n*2\r\n{}{}",
                entry("1-1", "a", "1"),
                entry("2-1", "a", "2")
            )
        );
        assert_eq!(
            c.cmd("XREADGROUP GROUP g b STREAMS s >"),
            format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{}", entry("3-1", "a", "3"))
        );
        assert_eq!(c.cmd("XREADGROUP GROUP g b STREAMS s >"), "*-1\r\n");
        c.cmd("XDEL s 1-1");
        // History: a deleted entry reads as its ID and a null.
        assert_eq!(
            c.cmd("XREADGROUP GROUP g a STREAMS s 0"),
            format!(
                "*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*-1\r\n{}",
                entry("2-1", "a", "2")
            )
        );
        assert_eq!(
            c.cmd("XREADGROUP GROUP g new STREAMS s 0"),
            "*1\r\n*2\r\n$1\r\ns\r\n*0\r\n"
        );
        assert_eq!(
            c.cmd("XREADGROUP GROUP nog a STREAMS s >"),
            "-NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option\r\n"
        );
        assert!(c
            .cmd("XREADGROUP GROUP g a STREAMS s $")
            .starts_with("-ERR The $ ID is meaningless"));
        assert_eq!(
            c.cmd("XREADGROUP COUNT 1 NOACK STREAMS s >"),
            "-ERR Missing GROUP option for XREADGROUP\r\n"
        );
        assert_eq!(
            c.cmd("XREAD NOACK STREAMS s 0"),
            "-ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.\r\n"
        );
    }

    #[test]
    fn noack_reads_leave_nothing_pending_and_xack_counts_pending_ids() {
        let mut c = three_entries();
        c.cmd("XREADGROUP GROUP g a NOACK COUNT 1 STREAMS s >");
        assert_eq!(c.cmd("XPENDING s g"), "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
        c.cmd("XREADGROUP GROUP g a STREAMS s >");
        assert_eq!(
            c.cmd("XPENDING s g"),
            "*4\r\n:2\r\n$3\r\n2-1\r\n$3\r\n3-1\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n2\r\n"
        );
        assert_eq!(c.cmd("XACK s g 2-1 2-1 9-9"), ":1\r\n");
        assert_eq!(
            c.cmd("XACK s g x"),
            "-ERR Invalid stream ID specified as stream command argument\r\n"
        );
        assert_eq!(c.cmd("XACK s nog x"), ":0\r\n");
        assert_eq!(c.cmd("XGROUP DELCONSUMER s g a"), ":1\r\n");
        assert_eq!(c.cmd("XPENDING s g"), "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
    }

    #[test]
    fn xclaim_and_xautoclaim_move_entries_and_drop_deleted_ones() {
        let mut c = three_entries();
        c.cmd("XREADGROUP GROUP g a STREAMS s >");
        assert_eq!(
            c.cmd("XCLAIM s g b 0 1-1 2-1 JUSTID"),
            "*2\r\n$3\r\n1-1\r\n$3\r\n2-1\r\n"
        );
        assert_eq!(c.cmd("XCLAIM s g b 3600000 3-1"), "*0\r\n");
        assert_eq!(
            c.cmd("XCLAIM s g b 0 1-1 foo"),
            "-ERR Unrecognized XCLAIM option 'foo'\r\n"
        );
        c.cmd("XDEL s 2-1");
        assert_eq!(
            c.cmd("XAUTOCLAIM s g c 0 0 COUNT 1"),
            format!("*3\r\n$3\r\n2-1\r\n*1\r\n{}*0\r\n", entry("1-1", "a", "1"))
        );
        assert_eq!(
            c.cmd("XAUTOCLAIM s g c 0 2-1 JUSTID"),
            "*3\r\n$3\r\n0-0\r\n*1\r\n$3\r\n3-1\r\n*1\r\n$3\r\n2-1\r\n"
        );
        assert_eq!(
            c.cmd("XAUTOCLAIM s g c 0 0 COUNT 0"),
            "-ERR COUNT must be > 0\r\n"
        );
        assert_eq!(
            c.cmd("XPENDING s g - + 10 b"),
            "*0\r\n",
            "b lost everything to c"
        );
        c.cmd("XACK s g 1-1");
        assert_eq!(
            c.cmd("XCLAIM s g d 0 1-1 FORCE JUSTID"),
            "*1\r\n$3\r\n1-1\r\n"
        );
        let pending = c.cmd("XPENDING s g - 1-1 1");
        assert!(pending.ends_with(":1\r\n"), "{pending}");
    }

    #[test]
    fn xinfo_reports_group_lag_and_consumer_activity() {
        let mut c = three_entries();
        let groups = c.cmd("XINFO GROUPS s");
        assert!(
            groups.contains("$12\r\nentries-read\r\n$-1\r\n$3\r\nlag\r\n:3\r\n"),
            "{groups}"
        );
        c.cmd("XREADGROUP GROUP g a COUNT 1 STREAMS s >");
        let groups = c.cmd("XINFO GROUPS s");
        assert!(
            groups.contains("$12\r\nentries-read\r\n:1\r\n$3\r\nlag\r\n:2\r\n"),
            "{groups}"
        );
        // A tombstone after the group's position makes the lag unknown.
        c.cmd("XDEL s 2-1");
        assert!(c.cmd("XINFO GROUPS s").contains("$3\r\nlag\r\n$-1\r\n"));
        c.cmd("XGROUP CREATECONSUMER s g idle");
        let consumers = c.cmd("XINFO CONSUMERS s g");
        assert!(
            consumers.contains("$8\r\ninactive\r\n:-1\r\n"),
            "{consumers}"
        );
        assert_eq!(c.cmd("XINFO CONSUMERS s g").matches("inactive").count(), 2);
        assert_eq!(c.cmd("XINFO STREAM nokey"), "-ERR no such key\r\n");
        let full = c.cmd("XINFO STREAM s FULL");
        assert!(full.contains("$11\r\nactive-time\r\n:-1\r\n"), "{full}");
        assert!(full.contains("$20\r\nmax-deleted-entry-id\r\n$3\r\n2-1\r\n"));
    }
}
