//! Server and connection commands through the real binary: redis-cli and redis-benchmark work against ringkv,
//! SHUTDOWN stops the process, CLIENT KILL closes the other connection, maxclients refuses the extra client.
//!
//! The tests that drive `redis-cli` / `redis-benchmark` skip when the tool is not installed, except under CI
//! (`CI=true`), where a missing tool is a failure.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{required_program, Server};

/// Runs `program args...` with `stdin` as its input and returns its output, failing after 60 seconds.
fn run(program: &PathBuf, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin)
        .expect("write stdin");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("tool finished in time")
        .expect("tool output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn redis_cli_interactive_session_runs_commands() {
    let Some(cli) = required_program("redis-cli") else {
        return;
    };
    let server = Server::start(&[]);
    let port = server.port.to_string();
    // No command arguments: redis-cli starts its REPL, which first asks COMMAND DOCS for its help table.
    let out = run(
        &cli,
        &["-p", &port],
        b"SET greeting hello\nGET greeting\nCLIENT SETNAME cli\nCLIENT GETNAME\nDBSIZE\n",
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "OK\nhello\nOK\ncli\n1\n");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn redis_cli_with_arguments_reads_info_and_config() {
    let Some(cli) = required_program("redis-cli") else {
        return;
    };
    let server = Server::start(&[]);
    let port = server.port.to_string();
    let info = run(&cli, &["-p", &port, "INFO", "server"], b"");
    let info = text(&info.stdout);
    assert!(info.contains("redis_version:7.2.4"), "{info}");
    assert!(info.contains(&format!("tcp_port:{port}")), "{info}");
    let save = run(&cli, &["-p", &port, "CONFIG", "GET", "save"], b"");
    assert_eq!(text(&save.stdout), "save\n\n");
}

#[test]
fn redis_cli_pipe_mode_gets_every_reply() {
    let Some(cli) = required_program("redis-cli") else {
        return;
    };
    let server = Server::start(&[]);
    let port = server.port.to_string();
    let mut input = Vec::new();
    for i in 0..500 {
        input.extend_from_slice(&common::encode(&["SET", &format!("k{i}"), "v"]));
    }
    let out = run(&cli, &["-p", &port, "--pipe"], &input);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report} {}", text(&out.stderr));
    assert!(report.contains("errors: 0, replies: 500"), "{report}");
    assert_eq!(server.raw().line("DBSIZE"), ":500\r\n");
}

#[test]
fn redis_benchmark_completes_without_errors() {
    let server = Server::start(&[]);
    common::redis_benchmark_runs_clean(server.port, &["set", "get", "incr", "mset"], 2000);
}

#[test]
fn shutdown_stops_the_process_without_a_reply() {
    let mut server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(
        c.line("SHUTDOWN ABORT"),
        "-ERR No shutdown in progress.\r\n"
    );
    c.send(&common::encode(&["SHUTDOWN", "NOSAVE"]));
    assert_eq!(c.read_to_close(), b"");
    assert!(server.wait_exit(Duration::from_secs(10)), "still running");
}

/// SHUTDOWN NOSAVE is the way out of a script that wrote and loops (SCRIPT KILL refuses it): the process ends even
/// though the script still holds its thread (dropping the runtime used to wait for it for ever).
#[test]
fn shutdown_nosave_ends_the_process_while_a_script_that_wrote_runs() {
    let mut server = Server::start(&["--busy-reply-threshold", "100"]);
    let mut runner = server.raw();
    runner.send_cmd(&[
        "EVAL",
        "redis.call('SET', KEYS[1], '1') while true do end",
        "1",
        "k",
    ]);
    let mut c = server.raw();
    let start = std::time::Instant::now();
    while !c.line("GET k").starts_with("-BUSY") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the script never got busy"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.line("SCRIPT KILL").starts_with("-UNKILLABLE"));
    // Only NOSAVE goes through while a script is busy, as in Redis.
    assert!(c.line("SHUTDOWN").starts_with("-BUSY"));
    c.send(&common::encode(&["SHUTDOWN", "NOSAVE"]));
    assert!(server.wait_exit(Duration::from_secs(10)), "still running");
}

/// SIGTERM, what a supervisor sends, ends the server as SHUTDOWN does: status 0 (not killed by the signal).
#[test]
fn sigterm_ends_the_server_with_status_zero() {
    let mut server = Server::start(&[]);
    assert_eq!(server.raw().line("PING"), "+PONG\r\n");
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn client_kill_closes_the_other_connection() {
    let server = Server::start(&[]);
    let mut killer = server.raw();
    let mut by_id = server.raw();
    let mut by_addr = server.raw();
    let id = text(&by_id.cmd(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim_end();
    assert_eq!(killer.line(&format!("CLIENT KILL ID {id}")), ":1\r\n");
    assert_eq!(by_id.read_to_close(), b"");

    // A reply proves the server has registered the connection.
    assert_eq!(by_addr.line("PING"), "+PONG\r\n");
    let addr = by_addr.stream.local_addr().expect("local addr").to_string();
    assert_eq!(killer.line(&format!("CLIENT KILL {addr}")), "+OK\r\n");
    assert_eq!(by_addr.read_to_close(), b"");
    assert_eq!(
        killer.line(&format!("CLIENT KILL {addr}")),
        "-ERR No such client\r\n"
    );
    assert_eq!(killer.line("PING"), "+PONG\r\n");
}

#[test]
fn client_kill_closes_a_connection_that_never_stops_sending() {
    let server = Server::start(&[]);
    let mut killer = server.raw();
    let mut flood = server.raw();
    let id = text(&flood.cmd(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim_end().to_string();
    let mut reader = flood.stream.try_clone().expect("clone");
    let mut writer = flood.stream.try_clone().expect("clone");
    // Replies are read as they come, so the server always has room to write; each request takes the server a while,
    // so the socket always has more input by the time a read's requests are done.
    let drained = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
        Instant::now()
    });
    let sending = std::thread::spawn(move || {
        let slow = common::encode(&["EVAL", "for i = 1, 100000 do end", "0"]);
        let batch = slow.repeat(100);
        let give_up = Instant::now() + Duration::from_secs(20);
        while Instant::now() < give_up {
            if writer.write_all(&batch).is_err() {
                return true;
            }
        }
        false
    });
    std::thread::sleep(Duration::from_millis(200));
    let killed = Instant::now();
    assert_eq!(killer.line(&format!("CLIENT KILL ID {id}")), ":1\r\n");
    let closed = drained.join().expect("reader");
    assert!(
        closed.duration_since(killed) < Duration::from_secs(5),
        "closed {:?} after the kill",
        closed.duration_since(killed)
    );
    assert!(sending.join().expect("writer"), "still accepting requests");
}

#[test]
fn client_kill_of_oneself_replies_then_closes() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let addr = c.stream.local_addr().expect("local addr").to_string();
    c.send(&common::encode(&["CLIENT", "KILL", &addr]));
    c.send(&common::encode(&["PING"]));
    assert_eq!(c.read_to_close(), b"+OK\r\n");
}

#[test]
fn maxclients_refuses_the_extra_client_until_raised() {
    let server = Server::start(&["--maxclients", "5"]);
    let mut clients: Vec<_> = (0..5).map(|_| server.raw()).collect();
    for c in clients.iter_mut() {
        assert_eq!(c.line("PING"), "+PONG\r\n");
    }
    let mut sixth = server.raw();
    assert_eq!(
        sixth.read_to_close(),
        b"-ERR max number of clients reached\r\n"
    );
    assert_eq!(clients[0].line("CONFIG SET maxclients 6"), "+OK\r\n");
    let mut now_fits = server.raw();
    assert_eq!(now_fits.line("PING"), "+PONG\r\n");
    let info = text(&clients[0].cmd(&["INFO", "stats"]));
    assert!(info.contains("rejected_connections:1\r\n"), "{info}");
}

#[test]
fn config_get_answers_what_redis_benchmark_asks() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(c.line("CONFIG GET save"), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    assert_eq!(
        c.line("CONFIG GET appendonly"),
        "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
    );
    let port = server.port.to_string();
    assert_eq!(
        c.line("CONFIG GET port"),
        format!("*2\r\n$4\r\nport\r\n${}\r\n{port}\r\n", port.len())
    );
}

#[test]
fn proto_max_bulk_len_set_at_runtime_applies_to_the_next_request() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(c.line("CONFIG SET proto-max-bulk-len 1mb"), "+OK\r\n");
    let mut big = server.raw();
    big.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    assert_eq!(
        text(&big.read_to_close()),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
}
