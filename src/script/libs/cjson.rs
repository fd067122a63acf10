//! `cjson`: JSON encode/decode with lua-cjson 2.1's rules and messages (as Redis configures it: 14 significant
//! digits, sparse arrays refused past ratio 2 / safe 10, nesting limit 1000, `cjson.null` a NULL light userdata).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::{check_bytes, positioned};
use crate::script::convert::format_g14;

const MAX_DEPTH: usize = 1000;

/// Builds the `cjson` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(positioned(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(lua, &args[0], &mut out, 0)?;
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, args: MultiValue| {
            let args: Vec<_> = args.into_iter().collect();
            if args.len() != 1 {
                return Err(positioned(
                    lua,
                    "bad argument #1 to 'decode' (expected 1 argument)",
                ));
            }
            let text = check_bytes(lua, &args, 1, "decode")?;
            Decoder {
                lua,
                s: &text,
                pos: 0,
                depth: 0,
            }
            .document()
        })?,
    )?;
    t.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn encode(lua: &Lua, v: &Value, out: &mut Vec<u8>, depth: usize) -> mlua::Result<()> {
    let unsupported = |v: &Value| {
        positioned(
            lua,
            format!("Cannot serialise {}: type not supported", v.type_name()),
        )
    };
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // lua-cjson formats every number with `%.14g`, integral ones too (1.2345678901234e+14).
        Value::Integer(i) => out.extend_from_slice(format_g14(*i as f64).as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                return Err(positioned(
                    lua,
                    "Cannot serialise number: must not be NaN or Inf",
                ));
            }
            out.extend_from_slice(format_g14(*n).as_bytes());
        }
        Value::String(s) => escape(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > MAX_DEPTH {
                return Err(positioned(
                    lua,
                    format!("Cannot serialise, excessive nesting ({})", depth + 1),
                ));
            }
            match super::integer_keys(t) {
                Some((max, items)) if max > 0 => {
                    if max > items * 2 && max > 10 {
                        return Err(positioned(
                            lua,
                            "Cannot serialise table: excessively sparse array",
                        ));
                    }
                    out.push(b'[');
                    for i in 1..=max {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(lua, &t.raw_get::<Value>(i)?, out, depth + 1)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, v) = pair?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => escape(&s.as_bytes(), out),
                            Value::Integer(_) | Value::Number(_) => {
                                out.push(b'"');
                                encode(lua, &k, out, depth + 1)?;
                                out.push(b'"');
                            }
                            _ => {
                                return Err(positioned(
                                    lua,
                                    format!(
                                        "Cannot serialise {}: table key must be a number or string",
                                        k.type_name()
                                    ),
                                ))
                            }
                        }
                        out.push(b':');
                        encode(lua, &v, out, depth + 1)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(unsupported(other)),
    }
    Ok(())
}

fn escape(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A token as lua-cjson names it in errors.
#[derive(Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(m) => m,
        }
    }
}

struct Decoder<'l, 's> {
    lua: &'l Lua,
    s: &'s [u8],
    pos: usize,
    depth: usize,
}

impl Decoder<'_, '_> {
    fn document(&mut self) -> mlua::Result<Value> {
        let (tok, at, v) = self.token()?;
        let value = self.value(tok, at, v)?;
        let (tok, at, _) = self.token()?;
        if tok != Tok::End {
            return Err(self.expected("the end", tok, at));
        }
        Ok(value)
    }

    fn expected(&self, what: &str, tok: Tok, at: usize) -> mlua::Error {
        positioned(
            self.lua,
            format!(
                "Expected {what} but found {} at character {}",
                tok.name(),
                at + 1
            ),
        )
    }

    fn value(&mut self, tok: Tok, at: usize, v: Value) -> mlua::Result<Value> {
        match tok {
            Tok::Str | Tok::Num | Tok::Bool(_) | Tok::Null => Ok(v),
            Tok::ObjBegin => self.object(at),
            Tok::ArrBegin => self.array(at),
            _ => Err(self.expected("value", tok, at)),
        }
    }

    fn descend(&mut self, at: usize) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(positioned(
                self.lua,
                format!(
                    "Found too many nested data structures ({}) at character {}",
                    self.depth,
                    at + 1
                ),
            ));
        }
        Ok(())
    }

    fn object(&mut self, at: usize) -> mlua::Result<Value> {
        self.descend(at)?;
        let t = self.lua.create_table()?;
        let (mut tok, mut at, mut v) = self.token()?;
        if tok == Tok::ObjEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            if tok != Tok::Str {
                return Err(self.expected("object key string", tok, at));
            }
            let key = v;
            let (colon, cat, _) = self.token()?;
            if colon != Tok::Colon {
                return Err(self.expected("colon", colon, cat));
            }
            let (vt, vat, vv) = self.token()?;
            let value = self.value(vt, vat, vv)?;
            t.raw_set(key, value)?;
            let (sep, sat, _) = self.token()?;
            match sep {
                Tok::ObjEnd => break,
                Tok::Comma => {}
                _ => return Err(self.expected("comma or object end", sep, sat)),
            }
            (tok, at, v) = self.token()?;
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn array(&mut self, at: usize) -> mlua::Result<Value> {
        self.descend(at)?;
        let t = self.lua.create_table()?;
        let (mut tok, mut at, mut v) = self.token()?;
        if tok == Tok::ArrEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let value = self.value(tok, at, v)?;
            t.raw_set(i, value)?;
            i += 1;
            let (sep, sat, _) = self.token()?;
            match sep {
                Tok::ArrEnd => break,
                Tok::Comma => {}
                _ => return Err(self.expected("comma or array end", sep, sat)),
            }
            (tok, at, v) = self.token()?;
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    /// The next token, where it starts, and its value for strings, numbers, booleans and null.
    fn token(&mut self) -> mlua::Result<(Tok, usize, Value)> {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let at = self.pos;
        let Some(&c) = self.s.get(at) else {
            return Ok((Tok::End, at, Value::Nil));
        };
        let simple = |tok| Ok((tok, at, Value::Nil));
        let lit = |d: &mut Self, word: &[u8], tok: Tok, v: Value| {
            if d.s[at..].starts_with(word) {
                d.pos += word.len();
                Ok((tok, at, v))
            } else {
                Ok((Tok::Error("invalid token"), at, Value::Nil))
            }
        };
        match c {
            b'{' => {
                self.pos += 1;
                simple(Tok::ObjBegin)
            }
            b'}' => {
                self.pos += 1;
                simple(Tok::ObjEnd)
            }
            b'[' => {
                self.pos += 1;
                simple(Tok::ArrBegin)
            }
            b']' => {
                self.pos += 1;
                simple(Tok::ArrEnd)
            }
            b':' => {
                self.pos += 1;
                simple(Tok::Colon)
            }
            b',' => {
                self.pos += 1;
                simple(Tok::Comma)
            }
            b'"' => self.string(at),
            b't' => lit(self, b"true", Tok::Bool(true), Value::Boolean(true)),
            b'f' => lit(self, b"false", Tok::Bool(false), Value::Boolean(false)),
            b'n' => lit(
                self,
                b"null",
                Tok::Null,
                Value::LightUserData(LightUserData(std::ptr::null_mut())),
            ),
            b'-' | b'0'..=b'9' => self.number(at),
            _ => simple(Tok::Error("invalid token")),
        }
    }

    fn number(&mut self, at: usize) -> mlua::Result<(Tok, usize, Value)> {
        let mut end = at;
        while end < self.s.len()
            && matches!(self.s[end], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        {
            end += 1;
        }
        let text = std::str::from_utf8(&self.s[at..end]).unwrap_or("");
        // Like lua-cjson (strtod), leading zeros are accepted.
        let digits = text.trim_start_matches('-');
        match text.parse::<f64>() {
            Ok(n) if digits.starts_with(|c: char| c.is_ascii_digit()) => {
                self.pos = end;
                Ok((Tok::Num, at, Value::Number(n)))
            }
            _ => Ok((Tok::Error("invalid number"), at, Value::Nil)),
        }
    }

    fn string(&mut self, at: usize) -> mlua::Result<(Tok, usize, Value)> {
        let mut out = Vec::new();
        let mut i = at + 1;
        loop {
            let Some(&c) = self.s.get(i) else {
                return Ok((Tok::Error("unexpected end of string"), i, Value::Nil));
            };
            i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(i) else {
                        return Ok((Tok::Error("unexpected end of string"), i, Value::Nil));
                    };
                    i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => match self.unicode(&mut i) {
                            Some(ch) => {
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            }
                            None => {
                                return Ok((
                                    Tok::Error("invalid unicode escape code"),
                                    i - 2,
                                    Value::Nil,
                                ))
                            }
                        },
                        _ => return Ok((Tok::Error("invalid escape code"), i - 2, Value::Nil)),
                    }
                }
                _ => out.push(c),
            }
        }
        self.pos = i;
        Ok((Tok::Str, at, Value::String(self.lua.create_string(&out)?)))
    }

    /// A `\uXXXX` escape (with a following low surrogate when it is a high one); `i` is just after the `u`.
    fn unicode(&self, i: &mut usize) -> Option<char> {
        let hex = |d: &Self, p: usize| -> Option<u32> {
            let h = d.s.get(p..p + 4)?;
            u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
        };
        let first = hex(self, *i)?;
        *i += 4;
        if (0xd800..0xdc00).contains(&first) {
            if self.s.get(*i..*i + 2)? != b"\\u" {
                return None;
            }
            let low = hex(self, *i + 2)?;
            if !(0xdc00..0xe000).contains(&low) {
                return None;
            }
            *i += 6;
            return char::from_u32(0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00));
        }
        char::from_u32(first)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run, test_lua};

    #[test]
    fn encode_formats_integral_numbers_with_14_digits() {
        let lua = test_lua();
        assert_eq!(
            run(&lua, "return cjson.encode(123456789012345)"),
            "1.2345678901234e+14"
        );
        assert_eq!(
            run(&lua, "return cjson.encode({12345678901234})"),
            "[12345678901234]"
        );
    }

    #[test]
    fn encode_names_the_type_of_a_bad_key() {
        let lua = test_lua();
        assert!(run(&lua, "return cjson.encode({[true]=1})")
            .contains("Cannot serialise boolean: table key must be a number or string"));
    }
}
