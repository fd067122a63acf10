//! The command layer under libFuzzer: the input is a sequence of commands (arguments separated by 0x00, commands by
//! 0xff; the first argument is matched against the command table by index so every command is reached), run by
//! three clients of one server. Nothing may panic, and every reply must be well-formed RESP (checked with
//! `redis-protocol`'s RESP3 and RESP2 decoders).
#![no_main]

use std::sync::{Arc, LazyLock};

use ringkv::client::Client;
use ringkv::cmd::{all_commands, blocking, dispatch};
use ringkv::config::Config;
use ringkv::protocol::{OwnedArgv, Reply};
use ringkv::server::ServerState;

/// Every command name, sorted, without SHUTDOWN and DEBUG (whose SLEEP would stall the fuzzer).
static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut names: Vec<&str> = all_commands()
        .map(|c| c.name)
        .filter(|n| !matches!(*n, "shutdown" | "debug"))
        .collect();
    names.sort_unstable();
    names
});

fn well_formed(mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        let used = match redis_protocol::resp3::decode::complete::decode(buf) {
            Ok(Some((_, n))) => n,
            _ => match redis_protocol::resp2::decode::decode(buf) {
                Ok(Some((_, n))) => n,
                _ => return false,
            },
        };
        buf = &buf[used..];
    }
    true
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut config = Config::defaults();
    config.shards = 4;
    let server = Arc::new(ServerState::new(config));
    let addr = "127.0.0.1:0".parse().expect("address");
    let mut clients: Vec<Client> = (0..3)
        .map(|_| server.clients.register(addr, addr))
        .collect();
    // One reply buffer per client: HELLO 3 switches a connection's protocol.
    let mut outs: Vec<Reply> = (0..3).map(|_| Reply::new(false)).collect();
    for command in data.split(|&b| b == 0xff) {
        let mut parts = command.split(|&b| b == 0);
        let Some(head) = parts.next() else { continue };
        let Some((&pick, rest)) = head.split_first() else {
            continue;
        };
        let name = NAMES[pick as usize % NAMES.len()];
        let who = (pick as usize / NAMES.len()) % clients.len();
        let mut args: Vec<&[u8]> = vec![name.as_bytes()];
        if !rest.is_empty() {
            args.push(rest);
        }
        args.extend(parts);
        let argv = OwnedArgv::from_args(&args);
        let (client, out) = (&mut clients[who], &mut outs[who]);
        dispatch(&server, client, argv.argv(), out);
        // A blocked client is released as a timeout would: the harness has no connection to wait on.
        if let Some(blocked) = client.blocked.take() {
            blocking::end_wait(&server, &blocked.waiter);
            *client.info.waiter.lock() = None;
        }
        let reply = std::mem::take(&mut out.buf);
        assert!(
            well_formed(&reply),
            "{args:?} gave {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
});
