//! Generic key commands: DEL, EXISTS, TYPE, expiry, RENAME, SCAN ...

use super::{flag::*, CmdResult, CommandSpec, Ctx, Keys};
use crate::protocol::Argv;

const ALL_KEYS: Keys = Keys::Range {
    first: 1,
    last: -1,
    step: 1,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, ALL_KEYS, del),
    CommandSpec::new("exists", -2, READONLY | FAST, ALL_KEYS, exists),
];

fn del(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut n = 0;
    for key in argv.iter_from(1) {
        let now = ctx.now;
        n += ctx.db(key).remove(key, now).is_some() as i64;
    }
    ctx.out.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut n = 0;
    for key in argv.iter_from(1) {
        let now = ctx.now;
        n += ctx.db(key).contains(key, now) as i64;
    }
    ctx.out.int(n);
    Ok(())
}
