//! MULTI/EXEC/WATCH through the real binary: transactions are atomic across shards, and WATCH gives the optimistic
//! check-and-set that queue and lock libraries build on.

mod common;

use common::{Raw, Server};

fn int(reply: Vec<u8>) -> i64 {
    String::from_utf8(reply)
        .unwrap()
        .trim_start_matches([':', '$'])
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

/// Transfers between accounts on different shards run as transactions while a reader checks, with one MGET, that
/// the total never changes: nobody sees half a transaction.
#[test]
fn exec_is_atomic_across_shards() {
    let server = Server::start(&["--threads", "2", "--shards", "16"]);
    let accounts: Vec<String> = (0..8).map(|i| format!("account:{i}")).collect();
    let mut setup = server.raw();
    for a in &accounts {
        setup.cmd(&["SET", a, "1000"]);
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let addr = server.addr();
            let accounts = accounts.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                for i in 0..300usize {
                    let from = &accounts[(i * 3 + w) % accounts.len()];
                    let to = &accounts[(i * 5 + w + 1) % accounts.len()];
                    c.line("MULTI");
                    c.cmd(&["DECRBY", from, "7"]);
                    c.cmd(&["INCRBY", to, "7"]);
                    let exec = c.line("EXEC");
                    assert!(exec.starts_with("*2\r\n"), "{exec}");
                }
            })
        })
        .collect();
    let mut reader = server.raw();
    let mut mget = vec!["MGET"];
    mget.extend(accounts.iter().map(String::as_str));
    for _ in 0..500 {
        let reply = String::from_utf8(reader.cmd(&mget)).unwrap();
        let total: i64 = reply
            .lines()
            .skip(2)
            .step_by(2)
            .map(|v| v.parse::<i64>().unwrap())
            .sum();
        assert_eq!(total, 8000, "a reader saw half a transaction");
    }
    for w in writers {
        w.join().unwrap();
    }
}

/// The classic WATCH/GET/MULTI/SET/EXEC retry loop: under contention no increment is lost and none is doubled.
#[test]
fn watch_check_and_set_loses_no_update() {
    let server = Server::start(&["--threads", "2"]);
    let per_client = 100;
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                let mut aborted = 0;
                for _ in 0..per_client {
                    loop {
                        c.line("WATCH counter");
                        let current = match c.line("GET counter").as_str() {
                            "$-1\r\n" => 0,
                            v => v.lines().nth(1).unwrap().parse::<i64>().unwrap(),
                        };
                        c.line("MULTI");
                        c.cmd(&["SET", "counter", &(current + 1).to_string()]);
                        if c.line("EXEC") != "*-1\r\n" {
                            break;
                        }
                        aborted += 1;
                    }
                }
                aborted
            })
        })
        .collect();
    let aborted: i32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let mut c = server.raw();
    assert_eq!(int(c.cmd(&["GET", "counter"])), 6 * per_client);
    // Not a requirement, but with six writers some transactions must have been refused, or WATCH did nothing.
    assert!(aborted > 0, "no transaction was ever aborted by WATCH");
}

#[test]
fn watch_is_spoiled_by_expiry_of_the_watched_key() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("SET k v PX 30");
    c.line("WATCH k");
    std::thread::sleep(std::time::Duration::from_millis(60));
    c.line("MULTI");
    c.line("SET k new");
    assert_eq!(c.line("EXEC"), "*-1\r\n");
}

/// WATCH of a key already watched changes nothing, as in Redis: a client that WATCHes in a loop without UNWATCH
/// holds one registration, not one per call (100,000 took 19 MB, and their removal at disconnect was quadratic).
#[test]
fn watching_a_watched_key_again_adds_nothing() {
    const WATCHES: usize = 100_000;
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut c = server.raw();
    c.line("WATCH k k");
    let before = admin.memory_info("used_memory");
    c.send(&b"*2\r\n$5\r\nWATCH\r\n$1\r\nk\r\n".repeat(WATCHES));
    for _ in 0..WATCHES {
        assert_eq!(c.reply(), b"+OK\r\n");
    }
    let grown = admin.memory_info("used_memory") - before;
    assert!(
        grown < 1_000_000,
        "{WATCHES} WATCHes of one key took {grown} bytes"
    );
    // The one registration still does its job.
    admin.line("SET k other");
    c.line("MULTI");
    c.line("SET k mine");
    assert_eq!(c.line("EXEC"), "*-1\r\n");
    assert_eq!(admin.line("GET k"), "$5\r\nother\r\n");
}

#[test]
fn exec_replies_use_the_client_protocol() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("HELLO 3");
    c.line("MULTI");
    c.line("GET missing");
    c.line("SET k v");
    assert_eq!(c.line("EXEC"), "*2\r\n_\r\n+OK\r\n");
}

/// Commands that fail, are refused by their own flags, or find nothing to change, change nothing: a client WATCHing
/// their key still commits. Each case: (key to watch, the command another client runs, the start of its reply).
/// Checked against Redis 7.0.15.
const NO_CHANGE: &[(&str, &[&str], &str)] = &[
    (
        "s",
        &["XADD", "s", "5-0", "f", "v"],
        "-ERR The ID specified in XADD is equal",
    ),
    (
        "s",
        &["XADD", "s", "MAXLEN", "10", "3-0", "f", "v"],
        "-ERR The ID specified in XADD is equal",
    ),
    ("nos", &["XADD", "nos", "NOMKSTREAM", "*", "f", "v"], "$-1"),
    ("s", &["XGROUP", "CREATE", "s", "g", "$"], "-BUSYGROUP"),
    (
        "nos",
        &["XGROUP", "CREATE", "nos", "g", "$"],
        "-ERR The XGROUP subcommand requires the key to exist",
    ),
    ("s", &["XGROUP", "SETID", "s", "nog", "0"], "-NOGROUP"),
    (
        "s",
        &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"],
        "-NOGROUP",
    ),
    ("l", &["LSET", "l", "99", "x"], "-ERR index out of range"),
    ("nol", &["LSET", "nol", "0", "x"], "-ERR no such key"),
    ("str", &["LPUSH", "str", "x"], "-WRONGTYPE"),
    ("str", &["INCR", "str"], "-ERR value is not an integer"),
    (
        "big",
        &["INCRBY", "big", "1"],
        "-ERR increment or decrement would overflow",
    ),
    (
        "str",
        &["INCRBYFLOAT", "str", "1"],
        "-ERR value is not a valid float",
    ),
    (
        "str",
        &["SETRANGE", "str", "536870912", "x"],
        "-ERR string exceeds maximum allowed size",
    ),
    (
        "h",
        &["HINCRBY", "h", "big", "1"],
        "-ERR increment or decrement would overflow",
    ),
    (
        "h",
        &["HINCRBY", "h", "s", "1"],
        "-ERR hash value is not an integer",
    ),
    (
        "h",
        &["HINCRBYFLOAT", "h", "s", "1"],
        "-ERR hash value is not a float",
    ),
    ("z", &["ZADD", "z", "XX", "1", "zz"], ":0"),
    ("z", &["ZADD", "z", "NX", "5", "a"], ":0"),
    ("z", &["ZADD", "z", "GT", "0", "a"], ":0"),
    ("z", &["ZADD", "z", "1", "a"], ":0"),
    ("z", &["ZINCRBY", "z", "0", "a"], "$1"),
    (
        "zi",
        &["ZINCRBY", "zi", "-inf", "m"],
        "-ERR resulting score is not a number",
    ),
    ("str", &["SET", "str", "v", "NX"], "$-1"),
    ("nok", &["RENAME", "nok", "x"], "-ERR no such key"),
    ("l", &["LREM", "l", "0", "x"], ":0"),
    ("l", &["LINSERT", "l", "BEFORE", "x", "y"], ":-1"),
    ("l", &["LPOP", "l", "0"], "*0"),
    ("l", &["RPOP", "l", "0"], "*0"),
    ("set", &["SREM", "set", "x"], ":0"),
    ("set", &["SADD", "set", "a"], ":0"),
    ("set", &["SMOVE", "set", "dst", "x"], ":0"),
    ("dst", &["SMOVE", "set", "dst", "x"], ":0"),
    ("set", &["SMOVE", "set", "set", "a"], ":1"),
    ("set", &["SPOP", "set", "0"], "*0"),
    ("h", &["HDEL", "h", "x"], ":0"),
    ("h", &["HSETNX", "h", "s", "y"], ":0"),
    ("z", &["ZREM", "z", "x"], ":0"),
    ("z", &["ZREMRANGEBYSCORE", "z", "5", "6"], ":0"),
    ("z", &["ZREMRANGEBYRANK", "z", "5", "6"], ":0"),
    ("z", &["ZREMRANGEBYLEX", "z", "[x", "[z"], ":0"),
    ("z", &["ZPOPMIN", "z", "0"], "*0"),
    ("str", &["SETRANGE", "str", "0", ""], ":3"),
    ("str", &["GETEX", "str", "PERSIST"], "$3"),
    ("ps", &["XACK", "ps", "g", "9-0"], ":0"),
    ("ps", &["XDEL", "ps", "9-0"], ":0"),
    ("ps", &["XTRIM", "ps", "MAXLEN", "10"], ":0"),
    ("ps", &["XCLAIM", "ps", "g", "c2", "3600000", "1-0"], "*0"),
    ("ps", &["XAUTOCLAIM", "ps", "g", "c2", "3600000", "0"], "*3"),
    ("s", &["XAUTOCLAIM", "s", "g", "c", "0", "0"], "*3"),
    (
        "ps",
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "ps", ">"],
        "*-1",
    ),
    (
        "ps",
        &["XREADGROUP", "GROUP", "g", "c3", "STREAMS", "ps", "0"],
        "*1",
    ),
];

const NO_CHANGE_SETUP: &[&[&str]] = &[
    &["XADD", "s", "5-0", "f", "v"],
    &["XGROUP", "CREATE", "s", "g", "$"],
    &["RPUSH", "l", "a", "b"],
    &["SET", "str", "abc"],
    &["SET", "big", "9223372036854775807"],
    &["HSET", "h", "big", "9223372036854775807", "s", "x"],
    &["ZADD", "z", "1", "a", "2", "b"],
    &["ZADD", "zi", "inf", "m"],
    &["SADD", "set", "a", "b"],
    &["SADD", "dst", "z"],
    // A stream whose entry 1-0 is pending for consumer c1.
    &["XADD", "ps", "1-0", "f", "v"],
    &["XGROUP", "CREATE", "ps", "g", "0"],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "ps", ">"],
];

#[test]
fn a_command_that_changes_nothing_does_not_spoil_watch() {
    let server = Server::start(&[]);
    let (mut watcher, mut other) = (server.raw(), server.raw());
    for (key, command, reply) in NO_CHANGE {
        other.cmd(&["FLUSHALL"]);
        for setup in NO_CHANGE_SETUP {
            other.cmd(setup);
        }
        assert_eq!(watcher.cmd(&["WATCH", key]), b"+OK\r\n");
        let got = String::from_utf8_lossy(&other.cmd(command)).into_owned();
        assert!(got.starts_with(reply), "{command:?}: {got}");
        watcher.cmd(&["MULTI"]);
        watcher.cmd(&["PING"]);
        assert_eq!(
            watcher.cmd(&["EXEC"]),
            b"*1\r\n+PONG\r\n",
            "{command:?} spoiled the watch on {key}"
        );
    }
    // A real change still spoils it, and so does LTRIM even when it keeps everything (Redis signals it anyway).
    for command in [
        &["ZADD", "z", "XX", "5", "a"][..],
        &["LTRIM", "l", "0", "-1"],
        &["LREM", "l", "0", "a"],
        &["SREM", "set", "a"],
        &["SADD", "set", "new"],
        &["SMOVE", "set", "dst", "b"],
        &["HSETNX", "h", "new", "y"],
        &["ZREMRANGEBYRANK", "z", "0", "0"],
        &["SETRANGE", "str", "0", "x"],
        &["XDEL", "ps", "1-0"],
    ] {
        watcher.cmd(&["WATCH", command[1]]);
        other.cmd(command);
        watcher.cmd(&["MULTI"]);
        watcher.cmd(&["PING"]);
        assert_eq!(watcher.cmd(&["EXEC"]), b"*-1\r\n", "{command:?}");
    }
}

#[test]
fn a_failing_command_inside_exec_does_not_spoil_another_clients_watch() {
    let server = Server::start(&[]);
    let (mut watcher, mut other) = (server.raw(), server.raw());
    other.cmd(&["SET", "str", "abc"]);
    watcher.cmd(&["WATCH", "str"]);
    other.cmd(&["MULTI"]);
    other.cmd(&["INCR", "str"]);
    other.cmd(&["LPUSH", "str", "x"]);
    assert!(String::from_utf8_lossy(&other.cmd(&["EXEC"])).starts_with("*2\r\n-ERR"));
    watcher.cmd(&["MULTI"]);
    watcher.cmd(&["PING"]);
    assert_eq!(watcher.cmd(&["EXEC"]), b"*1\r\n+PONG\r\n");
}
