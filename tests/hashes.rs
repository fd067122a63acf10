//! The hash family through the real binary: binary-safe fields and values, RESP3 map replies, a 100,000-field hash
//! read back whole with HGETALL, HSCAN returning every field that exists throughout a scan while other clients write,
//! and the redis crate's hash helpers.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pipeline, Server};

/// HSET commands putting `field:i` = `value:i` for `range` into `key`, 1000 fields per command.
fn hset_batches(key: &str, range: std::ops::Range<usize>) -> Vec<Vec<Vec<u8>>> {
    let fields: Vec<usize> = range.collect();
    fields
        .chunks(1000)
        .map(|chunk| {
            let mut cmd = vec![b"HSET".to_vec(), key.as_bytes().to_vec()];
            for i in chunk {
                cmd.push(format!("field:{i}").into_bytes());
                cmd.push(format!("value:{i}").into_bytes());
            }
            cmd
        })
        .collect()
}

/// The items of a HSCAN/SSCAN reply (`*2 $cursor *N items...`): the next cursor and the bulk strings after it.
fn scan_reply(reply: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(reply);
    let lines: Vec<&str> = text.split("\r\n").collect();
    let bulks: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0].starts_with('$'))
        .map(|w| w[1].to_string())
        .collect();
    (bulks[0].clone(), bulks[1..].to_vec())
}

#[test]
fn binary_fields_and_values_round_trip() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let (field, value): (&[u8], &[u8]) = (b"f\0\r\n", b"\0v\r\n\xff");
    assert_eq!(c.cmd(&[&b"HSET"[..], b"h", field, value]), b":1\r\n");
    assert_eq!(
        c.cmd(&[&b"HGET"[..], b"h", field]),
        b"$5\r\n\0v\r\n\xff\r\n"
    );
    assert_eq!(c.cmd(&[&b"HSTRLEN"[..], b"h", field]), b":5\r\n");
    assert_eq!(
        c.cmd(&[&b"HGETALL"[..], b"h"]),
        b"*2\r\n$4\r\nf\0\r\n\r\n$5\r\n\0v\r\n\xff\r\n"
    );
    assert_eq!(c.cmd(&[&b"HDEL"[..], b"h", field]), b":1\r\n");
    assert_eq!(c.line("EXISTS h"), ":0\r\n");
}

#[test]
fn resp3_replies_are_maps_and_pairs() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("HELLO 3");
    c.line("HSET h a 1 b 2");
    assert_eq!(
        c.line("HGETALL h"),
        "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        c.line("HRANDFIELD h 5 WITHVALUES"),
        "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(c.line("HGET h nope"), "_\r\n");
    assert_eq!(c.line("HRANDFIELD nokey"), "_\r\n");
}

#[test]
fn a_hundred_thousand_field_hash_reads_back_whole() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let start = Instant::now();
    let replies = pipeline(&mut c, &hset_batches("big", 0..100_000));
    assert!(replies.iter().all(|r| r == b":1000\r\n"));
    assert_eq!(c.line("HLEN big"), ":100000\r\n");
    assert_eq!(c.line("OBJECT ENCODING big"), "$9\r\nhashtable\r\n");
    let reply = c.line("HGETALL big");
    let (_, items) = scan_reply(format!("*2\r\n$1\r\n0\r\n{reply}").as_bytes());
    assert_eq!(items.len(), 200_000);
    let map: HashMap<&str, &str> = items
        .chunks(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
        .collect();
    assert_eq!(map.len(), 100_000);
    assert!((0..100_000).all(|i| map[format!("field:{i}").as_str()] == format!("value:{i}")));
    assert_eq!(c.line("HGET big field:99999"), "$11\r\nvalue:99999\r\n");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn hscan_returns_every_field_present_throughout_while_others_write() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    // 5,000 fields; the writer's 4,000 more take the table past a split (8,192) and back, again and again.
    pipeline(&mut c, &hset_batches("h", 0..5_000));
    let stop = Arc::new(AtomicBool::new(false));
    // A writer adds and removes other fields (growing and shrinking the table) for the whole scan.
    let writer = {
        let (stop, mut w) = (stop.clone(), server.raw());
        std::thread::spawn(move || {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                let churn: Vec<String> = (0..500).map(|j| format!("churn:{round}:{j}")).collect();
                let mut add = vec!["HSET".to_string(), "h".to_string()];
                churn
                    .iter()
                    .for_each(|f| add.extend([f.clone(), "x".to_string()]));
                assert_eq!(w.cmd(&add), b":500\r\n");
                if round % 8 == 7 {
                    for r in round - 7..=round {
                        let mut del = vec!["HDEL".to_string(), "h".to_string()];
                        del.extend((0..500).map(|j| format!("churn:{r}:{j}")));
                        assert_eq!(w.cmd(&del), b":500\r\n");
                    }
                }
                round += 1;
            }
            round
        })
    };
    let (mut cursor, mut seen, mut calls) = ("0".to_string(), HashSet::new(), 0);
    loop {
        let (next, items) = scan_reply(&c.cmd(&["HSCAN", "h", &cursor, "COUNT", "20"]));
        for pair in items.chunks(2) {
            if pair[0].starts_with("field:") {
                assert_eq!(pair[1], pair[0].replace("field", "value"));
                seen.insert(pair[0].clone());
            }
        }
        calls += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
        // Let the writer work between steps.
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().expect("writer");
    assert!(
        rounds >= 8,
        "the writer grew the hash past a split: {rounds} rounds"
    );
    assert_eq!(seen.len(), 5_000, "after {calls} calls");
    assert!(calls > 10, "the scan took steps: {calls}");
}

#[tokio::test]
async fn the_redis_crate_reads_and_writes_hashes() {
    let server = Server::start(&[]);
    let mut con = server.client().await;
    let added: i64 = redis::cmd("HSET")
        .arg("user:1")
        .arg(&[("name", "ada"), ("visits", "1")])
        .query_async(&mut con)
        .await
        .expect("hset");
    assert_eq!(added, 2);
    let visits: i64 = redis::cmd("HINCRBY")
        .arg("user:1")
        .arg("visits")
        .arg(41)
        .query_async(&mut con)
        .await
        .expect("hincrby");
    assert_eq!(visits, 42);
    let all: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("user:1")
        .query_async(&mut con)
        .await
        .expect("hgetall");
    assert_eq!(
        all,
        HashMap::from([
            ("name".into(), "ada".into()),
            ("visits".into(), "42".into())
        ])
    );
    let err = redis::cmd("LPUSH")
        .arg("user:1")
        .arg("x")
        .query_async::<i64>(&mut con)
        .await
        .expect_err("wrong type");
    assert_eq!(err.code(), Some("WRONGTYPE"));
}
