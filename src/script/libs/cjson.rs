//! `cjson`: JSON encode/decode with lua-cjson 2.1's rules and messages, and its configuration functions
//! (`encode_sparse_array`, `encode_max_depth`, `decode_max_depth`, `encode_number_precision`, `encode_keep_buffer`,
//! `encode_invalid_numbers`, `decode_invalid_numbers`, `new`). Settings belong to one module table, as lua-cjson's
//! upvalue config does, so a setting made by one script stays in effect for the next scripts of the same VM.
//! `cjson.null` is a NULL light userdata.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use parking_lot::Mutex;

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

use super::{arg_error, check_bytes, check_number, positioned};

/// Lua 5.1's limit on the stack slots a C function may use: lua-cjson's `lua_checkstack` calls fail past it whatever
/// the configured depth, so Redis stops nesting at about 8000 arrays or 4000 objects.
const LUAI_MAXCSTACK: i64 = 8000;

/// One module table's settings (lua-cjson's `json_config_t`), with lua-cjson's defaults.
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: u8,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    number_precision: i32,
    /// Accepted and reported like lua-cjson's; buffer reuse is invisible to scripts.
    keep_buffer: u8,
    /// 0 refuses NaN/Inf, 1 writes them as `%g` does, 2 writes `null`.
    encode_invalid: u8,
    decode_invalid: u8,
}

impl Config {
    const DEFAULT: Config = Config {
        sparse_convert: 0,
        sparse_ratio: 2,
        sparse_safe: 10,
        encode_max_depth: 1000,
        decode_max_depth: 1000,
        number_precision: 14,
        keep_buffer: 1,
        encode_invalid: 0,
        decode_invalid: 1,
    };
}

/// The settings of the `cjson` table scripts see. Redis runs every script in one Lua VM, so a setting stays in
/// effect for the following scripts whichever client sends them; ringkv has a VM per thread, so those VMs' `cjson`
/// tables share these.
static SCRIPT_CONFIG: Mutex<Config> = Mutex::new(Config::DEFAULT);

/// Puts the scripts' settings back to lua-cjson's defaults: SCRIPT FLUSH does, as Redis's SCRIPT FLUSH makes a new VM.
pub fn reset_script_settings() {
    *SCRIPT_CONFIG.lock() = Config::DEFAULT;
}

/// Where a module table keeps its settings: the scripts' shared ones, or its own (`cjson.new`, unit tests).
#[derive(Clone)]
enum Store {
    Scripts,
    Own(Rc<Cell<Config>>),
}

impl Store {
    fn get(&self) -> Config {
        match self {
            Store::Scripts => *SCRIPT_CONFIG.lock(),
            Store::Own(c) => c.get(),
        }
    }

    /// Runs `f` on the settings; changes it made stay even when it fails, as the C functions set each option
    /// before checking the next.
    fn update<R>(&self, f: impl FnOnce(&mut Config) -> R) -> R {
        match self {
            Store::Scripts => f(&mut SCRIPT_CONFIG.lock()),
            Store::Own(c) => {
                let mut now = c.get();
                let r = f(&mut now);
                c.set(now);
                r
            }
        }
    }
}

/// A configuration function: it gets the settings and the arguments (padded with nil to `arity`) and returns the
/// current values.
type ConfigFn = fn(&Lua, &mut Config, &[Value], &str) -> mlua::Result<Vec<Value>>;

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// Builds the `cjson` table scripts see, with the settings shared by every script VM.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    build(lua, Store::Scripts)
}

/// Builds a `cjson` table with its own default settings (what `cjson.new` returns).
pub fn create_own(lua: &Lua) -> mlua::Result<Table> {
    build(lua, Store::Own(Rc::new(Cell::new(Config::DEFAULT))))
}

fn build(lua: &Lua, cfg: Store) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let c = cfg.clone();
    let next_fn: Function = lua.globals().get("next")?;
    t.set(
        "encode",
        lua.create_function(move |lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(positioned(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(lua, &c.get(), &next_fn, &args[0], &mut out)?;
            lua.create_string(&out)
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "decode",
        lua.create_function(move |lua, args: MultiValue| {
            let args: Vec<_> = args.into_iter().collect();
            if args.len() != 1 {
                return Err(positioned(
                    lua,
                    "bad argument #1 to 'decode' (expected 1 argument)",
                ));
            }
            let text = check_bytes(lua, &args, 1, "decode")?;
            // The C decoder reads a NUL-terminated string: a NUL ends the document.
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            Decoder {
                lua,
                cfg: c.get(),
                s: &text[..end],
                pos: 0,
                depth: 0,
            }
            .document()
        })?,
    )?;
    let settings: [(&str, usize, ConfigFn); 7] = [
        ("encode_sparse_array", 3, |lua, c, a, f| {
            Ok(vec![
                enum_option(lua, a, 1, f, &mut c.sparse_convert, BOOL_OPTIONS)?,
                integer_option(lua, a, 2, f, &mut c.sparse_ratio, 0, i32::MAX)?,
                integer_option(lua, a, 3, f, &mut c.sparse_safe, 0, i32::MAX)?,
            ])
        }),
        ("encode_max_depth", 1, |lua, c, a, f| {
            Ok(vec![integer_option(
                lua,
                a,
                1,
                f,
                &mut c.encode_max_depth,
                1,
                i32::MAX,
            )?])
        }),
        ("decode_max_depth", 1, |lua, c, a, f| {
            Ok(vec![integer_option(
                lua,
                a,
                1,
                f,
                &mut c.decode_max_depth,
                1,
                i32::MAX,
            )?])
        }),
        ("encode_number_precision", 1, |lua, c, a, f| {
            Ok(vec![integer_option(
                lua,
                a,
                1,
                f,
                &mut c.number_precision,
                1,
                14,
            )?])
        }),
        ("encode_keep_buffer", 1, |lua, c, a, f| {
            Ok(vec![enum_option(
                lua,
                a,
                1,
                f,
                &mut c.keep_buffer,
                BOOL_OPTIONS,
            )?])
        }),
        ("encode_invalid_numbers", 1, |lua, c, a, f| {
            Ok(vec![enum_option(
                lua,
                a,
                1,
                f,
                &mut c.encode_invalid,
                &["off", "on", "null"],
            )?])
        }),
        ("decode_invalid_numbers", 1, |lua, c, a, f| {
            Ok(vec![enum_option(
                lua,
                a,
                1,
                f,
                &mut c.decode_invalid,
                BOOL_OPTIONS,
            )?])
        }),
    ];
    for (name, arity, f) in settings {
        let c = cfg.clone();
        t.set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                // json_arg_init: too many arguments is an error; missing ones read as nil.
                if args.len() > arity {
                    return Err(arg_error(lua, arity + 1, name, "found too many arguments"));
                }
                let args: Vec<_> = args.into_iter().collect();
                c.update(|now| f(lua, now, &args, name))
                    .map(MultiValue::from_iter)
            })?,
        )?;
    }
    t.set(
        "new",
        lua.create_function(|lua, _: MultiValue| create_own(lua))?,
    )?;
    t.set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// `json_integer_option`: a number argument (`luaL_checkinteger`, cast to a C int) within `min..=max`, which
/// lua-cjson always reports as argument #1; returns the setting.
fn integer_option(
    lua: &Lua,
    args: &[Value],
    n: usize,
    func: &str,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> mlua::Result<Value> {
    if !matches!(args.get(n - 1), None | Some(Value::Nil)) {
        let x = check_number(lua, args, n, func)?;
        // (lua_Integer)double then (int): x86-64 truncation, out-of-range gives INT64_MIN, then the low 32 bits.
        let wide = if x.is_finite() && x.abs() < 9.2e18 {
            x as i64
        } else {
            i64::MIN
        };
        let value = wide as i32;
        if !(min..=max).contains(&value) {
            return Err(arg_error(
                lua,
                1,
                func,
                &format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    Ok(Value::Integer(i64::from(*setting)))
}

/// `json_enum_option` with `bool_true` 1: a boolean or one of `options` (`luaL_checkoption`); returns the setting as
/// a boolean when it is 0 or 1, else as its option name.
fn enum_option(
    lua: &Lua,
    args: &[Value],
    n: usize,
    func: &str,
    setting: &mut u8,
    options: &[&str],
) -> mlua::Result<Value> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = u8::from(*b),
        Some(_) => {
            let name = check_bytes(lua, args, n, func)?;
            let i = options
                .iter()
                .position(|o| o.as_bytes() == name.as_slice())
                .ok_or_else(|| {
                    arg_error(
                        lua,
                        n,
                        func,
                        &format!("invalid option '{}'", String::from_utf8_lossy(&name)),
                    )
                })?;
            *setting = i as u8;
        }
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        s => Value::String(lua.create_string(options[usize::from(s)])?),
    })
}

fn encode_number(lua: &Lua, cfg: &Config, n: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !n.is_finite() {
        match cfg.encode_invalid {
            0 => {
                return Err(positioned(
                    lua,
                    "Cannot serialise number: must not be NaN or Inf",
                ))
            }
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
    }
    // lua-cjson's `fpconv_g_fmt` is `%.<precision>g`, except that every NaN prints as `nan`.
    let text = if n.is_nan() {
        "nan".to_string()
    } else {
        crate::script::convert::format_g(n, cfg.number_precision)
    };
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

/// A table being written: an array's next index and length, or an object (its table and last key are in the
/// stash).
enum Open {
    Array {
        next: usize,
        len: usize,
    },
    /// `pairs`: a small object's entries, read in `next` order when it was opened (walked without a Lua call per
    /// key); `None` for the others, which are walked with `next`.
    Object {
        first: bool,
        pairs: Option<std::vec::IntoIter<(Value, Value)>>,
    },
}

/// Objects of at most this many entries, opened within [`Levels::HELD`] levels, are read in one pass: their
/// entries' references stay within mlua's limit (64 levels x 16 entries x 2).
const SMALL_OBJECT: usize = 16;

impl Open {
    /// Lua stack slots lua-cjson holds for this level while writing what is inside it (an element; a key and value).
    fn slots(&self) -> i64 {
        match self {
            Open::Array { .. } => 1,
            Open::Object { .. } => 2,
        }
    }
}

/// The open tables of an encode or decode, each with a key (an object's last or pending key; nil for an array).
/// Only the innermost [`Levels::HELD`] are held as mlua references: outer ones wait in a Lua table (`stash[2d-1]`,
/// `stash[2d]` at depth `d`), since mlua keeps references in an auxiliary Lua stack that cannot grow past about 8000
/// and nesting may go that deep. Nor is there recursion: the thread's stack is small.
struct Levels<'l> {
    lua: &'l Lua,
    stash: Option<Table>,
    depth: usize,
    held: VecDeque<(Table, Value)>,
}

impl<'l> Levels<'l> {
    const HELD: usize = 64;

    fn new(lua: &'l Lua) -> Levels<'l> {
        Levels {
            lua,
            stash: None,
            depth: 0,
            held: VecDeque::new(),
        }
    }

    fn stash(&mut self) -> mlua::Result<&Table> {
        match &mut self.stash {
            Some(t) => Ok(t),
            empty => Ok(empty.insert(self.lua.create_table()?)),
        }
    }

    /// The innermost open table and its key.
    fn top(&mut self) -> Option<&mut (Table, Value)> {
        self.held.back_mut()
    }

    fn push(&mut self, t: Table, key: Value) -> mlua::Result<()> {
        if self.held.len() == Self::HELD {
            let d = self.depth - Self::HELD + 1;
            if let Some((outer, outer_key)) = self.held.pop_front() {
                let stash = self.stash()?;
                stash.raw_set(2 * d - 1, outer)?;
                stash.raw_set(2 * d, outer_key)?;
            }
        }
        self.depth += 1;
        self.held.push_back((t, key));
        Ok(())
    }

    /// Closes the innermost table and gives it back.
    fn pop(&mut self) -> mlua::Result<Option<Table>> {
        let Some((t, _)) = self.held.pop_back() else {
            return Ok(None);
        };
        self.depth -= 1;
        if self.held.is_empty() && self.depth > 0 {
            let d = self.depth;
            let stash = self.stash()?;
            let outer = (stash.raw_get(2 * d - 1)?, stash.raw_get(2 * d)?);
            stash.raw_set(2 * d - 1, Value::Nil)?;
            stash.raw_set(2 * d, Value::Nil)?;
            self.held.push_back(outer);
        }
        Ok(Some(t))
    }
}

/// Writes `v` as JSON, walking objects with Lua's `next` from the key kept in [`Levels`].
fn encode(
    lua: &Lua,
    cfg: &Config,
    next_fn: &Function,
    v: &Value,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    let mut levels = Levels::new(lua);
    let mut open: Vec<Open> = Vec::new();
    // Lua stack slots in use: the argument, plus each open level's.
    let mut slots = 1;
    let mut pending = Some(v.clone());
    loop {
        if let Some(v) = pending.take() {
            match v {
                Value::Nil => out.extend_from_slice(b"null"),
                Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
                Value::Boolean(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                // lua-cjson formats every number with `%.<precision>g`, integral ones too (1.2345678901234e+14).
                Value::Integer(i) => encode_number(lua, cfg, i as f64, out)?,
                Value::Number(n) => encode_number(lua, cfg, n, out)?,
                Value::String(s) => escape(&s.as_bytes(), out),
                Value::Table(t) => {
                    let depth = open.len() + 1;
                    // json_check_encode_depth: the depth setting, then lua_checkstack(3) under LUAI_MAXCSTACK.
                    if depth > cfg.encode_max_depth as usize || slots + 3 > LUAI_MAXCSTACK {
                        return Err(positioned(
                            lua,
                            format!("Cannot serialise, excessive nesting ({depth})"),
                        ));
                    }
                    let level = match shape(lua, cfg, &t, depth <= Levels::HELD)? {
                        Shape::Array(len) => {
                            out.push(b'[');
                            Open::Array { next: 1, len }
                        }
                        Shape::Object(entries) => {
                            out.push(b'{');
                            Open::Object {
                                first: true,
                                pairs: (!entries.is_empty()).then(|| entries.into_iter()),
                            }
                        }
                    };
                    levels.push(t, Value::Nil)?;
                    slots += level.slots();
                    open.push(level);
                }
                other => {
                    return Err(positioned(
                        lua,
                        format!("Cannot serialise {}: type not supported", other.type_name()),
                    ))
                }
            }
        }
        let (Some(top), Some((t, key))) = (open.last_mut(), levels.top()) else {
            return Ok(());
        };
        let closing = match top {
            Open::Array { next, len } if *next <= *len => {
                if *next > 1 {
                    out.push(b',');
                }
                pending = Some(t.raw_get::<Value>(*next)?);
                *next += 1;
                None
            }
            Open::Array { .. } => Some(b']'),
            Open::Object { first, pairs } => {
                let (k, v): (Value, Value) = match pairs {
                    Some(read) => read.next().unwrap_or((Value::Nil, Value::Nil)),
                    None => next_fn.call((&*t, &*key))?,
                };
                if k.is_nil() {
                    Some(b'}')
                } else {
                    if !*first {
                        out.push(b',');
                    }
                    *first = false;
                    match &k {
                        Value::String(s) => escape(&s.as_bytes(), out),
                        Value::Integer(i) => encode_key_number(lua, cfg, *i as f64, out)?,
                        Value::Number(n) => encode_key_number(lua, cfg, *n, out)?,
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
                    *key = k;
                    pending = Some(v);
                    None
                }
            }
        };
        if let Some(close) = closing {
            out.push(close);
            slots -= top.slots();
            open.pop();
            levels.pop()?;
        }
    }
}

/// A number key, written as a string.
fn encode_key_number(lua: &Lua, cfg: &Config, n: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    out.push(b'"');
    encode_number(lua, cfg, n, out)?;
    out.push(b'"');
    Ok(())
}

/// What an encoded table is: an array of this length, or an object (with its entries when `collect` is set and it
/// has at most [`SMALL_OBJECT`]).
enum Shape {
    Array(usize),
    Object(Vec<(Value, Value)>),
}

/// lua-cjson's `lua_array_length`: the array length when `t` encodes as a JSON array, else an object (a key that is
/// not a positive integer, empty, or too sparse with `convert` on); too sparse without `convert` is an error. The
/// largest key is kept in a C int, as lua-cjson does: a key past `INT_MAX` converts (x86-64) to `INT_MIN`, so such
/// tables become objects. With `collect`, an object of at most [`SMALL_OBJECT`] entries comes with them.
fn shape(lua: &Lua, cfg: &Config, t: &Table, collect: bool) -> mlua::Result<Shape> {
    let (mut max, mut items) = (0i32, 0i32);
    let mut object = false;
    let mut entries: Vec<(Value, Value)> = Vec::new();
    let mut few = collect;
    for pair in t.pairs::<Value, Value>() {
        let (key, value) = pair?;
        if !object {
            let k = match &key {
                Value::Integer(i) => Some(*i as f64),
                Value::Number(n) => Some(*n),
                _ => None,
            };
            match k {
                Some(k) if k.floor() == k && k >= 1.0 => {
                    if k > f64::from(max) {
                        max = if k < 2_147_483_648.0 {
                            k as i32
                        } else {
                            i32::MIN
                        };
                    }
                    items = items.wrapping_add(1);
                }
                _ if !collect => return Ok(Shape::Object(Vec::new())),
                _ => object = true,
            }
        }
        if few {
            if entries.len() == SMALL_OBJECT {
                few = false;
                entries = Vec::new();
                if object {
                    return Ok(Shape::Object(entries));
                }
            } else {
                entries.push((key, value));
            }
        }
    }
    if object {
        return Ok(Shape::Object(entries));
    }
    // C int arithmetic: `items * ratio` wraps.
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            return Err(positioned(
                lua,
                "Cannot serialise table: excessively sparse array",
            ));
        }
        // An excessively sparse array converted to an object.
        return Ok(Shape::Object(entries));
    }
    Ok(match usize::try_from(max).ok().filter(|&m| m > 0) {
        Some(len) => Shape::Array(len),
        None => Shape::Object(entries),
    })
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
    cfg: Config,
    s: &'s [u8],
    pos: usize,
    depth: i64,
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

    /// The value starting with token `tok`, with an explicit stack of open tables rather than recursion (so that
    /// deep nesting cannot overflow the thread's stack), in lua-cjson's order of checks and errors.
    fn value(&mut self, mut tok: Tok, mut at: usize, mut v: Value) -> mlua::Result<Value> {
        // Open tables: `None` for an object, the next index for an array; the tables and objects' keys awaiting
        // their values are in `levels`.
        let mut open: Vec<Option<i64>> = Vec::new();
        let mut levels = Levels::new(self.lua);
        // Lua stack slots in use: the argument, then a table per level and an object's pending key.
        let mut slots = 1;
        loop {
            let mut done = match tok {
                Tok::Str | Tok::Num | Tok::Bool(_) | Tok::Null => v,
                Tok::ObjBegin | Tok::ArrBegin => {
                    let object = tok == Tok::ObjBegin;
                    // json_decode_descend: the depth setting, then lua_checkstack(3 or 2).
                    self.depth += 1;
                    let need = if object { 3 } else { 2 };
                    if self.depth > i64::from(self.cfg.decode_max_depth)
                        || slots + need > LUAI_MAXCSTACK
                    {
                        return Err(positioned(
                            self.lua,
                            format!(
                                "Found too many nested data structures ({}) at character {}",
                                self.depth,
                                at + 1
                            ),
                        ));
                    }
                    let t = self.lua.create_table()?;
                    let (first, fat, fv) = self.token()?;
                    if first == if object { Tok::ObjEnd } else { Tok::ArrEnd } {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        if object {
                            let key = self.key(first, fat, fv)?;
                            levels.push(t, key)?;
                            slots += 2;
                            open.push(None);
                            (tok, at, v) = self.token()?;
                        } else {
                            levels.push(t, Value::Nil)?;
                            slots += 1;
                            open.push(Some(1));
                            (tok, at, v) = (first, fat, fv);
                        }
                        continue;
                    }
                }
                _ => return Err(self.expected("value", tok, at)),
            };
            // Store the finished value in its table, closing every table that ends here.
            loop {
                let (Some(slot), Some((t, key))) = (open.last_mut(), levels.top()) else {
                    return Ok(done);
                };
                let value = std::mem::replace(&mut done, Value::Nil);
                match slot {
                    None => {
                        t.raw_set(std::mem::replace(key, Value::Nil), value)?;
                        let (sep, sat, _) = self.token()?;
                        match sep {
                            Tok::ObjEnd => {}
                            Tok::Comma => {
                                let (kt, kat, kv) = self.token()?;
                                *key = self.key(kt, kat, kv)?;
                                (tok, at, v) = self.token()?;
                                break;
                            }
                            _ => return Err(self.expected("comma or object end", sep, sat)),
                        }
                    }
                    Some(i) => {
                        t.raw_set(*i, value)?;
                        let (sep, sat, _) = self.token()?;
                        *i += 1;
                        match sep {
                            Tok::ArrEnd => {}
                            Tok::Comma => {
                                (tok, at, v) = self.token()?;
                                break;
                            }
                            _ => return Err(self.expected("comma or array end", sep, sat)),
                        }
                    }
                }
                slots -= if slot.is_none() { 2 } else { 1 };
                open.pop();
                self.depth -= 1;
                if let Some(t) = levels.pop()? {
                    done = Value::Table(t);
                }
            }
        }
    }

    /// An object's key: a string token, then a colon.
    fn key(&mut self, tok: Tok, at: usize, v: Value) -> mlua::Result<Value> {
        if tok != Tok::Str {
            return Err(self.expected("object key string", tok, at));
        }
        let (colon, cat, _) = self.token()?;
        if colon != Tok::Colon {
            return Err(self.expected("colon", colon, cat));
        }
        Ok(v)
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
            d.pos += word.len();
            Ok((tok, at, v))
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
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid == 0 && self.invalid_number(at) {
                    return simple(Tok::Error("invalid number"));
                }
                self.number(at)
            }
            b't' | b'f' | b'n' | b'i' | b'I' | b'N' | b'+' => {
                if self.s[at..].starts_with(b"true") {
                    lit(self, b"true", Tok::Bool(true), Value::Boolean(true))
                } else if self.s[at..].starts_with(b"false") {
                    lit(self, b"false", Tok::Bool(false), Value::Boolean(false))
                } else if self.s[at..].starts_with(b"null") {
                    let null = Value::LightUserData(LightUserData(std::ptr::null_mut()));
                    lit(self, b"null", Tok::Null, null)
                } else if self.cfg.decode_invalid != 0 && self.invalid_number(at) {
                    // Only what is known not to be JSON (Inf, NaN, "+") goes to strtod, so other bad words stay
                    // "invalid token".
                    self.number(at)
                } else {
                    simple(Tok::Error("invalid token"))
                }
            }
            _ => simple(Tok::Error("invalid token")),
        }
    }

    /// `json_is_invalid_number`: a leading `+`, hex, leading zeros, Inf or NaN.
    fn invalid_number(&self, at: usize) -> bool {
        let byte = |i: usize| self.s.get(i).copied().unwrap_or(0);
        let mut p = at;
        match byte(p) {
            b'+' => return true,
            b'-' => p += 1,
            _ => {}
        }
        match byte(p) {
            b'0' => {
                let next = byte(p + 1);
                next | 0x20 == b'x' || next.is_ascii_digit()
            }
            c if c <= b'9' => false,
            _ => {
                let word = self.s.get(p..p + 3).unwrap_or(b"");
                word.eq_ignore_ascii_case(b"inf") || word.eq_ignore_ascii_case(b"nan")
            }
        }
    }

    /// A number as lua-cjson reads it: C's `strtod` from `at` (so also hex, Inf and NaN), "invalid number" when it
    /// reads nothing.
    fn number(&mut self, at: usize) -> mlua::Result<(Tok, usize, Value)> {
        match crate::cmd::args::strtod_prefix(&self.s[at..]) {
            Some((n, len)) => {
                self.pos = at + len;
                Ok((Tok::Num, at, Value::Number(n.value)))
            }
            None => Ok((Tok::Error("invalid number"), at, Value::Nil)),
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
                    // Errors point at the backslash, as lua-cjson's do.
                    let escape_at = i - 1;
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
                                    escape_at,
                                    Value::Nil,
                                ))
                            }
                        },
                        _ => return Ok((Tok::Error("invalid escape code"), escape_at, Value::Nil)),
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

    /// Joins a script's results with spaces, so one assertion sees every value a config function returns. An
    /// error caught by `pcall` (an mlua error value outside the script sandbox) reads as its message.
    fn all(lua: &mlua::Lua, code: &str) -> String {
        run(
            lua,
            &format!(
                "local r = {{{code}}} for i = 1, #r do \
                 r[i] = tostring(r[i]):gsub('^runtime error: ', ''):gsub('\\nstack traceback:.*', '') end \
                 return table.concat(r, ' ')"
            ),
        )
    }

    #[test]
    fn config_functions_return_lua_cjson_defaults() {
        let lua = test_lua();
        assert_eq!(all(&lua, "cjson.encode_sparse_array()"), "false 2 10");
        assert_eq!(
            all(
                &lua,
                "cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision(), \
                 cjson.encode_keep_buffer(), cjson.encode_invalid_numbers(), cjson.decode_invalid_numbers()"
            ),
            "1000 1000 14 true false true"
        );
    }

    #[test]
    fn config_functions_validate_like_lua_cjson() {
        let lua = test_lua();
        for (code, error) in [
            (
                "cjson.encode_max_depth(0)",
                "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)",
            ),
            (
                "cjson.encode_number_precision(15)",
                "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)",
            ),
            (
                "cjson.encode_sparse_array('x')",
                "bad argument #1 to 'encode_sparse_array' (invalid option 'x')",
            ),
            // lua-cjson reports every range error as argument #1.
            (
                "cjson.encode_sparse_array(true, -1)",
                "bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)",
            ),
            (
                "cjson.encode_sparse_array(true, 2, 'y')",
                "bad argument #3 to 'encode_sparse_array' (number expected, got string)",
            ),
            (
                "cjson.encode_sparse_array(true, 2, 10, 1)",
                "bad argument #4 to 'encode_sparse_array' (found too many arguments)",
            ),
            (
                "cjson.encode_invalid_numbers(1)",
                "bad argument #1 to 'encode_invalid_numbers' (invalid option '1')",
            ),
            (
                "cjson.decode_invalid_numbers('null')",
                "bad argument #1 to 'decode_invalid_numbers' (invalid option 'null')",
            ),
        ] {
            let got = run(&lua, &format!("return {code}"));
            assert!(got.contains(error), "{code}: {got}");
        }
        // Numbers are truncated to a C int: 2^32 + 1 sets 1.
        assert_eq!(run(&lua, "return cjson.encode_max_depth(4294967297)"), "1");
        assert_eq!(
            run(&lua, "return cjson.encode_number_precision('5.9')"),
            "5"
        );
    }

    #[test]
    fn sparse_array_settings_choose_array_object_or_error() {
        let lua = test_lua();
        assert_eq!(
            run(&lua, "return cjson.encode({[1]=1,[5]=5})"),
            "[1,null,null,null,5]"
        );
        assert!(run(&lua, "return cjson.encode({[1]=1,[20]=5})")
            .contains("Cannot serialise table: excessively sparse array"));
        assert_eq!(
            all(
                &lua,
                "cjson.encode_sparse_array(true), cjson.encode({[1]=1,[20]=5})"
            ),
            "true {\"1\":1,\"20\":5}"
        );
        assert_eq!(
            all(
                &lua,
                "cjson.encode_sparse_array(true, 1, 0), cjson.encode({[1]=1,[5]=5})"
            ),
            "true {\"1\":1,\"5\":5}"
        );
        // The largest key is a C int: past INT_MAX the table is an object, even with ratio 0.
        assert_eq!(
            all(&lua, "cjson.encode({[2^31]=1}), cjson.encode({[2^32+1]=1})"),
            "{\"2147483648\":1} {\"4294967297\":1}"
        );
        assert!(run(
            &lua,
            "cjson.encode_sparse_array(false, 2, 10) return cjson.encode({[2^31-1]=1})"
        )
        .contains("excessively sparse array"));
        // Ratio 0 allows any sparseness.
        assert_eq!(
            all(
                &lua,
                "cjson.encode_sparse_array(false, 0), #cjson.encode({[1]=1,[50]=5})"
            ),
            "false 245"
        );
    }

    #[test]
    fn max_depth_settings_limit_nesting_with_lua_cjson_errors() {
        let lua = test_lua();
        assert_eq!(
            all(
                &lua,
                "cjson.encode_max_depth(2), pcall(cjson.encode, {{{}}})"
            ),
            "2 false Cannot serialise, excessive nesting (3)"
        );
        assert_eq!(run(&lua, "return cjson.encode({{}})"), "[{}]");
        assert_eq!(
            all(
                &lua,
                "cjson.decode_max_depth(3), pcall(cjson.decode, '[[{\"a\":[1]}]]')"
            ),
            "3 false Found too many nested data structures (4) at character 8"
        );
    }

    #[test]
    fn deep_nesting_stops_where_lua_stack_space_runs_out() {
        let lua = test_lua();
        run(
            &lua,
            "cjson.encode_max_depth(100000) cjson.decode_max_depth(100000)",
        );
        let nest = |wrap: &str| {
            all(
                &lua,
                &format!("select(2, pcall(cjson.encode, (function() local t = {{}} for i = 1, 20000 do t = {wrap} end return t end)()))"),
            )
        };
        assert_eq!(nest("{t}"), "Cannot serialise, excessive nesting (7998)");
        assert_eq!(nest("{a=t}"), "Cannot serialise, excessive nesting (4000)");
        assert_eq!(
            nest("{a={t}}"),
            "Cannot serialise, excessive nesting (5332)"
        );
        let decode = |open: &str| {
            all(
                &lua,
                &format!("select(2, pcall(cjson.decode, string.rep('{open}', 20000)))"),
            )
        };
        assert_eq!(
            decode("["),
            "Found too many nested data structures (7999) at character 7999"
        );
        assert_eq!(
            decode("{\"a\":"),
            "Found too many nested data structures (4000) at character 19996"
        );
        assert_eq!(
            decode("[{\"a\":"),
            "Found too many nested data structures (5333) at character 15997"
        );
        // Objects deeper than the references held in Rust continue after their nested value.
        assert_eq!(
            run(
                &lua,
                "local t = {} for i = 1, 300 do t = {x = i, y = {t, i}, z = -i} end \
                 local s = cjson.encode(t) local back = cjson.decode(s) \
                 return tostring(cjson.encode(back) == s and back.y[1].y[1].z == -298 and #s)"
            ),
            "8378"
        );
        // Nesting just within the limit round-trips (the innermost empty table is written as an object).
        assert_eq!(
            run(
                &lua,
                "local s = string.rep('[', 7000) .. '{}' .. string.rep(']', 7000) \
                 return tostring(cjson.encode(cjson.decode(s)) == s)"
            ),
            "true"
        );
    }

    #[test]
    fn number_precision_sets_the_g_format() {
        let lua = test_lua();
        assert_eq!(
            all(
                &lua,
                "cjson.encode_number_precision(3), cjson.encode({1/3, 12345})"
            ),
            "3 [0.333,1.23e+04]"
        );
        assert_eq!(
            all(
                &lua,
                "cjson.encode_number_precision(1), cjson.encode({0.15, 95, -0.0, 1e-5})"
            ),
            "1 [0.1,1e+02,-0,1e-05]"
        );
        assert_eq!(
            all(
                &lua,
                "cjson.encode_number_precision(7), cjson.encode({2^53, 9999999.5})"
            ),
            "7 [9.007199e+15,1e+07]"
        );
    }

    #[test]
    fn invalid_numbers_are_refused_written_or_null() {
        let lua = test_lua();
        assert!(run(&lua, "return cjson.encode({[1/0]=1})")
            .contains("Cannot serialise number: must not be NaN or Inf"));
        assert_eq!(
            all(
                &lua,
                "cjson.encode_invalid_numbers(true), cjson.encode({1/0, -1/0, 0/0, -(0/0)})"
            ),
            "true [inf,-inf,nan,nan]"
        );
        assert_eq!(
            all(
                &lua,
                "cjson.encode_invalid_numbers('null'), cjson.encode({1/0, [2]=0/0})"
            ),
            "null [null,null]"
        );
        assert_eq!(run(&lua, "return cjson.encode_invalid_numbers()"), "null");
    }

    #[test]
    fn decode_reads_numbers_with_strtod_unless_invalid_numbers_are_off() {
        let lua = test_lua();
        for (json, value) in [
            ("NaN", "nan"),
            ("-inf", "-inf"),
            ("Infinity", "inf"),
            ("+1", "1"),
            ("0x10", "16"),
            ("0x1p4", "16"),
            ("01", "1"),
            ("1.", "1"),
            ("-.5", "-0.5"),
            ("nan(12)", "nan"),
            ("[1]\0junk", "table"),
        ] {
            let code = format!("local v = cjson.decode({json:?}) return type(v) == 'table' and 'table' or tostring(v)");
            assert_eq!(run(&lua, &code), value, "{json}");
        }
        for (json, error) in [
            (
                "1e",
                "Expected the end but found invalid token at character 2",
            ),
            (
                "infx",
                "Expected the end but found invalid token at character 4",
            ),
            (
                "+",
                "Expected value but found invalid number at character 1",
            ),
            (
                ".5",
                "Expected value but found invalid token at character 1",
            ),
        ] {
            let got = run(&lua, &format!("return cjson.decode({json:?})"));
            assert!(got.contains(error), "{json}: {got}");
        }
        run(&lua, "cjson.decode_invalid_numbers(false)");
        for (json, found) in [
            ("01", "invalid number at character 1"),
            ("0x10", "invalid number at character 1"),
            ("-inf", "invalid number at character 1"),
            ("-", "invalid number at character 1"),
            ("[0x1]", "invalid number at character 2"),
            // Words that are not JSON are no longer read as numbers at all.
            ("NaN", "invalid token at character 1"),
            ("+1", "invalid token at character 1"),
        ] {
            let got = run(&lua, &format!("return cjson.decode({json:?})"));
            assert!(
                got.contains(&format!("Expected value but found {found}")),
                "{json}: {got}"
            );
        }
        assert_eq!(run(&lua, "return cjson.decode('[0,-0.5,10]')[2]"), "-0.5");
    }

    #[test]
    fn new_gives_a_module_with_its_own_settings() {
        let lua = test_lua();
        assert_eq!(
            all(
                &lua,
                "(function() local c = cjson.new() c.encode_max_depth(3) return c.encode_max_depth() end)(), \
                 cjson.encode_max_depth(), cjson.new()._VERSION, type(cjson.new().new)"
            ),
            "3 1000 2.1.0 function"
        );
        // The scripts' module shares its settings: a second one sees the first one's.
        let (a, b) = (super::create(&lua), super::create(&lua));
        let (a, b) = (a.expect("cjson builds"), b.expect("cjson builds"));
        let keep: mlua::Function = a.get("encode_keep_buffer").expect("function");
        let read: mlua::Function = b.get("encode_keep_buffer").expect("function");
        keep.call::<()>(false).expect("set");
        assert!(!read.call::<bool>(()).expect("get"));
        keep.call::<()>(true).expect("set");
        assert!(read.call::<bool>(()).expect("get"));
    }
}
