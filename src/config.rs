//! Configuration: the command line (with embedded defaults, no file needed) and the runtime settings CONFIG GET/SET see.
//!
//! [`PARAMS`] is the CONFIG parameter table: every name CONFIG GET knows, how CONFIG SET validates it, and its default.
//! The two settings the server acts on while running (maxclients, proto-max-bulk-len) live in atomics read on the hot
//! path; every other value is only stored, so CONFIG GET reads back what CONFIG SET wrote, as tools expect.

use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Args, Parser, Subcommand};
use parking_lot::Mutex;

use crate::glob;
use crate::notify;
use crate::ring::{Distribution, KeyHash};

/// The whole command line: `ringkv [server options]` runs the server, `ringkv proxy ...` the cluster proxy.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ringkv",
    version,
    about = "A Redis-protocol-compatible in-memory server and consistent-hashing cluster proxy",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The role; none means the server.
    #[command(subcommand)]
    pub role: Option<Role>,
    /// Server options.
    #[command(flatten)]
    pub server: Config,
}

/// A role other than the default server.
#[derive(Subcommand, Debug, Clone)]
pub enum Role {
    /// Run the cluster proxy in front of Redis-protocol backends.
    Proxy(ProxyConfig),
}

/// One `--backend HOST:PORT[:WEIGHT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// `host:port`.
    pub addr: String,
    /// Ring weight (default 1).
    pub weight: u32,
}

fn parse_backend(s: &str) -> Result<BackendSpec, String> {
    let (addr, weight) = match s.matches(':').count() {
        1 => (s, "1"),
        2 => s.rsplit_once(':').expect("two colons"),
        _ => return Err(format!("'{s}' is not HOST:PORT[:WEIGHT]")),
    };
    let weight: u32 = match weight.parse() {
        Ok(w @ 1..=1000) => w,
        _ => return Err(format!("weight in '{s}' must be 1..1000")),
    };
    Ok(BackendSpec {
        addr: parse_addr(addr)?,
        weight,
    })
}

/// A backend address, `HOST:PORT` (a host name or IPv4 address, a port 1..65535), as the proxy connects to it.
pub fn parse_addr(s: &str) -> Result<String, String> {
    let Some((host, port)) = s.split_once(':') else {
        return Err(format!("'{s}' is not HOST:PORT"));
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if !host_ok {
        return Err(format!("bad host in '{s}'"));
    }
    match port.parse::<u16>() {
        // The port as a number, so `h:06379` names the same node as `h:6379`.
        Ok(port @ 1..) => Ok(format!("{host}:{port}")),
        _ => Err(format!("bad port in '{s}' (1..65535)")),
    }
}

/// `ringkv proxy` command line.
#[derive(Args, Debug, Clone)]
pub struct ProxyConfig {
    /// TCP port to listen on (0 picks a free port and logs it).
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// A config file of `option value` lines with these options' long names (`backend 127.0.0.1:6379`, `auto-eject
    /// yes`, `#` comments); options given on the command line override it (any --backend replaces all its backends).
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// A backend, `HOST:PORT[:WEIGHT]`; repeat for each.
    #[arg(long = "backend", required_unless_present = "config", value_parser = parse_backend)]
    pub backends: Vec<BackendSpec>,
    /// Placement: `default` (ringkv's ring) or `ketama` (twemproxy-compatible).
    #[arg(long, default_value = "default")]
    pub distribution: String,
    /// Key hash for ketama, by twemproxy name: one_at_a_time, md5, crc32, crc32a, fnv1_64, fnv1a_64 (the default),
    /// fnv1_32, fnv1a_32.
    #[arg(long)]
    pub hash: Option<String>,
    /// Connect and request time-out towards backends, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    /// Pipelined connections per backend shared by all clients (one, as twemproxy: each write to a backend then
    /// carries every client's requests queued for it).
    #[arg(long, default_value_t = 1)]
    pub backend_connections: usize,
    /// Take a failing backend out of the ring (twemproxy's auto_eject_hosts).
    #[arg(long)]
    pub auto_eject: bool,
    /// Consecutive failures before a backend is ejected.
    #[arg(long, default_value_t = 2)]
    pub server_failure_limit: u32,
    /// How long an ejected backend stays out before it is tried again, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub server_retry_timeout: u64,
    /// PING every backend this often, in milliseconds (0: no health check). Failed checks count towards
    /// --server-failure-limit; with a health check, an ejected backend returns only once a PING succeeds.
    #[arg(long, default_value_t = 1000)]
    pub health_check_interval_ms: u64,
    /// Log level: debug, verbose, notice or warning (Redis names), or a RUST_LOG filter.
    #[arg(long, default_value = "notice")]
    pub loglevel: String,
    /// Threads (1: a single event loop, as twemproxy; 0: one per core). One loop reads every ready client before
    /// it writes to the backends, so a write carries many clients' requests and the backends answer them with one
    /// read and one write: on a host shared with its backends that beats spreading clients over threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// `ringkv proxy`'s options alone, to parse a config file's options followed by the command line's: the later
/// occurrence of an option wins.
#[derive(Parser, Debug)]
#[command(name = "ringkv proxy", args_override_self = true)]
struct ProxyArgs {
    #[command(flatten)]
    config: ProxyConfig,
}

impl ProxyConfig {
    /// With `--config FILE`: the file's options, overridden by `cli` (the arguments after `proxy`, which produced
    /// `self`). Without: `self`.
    pub fn with_file(self, cli: &[String]) -> Result<ProxyConfig, String> {
        let Some(path) = &self.config else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading config file {}: {e}", path.display()))?;
        let file = file_args(&text).map_err(|e| format!("{}:{e}", path.display()))?;
        let cli_backends = cli
            .iter()
            .any(|a| a == "--backend" || a.starts_with("--backend="));
        let mut args = vec!["ringkv proxy".to_string()];
        for pair in file.chunks(2) {
            if !(cli_backends && pair[0] == "--backend") {
                args.extend(pair.iter().filter(|a| !a.is_empty()).cloned());
            }
        }
        args.extend(cli.iter().cloned());
        let config = ProxyArgs::try_parse_from(args)
            .map_err(|e| e.to_string())?
            .config;
        if config.backends.is_empty() {
            return Err(format!("no backend in {} nor --backend", path.display()));
        }
        Ok(config)
    }

    /// True when `addr` (`HOST:PORT`, see [`parse_addr`]) names this proxy's own listening address: a backend there
    /// would send each request back to the proxy until it timed out.
    pub fn is_own_addr(&self, addr: &str) -> bool {
        let Some((host, port)) = addr.rsplit_once(':') else {
            return false;
        };
        let local = |h: &str| {
            ["127.0.0.1", "localhost", "0.0.0.0"]
                .iter()
                .any(|l| h.eq_ignore_ascii_case(l))
        };
        // Bound to every address, the proxy is also behind any other loopback address (127.0.0.2, ...).
        let loopback = |h: &str| {
            h.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
        };
        let same_host = host.eq_ignore_ascii_case(&self.bind)
            || (local(host) && local(&self.bind))
            || (self.bind == "0.0.0.0" && loopback(host));
        port.parse() == Ok(self.port) && same_host
    }

    /// The placement the options ask for.
    pub fn placement(&self) -> Result<Distribution, String> {
        match (self.distribution.as_str(), self.hash.as_deref()) {
            ("default", None) => Ok(Distribution::Default),
            ("default", Some(_)) => Err("--hash applies to --distribution ketama only".into()),
            ("ketama", hash) => {
                let hash = hash.unwrap_or("fnv1a_64");
                KeyHash::from_name(hash)
                    .map(Distribution::Ketama)
                    .ok_or_else(|| format!("unsupported --hash '{hash}'"))
            }
            (other, _) => Err(format!(
                "unknown --distribution '{other}' (default or ketama)"
            )),
        }
    }
}

/// A proxy config file as command-line arguments, in `[--option, value]` pairs (value empty for a flag that is on).
/// Each line is `option value` (the long option name without dashes), `option yes|no` for a flag; blank lines and
/// lines starting with `#` are skipped; a value may be double-quoted.
fn file_args(text: &str) -> Result<Vec<String>, String> {
    let command = <ProxyArgs as clap::CommandFactory>::command();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let at = n + 1;
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name) && name != "config")
            .ok_or_else(|| format!("{at}: unknown option '{name}'"))?;
        if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            match value {
                "yes" | "true" => out.extend([format!("--{name}"), String::new()]),
                "no" | "false" => {}
                _ => return Err(format!("{at}: '{name}' takes yes or no, not '{value}'")),
            }
        } else if value.is_empty() {
            return Err(format!("{at}: '{name}' needs a value"));
        } else {
            out.extend([format!("--{name}"), value.to_string()]);
        }
    }
    Ok(out)
}

/// The `tracing` filter for a Redis-style log level.
pub fn log_filter(loglevel: &str) -> String {
    match loglevel {
        "debug" => "debug".into(),
        "verbose" | "notice" => "info".into(),
        "warning" => "warn".into(),
        other => other.into(),
    }
}

/// `ringkv` command line.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ringkv",
    version,
    about = "A Redis-protocol-compatible in-memory server"
)]
pub struct Config {
    /// TCP port to listen on (0 picks a free port and logs it).
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Number of keyspace shards (rounded up to a power of two); 0 means 128 per CPU core, at most 1024.
    #[arg(long, default_value_t = 0)]
    pub shards: usize,
    /// Number of databases (SELECT 0 .. N-1).
    #[arg(long, default_value_t = 16)]
    pub databases: usize,
    /// Most simultaneous clients; more are refused with `-ERR max number of clients reached`.
    #[arg(long, default_value_t = 10_000)]
    pub maxclients: u64,
    /// Largest bulk string a client may send, in bytes (Redis's proto-max-bulk-len).
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    pub proto_max_bulk_len: u64,
    /// Log level: debug, verbose, notice or warning (Redis names), or a RUST_LOG filter.
    #[arg(long, default_value = "notice")]
    pub loglevel: String,
    /// Milliseconds a script may run before SCRIPT KILL can stop it (Redis's busy-reply-threshold).
    #[arg(long, default_value_t = 5000)]
    pub busy_reply_threshold: u64,
    /// Worker threads (1: one event loop, as Redis; 0: one per core). One worker writes its replies at the end of
    /// each round, as Redis does; more workers serve more clients at once but wake each other (and the
    /// clients) far more often, which costs more than it gains unless the server has cores of its own to spare.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

impl Config {
    /// The defaults, as if started with no arguments (tests and benchmarks).
    pub fn defaults() -> Self {
        Config::parse_from(["ringkv"])
    }
    /// The effective shard count.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            self.shards
        } else {
            // Many shards make two multi-key commands (MSET of 10 keys locks about as many shards) rarely share
            // one. On two cores, MSET at P16 ran at 0.72 x Redis with 32 shards, 0.93-0.98 with 128 and 1.02-1.09
            // with 256 (160 ring points and 16 tables per shard keep single-key lookups as cheap). The cap bounds
            // an empty server's memory (shards x databases keyspaces) on large machines.
            (128 * std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1))
            .min(1024)
        }
    }
    /// The `tracing` filter for `loglevel`.
    pub fn log_filter(&self) -> String {
        log_filter(&self.loglevel)
    }
}

/// How CONFIG SET validates a parameter, and how its value is written back by CONFIG GET.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `yes` or `no`.
    Bool,
    /// A 64-bit integer within `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Any integer from 0 to `INT_MAX`, kept within `min..=max` (Redis's `hz`, which `updateHZ` clamps).
    Clamped {
        /// Smallest value kept.
        min: i64,
        /// Largest value kept.
        max: i64,
    },
    /// A byte count with an optional unit (`1gb`, `100mb`, `64k`), stored as plain bytes; at least `min`.
    Memory {
        /// Smallest accepted value.
        min: u64,
    },
    /// One of these words (case-insensitive, stored lower-case).
    Enum(&'static [&'static str]),
    /// Any string.
    Str,
    /// Only `value`: accepting another would claim what ringkv lacks (`why`: persistence, passwords).
    Only {
        /// The one value accepted.
        value: &'static str,
        /// CONFIG SET's reason for refusing others.
        why: &'static str,
    },
    /// Fixed at startup.
    Immutable,
    /// `notify-keyspace-events` class letters, stored in their canonical spelling (see [`crate::notify`]).
    KeyspaceEvents,
}

/// One CONFIG parameter.
#[derive(Debug)]
pub struct Param {
    /// Redis's name.
    pub name: &'static str,
    /// The older name Redis still accepts (`lua-time-limit` for `busy-reply-threshold`).
    pub alias: Option<&'static str>,
    /// Validation.
    pub kind: Kind,
    /// The default (parameters that come from the command line are filled in by [`Settings::new`]).
    pub default: &'static str,
}

const fn param(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: None,
        kind,
        default,
    }
}

const fn aliased(
    name: &'static str,
    alias: &'static str,
    kind: Kind,
    default: &'static str,
) -> Param {
    Param {
        name,
        alias: Some(alias),
        kind,
        default,
    }
}

const fn no_persistence(value: &'static str) -> Kind {
    Kind::Only {
        value,
        why: "ringkv has no persistence",
    }
}

const INT: i64 = i32::MAX as i64;
const fn range(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// The CONFIG parameters, with Redis 7.2's names, defaults and ranges.
pub const PARAMS: &[Param] = &[
    param("save", no_persistence(""), ""),
    param("appendonly", no_persistence("no"), "no"),
    param("dbfilename", no_persistence("dump.rdb"), "dump.rdb"),
    param(
        "requirepass",
        Kind::Only {
            value: "",
            why: "ringkv has no passwords",
        },
        "",
    ),
    param(
        "appendfsync",
        Kind::Enum(&["always", "everysec", "no"]),
        "everysec",
    ),
    param("maxmemory", Kind::Memory { min: 0 }, "0"),
    param(
        "maxmemory-policy",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    param("maxmemory-samples", range(1, 64), "5"),
    param("databases", Kind::Immutable, "16"),
    param("port", Kind::Immutable, "6379"),
    param("bind", Kind::Immutable, "127.0.0.1"),
    param("dir", Kind::Immutable, ""),
    param("maxclients", range(1, u32::MAX as i64), "10000"),
    param(
        "proto-max-bulk-len",
        Kind::Memory { min: 1024 * 1024 },
        "536870912",
    ),
    param(
        "client-query-buffer-limit",
        Kind::Memory { min: 1024 * 1024 },
        "1073741824",
    ),
    param("timeout", range(0, INT), "0"),
    param("tcp-keepalive", range(0, INT), "300"),
    param(
        "loglevel",
        Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
        "notice",
    ),
    param("hz", Kind::Clamped { min: 1, max: 500 }, "10"),
    param("notify-keyspace-events", Kind::KeyspaceEvents, ""),
    aliased(
        "busy-reply-threshold",
        "lua-time-limit",
        range(0, i64::MAX),
        "5000",
    ),
    param("slowlog-log-slower-than", range(-1, i64::MAX), "10000"),
    param("slowlog-max-len", range(0, i64::MAX), "128"),
    param("lazyfree-lazy-user-del", Kind::Bool, "no"),
    param("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    param("lazyfree-lazy-eviction", Kind::Bool, "no"),
    param("lazyfree-lazy-expire", Kind::Bool, "no"),
    param("lazyfree-lazy-server-del", Kind::Bool, "no"),
    aliased(
        "list-max-listpack-size",
        "list-max-ziplist-size",
        range(i32::MIN as i64, INT),
        "-2",
    ),
    param("list-compress-depth", range(0, INT), "0"),
    // Redis's built-in default, which the hashes' encoding follows (`store::hash::MAX_LISTPACK_ENTRIES`).
    aliased(
        "hash-max-listpack-entries",
        "hash-max-ziplist-entries",
        range(0, i64::MAX),
        "512",
    ),
    aliased(
        "hash-max-listpack-value",
        "hash-max-ziplist-value",
        range(0, i64::MAX),
        "64",
    ),
    param("set-max-intset-entries", range(0, i64::MAX), "512"),
    param("set-max-listpack-entries", range(0, i64::MAX), "128"),
    param("set-max-listpack-value", range(0, i64::MAX), "64"),
    aliased(
        "zset-max-listpack-entries",
        "zset-max-ziplist-entries",
        range(0, i64::MAX),
        "128",
    ),
    aliased(
        "zset-max-listpack-value",
        "zset-max-ziplist-value",
        range(0, i64::MAX),
        "64",
    ),
    param("stream-node-max-bytes", Kind::Memory { min: 0 }, "4096"),
    param("stream-node-max-entries", range(0, i64::MAX), "100"),
    // Read by clients and tools; what they describe is fixed here (one I/O thread, no cluster mode, DEBUG allowed,
    // Redis's default output buffer limits, of which subscribers get the hard 32 MB one, and tracking table size)
    // or has no effect (the rest).
    param("cluster-enabled", Kind::Immutable, "no"),
    param("io-threads", Kind::Immutable, "1"),
    param("enable-debug-command", Kind::Immutable, "yes"),
    param(
        "client-output-buffer-limit",
        Kind::Immutable,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    param("tracking-table-max-keys", Kind::Immutable, "1000000"),
    param("protected-mode", Kind::Bool, "yes"),
    param("dynamic-hz", Kind::Bool, "yes"),
    param("latency-tracking", Kind::Bool, "yes"),
    param("activerehashing", Kind::Bool, "yes"),
    param("replica-read-only", Kind::Bool, "yes"),
];

/// Index of the parameter called `name` (or aliased so), case-insensitively.
fn find_param(name: &[u8]) -> Option<usize> {
    PARAMS.iter().position(|p| {
        name.eq_ignore_ascii_case(p.name.as_bytes())
            || p.alias
                .is_some_and(|a| name.eq_ignore_ascii_case(a.as_bytes()))
    })
}

/// Parses a byte count as Redis's `memtoull`: digits and an optional unit b, k, kb, m, mb, g, gb (k = 1000, kb = 1024).
pub fn parse_memory(s: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(s).ok()?.to_ascii_lowercase();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// The value CONFIG SET would store for `param`, or Redis's reason for refusing it.
/// An integer CONFIG SET accepts when it lies within `min..=max`.
fn int_within(value: &[u8], min: i64, max: i64) -> Result<i64, String> {
    let n =
        crate::cmd::args::parse_i64(value).ok_or("argument couldn't be parsed into an integer")?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

fn validate(param: &Param, value: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(value);
    match param.kind {
        Kind::Bool => match text.to_ascii_lowercase().as_str() {
            v @ ("yes" | "no") => Ok(v.to_string()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => Ok(int_within(value, min, max)?.to_string()),
        Kind::Clamped { min, max } => Ok(int_within(value, 0, INT)?.clamp(min, max).to_string()),
        Kind::Memory { min } => {
            let n = parse_memory(value).ok_or("argument must be a memory value")?;
            if n < min || n > i64::MAX as u64 {
                return Err(format!(
                    "argument must be between {min} and {} inclusive",
                    i64::MAX
                ));
            }
            Ok(n.to_string())
        }
        Kind::Enum(words) => words
            .iter()
            .find(|w| w.eq_ignore_ascii_case(&text))
            .map(|w| w.to_string())
            .ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    words.join(", ")
                )
            }),
        Kind::Str => Ok(text.into_owned()),
        Kind::Only { value, .. } if text.eq_ignore_ascii_case(value) => Ok(value.to_string()),
        Kind::Only { why, .. } => Err(why.into()),
        Kind::Immutable => Err("can't set immutable config".into()),
        Kind::KeyspaceEvents => notify::parse(value)
            .map(notify::format)
            .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
    }
}

/// Settings that CONFIG SET may change while the server runs. The ones the server acts on are atomics read lock-free
/// on the hot path; the rest are stored for CONFIG GET.
pub struct Settings {
    /// maxclients.
    pub maxclients: AtomicU64,
    /// proto-max-bulk-len.
    pub proto_max_bulk_len: AtomicU64,
    /// busy-reply-threshold (alias lua-time-limit), in milliseconds.
    pub busy_reply_threshold: AtomicU64,
    /// notify-keyspace-events, as class flags: shared with every keyspace of the store.
    pub keyspace_events: notify::Events,
    /// Current value of every parameter, by index in [`PARAMS`].
    values: Mutex<Vec<String>>,
}

impl Settings {
    /// Settings initialised from the command line.
    pub fn new(config: &Config) -> Self {
        let from_config = |name: &str| -> Option<String> {
            Some(match name {
                "databases" => config.databases.to_string(),
                "port" => config.port.to_string(),
                "bind" => config.bind.clone(),
                "maxclients" => config.maxclients.to_string(),
                "proto-max-bulk-len" => config.proto_max_bulk_len.to_string(),
                "busy-reply-threshold" => config.busy_reply_threshold.to_string(),
                "loglevel" => config.loglevel.clone(),
                "dir" => std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                _ => return None,
            })
        };
        Settings {
            maxclients: AtomicU64::new(config.maxclients),
            proto_max_bulk_len: AtomicU64::new(config.proto_max_bulk_len),
            busy_reply_threshold: AtomicU64::new(config.busy_reply_threshold),
            keyspace_events: notify::Events::default(),
            values: Mutex::new(
                PARAMS
                    .iter()
                    .map(|p| from_config(p.name).unwrap_or_else(|| p.default.to_string()))
                    .collect(),
            ),
        }
    }
    /// Current maxclients.
    pub fn maxclients(&self) -> u64 {
        self.maxclients.load(Ordering::Relaxed)
    }
    /// Current busy-reply-threshold.
    pub fn busy_reply_threshold(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.busy_reply_threshold.load(Ordering::Relaxed))
    }
    /// Current proto-max-bulk-len.
    pub fn proto_max_bulk_len(&self) -> usize {
        self.proto_max_bulk_len.load(Ordering::Relaxed) as usize
    }

    /// CONFIG GET: the `(name, value)` pairs matching any of `patterns`, each once, pattern by pattern. A pattern
    /// without glob characters names one parameter (or its alias) exactly; a glob matches names and aliases, in table
    /// order; both case-insensitively.
    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let values = self.values.lock();
        let mut found: Vec<(String, String)> = Vec::new();
        let mut add = |name: &str, value: &String| {
            if !found.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                found.push((name.to_string(), value.clone()));
            }
        };
        for &pattern in patterns {
            // A name without glob characters is looked up and answered as the client spelled it (Redis's
            // configGetCommand adds the argument itself), a pattern by the names it matches.
            if !pattern.iter().any(|b| b"[*?".contains(b)) {
                if let Some(idx) = find_param(pattern) {
                    add(&String::from_utf8_lossy(pattern), &values[idx]);
                }
                continue;
            }
            for (param, value) in PARAMS.iter().zip(values.iter()) {
                for name in std::iter::once(param.name).chain(param.alias) {
                    if glob::matches(pattern, name.as_bytes(), true) {
                        add(name, value);
                    }
                }
            }
        }
        found
    }

    /// CONFIG SET: validates every `(name, value)` pair, then applies them all, or none. The error is Redis's message
    /// (without `ERR `).
    pub fn set(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        let failed = |name: &[u8], why: &str| {
            format!(
                "CONFIG SET failed (possibly related to argument '{}') - {why}",
                String::from_utf8_lossy(name)
            )
        };
        let mut updates: Vec<(usize, String)> = Vec::with_capacity(pairs.len());
        for &(name, _) in pairs {
            let idx = find_param(name).ok_or_else(|| {
                format!(
                    "Unknown option or number of arguments for CONFIG SET - '{}'",
                    String::from_utf8_lossy(name)
                )
            })?;
            if matches!(PARAMS[idx].kind, Kind::Immutable) {
                return Err(failed(name, "can't set immutable config"));
            }
            if updates.iter().any(|(i, _)| *i == idx) {
                return Err(failed(name, "duplicate parameter"));
            }
            updates.push((idx, String::new()));
        }
        for ((_, value), (name, raw)) in updates.iter_mut().zip(pairs) {
            let idx = find_param(name).expect("checked above");
            *value = validate(&PARAMS[idx], raw).map_err(|why| failed(name, &why))?;
        }
        let mut values = self.values.lock();
        for ((idx, value), &(_, raw)) in updates.into_iter().zip(pairs) {
            let atomic = match PARAMS[idx].name {
                "maxclients" => Some(&self.maxclients),
                "proto-max-bulk-len" => Some(&self.proto_max_bulk_len),
                "busy-reply-threshold" => Some(&self.busy_reply_threshold),
                _ => None,
            };
            if let (Some(a), Ok(n)) = (atomic, value.parse::<u64>()) {
                a.store(n, Ordering::Relaxed);
            }
            // From what the client wrote: the canonical spelling hides `n` behind `A`, as in Redis.
            if let (Kind::KeyspaceEvents, Some(flags)) = (PARAMS[idx].kind, notify::parse(raw)) {
                // The TRACKING bit is not a class: CONFIG SET keeps it.
                let keep = self.keyspace_events.load(Ordering::Relaxed) & notify::TRACKING;
                self.keyspace_events.store(keep | flags, Ordering::Relaxed);
            }
            values[idx] = value;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::new(&Config::defaults())
    }

    /// CONFIG GET's answer for these pairs.
    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_get_echoes_an_exact_name_as_typed_and_hz_is_kept_within_1_to_500() {
        let s = settings();
        assert_eq!(s.get(&[b"MAXMEMORY"]), pairs(&[("MAXMEMORY", "0")]));
        assert_eq!(
            s.get(&[b"maxmemory", b"MaxMemory", b"maxmemory*"]),
            pairs(&[
                ("maxmemory", "0"),
                ("maxmemory-policy", "noeviction"),
                ("maxmemory-samples", "5")
            ])
        );
        for (set, kept) in [("0", "1"), ("600", "500"), ("42", "42")] {
            s.set(&[(b"hz", set.as_bytes())]).unwrap();
            assert_eq!(
                s.get(&[b"hz"]),
                pairs(&[("hz", kept)]),
                "CONFIG SET hz {set}"
            );
        }
        assert!(s
            .set(&[(b"hz", b"-1")])
            .unwrap_err()
            .contains("between 0 and"));
    }

    #[test]
    fn a_backend_address_is_normalised_and_the_proxys_own_is_recognised() {
        assert_eq!(parse_addr("h:06379").unwrap(), "h:6379");
        assert!(parse_addr("h:0").is_err() && parse_addr("h:65536").is_err());
        assert!(parse_addr(":1").is_err() && parse_addr("h").is_err());
        let proxy = |bind: &str| {
            let args = ["p", "--bind", bind, "--port", "7000", "--backend", "h:1"];
            ProxyArgs::try_parse_from(args).unwrap().config
        };
        let (loopback, wildcard, other) = (proxy("127.0.0.1"), proxy("0.0.0.0"), proxy("10.0.0.5"));
        for own in ["127.0.0.1:7000", "LOCALHOST:7000", "0.0.0.0:7000"] {
            assert!(
                loopback.is_own_addr(own) && wildcard.is_own_addr(own),
                "{own}"
            );
        }
        assert!(wildcard.is_own_addr("127.0.0.2:7000"));
        assert!(
            !loopback.is_own_addr("127.0.0.2:7000"),
            "another address than the one bound"
        );
        assert!(other.is_own_addr("10.0.0.5:7000") && !other.is_own_addr("127.0.0.1:7000"));
        assert!(!loopback.is_own_addr("127.0.0.1:7001"));
    }

    /// The proxy config from `file` (written to a temporary file) and the command line `cli`.
    fn proxy_config(file: &str, cli: &[&str]) -> Result<ProxyConfig, String> {
        let path = std::env::temp_dir().join(format!(
            "ringkv-proxy-{}-{}.conf",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(&path, file).unwrap();
        let mut args = vec!["--config".to_string(), path.display().to_string()];
        args.extend(cli.iter().map(|a| a.to_string()));
        let parsed =
            ProxyArgs::try_parse_from(std::iter::once("p".to_string()).chain(args.clone()))
                .map_err(|e| e.to_string())
                .and_then(|p| p.config.with_file(&args));
        let _ = std::fs::remove_file(&path);
        parsed
    }

    #[test]
    fn proxy_config_file_gives_options_and_the_command_line_overrides_them() {
        let file =
            "# three redis\nbackend 127.0.0.1:6379\nbackend 127.0.0.1:6380:2\n\n  port 7100\n\
                    distribution ketama\nhash \"md5\"\nauto-eject yes\ntimeout-ms 250\n";
        let c = proxy_config(file, &["--timeout-ms", "900"]).unwrap();
        let addrs: Vec<_> = c
            .backends
            .iter()
            .map(|b| (b.addr.as_str(), b.weight))
            .collect();
        assert_eq!(addrs, [("127.0.0.1:6379", 1), ("127.0.0.1:6380", 2)]);
        assert_eq!((c.port, c.timeout_ms, c.auto_eject), (7100, 900, true));
        assert_eq!(c.placement().unwrap().name(), "ketama");
        // Backends on the command line replace the file's.
        let c = proxy_config(file, &["--backend", "10.0.0.1:7000", "--port", "1"]).unwrap();
        assert_eq!(c.backends.len(), 1);
        assert_eq!((c.port, c.timeout_ms), (1, 250));
    }

    #[test]
    fn proxy_config_file_errors_name_the_line() {
        let bad = |file: &str| proxy_config(file, &[]).unwrap_err();
        assert!(bad("backend 127.0.0.1:1\nlisten 7000\n").ends_with(":2: unknown option 'listen'"));
        assert!(
            bad("auto-eject maybe\n").ends_with(":1: 'auto-eject' takes yes or no, not 'maybe'")
        );
        assert!(bad("port\n").ends_with(":1: 'port' needs a value"));
        assert!(bad("config other.conf\n").contains("unknown option 'config'"));
        assert!(bad("port 7000\n").contains("no backend"));
        assert!(bad("backend nope\n").contains("'nope' is not HOST:PORT[:WEIGHT]"));
    }

    #[test]
    fn set_applies_all_pairs_or_none() {
        let s = settings();
        let err = s
            .set(&[(b"hz", b"20"), (b"maxmemory-policy", b"bogus")])
            .unwrap_err();
        assert!(err.starts_with(
            "CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of"
        ));
        assert_eq!(s.get(&[b"hz"]), pairs(&[("hz", "10")]));
        s.set(&[(b"HZ", b"20"), (b"maxclients", b"7")]).unwrap();
        assert_eq!(s.get(&[b"hz"]), pairs(&[("hz", "20")]));
        assert_eq!(s.maxclients(), 7);
    }

    #[test]
    fn memory_values_take_units_and_read_back_as_bytes() {
        assert_eq!(parse_memory(b"1gb"), Some(1 << 30));
        assert_eq!(parse_memory(b"2K"), Some(2000));
        assert_eq!(parse_memory(b"1xx"), None);
        assert_eq!(parse_memory(b"-1"), None);
        let s = settings();
        s.set(&[(b"proto-max-bulk-len", b"2mb")]).unwrap();
        assert_eq!(s.proto_max_bulk_len(), 2 << 20);
    }

    #[test]
    fn keyspace_events_are_stored_as_written_and_read_back_canonically() {
        let s = settings();
        let flags = || s.keyspace_events.load(Ordering::Relaxed);
        assert_eq!(flags(), 0);
        s.set(&[(b"notify-keyspace-events", b"KEA$n")]).unwrap();
        // `A` hides `n` in the text, as in Redis, but new keys are still announced.
        assert_eq!(
            s.get(&[b"notify-keyspace-events"]),
            pairs(&[("notify-keyspace-events", "AKE")])
        );
        assert_eq!(
            flags(),
            notify::ALL | notify::NEW | notify::KEYSPACE | notify::KEYEVENT
        );
        assert_eq!(
            s.set(&[(b"notify-keyspace-events", b"Kq")]).unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class \
             character. Use 'Ag$lshzxeKEtmdn'."
        );
        // A refused value changes nothing.
        assert_eq!(
            flags(),
            notify::ALL | notify::NEW | notify::KEYSPACE | notify::KEYEVENT
        );
        s.set(&[(b"notify-keyspace-events", b"")]).unwrap();
        assert_eq!(flags(), 0);
    }

    #[test]
    fn errors_read_like_redis() {
        let s = settings();
        assert_eq!(
            s.set(&[(b"foo", b"bar")]).unwrap_err(),
            "Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(
            s.set(&[(b"databases", b"3")]).unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
        );
        assert_eq!(
            s.set(&[(b"hz", b"1"), (b"hz", b"2")]).unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter"
        );
        assert_eq!(
            s.set(&[(b"maxclients", b"0")]).unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"
        );
        assert_eq!(
            s.set(&[(b"appendonly", b"yes")]).unwrap_err(),
            "CONFIG SET failed (possibly related to argument 'appendonly') - ringkv has no persistence"
        );
    }

    #[test]
    fn aliases_answer_under_their_own_name() {
        let s = settings();
        assert_eq!(
            s.get(&[b"lua-time-limit"]),
            pairs(&[("lua-time-limit", "5000")])
        );
        let all = s.get(&[b"*"]);
        assert!(all.iter().any(|(n, _)| *n == "busy-reply-threshold"));
        assert!(all.iter().any(|(n, v)| *n == "save" && v.is_empty()));
    }
}
