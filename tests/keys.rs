//! Generic key commands through the real binary: SCAN while other clients write, KEYS patterns, RENAME and COPY
//! between keys on different shards, and expiry seen from every read path.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bulks, Raw, Server};

const SHARDS: usize = 8;

fn start() -> Server {
    Server::start(&["--shards", &SHARDS.to_string()])
}

/// Runs `commands` pipelined and checks every reply is `expect`.
fn pipeline(c: &mut Raw, commands: &[Vec<String>], expect: &[u8]) {
    for (cmd, reply) in commands.iter().zip(common::pipeline(c, commands)) {
        assert_eq!(reply, expect, "{cmd:?}");
    }
}

fn sets(prefix: &str, n: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|i| vec!["SET".into(), format!("{prefix}:{i}"), "v".into()])
        .collect()
}

/// One SCAN call: the next cursor and the keys.
fn scan(c: &mut Raw, cursor: &str, count: usize) -> (String, Vec<String>) {
    let reply = c.cmd(&["SCAN", cursor, "COUNT", &count.to_string()]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let rest = text.strip_prefix("*2\r\n$").expect("SCAN reply");
    let mut parts = rest.splitn(3, "\r\n");
    let (_, next, keys) = (parts.next(), parts.next(), parts.next());
    (
        next.expect("cursor").to_string(),
        bulks(keys.expect("keys").as_bytes()),
    )
}

#[test]
fn scan_returns_every_key_that_stays_present_while_others_write() {
    let server = start();
    let mut c = server.raw();
    pipeline(&mut c, &sets("stable", 3000), b"+OK\r\n");
    pipeline(&mut c, &sets("doomed", 1000), b"+OK\r\n");

    // The writer inserts and deletes other keys, and deletes the doomed ones, on its own connection.
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, ops, addr) = (stop.clone(), ops.clone(), server.addr());
        std::thread::spawn(move || {
            let mut w = Raw::connect(&addr);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(w.line(&format!("SET churn:{i} v")), "+OK\r\n");
                if i >= 20 {
                    w.line(&format!("DEL churn:{}", i - 20));
                }
                w.line(&format!("DEL doomed:{}", i % 1000));
                i += 1;
                ops.fetch_add(1, Ordering::Relaxed);
            }
            i
        })
    };

    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        // Let the writer change the keyspace between every two SCAN calls.
        let before = ops.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(5);
        while ops.load(Ordering::Relaxed) < before + 3 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let (next, keys) = scan(&mut c, &cursor, 20);
        calls += 1;
        seen.extend(keys);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");

    assert!(calls > 50, "the scan took only {calls} calls");
    assert!(written > 100, "the writer made only {written} changes");
    let missing: Vec<_> = (0..3000)
        .map(|i| format!("stable:{i}"))
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(missing.is_empty(), "scan missed {missing:?}");
    assert!(seen.iter().all(|k| ["stable:", "doomed:", "churn:"]
        .iter()
        .any(|p| k.starts_with(p))));
}

#[test]
fn scan_pages_hold_at_least_count_keys_until_the_end() {
    let server = start();
    let mut c = server.raw();
    pipeline(&mut c, &sets("k", 1000), b"+OK\r\n");
    let (mut cursor, mut total) = ("0".to_string(), 0);
    loop {
        let (next, keys) = scan(&mut c, &cursor, 100);
        total += keys.len();
        if next == "0" {
            break;
        }
        assert!(keys.len() >= 100, "a page of {} keys", keys.len());
        cursor = next;
    }
    assert_eq!(total, 1000);
    assert_eq!(c.line("SCAN abc"), "-ERR invalid cursor\r\n");
    assert_eq!(c.line("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
}

#[test]
fn keys_returns_exactly_the_matching_keys() {
    let server = start();
    let mut c = server.raw();
    for k in [
        "hello", "hallo", "hxllo", "hllo", "heeeello", "h[llo", "other",
    ] {
        assert_eq!(c.cmd(&["SET", k, "1"]), b"+OK\r\n");
    }
    let keys = |c: &mut Raw, pattern: &str| {
        let mut k = bulks(&c.cmd(&["KEYS", pattern]));
        k.sort();
        k
    };
    assert_eq!(keys(&mut c, "h?llo"), ["h[llo", "hallo", "hello", "hxllo"]);
    assert_eq!(
        keys(&mut c, "h*llo"),
        ["h[llo", "hallo", "heeeello", "hello", "hllo", "hxllo"]
    );
    assert_eq!(keys(&mut c, "h[ae]llo"), ["hallo", "hello"]);
    assert_eq!(keys(&mut c, "h[^e]llo"), ["h[llo", "hallo", "hxllo"]);
    assert_eq!(keys(&mut c, "h[a-b]llo"), ["hallo"]);
    assert_eq!(keys(&mut c, "h\\[llo"), ["h[llo"]);
    assert_eq!(keys(&mut c, "*").len(), 7);
    assert_eq!(c.line("KEYS nothing*"), "*0\r\n");
}

/// Two keys the server places on different shards (the test server and this store share the ring).
fn keys_on_two_shards() -> (String, String) {
    let store = ringkv::store::Store::new(SHARDS, 1);
    let first = "src".to_string();
    let home = store.shard_of(first.as_bytes());
    let other = (0..)
        .map(|i| format!("dst{i}"))
        .find(|k| store.shard_of(k.as_bytes()) != home)
        .expect("some key lands elsewhere");
    (first, other)
}

#[test]
fn rename_and_copy_move_values_and_deadlines_between_shards() {
    let (a, b) = keys_on_two_shards();
    let server = start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["SET", &a, "value", "EX", "100"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["RENAME", &a, &b]), b"+OK\r\n");
    assert_eq!(c.cmd(&["EXISTS", &a]), b":0\r\n");
    assert_eq!(c.cmd(&["GET", &b]), b"$5\r\nvalue\r\n");
    assert_eq!(c.cmd(&["TTL", &b]), b":100\r\n");

    assert_eq!(c.cmd(&["SET", &a, "new"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["RENAMENX", &a, &b]), b":0\r\n");
    assert_eq!(c.cmd(&["RENAMENX", &b, &a]), b":0\r\n");
    assert_eq!(c.cmd(&["COPY", &b, &a, "REPLACE"]), b":1\r\n");
    assert_eq!(c.cmd(&["GET", &a]), b"$5\r\nvalue\r\n");
    assert_eq!(c.cmd(&["TTL", &a]), b":100\r\n");
    assert_eq!(c.cmd(&["DEL", &a, &b]), b":2\r\n");
    assert_eq!(c.cmd(&["RENAME", &a, &b]), b"-ERR no such key\r\n");
}

#[test]
fn a_key_past_its_deadline_is_gone_from_every_read_path_without_being_read() {
    let server = start();
    let mut c = server.raw();
    assert_eq!(c.line("SET short v PX 50"), "+OK\r\n");
    assert_eq!(c.line("SET long v EX 100"), "+OK\r\n");
    let pttl = String::from_utf8_lossy(&c.cmd(&["PTTL", "short"])).into_owned();
    assert!(
        pttl.starts_with(':') && pttl != ":-1\r\n" && pttl != ":-2\r\n",
        "{pttl}"
    );
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(c.line("KEYS *"), "*1\r\n$4\r\nlong\r\n");
    assert_eq!(
        c.line("SCAN 0 COUNT 1000"),
        "*2\r\n$1\r\n0\r\n*1\r\n$4\r\nlong\r\n"
    );
    assert_eq!(c.line("TTL short"), ":-2\r\n");
    assert_eq!(c.line("EXISTS short"), ":0\r\n");
    assert_eq!(c.line("RANDOMKEY"), "$4\r\nlong\r\n");
}

#[test]
fn expire_with_a_past_deadline_deletes_at_once() {
    let server = start();
    let mut c = server.raw();
    assert_eq!(c.line("SET k v"), "+OK\r\n");
    assert_eq!(c.line("PEXPIREAT k 1"), ":1\r\n");
    assert_eq!(c.line("EXISTS k"), ":0\r\n");
    assert_eq!(c.line("EXPIRE k 10"), ":0\r\n");
}
