//! Stable-toolchain fuzzing of the request parser (the cargo-fuzz target `fuzz/fuzz_targets/parser.rs` checks the
//! same oracle, `tests/fuzz/parser_oracle.rs`, with coverage guidance on nightly).
//!
//! Feeds seeded random inputs — valid pipelines, mutations of them, inline lines and raw noise — split into random
//! reads. `RINGKV_FUZZ_ITERS` (default 200,000) and `RINGKV_FUZZ_SEED` size and pick the run.

#[path = "fuzz/parser_oracle.rs"]
mod oracle;

use std::io::Write;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn arg(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(..4) {
        0 => Vec::new(),
        1 => b"SET".to_vec(),
        2 => (0..rng.usize(..8)).map(|_| rng.u8(..)).collect(),
        _ => (0..rng.usize(..40))
            .map(|_| rng.alphanumeric() as u8)
            .collect(),
    }
}

/// A pipeline of 1-3 well-formed requests.
fn pipeline(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.usize(1..4) {
        let args: Vec<Vec<u8>> = (0..rng.usize(1..6)).map(|_| arg(rng)).collect();
        out.extend(oracle::encode(&args));
    }
    out
}

/// Pieces a mutation may splice in: protocol tokens that reach the parser's edge cases.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"*",
    b"$",
    b"-1",
    b"0",
    b"01",
    b"+1",
    b"2147483647",
    b"2147483648",
    b"9223372036854775808",
    b"536870913",
    b"\"",
    b"'",
    b"\\x4",
    b"\\x41",
    b" ",
    b"\n",
    b"\r",
    b"\0",
];

fn mutate(rng: &mut fastrand::Rng, mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.usize(1..4) {
        let at = rng.usize(..=input.len());
        match rng.u8(..4) {
            0 if at < input.len() => input[at] = rng.u8(..),
            1 if at < input.len() => {
                let end = (at + rng.usize(1..8)).min(input.len());
                input.drain(at..end);
            }
            2 => {
                let token = TOKENS[rng.usize(..TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            _ => input.truncate(at),
        }
    }
    input
}

fn inline(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.usize(1..6) {
        let token = TOKENS[rng.usize(..TOKENS.len())];
        out.extend_from_slice(if rng.bool() { b"GET" } else { token });
        out.push(b' ');
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn parser_never_panics_and_agrees_with_redis_protocol() {
    let iters = env_num("RINGKV_FUZZ_ITERS", 200_000);
    let seed = env_num("RINGKV_FUZZ_SEED", 1);
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..iters {
        let input = match rng.u8(..8) {
            0 | 1 => pipeline(&mut rng),
            2..=4 => {
                let valid = pipeline(&mut rng);
                mutate(&mut rng, valid)
            }
            5 => inline(&mut rng),
            6 => {
                let line = inline(&mut rng);
                mutate(&mut rng, line)
            }
            _ => (0..rng.usize(..64)).map(|_| rng.u8(..)).collect(),
        };
        let reads: Vec<usize> = (0..rng.usize(1..4)).map(|_| rng.usize(1..16)).collect();
        oracle::check(&input, &reads);
    }
    // Past the harness's capture, so the figure shows in every run.
    let _ = writeln!(
        std::io::stderr(),
        "fuzz_parser summary: {iters} inputs (seed {seed}) checked"
    );
}
