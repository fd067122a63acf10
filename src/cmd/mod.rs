//! The command table and dispatch.
//!
//! Every command is one declarative [`CommandSpec`] (name, arity, flags, key positions, handler), written next to its
//! handler in a family file (`string.rs`, `keys.rs`, ...) with the facts taken from Redis's own command specs. The
//! table drives everything generic: lookup, arity errors, the shards a command locks, `COMMAND INFO`, and the proxy's
//! routing.
//!
//! A handler runs synchronously with all its shards already locked (ascending order, see [`crate::store`]) and writes
//! its reply into the client's output buffer; it never touches a socket or awaits.

pub mod args;
pub mod blocking;
mod connection;
mod error;
mod function;
#[cfg(test)]
mod fuzz_tests;
mod hash;
mod keys;
mod list;
mod long_double;
mod memory;
pub mod pubsub;
pub mod ring;
mod script;
mod server;
mod set;
mod stream;
mod string;
mod transaction;
mod typed;
mod zset;

use std::sync::LazyLock;

pub use connection::REDIS_VERSION;
pub use error::CmdError;
pub use pubsub::unsubscribe_all;
pub(crate) use server::rss_bytes;
pub use transaction::unwatch_all;

use crate::client::Client;
use crate::notify;
use crate::protocol::{Argv, Reply};
use crate::server::ServerState;
use crate::store::{now_ms, HeldShard, Keyspace, Locked, Store};

/// What a handler returns; the error is written as the reply.
pub type CmdResult = Result<(), CmdError>;

/// A command implementation.
pub type Handler = fn(&mut Ctx<'_, '_>, Argv<'_>) -> CmdResult;

/// Command flags, as `COMMAND INFO` names them.
pub mod flag {
    /// Modifies the keyspace.
    pub const WRITE: u32 = 1;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// May grow memory use.
    pub const DENYOOM: u32 = 1 << 2;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 3;
    /// Pub/sub related.
    pub const PUBSUB: u32 = 1 << 4;
    /// Not allowed in scripts.
    pub const NOSCRIPT: u32 = 1 << 5;
    /// May block the client.
    pub const BLOCKING: u32 = 1 << 6;
    /// Allowed while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Allowed on a stale replica.
    pub const STALE: u32 = 1 << 8;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 9;
    /// Allowed before AUTH.
    pub const NO_AUTH: u32 = 1 << 10;
    /// Not allowed inside MULTI.
    pub const NO_MULTI: u32 = 1 << 11;
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: u32 = 1 << 12;
    /// Not shown in MONITOR.
    pub const SKIP_MONITOR: u32 = 1 << 13;
    /// Not logged in the slow log.
    pub const SKIP_SLOWLOG: u32 = 1 << 14;
    /// May replicate even if read-only.
    pub const MAY_REPLICATE: u32 = 1 << 15;
    /// The key arguments are optional.
    pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
    /// ringkv: the command reads or writes the whole keyspace, so it locks every shard.
    pub const ALL_SHARDS: u32 = 1 << 31;
    /// ringkv: EXEC, which locks the shards of every command it queued.
    pub const TRANSACTION: u32 = 1 << 30;
    /// ringkv: the key positions name Pub/Sub shard channels (Redis's `NOT_KEY` key spec): COMMAND INFO reports the
    /// positions, but they are no keys (nothing is locked, watched or returned by COMMAND GETKEYS).
    pub const NOT_KEY: u32 = 1 << 29;
    /// ringkv: a write that readies no blocked client (Redis calls no `signalKeyAsReady` for it): XGROUP SETID
    /// moving a group back leaves its blocked XREADGROUP waiting until the next XADD, as in Redis.
    pub const READIES_NONE: u32 = 1 << 28;

    /// Names in `COMMAND INFO` order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// Where a command's keys are, in Redis's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// No keys.
    None,
    /// Keys at `first`, `first + step`, ... up to `last` (negative: counted from the end, -1 is the last argument).
    Range {
        /// Index of the first key.
        first: usize,
        /// Index of the last key; negative counts from the end.
        last: isize,
        /// Distance between keys.
        step: usize,
    },
    /// A count at `at`, then that many keys right after it, `step` apart (EVAL, BLMPOP, ZUNIONSTORE's sources with step
    /// 1; MSETEX's key/value pairs with step 2).
    NumKeys {
        /// Index of the count argument.
        at: usize,
        /// Distance between keys.
        step: usize,
    },
    /// A destination key at 1, then a count at 2 and that many source keys after it (ZUNIONSTORE, ZINTERSTORE,
    /// ZDIFFSTORE).
    DestNumKeys,
    /// The keys follow the first argument (after the name) equal to `keyword`, case-insensitively, and fill the first
    /// half of what remains; the second half holds one ID per key (XREAD and XREADGROUP's `STREAMS`).
    AfterKeyword {
        /// The keyword, lower-case.
        keyword: &'static str,
    },
}

impl Keys {
    /// The first argument is the key (GET, LPUSH, HSET...).
    pub const FIRST: Keys = Keys::Range {
        first: 1,
        last: 1,
        step: 1,
    };
    /// The first two arguments are keys (RENAME, LMOVE, SMOVE...).
    pub const FIRST_TWO: Keys = Keys::Range {
        first: 1,
        last: 2,
        step: 1,
    };
    /// Every argument is a key (DEL, EXISTS, MGET, WATCH...).
    pub const ALL: Keys = Keys::Range {
        first: 1,
        last: -1,
        step: 1,
    };
    /// Every argument but the last, a timeout, is a key (BLPOP, BZPOPMIN...).
    pub const ALL_BUT_LAST: Keys = Keys::Range {
        first: 1,
        last: -2,
        step: 1,
    };
}

/// One command: the facts Redis's command table has, plus our handler.
pub struct CommandSpec {
    /// Lower-case name (`get`, or for a subcommand just `kill`).
    pub name: &'static str,
    /// Redis arity: exact when positive, minimum when negative; counts the name (and subcommand).
    pub arity: i32,
    /// Bitwise-or of [`flag`] constants.
    pub flags: u32,
    /// Key positions.
    pub keys: Keys,
    /// The implementation (unused for container commands, which dispatch on their subcommands).
    pub handler: Handler,
    /// Subcommands of a container command (CLIENT, CONFIG, COMMAND...).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// A command spec with no subcommands.
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: Keys,
        handler: Handler,
    ) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            keys,
            handler,
            subcommands: &[],
        }
    }

    /// A container command dispatching on its first argument.
    pub const fn container(
        name: &'static str,
        flags: u32,
        subcommands: &'static [CommandSpec],
    ) -> Self {
        CommandSpec {
            name,
            arity: -2,
            flags,
            keys: Keys::None,
            handler: no_handler,
            subcommands,
        }
    }

    /// True if the spec has flag `f`.
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Indices of the key arguments in `argv`. A malformed count yields the keys that exist; the handler reports it.
    /// The channels of a [`flag::NOT_KEY`] command are none.
    pub fn key_indices(&self, argv: Argv<'_>) -> impl Iterator<Item = usize> {
        let n = argv.len();
        let (keys, dest) = match self.keys {
            _ if self.has(flag::NOT_KEY) => (Keys::None, None),
            Keys::DestNumKeys => (Keys::NumKeys { at: 2, step: 1 }, Some(1)),
            keys => (keys, None),
        };
        let (first, last, step) = match keys {
            // DestNumKeys was rewritten above.
            Keys::None | Keys::DestNumKeys => (1, 0, 1),
            Keys::AfterKeyword { keyword } => {
                match (1..n).find(|&i| args::is(argv.get(i), keyword)) {
                    // Half of the rest, rounded down: an odd count is the handler's error to report.
                    Some(at) => (at + 1, (at + (n - at - 1) / 2) as isize, 1),
                    None => (1, 0, 1),
                }
            }
            Keys::Range { first, last, step } => {
                let last = if last < 0 { n as isize + last } else { last };
                (first, last.min(n as isize - 1), step)
            }
            Keys::NumKeys { at, step } => {
                let count = (at < n)
                    .then(|| args::parse_i64(argv.get(at)))
                    .flatten()
                    .unwrap_or(0)
                    .max(0);
                // The last key is `count - 1` steps after the first (saturating: the count is client-chosen).
                let last = match count {
                    0 => at as i64,
                    _ => (at as i64 + 1).saturating_add((count - 1).saturating_mul(step as i64)),
                };
                let last = last.min(n as i64 - 1);
                (at + 1, last as isize, step)
            }
        };
        let sources = (first..=last.max(0) as usize)
            .step_by(step)
            .filter(move |&i| (i as isize) <= last);
        dest.filter(|&d| d < n).into_iter().chain(sources)
    }
}

fn no_handler(_: &mut Ctx<'_, '_>, _: Argv<'_>) -> CmdResult {
    Err(CmdError::Syntax)
}

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Flush the replies, then close (QUIT, CLIENT KILL of oneself).
    Close,
    /// Stop the whole server (SHUTDOWN).
    Shutdown,
    /// Flush the replies so far, then wait for `Client::blocked` to be served or time out.
    Block,
    /// The command did not run: another thread holds its shard. Wait for that shard (see [`HeldShard`]), then run
    /// the command again.
    Contended(usize),
}

/// What a handler sees: the server, the client, the locked shards, the reply buffer and the command's clock.
pub struct Ctx<'a, 's> {
    /// Server-wide state.
    pub server: &'s ServerState,
    /// The calling client's state.
    pub client: &'a mut Client,
    /// The reply buffer.
    pub out: &'a mut Reply,
    /// The shards this command holds.
    pub shards: &'a mut Locked<'s>,
    /// Unix milliseconds, read once per command: every key in one command is judged at the same instant.
    pub now: u64,
    /// What the connection does next.
    pub flow: Flow,
    /// The keyspace notification classes enabled, read once per command (see [`crate::notify`]).
    pub events: u32,
    /// The shards of the command's keys, as found when locking them.
    pub key_shards: &'a KeyShards,
}

/// The shards of a command's first keys (for EXEC, its queued commands' keys) as the dispatcher placed them on the
/// ring, so that a handler asking for a key's keyspace does not hash it again (MSET's ten keys were looked up twice
/// each). A key is known by its address and length: handlers pass the very argument slices that were locked; any
/// other slice is placed anew.
#[derive(Default)]
pub struct KeyShards {
    len: usize,
    keys: [(usize, usize, usize); KeyShards::CAPACITY],
}

impl KeyShards {
    const CAPACITY: usize = 16;
    /// Knows no key (a script's commands place their keys anew).
    pub const NONE: KeyShards = KeyShards {
        len: 0,
        keys: [(0, 0, 0); KeyShards::CAPACITY],
    };

    fn push(&mut self, key: &[u8], shard: usize) {
        if self.len < Self::CAPACITY {
            self.keys[self.len] = (key.as_ptr() as usize, key.len(), shard);
            self.len += 1;
        }
    }

    /// The shard of `key`, from memory when it is one of the locked argument slices.
    fn shard_of(&self, store: &Store, key: &[u8]) -> usize {
        let at = (key.as_ptr() as usize, key.len());
        self.keys[..self.len]
            .iter()
            .find(|&&(p, n, _)| (p, n) == at)
            .map_or_else(|| store.shard_of(key), |&(_, _, shard)| shard)
    }
}

impl Ctx<'_, '_> {
    /// Announces event `event` of `class` (a [`crate::notify`] class) for `key` in the client's database, when that
    /// class is enabled. Disabled, this is one test of [`Self::events`].
    #[inline]
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if notify::wanted(self.events, class) {
            self.notify_in(class, event, key, self.client.db);
        }
    }

    /// [`Self::notify`] for database `db` (MOVE's `move_to`, COPY ... DB).
    pub fn notify_in(&mut self, class: u32, event: &'static str, key: &[u8], db: usize) {
        notify_held(self.server, self.shards, self.events, db, class, event, key);
    }

    /// [`Self::notify`], then `del` (generic) when the key is gone: the command took its last element (HDEL, SREM,
    /// a pop...), in Redis's order.
    #[inline]
    pub fn notify_emptied(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if notify::wanted(self.events, class | notify::GENERIC) {
            let (db, now) = (self.client.db, self.now);
            notify_emptied(
                self.server,
                self.shards,
                self.events,
                db,
                now,
                (class, event),
                key,
            );
        }
    }
    /// The keyspace of the client's database in the shard that owns `key` (which the command has locked).
    pub fn db(&mut self, key: &[u8]) -> &mut Keyspace {
        self.db_out(key).0
    }

    /// [`Self::db`] and the reply buffer together, for handlers that reply with data borrowed from the keyspace.
    pub fn db_out(&mut self, key: &[u8]) -> (&mut Keyspace, &mut Reply) {
        let idx = self.shard_index(key);
        (
            &mut self.shards.shard(idx).dbs[self.client.db],
            &mut *self.out,
        )
    }

    /// Read-only access to the keyspaces of every locked key at once, with the reply buffer: for commands that read
    /// several keys together (SINTER, SUNION, SDIFF...).
    pub fn dbs_out(&mut self) -> (Dbs<'_>, &mut Reply) {
        let dbs = Dbs {
            server: self.server,
            shards: &*self.shards,
            db: self.client.db,
            key_shards: self.key_shards,
        };
        (dbs, &mut *self.out)
    }

    /// The keyspace of database `db` (which must exist) in the shard that owns `key`. A shard holds every database
    /// of its keys, so COPY ... DB and MOVE reach another database without locking anything more.
    pub fn db_in(&mut self, key: &[u8], db: usize) -> &mut Keyspace {
        let idx = self.shard_index(key);
        &mut self.shards.shard(idx).dbs[db]
    }

    /// The index [`Locked::shard`] takes for `key`.
    fn shard_index(&self, key: &[u8]) -> usize {
        // With a single shard held there is no need to hash the key again.
        if self.shards.is_single() {
            usize::MAX
        } else {
            self.key_shards.shard_of(&self.server.store, key)
        }
    }
}

/// Shared views of the locked keyspaces of one database (see [`Ctx::dbs_out`]).
pub struct Dbs<'a> {
    server: &'a ServerState,
    shards: &'a Locked<'a>,
    db: usize,
    key_shards: &'a KeyShards,
}

impl<'a> Dbs<'a> {
    /// The keyspace that owns `key` (which the command has locked).
    pub fn get(&self, key: &[u8]) -> &'a Keyspace {
        let idx = if self.shards.is_single() {
            usize::MAX
        } else {
            self.key_shards.shard_of(&self.server.store, key)
        };
        &self.shards.shard_ref(idx).dbs[self.db]
    }
}

/// Every command by its lower-case name, as bytes: a request's name is looked up without a UTF-8 check.
static TABLE: LazyLock<hashbrown::HashMap<&'static [u8], &'static CommandSpec>> =
    LazyLock::new(|| {
        let families: [&'static [CommandSpec]; 15] = [
            connection::COMMANDS,
            transaction::COMMANDS,
            server::COMMANDS,
            string::COMMANDS,
            keys::COMMANDS,
            list::COMMANDS,
            ring::COMMANDS,
            script::COMMANDS,
            function::COMMANDS,
            hash::COMMANDS,
            set::COMMANDS,
            zset::COMMANDS,
            pubsub::COMMANDS,
            stream::COMMANDS,
            memory::COMMANDS,
        ];
        families
            .into_iter()
            .flatten()
            .map(|c| (c.name.as_bytes(), c))
            .collect()
    });

/// Every command, for COMMAND COUNT / LIST / INFO.
pub fn all_commands() -> impl Iterator<Item = &'static CommandSpec> {
    TABLE.values().copied()
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    with_lowercase(name, |n| TABLE.get(n).copied())
}

/// True when the server has command `name` and, for a container command given a `sub`, that subcommand (Redis's
/// `lookupCommand`, without the arity check).
pub fn exists(name: &[u8], sub: Option<&[u8]>) -> bool {
    match (lookup(name), sub) {
        (Some(spec), Some(sub)) if !spec.subcommands.is_empty() => lookup_sub(spec, sub).is_some(),
        (found, _) => found.is_some(),
    }
}

/// The command (and subcommand) Redis's `lookupCommand` finds for `argv`, arity unchecked, by name.
fn looked_up(argv: Argv<'_>) -> Option<(&'static str, Option<&'static str>)> {
    let spec = lookup(argv.get(0))?;
    if spec.subcommands.is_empty() || argv.len() < 2 {
        return Some((spec.name, None));
    }
    lookup_sub(spec, argv.get(1)).map(|sub| (spec.name, Some(sub.name)))
}

fn lookup_sub(spec: &'static CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    with_lowercase(name, |n| {
        spec.subcommands.iter().find(|c| c.name.as_bytes() == n)
    })
}

/// Calls `f` with `name` lower-cased in a stack buffer; names longer than any command are not found.
fn with_lowercase<T>(name: &[u8], f: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    f(lower)
}

/// Looks up `argv`'s command (and subcommand) and checks its arity. The error is Redis's reply for an unknown
/// command, unknown subcommand or wrong arity.
pub fn resolve(argv: Argv<'_>) -> Result<&'static CommandSpec, CmdError> {
    resolve_with_parent(argv).map(|(_, spec)| spec)
}

/// [`resolve`], also returning the top-level command (the container, for a subcommand; else the spec itself).
pub fn resolve_with_parent(
    argv: Argv<'_>,
) -> Result<(&'static CommandSpec, &'static CommandSpec), CmdError> {
    let name = argv.get(0);
    let Some(spec) = lookup(name) else {
        let mut args = String::new();
        for arg in argv.iter_from(1) {
            if args.len() >= 128 {
                break;
            }
            let room = 128 - args.len();
            let text = String::from_utf8_lossy(args::c_str(arg));
            args.push_str(&format!("'{}' ", truncate(&text, room)));
        }
        return Err(CmdError::err(format!(
            "unknown command '{}', with args beginning with: {args}",
            truncate(&String::from_utf8_lossy(args::c_str(name)), 128)
        )));
    };
    if spec.subcommands.is_empty() || argv.len() < 2 {
        check_arity(spec, argv.len(), spec.name)?;
        return Ok((spec, spec));
    }
    let sub_name = argv.get(1);
    let Some(sub) = lookup_sub(spec, sub_name) else {
        return Err(CmdError::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            truncate(&String::from_utf8_lossy(args::c_str(sub_name)), 128),
            spec.name.to_ascii_uppercase()
        )));
    };
    check_arity(sub, argv.len(), &format!("{}|{}", spec.name, sub.name))?;
    Ok((spec, sub))
}

fn check_arity(spec: &CommandSpec, argc: usize, full_name: &str) -> CmdResult {
    let a = spec.arity;
    if (a > 0 && argc != a as usize) || (argc as i64) < -(a as i64) {
        return Err(CmdError::WrongArity(full_name.to_string()));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Runs one request for `client`, writing its reply to `out`. Inside MULTI, commands are queued instead. `held` is
/// the shard lock kept from the previous command of the same pipeline (see [`HeldShard`]).
pub fn dispatch<'s>(
    server: &'s ServerState,
    client: &mut Client,
    argv: Argv<'_>,
    out: &mut Reply,
    held: &mut HeldShard<'s>,
) -> Flow {
    let spec = resolve_with_parent(argv).and_then(|(parent, spec)| {
        let sub = (!std::ptr::eq(parent, spec)).then_some(spec.name);
        client.info.set_last_cmd(Some((parent.name, sub)));
        if let Some(e) = pubsub::subscriber_mode_error(client, out.resp3(), parent.name, sub) {
            return Err(e);
        }
        match &client.multi {
            Some(_) if spec.has(flag::NO_MULTI) => {
                Err(CmdError::err("Command not allowed inside a transaction"))
            }
            _ => Ok(spec),
        }
    });
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            // As Redis's processCommand, which records the command it looked up before it checks it: a refused GET
            // shows as `cmd=get`, an unknown command as `cmd=NULL`.
            client.info.set_last_cmd(looked_up(argv));
            if lookup(argv.get(0)).is_some_and(|s| s.name == "exec") {
                // Redis answers a rejected EXEC (wrong arity) with execCommandAbort: the transaction is discarded,
                // in or out of MULTI.
                held.release();
                let e = e.to_string();
                exec_abort(server, client, out, e.strip_prefix("ERR ").unwrap_or(&e));
                return Flow::Continue;
            }
            if let Some(tx) = &mut client.multi {
                tx.aborted = true;
            }
            out.error(&e.to_string());
            return Flow::Continue;
        }
    };
    if client.multi.is_some() && !transaction::runs_inside_multi(spec) {
        client.queue(spec, argv.to_owned());
        out.simple("QUEUED");
        return Flow::Continue;
    }
    let flow = execute(server, client, spec, argv, out, held);
    // CLIENT CACHING applies to the next command, or to the whole transaction it precedes (Redis's resetClient).
    if client.caching && client.multi.is_none() && !args::is(argv.get(0), "client") {
        client.caching = false;
    }
    flow
}

/// Redis's execCommandAbort: discards the transaction (and the WATCHes) and says why.
fn exec_abort(server: &ServerState, client: &mut Client, out: &mut Reply, why: &str) {
    client.end_multi();
    transaction::unwatch_all(server, client);
    out.error(&format!(
        "EXECABORT Transaction discarded because of: {why}"
    ));
}

/// Locks the shards `spec` needs for `argv`, runs its handler, then does the after-write work (spoiling WATCHes,
/// serving blocked clients) for it, or for every command of a transaction it ran, before releasing the locks.
pub fn execute<'s>(
    server: &'s ServerState,
    client: &mut Client,
    spec: &CommandSpec,
    argv: Argv<'_>,
    out: &mut Reply,
    held: &mut HeldShard<'s>,
) -> Flow {
    // A command that waits for a shard held by a script running past busy-reply-threshold gets BUSY, as in Redis;
    // unlike Redis, commands on the shards the script does not hold go on meanwhile. ALLOW_BUSY commands wait.
    let threshold = server.settings.busy_reply_threshold();
    let busy = |idx| server.scripts.busy_holding(idx, threshold);
    let never = |_| false;
    let busy: &dyn Fn(usize) -> bool = if spec.has(flag::ALLOW_BUSY) {
        &never
    } else {
        &busy
    };
    let mut key_shards = KeyShards::default();
    let locked = lock_for(
        &server.store,
        spec,
        argv,
        client,
        held,
        busy,
        &mut key_shards,
    );
    let mut shards = match locked {
        Ok(shards) => shards,
        Err(Refusal::Contended(idx)) => return Flow::Contended(idx),
        Err(Refusal::Busy) if spec.has(flag::TRANSACTION) => {
            exec_abort(server, client, out, server.scripts.busy_error(threshold));
            return Flow::Continue;
        }
        Err(Refusal::Busy) => {
            out.error(server.scripts.busy_error(threshold));
            return Flow::Continue;
        }
    };
    let now = now_ms();
    // WATCH is spoiled only by real changes (a SET NX that finds the key changes nothing): remember the versions of
    // the held shards that someone watches, to compare after the command.
    let watched_before = watched_versions(&mut shards);
    let mut ctx = Ctx {
        server,
        client,
        out,
        shards: &mut shards,
        now,
        flow: Flow::Continue,
        events: notify::load(&server.settings.keyspace_events),
        key_shards: &key_shards,
    };
    if let Err(e) = run_handler(&mut ctx, spec, argv) {
        ctx.out.error(&e.to_string());
    }
    if notify::wanted(ctx.events, notify::RAISED) {
        publish_pending(server, ctx.shards, ctx.events);
    }
    let flow = ctx.flow;
    let tracking = ctx.events & notify::TRACKING != 0;
    // The (shard, database) pairs the command changed, among those someone watches.
    let mut changed: Vec<(usize, usize)> = Vec::new();
    for (i, before) in watched_before {
        let dbs = &shards.shard(i).dbs;
        changed.extend(
            (0..before.len())
                .filter(|&db| dbs[db].version() != before[db])
                .map(|db| (i, db)),
        );
    }
    let executed = client.executed.take();
    // Waiters are served once everything ran, in the order their keys became ready.
    let after_writes = |shards: &mut Locked| {
        let ready = match &executed {
            Some(queue) => queue
                .iter()
                .flat_map(|(s, a)| after_write(server, shards, s, a.argv(), &key_shards, &changed))
                .collect(),
            None => after_write(server, shards, spec, argv, &key_shards, &changed),
        };
        blocking::serve(server, shards, ready, now)
    };
    let track = |client: &mut Client, shards: &mut Locked| {
        if tracking {
            track_keys(server, client, spec, argv, executed.is_some(), shards);
        }
    };
    let pending: blocking::Pending = after_writes(&mut shards);
    if !pending.is_empty() {
        // A waiter moves data into a shard we do not hold: finish serving holding all of them, in order.
        server.store.unlock(shards);
        let mut all = server.store.lock_all();
        blocking::serve_pending(server, &mut all, pending, now);
        track(client, &mut all);
        server.store.unlock(all);
    } else {
        track(client, &mut shards);
        if flow == Flow::Continue && !client.unwatch_pending {
            held.keep(shards);
        } else {
            server.store.unlock(shards);
        }
    }
    if client.unwatch_pending {
        transaction::unwatch_all(server, client);
    }
    flow
}

/// Client-side caching after a command, while some client tracks (see [`crate::tracking`]), in Redis's order: the
/// invalidations for the keys the held keyspaces recorded as modified (a flush's null included), then the keys the
/// command read are remembered. A transaction or script did both after each of its commands ([`track_step`]), so
/// only what serving blocked clients changed is left, and the BCAST messages for all of it.
#[cold]
fn track_keys(
    server: &ServerState,
    client: &mut Client,
    spec: &CommandSpec,
    argv: Argv,
    stepped: bool,
    shards: &mut Locked,
) {
    let settled = std::mem::take(&mut client.settled);
    // Only a command that recorded a change has anything in the keyspaces: the others skip the walk over every shard
    // they hold (all of them for a script's first run).
    if crate::store::take_recorded() || !settled.is_empty() {
        let keyspaces = shards.all().flat_map(|shard| shard.dbs.iter_mut());
        server
            .tracking
            .invalidate_modified(&server.clients, keyspaces, client.id(), settled);
    }
    if !stepped {
        remember_read(server, client, spec, argv);
    }
}

/// [`track_keys`] for one command of a transaction or script: its invalidations go out before the next command
/// runs (so a key read after a FLUSHALL in the same transaction stays remembered, and a key written before it is
/// read is not invalidated), its reads are remembered. Keys for BCAST clients wait for the end.
#[cold]
pub(crate) fn track_step(ctx: &mut Ctx, spec: &CommandSpec, argv: Argv) {
    if crate::store::take_recorded() {
        let keyspaces = ctx.shards.all().flat_map(|shard| shard.dbs.iter_mut());
        let tracking = &ctx.server.tracking;
        let keys = tracking.settle_modified(&ctx.server.clients, keyspaces, ctx.client.id());
        ctx.client.settled.extend(keys);
    }
    remember_read(ctx.server, ctx.client, spec, argv);
}

/// Redis's `trackingRememberKeys`: when `client` tracks (default mode, and OPTIN / OPTOUT allow it for this
/// command), remembers the keys of `spec` if it is a read-only command. Scripts call it for each command they run;
/// EVAL_RO and FCALL_RO themselves are not counted, their commands are.
pub(crate) fn remember_read(server: &ServerState, client: &Client, spec: &CommandSpec, argv: Argv) {
    let Some(mode) = client.tracking else {
        return;
    };
    if !spec.has(flag::READONLY)
        || spec.has(flag::PUBSUB)
        || !mode.remembers(client.caching)
        || ["eval_ro", "evalsha_ro", "fcall_ro"].contains(&spec.name)
    {
        return;
    }
    let keys = spec.key_indices(argv).map(|i| argv.get(i));
    server.tracking.remember(&server.clients, client.id(), keys);
}

/// Publishes event `event` of `class` for `key` in database `db` when `events` enables it, after what the held
/// keyspaces raised on the way (a deadline that passed, a key created), which came first. For code that runs
/// without a [`Ctx`] (serving blocked clients); handlers use [`Ctx::notify`].
#[cold]
pub(crate) fn notify_held(
    server: &ServerState,
    shards: &mut Locked,
    events: u32,
    db: usize,
    class: u32,
    event: &'static str,
    key: &[u8],
) {
    if notify::wanted(events, class) {
        publish_pending(server, shards, events);
        notify::publish(&server.pubsub, events, event, key, db);
    }
}

/// [`notify_held`] for `(class, event)`, then `del` when `key` no longer exists (see [`Ctx::notify_emptied`]).
#[cold]
pub(crate) fn notify_emptied(
    server: &ServerState,
    shards: &mut Locked,
    events: u32,
    db: usize,
    now: u64,
    (class, event): (u32, &'static str),
    key: &[u8],
) {
    if !notify::wanted(events, class | notify::GENERIC) {
        return;
    }
    notify_held(server, shards, events, db, class, event, key);
    let idx = server.store.shard_of(key);
    if shards.shard_ref(idx).dbs[db].peek(key, now).is_none() {
        notify_held(server, shards, events, db, notify::GENERIC, "del", key);
    }
}

/// Publishes the events the held keyspaces raised themselves (`expired`, `new`, `keymiss`; see
/// [`Keyspace::take_events`]).
#[cold]
pub(crate) fn publish_pending(server: &ServerState, shards: &mut Locked, events: u32) {
    for shard in shards.all() {
        for (db, ks) in shard.dbs.iter_mut().enumerate() {
            notify::publish_raised(&server.pubsub, events, ks, db);
        }
    }
}

/// The keyspace versions of every database of the held shards that someone watches: (shard, versions by database).
fn watched_versions(shards: &mut Locked) -> Vec<(usize, Vec<u64>)> {
    shards
        .indexed()
        .filter(|(_, s)| !s.watched.is_empty())
        .map(|(i, s)| (i, s.dbs.iter().map(Keyspace::version).collect()))
        .collect()
}

/// Runs `spec`'s handler. A write command that fails has changed nothing (handlers check everything before they
/// change anything, as Redis's do), so the keyspace versions of watched shards, which it may have moved by taking a
/// value to change before finding out, are put back: a failed command never spoils a WATCH.
pub(crate) fn run_handler(ctx: &mut Ctx, spec: &CommandSpec, argv: Argv) -> CmdResult {
    let before = if spec.has(flag::WRITE) {
        watched_versions(ctx.shards)
    } else {
        Vec::new()
    };
    let result = (spec.handler)(ctx, argv);
    if result.is_err() {
        for (i, versions) in before {
            let dbs = &mut ctx.shards.shard(i).dbs;
            for (db, v) in dbs.iter_mut().zip(versions) {
                db.restore_version(v);
            }
        }
    }
    result
}

/// After a write command: spoils the WATCHes on its keys in the shards it changed (`changed`), and returns those of
/// its keys that clients wait on (see [`blocking::ready_after_write`]).
fn after_write(
    server: &ServerState,
    shards: &mut Locked,
    spec: &CommandSpec,
    argv: Argv,
    key_shards: &KeyShards,
    changed: &[(usize, usize)],
) -> blocking::Pending {
    if !spec.has(flag::WRITE)
        || shards
            .all()
            .all(|s| s.blocked.is_empty() && s.watched.is_empty())
    {
        return blocking::Pending::new();
    }
    if spec.has(flag::ALL_SHARDS) {
        for &(i, db) in changed {
            shards.shard(i).watched.touch_db(db);
        }
    } else {
        for i in spec.key_indices(argv) {
            let key = argv.get(i);
            let idx = key_shards.shard_of(&server.store, key);
            // The command's keys in every database it changed there (MOVE and COPY ... DB write another one).
            for &(_, db) in changed.iter().filter(|(s, _)| *s == idx) {
                shards.shard(idx).watched.touch(db, key);
            }
        }
    }
    blocking::ready_after_write(server, shards, spec, argv, key_shards)
}

/// Locks what `spec` needs for `argv`: every shard, the shards of its keys, or for EXEC those of every queued
/// command; always in ascending order. A single shard comes from `held` when it holds that one; in every other case
/// `held` is released first, so no lock is ever held while waiting for another (and handlers that lock shards
/// themselves find them free). Refused when a shard is held by a busy script (see [`Store::lock_unless_busy`]), or
/// when `held` may yield and a shard of the command's keys stays held by another thread past a brief spin.
fn lock_for<'s>(
    store: &'s Store,
    spec: &CommandSpec,
    argv: Argv<'_>,
    client: &Client,
    held: &mut HeldShard<'s>,
    busy: &dyn Fn(usize) -> bool,
    key_shards: &mut KeyShards,
) -> Result<Locked<'s>, Refusal> {
    if !spec.has(flag::TRANSACTION | flag::ALL_SHARDS) {
        let mut shards = spec.key_indices(argv).map(|i| {
            let (key, shard) = (argv.get(i), store.shard_of(argv.get(i)));
            key_shards.push(key, shard);
            shard
        });
        if let Some(first) = shards.next() {
            // Collecting an empty iterator does not allocate: the single-shard path stays allocation-free.
            let mut others: Vec<usize> = shards.filter(|&s| s != first).collect();
            if others.is_empty() {
                if let Some(locked) = held.take(first) {
                    return Ok(locked);
                }
                return lock_key_shards(store, &[first], held.may_yield(), busy);
            }
            held.release();
            others.push(first);
            others.sort_unstable();
            others.dedup();
            return lock_key_shards(store, &others, held.may_yield(), busy);
        }
    }
    held.release();
    if spec.has(flag::TRANSACTION) {
        let queue = client.multi.as_ref().map_or(&[][..], |tx| &tx.queue[..]);
        if queue.iter().any(|(s, _)| s.has(flag::ALL_SHARDS)) {
            return store.lock_all_unless_busy(busy).ok_or(Refusal::Busy);
        }
        let mut idx = Vec::new();
        for (s, a) in queue {
            let a = a.argv();
            for i in s.key_indices(a) {
                let (key, shard) = (a.get(i), store.shard_of(a.get(i)));
                key_shards.push(key, shard);
                idx.push(shard);
            }
        }
        idx.sort_unstable();
        idx.dedup();
        return store.lock_unless_busy(&idx, busy).ok_or(Refusal::Busy);
    }
    if spec.has(flag::ALL_SHARDS) {
        return store.lock_all_unless_busy(busy).ok_or(Refusal::Busy);
    }
    Ok(Locked::None)
}

/// Locks the shards of a command's keys (ascending): waiting on the thread, or when `may_yield`, refusing with the
/// shard that stayed held past a brief spin (after releasing the others) so that the connection waits for it.
fn lock_key_shards<'s>(
    store: &'s Store,
    shards: &[usize],
    may_yield: bool,
    busy: &dyn Fn(usize) -> bool,
) -> Result<Locked<'s>, Refusal> {
    if !may_yield {
        return store.lock_unless_busy(shards, busy).ok_or(Refusal::Busy);
    }
    store.try_lock_briefly(shards).map_err(|idx| {
        if busy(idx) {
            Refusal::Busy
        } else {
            Refusal::Contended(idx)
        }
    })
}

/// Why [`lock_for`] did not lock.
enum Refusal {
    /// A busy script holds a shard: the command gets BUSY.
    Busy,
    /// Another thread holds a shard of the command's keys: wait for it asynchronously, then run the command again.
    Contended(usize),
}

/// Writes a HELP reply: the lines as status strings, as Redis's `addReplyHelp` does.
pub fn reply_help(out: &mut Reply, command: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for line in lines {
        out.simple(line);
    }
    out.simple("HELP");
    out.simple("    Print this help.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OwnedArgv;

    #[test]
    fn client_list_names_a_refused_command_as_redis_looked_it_up() {
        let mut c = testing::TestClient::new();
        for (line, shown) in [
            ("SET k v", "set"),
            ("GET", "get"),
            ("NOSUCH x", "NULL"),
            ("CONFIG GET", "config|get"),
            ("CLIENT NOSUCH", "NULL"),
            ("CLIENT", "client"),
        ] {
            c.cmd(line);
            assert_eq!(c.client.info.last_cmd(), shown, "after {line}");
        }
    }

    #[test]
    fn key_shards_remember_only_the_locked_slices() {
        let store = Store::new(64, 1);
        let argv = OwnedArgv::from_args((0..20).map(|i| format!("key:{i}")));
        let keys: Vec<&[u8]> = argv.argv().iter_from(0).collect();
        let mut memo = KeyShards::default();
        // Remembered shards that the ring would never give, to see which answers come from memory.
        for (i, key) in keys.iter().enumerate() {
            memo.push(key, 1000 + i);
        }
        for (i, key) in keys.iter().enumerate() {
            let expected = if i < KeyShards::CAPACITY {
                1000 + i
            } else {
                store.shard_of(key)
            };
            assert_eq!(memo.shard_of(&store, key), expected, "key {i}");
        }
        // The same bytes elsewhere, or a shorter slice at the same address, are placed on the ring.
        let copy = keys[0].to_vec();
        assert_eq!(memo.shard_of(&store, &copy), store.shard_of(&copy));
        let prefix = &keys[10][..4];
        assert_eq!(memo.shard_of(&store, prefix), store.shard_of(prefix));
        assert_eq!(
            KeyShards::NONE.shard_of(&store, keys[0]),
            store.shard_of(keys[0])
        );
    }

    #[test]
    fn key_indices_follow_the_spec_forms() {
        let mget = lookup(b"MGET").unwrap();
        let argv = OwnedArgv::from_args(["mget", "a", "b", "c"]);
        assert_eq!(
            mget.key_indices(argv.argv()).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let mset = lookup(b"mset").unwrap();
        let argv = OwnedArgv::from_args(["mset", "a", "1", "b", "2"]);
        assert_eq!(
            mset.key_indices(argv.argv()).collect::<Vec<_>>(),
            vec![1, 3]
        );
        // A numkeys form with step 2: the keys of the pairs, never the values or the options after them.
        let msetex = lookup(b"msetex").unwrap();
        let argv = OwnedArgv::from_args(["msetex", "2", "a", "1", "b", "2", "KEEPTTL"]);
        assert_eq!(
            msetex.key_indices(argv.argv()).collect::<Vec<_>>(),
            vec![2, 4]
        );
        // A count larger than the arguments yields only the keys that exist; zero or garbage yields none.
        let argv = OwnedArgv::from_args(["msetex", "9", "a", "1", "b"]);
        assert_eq!(
            msetex.key_indices(argv.argv()).collect::<Vec<_>>(),
            vec![2, 4]
        );
        for count in ["0", "-1", "x", "9223372036854775807"] {
            let argv = OwnedArgv::from_args(["msetex", count]);
            assert_eq!(msetex.key_indices(argv.argv()).count(), 0, "{count}");
        }
    }

    #[test]
    fn keys_after_a_keyword_are_the_first_half_of_the_rest() {
        let spec = CommandSpec::new(
            "xread",
            -4,
            flag::READONLY,
            Keys::AfterKeyword { keyword: "streams" },
            no_handler,
        );
        let keys = |args: &[&str]| {
            let argv = OwnedArgv::from_args(args);
            spec.key_indices(argv.argv()).collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&["xread", "COUNT", "1", "STREAMS", "a", "b", "0", "0"]),
            vec![4, 5]
        );
        assert_eq!(keys(&["xread", "streams", "a", "0"]), vec![2]);
        // An odd count locks the keys of the first half; the handler rejects the command.
        assert_eq!(keys(&["xread", "streams", "a", "b", "0"]), vec![2]);
        assert_eq!(keys(&["xread", "streams"]), Vec::<usize>::new());
        assert_eq!(keys(&["xread", "count", "1"]), Vec::<usize>::new());
    }

    #[test]
    fn unknown_commands_and_arity_errors_read_like_redis() {
        let argv = OwnedArgv::from_args(["foo", "a", "b"]);
        assert_eq!(
            resolve(argv.argv()).err().unwrap().to_string(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        let argv = OwnedArgv::from_args(["GET"]);
        assert_eq!(
            resolve(argv.argv()).err().unwrap().to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
        // Redis prints these names with %s: a NUL ends them.
        let argv = OwnedArgv::from_args(["GET\0x", "a\0b", "c"]);
        assert_eq!(
            resolve(argv.argv()).err().unwrap().to_string(),
            "ERR unknown command 'GET', with args beginning with: 'a' 'c' "
        );
        let argv = OwnedArgv::from_args(["client", "nope"]);
        assert_eq!(
            resolve(argv.argv()).err().unwrap().to_string(),
            "ERR unknown subcommand 'nope'. Try CLIENT HELP."
        );
    }
}

/// Runs commands without a socket, for the unit tests at the bottom of each family file.
#[cfg(test)]
pub mod testing {
    use std::sync::Arc;

    use crate::client::Client;
    use crate::config::Config;
    use crate::protocol::{OwnedArgv, Reply};
    use crate::server::ServerState;

    /// Redis's WRONGTYPE error line.
    pub const WRONG: &str =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

    /// The bulk strings of a reply, in order, wherever they are nested.
    pub fn bulks(reply: &str) -> Vec<String> {
        let lines: Vec<&str> = reply.split("\r\n").collect();
        lines
            .windows(2)
            .filter(|w| w[0].starts_with('$'))
            .map(|w| w[1].to_string())
            .collect()
    }

    /// The integer of a `:n\r\n` reply.
    pub fn int(reply: &str) -> i64 {
        reply
            .strip_prefix(':')
            .and_then(|r| r.strip_suffix("\r\n"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not an integer reply: {reply:?}"))
    }

    /// A server of its own with one connected client.
    pub struct TestClient {
        /// The server state (shared with any other test clients made from it).
        pub server: Arc<ServerState>,
        /// The client's state.
        pub client: Client,
        out: Reply,
    }

    impl TestClient {
        /// A fresh server with default settings and 4 shards.
        pub fn new() -> Self {
            let mut config = Config::defaults();
            config.shards = 4;
            Self::on(Arc::new(ServerState::new(config)))
        }
        /// Another client of the same server.
        pub fn on(server: Arc<ServerState>) -> Self {
            let addr = "127.0.0.1:0".parse().expect("valid address");
            let client = server.clients.register(addr, addr);
            TestClient {
                server,
                client,
                out: Reply::new(false),
            }
        }
        /// Runs one command and returns its raw reply bytes.
        pub fn run_bytes<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
            let argv = OwnedArgv::from_args(args);
            super::dispatch(
                &self.server,
                &mut self.client,
                argv.argv(),
                &mut self.out,
                &mut crate::store::HeldShard::new(&self.server.store, false),
            );
            std::mem::take(&mut self.out.buf)
        }
        /// Runs one command and returns its reply as text (`+OK\r\n`, `$1\r\na\r\n`...).
        pub fn run<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
            String::from_utf8_lossy(&self.run_bytes(args)).into_owned()
        }
        /// Runs a command written as one line split on spaces: `c.cmd("SET a b")`.
        pub fn cmd(&mut self, line: &str) -> String {
            self.run(&line.split(' ').collect::<Vec<_>>())
        }
    }

    impl Default for TestClient {
        fn default() -> Self {
            Self::new()
        }
    }
}
