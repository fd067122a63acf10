//! List commands: pushes, pops, ranges, LINSERT/LSET/LREM/LTRIM, LPOS, LMOVE/RPOPLPUSH and LMPOP.
//!
//! A list is a [`List`] (elements packed in chunks): pushes and pops at either end are O(1), and LRANGE and LINDEX
//! near either end never walk the list.
//!
//! Invariant: a list key is never empty. The operation that takes the last element deletes the key (EXISTS 0, TYPE
//! none), so a client blocked on a list only ever waits for a key that does not exist.
//!
//! The core operations are plain functions over the keyspace ([`push`], [`pop`], [`pop_first`], [`move_element`]) so
//! the blocking commands' waiter-serving code runs exactly what the plain commands run; handlers only parse, call
//! one of them and reply. Every element that enters a list from outside it goes through [`push`]: that is the one
//! place where "this key received elements" is known. (LINSERT and LSET only change a list that already exists.)

use super::args::{self, is};
use super::blocking;
use super::typed::{find, lookup, lookup_mut, remove_if_empty, update};
use super::{flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::store::{BlockOp, End, Keyspace, List, Value};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("lpush", -3, WRITE | DENYOOM | FAST, Keys::FIRST, lpush),
    CommandSpec::new("rpush", -3, WRITE | DENYOOM | FAST, Keys::FIRST, rpush),
    CommandSpec::new("lpushx", -3, WRITE | DENYOOM | FAST, Keys::FIRST, lpushx),
    CommandSpec::new("rpushx", -3, WRITE | DENYOOM | FAST, Keys::FIRST, rpushx),
    CommandSpec::new("lpop", -2, WRITE | FAST, Keys::FIRST, lpop),
    CommandSpec::new("rpop", -2, WRITE | FAST, Keys::FIRST, rpop),
    CommandSpec::new("llen", 2, READONLY | FAST, Keys::FIRST, llen),
    CommandSpec::new("lrange", 4, READONLY, Keys::FIRST, lrange),
    CommandSpec::new("lindex", 3, READONLY, Keys::FIRST, lindex),
    CommandSpec::new("lset", 4, WRITE | DENYOOM, Keys::FIRST, lset),
    CommandSpec::new("lrem", 4, WRITE, Keys::FIRST, lrem),
    CommandSpec::new("ltrim", 4, WRITE, Keys::FIRST, ltrim),
    CommandSpec::new("linsert", 5, WRITE | DENYOOM, Keys::FIRST, linsert),
    CommandSpec::new("lpos", -3, READONLY, Keys::FIRST, lpos),
    CommandSpec::new("lmove", 5, WRITE | DENYOOM, Keys::FIRST_TWO, lmove),
    CommandSpec::new("rpoplpush", 3, WRITE | DENYOOM, Keys::FIRST_TWO, rpoplpush),
    CommandSpec::new("lmpop", -4, WRITE, Keys::NumKeys { at: 1, step: 1 }, lmpop),
    CommandSpec::new("blpop", -3, WRITE | BLOCKING, Keys::ALL_BUT_LAST, blpop),
    CommandSpec::new("brpop", -3, WRITE | BLOCKING, Keys::ALL_BUT_LAST, brpop),
    CommandSpec::new(
        "blmove",
        6,
        WRITE | DENYOOM | BLOCKING,
        Keys::FIRST_TWO,
        blmove,
    ),
    CommandSpec::new(
        "brpoplpush",
        4,
        WRITE | DENYOOM | BLOCKING,
        Keys::FIRST_TWO,
        brpoplpush,
    ),
    CommandSpec::new(
        "blmpop",
        -5,
        WRITE | BLOCKING,
        Keys::NumKeys { at: 2, step: 1 },
        blmpop,
    ),
];

/// Elements taken from a list, in the order they left it.
pub(crate) type Popped = Vec<Vec<u8>>;

impl End {
    /// `LEFT` or `RIGHT` (any case), else a syntax error, as LMOVE, LMPOP and their blocking forms parse it.
    pub(crate) fn parse(arg: &[u8]) -> Result<End, CmdError> {
        if is(arg, "LEFT") {
            Ok(End::Left)
        } else if is(arg, "RIGHT") {
            Ok(End::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }
}

/// Reaches the keyspace that holds a key among the shards the caller has locked: how operations on several keys
/// (LMOVE, LMPOP, and the blocking commands' waiter service) get at keys that may live on different shards.
pub(crate) trait Keyspaces {
    /// The locked keyspace that owns `key`.
    fn keyspace(&mut self, key: &[u8]) -> &mut Keyspace;
}

impl Keyspaces for Ctx<'_, '_> {
    fn keyspace(&mut self, key: &[u8]) -> &mut Keyspace {
        self.db(key)
    }
}

impl End {
    /// The event a pop at this end announces.
    pub(crate) fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }
    /// The event a push at this end announces.
    pub(crate) fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }
}

/// Takes up to `n` elements from one end, in the order they leave it.
fn take(list: &mut List, end: End, n: usize) -> Popped {
    let n = n.min(list.len());
    (0..n).filter_map(|_| list.pop(end)).collect()
}

/// Pushes `elements` one by one at `end` of the list at `key` (so LPUSH a b c leaves c b a) and returns the new
/// length. A missing key is created when `create` is set (LPUSH) and left alone otherwise (LPUSHX, which then
/// returns 0); WRONGTYPE when the key holds another type. This is the only way elements enter a list from outside
/// it, so it is where a key that receives elements is known.
pub(crate) fn push<E: AsRef<[u8]>>(
    db: &mut Keyspace,
    key: &[u8],
    end: End,
    elements: impl IntoIterator<Item = E>,
    create: bool,
    now: u64,
) -> Result<usize, CmdError> {
    let mut elements = elements.into_iter().peekable();
    // Nothing to push never creates a key: an empty list must not exist.
    if (!create || elements.peek().is_none()) && !db.contains(key, now) {
        return Ok(0);
    }
    let entry = db.get_or_insert_with(key, now, || Value::List(List::new()));
    let Value::List(list) = &mut entry.value else {
        return Err(CmdError::WrongType);
    };
    for element in elements {
        list.push(end, element.as_ref());
    }
    Ok(list.len())
}

/// Pops up to `count` elements from `end` of the list at `key`, in the order they leave it, deleting the key when it
/// becomes empty. `None` when the key does not exist; WRONGTYPE when it holds another type. A list is never empty,
/// so with `count >= 1` the result holds at least one element.
pub(crate) fn pop(
    db: &mut Keyspace,
    key: &[u8],
    end: End,
    count: usize,
    now: u64,
) -> Result<Option<Popped>, CmdError> {
    update::<List, _>(db, key, now, |list| {
        let popped = take(list, end, count);
        let changed = !popped.is_empty();
        (popped, changed)
    })
}

/// Pops up to `count` elements from the first of `keys` (in argument order) that holds a list, as LMPOP and the
/// blocking pops choose: returns that key and the elements. WRONGTYPE when a key met before a list holds another
/// type; `None` when none of the keys exists. `count` must be at least 1.
pub(crate) fn pop_first<'k>(
    dbs: &mut impl Keyspaces,
    keys: impl IntoIterator<Item = &'k [u8]>,
    end: End,
    count: usize,
    now: u64,
) -> Result<Option<(&'k [u8], Popped)>, CmdError> {
    for key in keys {
        if let Some(popped) = pop(dbs.keyspace(key), key, end, count, now)? {
            return Ok(Some((key, popped)));
        }
    }
    Ok(None)
}

/// Moves one element from the `from` end of `src` to the `to` end of `dst` (LMOVE, RPOPLPUSH, BLMOVE) and returns
/// it; `None` when `src` does not exist. Both keys are type-checked before anything moves, as Redis does. With
/// `src == dst` the list rotates in place: the key never disappears in between, so it keeps its time to live.
pub(crate) fn move_element(
    dbs: &mut impl Keyspaces,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    now: u64,
) -> Result<Option<Vec<u8>>, CmdError> {
    if find::<List>(dbs.keyspace(src), src, now)?.is_none() {
        return Ok(None);
    }
    find::<List>(dbs.keyspace(dst), dst, now)?;
    let Some(element) =
        lookup_mut::<List>(dbs.keyspace(src), src, now)?.and_then(|list| take(list, from, 1).pop())
    else {
        return Ok(None);
    };
    push(dbs.keyspace(dst), dst, to, [element.clone()], true, now)?;
    // Only now: when src == dst the push has just refilled it.
    remove_if_empty::<List>(dbs.keyspace(src), src, now);
    Ok(Some(element))
}

/// Resolves Redis's inclusive `start`/`stop` (negative counts from the tail) against a list of `len` elements; `None`
/// when the range is empty.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

/// The position of Redis index `index` (negative counts from the tail) in a list of `len` elements, if inside.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let index = if index < 0 { index + len } else { index };
    (0..len).contains(&index).then_some(index as usize)
}

/// Writes elements as an array of bulk strings.
fn reply_elements(out: &mut Reply, elements: impl ExactSizeIterator<Item = impl AsRef<[u8]>>) {
    out.array(elements.len());
    for e in elements {
        out.bulk(e.as_ref());
    }
}

fn lpush(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    push_command(ctx, argv, End::Left, true)
}

fn rpush(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    push_command(ctx, argv, End::Right, true)
}

fn lpushx(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    push_command(ctx, argv, End::Left, false)
}

fn rpushx(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    push_command(ctx, argv, End::Right, false)
}

/// LPUSH, RPUSH, LPUSHX, RPUSHX: the new length.
fn push_command(ctx: &mut Ctx, argv: Argv, end: End, create: bool) -> CmdResult {
    let key = argv.get(1);
    let now = ctx.now;
    let len = push(ctx.db(key), key, end, argv.iter_from(2), create, now)?;
    ctx.out.int(len as i64);
    if len > 0 {
        ctx.notify(notify::LIST, end.push_event(), key);
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    pop_command(ctx, argv, End::Left, "lpop")
}

fn rpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    pop_command(ctx, argv, End::Right, "rpop")
}

/// LPOP/RPOP key [count]: without a count a bulk string (nil for a missing key), with one an array (a null array
/// for a missing key, an empty one for count 0).
fn pop_command(ctx: &mut Ctx, argv: Argv, end: End, name: &str) -> CmdResult {
    let count = match argv.len() {
        2 => None,
        3 => Some(args::int_at_least(
            argv.get(2),
            0,
            "value is out of range, must be positive",
        )?),
        _ => return Err(CmdError::WrongArity(name.to_string())),
    };
    let key = argv.get(1);
    let now = ctx.now;
    let popped = pop(ctx.db(key), key, end, count.unwrap_or(1), now)?;
    if popped.as_ref().is_some_and(|p| !p.is_empty()) {
        ctx.notify_emptied(notify::LIST, end.pop_event(), key);
    }
    let out = &mut *ctx.out;
    match (popped, count) {
        (None, None) => out.null(),
        (None, Some(_)) => out.null_array(),
        (Some(popped), None) => match popped.first() {
            Some(element) => out.bulk(element),
            None => out.null(),
        },
        (Some(popped), Some(_)) => reply_elements(out, popped.iter()),
    }
    Ok(())
}

fn llen(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let key = argv.get(1);
    let now = ctx.now;
    let len = lookup::<List>(ctx.db(key), key, now)?.map_or(0, |list| list.len());
    ctx.out.int(len as i64);
    Ok(())
}

fn lrange(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, start, stop) = (
        argv.get(1),
        args::int(argv.get(2))?,
        args::int(argv.get(3))?,
    );
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    let list = lookup::<List>(db, key, now)?;
    match list.and_then(|list| Some((clamp_range(start, stop, list.len())?, list))) {
        Some(((first, last), list)) => reply_elements(out, list.range(first, last - first + 1)),
        None => out.array(0),
    }
    Ok(())
}

fn lindex(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let key = argv.get(1);
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    // Redis looks the key up before it parses the index: a missing key is nil whatever the index.
    let Some(list) = lookup::<List>(db, key, now)? else {
        out.null();
        return Ok(());
    };
    let index = args::int(argv.get(2))?;
    match position(index, list.len()) {
        Some(i) => out.bulk(list.get(i).expect("index within the list")),
        None => out.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, element) = (argv.get(1), argv.get(3));
    let now = ctx.now;
    // Redis checks the key before the index: a missing key is "no such key" whatever the index.
    let list = lookup_mut::<List>(ctx.db(key), key, now)?.ok_or(CmdError::NoSuchKey)?;
    let index = args::int(argv.get(2))?;
    let i = position(index, list.len()).ok_or_else(|| CmdError::err("index out of range"))?;
    list.set(i, element);
    ctx.out.ok();
    ctx.notify(notify::LIST, "lset", key);
    Ok(())
}

/// Removes up to `count` elements equal to `element` (from the head when positive, from the tail when negative, all
/// of them when 0); returns how many.
fn remove_matches(list: &mut List, element: &[u8], count: i64) -> usize {
    let limit = match count {
        0 => usize::MAX,
        n => usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX),
    };
    let end = if count < 0 { End::Right } else { End::Left };
    list.remove_matching(end, limit, |e| e == element)
}

fn lrem(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, count, element) = (argv.get(1), args::int(argv.get(2))?, argv.get(3));
    let now = ctx.now;
    let removed = update::<List, _>(ctx.db(key), key, now, |list| {
        let removed = remove_matches(list, element, count);
        (removed, removed > 0)
    })?;
    let removed = removed.unwrap_or(0);
    ctx.out.int(removed as i64);
    if removed > 0 {
        ctx.notify_emptied(notify::LIST, "lrem", key);
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, start, stop) = (
        argv.get(1),
        args::int(argv.get(2))?,
        args::int(argv.get(3))?,
    );
    let now = ctx.now;
    let db = ctx.db(key);
    let existed = match lookup_mut::<List>(db, key, now)? {
        Some(list) => {
            match clamp_range(start, stop, list.len()) {
                Some((first, last)) => {
                    list.discard(End::Right, list.len() - 1 - last);
                    list.discard(End::Left, first);
                }
                None => list.discard(End::Left, list.len()),
            }
            true
        }
        None => false,
    };
    remove_if_empty::<List>(db, key, now);
    ctx.out.ok();
    if existed {
        ctx.notify_emptied(notify::LIST, "ltrim", key);
    }
    Ok(())
}

fn linsert(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, pivot, element) = (argv.get(1), argv.get(3), argv.get(4));
    let after = match argv.get(2) {
        w if is(w, "AFTER") => true,
        w if is(w, "BEFORE") => false,
        _ => return Err(CmdError::Syntax),
    };
    let now = ctx.now;
    let reply = update::<List, _>(ctx.db(key), key, now, |list| {
        match list.iter().position(|e| e == pivot) {
            Some(i) => {
                list.insert(i + after as usize, element);
                (list.len() as i64, true)
            }
            None => (-1, false),
        }
    })?;
    let reply = reply.unwrap_or(0);
    ctx.out.int(reply);
    if reply > 0 {
        ctx.notify(notify::LIST, "linsert", key);
    }
    Ok(())
}

/// LPOS's options.
struct LposOptions {
    /// Which match to start from: 1 the first, -1 the first from the tail.
    rank: i64,
    /// `Some(0)`: every match; `None`: no COUNT, reply a single position.
    count: Option<usize>,
    /// How many elements to compare at most; 0 means all.
    maxlen: usize,
}

/// Parses LPOS's options as Redis does: left to right, each error reported as soon as it is met.
fn lpos_options(argv: Argv) -> Result<LposOptions, CmdError> {
    let mut o = LposOptions {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut opts = args::Cursor::new(argv, 3);
    while let Some(opt) = opts.next() {
        if opts.remaining() == 0 {
            return Err(CmdError::Syntax);
        }
        if is(opt, "RANK") {
            o.rank = opts.int()?;
            // Redis 7.2 limits RANK to -LONG_MAX..LONG_MAX so that negating it cannot overflow.
            if o.rank == i64::MIN {
                return Err(CmdError::err(format!(
                    "value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                )));
            }
            if o.rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use \
                     negative to start from the end of the list",
                ));
            }
        } else if is(opt, "COUNT") {
            o.count = Some(args::int_at_least(
                opts.value()?,
                0,
                "COUNT can't be negative",
            )?);
        } else if is(opt, "MAXLEN") {
            o.maxlen = args::int_at_least(opts.value()?, 0, "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(o)
}

fn lpos(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, element) = (argv.get(1), argv.get(2));
    let o = lpos_options(argv)?;
    let now = ctx.now;
    let (db, out) = ctx.db_out(key);
    let Some(list) = lookup::<List>(db, key, now)? else {
        match o.count {
            Some(_) => out.array(0),
            None => out.null(),
        }
        return Ok(());
    };
    let len = list.len();
    let scanned = if o.maxlen == 0 {
        len
    } else {
        o.maxlen.min(len)
    };
    let from_tail = o.rank < 0;
    let skip = (o.rank.unsigned_abs() - 1) as usize;
    let elements: Box<dyn Iterator<Item = &[u8]>> = if from_tail {
        Box::new(list.iter().rev())
    } else {
        Box::new(list.iter())
    };
    let mut matches = elements
        .take(scanned)
        .enumerate()
        .filter(|&(_, e)| e == element)
        .map(|(step, _)| if from_tail { len - 1 - step } else { step })
        .skip(skip);
    match o.count {
        None => match matches.next() {
            Some(i) => out.int(i as i64),
            None => out.null(),
        },
        Some(count) => {
            let wanted = if count == 0 { usize::MAX } else { count };
            let found: Vec<usize> = matches.take(wanted).collect();
            out.array(found.len());
            for i in found {
                out.int(i as i64);
            }
        }
    }
    Ok(())
}

fn lmove(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (from, to) = (End::parse(argv.get(3))?, End::parse(argv.get(4))?);
    move_command(ctx, argv, from, to)
}

fn rpoplpush(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    move_command(ctx, argv, End::Right, End::Left)
}

/// LMOVE, RPOPLPUSH: the element moved, or nil when the source does not exist.
fn move_command(ctx: &mut Ctx, argv: Argv, from: End, to: End) -> CmdResult {
    let now = ctx.now;
    match move_element(ctx, argv.get(1), argv.get(2), from, to, now)? {
        Some(element) => {
            ctx.out.bulk(&element);
            notify_move(ctx, argv.get(1), argv.get(2), from, to);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

/// The events of an element moved from `src` to `dst`: the push on `dst`, then the pop on `src` (and `del` when it
/// emptied it), in Redis's order.
fn notify_move(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) {
    ctx.notify(notify::LIST, to.push_event(), dst);
    ctx.notify_emptied(notify::LIST, from.pop_event(), src);
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: `[key, [elements]]` from the first non-empty list, or a
/// null array.
fn lmpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (numkeys, end, count) = args::mpop_args(argv, 1, End::parse)?;
    if !mpop_now(ctx, argv, 2, numkeys, end, count)? {
        ctx.out.null_array();
    }
    Ok(())
}

/// Pops for LMPOP/BLMPOP from the `numkeys` keys starting at argument `first` and replies `[key, [elements]]`.
/// False (nothing replied) when none of the keys exists.
fn mpop_now(
    ctx: &mut Ctx,
    argv: Argv,
    first: usize,
    numkeys: usize,
    end: End,
    count: usize,
) -> Result<bool, CmdError> {
    let now = ctx.now;
    let keys = argv.iter_from(first).take(numkeys);
    let Some((key, popped)) = pop_first(ctx, keys, end, count, now)? else {
        return Ok(false);
    };
    ctx.notify_emptied(notify::LIST, end.pop_event(), key);
    ctx.out.array(2);
    ctx.out.bulk(key);
    reply_elements(ctx.out, popped.iter());
    Ok(true)
}

fn blpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    bpop(ctx, argv, End::Left)
}

fn brpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    bpop(ctx, argv, End::Right)
}

/// BLPOP/BRPOP key [key ...] timeout: `[key, element]` from the first non-empty list in argument order, else block.
fn bpop(ctx: &mut Ctx, argv: Argv, end: End) -> CmdResult {
    let timeout = blocking::parse_timeout(argv.get(argv.len() - 1), ctx.now)?;
    let now = ctx.now;
    let keys = argv.iter_from(1).take(argv.len() - 2);
    if let Some((key, popped)) = pop_first(ctx, keys, end, 1, now)? {
        ctx.notify_emptied(notify::LIST, end.pop_event(), key);
        ctx.out.array(2);
        ctx.out.bulk(key);
        ctx.out.bulk(&popped[0]);
        return Ok(());
    }
    let keys = argv
        .iter_from(1)
        .take(argv.len() - 2)
        .map(<[u8]>::to_vec)
        .collect();
    blocking::block(ctx, keys, BlockOp::Pop { end, count: None }, timeout)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]: LMPOP, or block. Its arguments are checked before
/// its timeout, as in Redis.
fn blmpop(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (numkeys, end, count) = args::mpop_args(argv, 2, End::parse)?;
    let timeout = blocking::parse_timeout(argv.get(1), ctx.now)?;
    if mpop_now(ctx, argv, 3, numkeys, end, count)? {
        return Ok(());
    }
    let keys = argv
        .iter_from(3)
        .take(numkeys)
        .map(<[u8]>::to_vec)
        .collect();
    let op = BlockOp::Pop {
        end,
        count: Some(count),
    };
    blocking::block(ctx, keys, op, timeout)
}

fn blmove(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (from, to) = (End::parse(argv.get(3))?, End::parse(argv.get(4))?);
    bmove(ctx, argv, from, to, argv.get(5))
}

fn brpoplpush(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    bmove(ctx, argv, End::Right, End::Left, argv.get(3))
}

/// BLMOVE/BRPOPLPUSH: LMOVE when the source exists, else block on the source alone.
fn bmove(ctx: &mut Ctx, argv: Argv, from: End, to: End, timeout: &[u8]) -> CmdResult {
    let timeout = blocking::parse_timeout(timeout, ctx.now)?;
    let now = ctx.now;
    let (src, dest) = (argv.get(1), argv.get(2));
    if let Some(element) = move_element(ctx, src, dest, from, to, now)? {
        ctx.out.bulk(&element);
        notify_move(ctx, src, dest, from, to);
        return Ok(());
    }
    let op = BlockOp::Move {
        dest: dest.to_vec(),
        from,
        to,
    };
    blocking::block(ctx, vec![src.to_vec()], op, timeout)
}

/// True when `key` holds a non-empty list (a waiter on it can be served).
pub(crate) fn has_elements(db: &mut Keyspace, key: &[u8], now: u64) -> bool {
    matches!(find::<List>(db, key, now), Ok(Some(list)) if !list.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::TestClient;
    use crate::store::now_ms;

    use crate::cmd::testing::WRONG as WRONGTYPE;
    const RANK_ZERO: &str =
        "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or \
                             use negative to start from the end of the list\r\n";

    /// The reply of LRANGE key start stop, written as the elements joined by spaces ("" when empty).
    fn range(c: &mut TestClient, key: &str, start: &str, stop: &str) -> String {
        let reply = c.run(&["LRANGE", key, start, stop]);
        reply
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.starts_with('$') && !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The whole list at `key`, as [`range`] writes it.
    fn elements(c: &mut TestClient, key: &str) -> String {
        range(c, key, "0", "-1")
    }

    /// Two keys that live on different shards of `c`'s server.
    fn keys_on_two_shards(c: &TestClient) -> (String, String) {
        let store = &c.server.store;
        let first = "src".to_string();
        let other = (0..)
            .map(|i| format!("dst{i}"))
            .find(|k| store.shard_of(k.as_bytes()) != store.shard_of(first.as_bytes()))
            .expect("some key lands on another shard");
        (first, other)
    }

    /// Runs `f` on the keyspace of database 0 that owns `key`.
    fn with_db<T>(c: &TestClient, key: &[u8], f: impl FnOnce(&mut Keyspace) -> T) -> T {
        let store = &c.server.store;
        f(&mut store.lock_shard(store.shard_of(key)).dbs[0])
    }

    #[test]
    fn lpush_prepends_each_element_in_turn_and_rpush_appends() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("LPUSH l a b c"), ":3\r\n");
        assert_eq!(elements(&mut c, "l"), "c b a");
        assert_eq!(c.cmd("RPUSH l d e"), ":5\r\n");
        assert_eq!(elements(&mut c, "l"), "c b a d e");
        assert_eq!(
            c.cmd("LPUSH l"),
            "-ERR wrong number of arguments for 'lpush' command\r\n"
        );
    }

    #[test]
    fn pushx_only_pushes_onto_an_existing_list() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("LPUSHX l a"), ":0\r\n");
        assert_eq!(c.cmd("RPUSHX l a b"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS l"), ":0\r\n");
        c.cmd("RPUSH l m");
        assert_eq!(c.cmd("LPUSHX l a b"), ":3\r\n");
        assert_eq!(c.cmd("RPUSHX l y z"), ":5\r\n");
        assert_eq!(elements(&mut c, "l"), "b a m y z");
    }

    #[test]
    fn every_list_command_rejects_a_key_of_another_type() {
        let mut c = TestClient::new();
        c.cmd("SET s x");
        c.cmd("RPUSH l a");
        for cmd in [
            "LPUSH s a",
            "RPUSH s a",
            "LPUSHX s a",
            "RPUSHX s a",
            "LPOP s",
            "RPOP s 0",
            "LLEN s",
            "LRANGE s 0 -1",
            "LINDEX s 0",
            "LINDEX s notanumber",
            "LSET s 0 x",
            "LREM s 0 x",
            "LTRIM s 0 1",
            "LINSERT s BEFORE a b",
            "LPOS s a",
            "LMOVE s l LEFT LEFT",
            "LMOVE l s LEFT LEFT",
            "RPOPLPUSH l s",
            "LMPOP 2 missing s LEFT",
        ] {
            assert_eq!(c.cmd(cmd), WRONGTYPE, "{cmd}");
        }
        assert_eq!(c.cmd("LLEN l"), ":1\r\n", "nothing was popped");
        assert_eq!(c.cmd("GET s"), "$1\r\nx\r\n");
    }

    #[test]
    fn pop_without_count_replies_a_bulk_or_nil() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a b c");
        assert_eq!(c.cmd("LPOP l"), "$1\r\na\r\n");
        assert_eq!(c.cmd("RPOP l"), "$1\r\nc\r\n");
        assert_eq!(c.cmd("RPOP l"), "$1\r\nb\r\n");
        assert_eq!(c.cmd("LPOP l"), "$-1\r\n");
        assert_eq!(c.cmd("RPOP l"), "$-1\r\n");
    }

    #[test]
    fn pop_with_count_replies_an_array_in_leaving_order() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a b c d e");
        assert_eq!(c.cmd("LPOP l 2"), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(c.cmd("RPOP l 2"), "*2\r\n$1\r\ne\r\n$1\r\nd\r\n");
        assert_eq!(c.cmd("LPOP l 0"), "*0\r\n");
        assert_eq!(c.cmd("RPOP l 9223372036854775807"), "*1\r\n$1\r\nc\r\n");
        assert_eq!(
            c.cmd("LPOP l 0"),
            "*-1\r\n",
            "a missing key is a null array"
        );
        assert_eq!(c.cmd("RPOP l 3"), "*-1\r\n");
    }

    #[test]
    fn pop_count_errors_match_redis() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a");
        let positive = "-ERR value is out of range, must be positive\r\n";
        assert_eq!(c.cmd("LPOP l -1"), positive);
        assert_eq!(c.cmd("RPOP l abc"), positive);
        assert_eq!(c.cmd("LPOP missing -1"), positive);
        assert_eq!(
            c.cmd("LPOP l 1 2"),
            "-ERR wrong number of arguments for 'lpop' command\r\n"
        );
        assert_eq!(
            c.cmd("RPOP l 1 2"),
            "-ERR wrong number of arguments for 'rpop' command\r\n"
        );
    }

    #[test]
    fn missing_keys_reply_resp3_nulls() {
        let mut c = TestClient::new();
        c.cmd("HELLO 3");
        for cmd in [
            "LPOP l",
            "LPOP l 1",
            "RPOP l 0",
            "LINDEX l 0",
            "LPOS l a",
            "LMOVE l m LEFT LEFT",
            "LMPOP 1 l LEFT",
        ] {
            assert_eq!(c.cmd(cmd), "_\r\n", "{cmd}");
        }
    }

    #[test]
    fn an_emptied_list_is_deleted_by_every_command_that_removes() {
        let mut c = TestClient::new();
        for (fill, empty) in [
            ("RPUSH l a", "LPOP l"),
            ("RPUSH l a b", "RPOP l 5"),
            ("RPUSH l a a", "LREM l 0 a"),
            ("RPUSH l a b", "LTRIM l 5 10"),
            ("RPUSH l a", "LMOVE l m LEFT RIGHT"),
            ("RPUSH l a", "RPOPLPUSH l m"),
            ("RPUSH l a b", "LMPOP 1 l LEFT COUNT 2"),
        ] {
            c.cmd(fill);
            c.cmd(empty);
            assert_eq!(c.cmd("EXISTS l"), ":0\r\n", "{empty}");
            assert_eq!(c.cmd("LLEN l"), ":0\r\n");
            c.cmd("DEL m");
        }
    }

    #[test]
    fn llen_counts_elements_and_zero_for_a_missing_key() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("LLEN l"), ":0\r\n");
        c.cmd("RPUSH l a b c");
        assert_eq!(c.cmd("LLEN l"), ":3\r\n");
    }

    #[test]
    fn lrange_resolves_negative_and_out_of_range_indices_like_redis() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a b c d");
        assert_eq!(range(&mut c, "l", "1", "2"), "b c");
        assert_eq!(range(&mut c, "l", "-2", "-1"), "c d");
        assert_eq!(range(&mut c, "l", "-100", "100"), "a b c d");
        assert_eq!(
            range(&mut c, "l", "-9223372036854775808", "9223372036854775807"),
            "a b c d"
        );
        assert_eq!(range(&mut c, "l", "2", "1"), "");
        assert_eq!(range(&mut c, "l", "4", "10"), "");
        assert_eq!(range(&mut c, "l", "0", "-5"), "");
        assert_eq!(c.cmd("LRANGE l 0 -5"), "*0\r\n");
        assert_eq!(c.cmd("LRANGE missing 0 -1"), "*0\r\n");
        assert_eq!(
            c.cmd("LRANGE missing x 1"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn lindex_reads_from_either_end_and_nil_outside() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a b c");
        assert_eq!(c.cmd("LINDEX l 0"), "$1\r\na\r\n");
        assert_eq!(c.cmd("LINDEX l -1"), "$1\r\nc\r\n");
        assert_eq!(c.cmd("LINDEX l -3"), "$1\r\na\r\n");
        assert_eq!(c.cmd("LINDEX l 3"), "$-1\r\n");
        assert_eq!(c.cmd("LINDEX l -4"), "$-1\r\n");
        assert_eq!(c.cmd("LINDEX l -9223372036854775808"), "$-1\r\n");
        assert_eq!(
            c.cmd("LINDEX l x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        // Redis looks the key up first: a missing key is nil even with a bad index.
        assert_eq!(c.cmd("LINDEX missing x"), "$-1\r\n");
    }

    #[test]
    fn lset_replaces_in_range_and_reports_redis_errors() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("LSET l 0 x"), "-ERR no such key\r\n");
        assert_eq!(c.cmd("LSET l notanumber x"), "-ERR no such key\r\n");
        c.cmd("RPUSH l a b c");
        assert_eq!(c.cmd("LSET l -1 z"), "+OK\r\n");
        assert_eq!(c.cmd("LSET l 0 y"), "+OK\r\n");
        assert_eq!(elements(&mut c, "l"), "y b z");
        assert_eq!(c.cmd("LSET l 3 x"), "-ERR index out of range\r\n");
        assert_eq!(c.cmd("LSET l -4 x"), "-ERR index out of range\r\n");
        assert_eq!(
            c.cmd("LSET l x x"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn lrem_removes_from_the_head_the_tail_or_everywhere() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a x a y a z a");
        assert_eq!(c.cmd("LREM l 2 a"), ":2\r\n");
        assert_eq!(elements(&mut c, "l"), "x y a z a");
        assert_eq!(c.cmd("LREM l -1 a"), ":1\r\n");
        assert_eq!(elements(&mut c, "l"), "x y a z");
        c.cmd("RPUSH l a a");
        assert_eq!(c.cmd("LREM l -2 a"), ":2\r\n");
        assert_eq!(elements(&mut c, "l"), "x y a z");
        assert_eq!(c.cmd("LREM l -9223372036854775808 a"), ":1\r\n");
        assert_eq!(c.cmd("LREM l 0 nothing"), ":0\r\n");
        c.cmd("RPUSH l x x");
        assert_eq!(c.cmd("LREM l 0 x"), ":3\r\n");
        assert_eq!(elements(&mut c, "l"), "y z");
        assert_eq!(c.cmd("LREM missing 0 a"), ":0\r\n");
        assert_eq!(
            c.cmd("LREM l x a"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn ltrim_keeps_the_resolved_range() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l 1 2 3 4 5 6");
        assert_eq!(c.cmd("LTRIM l 1 -2"), "+OK\r\n");
        assert_eq!(elements(&mut c, "l"), "2 3 4 5");
        assert_eq!(c.cmd("LTRIM l -100 100"), "+OK\r\n");
        assert_eq!(elements(&mut c, "l"), "2 3 4 5");
        assert_eq!(c.cmd("LTRIM l -2 -1"), "+OK\r\n");
        assert_eq!(elements(&mut c, "l"), "4 5");
        assert_eq!(c.cmd("LTRIM l 1 0"), "+OK\r\n");
        assert_eq!(c.cmd("EXISTS l"), ":0\r\n");
        assert_eq!(c.cmd("LTRIM missing 0 1"), "+OK\r\n");
        assert_eq!(
            c.cmd("LTRIM missing 0 x"),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn linsert_places_around_the_first_pivot() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("LINSERT l BEFORE a x"), ":0\r\n");
        assert_eq!(c.cmd("EXISTS l"), ":0\r\n");
        c.cmd("RPUSH l a b a");
        assert_eq!(c.cmd("LINSERT l before a x"), ":4\r\n");
        assert_eq!(c.cmd("LINSERT l AFTER a y"), ":5\r\n");
        assert_eq!(c.cmd("LINSERT l after b z"), ":6\r\n");
        assert_eq!(elements(&mut c, "l"), "x a y b z a");
        assert_eq!(c.cmd("LINSERT l BEFORE nothing x"), ":-1\r\n");
        assert_eq!(c.cmd("LINSERT l MIDDLE a x"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("LINSERT missing MIDDLE a x"), "-ERR syntax error\r\n");
    }

    #[test]
    fn lpos_finds_by_rank_count_and_maxlen() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a b a c a d a");
        assert_eq!(c.cmd("LPOS l a"), ":0\r\n");
        assert_eq!(c.cmd("LPOS l a RANK 2"), ":2\r\n");
        assert_eq!(c.cmd("LPOS l a RANK -1"), ":6\r\n");
        assert_eq!(c.cmd("LPOS l a RANK -2"), ":4\r\n");
        assert_eq!(c.cmd("LPOS l a RANK 5"), "$-1\r\n");
        assert_eq!(c.cmd("LPOS l zz"), "$-1\r\n");
        assert_eq!(c.cmd("LPOS l a COUNT 0"), "*4\r\n:0\r\n:2\r\n:4\r\n:6\r\n");
        assert_eq!(
            c.cmd("LPOS l a RANK -1 COUNT 0"),
            "*4\r\n:6\r\n:4\r\n:2\r\n:0\r\n"
        );
        assert_eq!(c.cmd("LPOS l a RANK 2 COUNT 2"), "*2\r\n:2\r\n:4\r\n");
        assert_eq!(c.cmd("LPOS l a MAXLEN 3 COUNT 0"), "*2\r\n:0\r\n:2\r\n");
        assert_eq!(c.cmd("LPOS l a RANK -1 MAXLEN 2 COUNT 0"), "*1\r\n:6\r\n");
        assert_eq!(c.cmd("LPOS l zz COUNT 0"), "*0\r\n");
        assert_eq!(c.cmd("LPOS l a RANK 9223372036854775807"), "$-1\r\n");
        assert_eq!(c.cmd("LPOS missing a"), "$-1\r\n");
        assert_eq!(c.cmd("LPOS missing a COUNT 1"), "*0\r\n");
    }

    #[test]
    fn lpos_errors_match_redis() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a");
        assert_eq!(c.cmd("LPOS l a RANK 0"), RANK_ZERO);
        assert_eq!(
            c.cmd("LPOS missing a RANK 0"),
            RANK_ZERO,
            "options are parsed before the key is read"
        );
        assert_eq!(
            c.cmd("LPOS l a RANK x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            c.cmd("LPOS l a RANK -9223372036854775808"),
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n"
        );
        assert_eq!(
            c.cmd("LPOS l a COUNT -1"),
            "-ERR COUNT can't be negative\r\n"
        );
        assert_eq!(
            c.cmd("LPOS l a COUNT x"),
            "-ERR COUNT can't be negative\r\n"
        );
        assert_eq!(
            c.cmd("LPOS l a MAXLEN -1"),
            "-ERR MAXLEN can't be negative\r\n"
        );
        assert_eq!(
            c.cmd("LPOS l a MAXLEN x"),
            "-ERR MAXLEN can't be negative\r\n"
        );
        assert_eq!(c.cmd("LPOS l a RANK"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("LPOS l a FOO 1"), "-ERR syntax error\r\n");
    }

    #[test]
    fn lmove_moves_between_any_ends() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l 1 2 3");
        assert_eq!(c.cmd("LMOVE l m LEFT LEFT"), "$1\r\n1\r\n");
        assert_eq!(c.cmd("LMOVE l m right RIGHT"), "$1\r\n3\r\n");
        assert_eq!(c.cmd("LMOVE l m Left Left"), "$1\r\n2\r\n");
        assert_eq!(elements(&mut c, "m"), "2 1 3");
        assert_eq!(c.cmd("EXISTS l"), ":0\r\n");
        assert_eq!(c.cmd("LMOVE l m LEFT LEFT"), "$-1\r\n");
        assert_eq!(c.cmd("LMOVE l m LEFT MIDDLE"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("LMOVE l m UP LEFT"), "-ERR syntax error\r\n");
    }

    #[test]
    fn lmove_onto_the_same_key_rotates() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l 1 2 3");
        assert_eq!(c.cmd("LMOVE l l LEFT RIGHT"), "$1\r\n1\r\n");
        assert_eq!(elements(&mut c, "l"), "2 3 1");
        assert_eq!(c.cmd("LMOVE l l RIGHT LEFT"), "$1\r\n1\r\n");
        assert_eq!(elements(&mut c, "l"), "1 2 3");
        assert_eq!(c.cmd("RPOPLPUSH l l"), "$1\r\n3\r\n");
        assert_eq!(elements(&mut c, "l"), "3 1 2");
        c.cmd("DEL l");
        c.cmd("RPUSH l only");
        assert_eq!(c.cmd("LMOVE l l LEFT LEFT"), "$4\r\nonly\r\n");
        assert_eq!(elements(&mut c, "l"), "only");
    }

    #[test]
    fn rotating_a_single_element_list_keeps_its_deadline() {
        let mut c = TestClient::new();
        let deadline = now_ms() + 100_000;
        with_db(&c, b"l", |db| {
            db.insert(b"l", Value::List(List::from_iter([b"x"])), Some(deadline))
        });
        assert_eq!(c.cmd("LMOVE l l LEFT RIGHT"), "$1\r\nx\r\n");
        let kept = with_db(&c, b"l", |db| {
            db.get(b"l", now_ms()).and_then(|e| e.expires_at())
        });
        assert_eq!(kept, Some(deadline));
    }

    #[test]
    fn lmove_checks_the_destination_type_before_popping() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a");
        c.cmd("SET s x");
        assert_eq!(c.cmd("LMOVE l s LEFT LEFT"), WRONGTYPE);
        assert_eq!(c.cmd("RPOPLPUSH l s"), WRONGTYPE);
        assert_eq!(elements(&mut c, "l"), "a");
        // A missing source is nil before the destination is looked at.
        assert_eq!(c.cmd("LMOVE missing s LEFT LEFT"), "$-1\r\n");
    }

    #[test]
    fn lmove_crosses_shards() {
        let mut c = TestClient::new();
        let (src, dst) = keys_on_two_shards(&c);
        c.run(&["RPUSH", &src, "a", "b"]);
        assert_eq!(
            c.run(&["LMOVE", &src, &dst, "RIGHT", "LEFT"]),
            "$1\r\nb\r\n"
        );
        assert_eq!(c.run(&["RPOPLPUSH", &src, &dst]), "$1\r\na\r\n");
        assert_eq!(elements(&mut c, &dst), "a b");
        assert_eq!(c.run(&["EXISTS", &src]), ":0\r\n");
    }

    #[test]
    fn rpoplpush_moves_tail_to_head() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l 1 2 3");
        c.cmd("RPUSH m x");
        assert_eq!(c.cmd("RPOPLPUSH l m"), "$1\r\n3\r\n");
        assert_eq!(elements(&mut c, "m"), "3 x");
        assert_eq!(c.cmd("RPOPLPUSH missing m"), "$-1\r\n");
    }

    #[test]
    fn lmpop_pops_from_the_first_non_empty_key() {
        let mut c = TestClient::new();
        c.cmd("RPUSH b 1 2 3");
        c.cmd("RPUSH c x");
        assert_eq!(
            c.cmd("LMPOP 3 a b c LEFT"),
            "*2\r\n$1\r\nb\r\n*1\r\n$1\r\n1\r\n"
        );
        assert_eq!(
            c.cmd("LMPOP 3 a b c RIGHT COUNT 5"),
            "*2\r\n$1\r\nb\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            c.cmd("LMPOP 3 a b c left count 1"),
            "*2\r\n$1\r\nc\r\n*1\r\n$1\r\nx\r\n"
        );
        assert_eq!(c.cmd("LMPOP 2 a b LEFT"), "*-1\r\n");
    }

    #[test]
    fn lmpop_errors_match_redis() {
        let mut c = TestClient::new();
        c.cmd("RPUSH l a");
        let numkeys = "-ERR numkeys should be greater than 0\r\n";
        assert_eq!(c.cmd("LMPOP 0 l LEFT"), numkeys);
        assert_eq!(c.cmd("LMPOP -1 l LEFT"), numkeys);
        assert_eq!(c.cmd("LMPOP x l LEFT"), numkeys);
        // Redis reports a numkeys past the arguments as a syntax error.
        assert_eq!(c.cmd("LMPOP 5 l LEFT"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("LMPOP 9223372036854775807 l LEFT"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(c.cmd("LMPOP 1 l MIDDLE"), "-ERR syntax error\r\n");
        let count = "-ERR count should be greater than 0\r\n";
        assert_eq!(c.cmd("LMPOP 1 l LEFT COUNT 0"), count);
        assert_eq!(c.cmd("LMPOP 1 l LEFT COUNT -1"), count);
        assert_eq!(c.cmd("LMPOP 1 l LEFT COUNT x"), count);
        assert_eq!(c.cmd("LMPOP 1 l LEFT COUNT"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("LMPOP 1 l LEFT COUNT 1 COUNT 1"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(c.cmd("LMPOP 1 l LEFT FOO"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("LMPOP 1 l"),
            "-ERR wrong number of arguments for 'lmpop' command\r\n"
        );
        assert_eq!(c.cmd("LLEN l"), ":1\r\n");
    }

    #[test]
    fn an_expired_list_is_a_missing_key() {
        let mut c = TestClient::new();
        with_db(&c, b"l", |db| {
            db.insert(b"l", Value::List(List::from_iter([b"old"])), Some(1))
        });
        assert_eq!(c.cmd("LLEN l"), ":0\r\n");
        assert_eq!(c.cmd("RPUSH l new"), ":1\r\n");
        assert_eq!(elements(&mut c, "l"), "new");
    }

    #[test]
    fn elements_are_binary_safe() {
        let mut c = TestClient::new();
        let odd: &[u8] = b"\x00\r\n\xff";
        c.run_bytes(&[&b"RPUSH"[..], b"k\x00", odd, b""]);
        assert_eq!(c.run_bytes(&[&b"LPOS"[..], b"k\x00", odd]), b":0\r\n");
        assert_eq!(
            c.run_bytes(&[&b"LRANGE"[..], b"k\x00", b"0", b"-1"]),
            b"*2\r\n$4\r\n\x00\r\n\xff\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn core_functions_serve_callers_without_a_command() {
        let c = TestClient::new();
        let now = now_ms();
        with_db(&c, b"k", |db| {
            assert_eq!(
                push(db, b"k", End::Right, [&b"a"[..], b"b", b"c"], true, now),
                Ok(3)
            );
            assert_eq!(
                push(db, b"k", End::Left, Vec::<Vec<u8>>::new(), true, now),
                Ok(3)
            );
            assert_eq!(
                push(db, b"new", End::Left, Vec::<Vec<u8>>::new(), true, now),
                Ok(0)
            );
            assert!(!db.contains(b"new", now), "pushing nothing creates nothing");
            assert_eq!(
                pop(db, b"k", End::Right, 2, now),
                Ok(Some(vec![b"c".to_vec(), b"b".to_vec()]))
            );
            assert_eq!(
                pop(db, b"k", End::Left, 5, now),
                Ok(Some(vec![b"a".to_vec()]))
            );
            assert_eq!(pop(db, b"k", End::Left, 1, now), Ok(None));
        });
        assert_eq!(End::parse(b"left"), Ok(End::Left));
        assert_eq!(End::parse(b"RIGHT"), Ok(End::Right));
        assert_eq!(End::parse(b"up"), Err(CmdError::Syntax));
    }
}
