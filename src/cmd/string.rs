//! String commands: GET, SET and its family.

use super::args::{self, is, Cursor};
use super::{flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::protocol::Argv;
use crate::store::{Entry, Value};

const KEY1: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, KEY1, get),
    CommandSpec::new("set", -3, WRITE | DENYOOM, KEY1, set),
];

/// The string a live entry holds, or WRONGTYPE.
pub fn as_str(entry: &Entry) -> Result<&[u8], CmdError> {
    match &entry.value {
        Value::Str(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

fn get(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let now = ctx.now;
    let (db, out) = ctx.db_out(argv.get(1));
    match db.get(argv.get(1), now) {
        Some(e) => out.bulk(as_str(e)?),
        None => out.null(),
    }
    Ok(())
}

/// When a key written by SET/GETEX expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No option: SET clears any deadline.
    Clear,
    /// KEEPTTL.
    Keep,
    /// EX/PX/EXAT/PXAT, resolved to Unix milliseconds.
    At(u64),
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

fn set(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (key, value) = (argv.get(1), argv.get(2));
    let (mut nx, mut xx, mut get, mut expiry) = (false, false, false, Expiry::Clear);
    let mut expire_arg = None;
    let mut opts = Cursor::new(argv, 3);
    while let Some(opt) = opts.next() {
        let has_expire = expire_arg.is_some() || expiry == Expiry::Keep;
        if is(opt, "NX") && !xx {
            nx = true;
        } else if is(opt, "XX") && !nx {
            xx = true;
        } else if is(opt, "GET") {
            get = true;
        } else if is(opt, "KEEPTTL") && !has_expire {
            expiry = Expiry::Keep;
        } else if !has_expire && opts.remaining() > 0 {
            let (unit, relative) = if is(opt, "EX") {
                (1000, true)
            } else if is(opt, "PX") {
                (1, true)
            } else if is(opt, "EXAT") {
                (1000, false)
            } else if is(opt, "PXAT") {
                (1, false)
            } else {
                return Err(CmdError::Syntax);
            };
            expire_arg = Some((opts.value()?, unit, relative));
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let now = ctx.now;
    if let Some((v, unit, relative)) = expire_arg {
        expiry = Expiry::At(expire_at(v, unit, relative, now, "set")?);
    }
    let (db, out) = ctx.db_out(key);
    let existing = db.get(key, now);
    let found = existing.is_some();
    let old_deadline = existing.as_ref().and_then(|e| e.expires_at());
    if get {
        match existing {
            Some(e) => out.bulk(as_str(e)?),
            None => out.null(),
        }
    }
    if (nx && found) || (xx && !found) {
        if !get {
            ctx.out.null();
        }
        return Ok(());
    }
    let deadline = match expiry {
        Expiry::Clear => None,
        Expiry::Keep => old_deadline,
        Expiry::At(at) => Some(at),
    };
    ctx.db(key)
        .insert(key, Value::Str(value.to_vec()), deadline);
    if !get {
        ctx.out.ok();
    }
    Ok(())
}
