//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD / EXISTS / FLUSH / KILL / HELP.
//!
//! The dispatcher locks the shards of the declared KEYS (`numkeys` form) before the handler runs; the script engine
//! ([`crate::script`]) trades them for every shard when the script is new or known to reach undeclared keys, adds
//! shards for undeclared keys as a script reaches them, and records the write commands the script ran in
//! `client.executed`, so WATCHes are spoiled and blocked clients served once the script is done.

use super::{args, flag::*, reply_help, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::protocol::Argv;
use crate::script::{self, Invocation, KillOutcome, Source, BUSY_FUNCTION, BUSY_SCRIPT};

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

fn eval(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, Source::Body(argv.get(1)), false)
}

fn eval_ro(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, Source::Body(argv.get(1)), true)
}

fn evalsha(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, sha_source(argv)?, false)
}

fn evalsha_ro(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    run(ctx, argv, sha_source(argv)?, true)
}

/// EVALSHA's script: as Redis, a SHA1 that is not 40 characters long is NOSCRIPT at once, before numkeys is read.
fn sha_source(argv: Argv) -> Result<Source, CmdError> {
    match argv.get(1) {
        sha if sha.len() == 40 => Ok(Source::Sha(sha)),
        _ => Err(script::noscript()),
    }
}

/// Parses `script numkeys key... arg...` with Redis's errors and runs the script.
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
    let invocation = Invocation {
        source,
        argv,
        numkeys: numkeys as usize,
        read_only,
    };
    script::run(ctx, invocation)
}

fn script_load(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let sha = script::load(&ctx.server.scripts, argv.get(2))?;
    ctx.out.bulk(&sha);
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
    kill(ctx, false)
}

/// SCRIPT KILL (`functions` false) and FUNCTION KILL: each stops only runs of its own kind.
pub(super) fn kill(ctx: &mut Ctx, functions: bool) -> CmdResult {
    let busy = ctx.server.settings.busy_reply_threshold();
    match ctx.server.scripts.kill(busy, functions) {
        KillOutcome::Killed => ctx.out.ok(),
        KillOutcome::OtherKind => {
            let busy = if functions { BUSY_SCRIPT } else { BUSY_FUNCTION };
            return Err(CmdError::Coded(busy.into()));
        }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::cmd::testing::TestClient;

    fn eval(c: &mut TestClient, script: &str, rest: &[&str]) -> String {
        let mut args = vec!["EVAL", script];
        args.extend_from_slice(rest);
        c.run(&args)
    }

    #[test]
    fn numkeys_errors_and_noscript_read_like_redis() {
        let mut c = TestClient::new();
        assert_eq!(
            eval(&mut c, "return 1", &["2", "a"]),
            "-ERR Number of keys can't be greater than number of args\r\n"
        );
        assert_eq!(
            eval(&mut c, "return 1", &["-1"]),
            "-ERR Number of keys can't be negative\r\n"
        );
        assert_eq!(
            eval(&mut c, "return 1", &["x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            c.cmd("EVALSHA ffffffffffffffffffffffffffffffffffffffff 0"),
            "-NOSCRIPT No matching script. Please use EVAL.\r\n"
        );
    }

    #[test]
    fn eval_caches_the_script_for_evalsha_until_flush() {
        let mut c = TestClient::new();
        let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"; // sha1("return 1")
        assert_eq!(c.cmd(&format!("SCRIPT EXISTS {sha}")), "*1\r\n:0\r\n");
        assert_eq!(eval(&mut c, "return 1", &["0"]), ":1\r\n");
        assert_eq!(c.cmd(&format!("EVALSHA {sha} 0")), ":1\r\n");
        assert_eq!(
            c.cmd(&format!("EVALSHA {} 0", sha.to_uppercase())),
            ":1\r\n"
        );
        assert_eq!(
            c.cmd(&format!("SCRIPT EXISTS {sha} abc")),
            "*2\r\n:1\r\n:0\r\n"
        );
        assert_eq!(
            c.cmd("SCRIPT FLUSH bogus"),
            "-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"
        );
        assert_eq!(c.cmd("SCRIPT FLUSH ASYNC"), "+OK\r\n");
        assert!(c.cmd(&format!("EVALSHA {sha} 0")).starts_with("-NOSCRIPT"));
        assert_eq!(
            c.run(&["SCRIPT", "LOAD", "return 2"]),
            "$40\r\n7f923f79fe76194c868d7e1d0820de36700eb649\r\n"
        );
        assert_eq!(
            c.run(&["SCRIPT", "LOAD", "return ("]),
            "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n"
        );
    }

    #[test]
    fn the_sandbox_refuses_globals_and_missing_libraries() {
        let mut c = TestClient::new();
        assert_eq!(
            eval(&mut c, "x = 1", &["0"]),
            "-ERR user_script:1: Attempt to modify a readonly table script: \
             34bce5f775de97f557a34088509c8bfe1ea17e52, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval(&mut c, "return x", &["0"]),
            "-ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: \
             03c387736bb5cc009ff35151572cee04677aa374, on @user_script:1.\r\n"
        );
        for lib in [
            "os", "io", "require", "dofile", "loadfile", "debug", "print", "getfenv",
        ] {
            let reply = eval(&mut c, &format!("return {lib}"), &["0"]);
            assert!(
                reply.contains(&format!("nonexistent global variable '{lib}'")),
                "{lib}: {reply}"
            );
        }
        assert!(eval(&mut c, "string.x = 1", &["0"]).contains("Attempt to modify a readonly table"));
        assert!(eval(&mut c, "rawset(_G, 'x', 1)", &["0"])
            .starts_with("-ERR Attempt to modify a readonly table script:"));
        assert!(eval(&mut c, "setmetatable(_G, nil)", &["0"]).contains("protected metatable"));
        // loadstring exists (as in Redis 7.0) and its chunks are sandboxed too.
        assert_eq!(
            eval(&mut c, "return loadstring('return 1')()", &["0"]),
            ":1\r\n"
        );
        assert!(eval(&mut c, "loadstring('y = 1')()", &["0"])
            .contains("Attempt to modify a readonly table"));
        // Nothing a script did is visible to the next one, not even through the shared string metatable.
        assert!(eval(&mut c, "return y", &["0"]).contains("nonexistent global variable 'y'"));
        assert!(eval(&mut c, "getmetatable('').__index = {}", &["0"])
            .contains("Attempt to modify a readonly table"));
        assert_eq!(eval(&mut c, "return ('a'):upper()", &["0"]), "$1\r\nA\r\n");
    }

    #[test]
    fn redis_call_errors_carry_the_script_position() {
        let mut c = TestClient::new();
        c.cmd("SET s abc");
        assert_eq!(
            eval(&mut c, "return redis.call('incr', KEYS[1])", &["1", "s"]),
            "-ERR value is not an integer or out of range script: \
             2bab3b661081db58bd2341920e0ba7cf5dc77b25, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.pcall('incr', KEYS[1])", &["1", "s"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.call()", &["0"]),
            "-ERR Please specify at least one argument for this redis lib call script: \
             0a907e1429221a4d85516cab7fd219a82a9439d8, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.call('nope')", &["0"]),
            "-ERR Unknown Redis command called from script script: \
             f01f0776df71cc5b400c2268135aa7f30dce2e53, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.call('multi')", &["0"]),
            "-ERR This Redis command is not allowed from script script: \
             c329a1a294be6bf95b44144f7502610661ae925a, on @user_script:1.\r\n"
        );
        assert_eq!(
            eval(&mut c, "\n\nerror('boom')", &["0"]),
            format!(
                "-ERR user_script:3: boom script: {}, on @user_script:3.\r\n",
                crate::script::sha1_hex(b"\n\nerror('boom')")
            )
        );
        assert!(c
            .run(&["EVAL_RO", "return redis.call('set','a','b')", "0"])
            .starts_with("-ERR Write commands are not allowed from read-only scripts. script:"));
    }

    #[test]
    fn script_helpers_behave_like_redis() {
        let mut c = TestClient::new();
        assert_eq!(
            eval(&mut c, "return redis.error_reply('boom')", &["0"]),
            "-ERR boom\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.error_reply('-X y')", &["0"]),
            "-X y\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.status_reply('fine')", &["0"]),
            "+fine\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.sha1hex('')", &["0"]),
            "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.replicate_commands()", &["0"]),
            ":1\r\n"
        );
        assert_eq!(
            eval(
                &mut c,
                "redis.log(redis.LOG_WARNING, 'hi') return redis.REPL_ALL",
                &["0"]
            ),
            ":3\r\n"
        );
        assert_eq!(
            eval(
                &mut c,
                "redis.setresp(3) return redis.call('get', 'missing') == nil",
                &["0"]
            ),
            ":1\r\n"
        );
        assert_eq!(
            eval(&mut c, "return redis.call('get', 'missing')", &["0"]),
            "$-1\r\n"
        );
        assert!(eval(&mut c, "return redis.setresp(4)", &["0"])
            .starts_with("-ERR RESP version must be 2 or 3. script:"));
        // A caught library error is the plain string a C library raises.
        assert_eq!(
            eval(
                &mut c,
                "local ok, e = pcall(cjson.decode, '{') return e",
                &["0"]
            ),
            "$57\r\nExpected object key string but found T_END at character 2\r\n"
        );
    }

    #[test]
    fn blocking_commands_in_a_script_answer_at_once() {
        let mut c = TestClient::new();
        assert_eq!(
            eval(&mut c, "return redis.call('blpop', 'empty', 0)", &["0"]),
            "$-1\r\n"
        );
        c.cmd("RPUSH full x");
        assert_eq!(
            eval(&mut c, "return redis.call('blpop', 'full', 0)", &["0"]),
            "*2\r\n$4\r\nfull\r\n$1\r\nx\r\n"
        );
    }

    #[test]
    fn select_inside_a_script_does_not_change_the_callers_database() {
        let mut c = TestClient::new();
        assert_eq!(
            eval(
                &mut c,
                "redis.call('select', 3) return redis.call('set', 'k', 'v')",
                &["0"]
            ),
            "+OK\r\n"
        );
        assert_eq!(c.cmd("EXISTS k"), ":0\r\n");
        c.cmd("SELECT 3");
        assert_eq!(c.cmd("GET k"), "$1\r\nv\r\n");
    }

    #[test]
    fn a_script_locks_every_shard_until_a_run_shows_it_stays_on_its_declared_shards() {
        let mut c = TestClient::new();
        let confined = "return redis.call('set', KEYS[1], 1)";
        let confined_sha = crate::script::sha1_of(confined.as_bytes());
        assert!(c.server.scripts.locks_all(&confined_sha));
        assert_eq!(eval(&mut c, confined, &["1", "k"]), "+OK\r\n");
        assert!(!c.server.scripts.locks_all(&confined_sha));
        // Keys named inside the script, on many shards: it keeps locking every shard.
        let straying = "for i = 1, 64 do redis.call('set', 'k' .. i, i) end \
                        local s = 0 for i = 1, 64 do s = s + redis.call('get', 'k' .. i) end return s";
        assert_eq!(eval(&mut c, straying, &["0"]), ":2080\r\n");
        let straying_sha = crate::script::sha1_of(straying.as_bytes());
        assert!(c.server.scripts.locks_all(&straying_sha));
        assert_eq!(eval(&mut c, straying, &["0"]), ":2080\r\n");
        c.cmd("SCRIPT FLUSH");
        assert!(c.server.scripts.locks_all(&confined_sha));
    }

    #[test]
    fn a_confined_script_reaching_a_busy_lower_shard_waits_then_fails_and_locks_every_shard_after()
    {
        let mut c = TestClient::new();
        let server = c.server.clone();
        let store = &server.store;
        let on_shard = |shard: usize| {
            (0..1000)
                .map(|i| format!("x{i}"))
                .find(|k| store.shard_of(k.as_bytes()) == shard)
                .unwrap()
        };
        let (low, high) = (on_shard(0), on_shard(store.shard_count() - 1));
        let script = "return redis.call('set', ARGV[1], 1)";
        let sha = crate::script::sha1_of(script.as_bytes());
        // A first run that stays on the declared shard: later runs lock only that one.
        assert_eq!(c.run(&["EVAL", script, "1", &high, &high]), "+OK\r\n");
        assert!(!c.server.scripts.locks_all(&sha));
        // Then a key on a shard held by another client, below the held one: wait, then fail.
        let guard = store.lock_shard(0);
        let reply = c.run(&["EVAL", script, "1", &high, &low]);
        assert!(
            reply.starts_with("-ERR Script accessed a key not declared in KEYS"),
            "{reply}"
        );
        assert!(c.server.scripts.locks_all(&sha));
        drop(guard);
        assert_eq!(c.run(&["EVAL", script, "1", &high, &low]), "+OK\r\n");
    }

    #[test]
    fn script_kill_stops_a_read_only_script_past_the_threshold() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("SCRIPT KILL"),
            "-NOTBUSY No scripts in execution right now.\r\n"
        );
        c.server
            .settings
            .busy_reply_threshold
            .store(50, Ordering::Relaxed);
        let server = c.server.clone();
        let runner = std::thread::spawn(move || {
            let mut r = TestClient::on(server);
            r.run(&["EVAL", "while true do end", "0"])
        });
        let killed = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            c.cmd("SCRIPT KILL") == "+OK\r\n"
        });
        assert!(killed);
        let reply = runner.join().unwrap();
        assert!(
            reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script:"),
            "{reply}"
        );
        // A script that wrote cannot be killed: it runs to its end.
        let server = c.server.clone();
        let runner = std::thread::spawn(move || {
            let mut r = TestClient::on(server);
            r.run(&[
                "EVAL",
                "redis.call('set', KEYS[1], 1) for i = 1, 3e7 do end return 1",
                "1",
                "w",
            ])
        });
        let unkillable = (0..400).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            c.cmd("SCRIPT KILL").starts_with("-UNKILLABLE")
        });
        assert!(unkillable);
        // FUNCTION KILL too: that it wrote is said before that it is no function, as in Redis.
        assert!(c.cmd("FUNCTION KILL").starts_with("-UNKILLABLE"));
        assert_eq!(runner.join().unwrap(), ":1\r\n");
    }
}
