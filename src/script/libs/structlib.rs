//! `struct`: Roberto Ierusalimschy's binary pack/unpack library, as Redis embeds it.
//!
//! Formats: `<` `>` `=` endianness, `!n` alignment, `x` padding, `b/B` `h/H` `i/I[n]` `l/L` `T` integers, `f` `d`
//! floats, `s` zero-terminated strings, `cn` fixed strings (`c0`: the length is the previous value).

use mlua::{Lua, MultiValue, Table, Value};

use super::{arg_error, check_bytes, check_number};

/// Largest integer size supported (Redis's limit is 32; sizes past 8 bytes are not needed by real scripts).
const MAX_INT: usize = 8;

#[derive(Clone, Copy)]
enum Item {
    Pad,
    Int { size: usize, signed: bool },
    Float,
    Double,
    Zstr,
    Chars(usize),
}

struct Format<'f> {
    f: &'f [u8],
    pos: usize,
    little: bool,
    align: usize,
}

impl<'f> Format<'f> {
    fn new(f: &'f [u8]) -> Self {
        Format {
            f,
            pos: 0,
            little: true,
            align: 1,
        }
    }

    fn number(&mut self, default: usize) -> usize {
        let start = self.pos;
        while self.pos < self.f.len() && self.f[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        std::str::from_utf8(&self.f[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    /// The next item (after applying any endianness/alignment options), or `None` at the end.
    fn next(&mut self, lua: &Lua, func: &str) -> mlua::Result<Option<Item>> {
        loop {
            let Some(&c) = self.f.get(self.pos) else {
                return Ok(None);
            };
            self.pos += 1;
            let int = |size, signed| Ok(Some(Item::Int { size, signed }));
            return match c {
                b' ' => continue,
                b'<' => {
                    self.little = true;
                    continue;
                }
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'=' => {
                    self.little = cfg!(target_endian = "little");
                    continue;
                }
                b'!' => {
                    self.align = self.number(8);
                    continue;
                }
                b'x' => Ok(Some(Item::Pad)),
                b'b' => int(1, true),
                b'B' => int(1, false),
                b'h' => int(2, true),
                b'H' => int(2, false),
                b'l' => int(8, true),
                b'L' | b'T' => int(8, false),
                b'i' | b'I' => {
                    let size = self.number(4);
                    if size > MAX_INT {
                        return Err(arg_error(
                            lua,
                            1,
                            func,
                            &format!("integral size {size} is larger than limit of {MAX_INT}"),
                        ));
                    }
                    int(size, c == b'i')
                }
                b'f' => Ok(Some(Item::Float)),
                b'd' => Ok(Some(Item::Double)),
                b's' => Ok(Some(Item::Zstr)),
                b'c' => Ok(Some(Item::Chars(self.number(1)))),
                other => Err(arg_error(
                    lua,
                    1,
                    func,
                    &format!("invalid format option '{}'", other as char),
                )),
            };
        }
    }

    /// Padding before an item of `size` bytes at offset `len`.
    fn padding(&self, item: Item, len: usize) -> usize {
        let size = match item {
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            _ => return 0,
        };
        if size <= 1 {
            return 0;
        }
        let align = size.min(self.align);
        if !align.is_power_of_two() {
            return 0;
        }
        (align - (len & (align - 1))) & (align - 1)
    }
}

/// Builds the `struct` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| pack(lua, args.into_iter().collect()))?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| unpack(lua, args.into_iter().collect()))?,
    )?;
    t.set(
        "size",
        lua.create_function(|lua, args: MultiValue| size(lua, args.into_iter().collect()))?,
    )?;
    Ok(t)
}

fn put_int(out: &mut Vec<u8>, v: u64, size: usize, little: bool) {
    let bytes = v.to_le_bytes();
    let mut b = bytes[..size].to_vec();
    if !little {
        b.reverse();
    }
    out.extend_from_slice(&b);
}

fn pack(lua: &Lua, mut args: Vec<Value>) -> mlua::Result<mlua::String> {
    // lua_struct pushes a nil mark after the arguments, so a missing one is reported as "got nil".
    args.push(Value::Nil);
    let fmt = check_bytes(lua, &args, 1, "pack")?;
    let mut f = Format::new(&fmt);
    let mut out = Vec::new();
    let mut arg = 2;
    while let Some(item) = f.next(lua, "pack")? {
        out.resize(out.len() + f.padding(item, out.len()), 0);
        match item {
            Item::Pad => out.push(0),
            Item::Int { size, signed } => {
                let n = check_number(lua, &args, arg, "pack")?;
                let v = if signed { n as i64 as u64 } else { n as u64 };
                put_int(&mut out, v, size, f.little);
                arg += 1;
            }
            Item::Float | Item::Double => {
                let n = check_number(lua, &args, arg, "pack")?;
                let mut b = match item {
                    Item::Float => (n as f32).to_le_bytes().to_vec(),
                    _ => n.to_le_bytes().to_vec(),
                };
                if !f.little {
                    b.reverse();
                }
                out.extend_from_slice(&b);
                arg += 1;
            }
            Item::Zstr => {
                let s = check_bytes(lua, &args, arg, "pack")?;
                out.extend_from_slice(&s);
                out.push(0);
                arg += 1;
            }
            Item::Chars(n) => {
                let s = check_bytes(lua, &args, arg, "pack")?;
                let n = if n == 0 { s.len() } else { n };
                if s.len() < n {
                    return Err(arg_error(lua, arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..n]);
                arg += 1;
            }
        }
    }
    lua.create_string(&out)
}

fn unpack(lua: &Lua, args: Vec<Value>) -> mlua::Result<MultiValue> {
    let fmt = check_bytes(lua, &args, 1, "unpack")?;
    let data = check_bytes(lua, &args, 2, "unpack")?;
    let mut pos = match args.get(2) {
        Some(v) if !v.is_nil() => {
            (check_number(lua, &args, 3, "unpack")? as i64 - 1).max(0) as usize
        }
        _ => 0,
    };
    let mut f = Format::new(&fmt);
    let mut values: Vec<Value> = Vec::new();
    let short = || arg_error(lua, 2, "unpack", "data string too short");
    while let Some(item) = f.next(lua, "unpack")? {
        pos += f.padding(item, pos);
        let need = |size: usize| {
            if pos + size <= data.len() {
                Ok(&data[pos..pos + size])
            } else {
                Err(short())
            }
        };
        match item {
            Item::Pad => pos += 1,
            Item::Int { size, signed } => {
                let mut b = need(size)?.to_vec();
                if !f.little {
                    b.reverse();
                }
                let u = b.iter().rev().fold(0u64, |acc, &x| acc << 8 | x as u64);
                let v = if signed && size < 8 {
                    let shift = 64 - 8 * size as u32;
                    (((u << shift) as i64) >> shift) as f64
                } else if signed {
                    u as i64 as f64
                } else {
                    u as f64
                };
                values.push(Value::Number(v));
                pos += size;
            }
            Item::Float | Item::Double => {
                let size = if matches!(item, Item::Float) { 4 } else { 8 };
                let mut b = need(size)?.to_vec();
                if !f.little {
                    b.reverse();
                }
                let v = match b.as_slice() {
                    [a, b, c, d] => f32::from_le_bytes([*a, *b, *c, *d]) as f64,
                    b => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
                };
                values.push(Value::Number(v));
                pos += size;
            }
            Item::Zstr => {
                let rest = data.get(pos..).unwrap_or(&[]);
                let Some(end) = rest.iter().position(|&b| b == 0) else {
                    return Err(arg_error(lua, 2, "unpack", "unfinished string in data"));
                };
                values.push(Value::String(lua.create_string(&rest[..end])?));
                pos += end + 1;
            }
            Item::Chars(n) => {
                let n = if n == 0 {
                    match values.pop() {
                        Some(v) => super::super::convert::as_number(&v).unwrap_or(0.0) as usize,
                        None => {
                            return Err(arg_error(
                                lua,
                                2,
                                "unpack",
                                "format 'c0' needs a previous size",
                            ))
                        }
                    }
                } else {
                    n
                };
                let s = need(n)?;
                values.push(Value::String(lua.create_string(s)?));
                pos += n;
            }
        }
    }
    values.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_iter(values))
}

fn size(lua: &Lua, args: Vec<Value>) -> mlua::Result<f64> {
    let fmt = check_bytes(lua, &args, 1, "size")?;
    let mut f = Format::new(&fmt);
    let mut len = 0usize;
    while let Some(item) = f.next(lua, "size")? {
        len += f.padding(item, len);
        len += match item {
            Item::Pad => 1,
            Item::Int { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            Item::Chars(n) if n > 0 => n,
            Item::Zstr | Item::Chars(_) => {
                return Err(arg_error(
                    lua,
                    1,
                    "size",
                    "options 'c0' - 's' have undefined sizes",
                ))
            }
        };
    }
    Ok(len as f64)
}
