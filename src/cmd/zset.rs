//! Sorted set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, the ZRANGE family (ZRANGE,
//! ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZREVRANGE, ZRANGESTORE), ZRANK/ZREVRANK, ZPOPMIN,
//! ZPOPMAX, ZMPOP, ZREMRANGEBYSCORE/BYRANK/BYLEX, ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE and their reading forms ZUNION,
//! ZINTER, ZDIFF, ZINTERCARD, ZSCAN and ZRANDMEMBER.
//!
//! The value lives in [`crate::store::ZSet`]. Invariant: a zset key is never empty; whatever takes its last member
//! deletes it, and a STORE form with an empty result deletes its destination.
//!
//! Every range command (by rank, score or lex, either direction, with LIMIT) is reduced to one shape: a start position
//! and a count in a walk of the set, ascending or descending ([`Selection`]), which the order-statistics tree serves in
//! O(log n + count).

use std::collections::HashMap;

use super::args::{self, is, parse_f64, parse_i64, Cursor, ScanOpts};
use super::set::{reply_scan, sample_distinct};
use super::typed::{find, lookup, lookup_mut, update};
use super::{blocking, flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::glob;
use crate::notify;
use crate::protocol::reply::format_double;
use crate::protocol::{Argv, Reply};
use crate::store::{BlockOp, Keyspace, Set, Value, ZSet};

const NUMKEYS1: Keys = Keys::NumKeys { at: 1, step: 1 };

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("zadd", -4, WRITE | DENYOOM | FAST, Keys::FIRST, zadd),
    CommandSpec::new("zincrby", 4, WRITE | DENYOOM | FAST, Keys::FIRST, zincrby),
    CommandSpec::new("zrem", -3, WRITE | FAST, Keys::FIRST, zrem),
    CommandSpec::new("zscore", 3, READONLY | FAST, Keys::FIRST, zscore),
    CommandSpec::new("zmscore", -3, READONLY | FAST, Keys::FIRST, zmscore),
    CommandSpec::new("zcard", 2, READONLY | FAST, Keys::FIRST, zcard),
    CommandSpec::new("zcount", 4, READONLY | FAST, Keys::FIRST, zcount),
    CommandSpec::new("zlexcount", 4, READONLY | FAST, Keys::FIRST, zlexcount),
    CommandSpec::new("zrange", -4, READONLY, Keys::FIRST, zrange),
    CommandSpec::new("zrangebyscore", -4, READONLY, Keys::FIRST, zrangebyscore),
    CommandSpec::new(
        "zrevrangebyscore",
        -4,
        READONLY,
        Keys::FIRST,
        zrevrangebyscore,
    ),
    CommandSpec::new("zrangebylex", -4, READONLY, Keys::FIRST, zrangebylex),
    CommandSpec::new("zrevrangebylex", -4, READONLY, Keys::FIRST, zrevrangebylex),
    CommandSpec::new("zrevrange", -4, READONLY, Keys::FIRST, zrevrange),
    CommandSpec::new(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        Keys::FIRST_TWO,
        zrangestore,
    ),
    CommandSpec::new("zrank", -3, READONLY | FAST, Keys::FIRST, zrank),
    CommandSpec::new("zrevrank", -3, READONLY | FAST, Keys::FIRST, zrevrank),
    CommandSpec::new("zpopmin", -2, WRITE | FAST, Keys::FIRST, zpopmin),
    CommandSpec::new("zpopmax", -2, WRITE | FAST, Keys::FIRST, zpopmax),
    CommandSpec::new("zmpop", -4, WRITE, NUMKEYS1, zmpop),
    CommandSpec::new(
        "bzpopmin",
        -3,
        WRITE | FAST | BLOCKING,
        Keys::ALL_BUT_LAST,
        bzpopmin,
    ),
    CommandSpec::new(
        "bzpopmax",
        -3,
        WRITE | FAST | BLOCKING,
        Keys::ALL_BUT_LAST,
        bzpopmax,
    ),
    CommandSpec::new(
        "bzmpop",
        -5,
        WRITE | BLOCKING,
        Keys::NumKeys { at: 2, step: 1 },
        bzmpop,
    ),
    CommandSpec::new("zremrangebyscore", 4, WRITE, Keys::FIRST, zremrangebyscore),
    CommandSpec::new("zremrangebyrank", 4, WRITE, Keys::FIRST, zremrangebyrank),
    CommandSpec::new("zremrangebylex", 4, WRITE, Keys::FIRST, zremrangebylex),
    CommandSpec::new(
        "zunionstore",
        -4,
        WRITE | DENYOOM,
        Keys::DestNumKeys,
        zunionstore,
    ),
    CommandSpec::new(
        "zinterstore",
        -4,
        WRITE | DENYOOM,
        Keys::DestNumKeys,
        zinterstore,
    ),
    CommandSpec::new(
        "zdiffstore",
        -4,
        WRITE | DENYOOM,
        Keys::DestNumKeys,
        zdiffstore,
    ),
    CommandSpec::new("zunion", -3, READONLY, NUMKEYS1, zunion),
    CommandSpec::new("zinter", -3, READONLY, NUMKEYS1, zinter),
    CommandSpec::new("zintercard", -3, READONLY, NUMKEYS1, zintercard),
    CommandSpec::new("zdiff", -3, READONLY, NUMKEYS1, zdiff),
    CommandSpec::new("zscan", -3, READONLY, Keys::FIRST, zscan),
    CommandSpec::new("zrandmember", -2, READONLY, Keys::FIRST, zrandmember),
];

const NAN_SCORE: &str = "resulting score is not a number (NaN)";

/// Runs `f` on the zset at `key` (or `None`) with the reply buffer.
fn read(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(Option<&ZSet>, &mut Reply)) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    f(lookup::<ZSet>(db, key, now)?, out);
    Ok(())
}

/// Removes from the zset at `key` what `f` picks, through [`update`] (so removing nothing spoils no WATCH), and
/// replies how many members went.
/// Announces `event` (then `del` when the zset emptied) when something went.
fn remove_members(
    ctx: &mut Ctx,
    key: &[u8],
    event: &'static str,
    f: impl FnOnce(&mut ZSet) -> usize,
) -> CmdResult {
    let now = ctx.now;
    let removed = update::<ZSet, _>(ctx.db(key), key, now, |z| {
        let removed = f(z);
        (removed, removed > 0)
    })?;
    let removed = removed.unwrap_or(0);
    ctx.out.int(removed as i64);
    if removed > 0 {
        ctx.notify_emptied(notify::ZSET, event, key);
    }
    Ok(())
}

/// Writes member/score pairs: with scores, a flat array in RESP2 and an array of [member, double] pairs in RESP3 (or
/// always nested when `nested`, as ZMPOP replies); without, an array of members.
fn reply_members(out: &mut Reply, items: &[(&[u8], f64)], withscores: bool, nested: bool) {
    let nested = withscores && (nested || out.resp3());
    out.array(if withscores && !nested {
        2 * items.len()
    } else {
        items.len()
    });
    for (m, s) in items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(*s);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM and the single-member reads.

/// ZADD's options.
#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

fn zadd(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut flags = AddFlags::default();
    let mut at = 2;
    while at < argv.len() {
        let opt = argv.get(at);
        let flag = match () {
            _ if is(opt, "NX") => &mut flags.nx,
            _ if is(opt, "XX") => &mut flags.xx,
            _ if is(opt, "GT") => &mut flags.gt,
            _ if is(opt, "LT") => &mut flags.lt,
            _ if is(opt, "CH") => &mut flags.ch,
            _ if is(opt, "INCR") => &mut flags.incr,
            _ => break,
        };
        *flag = true;
        at += 1;
    }
    let elements = argv.len() - at;
    if elements == 0 || elements % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if [flags.gt, flags.lt, flags.nx]
        .iter()
        .filter(|f| **f)
        .count()
        > 1
    {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && elements > 2 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let pairs = (at..argv.len())
        .step_by(2)
        .map(|i| {
            Ok((
                parse_f64(argv.get(i)).ok_or(CmdError::NotFloat)?,
                argv.get(i + 1),
            ))
        })
        .collect::<Result<Vec<(f64, &[u8])>, CmdError>>()?;
    add(ctx, argv.get(1), flags, &pairs)
}

fn zincrby(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let incr = parse_f64(argv.get(2)).ok_or(CmdError::NotFloat)?;
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    add(ctx, argv.get(1), flags, &[(incr, argv.get(3))])
}

/// The shared body of ZADD and ZINCRBY (Redis's `zsetAdd` per pair): replies the new score for INCR (null when a flag
/// stopped it), else the number added (plus changed with CH). A ZADD that changes nothing (XX on a missing member, NX
/// on a present one, GT/LT refusing, the same score) puts the keyspace version back, so it spoils no WATCH, as in
/// Redis.
fn add(ctx: &mut Ctx, key: &[u8], flags: AddFlags, pairs: &[(f64, &[u8])]) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    if find::<ZSet>(db, key, now)?.is_none() && !flags.xx {
        // Every pair adds to a new key. Sized from every pair, as Redis's `zsetTypeCreate` is (it decides the
        // encoding).
        let max_len = pairs.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        db.insert(
            key,
            Value::ZSet(ZSet::with_hint(pairs.len(), max_len).into()),
            None,
        );
    }
    let version = db.version();
    let (mut added, mut changed, mut last, mut wrote) = (0, 0, None, false);
    if let Some(z) = lookup_mut::<ZSet>(db, key, now)? {
        for &(score, member) in pairs {
            last = None;
            let cur = z.score(member);
            let new = match cur {
                None if flags.xx => continue,
                None => {
                    added += 1;
                    score
                }
                Some(_) if flags.nx => continue,
                Some(cur) => {
                    let new = if flags.incr { cur + score } else { score };
                    // Only INCR (one pair, so nothing is written yet) can make a NaN.
                    if new.is_nan() {
                        return Err(CmdError::err(NAN_SCORE));
                    }
                    if (flags.gt && new <= cur) || (flags.lt && new >= cur) {
                        continue;
                    }
                    if new != cur {
                        changed += 1;
                    }
                    new
                }
            };
            last = Some(new);
            if cur != Some(new) {
                z.insert(member, new);
                wrote = true;
            }
        }
    }
    if !wrote {
        db.restore_version(version);
    }
    match (flags.incr, last) {
        (true, Some(score)) => out.double(score),
        (true, None) => out.null(),
        (false, _) => out.int(added + if flags.ch { changed } else { 0 }),
    }
    if wrote {
        ctx.notify(notify::ZSET, if flags.incr { "zincr" } else { "zadd" }, key);
    }
    Ok(())
}

fn zrem(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    remove_members(ctx, argv.get(1), "zrem", |z| {
        argv.iter_from(2).filter(|m| z.remove(m).is_some()).count()
    })
}

fn zscore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |z, out| {
        match z.and_then(|z| z.score(argv.get(2))) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    })
}

fn zmscore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |z, out| {
        out.array(argv.len() - 2);
        for m in argv.iter_from(2) {
            match z.and_then(|z| z.score(m)) {
                Some(s) => out.double(s),
                None => out.null(),
            }
        }
    })
}

fn zcard(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    read(ctx, argv.get(1), |z, out| {
        out.int(z.map_or(0, ZSet::len) as i64)
    })
}

/// ZRANK / ZREVRANK key member [WITHSCORE] (WITHSCORE is Redis 7.2: a [rank, score] pair, or a null array).
fn rank(ctx: &mut Ctx, argv: Argv, rev: bool) -> CmdResult {
    let withscore = match argv.len() {
        3 => false,
        4 if is(argv.get(3), "WITHSCORE") => true,
        4 => return Err(CmdError::Syntax),
        _ => {
            let name = if rev { "zrevrank" } else { "zrank" };
            return Err(CmdError::WrongArity(name.into()));
        }
    };
    read(ctx, argv.get(1), |z, out| {
        match z.and_then(|z| z.rank(argv.get(2)).map(|(r, s)| (z.len(), r, s))) {
            Some((len, r, s)) => {
                let r = if rev { len - 1 - r } else { r } as i64;
                if withscore {
                    out.array(2);
                    out.int(r);
                    out.double(s);
                } else {
                    out.int(r);
                }
            }
            None if withscore => out.null_array(),
            None => out.null(),
        }
    })
}

fn zrank(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    rank(ctx, argv, false)
}

fn zrevrank(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    rank(ctx, argv, true)
}

// ---------------------------------------------------------------------------------------------------------------------
// Ranges.

/// A score interval (Redis's `zrangespec`).
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    min_ex: bool,
    max: f64,
    max_ex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<Self, CmdError> {
        // Redis reads bounds with `strtod` and checks only that it stopped at a NUL: leading C white space is
        // skipped, an empty string is 0 and anything after a NUL byte is ignored.
        let value = |arg: &[u8]| match args::c_str(arg) {
            b"" => Some(0.0),
            text => args::strtod(text).map(|r| r.value).filter(|v| !v.is_nan()),
        };
        let bound = |arg: &[u8]| match arg.strip_prefix(b"(") {
            Some(rest) => value(rest).map(|v| (v, true)),
            None => value(arg).map(|v| (v, false)),
        };
        match (bound(min), bound(max)) {
            (Some((min, min_ex)), Some((max, max_ex))) => Ok(ScoreRange {
                min,
                min_ex,
                max,
                max_ex,
            }),
            _ => Err(CmdError::err("min or max is not a float")),
        }
    }

    /// The ascending ranks `[lo, hi)` of the members inside.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let lo = z.count_while(|s, _| s < self.min || (self.min_ex && s == self.min));
        let hi = z.count_while(|s, _| s < self.max || (!self.max_ex && s == self.max));
        (lo, hi.max(lo))
    }
}

/// One end of a lex interval.
#[derive(Clone, Copy)]
enum Lex<'a> {
    /// `-`: below everything.
    Min,
    /// `+`: above everything.
    Max,
    /// `[x`.
    Incl(&'a [u8]),
    /// `(x`.
    Excl(&'a [u8]),
}

/// A lex interval (Redis's `zlexrangespec`); meaningful when all scores are equal, as in Redis.
#[derive(Clone, Copy)]
struct LexRange<'a> {
    min: Lex<'a>,
    max: Lex<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Result<Self, CmdError> {
        let bound = |arg: &'a [u8]| match arg.split_first() {
            Some((b'-', [])) => Some(Lex::Min),
            Some((b'+', [])) => Some(Lex::Max),
            Some((b'[', rest)) => Some(Lex::Incl(rest)),
            Some((b'(', rest)) => Some(Lex::Excl(rest)),
            _ => None,
        };
        match (bound(min), bound(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(CmdError::err("min or max not valid string range item")),
        }
    }

    fn below_min(&self, m: &[u8]) -> bool {
        match self.min {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(x) => m < x,
            Lex::Excl(x) => m <= x,
        }
    }

    fn up_to_max(&self, m: &[u8]) -> bool {
        match self.max {
            Lex::Min => false,
            Lex::Max => true,
            Lex::Incl(x) => m <= x,
            Lex::Excl(x) => m < x,
        }
    }

    /// The members a walk selects, as (first position in walk order, count): ascending, or descending when `rev`,
    /// skipping `offset` members of the range, at most `limit`. With one score the members are in lex order and this
    /// is a binary search. With several scores (where Redis leaves lex ranges undefined) it walks as Redis walks a
    /// listpack-encoded zset: from the first member (in walk order) past the near end of the range, blindly past
    /// `offset` more, then on while members stay short of the far end; nothing if the range misses the first or last
    /// member. (Redis's skiplist walk, for larger zsets, depends on the random levels of its nodes.)
    fn walk(&self, z: &ZSet, rev: bool, offset: usize, limit: Option<usize>) -> (usize, usize) {
        let len = z.len();
        let one_score = len < 2 || z.get(0).map(|e| e.1) == z.get(len - 1).map(|e| e.1);
        if one_score {
            let lo = z.count_while(|_, m| self.below_min(m));
            let hi = z.count_while(|_, m| self.up_to_max(m)).max(lo);
            return span_walk((lo, hi), len, rev, offset, limit);
        }
        let members: Vec<&[u8]> = z.range(0, rev).map(|(m, _)| m).collect();
        // Past the near end of the range, short of the far end (min and max walking up, max and min down).
        let near = |m: &[u8]| {
            if rev {
                self.up_to_max(m)
            } else {
                !self.below_min(m)
            }
        };
        let far = |m: &[u8]| {
            if rev {
                !self.below_min(m)
            } else {
                self.up_to_max(m)
            }
        };
        let covered = self.nonempty()
            && members.last().is_some_and(|m| near(m))
            && members.first().is_some_and(|m| far(m));
        match members.iter().position(|m| near(m)) {
            Some(first) if covered && far(members[first]) => {
                let start = first.saturating_add(offset).min(len);
                let run = members[start..].iter().take_while(|m| far(m)).count();
                (start, limit.map_or(run, |l| run.min(l)))
            }
            _ => (0, 0),
        }
    }

    /// Whether some string can be in the range (Redis's check on min and max before any walk).
    fn nonempty(&self) -> bool {
        match (self.min, self.max) {
            (Lex::Max, _) | (_, Lex::Min) => false,
            (Lex::Min, _) | (_, Lex::Max) => true,
            (Lex::Incl(a), Lex::Incl(b)) => a <= b,
            (Lex::Incl(a) | Lex::Excl(a), Lex::Incl(b) | Lex::Excl(b)) => a < b,
        }
    }
}

/// What a range command selects by.
#[derive(Clone, Copy, PartialEq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed range: the interval, the direction, and LIMIT.
enum Interval<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// Positions in a walk of the set (ascending, or descending when `rev`): `count` members from `start`.
struct Selection {
    start: usize,
    count: usize,
    rev: bool,
}

/// Redis's normalization of a rank interval against `len` (negative counts from the end): the first index and how
/// many, or `None` when empty.
fn rank_span(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop + len
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then(|| (start as usize, (stop - start + 1) as usize))
}

/// The walk over ascending ranks `[lo, hi)` of a zset of `len` members (descending when `rev`), skipping `offset`,
/// at most `limit`: (first position in walk order, count).
fn span_walk(
    (lo, hi): (usize, usize),
    len: usize,
    rev: bool,
    offset: usize,
    limit: Option<usize>,
) -> (usize, usize) {
    let first = if rev { len - hi } else { lo };
    let n = (hi - lo).saturating_sub(offset);
    (first + offset.min(hi - lo), limit.map_or(n, |l| n.min(l)))
}

/// A ZRANGE-family request, parsed.
struct RangeQuery<'a> {
    interval: Interval<'a>,
    rev: bool,
    /// LIMIT offset (a negative one selects nothing, as in Redis).
    offset: i64,
    /// LIMIT count (negative: everything).
    limit: i64,
    withscores: bool,
}

impl RangeQuery<'_> {
    fn select(&self, z: &ZSet) -> Selection {
        let limit = usize::try_from(self.limit).ok();
        let (start, count) = match (&self.interval, usize::try_from(self.offset)) {
            (Interval::Rank(start, stop), _) => rank_span(*start, *stop, z.len()).unwrap_or((0, 0)),
            (_, Err(_)) => (0, 0),
            (Interval::Score(r), Ok(offset)) => {
                span_walk(r.ranks(z), z.len(), self.rev, offset, limit)
            }
            (Interval::Lex(r), Ok(offset)) => r.walk(z, self.rev, offset, limit),
        };
        Selection {
            start,
            count,
            rev: self.rev,
        }
    }

    /// The selected members of `z`, in reply order.
    fn items<'z>(&self, z: &'z ZSet) -> Vec<(&'z [u8], f64)> {
        let sel = self.select(z);
        z.range(sel.start, sel.rev).take(sel.count).collect()
    }
}

/// Parses a ZRANGE-family command as Redis's `zrangeGenericCommand`: options from `argv[4]` (or `argv[5]` for
/// ZRANGESTORE, whose `min`/`max` sit one further), `by` and `rev` fixed by the command or chosen by options (ZRANGE,
/// ZRANGESTORE). Option errors come before range errors.
fn parse_range<'a>(
    argv: Argv<'a>,
    first: usize,
    store: bool,
    by: Option<By>,
    rev: Option<bool>,
) -> Result<RangeQuery<'a>, CmdError> {
    let (mut by_opt, mut rev_opt) = (None, false);
    let (mut offset, mut limit, mut withscores) = (0, -1, false);
    let mut opts = Cursor::new(argv, first + 2);
    while let Some(opt) = opts.next() {
        if !store && is(opt, "WITHSCORES") {
            withscores = true;
        } else if is(opt, "LIMIT") && opts.remaining() >= 2 {
            offset = opts.int()?;
            limit = opts.int()?;
        } else if rev.is_none() && !rev_opt && is(opt, "REV") {
            rev_opt = true;
        } else if by.is_none() && is(opt, "BYSCORE") && by_opt.is_none() {
            by_opt = Some(By::Score);
        } else if by.is_none() && is(opt, "BYLEX") && by_opt.is_none() {
            by_opt = Some(By::Lex);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let by = by.or(by_opt).unwrap_or(By::Rank);
    let rev = rev.unwrap_or(rev_opt);
    // As Redis, only a count other than -1 counts as a LIMIT here (`LIMIT 5 -1` on ranks is ignored).
    if limit != -1 && by == By::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && by == By::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    // Reversed score and lex ranges are written max first.
    let (a, b) = (argv.get(first), argv.get(first + 1));
    let (min, max) = if rev && by != By::Rank {
        (b, a)
    } else {
        (a, b)
    };
    let interval = match by {
        By::Rank => Interval::Rank(args::int(a)?, args::int(b)?),
        By::Score => Interval::Score(ScoreRange::parse(min, max)?),
        By::Lex => Interval::Lex(LexRange::parse(min, max)?),
    };
    Ok(RangeQuery {
        interval,
        rev,
        offset,
        limit,
        withscores,
    })
}

/// Replies the members a range query selects.
fn range_reply(ctx: &mut Ctx, argv: Argv, by: Option<By>, rev: Option<bool>) -> CmdResult {
    let q = parse_range(argv, 2, false, by, rev)?;
    read(ctx, argv.get(1), |z, out| match z {
        Some(z) => reply_members(out, &q.items(z), q.withscores, false),
        None => out.array(0),
    })
}

fn zrange(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range_reply(ctx, argv, None, None)
}

fn zrangebyscore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range_reply(ctx, argv, Some(By::Score), Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range_reply(ctx, argv, Some(By::Score), Some(true))
}

fn zrangebylex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range_reply(ctx, argv, Some(By::Lex), Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range_reply(ctx, argv, Some(By::Lex), Some(true))
}

fn zrevrange(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    range_reply(ctx, argv, Some(By::Rank), Some(true))
}

/// Overwrites `dst` with `result` (dropping any deadline), or deletes it when the result is empty; replies the size.
/// Announces `event`, or `del` when an empty result deleted the destination.
fn store_result(ctx: &mut Ctx, dst: &[u8], event: &'static str, mut result: ZSet) {
    let (len, now) = (result.len(), ctx.now);
    let db = ctx.db(dst);
    let event = if result.is_empty() {
        db.remove(dst, now).map(|_| (notify::GENERIC, "del"))
    } else {
        result.compact_encoding();
        // Expires a destination past its deadline first, so its `expired` and `new` events are raised.
        db.find(dst, now);
        db.insert(dst, Value::ZSet(result.into()), None);
        Some((notify::ZSET, event))
    };
    ctx.out.int(len as i64);
    if let Some((class, event)) = event {
        ctx.notify(class, event, dst);
    }
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count].
fn zrangestore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let q = parse_range(argv, 3, true, None, None)?;
    let (src, now) = (argv.get(2), ctx.now);
    let result = match lookup::<ZSet>(ctx.db(src), src, now)? {
        Some(z) => to_zset(q.items(z)),
        None => ZSet::default(),
    };
    store_result(ctx, argv.get(1), "zrangestore", result);
    Ok(())
}

/// A zset of `items`.
fn to_zset<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> ZSet {
    let mut z = ZSet::default();
    for (m, s) in items {
        z.insert(m, s);
    }
    z
}

fn zcount(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let range = ScoreRange::parse(argv.get(2), argv.get(3))?;
    read(ctx, argv.get(1), |z, out| {
        let (lo, hi) = z.map_or((0, 0), |z| range.ranks(z));
        out.int((hi - lo) as i64)
    })
}

fn zlexcount(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let range = LexRange::parse(argv.get(2), argv.get(3))?;
    read(ctx, argv.get(1), |z, out| {
        out.int(z.map_or(0, |z| range.walk(z, false, 0, None).1) as i64)
    })
}

/// Removes the members at ascending ranks `[lo, lo + n)` of the zset at `key` (as computed by `span` on it) and
/// replies how many went.
fn remove_span(
    ctx: &mut Ctx,
    key: &[u8],
    event: &'static str,
    span: impl FnOnce(&ZSet) -> (usize, usize),
) -> CmdResult {
    remove_members(ctx, key, event, |z| {
        let (lo, n) = span(z);
        let members: Vec<Vec<u8>> = z
            .range(lo, false)
            .take(n)
            .map(|(m, _)| m.to_vec())
            .collect();
        members.iter().for_each(|m| {
            z.remove(m);
        });
        members.len()
    })
}

fn zremrangebyscore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let range = ScoreRange::parse(argv.get(2), argv.get(3))?;
    remove_span(ctx, argv.get(1), "zremrangebyscore", |z| {
        let (lo, hi) = range.ranks(z);
        (lo, hi - lo)
    })
}

fn zremrangebylex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let range = LexRange::parse(argv.get(2), argv.get(3))?;
    remove_span(ctx, argv.get(1), "zremrangebylex", |z| {
        range.walk(z, false, 0, None)
    })
}

fn zremrangebyrank(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (start, stop) = (args::int(argv.get(2))?, args::int(argv.get(3))?);
    remove_span(ctx, argv.get(1), "zremrangebyrank", |z| {
        rank_span(start, stop, z.len()).unwrap_or((0, 0))
    })
}

// ---------------------------------------------------------------------------------------------------------------------
// Pops.

/// Removes up to `count` members from the low end (or the high end when `max`), in pop order.
/// The event a pop from the `max` (ZPOPMAX) or min end announces.
pub(crate) fn pop_event(max: bool) -> &'static str {
    if max {
        "zpopmax"
    } else {
        "zpopmin"
    }
}

fn pop(z: &mut ZSet, max: bool, count: usize) -> Popped {
    let popped: Popped = z
        .range(0, max)
        .take(count)
        .map(|(m, s)| (m.to_vec(), s))
        .collect();
    popped.iter().for_each(|(m, _)| {
        z.remove(m);
    });
    popped
}

/// Writes popped pairs (see [`reply_members`]).
fn reply_popped(out: &mut Reply, popped: &[(Vec<u8>, f64)], nested: bool) {
    let items: Vec<(&[u8], f64)> = popped.iter().map(|(m, s)| (&m[..], *s)).collect();
    reply_members(out, &items, true, nested);
}

/// ZPOPMIN / ZPOPMAX key [count]. Without a count the reply is one flat [member, score] pair (empty when nothing);
/// with one, the pairs (nested in RESP3).
fn zpop(ctx: &mut Ctx, argv: Argv, max: bool) -> CmdResult {
    let count = match argv.len() {
        2 => None,
        3 => match parse_i64(argv.get(2)) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::err("value is out of range, must be positive")),
        },
        _ => return Err(CmdError::Syntax),
    };
    let (key, now) = (argv.get(1), ctx.now);
    let popped = pop_key(ctx.db(key), key, max, count.unwrap_or(1), now)?.unwrap_or_default();
    if !popped.is_empty() {
        ctx.notify_emptied(notify::ZSET, pop_event(max), key);
    }
    let out = &mut *ctx.out;
    match (count, popped.first()) {
        (None, Some((m, s))) => {
            out.array(2);
            out.bulk(m);
            out.double(*s);
        }
        (None, None) => out.array(0),
        (Some(_), _) => reply_popped(out, &popped, false),
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    zpop(ctx, argv, false)
}

fn zpopmax(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    zpop(ctx, argv, true)
}

/// Members with their scores, in the order they were popped.
pub(crate) type Popped = Vec<(Vec<u8>, f64)>;

/// Pops up to `count` members of the zset at `key` from the low (or, with `max`, high) end, deleting the key when it
/// empties. `None` when the key does not exist; WRONGTYPE for another type. Blocked clients are served with it too.
pub(crate) fn pop_key(
    db: &mut Keyspace,
    key: &[u8],
    max: bool,
    count: usize,
    now: u64,
) -> Result<Option<Popped>, CmdError> {
    update::<ZSet, _>(db, key, now, |z| {
        let popped = pop(z, max, count);
        let changed = !popped.is_empty();
        (popped, changed)
    })
}

/// True when `key` holds a non-empty zset (a blocked BZPOPMIN can be served).
pub(crate) fn has_members(db: &mut Keyspace, key: &[u8], now: u64) -> bool {
    matches!(find::<ZSet>(db, key, now), Ok(Some(z)) if !z.is_empty())
}

/// The reply of a BZPOPMIN/BZPOPMAX (`count: None`: `[key, member, score]`) or of a ZMPOP/BZMPOP (`[key, pairs]`).
pub(crate) fn reply_key_popped(
    out: &mut Reply,
    key: &[u8],
    popped: &[(Vec<u8>, f64)],
    count: Option<usize>,
) {
    match (count, popped.first()) {
        (None, Some((m, s))) => {
            out.array(3);
            out.bulk(key);
            out.bulk(m);
            out.double(*s);
        }
        _ => {
            out.array(2);
            out.bulk(key);
            reply_popped(out, popped, true);
        }
    }
}

/// MIN or MAX (any case): whether ZMPOP / BZMPOP pop the highest scores.
fn pops_max(arg: &[u8]) -> Result<bool, CmdError> {
    match () {
        _ if is(arg, "MIN") => Ok(false),
        _ if is(arg, "MAX") => Ok(true),
        _ => Err(CmdError::Syntax),
    }
}

/// Pops for ZMPOP/BZMPOP/BZPOPMIN/BZPOPMAX from the first of `keys` that exists and replies. False (nothing
/// replied) when none does.
fn pop_first_and_reply<'k>(
    ctx: &mut Ctx,
    keys: impl Iterator<Item = &'k [u8]>,
    max: bool,
    count: Option<usize>,
) -> Result<bool, CmdError> {
    let now = ctx.now;
    for key in keys {
        let (db, out) = ctx.db_out(key);
        if let Some(popped) = pop_key(db, key, max, count.unwrap_or(1), now)? {
            reply_key_popped(out, key, &popped, count);
            ctx.notify_emptied(notify::ZSET, pop_event(max), key);
            return Ok(true);
        }
    }
    Ok(false)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: pops from the first non-empty key; replies [key, pairs], or a
/// null array when every key is empty.
fn zmpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (numkeys, max, count) = args::mpop_args(argv, 1, pops_max)?;
    if !pop_first_and_reply(ctx, argv.iter_from(2).take(numkeys), max, Some(count))? {
        ctx.out.null_array();
    }
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    bzpop(ctx, argv, false)
}

fn bzpopmax(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    bzpop(ctx, argv, true)
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout: `[key, member, score]` from the first non-empty zset, else block.
fn bzpop(ctx: &mut Ctx, argv: Argv, max: bool) -> CmdResult {
    let timeout = blocking::parse_timeout(argv.get(argv.len() - 1), ctx.now)?;
    let keys = || argv.iter_from(1).take(argv.len() - 2);
    if pop_first_and_reply(ctx, keys(), max, None)? {
        return Ok(());
    }
    let op = BlockOp::ZPop { max, count: None };
    blocking::block(ctx, keys().map(<[u8]>::to_vec).collect(), op, timeout)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: ZMPOP, or block. Its arguments are checked before
/// its timeout, as in Redis.
fn bzmpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (numkeys, max, count) = args::mpop_args(argv, 2, pops_max)?;
    let timeout = blocking::parse_timeout(argv.get(1), ctx.now)?;
    let keys = || argv.iter_from(3).take(numkeys);
    if pop_first_and_reply(ctx, keys(), max, Some(count))? {
        return Ok(());
    }
    let op = BlockOp::ZPop {
        max,
        count: Some(count),
    };
    blocking::block(ctx, keys().map(<[u8]>::to_vec).collect(), op, timeout)
}

// ---------------------------------------------------------------------------------------------------------------------
// Union, intersection, difference.

/// How ZUNION/ZINTER combine the scores of a member found in several sources.
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            // inf + -inf is NaN: Redis makes it 0.
            Aggregate::Sum => Some(acc + v).filter(|s| !s.is_nan()).unwrap_or(0.0),
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

/// Which combination a command computes.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// A source of ZUNION and friends: a zset, or a plain set whose members all score 1.
enum Source<'a> {
    Z(&'a ZSet),
    S(&'a Set),
    Missing,
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
            Source::Missing => 0,
        }
    }
    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Z(z) => z.score(member),
            Source::S(s) => s.contains(member).then_some(1.0),
            Source::Missing => None,
        }
    }
    fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], f64)> + '_> {
        match self {
            Source::Z(z) => Box::new(z.iter()),
            Source::S(s) => Box::new(s.iter().map(|m| (m, 1.0))),
            Source::Missing => Box::new(std::iter::empty()),
        }
    }
}

/// Which form of a combining command is parsed: it decides the options allowed.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// ZUNION / ZINTER / ZDIFF: the result is the reply (WITHSCORES).
    Reply,
    /// ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE.
    Store,
    /// ZINTERCARD: only the result's size (LIMIT, no WEIGHTS or AGGREGATE).
    Card,
}

/// The parsed arguments of ZUNION/ZINTER/ZDIFF, their STORE forms and ZINTERCARD.
struct Combine<'a> {
    keys: Vec<&'a [u8]>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (`usize::MAX`: none).
    limit: usize,
}

/// Parses `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES] [LIMIT limit]` from `argv[at]`, as
/// Redis's `zunionInterDiffGenericCommand`: ZDIFF and ZINTERCARD take neither WEIGHTS nor AGGREGATE, only the
/// reading forms WITHSCORES, only ZINTERCARD LIMIT. Like Redis it looks the keys up before it reads the options, so
/// a key of another type is WRONGTYPE even when an option is bad too.
fn parse_combine<'a>(
    ctx: &mut Ctx,
    argv: Argv<'a>,
    at: usize,
    op: Op,
    form: Form,
) -> Result<Combine<'a>, CmdError> {
    let numkeys = match args::int(argv.get(at))? {
        n if n < 1 => {
            return Err(CmdError::err(format!(
                "at least 1 input key is needed for '{}' command",
                String::from_utf8_lossy(argv.get(0)).to_ascii_lowercase()
            )))
        }
        n => n as usize,
    };
    if numkeys > argv.len() - at - 1 {
        return Err(CmdError::Syntax);
    }
    let keys: Vec<&[u8]> = argv.iter_from(at + 1).take(numkeys).collect();
    let now = ctx.now;
    for key in &keys {
        match ctx.db(key).get(key, now).map(|e| &e.value) {
            None | Some(Value::ZSet(_)) | Some(Value::Set(_)) => {}
            Some(_) => return Err(CmdError::WrongType),
        }
    }
    let mut c = Combine {
        keys,
        weights: vec![1.0; numkeys],
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: usize::MAX,
    };
    let scored = op != Op::Diff && form != Form::Card;
    let mut opts = Cursor::new(argv, at + 1 + numkeys);
    while let Some(opt) = opts.next() {
        if scored && is(opt, "WEIGHTS") && opts.remaining() >= numkeys {
            for w in c.weights.iter_mut() {
                *w = parse_f64(opts.value()?)
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
            }
        } else if scored && is(opt, "AGGREGATE") && opts.remaining() >= 1 {
            let a = opts.value()?;
            c.aggregate = match () {
                _ if is(a, "SUM") => Aggregate::Sum,
                _ if is(a, "MIN") => Aggregate::Min,
                _ if is(a, "MAX") => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
        } else if form == Form::Reply && is(opt, "WITHSCORES") {
            c.withscores = true;
        } else if form == Form::Card && is(opt, "LIMIT") && opts.remaining() >= 1 {
            c.limit = args::intercard_limit(opts.value()?)?;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(c)
}

/// `score * weight`, with Redis's NaN (0 * inf) made 0.
fn weighted(score: f64, weight: f64) -> f64 {
    Some(score * weight).filter(|s| !s.is_nan()).unwrap_or(0.0)
}

/// Computes `op` over the sources.
fn combine(op: Op, sources: &[Source], c: &Combine) -> ZSet {
    let mut acc: HashMap<&[u8], f64> = HashMap::new();
    match op {
        Op::Union => {
            for (src, w) in smallest_first(sources, &c.weights) {
                for (m, s) in src.iter() {
                    let v = weighted(s, w);
                    acc.entry(m)
                        .and_modify(|a| *a = c.aggregate.apply(*a, v))
                        .or_insert(v);
                }
            }
        }
        Op::Inter => acc.extend(intersection(sources, c)),
        Op::Diff => {
            if let Some((first, rest)) = sources.split_first() {
                for (m, s) in first.iter() {
                    if rest.iter().all(|r| r.score(m).is_none()) {
                        acc.insert(m, s);
                    }
                }
            }
        }
    }
    to_zset(acc)
}

/// The sources with their weights, smallest first (stable), the order in which Redis combines them: it decides the
/// rounding of a sum and which NaN becomes 0.
fn smallest_first<'s, 'z>(
    sources: &'s [Source<'z>],
    weights: &[f64],
) -> Vec<(&'s Source<'z>, f64)> {
    let mut ordered: Vec<_> = sources.iter().zip(weights.iter().copied()).collect();
    ordered.sort_by_key(|(s, _)| s.len());
    ordered
}

/// The members every source has, with their combined scores: the smallest source's members, in its order, checked
/// against the others from the smallest up. As in Redis, only the first weighted score has its NaN (0 * inf) made 0;
/// the others go to the aggregate as they are.
fn intersection<'a>(
    sources: &'a [Source],
    c: &'a Combine,
) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
    let ordered = smallest_first(sources, &c.weights);
    let first = ordered.first().copied();
    first.into_iter().flat_map(move |(smallest, w0)| {
        let rest = ordered[1..].to_vec();
        smallest.iter().filter_map(move |(m, s)| {
            rest.iter()
                .try_fold(weighted(s, w0), |a, (src, w)| {
                    Some(c.aggregate.apply(a, src.score(m)? * w))
                })
                .map(|v| (m, v))
        })
    })
}

/// Runs `f` on the sources (zsets, sets or missing; [`parse_combine`] refused other types).
fn with_sources<T>(ctx: &mut Ctx, keys: &[&[u8]], f: impl FnOnce(&[Source]) -> T) -> T {
    let now = ctx.now;
    let (dbs, _) = ctx.dbs_out();
    let sources: Vec<Source> = keys
        .iter()
        .map(|k| match dbs.get(k).peek(k, now).map(|e| &e.value) {
            Some(Value::ZSet(z)) => Source::Z(z),
            Some(Value::Set(s)) => Source::S(s),
            _ => Source::Missing,
        })
        .collect();
    f(&sources)
}

/// ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE dst numkeys key... [options].
fn combine_store(ctx: &mut Ctx, argv: Argv, op: Op) -> CmdResult {
    let c = parse_combine(ctx, argv, 2, op, Form::Store)?;
    let result = with_sources(ctx, &c.keys, |sources| combine(op, sources, &c));
    let event = match op {
        Op::Union => "zunionstore",
        Op::Inter => "zinterstore",
        Op::Diff => "zdiffstore",
    };
    store_result(ctx, argv.get(1), event, result);
    Ok(())
}

/// ZUNION / ZINTER / ZDIFF numkeys key... [options] [WITHSCORES].
fn combine_reply(ctx: &mut Ctx, argv: Argv, op: Op) -> CmdResult {
    let c = parse_combine(ctx, argv, 1, op, Form::Reply)?;
    let result = with_sources(ctx, &c.keys, |sources| combine(op, sources, &c));
    let items: Vec<(&[u8], f64)> = result.iter().collect();
    reply_members(ctx.out, &items, c.withscores, false);
    Ok(())
}

fn zunionstore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    combine_store(ctx, argv, Op::Union)
}

fn zinterstore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    combine_store(ctx, argv, Op::Inter)
}

fn zdiffstore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    combine_store(ctx, argv, Op::Diff)
}

fn zunion(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    combine_reply(ctx, argv, Op::Union)
}

fn zinter(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    combine_reply(ctx, argv, Op::Inter)
}

fn zdiff(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    combine_reply(ctx, argv, Op::Diff)
}

/// ZINTERCARD numkeys key... [LIMIT limit]: the intersection's size, counting stopped at LIMIT (0: no limit). Plain
/// sets count as sources, as in ZINTER.
fn zintercard(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let c = parse_combine(ctx, argv, 1, Op::Inter, Form::Card)?;
    let count = with_sources(ctx, &c.keys, |sources| {
        intersection(sources, &c).take(c.limit).count()
    });
    ctx.out.int(count as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------------
// ZSCAN, ZRANDMEMBER.

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: member and score (as a bulk string) pairs; a small (listpack) zset is
/// returned whole, in order, with cursor 0.
fn zscan(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let cursor = args::scan_cursor(argv.get(2))?;
    let (key, now) = (argv.get(1), ctx.now);
    let (db, out) = ctx.db_out(key);
    let Some(z) = lookup::<ZSet>(db, key, now)? else {
        reply_scan(out, 0, &[]);
        return Ok(());
    };
    let opts = ScanOpts::parse(argv, 3, false)?;
    let mut found: Vec<(&[u8], f64)> = Vec::new();
    let mut keep = |m, s| {
        if opts.pattern.is_none_or(|p| glob::matches(p, m, false)) {
            found.push((m, s));
        }
    };
    let next = if z.is_listpack() {
        z.iter().for_each(|(m, s)| keep(m, s));
        0
    } else {
        z.scan(cursor, opts.count as usize, keep)
    };
    let scores: Vec<String> = found.iter().map(|(_, s)| format_double(*s)).collect();
    let items: Vec<&[u8]> = found
        .iter()
        .zip(&scores)
        .flat_map(|((m, _), s)| [*m, s.as_bytes()])
        .collect();
    reply_scan(out, next, &items);
    Ok(())
}

/// ZRANDMEMBER key [count [WITHSCORES]], with HRANDFIELD's rules: distinct members for a positive count (the whole set,
/// highest first, when it reaches the size), picks with repetition for a negative one.
fn zrandmember(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    if argv.len() == 2 {
        return read(ctx, argv.get(1), |z, out| match z.and_then(ZSet::random) {
            Some((m, _)) => out.bulk(m),
            None => out.null(),
        });
    }
    let count = args::int_in_range(argv.get(2), -i64::MAX, i64::MAX)?;
    let withscores = match argv.len() {
        3 => false,
        4 if is(argv.get(3), "WITHSCORES") => true,
        _ => return Err(CmdError::Syntax),
    };
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    read(ctx, argv.get(1), |z, out| {
        let Some(z) = z.filter(|_| count != 0) else {
            out.array(0);
            return;
        };
        let n = count.unsigned_abs() as usize;
        let items: Vec<(&[u8], f64)> = if count < 0 {
            (0..n).filter_map(|_| z.random()).collect()
        } else if n >= z.len() {
            // The whole set, highest first, as Redis replies it.
            z.range(0, true).collect()
        } else {
            sample_distinct(0..z.len(), z.len(), n, || Some(fastrand::usize(..z.len())))
                .into_iter()
                .filter_map(|i| z.get(i))
                .collect()
        };
        reply_members(out, &items, withscores, false);
    })
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;

    use crate::cmd::testing::{bulks, WRONG};

    #[test]
    fn zadd_counts_added_and_with_ch_changed_and_an_emptied_zset_disappears() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("ZADD z 1 a 2 b 3 c"), ":3\r\n");
        assert_eq!(c.cmd("ZADD z 5 a 2 b 4 d"), ":1\r\n");
        assert_eq!(c.cmd("ZADD z CH 6 a 2 b 4 e"), ":2\r\n");
        assert_eq!(c.cmd("ZCARD z"), ":5\r\n");
        assert_eq!(c.cmd("TYPE z"), "+zset\r\n");
        assert_eq!(c.cmd("ZREM z a b c d x"), ":4\r\n");
        assert_eq!(c.cmd("ZREM z e"), ":1\r\n");
        assert_eq!(c.cmd("EXISTS z"), ":0\r\n");
    }

    #[test]
    fn zadd_flags_follow_redis() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 5 a");
        assert_eq!(c.cmd("ZADD z NX 1 a 1 b"), ":1\r\n");
        assert_eq!(c.cmd("ZSCORE z a"), "$1\r\n5\r\n");
        assert_eq!(c.cmd("ZADD z XX CH 2 a 9 c"), ":1\r\n");
        assert_eq!(c.cmd("ZSCORE z c"), "$-1\r\n");
        assert_eq!(c.cmd("ZADD z GT CH 1 a 3 b"), ":1\r\n");
        assert_eq!(
            c.cmd("ZMSCORE z a b x"),
            "*3\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n"
        );
        assert_eq!(c.cmd("ZADD z LT INCR 1 a"), "$-1\r\n");
        assert_eq!(c.cmd("ZADD z INCR 1.5 a"), "$3\r\n3.5\r\n");
        assert_eq!(c.cmd("ZADD nokey XX 1 a"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS nokey"), ":0\r\n");
        assert_eq!(c.cmd("ZADD z XX INCR 1 nosuch"), "$-1\r\n");
        assert_eq!(
            c.cmd("ZADD z NX XX 1 a"),
            "-ERR XX and NX options at the same time are not compatible\r\n"
        );
        assert_eq!(
            c.cmd("ZADD z GT LT 1 a"),
            "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n"
        );
        assert_eq!(
            c.cmd("ZADD z INCR 1 a 2 b"),
            "-ERR INCR option supports a single increment-element pair\r\n"
        );
        assert_eq!(c.cmd("ZADD z 1 a 2"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("ZADD z nan a"), "-ERR value is not a valid float\r\n");
        assert_eq!(
            c.cmd("ZADD z 1e400 a"),
            "-ERR value is not a valid float\r\n"
        );
        assert_eq!(
            c.cmd("ZPOPMIN z x"),
            "-ERR value is out of range, must be positive\r\n"
        );
        c.cmd("ZADD inf +inf a");
        assert_eq!(
            c.cmd("ZINCRBY inf -inf a"),
            "-ERR resulting score is not a number (NaN)\r\n"
        );
        assert_eq!(c.cmd("ZINCRBY inf 1 b"), "$1\r\n1\r\n");
        assert_eq!(c.cmd("ZSCORE inf a"), "$3\r\ninf\r\n");
    }

    #[test]
    fn scores_are_formatted_as_redis_7_2_does_in_both_protocols() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 0.1 a -0 b 1e300 c");
        assert_eq!(c.cmd("ZSCORE z a"), "$3\r\n0.1\r\n");
        assert_eq!(c.cmd("ZSCORE z b"), "$1\r\n0\r\n");
        assert_eq!(c.cmd("ZSCORE z c"), "$6\r\n1e+300\r\n");
        c.cmd("HELLO 3");
        assert_eq!(c.cmd("ZSCORE z a"), ",0.1\r\n");
        assert_eq!(c.cmd("ZMSCORE z a x"), "*2\r\n,0.1\r\n_\r\n");
        assert_eq!(
            c.cmd("ZRANGE z 0 1 WITHSCORES"),
            "*2\r\n*2\r\n$1\r\nb\r\n,0\r\n*2\r\n$1\r\na\r\n,0.1\r\n"
        );
    }

    #[test]
    fn zrange_by_rank_score_and_lex_in_both_directions() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(bulks(&c.cmd("ZRANGE z 1 -2")), ["b", "c", "d"]);
        assert_eq!(bulks(&c.cmd("ZRANGE z 0 1 REV")), ["e", "d"]);
        assert_eq!(bulks(&c.cmd("ZREVRANGE z -2 100")), ["b", "a"]);
        assert_eq!(c.cmd("ZRANGE z 3 1"), "*0\r\n");
        assert_eq!(
            bulks(&c.cmd("ZRANGE z (1 3 BYSCORE WITHSCORES")),
            ["b", "2", "c", "3"]
        );
        assert_eq!(bulks(&c.cmd("ZRANGE z +inf (3 BYSCORE REV")), ["e", "d"]);
        assert_eq!(
            bulks(&c.cmd("ZRANGEBYSCORE z -inf +inf LIMIT 1 2")),
            ["b", "c"]
        );
        assert_eq!(
            bulks(&c.cmd("ZREVRANGEBYSCORE z 4 -inf LIMIT 1 -1")),
            ["c", "b", "a"]
        );
        assert_eq!(c.cmd("ZRANGEBYSCORE z -inf +inf LIMIT -1 2"), "*0\r\n");
        assert_eq!(c.cmd("ZCOUNT z (1 +inf"), ":4\r\n");
        c.cmd("ZADD l 0 a 0 b 0 c 0 d");
        assert_eq!(bulks(&c.cmd("ZRANGE l (a [c BYLEX")), ["b", "c"]);
        assert_eq!(bulks(&c.cmd("ZREVRANGEBYLEX l + (b")), ["d", "c"]);
        assert_eq!(bulks(&c.cmd("ZRANGEBYLEX l - + LIMIT 2 5")), ["c", "d"]);
        assert_eq!(c.cmd("ZLEXCOUNT l [b +"), ":3\r\n");
        assert_eq!(
            c.cmd("ZRANGE z 0 -1 LIMIT 0 1"),
            "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n"
        );
        assert_eq!(
            c.cmd("ZRANGE z a b BYLEX WITHSCORES"),
            "-ERR syntax error, WITHSCORES not supported in combination with BYLEX\r\n"
        );
        assert_eq!(
            c.cmd("ZRANGE z 0 1 BYLEX"),
            "-ERR min or max not valid string range item\r\n"
        );
        assert_eq!(
            c.cmd("ZRANGEBYSCORE z x 1"),
            "-ERR min or max is not a float\r\n"
        );
        assert_eq!(c.cmd("ZRANGE z 0 1 BYLEX BYSCORE"), "-ERR syntax error\r\n");
        // `strtod` reads an empty bound as 0.
        assert_eq!(bulks(&c.cmd("ZRANGEBYSCORE z ( 1")), ["a"]);
        assert_eq!(
            c.cmd("ZRANGE z a 1"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn ranks_with_and_without_score() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 1 a 2 b 3 c");
        assert_eq!(c.cmd("ZRANK z a"), ":0\r\n");
        assert_eq!(c.cmd("ZREVRANK z a"), ":2\r\n");
        assert_eq!(c.cmd("ZRANK z x"), "$-1\r\n");
        assert_eq!(c.cmd("ZRANK z c WITHSCORE"), "*2\r\n:2\r\n$1\r\n3\r\n");
        assert_eq!(c.cmd("ZRANK z x WITHSCORE"), "*-1\r\n");
        assert_eq!(c.cmd("ZRANK z c foo"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("ZREVRANK z a b c"),
            "-ERR wrong number of arguments for 'zrevrank' command\r\n"
        );
    }

    #[test]
    fn pops_reply_flat_without_count_and_nested_in_resp3_with_one() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 1 a 2 b 3 c 4 d");
        assert_eq!(c.cmd("ZPOPMIN z"), "*2\r\n$1\r\na\r\n$1\r\n1\r\n");
        assert_eq!(bulks(&c.cmd("ZPOPMAX z 2")), ["d", "4", "c", "3"]);
        assert_eq!(c.cmd("ZPOPMIN z 0"), "*0\r\n");
        assert_eq!(
            c.cmd("ZPOPMIN z -1"),
            "-ERR value is out of range, must be positive\r\n"
        );
        assert_eq!(c.cmd("ZPOPMIN nokey"), "*0\r\n");
        c.cmd("HELLO 3");
        assert_eq!(c.cmd("ZPOPMIN z 5"), "*1\r\n*2\r\n$1\r\nb\r\n,2\r\n");
        assert_eq!(c.cmd("EXISTS z"), ":0\r\n");
        c.cmd("ZADD z 1 a");
        assert_eq!(c.cmd("ZPOPMIN z"), "*2\r\n$1\r\na\r\n,1\r\n");
    }

    #[test]
    fn zintercard_counts_up_to_the_limit_with_zinter_errors() {
        let mut c = TestClient::new();
        c.cmd("ZADD z1 1 a 2 b 3 c");
        c.cmd("ZADD z2 1 a 2 b 4 d");
        c.cmd("SADD s a c");
        c.cmd("SET str x");
        assert_eq!(c.cmd("ZINTERCARD 2 z1 z2"), ":2\r\n");
        assert_eq!(c.cmd("ZINTERCARD 2 z1 s"), ":2\r\n");
        assert_eq!(c.cmd("ZINTERCARD 2 z1 z2 LIMIT 1"), ":1\r\n");
        assert_eq!(c.cmd("ZINTERCARD 2 z1 z2 LIMIT 0"), ":2\r\n");
        assert_eq!(c.cmd("ZINTERCARD 2 z1 nokey"), ":0\r\n");
        for (cmd, err) in [
            ("ZINTERCARD 2 z1 z2 LIMIT -1", "ERR LIMIT can't be negative"),
            ("ZINTERCARD 1 z1 LIMIT x", "ERR LIMIT can't be negative"),
            ("ZINTERCARD 1 z1 LIMIT", "ERR syntax error"),
            ("ZINTERCARD 1 z1 WEIGHTS 2", "ERR syntax error"),
            ("ZINTERCARD 1 z1 WITHSCORES", "ERR syntax error"),
            ("ZINTERCARD 3 z1 z2", "ERR syntax error"),
            (
                "ZINTERCARD 0 z1",
                "ERR at least 1 input key is needed for 'zintercard' command",
            ),
            ("ZINTER 1 z1 LIMIT 1", "ERR syntax error"),
            (
                "ZINTERCARD 2 nokey str",
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
        ] {
            assert_eq!(c.cmd(cmd), format!("-{err}\r\n"), "{cmd}");
        }
    }

    #[test]
    fn zmpop_pops_from_the_first_non_empty_key() {
        let mut c = TestClient::new();
        c.cmd("ZADD z2 1 a 2 b 3 c");
        assert_eq!(
            c.cmd("ZMPOP 2 z1 z2 MAX COUNT 2"),
            "*2\r\n$2\r\nz2\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert_eq!(c.cmd("ZMPOP 1 z1 MIN"), "*-1\r\n");
        assert_eq!(
            c.cmd("ZMPOP 0 z MIN"),
            "-ERR numkeys should be greater than 0\r\n"
        );
        assert_eq!(c.cmd("ZMPOP 3 z MIN"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("ZMPOP 1 z foo"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("ZMPOP 1 z MIN COUNT 0"),
            "-ERR count should be greater than 0\r\n"
        );
    }

    #[test]
    fn zremrange_by_rank_score_and_lex() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(c.cmd("ZREMRANGEBYRANK z 0 1"), ":2\r\n");
        assert_eq!(c.cmd("ZREMRANGEBYSCORE z (3 4"), ":1\r\n");
        assert_eq!(bulks(&c.cmd("ZRANGE z 0 -1")), ["c", "e"]);
        assert_eq!(c.cmd("ZREMRANGEBYLEX z - +"), ":2\r\n");
        assert_eq!(c.cmd("EXISTS z"), ":0\r\n");
    }

    #[test]
    fn union_and_intersection_with_weights_and_aggregates() {
        let mut c = TestClient::new();
        c.cmd("ZADD a 1 x 2 y");
        c.cmd("ZADD b 10 y 20 z");
        c.cmd("SADD s x z");
        assert_eq!(c.cmd("ZUNIONSTORE d 2 a b WEIGHTS 2 1"), ":3\r\n");
        assert_eq!(
            bulks(&c.cmd("ZRANGE d 0 -1 WITHSCORES")),
            ["x", "2", "y", "14", "z", "20"]
        );
        assert_eq!(c.cmd("ZINTERSTORE d 2 a b AGGREGATE MAX"), ":1\r\n");
        assert_eq!(bulks(&c.cmd("ZRANGE d 0 -1 WITHSCORES")), ["y", "10"]);
        assert_eq!(bulks(&c.cmd("ZINTER 2 a s WITHSCORES")), ["x", "2"]);
        assert_eq!(bulks(&c.cmd("ZDIFF 2 a b")), ["x"]);
        assert_eq!(c.cmd("ZINTERSTORE d 2 a nokey"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS d"), ":0\r\n");
        assert_eq!(
            c.cmd("ZUNIONSTORE d 0 a"),
            "-ERR at least 1 input key is needed for 'zunionstore' command\r\n"
        );
        assert_eq!(c.cmd("ZUNIONSTORE d 2 a"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("ZUNIONSTORE d 1 a WEIGHTS x"),
            "-ERR weight value is not a float\r\n"
        );
        assert_eq!(
            c.cmd("ZUNIONSTORE d 1 a AGGREGATE foo"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            c.cmd("ZUNIONSTORE d 1 a WITHSCORES"),
            "-ERR syntax error\r\n"
        );
    }

    #[test]
    fn zrangestore_stores_the_selection() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 1 a 2 b 3 c");
        assert_eq!(c.cmd("ZRANGESTORE d z 2 +inf BYSCORE"), ":2\r\n");
        assert_eq!(bulks(&c.cmd("ZRANGE d 0 -1")), ["b", "c"]);
        assert_eq!(
            c.cmd("ZRANGESTORE d z 0 -1 WITHSCORES"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(c.cmd("ZRANGESTORE d nokey 0 -1"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS d"), ":0\r\n");
    }

    #[test]
    fn encoding_scan_and_randmember() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 2 b 1 a");
        assert_eq!(c.cmd("OBJECT ENCODING z"), "$8\r\nlistpack\r\n");
        assert_eq!(bulks(&c.cmd("ZSCAN z 0")), ["0", "a", "1", "b", "2"]);
        assert_eq!(
            c.cmd("ZRANDMEMBER z 5 WITHSCORES"),
            "*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        assert_eq!(c.cmd("ZRANDMEMBER z -3").matches("\r\n$1\r\n").count(), 3);
        assert_eq!(c.cmd("ZRANDMEMBER nokey"), "$-1\r\n");
        let long = "x".repeat(65);
        c.cmd(&format!("ZADD z 3 {long}"));
        assert_eq!(c.cmd("OBJECT ENCODING z"), "$8\r\nskiplist\r\n");
    }

    #[test]
    fn every_zset_command_refuses_another_type() {
        let mut c = TestClient::new();
        c.cmd("SET str x");
        for cmd in [
            "ZADD str 1 a",
            "ZINCRBY str 1 a",
            "ZREM str a",
            "ZSCORE str a",
            "ZMSCORE str a",
            "ZCARD str",
            "ZCOUNT str 0 1",
            "ZLEXCOUNT str - +",
            "ZRANGE str 0 1",
            "ZRANGEBYSCORE str 0 1",
            "ZRANK str a",
            "ZPOPMIN str",
            "ZMPOP 1 str MIN",
            "ZREMRANGEBYRANK str 0 1",
            "ZUNIONSTORE d 1 str",
            "ZRANGESTORE d str 0 1",
            "ZSCAN str 0",
            "ZRANDMEMBER str",
        ] {
            assert_eq!(c.cmd(cmd), WRONG, "{cmd}");
        }
    }
}

#[cfg(test)]
mod blocking_tests {
    use crate::cmd::testing::TestClient;

    #[test]
    fn blocking_pops_answer_at_once_when_data_is_there_or_inside_exec() {
        let mut c = TestClient::new();
        c.cmd("ZADD z 1 a 2 b");
        assert_eq!(
            c.cmd("BZPOPMAX nokey z 0"),
            "*3\r\n$1\r\nz\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            c.cmd("BZMPOP 0 0 z MIN"),
            "-ERR numkeys should be greater than 0\r\n"
        );
        assert_eq!(c.cmd("BZPOPMIN z -1"), "-ERR timeout is negative\r\n");
        c.cmd("SET s x");
        assert!(c.cmd("BZPOPMIN s 0").starts_with("-WRONGTYPE"));
        c.cmd("MULTI");
        c.cmd("BZPOPMIN empty 0");
        c.cmd("BZMPOP 0 1 empty MIN");
        assert_eq!(c.cmd("EXEC"), "*2\r\n*-1\r\n*-1\r\n");
    }
}
