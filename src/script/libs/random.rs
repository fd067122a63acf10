//! Redis's `math.random` and `math.randomseed`: the rand48 generator (`redisLrand48`) instead of C's `rand()`, so a
//! script that seeds it draws the same numbers as on Redis.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Lua, MultiValue, Table, Value};

use super::{check_number, positioned};

/// rand48's multiplier and increment; the state is 48 bits.
const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// The state before any seeding (`X2 X1 X0` of Redis's rand.c).
const INITIAL: u64 = 0x1234_ABCD_330E;
/// `REDIS_LRAND48_MAX`.
const LRAND48_MAX: u64 = i32::MAX as u64;

/// Replaces `random` and `randomseed` in `math` with Redis's versions over one generator.
pub fn install(lua: &Lua, math: &Table) -> mlua::Result<()> {
    let state = Rc::new(Cell::new(INITIAL));
    let s = state.clone();
    math.raw_set(
        "random",
        lua.create_function(move |lua, args: MultiValue| {
            let next = (A.wrapping_mul(s.get()) + C) & MASK;
            s.set(next);
            let r = ((next >> 17) % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
            let args: Vec<Value> = args.into_iter().collect();
            Ok(match args.len() {
                0 => r,
                1 => {
                    let u = check_int(lua, &args, 1, "random")?;
                    if u < 1 {
                        return Err(super::arg_error(lua, 1, "random", "interval is empty"));
                    }
                    (r * u as f64).floor() + 1.0
                }
                2 => {
                    let l = check_int(lua, &args, 1, "random")?;
                    let u = check_int(lua, &args, 2, "random")?;
                    if l > u {
                        return Err(super::arg_error(lua, 2, "random", "interval is empty"));
                    }
                    (r * (u as f64 - l as f64 + 1.0)).floor() + l as f64
                }
                _ => return Err(positioned(lua, "wrong number of arguments")),
            })
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(move |lua, args: MultiValue| {
            let args: Vec<Value> = args.into_iter().collect();
            let seed = check_int(lua, &args, 1, "randomseed")?;
            state.set((u64::from(seed as u32) << 16) | 0x330E);
            Ok(())
        })?,
    )?;
    Ok(())
}

/// `luaL_checkint`: a number (or numeric string) truncated to a C `int`.
fn check_int(lua: &Lua, args: &[Value], n: usize, func: &str) -> mlua::Result<i32> {
    Ok(check_number(lua, args, n, func)? as i64 as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(code: &str) -> Vec<f64> {
        let lua = Lua::new();
        let math: Table = lua.globals().get("math").unwrap();
        install(&lua, &math).unwrap();
        lua.load(code).eval::<Vec<f64>>().unwrap()
    }

    /// Values read from redis-server 7.0.15 (`math.randomseed(0)` / `(7)` then the same calls).
    #[test]
    fn seeded_sequences_are_redis_s() {
        let first = run("math.randomseed(0) return {math.random(), math.random()}");
        assert_eq!(format!("{:.14}", first[0]), "0.17082803611217");
        assert_eq!(format!("{:.14}", first[1]), "0.74990198051087");
        assert_eq!(
            run("math.randomseed(7) return {math.random(10), math.random(3, 9)}"),
            [3.0, 7.0]
        );
        assert_eq!(
            run("math.randomseed(-5) return {math.random(1000000)}"),
            [816817.0]
        );
        assert_eq!(
            run("math.randomseed('12') return {math.random(100)}"),
            [63.0]
        );
        assert_eq!(
            run("math.randomseed(2.5) return {math.random(100)}"),
            [92.0]
        );
    }
}
