//! MEMORY through the real binary: USAGE on keys of every shard, STATS and DOCTOR in RESP2 and RESP3, and
//! `redis-cli --memkeys`, which sizes every key with MEMORY USAGE.

mod common;

use std::process::Command;

use common::{bulks, keys_on_distinct_shards, redis_server, required_program, Raw, Server};

const SHARDS: usize = 8;

fn start() -> Server {
    Server::start(&["--shards", &SHARDS.to_string()])
}

/// The integer of a `:n\r\n` reply.
fn int(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    text.strip_prefix(':')
        .and_then(|r| r.strip_suffix("\r\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {text:?}"))
}

#[test]
fn usage_finds_keys_on_every_shard_and_grows_with_the_value() {
    let server = start();
    let mut c = server.raw();
    for (i, key) in keys_on_distinct_shards("mem", SHARDS, SHARDS)
        .iter()
        .enumerate()
    {
        let value = "v".repeat(10 + i * 1000);
        c.cmd(&["SET", key, &value]);
        let usage = int(&c.cmd(&["MEMORY", "USAGE", key]));
        assert!(usage >= value.len() as i64, "{key}: {usage}");
        c.cmd(&["APPEND", key, &"w".repeat(5000)]);
        let grown = int(&c.cmd(&["MEMORY", "USAGE", key, "SAMPLES", "0"]));
        assert!(grown >= usage + 5000, "{key}: {usage} -> {grown}");
    }
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "nosuch"]), b"$-1\r\n");
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["MEMORY", "USAGE", "nosuch"]), b"_\r\n");
}

/// Pushes `n` three-byte elements onto `queue` in batches of 1,000 and returns MEMORY USAGE of it (every chunk). Not
/// numbers: Redis stores small integers in 2-3 bytes, ringkv stores every element as its bytes.
fn queue_of_small_elements(c: &mut Raw, n: usize) -> i64 {
    for batch in 0..n / 1000 {
        let mut args = vec!["RPUSH".to_string(), "queue".to_string()];
        args.extend((0..1000).map(|i| format!("e{:02}", (batch + i) % 100)));
        c.cmd(&args);
    }
    int(&c.cmd(&["MEMORY", "USAGE", "queue", "SAMPLES", "0"]))
}

#[test]
fn a_long_list_of_small_elements_takes_about_what_redis_takes() {
    let Some(redis) = redis_server(0) else {
        return;
    };
    let n = 200_000;
    let ours = queue_of_small_elements(&mut start().raw(), n);
    let theirs = queue_of_small_elements(&mut Raw::connect(&redis.addr()), n);
    // Packed, as Redis packs them: a few bytes per element, not an allocation each.
    assert!(
        ours < theirs * 3 / 2 && ours < 6 * n as i64,
        "ringkv {ours} bytes, redis {theirs}"
    );
}

#[test]
fn stats_is_a_flat_array_in_resp2_and_a_map_in_resp3() {
    let server = start();
    let mut c = server.raw();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "b", "2"]);
    // 27 fields and one per database that has keys: 0 and 3.
    let resp2 = c.cmd(&["MEMORY", "STATS"]);
    assert!(
        resp2.starts_with(b"*58\r\n"),
        "{}",
        String::from_utf8_lossy(&resp2)
    );
    let names = bulks(&resp2);
    assert!(names.contains(&"db.0".to_string()) && names.contains(&"db.3".to_string()));
    assert!(!names.contains(&"db.1".to_string()));

    c.cmd(&["HELLO", "3"]);
    let resp3 = String::from_utf8(c.cmd(&["MEMORY", "STATS"])).expect("utf-8");
    assert!(
        resp3.starts_with("%29\r\n$14\r\npeak.allocated\r\n:"),
        "{resp3}"
    );
    assert!(
        resp3.contains("$4\r\ndb.0\r\n%3\r\n$23\r\noverhead.hashtable.main\r\n:"),
        "{resp3}"
    );
    assert!(resp3.contains("$10\r\nkeys.count\r\n:2\r\n"), "{resp3}");
    assert!(resp3.contains("$13\r\nfragmentation\r\n,1\r\n"), "{resp3}");
    assert!(
        resp3.ends_with("$19\r\nfragmentation.bytes\r\n:0\r\n"),
        "{resp3}"
    );
}

#[test]
fn doctor_is_verbatim_text_in_resp3_and_purge_answers_ok() {
    let server = start();
    let mut c = server.raw();
    let doctor = String::from_utf8(c.cmd(&["MEMORY", "DOCTOR"])).expect("utf-8");
    assert!(
        doctor.starts_with("$") && doctor.contains("Hi Sam"),
        "{doctor}"
    );
    c.cmd(&["HELLO", "3"]);
    let doctor = String::from_utf8(c.cmd(&["MEMORY", "DOCTOR"])).expect("utf-8");
    assert!(
        doctor.starts_with("=") && doctor.contains("txt:Hi Sam"),
        "{doctor}"
    );
    assert_eq!(c.cmd(&["MEMORY", "PURGE"]), b"+OK\r\n");
}

#[test]
fn command_info_describes_memory_usage_with_its_key_at_index_two() {
    let server = start();
    let mut c = server.raw();
    let info = String::from_utf8(c.cmd(&["COMMAND", "INFO", "memory"])).expect("utf-8");
    assert!(
        info.starts_with("*1\r\n*10\r\n$6\r\nmemory\r\n:-2\r\n"),
        "{info}"
    );
    // memory|usage: arity -3, readonly, first key 2, last key 2, step 1.
    let usage = info
        .split("$12\r\nmemory|usage\r\n")
        .nth(1)
        .expect("memory|usage");
    assert!(
        usage.starts_with(":-3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n"),
        "{usage}"
    );
    let names = bulks(info.as_bytes());
    for sub in ["doctor", "help", "malloc-stats", "purge", "stats", "usage"] {
        assert!(names.contains(&format!("memory|{sub}")), "{sub}: {names:?}");
    }
}

#[test]
fn redis_cli_memkeys_sizes_every_type() {
    let Some(cli) = required_program("redis-cli") else {
        return;
    };
    let server = start();
    let mut c = server.raw();
    c.cmd(&["SET", "s", &"x".repeat(3000)]);
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["SADD", "set", "m"]);
    c.cmd(&["ZADD", "z", "1", "m"]);
    c.cmd(&["XADD", "x", "*", "f", "v"]);
    let port = server.addr().rsplit(':').next().expect("port").to_string();
    let out = Command::new(cli)
        .args(["-p", &port, "--memkeys"])
        .output()
        .expect("run redis-cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("Biggest string found '\"s\"' has"),
        "{stdout}"
    );
    for kind in ["lists", "hashs", "sets", "zsets", "streams"] {
        assert!(
            stdout.contains(&format!("1 {kind} with")),
            "{kind}: {stdout}"
        );
    }
    assert!(!stdout.contains("ERR"), "{stdout}");
}

#[test]
fn a_connection_gives_back_the_memory_of_a_big_value() {
    let server = Server::start(&[]);
    let (before, after) = server.rss_around_a_big_value();
    // Kept, the read buffer alone would hold 64-128 MiB.
    assert!(
        after < before + 40,
        "resident {before} MiB, then {after} MiB"
    );
}
