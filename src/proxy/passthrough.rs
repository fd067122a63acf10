//! Commands the server role does not implement but Redis backends do (bitmaps, HyperLogLog, geo, LCS, DUMP /
//! RESTORE): the proxy knows only where their keys are, from Redis 7.2's key specs, and forwards them like any
//! keyed command, so a user of the proxy over Redis keeps them (as through twemproxy). Over ringkv backends they get
//! the backend's "unknown command". Keys on several backends get the proxy's cross-backend error, never a partial
//! answer. SORT and GEORADIUS(BYMEMBER) go by their key too, except in the forms whose options name more keys, which
//! may live on other backends ([`refusal`]): SORT's STORE and its BY/GET patterns, GEORADIUS's STORE/STOREDIST.

use crate::cmd::args;
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
    CommandSpec::new("sort", -2, WRITE | DENYOOM, Keys::FIRST, backend_only),
    CommandSpec::new("sort_ro", -2, READONLY, Keys::FIRST, backend_only),
    CommandSpec::new("georadius", -6, WRITE | DENYOOM, Keys::FIRST, backend_only),
    CommandSpec::new(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
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

/// Why the proxy refuses this form of a passthrough command: an option that names other keys. SORT's options are
/// read as Redis's `sortCommand` reads them (LIMIT takes two values, BY, GET and STORE one); its BY and GET patterns
/// read the keys they name when they hold a `*` (`BY nosort` and `GET #` read none), STORE writes one.
/// GEORADIUS's options follow its five fixed arguments (GEORADIUSBYMEMBER's four); STORE and STOREDIST write a key.
pub fn refusal(argv: Argv<'_>) -> Option<String> {
    let name = String::from_utf8_lossy(argv.get(0)).to_ascii_uppercase();
    let reads_keys =
        |i: usize| i < argv.len() && argv.get(i).contains(&b'*') && argv.get(i) != b"#";
    let (mut i, sort) = match name.as_str() {
        "SORT" | "SORT_RO" => (2, true),
        "GEORADIUS" => (6, false),
        "GEORADIUSBYMEMBER" => (5, false),
        _ => return None,
    };
    while i < argv.len() {
        let arg = argv.get(i);
        let names_keys = if sort {
            args::is(arg, "store")
                || ((args::is(arg, "by") || args::is(arg, "get")) && reads_keys(i + 1))
        } else {
            args::is(arg, "store") || args::is(arg, "storedist")
        };
        if names_keys {
            let option = String::from_utf8_lossy(arg).to_ascii_uppercase();
            return Some(format!(
                "ERR {name} with {option} names keys the proxy cannot place: not supported by the proxy"
            ));
        }
        i += if !sort {
            1
        } else if args::is(arg, "limit") {
            3
        } else if ["by", "get", "store"].iter().any(|o| args::is(arg, o)) {
            2
        } else {
            1
        };
    }
    None
}
