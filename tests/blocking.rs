//! The blocking list family (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) with Redis's fairness rules, through the real
//! binary: every rule of the queue semantics has a test here.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Raw, Server};

/// Waits (at most 10 s) until the number of blocked clients (CLIENT LIST flags=b) satisfies `done`.
fn wait_for_blocked(c: &mut Raw, done: impl Fn(usize) -> bool, what: &str) {
    let start = Instant::now();
    loop {
        let list = String::from_utf8(c.cmd(&["CLIENT", "LIST"])).unwrap();
        let blocked = list.lines().filter(|l| l.contains(" flags=b ")).count();
        if done(blocked) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what}:\n{list}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `n` clients are blocked, so a test can rely on the order clients blocked in.
fn wait_blocked(c: &mut Raw, n: usize) {
    wait_for_blocked(c, |b| b >= n, &format!("fewer than {n} clients blocked"));
}

#[test]
fn blpop_serves_first_nonempty_key_in_argument_order() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("RPUSH b b1");
    c.line("RPUSH c c1");
    assert_eq!(c.line("BLPOP a c b 0"), "*2\r\n$1\r\nc\r\n$2\r\nc1\r\n");
    assert_eq!(c.line("BRPOP a b 0"), "*2\r\n$1\r\nb\r\n$2\r\nb1\r\n");
    assert_eq!(c.line("EXISTS b"), ":0\r\n", "an emptied list disappears");
}

#[test]
fn waiters_on_one_key_are_served_first_come_first_served() {
    let server = Server::start(&[]);
    let mut waiters: Vec<Raw> = Vec::new();
    let mut admin = server.raw();
    for i in 0..5 {
        let mut w = server.raw();
        w.send_cmd(&["BLPOP", "q", "0"]);
        wait_blocked(&mut admin, i + 1);
        waiters.push(w);
    }
    let mut producer = server.raw();
    for i in 0..5 {
        producer.cmd(&["RPUSH", "q", &format!("m{i}")]);
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        assert_eq!(
            w.reply(),
            format!("*2\r\n$1\r\nq\r\n$2\r\nm{i}\r\n").into_bytes()
        );
    }
}

#[test]
fn waiters_are_served_after_the_whole_push() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut w = server.raw();
    w.send_cmd(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.line("LPUSH k a b c"), ":3\r\n");
    assert_eq!(w.reply(), b"*2\r\n$1\r\nk\r\n$1\r\nc\r\n");
    assert_eq!(admin.line("LRANGE k 0 -1"), "*2\r\n$1\r\nb\r\n$1\r\na\r\n");
}

#[test]
fn blmove_into_a_watched_list_wakes_its_waiters_in_a_chain() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut first = server.raw();
    first.send_cmd(&["BLMOVE", "src", "mid", "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut admin, 1);
    let mut second = server.raw();
    second.send_cmd(&["BRPOPLPUSH", "mid", "dst", "0"]);
    wait_blocked(&mut admin, 2);
    let mut last = server.raw();
    last.send_cmd(&["BLPOP", "dst", "0"]);
    wait_blocked(&mut admin, 3);
    admin.line("RPUSH src x");
    assert_eq!(first.reply(), b"$1\r\nx\r\n");
    assert_eq!(second.reply(), b"$1\r\nx\r\n");
    assert_eq!(last.reply(), b"*2\r\n$3\r\ndst\r\n$1\r\nx\r\n");
    assert_eq!(
        admin.line("DBSIZE"),
        ":0\r\n",
        "the element travelled the whole chain"
    );
}

/// A chain whose hops stay in a shard or cross to another, in every layout: src and mid on one shard with dst on
/// another once left the last waiter blocked beside its element (the second hop needed a shard the push did not
/// hold, and the retry holding every shard looked only at the pushed key).
#[test]
fn a_chain_is_served_whatever_shards_its_lists_live_on() {
    let shards = 16;
    let server = Server::start(&["--shards", "16"]);
    let store = ringkv::store::Store::new(shards, 1);
    let shard = |k: &str| store.shard_of(k.as_bytes());
    // Keys named so their shards are known: `{a}...` all share one shard, `other:i` the first on another.
    let other = (0..1000)
        .map(|i| format!("other:{i}"))
        .find(|k| shard(k) != shard("{a}"))
        .unwrap();
    let third = (0..1000)
        .map(|i| format!("third:{i}"))
        .find(|k| shard(k) != shard("{a}") && shard(k) != shard(&other))
        .unwrap();
    let layouts = [
        ["{a}src", "{a}mid", "{a}dst"],
        ["{a}src", "{a}mid", other.as_str()],
        ["{a}src", other.as_str(), "{a}dst"],
        [other.as_str(), "{a}mid", "{a}dst"],
        ["{a}src", other.as_str(), third.as_str()],
    ];
    let mut admin = server.raw();
    for ([src, mid, dst], in_exec) in layouts.into_iter().flat_map(|l| [(l, false), (l, true)]) {
        let what = format!("{src} -> {mid} -> {dst}, pushed in EXEC: {in_exec}");
        let mut first = server.raw();
        first.send_cmd(&["BRPOPLPUSH", src, mid, "0"]);
        wait_blocked(&mut admin, 1);
        let mut second = server.raw();
        second.send_cmd(&["BLMOVE", mid, dst, "LEFT", "LEFT", "0"]);
        wait_blocked(&mut admin, 2);
        if in_exec {
            admin.line("MULTI");
            admin.cmd(&["RPUSH", src, "x"]);
            admin.line("EXEC");
        } else {
            admin.cmd(&["RPUSH", src, "x"]);
        }
        assert_eq!(first.reply(), b"$1\r\nx\r\n", "{what}");
        assert_eq!(second.reply(), b"$1\r\nx\r\n", "{what}");
        assert_eq!(
            admin.cmd(&["LRANGE", dst, "0", "-1"]),
            b"*1\r\n$1\r\nx\r\n",
            "{what}"
        );
        assert_eq!(admin.line("DBSIZE"), ":1\r\n", "{what}: only dst holds x");
        admin.line("FLUSHALL");
    }
}

/// Keys readied by a write are served in the order they became ready, and a BLMOVE destination after them (Redis
/// serves ready keys breadth-first): a client waiting on both the destination and a key the write pushed to gets the
/// pushed key's element, and the moved element stays in the destination. Whether the keys share a shard or not.
#[test]
fn a_blmove_destination_is_served_after_the_keys_the_write_readied() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    for [a, b, c] in [["{t}a", "{t}b", "{t}c"], ["a", "b", "c"]] {
        for how in ["EVAL", "MULTI"] {
            let what = format!("{a} {b} {c} pushed by {how}");
            let mut mover = server.raw();
            mover.send_cmd(&["BLMOVE", a, c, "LEFT", "RIGHT", "0"]);
            wait_blocked(&mut admin, 1);
            let mut both = server.raw();
            both.send_cmd(&["BLPOP", c, b, "0"]);
            wait_blocked(&mut admin, 2);
            let mut last = server.raw();
            last.send_cmd(&["BLPOP", b, "0.3"]);
            wait_blocked(&mut admin, 3);
            if how == "EVAL" {
                let script =
                    "redis.call('rpush', KEYS[1], 'x') redis.call('rpush', KEYS[2], 'y') return 1";
                admin.cmd(&["EVAL", script, "2", a, b]);
            } else {
                admin.line("MULTI");
                admin.cmd(&["RPUSH", a, "x"]);
                admin.cmd(&["RPUSH", b, "y"]);
                assert_eq!(admin.line("EXEC"), "*2\r\n:1\r\n:1\r\n", "{what}");
            }
            assert_eq!(mover.reply(), b"$1\r\nx\r\n", "{what}");
            let got_b = format!("*2\r\n${}\r\n{b}\r\n$1\r\ny\r\n", b.len());
            assert_eq!(String::from_utf8(both.reply()).unwrap(), got_b, "{what}");
            assert_eq!(last.reply(), b"*-1\r\n", "{what}: nothing was left for it");
            let in_c = admin.cmd(&["LRANGE", c, "0", "-1"]);
            assert_eq!(in_c, b"*1\r\n$1\r\nx\r\n", "{what}");
            admin.line("FLUSHALL");
        }
    }
}

/// Serving a BLMOVE or BRPOPLPUSH pushes into its destination, which spoils a WATCH on it as any push does.
#[test]
fn a_served_blmove_spoils_a_watch_on_its_destination() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    for (i, cmd) in [
        &["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"][..],
        &["BRPOPLPUSH", "src", "dst", "0"],
    ]
    .into_iter()
    .enumerate()
    {
        let mut watcher = server.raw();
        assert_eq!(watcher.line("WATCH dst"), "+OK\r\n");
        let mut mover = server.raw();
        mover.send_cmd(cmd);
        wait_blocked(&mut admin, 1);
        admin.line("RPUSH src a");
        assert_eq!(mover.reply(), b"$1\r\na\r\n");
        watcher.line("MULTI");
        watcher.line("LLEN dst");
        assert_eq!(
            watcher.line("EXEC"),
            "*-1\r\n",
            "{cmd:?}: the watch on dst is spoiled"
        );
        assert_eq!(admin.line("LLEN dst"), format!(":{}\r\n", i + 1));
    }
}

#[test]
fn timeouts_are_doubles_and_time_out_with_a_null_array() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let start = Instant::now();
    assert_eq!(c.line("BLPOP nothing 0.05"), "*-1\r\n");
    assert!(start.elapsed() >= Duration::from_millis(45));
    assert_eq!(c.line("BLMOVE nothing x LEFT LEFT 0.01"), "*-1\r\n");
    assert_eq!(c.line("BLMPOP 0.01 1 nothing LEFT"), "*-1\r\n");
    assert_eq!(c.line("BLPOP k -1"), "-ERR timeout is negative\r\n");
    assert_eq!(
        c.line("BLPOP k abc"),
        "-ERR timeout is not a float or out of range\r\n"
    );
    assert_eq!(c.line("BLPOP k inf"), "-ERR timeout is out of range\r\n");
    // A deadline (now + timeout) past the largest 64-bit millisecond is out of range too (Redis 7.2's timeout.c),
    // in seconds as in XREAD's milliseconds; a timeout just below it blocks.
    assert_eq!(
        c.line("BLPOP k 9223372036854775"),
        "-ERR timeout is out of range\r\n"
    );
    assert_eq!(
        c.line("XREAD BLOCK 9223372036854775807 STREAMS s 0"),
        "-ERR timeout is out of range\r\n"
    );
    assert_eq!(
        c.line("XREAD BLOCK -1 STREAMS s 0"),
        "-ERR timeout is negative\r\n"
    );
    c.send_cmd(&["BLPOP", "k", "9000000000000000"]);
    let mut admin = server.raw();
    wait_blocked(&mut admin, 1);
    admin.line("RPUSH k v");
    assert_eq!(c.reply(), b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert!(c.line("HELLO 3").starts_with('%'));
    assert_eq!(c.line("BRPOP nothing 0.01"), "_\r\n");
}

#[test]
fn zero_timeout_waits_until_data_arrives() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut w = server.raw();
    w.send_cmd(&["BRPOP", "jobs", "0"]);
    wait_blocked(&mut admin, 1);
    std::thread::sleep(Duration::from_millis(200));
    admin.line("LPUSH jobs j1");
    assert_eq!(w.reply(), b"*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n");
}

/// The connection's CLIENT ID.
fn client_id(c: &mut Raw) -> String {
    let id = String::from_utf8(c.cmd(&["CLIENT", "ID"])).unwrap();
    id.trim_start_matches(':').trim().to_string()
}

/// Unblocks the blocked client `id` (connection `w`) with CLIENT UNBLOCK ... ERROR and checks both replies.
fn unblock_with_error(admin: &mut Raw, w: &mut Raw, id: &str) {
    assert_eq!(admin.line(&format!("CLIENT UNBLOCK {id} ERROR")), ":1\r\n");
    assert_eq!(
        w.reply(),
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );
}

#[test]
fn client_unblock_ends_a_wait_as_timeout_or_error() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut w = server.raw();
    let id = client_id(&mut w);
    w.send_cmd(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(
        admin.line(&format!("CLIENT UNBLOCK {id} TIMEOUT")),
        ":1\r\n"
    );
    assert_eq!(w.reply(), b"*-1\r\n");
    assert_eq!(
        admin.line(&format!("CLIENT UNBLOCK {id}")),
        ":0\r\n",
        "not blocked any more"
    );
    w.send_cmd(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    unblock_with_error(&mut admin, &mut w, &id);
    assert_eq!(admin.line("RPUSH k v"), ":1\r\n");
    assert_eq!(
        admin.line("LLEN k"),
        ":1\r\n",
        "an unblocked client never takes an element"
    );
}

#[test]
fn wait_for_replicas_blocks_until_its_timeout_or_client_unblock_and_counts_none() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut w = server.raw();
    let id = client_id(&mut w);
    let start = Instant::now();
    assert_eq!(w.line("WAIT 1 100"), ":0\r\n");
    assert!(start.elapsed() >= Duration::from_millis(100));
    // Timeout 0 waits until unblocked; either way of unblocking is Redis's.
    w.send_cmd(&["WAIT", "2", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(
        admin.line(&format!("CLIENT UNBLOCK {id} TIMEOUT")),
        ":1\r\n"
    );
    assert_eq!(w.reply(), b":0\r\n");
    w.send_cmd(&["WAIT", "1", "0"]);
    wait_blocked(&mut admin, 1);
    unblock_with_error(&mut admin, &mut w, &id);
    assert_eq!(w.line("WAIT 0 0"), ":0\r\n");
}

#[test]
fn a_waiter_that_disconnected_never_takes_an_element() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    {
        let mut w = server.raw();
        w.send_cmd(&["BLPOP", "k", "0"]);
        wait_blocked(&mut admin, 1);
    }
    wait_blocked_count_zero(&mut admin);
    admin.line("RPUSH k v");
    assert_eq!(admin.line("LRANGE k 0 -1"), "*1\r\n$1\r\nv\r\n");
}

fn wait_blocked_count_zero(c: &mut Raw) {
    wait_for_blocked(c, |b| b == 0, "a gone client stayed blocked");
}

#[test]
fn a_blocked_client_runs_the_rest_of_its_pipeline_after_it_is_served() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut w = server.raw();
    let mut pipeline = common::encode(&["BLPOP", "k", "0"]);
    pipeline.extend(common::encode(&["SET", "after", "1"]));
    pipeline.extend(common::encode(&["GET", "after"]));
    w.send(&pipeline);
    wait_blocked(&mut admin, 1);
    assert_eq!(
        admin.line("GET after"),
        "$-1\r\n",
        "commands behind a blocked one wait for it"
    );
    admin.line("RPUSH k v");
    assert_eq!(w.reply(), b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(w.reply(), b"+OK\r\n");
    assert_eq!(w.reply(), b"$1\r\n1\r\n");
}

#[test]
fn blmpop_pops_up_to_count_from_the_first_nonempty_key() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("RPUSH b 1 2 3");
    assert_eq!(
        c.line("BLMPOP 0 2 a b RIGHT COUNT 2"),
        "*2\r\n$1\r\nb\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n"
    );
    let mut admin = server.raw();
    let mut w = server.raw();
    w.send_cmd(&["BLMPOP", "0", "1", "z", "LEFT", "COUNT", "10"]);
    wait_blocked(&mut admin, 1);
    admin.line("RPUSH z x y");
    assert_eq!(w.reply(), b"*2\r\n$1\r\nz\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n");
    assert_eq!(
        c.line("BLMPOP 0 0 a LEFT"),
        "-ERR numkeys should be greater than 0\r\n"
    );
}

#[test]
fn a_waiter_on_keys_in_different_shards_is_served_exactly_once() {
    let server = Server::start(&["--threads", "2", "--shards", "16"]);
    let mut admin = server.raw();
    // Keys spread over the ring: with 16 shards, 20 keys cover several shards.
    let keys: Vec<String> = (0..20).map(|i| format!("multi:{i}")).collect();
    let mut w = server.raw();
    let mut args: Vec<&str> = vec!["BLPOP"];
    args.extend(keys.iter().map(String::as_str));
    args.push("0");
    w.send_cmd(&args);
    wait_blocked(&mut admin, 1);
    let mut pipeline = Vec::new();
    for k in &keys {
        pipeline.extend(common::encode(&["RPUSH", k, "v"]));
    }
    admin.send(&pipeline);
    for _ in &keys {
        admin.reply();
    }
    let got = w.reply();
    assert!(
        got.starts_with(b"*2\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let mut remaining = 0;
    for k in &keys {
        remaining += String::from_utf8(admin.cmd(&["LLEN", k]))
            .unwrap()
            .trim_start_matches(':')
            .trim()
            .parse::<u32>()
            .unwrap();
    }
    assert_eq!(
        remaining,
        keys.len() as u32 - 1,
        "exactly one element was taken"
    );
}

#[test]
fn blocking_commands_inside_multi_do_not_block() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.line("BLPOP k 0"), "+QUEUED\r\n");
    assert_eq!(c.line("BLMOVE k d LEFT LEFT 0"), "+QUEUED\r\n");
    assert_eq!(c.line("EXEC"), "*2\r\n*-1\r\n$-1\r\n");
}

#[test]
fn waiters_are_served_after_the_whole_transaction() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut w = server.raw();
    w.send_cmd(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    admin.line("MULTI");
    admin.line("LPUSH k first");
    admin.line("LPUSH k second");
    assert_eq!(admin.line("EXEC"), "*2\r\n:1\r\n:2\r\n");
    assert_eq!(w.reply(), b"*2\r\n$1\r\nk\r\n$6\r\nsecond\r\n");
}

#[test]
fn a_push_then_delete_in_one_transaction_leaves_waiters_blocked() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut w = server.raw();
    w.send_cmd(&["BLPOP", "k", "0"]);
    wait_blocked(&mut admin, 1);
    admin.line("MULTI");
    admin.line("LPUSH k v");
    admin.line("DEL k");
    admin.line("EXEC");
    std::thread::sleep(Duration::from_millis(50));
    wait_blocked(&mut admin, 1);
    admin.line("RPUSH k later");
    assert_eq!(w.reply(), b"*2\r\n$1\r\nk\r\n$5\r\nlater\r\n");
}

/// Many producers push unique messages, many consumers BLPOP on overlapping key sets with short timeouts, and some
/// consumers drop their connection between commands at random: every message is delivered exactly once or is still
/// in a list at the end.
#[test]
fn queue_stress_delivers_every_message_exactly_once() {
    let server = Server::start(&["--threads", "2"]);
    let addr = server.addr();
    let keys = ["q0", "q1", "q2", "q3"];
    let per_producer = 500;
    let producers = 4;
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for p in 0..producers {
        let addr = addr.clone();
        handles.push(std::thread::spawn(move || {
            let mut c = Raw::connect(&addr);
            for i in 0..per_producer {
                let key = keys[(i + p) % keys.len()];
                c.cmd(&["LPUSH", key, &format!("p{p}:{i}")]);
            }
            Vec::new()
        }));
    }
    for cons in 0..6usize {
        let addr = addr.clone();
        let done = done.clone();
        handles.push(std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut c = Raw::connect(&addr);
            let mut rng = cons as u64 * 7919 + 1;
            while !done.load(Ordering::Relaxed) {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if rng >> 60 == 0 {
                    c = Raw::connect(&addr); // drop the connection between commands
                }
                let a = keys[(rng >> 33) as usize % keys.len()];
                let b = keys[(rng >> 40) as usize % keys.len()];
                let reply = c.cmd(&["BRPOP", a, b, "0.02"]);
                if reply.starts_with(b"*2") {
                    let text = String::from_utf8(reply).unwrap();
                    got.push(text.lines().nth(4).unwrap().to_string());
                }
            }
            got
        }));
    }
    let consumers = handles.split_off(producers);
    for h in handles {
        h.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let mut delivered: Vec<String> = Vec::new();
    for h in consumers {
        delivered.extend(h.join().unwrap());
    }
    let mut c = server.raw();
    for k in keys {
        let reply = String::from_utf8(c.cmd(&["LRANGE", k, "0", "-1"])).unwrap();
        delivered.extend(reply.lines().skip(2).step_by(2).map(str::to_string));
    }
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "a message was delivered twice"
    );
    assert_eq!(
        delivered.len(),
        producers * per_producer,
        "a message was lost"
    );
}

#[test]
fn bzpopmin_and_bzmpop_wait_for_a_zadd_and_take_the_right_end() {
    let server = Server::start(&[]);
    let mut admin = server.raw();
    let mut min = server.raw();
    min.send_cmd(&["BZPOPMIN", "z1", "z2", "0"]);
    wait_blocked(&mut admin, 1);
    let mut max = server.raw();
    max.send_cmd(&["BZMPOP", "0", "1", "z2", "MAX", "COUNT", "2"]);
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.line("ZADD z2 1 a 2 b 3 c"), ":3\r\n");
    // The first blocked client is served first, after the whole ZADD, from the low end.
    assert_eq!(min.reply(), b"*3\r\n$2\r\nz2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(
        max.reply(),
        b"*2\r\n$2\r\nz2\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(admin.line("EXISTS z2"), ":0\r\n");
    assert_eq!(admin.line("BZPOPMAX z2 0.01"), "*-1\r\n");
    admin.line("HELLO 3");
    assert_eq!(admin.line("BZPOPMIN z2 0.01"), "_\r\n");
}
