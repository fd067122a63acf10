//! Streams (XADD, XRANGE, XREAD and XREAD BLOCK, consumer groups) through the real binary; expected bytes were
//! checked against redis-server 7.0.15, or follow Redis 7.2 where it differs (blocked XREADGROUP errors).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Raw, Server};

const ENTRY_2_0: &str = "*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";

/// Waits until `n` clients are blocked (CLIENT LIST flags=b).
fn wait_blocked(c: &mut Raw, n: usize) {
    let start = Instant::now();
    loop {
        let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
        if list.lines().filter(|l| l.contains(" flags=b ")).count() >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not blocked:\n{list}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn xadd_xrange_and_errors_match_redis_bytes() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(c.line("XADD s 1-1 f v"), "$3\r\n1-1\r\n");
    assert_eq!(
        c.line("XADD s 1-1 f v"),
        "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"
    );
    assert_eq!(
        c.line("XADD s 0-0 f v"),
        "-ERR The ID specified in XADD must be greater than 0-0\r\n"
    );
    assert_eq!(
        c.line("XADD s 5-1 f"),
        "-ERR wrong number of arguments for 'xadd' command\r\n"
    );
    assert_eq!(c.line("XADD s 2-* f v"), "$3\r\n2-0\r\n");
    assert_eq!(c.line("XRANGE s (1-1 +"), format!("*1\r\n{ENTRY_2_0}"));
    assert_eq!(c.line("XRANGE s - + COUNT 0"), "*-1\r\n");
    assert_eq!(c.line("XADD n NOMKSTREAM * f v"), "$-1\r\n");
    assert_eq!(c.line("TYPE s"), "+stream\r\n");
}

#[test]
fn xread_replies_as_array_in_resp2_and_map_in_resp3() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("XADD s 2-0 f v");
    assert_eq!(
        c.line("XREAD STREAMS s 0"),
        format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{ENTRY_2_0}")
    );
    assert_eq!(c.line("XREAD STREAMS s $"), "*-1\r\n");
    c.line("HELLO 3");
    assert_eq!(
        c.line("XREAD STREAMS s 0"),
        format!("%1\r\n$1\r\ns\r\n*1\r\n{ENTRY_2_0}")
    );
    assert_eq!(c.line("XREAD BLOCK 20 STREAMS s $"), "_\r\n");
}

#[test]
fn blocked_xread_is_woken_by_xadd_and_every_satisfied_reader_is_served() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    admin.line("XADD s 1-0 f v");
    let mut newest = server.raw();
    newest.send_cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    wait_blocked(&mut admin, 1);
    // A reader waiting for a future ID, queued before a reader that the next XADD satisfies.
    let mut future = server.raw();
    future.send_cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "999-0"]);
    wait_blocked(&mut admin, 2);
    let mut counted = server.raw();
    counted.send_cmd(&[
        "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s2", "s", "0", "1-0",
    ]);
    wait_blocked(&mut admin, 3);
    assert_eq!(admin.line("XADD s 2-0 f v"), "$3\r\n2-0\r\n");
    let expected = format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{ENTRY_2_0}").into_bytes();
    assert_eq!(newest.reply(), expected);
    assert_eq!(counted.reply(), expected);
    assert_eq!(admin.line("XADD s 1000-0 g w"), "$6\r\n1000-0\r\n");
    assert_eq!(
        future.reply(),
        b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$6\r\n1000-0\r\n*2\r\n$1\r\ng\r\n$1\r\nw\r\n".to_vec()
    );
}

/// XGROUP SETID moving a group back readies nobody (Redis signals no key for it): a blocked XREADGROUP waits for the
/// next XADD or its timeout, and the group then delivers from the id it was set to.
#[test]
fn xgroup_setid_does_not_wake_a_blocked_xreadgroup() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    admin.line("XADD s 1-0 a 1");
    assert_eq!(admin.line("XGROUP CREATE s g $"), "+OK\r\n");
    let mut reader = server.raw();
    let block = "XREADGROUP GROUP g c1 BLOCK 300 STREAMS s >";
    reader.send_cmd(&block.split(' ').collect::<Vec<_>>());
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.line("XGROUP SETID s g 0"), "+OK\r\n");
    assert_eq!(reader.reply(), b"*-1\r\n", "timed out: SETID woke nobody");
    let read = reader.line("XREADGROUP GROUP g c1 COUNT 10 STREAMS s >");
    assert!(read.contains("$3\r\n1-0\r\n"), "{read}");
}

#[test]
fn xread_block_times_out_with_null_and_answers_at_once_in_multi() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let start = Instant::now();
    assert_eq!(c.line("XREAD BLOCK 50 STREAMS s $"), "*-1\r\n");
    assert!(start.elapsed() >= Duration::from_millis(50));
    c.line("MULTI");
    c.line("XREAD BLOCK 0 STREAMS s $");
    assert_eq!(c.line("EXEC"), "*1\r\n*-1\r\n");
}

const ENTRY_1_1: &str = "*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";

#[test]
fn blocked_xreadgroup_is_served_by_an_xadd_from_another_client_oldest_first() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    assert_eq!(admin.line("XGROUP CREATE s g $ MKSTREAM"), "+OK\r\n");
    let mut first = server.raw();
    first.send_cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(&mut admin, 1);
    let mut second = server.raw();
    second.send_cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c2",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.line("XADD s 1-1 f v"), "$3\r\n1-1\r\n");
    assert_eq!(
        first.reply(),
        format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{ENTRY_1_1}").into_bytes()
    );
    // The entry went to the oldest reader of the group; the other one waits for the next.
    wait_blocked(&mut admin, 1);
    assert_eq!(
        admin.line("XPENDING s g"),
        "*4\r\n:1\r\n$3\r\n1-1\r\n$3\r\n1-1\r\n*1\r\n*2\r\n$2\r\nc1\r\n$1\r\n1\r\n"
    );
    admin.line("XADD s 2-0 f v");
    assert_eq!(
        second.reply(),
        format!("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n{ENTRY_2_0}").into_bytes()
    );
}

/// Sends a blocking `XREADGROUP GROUP g c BLOCK 0 STREAMS s >` without reading its reply.
fn block_on_group(reader: &mut Raw) {
    reader.send_cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]);
}

#[test]
fn blocked_xreadgroup_fails_when_its_group_or_key_goes_away_as_in_redis_7_2() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    admin.line("XGROUP CREATE s g $ MKSTREAM");
    let nogroup =
        "-NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option\r\n";
    let mut reader = server.raw();
    block_on_group(&mut reader);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.line("XGROUP DESTROY s g"), ":1\r\n");
    assert_eq!(reader.reply(), nogroup.as_bytes());
    admin.line("XGROUP CREATE s g $");
    block_on_group(&mut reader);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.line("DEL s"), ":1\r\n");
    assert_eq!(reader.reply(), nogroup.as_bytes());
    admin.line("XGROUP CREATE s g $ MKSTREAM");
    block_on_group(&mut reader);
    wait_blocked(&mut admin, 1);
    admin.line("SET s x");
    assert_eq!(
        reader.reply(),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n".to_vec()
    );
    // A write that brings nothing new (XACK, XTRIM) leaves the reader blocked; its timeout ends the wait.
    admin.line("DEL s");
    admin.line("XGROUP CREATE s g $ MKSTREAM");
    assert_eq!(
        reader.line("XREADGROUP GROUP g c BLOCK 50 STREAMS s >"),
        "*-1\r\n"
    );
}

#[test]
fn consumers_in_one_group_get_every_entry_exactly_once_while_producers_add() {
    const PRODUCERS: usize = 3;
    const PER_PRODUCER: usize = 300;
    const CONSUMERS: usize = 4;
    let server = Server::start(&[]);
    let mut admin = server.raw();
    admin.line("XGROUP CREATE q g $ MKSTREAM");
    let addr = server.addr();
    let produced = Arc::new(AtomicBool::new(false));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|n| {
            let addr = addr.clone();
            let produced = produced.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                let name = format!("c{n}");
                let mut seen = Vec::new();
                loop {
                    let reply = c.cmd(&[
                        "XREADGROUP",
                        "GROUP",
                        "g",
                        &name,
                        "COUNT",
                        "10",
                        "BLOCK",
                        "200",
                        "STREAMS",
                        "q",
                        ">",
                    ]);
                    if reply == b"*-1\r\n" {
                        if produced.load(Ordering::SeqCst) {
                            return seen;
                        }
                        continue;
                    }
                    let fields = common::bulks(&reply);
                    // [key, id, field, value, id, field, value...]
                    for chunk in fields[1..].chunks(3) {
                        let id = chunk[0].clone();
                        assert_eq!(c.cmd(&["XACK", "q", "g", &id]), b":1\r\n");
                        seen.push(chunk[2].clone());
                    }
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                for i in 0..PER_PRODUCER {
                    let value = format!("{p}-{i}");
                    assert!(c.cmd(&["XADD", "q", "*", "m", &value]).starts_with(b"$"));
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    produced.store(true, Ordering::SeqCst);
    let mut all: Vec<String> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        total,
        PRODUCERS * PER_PRODUCER,
        "an entry was delivered twice or lost"
    );
    assert_eq!(all.len(), PRODUCERS * PER_PRODUCER);
    assert_eq!(
        admin.line("XPENDING q g"),
        "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"
    );
}

/// As Redis 7.2: XREADGROUP, XCLAIM and XAUTOCLAIM that name a new consumer create it and announce
/// `xgroup-createconsumer`, even when nothing is delivered or claimed (7.0 created it only then); a known consumer
/// is not announced again.
#[test]
fn reading_or_claiming_for_a_new_consumer_announces_it_even_when_nothing_comes() {
    let server = Server::start(&[]);
    let mut sub = server.raw();
    let mut c = server.raw();
    assert_eq!(c.line("XGROUP CREATE s g $ MKSTREAM"), "+OK\r\n");
    assert_eq!(c.line("CONFIG SET notify-keyspace-events Et"), "+OK\r\n");
    sub.line("SUBSCRIBE __keyevent@0__:xgroup-createconsumer");
    assert_eq!(c.line("XREADGROUP GROUP g alice STREAMS s >"), "*-1\r\n");
    assert_eq!(c.line("XREADGROUP GROUP g alice STREAMS s >"), "*-1\r\n");
    assert_eq!(c.line("XCLAIM s g bob 1000 1-1"), "*0\r\n");
    assert_eq!(
        c.line("XAUTOCLAIM s g carol 1000 0 JUSTID"),
        "*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n"
    );
    let event = "*3\r\n$7\r\nmessage\r\n$36\r\n__keyevent@0__:xgroup-createconsumer\r\n$1\r\ns\r\n";
    for _ in 0..3 {
        assert_eq!(String::from_utf8_lossy(&sub.reply()), event);
    }
    // Nothing more was published: the next reply is the PING's.
    assert_eq!(
        String::from_utf8_lossy(&sub.cmd(&["PING"])),
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
    assert!(c
        .line("XINFO GROUPS s")
        .contains("$9\r\nconsumers\r\n:3\r\n"));
}
