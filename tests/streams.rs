//! Streams (XADD, XRANGE, XREAD and XREAD BLOCK) through the real binary; expected bytes were checked against
//! redis-server 7.0.15.

mod common;

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
