//! Server commands: COMMAND, INFO, CONFIG, DBSIZE, FLUSHDB/FLUSHALL, SWAPDB, TIME, SHUTDOWN, DEBUG, LASTSAVE, SAVE.
//!
//! COMMAND's replies are derived from the command table ([`super::all_commands`]); the documentation-only facts Redis
//! keeps beside its table (summary, since, group, complexity and the explicit ACL categories) come from
//! `command_docs.tsv`, one line per Redis 7.2 command or subcommand, generated once from Redis's command JSON files.
//! ringkv has no persistence: SAVE and BGSAVE say so instead of pretending, and `SHUTDOWN SAVE` fails like a Redis
//! whose save failed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;
use std::time::Duration;

use super::args::{self, is};
use super::connection::REDIS_VERSION;
use super::{
    all_commands, blocking, flag, flag::*, lookup, lookup_sub, reply_help, CmdError, CmdResult,
    CommandSpec, Ctx, Flow, Keys,
};
use crate::glob;
use crate::protocol::{Argv, OwnedArgv, Reply};
use crate::pubsub::Kind;
use crate::store::BlockOp;

pub(super) const COMMANDS: &[CommandSpec] = &[
    // A container that also runs on its own (plain COMMAND), hence arity -1 instead of `container`'s -2.
    CommandSpec {
        name: "command",
        arity: -1,
        flags: LOADING | STALE,
        keys: Keys::None,
        handler: command_all,
        subcommands: COMMAND_SUBCOMMANDS,
    },
    CommandSpec::new("info", -1, LOADING | STALE | ALL_SHARDS, Keys::None, info),
    CommandSpec::new(
        "dbsize",
        1,
        READONLY | FAST | ALL_SHARDS,
        Keys::None,
        dbsize,
    ),
    CommandSpec::new("flushdb", -1, WRITE | ALL_SHARDS, Keys::None, flushdb),
    CommandSpec::new("flushall", -1, WRITE | ALL_SHARDS, Keys::None, flushall),
    CommandSpec::new("swapdb", 3, WRITE | FAST | ALL_SHARDS, Keys::None, swapdb),
    CommandSpec::new("time", 1, LOADING | STALE | FAST, Keys::None, time),
    CommandSpec::container("config", 0, CONFIG_SUBCOMMANDS),
    CommandSpec::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        Keys::None,
        shutdown,
    ),
    CommandSpec::new(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        debug,
    ),
    CommandSpec::new("lastsave", 1, LOADING | STALE | FAST, Keys::None, lastsave),
    CommandSpec::new(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        Keys::None,
        role,
    ),
    CommandSpec::new("wait", 3, 0, Keys::None, wait),
    CommandSpec::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI, Keys::None, save),
    CommandSpec::new("bgsave", -1, ADMIN | NOSCRIPT, Keys::None, save),
];

const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("count", 2, LOADING | STALE, Keys::None, command_count),
    CommandSpec::new("list", -2, LOADING | STALE, Keys::None, command_list),
    CommandSpec::new("info", -2, LOADING | STALE, Keys::None, command_info),
    CommandSpec::new("docs", -2, LOADING | STALE, Keys::None, command_docs),
    CommandSpec::new("getkeys", -3, LOADING | STALE, Keys::None, command_getkeys),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, command_help),
];

const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        config_get,
    ),
    CommandSpec::new(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        config_set,
    ),
    // Locks every shard: the keyspace hit/miss/expired counters live under the shard locks.
    CommandSpec::new(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE | ALL_SHARDS,
        Keys::None,
        config_resetstat,
    ),
    CommandSpec::new(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        config_rewrite,
    ),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, config_help),
];

// ---------------------------------------------------------------------------------------------------------------
// COMMAND

/// Redis's documentation facts about one command, from `command_docs.tsv`.
struct Doc {
    summary: &'static str,
    since: &'static str,
    group: &'static str,
    complexity: &'static str,
    /// Explicit ACL categories (without the ones implied by flags), as a bit mask over [`ACL_CATEGORIES`].
    acl: u32,
}

/// Docs by full name (`get`, `client|kill`).
static DOCS: LazyLock<HashMap<&'static str, Doc>> = LazyLock::new(|| {
    include_str!("command_docs.tsv")
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next()?;
            let doc = Doc {
                summary: f.next()?,
                since: f.next()?,
                group: f.next()?,
                complexity: f.next()?,
                acl: f.next()?.split(',').map(category_bit).fold(0, |a, b| a | b),
            };
            Some((name, doc))
        })
        .collect()
});

/// Redis's ACL categories, in the order COMMAND INFO lists them.
const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

fn category_bit(name: &str) -> u32 {
    ACL_CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map_or(0, |i| 1 << i)
}

/// The command's ACL categories: the explicit ones plus those Redis implies from its flags
/// (`setImplicitACLCategories`): write, read (unless scripting), admin + dangerous, pubsub, fast, blocking, else slow.
fn acl_categories(spec: &CommandSpec, full_name: &str) -> u32 {
    let bit = category_bit;
    let mut acl = DOCS.get(full_name).map_or(0, |d| d.acl);
    let implied = [
        (WRITE, bit("write")),
        (ADMIN, bit("admin") | bit("dangerous")),
        (PUBSUB, bit("pubsub")),
        (FAST, bit("fast")),
        (BLOCKING, bit("blocking")),
    ];
    for (f, cats) in implied {
        if spec.has(f) {
            acl |= cats;
        }
    }
    if spec.has(READONLY) && acl & bit("scripting") == 0 {
        acl |= bit("read");
    }
    if acl & bit("fast") == 0 {
        acl |= bit("slow");
    }
    acl
}

/// Full name of a subcommand, as Redis writes it.
fn full_name(parent: &CommandSpec, sub: &CommandSpec) -> String {
    format!("{}|{}", parent.name, sub.name)
}

/// Every command and subcommand with its full name, in a stable (sorted) order.
fn every_command() -> Vec<(String, &'static CommandSpec)> {
    let mut all: Vec<(String, &'static CommandSpec)> = Vec::new();
    for spec in all_commands() {
        all.push((spec.name.to_string(), spec));
        for sub in spec.subcommands {
            all.push((full_name(spec, sub), sub));
        }
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Top-level commands sorted by name (the table itself is a hash map).
fn top_level() -> Vec<&'static CommandSpec> {
    let mut all: Vec<_> = all_commands().collect();
    all.sort_unstable_by_key(|c| c.name);
    all
}

/// Finds `get` or `client|kill` (case-insensitively), as Redis's `lookupCommandBySds` does.
fn find_by_full_name(name: &[u8]) -> Option<(String, &'static CommandSpec)> {
    let mut parts = name.splitn(2, |&c| c == b'|');
    let spec = lookup(parts.next()?)?;
    match parts.next() {
        None => Some((spec.name.to_string(), spec)),
        Some(sub) => {
            let sub = lookup_sub(spec, sub)?;
            Some((full_name(spec, sub), sub))
        }
    }
}

/// Redis's legacy (first key, last key, step) triple; commands whose keys move (a count argument) report zeros.
fn legacy_key_range(keys: Keys) -> (i64, i64, i64) {
    match keys {
        Keys::Range { first, last, step } => (first as i64, last as i64, step as i64),
        Keys::DestNumKeys => (1, 1, 1),
        Keys::None | Keys::NumKeys { .. } | Keys::AfterKeyword { .. } => (0, 0, 0),
    }
}

/// One COMMAND INFO entry (Redis 7 shape): name, arity, flags, first key, last key, step, ACL categories, tips,
/// key specs, subcommands. ringkv reports no tips and no key specs; the legacy key range carries the positions.
fn write_command_info(out: &mut Reply, spec: &CommandSpec, name: &str) {
    out.array(10);
    out.bulk(name.as_bytes());
    out.int(spec.arity as i64);
    let movable = matches!(
        spec.keys,
        Keys::NumKeys { .. } | Keys::DestNumKeys | Keys::AfterKeyword { .. }
    )
    .then_some("movablekeys");
    let flags: Vec<&str> = flag::NAMES
        .iter()
        .filter(|(f, _)| spec.has(*f))
        .map(|(_, n)| *n)
        .chain(movable)
        .collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f);
    }
    let (first, last, step) = legacy_key_range(spec.keys);
    out.int(first);
    out.int(last);
    out.int(step);
    let acl = acl_categories(spec, name);
    out.set(acl.count_ones() as usize);
    for (i, cat) in ACL_CATEGORIES.iter().enumerate() {
        if acl & (1 << i) != 0 {
            out.simple(&format!("@{cat}"));
        }
    }
    out.set(0);
    out.array(0);
    out.array(spec.subcommands.len());
    for sub in spec.subcommands {
        write_command_info(out, sub, &full_name(spec, sub));
    }
}

fn command_all(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let all = top_level();
    ctx.out.array(all.len());
    for spec in all {
        write_command_info(ctx.out, spec, spec.name);
    }
    Ok(())
}

fn command_count(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.int(all_commands().count() as i64);
    Ok(())
}

/// COMMAND LIST's optional `FILTERBY MODULE|ACLCAT|PATTERN value`.
enum ListFilter<'a> {
    All,
    /// Commands of a module: ringkv has none.
    Module,
    /// An ACL category bit (0 for an unknown category, which matches nothing).
    AclCat(u32),
    Pattern(&'a [u8]),
}

impl ListFilter<'_> {
    fn keeps(&self, name: &str, spec: &CommandSpec) -> bool {
        match *self {
            ListFilter::All => true,
            ListFilter::Module => false,
            ListFilter::AclCat(cat) => acl_categories(spec, name) & cat != 0,
            ListFilter::Pattern(p) => glob::matches(p, name.as_bytes(), true),
        }
    }
}

fn command_list(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let filter = match argv.len() {
        2 => ListFilter::All,
        5 if is(argv.get(2), "FILTERBY") => {
            let (kind, value) = (argv.get(3), argv.get(4));
            if is(kind, "MODULE") {
                ListFilter::Module
            } else if is(kind, "ACLCAT") {
                ListFilter::AclCat(std::str::from_utf8(value).map_or(0, category_bit))
            } else if is(kind, "PATTERN") {
                ListFilter::Pattern(value)
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let names: Vec<String> = every_command()
        .into_iter()
        .filter(|(name, spec)| filter.keeps(name, spec))
        .map(|(name, _)| name)
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

fn command_info(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    if argv.len() == 2 {
        return command_all(ctx, argv);
    }
    ctx.out.array(argv.len() - 2);
    for name in argv.iter_from(2) {
        match find_by_full_name(name) {
            Some((full, spec)) => write_command_info(ctx.out, spec, &full),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// One COMMAND DOCS entry: summary, since, group, complexity (when Redis documents the command) and subcommands.
fn write_command_docs(out: &mut Reply, spec: &CommandSpec, name: &str) {
    let doc = DOCS.get(name);
    let has_subs = !spec.subcommands.is_empty();
    out.map(4 * doc.is_some() as usize + has_subs as usize);
    if let Some(d) = doc {
        for (k, v) in [
            ("summary", d.summary),
            ("since", d.since),
            ("group", d.group),
            ("complexity", d.complexity),
        ] {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
    }
    if has_subs {
        out.bulk(b"subcommands");
        out.map(spec.subcommands.len());
        for sub in spec.subcommands {
            let full = full_name(spec, sub);
            out.bulk(full.as_bytes());
            write_command_docs(out, sub, &full);
        }
    }
}

fn command_docs(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let found: Vec<(String, &CommandSpec)> = if argv.len() == 2 {
        top_level()
            .into_iter()
            .map(|s| (s.name.to_string(), s))
            .collect()
    } else {
        // Unknown names are left out, as Redis does.
        argv.iter_from(2).filter_map(find_by_full_name).collect()
    };
    ctx.out.map(found.len());
    for (name, spec) in found {
        ctx.out.bulk(name.as_bytes());
        write_command_docs(ctx.out, spec, &name);
    }
    Ok(())
}

fn command_getkeys(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let target = OwnedArgv::from_args(argv.iter_from(2));
    let target = target.argv();
    let invalid = || CmdError::err("Invalid command specified");
    let mut spec = lookup(target.get(0)).ok_or_else(invalid)?;
    if !spec.subcommands.is_empty() && target.len() >= 2 {
        spec = lookup_sub(spec, target.get(1)).ok_or_else(invalid)?;
    }
    if spec.keys == Keys::None || spec.has(NOT_KEY) {
        return Err(CmdError::err("The command has no key arguments"));
    }
    let argc = target.len() as i64;
    let arity = spec.arity as i64;
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    // A key count that is not a number or names more arguments than exist finds no keys at all, as in Redis.
    let count_ok = match spec.keys {
        Keys::DestNumKeys => {
            args::parse_i64(target.get(2)).is_some_and(|n| n >= 0 && n.saturating_add(2) < argc)
        }
        Keys::NumKeys { at, step } => args::parse_i64(target.get(at)).is_some_and(|n| {
            n >= 0 && (at as i64).saturating_add(n.saturating_mul(step as i64)) < argc
        }),
        _ => true,
    };
    let keys: Vec<usize> = if count_ok {
        spec.key_indices(target).collect()
    } else {
        Vec::new()
    };
    if keys.is_empty() && !spec.has(NO_MANDATORY_KEYS) {
        return Err(CmdError::err("Invalid arguments specified for command"));
    }
    ctx.out.array(keys.len());
    for i in keys {
        ctx.out.bulk(target.get(i));
    }
    Ok(())
}

fn command_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// INFO

/// INFO's sections, in the order Redis prints them; all of them are in the default set.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
];

fn info(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let all = argv.len() == 1
        || argv
            .iter_from(1)
            .any(|a| is(a, "all") || is(a, "default") || is(a, "everything"));
    let mut text = String::new();
    for &section in SECTIONS {
        if !all && !argv.iter_from(1).any(|a| is(a, section)) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let title = match section {
            "cpu" => "CPU".to_string(),
            s => s[..1].to_ascii_uppercase() + &s[1..],
        };
        text.push_str(&format!("# {title}\r\n"));
        for (k, v) in info_section(ctx, section) {
            text.push_str(&format!("{k}:{v}\r\n"));
        }
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// The `field:value` lines of one INFO section.
fn info_section(ctx: &mut Ctx, section: &str) -> Vec<(String, String)> {
    if section == "keyspace" {
        return keyspace_lines(ctx);
    }
    let server = ctx.server;
    let stats = &server.stats;
    let uptime = server.started.elapsed().as_secs();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed).to_string();
    let lines: Vec<(&str, String)> = match section {
        "server" => vec![
            ("redis_version", REDIS_VERSION.into()),
            ("ringkv_version", env!("CARGO_PKG_VERSION").into()),
            ("redis_git_sha1", "00000000".into()),
            ("redis_git_dirty", "0".into()),
            ("redis_mode", "standalone".into()),
            ("os", os_name()),
            ("arch_bits", usize::BITS.to_string()),
            ("multiplexing_api", MULTIPLEXING_API.into()),
            ("process_id", std::process::id().to_string()),
            ("process_supervised", "no".into()),
            ("run_id", server.run_id.clone()),
            ("tcp_port", load(&server.port)),
            ("server_time_usec", (unix_micros()).to_string()),
            ("uptime_in_seconds", uptime.to_string()),
            ("uptime_in_days", (uptime / 86_400).to_string()),
            ("hz", config_value(ctx, "hz")),
            ("configured_hz", config_value(ctx, "hz")),
            (
                "executable",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("config_file", String::new()),
        ],
        "clients" => vec![
            ("connected_clients", server.clients.len().to_string()),
            (
                "blocked_clients",
                server.clients.blocked_count().to_string(),
            ),
            (
                "tracking_clients",
                server.tracking.stats().clients.to_string(),
            ),
            ("cluster_connections", "0".into()),
            ("maxclients", server.settings.maxclients().to_string()),
        ],
        "memory" => {
            let rss = rss_bytes();
            vec![
                ("used_memory", rss.to_string()),
                ("used_memory_human", bytes_to_human(rss)),
                ("used_memory_rss", rss.to_string()),
                ("used_memory_rss_human", bytes_to_human(rss)),
                ("maxmemory", config_value(ctx, "maxmemory")),
                (
                    "maxmemory_human",
                    bytes_to_human(config_value(ctx, "maxmemory").parse().unwrap_or(0)),
                ),
                ("maxmemory_policy", config_value(ctx, "maxmemory-policy")),
                ("mem_allocator", "mimalloc".into()),
            ]
        }
        "persistence" => vec![
            ("loading", "0".into()),
            ("async_loading", "0".into()),
            // ringkv does not count changes: with no persistence there is no save they could be "since".
            ("rdb_changes_since_last_save", "0".into()),
            ("rdb_bgsave_in_progress", "0".into()),
            ("rdb_last_save_time", start_unix_secs(ctx).to_string()),
            ("rdb_last_bgsave_status", "ok".into()),
            ("aof_enabled", "0".into()),
            ("aof_rewrite_in_progress", "0".into()),
            ("aof_last_write_status", "ok".into()),
        ],
        "stats" => {
            let ks = keyspace_stats(ctx);
            let tracking = server.tracking.stats();
            vec![
                (
                    "total_connections_received",
                    load(&stats.connections_received),
                ),
                ("total_commands_processed", load(&stats.commands_processed)),
                ("instantaneous_ops_per_sec", "0".into()),
                ("total_net_input_bytes", load(&stats.net_input_bytes)),
                ("total_net_output_bytes", load(&stats.net_output_bytes)),
                ("rejected_connections", load(&stats.rejected_connections)),
                ("expired_keys", ks.expired.to_string()),
                ("evicted_keys", "0".into()),
                ("keyspace_hits", ks.hits.to_string()),
                ("keyspace_misses", ks.misses.to_string()),
                (
                    "pubsub_channels",
                    server.pubsub.channel_count(Kind::Channel).to_string(),
                ),
                ("pubsub_patterns", server.pubsub.numpat().to_string()),
                (
                    "pubsubshard_channels",
                    server.pubsub.channel_count(Kind::Shard).to_string(),
                ),
                ("tracking_total_keys", tracking.keys.to_string()),
                ("tracking_total_items", tracking.items.to_string()),
                ("tracking_total_prefixes", tracking.prefixes.to_string()),
            ]
        }
        "replication" => vec![
            ("role", "master".into()),
            ("connected_slaves", "0".into()),
            ("master_failover_state", "no-failover".into()),
            ("master_replid", server.run_id.clone()),
            ("master_replid2", "0".repeat(40)),
            ("master_repl_offset", "0".into()),
            ("second_repl_offset", "-1".into()),
            ("repl_backlog_active", "0".into()),
            ("repl_backlog_size", "1048576".into()),
            ("repl_backlog_first_byte_offset", "0".into()),
            ("repl_backlog_histlen", "0".into()),
        ],
        "cpu" => {
            let (user, sys) = cpu_seconds();
            vec![
                ("used_cpu_sys", format!("{sys:.6}")),
                ("used_cpu_user", format!("{user:.6}")),
                ("used_cpu_sys_children", "0.000000".into()),
                ("used_cpu_user_children", "0.000000".into()),
            ]
        }
        "cluster" => vec![("cluster_enabled", "0".into())],
        _ => Vec::new(),
    };
    lines.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(target_os = "linux")]
const MULTIPLEXING_API: &str = "epoll";
#[cfg(not(target_os = "linux"))]
const MULTIPLEXING_API: &str = "kqueue";

/// `db0:keys=N,expires=M,avg_ttl=0` for every non-empty database, summed over the (locked) shards.
fn keyspace_lines(ctx: &mut Ctx) -> Vec<(String, String)> {
    let dbs = ctx.server.config.databases.max(1);
    let mut counts = vec![(0usize, 0usize); dbs];
    for shard in ctx.shards.all() {
        for (i, db) in shard.dbs.iter().enumerate() {
            counts[i].0 += db.len();
            counts[i].1 += db.expires_len();
        }
    }
    counts
        .into_iter()
        .enumerate()
        .filter(|(_, (keys, _))| *keys > 0)
        .map(|(i, (keys, expires))| {
            (
                format!("db{i}"),
                format!("keys={keys},expires={expires},avg_ttl=0"),
            )
        })
        .collect()
}

/// The keyspace counters summed over every database of every (locked) shard.
fn keyspace_stats(ctx: &mut Ctx) -> crate::store::KeyspaceStats {
    let mut total = crate::store::KeyspaceStats::default();
    for shard in ctx.shards.all() {
        for db in shard.dbs.iter() {
            total.expired += db.stats.expired;
            total.hits += db.stats.hits;
            total.misses += db.stats.misses;
        }
    }
    total
}

fn config_value(ctx: &Ctx, name: &str) -> String {
    ctx.server
        .settings
        .get(&[name.as_bytes()])
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// When the server started, in Unix seconds: what LASTSAVE reports, like a Redis that has not saved since start.
fn start_unix_secs(ctx: &Ctx) -> u64 {
    (ctx.now / 1000).saturating_sub(ctx.server.started.elapsed().as_secs())
}

/// `Linux 6.1.0 x86_64`, as Redis prints `uname`.
fn os_name() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    match (
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease"),
    ) {
        (Ok(os), Ok(release)) => format!("{os} {release} {}", std::env::consts::ARCH),
        _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

/// Resident memory in bytes, from `/proc/self/statm` (0 where there is no procfs).
pub(crate) fn rss_bytes() -> u64 {
    const PAGE: u64 = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * PAGE)
}

/// (user, system) CPU seconds of this process from `/proc/self/stat` (clock ticks of the fixed Linux USER_HZ, 100).
fn cpu_seconds() -> (f64, f64) {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name start with the state (field 3); utime and stime are fields 14, 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut fields = rest.split_whitespace().skip(11);
    let mut ticks = || {
        fields
            .next()
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let user = ticks();
    let sys = ticks();
    (user / USER_HZ, sys / USER_HZ)
}

/// Redis's `bytesToHuman`: `512B`, `1.50K`, `2.00M`, `1.00G`...
fn bytes_to_human(n: u64) -> String {
    const UNITS: &[(&str, f64)] = &[
        ("P", 1024f64 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("T", 1024f64 * 1024.0 * 1024.0 * 1024.0),
        ("G", 1024f64 * 1024.0 * 1024.0),
        ("M", 1024f64 * 1024.0),
        ("K", 1024f64),
    ];
    let x = n as f64;
    UNITS
        .iter()
        .find(|(_, size)| x >= *size)
        .map_or(format!("{n}B"), |(unit, size)| {
            format!("{:.2}{unit}", x / size)
        })
}

// ---------------------------------------------------------------------------------------------------------------
// Keyspace-wide commands

fn dbsize(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let db = ctx.client.db;
    let n: usize = ctx.shards.all().map(|s| s.dbs[db].len()).sum();
    ctx.out.int(n as i64);
    Ok(())
}

/// The optional ASYNC|SYNC of FLUSHDB / FLUSHALL; both flush at once here (dropping memory is fast enough).
fn flush_mode(argv: Argv) -> CmdResult {
    match argv.len() {
        1 => Ok(()),
        2 if is(argv.get(1), "ASYNC") || is(argv.get(1), "SYNC") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    flush_mode(argv)?;
    let db = ctx.client.db;
    for shard in ctx.shards.all() {
        shard.dbs[db].clear();
    }
    ctx.out.ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    flush_mode(argv)?;
    for shard in ctx.shards.all() {
        shard.dbs.iter_mut().for_each(|db| db.clear());
    }
    ctx.out.ok();
    Ok(())
}

fn swapdb(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let index = |i: usize, msg: &str| {
        args::parse_i64(argv.get(i))
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| CmdError::err(msg))
    };
    let a = index(1, "invalid first DB index")?;
    let b = index(2, "invalid second DB index")?;
    let dbs = ctx.server.config.databases as i64;
    if !(0..dbs).contains(&a) || !(0..dbs).contains(&b) {
        return Err(CmdError::err("DB index is out of range"));
    }
    let (a, b) = (a as usize, b as usize);
    for shard in ctx.shards.all() {
        shard.dbs.swap(a, b);
        // Both databases changed for a client watching a key in either (Redis's touchAllWatchedKeysInDb).
        if a != b {
            shard.dbs[a].mark_changed();
            shard.dbs[b].mark_changed();
        }
    }
    ctx.out.ok();
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Time, persistence, shutdown, debug

fn time(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let micros = unix_micros();
    ctx.out.array(2);
    ctx.out.bulk((micros / 1_000_000).to_string().as_bytes());
    ctx.out.bulk((micros % 1_000_000).to_string().as_bytes());
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.int(start_unix_secs(ctx) as i64);
    Ok(())
}

/// ROLE: a master without replicas (offset 0, as INFO's replication section says), which clients and Sentinel-aware
/// libraries check before they use a server.
fn role(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
    Ok(())
}

/// `WAIT numreplicas timeout`: ringkv has no replicas, so none ever acknowledges. Asking for none (or fewer)
/// answers 0 at once; otherwise the client blocks for `timeout` milliseconds (0: until CLIENT UNBLOCK) and gets 0,
/// as a Redis master without replicas does. Inside MULTI or a script it answers 0 at once.
fn wait(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let replicas = args::parse_i64(argv.get(1)).ok_or(CmdError::NotInteger)?;
    let timeout = blocking::parse_timeout_ms(argv.get(2), ctx.now)?;
    if replicas <= 0 {
        ctx.out.int(0);
        return Ok(());
    }
    blocking::block(ctx, Vec::new(), BlockOp::Wait, timeout)
}

/// SAVE and BGSAVE: ringkv keeps nothing on disk, and replying `+OK` would claim a snapshot that does not exist.
fn save(_ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    Err(CmdError::err(
        "ringkv has no persistence: nothing is saved to disk",
    ))
}

fn shutdown(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (mut nosave, mut save, mut abort, mut other) = (false, false, false, false);
    for arg in argv.iter_from(1) {
        if is(arg, "NOSAVE") {
            nosave = true;
        } else if is(arg, "SAVE") {
            save = true;
        } else if is(arg, "ABORT") {
            abort = true;
        } else if is(arg, "NOW") || is(arg, "FORCE") {
            other = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let force = argv.iter_from(1).any(|a| is(a, "FORCE"));
    if (abort && (nosave || save || other)) || (nosave && save) {
        return Err(CmdError::Syntax);
    }
    if abort {
        // Shutdown is immediate, so there is never one in progress to abort.
        return Err(CmdError::err("No shutdown in progress."));
    }
    let busy = ctx.server.settings.busy_reply_threshold();
    if !nosave && ctx.server.scripts.busy_run(busy).is_some() {
        // While a script is busy, only SHUTDOWN NOSAVE goes through, as in Redis.
        return Err(CmdError::Coded(ctx.server.scripts.busy_error(busy).into()));
    }
    if save && !force {
        // What Redis replies when the final save fails; FORCE shuts down anyway.
        tracing::warn!("SHUTDOWN SAVE refused: ringkv has no persistence (use NOSAVE or FORCE)");
        return Err(CmdError::err("Errors trying to SHUTDOWN. Check logs."));
    }
    tracing::info!(id = ctx.client.id(), "SHUTDOWN requested by a client");
    ctx.flow = Flow::Shutdown;
    Ok(())
}

fn debug(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let sub = argv.get(1);
    if is(sub, "SLEEP") && argv.len() == 3 {
        // Like Redis's strtod: anything unparsable sleeps 0 seconds. It blocks this worker thread, as Redis blocks.
        let secs = args::strtod(argv.get(2)).map_or(0.0, |r| r.value);
        let pause = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
        std::thread::sleep(pause);
        ctx.out.ok();
        return Ok(());
    }
    if is(sub, "ERROR") && argv.len() == 3 {
        // The error as given, its line breaks made spaces (client test suites fake a server's errors with it).
        let text = String::from_utf8_lossy(argv.get(2)).replace(['\r', '\n'], " ");
        return Err(CmdError::Coded(text));
    }
    if is(sub, "HELP") && argv.len() == 2 {
        reply_help(
            ctx.out,
            "DEBUG",
            &[
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message. Useful for clients",
                "    unit tests to simulate Redis errors.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        );
        return Ok(());
    }
    Err(CmdError::subcommand_syntax("DEBUG", sub))
}

// ---------------------------------------------------------------------------------------------------------------
// CONFIG

fn config_get(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let patterns: Vec<&[u8]> = argv.iter_from(2).collect();
    let mut pairs = ctx.server.settings.get(&patterns);
    // The real listening port, which differs from the configured one when that was 0.
    let port = ctx.server.port.load(Ordering::Relaxed).to_string();
    for (name, value) in pairs.iter_mut() {
        if name.eq_ignore_ascii_case("port") {
            *value = port.clone();
        }
    }
    ctx.out.map(pairs.len());
    for (name, value) in pairs {
        ctx.out.bulk(name.as_bytes());
        ctx.out.bulk(value.as_bytes());
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    if argv.len() % 2 != 0 {
        return Err(CmdError::Syntax);
    }
    let pairs: Vec<(&[u8], &[u8])> = (2..argv.len())
        .step_by(2)
        .map(|i| (argv.get(i), argv.get(i + 1)))
        .collect();
    ctx.server.settings.set(&pairs).map_err(CmdError::err)?;
    ctx.out.ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let s = &ctx.server.stats;
    for counter in [
        &s.connections_received,
        &s.rejected_connections,
        &s.commands_processed,
        &s.net_input_bytes,
        &s.net_output_bytes,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    for shard in ctx.shards.all() {
        for db in shard.dbs.iter_mut() {
            db.stats = Default::default();
        }
    }
    ctx.out.ok();
    Ok(())
}

fn config_rewrite(_ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    Err(CmdError::err("The server is running without a config file"))
}

fn config_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;

    #[test]
    fn info_counts_tracking_clients_keys_and_prefixes() {
        let mut c = TestClient::new();
        assert!(c.cmd("INFO clients").contains("tracking_clients:0\r\n"));
        assert_eq!(c.cmd("CLIENT TRACKING ON"), "+OK\r\n");
        c.cmd("GET k");
        assert!(c.cmd("INFO clients").contains("tracking_clients:1\r\n"));
        let stats = c.cmd("INFO stats");
        assert!(
            stats.contains("tracking_total_keys:1\r\ntracking_total_items:1\r\n"),
            "{stats}"
        );
        assert!(stats.contains("tracking_total_prefixes:0\r\n"), "{stats}");
    }

    #[test]
    fn wait_counts_no_replica_and_never_blocks_where_it_cannot() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("WAIT 0 0"), ":0\r\n");
        assert_eq!(
            c.cmd("WAIT 1 9223372036854775807"),
            "-ERR timeout is out of range\r\n"
        );
        // Redis 7.2 lets scripts call WAIT (7.0 refused it); there, as inside MULTI, it answers at once.
        assert_eq!(
            c.run(&["EVAL", "return redis.call('wait', 1, 0)", "0"]),
            ":0\r\n"
        );
    }

    #[test]
    fn dbsize_counts_keys_across_shards_of_the_selected_db() {
        let mut c = TestClient::new();
        for k in ["a", "b", "c", "d", "e"] {
            c.run(&["SET", k, "v"]);
        }
        assert_eq!(c.cmd("DBSIZE"), ":5\r\n");
        c.cmd("SELECT 1");
        assert_eq!(c.cmd("DBSIZE"), ":0\r\n");
    }

    #[test]
    fn flushdb_clears_only_the_selected_db_and_flushall_clears_all() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        c.cmd("SELECT 1");
        c.cmd("SET b 1");
        assert_eq!(c.cmd("FLUSHDB ASYNC"), "+OK\r\n");
        assert_eq!(c.cmd("DBSIZE"), ":0\r\n");
        c.cmd("SELECT 0");
        assert_eq!(c.cmd("DBSIZE"), ":1\r\n");
        assert_eq!(c.cmd("FLUSHALL bogus"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("FLUSHALL"), "+OK\r\n");
        assert_eq!(c.cmd("DBSIZE"), ":0\r\n");
    }

    #[test]
    fn swapdb_swaps_every_shard_and_validates_indexes() {
        let mut c = TestClient::new();
        for k in ["a", "b", "c", "d"] {
            c.run(&["SET", k, "v"]);
        }
        assert_eq!(c.cmd("SWAPDB 0 3"), "+OK\r\n");
        assert_eq!(c.cmd("DBSIZE"), ":0\r\n");
        c.cmd("SELECT 3");
        assert_eq!(c.cmd("GET c"), "$1\r\nv\r\n");
        assert_eq!(c.cmd("SWAPDB x 1"), "-ERR invalid first DB index\r\n");
        assert_eq!(c.cmd("SWAPDB 0 x"), "-ERR invalid second DB index\r\n");
        assert_eq!(c.cmd("SWAPDB 0 99"), "-ERR DB index is out of range\r\n");
    }

    #[test]
    fn command_info_has_the_redis_7_shape() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("COMMAND INFO get"),
            "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n\
             *3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n"
        );
        assert_eq!(c.cmd("COMMAND INFO nope"), "*1\r\n$-1\r\n");
        let kill = c.cmd("COMMAND INFO client|kill");
        assert!(
            kill.starts_with("*1\r\n*10\r\n$11\r\nclient|kill\r\n:-3\r\n"),
            "{kill}"
        );
        assert!(kill.contains("+@admin\r\n+@slow\r\n+@dangerous\r\n+@connection\r\n"));
    }

    #[test]
    fn command_count_and_list_agree_with_the_table() {
        let mut c = TestClient::new();
        let count = c.cmd("COMMAND COUNT");
        let n: usize = count[1..count.len() - 2].parse().unwrap();
        assert_eq!(n, crate::cmd::all_commands().count());
        let list = c.cmd("COMMAND LIST FILTERBY PATTERN client|*");
        assert!(list.contains("$11\r\nclient|kill\r\n"), "{list}");
        assert!(!list.contains("$3\r\nget\r\n"));
        let read = c.cmd("COMMAND LIST FILTERBY ACLCAT read");
        assert!(read.contains("$3\r\nget\r\n") && !read.contains("$3\r\nset\r\n"));
        assert_eq!(c.cmd("COMMAND LIST FILTERBY MODULE x"), "*0\r\n");
        assert_eq!(
            c.cmd("COMMAND LIST FILTERBY FOO x"),
            "-ERR syntax error\r\n"
        );
        assert_eq!(c.cmd("COMMAND LIST extra"), "-ERR syntax error\r\n");
    }

    #[test]
    fn command_docs_never_errors_and_skips_unknown_names() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("COMMAND DOCS nope"), "*0\r\n");
        let get = c.cmd("COMMAND DOCS get");
        assert!(
            get.starts_with("*2\r\n$3\r\nget\r\n*8\r\n$7\r\nsummary\r\n"),
            "{get}"
        );
        assert!(get.contains("$5\r\ngroup\r\n$6\r\nstring\r\n"));
        let all = c.cmd("COMMAND DOCS");
        assert!(all.contains("$11\r\nclient|kill\r\n"));
    }

    #[test]
    fn command_getkeys_reports_keys_and_redis_errors() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("COMMAND GETKEYS del a b"),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            c.cmd("COMMAND GETKEYS foo bar"),
            "-ERR Invalid command specified\r\n"
        );
        assert_eq!(
            c.cmd("COMMAND GETKEYS get"),
            "-ERR Invalid number of arguments specified for command\r\n"
        );
        assert_eq!(
            c.cmd("COMMAND GETKEYS ping x"),
            "-ERR The command has no key arguments\r\n"
        );
        assert_eq!(
            c.cmd("COMMAND GETKEYS client kill x"),
            "-ERR The command has no key arguments\r\n"
        );
    }

    #[test]
    fn info_sections_select_and_keyspace_lists_nonempty_dbs() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        c.cmd("SET b 1 PX 100000");
        let stat = |c: &mut TestClient, name: &str| -> u64 {
            let info = c.cmd("INFO stats");
            let at = info.find(&format!("{name}:")).unwrap() + name.len() + 1;
            info[at..].split("\r\n").next().unwrap().parse().unwrap()
        };
        let (hits, misses) = (
            stat(&mut c, "keyspace_hits"),
            stat(&mut c, "keyspace_misses"),
        );
        c.cmd("GET a");
        c.cmd("GET missing");
        assert_eq!(stat(&mut c, "keyspace_hits"), hits + 1);
        assert_eq!(stat(&mut c, "keyspace_misses"), misses + 1);
        let ks = c.cmd("INFO keyspace");
        assert_eq!(
            ks,
            "$44\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n\r\n"
        );
        let all = c.cmd("INFO");
        for needle in [
            "# Server\r\nredis_version:7.2.4\r\n",
            "ringkv_version:",
            "redis_mode:standalone\r\n",
            "\r\n\r\n# Clients\r\nconnected_clients:1\r\n",
            "maxmemory_policy:noeviction\r\n",
            "aof_enabled:0\r\n",
            "role:master\r\nconnected_slaves:0\r\n",
            "used_cpu_user:",
        ] {
            assert!(all.contains(needle), "{needle} missing in {all}");
        }
        let two = c.cmd("INFO CPU server");
        assert!(two.contains("# Server\r\n") && two.contains("# CPU\r\n"));
        assert!(two.find("# Server").unwrap() < two.find("# CPU").unwrap());
        assert!(!two.contains("# Clients"));
        assert_eq!(c.cmd("INFO nosuchsection"), "$0\r\n\r\n");
    }

    #[test]
    fn config_get_set_and_resetstat_work_together() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("CONFIG GET save"), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
        assert_eq!(
            c.cmd("CONFIG GET appendonly"),
            "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
        );
        assert_eq!(c.cmd("CONFIG SET maxmemory 1mb hz 20"), "+OK\r\n");
        assert_eq!(
            c.cmd("CONFIG GET maxmemory"),
            "*2\r\n$9\r\nmaxmemory\r\n$7\r\n1048576\r\n"
        );
        assert_eq!(
            c.cmd("CONFIG SET foo bar"),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n"
        );
        assert_eq!(c.cmd("CONFIG SET hz 1 x"), "-ERR syntax error\r\n");
        c.cmd("GET missing");
        assert_eq!(c.cmd("CONFIG RESETSTAT"), "+OK\r\n");
        assert!(c.cmd("INFO stats").contains("keyspace_misses:0\r\n"));
        assert_eq!(
            c.cmd("CONFIG REWRITE"),
            "-ERR The server is running without a config file\r\n"
        );
    }

    #[test]
    fn shutdown_parses_options_like_redis() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("SHUTDOWN ABORT"), "-ERR No shutdown in progress.\r\n");
        assert_eq!(c.cmd("SHUTDOWN foo"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("SHUTDOWN SAVE NOSAVE"), "-ERR syntax error\r\n");
        assert_eq!(
            c.cmd("SHUTDOWN SAVE"),
            "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
        );
        assert_eq!(c.cmd("SHUTDOWN NOSAVE"), "");
    }

    #[test]
    fn save_is_refused_and_lastsave_is_the_start_time() {
        let mut c = TestClient::new();
        assert!(c.cmd("SAVE").starts_with("-ERR ringkv has no persistence"));
        assert!(c
            .cmd("BGSAVE")
            .starts_with("-ERR ringkv has no persistence"));
        let last = c.cmd("LASTSAVE");
        let t: u64 = last[1..last.len() - 2].parse().unwrap();
        assert!(t.abs_diff(crate::store::now_ms() / 1000) <= 2);
    }

    #[test]
    fn role_is_a_master_without_replicas() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("ROLE"), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
        assert_eq!(
            c.cmd("ROLE x"),
            "-ERR wrong number of arguments for 'role' command\r\n"
        );
    }

    #[test]
    fn debug_sleep_sleeps_and_time_is_now() {
        let mut c = TestClient::new();
        let start = std::time::Instant::now();
        assert_eq!(c.cmd("DEBUG SLEEP 0.05"), "+OK\r\n");
        assert_eq!(
            c.cmd("DEBUG ERROR LOADING"),
            "-LOADING\r\n",
            "the error as given"
        );
        assert!(start.elapsed() >= std::time::Duration::from_millis(50));
        assert!(c
            .cmd("DEBUG nope")
            .starts_with("-ERR unknown subcommand or wrong number"));
        let time = c.cmd("TIME");
        assert!(time.starts_with("*2\r\n$10\r\n"), "{time}");
    }
}
