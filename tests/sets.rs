//! The set family through the real binary: the STORE forms across shards (`--shards 16`), SMOVE and SUNION atomic
//! across shards, SSCAN returning every member present throughout while others write, SPOP/SRANDMEMBER picking
//! uniformly, and `redis-benchmark -t hset,sadd,spop` completing without errors.
//!
//! The redis-benchmark test skips when the tool is not installed, except under CI (`CI=true`), where that fails.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bulks, encode, keys_on_distinct_shards, Raw, Server};

const SHARDS: usize = 16;

/// SADD `key` with the members, in one command.
fn sadd(c: &mut Raw, key: &str, members: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut cmd = vec!["SADD".to_string(), key.to_string()];
    cmd.extend(members);
    c.cmd(&cmd)
}

fn members(c: &mut Raw, key: &str) -> HashSet<String> {
    bulks(&c.cmd(&["SMEMBERS", key])).into_iter().collect()
}

fn range(from: usize, to: usize) -> impl Iterator<Item = String> {
    (from..to).map(|i| format!("m{i}"))
}

#[test]
fn store_forms_combine_sets_living_on_different_shards() {
    let server = Server::start(&["--shards", "16"]);
    let mut c = server.raw();
    let k = keys_on_distinct_shards("set", 4, SHARDS);
    let (a, b, s3, dst) = (&k[0], &k[1], &k[2], &k[3]);
    sadd(&mut c, a, range(0, 1000));
    sadd(&mut c, b, range(500, 1500));
    sadd(&mut c, s3, range(900, 2000));
    assert_eq!(c.cmd(&["SINTERSTORE", dst, a, b, s3]), b":100\r\n");
    assert_eq!(members(&mut c, dst), range(900, 1000).collect());
    assert_eq!(c.cmd(&["SUNIONSTORE", dst, a, b, s3]), b":2000\r\n");
    assert_eq!(c.cmd(&["SDIFFSTORE", dst, a, b]), b":500\r\n");
    assert_eq!(members(&mut c, dst), range(0, 500).collect());
    assert_eq!(
        c.cmd(&["SINTERCARD", "3", a, b, s3, "LIMIT", "10"]),
        b":10\r\n"
    );
    // An empty result deletes the destination.
    assert_eq!(c.cmd(&["SINTERSTORE", dst, a, "nokey"]), b":0\r\n");
    assert_eq!(c.cmd(&["EXISTS", dst]), b":0\r\n");
    // The destination may be one of the sources.
    assert_eq!(c.cmd(&["SINTERSTORE", a, a, b]), b":500\r\n");
    assert_eq!(members(&mut c, a), range(500, 1000).collect());
}

#[test]
fn smove_and_sunion_are_atomic_across_shards() {
    let server = Server::start(&["--threads", "2", "--shards", "16"]);
    let k = keys_on_distinct_shards("pool", 2, SHARDS);
    let mut c = server.raw();
    sadd(&mut c, &k[0], range(0, 100));
    let stop = Arc::new(AtomicBool::new(false));
    // Movers shuffle members between the two keys; a reader must always see all 100, once.
    let movers: Vec<_> = (0..2)
        .map(|t| {
            let (stop, keys, mut m) = (stop.clone(), k.clone(), server.raw());
            std::thread::spawn(move || {
                let mut moves = 0;
                while !stop.load(Ordering::Relaxed) {
                    let i = fastrand::usize(0..100);
                    let (from, to) = if (i + t) % 2 == 0 { (0, 1) } else { (1, 0) };
                    m.cmd(&["SMOVE", &keys[from], &keys[to], &format!("m{i}")]);
                    moves += 1;
                }
                moves
            })
        })
        .collect();
    for _ in 0..500 {
        let union = bulks(&c.cmd(&["SUNION", &k[0], &k[1]]));
        assert_eq!(union.len(), 100);
        // A member is never seen in both keys, nor in neither.
        assert_eq!(c.cmd(&["SINTERCARD", "2", &k[0], &k[1]]), b":0\r\n");
        assert_eq!(c.cmd(&["SUNIONSTORE", "all", &k[0], &k[1]]), b":100\r\n");
    }
    stop.store(true, Ordering::Relaxed);
    let moves: usize = movers.into_iter().map(|m| m.join().expect("mover")).sum();
    assert!(moves > 100, "{moves}");
}

#[test]
fn sscan_returns_every_member_present_throughout_while_others_write() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    for from in (0..5_000).step_by(1000) {
        assert_eq!(sadd(&mut c, "s", range(from, from + 1000)), b":1000\r\n");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, mut w) = (stop.clone(), server.raw());
        std::thread::spawn(move || {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                let churn = (0..500).map(move |j| format!("churn:{round}:{j}"));
                assert_eq!(sadd(&mut w, "s", churn), b":500\r\n");
                if round % 8 == 7 {
                    for r in round - 7..=round {
                        let mut srem = vec!["SREM".to_string(), "s".to_string()];
                        srem.extend((0..500).map(|j| format!("churn:{r}:{j}")));
                        assert_eq!(w.cmd(&srem), b":500\r\n");
                    }
                }
                round += 1;
            }
            round
        })
    };
    let (mut cursor, mut seen) = ("0".to_string(), HashSet::new());
    loop {
        let items = bulks(&c.cmd(&["SSCAN", "s", &cursor, "MATCH", "m*"]));
        cursor = items[0].clone();
        seen.extend(items.into_iter().skip(1));
        if cursor == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().expect("writer");
    assert!(rounds >= 8, "{rounds}");
    assert_eq!(seen, range(0, 5_000).collect());
}

/// Asserts every member was picked about `expected` times (within 30%: far beyond chance for these sample sizes).
fn assert_uniform(counts: &HashMap<String, usize>, members: usize, expected: f64) {
    assert_eq!(counts.len(), members, "every member picked");
    for (m, &n) in counts {
        let ratio = n as f64 / expected;
        assert!(
            (0.7..1.3).contains(&ratio),
            "{m}: {n} picks, expected {expected}"
        );
    }
}

#[test]
fn srandmember_and_spop_pick_uniformly_in_every_encoding() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    // A listpack (20 members) and a hashtable (300 members).
    for (key, n) in [("small", 20), ("large", 300)] {
        sadd(&mut c, key, range(0, n));
        let mut counts = HashMap::new();
        let picks = 1000 * n;
        for m in bulks(&c.cmd(&["SRANDMEMBER", key, &format!("-{picks}")])) {
            *counts.entry(m).or_insert(0) += 1;
        }
        assert_uniform(&counts, n, 1000.0);
        // A positive count is distinct members.
        let distinct: HashSet<String> = bulks(&c.cmd(&["SRANDMEMBER", key, "15"]))
            .into_iter()
            .collect();
        assert_eq!(distinct.len(), 15);
    }
    // SPOP: the first pop from a fresh 10-member set, many times.
    let mut counts = HashMap::new();
    let trials = 5000;
    let commands: Vec<u8> = (0..trials)
        .flat_map(|_| {
            let mut cmds = encode(&["DEL", "p"]);
            cmds.extend(encode(&[
                "SADD", "p", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j",
            ]));
            cmds.extend(encode(&["SPOP", "p"]));
            cmds
        })
        .collect();
    c.send(&commands);
    for _ in 0..trials {
        c.reply();
        c.reply();
        let popped = bulks(&c.reply());
        *counts.entry(popped[0].clone()).or_insert(0) += 1;
    }
    assert_uniform(&counts, 10, trials as f64 / 10.0);
    // SPOP with a count drains a large set in distinct members, then deletes it.
    let mut popped = HashSet::new();
    while popped.len() < 300 {
        let batch = bulks(&c.cmd(&["SPOP", "large", "70"]));
        assert!(!batch.is_empty());
        popped.extend(batch);
    }
    assert_eq!(popped, range(0, 300).collect());
    assert_eq!(c.cmd(&["EXISTS", "large"]), b":0\r\n");
}

#[test]
fn redis_benchmark_hset_sadd_spop_completes_without_errors() {
    let server = Server::start(&[]);
    if common::redis_benchmark_runs_clean(server.port, &["hset", "sadd", "spop"], 20000) {
        let mut c = server.raw();
        assert_eq!(c.line("TYPE myhash"), "+hash\r\n");
    }
}

#[tokio::test]
async fn the_redis_crate_reads_and_writes_sets() {
    let server = Server::start(&["--shards", "16"]);
    let mut con = server.client().await;
    let k = keys_on_distinct_shards("tags", 2, SHARDS);
    let added: i64 = redis::cmd("SADD")
        .arg(&k[0])
        .arg(&["red", "green", "blue"])
        .query_async(&mut con)
        .await
        .expect("sadd");
    assert_eq!(added, 3);
    let _: i64 = redis::cmd("SADD")
        .arg(&k[1])
        .arg(&["green", "blue", "black"])
        .query_async(&mut con)
        .await
        .expect("sadd");
    let common: HashSet<String> = redis::cmd("SINTER")
        .arg(&k[0])
        .arg(&k[1])
        .query_async(&mut con)
        .await
        .expect("sinter");
    assert_eq!(common, HashSet::from(["green".into(), "blue".into()]));
    let is_member: bool = redis::cmd("SISMEMBER")
        .arg(&k[0])
        .arg("red")
        .query_async(&mut con)
        .await
        .expect("sismember");
    assert!(is_member);
    let flags: Vec<bool> = redis::cmd("SMISMEMBER")
        .arg(&k[1])
        .arg(&["red", "black"])
        .query_async(&mut con)
        .await
        .expect("smismember");
    assert_eq!(flags, [false, true]);
    let err = redis::cmd("HGET")
        .arg(&k[0])
        .arg("x")
        .query_async::<Option<String>>(&mut con)
        .await
        .expect_err("wrong type");
    assert_eq!(err.code(), Some("WRONGTYPE"));
}
