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
pub fn argument_number_text(v: &Value) -> String {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        _ => return String::new(),
    };
    let limit = (i64::MAX / 2) as f64;
    if n.is_nan() {
        // fpconv_dtoa keeps a NaN's sign (0/0 is -nan on x86), unlike the reply formatter.
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if (-limit..=limit).contains(&n) && n == n.trunc() {
        (n as i64).to_string()
    } else {
        crate::protocol::reply::format_double(n)
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

/// Redis's `luaPushErrorBuff`: `-CODE message` keeps its code, anything else gets `ERR`; the `{err=...}` table.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
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
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&full)?)?;
    Ok(t)
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

/// A reply read back from a command run by `redis.call`: the Lua value, or for an error reply its `{err=...}` table.
pub fn frame_to_lua(lua: &Lua, frame: Frame) -> mlua::Result<Result<Value, Table>> {
    if let Frame::Error(e) = frame {
        return reply_error(lua, &e).map(Err);
    }
    to_lua(lua, frame).map(Ok)
}

/// [`frame_to_lua`] of the single reply in `buf`. The one-value replies most commands give (integer, status, bulk
/// string, nil) are read straight from the bytes; anything else goes through [`decode`].
pub fn reply_to_lua(lua: &Lua, buf: &[u8]) -> mlua::Result<Result<Value, Table>> {
    // The first line, when it is the whole reply or a bulk string's header.
    let line_end = buf.iter().position(|&b| b == b'\r');
    if let (Some(&tag), Some(end)) = (buf.first(), line_end) {
        let line = &buf[1..end];
        let whole = end + 2 == buf.len();
        match tag {
            b':' if whole => {
                if let Some(i) = crate::cmd::args::parse_i64(line) {
                    return Ok(Ok(Value::Number(i as f64)));
                }
            }
            b'+' if whole => {
                // A status line is text: pushed as `str`, it skips mlua's intermediate string reference.
                if let Ok(status) = std::str::from_utf8(line) {
                    return Ok(Ok(Value::Table(lua.create_table_from([("ok", status)])?)));
                }
            }
            b'$' if line == b"-1" && whole => return Ok(Ok(Value::Boolean(false))),
            b'$' => {
                let len = crate::cmd::args::parse_i64(line).and_then(|n| usize::try_from(n).ok());
                if let Some(body) = len.and_then(|n| buf.get(end + 2..end + 2 + n)) {
                    if end + 2 + body.len() + 2 == buf.len() {
                        return Ok(Ok(Value::String(lua.create_string(body)?)));
                    }
                }
            }
            _ => {}
        }
    }
    match decode(buf) {
        Ok((frame, _)) => frame_to_lua(lua, frame),
        Err(e) => Ok(Err(error_table(
            lua,
            format!("internal error decoding a reply: {e}").as_bytes(),
        )?)),
    }
}

fn reply_error(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let mut dashed = Vec::with_capacity(text.len() + 1);
    dashed.push(b'-');
    dashed.extend_from_slice(text);
    let t = error_table(lua, &dashed)?;
    // The error was counted when the command failed (Redis marks it so).
    t.raw_set("ignore_error_stats_update", true)?;
    Ok(t)
}

fn to_lua(lua: &Lua, frame: Frame) -> mlua::Result<Value> {
    let wrap = |key: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table_with_capacity(0, 1)?;
        t.raw_set(key, v)?;
        Ok(Value::Table(t))
    };
    Ok(match frame {
        Frame::Int(i) => Value::Number(i as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(&b)?),
        Frame::NullBulk | Frame::NullArray => Value::Boolean(false),
        Frame::Null => Value::Nil,
        Frame::Simple(s) => wrap("ok", Value::String(lua.create_string(&s)?))?,
        Frame::Error(e) => Value::Table(reply_error(lua, &e)?),
        Frame::Array(items) | Frame::Push(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Frame::Map(pairs) => {
            let t = lua.create_table_with_capacity(0, pairs.len())?;
            for (k, v) in pairs {
                t.raw_set(to_lua(lua, k)?, to_lua(lua, v)?)?;
            }
            wrap("map", Value::Table(t))?
        }
        Frame::Set(items) => {
            let t = lua.create_table_with_capacity(0, items.len())?;
            for item in items {
                t.raw_set(to_lua(lua, item)?, true)?;
            }
            wrap("set", Value::Table(t))?
        }
        Frame::Double(d) => wrap("double", Value::Number(d))?,
        Frame::Boolean(b) => Value::Boolean(b),
        Frame::BigNumber(n) => wrap("big_number", Value::String(lua.create_string(&n)?))?,
        Frame::Verbatim(format, text) => {
            let t = lua.create_table()?;
            t.raw_set("format", lua.create_string(&format)?)?;
            t.raw_set("string", lua.create_string(&text)?)?;
            wrap("verbatim_string", Value::Table(t))?
        }
    })
}

/// Writes a script's result as a reply. `resp3_script`: the script called `redis.setresp(3)` (booleans then
/// become RESP booleans instead of `:1` / nil).
pub fn lua_to_reply(v: &Value, out: &mut Reply, resp3_script: bool) {
    write_value(v, out, resp3_script, 0)
}

fn write_value(v: &Value, out: &mut Reply, resp3_script: bool, depth: usize) {
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(truncate(*n)),
        Value::Boolean(b) => match (resp3_script, b) {
            (false, true) => out.int(1),
            (false, false) => out.null(),
            (true, b) => out.boolean(*b),
        },
        Value::Table(_) if depth >= MAX_REPLY_DEPTH => out.error("ERR reached lua stack limit"),
        Value::Table(t) => write_table(t, out, resp3_script, depth),
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

fn write_table(t: &Table, out: &mut Reply, resp3_script: bool, depth: usize) {
    let field = |k: &str| t.raw_get::<Value>(k).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        let e = e.as_bytes();
        // An error starting with '-' is sent as is; otherwise it is the code and message already ("ERR x").
        let text = String::from_utf8_lossy(&e);
        out.error(&text);
        return;
    }
    if let Value::String(s) = field("ok") {
        match s.to_str() {
            Ok(s) if !s.contains(['\r', '\n']) => out.simple(&s),
            _ => out.simple(&s.to_string_lossy().replace(['\r', '\n'], " ")),
        }
        return;
    }
    match field("double") {
        Value::Number(d) => return out.double(d),
        Value::Integer(i) => return out.double(i as f64),
        _ => {}
    }
    if let Value::String(s) = field("big_number") {
        let s = s.to_string_lossy().replace(['\r', '\n'], " ");
        return big_number(out, &s);
    }
    if let Value::Table(v) = field("verbatim_string") {
        if let (Ok(Value::String(_)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            return out.verbatim(&s.as_bytes());
        }
    }
    if let Value::Table(m) = field("map") {
        let pairs: Vec<(Value, Value)> = m.pairs().filter_map(Result::ok).collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            write_value(k, out, resp3_script, depth + 1);
            write_value(v, out, resp3_script, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field("set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(|p| p.ok().map(|(k, _)| k))
            .collect();
        out.set(keys.len());
        for k in &keys {
            write_value(k, out, resp3_script, depth + 1);
        }
        return;
    }
    let items: Vec<Value> = (1..)
        .map(|i| t.raw_get::<Value>(i).unwrap_or(Value::Nil))
        .take_while(|v| !v.is_nil())
        .collect();
    out.array(items.len());
    for item in &items {
        write_value(item, out, resp3_script, depth + 1);
    }
}

/// A big number: `(` in RESP3, a bulk string in RESP2.
fn big_number(out: &mut Reply, s: &str) {
    if out.resp3() {
        out.raw(format!("({s}\r\n").as_bytes());
    } else {
        out.bulk(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_of(lua: &Lua, code: &str, resp3_client: bool, resp3_script: bool) -> String {
        let v: Value = lua.load(code).eval().unwrap();
        let mut out = Reply::scratch(resp3_client);
        lua_to_reply(&v, &mut out, resp3_script);
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
        let conv = |bytes: &[u8]| {
            let (f, _) = decode(bytes).unwrap();
            frame_to_lua(&lua, f).unwrap()
        };
        // Both the frame path and reply_to_lua's direct reading of one-line replies.
        let check = |bytes: &[u8], expr: &str| {
            for v in [conv(bytes), reply_to_lua(&lua, bytes).unwrap()] {
                lua.globals().set("v", v.unwrap()).unwrap();
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
        let text = |n: f64| argument_number_text(&Value::Number(n));
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
        assert_eq!(argument_number_text(&Value::Integer(-12)), "-12");
    }
}
