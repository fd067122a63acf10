//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD / EXISTS / FLUSH / KILL / HELP.
//!
//! The dispatcher locks the shards of the declared KEYS (`numkeys` form) before the handler runs; the script engine
//! ([`crate::script`]) adds shards for undeclared keys as the script reaches them, and records the write commands the
//! script ran in `client.executed`, so WATCHes are spoiled and blocked clients served once the script is done.

use super::{args, flag::*, reply_help, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::protocol::Argv;
use crate::script::{self, Invocation, KillOutcome};

const SCRIPT_KEYS: Keys = Keys::NumKeys { at: 2, step: 1 };

const SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("exists", -3, NOSCRIPT, Keys::None, script_exists),
    CommandSpec::new("flush", -2, NOSCRIPT, Keys::None, script_flush),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, script_help),
    CommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY, Keys::None, script_kill),
    CommandSpec::new("load", 3, NOSCRIPT | STALE, Keys::None, script_load),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "eval",
        -3,
        NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE,
        SCRIPT_KEYS,
        eval,
    ),
    CommandSpec::new(
        "eval_ro",
        -3,
        NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY,
        SCRIPT_KEYS,
        eval_ro,
    ),
    CommandSpec::new(
        "evalsha",
        -3,
        NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE,
        SCRIPT_KEYS,
        evalsha,
    ),
    CommandSpec::new(
        "evalsha_ro",
        -3,
        NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY,
        SCRIPT_KEYS,
        evalsha_ro,
    ),
    CommandSpec::container("script", 0, SCRIPT_SUBCOMMANDS),
];

/// Which script a command names.
enum Source {
    Body,
    Sha,
}

fn eval(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, Source::Body, false)
}

fn eval_ro(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, Source::Body, true)
}

fn evalsha(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, Source::Sha, false)
}

fn evalsha_ro(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, Source::Sha, true)
}

/// Parses `script numkeys key... arg...` with Redis's errors, finds or caches the body, and runs it.
fn run(ctx: &mut Ctx, argv: Argv, source: Source, read_only: bool) -> CmdResult {
    let numkeys = args::parse_i64(argv.get(2)).ok_or(CmdError::NotInteger)?;
    if numkeys > (argv.len() - 3) as i64 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let scripts = &ctx.server.scripts;
    let (sha, body) = match source {
        Source::Body => {
            let body = argv.get(1);
            (scripts.store(body), body.into())
        }
        Source::Sha => {
            let body = scripts.get(argv.get(1)).ok_or_else(|| {
                CmdError::Coded("NOSCRIPT No matching script. Please use EVAL.".into())
            })?;
            (
                String::from_utf8_lossy(argv.get(1)).to_ascii_lowercase(),
                body,
            )
        }
    };
    let split = 3 + numkeys as usize;
    let invocation = Invocation {
        sha: &sha,
        body: &body,
        keys: (3..split).map(|i| argv.get(i)).collect(),
        args: (split..argv.len()).map(|i| argv.get(i)).collect(),
        read_only,
    };
    script::run(ctx, invocation)
}

fn script_load(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let body = argv.get(2);
    let sha = script::sha1_hex(body);
    script::compile(&sha, body)?;
    ctx.server.scripts.store(body);
    ctx.out.bulk(sha.as_bytes());
    Ok(())
}

fn script_exists(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    ctx.out.array(argv.len() - 2);
    for sha in argv.iter_from(2) {
        let found = ctx.server.scripts.get(sha).is_some();
        ctx.out.int(found as i64);
    }
    Ok(())
}

fn script_flush(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let valid = match argv.len() {
        2 => true,
        3 => args::is(argv.get(2), "sync") || args::is(argv.get(2), "async"),
        _ => false,
    };
    if !valid {
        return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    ctx.server.scripts.flush();
    ctx.out.ok();
    Ok(())
}

fn script_kill(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let busy = ctx.server.settings.busy_reply_threshold();
    match ctx.server.scripts.kill(busy) {
        KillOutcome::Killed => ctx.out.ok(),
        KillOutcome::NotBusy => {
            return Err(CmdError::Coded(
                "NOTBUSY No scripts in execution right now.".into(),
            ))
        }
        KillOutcome::Unkillable => {
            return Err(CmdError::Coded(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either \
                 wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."
                    .into(),
            ))
        }
    }
    Ok(())
}

fn script_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "SCRIPT",
        &[
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
    Ok(())
}
