//! The Lua libraries Redis embeds for scripts, written in Rust over mlua: `cjson`, `cmsgpack`, `bit`, `struct`, and
//! Redis's `math.random`.
//!
//! No crate ships these as mlua modules that build offline, so they are reimplemented here following the C
//! libraries Redis vendors (lua-cjson 2.1, lua-cmsgpack 0.4, LuaBitOp 1.0, Roberto Ierusalimschy's struct), with
//! their error messages. Errors that the C libraries raise with `luaL_error` carry the script position
//! (`user_script:1: ...`), which [`positioned`] adds.

mod bit;
pub mod cjson;
mod cmsgpack;
pub mod random;
mod structlib;

use mlua::{Lua, Table, Value};

/// Every library, by global name, for the sandbox to install.
pub fn all(lua: &Lua) -> mlua::Result<Table> {
    let libs = lua.create_table()?;
    libs.set("cjson", cjson::create(lua)?)?;
    libs.set("cmsgpack", cmsgpack::create(lua)?)?;
    libs.set("bit", bit::create(lua)?)?;
    libs.set("struct", structlib::create(lua)?)?;
    Ok(libs)
}

/// An error as `luaL_error` raises it: prefixed with the caller's position when the caller is Lua code (`luaL_where`
/// at level 1; called through `pcall`, a C function, there is no prefix).
pub fn positioned(lua: &Lua, msg: impl std::fmt::Display) -> mlua::Error {
    let prefix = lua
        .inspect_stack(1, |d| match d.current_line() {
            Some(line) if d.source().what != "C" => {
                format!(
                    "{}:{line}: ",
                    d.source().short_src.as_deref().unwrap_or("?")
                )
            }
            _ => String::new(),
        })
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{prefix}{msg}"))
}

/// `luaL_argerror`: "bad argument #n to 'f' (msg)", where `f` is the name the caller used for the function (`?`
/// when it has none, as under `pcall`) and a method call does not count `self`.
pub fn arg_error(lua: &Lua, n: usize, func: &str, msg: &str) -> mlua::Error {
    let (name, method) = lua
        .inspect_stack(0, |d| {
            let names = d.names();
            (
                names.name.map(|n| n.into_owned()),
                names.name_what == Some("method"),
            )
        })
        .unwrap_or((Some(func.to_string()), false));
    let name = name.unwrap_or_else(|| "?".into());
    if method {
        if n == 1 {
            return positioned(lua, format!("calling '{name}' on bad self ({msg})"));
        }
        return positioned(lua, format!("bad argument #{} to '{name}' ({msg})", n - 1));
    }
    positioned(lua, format!("bad argument #{n} to '{name}' ({msg})"))
}

/// `luaL_checknumber`.
pub fn check_number(lua: &Lua, args: &[Value], n: usize, func: &str) -> mlua::Result<f64> {
    let v = args.get(n - 1).unwrap_or(&Value::Nil);
    super::convert::as_number(v).ok_or_else(|| {
        let got = if n > args.len() {
            "no value"
        } else {
            v.type_name()
        };
        arg_error(lua, n, func, &format!("number expected, got {got}"))
    })
}

/// `luaL_checklstring` (numbers are accepted and printed as Lua does).
pub fn check_bytes(lua: &Lua, args: &[Value], n: usize, func: &str) -> mlua::Result<Vec<u8>> {
    match args.get(n - 1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            Ok(super::convert::number_text(v).into_bytes())
        }
        other => {
            let got = other.map_or("no value", |v| v.type_name());
            Err(arg_error(
                lua,
                n,
                func,
                &format!("string expected, got {got}"),
            ))
        }
    }
}

/// `Some((largest key, number of keys))` when every key of `t` is a positive integer (possibly stored as a float), as
/// lua-cjson's `lua_array_length` and lua-cmsgpack's `table_is_an_array` both check before encoding an array.
fn integer_keys(t: &mlua::Table) -> Option<(usize, usize)> {
    let (mut max, mut count) = (0usize, 0usize);
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let (k, _) = pair.ok()?;
        let n = match k {
            mlua::Value::Integer(i) if i >= 1 => i as usize,
            mlua::Value::Number(f) if f >= 1.0 && f.fract() == 0.0 => f as usize,
            _ => return None,
        };
        max = max.max(n);
        count += 1;
    }
    Some((max, count))
}

/// A bare Lua state with every library installed as a global, for the libraries' unit tests.
#[cfg(test)]
pub fn test_lua() -> Lua {
    let lua = Lua::new();
    let libs = all(&lua).expect("libraries build");
    for pair in libs.pairs::<String, Table>() {
        let (name, lib) = pair.expect("library entry");
        lua.globals().set(name, lib).expect("global set");
    }
    // cjson settings of its own, so tests running in parallel cannot see each other's (scripts' cjson shares them).
    let own = cjson::create_own(&lua).expect("cjson builds");
    lua.globals().set("cjson", own).expect("global set");
    lua
}

/// Runs `code` in `lua` and gives its first result as a string, or the error's text.
#[cfg(test)]
pub fn run(lua: &Lua, code: &str) -> String {
    match lua.load(code).eval::<Value>() {
        Ok(v) => match lua.coerce_string(v) {
            Ok(Some(s)) => s.to_string_lossy(),
            Ok(None) => "nil".into(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}
