//! String commands: GET/SET and their family, counters, ranges, and the lock primitives.
//!
//! Redis 7.2 is the specification for replies, error strings and the order errors are reported in (some come before
//! the key is read, such as SET's invalid expire time, others after it, such as GETEX's). The newer lock primitives
//! follow their origin: `SET ... IFEQ|IFNE|IFDEQ|IFDNE`, `DELEX`, `DIGEST` and `MSETEX` are Redis 8.4, `DELIFEQ` is
//! Valkey 9.
//!
//! Values are plain bytes; counters parse them on use exactly as Redis does (`string2ll`, `strtold`), so `INCR` on
//! `"01"` fails as it does in Redis. Commands that rewrite a value in place (INCR, APPEND, SETRANGE...) keep the key's
//! deadline; commands that store a new value (SET, MSET...) clear it unless told otherwise (KEEPTTL).
//!
//! Shared pieces: [`StrOpts`] parses the option list of SET, GETEX and MSETEX (Redis's
//! `parseExtendedStringArgumentsOrReply`), [`Condition`] is the NX/XX/IF* test shared by SET, MSETEX, DELEX and
//! DELIFEQ, and `incr_by` is the one integer increment behind INCR, DECR, INCRBY and DECRBY.

use xxhash_rust::xxh3::xxh3_64;

use super::args::{self, is, Cursor};
use super::long_double::LongDouble;
use super::{flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::store::{Entry, Keyspace, Value};

const PAIRS: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 2,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, Keys::FIRST, get),
    CommandSpec::new("set", -3, WRITE | DENYOOM, Keys::FIRST, set),
    CommandSpec::new("setnx", 3, WRITE | DENYOOM | FAST, Keys::FIRST, setnx),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, Keys::FIRST, setex),
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, Keys::FIRST, psetex),
    CommandSpec::new("getset", 3, WRITE | DENYOOM | FAST, Keys::FIRST, getset),
    CommandSpec::new("getdel", 2, WRITE | FAST, Keys::FIRST, getdel),
    CommandSpec::new("getex", -2, WRITE | FAST, Keys::FIRST, getex),
    CommandSpec::new("mget", -2, READONLY | FAST, Keys::ALL, mget),
    CommandSpec::new("mset", -3, WRITE | DENYOOM, PAIRS, mset),
    CommandSpec::new("msetnx", -3, WRITE | DENYOOM, PAIRS, msetnx),
    CommandSpec::new(
        "msetex",
        -4,
        WRITE | DENYOOM,
        Keys::NumKeys { at: 1, step: 2 },
        msetex,
    ),
    CommandSpec::new("incr", 2, WRITE | DENYOOM | FAST, Keys::FIRST, incr),
    CommandSpec::new("decr", 2, WRITE | DENYOOM | FAST, Keys::FIRST, decr),
    CommandSpec::new("incrby", 3, WRITE | DENYOOM | FAST, Keys::FIRST, incrby),
    CommandSpec::new("decrby", 3, WRITE | DENYOOM | FAST, Keys::FIRST, decrby),
    CommandSpec::new(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        Keys::FIRST,
        incrbyfloat,
    ),
    CommandSpec::new("append", 3, WRITE | DENYOOM | FAST, Keys::FIRST, append),
    CommandSpec::new("strlen", 2, READONLY | FAST, Keys::FIRST, strlen),
    CommandSpec::new("getrange", 4, READONLY, Keys::FIRST, getrange),
    CommandSpec::new("substr", 4, READONLY, Keys::FIRST, getrange),
    CommandSpec::new("setrange", 4, WRITE | DENYOOM, Keys::FIRST, setrange),
    CommandSpec::new("digest", 2, READONLY | FAST, Keys::FIRST, digest),
    CommandSpec::new("delex", -2, WRITE | FAST, Keys::FIRST, delex),
    CommandSpec::new("delifeq", 3, WRITE | FAST, Keys::FIRST, delifeq),
];

/// The string a live entry holds, or WRONGTYPE.
pub fn as_str(entry: &Entry) -> Result<&[u8], CmdError> {
    match &entry.value {
        Value::Str(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// The string a live entry holds, for changing in place, or WRONGTYPE.
fn as_str_mut(entry: &mut Entry) -> Result<&mut Vec<u8>, CmdError> {
    match &mut entry.value {
        Value::Str(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// Replies with the string value of `entry` (null when absent), or fails with WRONGTYPE before writing anything.
fn reply_str(out: &mut Reply, entry: Option<&Entry>) -> CmdResult {
    match entry {
        Some(e) => out.bulk(as_str(e)?),
        None => out.null(),
    }
    Ok(())
}

/// What a write does to a key's deadline, resolved to Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Remove any deadline (SET without options, GETEX PERSIST).
    Clear,
    /// Leave the deadline as it is (KEEPTTL, GETEX without options).
    Keep,
    /// EX/PX/EXAT/PXAT, resolved to Unix milliseconds.
    At(u64),
}

impl Expiry {
    /// The deadline a key gets when its deadline was `old`.
    fn apply(self, old: Option<u64>) -> Option<u64> {
        match self {
            Expiry::Clear => None,
            Expiry::Keep => old,
            Expiry::At(at) => Some(at),
        }
    }
}

/// Parses an expiry value as Redis's `getExpireMillisecondsOrReply`: a positive integer, in seconds or milliseconds,
/// relative to `now` or absolute; zero, negative or overflowing values are `invalid expire time in '<cmd>' command`.
pub fn expire_at(
    value: &[u8],
    unit_ms: u64,
    relative: bool,
    now: u64,
    cmd: &str,
) -> Result<u64, CmdError> {
    let n = args::int(value)?;
    let invalid = || CmdError::err(format!("invalid expire time in '{cmd}' command"));
    if n <= 0 {
        return Err(invalid());
    }
    let ms = n.checked_mul(unit_ms as i64).ok_or_else(invalid)?;
    let at = if relative {
        ms.checked_add(now as i64).ok_or_else(invalid)?
    } else {
        ms
    };
    Ok(at as u64)
}

/// EX, PX, EXAT or PXAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeUnit {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl TimeUnit {
    fn keyword(opt: &[u8]) -> Option<Self> {
        [
            ("EX", TimeUnit::Ex),
            ("PX", TimeUnit::Px),
            ("EXAT", TimeUnit::ExAt),
            ("PXAT", TimeUnit::PxAt),
        ]
        .into_iter()
        .find_map(|(name, unit)| is(opt, name).then_some(unit))
    }
}

/// An expiry option as written; its value is checked later, at the point Redis checks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum TtlOpt<'a> {
    /// No expiry option.
    #[default]
    Unset,
    /// KEEPTTL (SET, MSETEX).
    KeepTtl,
    /// PERSIST (GETEX).
    Persist,
    /// EX/PX/EXAT/PXAT and its value.
    Time(TimeUnit, &'a [u8]),
}

impl TtlOpt<'_> {
    /// True when `self` and `other` are the same option (the same unit for EX/PX/...), values aside.
    fn same_kind(&self, other: &TtlOpt<'_>) -> bool {
        match (self, other) {
            (TtlOpt::Time(a, _), TtlOpt::Time(b, _)) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// The deadline change this option asks for; `unset` is what no option means for the command (SET and MSETEX
    /// clear the deadline, GETEX leaves it). `cmd` names the command in the invalid-expire error.
    fn resolve(self, unset: Expiry, now: u64, cmd: &str) -> Result<Expiry, CmdError> {
        Ok(match self {
            TtlOpt::Unset => unset,
            TtlOpt::KeepTtl => Expiry::Keep,
            TtlOpt::Persist => Expiry::Clear,
            TtlOpt::Time(unit, value) => {
                let (unit_ms, relative) = match unit {
                    TimeUnit::Ex => (1000, true),
                    TimeUnit::Px => (1, true),
                    TimeUnit::ExAt => (1000, false),
                    TimeUnit::PxAt => (1, false),
                };
                Expiry::At(expire_at(value, unit_ms, relative, now, cmd)?)
            }
        })
    }
}

/// When a write (SET, MSETEX) or a delete (DELEX, DELIFEQ) may go ahead, judged on the key's current entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition<'a> {
    /// NX: the key must not exist.
    Nx,
    /// XX: the key must exist.
    Xx,
    /// IFEQ: the key must hold exactly this string.
    IfEq(&'a [u8]),
    /// IFNE: the key must not hold this string (a missing key qualifies).
    IfNe(&'a [u8]),
    /// IFDEQ: the XXH3 digest of the key's string must be this.
    IfDeq(u64),
    /// IFDNE: the digest must differ (a missing key qualifies).
    IfDne(u64),
}

impl<'a> Condition<'a> {
    /// Parses `IFEQ v | IFNE v | IFDEQ d | IFDNE d` starting at keyword `opt`, taking the value from `rest`. `None`
    /// when `opt` is none of them.
    fn parse_if(opt: &[u8], rest: &mut Cursor<'a>) -> Result<Option<Self>, CmdError> {
        let make: fn(&'a [u8]) -> Result<Self, CmdError> = if is(opt, "IFEQ") {
            |v| Ok(Condition::IfEq(v))
        } else if is(opt, "IFNE") {
            |v| Ok(Condition::IfNe(v))
        } else if is(opt, "IFDEQ") {
            |v| parse_digest(v).map(Condition::IfDeq)
        } else if is(opt, "IFDNE") {
            |v| parse_digest(v).map(Condition::IfDne)
        } else {
            return Ok(None);
        };
        make(rest.value()?).map(Some)
    }

    /// True when the condition holds for the key's live entry (`None`: no such key). The IF* forms compare the value,
    /// so they fail with WRONGTYPE on a key of another type (Redis 8.4); NX and XX only look at existence.
    fn holds(&self, entry: Option<&Entry>) -> Result<bool, CmdError> {
        let Some(e) = entry else {
            return Ok(matches!(
                self,
                Condition::Nx | Condition::IfNe(_) | Condition::IfDne(_)
            ));
        };
        Ok(match self {
            Condition::Nx => false,
            Condition::Xx => true,
            Condition::IfEq(v) => as_str(e)? == *v,
            Condition::IfNe(v) => as_str(e)? != *v,
            Condition::IfDeq(d) => xxh3_64(as_str(e)?) == *d,
            Condition::IfDne(d) => xxh3_64(as_str(e)?) != *d,
        })
    }
}

/// A digest argument of IFDEQ/IFDNE: exactly 16 hex digits, either case (Redis 8.4.0 as fixed by redis#14502, which
/// compares case-insensitively and rejects any other length). Redis's validator is named `validateHexDigest`; we also
/// reject non-hex characters of the right length, which could never match a digest anyway.
fn parse_digest(s: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::err("must be exactly 16 hexadecimal characters");
    if s.len() != 16 || !s.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid());
    }
    let text = std::str::from_utf8(s).map_err(|_| invalid())?;
    u64::from_str_radix(text, 16).map_err(|_| invalid())
}

/// The digest DIGEST replies with: XXH3-64 of the value as 16 lower-case hex digits, zero-padded (Redis 8.4 prints
/// it with `%016` since redis#14502, so it always round-trips through IFDEQ).
fn digest_hex(value: &[u8]) -> String {
    format!("{:016x}", xxh3_64(value))
}

/// Which options a command of the SET family accepts (Redis's `COMMAND_SET`, `COMMAND_GET`, `COMMAND_MSETEX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OptsFor {
    Set,
    GetEx,
    MSetEx,
}

/// The option list of SET, GETEX and MSETEX.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct StrOpts<'a> {
    cond: Option<Condition<'a>>,
    get: bool,
    ttl: TtlOpt<'a>,
}

impl<'a> StrOpts<'a> {
    /// Parses the options from argument `start` on, with Redis's rules: options of one group (NX/XX/IF*, and
    /// EX/PX/EXAT/PXAT/KEEPTTL/PERSIST) exclude each other, but the same option may repeat and the last value wins
    /// (`SET k v EX 1 EX 2` is accepted by Redis). Anything else is a syntax error.
    fn parse(argv: Argv<'a>, start: usize, cmd: OptsFor) -> Result<Self, CmdError> {
        let mut o = StrOpts::default();
        let mut rest = Cursor::new(argv, start);
        let sets = cmd != OptsFor::GetEx;
        while let Some(opt) = rest.next() {
            if sets && is(opt, "NX") {
                o.condition(Condition::Nx)?;
            } else if sets && is(opt, "XX") {
                o.condition(Condition::Xx)?;
            } else if cmd == OptsFor::Set && is(opt, "GET") {
                o.get = true;
            } else if sets && is(opt, "KEEPTTL") {
                o.expiry(TtlOpt::KeepTtl)?;
            } else if cmd == OptsFor::GetEx && is(opt, "PERSIST") {
                o.expiry(TtlOpt::Persist)?;
            } else if let Some(unit) = TimeUnit::keyword(opt) {
                o.expiry(TtlOpt::Time(unit, rest.value()?))?;
            } else if cmd == OptsFor::Set {
                // Redis 8.4 accepts IF* on SET only (MSETEX has NX/XX alone).
                let cond = Condition::parse_if(opt, &mut rest)?.ok_or(CmdError::Syntax)?;
                o.condition(cond)?;
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(o)
    }

    fn condition(&mut self, cond: Condition<'a>) -> CmdResult {
        // Repeating the same kind is allowed as for NX NX in Redis 7.2. Redis 8.4's docs do not say whether
        // `IFEQ a IFEQ b` is accepted; we follow the same rule (last wins), the pattern of every other option.
        match self.cond {
            Some(c) if std::mem::discriminant(&c) != std::mem::discriminant(&cond) => {
                Err(CmdError::Syntax)
            }
            _ => {
                self.cond = Some(cond);
                Ok(())
            }
        }
    }

    fn expiry(&mut self, ttl: TtlOpt<'a>) -> CmdResult {
        if self.ttl != TtlOpt::Unset && !self.ttl.same_kind(&ttl) {
            return Err(CmdError::Syntax);
        }
        self.ttl = ttl;
        Ok(())
    }
}

/// Stores `value` at `key` as a new string with the deadline `expiry` gives (KEEPTTL keeps the old one). The lookup
/// first expires a key past its deadline, as Redis's lookupKeyWrite, so its `expired` and `new` events are raised.
fn store(db: &mut Keyspace, key: &[u8], value: &[u8], expiry: Expiry, now: u64) {
    let old = db.find(key, now).and_then(|e| e.expires_at());
    db.insert(key, Value::Str(value.to_vec()), expiry.apply(old));
}

/// Replaces the value of `key` with a string, keeping its deadline (or creating it without one), as Redis's
/// `dbOverwrite`/`dbAdd` do for INCR and friends.
fn overwrite(db: &mut Keyspace, key: &[u8], now: u64, value: Vec<u8>) {
    match db.get_mut(key, now) {
        Some(e) => e.value = Value::Str(value),
        None => {
            db.insert(key, Value::Str(value), None);
        }
    }
}

/// How a SET-family command answers when it did (or did not) write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// `+OK`, or a null when a condition stopped it (SET, SETEX, PSETEX).
    Status,
    /// `:1` or `:0` (SETNX).
    Count,
}

/// Redis's `setGenericCommand`: the expire time is checked first, then GET replies with the old value (WRONGTYPE if
/// it is not a string), then the condition decides whether the value is written.
fn set_generic(
    ctx: &mut Ctx,
    key: &[u8],
    value: &[u8],
    opts: StrOpts,
    answer: Answer,
    cmd: &str,
) -> CmdResult {
    let now = ctx.now;
    let expiry = opts.ttl.resolve(Expiry::Clear, now, cmd)?;
    let (db, out) = ctx.db_out(key);
    // GET reads the key (a keyspace hit or miss); the condition only looks, as Redis's lookupKeyWrite.
    let existing = if opts.get {
        db.get(key, now)
    } else {
        db.find(key, now)
    };
    if opts.get {
        reply_str(out, existing)?;
    }
    let proceed = match opts.cond {
        Some(cond) => cond.holds(existing)?,
        None => true,
    };
    if proceed {
        store(db, key, value, expiry, now);
    }
    if !opts.get {
        match (answer, proceed) {
            (Answer::Status, true) => out.ok(),
            (Answer::Status, false) => out.null(),
            (Answer::Count, done) => out.int(done as i64),
        }
    }
    if proceed {
        notify_set(ctx, key, expiry);
    }
    Ok(())
}

/// The events of a SET-family write: `set`, then `expire` when it gave the key a deadline.
fn notify_set(ctx: &mut Ctx, key: &[u8], expiry: Expiry) {
    ctx.notify(notify::STRING, "set", key);
    if let Expiry::At(_) = expiry {
        ctx.notify(notify::GENERIC, "expire", key);
    }
}

fn get(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(1));
    reply_str(out, db.get(argv.get(1), now))
}

fn set(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let opts = StrOpts::parse(argv, 3, OptsFor::Set)?;
    set_generic(ctx, argv.get(1), argv.get(2), opts, Answer::Status, "set")
}

fn setnx(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let opts = StrOpts {
        cond: Some(Condition::Nx),
        ..StrOpts::default()
    };
    set_generic(ctx, argv.get(1), argv.get(2), opts, Answer::Count, "setnx")
}

/// SETEX and PSETEX: `key time value`.
fn set_with_time(ctx: &mut Ctx, argv: Argv, unit: TimeUnit, cmd: &str) -> CmdResult {
    let opts = StrOpts {
        ttl: TtlOpt::Time(unit, argv.get(2)),
        ..StrOpts::default()
    };
    set_generic(ctx, argv.get(1), argv.get(3), opts, Answer::Status, cmd)
}

fn setex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    set_with_time(ctx, argv, TimeUnit::Ex, "setex")
}

fn psetex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    set_with_time(ctx, argv, TimeUnit::Px, "psetex")
}

fn getset(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let opts = StrOpts {
        get: true,
        ..StrOpts::default()
    };
    set_generic(
        ctx,
        argv.get(1),
        argv.get(2),
        opts,
        Answer::Status,
        "getset",
    )
}

fn getdel(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let (db, out) = ctx.db_out(key);
    let found = db.get(key, now);
    reply_str(out, found)?;
    if found.is_some() {
        db.remove(key, now);
        ctx.notify(notify::GENERIC, "del", key);
    }
    Ok(())
}

/// GETEX: options are parsed first (syntax errors), then a missing key replies null and another type WRONGTYPE
/// before the expire time is checked, as Redis orders it.
fn getex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let opts = StrOpts::parse(argv, 2, OptsFor::GetEx)?;
    let (key, now) = (argv.get(1), ctx.now);
    let (db, out) = ctx.db_out(key);
    let Some(entry) = db.get(key, now) else {
        out.null();
        return Ok(());
    };
    let value = as_str(entry)?;
    let had_deadline = entry.expires_at().is_some();
    let expiry = opts.ttl.resolve(Expiry::Keep, now, "getex")?;
    out.bulk(value);
    let event = match expiry {
        // PERSIST on a key without a deadline changes nothing, so spoils no WATCH, as in Redis.
        Expiry::Keep => return Ok(()),
        Expiry::Clear if !had_deadline => return Ok(()),
        Expiry::Clear => {
            db.set_expiry(key, None, now);
            "persist"
        }
        // A deadline already past (EXAT/PXAT) deletes the key at once, as Redis does.
        Expiry::At(at) if at <= now => {
            db.remove(key, now);
            "del"
        }
        Expiry::At(at) => {
            db.set_expiry(key, Some(at), now);
            "expire"
        }
    };
    ctx.notify(notify::GENERIC, event, key);
    Ok(())
}

fn mget(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    ctx.out.array(argv.len() - 1);
    for key in argv.iter_from(1) {
        let (db, out) = ctx.db_out(key);
        // MGET never fails: a key of another type reads as null.
        match db.get(key, now).map(|e| &e.value) {
            Some(Value::Str(s)) => out.bulk(s),
            _ => out.null(),
        }
    }
    Ok(())
}

/// Writes every pair of `pairs` (from argument `first`, `count` pairs) if `cond` holds for every key, all under the
/// locks the dispatcher took for the whole key list, so no client sees part of it. Returns whether it wrote.
fn mset_generic(
    ctx: &mut Ctx,
    argv: Argv,
    first: usize,
    count: usize,
    cond: Option<Condition>,
    expiry: Expiry,
) -> Result<bool, CmdError> {
    let now = ctx.now;
    let pairs = (0..count).map(|i| (argv.get(first + 2 * i), argv.get(first + 2 * i + 1)));
    if let Some(cond) = cond {
        for (key, _) in pairs.clone() {
            if !cond.holds(ctx.db(key).find(key, now))? {
                return Ok(false);
            }
        }
    }
    for (key, value) in pairs {
        store(ctx.db(key), key, value, expiry, now);
        notify_set(ctx, key, expiry);
    }
    Ok(true)
}

/// The number of pairs of MSET/MSETNX, or the arity error Redis gives for an odd argument count.
fn pair_count(argv: Argv, cmd: &str) -> Result<usize, CmdError> {
    if argv.len() % 2 == 0 {
        return Err(CmdError::WrongArity(cmd.to_string()));
    }
    Ok((argv.len() - 1) / 2)
}

fn mset(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let count = pair_count(argv, "mset")?;
    mset_generic(ctx, argv, 1, count, None, Expiry::Clear)?;
    ctx.out.ok();
    Ok(())
}

fn msetnx(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let count = pair_count(argv, "msetnx")?;
    let done = mset_generic(ctx, argv, 1, count, Some(Condition::Nx), Expiry::Clear)?;
    ctx.out.int(done as i64);
    Ok(())
}

/// MSETEX numkeys key value [key value ...] [NX|XX] [EX|PX|EXAT|PXAT|KEEPTTL] (Redis 8.4): all or nothing, 1 or 0.
///
/// Redis's docs do not give the error for a bad numkeys; we answer `invalid numkeys value` for anything but a positive
/// integer, and Redis's `wrong number of key-value pairs` when fewer pairs follow than numkeys says.
fn msetex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let count = args::parse_i64(argv.get(1))
        .filter(|&n| n > 0)
        .ok_or_else(|| CmdError::err("invalid numkeys value"))?;
    let opts_at = (count as u64)
        .checked_mul(2)
        .and_then(|n| n.checked_add(2))
        .filter(|&n| n <= argv.len() as u64)
        .ok_or_else(|| CmdError::err("wrong number of key-value pairs"))?;
    let opts = StrOpts::parse(argv, opts_at as usize, OptsFor::MSetEx)?;
    let expiry = opts.ttl.resolve(Expiry::Clear, ctx.now, "msetex")?;
    let done = mset_generic(ctx, argv, 2, count as usize, opts.cond, expiry)?;
    ctx.out.int(done as i64);
    Ok(())
}

/// The one integer increment behind INCR, DECR, INCRBY and DECRBY: a missing key counts as 0, the stored string
/// must be a `string2ll` integer, the sum must fit in i64, and the key keeps its deadline.
fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    let mut digits = itoa::Buffer::new();
    // One lookup, and the number is rewritten in the string's own buffer.
    let value = match db.get_mut(key, now) {
        Some(e) => {
            let s = as_str_mut(e)?;
            let value = args::int(s)?.checked_add(delta).ok_or(CmdError::Overflow)?;
            s.clear();
            s.extend_from_slice(digits.format(value).as_bytes());
            value
        }
        None => {
            db.insert(
                key,
                Value::Str(digits.format(delta).as_bytes().to_vec()),
                None,
            );
            delta
        }
    };
    out.int(value);
    ctx.notify(notify::STRING, "incrby", key);
    Ok(())
}

fn incr(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    incr_by(ctx, argv.get(1), 1)
}

fn decr(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    incr_by(ctx, argv.get(1), -1)
}

fn incrby(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let delta = args::int(argv.get(2))?;
    incr_by(ctx, argv.get(1), delta)
}

fn decrby(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let delta = args::int(argv.get(2))?
        .checked_neg()
        .ok_or_else(|| CmdError::err("decrement would overflow"))?;
    incr_by(ctx, argv.get(1), delta)
}

/// INCRBYFLOAT. Redis reports, in order: WRONGTYPE, a stored value that is not a float, an increment that is not a
/// float, a NaN/infinite result. Like Redis it reads, adds and prints in `long double` precision (see
/// [`LongDouble`]), so `0.1 + 0.2` is `0.3` and `1e400` is a valid increment.
fn incrbyfloat(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, now) = (argv.get(1), ctx.now);
    let float = |s: &[u8]| LongDouble::parse(s).ok_or(CmdError::NotFloat);
    let incr = float(argv.get(2));
    let (db, out) = ctx.db_out(key);
    let current = match db.find(key, now) {
        Some(e) => float(as_str(e)?)?,
        None => LongDouble::ZERO,
    };
    let text = current
        .add(incr?)
        .to_human()
        .ok_or_else(|| CmdError::err("increment would produce NaN or Infinity"))?;
    out.bulk(text.as_bytes());
    overwrite(db, key, now, text.into_bytes());
    ctx.notify(notify::STRING, "incrbyfloat", key);
    Ok(())
}

/// Redis's `checkStringLength`: a string may not grow past proto-max-bulk-len.
fn check_size(max: usize, len: usize, extra: usize) -> CmdResult {
    match len.checked_add(extra) {
        Some(total) if total <= max => Ok(()),
        _ => Err(CmdError::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

fn append(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, tail, now) = (argv.get(1), argv.get(2), ctx.now);
    let max = ctx.server.settings.proto_max_bulk_len();
    let (db, out) = ctx.db_out(key);
    let len = match db.get_mut(key, now) {
        Some(e) => {
            let s = as_str_mut(e)?;
            check_size(max, s.len(), tail.len())?;
            s.extend_from_slice(tail);
            s.len()
        }
        None => {
            // A new key holds just the argument, which the protocol already limited.
            db.insert(key, Value::Str(tail.to_vec()), None);
            tail.len()
        }
    };
    out.int(len as i64);
    ctx.notify(notify::STRING, "append", key);
    Ok(())
}

fn strlen(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(1));
    let len = match db.get(argv.get(1), now) {
        Some(e) => as_str(e)?.len(),
        None => 0,
    };
    out.int(len as i64);
    Ok(())
}

/// The inclusive byte range GETRANGE returns, by Redis 7.2's rules: negative indexes count from the end, both ends
/// are clamped into the string, and an end below `-len` clamps to 0 (so `GETRANGE k 0 -100` is the first byte; Redis
/// reverted the change to that in redis#12272). `None` is the empty reply.
fn byte_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len = len as i64;
    let from_end = |i: i64| if i < 0 { len + i } else { i };
    let start = from_end(start).max(0);
    let end = from_end(end).max(0).min(len - 1);
    (len > 0 && start <= end).then_some((start as usize, end as usize))
}

/// GETRANGE and SUBSTR: the indexes are parsed before the key is read; a missing key is an empty string.
fn getrange(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let start = args::int(argv.get(2))?;
    let end = args::int(argv.get(3))?;
    let (key, now) = (argv.get(1), ctx.now);
    let (db, out) = ctx.db_out(key);
    let value: &[u8] = match db.get(key, now) {
        Some(e) => as_str(e)?,
        None => &[],
    };
    match byte_range(value.len(), start, end) {
        Some((from, to)) => out.bulk(&value[from..=to]),
        None => out.bulk(b""),
    }
    Ok(())
}

/// SETRANGE: a negative offset is an error before the key is read; writing nothing never creates a key or checks
/// the size; the string is zero-padded up to the offset.
fn setrange(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, patch, now) = (argv.get(1), argv.get(3), ctx.now);
    let offset = args::int(argv.get(2))?;
    let offset = usize::try_from(offset).map_err(|_| CmdError::err("offset is out of range"))?;
    let max = ctx.server.settings.proto_max_bulk_len();
    let (db, out) = ctx.db_out(key);
    if patch.is_empty() {
        // Nothing to write: only the length, read without taking the value to change (no WATCH spoiled, as in
        // Redis).
        let len = db
            .get(key, now)
            .map(as_str)
            .transpose()?
            .map_or(0, <[u8]>::len);
        out.int(len as i64);
        return Ok(());
    }
    let len = match db.get_mut(key, now) {
        Some(e) => {
            let s = as_str_mut(e)?;
            check_size(max, offset, patch.len())?;
            write_at(s, offset, patch);
            s.len()
        }
        None => {
            check_size(max, offset, patch.len())?;
            let mut s = Vec::new();
            write_at(&mut s, offset, patch);
            let len = s.len();
            db.insert(key, Value::Str(s), None);
            len
        }
    };
    out.int(len as i64);
    ctx.notify(notify::STRING, "setrange", key);
    Ok(())
}

/// Copies `patch` into `s` at `offset`, growing `s` with zero bytes as needed.
fn write_at(s: &mut Vec<u8>, offset: usize, patch: &[u8]) {
    let end = offset + patch.len();
    if s.len() < end {
        s.resize(end, 0);
    }
    s[offset..end].copy_from_slice(patch);
}

/// DIGEST (Redis 8.4): the XXH3-64 digest of a string value as 16 hex digits; null for a missing key.
fn digest(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(1));
    match db.get(argv.get(1), now) {
        Some(e) => out.bulk(digest_hex(as_str(e)?).as_bytes()),
        None => out.null(),
    }
    Ok(())
}

/// Deletes `key` when `cond` holds (always without one); replies 1 or 0. A missing key is never "deleted", even for
/// IFNE/IFDNE, which would let SET create it.
fn delete_if(ctx: &mut Ctx, key: &[u8], cond: Option<Condition>) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    let delete = match (db.get(key, now), cond) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(e), Some(cond)) => cond.holds(Some(e))?,
    };
    if delete {
        db.remove(key, now);
    }
    out.int(delete as i64);
    if delete {
        ctx.notify(notify::GENERIC, "del", key);
    }
    Ok(())
}

/// DELEX key [IFEQ v | IFNE v | IFDEQ d | IFDNE d] (Redis 8.4). Without a condition it deletes a key of any type;
/// with one, a non-string key is WRONGTYPE. The docs do not name the error for a missing condition value, an unknown
/// keyword or extra arguments; we answer `syntax error`, as SET does for the same mistakes.
fn delex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut rest = Cursor::new(argv, 2);
    let cond = match rest.next() {
        Some(opt) => Some(Condition::parse_if(opt, &mut rest)?.ok_or(CmdError::Syntax)?),
        None => None,
    };
    if rest.remaining() > 0 {
        return Err(CmdError::Syntax);
    }
    delete_if(ctx, argv.get(1), cond)
}

/// DELIFEQ key value (Valkey 9): DELEX key IFEQ value.
fn delifeq(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    delete_if(ctx, argv.get(1), Some(Condition::IfEq(argv.get(2))))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::cmd::testing::TestClient;
    use crate::store::now_ms;

    const NIL: &str = "$-1\r\n";
    const OK: &str = "+OK\r\n";
    use crate::cmd::testing::WRONG as WRONGTYPE;
    const SYNTAX: &str = "-ERR syntax error\r\n";
    const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
    const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";
    const TOO_BIG: &str = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    const BAD_DIGEST: &str = "-ERR must be exactly 16 hexadecimal characters\r\n";

    fn bulk(s: &str) -> String {
        format!("${}\r\n{s}\r\n", s.len())
    }

    fn invalid_expire(cmd: &str) -> String {
        format!("-ERR invalid expire time in '{cmd}' command\r\n")
    }

    /// Puts a list at `key` directly in the store (no list commands in this family).
    fn put_list(c: &TestClient, key: &str) {
        let store = &c.server.store;
        store.lock_shard(store.shard_of(key.as_bytes())).dbs[0].insert(
            key.as_bytes(),
            Value::List(crate::store::List::from_iter([b"x"])),
            None,
        );
    }

    /// The deadline of `key`, read from the store.
    fn deadline(c: &TestClient, key: &str) -> Option<u64> {
        let store = &c.server.store;
        let mut shard = store.lock_shard(store.shard_of(key.as_bytes()));
        shard.dbs[0]
            .get(key.as_bytes(), now_ms())
            .and_then(|e| e.expires_at())
    }

    fn ttl_ms(c: &TestClient, key: &str) -> i64 {
        deadline(c, key).map_or(-1, |at| at as i64 - now_ms() as i64)
    }

    #[test]
    fn get_and_set_round_trip_binary_values() {
        let mut c = TestClient::new();
        assert_eq!(c.run(&[&b"SET"[..], b"k", b"a\0b\r\nc"]), OK);
        assert_eq!(c.run_bytes(&["GET", "k"]), b"$6\r\na\0b\r\nc\r\n");
        assert_eq!(c.cmd("GET missing"), NIL);
        put_list(&c, "l");
        assert_eq!(c.cmd("GET l"), WRONGTYPE);
    }

    #[test]
    fn set_overwrites_any_type_and_clears_the_deadline() {
        let mut c = TestClient::new();
        put_list(&c, "l");
        assert_eq!(c.cmd("SET l v"), OK);
        assert_eq!(c.cmd("GET l"), bulk("v"));
        assert_eq!(c.cmd("SET k v EX 100"), OK);
        assert!(deadline(&c, "k").is_some());
        assert_eq!(c.cmd("SET k v2"), OK);
        assert_eq!(deadline(&c, "k"), None);
    }

    #[test]
    fn set_nx_xx_and_get_reply_like_redis() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("SET k v XX"), NIL);
        assert_eq!(c.cmd("GET k"), NIL);
        assert_eq!(c.cmd("SET k v NX"), OK);
        assert_eq!(c.cmd("SET k w NX"), NIL);
        assert_eq!(c.cmd("SET k w XX"), OK);
        assert_eq!(c.cmd("SET k x NX GET"), bulk("w"));
        assert_eq!(c.cmd("GET k"), bulk("w"));
        assert_eq!(c.cmd("SET k x GET"), bulk("w"));
        assert_eq!(c.cmd("SET new v GET"), NIL);
        assert_eq!(c.cmd("SET absent v XX GET"), NIL);
        assert_eq!(c.cmd("GET absent"), NIL);
        // Repeating an option is accepted, as in Redis.
        assert_eq!(c.cmd("SET k v NX NX"), NIL);
        assert_eq!(c.cmd("SET k v GET GET"), bulk("x"));
    }

    #[test]
    fn set_get_on_another_type_is_wrongtype_and_does_not_write() {
        let mut c = TestClient::new();
        put_list(&c, "l");
        assert_eq!(c.cmd("SET l v GET"), WRONGTYPE);
        assert_eq!(c.cmd("SET l v NX GET"), WRONGTYPE);
        assert_eq!(c.cmd("SET l v XX GET"), WRONGTYPE);
        assert_eq!(c.cmd("GET l"), WRONGTYPE);
        assert_eq!(c.cmd("SET l v NX"), NIL);
    }

    #[test]
    fn set_expiry_options_set_the_deadline() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("SET k v EX 100"), OK);
        assert!((99_000..=100_000).contains(&ttl_ms(&c, "k")));
        assert_eq!(c.cmd("SET k v PX 5000"), OK);
        assert!((4_000..=5_000).contains(&ttl_ms(&c, "k")));
        let at = now_ms() + 60_000;
        assert_eq!(c.run(&["SET", "k", "v", "PXAT", &at.to_string()]), OK);
        assert_eq!(deadline(&c, "k"), Some(at));
        let secs = now_ms() / 1000 + 60;
        assert_eq!(c.run(&["SET", "k", "v", "EXAT", &secs.to_string()]), OK);
        assert_eq!(deadline(&c, "k"), Some(secs * 1000));
        assert_eq!(c.cmd("SET k w KEEPTTL"), OK);
        assert_eq!(deadline(&c, "k"), Some(secs * 1000));
        assert_eq!(c.cmd("GET k"), bulk("w"));
        // The same option twice: the last value wins.
        assert_eq!(c.cmd("SET k v EX 10 EX 200"), OK);
        assert!(ttl_ms(&c, "k") > 100_000);
        assert_eq!(c.cmd("SET k v KEEPTTL KEEPTTL"), OK);
        assert!(ttl_ms(&c, "k") > 100_000);
        // A deadline in the past: the key is never seen.
        assert_eq!(c.cmd("SET k v PXAT 1"), OK);
        assert_eq!(c.cmd("GET k"), NIL);
    }

    #[test]
    fn set_syntax_errors() {
        let mut c = TestClient::new();
        for line in [
            "SET k v FOO",
            "SET k v NX XX",
            "SET k v XX NX",
            "SET k v EX",
            "SET k v EX 10 PX 10",
            "SET k v PX 10 EXAT 10",
            "SET k v EX 10 KEEPTTL",
            "SET k v KEEPTTL PXAT 10",
            "SET k v PERSIST",
            "SET k v IFEQ",
            "SET k v IFEQ a NX",
            "SET k v XX IFNE a",
            "SET k v IFEQ a IFNE b",
            "SET k v IFDEQ 0000000000000000 IFDNE 0000000000000000",
        ] {
            assert_eq!(c.cmd(line), SYNTAX, "{line}");
        }
        assert_eq!(c.cmd("GET k"), NIL);
    }

    #[test]
    fn set_invalid_expire_times_name_the_command() {
        let mut c = TestClient::new();
        for line in [
            "SET k v EX 0",
            "SET k v EX -1",
            "SET k v PX 0",
            "SET k v EXAT 0",
            "SET k v PXAT -1",
            "SET k v EX 9223372036854775",
            "SET k v PX 9223372036854775807",
            "SET k v EXAT 9223372036854775807",
        ] {
            assert_eq!(c.cmd(line), invalid_expire("set"), "{line}");
        }
        assert_eq!(c.cmd("SET k v EX abc"), NOT_INT);
        // The expire time is checked before GET reads the key.
        put_list(&c, "l");
        assert_eq!(c.cmd("SET l v GET EX 0"), invalid_expire("set"));
    }

    #[test]
    fn setnx_replies_one_or_zero() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("SETNX k v"), ":1\r\n");
        assert_eq!(c.cmd("SETNX k w"), ":0\r\n");
        assert_eq!(c.cmd("GET k"), bulk("v"));
        put_list(&c, "l");
        assert_eq!(c.cmd("SETNX l v"), ":0\r\n");
    }

    #[test]
    fn setex_and_psetex_set_a_deadline_and_check_it() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("SETEX k 100 v"), OK);
        assert!((99_000..=100_000).contains(&ttl_ms(&c, "k")));
        assert_eq!(c.cmd("PSETEX p 5000 v"), OK);
        assert!((4_000..=5_000).contains(&ttl_ms(&c, "p")));
        assert_eq!(c.cmd("GET p"), bulk("v"));
        for (line, cmd) in [
            ("SETEX k 0 v", "setex"),
            ("SETEX k -5 v", "setex"),
            ("SETEX k 9223372036854775807 v", "setex"),
            ("PSETEX k 0 v", "psetex"),
            ("PSETEX k 9223372036854775807 v", "psetex"),
        ] {
            assert_eq!(c.cmd(line), invalid_expire(cmd), "{line}");
        }
        assert_eq!(c.cmd("SETEX k abc v"), NOT_INT);
        put_list(&c, "l");
        assert_eq!(c.cmd("SETEX l 10 x"), OK);
        assert_eq!(c.cmd("GET l"), bulk("x"));
    }

    #[test]
    fn getset_returns_the_old_value_and_clears_the_deadline() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("GETSET k v"), NIL);
        assert_eq!(c.cmd("SET k v EX 100"), OK);
        assert_eq!(c.cmd("GETSET k w"), bulk("v"));
        assert_eq!(c.cmd("GET k"), bulk("w"));
        assert_eq!(deadline(&c, "k"), None);
        put_list(&c, "l");
        assert_eq!(c.cmd("GETSET l v"), WRONGTYPE);
    }

    #[test]
    fn getdel_returns_and_removes() {
        let mut c = TestClient::new();
        c.cmd("SET k v");
        assert_eq!(c.cmd("GETDEL k"), bulk("v"));
        assert_eq!(c.cmd("GETDEL k"), NIL);
        assert_eq!(c.cmd("GET k"), NIL);
        put_list(&c, "l");
        assert_eq!(c.cmd("GETDEL l"), WRONGTYPE);
    }

    #[test]
    fn getex_changes_the_deadline_after_reading() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("GETEX k"), NIL);
        c.cmd("SET k v");
        assert_eq!(c.cmd("GETEX k"), bulk("v"));
        assert_eq!(deadline(&c, "k"), None);
        assert_eq!(c.cmd("GETEX k PX 5000"), bulk("v"));
        assert!((4_000..=5_000).contains(&ttl_ms(&c, "k")));
        assert_eq!(c.cmd("GETEX k"), bulk("v"));
        assert!(deadline(&c, "k").is_some());
        assert_eq!(c.cmd("GETEX k PERSIST"), bulk("v"));
        assert_eq!(deadline(&c, "k"), None);
        assert_eq!(c.cmd("GETEX k EX 10 EX 100"), bulk("v"));
        assert!(ttl_ms(&c, "k") > 90_000);
        let at = now_ms() + 60_000;
        assert_eq!(c.run(&["GETEX", "k", "PXAT", &at.to_string()]), bulk("v"));
        assert_eq!(deadline(&c, "k"), Some(at));
        // A deadline in the past deletes the key.
        assert_eq!(c.cmd("GETEX k EXAT 1"), bulk("v"));
        assert_eq!(c.cmd("GET k"), NIL);
    }

    #[test]
    fn getex_errors_come_in_redis_order() {
        let mut c = TestClient::new();
        c.cmd("SET k v");
        for line in [
            "GETEX k EX 10 PX 10",
            "GETEX k PERSIST EX 10",
            "GETEX k EX 10 PERSIST",
            "GETEX k KEEPTTL",
            "GETEX k GET",
            "GETEX k NX",
            "GETEX k EX",
            "GETEX k FOO",
            "GETEX missing FOO",
        ] {
            assert_eq!(c.cmd(line), SYNTAX, "{line}");
        }
        assert_eq!(c.cmd("GETEX k EX 0"), invalid_expire("getex"));
        assert_eq!(c.cmd("GETEX k PX abc"), NOT_INT);
        // A missing key or a wrong type is reported before the expire time is checked.
        assert_eq!(c.cmd("GETEX missing EX 0"), NIL);
        put_list(&c, "l");
        assert_eq!(c.cmd("GETEX l EX 0"), WRONGTYPE);
        assert_eq!(c.cmd("GETEX l"), WRONGTYPE);
    }

    #[test]
    fn mget_reads_other_types_and_missing_keys_as_null() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        put_list(&c, "l");
        assert_eq!(
            c.cmd("MGET a missing l a"),
            "*4\r\n$1\r\n1\r\n$-1\r\n$-1\r\n$1\r\n1\r\n"
        );
    }

    #[test]
    fn mset_sets_every_pair_and_clears_deadlines() {
        let mut c = TestClient::new();
        c.cmd("SET a old EX 100");
        put_list(&c, "l");
        assert_eq!(c.cmd("MSET a 1 b 2 l 3 a 4"), OK);
        assert_eq!(
            c.cmd("MGET a b l"),
            "*3\r\n$1\r\n4\r\n$1\r\n2\r\n$1\r\n3\r\n"
        );
        assert_eq!(deadline(&c, "a"), None);
        assert_eq!(
            c.cmd("MSET a 1 b"),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
        assert_eq!(
            c.cmd("MSET a"),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
    }

    #[test]
    fn msetnx_sets_all_or_nothing() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("MSETNX a 1 b 2"), ":1\r\n");
        assert_eq!(c.cmd("MSETNX c 3 b 9"), ":0\r\n");
        assert_eq!(c.cmd("MGET a b c"), "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
        put_list(&c, "l");
        assert_eq!(c.cmd("MSETNX l 1"), ":0\r\n");
        assert_eq!(
            c.cmd("MSETNX x 1 y"),
            "-ERR wrong number of arguments for 'msetnx' command\r\n"
        );
    }

    #[test]
    fn msetex_sets_all_or_nothing_with_one_deadline() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("MSETEX 2 a 1 b 2 PX 5000"), ":1\r\n");
        assert_eq!(c.cmd("MGET a b"), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        assert!((4_000..=5_000).contains(&ttl_ms(&c, "a")));
        assert!((4_000..=5_000).contains(&ttl_ms(&c, "b")));
        assert_eq!(c.cmd("MSETEX 2 a x c 3 NX"), ":0\r\n");
        assert_eq!(c.cmd("MGET a c"), "*2\r\n$1\r\n1\r\n$-1\r\n");
        assert_eq!(c.cmd("MSETEX 2 a x c 3 XX"), ":0\r\n");
        assert_eq!(c.cmd("MSETEX 2 a x b y XX KEEPTTL"), ":1\r\n");
        assert_eq!(c.cmd("MGET a b"), "*2\r\n$1\r\nx\r\n$1\r\ny\r\n");
        assert!(deadline(&c, "a").is_some());
        assert_eq!(c.cmd("MSETEX 1 a z"), ":1\r\n");
        assert_eq!(deadline(&c, "a"), None);
        assert_eq!(c.cmd("MSETEX 1 n 1 NX EX 100"), ":1\r\n");
        assert!(ttl_ms(&c, "n") > 90_000);
        // Other types are overwritten, as by MSET.
        put_list(&c, "l");
        assert_eq!(c.cmd("MSETEX 1 l v XX"), ":1\r\n");
        assert_eq!(c.cmd("GET l"), bulk("v"));
    }

    #[test]
    fn msetex_errors() {
        let mut c = TestClient::new();
        let numkeys = "-ERR invalid numkeys value\r\n";
        assert_eq!(c.cmd("MSETEX 0 a 1"), numkeys);
        assert_eq!(c.cmd("MSETEX -1 a 1"), numkeys);
        assert_eq!(c.cmd("MSETEX x a 1"), numkeys);
        let pairs = "-ERR wrong number of key-value pairs\r\n";
        assert_eq!(c.cmd("MSETEX 2 a 1 b"), pairs);
        assert_eq!(c.cmd("MSETEX 9223372036854775807 a 1"), pairs);
        for line in [
            "MSETEX 1 a 1 b",
            "MSETEX 1 a 1 NX XX",
            "MSETEX 1 a 1 GET",
            "MSETEX 1 a 1 PERSIST",
            "MSETEX 1 a 1 IFEQ 1",
            "MSETEX 1 a 1 EX 10 KEEPTTL",
            "MSETEX 1 a 1 EX",
        ] {
            assert_eq!(c.cmd(line), SYNTAX, "{line}");
        }
        assert_eq!(c.cmd("MSETEX 1 a 1 EX 0"), invalid_expire("msetex"));
        assert_eq!(c.cmd("MSETEX 1 a 1 PX abc"), NOT_INT);
        assert_eq!(
            c.cmd("MSETEX 1 a"),
            "-ERR wrong number of arguments for 'msetex' command\r\n"
        );
        assert_eq!(c.cmd("GET a"), NIL);
    }

    #[test]
    fn incr_family_counts_and_keeps_the_deadline() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("INCR n"), ":1\r\n");
        assert_eq!(c.cmd("INCRBY n 10"), ":11\r\n");
        assert_eq!(c.cmd("DECR n"), ":10\r\n");
        assert_eq!(c.cmd("DECRBY n 15"), ":-5\r\n");
        assert_eq!(c.cmd("INCRBY n -5"), ":-10\r\n");
        assert_eq!(c.cmd("GET n"), bulk("-10"));
        assert_eq!(c.cmd("DECR fresh"), ":-1\r\n");
        c.cmd("SET t 5 EX 100");
        assert_eq!(c.cmd("INCR t"), ":6\r\n");
        assert!(deadline(&c, "t").is_some());
    }

    #[test]
    fn incr_family_errors() {
        let mut c = TestClient::new();
        for value in ["abc", " 1", "01", "1.5", "", "9223372036854775808"] {
            c.run(&["SET", "n", value]);
            assert_eq!(c.cmd("INCR n"), NOT_INT, "{value:?}");
        }
        assert_eq!(c.cmd("INCRBY n abc"), NOT_INT);
        assert_eq!(c.cmd("DECRBY n 1.5"), NOT_INT);
        c.cmd("SET n 9223372036854775807");
        assert_eq!(
            c.cmd("INCR n"),
            "-ERR increment or decrement would overflow\r\n"
        );
        c.cmd("SET n -9223372036854775808");
        assert_eq!(
            c.cmd("DECR n"),
            "-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(
            c.cmd("INCRBY n -1"),
            "-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(c.cmd("GET n"), bulk("-9223372036854775808"));
        assert_eq!(
            c.cmd("DECRBY n -9223372036854775808"),
            "-ERR decrement would overflow\r\n"
        );
        c.cmd("SET n 5");
        assert_eq!(
            c.cmd("DECRBY n 9223372036854775807"),
            ":-9223372036854775802\r\n"
        );
        put_list(&c, "l");
        assert_eq!(c.cmd("INCR l"), WRONGTYPE);
        assert_eq!(c.cmd("DECRBY l 1"), WRONGTYPE);
        // The increment is parsed before the key is read.
        assert_eq!(c.cmd("INCRBY l abc"), NOT_INT);
    }

    #[test]
    fn incrbyfloat_adds_and_formats_like_redis() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("INCRBYFLOAT f 1.23"), bulk("1.23"));
        c.cmd("SET f 10.5");
        assert_eq!(c.cmd("INCRBYFLOAT f 0.1"), bulk("10.6"));
        assert_eq!(c.cmd("GET f"), bulk("10.6"));
        c.cmd("SET f 3");
        assert_eq!(c.cmd("INCRBYFLOAT f 1.5"), bulk("4.5"));
        c.cmd("SET f 1.5e3");
        assert_eq!(c.cmd("INCRBYFLOAT f 0"), bulk("1500"));
        c.cmd("SET f 1e-20");
        assert_eq!(c.cmd("INCRBYFLOAT f 0"), bulk("0"));
        c.cmd("SET f 0");
        assert_eq!(c.cmd("INCRBYFLOAT f -0"), bulk("0"));
        assert_eq!(c.cmd("INCRBYFLOAT f 1.0e5"), bulk("100000"));
        // long double precision, as Redis: f64 would give 1000000000000000100000 and 0.30000000000000004.
        assert_eq!(c.cmd("INCRBYFLOAT g 1e21"), bulk("1000000000000000000000"));
        assert_eq!(c.cmd("INCRBYFLOAT h 0.1"), bulk("0.1"));
        assert_eq!(c.cmd("INCRBYFLOAT h 0.2"), bulk("0.3"));
        // printf's rounding of an exact tie at the 17th decimal: to even.
        c.cmd("SET h 0.000003814697265625");
        assert_eq!(c.cmd("INCRBYFLOAT h 0"), bulk("0.00000381469726562"));
        c.cmd("SET t 1 PX 100000");
        assert_eq!(c.cmd("INCRBYFLOAT t 1"), bulk("2"));
        assert!(deadline(&c, "t").is_some());
    }

    #[test]
    fn incrbyfloat_errors_come_in_redis_order() {
        let mut c = TestClient::new();
        c.cmd("SET f 1");
        assert_eq!(c.cmd("INCRBYFLOAT f abc"), NOT_FLOAT);
        assert_eq!(c.cmd("INCRBYFLOAT f nan"), NOT_FLOAT);
        assert_eq!(c.run(&["INCRBYFLOAT", "f", " 1"]), NOT_FLOAT);
        let nan_inf = "-ERR increment would produce NaN or Infinity\r\n";
        assert_eq!(c.cmd("INCRBYFLOAT f inf"), nan_inf);
        // Beyond f64's range but not long double's: 1e4932 + 1e4932 is the first overflow.
        assert!(c
            .cmd("INCRBYFLOAT f 1e400")
            .starts_with("$401\r\n1000000000"));
        c.cmd("SET f 1e4932");
        assert_eq!(c.cmd("INCRBYFLOAT f 1e4932"), nan_inf);
        assert_eq!(c.cmd("INCRBYFLOAT f 1e5000"), NOT_FLOAT);
        c.cmd("SET f abc");
        assert_eq!(c.cmd("INCRBYFLOAT f 1"), NOT_FLOAT);
        assert_eq!(c.cmd("INCRBYFLOAT f xyz"), NOT_FLOAT);
        put_list(&c, "l");
        assert_eq!(c.cmd("INCRBYFLOAT l abc"), WRONGTYPE);
    }

    #[test]
    fn append_and_strlen() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("APPEND k hello"), ":5\r\n");
        assert_eq!(c.run(&["APPEND", "k", " world"]), ":11\r\n");
        assert_eq!(c.cmd("GET k"), bulk("hello world"));
        assert_eq!(c.cmd("STRLEN k"), ":11\r\n");
        assert_eq!(c.cmd("STRLEN missing"), ":0\r\n");
        c.cmd("SET t a EX 100");
        assert_eq!(c.cmd("APPEND t b"), ":2\r\n");
        assert!(deadline(&c, "t").is_some());
        put_list(&c, "l");
        assert_eq!(c.cmd("APPEND l x"), WRONGTYPE);
        assert_eq!(c.cmd("STRLEN l"), WRONGTYPE);
    }

    #[test]
    fn append_and_setrange_stop_at_proto_max_bulk_len() {
        let mut c = TestClient::new();
        c.server
            .settings
            .proto_max_bulk_len
            .store(10, Ordering::Relaxed);
        c.cmd("SET k 12345");
        assert_eq!(c.cmd("APPEND k 67890"), ":10\r\n");
        assert_eq!(c.cmd("APPEND k x"), TOO_BIG);
        assert_eq!(c.cmd("SETRANGE k 9 x"), ":10\r\n");
        assert_eq!(c.cmd("SETRANGE k 10 x"), TOO_BIG);
        assert_eq!(c.cmd("SETRANGE new 10 x"), TOO_BIG);
        assert_eq!(c.cmd("EXISTS new"), ":0\r\n");
        assert_eq!(c.cmd("SETRANGE k 9223372036854775807 x"), TOO_BIG);
        // Writing nothing never checks the size.
        assert_eq!(c.run(&["SETRANGE", "k", "100", ""]), ":10\r\n");
        assert_eq!(c.cmd("GET k"), bulk("123456789x"));
    }

    #[test]
    fn getrange_and_substr_follow_redis_index_rules() {
        let mut c = TestClient::new();
        c.run(&["SET", "s", "This is a string"]);
        for (start, end, want) in [
            ("0", "3", "This"),
            ("-3", "-1", "ing"),
            ("0", "-1", "This is a string"),
            ("10", "100", "string"),
            ("-1", "-5", ""),
            ("5", "3", ""),
            ("-100", "2", "Thi"),
            ("0", "-100", "T"),
            ("100", "200", ""),
        ] {
            assert_eq!(
                c.run(&["GETRANGE", "s", start, end]),
                bulk(want),
                "{start} {end}"
            );
        }
        assert_eq!(c.cmd("SUBSTR s 0 3"), bulk("This"));
        assert_eq!(c.cmd("GETRANGE missing 0 1"), bulk(""));
        c.run(&["SET", "e", ""]);
        assert_eq!(c.cmd("GETRANGE e 0 -1"), bulk(""));
        assert_eq!(c.cmd("GETRANGE s a 1"), NOT_INT);
        assert_eq!(c.cmd("GETRANGE s 0 b"), NOT_INT);
        put_list(&c, "l");
        assert_eq!(c.cmd("GETRANGE l 0 1"), WRONGTYPE);
        assert_eq!(c.cmd("GETRANGE l a 1"), NOT_INT);
    }

    #[test]
    fn setrange_patches_and_pads_with_zero_bytes() {
        let mut c = TestClient::new();
        c.run(&["SET", "s", "Hello World"]);
        assert_eq!(c.cmd("SETRANGE s 6 Redis"), ":11\r\n");
        assert_eq!(c.cmd("GET s"), bulk("Hello Redis"));
        assert_eq!(c.cmd("SETRANGE p 5 hi"), ":7\r\n");
        assert_eq!(c.run_bytes(&["GET", "p"]), b"$7\r\n\0\0\0\0\0hi\r\n");
        assert_eq!(c.run(&["SETRANGE", "none", "5", ""]), ":0\r\n");
        assert_eq!(c.cmd("EXISTS none"), ":0\r\n");
        assert_eq!(c.cmd("SETRANGE s -1 x"), "-ERR offset is out of range\r\n");
        assert_eq!(c.cmd("SETRANGE s a x"), NOT_INT);
        put_list(&c, "l");
        assert_eq!(c.cmd("SETRANGE l 0 x"), WRONGTYPE);
        assert_eq!(c.cmd("SETRANGE l -1 x"), "-ERR offset is out of range\r\n");
    }

    #[test]
    fn digest_is_sixteen_lowercase_hex_digits_of_xxh3() {
        let mut c = TestClient::new();
        c.run(&["SET", "k", "Hello world"]);
        // The example on redis.io's DIGEST page.
        assert_eq!(c.cmd("DIGEST k"), bulk("b6acb9d84a38ff74"));
        // A digest with leading zeros keeps them (redis#14496's example value hashes to 0x00006c38adf31777).
        let v = "v8lf0c11xh8ymlqztfd3eeq16kfn4sspw7fqmnuuq3k3t75em5wdizgcdw7uc26nnf961u2jkfzkjytls2kwlj7626sd";
        c.run(&["SET", "z", v]);
        assert_eq!(c.cmd("DIGEST z"), bulk("00006c38adf31777"));
        assert_eq!(c.cmd("DIGEST missing"), NIL);
        put_list(&c, "l");
        assert_eq!(c.cmd("DIGEST l"), WRONGTYPE);
    }

    #[test]
    fn set_if_conditions_compare_value_or_digest() {
        let mut c = TestClient::new();
        // IFEQ and IFDEQ never create a key; IFNE and IFDNE do.
        assert_eq!(c.cmd("SET k v IFEQ v"), NIL);
        assert_eq!(c.cmd("SET k v IFDEQ 0000000000000000"), NIL);
        assert_eq!(c.cmd("GET k"), NIL);
        assert_eq!(c.cmd("SET k a IFNE x"), OK);
        assert_eq!(c.cmd("SET k2 a IFDNE 0000000000000000"), OK);
        assert_eq!(c.cmd("SET k b IFEQ x"), NIL);
        assert_eq!(c.cmd("SET k b IFEQ a"), OK);
        assert_eq!(c.cmd("SET k c IFNE b"), NIL);
        assert_eq!(c.cmd("SET k c IFNE x"), OK);
        let d = digest_hex(b"c");
        assert_eq!(c.run(&["SET", "k", "d", "IFDNE", &d]), NIL);
        assert_eq!(c.run(&["SET", "k", "d", "IFDEQ", &d.to_uppercase()]), OK);
        assert_eq!(c.run(&["SET", "k", "e", "IFDEQ", &d]), NIL);
        assert_eq!(c.run(&["SET", "k", "e", "IFDNE", &d]), OK);
        assert_eq!(c.cmd("GET k"), bulk("e"));
        // GET replies with the old value whether or not the condition held; options combine with expiry.
        assert_eq!(c.cmd("SET k f IFEQ nope GET"), bulk("e"));
        assert_eq!(c.cmd("SET k f IFEQ e GET PX 5000"), bulk("e"));
        assert!((4_000..=5_000).contains(&ttl_ms(&c, "k")));
        assert_eq!(c.cmd("SET k g IFEQ f KEEPTTL"), OK);
        assert!(deadline(&c, "k").is_some());
        assert_eq!(c.cmd("SET k h IFEQ g IFEQ x"), NIL);
    }

    #[test]
    fn set_if_conditions_errors() {
        let mut c = TestClient::new();
        c.cmd("SET k v");
        for bad in [
            "123",
            "0000000000000000a",
            "000000000000000g",
            "+000000000000000",
            "",
        ] {
            assert_eq!(
                c.run(&["SET", "k", "v", "IFDEQ", bad]),
                BAD_DIGEST,
                "{bad:?}"
            );
            assert_eq!(
                c.run(&["SET", "k", "v", "IFDNE", bad]),
                BAD_DIGEST,
                "{bad:?}"
            );
        }
        put_list(&c, "l");
        assert_eq!(c.cmd("SET l v IFEQ x"), WRONGTYPE);
        assert_eq!(c.cmd("SET l v IFNE x"), WRONGTYPE);
        assert_eq!(c.cmd("SET l v IFDEQ 0000000000000000"), WRONGTYPE);
        assert_eq!(c.cmd("SET l v IFDNE 0000000000000000"), WRONGTYPE);
        assert_eq!(c.cmd("SET l v"), OK);
    }

    #[test]
    fn delex_deletes_on_condition() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("DELEX k"), ":0\r\n");
        put_list(&c, "l");
        assert_eq!(c.cmd("DELEX l"), ":1\r\n");
        c.cmd("SET k v");
        assert_eq!(c.cmd("DELEX k IFEQ x"), ":0\r\n");
        assert_eq!(c.cmd("DELEX k IFNE v"), ":0\r\n");
        assert_eq!(c.run(&["DELEX", "k", "IFDNE", &digest_hex(b"v")]), ":0\r\n");
        assert_eq!(c.cmd("DELEX k IFDEQ 0000000000000000"), ":0\r\n");
        assert_eq!(c.cmd("GET k"), bulk("v"));
        assert_eq!(c.cmd("DELEX k IFEQ v"), ":1\r\n");
        c.cmd("SET k v");
        assert_eq!(c.cmd("DELEX k IFNE x"), ":1\r\n");
        c.cmd("SET k v");
        assert_eq!(c.run(&["DELEX", "k", "IFDEQ", &digest_hex(b"v")]), ":1\r\n");
        c.cmd("SET k v");
        assert_eq!(c.cmd("DELEX k IFDNE 0000000000000000"), ":1\r\n");
        // A missing key is never deleted, whatever the condition.
        assert_eq!(c.cmd("DELEX k IFNE x"), ":0\r\n");
        assert_eq!(c.cmd("DELEX k IFDNE 0000000000000000"), ":0\r\n");
    }

    #[test]
    fn delex_errors() {
        let mut c = TestClient::new();
        c.cmd("SET k v");
        for line in [
            "DELEX k IFEQ",
            "DELEX k FOO v",
            "DELEX k IFEQ v x",
            "DELEX k NX",
        ] {
            assert_eq!(c.cmd(line), SYNTAX, "{line}");
        }
        assert_eq!(c.cmd("DELEX k IFDEQ 12"), BAD_DIGEST);
        put_list(&c, "l");
        for line in [
            "DELEX l IFEQ x",
            "DELEX l IFNE x",
            "DELEX l IFDEQ 0000000000000000",
            "DELEX l IFDNE 0000000000000000",
        ] {
            assert_eq!(c.cmd(line), WRONGTYPE, "{line}");
        }
        assert_eq!(c.cmd("GET k"), bulk("v"));
    }

    #[test]
    fn delifeq_deletes_only_a_matching_string() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("DELIFEQ k v"), ":0\r\n");
        c.cmd("SET k v");
        assert_eq!(c.cmd("DELIFEQ k x"), ":0\r\n");
        assert_eq!(c.cmd("GET k"), bulk("v"));
        assert_eq!(c.cmd("DELIFEQ k v"), ":1\r\n");
        assert_eq!(c.cmd("GET k"), NIL);
        put_list(&c, "l");
        assert_eq!(c.cmd("DELIFEQ l x"), WRONGTYPE);
        assert_eq!(
            c.cmd("DELIFEQ k"),
            "-ERR wrong number of arguments for 'delifeq' command\r\n"
        );
    }

    #[test]
    fn an_expired_lock_is_free_again() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("SET lock t1 NX PX 1"), OK);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(c.cmd("GET lock"), NIL);
        assert_eq!(c.cmd("DELIFEQ lock t1"), ":0\r\n");
        assert_eq!(c.cmd("SET lock t2 NX PX 10000"), OK);
        assert_eq!(c.cmd("DELIFEQ lock t1"), ":0\r\n");
        assert_eq!(c.cmd("DELIFEQ lock t2"), ":1\r\n");
    }
}
