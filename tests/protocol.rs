//! Protocol and robustness through the real binary: requests split at every byte, inline commands, Redis's protocol
//! errors (exact text, then the connection closes), long pipelines, binary-safe arguments, abandoned and idle clients,
//! and the RESP3 switch. Expected bytes were checked against a real `redis-server`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{encode, Raw, Server};

/// Proves the server is still up and serving: a fresh connection answers PING.
fn assert_alive(server: &Server) {
    assert_eq!(server.raw().line("PING"), "+PONG\r\n");
}

/// Sends `input` on a new connection and returns everything the server sent before it closed the connection.
/// Write errors are ignored: the server may close (and reset) while a large input is still being sent.
fn reply_then_close(server: &Server, input: &[u8]) -> String {
    let mut c = server.raw();
    let _ = c.stream.write_all(input);
    String::from_utf8_lossy(&c.read_to_close()).into_owned()
}

/// Reads `n` replies and returns them concatenated as text.
fn replies(c: &mut Raw, n: usize) -> String {
    (0..n)
        .map(|_| String::from_utf8_lossy(&c.reply()).into_owned())
        .collect()
}

/// A pipeline mixing multibulk and inline requests, with binary bytes inside arguments.
fn mixed_pipeline() -> Vec<u8> {
    let mut input = encode(&[&b"SET"[..], b"k\0\r\nx", b"v\r\n\0y"]);
    input.extend_from_slice(&encode(&[&b"GET"[..], b"k\0\r\nx"]));
    input.extend_from_slice(b"PING\r\nECHO \"a b\"\r\n");
    input
}

const MIXED_PIPELINE_REPLIES: &str = "+OK\r\n$5\r\nv\r\n\0y\r\n+PONG\r\n$3\r\na b\r\n";

#[test]
fn request_split_at_every_byte_boundary_gets_the_same_replies() {
    let server = Server::start(&[]);
    let input = mixed_pipeline();
    for cut in 1..input.len() {
        let mut c = server.raw();
        c.send(&input[..cut]);
        // Give the server time to read and park the partial request before the rest arrives.
        std::thread::sleep(Duration::from_millis(3));
        c.send(&input[cut..]);
        assert_eq!(replies(&mut c, 4), MIXED_PIPELINE_REPLIES, "cut at {cut}");
    }
}

#[test]
fn request_sent_one_byte_at_a_time_gets_the_same_replies() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    for b in mixed_pipeline() {
        c.send(&[b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(replies(&mut c, 4), MIXED_PIPELINE_REPLIES);
}

#[test]
fn inline_commands_handle_quotes_escapes_and_blank_lines() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.send(b"PING\r\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
    // Blank lines and whitespace-only lines are skipped without a reply.
    c.send(b"\r\n\n   \r\nSET a \"b c\"\r\nGET a\r\n");
    assert_eq!(replies(&mut c, 2), "+OK\r\n$3\r\nb c\r\n");
    c.send(b"SET 'q' 'it\\'s'\nGET q\n");
    assert_eq!(replies(&mut c, 2), "+OK\r\n$4\r\nit's\r\n");
    c.send(b"ECHO \"\\x41\\t\\n\"\r\n");
    assert_eq!(c.reply(), b"$3\r\nA\t\n\r\n");
    c.send(b"  ping   hello  \r\n");
    assert_eq!(c.reply(), b"$5\r\nhello\r\n");
}

#[test]
fn empty_multibulk_requests_are_skipped() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.send(b"*0\r\n*-1\r\nPING\r\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
}

#[test]
fn non_numeric_multibulk_count_is_a_protocol_error_that_closes() {
    let server = Server::start(&[]);
    assert_eq!(
        reply_then_close(&server, b"*abc\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(
        reply_then_close(&server, b"*01\r\n$4\r\nPING\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_alive(&server);
}

/// Like Redis 7, a request may carry up to INT_MAX arguments: a two-million-element header is accepted, the server
/// waits for the arguments without reserving room for all of them up front, and runs the command once they arrive.
#[test]
fn a_two_million_argument_request_is_accepted_like_redis() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let mut request = b"*2000000\r\n$6\r\nEXISTS\r\n".to_vec();
    for _ in 1..2_000_000 {
        request.extend_from_slice(b"$1\r\nk\r\n");
    }
    c.send(&request[..11]);
    assert_alive(&server);
    c.send(&request[11..]);
    assert_eq!(c.reply(), b":0\r\n");
    assert_eq!(
        reply_then_close(&server, b"*2147483648\r\n"),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
}

#[test]
fn negative_or_malformed_bulk_length_is_a_protocol_error_that_closes() {
    let server = Server::start(&[]);
    for input in [
        &b"*1\r\n$-5\r\n"[..],
        b"*1\r\n$-1\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"*1\r\n$+4\r\nPING\r\n",
    ] {
        assert_eq!(
            reply_then_close(&server, input),
            "-ERR Protocol error: invalid bulk length\r\n",
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        assert_alive(&server);
    }
}

#[test]
fn bulk_over_proto_max_bulk_len_is_rejected_from_its_header_alone() {
    let server = Server::start(&[]);
    // Only the header is sent: the error must come without waiting for 600 MB of body.
    assert_eq!(
        reply_then_close(&server, b"*1\r\n$600000000\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_alive(&server);
}

#[test]
fn proto_max_bulk_len_option_sets_the_bulk_limit() {
    let server = Server::start(&["--proto-max-bulk-len", "1000"]);
    let mut c = server.raw();
    assert_eq!(c.cmd(&[&b"SET"[..], b"k", &[b'x'; 1000]]), b"+OK\r\n");
    drop(c);
    assert_eq!(
        reply_then_close(&server, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1001\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_alive(&server);
}

#[test]
fn non_bulk_argument_is_a_protocol_error_that_closes() {
    let server = Server::start(&[]);
    assert_eq!(
        reply_then_close(&server, b"*1\r\nx3\r\n"),
        "-ERR Protocol error: expected '$', got 'x'\r\n"
    );
    assert_alive(&server);
}

#[test]
fn inline_request_over_64k_without_newline_is_rejected() {
    let server = Server::start(&[]);
    assert_eq!(
        reply_then_close(&server, &vec![b'a'; 100 * 1024]),
        "-ERR Protocol error: too big inline request\r\n"
    );
    assert_alive(&server);
}

#[test]
fn unbalanced_quotes_in_inline_request_are_rejected() {
    let server = Server::start(&[]);
    for input in [&b"SET a \"b\r\n"[..], b"SET a 'b\r\n", b"SET a \"b\"c\r\n"] {
        assert_eq!(
            reply_then_close(&server, input),
            "-ERR Protocol error: unbalanced quotes in request\r\n",
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        assert_alive(&server);
    }
}

#[test]
fn pipelined_replies_arrive_before_the_protocol_error_and_later_requests_never_run() {
    let server = Server::start(&[]);
    assert_eq!(
        reply_then_close(
            &server,
            b"PING\r\nSET a 1\r\n*1\r\n$4\r\nPING\r\n*abc\r\nSET a 2\r\n"
        ),
        "+PONG\r\n+OK\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(server.raw().line("GET a"), "$1\r\n1\r\n");
}

#[test]
fn pipeline_of_ten_thousand_commands_is_answered_in_order() {
    const N: usize = 10_000;
    let server = Server::start(&[]);
    let mut c = server.raw();
    let mut input = Vec::new();
    for i in 0..N {
        input.extend_from_slice(&encode(&["ECHO", &i.to_string()]));
    }
    // Write from another thread so neither side blocks on a full socket buffer.
    let mut writer = c.stream.try_clone().expect("clone socket");
    let sender = std::thread::spawn(move || writer.write_all(&input));
    for i in 0..N {
        let want = format!("${}\r\n{i}\r\n", i.to_string().len());
        assert_eq!(
            String::from_utf8_lossy(&c.reply()),
            want,
            "reply {i} out of order"
        );
    }
    sender
        .join()
        .expect("writer thread")
        .expect("write pipeline");
}

#[test]
fn keys_and_values_are_binary_safe() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let key: &[u8] = b"\0k\r\ney\0";
    let value: &[u8] = b"\r\n\0\xff$3\r\n\0";
    assert_eq!(c.cmd(&[&b"SET"[..], key, value]), b"+OK\r\n");
    let mut want = format!("${}\r\n", value.len()).into_bytes();
    want.extend_from_slice(value);
    want.extend_from_slice(b"\r\n");
    assert_eq!(c.cmd(&[&b"GET"[..], key]), want);
    // A key that differs only after the NUL byte is a different key.
    assert_eq!(c.cmd(&[&b"GET"[..], b"\0k"]), b"$-1\r\n");
    assert_eq!(c.cmd(&[&b"EXISTS"[..], key]), b":1\r\n");
}

#[test]
fn large_value_arriving_over_many_reads_round_trips() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let value: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut writer = c.stream.try_clone().expect("clone socket");
    let request = encode(&[&b"SET"[..], b"big", &value]);
    let sender = std::thread::spawn(move || writer.write_all(&request));
    assert_eq!(c.reply(), b"+OK\r\n");
    sender
        .join()
        .expect("writer thread")
        .expect("write request");
    let reply = c.cmd(&["GET", "big"]);
    let header = format!("${}\r\n", value.len());
    assert_eq!(&reply[..header.len()], header.as_bytes());
    assert!(reply[header.len()..reply.len() - 2] == value[..]);
}

#[test]
fn client_leaving_mid_command_does_not_disturb_others() {
    let server = Server::start(&[]);
    let mut other = server.raw();
    assert_eq!(other.line("SET shared before"), "+OK\r\n");
    {
        let mut quitter = server.raw();
        quitter.send(b"*3\r\n$3\r\nSET\r\n$6\r\nshared\r\n$10\r\nhal");
        // Dropped here with half a bulk sent.
    }
    let mut quitter = server.raw();
    quitter.send(b"*2\r\n$3\r\nGET\r\n$6\r\nsha");
    quitter
        .stream
        .shutdown(std::net::Shutdown::Both)
        .expect("shutdown");
    assert_eq!(other.line("GET shared"), "$6\r\nbefore\r\n");
    assert_eq!(other.line("SET shared after"), "+OK\r\n");
    assert_eq!(other.line("GET shared"), "$5\r\nafter\r\n");
    assert_alive(&server);
}

#[test]
fn thousand_idle_connections_do_not_stop_a_working_client() {
    let server = Server::start(&[]);
    let mut worker = server.raw();
    let mut idle: Vec<TcpStream> = Vec::with_capacity(1000);
    for i in 0..1000 {
        idle.push(TcpStream::connect(server.addr()).expect("connect idle client"));
        if i % 100 == 0 {
            let reply = worker.cmd(&["SET", "progress", &i.to_string()]);
            assert_eq!(reply, b"+OK\r\n");
        }
    }
    assert_eq!(worker.line("GET progress"), "$3\r\n900\r\n");
    assert_alive(&server);
    // Every idle connection was accepted and is still served.
    for s in &mut idle {
        s.write_all(b"PING\r\n").expect("ping idle client");
    }
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut pong = [0u8; 7];
        s.read_exact(&mut pong).expect("read PONG");
        assert_eq!(&pong, b"+PONG\r\n");
    }
}

#[test]
fn hello_3_switches_to_resp3_replies() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(c.line("GET missing"), "$-1\r\n");
    let hello = c.line("HELLO 3");
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n"), "{hello:?}");
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello:?}");
    assert!(hello.ends_with("$7\r\nmodules\r\n*0\r\n"), "{hello:?}");
    assert_eq!(c.line("GET missing"), "_\r\n");
    // HELLO 2 goes back: its own reply is already a flat RESP2 array.
    let hello = c.line("HELLO 2");
    assert!(hello.starts_with("*14\r\n"), "{hello:?}");
    assert_eq!(c.line("GET missing"), "$-1\r\n");
}

#[test]
fn hello_with_unsupported_version_is_refused_and_keeps_the_protocol() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    assert_eq!(
        c.line("HELLO 4"),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(c.line("GET missing"), "$-1\r\n");
    assert_eq!(c.line("HELLO 3").get(..4), Some("%7\r\n"));
    assert_eq!(
        c.line("HELLO 1"),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(c.line("GET missing"), "_\r\n");
}

#[test]
fn client_reply_off_and_skip_drop_replies_in_order() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    // OFF silences itself and everything up to ON; SKIP silences itself and the next command only.
    let mut input = Vec::new();
    for line in [
        "CLIENT REPLY OFF",
        "SET a 1",
        "CLIENT REPLY SKIP",
        "INCR a",
        "CLIENT REPLY ON",
        "GET a",
        "CLIENT REPLY SKIP",
        "INCR a",
        "GET a",
    ] {
        input.extend_from_slice(format!("{line}\r\n").as_bytes());
    }
    c.send(&input);
    assert_eq!(replies(&mut c, 3), "+OK\r\n$1\r\n2\r\n$1\r\n3\r\n");
}

#[test]
fn client_reply_off_drops_a_blocked_commands_reply_too() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.send(b"CLIENT REPLY OFF\r\nBLPOP q 5\r\n");
    let mut pusher = server.raw();
    // Wait until the BLPOP is parked, so the push serves it rather than landing first.
    for _ in 0..500 {
        if pusher.line("CLIENT LIST").contains("cmd=blpop") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pusher.line("RPUSH q x"), ":1\r\n");
    c.send(b"CLIENT REPLY ON\r\nLLEN q\r\n");
    assert_eq!(replies(&mut c, 2), "+OK\r\n:0\r\n");
}
