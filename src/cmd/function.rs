//! Functions (Redis 7): FCALL, FCALL_RO and FUNCTION LOAD / DELETE / FLUSH / LIST / STATS / KILL / DUMP / RESTORE /
//! HELP.
//!
//! A library is loaded once for the server ([`crate::script::function`]) and its functions run on the same engine as
//! EVAL scripts ([`crate::script::run`]): FCALL declares its keys as EVAL does (`numkeys` form), so the dispatcher
//! locks their shards, and a function that reaches other keys is handled as such a script is.

use super::{args, flag::*, reply_help, script, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::glob;
use crate::protocol::Argv;
use crate::script::function::RestorePolicy;
use crate::script::{self as engine, Invocation, Source, BUSY_SCRIPT};

const FCALL_KEYS: Keys = Keys::NumKeys { at: 2, step: 1 };

const FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("delete", 3, NOSCRIPT | WRITE, Keys::None, function_delete),
    CommandSpec::new("dump", 2, NOSCRIPT, Keys::None, function_dump),
    CommandSpec::new("flush", -2, NOSCRIPT | WRITE, Keys::None, function_flush),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, function_help),
    CommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY, Keys::None, function_kill),
    CommandSpec::new("list", -2, NOSCRIPT, Keys::None, function_list),
    CommandSpec::new(
        "load",
        -3,
        NOSCRIPT | WRITE | DENYOOM,
        Keys::None,
        function_load,
    ),
    CommandSpec::new(
        "restore",
        -3,
        NOSCRIPT | WRITE | DENYOOM,
        Keys::None,
        function_restore,
    ),
    CommandSpec::new(
        "stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        Keys::None,
        function_stats,
    ),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "fcall",
        -3,
        NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE,
        FCALL_KEYS,
        fcall,
    ),
    CommandSpec::new(
        "fcall_ro",
        -3,
        NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY,
        FCALL_KEYS,
        fcall_ro,
    ),
    CommandSpec::container("function", 0, FUNCTION_SUBCOMMANDS),
];

fn fcall(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    call(ctx, argv, false)
}

fn fcall_ro(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    call(ctx, argv, true)
}

/// `FCALL function numkeys key... arg...`: Redis looks the function up before it reads `numkeys`, so an unknown
/// function is reported first.
fn call(ctx: &mut Ctx, argv: Argv, read_only: bool) -> CmdResult {
    let problem = match args::parse_i64(argv.get(2)) {
        None => Some("Bad number of keys provided"),
        Some(n) if n > (argv.len() - 3) as i64 => {
            Some("Number of keys can't be greater than number of args")
        }
        Some(n) if n < 0 => Some("Number of keys can't be negative"),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        let exists = ctx.server.scripts.functions.exists(argv.get(1));
        return Err(CmdError::err(if exists {
            problem
        } else {
            "Function not found"
        }));
    }
    let invocation = Invocation {
        source: Source::Function(argv.get(1)),
        argv,
        numkeys: args::parse_i64(argv.get(2)).unwrap_or(0) as usize,
        read_only,
    };
    engine::run(ctx, invocation)
}

/// `FUNCTION LOAD [REPLACE] code`.
fn function_load(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let code_at = argv.len() - 1;
    let mut replace = false;
    for opt in argv.iter_from(2).take(code_at - 2) {
        if !args::is(opt, "replace") {
            return Err(CmdError::err(format!(
                "Unknown option given: {}",
                String::from_utf8_lossy(args::c_str(opt))
            )));
        }
        replace = true;
    }
    if code_at < 2 {
        return Err(CmdError::err("Function code is missing"));
    }
    let name = engine::load_library(&ctx.server.scripts, argv.get(code_at), replace)?;
    ctx.out.bulk(name.as_bytes());
    Ok(())
}

fn function_delete(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    if !ctx.server.scripts.functions.delete(argv.get(2)) {
        return Err(CmdError::err("Library not found"));
    }
    ctx.out.ok();
    Ok(())
}

fn function_flush(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    match argv.len() {
        2 => {}
        3 if args::is(argv.get(2), "sync") || args::is(argv.get(2), "async") => {}
        3 => {
            return Err(CmdError::err(
                "FUNCTION FLUSH only supports SYNC|ASYNC option",
            ))
        }
        _ => return Err(CmdError::subcommand_syntax("FUNCTION", argv.get(1))),
    }
    ctx.server.scripts.functions.flush();
    ctx.out.ok();
    Ok(())
}

/// `FUNCTION DUMP`: every library's code in Redis's payload format ([`engine::dump`]).
fn function_dump(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let (_, libraries) = ctx.server.scripts.functions.snapshot();
    let payload = engine::dump::dump(libraries.iter().map(|l| &*l.code));
    ctx.out.bulk(&payload);
    Ok(())
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]` (APPEND by default): the policy is read before the payload's
/// footer is checked, as Redis does.
fn function_restore(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    if argv.len() > 4 {
        return Err(CmdError::subcommand_syntax("FUNCTION", argv.get(1)));
    }
    let policy = match argv.len() {
        3 => RestorePolicy::Append,
        _ if args::is(argv.get(3), "append") => RestorePolicy::Append,
        _ if args::is(argv.get(3), "replace") => RestorePolicy::Replace,
        _ if args::is(argv.get(3), "flush") => RestorePolicy::Flush,
        _ => {
            return Err(CmdError::err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ))
        }
    };
    let payload = engine::dump::Payload::open(argv.get(2)).map_err(CmdError::err)?;
    engine::restore_libraries(&ctx.server.scripts, payload, policy)?;
    ctx.out.ok();
    Ok(())
}

/// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`: libraries by name, functions in the order registered.
fn function_list(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < argv.len() {
        let arg = argv.get(i);
        if !with_code && args::is(arg, "withcode") {
            with_code = true;
        } else if pattern.is_none() && args::is(arg, "libraryname") {
            if i + 1 >= argv.len() {
                return Err(CmdError::err("library name argument was not given"));
            }
            i += 1;
            pattern = Some(argv.get(i));
        } else {
            return Err(CmdError::err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(args::c_str(arg))
            )));
        }
        i += 1;
    }
    let (_, libraries) = ctx.server.scripts.functions.snapshot();
    let shown: Vec<_> = libraries
        .iter()
        .filter(|l| pattern.is_none_or(|p| glob::matches(p, l.name.as_bytes(), false)))
        .collect();
    let out = &mut *ctx.out;
    out.array(shown.len());
    for library in shown {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(library.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(library.functions.len());
        for f in &library.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.description {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = f.flags.names().collect();
            out.set(names.len());
            for name in names {
                out.simple(name);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&library.code);
        }
    }
    Ok(())
}

/// `FUNCTION STATS`: the function running past the busy threshold (an EVAL script there is answered BUSY, as in
/// Redis), and the libraries and functions of the one engine.
fn function_stats(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let busy = ctx
        .server
        .scripts
        .busy_run(ctx.server.settings.busy_reply_threshold());
    if busy.as_ref().is_some_and(|run| !run.function) {
        return Err(CmdError::Coded(BUSY_SCRIPT.into()));
    }
    let (libraries, functions) = ctx.server.scripts.functions.counts();
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match busy {
        None => out.null(),
        Some(run) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(run.name.as_bytes());
            out.bulk(b"command");
            out.array(run.command.len());
            for arg in &run.command {
                out.bulk(arg);
            }
            out.bulk(b"duration_ms");
            out.int(run.duration_ms as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libraries as i64);
    out.bulk(b"functions_count");
    out.int(functions as i64);
    Ok(())
}

fn function_kill(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    script::kill(ctx, true)
}

fn function_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::cmd::testing::TestClient;
    use crate::script::dump;

    fn load(c: &mut TestClient, code: &str) -> String {
        c.run(&["FUNCTION", "LOAD", code])
    }

    #[test]
    fn a_loaded_function_runs_with_its_keys_and_arguments_and_locks_like_a_script() {
        let mut c = TestClient::new();
        let code = "#!lua name=lib\nredis.register_function('incr2', function(keys, args) \
                    return redis.call('incrby', keys[1], args[1] * 2) end)";
        assert_eq!(load(&mut c, code), "$3\r\nlib\r\n");
        assert_eq!(c.cmd("FCALL incr2 1 n 5"), ":10\r\n");
        assert_eq!(c.cmd("FCALL INCR2 1 n 1"), ":12\r\n");
        assert_eq!(c.cmd("GET n"), "$2\r\n12\r\n");
        // Another client (on another thread in the server) finds it too.
        let server = c.server.clone();
        let other = std::thread::spawn(move || {
            TestClient::on(server).run(&["FCALL", "incr2", "1", "n", "4"])
        });
        assert_eq!(other.join().unwrap(), ":20\r\n");
        assert_eq!(c.cmd("FUNCTION DELETE lib"), "+OK\r\n");
        assert_eq!(c.cmd("FCALL incr2 1 n 1"), "-ERR Function not found\r\n");
    }

    #[test]
    fn a_replaced_library_takes_effect_for_the_next_call() {
        let mut c = TestClient::new();
        load(
            &mut c,
            "#!lua name=v\nredis.register_function('ver', function() return 1 end)",
        );
        assert_eq!(c.cmd("FCALL ver 0"), ":1\r\n");
        let two = "#!lua name=v\nredis.register_function('ver', function() return 2 end)";
        assert_eq!(c.run(&["FUNCTION", "LOAD", "REPLACE", two]), "$1\r\nv\r\n");
        assert_eq!(c.cmd("FCALL ver 0"), ":2\r\n");
        assert_eq!(c.cmd("FUNCTION FLUSH"), "+OK\r\n");
        assert_eq!(c.cmd("FCALL ver 0"), "-ERR Function not found\r\n");
    }

    #[test]
    fn a_busy_function_is_stopped_by_function_kill_only_and_shows_in_stats() {
        let mut c = TestClient::new();
        c.server
            .settings
            .busy_reply_threshold
            .store(50, Ordering::Relaxed);
        load(
            &mut c,
            "#!lua name=spin\nredis.register_function('spin', function() while true do end end)",
        );
        assert!(c
            .cmd("FUNCTION STATS")
            .contains("running_script\r\n$-1\r\n"));
        let server = c.server.clone();
        let runner =
            std::thread::spawn(move || TestClient::on(server).run(&["FCALL", "spin", "1", "k"]));
        let mut stats = String::new();
        let busy = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            stats = c.cmd("FUNCTION STATS");
            stats.contains("duration_ms")
        });
        assert!(busy, "{stats}");
        assert!(
            stats.contains("$4\r\nname\r\n$4\r\nspin\r\n$7\r\ncommand\r\n*4\r\n$5\r\nFCALL\r\n$4\r\nspin\r\n$1\r\n1\r\n$1\r\nk\r\n"),
            "{stats}"
        );
        assert_eq!(
            c.cmd("GET k"),
            "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"
        );
        assert_eq!(
            c.cmd("SCRIPT KILL"),
            "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n"
        );
        assert_eq!(c.cmd("FUNCTION KILL"), "+OK\r\n");
        let reply = runner.join().unwrap();
        assert!(
            reply.starts_with(
                "-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."
            ),
            "{reply}"
        );
        // And FUNCTION KILL leaves a busy EVAL script alone.
        let server = c.server.clone();
        let runner = std::thread::spawn(move || {
            TestClient::on(server).run(&["EVAL", "while true do end", "0"])
        });
        let refused = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            c.cmd("FUNCTION KILL")
                == "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
        });
        assert!(refused);
        assert!(c.cmd("FUNCTION STATS").starts_with("-BUSY"));
        assert_eq!(c.cmd("SCRIPT KILL"), "+OK\r\n");
        runner.join().unwrap();
    }

    /// The payload of a bulk reply.
    fn bulk_payload(reply: &[u8]) -> Vec<u8> {
        let start = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
        reply[start..reply.len() - 2].to_vec()
    }

    fn library(name: &str, function: &str) -> String {
        format!("#!lua name={name}\nredis.register_function('{function}', function() return '{name}' end)")
    }

    #[test]
    fn a_dump_restores_under_each_policy_with_redis_errors() {
        let mut c = TestClient::new();
        load(&mut c, &library("a", "fa"));
        load(&mut c, &library("b", "fb"));
        let dump = bulk_payload(&c.run_bytes(&["FUNCTION", "DUMP"]));
        let restore = |c: &mut TestClient, policy: &[&str]| {
            let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", &dump];
            args.extend(policy.iter().map(|p| p.as_bytes()));
            c.run(&args)
        };
        assert_eq!(restore(&mut c, &[]), "-ERR Library a already exists\r\n");
        assert_eq!(
            restore(&mut c, &["APPEND"]),
            "-ERR Library a already exists\r\n"
        );
        assert_eq!(restore(&mut c, &["replace"]), "+OK\r\n");
        assert_eq!(c.cmd("FUNCTION DELETE b"), "+OK\r\n");
        load(&mut c, &library("c", "fb"));
        // REPLACE replaces library a and b's name is free, but fb belongs to library c.
        assert_eq!(
            restore(&mut c, &["REPLACE"]),
            "-ERR Function fb already exists\r\n"
        );
        assert_eq!(c.cmd("FCALL fb 0"), "$1\r\nc\r\n");
        assert_eq!(restore(&mut c, &["flush"]), "+OK\r\n");
        assert_eq!(c.cmd("FCALL fb 0"), "$1\r\nb\r\n");
        assert_eq!(c.cmd("FCALL fa 0"), "$1\r\na\r\n");
        assert_eq!(bulk_payload(&c.run_bytes(&["FUNCTION", "DUMP"])), dump);
        assert_eq!(
            restore(&mut c, &["merge"]),
            "-ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.\r\n"
        );
        assert_eq!(
            restore(&mut c, &["flush", "x"]),
            "-ERR unknown subcommand or wrong number of arguments for 'RESTORE'. Try FUNCTION HELP.\r\n"
        );
        assert_eq!(
            c.cmd("FUNCTION RESTORE x"),
            "-ERR DUMP payload version or checksum are wrong\r\n"
        );
        c.cmd("FUNCTION FLUSH");
        assert_eq!(
            c.run_bytes(&["FUNCTION", "DUMP"]),
            b"$10\r\n\n\0]\x9b\\@\x0f\x7f\xa2\xda\r\n"
        );
    }

    #[test]
    fn a_restore_that_fails_on_any_library_changes_nothing() {
        let mut c = TestClient::new();
        load(&mut c, &library("a", "fa"));
        let restore = |c: &mut TestClient, codes: &[&[u8]], policy: &str| {
            let payload = dump::dump(codes.iter().copied());
            c.run(&[&b"FUNCTION"[..], b"RESTORE", &payload, policy.as_bytes()])
        };
        let z = library("z", "fz");
        let broken: &[&[u8]] = &[z.as_bytes(), b"#!lua name=bad\nreturn 1 +"];
        let y = library("y", "FA");
        let colliding: &[&[u8]] = &[z.as_bytes(), y.as_bytes()];
        for policy in ["FLUSH", "APPEND", "REPLACE"] {
            assert_eq!(
                restore(&mut c, broken, policy),
                "-ERR Error compiling function: user_function:2: unexpected symbol near '<eof>'\r\n"
            );
            if policy != "FLUSH" {
                assert_eq!(
                    restore(&mut c, colliding, policy),
                    "-ERR Function FA already exists\r\n"
                );
            }
            assert_eq!(c.cmd("FCALL fa 0"), "$1\r\na\r\n");
            assert_eq!(c.cmd("FCALL fz 0"), "-ERR Function not found\r\n");
        }
        assert_eq!(restore(&mut c, colliding, "FLUSH"), "+OK\r\n");
        assert_eq!(c.cmd("FCALL fa 0"), "$1\r\ny\r\n");
        assert_eq!(c.cmd("FCALL fz 0"), "$1\r\nz\r\n");
    }

    #[test]
    fn function_help_lists_dump_and_restore() {
        let mut c = TestClient::new();
        let help = c.cmd("FUNCTION HELP");
        assert!(help.starts_with("*39\r\n"), "{help}");
        assert!(help.contains("+DUMP\r\n+    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command\r\n+RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]\r\n"));
    }
}
