//! Backend connections: a few pipelined connections per backend shared by every client, and dedicated connections
//! for the clients that need one to themselves (blocking pops, WATCH).
//!
//! Each connection is one task owning its socket. Requests arrive on a channel with a oneshot sender for the reply;
//! the task writes every queued request in one batch and remembers the senders in a FIFO, and since a backend answers
//! a connection's requests in order, the n-th complete reply (found by [`super::resp::reply_len`]) belongs to the n-th
//! sender. A request may also stand for a bundle (MULTI ... EXEC) whose replies are read and only the last returned,
//! or for a [`Batch`] of plain requests whose replies all come back in one buffer.
//!
//! A session sends through its [`Outbox`], which gathers the plain requests of one read per backend into a batch:
//! one channel message, one reply buffer and one wake-up per backend instead of one per request (most of a pipelined
//! request's cost in the proxy). Every other send first sends what is gathered, so a backend sees a client's requests
//! in the order the client sent them.
//!
//! A third kind, the probe, carries the health check's PINGs ([`Backend::check`]).
//!
//! Replies pass through unchanged, so they must already be in the client's protocol: a backend has one set of shared
//! connections per protocol, and a RESP3 connection (shared or dedicated) says `HELLO 3` before its first request.
//!
//! Faults never hang a client: connecting and each request have a time-out, and on a failure every waiting request
//! gets `-ERR backend ADDR unavailable: ...`. The connection is dropped after a time-out (the reply stream can no longer
//! be matched) and made again on the next request, so a restarted backend is used again at once.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};

use super::resp::reply_len;
use crate::connection::{self, BUFFER_KEEP};
use crate::protocol::Reply;

/// Bytes a batch of requests starts with room for: a pipelined client's requests for one backend mostly fit.
const BATCH_CAPACITY: usize = 1024;

/// A backend connection's read buffer to start with (and to go back to after a large reply, see [`BUFFER_KEEP`]).
const READ_CAPACITY: usize = 16 * 1024;

/// After a failed connect, requests fail at once for this long instead of each waiting for a connect of its own.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// One request for a backend connection.
struct Request {
    bytes: Vec<u8>,
    /// Replies the bytes produce (1 for a plain command).
    replies: usize,
    /// Return every reply, concatenated (a batch), rather than only the last (a bundle or a plain command).
    all: bool,
    /// For an EVALSHA whose body the proxy knows: the script, loaded ahead of the call by a connection that has not
    /// loaded it since it was made.
    load: Option<Script>,
    tx: oneshot::Sender<Vec<u8>>,
}

/// A script by its SHA1 (lower-case hex) and body.
pub struct Script {
    /// SHA1 of the body, lower-case hex.
    pub sha: String,
    /// The body.
    pub body: Arc<[u8]>,
}

/// A request written and waiting for its replies.
struct Waiting {
    tx: oneshot::Sender<Vec<u8>>,
    /// Replies still to come.
    replies: usize,
    /// For a batch, the replies so far.
    got: Option<Vec<u8>>,
    /// Client requests it answers (INFO's count): a batch's replies, else one.
    requests: u64,
    deadline: Option<Instant>,
    /// A SCRIPT LOAD written ahead of the request: the script's SHA1 and the count of SCRIPT FLUSHes then. Its reply
    /// comes first and is not passed on.
    loading: Option<(String, u64)>,
}

impl Waiting {
    fn new(req: Request, deadline: Option<Instant>, loading: Option<(String, u64)>) -> Waiting {
        let replies = req.replies.max(1);
        Waiting {
            tx: req.tx,
            replies: replies + usize::from(loading.is_some()),
            got: req.all.then(Vec::new),
            requests: if req.all { replies as u64 } else { 1 },
            deadline,
            loading,
        }
    }

    /// Answers with what has come and, for every reply still owed, `error`.
    fn fail(self, error: &[u8]) {
        let reply = match self.got {
            Some(mut got) => {
                for _ in 0..self.replies {
                    got.extend_from_slice(error);
                }
                got
            }
            None => error.to_vec(),
        };
        let _ = self.tx.send(reply);
    }
}

/// Which of a backend's shared connections a client's requests take: its slot, in the client's protocol.
#[derive(Clone, Copy, Debug)]
pub struct Lane {
    /// The client's slot (its id): requests of one client always take the same connection, so they stay in order.
    pub slot: usize,
    /// The client speaks RESP3 (after `HELLO 3`).
    pub resp3: bool,
}

/// What the proxy knows of a backend's health (INFO, RING NODES, auto-eject).
#[derive(Default)]
pub struct Health {
    up: AtomicBool,
    /// Failures (connect errors, time-outs, lost connections) since the last success.
    pub failures: AtomicU32,
    /// Requests answered (health-check PINGs included).
    pub requests: AtomicU64,
    last_error: Mutex<String>,
    /// The last health check: when it was answered, and how long the PING took (None: it failed).
    last_check: Mutex<Option<(Instant, Option<Duration>)>>,
    /// SCRIPT FLUSHes sent to the backend through the proxy: what a connection recorded as loaded before the last one
    /// is void.
    script_flushes: AtomicU64,
}

impl Health {
    /// `up`, or `down` with the last error.
    pub fn status(&self) -> String {
        if self.up.load(Ordering::Relaxed) || self.failures.load(Ordering::Relaxed) == 0 {
            "up".into()
        } else {
            format!("down ({})", self.last_error.lock())
        }
    }
    /// The last health check for INFO: `none`, `ok` or `failed`, and the PING's round trip in microseconds.
    pub fn last_check(&self) -> (&'static str, Option<u128>) {
        match *self.last_check.lock() {
            None => ("none", None),
            Some((_, Some(rtt))) => ("ok", Some(rtt.as_micros())),
            Some((_, None)) => ("failed", None),
        }
    }
    /// Records a health check's reply. A failure the connection already counted (its own `unavailable` error) is not
    /// counted twice; any other reply than PONG (LOADING, MASTERDOWN, ...) counts as one.
    fn checked(&self, reply: &[u8], rtt: Duration) {
        let ok = reply == b"+PONG\r\n";
        *self.last_check.lock() = Some((Instant::now(), ok.then_some(rtt)));
        if !ok && !reply.starts_with(b"-ERR backend ") {
            let text = String::from_utf8_lossy(reply);
            self.failed(&format!("health check: {}", text.trim_end()));
        }
    }
    fn ok(&self) {
        self.up.store(true, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
    }
    fn failed(&self, reason: &str) {
        self.up.store(false, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = reason.to_string();
    }
}

/// A backend: its address, configured weight, shared connections and health.
pub struct Backend {
    /// `host:port`.
    pub addr: String,
    /// Configured ring weight.
    pub weight: u32,
    /// Health, shared with the connection tasks.
    pub health: Arc<Health>,
    /// Shared connections, RESP2 ones first, then as many RESP3 ones.
    conns: Vec<mpsc::UnboundedSender<Request>>,
    /// The health check's own connection, so a PING neither waits behind client pipelines nor breaks them on a
    /// time-out.
    probe: mpsc::UnboundedSender<Request>,
    timeout: Duration,
}

impl Backend {
    /// A backend with `connections` shared connections per protocol (each made on its first request).
    pub fn new(addr: String, weight: u32, connections: usize, timeout: Duration) -> Arc<Backend> {
        let health = Arc::new(Health::default());
        let per_protocol = connections.max(1);
        let conns = (0..2 * per_protocol)
            .map(|i| {
                let resp3 = i >= per_protocol;
                spawn_conn(Conn::new(
                    addr.clone(),
                    timeout,
                    Some(timeout),
                    false,
                    resp3,
                    health.clone(),
                ))
            })
            .collect();
        let probe = spawn_conn(Conn::new(
            addr.clone(),
            timeout,
            Some(timeout),
            false,
            false,
            health.clone(),
        ));
        Arc::new(Backend {
            addr,
            weight,
            health,
            conns,
            probe,
            timeout,
        })
    }

    /// Sends a health-check PING now; the returned future records its outcome in [`Backend::health`].
    pub fn check(&self) -> impl Future<Output = ()> {
        let started = Instant::now();
        let reply = submit(
            &self.probe,
            &self.addr,
            b"*1\r\n$4\r\nPING\r\n".to_vec(),
            1,
            None,
        );
        let health = self.health.clone();
        async move {
            let reply = reply.await;
            health.checked(&reply, started.elapsed());
        }
    }

    /// Sends `bytes` (producing `replies` replies) on the shared connection of `lane`, after what `outbox` gathered,
    /// and resolves to the last reply, or to an `-ERR backend ... unavailable` reply.
    pub fn send(
        &self,
        outbox: &mut Outbox,
        lane: Lane,
        bytes: Vec<u8>,
        replies: usize,
    ) -> impl Future<Output = Vec<u8>> {
        outbox.before_send();
        self.resend(lane, bytes, replies)
    }

    /// [`Backend::send`] outside a client's request order: only for a retry, whose request was already sent.
    pub fn resend(
        &self,
        lane: Lane,
        bytes: Vec<u8>,
        replies: usize,
    ) -> impl Future<Output = Vec<u8>> {
        submit(self.conn(lane), &self.addr, bytes, replies, None)
    }

    /// [`Backend::send`] for a script call (EVALSHA) whose body the proxy knows: the connection writes `SCRIPT LOAD`
    /// ahead of it, in the same write, unless it has loaded the script since it was made. A backend that restarted
    /// (so lost its scripts) is reached by a new connection, and the call still runs in the client's order.
    pub fn call_script(
        &self,
        outbox: &mut Outbox,
        lane: Lane,
        bytes: Vec<u8>,
        script: Option<Script>,
    ) -> impl Future<Output = Vec<u8>> {
        outbox.before_send();
        submit(self.conn(lane), &self.addr, bytes, 1, script)
    }

    /// Forgets what the connections loaded: a SCRIPT FLUSH is on its way to the backend, or it lost its scripts.
    pub fn forget_scripts(&self) {
        self.health.script_flushes.fetch_add(1, Ordering::AcqRel);
    }

    /// The shared connection `lane` takes.
    fn conn(&self, lane: Lane) -> &mpsc::UnboundedSender<Request> {
        let per_protocol = self.conns.len() / 2;
        &self.conns[lane.slot % per_protocol + usize::from(lane.resp3) * per_protocol]
    }

    /// The same backend (same connections and health) under another weight.
    pub fn with_weight(&self, weight: u32) -> Backend {
        Backend {
            addr: self.addr.clone(),
            weight,
            health: self.health.clone(),
            conns: self.conns.clone(),
            probe: self.probe.clone(),
            timeout: self.timeout,
        }
    }

    /// A subscriber connection for one client (made on its first request, `HELLO 3` first for a RESP3 client),
    /// reporting on `events` under `id`. Its confirmations have the request time-out; its messages may take forever.
    pub fn subscriber(&self, resp3: bool, id: usize, events: SubEvents) -> Subscriber {
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = Conn::new(
            self.addr.clone(),
            self.timeout,
            Some(self.timeout),
            true,
            resp3,
            self.health.clone(),
        );
        tokio::spawn(async move {
            let mut conn = conn;
            if let Some(reason) = conn.subscribed(rx, id, &events).await {
                let lost = SubEvent::Lost(unavailable(&conn.addr, &reason));
                let _ = events.send((id, lost)).await;
            }
        });
        Subscriber { tx }
    }

    /// A new connection for one client. For a blocking pop (`blocking`) it has no request time-out: the pop waits as
    /// long as it asked to; a WATCH's connection times out as the shared ones do, so an EXEC never hangs on a backend
    /// that stopped answering. It closes when dropped and idle, or as soon as the client stops waiting for its reply.
    pub fn dedicated(&self, resp3: bool, blocking: bool) -> Dedicated {
        let request_timeout = (!blocking).then_some(self.timeout);
        Dedicated {
            addr: self.addr.clone(),
            tx: spawn_conn(Conn::new(
                self.addr.clone(),
                self.timeout,
                request_timeout,
                true,
                resp3,
                self.health.clone(),
            )),
        }
    }
}

/// What a subscriber connection reports to its client's session, in the order the backend sent it.
#[derive(Debug)]
pub enum SubEvent {
    /// A confirmation of a (un)subscribe request, or the error reply the backend refused one with (Some).
    Ack(Option<Vec<u8>>),
    /// A `message`, `pmessage` or `smessage`, as the backend sent it.
    Message(Vec<u8>),
    /// The connection could not be made or was lost: this error reply stands for every confirmation still owed.
    Lost(Vec<u8>),
}

/// Where a session receives its subscriber connections' events, each tagged with the connection's id.
pub type SubEvents = mpsc::Sender<(usize, SubEvent)>;

/// A client's subscriber connection to one backend: it carries only (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE. It closes
/// once dropped and every request sent is acknowledged (so the backend drops the subscriptions with it).
pub struct Subscriber {
    tx: mpsc::UnboundedSender<(Vec<u8>, usize)>,
}

impl Subscriber {
    /// Sends a request that the backend acknowledges with `acks` confirmations. A connection already lost reports
    /// [`SubEvent::Lost`], which settles this request too.
    pub fn send(&self, bytes: Vec<u8>, acks: usize) {
        let _ = self.tx.send((bytes, acks));
    }
}

/// A connection of one client's own.
pub struct Dedicated {
    addr: String,
    tx: mpsc::UnboundedSender<Request>,
}

impl Dedicated {
    /// True once the connection is gone for good (lost, or never made): later requests get an error.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends `bytes` (producing `replies` replies), after what `outbox` gathered, and resolves to the last reply.
    pub fn send(
        &self,
        outbox: &mut Outbox,
        bytes: Vec<u8>,
        replies: usize,
    ) -> impl Future<Output = Vec<u8>> {
        outbox.before_send();
        submit(&self.tx, &self.addr, bytes, replies, None)
    }
}

/// A client's way to the backends (see the module doc): plain requests are gathered per shared connection until
/// [`Outbox::flush`], which every other send calls first.
#[derive(Default)]
pub struct Outbox {
    /// Batches being gathered, one per connection.
    open: Vec<Open>,
    /// Batches sent and not yet taken by the session.
    sent: Vec<Batch>,
    next_id: u64,
    /// Sends so far (batches and single requests), shared with whoever must know whether the client sent anything
    /// after a given request ([`Outbox::sends`]).
    sends: Arc<AtomicU64>,
}

/// A batch being gathered.
struct Open {
    backend: Arc<Backend>,
    conn: mpsc::UnboundedSender<Request>,
    bytes: Vec<u8>,
    replies: usize,
    id: u64,
}

impl Outbox {
    /// Adds `request` (multibulk, one reply) for `backend` to the batch of its connection; returns the batch's id.
    pub fn gather(&mut self, backend: &Arc<Backend>, lane: Lane, request: &[u8]) -> u64 {
        let conn = backend.conn(lane);
        let at = match self.open.iter().position(|o| o.conn.same_channel(conn)) {
            Some(at) => at,
            None => {
                self.next_id += 1;
                self.open.push(Open {
                    backend: backend.clone(),
                    conn: conn.clone(),
                    bytes: Vec::with_capacity(request.len().max(BATCH_CAPACITY)),
                    replies: 0,
                    id: self.next_id,
                });
                self.open.len() - 1
            }
        };
        let open = &mut self.open[at];
        open.bytes.extend_from_slice(request);
        open.replies += 1;
        open.id
    }

    /// Sends every batch gathered.
    pub fn flush(&mut self) {
        self.sends
            .fetch_add(self.open.len() as u64, Ordering::Relaxed);
        for open in self.open.drain(..) {
            let (tx, rx) = oneshot::channel();
            let _ = open.conn.send(Request {
                bytes: open.bytes,
                replies: open.replies,
                all: true,
                load: None,
                tx,
            });
            self.sent.push(Batch {
                id: open.id,
                backend: open.backend,
                rx,
                replies: None,
                at: 0,
                left: open.replies,
            });
        }
    }

    /// Sends what is gathered ahead of a request sent on its own, and counts that request.
    fn before_send(&mut self) {
        self.flush();
        self.sends.fetch_add(1, Ordering::Relaxed);
    }

    /// The count of this client's sends, which goes on growing: a request's retry keeps the client's order only while
    /// the count is what it was right after the request.
    pub fn sends(&self) -> Arc<AtomicU64> {
        self.sends.clone()
    }

    /// The batches sent since the last call, oldest first.
    pub fn take_sent(&mut self) -> std::vec::Drain<'_, Batch> {
        self.sent.drain(..)
    }
}

/// The replies of a sent batch, taken one by one in request order.
pub struct Batch {
    /// As [`Outbox::gather`] returned it.
    pub id: u64,
    backend: Arc<Backend>,
    rx: oneshot::Receiver<Vec<u8>>,
    /// Every reply, once they came.
    replies: Option<Vec<u8>>,
    /// Where the next reply starts.
    at: usize,
    /// Replies not yet taken.
    left: usize,
}

impl Batch {
    /// Ready once the replies came (or the connection failed them).
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.replies.is_none() {
            // A connection gone without answering leaves no replies: each take then gives the error.
            let replies = ready!(Pin::new(&mut self.rx).poll(cx)).unwrap_or_default();
            self.replies = Some(replies);
        }
        Poll::Ready(())
    }

    /// Appends the next reply to `out` (once ready); true when it was the last one.
    pub fn take(&mut self, out: &mut Vec<u8>) -> bool {
        let replies = self.replies.as_deref().unwrap_or_default();
        match reply_len(&replies[self.at..]) {
            Ok(Some(len)) => {
                out.extend_from_slice(&replies[self.at..self.at + len]);
                self.at += len;
            }
            _ => out.extend_from_slice(&unavailable(&self.backend.addr, "connection closed")),
        }
        self.left -= 1;
        self.left == 0
    }
}

/// `SCRIPT LOAD body` as a request.
pub fn script_load(body: &[u8]) -> Vec<u8> {
    let mut out = Reply::with_capacity(false, body.len() + 48);
    out.array(3);
    out.bulk(b"SCRIPT");
    out.bulk(b"LOAD");
    out.bulk(body);
    out.buf
}

/// The error reply for a request that could not be served by `addr`.
pub fn unavailable(addr: &str, reason: &str) -> Vec<u8> {
    format!("-ERR backend {addr} unavailable: {reason}\r\n").into_bytes()
}

fn submit(
    conn: &mpsc::UnboundedSender<Request>,
    addr: &str,
    bytes: Vec<u8>,
    replies: usize,
    load: Option<Script>,
) -> impl Future<Output = Vec<u8>> {
    let (tx, rx) = oneshot::channel();
    let _ = conn.send(Request {
        bytes,
        replies,
        all: false,
        load,
        tx,
    });
    let addr = addr.to_string();
    async move {
        rx.await
            .unwrap_or_else(|_| unavailable(&addr, "connection closed"))
    }
}

/// Runs `conn` as a task of its own; requests reach it through the channel returned.
fn spawn_conn(conn: Conn) -> mpsc::UnboundedSender<Request> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(conn.run(rx));
    tx
}

/// One backend connection's task state.
struct Conn {
    addr: String,
    connect_timeout: Duration,
    /// None for a blocking pop's connection: its client may block as long as it asked to.
    request_timeout: Option<Duration>,
    /// One client's own connection (see [`Conn::run`]).
    dedicated: bool,
    /// Switches the connection to RESP3 before its first request.
    resp3: bool,
    health: Arc<Health>,
    pending: VecDeque<Waiting>,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    retry_at: Option<Instant>,
    /// Scripts this connection loaded since it was made, and [`Health::script_flushes`] when they were recorded.
    loaded: (HashSet<String>, u64),
}

impl Conn {
    fn new(
        addr: String,
        connect_timeout: Duration,
        request_timeout: Option<Duration>,
        dedicated: bool,
        resp3: bool,
        health: Arc<Health>,
    ) -> Conn {
        Conn {
            addr,
            connect_timeout,
            request_timeout,
            dedicated,
            resp3,
            health,
            pending: VecDeque::new(),
            rbuf: BytesMut::with_capacity(READ_CAPACITY),
            wbuf: Vec::new(),
            retry_at: None,
            loaded: Default::default(),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        let mut stream: Option<TcpStream> = None;
        let mut open = true;
        // A dedicated connection carries one client's state (its WATCH, its blocked pop): once lost it is not made
        // again, so an EXEC cannot run on a fresh connection that no longer watches; later requests fail instead.
        let dedicated = self.dedicated;
        loop {
            let Some(s) = stream.as_mut() else {
                let Some(req) = (if open { rx.recv().await } else { None }) else {
                    return;
                };
                match self.connect().await {
                    Ok(s) => {
                        let s = stream.insert(s);
                        if let Err(reason) = self.write(s, req, &mut rx).await {
                            stream = None;
                            self.fail_all(&reason);
                            if dedicated {
                                return;
                            }
                        }
                    }
                    Err(reason) => {
                        self.fail(req, &reason);
                        while let Ok(req) = rx.try_recv() {
                            self.fail(req, &reason);
                        }
                        if dedicated {
                            return;
                        }
                    }
                }
                continue;
            };
            if !open && self.pending.is_empty() {
                return;
            }
            let deadline = self.pending.front().and_then(|w| w.deadline);
            let outcome = tokio::select! {
                req = rx.recv(), if open => match req {
                    Some(req) => self.write(s, req, &mut rx).await,
                    None => {
                        open = false;
                        Ok(())
                    }
                },
                read = s.read_buf(&mut self.rbuf) => match read {
                    Ok(0) if self.pending.is_empty() => Err(String::new()),
                    Ok(0) => Err("connection lost".to_string()),
                    Ok(_) => self.deliver(),
                    Err(e) => Err(format!("connection lost ({e})")),
                },
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    Err(format!("timed out after {} ms", self.request_timeout.unwrap_or_default().as_millis()))
                },
                _ = front_abandoned(&mut self.pending), if dedicated && !self.pending.is_empty() => {
                    // The client is gone: closing makes the backend drop its blocked command, so nothing is
                    // popped for nobody.
                    return;
                },
            };
            if let Err(reason) = outcome {
                stream = None;
                self.rbuf.clear();
                if !reason.is_empty() {
                    self.health.failed(&reason);
                    self.fail_all(&reason);
                }
                if dedicated {
                    return;
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<TcpStream, String> {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Err(format!("reconnecting ({})", self.health.last_error.lock()));
        }
        let reason = match timeout(self.connect_timeout, self.open()).await {
            Ok(Ok(s)) => {
                self.retry_at = None;
                // A new connection may reach a backend that restarted: nothing is known loaded there.
                self.loaded.0.clear();
                return Ok(s);
            }
            // The backend is up; only this client's protocol is refused.
            Ok(Err(OpenError::Refused(e))) => return Err(e),
            Ok(Err(OpenError::Fault(e))) => e,
            Err(_) => format!(
                "connect timed out after {} ms",
                self.connect_timeout.as_millis()
            ),
        };
        self.health.failed(&reason);
        self.retry_at = Some(Instant::now() + RECONNECT_BACKOFF);
        Err(reason)
    }

    /// Connects, and for a RESP3 connection says `HELLO 3` and reads its reply (a backend without RESP3 refuses it).
    async fn open(&mut self) -> Result<TcpStream, OpenError> {
        let mut s = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| OpenError::Fault(format!("connect failed ({e})")))?;
        if is_this_proxy(&s) {
            return Err(OpenError::Fault("it is this proxy".into()));
        }
        let _ = s.set_nodelay(true);
        self.rbuf.clear();
        if !self.resp3 {
            return Ok(s);
        }
        let failed = |e: std::io::Error| OpenError::Fault(format!("HELLO 3 failed ({e})"));
        s.write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
            .await
            .map_err(failed)?;
        let len = loop {
            match reply_len(&self.rbuf) {
                Ok(Some(len)) => break len,
                Ok(None) => {}
                Err(e) => return Err(OpenError::Fault(e.to_string())),
            }
            if s.read_buf(&mut self.rbuf).await.map_err(failed)? == 0 {
                return Err(OpenError::Fault(
                    "HELLO 3 failed (connection closed)".into(),
                ));
            }
        };
        let refused = (self.rbuf[0] == b'-').then(|| {
            let text = String::from_utf8_lossy(&self.rbuf[1..len]);
            format!("no RESP3 (HELLO 3: {})", text.trim_end())
        });
        self.rbuf.advance(len);
        match refused {
            Some(reason) => Err(OpenError::Refused(reason)),
            None => Ok(s),
        }
    }

    /// Writes `first` and every other request already queued, in one write.
    async fn write(
        &mut self,
        s: &mut TcpStream,
        first: Request,
        rx: &mut mpsc::UnboundedReceiver<Request>,
    ) -> Result<(), String> {
        // Let every client task that is ready run first, so the requests they queue for this backend go out in this
        // same write: one write (and one wake-up of the backend) per scheduler round rather than per request, as an
        // event loop like twemproxy's batches naturally. Without this, tokio runs this task right after the client
        // that woke it, and each write carries one request.
        tokio::task::yield_now().await;
        let deadline = self.request_timeout.map(|t| Instant::now() + t);
        self.wbuf.clear();
        let mut next = Some(first);
        while let Some(req) = next {
            let loading = req.load.as_ref().and_then(|script| {
                if self.has_loaded(&script.sha) {
                    return None;
                }
                self.wbuf.extend_from_slice(&script_load(&script.body));
                Some((script.sha.clone(), self.loaded.1))
            });
            self.wbuf.extend_from_slice(&req.bytes);
            self.pending.push_back(Waiting::new(req, deadline, loading));
            next = if self.wbuf.len() < 256 * 1024 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let limit = self.request_timeout.unwrap_or(Duration::MAX);
        let written = timeout(limit, s.write_all(&self.wbuf)).await;
        if self.wbuf.capacity() > BUFFER_KEEP {
            self.wbuf = Vec::new();
        }
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed ({e})")),
            Err(_) => Err(format!("write timed out after {} ms", limit.as_millis())),
        }
    }

    /// Whether this connection loaded script `sha` since it was made and since the last SCRIPT FLUSH through the proxy.
    fn has_loaded(&mut self, sha: &str) -> bool {
        let flushes = self.health.script_flushes.load(Ordering::Acquire);
        if self.loaded.1 != flushes {
            self.loaded = (HashSet::new(), flushes);
        }
        self.loaded.0.contains(sha)
    }

    /// Hands every complete reply in the read buffer to its waiting request. The complete replies of one request are
    /// found first and copied at once (a batch's replies usually arrive together).
    fn deliver(&mut self) -> Result<(), String> {
        let scan = |buf: &[u8]| reply_len(buf).map_err(|e| e.to_string());
        loop {
            let Some(front) = self.pending.front_mut() else {
                return match scan(&self.rbuf)? {
                    Some(_) => Err("reply without a request".into()),
                    None => Ok(()),
                };
            };
            if let Some((sha, flushes)) = front.loading.take() {
                // The reply of the SCRIPT LOAD written ahead of a script call: the script's SHA1 when it loaded.
                let Some(len) = scan(&self.rbuf)? else {
                    front.loading = Some((sha, flushes));
                    return Ok(());
                };
                front.replies -= 1;
                let flushed = self.health.script_flushes.load(Ordering::Acquire) != flushes;
                if self.rbuf.starts_with(b"$40\r\n") && !flushed {
                    self.loaded.0.insert(sha);
                }
                connection::consume(&mut self.rbuf, len, READ_CAPACITY);
                continue;
            }
            // The replies complete in the buffer, up to what `front` awaits: where they end and the last starts.
            let (mut end, mut last, mut n) = (0, 0, 0);
            while n < front.replies {
                let Some(len) = scan(&self.rbuf[end..])? else {
                    break;
                };
                (last, end, n) = (end, end + len, n + 1);
            }
            if n == 0 {
                return Ok(());
            }
            front.replies -= n;
            if let Some(got) = &mut front.got {
                got.extend_from_slice(&self.rbuf[..end]);
            }
            if front.replies == 0 {
                let done = self.pending.pop_front().expect("front exists");
                let reply = done.got.unwrap_or_else(|| self.rbuf[last..end].to_vec());
                let _ = done.tx.send(reply);
                self.health
                    .requests
                    .fetch_add(done.requests, Ordering::Relaxed);
                self.health.ok();
            }
            connection::consume(&mut self.rbuf, end, READ_CAPACITY);
        }
    }

    /// A subscriber connection's life (see [`Backend::subscriber`]): None once its client dropped it, else why it
    /// failed. Confirmations are counted off the oldest request (an error settles it whole), so a request that goes
    /// unacknowledged past the time-out fails the connection; messages are passed on as they come, and a session that
    /// does not take them holds this task back, and the backend with it (whose output-buffer limit then applies).
    async fn subscribed(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<(Vec<u8>, usize)>,
        id: usize,
        events: &SubEvents,
    ) -> Option<String> {
        let mut next = rx.recv().await;
        next.as_ref()?;
        let mut s = match self.connect().await {
            Ok(s) => s,
            Err(reason) => return Some(reason),
        };
        let limit = self.request_timeout.unwrap_or(Duration::MAX);
        // Per request written, oldest first: its deadline and the confirmations still expected.
        let mut awaiting: VecDeque<(Instant, usize)> = VecDeque::new();
        let mut open = true;
        let fault = loop {
            if let Some((bytes, acks)) = next.take() {
                match timeout(limit, s.write_all(&bytes)).await {
                    Ok(Ok(())) => awaiting.push_back((Instant::now() + limit, acks.max(1))),
                    Ok(Err(e)) => break format!("write failed ({e})"),
                    Err(_) => break format!("write timed out after {} ms", limit.as_millis()),
                }
            }
            if !open && awaiting.is_empty() {
                return None;
            }
            let deadline = awaiting.front().map(|a| a.0);
            tokio::select! {
                req = rx.recv(), if open => match req {
                    Some(req) => next = Some(req),
                    None => open = false,
                },
                read = s.read_buf(&mut self.rbuf) => match read {
                    Ok(0) => break "connection lost".to_string(),
                    Err(e) => break format!("connection lost ({e})"),
                    Ok(_) => loop {
                        let len = match reply_len(&self.rbuf) {
                            Ok(Some(len)) => len,
                            Ok(None) => break,
                            Err(e) => return Some(e.to_string()),
                        };
                        let frame = self.rbuf.split_to(len).to_vec();
                        let event = if matches!(frame.first(), Some(b'-' | b'!')) {
                            awaiting.pop_front();
                            SubEvent::Ack(Some(frame))
                        } else if super::resp::frame_kind(&frame)
                            .is_some_and(|k| [&b"message"[..], b"pmessage", b"smessage"].contains(&k))
                        {
                            SubEvent::Message(frame)
                        } else {
                            let Some(front) = awaiting.front_mut() else {
                                return Some("reply without a request".into());
                            };
                            front.1 -= 1;
                            if front.1 == 0 {
                                awaiting.pop_front();
                            }
                            self.health.ok();
                            SubEvent::Ack(None)
                        };
                        if events.send((id, event)).await.is_err() {
                            return None;
                        }
                    },
                },
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    break format!("timed out after {} ms", limit.as_millis());
                },
            }
        };
        self.health.failed(&fault);
        Some(fault)
    }

    fn fail(&self, req: Request, reason: &str) {
        Waiting::new(req, None, None).fail(&unavailable(&self.addr, reason));
    }

    fn fail_all(&mut self, reason: &str) {
        let error = unavailable(&self.addr, reason);
        for w in self.pending.drain(..) {
            w.fail(&error);
        }
    }
}

/// The address the proxy listens on, once bound.
static LISTENING: OnceLock<SocketAddr> = OnceLock::new();

/// Records the address the proxy listens on, so a backend that turns out to be the proxy itself is refused.
pub fn set_listening(addr: SocketAddr) {
    let _ = LISTENING.set(addr);
}

/// Whether `s` reached the proxy itself: a backend named by a host name or a form of its address (`127.1`) that
/// `RING ADD`'s check cannot see through. Forwarding there would send each request around again until it timed out.
fn is_this_proxy(s: &TcpStream) -> bool {
    let (Some(own), Ok(peer), Ok(local)) = (LISTENING.get(), s.peer_addr(), s.local_addr()) else {
        return false;
    };
    // Bound to every address, the proxy is behind each of this host's (a connection to one comes from it).
    let ours = |ip: IpAddr| {
        ip == own.ip() || (own.ip().is_unspecified() && (ip.is_loopback() || ip == local.ip()))
    };
    peer.port() == own.port() && ours(peer.ip())
}

/// Why a connection could not be opened.
enum OpenError {
    /// The backend is unreachable or broke the protocol (counts against its health).
    Fault(String),
    /// The backend refused `HELLO 3`: it is up, but cannot serve RESP3 clients.
    Refused(String),
}

/// Resolves when the client of the oldest waiting request has stopped waiting for it.
async fn front_abandoned(pending: &mut VecDeque<Waiting>) {
    match pending.front_mut() {
        Some(w) => w.tx.closed().await,
        None => std::future::pending().await,
    }
}
