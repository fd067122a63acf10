//! Lua <-> RESP conversion, with Redis 7's exact rules.
//!
//! Replies to Lua (`redis.call`): integer -> number; bulk -> string; nil bulk or nil array -> false; array -> table;
//! status -> `{ok=...}`; error -> `{err=...}`; and with `redis.setresp(3)`: map -> `{map={...}}`, set ->
//! `{set={k=true}}`, null -> nil, double -> `{double=n}`, boolean -> boolean, big number -> `{big_number=s}`, verbatim
//! -> `{verbatim_string={format=, string=}}`.
//!
//! Lua to replies (a script's result): number -> integer (truncated); string -> bulk; table -> `err`, `ok`, `double`,
//! `big_number`, `verbatim_string`, `map`, `set` forms in that order, else its array part up to the first nil;
//! true -> `:1` (RESP2 script) or boolean; false -> nil (RESP2 script) or boolean; anything else -> nil.

use std::ffi::{c_int, CStr};

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Table, Value};

use crate::protocol::value::decode;
use crate::protocol::{Frame, Reply};

/// Deepest table nesting a script may return (Redis stops at the Lua stack limit; 200 is Lua 5.1's C-call limit).
const MAX_REPLY_DEPTH: usize = 200;

/// A Lua number as Lua's `tostring` writes it (`%.14g`).
pub fn number_text(v: &Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => format_g14(*n),
        _ => String::new(),
    }
}

/// A number argument of `redis.call`, as Redis 7.2 writes it (`luaArgsToRedisArgv`): the integer when the double
/// is one within +-2^62, else the shortest text that reads back to it. Lua's own `tostring` (`%.14g`) would drop
/// digits: `SET k (1/3)` must store 0.3333333333333333.
pub fn argument_number_text(n: f64) -> String {
    if n.is_nan() {
        // fpconv_dtoa keeps a NaN's sign (0/0 is -nan on x86), unlike the reply formatter.
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    // Unlike a reply's d2string, no signed zero first: -0 takes the integer path and is written 0.
    match crate::protocol::reply::exact_integer(n) {
        Some(i) => i.to_string(),
        None => crate::protocol::reply::format_double(n),
    }
}

/// C's `%.14g`, as Lua's `tostring` writes numbers.
pub fn format_g14(x: f64) -> String {
    format_g(x, 14)
}

/// C's `%.<precision>g` (precision 1-14; a NaN keeps its sign, `-nan` as glibc prints it).
pub fn format_g(x: f64, precision: i32) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.clamp(1, 14);
    // An integer below 10^precision prints as itself: the common case, without exact float formatting (which
    // falls back to slow bignum arithmetic for many values).
    if x == x.trunc() && x.abs() < 10f64.powi(p) {
        return (x as i64).to_string();
    }
    let sci = format!("{:.*e}", (p - 1) as usize, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    } else {
        trim_zeros(&format!("{:.*}", (p - 1 - exp) as usize, x)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A number argument as `lua_tonumber` reads it (numbers and numeric strings).
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Redis's `luaPushErrorBuff` text: `-CODE message` keeps its code, anything else gets `ERR`; trailing CR/LF go.
fn error_text(text: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let end = msg
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |p| p + 1);
    let mut full = code.to_vec();
    full.push(b' ');
    full.extend_from_slice(&msg[..end]);
    full
}

/// The `{err=...}` table of `error_text`.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    // SAFETY: push_error_table pushes one table and raises nothing but out-of-memory (see the raw-stack note).
    unsafe { lua.exec_raw((), |state| push_error_table(state, text)) }
}

/// The reply line of a script that failed with error table `t` (without the leading `-`): the error, then where.
pub fn script_error(t: &Table, sha: &str) -> String {
    let text = |v: Value| match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(_) | Value::Number(_) => Some(number_text(&v)),
        _ => None,
    };
    let msg = text(t.raw_get("err").unwrap_or(Value::Nil)).unwrap_or_default();
    let source = text(t.raw_get("source").unwrap_or(Value::Nil));
    let line = text(t.raw_get("line").unwrap_or(Value::Nil));
    match (source, line) {
        (Some(source), Some(line)) => format!("{msg} script: {sha}, on {source}:{line}."),
        _ => msg,
    }
}

// The raw-stack functions below are the hot path of every script: they read and build Lua values on the stack
// directly, without mlua's registry references. They call only Lua API functions that raise nothing but an
// out-of-memory error, which this VM (no memory limit) meets only when the process itself is out of memory, the
// same assumption mlua makes when it skips its own protection.

/// The bytes of the string at stack index `idx` (which must hold a string), valid while it stays on the stack.
///
/// # Safety
/// `idx` is a valid index of `state` holding a string.
pub unsafe fn str_at<'a>(state: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0;
    let p = ffi::lua_tolstring(state, idx, &mut len);
    std::slice::from_raw_parts(p.cast(), len)
}

/// Pushes a Lua string of `bytes`.
///
/// # Safety
/// `state` has a free stack slot.
pub unsafe fn push_bytes(state: *mut lua_State, bytes: &[u8]) {
    ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
}

/// Pushes the `{err=...}` table of `error_text`.
///
/// # Safety
/// `state` has two free stack slots.
pub unsafe fn push_error_table(state: *mut lua_State, text: &[u8]) {
    ffi::lua_createtable(state, 0, 1);
    push_bytes(state, &error_text(text));
    ffi::lua_setfield(state, -2, c"err".as_ptr());
}

/// Pushes the Lua value of the single reply in `buf`, as `redis.call` returns it; for an error reply its `{err=...}`
/// table, and then true. The one-value replies most commands give (integer, status, bulk string, nil) are read
/// straight from the bytes; anything else goes through [`decode`].
///
/// # Safety
/// `state` has three free stack slots.
pub unsafe fn push_reply(state: *mut lua_State, buf: &[u8]) -> bool {
    // The first line, when it is the whole reply or a bulk string's header.
    let line_end = buf.iter().position(|&b| b == b'\r');
    if let (Some(&tag), Some(end)) = (buf.first(), line_end) {
        let line = &buf[1..end];
        let whole = end + 2 == buf.len();
        match tag {
            b':' if whole => {
                if let Some(i) = crate::cmd::args::parse_i64(line) {
                    ffi::lua_pushnumber(state, i as f64);
                    return false;
                }
            }
            b'+' if whole => {
                push_bytes(state, line);
                wrap(state, c"ok");
                return false;
            }
            b'$' if line == b"-1" && whole => {
                ffi::lua_pushboolean(state, 0);
                return false;
            }
            b'$' => {
                let len = crate::cmd::args::parse_i64(line).and_then(|n| usize::try_from(n).ok());
                if let Some(body) = len.and_then(|n| buf.get(end + 2..end + 2 + n)) {
                    if end + 2 + body.len() + 2 == buf.len() {
                        push_bytes(state, body);
                        return false;
                    }
                }
            }
            _ => {}
        }
    }
    match decode(buf) {
        Ok((Frame::Error(e), _)) => {
            push_reply_error(state, &e);
            true
        }
        Ok((frame, _)) => {
            push_frame(state, frame);
            false
        }
        Err(e) => {
            push_error_table(
                state,
                format!("internal error decoding a reply: {e}").as_bytes(),
            );
            true
        }
    }
}

/// An error reply's table: [`push_error_table`], marked as counted.
unsafe fn push_reply_error(state: *mut lua_State, text: &[u8]) {
    let mut dashed = Vec::with_capacity(text.len() + 1);
    dashed.push(b'-');
    dashed.extend_from_slice(text);
    push_error_table(state, &dashed);
    mark_counted(state);
}

/// Marks the error table on top of the stack as Redis marks the error of a command it ran or rejected: counted
/// already (`ignore_error_stats_update`), a field scripts can see.
///
/// # Safety
/// The top of the stack is a table, and `state` has a free slot.
pub unsafe fn mark_counted(state: *mut lua_State) {
    ffi::lua_pushboolean(state, 1);
    ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
}

/// Replaces the value on top of the stack with `{key = value}`.
unsafe fn wrap(state: *mut lua_State, key: &CStr) {
    ffi::lua_createtable(state, 0, 1);
    ffi::lua_insert(state, -2);
    ffi::lua_setfield(state, -2, key.as_ptr());
}

unsafe fn push_frame(state: *mut lua_State, frame: Frame) {
    if ffi::lua_checkstack(state, 3) == 0 {
        // Deeper than any reply a command gives; Redis stops there too.
        ffi::lua_pushnil(state);
        return;
    }
    match frame {
        Frame::Int(i) => ffi::lua_pushnumber(state, i as f64),
        Frame::Bulk(b) => push_bytes(state, &b),
        Frame::NullBulk | Frame::NullArray => ffi::lua_pushboolean(state, 0),
        Frame::Null => ffi::lua_pushnil(state),
        Frame::Simple(s) => {
            push_bytes(state, &s);
            wrap(state, c"ok");
        }
        Frame::Error(e) => push_reply_error(state, &e),
        Frame::Array(items) | Frame::Push(items) => {
            ffi::lua_createtable(state, items.len().try_into().unwrap_or(0), 0);
            for (i, item) in (1..).zip(items) {
                push_frame(state, item);
                ffi::lua_rawseti_(state, -2, i);
            }
        }
        Frame::Map(pairs) => {
            ffi::lua_createtable(state, 0, pairs.len().try_into().unwrap_or(0));
            for (k, v) in pairs {
                push_frame(state, k);
                push_frame(state, v);
                ffi::lua_rawset(state, -3);
            }
            wrap(state, c"map");
        }
        Frame::Set(items) => {
            ffi::lua_createtable(state, 0, items.len().try_into().unwrap_or(0));
            for item in items {
                push_frame(state, item);
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawset(state, -3);
            }
            wrap(state, c"set");
        }
        Frame::Double(d) => {
            ffi::lua_pushnumber(state, d);
            wrap(state, c"double");
        }
        Frame::Boolean(b) => ffi::lua_pushboolean(state, b.into()),
        Frame::BigNumber(n) => {
            push_bytes(state, &n);
            wrap(state, c"big_number");
        }
        Frame::Verbatim(format, text) => {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, &format);
            ffi::lua_setfield(state, -2, c"format".as_ptr());
            push_bytes(state, &text);
            ffi::lua_setfield(state, -2, c"string".as_ptr());
            wrap(state, c"verbatim_string");
        }
    }
}

/// Writes the script result at stack index `idx` as a reply. `resp3_script`: the script called `redis.setresp(3)`
/// (booleans then become RESP booleans instead of `:1` / nil).
///
/// # Safety
/// `idx` is a valid absolute index of `state`.
pub unsafe fn write_reply(state: *mut lua_State, idx: c_int, out: &mut Reply, resp3_script: bool) {
    write_value(state, idx, out, resp3_script, 0)
}

unsafe fn write_value(
    state: *mut lua_State,
    idx: c_int,
    out: &mut Reply,
    resp3_script: bool,
    depth: usize,
) {
    match ffi::lua_type(state, idx) {
        ffi::LUA_TSTRING => out.bulk(str_at(state, idx)),
        ffi::LUA_TNUMBER => out.int(truncate(ffi::lua_tonumber(state, idx))),
        ffi::LUA_TBOOLEAN => match (resp3_script, ffi::lua_toboolean(state, idx) != 0) {
            (false, true) => out.int(1),
            (false, false) => out.null(),
            (true, b) => out.boolean(b),
        },
        ffi::LUA_TTABLE if depth >= MAX_REPLY_DEPTH || ffi::lua_checkstack(state, 4) == 0 => {
            out.error("ERR reached lua stack limit")
        }
        ffi::LUA_TTABLE => write_table(state, idx, out, resp3_script, depth),
        _ => out.null(),
    }
}

/// C's `(long long)` of a double on x86-64: out of range and NaN give `i64::MIN`.
fn truncate(n: f64) -> i64 {
    // 2^63 is exactly representable; every double in [-2^63, 2^63) converts.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Pushes `t[key]` (raw) for the table at `t` and returns its type.
unsafe fn field(state: *mut lua_State, t: c_int, key: &[u8]) -> c_int {
    push_bytes(state, key);
    ffi::lua_rawget(state, t)
}

unsafe fn write_table(
    state: *mut lua_State,
    t: c_int,
    out: &mut Reply,
    resp3_script: bool,
    depth: usize,
) {
    let top = ffi::lua_gettop(state);
    let done = |state| ffi::lua_settop(state, top);
    if field(state, t, b"err") == ffi::LUA_TSTRING {
        // The code and message already ("ERR x"), as bytes: Redis formats it with %s (up to a NUL) and trims the
        // line breaks at its end before the others become spaces.
        let text = crate::cmd::args::c_str(str_at(state, -1));
        let end = text.len()
            - text
                .iter()
                .rev()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
        out.error_bytes(&text[..end]);
        return done(state);
    }
    ffi::lua_settop(state, top);
    if field(state, t, b"ok") == ffi::LUA_TSTRING {
        out.simple_bytes(crate::cmd::args::c_str(str_at(state, -1)));
        return done(state);
    }
    ffi::lua_settop(state, top);
    if field(state, t, b"double") == ffi::LUA_TNUMBER {
        out.double(ffi::lua_tonumber(state, -1));
        return done(state);
    }
    ffi::lua_settop(state, top);
    if field(state, t, b"big_number") == ffi::LUA_TSTRING {
        let digits: Vec<u8> = str_at(state, -1)
            .iter()
            .map(|&b| crate::protocol::reply::one_line(b))
            .collect();
        big_number(out, &digits);
        return done(state);
    }
    ffi::lua_settop(state, top);
    if field(state, t, b"verbatim_string") == ffi::LUA_TTABLE
        && field(state, top + 1, b"format") == ffi::LUA_TSTRING
        && field(state, top + 1, b"string") == ffi::LUA_TSTRING
    {
        out.verbatim_as(
            crate::cmd::args::c_str(str_at(state, -2)),
            str_at(state, -1),
        );
        return done(state);
    }
    ffi::lua_settop(state, top);
    if field(state, t, b"map") == ffi::LUA_TTABLE {
        write_entries(state, top + 1, out, resp3_script, depth, true);
        return done(state);
    }
    ffi::lua_settop(state, top);
    if field(state, t, b"set") == ffi::LUA_TTABLE {
        write_entries(state, top + 1, out, resp3_script, depth, false);
        return done(state);
    }
    ffi::lua_settop(state, top);
    // The array part, up to the first nil.
    let mut len = 0;
    loop {
        ffi::lua_rawgeti_(state, t, len + 1);
        let nil = ffi::lua_type(state, -1) == ffi::LUA_TNIL;
        ffi::lua_settop(state, top);
        if nil {
            break;
        }
        len += 1;
    }
    out.array(len as usize);
    for i in 1..=len {
        ffi::lua_rawgeti_(state, t, i);
        write_value(state, top + 1, out, resp3_script, depth + 1);
        ffi::lua_settop(state, top);
    }
}

/// The table at `t`, the top of the stack, as a map (its keys and values) or a set (its keys).
unsafe fn write_entries(
    state: *mut lua_State,
    t: c_int,
    out: &mut Reply,
    resp3_script: bool,
    depth: usize,
    map: bool,
) {
    let n = pair_count(state, t);
    if map {
        out.map(n)
    } else {
        out.set(n)
    }
    ffi::lua_pushnil(state);
    while ffi::lua_next(state, t) != 0 {
        write_value(state, t + 1, out, resp3_script, depth + 1);
        if map {
            write_value(state, t + 2, out, resp3_script, depth + 1);
        }
        ffi::lua_settop(state, t + 1);
    }
}

/// Number of entries of the table at `t`.
unsafe fn pair_count(state: *mut lua_State, t: c_int) -> usize {
    let mut n = 0;
    ffi::lua_pushnil(state);
    while ffi::lua_next(state, t) != 0 {
        ffi::lua_pop(state, 1);
        n += 1;
    }
    n
}

/// A big number: `(` in RESP3, a bulk string in RESP2.
fn big_number(out: &mut Reply, s: &[u8]) {
    if out.resp3() {
        out.raw(&[b"(", s, b"\r\n"].concat());
    } else {
        out.bulk(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_of(lua: &Lua, code: &str, resp3_client: bool, resp3_script: bool) -> String {
        let v: Value = lua.load(code).eval().unwrap();
        let mut out = Reply::scratch(resp3_client);
        // SAFETY: the value is on top of the stack while the reply is written.
        unsafe {
            lua.exec_raw::<()>(v, |state| {
                write_reply(state, ffi::lua_gettop(state), &mut out, resp3_script)
            })
            .unwrap();
        }
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    #[test]
    fn lua_values_become_redis_replies() {
        let lua = Lua::new();
        let r = |code: &str| reply_of(&lua, code, false, false);
        assert_eq!(r("return 3.99"), ":3\r\n");
        assert_eq!(r("return -3.99"), ":-3\r\n");
        assert_eq!(r("return 1e20"), ":-9223372036854775808\r\n");
        assert_eq!(r("return 'abc'"), "$3\r\nabc\r\n");
        assert_eq!(r("return true"), ":1\r\n");
        assert_eq!(r("return false"), "$-1\r\n");
        assert_eq!(r("return nil"), "$-1\r\n");
        assert_eq!(
            r("return {1,2,3.7,'a',nil,5}"),
            "*4\r\n:1\r\n:2\r\n:3\r\n$1\r\na\r\n"
        );
        assert_eq!(r("return {a=1}"), "*0\r\n");
        assert_eq!(r("return {ok=1}"), "*0\r\n");
        assert_eq!(
            r("return {true,false,{ok='s'},{err='e'}}"),
            "*4\r\n:1\r\n$-1\r\n+s\r\n-e\r\n"
        );
        assert_eq!(r("return {err='-MY boom'}"), "--MY boom\r\n");
        assert_eq!(r("return {ok='a\\r\\nb'}"), "+a  b\r\n");
        assert_eq!(r("return {double=3.5}"), "$3\r\n3.5\r\n");
        assert_eq!(r("return {map={a=1}}"), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(r("return {set={a=true}}"), "*1\r\n$1\r\na\r\n");
        assert_eq!(r("return {big_number='123'}"), "$3\r\n123\r\n");
        assert_eq!(
            r("return {verbatim_string={format='txt',string='hi'}}"),
            "$2\r\nhi\r\n"
        );
        // A table holding itself ends with an error instead of exhausting the stack.
        let deep = r("local t = {} t[1] = t return t");
        assert!(deep.ends_with("-ERR reached lua stack limit\r\n"));
    }

    #[test]
    fn resp3_scripts_send_booleans_and_resp3_clients_get_resp3_types() {
        let lua = Lua::new();
        assert_eq!(reply_of(&lua, "return true", false, true), ":1\r\n");
        assert_eq!(reply_of(&lua, "return false", false, true), ":0\r\n");
        assert_eq!(reply_of(&lua, "return false", true, true), "#f\r\n");
        assert_eq!(reply_of(&lua, "return nil", true, false), "_\r\n");
        assert_eq!(
            reply_of(&lua, "return {map={a=1}}", true, true),
            "%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            reply_of(&lua, "return {double=1.5}", true, true),
            ",1.5\r\n"
        );
        assert_eq!(
            reply_of(&lua, "return {set={x=true}}", true, true),
            "~1\r\n$1\r\nx\r\n"
        );
        assert_eq!(
            reply_of(&lua, "return {big_number='9'}", true, true),
            "(9\r\n"
        );
    }

    #[test]
    fn replies_become_lua_values() {
        let lua = Lua::new();
        // The Lua value of a reply, or its error table.
        let conv = |bytes: &[u8]| {
            let mut failed = false;
            // SAFETY: push_reply pushes one value.
            let v: Value =
                unsafe { lua.exec_raw((), |state| failed = push_reply(state, bytes)) }.unwrap();
            match v {
                Value::Table(t) if failed => Err(t),
                v if !failed => Ok(v),
                other => panic!("an error that is not a table: {other:?}"),
            }
        };
        // Both push_reply's direct reading of one-line replies and the frame path (a reply followed by nothing is
        // read directly; inside an array it goes through push_frame).
        let check = |bytes: &[u8], expr: &str| {
            let mut nested = b"*1\r\n".to_vec();
            nested.extend_from_slice(bytes);
            let direct = conv(bytes).unwrap();
            let framed = match conv(&nested).unwrap() {
                Value::Table(t) => t.raw_get::<Value>(1).unwrap(),
                other => panic!("not a table: {other:?}"),
            };
            for v in [direct, framed] {
                lua.globals().set("v", v).unwrap();
                let ok: bool = lua.load(expr).eval().unwrap();
                assert!(ok, "{expr} for {:?}", String::from_utf8_lossy(bytes));
            }
        };
        check(b":5\r\n", "v == 5");
        check(b"$2\r\nab\r\n", "v == 'ab'");
        check(b"$4\r\na\r\nb\r\n", "v == 'a\\r\\nb'");
        check(b"$0\r\n\r\n", "v == ''");
        check(b":-7\r\n", "v == -7");
        check(b"$-1\r\n", "v == false");
        check(b"*-1\r\n", "v == false");
        check(b"_\r\n", "v == nil");
        check(b"+OK\r\n", "v.ok == 'OK'");
        check(
            b"*2\r\n:1\r\n*1\r\n$1\r\nx\r\n",
            "v[1] == 1 and v[2][1] == 'x'",
        );
        check(b"%1\r\n$1\r\nk\r\n:2\r\n", "v.map.k == 2");
        check(b"~1\r\n$1\r\nm\r\n", "v.set.m == true");
        check(b",2.5\r\n", "v.double == 2.5");
        check(b"#t\r\n", "v == true");
        check(b"(12\r\n", "v.big_number == '12'");
        check(
            b"=7\r\ntxt:abc\r\n",
            "v.verbatim_string.format == 'txt' and v.verbatim_string.string == 'abc'",
        );
        let err = conv(b"-WRONGTYPE Operation against a key\r\n").unwrap_err();
        assert_eq!(
            err.get::<String>("err").unwrap(),
            "WRONGTYPE Operation against a key"
        );
        assert!(err.get::<bool>("ignore_error_stats_update").unwrap());
    }

    #[test]
    fn error_tables_follow_lua_push_error_buff() {
        let lua = Lua::new();
        let e = |s: &str| {
            error_table(&lua, s.as_bytes())
                .unwrap()
                .get::<String>("err")
                .unwrap()
        };
        assert_eq!(e("boom"), "ERR boom");
        assert_eq!(e("-x y"), "x y");
        assert_eq!(e("-NOSPACE"), "ERR NOSPACE");
        assert_eq!(e("-ERR trailing\r\n"), "ERR trailing");
    }

    #[test]
    fn numbers_print_like_lua() {
        assert_eq!(format_g14(1.5), "1.5");
        assert_eq!(format_g14(3.0), "3");
        assert_eq!(format_g14(0.1), "0.1");
        assert_eq!(format_g14(1e20), "1e+20");
        assert_eq!(format_g14(12345678901234567890.0), "1.2345678901235e+19");
        assert_eq!(format_g14(0.0001), "0.0001");
        assert_eq!(format_g14(0.00001), "1e-05");
        assert_eq!(format_g14(-2.5), "-2.5");
        assert_eq!(format_g14(f64::INFINITY), "inf");
    }

    /// Redis 7.2's `luaArgsToRedisArgv` (7.0 wrote `%.17g`: 0.10000000000000001, -0, 4.6116860184273879e+18).
    #[test]
    fn call_arguments_keep_every_digit_as_redis_7_2_writes_them() {
        let text = argument_number_text;
        assert_eq!(text(0.1), "0.1");
        assert_eq!(text(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(text(-0.0), "0");
        assert_eq!(text(3.0), "3");
        assert_eq!(text(2f64.powi(62)), "4611686018427387904");
        assert_eq!(text(2f64.powi(63)), "9223372036854776000");
        assert_eq!(text(1e20), "1e+20");
        assert_eq!(text(1e-7), "1e-7");
        assert_eq!(text(f64::INFINITY), "inf");
        assert_eq!(text(-f64::NAN), "-nan");
        assert_eq!(text(-12.0), "-12");
    }
}
