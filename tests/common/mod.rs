//! Test support: start the real `ringkv` binary on a free loopback port, and talk to it with the `redis` crate or raw
//! TCP. Every raw reply is decoded with `redis-protocol` to prove it is well-formed RESP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ringkv` process, killed when dropped.
pub struct Server {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Server {
    /// Starts `ringkv --port 0` with extra arguments and waits until it listens.
    pub fn start(extra: &[&str]) -> Server {
        Self::spawn(&["--port", "0", "--bind", "127.0.0.1"], extra)
    }

    /// Starts `ringkv --port PORT` (a backend coming back on the port it had).
    pub fn start_on(port: u16, extra: &[&str]) -> Server {
        Self::spawn(&["--port", &port.to_string(), "--bind", "127.0.0.1"], extra)
    }

    /// Starts `ringkv proxy --port 0` with extra arguments (the backends) and waits until it listens.
    pub fn start_proxy(extra: &[&str]) -> Server {
        Self::spawn(&["proxy", "--port", "0", "--bind", "127.0.0.1"], extra)
    }

    /// Runs the binary with `base` then `extra` arguments and reads its port from its "listening on ADDR" log line.
    fn spawn(base: &[&str], extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringkv"))
            .args(base)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ringkv");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(addr) = line.split("listening on ").nth(1) {
                        let addr = addr.split_whitespace().next().unwrap_or("");
                        let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                        let _ = tx.send(port);
                        sent = true;
                    }
                }
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(20)).ok().flatten();
        let mut server = Server {
            child,
            port: port.unwrap_or(0),
        };
        assert!(
            port.is_some() && server.is_running(),
            "ringkv did not report its port"
        );
        server
    }

    /// Stops the process now (a backend failing).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A `redis` crate client (async, multiplexed).
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(format!("redis://{}/", self.addr())).expect("client");
        client
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    /// A raw TCP connection.
    pub fn raw(&self) -> Raw {
        Raw::connect(&self.addr())
    }

    /// True while the process is alive.
    /// The process's resident memory in MiB (Linux: `VmRSS` in `/proc/PID/status`).
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
        let kib: u64 = kib
            .and_then(|v| v.trim().strip_suffix(" kB")?.parse().ok())
            .unwrap();
        kib / 1024
    }

    /// Sends a 64 MiB value through one connection and back (SET, GET, DEL) and returns the process's resident MiB
    /// before, and after once it is within 40 MiB of that or 5 s have passed, the connection still open: it must not
    /// keep the value's buffers for the rest of its life, and what it freed goes back to the system within seconds.
    pub fn rss_around_a_big_value(&self) -> (u64, u64) {
        let mut c = self.raw();
        let before = self.rss_mib();
        let big = vec![b'x'; 64 << 20];
        assert_eq!(c.cmd(&[&b"SET"[..], b"{big}", &big]), b"+OK\r\n");
        assert_eq!(c.cmd(&["GET", "{big}"]).len(), big.len() + 13);
        assert_eq!(c.cmd(&["DEL", "{big}"]), b":1\r\n");
        assert_eq!(c.cmd(&["SET", "small", "v"]), b"+OK\r\n");
        let start = Instant::now();
        loop {
            let after = self.rss_mib();
            if after < before + 40 || start.elapsed() > Duration::from_secs(5) {
                return (before, after);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Sends the process SIGTERM (as a supervisor stops it) and returns how it exited.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid}");
        self.child.wait().expect("wait for the process")
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if !self.is_running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw protocol connection with a read timeout.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to `addr`.
    pub fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a command as a multibulk request.
    pub fn send_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send(&encode(args));
    }

    /// Sends a command and returns its raw reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send_cmd(args);
        self.reply()
    }

    /// Sends a command given as a space-separated line and returns its reply as text.
    pub fn line(&mut self, line: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&line.split(' ').collect::<Vec<_>>())).into_owned()
    }

    /// Reads exactly one reply (RESP2 or RESP3), checked by `redis-protocol`, and returns its bytes.
    pub fn reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(len) = complete_reply_len(&self.buf) {
                return self.buf.drain(..len).collect();
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read reply");
            assert!(
                n > 0,
                "connection closed while waiting for a reply; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The number `field` of `INFO memory` (`used_memory`, `used_memory_rss`, ...).
    pub fn memory_info(&mut self, field: &str) -> i64 {
        let info = String::from_utf8(self.cmd(&["INFO", "memory"])).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in INFO memory"))
    }

    /// Reads until the server closes the connection; returns what arrived.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        let _ = self.stream.read_to_end(&mut rest);
        rest
    }
}

/// Encodes a command as a RESP multibulk request.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The length of the first complete reply in `buf`, decoding it with `redis-protocol`: the RESP3 decoder first, and
/// for what it refuses the RESP2 decoder (RESP3's decoder rejects RESP2's null forms `$-1` and `*-1`). Panics on
/// malformed RESP.
pub fn complete_reply_len(buf: &[u8]) -> Option<usize> {
    use redis_protocol::error::{RedisProtocolError, RedisProtocolErrorKind};
    if buf.is_empty() {
        return None;
    }
    // Status and error lines end at their CRLF; they may hold any other bytes (a script's error table), which the
    // decoders refuse unless UTF-8.
    let line_end = || buf.windows(2).position(|w| w == b"\r\n");
    if matches!(buf[0], b'+' | b'-') {
        return line_end().map(|at| at + 2);
    }
    // A verbatim string is framed as a bulk string; the decoder refuses formats other than txt and mkd, which a
    // script may choose.
    if buf[0] == b'=' {
        let at = line_end()?;
        let len: usize = std::str::from_utf8(&buf[1..at]).ok()?.parse().ok()?;
        let total = at + 2 + len + 2;
        return (buf.len() >= total).then_some(total);
    }
    let too_small =
        |e: &RedisProtocolError| matches!(e.kind(), RedisProtocolErrorKind::BufferTooSmall(_));
    let resp3 = match redis_protocol::resp3::decode::complete::decode(buf) {
        Ok(decoded) => return decoded.map(|(_, len)| len),
        Err(e) if too_small(&e) => return None,
        Err(e) => e,
    };
    match redis_protocol::resp2::decode::decode(buf) {
        Ok(decoded) => decoded.map(|(_, len)| len),
        Err(e) if too_small(&e) => None,
        Err(e) => panic!(
            "malformed RESP from server: {resp3:?} / {e:?} in {:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Finds an external program the tests need, by name on PATH (`redis-cli`) or by path. Under CI (`CI=true`) a
/// missing program fails the test; elsewhere the test is skipped with a note.
pub fn required_program(name: &str) -> Option<std::path::PathBuf> {
    let found = if name.contains('/') {
        Some(std::path::PathBuf::from(name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required under CI"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
}

/// Runs `redis-benchmark -q -t <tests> -n <requests>` against `port` and checks every test finished without an error
/// reply. Returns false (test skipped) when redis-benchmark is not installed outside CI.
pub fn redis_benchmark_runs_clean(port: u16, tests: &[&str], requests: usize) -> bool {
    let Some(bench) = required_program("redis-benchmark") else {
        return false;
    };
    let out = Command::new(bench)
        .args([
            "-p",
            &port.to_string(),
            "-t",
            &tests.join(","),
            "-n",
            &requests.to_string(),
            "-q",
        ])
        .output()
        .expect("run redis-benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout} {stderr}");
    for test in tests {
        // `-q` prints one line per test, e.g. "MSET (10 keys): 28169.01 requests per second".
        let finished = stdout.split(['\r', '\n']).any(|l| {
            l.trim_start().to_ascii_lowercase().starts_with(test)
                && l.contains("requests per second")
        });
        assert!(finished, "{test} missing: {stdout}");
    }
    assert!(
        !stdout.contains("ERR") && !stderr.contains("ERR"),
        "{stdout} {stderr}"
    );
    true
}

/// The bulk strings of a reply, in order, wherever they are nested.
pub fn bulks(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    let lines: Vec<&str> = text.split("\r\n").collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with('$'))
        .map(|w| w[1].to_string())
        .collect()
}

/// `n` keys with the given prefix, each on a different shard of a server started with `--shards <shards>` (found
/// with the ring the server places keys with).
pub fn keys_on_distinct_shards(prefix: &str, n: usize, shards: usize) -> Vec<String> {
    let store = ringkv::store::Store::new(shards, 1);
    let mut seen = std::collections::HashSet::new();
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| seen.insert(store.shard_of(k.as_bytes())))
        .take(n)
        .collect();
    assert_eq!(keys.len(), n);
    keys
}

/// Sends `commands` pipelined, 50 at a time, and returns the replies in order.
pub fn pipeline<A: AsRef<[u8]>>(c: &mut Raw, commands: &[Vec<A>]) -> Vec<Vec<u8>> {
    let mut replies = Vec::with_capacity(commands.len());
    for part in commands.chunks(50) {
        let bytes: Vec<u8> = part.iter().flat_map(|cmd| encode(cmd)).collect();
        c.send(&bytes);
        replies.extend(part.iter().map(|_| c.reply()));
    }
    replies
}

/// Waits until something accepts connections on `port`.
pub fn wait_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An external process (redis-server, nutcracker) killed when dropped.
pub struct External {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// A directory of its own (configuration, log), removed with it.
    dir: Option<std::path::PathBuf>,
}

impl External {
    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    /// A raw TCP connection.
    pub fn raw(&self) -> Raw {
        Raw::connect(&self.addr())
    }
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts a real `redis-server` (Debian's /usr/bin/redis-server) without persistence on `port` (0: a free one), with
/// DEBUG allowed from loopback.
/// `None` when it is not installed outside CI.
pub fn redis_server(port: u16) -> Option<External> {
    let program = required_program("/usr/bin/redis-server")?;
    let port = if port == 0 { free_port() } else { port };
    let child = Command::new(program)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        // DEBUG SLEEP stands in for a backend that stops answering.
        .args(["--enable-debug-command", "local"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let server = External {
        child,
        port,
        dir: None,
    };
    wait_listening(port);
    Some(server)
}

/// Starts twemproxy (`nutcracker`, Debian package nutcracker) with `yaml`, whose `{port}` and `{stats}` are filled in.
pub fn nutcracker(yaml: &str) -> Option<External> {
    let program = required_program("/usr/sbin/nutcracker")?;
    let (port, stats) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("ringkv-nutcracker-{port}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("nutcracker.yml");
    std::fs::write(&conf, yaml.replace("{port}", &port.to_string())).expect("write yaml");
    let child = Command::new(program)
        .arg("-c")
        .arg(&conf)
        .args(["-s", &stats.to_string(), "-a", "127.0.0.1"])
        .arg("-o")
        .arg(dir.join("nutcracker.log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start nutcracker");
    let server = External {
        child,
        port,
        dir: Some(dir),
    };
    wait_listening(port);
    Some(server)
}

/// One transcript step: on connection `client`, send `command` (space-separated; empty to send nothing) and read
/// `replies` replies.
pub type Step = (usize, &'static str, usize);

/// Runs `steps` against the server at `addr`; returns each reply (HELLO's, which names the server, left out). A QUIT
/// must be followed by the server closing that connection.
pub fn run_transcript(addr: &str, steps: &[Step]) -> Vec<(usize, &'static str, Vec<u8>)> {
    let count = steps.iter().map(|s| s.0 + 1).max().unwrap_or(0);
    let mut clients: Vec<Raw> = (0..count).map(|_| Raw::connect(addr)).collect();
    let mut replies = Vec::new();
    for &(c, command, n) in steps {
        if !command.is_empty() {
            clients[c].send_cmd(&command.split(' ').collect::<Vec<_>>());
        }
        for _ in 0..n {
            let reply = clients[c].reply();
            if !command.starts_with("HELLO") {
                replies.push((c, command, reply));
            }
        }
        if command == "QUIT" {
            assert!(clients[c].read_to_close().is_empty());
        }
    }
    replies
}

/// Runs `steps` against ringkv and a real redis-server and compares every reply byte for byte.
pub fn assert_same_as_redis(steps: &[Step]) {
    let server = Server::start(&[]);
    let ours = run_transcript(&server.addr(), steps);
    let Some(redis) = redis_server(0) else { return };
    let theirs = run_transcript(&redis.addr(), steps);
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(
            String::from_utf8_lossy(&a.2),
            String::from_utf8_lossy(&b.2),
            "client {} `{}`",
            a.0,
            a.1
        );
    }
}
