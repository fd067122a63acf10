//! `cmsgpack`: MessagePack pack/unpack as lua-cmsgpack 0.4 does it (what BullMQ's scripts use).
//!
//! Packing: integral numbers take the smallest integer form, other numbers float32 when exact else float64,
//! strings the str forms, tables an array when their keys are exactly 1..n, else a map; nesting past 16 levels and
//! unsupported types pack as nil. `unpack` returns every value in the string; `unpack_one` and `unpack_limit` decode
//! from an offset up to a count and return the next offset first.

use mlua::{Lua, MultiValue, Table, Value};

use super::{arg_error, check_bytes, check_number, positioned};

const MAX_NESTING: usize = 16;

/// Builds the `cmsgpack` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                // luaL_argerror(L, 0, ...) in lua-cmsgpack.
                return Err(arg_error(lua, 0, "pack", "MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in &args {
                pack(v, &mut out, 0);
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let args: Vec<_> = args.into_iter().collect();
            unpack_full(lua, &args, "unpack", 0, 0)
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let args: Vec<_> = args.into_iter().collect();
            let offset = opt_integer(lua, &args, 2, "unpack_one")?;
            unpack_full(lua, &args, "unpack_one", 1, offset)
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let args: Vec<_> = args.into_iter().collect();
            let limit = check_number(lua, &args, 2, "unpack_limit")? as i64;
            let offset = opt_integer(lua, &args, 3, "unpack_limit")?;
            unpack_full(lua, &args, "unpack_limit", limit, offset)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// `luaL_optinteger`: absent or nil gives 0, else a number truncated to an integer.
fn opt_integer(lua: &Lua, args: &[Value], n: usize, func: &str) -> mlua::Result<i64> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(0),
        Some(_) => Ok(check_number(lua, args, n, func)? as i64),
    }
}

/// lua-cmsgpack's `mp_unpack_full`: decodes up to `limit` values from byte `offset` of argument 1. With neither a
/// limit nor an offset it decodes everything and returns only the values; otherwise the offset of the next value
/// (-1 once the input is exhausted) comes first.
fn unpack_full(
    lua: &Lua,
    args: &[Value],
    func: &str,
    limit: i64,
    offset: i64,
) -> mlua::Result<MultiValue> {
    let data = check_bytes(lua, args, 1, func)?;
    let len = data.len();
    if offset < 0 || limit < 0 {
        // lua-cmsgpack prints the input length where it says "limit".
        return Err(positioned(
            lua,
            format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            ),
        ));
    }
    if offset as u64 > len as u64 {
        return Err(positioned(
            lua,
            format!(
                "Start offset {} greater than input length {}.",
                offset as i32, len as i32
            ),
        ));
    }
    let decode_all = limit == 0 && offset == 0;
    let mut d = Unpacker {
        lua,
        s: &data,
        pos: offset as usize,
    };
    let mut values = Vec::new();
    while d.pos < len && (decode_all || (values.len() as i64) < limit) {
        values.push(d.value(0)?);
    }
    if !decode_all {
        let next = if d.pos == len { -1 } else { d.pos as i64 };
        values.insert(0, Value::Integer(next));
    }
    Ok(MultiValue::from_iter(values))
}

/// 2^63, exactly.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

fn pack(v: &Value, out: &mut Vec<u8>, level: usize) {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => pack_int(*i, out),
        Value::Number(n) => {
            // An integer when C's (int64_t) cast gives it back: 2^63 is not one (it packs as a float).
            if (-TWO_63..TWO_63).contains(n) && n.trunc() == *n {
                pack_int(*n as i64, out)
            } else if (*n as f32) as f64 == *n {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if level < MAX_NESTING => match array_len(t) {
            Some(n) => {
                header(out, n, 0x90, 0xdc);
                for i in 1..=n {
                    pack(&t.raw_get::<Value>(i).unwrap_or(Value::Nil), out, level + 1);
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> = t.pairs().filter_map(Result::ok).collect();
                header(out, pairs.len(), 0x80, 0xde);
                for (k, v) in &pairs {
                    pack(k, out, level + 1);
                    pack(v, out, level + 1);
                }
            }
        },
        _ => out.push(0xc0),
    }
}

/// An array or map header: fix form under 16 elements, else the 16- or 32-bit form (`base16`, `base16 + 1`).
fn header(out: &mut Vec<u8>, n: usize, fix: u8, base16: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(base16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(base16 + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u <= 0x7f {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// lua-cmsgpack's `table_is_an_array`: `Some(n)` when the keys are exactly the integers 1..n.
fn array_len(t: &Table) -> Option<usize> {
    super::integer_keys(t).and_then(|(max, count)| (max == count).then_some(max))
}

struct Unpacker<'l, 's> {
    lua: &'l Lua,
    s: &'s [u8],
    pos: usize,
}

impl Unpacker<'_, '_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.s.len());
        let Some(end) = end else {
            return Err(positioned(self.lua, "Missing bytes in input."));
        };
        let b = &self.s[self.pos..end];
        self.pos = end;
        Ok(b)
    }
    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | b as u64))
    }
    fn int(&mut self, n: usize) -> mlua::Result<i64> {
        let u = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(((u << shift) as i64) >> shift)
    }
    fn string(&mut self, n: usize) -> mlua::Result<Value> {
        let b = self.take(n)?.to_vec();
        Ok(Value::String(self.lua.create_string(&b)?))
    }
    fn array(&mut self, n: usize, level: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        for i in 1..=n {
            t.raw_set(i, self.value(level + 1)?)?;
        }
        Ok(Value::Table(t))
    }
    fn map(&mut self, n: usize, level: usize) -> mlua::Result<Value> {
        let t = self.lua.create_table()?;
        for _ in 0..n {
            let k = self.value(level + 1)?;
            let v = self.value(level + 1)?;
            // A nil (or NaN) key fails as Lua's lua_settable does in Redis: "table index is nil".
            t.raw_set(k, v)?;
        }
        Ok(Value::Table(t))
    }
    fn value(&mut self, level: usize) -> mlua::Result<Value> {
        if level > 1000 {
            return Err(positioned(self.lua, "Bad data format in input."));
        }
        let c = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match c {
            0x00..=0x7f => num(c as f64),
            0xe0..=0xff => num((c as i8) as f64),
            0x80..=0x8f => self.map((c & 0x0f) as usize, level),
            0x90..=0x9f => self.array((c & 0x0f) as usize, level),
            0xa0..=0xbf => self.string((c & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            // Redis's lua_cmsgpack predates the bin types (0xc4-0xc6): they are bad data there.
            0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(n)
            }
            0xda => {
                let n = self.uint(2)? as usize;
                self.string(n)
            }
            0xdb => {
                let n = self.uint(4)? as usize;
                self.string(n)
            }
            0xca => {
                let b = self.take(4)?;
                num(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)
            }
            0xcb => num(f64::from_bits(self.uint(8)?)),
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            // Read into an int64_t, as Redis does: 0xff.. is -1.
            0xcf => num(self.uint(8)? as i64 as f64),
            0xd0 => num(self.int(1)? as f64),
            0xd1 => num(self.int(2)? as f64),
            0xd2 => num(self.int(4)? as f64),
            0xd3 => num(self.int(8)? as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(n, level)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(n, level)
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(n, level)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(n, level)
            }
            _ => Err(positioned(self.lua, "Bad data format in input.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run, test_lua};

    #[test]
    fn pack_without_input_is_an_argument_0_error() {
        let lua = test_lua();
        assert!(run(
            &lua,
            "local ok, e = pcall(cmsgpack.pack) return tostring(e)"
        )
        .contains("bad argument #0 to '?' (MessagePack pack needs input.)"));
        assert!(run(&lua, "local p = cmsgpack.pack return p()")
            .contains("bad argument #0 to 'p' (MessagePack pack needs input.)"));
    }

    #[test]
    fn unpack_one_and_limit_return_the_next_offset_first() {
        let lua = test_lua();
        let all = |code: &str| run(&lua, &format!("return table.concat({{{code}}}, ',')"));
        assert_eq!(all("cmsgpack.unpack_one(cmsgpack.pack(1, 2))"), "1,1");
        assert_eq!(all("cmsgpack.unpack_one(cmsgpack.pack(1, 2), 1)"), "-1,2");
        assert_eq!(
            all("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)"),
            "2,1,2"
        );
        assert_eq!(
            all("cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0)"),
            "1,2,3"
        );
        assert_eq!(all("cmsgpack.unpack_one('')"), "-1");
    }

    #[test]
    fn unpack_one_rejects_bad_offsets_with_lua_cmsgpack_texts() {
        let lua = test_lua();
        assert!(run(
            &lua,
            "return cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), -1)"
        )
        .contains("Invalid request to unpack with offset of -1 and limit of 3."));
        assert!(run(
            &lua,
            "return cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 4)"
        )
        .contains("Start offset 4 greater than input length 3."));
        assert!(
            run(&lua, "return cmsgpack.unpack_one(string.char(0xcd, 1))")
                .contains("Missing bytes in input.")
        );
    }
}
