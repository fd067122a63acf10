//! MEMORY: USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE and HELP.
//!
//! ringkv keeps no running count of the bytes it allocates (Redis's `zmalloc_used_memory`), so the figures come from
//! two places: the process's resident memory (`/proc/self/statm`, what INFO's `used_memory` reports) for the
//! whole-process fields, and [`entry_bytes`], an estimate computed from the structures themselves, for a key's usage
//! and the dataset. MEMORY STATS therefore walks every key (O(keys), holding every shard), where Redis's is O(1).
//! Each key costs little: aggregates' elements are sampled, and only their table and tree sizes are summed over
//! sub-tables and leaves (a few per hundred elements).

use std::mem::size_of;

use super::args::{self, is};
use super::keys::KEY2;
use super::{flag::*, reply_help, rss_bytes, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::protocol::Argv;
use crate::store::stream::group::{ConsumerGroup, Nack};
use crate::store::stream::{Fields, StreamId};
use crate::store::{key_heap_bytes, Entry, Hash, Set, Stream, Value, ZSet};

pub(super) const COMMANDS: &[CommandSpec] = &[CommandSpec::container("memory", 0, SUBCOMMANDS)];

const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("doctor", 2, 0, Keys::None, doctor),
    CommandSpec::new("malloc-stats", 2, 0, Keys::None, malloc_stats),
    CommandSpec::new("purge", 2, 0, Keys::None, purge),
    CommandSpec::new("stats", 2, ALL_SHARDS, Keys::None, stats),
    CommandSpec::new("usage", -3, READONLY, KEY2, usage),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, help),
];

/// Redis's `OBJ_COMPUTE_SIZE_DEF_SAMPLES`: elements of an aggregate MEMORY USAGE looks at by default.
const DEFAULT_SAMPLES: usize = 5;

/// Below this much growth since startup MEMORY DOCTOR declines, as Redis does below 5 MiB allocated.
const DOCTOR_MIN_BYTES: u64 = 5 * 1024 * 1024;

/// MEMORY USAGE key [SAMPLES count]: the options are checked before the key is looked up (a bad count is an error
/// even for a missing key, as in Redis); SAMPLES may repeat (the last wins), 0 means every element.
fn usage(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut samples = DEFAULT_SAMPLES;
    let mut j = 3;
    while j < argv.len() {
        if !is(argv.get(j), "samples") || j + 1 >= argv.len() {
            return Err(CmdError::Syntax);
        }
        samples = match args::parse_i64(argv.get(j + 1)).ok_or(CmdError::NotInteger)? {
            n if n < 0 => return Err(CmdError::Syntax),
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        j += 2;
    }
    let (key, now) = (argv.get(2), ctx.now);
    let (db, out) = ctx.db_out(key);
    // Redis finds the key without counting a keyspace hit or miss.
    match db.find(key, now) {
        Some(entry) => out.int(i64::try_from(entry_bytes(entry, samples)).unwrap_or(i64::MAX)),
        None => out.null(),
    }
    Ok(())
}

/// MEMORY USAGE's estimate of the bytes ringkv spends on one key: the table slot (`size_of::<Entry>()`, which holds
/// the key inline up to 22 bytes, the value's enum and the deadline), the key's heap copy when it is longer, and
/// [`value_bytes`]. Allocator rounding and the expiry index's copy of the key are not counted.
fn entry_bytes(entry: &Entry, samples: usize) -> usize {
    size_of::<Entry>() + key_heap_bytes(entry.key().len()) + value_bytes(&entry.value, samples)
}

/// The heap bytes a value owns beyond its slot, by type:
/// - string: the buffer's capacity;
/// - list: its chunks' slots and buffers at capacity (the elements are packed in the buffers), sampled by chunk as
///   Redis samples a quicklist's nodes;
/// - hash, set: small encodings, the vector's slots at capacity plus each element's buffers; the table encoding, the
///   tables' allocations plus each member's key copy when it is too long to sit in its slot (and a hash's value
///   buffer);
/// - sorted set: the member table and the order tree (nodes, leaf vectors), plus each member's heap copy twice (it
///   is in both);
/// - stream: the entries' B-tree slots (nodes taken as two-thirds full) plus each entry's field/value pairs; the
///   consumer groups' pending entries and consumers the same way.
///
/// Like Redis's `objectComputeSize`, the per-element part of an aggregate looks at its first `samples` elements only
/// and extrapolates their average to all of them (`usize::MAX`: every element). Boxed aggregates add their box.
fn value_bytes(value: &Value, samples: usize) -> usize {
    match value {
        Value::Str(s) => s.capacity(),
        Value::List(items) => {
            let chunks = items.chunk_bytes();
            let n = chunks.len();
            sampled(chunks, n, samples, |bytes| bytes)
        }
        Value::Hash(h) => size_of::<Hash>() + hash_bytes(h, samples),
        Value::Set(s) => size_of::<Set>() + set_bytes(s, samples),
        Value::ZSet(z) => size_of::<ZSet>() + zset_bytes(z, samples),
        Value::Stream(s) => size_of::<Stream>() + stream_bytes(s, samples),
    }
}

fn hash_bytes(h: &Hash, samples: usize) -> usize {
    match h {
        Hash::Listpack(pairs) => {
            pairs.capacity() * size_of::<(Vec<u8>, Vec<u8>)>()
                + sampled(pairs.iter(), pairs.len(), samples, |(f, v)| {
                    f.capacity() + v.capacity()
                })
        }
        Hash::Table(d) => {
            d.table_bytes()
                + sampled(d.iter(), d.len(), samples, |(f, v)| {
                    key_heap_bytes(f.len()) + v.capacity()
                })
        }
    }
}

fn set_bytes(s: &Set, samples: usize) -> usize {
    match s {
        Set::Intset(members) | Set::Listpack(members) => {
            members.capacity() * size_of::<Vec<u8>>()
                + sampled(members.iter(), members.len(), samples, |m| m.capacity())
        }
        Set::Table(d) => {
            d.table_bytes() + sampled(d.iter(), d.len(), samples, |(m, _)| key_heap_bytes(m.len()))
        }
    }
}

fn zset_bytes(z: &ZSet, samples: usize) -> usize {
    z.structure_bytes()
        + sampled(z.iter(), z.len(), samples, |(m, _)| {
            2 * key_heap_bytes(m.len())
        })
}

/// A B-tree slot of a `K` -> `V` map, with nodes taken as two-thirds full (appends and random inserts both leave
/// std's B-tree nodes about that full).
fn btree_slot<K, V>() -> usize {
    (size_of::<K>() + size_of::<V>()) * 3 / 2
}

fn stream_bytes(s: &Stream, samples: usize) -> usize {
    let first = s.range(StreamId::MIN, StreamId::MAX, false, Some(samples));
    let entries = s.len() * btree_slot::<StreamId, Fields>()
        + sampled(first.iter(), s.len(), samples, |(_, fields)| {
            fields.capacity() * size_of::<(Vec<u8>, Vec<u8>)>()
                + fields
                    .iter()
                    .map(|(f, v)| f.capacity() + v.capacity())
                    .sum::<usize>()
        });
    let groups: usize = s
        .groups()
        .iter()
        .map(|(name, g)| {
            let consumers: usize = g
                .consumers
                .iter()
                .map(|(name, c)| name.len() + c.pel.len() * btree_slot::<StreamId, ()>())
                .sum();
            name.capacity()
                + btree_slot::<Vec<u8>, ConsumerGroup>()
                + g.pel.len() * btree_slot::<StreamId, Nack>()
                + consumers
        })
        .sum();
    entries + groups
}

/// The bytes of `len` elements from the first `samples` of `items` (their average times `len`), as Redis's
/// `objectComputeSize` extrapolates from its samples.
fn sampled<T>(
    items: impl Iterator<Item = T>,
    len: usize,
    samples: usize,
    bytes: impl Fn(T) -> usize,
) -> usize {
    let (n, total) = items
        .take(samples)
        .fold((0usize, 0usize), |(n, t), x| (n + 1, t + bytes(x)));
    if n == 0 {
        0
    } else {
        (total as f64 / n as f64 * len as f64) as usize
    }
}

/// Peak resident memory (`VmHWM` in `/proc/self/status`), at least `rss`.
fn peak_rss_bytes(rss: u64) -> u64 {
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024);
    peak.max(rss)
}

/// One MEMORY STATS field.
enum Stat {
    Int(u64),
    /// Redis computes ratios and percentages as C floats: the value is rounded to f32 to read alike.
    Float(f64),
    /// A `db.N` entry: main table and expiry index overheads.
    Db(u64, u64),
}

/// MEMORY STATS: Redis 7.2's fields in its order. Where ringkv has no equivalent the field is 0: replication,
/// replicas, cluster links, AOF, function caches; `clients.normal` and `lua.caches` are not measured. The allocator
/// fields read as a libc-built Redis reports them when used memory equals the RSS (ringkv's used memory is its RSS,
/// as in INFO): every one the RSS, ratios 1, bytes 0. `startup.allocated` is the RSS when the server state was made;
/// `dataset.bytes` sums [`entry_bytes`] (default samples) over every live key, without the table slots, which are
/// `overhead.hashtable.main`.
fn stats(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let now = ctx.now;
    let databases = ctx.server.config.databases.max(1);
    let (mut keys, mut dataset) = (0u64, 0u64);
    let mut dbs = vec![(0u64, 0u64, 0u64); databases];
    for shard in ctx.shards.all() {
        for (db, ks) in shard.dbs.iter().enumerate() {
            let entry = &mut dbs[db];
            entry.1 += ks.table_bytes() as u64;
            entry.2 += ks.expires_bytes() as u64;
            for e in ks.iter(now) {
                entry.0 += 1;
                dataset += (entry_bytes(e, DEFAULT_SAMPLES) - size_of::<Entry>()) as u64;
            }
        }
    }
    let rss = rss_bytes();
    let peak = peak_rss_bytes(rss);
    let startup = ctx.server.startup_rss;
    let net = rss.saturating_sub(startup).max(1);
    let mut fields: Vec<(String, Stat)> = vec![
        ("peak.allocated".into(), Stat::Int(peak)),
        ("total.allocated".into(), Stat::Int(rss)),
        ("startup.allocated".into(), Stat::Int(startup)),
        ("replication.backlog".into(), Stat::Int(0)),
        ("clients.slaves".into(), Stat::Int(0)),
        ("clients.normal".into(), Stat::Int(0)),
        ("cluster.links".into(), Stat::Int(0)),
        ("aof.buffer".into(), Stat::Int(0)),
        ("lua.caches".into(), Stat::Int(0)),
        ("functions.caches".into(), Stat::Int(0)),
    ];
    let mut overhead = startup;
    for (i, &(count, main, expires)) in dbs.iter().enumerate() {
        if count > 0 {
            keys += count;
            overhead += main + expires;
            fields.push((format!("db.{i}"), Stat::Db(main, expires)));
        }
    }
    fields.extend([
        ("overhead.total".into(), Stat::Int(overhead)),
        ("keys.count".into(), Stat::Int(keys)),
        (
            "keys.bytes-per-key".into(),
            Stat::Int(net.checked_div(keys).unwrap_or(0)),
        ),
        ("dataset.bytes".into(), Stat::Int(dataset)),
        (
            "dataset.percentage".into(),
            Stat::Float(dataset as f64 * 100.0 / net as f64),
        ),
        (
            "peak.percentage".into(),
            Stat::Float(rss as f64 * 100.0 / peak.max(1) as f64),
        ),
        ("allocator.allocated".into(), Stat::Int(rss)),
        ("allocator.active".into(), Stat::Int(rss)),
        ("allocator.resident".into(), Stat::Int(rss)),
        ("allocator-fragmentation.ratio".into(), Stat::Float(1.0)),
        ("allocator-fragmentation.bytes".into(), Stat::Int(0)),
        ("allocator-rss.ratio".into(), Stat::Float(1.0)),
        ("allocator-rss.bytes".into(), Stat::Int(0)),
        ("rss-overhead.ratio".into(), Stat::Float(1.0)),
        ("rss-overhead.bytes".into(), Stat::Int(0)),
        ("fragmentation".into(), Stat::Float(1.0)),
        ("fragmentation.bytes".into(), Stat::Int(0)),
    ]);
    let out = &mut *ctx.out;
    out.map(fields.len());
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    for (name, stat) in fields {
        out.bulk(name.as_bytes());
        match stat {
            Stat::Int(n) => out.int(int(n)),
            Stat::Float(x) => out.double(x as f32 as f64),
            Stat::Db(main, expires) => {
                out.map(3);
                out.bulk(b"overhead.hashtable.main");
                out.int(int(main));
                out.bulk(b"overhead.hashtable.expires");
                out.int(int(expires));
                out.bulk(b"overhead.hashtable.slot-to-keys");
                out.int(0);
            }
        }
    }
    Ok(())
}

/// MEMORY DOCTOR: Redis's reply for a nearly empty instance while the process has grown less than 5 MiB since
/// startup; otherwise a short account of the RSS, as ringkv has none of Redis's issue detectors (fragmentation,
/// peaks, big client buffers).
fn doctor(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let rss = rss_bytes();
    let grown = rss.saturating_sub(ctx.server.startup_rss);
    let text = if grown < DOCTOR_MIN_BYTES {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these \
         conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be \
         back to our programming as soon as I finished rebooting.\n"
            .to_string()
    } else {
        format!(
            "Hi Sam, this instance uses {rss} bytes of resident memory, {grown} more than at startup. I have none of \
             Redis's memory issue detectors, so I can tell no more: MEMORY STATS and MEMORY USAGE <key> show where \
             the memory goes.\n"
        )
    };
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// MEMORY MALLOC-STATS: Redis prints jemalloc's report; ringkv's allocator is mimalloc, whose statistics it does not
/// export.
fn malloc_stats(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out
        .verbatim(b"Stats not supported for the current allocator (ringkv uses mimalloc, whose statistics it does not export)\n");
    Ok(())
}

/// MEMORY PURGE: mimalloc gives every freed page back to the system now (the binary also asks it once a second).
fn purge(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    // SAFETY: mi_collect has no preconditions; any thread may call it at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
    ctx.out.ok();
    Ok(())
}

fn help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{bulks, int, TestClient};
    use crate::protocol::OwnedArgv;

    fn usage_of(c: &mut TestClient, key: &str) -> i64 {
        int(&c.run(&["MEMORY", "USAGE", key]))
    }

    #[test]
    fn usage_is_null_for_a_missing_or_expired_key() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("MEMORY USAGE nosuch"), "$-1\r\n");
        c.cmd("SET gone v PX 1");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(c.cmd("MEMORY USAGE gone"), "$-1\r\n");
        c.cmd("SET k v");
        assert!(usage_of(&mut c, "k") >= size_of::<Entry>() as i64);
    }

    #[test]
    fn usage_grows_with_the_value_for_every_type() {
        let mut c = TestClient::new();
        let fill = |c: &mut TestClient, key: &str, n: usize, len: usize| {
            let item = |i: usize| format!("{i}-{}", "x".repeat(len));
            let (cmd, args): (&str, Vec<String>) = match key {
                "str" => ("SET", vec![item(0)]),
                "list" => ("RPUSH", (0..n).map(item).collect()),
                "hash" => ("HSET", (0..n).flat_map(|i| [item(i), item(i)]).collect()),
                "set" => ("SADD", (0..n).map(item).collect()),
                "zset" => (
                    "ZADD",
                    (0..n).flat_map(|i| [i.to_string(), item(i)]).collect(),
                ),
                _ => ("XADD", vec!["*".into(), "f".into(), item(n)]),
            };
            let mut argv = vec![cmd.to_string(), key.to_string()];
            argv.extend(args);
            c.run(&argv);
        };
        for key in ["str", "list", "hash", "set", "zset", "stream"] {
            c.run(&["DEL", key]);
            fill(&mut c, key, 3, 4);
            let small = usage_of(&mut c, key);
            c.run(&["DEL", key]);
            // More and longer elements, past the small encodings' limits.
            for _ in 0..if key == "stream" { 600 } else { 1 } {
                fill(&mut c, key, 600, 100);
            }
            let big = usage_of(&mut c, key);
            // At least most of the bytes added: one string of ~100 bytes, or 600 elements of ~100.
            let added = if key == "str" { 90 } else { 50_000 };
            assert!(big > small + added, "{key}: {small} -> {big}");
        }
    }

    #[test]
    fn a_key_too_long_to_sit_in_its_slot_counts_its_bytes() {
        let mut c = TestClient::new();
        let long = "k".repeat(100);
        c.run(&["SET", "short", "v"]);
        c.run(&["SET", &long, "v"]);
        assert_eq!(usage_of(&mut c, &long) - usage_of(&mut c, "short"), 100);
    }

    #[test]
    fn samples_extrapolate_from_the_first_elements_and_zero_means_all() {
        let mut c = TestClient::new();
        // Five short members first (by score), then long ones: five samples see only short ones.
        c.cmd("ZADD l 1 a 2 b 3 c 4 d 5 e");
        for i in 0..20 {
            let long = format!("{i}{}", "x".repeat(1000));
            c.run(&["ZADD", "l", &(10 + i).to_string(), &long]);
        }
        let sampled = usage_of(&mut c, "l");
        let all = int(&c.cmd("MEMORY USAGE l SAMPLES 0"));
        assert!(all > sampled + 15 * 1000, "{sampled} vs {all}");
        assert_eq!(int(&c.cmd("MEMORY USAGE l SAMPLES 100")), all);
        // The last SAMPLES wins.
        assert_eq!(int(&c.cmd("MEMORY USAGE l SAMPLES 0 samples 5")), sampled);
    }

    #[test]
    fn usage_options_are_checked_like_redis_even_for_a_missing_key() {
        let mut c = TestClient::new();
        c.cmd("SET k v");
        let syntax = "-ERR syntax error\r\n";
        let not_int = "-ERR value is not an integer or out of range\r\n";
        for key in ["k", "nosuch"] {
            assert_eq!(c.run(&["MEMORY", "USAGE", key, "SAMPLES"]), syntax);
            assert_eq!(c.run(&["MEMORY", "USAGE", key, "SAMPLES", "-1"]), syntax);
            assert_eq!(c.run(&["MEMORY", "USAGE", key, "SAMPLES", "x"]), not_int);
            assert_eq!(
                c.run(&["MEMORY", "USAGE", key, "SAMPLES", "1", "x"]),
                syntax
            );
            assert_eq!(c.run(&["MEMORY", "USAGE", key, "COUNT", "1"]), syntax);
        }
        assert_eq!(
            c.cmd("MEMORY USAGE"),
            "-ERR wrong number of arguments for 'memory|usage' command\r\n"
        );
    }

    #[test]
    fn usage_locks_the_key_at_index_two() {
        let spec = super::super::resolve(OwnedArgv::from_args(["memory", "usage", "k"]).argv())
            .expect("known");
        let argv = OwnedArgv::from_args(["memory", "usage", "k", "SAMPLES", "0"]);
        assert_eq!(spec.key_indices(argv.argv()).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn stats_lists_redis_fields_in_order_with_db_entries_for_nonempty_dbs() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        c.cmd("SET b 2 EX 100");
        c.cmd("SELECT 2");
        c.cmd("SET c 3");
        let reply = c.cmd("MEMORY STATS");
        assert!(reply.starts_with("*58\r\n"), "{reply}");
        let names: Vec<String> = bulks(&reply)
            .into_iter()
            // Names only: RESP2 sends the ratios as bulk strings too.
            .filter(|b| !b.starts_with("overhead.hashtable") && b.parse::<f64>().is_err())
            .collect();
        assert_eq!(
            names,
            [
                "peak.allocated",
                "total.allocated",
                "startup.allocated",
                "replication.backlog",
                "clients.slaves",
                "clients.normal",
                "cluster.links",
                "aof.buffer",
                "lua.caches",
                "functions.caches",
                "db.0",
                "db.2",
                "overhead.total",
                "keys.count",
                "keys.bytes-per-key",
                "dataset.bytes",
                "dataset.percentage",
                "peak.percentage",
                "allocator.allocated",
                "allocator.active",
                "allocator.resident",
                "allocator-fragmentation.ratio",
                "allocator-fragmentation.bytes",
                "allocator-rss.ratio",
                "allocator-rss.bytes",
                "rss-overhead.ratio",
                "rss-overhead.bytes",
                "fragmentation",
                "fragmentation.bytes",
            ]
        );
        assert!(reply.contains("$10\r\nkeys.count\r\n:3\r\n"), "{reply}");
        // db.0 has a deadline, db.2 none.
        let db0 = reply.split("db.0").nth(1).expect("db.0");
        let expires = db0
            .split("overhead.hashtable.expires\r\n:")
            .nth(1)
            .expect("expires");
        assert!(!expires.starts_with("0\r\n"), "{db0}");
        let db2 = reply.split("db.2").nth(1).expect("db.2");
        assert!(
            db2.contains("overhead.hashtable.expires\r\n:0\r\n"),
            "{db2}"
        );
    }

    #[test]
    fn stats_dataset_is_the_sum_of_the_usage_estimates_without_slots() {
        let mut c = TestClient::new();
        let dataset = |c: &mut TestClient| -> i64 {
            let reply = c.cmd("MEMORY STATS");
            let rest = reply.split("dataset.bytes\r\n:").nth(1).expect("field");
            rest.split("\r\n")
                .next()
                .and_then(|n| n.parse().ok())
                .expect("int")
        };
        assert_eq!(dataset(&mut c), 0);
        c.run(&["SET", "s", &"v".repeat(1000)]);
        c.cmd("RPUSH l a b c");
        let slots = 2 * size_of::<Entry>() as i64;
        assert_eq!(
            dataset(&mut c),
            usage_of(&mut c, "s") + usage_of(&mut c, "l") - slots
        );
    }

    #[test]
    fn doctor_malloc_stats_purge_and_help_answer() {
        let mut c = TestClient::new();
        let doctor = c.cmd("MEMORY DOCTOR");
        assert!(
            doctor.starts_with("$") && doctor.contains("Hi Sam"),
            "{doctor}"
        );
        assert!(c.cmd("MEMORY MALLOC-STATS").contains("mimalloc"));
        assert_eq!(c.cmd("MEMORY PURGE"), "+OK\r\n");
        let help = c.cmd("MEMORY HELP");
        assert!(
            help.starts_with(
                "*14\r\n+MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+DOCTOR\r\n"
            ),
            "{help}"
        );
        assert_eq!(
            c.cmd("MEMORY nope"),
            "-ERR unknown subcommand 'nope'. Try MEMORY HELP.\r\n"
        );
        for sub in ["DOCTOR", "STATS", "PURGE", "MALLOC-STATS", "HELP"] {
            assert_eq!(
                c.run(&["MEMORY", sub, "x"]),
                format!(
                    "-ERR wrong number of arguments for 'memory|{}' command\r\n",
                    sub.to_lowercase()
                )
            );
        }
    }
}
