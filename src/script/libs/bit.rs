//! `bit`: LuaBitOp's 32-bit operations (results are signed 32-bit numbers, as in Redis).

use mlua::{Lua, MultiValue, Table};

use super::check_number;

/// LuaBitOp's `tobit`: the number rounded (ties to even) and wrapped to a signed 32-bit integer.
fn tobit(x: f64) -> i32 {
    // LuaBitOp's barg: adding 2^52 + 2^51 moves the integer part into the low mantissa bits (rounding to even), whose
    // low 32 bits are the result. Beyond +-2^51 this is what it is (LuaBitOp leaves it unspecified): 2^52 + 1 gives 0.
    (x + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

type Op = fn(i32, i32) -> i32;
type Unary = fn(i32) -> i32;

/// Builds the `bit` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary: [(&str, Unary); 3] = [
        ("tobit", |x| x),
        ("bnot", |x| !x),
        ("bswap", |x| x.swap_bytes()),
    ];
    for (name, f) in unary {
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let args: Vec<_> = args.into_iter().collect();
                Ok(f(tobit(check_number(lua, &args, 1, name)?)) as f64)
            })?,
        )?;
    }
    let fold: [(&str, Op); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, f) in fold {
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let args: Vec<_> = args.into_iter().collect();
                let mut acc = tobit(check_number(lua, &args, 1, name)?);
                for n in 2..=args.len() {
                    acc = f(acc, tobit(check_number(lua, &args, n, name)?));
                }
                Ok(acc as f64)
            })?,
        )?;
    }
    let shifts: [(&str, Op); 5] = [
        ("lshift", |x, n| ((x as u32) << (n & 31)) as i32),
        ("rshift", |x, n| ((x as u32) >> (n & 31)) as i32),
        ("arshift", |x, n| x >> (n & 31)),
        ("rol", |x, n| (x as u32).rotate_left((n & 31) as u32) as i32),
        ("ror", |x, n| {
            (x as u32).rotate_right((n & 31) as u32) as i32
        }),
    ];
    for (name, f) in shifts {
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let args: Vec<_> = args.into_iter().collect();
                let x = tobit(check_number(lua, &args, 1, name)?);
                let n = tobit(check_number(lua, &args, 2, name)?);
                Ok(f(x, n) as f64)
            })?,
        )?;
    }
    t.set(
        "tohex",
        lua.create_function(|lua, args: MultiValue| {
            let args: Vec<_> = args.into_iter().collect();
            let x = tobit(check_number(lua, &args, 1, "tohex")?) as u32;
            let n = if args.len() >= 2 {
                tobit(check_number(lua, &args, 2, "tohex")?)
            } else {
                8
            };
            let width = n.unsigned_abs().min(8) as usize;
            let hex = if n < 0 {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(hex[8 - width..].to_string())
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_like_luabitop() {
        assert_eq!(tobit(4294967296.0 + 5.0), 5);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(3.5), 4);
        assert_eq!(tobit(-2147483649.0), i32::MAX);
        // Outside +-2^51, Redis's answers.
        assert_eq!(tobit(4503599627370497.0), 0);
        assert_eq!(tobit(1e100), 630506365);
    }
}
