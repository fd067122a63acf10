//! `struct`: Roberto Ierusalimschy's binary pack/unpack library, as Redis embeds it.
//!
//! Formats: `<` `>` `=` endianness, `!n` alignment, `x` padding, `b/B` `h/H` `i/I[n]` `l/L` `T` integers, `f` `d`
//! floats, `s` zero-terminated strings, `cn` fixed strings (`c0`: the length is the previous value).
//!
//! The code follows `lua_struct.c` step for step (option sizes, alignment, argument numbers, which errors are
//! argument errors), including what its C arithmetic does on x86-64: integers wider than 8 bytes go through a
//! 64-bit value, and out-of-range numbers convert as the C casts do.

use mlua::{Lua, MultiValue, Table, Value};

use super::{arg_error, check_bytes, check_number, positioned};
use crate::script::convert::as_number;

/// `MAXINTSIZE`: the largest `i`/`I` size.
const MAX_INT_SIZE: i64 = 32;
/// `MAXALIGN` on x86-64: the alignment `!` sets without a number.
const MAX_ALIGN: i64 = 8;

/// Endianness and maximum alignment, changed by the control options as the format is read.
struct Header {
    little: bool,
    align: u64,
}

impl Header {
    fn new() -> Self {
        Header {
            little: cfg!(target_endian = "little"),
            align: 1,
        }
    }
}

/// A format string and the read position in it.
struct Format<'f> {
    f: &'f [u8],
    pos: usize,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = self.f.get(self.pos).copied()?;
        self.pos += 1;
        Some(c)
    }

    /// `getnum`: the digits at the read position, or `default` when there are none; past `INT_MAX` an error.
    fn getnum(&mut self, lua: &Lua, default: i64) -> mlua::Result<i64> {
        if !self.f.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i64 = 0;
        while let Some(&d) = self.f.get(self.pos).filter(|d| d.is_ascii_digit()) {
            let d = (d - b'0') as i64;
            if a > i32::MAX as i64 / 10 || a * 10 > i32::MAX as i64 - d {
                return Err(positioned(lua, "integral size overflow"));
            }
            a = a * 10 + d;
            self.pos += 1;
        }
        Ok(a)
    }

    /// `optsize`: the size of option `opt` (reading its number); 0 for options that take no room or are not data.
    fn optsize(&mut self, lua: &Lua, opt: u8) -> mlua::Result<u64> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.getnum(lua, 1)? as u64,
            b'i' | b'I' => {
                let size = self.getnum(lua, 4)?;
                if size > MAX_INT_SIZE {
                    return Err(positioned(
                        lua,
                        format!("integral size {size} is larger than limit of {MAX_INT_SIZE}"),
                    ));
                }
                size as u64
            }
            _ => 0,
        })
    }

    /// `controloptions`: applies ` `, `>`, `<` and `!n`; any other option is an error about argument 1.
    fn control(&mut self, lua: &Lua, opt: u8, h: &mut Header, func: &str) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.getnum(lua, MAX_ALIGN)?;
                if a <= 0 || a & (a - 1) != 0 {
                    return Err(positioned(
                        lua,
                        format!("alignment {a} is not a power of 2"),
                    ));
                }
                h.align = a as u64;
            }
            _ => {
                return Err(arg_error(
                    lua,
                    1,
                    func,
                    &format!("invalid format option '{}'", opt as char),
                ))
            }
        }
        Ok(())
    }
}

/// `gettoalign`: padding before an item of `size` bytes at offset `len` (`size` capped by the alignment; like the
/// C, a size that is not a power of two gives whatever the mask arithmetic gives).
fn gettoalign(len: u64, h: &Header, opt: u8, size: u64) -> u64 {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
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

/// The `Uinttype` (unsigned long) `putinteger` makes of a number: `(Uinttype)(Inttype)n` when negative, else
/// `(Uinttype)n`, with x86-64's conversions (out of range: the "integer indefinite" 2^63, or 0 past 2^64).
fn to_uinttype(n: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if n < 0.0 {
        // Rust saturates below i64::MIN to i64::MIN, the same bits as cvttsd2si's indefinite value.
        n as i64 as u64
    } else if n >= TWO63 {
        let m = n - TWO63;
        if m < TWO63 {
            (m as i64 as u64) ^ (1 << 63)
        } else {
            0
        }
    } else if n.is_nan() {
        1 << 63
    } else {
        n as u64
    }
}

/// `putinteger`: `size` bytes of the 64-bit value (zeros once it has shifted out), in the header's byte order.
fn put_integer(out: &mut Vec<u8>, n: f64, size: usize, little: bool) {
    let mut value = to_uinttype(n);
    let mut buf = vec![0u8; size];
    for i in 0..size {
        let at = if little { i } else { size - 1 - i };
        buf[at] = value as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    out.extend_from_slice(&buf);
}

/// `getinteger`: the bytes shifted into a 64-bit value (bytes past 8 push the first ones out), sign-extended from
/// bit `size * 8 - 1`, a shift count x86 takes modulo 64.
fn get_integer(b: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let mut add = |x: u8| l = (l << 8) | x as u64;
    if little {
        b.iter().rev().for_each(|&x| add(x));
    } else {
        b.iter().for_each(|&x| add(x));
    }
    if !signed {
        return l as f64;
    }
    let shift = ((b.len() as u32) * 8).wrapping_sub(1);
    let mask = u64::MAX.wrapping_shl(shift);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// The bytes of a float or double in the header's byte order.
fn ordered(mut b: Vec<u8>, little: bool) -> Vec<u8> {
    if little != cfg!(target_endian = "little") {
        b.reverse();
    }
    b
}

fn pack(lua: &Lua, mut args: Vec<Value>) -> mlua::Result<mlua::String> {
    let fmt = check_bytes(lua, &args, 1, "pack")?;
    // lua_struct pushes a nil mark after the arguments, so a missing one is reported as "got nil".
    args.push(Value::Nil);
    let mut f = Format { f: &fmt, pos: 0 };
    let mut h = Header::new();
    let mut out = Vec::new();
    let mut arg = 2;
    while let Some(opt) = f.next() {
        let mut size = f.optsize(lua, opt)?;
        let pad = gettoalign(out.len() as u64, &h, opt, size);
        out.resize(out.len() + pad as usize, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                put_integer(&mut out, n, size as usize, h.little);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                out.extend(ordered((n as f32).to_ne_bytes().to_vec(), h.little));
            }
            b'd' => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                out.extend(ordered(n.to_ne_bytes().to_vec(), h.little));
            }
            b'c' | b's' => {
                let s = check_bytes(lua, &args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len() as u64;
                }
                // The C checks after `arg++`, so the error names the next argument.
                if (s.len() as u64) < size {
                    return Err(arg_error(lua, arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size as usize]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => f.control(lua, opt, &mut h, "pack")?,
        }
    }
    lua.create_string(&out)
}

fn unpack(lua: &Lua, args: Vec<Value>) -> mlua::Result<MultiValue> {
    let fmt = check_bytes(lua, &args, 1, "unpack")?;
    let data = check_bytes(lua, &args, 2, "unpack")?;
    let ld = data.len() as u64;
    // `size_t pos = luaL_optinteger(L, 3, 1)`: a negative offset wraps to a huge one.
    let mut pos = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(_) => check_number(lua, &args, 3, "unpack")? as i64 as u64,
    };
    if pos == 0 {
        return Err(arg_error(lua, 3, "unpack", "offset must be 1 or greater"));
    }
    pos -= 1;
    let short = || arg_error(lua, 2, "unpack", "data string too short");
    let fits = |pos: u64, size: u64| size <= ld && pos <= ld - size;
    let mut f = Format { f: &fmt, pos: 0 };
    let mut h = Header::new();
    let mut values: Vec<Value> = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.optsize(lua, opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if !fits(pos, size) {
            return Err(short());
        }
        let at = pos as usize;
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = get_integer(
                    &data[at..at + size as usize],
                    h.little,
                    opt.is_ascii_lowercase(),
                );
                values.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let b = ordered(data[at..at + 4].to_vec(), h.little);
                let n = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                values.push(Value::Number(n as f64));
            }
            b'd' => {
                let b = ordered(data[at..at + 8].to_vec(), h.little);
                let mut raw = [0u8; 8];
                raw.copy_from_slice(&b);
                values.push(Value::Number(f64::from_ne_bytes(raw)));
            }
            b'c' => {
                if size == 0 {
                    // The previous result, when it is a number or a numeric string (`lua_isnumber`).
                    let Some(n) = values.last().and_then(as_number) else {
                        return Err(positioned(lua, "format 'c0' needs a previous size"));
                    };
                    values.pop();
                    size = to_uinttype(n);
                    if !fits(pos, size) {
                        return Err(short());
                    }
                }
                values.push(Value::String(
                    lua.create_string(&data[at..at + size as usize])?,
                ));
            }
            b's' => {
                let Some(end) = data[at..].iter().position(|&b| b == 0) else {
                    return Err(positioned(lua, "unfinished string in data"));
                };
                values.push(Value::String(lua.create_string(&data[at..at + end])?));
                size = end as u64 + 1;
            }
            _ => f.control(lua, opt, &mut h, "unpack")?,
        }
        pos = pos.wrapping_add(size);
    }
    values.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_iter(values))
}

fn size(lua: &Lua, args: Vec<Value>) -> mlua::Result<f64> {
    let fmt = check_bytes(lua, &args, 1, "size")?;
    let mut f = Format { f: &fmt, pos: 0 };
    let mut h = Header::new();
    let mut pos: u64 = 0;
    while let Some(opt) = f.next() {
        let size = f.optsize(lua, opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(arg_error(lua, 1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "size", "option 'c0' has no fixed size"));
        }
        // Letters that are no option are skipped here (the C only checks non-alphanumeric ones).
        if !opt.is_ascii_alphanumeric() {
            f.control(lua, opt, &mut h, "size")?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64 as f64)
}

#[cfg(test)]
mod tests {
    use super::super::{run, test_lua};
    use super::*;

    #[test]
    fn wide_integers_go_through_a_64_bit_value() {
        let mut out = Vec::new();
        put_integer(&mut out, -2.0, 9, true);
        assert_eq!(out, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
        out.clear();
        put_integer(&mut out, -2.0, 9, false);
        assert_eq!(out, [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        // i9: the sign mask shift is 71, taken modulo 64.
        let mut b = [0u8; 9];
        b[0] = 1;
        b[8] = 0x80;
        assert_eq!(get_integer(&b, false, true), -128.0);
        assert_eq!(get_integer(&[0xff; 17], true, true), -1.0);
        assert_eq!(get_integer(&[0xff; 17], true, false), u64::MAX as f64);
        assert_eq!(get_integer(&[], true, true), 0.0);
    }

    #[test]
    fn out_of_range_numbers_convert_as_x86_casts_do() {
        assert_eq!(to_uinttype(2f64.powi(64)), 0);
        assert_eq!(to_uinttype(2f64.powi(63)), 1 << 63);
        assert_eq!(to_uinttype(f64::NAN), 1 << 63);
        assert_eq!(to_uinttype(-1e30), 1 << 63);
        assert_eq!(to_uinttype(-1.0), u64::MAX);
    }

    #[test]
    fn errors_are_numbered_and_worded_like_lua_struct() {
        let lua = test_lua();
        let cases = [
            (
                "struct.pack('i33', 1)",
                "integral size 33 is larger than limit of 32",
            ),
            (
                "struct.size('s')",
                "bad argument #1 to 'size' (option 's' has no fixed size)",
            ),
            (
                "struct.size('c0')",
                "bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ),
            (
                "struct.pack('c3', 'ab')",
                "bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack('=i', 1)",
                "bad argument #1 to 'pack' (invalid format option '=')",
            ),
            ("struct.pack('!3i', 1)", "alignment 3 is not a power of 2"),
            ("struct.size('c4294967296')", "integral size overflow"),
            (
                "struct.unpack('c0', 'abc')",
                "format 'c0' needs a previous size",
            ),
            ("struct.unpack('s', 'abc')", "unfinished string in data"),
            (
                "struct.unpack('b', 'abc', 0)",
                "bad argument #3 to 'unpack' (offset must be 1 or greater)",
            ),
            (
                "struct.unpack('b', 'abc', -1)",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
        ];
        for (code, want) in cases {
            let got = run(&lua, &format!("return {code}"));
            assert!(got.contains(want), "{code}: {got}");
            assert!(
                !got.contains(&format!("({want})")) || want.starts_with("bad"),
                "{code}: {got}"
            );
        }
    }

    #[test]
    fn alignment_pads_by_the_c_mask_arithmetic() {
        let lua = test_lua();
        assert_eq!(run(&lua, "return struct.size('!i3')"), "5");
        assert_eq!(run(&lua, "return struct.size('b!16i16')"), "32");
        assert_eq!(run(&lua, "return struct.size('z')"), "0");
    }
}
