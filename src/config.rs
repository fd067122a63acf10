//! Configuration: the command line (with embedded defaults, no file needed) and the runtime settings CONFIG GET/SET see.

use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;

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
    /// Number of keyspace shards (rounded up to a power of two); 0 means 16 per CPU core.
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
    /// Worker threads for the async runtime (0: one per core).
    #[arg(long, default_value_t = 0)]
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
            16 * std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }
    }
    /// The `tracing` filter for `loglevel`.
    pub fn log_filter(&self) -> String {
        match self.loglevel.as_str() {
            "debug" => "debug".into(),
            "verbose" => "info".into(),
            "notice" => "info".into(),
            "warning" => "warn".into(),
            other => other.into(),
        }
    }
}

/// Settings that CONFIG SET may change while the server runs, read lock-free on the hot path.
pub struct Settings {
    /// maxclients.
    pub maxclients: AtomicU64,
    /// proto-max-bulk-len.
    pub proto_max_bulk_len: AtomicU64,
    /// busy-reply-threshold (alias lua-time-limit), in milliseconds.
    pub busy_reply_threshold: AtomicU64,
}

impl Settings {
    /// Settings initialised from the command line.
    pub fn new(config: &Config) -> Self {
        Settings {
            maxclients: AtomicU64::new(config.maxclients),
            proto_max_bulk_len: AtomicU64::new(config.proto_max_bulk_len),
            busy_reply_threshold: AtomicU64::new(config.busy_reply_threshold),
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
}
