//! Lua scripting (EVAL and friends, and FCALL's functions): the script cache, the sandboxed Lua 5.1 VM, `redis.call`,
//! BUSY and SCRIPT KILL / FUNCTION KILL. Function libraries are kept in [`function`], script flags read in [`flags`].
//!
//! Each worker thread owns one Lua VM (scripts never share a VM between threads, and a VM is never re-entered),
//! built once with Redis 7's sandbox (`sandbox.lua`): read-only globals and libraries, errors on missing globals, only
//! Redis's allow-listed functions, plus `redis`, `cjson`, `cmsgpack`, `bit` and `struct`. The bodies live in the
//! server-wide [`Scripts`] cache that EVALSHA and SCRIPT read; each VM keeps its compiled functions by SHA1 and by
//! body, so a repeated EVAL neither hashes its body nor takes a server-wide lock. SCRIPT FLUSH bumps an epoch that
//! makes every VM drop its functions before its next run.
//!
//! Atomicity: a script's first run locks every shard up front, and so does every run of a script that has been seen
//! to reach a key outside the shards of its declared KEYS (job-queue libraries such as BullMQ name job keys from a
//! prefix): such a script can neither fail nor deadlock on a shard mid-run. A script seen to stay on its declared
//! shards runs with only those, locked by the dispatcher. If such a run does reach a shard not held, it adds that
//! shard: `try_lock` (never waits), else `lock` when its index is above every held one (ascending order, so no
//! cycle), else `try_lock` again for at most [`LOCK_WAIT`] and then the call fails; either way the script locks every
//! shard from its next run on. Shards are only ever added, and all are released after the script, so the script is
//! atomic (two-phase locking).
//!
//! Busy scripts: every VM has a [`Running`] slot, registered once with the server, that says which run is in
//! progress and since when. The instruction-count hook (every `HOOK_EVERY` instructions, so only long scripts
//! reach it) publishes the shards the run holds, and past `busy-reply-threshold` hands the run's worker thread to
//! another thread, so that the worker's other clients are served meanwhile (`hand_off_worker`); a client waiting for
//! one of the held shards past the threshold gets BUSY instead of waiting (see [`Scripts::busy_holding`] and
//! `Store::lock_unless_busy`), and SCRIPT KILL stops the run through the same slot. A short script costs a few atomic
//! stores for all this.
//!
//! `redis.call` and the run's KEYS, ARGV and result work on the Lua stack directly (Lua C functions and `exec_raw`),
//! not through mlua's values: about a fifth of a short script's cost (see `convert`).

pub mod convert;
pub mod dump;
pub mod flags;
pub mod function;
mod libs;

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hashbrown::{HashMap, HashSet};
use mlua::{
    ffi, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState,
};
use parking_lot::Mutex;

use crate::cmd::{flag, CmdError, CommandSpec, Ctx, Flow, KeyShards};
use crate::protocol::{Argv, OwnedArgv, Reply};
use crate::store::{now_ms, Locked, Shard};
use flags::Flags;
use function::{FunctionCache, FunctionInfo, Functions, Loaded};

/// How long a library's code may run in FUNCTION LOAD (Redis's limit).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a script waits for a shard below one it holds before its `redis.call` fails.
pub const LOCK_WAIT: Duration = Duration::from_millis(200);

/// The chunk name of the sandbox; its frames are skipped when an error is located.
const LIB_SOURCE: &str = "=ringkv";

/// Instructions between two checks of the kill flag (Redis uses the same count).
const HOOK_EVERY: u32 = 100_000;

/// Longest a long script waits for another thread to take over its worker (see [`hand_off_worker`]).
const HAND_OFF_WAIT: Duration = Duration::from_millis(100);

/// The error a killed script ends with.
const KILLED: &str = "Script killed by user with SCRIPT KILL...";

/// The version scripts see in `redis.REDIS_VERSION`.
const VERSION: (&str, i64) = ("7.2.4", 0x0007_0204);

/// A script's SHA1 as 40 lower-case hex digits.
pub type Sha = [u8; 40];

/// Runs that have published their shards, on every server: while zero, no lock waiter needs to look for a busy
/// script.
static PUBLISHED: AtomicUsize = AtomicUsize::new(0);

/// Tells servers apart, so that a VM never uses functions compiled for another server (unit tests run several).
static NEXT_SERVER: AtomicU64 = AtomicU64::new(1);

/// The server-wide script state: bodies by SHA1, what each script's runs showed about its keys, and the VMs' run
/// slots.
pub struct Scripts {
    id: u64,
    bodies: Mutex<HashMap<Sha, Arc<[u8]>>>,
    /// By SHA1: true when the script's runs so far stayed on the shards of its declared KEYS, false once one reached
    /// another shard. A script not listed has not completed a run yet.
    confined: Mutex<HashMap<Sha, bool>>,
    /// Bumped whenever a script is found to stray: VMs then forget which scripts they knew to be confined.
    strays: AtomicU64,
    /// Bumped by SCRIPT FLUSH: a VM whose functions are from an older epoch drops them.
    epoch: AtomicU64,
    /// One slot per VM that ran a script of this server (a VM's thread may end: hence weak).
    slots: Mutex<Vec<Weak<Running>>>,
    /// The function libraries (FUNCTION LOAD).
    pub functions: Functions,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            id: NEXT_SERVER.fetch_add(1, Ordering::Relaxed),
            bodies: Mutex::default(),
            confined: Mutex::default(),
            strays: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            slots: Mutex::default(),
            functions: Functions::default(),
        }
    }
}

/// One VM's script runs, as SCRIPT KILL and lock waiters see them. Only the VM's thread starts and ends runs.
#[derive(Default)]
pub struct Running {
    /// The number of the run in progress or last run (counts up from 1).
    run: AtomicU64,
    /// When the run in progress started (Unix ms); 0 when idle.
    started: AtomicU64,
    /// The number of the run SCRIPT KILL stopped: a later run is never affected.
    kill: AtomicU64,
    /// The run has executed a write command (SCRIPT KILL then refuses, as stopping it would break atomicity).
    wrote: AtomicBool,
    /// The shards the run holds, published by the hook once the run is long, and emptied at its end.
    shards: Mutex<Vec<usize>>,
    /// The run is a function's (FCALL), not an EVAL script's.
    function: AtomicBool,
    /// A long run's function name (or SHA1) and command, published with its shards (FUNCTION STATS).
    call: Mutex<Option<(String, Vec<Vec<u8>>)>>,
}

impl Running {
    /// True when the run in progress started at least `busy` ago.
    fn busy(&self, now: u64, busy: Duration) -> bool {
        let started = self.started.load(Ordering::Acquire);
        started != 0 && now.saturating_sub(started) >= busy.as_millis() as u64
    }
}

/// What SCRIPT KILL or FUNCTION KILL found.
#[derive(Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// A script was told to stop.
    Killed,
    /// No script has been running longer than the busy threshold.
    NotBusy,
    /// The busy scripts have written: they cannot be stopped without breaking atomicity.
    Unkillable,
    /// The busy run is of the other kind (a function for SCRIPT KILL, an EVAL script for FUNCTION KILL).
    OtherKind,
}

/// A run that has been going on past the busy threshold, for FUNCTION STATS.
pub struct BusyRun {
    /// A function's run (FCALL), else an EVAL script's.
    pub function: bool,
    /// The function's name, or the script's SHA1.
    pub name: String,
    /// The command that started it.
    pub command: Vec<Vec<u8>>,
    pub duration_ms: u64,
}

/// The reply to a command that needs a shard a busy EVAL script holds (Redis's `slowevalerr`).
pub const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// The same while a function is busy (Redis's `slowscripterr`).
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

impl Scripts {
    /// Caches `body` and returns its SHA1.
    pub fn store(&self, body: &[u8]) -> Sha {
        let sha = sha1_of(body);
        self.insert(sha, body);
        sha
    }
    fn insert(&self, sha: Sha, body: &[u8]) {
        self.bodies.lock().entry(sha).or_insert_with(|| body.into());
    }
    /// The body cached for `sha` (any letter case).
    pub fn get(&self, sha: &[u8]) -> Option<Arc<[u8]>> {
        self.bodies.lock().get(&parse_sha(sha)?).cloned()
    }
    /// SCRIPT FLUSH.
    pub fn flush(&self) {
        let mut bodies = self.bodies.lock();
        bodies.clear();
        self.confined.lock().clear();
        libs::cjson::reset_script_settings();
        // Every VM drops its compiled functions before its next run.
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
    /// True when the script `sha` locks every shard up front: it has not completed a run yet, or a run reached a
    /// shard its declared KEYS are not on.
    pub fn locks_all(&self, sha: &Sha) -> bool {
        self.confined.lock().get(sha) != Some(&true)
    }
    /// Records what a run of `sha` showed: it `strayed` beyond its declared shards, or it `completed` without.
    fn learn(&self, sha: &Sha, strayed: bool, completed: bool) {
        let mut confined = self.confined.lock();
        if strayed {
            if confined.insert(*sha, false) != Some(false) {
                self.strays.fetch_add(1, Ordering::AcqRel);
            }
        } else if completed {
            confined.entry(*sha).or_insert(true);
        }
    }
    /// SCRIPT KILL (`functions` false) or FUNCTION KILL: stops the read-only runs of that kind going on longer than
    /// `busy` (Redis only sees a KILL once a script is past its busy threshold).
    pub fn kill(&self, busy: Duration, functions: bool) -> KillOutcome {
        let now = now_ms();
        let mut outcome = KillOutcome::NotBusy;
        // As Redis's scriptKill: a run that wrote is unkillable before it is of the other kind.
        for slot in self.live_slots().filter(|s| s.busy(now, busy)) {
            if slot.wrote.load(Ordering::Acquire) {
                if outcome != KillOutcome::Killed {
                    outcome = KillOutcome::Unkillable;
                }
            } else if slot.function.load(Ordering::Acquire) != functions {
                if outcome == KillOutcome::NotBusy {
                    outcome = KillOutcome::OtherKind;
                }
            } else {
                slot.kill
                    .store(slot.run.load(Ordering::Acquire), Ordering::Release);
                outcome = KillOutcome::Killed;
            }
        }
        outcome
    }
    /// True when shard `idx` is held by a script running for `busy` or longer: a command waiting for that shard
    /// gets BUSY. Called by lock waiters after spinning, so its cost is off the fast path.
    pub fn busy_holding(&self, idx: usize, busy: Duration) -> bool {
        if PUBLISHED.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = now_ms();
        self.live_slots()
            .any(|s| s.busy(now, busy) && s.shards.lock().contains(&idx))
    }
    /// The BUSY error for a command that found a shard held by a busy run: which KILL it names depends on whether a
    /// function is busy.
    pub fn busy_error(&self, busy: Duration) -> &'static str {
        let now = now_ms();
        let function = self
            .live_slots()
            .any(|s| s.busy(now, busy) && s.function.load(Ordering::Acquire));
        if function {
            BUSY_FUNCTION
        } else {
            BUSY_SCRIPT
        }
    }
    /// A run going on longer than `busy`, if any (the one that started first).
    pub fn busy_run(&self, busy: Duration) -> Option<BusyRun> {
        let now = now_ms();
        let slot = self
            .live_slots()
            .filter(|s| s.busy(now, busy))
            .min_by_key(|s| s.started.load(Ordering::Acquire))?;
        let (name, command) = slot.call.lock().clone().unwrap_or_default();
        Some(BusyRun {
            function: slot.function.load(Ordering::Acquire),
            name,
            command,
            duration_ms: now.saturating_sub(slot.started.load(Ordering::Acquire)),
        })
    }
    fn live_slots(&self) -> impl Iterator<Item = Arc<Running>> {
        let slots: Vec<_> = self.slots.lock().iter().filter_map(Weak::upgrade).collect();
        slots.into_iter()
    }
    /// A new slot for a VM that starts running this server's scripts.
    fn new_slot(&self) -> Arc<Running> {
        let slot = Arc::new(Running::default());
        let mut slots = self.slots.lock();
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        slot
    }
}

/// The SHA1 of `data`.
pub fn sha1_of(data: &[u8]) -> Sha {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut sha = [0u8; 40];
    for (i, b) in sha1_smol::Sha1::from(data)
        .digest()
        .bytes()
        .iter()
        .enumerate()
    {
        sha[2 * i] = HEX[usize::from(b >> 4)];
        sha[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    sha
}

/// Lower-case hex SHA1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    sha_text(&sha1_of(data)).to_string()
}

/// A SHA as text.
pub fn sha_text(sha: &Sha) -> &str {
    // Always ASCII hex digits.
    std::str::from_utf8(sha).unwrap_or_default()
}

/// `text` as a SHA (40 characters, any letter case; Redis lower-cases what EVALSHA and SCRIPT EXISTS are given).
fn parse_sha(text: &[u8]) -> Option<Sha> {
    let mut sha: Sha = text.try_into().ok()?;
    sha.make_ascii_lowercase();
    Some(sha)
}

/// Which script to run: EVAL's body, EVALSHA's SHA1 or FCALL's function.
#[derive(Clone, Copy)]
pub enum Source<'x> {
    /// The script's text.
    Body(&'x [u8]),
    /// The SHA1 of a cached script, as the client wrote it.
    Sha(&'x [u8]),
    /// The name of a function (any letter case).
    Function(&'x [u8]),
}

/// One script run: what EVAL / EVALSHA parsed.
pub struct Invocation<'x> {
    /// The script.
    pub source: Source<'x>,
    /// The whole command: `EVAL script numkeys key... arg...`.
    pub argv: Argv<'x>,
    /// How many arguments after `numkeys` are KEYS (checked against the argument count).
    pub numkeys: usize,
    /// EVAL_RO / EVALSHA_RO / FCALL_RO: write commands are refused.
    pub read_only: bool,
}

/// What a run executes, once resolved.
struct Target<'t> {
    f: &'t Function,
    /// The flags: `None` for an EVAL script without a shebang (Redis 6 compatible).
    flags: Option<Flags>,
    /// The script's SHA1, or the function's [`Loaded::id`]: the key of what runs showed about their keys.
    id: Sha,
    /// The function's name, for a function.
    function: Option<&'t str>,
}

impl Target<'_> {
    /// How errors name the run: the function, or the script's SHA1.
    fn name(&self) -> &str {
        self.function.unwrap_or_else(|| sha_text(&self.id))
    }
}

impl<'x> Invocation<'x> {
    fn keys(&self) -> impl ExactSizeIterator<Item = &'x [u8]> + 'x {
        let argv = self.argv;
        (3..3 + self.numkeys).map(move |i| argv.get(i))
    }
    fn args(&self) -> impl ExactSizeIterator<Item = &'x [u8]> + 'x {
        let argv = self.argv;
        (3 + self.numkeys..argv.len()).map(move |i| argv.get(i))
    }
}

/// A thread's Lua VM, its compiled scripts and its functions.
struct Engine {
    vm: Vm,
    cache: Cache,
    functions: FunctionCache,
    confined: KnownConfined,
}

/// The scripts this VM knows to stay on their declared shards ([`Scripts::locks_all`] false), valid while the
/// server, its SCRIPT FLUSH epoch and its count of straying scripts are unchanged: most runs then learn whether to lock
/// every shard without a server-wide lock.
#[derive(Default)]
struct KnownConfined {
    valid_for: (u64, u64, u64),
    shas: HashSet<Sha>,
}

impl KnownConfined {
    /// [`Scripts::locks_all`], remembered while it is false.
    fn locks_all(&mut self, scripts: &Scripts, sha: &Sha) -> bool {
        let now = (
            scripts.id,
            scripts.epoch.load(Ordering::Acquire),
            scripts.strays.load(Ordering::Acquire),
        );
        if self.valid_for != now {
            self.valid_for = now;
            self.shas.clear();
        }
        if self.shas.contains(sha) {
            return false;
        }
        let all = scripts.locks_all(sha);
        if !all {
            self.shas.insert(*sha);
        }
        all
    }
}

/// The Lua state and what runs need from it.
struct Vm {
    lua: Lua,
    /// Every script's environment.
    env: Table,
    handler: Function,
    /// `sandbox.lua`'s runner: sets KEYS and ARGV, then calls a script under `xpcall` with the error handler.
    runner: Function,
    /// The environment of function libraries.
    fenv: Table,
    /// `sandbox.lua`'s library loader: runs a library's code with the load API, returns what it registered.
    load_library: Function,
    /// `sandbox.lua`'s function runner: calls a function with its keys and arguments under `xpcall`.
    fcall: Function,
    /// The protocol `redis.setresp` chose for this run.
    resp: Rc<Cell<u8>>,
    /// What the instruction hook sees of the run.
    hook: Rc<HookState>,
    /// `redis.call`'s buffers, kept between runs.
    buffers: RefCell<CallBuffers>,
}

/// The run as the instruction hook sees it.
#[derive(Default)]
struct HookState {
    /// This VM's slot with the server it serves now.
    slot: RefCell<Option<Arc<Running>>>,
    /// The number of the run in progress; 0 when idle.
    run: Cell<u64>,
    /// The shards the run holds.
    held: RefCell<Vec<usize>>,
    /// The run has published `held` in its slot.
    published: Cell<bool>,
    /// While FUNCTION LOAD runs a library's code: when it must have ended.
    load_deadline: Cell<Option<Instant>>,
    /// The run's `busy-reply-threshold`, and whether it has handed its worker over (see [`hand_off_worker`]).
    busy_after: Cell<Duration>,
    handed_off: Cell<bool>,
}

impl HookState {
    /// Publishes the held shards in the slot (the first time, and again when the run adds a shard after that).
    fn publish(&self) {
        if let Some(slot) = &*self.slot.borrow() {
            let held = self.held.borrow();
            let mut shards = slot.shards.lock();
            shards.clear();
            shards.extend_from_slice(&held);
            if !self.published.replace(true) {
                PUBLISHED.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// A script past `busy-reply-threshold` occupies its worker thread, and with it the clients that worker serves: hand
/// the worker (its queued tasks and the socket polling) to another thread with tokio's `block_in_place`, so other
/// clients get their replies (BUSY, or SCRIPT KILL's) while the script runs; this thread finishes the script and then
/// leaves the workers. Until the threshold, the worker's other clients wait for the script, as Redis's clients do
/// (which also keeps the threads running Lua at one per worker, plus the few scripts that ran past the threshold).
/// `block_in_place` takes the worker back if its closure returns before the new thread has taken it, so the closure
/// waits (at most [`HAND_OFF_WAIT`]) until a task spawned here has run, that is until another thread runs the worker.
fn hand_off_worker() {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return;
    }
    let moved = Arc::new(AtomicBool::new(false));
    let flag = moved.clone();
    handle.spawn(async move { flag.store(true, Ordering::Release) });
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + HAND_OFF_WAIT;
        while !moved.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(50));
        }
    });
}

/// Reused by every run: the shards of the declared KEYS, and `redis.call`'s command arguments and reply.
#[derive(Default)]
struct CallBuffers {
    /// The shards of the run's declared KEYS, sorted.
    declared: Vec<usize>,
    data: Vec<u8>,
    spans: Vec<Range<usize>>,
    reply: Vec<u8>,
}

impl CallBuffers {
    fn push(&mut self, arg: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(arg);
        self.spans.push(start..self.data.len());
    }
}

/// Compiled functions of one server's scripts.
#[derive(Default)]
struct Cache {
    /// [`Scripts::id`] of the server, and its epoch when these were compiled.
    server: u64,
    epoch: u64,
    by_sha: HashMap<Sha, Compiled>,
    by_body: HashMap<Box<[u8]>, Sha>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

fn with_engine<R>(f: impl FnOnce(&mut Engine) -> mlua::Result<R>) -> mlua::Result<R> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Engine {
                vm: Vm::new()?,
                cache: Cache::default(),
                functions: FunctionCache::default(),
                confined: KnownConfined::default(),
            });
        }
        let engine = slot.as_mut().ok_or(mlua::Error::CallbackDestructed)?;
        f(engine)
    })
}

impl Vm {
    fn new() -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let resp = Rc::new(Cell::new(2u8));
        let hook = Rc::new(HookState::default());
        let raw = lua.create_table()?;
        raw.set(
            "unwrap",
            lua.create_function(|lua, v: Value| caught_value(lua, v))?,
        )?;
        raw.set(
            "errtable",
            lua.create_function(|lua, s: mlua::String| convert::error_table(lua, &s.as_bytes()))?,
        )?;
        raw.set(
            "sha1hex",
            lua.create_function(|_, args: MultiValue| {
                if args.len() != 1 {
                    return Err(api_error("wrong number of arguments"));
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
        raw.set("set_repl", lua.create_function(set_repl)?)?;
        // SAFETY: as redis.call below.
        raw.set("acl_check_cmd", unsafe {
            lua.create_c_function(lua_acl_check_cmd)?
        })?;
        let r = resp.clone();
        raw.set(
            "setresp",
            lua.create_function(move |_, args: MultiValue| {
                if args.len() != 1 {
                    return Err(api_error("redis.setresp() requires one argument."));
                }
                // Redis reads the version into a C int, so 2.5 is 2.
                match convert::as_number(&args[0]).map(f64::trunc) {
                    Some(n) if n == 2.0 || n == 3.0 => {
                        r.set(n as u8);
                        Ok(())
                    }
                    _ => Err(api_error("RESP version must be 2 or 3.")),
                }
            })?,
        )?;
        raw.set("version", VERSION.0)?;
        raw.set("version_num", VERSION.1)?;
        libs::random::install(&lua, &lua.globals().get("math")?)?;
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
        // Scripts' redis table, and the functions' copy of it.
        for table in ["redis", "fredis"] {
            let redis: Table = raw.get(table)?;
            // SAFETY: these follow the C function protocol (see `c_function`).
            unsafe {
                redis.raw_set("call", lua.create_c_function(lua_redis_call)?)?;
                redis.raw_set("pcall", lua.create_c_function(lua_redis_pcall)?)?;
            }
        }
        let handler = lua.create_function(locate_error)?;
        let runner: Function = raw.get("run")?;
        let h = hook.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if let Some(deadline) = h.load_deadline.get() {
                    if Instant::now() > deadline {
                        return Err(rt("FUNCTION LOAD timeout"));
                    }
                    return Ok(VmState::Continue);
                }
                let run = h.run.get();
                let killed = match &*h.slot.borrow() {
                    Some(slot) => run != 0 && slot.kill.load(Ordering::Acquire) == run,
                    None => false,
                };
                if killed {
                    return Err(rt(KILLED));
                }
                if run != 0 && !h.published.get() {
                    // The run is long: let lock waiters see which shards it holds, and FUNCTION STATS what it is.
                    h.publish();
                    if let Some(slot) = &*h.slot.borrow() {
                        let call = on_current_run(|st| {
                            let command = st.argv.iter_from(0).map(<[u8]>::to_vec).collect();
                            (st.name.to_string(), command)
                        });
                        *slot.call.lock() = call.ok();
                    }
                }
                let busy = match &*h.slot.borrow() {
                    Some(slot) => run != 0 && slot.busy(now_ms(), h.busy_after.get()),
                    None => false,
                };
                if busy && !h.handed_off.replace(true) {
                    hand_off_worker();
                }
                Ok(VmState::Continue)
            },
        )?;
        Ok(Vm {
            lua,
            env,
            handler,
            runner,
            fenv: raw.get("fenv")?,
            load_library: raw.get("load_library")?,
            fcall: raw.get("fcall")?,
            resp,
            hook,
            buffers: RefCell::default(),
        })
    }

    /// Compiles the EVAL script `body`, its shebang line read for its flags.
    fn compile(&self, body: &[u8]) -> Result<Compiled, CmdError> {
        let (flags, code_at) = flags::eval_shebang(body).map_err(CmdError::err)?;
        let f = self
            .lua
            .load(&body[code_at..])
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                CmdError::err(format!(
                    "Error compiling script (new function): {}",
                    error_message(&e)
                ))
            })?;
        Ok(Compiled { f, flags })
    }

    /// Runs a library's Lua code (without its first line) as FUNCTION LOAD does, and returns the functions it
    /// registered, or Redis's error text.
    fn load_library(&self, body: &[u8]) -> Result<Vec<(FunctionInfo, Function)>, String> {
        let chunk = self
            .lua
            .load(body)
            .set_name("@user_function")
            .set_environment(self.fenv.clone())
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", error_message(&e)))?;
        let registering = |text: &str| format!("Error registering functions: {text}");
        self.hook
            .load_deadline
            .set(Some(Instant::now() + LOAD_TIMEOUT));
        let outcome = self.load_library.call::<(bool, Value)>(chunk);
        self.hook.load_deadline.set(None);
        let (ok, value) =
            outcome.map_err(|e| registering(&format!("ERR {}", error_message(&e))))?;
        let list = match value {
            Value::Table(list) if ok => list,
            Value::Table(e) => {
                let text: String = e.raw_get("err").unwrap_or_default();
                return Err(registering(&text));
            }
            other => return Err(registering(&format!("ERR {}", error_text(&other)))),
        };
        let read = |t: Table| -> mlua::Result<(FunctionInfo, Function)> {
            let description: Option<mlua::String> = t.raw_get("description")?;
            let info = FunctionInfo {
                name: t.raw_get("name")?,
                description: description.map(|d| d.as_bytes().to_vec()),
                flags: Flags(t.raw_get("flags")?),
            };
            Ok((info, t.raw_get("callback")?))
        };
        list.sequence_values::<Table>()
            .map(|t| t.and_then(read))
            .collect::<mlua::Result<_>>()
            .map_err(|e| registering(&format!("ERR {}", error_message(&e))))
    }
}

/// A compiled EVAL script and the flags of its shebang (`None` without one).
struct Compiled {
    f: Function,
    flags: Option<Flags>,
}

impl Cache {
    /// Drops the functions when they belong to another server or to before a SCRIPT FLUSH.
    fn sync(&mut self, scripts: &Scripts, hook: &HookState) {
        let epoch = scripts.epoch.load(Ordering::Acquire);
        if self.server != scripts.id {
            self.server = scripts.id;
            *hook.slot.borrow_mut() = Some(scripts.new_slot());
        } else if self.epoch == epoch {
            return;
        }
        self.epoch = epoch;
        self.by_sha.clear();
        self.by_body.clear();
    }

    /// The SHA and compiled script of EVAL's body or EVALSHA's SHA1, compiling (and for EVAL caching server-wide)
    /// on first use.
    fn resolve(
        &mut self,
        vm: &Vm,
        scripts: &Scripts,
        source: Source,
    ) -> Result<(Sha, &Compiled), CmdError> {
        let (sha, body) = match source {
            Source::Body(body) => match self.by_body.get(body) {
                Some(sha) => (*sha, None),
                None => (sha1_of(body), Some(body)),
            },
            Source::Sha(text) | Source::Function(text) => {
                (parse_sha(text).ok_or_else(noscript)?, None)
            }
        };
        let f = match self.by_sha.entry(sha) {
            hashbrown::hash_map::Entry::Occupied(e) => e.into_mut(),
            hashbrown::hash_map::Entry::Vacant(e) => {
                let stored;
                let body = match body {
                    Some(body) => body,
                    None => {
                        stored = scripts.get(&sha).ok_or_else(noscript)?;
                        &stored[..]
                    }
                };
                let f = vm.compile(body)?;
                // As in Redis, a script that does not compile is not cached.
                scripts.insert(sha, body);
                self.by_body.insert(body.into(), sha);
                e.insert(f)
            }
        };
        Ok((sha, f))
    }
}

impl FunctionCache {
    /// FCALL's function `name` (any letter case), loading every library again after a change.
    fn resolve(&mut self, vm: &Vm, scripts: &Scripts, name: &[u8]) -> Result<&Loaded, CmdError> {
        let functions = &scripts.functions;
        if self.valid_for != Some((scripts.id, functions.epoch())) {
            let (epoch, libraries) = functions.snapshot();
            self.by_name.clear();
            for library in &libraries {
                let loaded = match vm.load_library(library.body()) {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        // It loaded on the thread that ran FUNCTION LOAD; only a time-out can make it differ here.
                        tracing::warn!(library = library.name, "function library not loaded: {e}");
                        continue;
                    }
                };
                for (info, f) in loaded {
                    let id = sha1_of(&[&library.code[..], b"\0", info.name.as_bytes()].concat());
                    // Names differing only in case: the first registered is the one FCALL finds, as in Redis.
                    self.by_name
                        .entry(info.name.to_ascii_lowercase())
                        .or_insert(Loaded {
                            f,
                            flags: info.flags,
                            name: info.name,
                            id,
                        });
                }
            }
            self.valid_for = Some((scripts.id, epoch));
        }
        // Names are kept lower-cased; most calls spell them so, and need no lower-cased copy.
        let name = String::from_utf8_lossy(name);
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_name.get(&name.to_ascii_lowercase())
        } else {
            self.by_name.get(name.as_ref())
        };
        found.ok_or_else(|| CmdError::err("Function not found"))
    }
}

/// FUNCTION LOAD: runs the library's code on this thread's VM to check it and learn its functions, then adds it.
/// Returns the library's name.
pub fn load_library(scripts: &Scripts, code: &[u8], replace: bool) -> Result<String, CmdError> {
    with_library_check(|register| scripts.functions.load(code, replace, register))
}

/// FUNCTION RESTORE: checks each library as FUNCTION LOAD does (on this thread's VM), then applies `policy`.
pub fn restore_libraries(
    scripts: &Scripts,
    codes: impl IntoIterator<Item = Result<Vec<u8>, String>>,
    policy: function::RestorePolicy,
) -> Result<(), CmdError> {
    with_library_check(|register| scripts.functions.restore(codes, policy, register))
}

/// Runs `f` with a check of library code on this thread's VM: what the code registers, or Redis's error.
fn with_library_check<R>(
    f: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<Vec<FunctionInfo>, String>) -> Result<R, String>,
) -> Result<R, CmdError> {
    with_engine(|e| {
        Ok(f(&mut |body| {
            let loaded = e.vm.load_library(body)?;
            Ok(loaded.into_iter().map(|(info, _)| info).collect())
        }))
    })
    .map_err(|e| CmdError::err(e.to_string()))?
    .map_err(CmdError::err)
}

/// Redis's reply for an EVALSHA of an unknown script.
pub(crate) fn noscript() -> CmdError {
    CmdError::Coded("NOSCRIPT No matching script. Please use EVAL.".into())
}

/// Compiles `body` and caches it (SCRIPT LOAD checks syntax before caching); returns its SHA1.
pub fn load(scripts: &Scripts, body: &[u8]) -> Result<Sha, CmdError> {
    with_engine(|e| {
        e.cache.sync(scripts, &e.vm.hook);
        Ok(e.cache
            .resolve(&e.vm, scripts, Source::Body(body))
            .map(|(sha, _)| sha))
    })
    .map_err(|e| CmdError::err(e.to_string()))?
}

fn rt(msg: &str) -> mlua::Error {
    mlua::Error::RuntimeError(msg.to_string())
}

/// An error of a `redis.*` function, raised as Redis 7 raises them: the `{err="ERR msg"}` table (a script's `pcall`
/// sees the text, an `xpcall` handler the table).
fn api_error(msg: &str) -> mlua::Error {
    mlua::Error::external(Raised(format!("ERR {msg}").into_bytes()))
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
        return Err(api_error("redis.log() requires two arguments or more."));
    }
    let Some(level) = convert::as_number(&args[0]) else {
        return Err(api_error("First argument must be a number (log level)."));
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
        _ => return Err(api_error("Invalid debug level.")),
    }
    Ok(())
}

/// `redis.set_repl(flags)`: effects replication is the only mode since Redis 7, so this only checks its argument as
/// Redis does (a non-number counts as 0; the argument-count message is Redis's own).
fn set_repl(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    if args.len() != 1 {
        return Err(api_error("redis.set_repl() requires two arguments."));
    }
    let flags = convert::as_number(&args[0]).unwrap_or(0.0) as i64;
    if flags & !3 != 0 {
        return Err(api_error(
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        ));
    }
    Ok(())
}

/// `redis.acl_check_cmd(command, ...)`: whether the script's user may run the command. The only user, `default`,
/// may run every command, so this is true for any command (and subcommand) the server has.
unsafe extern "C-unwind" fn lua_acl_check_cmd(state: *mut ffi::lua_State) -> c_int {
    c_function(state, || {
        let mut argv: Vec<Vec<u8>> = Vec::with_capacity(2);
        let known = stack_args(state, |arg| argv.push(arg.to_vec())).map(|()| {
            let sub = argv.get(1).map(Vec::as_slice);
            crate::cmd::exists(&argv[0], sub)
        });
        match known {
            Ok(true) => ffi::lua_pushboolean(state, 1),
            Ok(false) => {
                return raise_api_error(state, "Invalid command passed to redis.acl_check_cmd()")
            }
            Err(msg) => return raise_api_error(state, msg),
        }
        Ok(1)
    })
}

/// Reads the arguments of `redis.call` and friends from the stack, as bytes: strings, and numbers as Redis 7.2
/// writes them; an error message for anything else, or for no argument at all.
///
/// # Safety
/// `state` is the stack of a C function call.
unsafe fn stack_args(
    state: *mut ffi::lua_State,
    mut push: impl FnMut(&[u8]),
) -> Result<(), &'static str> {
    let n = ffi::lua_gettop(state);
    if n == 0 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    for i in 1..=n {
        match ffi::lua_type(state, i) {
            ffi::LUA_TSTRING => push(convert::str_at(state, i)),
            ffi::LUA_TNUMBER => {
                push(convert::argument_number_text(ffi::lua_tonumber(state, i)).as_bytes())
            }
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        }
    }
    Ok(())
}

/// Runs the body of a Lua C function: `body` pushes its results and returns how many, or pushes an error value and
/// returns `Err(())` to raise it. `lua_error` jumps over this frame, so it is called only once `body` and everything
/// it made are gone; a panic becomes a Lua error instead of unwinding through Lua's C frames.
unsafe fn c_function(
    state: *mut ffi::lua_State,
    body: impl FnOnce() -> Result<c_int, ()>,
) -> c_int {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        convert::push_bytes(state, b"internal error (a panic) in a redis.* function");
        Err(())
    });
    match outcome {
        Ok(results) => results,
        Err(()) => ffi::lua_error(state),
    }
}

/// Pushes the `{err="ERR msg"}` table a `redis.*` function raises (as [`api_error`]), for [`c_function`].
unsafe fn raise_api_error(state: *mut ffi::lua_State, msg: &str) -> Result<c_int, ()> {
    convert::push_error_table(state, msg.as_bytes());
    Err(())
}

/// Runs a script (EVAL, EVALSHA) or a function (FCALL) with `ctx`'s shards held, writing its reply to `ctx.out`.
pub fn run(ctx: &mut Ctx, inv: Invocation) -> Result<(), CmdError> {
    let scripts = &ctx.server.scripts;
    let result = with_engine(|engine| {
        let Engine {
            vm,
            cache,
            functions,
            confined,
        } = engine;
        cache.sync(scripts, &vm.hook);
        let resolved = match inv.source {
            Source::Function(name) => functions.resolve(vm, scripts, name).map(|l| Target {
                f: &l.f,
                flags: Some(l.flags),
                id: l.id,
                function: Some(&l.name),
            }),
            _ => cache
                .resolve(vm, scripts, inv.source)
                .map(|(sha, c)| Target {
                    f: &c.f,
                    flags: c.flags,
                    id: sha,
                    function: None,
                }),
        };
        let target = match resolved {
            Ok(target) => target,
            Err(e) => return Ok(Err(e)),
        };
        // A script with flags must declare `no-writes` to run through a _RO command (one without keeps Redis 6's
        // behaviour); a `no-writes` script runs read-only through any command.
        let no_writes = target.flags.map(Flags::no_writes);
        if inv.read_only && no_writes == Some(false) {
            return Ok(Err(CmdError::err(
                "Can not execute a script with write flag using *_ro command.",
            )));
        }
        let read_only = inv.read_only || no_writes == Some(true);
        let lock_all = !ctx.client.in_exec && confined.locks_all(scripts, &target.id);
        run_resolved(vm, ctx, &inv, &target, read_only, lock_all).map(Ok)
    });
    result.map_err(|e| CmdError::err(error_message(&e)))?
}

/// [`run`] once the script is known: the run's bookkeeping around [`run_in`]. `lock_all`: the script is not known
/// to stay on its declared shards (see the module doc), so this run takes every shard and shows whether it does.
fn run_resolved(
    vm: &Vm,
    ctx: &mut Ctx,
    inv: &Invocation,
    target: &Target,
    read_only: bool,
    lock_all: bool,
) -> mlua::Result<()> {
    let server = ctx.server;
    let nested = (ctx.client.in_exec, ctx.client.in_script);
    if lock_all {
        // Trade the declared shards for all of them, taken in order.
        *ctx.shards = Locked::None;
        *ctx.shards = server.store.lock_all();
    }
    let saved_db = ctx.client.db;
    (ctx.client.in_exec, ctx.client.in_script) = (true, true);
    let hook = &vm.hook;
    let slot = hook
        .slot
        .borrow()
        .clone()
        .ok_or(mlua::Error::CallbackDestructed)?;
    {
        let mut held = hook.held.borrow_mut();
        held.clear();
        held.extend(ctx.shards.indexed().map(|(i, _)| i));
    }
    let run = slot.run.load(Ordering::Relaxed) + 1;
    slot.wrote.store(false, Ordering::Release);
    slot.function
        .store(target.function.is_some(), Ordering::Release);
    slot.run.store(run, Ordering::Release);
    slot.started.store(ctx.now.max(1), Ordering::Release);
    hook.busy_after.set(server.settings.busy_reply_threshold());
    hook.handed_off.set(false);
    hook.run.set(run);
    let result = run_in(vm, ctx, inv, target, read_only, &slot, lock_all);
    hook.run.set(0);
    slot.started.store(0, Ordering::Release);
    if hook.published.replace(false) {
        slot.shards.lock().clear();
        *slot.call.lock() = None;
        PUBLISHED.fetch_sub(1, Ordering::AcqRel);
    }
    (ctx.client.in_exec, ctx.client.in_script) = nested;
    if ctx.client.db != saved_db {
        ctx.client.select(saved_db);
    }
    result
}

/// The state `redis.call` works with during one run.
struct RunState<'c, 'a, 's> {
    ctx: &'c mut Ctx<'a, 's>,
    /// The run's command.
    argv: Argv<'c>,
    /// How errors name the run (the function, or the script's SHA1).
    name: &'c str,
    read_only: bool,
    slot: &'c Running,
    hook: &'c HookState,
    resp: &'c Cell<u8>,
    buffers: CallBuffers,
    /// Write commands whose keys' shards have watchers or blocked clients, for the dispatcher's after-write work.
    writes: Vec<(&'static CommandSpec, OwnedArgv)>,
    /// A `redis.call` reached a key on a shard not in `buffers.declared`.
    strayed: bool,
}

fn run_in(
    vm: &Vm,
    ctx: &mut Ctx,
    inv: &Invocation,
    target: &Target,
    read_only: bool,
    slot: &Running,
    learning: bool,
) -> mlua::Result<()> {
    vm.resp.set(2);
    let store = &ctx.server.store;
    let mut buffers = vm.buffers.take();
    let declared = &mut buffers.declared;
    declared.clear();
    declared.extend(inv.keys().map(|k| store.shard_of(k)));
    declared.sort_unstable();
    declared.dedup();
    let mut st = RunState {
        ctx,
        argv: inv.argv,
        name: target.name(),
        read_only,
        slot,
        hook: &vm.hook,
        resp: &vm.resp,
        buffers,
        writes: Vec::new(),
        strayed: false,
    };
    // The script's first result is its reply, as Redis calls it for one result.
    let runner = if target.function.is_some() {
        &vm.fcall
    } else {
        &vm.runner
    };
    let outcome = with_current_run(&mut st, || {
        // SAFETY: the closure leaves the runner's two results on the stack. Until `lua_call` returns nothing of
        // Rust's with a destructor is alive here (a Lua error jumps over the closure); afterwards only
        // out-of-memory can raise (see `convert`).
        unsafe {
            vm.lua
                .exec_raw::<(bool, Value)>((runner, target.f, &vm.handler), |state| {
                    ffi::lua_checkstack(state, 3);
                    push_sequence(state, inv.keys());
                    push_sequence(state, inv.args());
                    ffi::lua_call(state, 4, 2);
                    if ffi::lua_toboolean(state, -2) != 0 {
                        // The reply is written while the result is on the stack; `nil` stands for it.
                        let resp3 = vm.resp.get() == 3;
                        let top = ffi::lua_gettop(state);
                        let _ = on_current_run(|st| {
                            convert::write_reply(state, top, st.ctx.out, resp3)
                        });
                        ffi::lua_settop(state, top - 1);
                        ffi::lua_pushnil(state);
                    }
                })
        }
    });
    let completed = matches!(outcome, Ok((true, _)));
    match &outcome {
        Ok((true, _)) => {}
        Ok((false, value)) => {
            let msg = match value {
                Value::Table(t) => convert::script_error(t, st.name),
                other => format!("ERR {}", error_text(other)),
            };
            st.ctx.out.error(&msg);
        }
        Err(_) => {}
    }
    // KEYS and ARGV stay until the next run replaces them: setting a field to nil and back makes Lua rehash the table
    // now and then (the collector kills the nil slot), an allocation on the hot path.
    if st.strayed || (learning && completed) {
        st.ctx
            .server
            .scripts
            .learn(&target.id, st.strayed, completed);
    }
    vm.buffers.replace(st.buffers);
    if !st.writes.is_empty() {
        // The dispatcher spoils WATCHes and serves blocked clients for these once the script is done.
        st.ctx
            .client
            .executed
            .get_or_insert_with(Vec::new)
            .extend(st.writes);
    }
    outcome.map(drop)
}

thread_local! {
    /// The run in progress on this thread, for `redis.call` and `redis.pcall` (a `RunState` behind a pointer whose
    /// lifetimes are erased): set by [`with_current_run`] while a script runs, empty otherwise.
    ///
    /// Why not `Lua::scope`, which borrows the run safely: scoped functions cost two Lua closures, two userdata with
    /// finalizers and a destructor list per run, about a third of a short script's run. The two functions are made
    /// once per VM instead and find their run here.
    static CURRENT_RUN: Cell<Option<NonNull<()>>> = const { Cell::new(None) };
}

/// Runs `f` with `state` as this thread's current run; the previous one (none) is back afterwards, even on a panic.
fn with_current_run<R>(state: &mut RunState<'_, '_, '_>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT_RUN.with(|c| c.replace(Some(NonNull::from(state).cast())));
    let _restore = RestoreRun(previous);
    f()
}

/// Puts a value back into [`CURRENT_RUN`] when dropped.
struct RestoreRun(Option<NonNull<()>>);

impl Drop for RestoreRun {
    fn drop(&mut self) {
        CURRENT_RUN.with(|c| c.set(self.0));
    }
}

/// Runs `f` on this thread's current run; an error outside a run (a function kept after its script ended).
fn on_current_run<R>(f: impl FnOnce(&mut RunState<'_, '_, '_>) -> R) -> mlua::Result<R> {
    // Taken out while `f` runs, so the run is never reached twice at once (nothing `f` calls runs Lua code that
    // could call back, but if it did, that call would fail instead of aliasing the run).
    let run = CURRENT_RUN
        .with(|c| c.take())
        .ok_or_else(|| rt("redis.call is only available while a script runs"))?;
    let _restore = RestoreRun(Some(run));
    // SAFETY: `run` was made from the `&mut RunState` that `with_current_run` borrows for as long as the pointer
    // is in CURRENT_RUN, and nothing else uses that borrow meanwhile; the pointer is out of CURRENT_RUN while `f`
    // holds the reference, so there is no second one. `f` works for any lifetimes, so nothing borrowed through the
    // erased ones can outlive this call.
    let state = unsafe { run.cast::<RunState<'_, '_, '_>>().as_mut() };
    Ok(f(state))
}

/// Pushes KEYS or ARGV: a Lua table of `items`.
///
/// # Safety
/// `state` has two free stack slots.
unsafe fn push_sequence<'b>(
    state: *mut ffi::lua_State,
    items: impl ExactSizeIterator<Item = &'b [u8]>,
) {
    ffi::lua_createtable(state, items.len().try_into().unwrap_or(0), 0);
    for (i, item) in (1..).zip(items) {
        convert::push_bytes(state, item);
        ffi::lua_rawseti_(state, -2, i);
    }
}

/// `redis.call`: runs one command inside the script; its reply, or its error raised.
unsafe extern "C-unwind" fn lua_redis_call(state: *mut ffi::lua_State) -> c_int {
    call_from_lua(state, true)
}

/// `redis.pcall`: runs one command inside the script; its reply or its error table.
unsafe extern "C-unwind" fn lua_redis_pcall(state: *mut ffi::lua_State) -> c_int {
    call_from_lua(state, false)
}

unsafe fn call_from_lua(state: *mut ffi::lua_State, raise: bool) -> c_int {
    c_function(state, || match on_current_run(|st| redis_call(state, st)) {
        // As in Redis, the raised error is the very table redis.pcall would return.
        Ok(failed) if failed && raise => Err(()),
        Ok(_) => Ok(1),
        Err(_) => {
            convert::push_bytes(state, b"redis.call is only available while a script runs");
            Err(())
        }
    })
}

/// Runs the command whose arguments are on the stack and pushes its Lua reply, or its `{err=...}` table and then
/// returns true.
fn redis_call(state: *mut ffi::lua_State, st: &mut RunState) -> bool {
    // SAFETY (all blocks): `state` is the stack of a C function call, which has LUA_MINSTACK free slots.
    let fail = |msg: &str| {
        unsafe { convert::push_error_table(state, msg.as_bytes()) };
        true
    };
    // Redis counts a command it refuses to run from a script as it counts a failed one, and says so in the table.
    let reject = |msg: &str| {
        fail(msg);
        unsafe { convert::mark_counted(state) };
        true
    };
    let buffers = &mut st.buffers;
    buffers.data.clear();
    buffers.spans.clear();
    if let Err(msg) = unsafe { stack_args(state, |arg| buffers.push(arg)) } {
        return fail(msg);
    }
    unsafe { ffi::lua_settop(state, 0) };
    let argv = Argv::new(&buffers.data, &buffers.spans);
    let spec = match crate::cmd::resolve(argv) {
        Ok(spec) => spec,
        Err(CmdError::WrongArity(_)) => {
            return reject("Wrong number of args calling Redis command from script")
        }
        Err(_) => return reject("Unknown Redis command called from script"),
    };
    if spec.has(flag::NOSCRIPT) {
        return reject("This Redis command is not allowed from script");
    }
    // As Redis, a command that may replicate (PUBLISH, SPUBLISH) counts as a write here.
    if (spec.has(flag::WRITE) || spec.has(flag::MAY_REPLICATE)) && st.read_only {
        return reject("Write commands are not allowed from read-only scripts.");
    }
    if let Err(msg) = lock_keys(
        st.ctx,
        st.hook,
        spec,
        argv,
        &buffers.declared,
        &mut st.strayed,
    ) {
        return reject(&msg);
    }
    let mut out = Reply::scratch(st.resp.get() == 3);
    out.buf = std::mem::take(&mut buffers.reply);
    out.buf.clear();
    let ctx = &mut *st.ctx;
    let mut inner = Ctx {
        server: ctx.server,
        client: &mut *ctx.client,
        out: &mut out,
        shards: &mut *ctx.shards,
        now: ctx.now,
        flow: Flow::Continue,
        events: ctx.events,
        key_shards: &KeyShards::NONE,
    };
    if let Err(e) = (spec.handler)(&mut inner, argv) {
        inner.out.error(&e.to_string());
    }
    if inner.events & crate::notify::TRACKING != 0 {
        crate::cmd::track_step(&mut inner, spec, argv);
    }
    if spec.has(flag::WRITE) {
        st.slot.wrote.store(true, Ordering::Release);
        if needs_after_write(ctx, spec, argv) {
            st.writes.push((spec, argv.to_owned()));
        }
    }
    let failed = unsafe { convert::push_reply(state, &out.buf) };
    buffers.reply = out.buf;
    failed
}

/// True when a write may spoil a WATCH or serve a blocked client: one of the shards it wrote has watchers or
/// waiters. Those shards stay locked until the script ends, so none can appear before the dispatcher looks.
fn needs_after_write(ctx: &mut Ctx, spec: &CommandSpec, argv: Argv) -> bool {
    let concerned = |s: &Shard| !s.watched.is_empty() || !s.blocked.is_empty();
    if spec.has(flag::ALL_SHARDS) {
        return ctx.shards.all().any(|s| concerned(s));
    }
    spec.key_indices(argv).any(|i| {
        let idx = ctx.server.store.shard_of(argv.get(i));
        ctx.shards.holds(idx) && concerned(ctx.shards.shard(idx))
    })
}

/// Makes sure every shard `spec` touches for `argv` is held, adding the missing ones (see the module doc), and notes
/// in `strayed` when one is not among the `declared` shards.
fn lock_keys(
    ctx: &mut Ctx,
    hook: &HookState,
    spec: &CommandSpec,
    argv: Argv,
    declared: &[usize],
    strayed: &mut bool,
) -> Result<(), String> {
    let store = &ctx.server.store;
    let missing = |i: usize| {
        let idx = store.shard_of(argv.get(i));
        *strayed |= declared.binary_search(&idx).is_err();
        (!ctx.shards.holds(idx)).then_some(idx)
    };
    // Most calls touch declared keys only: find that out without allocating.
    let mut need: Vec<usize> = if spec.has(flag::ALL_SHARDS) {
        *strayed |= declared.len() < store.shard_count();
        (0..store.shard_count())
            .filter(|&i| !ctx.shards.holds(i))
            .collect()
    } else {
        spec.key_indices(argv).filter_map(missing).collect()
    };
    if need.is_empty() {
        return Ok(());
    }
    need.sort_unstable();
    need.dedup();
    for idx in need {
        if let Some(guard) = store.try_lock_shard(idx) {
            ctx.shards.add(idx, guard);
        } else if ctx.shards.max_index().is_none_or(|max| idx > max) {
            ctx.shards.add(idx, store.lock_shard(idx));
        } else {
            let deadline = Instant::now() + LOCK_WAIT;
            loop {
                if let Some(guard) = store.try_lock_shard(idx) {
                    ctx.shards.add(idx, guard);
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
        hook.held.borrow_mut().push(idx);
        if hook.published.get() {
            hook.publish();
        }
    }
    Ok(())
}
