//! List commands through the real binary: a million elements in and out of both ends in bounded time, LRANGE near the
//! ends of a long list without walking it, LMOVE across shards, binary-safe elements, emptied lists disappearing.

mod common;

use std::time::{Duration, Instant};

use common::{encode, Raw, Server};

const MILLION: usize = 1_000_000;
/// Elements per push command when filling a list.
const BATCH: usize = 1000;

/// Sends `commands` in pipelined chunks of `chunk` (so neither side's socket buffer fills while the other waits) and
/// returns every reply in order.
fn pipeline(c: &mut Raw, commands: &[Vec<Vec<u8>>], chunk: usize) -> Vec<Vec<u8>> {
    let mut replies = Vec::with_capacity(commands.len());
    for part in commands.chunks(chunk) {
        let bytes: Vec<u8> = part.iter().flat_map(|cmd| encode(cmd)).collect();
        c.send(&bytes);
        replies.extend(part.iter().map(|_| c.reply()));
    }
    replies
}

/// A command from its name and arguments.
fn command(name: &str, key: &str, args: impl IntoIterator<Item = String>) -> Vec<Vec<u8>> {
    [name.to_string(), key.to_string()]
        .into_iter()
        .chain(args)
        .map(String::into_bytes)
        .collect()
}

fn element(i: usize) -> String {
    format!("e{i}")
}

/// Fills `key` with e0 .. e(n-1) in order: the lower half LPUSHed (so the head grows), the upper half RPUSHed, in
/// pipelined commands of [`BATCH`] elements. Returns the last push's reply.
fn fill(c: &mut Raw, key: &str, n: usize) -> Vec<u8> {
    let half = n / 2;
    // LPUSH a b c leaves c b a: each batch pushes its elements in descending order, batches from the middle out.
    let lpushes = (0..half).step_by(BATCH).rev().map(|from| {
        let to = (from + BATCH).min(half);
        command("LPUSH", key, (from..to).rev().map(element))
    });
    let rpushes = (half..n).step_by(BATCH).map(|from| {
        let to = (from + BATCH).min(n);
        command("RPUSH", key, (from..to).map(element))
    });
    let commands: Vec<_> = lpushes.chain(rpushes).collect();
    pipeline(c, &commands, 100)
        .pop()
        .expect("at least one push")
}

/// The length of an array reply (`*N\r\n...`).
fn array_len(reply: &[u8]) -> usize {
    let header = reply.split(|&b| b == b'\r').next().expect("a header line");
    std::str::from_utf8(&header[1..])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an array: {:?}", String::from_utf8_lossy(reply)))
}

fn bulk(s: &str) -> Vec<u8> {
    format!("${}\r\n{s}\r\n", s.len()).into_bytes()
}

#[test]
fn a_million_elements_go_in_and_out_of_both_ends_quickly() {
    let started = Instant::now();
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(fill(&mut c, "big", MILLION), b":1000000\r\n");
    assert_eq!(c.line("LLEN big"), ":1000000\r\n");
    assert_eq!(
        c.line("LINDEX big 0"),
        String::from_utf8(bulk("e0")).unwrap()
    );
    assert_eq!(
        c.line("LINDEX big -1"),
        String::from_utf8(bulk("e999999")).unwrap()
    );
    assert_eq!(
        c.line("LINDEX big 500000"),
        String::from_utf8(bulk("e500000")).unwrap()
    );

    // 20,000 single-element pops, alternating ends: each one O(1).
    let singles: Vec<_> = (0..20_000)
        .map(|i| command(if i % 2 == 0 { "LPOP" } else { "RPOP" }, "big", []))
        .collect();
    let replies = pipeline(&mut c, &singles, 2000);
    assert_eq!(replies[0], bulk("e0"));
    assert_eq!(replies[1], bulk("e999999"));
    assert_eq!(replies[19_998], bulk("e9999"));
    assert_eq!(replies[19_999], bulk("e990000"));

    // The rest in counted pops of 1000 from both ends.
    let left = MILLION - 20_000;
    let counted: Vec<_> = (0..left / BATCH)
        .map(|i| {
            let name = if i % 2 == 0 { "LPOP" } else { "RPOP" };
            command(name, "big", [BATCH.to_string()])
        })
        .collect();
    let replies = pipeline(&mut c, &counted, 20);
    assert!(replies[0].starts_with(
        format!("*1000\r\n{}", String::from_utf8(bulk("e10000")).unwrap()).as_bytes()
    ));
    let popped: usize = replies.iter().map(|r| array_len(r)).sum();
    assert_eq!(popped, left);
    assert_eq!(c.line("EXISTS big"), ":0\r\n");
    assert_eq!(c.line("LPOP big"), "$-1\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn lrange_and_lindex_near_the_ends_of_a_million_list_do_not_walk_it() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    fill(&mut c, "big", MILLION);
    let ranges = [
        ("0", "4"),
        ("-5", "-1"),
        ("999995", "999999"),
        ("-1000000", "-999996"),
    ];
    let started = Instant::now();
    let commands: Vec<_> = (0..2000)
        .map(|i| {
            let (start, stop) = ranges[i % ranges.len()];
            command("LRANGE", "big", [start.to_string(), stop.to_string()])
        })
        .collect();
    let replies = pipeline(&mut c, &commands, 500);
    let lindexes: Vec<_> = (0..2000)
        .map(|i| {
            command(
                "LINDEX",
                "big",
                [if i % 2 == 0 { "-2" } else { "1" }.to_string()],
            )
        })
        .collect();
    let indexed = pipeline(&mut c, &lindexes, 500);
    // Walking a million elements per command would take minutes for 4000 commands; reaching the ends directly
    // takes milliseconds.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let expect = |range: std::ops::Range<usize>| -> Vec<u8> {
        let mut r = format!("*{}\r\n", range.len()).into_bytes();
        range.for_each(|i| r.extend(bulk(&element(i))));
        r
    };
    assert_eq!(replies[0], expect(0..5));
    assert_eq!(replies[1], expect(999_995..MILLION));
    assert_eq!(replies[2], expect(999_995..MILLION));
    assert_eq!(replies[3], expect(0..5));
    assert_eq!(indexed[0], bulk("e999998"));
    assert_eq!(indexed[1], bulk("e1"));
}

#[test]
fn lmove_moves_between_keys_on_different_shards() {
    let server = Server::start(&["--shards", "8"]);
    // The server places keys with the same ring; a store of the same shape tells which shard a key lands on.
    let layout = ringkv::store::Store::new(8, 1);
    let src = "source";
    let dst = (0..)
        .map(|i| format!("destination{i}"))
        .find(|k| layout.shard_of(k.as_bytes()) != layout.shard_of(src.as_bytes()))
        .expect("a key on another shard");
    let mut c = server.raw();
    c.cmd(&["RPUSH", src, "a", "b", "c"]);
    assert_eq!(c.cmd(&["LMOVE", src, &dst, "LEFT", "RIGHT"]), bulk("a"));
    assert_eq!(c.cmd(&["LMOVE", src, &dst, "RIGHT", "LEFT"]), bulk("c"));
    assert_eq!(c.cmd(&["RPOPLPUSH", src, &dst]), bulk("b"));
    assert_eq!(c.cmd(&["EXISTS", src]), b":0\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", &dst, "0", "-1"]),
        [&b"*3\r\n"[..], &bulk("b"), &bulk("c"), &bulk("a")].concat()
    );
    assert_eq!(c.cmd(&["LMOVE", src, &dst, "LEFT", "LEFT"]), b"$-1\r\n");
    assert_eq!(
        c.cmd(&["LMPOP", "2", src, &dst, "RIGHT", "COUNT", "2"]),
        [
            &b"*2\r\n"[..],
            &bulk(&dst),
            b"*2\r\n",
            &bulk("a"),
            &bulk("c")
        ]
        .concat()
    );
}

#[test]
fn elements_are_binary_safe() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let key: &[u8] = b"bin\x00key";
    let odd: &[u8] = b"\x00\r\n\xff*3\r\n";
    assert_eq!(c.cmd(&[&b"RPUSH"[..], key, odd, b"", b"\xfe"]), b":3\r\n");
    assert_eq!(
        c.cmd(&[&b"LINDEX"[..], key, b"0"]),
        [&b"$8\r\n"[..], odd, b"\r\n"].concat()
    );
    assert_eq!(c.cmd(&[&b"LPOS"[..], key, b""]), b":1\r\n");
    assert_eq!(c.cmd(&[&b"LREM"[..], key, b"0", odd]), b":1\r\n");
    assert_eq!(
        c.cmd(&[&b"RPOP"[..], key, b"5"]),
        b"*2\r\n$1\r\n\xfe\r\n$0\r\n\r\n"
    );
}

#[tokio::test]
async fn an_emptied_list_disappears() {
    let server = Server::start(&[]);
    let mut con = server.client().await;
    let len: i64 = redis::cmd("RPUSH")
        .arg("l")
        .arg(&["a", "b"])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(len, 2);
    let popped: Vec<String> = redis::cmd("LPOP")
        .arg("l")
        .arg(2)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(popped, ["a", "b"]);
    let exists: i64 = redis::cmd("EXISTS")
        .arg("l")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    // A missing key with a count is a null array, which the client reads as nil.
    let gone: Option<Vec<String>> = redis::cmd("LPOP")
        .arg("l")
        .arg(2)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(gone, None);
    let mut raw = server.raw();
    assert_eq!(raw.line("LPOP l 2"), "*-1\r\n");
    raw.line("HELLO 3");
    assert_eq!(raw.line("LPOP l 2"), "_\r\n");
}
