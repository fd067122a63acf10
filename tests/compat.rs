//! Differential compatibility tests: the same traffic against ringkv and a real `redis-server`, replies compared byte
//! for byte.
//!
//! - `transcripts_match_real_redis` plays every `redis-compat/cases/*.txt` file against both servers. A difference
//!   fails the test unless `redis-compat/accepted.txt` lists it with a reason.
//! - `ringkv_only_transcripts_give_their_expected_replies` plays `redis-compat/ringkv-only/*.txt` (commands Redis
//!   7.0.15 lacks) against ringkv alone, checking the replies written in the files.
//! - `random_sequences_match_real_redis` sends seeded random command sequences to both (see `compat/random.rs`).
//!
//! Without `redis-server` the Redis-backed tests print that they skip; with `CI=true` they fail instead. Each test
//! writes a summary line to stderr past the harness's capture, so it shows in every `cargo test` run.

#[path = "compat/cases.rs"]
mod cases;
mod common;
#[path = "compat/random.rs"]
mod random;
#[path = "compat/redis.rs"]
mod redis;
#[path = "compat/resp.rs"]
mod resp;

use std::path::{Path, PathBuf};

use cases::{agree, find_accepted, parse_accepted, parse_file, play, Accepted, Case, Mode};
use common::Server;
use redis::{report, Got, RedisServer};

fn compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("redis-compat")
}

/// The `*.txt` case files of a directory, sorted by name, parsed.
fn load_cases(dir: &Path) -> (usize, Vec<Case>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let cases = files.iter().flat_map(|f| parse_file(f)).collect();
    (files.len(), cases)
}

/// What comparing transcripts found.
struct Comparison {
    compared: usize,
    accepted: usize,
    failures: Vec<String>,
}

impl Comparison {
    /// Writes the summary line (`what`: which run, how many files), then fails with every unexplained difference.
    fn report_and_assert(self, what: &str, cases: usize, accepted_file: &str) {
        report(&format!(
            "{what}, {cases} cases, {} lines compared, {} differences ({} accepted, {} unexplained)",
            self.compared,
            self.accepted + self.failures.len(),
            self.accepted,
            self.failures.len()
        ));
        assert!(
            self.failures.is_empty(),
            "{} replies differ from Redis's (fix it, or add an entry with a reason to redis-compat/{accepted_file}):\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Plays every case against Redis at `redis` and the server under test at `ours` (named `label` in reports) and
/// compares the replies; a difference `accepted` explains counts as accepted, any other is a failure. Accepted entries
/// that explained nothing are reported.
fn compare(
    cases: &[Case],
    redis: &str,
    ours: &str,
    label: &str,
    accepted: &mut [Accepted],
) -> Comparison {
    let mut found = Comparison {
        compared: 0,
        accepted: 0,
        failures: Vec::new(),
    };
    for case in cases {
        let theirs = play(case, redis);
        let ours = play(case, ours);
        for ((line, a), b) in case.lines.iter().zip(&theirs).zip(&ours) {
            let (Some(a), Some(b)) = (a, b) else { continue };
            if line.mode != Mode::Any {
                found.compared += 1;
            }
            if agree(line.mode, a, b) {
                continue;
            }
            match find_accepted(accepted, case, line) {
                Some(entry) => {
                    entry.used += 1;
                    found.accepted += 1;
                }
                None => found.failures.push(format!(
                    "{}\n    redis:  {}\n    {label}: {}",
                    line.locate(case),
                    a.show(),
                    b.show()
                )),
            }
        }
    }
    for entry in accepted.iter().filter(|a| a.used == 0) {
        report(&format!(
            "compat: note: accepted difference `{}` ({}) did not occur in this run",
            entry.text, entry.reason
        ));
    }
    found
}

#[test]
fn transcripts_match_real_redis() {
    let Some(binary) = RedisServer::find_or_skip("compat transcripts") else {
        return;
    };
    let redis = RedisServer::start(&binary);
    let ringkv = Server::start(&[]);
    let (files, cases) = load_cases(&compat_dir().join("cases"));
    let mut accepted = parse_accepted(&compat_dir().join("accepted.txt"));
    compare(
        &cases,
        &redis.addr(),
        &ringkv.addr(),
        "ringkv",
        &mut accepted,
    )
    .report_and_assert(
        &format!("compat summary: {files} files"),
        cases.len(),
        "accepted.txt",
    );
}

/// Case files about what the proxy refuses by design as a whole (server configuration, keyspace notifications,
/// client-side caching, memory introspection); the other files run through it.
const NOT_THROUGH_THE_PROXY: &[&str] = &[
    "memory.txt",
    "notifications.txt",
    "server.txt",
    "tracking.txt",
];

/// The proxy is transparent: the transcripts played through `ringkv proxy` over one redis-server (so every key has
/// the same owner and multi-key commands work) get what the same redis-server gives directly, except where
/// `redis-compat/accepted-proxy.txt` says why (commands the proxy refuses or answers itself).
#[test]
fn transcripts_through_the_proxy_match_real_redis() {
    let Some(binary) = RedisServer::find_or_skip("compat transcripts through the proxy") else {
        return;
    };
    let direct = RedisServer::start(&binary);
    let backend = RedisServer::start(&binary);
    let proxy = Server::start_proxy(&["--backend", &backend.addr()]);
    let (files, mut cases) = load_cases(&compat_dir().join("cases"));
    cases.retain(|c| !NOT_THROUGH_THE_PROXY.iter().any(|f| c.file == *f));
    let mut accepted = parse_accepted(&compat_dir().join("accepted-proxy.txt"));
    compare(
        &cases,
        &direct.addr(),
        &proxy.addr(),
        "proxy",
        &mut accepted,
    )
    .report_and_assert(
        &format!(
            "compat proxy summary: {} of {files} files",
            files - NOT_THROUGH_THE_PROXY.len()
        ),
        cases.len(),
        "accepted-proxy.txt",
    );
}

#[test]
fn ringkv_only_transcripts_give_their_expected_replies() {
    let ringkv = Server::start(&[]);
    let (files, cases) = load_cases(&compat_dir().join("ringkv-only"));
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let ours = play(case, &ringkv.addr());
        for (line, got) in case.lines.iter().zip(&ours) {
            let Some(got) = got else { continue };
            if line.mode == Mode::Any {
                continue;
            }
            let expect = line.expect.clone().unwrap_or_else(|| {
                panic!(
                    "{}: a ringkv-only line needs `=> \"reply\"` after it",
                    line.locate(case)
                )
            });
            checked += 1;
            if !agree(line.mode, &Got::Reply(expect.clone()), got) {
                failures.push(format!(
                    "{}\n    expected: \"{}\"\n    ringkv:   {}",
                    line.locate(case),
                    expect.escape_ascii(),
                    got.show()
                ));
            }
        }
    }
    report(&format!(
        "compat ringkv-only summary: {files} files, {} cases, {checked} lines checked, {} differences",
        cases.len(),
        failures.len()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn random_sequences_match_real_redis() {
    let Some(binary) = RedisServer::find_or_skip("compat random") else {
        return;
    };
    random::run(&binary, false, 20);
}

/// The same generated sequences through `ringkv proxy` over one redis-server, against a redis-server directly.
#[test]
fn random_sequences_through_the_proxy_match_real_redis() {
    let Some(binary) = RedisServer::find_or_skip("compat random through the proxy") else {
        return;
    };
    random::run(&binary, true, 10);
}
