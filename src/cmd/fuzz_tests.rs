//! Command-layer fuzzing (stable toolchain): random argument vectors for every command and subcommand in the table,
//! run through the dispatcher on one server with a few clients, asserting that nothing panics and every reply is
//! one well-formed RESP value. `RINGKV_FUZZ_ITERS` (default 100,000) and `RINGKV_FUZZ_SEED` size and pick the run.
//!
//! Left out: SHUTDOWN (its flow is the connection's business) and DEBUG SLEEP with a random duration (it sleeps).

use std::io::Write;

use super::testing::TestClient;
use super::{all_commands, blocking, CommandSpec};

/// Arguments that reach parsing edge cases: numbers at the limits, option words of the implemented commands.
const WORDS: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2",
    "10",
    "-10",
    "100",
    "0.5",
    "-0.5",
    "1e400",
    "inf",
    "-inf",
    "nan",
    "0x10",
    "abc",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "2147483648",
    "4294967296",
    "NX",
    "XX",
    "GT",
    "LT",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "GET",
    "PERSIST",
    "COUNT",
    "RANK",
    "MAXLEN",
    "MATCH",
    "TYPE",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "REPLACE",
    "DB",
    "IFEQ",
    "IFNE",
    "IFDEQ",
    "IFDNE",
    "ASYNC",
    "SYNC",
    "ID",
    "SKIPME",
    "yes",
    "no",
    "ON",
    "OFF",
    "FILTERBY",
    "PATTERN",
    "ACLCAT",
    "MODULE",
    "string",
    "list",
    "*",
    "k*",
    "[",
    "\\",
    "k",
    "k1",
    "l",
    "{k}x",
    "0123456789abcdef",
];

fn arg(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(..10) {
        0 => (0..rng.usize(..12)).map(|_| rng.u8(..)).collect(),
        1 => rng.i64(..).to_string().into_bytes(),
        2 => format!("k{}", rng.u8(..4)).into_bytes(),
        _ => WORDS[rng.usize(..WORDS.len())].as_bytes().to_vec(),
    }
}

/// Every (command, subcommand) name vector in the table.
fn names() -> Vec<Vec<&'static str>> {
    let mut out: Vec<Vec<&'static str>> = Vec::new();
    let mut specs: Vec<&CommandSpec> = all_commands().collect();
    specs.sort_by_key(|s| s.name);
    for spec in specs {
        if spec.name == "shutdown" {
            continue;
        }
        out.push(vec![spec.name]);
        out.extend(spec.subcommands.iter().map(|sub| vec![spec.name, sub.name]));
    }
    out
}

/// Runs one command; a client left blocked is released as a timeout would, so the next command finds it free.
fn run(client: &mut TestClient, argv: &[Vec<u8>]) -> Vec<u8> {
    let reply = client.run_bytes(argv);
    if let Some(blocked) = client.client.blocked.take() {
        blocking::end_wait(&client.server, &blocked.waiter);
        *client.client.info.waiter.lock() = None;
    }
    reply
}

#[test]
fn random_arguments_to_every_command_never_panic() {
    let iters: u64 = std::env::var("RINGKV_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed = std::env::var("RINGKV_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = fastrand::Rng::with_seed(seed);
    let names = names();
    let first = TestClient::new();
    let server = first.server.clone();
    let mut clients = [
        first,
        TestClient::on(server.clone()),
        TestClient::on(server),
    ];
    let mut errors = 0u64;
    for _ in 0..iters {
        let name = &names[rng.usize(..names.len())];
        let mut argv: Vec<Vec<u8>> = name.iter().map(|n| n.as_bytes().to_vec()).collect();
        let extra = rng.usize(..7);
        argv.extend((0..extra).map(|_| arg(&mut rng)));
        if name == &["debug"] && argv.len() > 2 {
            argv[2] = b"0".to_vec();
        }
        let c = rng.usize(..clients.len());
        let reply = run(&mut clients[c], &argv);
        // Inside MULTI nothing runs until EXEC: make sure the queue gets executed now and then.
        if rng.u8(..20) == 0 {
            run(&mut clients[c], &[b"EXEC".to_vec()]);
        }
        errors += u64::from(reply.first() == Some(&b'-'));
        let shown = || String::from_utf8_lossy(&reply).into_owned();
        assert!(
            reply.is_empty() || is_one_reply(&reply),
            "{argv:?} gave {:?}",
            shown()
        );
    }
    // Past the harness's capture, so the figure shows in every run.
    let _ = writeln!(
        std::io::stderr(),
        "command fuzz summary: {iters} commands over {} names (seed {seed}), {errors} error replies",
        names.len()
    );
}

/// True if `buf` is exactly one RESP2/RESP3 value (or several, for commands that reply to a whole queue).
fn is_one_reply(buf: &[u8]) -> bool {
    let mut pos = 0;
    while pos < buf.len() {
        match value_len(&buf[pos..]) {
            Some(n) => pos += n,
            None => return false,
        }
    }
    true
}

fn value_len(buf: &[u8]) -> Option<usize> {
    let eol = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(buf.get(1..eol)?).ok()?;
    let after = eol + 2;
    match buf.first()? {
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize;
            (buf.get(end..end + 2)? == b"\r\n").then_some(end + 2)
        }
        kind @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
            let n: i64 = head.parse().ok()?;
            let n = if matches!(kind, b'%' | b'|') {
                n * 2
            } else {
                n
            };
            let mut pos = after;
            for _ in 0..n.max(0) {
                pos += value_len(&buf[pos..])?;
            }
            Some(pos)
        }
        b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => Some(after),
        _ => None,
    }
}
