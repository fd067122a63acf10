//! Lua scripting (EVAL and friends): the script cache, the sandboxed Lua 5.1 VM, `redis.call`, and SCRIPT KILL.
//!
//! Each worker thread owns one Lua VM (scripts never share a VM between threads, and a VM is never re-entered),
//! built once with Redis 7's sandbox (`sandbox.lua`): read-only globals and libraries, errors on missing globals, only
//! Redis's allow-listed functions, plus `redis`, `cjson`, `cmsgpack`, `bit` and `struct`. Compiled functions are
//! cached per VM by SHA1; the bodies live in the server-wide [`Scripts`] cache that EVALSHA and SCRIPT read.
//!
//! Atomicity: a script's first run locks every shard up front, and so does every run of a script that has been seen
//! to reach a key outside the shards of its declared KEYS (job-queue libraries such as BullMQ name job keys from a
//! prefix): such a script can neither fail nor deadlock on a shard mid-run. A script seen to stay on its declared
//! shards runs with only those, locked by the dispatcher. If such a run does reach a shard not held, it adds that
//! shard: `try_lock` (never waits), else `lock` when its index is above every held one (ascending order, so no
//! cycle), else `try_lock` again for at most [`LOCK_WAIT`] and then the call fails; either way the script locks every
//! shard from its next run on. Shards are only ever added, and all are released after the script, so the script is
//! atomic (two-phase locking).

pub mod convert;
mod libs;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use parking_lot::Mutex;

use crate::cmd::{flag, CmdError, CommandSpec, Ctx, Flow};
use crate::protocol::{value, Argv, OwnedArgv, Reply};

/// How long a script waits for a shard below one it holds before its `redis.call` fails.
pub const LOCK_WAIT: Duration = Duration::from_millis(200);

/// The chunk name of the sandbox; its frames are skipped when an error is located.
const LIB_SOURCE: &str = "=ringkv";

/// Instructions between two checks of the kill flag (Redis uses the same count).
const HOOK_EVERY: u32 = 100_000;

/// The error a killed script ends with.
const KILLED: &str = "Script killed by user with SCRIPT KILL...";

/// The version scripts see in `redis.REDIS_VERSION`.
const VERSION: (&str, i64) = ("7.2.4", 0x0007_0204);

/// The server-wide script state: bodies by SHA1, what each script's runs showed about its keys, scripts running now.
#[derive(Default)]
pub struct Scripts {
    bodies: Mutex<HashMap<String, Arc<[u8]>>>,
    /// By SHA1: true when the script's runs so far stayed on the shards of its declared KEYS, false once one reached
    /// another shard. A script not listed has not completed a run yet.
    confined: Mutex<HashMap<String, bool>>,
    running: Mutex<Vec<Arc<Running>>>,
}

/// A script in execution, as SCRIPT KILL sees it.
pub struct Running {
    started: Instant,
    kill: AtomicBool,
    wrote: AtomicBool,
}

/// What SCRIPT KILL found.
#[derive(Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// A script was told to stop.
    Killed,
    /// No script has been running longer than the busy threshold.
    NotBusy,
    /// The busy scripts have written: they cannot be stopped without breaking atomicity.
    Unkillable,
}

impl Scripts {
    /// Caches `body` and returns its SHA1.
    pub fn store(&self, body: &[u8]) -> String {
        let sha = sha1_hex(body);
        self.bodies
            .lock()
            .entry(sha.clone())
            .or_insert_with(|| body.into());
        sha
    }
    /// The body cached for `sha` (any letter case).
    pub fn get(&self, sha: &[u8]) -> Option<Arc<[u8]>> {
        let sha = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
        self.bodies.lock().get(&sha).cloned()
    }
    /// SCRIPT FLUSH.
    pub fn flush(&self) {
        self.bodies.lock().clear();
        self.confined.lock().clear();
        with_engine(|e| {
            e.functions.clear();
            Ok(())
        })
        .ok();
    }
    /// True when the script `sha` locks every shard up front: it has not completed a run yet, or a run reached a
    /// shard its declared KEYS are not on.
    pub fn locks_all(&self, sha: &str) -> bool {
        self.confined.lock().get(sha) != Some(&true)
    }
    /// Records what a run of `sha` showed: it `strayed` beyond its declared shards, or it `completed` without.
    fn learn(&self, sha: &str, strayed: bool, completed: bool) {
        let mut confined = self.confined.lock();
        if strayed {
            confined.insert(sha.to_string(), false);
        } else if completed {
            confined.entry(sha.to_string()).or_insert(true);
        }
    }
    /// SCRIPT KILL: stops the read-only scripts running longer than `busy` (Redis only sees SCRIPT KILL once a
    /// script is past its busy threshold).
    pub fn kill(&self, busy: Duration) -> KillOutcome {
        let running = self.running.lock();
        let busy: Vec<_> = running
            .iter()
            .filter(|r| r.started.elapsed() >= busy)
            .collect();
        if busy.is_empty() {
            return KillOutcome::NotBusy;
        }
        let mut killed = false;
        for r in busy.iter().filter(|r| !r.wrote.load(Ordering::Acquire)) {
            r.kill.store(true, Ordering::Release);
            killed = true;
        }
        if killed {
            KillOutcome::Killed
        } else {
            KillOutcome::Unkillable
        }
    }
    fn register(&self) -> Arc<Running> {
        let r = Arc::new(Running {
            started: Instant::now(),
            kill: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
        });
        self.running.lock().push(r.clone());
        r
    }
    fn unregister(&self, r: &Arc<Running>) {
        self.running.lock().retain(|x| !Arc::ptr_eq(x, r));
    }
}

/// Lower-case hex SHA1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// One script run: what EVAL / EVALSHA parsed.
pub struct Invocation<'x> {
    /// The script's SHA1.
    pub sha: &'x str,
    /// The script's body.
    pub body: &'x [u8],
    /// KEYS.
    pub keys: Vec<&'x [u8]>,
    /// ARGV.
    pub args: Vec<&'x [u8]>,
    /// EVAL_RO / EVALSHA_RO: write commands are refused.
    pub read_only: bool,
}

/// A thread's Lua VM.
struct Engine {
    lua: Lua,
    /// The table behind the read-only globals proxy (KEYS and ARGV are set here).
    globals: Table,
    /// Every script's environment.
    env: Table,
    /// The run's `redis.call` implementation (scoped to the run: it borrows the command context).
    call: Rc<RefCell<Option<Function>>>,
    handler: Function,
    functions: HashMap<String, Function>,
    /// The protocol `redis.setresp` chose for this run.
    resp: Rc<Cell<u8>>,
    /// The run the kill hook checks.
    current: Rc<RefCell<Option<Arc<Running>>>>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

fn with_engine<R>(f: impl FnOnce(&mut Engine) -> mlua::Result<R>) -> mlua::Result<R> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Engine::new()?);
        }
        let engine = slot.as_mut().ok_or(mlua::Error::CallbackDestructed)?;
        f(engine)
    })
}

impl Engine {
    fn new() -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let resp = Rc::new(Cell::new(2u8));
        let current: Rc<RefCell<Option<Arc<Running>>>> = Rc::new(RefCell::new(None));
        let raw = lua.create_table()?;
        raw.set(
            "unwrap",
            lua.create_function(|lua, v: Value| caught_value(lua, v))?,
        )?;
        let call: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
        for (name, raise) in [("call", true), ("pcall", false)] {
            let slot = call.clone();
            raw.set(
                name,
                lua.create_function(move |_, args: MultiValue| {
                    let f = slot
                        .borrow()
                        .clone()
                        .ok_or_else(|| rt("no script is running"))?;
                    let (ok, v): (bool, Value) = f.call(args)?;
                    match (ok, v) {
                        (false, Value::Table(t)) if raise => Err(raised(&t)),
                        (_, v) => Ok(v),
                    }
                })?,
            )?;
        }
        raw.set(
            "errtable",
            lua.create_function(|lua, s: mlua::String| convert::error_table(lua, &s.as_bytes()))?,
        )?;
        raw.set(
            "sha1hex",
            lua.create_function(|_, args: MultiValue| {
                if args.len() != 1 {
                    return Err(rt("wrong number of arguments"));
                }
                let data = match &args[0] {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(_) | Value::Number(_) => {
                        convert::number_text(&args[0]).into_bytes()
                    }
                    _ => Vec::new(),
                };
                Ok(sha1_hex(&data))
            })?,
        )?;
        raw.set("log", lua.create_function(log)?)?;
        let r = resp.clone();
        raw.set(
            "setresp",
            lua.create_function(move |_, args: MultiValue| {
                if args.len() != 1 {
                    return Err(rt("redis.setresp() requires one argument."));
                }
                match convert::as_number(&args[0]) {
                    Some(n) if n == 2.0 || n == 3.0 => {
                        r.set(n as u8);
                        Ok(())
                    }
                    _ => Err(rt("RESP version must be 2 or 3.")),
                }
            })?,
        )?;
        raw.set("version", VERSION.0)?;
        raw.set("version_num", VERSION.1)?;
        let globals = lua.create_table()?;
        let env: Table = lua
            .load(include_str!("sandbox.lua"))
            .set_name(LIB_SOURCE)
            .call((
                globals.clone(),
                raw.clone(),
                libs::all(&lua)?,
                lua.globals(),
            ))?;
        let handler = lua.create_function(locate_error)?;
        let cur = current.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| match &*cur.borrow() {
                Some(r) if r.kill.load(Ordering::Acquire) => Err(rt(KILLED)),
                _ => Ok(VmState::Continue),
            },
        )?;
        Ok(Engine {
            lua,
            globals,
            env,
            call,
            handler,
            functions: HashMap::new(),
            resp,
            current,
        })
    }

    /// The compiled function for `sha`, compiling `body` on first use.
    fn function(&mut self, sha: &str, body: &[u8]) -> Result<Function, CmdError> {
        if let Some(f) = self.functions.get(sha) {
            return Ok(f.clone());
        }
        let f = self
            .lua
            .load(body)
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                CmdError::err(format!(
                    "Error compiling script (new function): {}",
                    error_message(&e)
                ))
            })?;
        self.functions.insert(sha.to_string(), f.clone());
        Ok(f)
    }
}

/// Compiles `body` (SCRIPT LOAD checks syntax before caching).
pub fn compile(sha: &str, body: &[u8]) -> Result<(), CmdError> {
    with_engine(|e| Ok(e.function(sha, body)))
        .map_err(|e| CmdError::err(e.to_string()))?
        .map(|_| ())
}

fn rt(msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(msg.to_string())
}

/// The text of an error as Lua would show it, without mlua's own prefixes.
fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::WithContext { cause, .. } => error_message(cause),
        mlua::Error::ExternalError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// An `{err=...}` table raised by `redis.call`, carried through Lua as an mlua error.
#[derive(Debug)]
struct Raised(Vec<u8>);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl std::error::Error for Raised {}

/// The error `redis.call` raises for error table `t`.
fn raised(t: &Table) -> mlua::Error {
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    mlua::Error::external(Raised(msg))
}

/// What a script catching `v` sees: an error raised by Rust becomes the string a C library would have raised, or
/// for `redis.call` the `{err=...}` table; other values are unchanged.
fn caught_value(lua: &Lua, v: Value) -> mlua::Result<Value> {
    let Value::Error(e) = &v else {
        return Ok(v);
    };
    let mut e: &mlua::Error = e;
    loop {
        match e {
            mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
                e = cause
            }
            mlua::Error::ExternalError(inner) => {
                if let Some(Raised(msg)) = inner.downcast_ref::<Raised>() {
                    return convert::error_table(lua, &[b"-", &msg[..]].concat()).map(Value::Table);
                }
                break;
            }
            _ => break,
        }
    }
    Ok(Value::String(lua.create_string(error_message(e))?))
}

/// `tostring` of an error value, unwrapping errors raised by Rust functions.
fn error_text(v: &Value) -> String {
    match v {
        Value::Error(e) => error_message(e),
        Value::String(s) => s.to_string_lossy(),
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(_) | Value::Number(_) => convert::number_text(v),
        other => format!("{}: {:p}", other.type_name(), other.to_pointer()),
    }
}

/// The message handler scripts run under (Redis's `__redis__err__handler`): turns any error into an `{err=...}`
/// table and records where in the script it happened, skipping C frames and the sandbox's own.
fn locate_error(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let table = match caught_value(lua, err)? {
        Value::Table(t) => t,
        other => {
            let t = lua.create_table()?;
            t.set("err", format!("ERR {}", error_text(&other)))?;
            t
        }
    };
    if let Some(frame) = script_frame(lua) {
        table.set("source", frame.source)?;
        table.set("line", frame.line.unwrap_or(-1))?;
    }
    Ok(table)
}

/// Where a script is executing: its innermost frame that is neither C nor the sandbox's own Lua.
struct ScriptFrame {
    source: String,
    line: Option<i64>,
}

fn script_frame(lua: &Lua) -> Option<ScriptFrame> {
    for level in 1.. {
        let (what, frame) = lua.inspect_stack(level, |d| {
            let s = d.source();
            let frame = ScriptFrame {
                source: s.source.as_deref().unwrap_or("?").to_string(),
                line: d.current_line().map(|l| l as i64),
            };
            (s.what, frame)
        })?;
        if what != "C" && frame.source != LIB_SOURCE {
            return Some(frame);
        }
    }
    None
}

/// `redis.log(level, message, ...)`: to the server log.
fn log(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() < 2 {
        return Err(rt("redis.log() requires two arguments or more."));
    }
    let Some(level) = convert::as_number(&args[0]) else {
        return Err(rt("First argument must be a number (log level)."));
    };
    let parts: Vec<String> = args
        .iter()
        .skip(1)
        .filter_map(|v| match v {
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Integer(_) | Value::Number(_) => Some(convert::number_text(v)),
            _ => None,
        })
        .collect();
    let msg = parts.join(" ");
    match level as i64 {
        0 => tracing::debug!(target: "script", "{msg}"),
        1 | 2 => tracing::info!(target: "script", "{msg}"),
        3 => tracing::warn!(target: "script", "{msg}"),
        _ => return Err(rt("Invalid debug level.")),
    }
    Ok(())
}

/// Runs a script for EVAL / EVALSHA with `ctx`'s shards held, writing its reply to `ctx.out`.
pub fn run(ctx: &mut Ctx, inv: Invocation) -> Result<(), CmdError> {
    let server = ctx.server;
    let nested = ctx.client.in_exec;
    if !nested && server.scripts.locks_all(inv.sha) {
        // Nothing has run yet: trade the declared shards for all of them, taken in order.
        *ctx.shards = crate::store::Locked::None;
        *ctx.shards = server.store.lock_all();
    }
    let saved_db = ctx.client.db;
    ctx.client.in_exec = true;
    let running = server.scripts.register();
    let result = with_engine(|engine| {
        let f = match engine.function(inv.sha, inv.body) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        run_in(engine, ctx, &inv, f, &running).map(Ok)
    });
    server.scripts.unregister(&running);
    ctx.client.in_exec = nested;
    if ctx.client.db != saved_db {
        ctx.client.select(saved_db);
    }
    result.map_err(|e| CmdError::err(error_message(&e)))?
}

/// The state `redis.call` works with during one run.
struct RunState<'c, 'a, 's> {
    ctx: &'c mut Ctx<'a, 's>,
    sha: &'c str,
    read_only: bool,
    running: &'c Running,
    resp: Rc<Cell<u8>>,
    writes: Vec<(&'static CommandSpec, OwnedArgv)>,
    /// The shards of the declared KEYS, sorted.
    declared: Vec<usize>,
    /// A `redis.call` reached a key on a shard not in `declared`.
    strayed: bool,
}

fn run_in(
    engine: &mut Engine,
    ctx: &mut Ctx,
    inv: &Invocation,
    f: Function,
    running: &Arc<Running>,
) -> mlua::Result<()> {
    let lua = &engine.lua;
    engine.resp.set(2);
    let keys = lua.create_sequence_from(
        inv.keys
            .iter()
            .map(|k| lua.create_string(k))
            .collect::<mlua::Result<Vec<_>>>()?,
    )?;
    let args = lua.create_sequence_from(
        inv.args
            .iter()
            .map(|a| lua.create_string(a))
            .collect::<mlua::Result<Vec<_>>>()?,
    )?;
    engine.globals.raw_set("KEYS", keys)?;
    engine.globals.raw_set("ARGV", args)?;
    *engine.current.borrow_mut() = Some(running.clone());
    let store = &ctx.server.store;
    let mut declared: Vec<usize> = inv.keys.iter().map(|k| store.shard_of(k)).collect();
    declared.sort_unstable();
    declared.dedup();
    let completed = Cell::new(false);
    let state = RefCell::new(RunState {
        ctx,
        sha: inv.sha,
        read_only: inv.read_only,
        running,
        resp: engine.resp.clone(),
        writes: Vec::new(),
        declared,
        strayed: false,
    });
    let outcome = lua.scope(|scope| {
        let call = scope.create_function(|lua, args: MultiValue| {
            let mut st = state.borrow_mut();
            match redis_call(lua, &mut st, args)? {
                Ok(v) => Ok((true, v)),
                Err(t) => Ok((false, Value::Table(t))),
            }
        })?;
        *engine.call.borrow_mut() = Some(call);
        let xpcall: Function = lua.globals().get("xpcall")?;
        let result: MultiValue = xpcall.call((f, engine.handler.clone()))?;
        let mut st = state.borrow_mut();
        let ok = matches!(result.front(), Some(Value::Boolean(true)));
        let value = result.get(1).cloned().unwrap_or(Value::Nil);
        completed.set(ok);
        if ok {
            let resp3 = st.resp.get() == 3;
            convert::lua_to_reply(&value, st.ctx.out, resp3);
        } else {
            let msg = match &value {
                Value::Table(t) => convert::script_error(t, st.sha),
                other => format!("ERR {}", error_text(other)),
            };
            st.ctx.out.error(&msg);
        }
        Ok(())
    });
    *engine.current.borrow_mut() = None;
    *engine.call.borrow_mut() = None;
    engine.globals.raw_set("KEYS", Value::Nil)?;
    engine.globals.raw_set("ARGV", Value::Nil)?;
    let st = state.into_inner();
    st.ctx
        .server
        .scripts
        .learn(st.sha, st.strayed, completed.get());
    if !st.writes.is_empty() {
        // The dispatcher spoils WATCHes and serves blocked clients for these once the script is done.
        st.ctx
            .client
            .executed
            .get_or_insert_with(Vec::new)
            .extend(st.writes);
    }
    outcome
}

/// Lua reply or error table of one `redis.call`.
type CallResult = Result<Value, Table>;

/// `redis.call` / `redis.pcall`: runs one command inside the script.
fn redis_call(lua: &Lua, st: &mut RunState, args: MultiValue) -> mlua::Result<CallResult> {
    let fail = |msg: &str| convert::error_table(lua, msg.as_bytes()).map(Err);
    if args.is_empty() {
        return fail("Please specify at least one argument for this redis lib call");
    }
    let mut argv = OwnedArgv::default();
    for v in &args {
        match v {
            Value::String(s) => argv.push(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => argv.push(convert::number_text(v).as_bytes()),
            _ => return fail("Lua redis lib command arguments must be strings or integers"),
        }
    }
    let spec = match crate::cmd::resolve(argv.argv()) {
        Ok(spec) => spec,
        Err(CmdError::WrongArity(_)) => {
            return fail("Wrong number of args calling Redis command from script")
        }
        Err(_) => return fail("Unknown Redis command called from script"),
    };
    if spec.has(flag::NOSCRIPT) {
        return fail("This Redis command is not allowed from script");
    }
    if spec.has(flag::WRITE) && st.read_only {
        return fail("Write commands are not allowed from read-only scripts.");
    }
    if let Err(msg) = lock_keys(st, spec, argv.argv()) {
        return fail(&msg);
    }
    let mut out = Reply::scratch(st.resp.get() == 3);
    let ctx = &mut *st.ctx;
    let mut inner = Ctx {
        server: ctx.server,
        client: &mut *ctx.client,
        out: &mut out,
        shards: &mut *ctx.shards,
        now: ctx.now,
        flow: Flow::Continue,
    };
    if let Err(e) = (spec.handler)(&mut inner, argv.argv()) {
        inner.out.error(&e.to_string());
    }
    if spec.has(flag::WRITE) {
        st.running.wrote.store(true, Ordering::Release);
        st.writes.push((spec, argv));
    }
    match value::decode(&out.buf) {
        Ok((frame, _)) => convert::frame_to_lua(lua, frame),
        Err(e) => fail(&format!("internal error decoding a reply: {e}")),
    }
}

/// Makes sure every shard `spec` touches for `argv` is held, adding the missing ones (see the module doc).
fn lock_keys(st: &mut RunState, spec: &CommandSpec, argv: Argv) -> Result<(), String> {
    let store = &st.ctx.server.store;
    let mut need: Vec<usize> = if spec.has(flag::ALL_SHARDS) {
        (0..store.shard_count()).collect()
    } else {
        spec.key_indices(argv)
            .map(|i| store.shard_of(argv.get(i)))
            .collect()
    };
    need.sort_unstable();
    need.dedup();
    if need
        .iter()
        .any(|idx| st.declared.binary_search(idx).is_err())
    {
        st.strayed = true;
    }
    for idx in need {
        if st.ctx.shards.holds(idx) {
            continue;
        }
        if let Some(guard) = store.try_lock_shard(idx) {
            st.ctx.shards.add(idx, guard);
            continue;
        }
        if st.ctx.shards.max_index().is_none_or(|max| idx > max) {
            st.ctx.shards.add(idx, store.lock_shard(idx));
            continue;
        }
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            if let Some(guard) = store.try_lock_shard(idx) {
                st.ctx.shards.add(idx, guard);
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Script accessed a key not declared in KEYS whose shard stayed busy for {} ms; \
                     declare the script's keys, or retry (its next runs lock every shard)",
                    LOCK_WAIT.as_millis()
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    Ok(())
}
