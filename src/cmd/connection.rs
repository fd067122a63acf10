//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO.

use std::sync::atomic::Ordering;

use super::args::{self, is};
use super::{flag::*, CmdError, CmdResult, CommandSpec, Ctx, Flow, Keys};
use crate::protocol::Argv;

/// The Redis version we are compatible with, reported by HELLO and INFO.
pub const REDIS_VERSION: &str = "7.2.4";

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, FAST, Keys::None, ping),
    CommandSpec::new("echo", 2, FAST, Keys::None, echo),
    CommandSpec::new(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        Keys::None,
        quit,
    ),
    CommandSpec::new("select", 2, LOADING | STALE | FAST, Keys::None, select),
    CommandSpec::new(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        Keys::None,
        hello,
    ),
];

fn ping(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    match argv.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(argv.get(1)),
        _ => return Err(CmdError::WrongArity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    ctx.out.bulk(argv.get(1));
    Ok(())
}

fn quit(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.ok();
    ctx.flow = Flow::Close;
    Ok(())
}

fn select(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let db = args::parse_i64(argv.get(1)).ok_or_else(|| CmdError::err("invalid DB index"))?;
    if db < 0 || db as usize >= ctx.server.config.databases {
        return Err(CmdError::DbIndex);
    }
    ctx.client.select(db as usize);
    ctx.out.ok();
    Ok(())
}

/// True when `name` is acceptable to CLIENT SETNAME / HELLO SETNAME: printable ASCII without spaces.
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn hello(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut resp = ctx.client.info.resp.load(Ordering::Relaxed);
    let mut next = 1;
    if argv.len() > 1 {
        let ver = args::parse_i64(argv.get(1))
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&ver) {
            return Err(CmdError::Coded(
                "NOPROTO unsupported protocol version".into(),
            ));
        }
        resp = ver as usize;
        next = 2;
    }
    let mut name = None;
    while next < argv.len() {
        let opt = argv.get(next);
        let more = argv.len() - next - 1;
        if is(opt, "AUTH") && more >= 2 {
            if !is(argv.get(next + 1), "default") {
                return Err(CmdError::Coded(
                    "WRONGPASS invalid username-password pair or user is disabled.".into(),
                ));
            }
            next += 3;
        } else if is(opt, "SETNAME") && more >= 1 {
            let n = argv.get(next + 1);
            if !valid_client_name(n) {
                return Err(CmdError::err(
                    "Client names cannot contain spaces, newlines or special characters.",
                ));
            }
            name = Some(n);
            next += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if let Some(n) = name {
        *ctx.client.info.name.lock() = n.to_vec();
    }
    ctx.client.info.resp.store(resp, Ordering::Relaxed);
    ctx.out.set_resp3(resp == 3);
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(resp as i64);
    out.bulk(b"id");
    out.int(ctx.client.id() as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}
