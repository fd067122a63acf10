//! Commands the server role does not implement but Redis backends do (bitmaps, HyperLogLog, geo, LCS, DUMP /
//! RESTORE): the proxy knows only where their keys are, from Redis 7.2's key specs, and forwards them like any
//! keyed command, so a user of the proxy over Redis keeps them (as through twemproxy). Over ringkv backends they get
//! the backend's "unknown command". Keys on several backends get the proxy's cross-backend error, never a partial
//! answer. Left out: commands whose options name more keys (SORT's STORE and BY/GET patterns, GEORADIUS's STORE).

use crate::cmd::flag::{DENYOOM, FAST, READONLY, WRITE};
use crate::cmd::{CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::protocol::Argv;

/// Keys from the second argument to the last (BITOP's sources after its destination).
const FROM_SECOND: Keys = Keys::Range {
    first: 2,
    last: -1,
    step: 1,
};
/// Every argument is a key (PFCOUNT, PFMERGE).
const ALL: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 1,
};

/// Never run: these specs only tell the proxy where the keys are.
fn backend_only(_ctx: &mut Ctx, argv: Argv) -> CmdResult {
    Err(CmdError::err(format!(
        "'{}' runs on the backends only",
        String::from_utf8_lossy(argv.get(0))
    )))
}

const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, Keys::FIRST, backend_only),
    CommandSpec::new("getbit", 3, READONLY | FAST, Keys::FIRST, backend_only),
    CommandSpec::new("bitcount", -2, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new("bitpos", -3, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new("bitfield", -2, WRITE | DENYOOM, Keys::FIRST, backend_only),
    CommandSpec::new(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        Keys::FIRST,
        backend_only,
    ),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, FROM_SECOND, backend_only),
    CommandSpec::new(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST,
        Keys::FIRST,
        backend_only,
    ),
    CommandSpec::new("pfcount", -2, READONLY, ALL, backend_only),
    CommandSpec::new("pfmerge", -2, WRITE | DENYOOM, ALL, backend_only),
    CommandSpec::new("geoadd", -5, WRITE | DENYOOM, Keys::FIRST, backend_only),
    CommandSpec::new("geodist", -4, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new("geohash", -2, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new("geopos", -2, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new("geosearch", -7, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        Keys::FIRST_TWO,
        backend_only,
    ),
    CommandSpec::new("georadius_ro", -6, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new(
        "georadiusbymember_ro",
        -5,
        READONLY,
        Keys::FIRST,
        backend_only,
    ),
    CommandSpec::new("lcs", -3, READONLY, Keys::FIRST_TWO, backend_only),
    CommandSpec::new("dump", 2, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new("restore", -4, WRITE | DENYOOM, Keys::FIRST, backend_only),
];

/// The spec of a command the proxy forwards to the backends although the server role lacks it, by name.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|c| name.eq_ignore_ascii_case(c.name.as_bytes()))
}
