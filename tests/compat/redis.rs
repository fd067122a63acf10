//! A real `redis-server` for the differential tests, and the client both servers are driven with.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::complete_reply_len;

/// A `redis-server` process on a free loopback port, killed when dropped.
pub struct RedisServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl RedisServer {
    /// Where `redis-server` is: on `PATH`, else `/usr/bin`.
    pub fn find() -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin")])
            .map(|dir| dir.join("redis-server"))
            .find(|p| p.is_file())
    }

    /// Finds `redis-server`; when it is missing, prints that the test skips and returns `None`, except under
    /// `CI=true`, where a missing Redis is a failure (the CI script installs it).
    pub fn find_or_skip(test: &str) -> Option<PathBuf> {
        let found = Self::find();
        if found.is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: redis-server is not installed, and CI=true requires it"
            );
            report(&format!(
                "{test}: SKIPPED, redis-server not found on PATH (install redis-server to run it)"
            ));
        }
        found
    }

    /// Starts `redis-server` without persistence on a free port and waits until it accepts connections.
    pub fn start(binary: &PathBuf) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // ringkv has DEBUG SLEEP; Redis 7 refuses DEBUG unless told otherwise.
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        let server = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(server.addr()).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a line straight to the process's stderr, past the test harness's output capture, so summaries show up in
/// a plain `cargo test` run (and in CI logs) whether the test passes or not.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// What reading a reply produced: the reply's bytes, or what happened instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// One complete reply.
    Reply(Vec<u8>),
    /// Nothing arrived in time.
    Timeout,
    /// The server closed the connection; the bytes are what arrived before.
    Closed(Vec<u8>),
}

impl Got {
    /// The reply as an escaped string for diffs.
    pub fn show(&self) -> String {
        match self {
            Got::Reply(b) => format!("\"{}\"", b.escape_ascii()),
            Got::Timeout => "(no reply)".to_string(),
            Got::Closed(b) if b.is_empty() => "(connection closed)".to_string(),
            Got::Closed(b) => format!("\"{}\" then (connection closed)", b.escape_ascii()),
        }
    }
}

/// A client connection that never panics on a missing reply: the differential tests must report a server that does
/// not answer as a difference, not hang or abort.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr`.
    pub fn connect(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends bytes; a server that closed the connection shows up on the next read.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads one reply, waiting at most `wait`.
    pub fn read(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(len) = complete_reply_len(&self.buf) {
                return Got::Reply(self.buf.drain(..len).collect());
            }
            if let Some(end) = self.fill(deadline) {
                return end;
            }
        }
    }

    /// Reads until the server closes the connection (or `wait` passes).
    pub fn read_to_close(&mut self, wait: Duration) -> Got {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.fill(deadline) {
                return end;
            }
        }
    }

    /// Reads what arrives before `deadline` into the buffer; `Some` when the wait is over: the deadline passed, or
    /// the server closed the connection (a reset is a close too).
    fn fill(&mut self, deadline: Instant) -> Option<Got> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(Got::Timeout);
        }
        let _ = self.stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                None
            }
            Err(e) if is_timeout(&e) => None,
            _ => Some(Got::Closed(std::mem::take(&mut self.buf))),
        }
    }

    /// Sends a command and reads its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A], wait: Duration) -> Got {
        self.send(&crate::common::encode(args));
        self.read(wait)
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
