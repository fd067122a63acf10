//! Functions through the real binary: FUNCTION DUMP payloads move between ringkv and a real redis-server (Debian's
//! 7.0.15, which LZF-compresses library code in its payloads) in both directions.

mod common;

use common::{redis_server, Raw, Server};

/// The payload of a bulk reply.
fn bulk(reply: &[u8]) -> Vec<u8> {
    assert_eq!(
        reply.first(),
        Some(&b'$'),
        "{}",
        String::from_utf8_lossy(reply)
    );
    let start = reply.iter().position(|&b| b == b'\n').expect("header") + 1;
    reply[start..reply.len() - 2].to_vec()
}

/// A library of `n` functions, `name_0` .. `name_{n-1}`, each returning its number: long enough for Redis to
/// compress.
fn library(name: &str, n: usize) -> String {
    let mut code = format!("#!lua name={name}\n");
    for i in 0..n {
        code += &format!("redis.register_function('{name}_{i}', function() return {i} end)\n");
    }
    code
}

/// Loads the libraries on `from`, restores its dump on `to` (FLUSH), and checks that `to` calls every function.
fn moves(from: &mut Raw, to: &mut Raw) {
    for c in [&mut *from, &mut *to] {
        assert_eq!(c.line("FUNCTION FLUSH"), "+OK\r\n");
    }
    assert_eq!(
        from.cmd(&["FUNCTION", "LOAD", &library("big", 200)]),
        b"$3\r\nbig\r\n"
    );
    assert_eq!(
        from.cmd(&["FUNCTION", "LOAD", &library("small", 1)]),
        b"$5\r\nsmall\r\n"
    );
    let payload = bulk(&from.cmd(&["FUNCTION", "DUMP"]));
    let restore = |c: &mut Raw, policy: &str| {
        c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &payload, policy.as_bytes()])
    };
    assert_eq!(restore(to, "FLUSH"), b"+OK\r\n");
    assert_eq!(to.line("FCALL big_199 0"), ":199\r\n");
    assert_eq!(to.line("FCALL small_0 0"), ":0\r\n");
    // Only one library collides: which of several Redis names depends on its hash order.
    assert_eq!(to.line("FUNCTION DELETE big"), "+OK\r\n");
    assert_eq!(
        restore(to, "APPEND"),
        b"-ERR Library small already exists\r\n"
    );
    assert_eq!(restore(to, "REPLACE"), b"+OK\r\n");
    assert_eq!(
        to.line("FUNCTION STATS"),
        from.line("FUNCTION STATS"),
        "the same libraries and functions"
    );
}

#[test]
fn function_dumps_restore_from_redis_into_ringkv_and_back() {
    let Some(redis) = redis_server(0) else {
        return;
    };
    let ringkv = Server::start(&[]);
    let (mut r, mut k) = (redis.raw(), ringkv.raw());
    moves(&mut r, &mut k);
    moves(&mut k, &mut r);
}
