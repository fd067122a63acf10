//! One proxy client: parse its requests, route each, and write the replies back in request order.
//!
//! Each request becomes a `Pending` reply: ready bytes (answered by the proxy), a future of the backend reply(ies), or
//! for a plain request the next reply of its backend's batch (the [`Outbox`] gathers the plain requests of one read per
//! backend). Replies are written strictly in request order, so a pipeline that spans backends is answered in the
//! order it was sent. A request's keys are read through the shared command table
//! ([`cmd::resolve`] then [`CommandSpec::key_indices`]); its bytes are forwarded as received.
//!
//! Routing rules:
//! - all keys on one backend: forwarded as is (blocking pops on a dedicated connection, without time-out);
//! - MGET, DEL, UNLINK, EXISTS, TOUCH, MSET: split per backend and merged (MGET in key order, counts summed);
//! - other commands whose keys span backends (MSETNX included): `CROSSSLOT`, never a partial answer;
//! - DBSIZE, FLUSHALL, FLUSHDB, KEYS, SCAN: every backend (SCAN's cursor = backend cursor x backends + backend index);
//! - EVAL/EVALSHA (and _RO): by their keys, or without keys by the script's SHA1 placed on the ring like a key; SCRIPT
//!   LOAD/EXISTS/FLUSH/KILL: every backend. Bodies seen are remembered so a backend's `NOSCRIPT` is repaired (when
//!   the client sent nothing after the call);
//! - FCALL/FCALL_RO: by their keys, or without keys by the function's name placed on the ring; FUNCTION LOAD/DELETE/
//!   FLUSH/RESTORE/KILL/LIST/STATS/DUMP: every backend (a backend added later does not get the libraries);
//! - PUBLISH, SPUBLISH: the backend owning the channel as if it were a key; (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE on
//!   the client's own subscriber connections, their messages written between replies ([`super::pubsub`]); PUBSUB's
//!   counts and lists: every backend, merged;
//! - PING, ECHO, HELLO, COMMAND, CLIENT, SELECT, QUIT, INFO (its keyspace summed over the backends), RING: answered by
//!   the proxy, in the client's protocol (after `HELLO 3` its requests also take the backends' RESP3 connections, so
//!   their replies pass through as is);
//! - MULTI ... EXEC: queued here and sent as one bundle to the single backend of its keys; WATCH pins the client to a
//!   dedicated connection to the watched keys' backend until EXEC, DISCARD or UNWATCH.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::backend::{script_load, Backend, Batch, Dedicated, Lane, Outbox, Script, SubEvent};
use super::passthrough;
use super::pubsub::{self, Acks, Subscriptions};
use super::resp;
use super::{ProxyState, Topology};
use crate::client::Client;
use crate::cmd::ring::{Change, NodeState, RingView};
use crate::cmd::{self, args, flag, CmdError, CommandSpec, Flow, Keys};
use crate::connection::{self, BUFFER_KEEP, QUERY_BUFFER_LIMIT};
use crate::protocol::{Argv, Reply, RequestParser};
use crate::store::HeldShard;

/// A reply that is ready or will be.
enum Pending {
    Ready(Vec<u8>),
    /// The next reply of the batch with this id (see [`Outbox`]).
    Part(u64),
    Wait(Pin<Box<dyn Future<Output = Vec<u8>> + Send>>),
    /// A blocking command's reply; dropping it closes the command's connection, so the backend drops the command.
    Blocked(Pin<Box<dyn Future<Output = Vec<u8>> + Send>>),
    /// Write this last reply, then close (QUIT, a protocol error, a lost subscriber connection).
    Close(Vec<u8>),
    /// (Un)subscribe confirmations, ready once the subscriber connections involved acknowledged them.
    Acks(Acks),
    /// A message from subscriber connection `.0`.
    Push(usize, Vec<u8>),
}

fn wait(f: impl Future<Output = Vec<u8>> + Send + 'static) -> Pending {
    Pending::Wait(Box::pin(f))
}

fn error(e: impl std::fmt::Display) -> Pending {
    let mut r = Reply::new(false);
    r.error(&e.to_string());
    Pending::Ready(r.buf)
}

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
const READ_CHUNK: usize = 16 * 1024;

/// Serves one client until it quits or disconnects.
///
/// One task does both halves: it reads and routes requests while replies are owed, and whenever the oldest owed reply
/// is ready it gathers every reply that is ready after it and writes them in one write. A single task (rather than a
/// reader and a writer task joined by a channel) saves a task wake-up and a channel hop per request, which is most of
/// a proxy's own cost on a request that is not pipelined.
pub async fn handle(stream: TcpStream, state: Arc<ProxyState>, client: Client) {
    let id = client.info.id;
    let (mut rd, mut wr) = stream.into_split();
    // Bounded: a client that does not read its messages holds its subscriber connections back, and so the backends.
    let (events, mut messages) = mpsc::channel(1024);
    let mut session = Session {
        state: state.clone(),
        client,
        slot: id as usize,
        multi: None,
        watch: None,
        subs: Subscriptions::new(events),
        outbox: Outbox::default(),
        held: false,
    };
    match session.serve(&mut rd, &mut wr, &mut messages).await {
        Ok(()) => {}
        Err(e) => tracing::debug!(id, "proxy client closed: {e}"),
    }
    // Dropping the session drops the replies still owed (as Redis drops what a gone client can no longer read), and
    // with them any dedicated connection, so a blocked pop cannot take an element for a client that left.
    drop(session);
    state.local.clients.unregister(id);
}

/// Replies owed to one client, oldest first.
#[derive(Default)]
struct Owed {
    queue: VecDeque<Pending>,
    /// The batches the queue's `Part`s take their replies from, oldest first.
    batches: VecDeque<Batch>,
    /// Replies gathered for the next write.
    out: Vec<u8>,
    /// A `Close` reply was gathered: write, then close.
    closing: bool,
}

impl Owed {
    /// Moves every reply that is ready at the front of the queue into `out`, stopping at the first one still awaited
    /// (polled without a waker: the caller awaits it next, which registers one).
    fn gather(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        while let Some(front) = self.queue.front_mut() {
            let bytes = match front {
                Pending::Part(id) => {
                    let id = *id;
                    let at = self.batch(id);
                    let batch = &mut self.batches[at];
                    if batch.poll_ready(&mut cx).is_pending() {
                        return;
                    }
                    if batch.take(&mut self.out) {
                        self.batches.remove(at);
                    }
                    self.queue.pop_front();
                    continue;
                }
                Pending::Ready(bytes) => std::mem::take(bytes),
                Pending::Wait(f) | Pending::Blocked(f) => match f.as_mut().poll(&mut cx) {
                    Poll::Ready(bytes) => bytes,
                    Poll::Pending => return,
                },
                Pending::Close(bytes) => {
                    self.closing = true;
                    std::mem::take(bytes)
                }
                Pending::Acks(acks) if acks.done() => acks.take(),
                Pending::Acks(_) => return,
                Pending::Push(_, bytes) => std::mem::take(bytes),
            };
            self.out.extend_from_slice(&bytes);
            self.queue.pop_front();
            if self.closing {
                self.queue.clear();
                return;
            }
        }
    }

    /// Where batch `id` is among the batches (every `Part` in the queue has its batch there).
    fn batch(&self, id: u64) -> usize {
        let at = self.batches.iter().position(|b| b.id == id);
        at.expect("a Part's batch is kept until its last reply is taken")
    }

    /// Resolves when the oldest owed reply is ready (never, if none is owed).
    async fn front_ready(&mut self) {
        match self.queue.front_mut() {
            Some(Pending::Part(id)) => {
                let id = *id;
                let at = self.batch(id);
                let batch = &mut self.batches[at];
                std::future::poll_fn(|cx| batch.poll_ready(cx)).await;
            }
            Some(Pending::Wait(f) | Pending::Blocked(f)) => {
                let bytes = f.await;
                self.queue[0] = Pending::Ready(bytes);
            }
            // Settled by the subscriber connections' events, which the session awaits alongside.
            Some(Pending::Acks(acks)) if !acks.done() => std::future::pending().await,
            Some(_) => {}
            None => std::future::pending().await,
        }
    }

    /// Takes one event of subscriber connection `conn` (`live`: the client still subscribes through it); on its loss,
    /// returns the error reply to close the client with (empty when a confirmation already carries it).
    fn event(&mut self, conn: usize, live: bool, event: SubEvent) -> Option<Vec<u8>> {
        let waiting = |p: &Pending| matches!(p, Pending::Acks(a) if a.waits_on(conn));
        match event {
            SubEvent::Ack(error) => {
                if let Some(Pending::Acks(acks)) = self.queue.iter_mut().find(|p| waiting(p)) {
                    acks.ack(conn, error);
                }
                None
            }
            // A connection given up without unsubscribing (RESET) is closing: what it still sends is for nobody.
            SubEvent::Message(_) if !live && !self.queue.iter().any(waiting) => None,
            SubEvent::Message(bytes) => {
                // Before the first confirmation this connection still owes (an UNSUBSCRIBE's confirmation follows
                // the messages sent before it), else after the last reply it took part in (a SUBSCRIBE's confirmation
                // precedes the messages it brings, and messages keep their order), else at the next reply boundary.
                let at = self.queue.iter().position(waiting).unwrap_or_else(|| {
                    self.queue
                        .iter()
                        .rposition(|p| match p {
                            Pending::Acks(a) => a.involves(conn),
                            Pending::Push(c, _) => *c == conn,
                            _ => false,
                        })
                        .map_or(0, |i| i + 1)
                });
                self.queue.insert(at, Pending::Push(conn, bytes));
                None
            }
            SubEvent::Lost(error) => {
                let mut settled = false;
                for p in self.queue.iter_mut() {
                    if let Pending::Acks(acks) = p {
                        while acks.waits_on(conn) {
                            acks.ack(conn, Some(error.clone()));
                            settled = true;
                        }
                    }
                }
                Some(if settled { Vec::new() } else { error })
            }
        }
    }
}

/// Most replies owed to one client before the proxy stops reading its requests (a client that pipelines without
/// reading its replies is held back here instead of growing the proxy's memory).
const MAX_OWED: usize = 4096;

impl Session {
    /// Reads, routes and answers requests until the client quits (its replies written) or goes away.
    async fn serve(
        &mut self,
        rd: &mut OwnedReadHalf,
        wr: &mut OwnedWriteHalf,
        messages: &mut mpsc::Receiver<(usize, SubEvent)>,
    ) -> std::io::Result<()> {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut parser = RequestParser::new(self.state.local.settings.proto_max_bulk_len());
        let info = self.client.info.clone();
        let killed = info.killed();
        tokio::pin!(killed);
        let mut owed = Owed::default();
        let mut reading = true;
        loop {
            owed.gather();
            if self.held && owed.queue.is_empty() {
                // What held the requests back answered: route them.
                self.held = false;
                reading = self.route_all(&mut parser, &mut rbuf, &mut owed);
                continue;
            }
            // Write when nothing more is ready to join this write (or it is large already).
            let front_waits = !owed.queue.is_empty();
            if !owed.out.is_empty() && (!front_waits || owed.out.len() >= 64 * 1024) {
                wr.write_all(&owed.out).await?;
                owed.out.clear();
                if owed.out.capacity() > BUFFER_KEEP {
                    owed.out = Vec::new();
                }
            }
            if owed.closing {
                let _ = wr.shutdown().await;
                return Ok(());
            }
            if !reading && owed.queue.is_empty() {
                return Ok(());
            }
            if rbuf.capacity() - rbuf.len() < READ_CHUNK {
                rbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                _ = &mut killed => return Ok(()),
                () = owed.front_ready(), if front_waits => {}
                Some((conn, event)) = messages.recv() => {
                    let live = self.subs.live(conn);
                    if let Some(close) = owed.event(conn, live, event) {
                        // Subscriptions were lost: the client must know (see the pubsub module).
                        if live {
                            owed.queue.push_back(Pending::Close(close));
                            reading = false;
                        }
                    }
                }
                // Held, it still reads (up to Redis's query buffer limit), to see the client leave.
                n = rd.read_buf(&mut rbuf), if reading && owed.queue.len() < MAX_OWED => {
                    if n? == 0 {
                        // The client closed its side. Redis answers what it read before the end (it ran it already)
                        // but drops a client blocked by then: so are the replies owed, up to a blocking command.
                        if let Some(at) = owed.queue.iter().position(|p| matches!(p, Pending::Blocked(_))) {
                            owed.queue.truncate(at);
                            rbuf.clear();
                            self.held = false;
                        }
                        reading = false;
                        continue;
                    }
                    if rbuf.len() > QUERY_BUFFER_LIMIT {
                        return Ok(());
                    }
                    info.touch();
                    reading = self.route_all(&mut parser, &mut rbuf, &mut owed);
                }
            }
        }
    }

    /// Routes every complete request in `rbuf`, queueing its reply, then sends what was gathered; false once no more
    /// requests may be read (QUIT, a protocol error).
    fn route_all(
        &mut self,
        parser: &mut RequestParser,
        rbuf: &mut BytesMut,
        owed: &mut Owed,
    ) -> bool {
        let queue = &mut owed.queue;
        let mut at = 0;
        // Taken once per read and again only when the ring changed (RING ADD, an ejection): the lock and reference
        // count of every request's snapshot were a visible share of the proxy's time.
        let mut topo = self.state.topology();
        let more = loop {
            if self.held {
                break true;
            }
            match parser.parse(&rbuf[at..]) {
                Ok(Some(used)) => {
                    let raw = &rbuf[at..at + used];
                    let argv = parser.argv(&rbuf[at..]);
                    if argv.is_empty() {
                        at += used;
                        continue;
                    }
                    let resolved = cmd::resolve_with_parent(argv);
                    let alone = self.routed_alone(argv, &resolved);
                    if alone && !queue.is_empty() {
                        self.held = true;
                        break true;
                    }
                    at += used;
                    let watching = self.watch.is_some();
                    if topo.epoch != self.state.epoch() {
                        topo = self.state.topology();
                    }
                    let pending = self.route(argv, raw, &topo, resolved);
                    self.held |= alone || watching || self.watch.is_some();
                    let close = matches!(pending, Pending::Close(_));
                    queue.push_back(pending);
                    if close {
                        break false;
                    }
                }
                Ok(None) => break true,
                Err(e) => {
                    let mut r = Reply::new(false);
                    r.error(&format!("ERR {e}"));
                    queue.push_back(Pending::Close(r.buf));
                    break false;
                }
            }
        };
        connection::consume(rbuf, at, READ_CHUNK);
        self.outbox.flush();
        owed.batches.extend(self.outbox.take_sent());
        more
    }
}

/// Whether a command may block: the BLOCKING ones, except XREAD and XREADGROUP without a BLOCK option (they answer
/// at once, and so go on the shared connection like any read).
fn blocks(spec: &CommandSpec, argv: Argv<'_>) -> bool {
    if !spec.has(flag::BLOCKING) {
        return false;
    }
    // XREADGROUP's options follow GROUP group consumer (which may be named "block").
    let options = match spec.name {
        "xread" => 1,
        "xreadgroup" => 4,
        _ => return true,
    };
    argv.iter_from(options)
        .take_while(|a| !args::is(a, "streams"))
        .any(|a| args::is(a, "block"))
}

/// Keyless commands a transaction carries to whichever backend runs it: their replies do not depend on it.
const ANY_BACKEND_IN_MULTI: &[&str] = &["ping", "echo", "unwatch"];

/// A request's command and, for a subcommand, its container (see [`cmd::resolve_with_parent`]).
type Resolved = Result<(&'static CommandSpec, &'static CommandSpec), CmdError>;

/// Merges the per-backend replies of a split command, given each backend's key ordinals.
type SplitMerge = fn(Vec<Vec<u8>>, Vec<Vec<usize>>) -> Vec<u8>;

/// One backend's share of a split command: backend index, key ordinals, arguments to send.
type Part<'a> = (usize, Vec<usize>, Vec<&'a [u8]>);

/// An open MULTI: the queued requests, the backend they all map to, and whether one was refused.
struct Multi {
    queued: Vec<Vec<u8>>,
    /// SCRIPT LOAD requests sent before MULTI (scripts the queued EVALSHAs need).
    preload: Vec<Vec<u8>>,
    /// The backend, by its index in the ring of `epoch`.
    backend: Option<usize>,
    /// The ring's epoch when the transaction (or the WATCH before it) began: once the ring changes, the keys may have
    /// moved to another backend, and the transaction is discarded rather than run where they no longer live.
    epoch: u64,
    failed: bool,
}

/// Why a transaction that spans a ring change is refused.
const RING_CHANGED: &str =
    "the ring changed while the transaction was queued (RING ADD, REMOVE or WEIGHT, or a \
     backend ejected or readmitted), so its keys may have moved";

/// A WATCH in force: the backend of the watched keys and the client's own connection to it.
struct Watch {
    /// The backend's address.
    addr: String,
    /// The ring's epoch at the first WATCH.
    epoch: u64,
    conn: Dedicated,
    /// A WATCH on this connection was answered OK: from then on, losing the connection loses a WATCH in force.
    watching: Arc<AtomicBool>,
}

struct Session {
    state: Arc<ProxyState>,
    client: Client,
    slot: usize,
    multi: Option<Multi>,
    watch: Option<Watch>,
    subs: Subscriptions,
    outbox: Outbox,
    /// The requests after the last one routed wait unparsed until every owed reply is written. Set by a blocking
    /// command, as Redis leaves a blocked client's input unprocessed, so none runs before it (a push it would pop) or
    /// for a client that leaves while blocked (a pop nobody reads); by a request [`routed_alone`]; and by every
    /// request of a watching client (WATCH to EXEC, DISCARD or UNWATCH), whose WATCH connection and shared
    /// connections reach the backend separately: one request at a time keeps the order one Redis connection would.
    held: bool,
}

impl Session {
    /// The client's protocol: replies are made in it, and backend requests take connections that speak it.
    fn resp3(&self) -> bool {
        self.client.info.resp.load(Ordering::Relaxed) == 3
    }

    fn lane(&self) -> Lane {
        Lane {
            slot: self.slot,
            resp3: self.resp3(),
        }
    }

    /// Sends `bytes` (producing `replies` replies) on `backend`'s shared connection, in request order.
    fn send(
        &mut self,
        backend: &Backend,
        bytes: Vec<u8>,
        replies: usize,
    ) -> impl Future<Output = Vec<u8>> {
        let lane = self.lane();
        backend.send(&mut self.outbox, lane, bytes, replies)
    }

    /// Sends `raw` to every backend and merges the replies.
    fn fan_out(
        &mut self,
        topo: &Topology,
        raw: &[u8],
        merge: impl FnOnce(Vec<Vec<u8>>) -> Vec<u8> + Send + 'static,
    ) -> Pending {
        let sent: Vec<_> = topo
            .backends
            .iter()
            .enumerate()
            .filter(|(i, _)| topo.ejected[*i].is_none())
            .map(|(_, b)| self.send(b, raw.to_vec(), 1))
            .collect();
        if sent.is_empty() {
            return error(no_backend());
        }
        wait(async move {
            let mut replies = Vec::with_capacity(sent.len());
            for f in sent {
                replies.push(f.await);
            }
            merge(replies)
        })
    }

    /// Requests routed alone, after every earlier reply and before any later request, because they and what follows
    /// them take other backend connections than what came before: WATCH (its own connection), HELLO and RESET (they
    /// may switch the client to the other protocol's shared connections), (un)subscriptions (the client's
    /// subscriber connections: a PUBLISH pipelined after a SUBSCRIBE must find the subscription made), and outside
    /// MULTI a command that may block (a connection of its own, which the requests before it on the shared one could
    /// otherwise reach the backend after: `SET k v` then `BLPOP k` must see the SET).
    fn routed_alone(&self, argv: Argv<'_>, resolved: &Resolved) -> bool {
        let Ok((parent, spec)) = resolved else {
            return false;
        };
        match parent.name {
            "watch" | "hello" | "reset" => true,
            name if pubsub::command(name).is_some() => true,
            _ => self.multi.is_none() && blocks(spec, argv),
        }
    }

    /// An empty reply in the client's protocol.
    fn reply(&self) -> Reply {
        Reply::new(self.resp3())
    }

    /// Turns one request, `resolved` in the command table, into its reply.
    fn route(
        &mut self,
        argv: Argv<'_>,
        raw: &[u8],
        topo: &Topology,
        resolved: Resolved,
    ) -> Pending {
        let (parent, spec) = match resolved {
            Ok(found) => found,
            Err(e) if argv.get(0).eq_ignore_ascii_case(b"exec") => {
                // As Redis's execCommandAbort: a rejected EXEC (wrong arity) discards the transaction and the
                // WATCHes, in or out of MULTI.
                self.multi = None;
                self.watch = None;
                let e = e.to_string();
                return error(format!(
                    "EXECABORT Transaction discarded because of: {}",
                    e.strip_prefix("ERR ").unwrap_or(&e)
                ));
            }
            Err(e) => {
                let refused = match passthrough::lookup(argv.get(0)) {
                    Some(spec) => match passthrough::refusal(argv) {
                        None => Ok((spec, spec)),
                        Some(refused) => Err(refused),
                    },
                    None => Err(e.to_string()),
                };
                match refused {
                    Ok(found) => found,
                    Err(e) => {
                        if let Some(m) = &mut self.multi {
                            m.failed = true;
                        }
                        return error(e);
                    }
                }
            }
        };
        // The command's name as the table spells it (lower case).
        let name = parent.name;
        if !self.resp3() && self.subs.active() {
            // A subcommand resolves to its own spec: Redis names it `parent|sub`.
            let sub = (!std::ptr::eq(parent, spec)).then_some(spec.name);
            if let Some(e) = cmd::pubsub::refused_while_subscribed(name, sub) {
                return error(e);
            }
            if name == "ping" {
                // RESP2 subscriber mode answers PING as a message-shaped pair.
                let mut out = self.reply();
                out.array(2);
                out.bulk(b"pong");
                out.bulk(if argv.len() > 1 { argv.get(1) } else { b"" });
                return Pending::Ready(out.buf);
            }
        }
        match name {
            "multi" => return self.multi_start(topo),
            "exec" => return self.exec(topo),
            "discard" => return self.discard(),
            "watch" => return self.watch(spec, argv, raw, topo),
            // Inside MULTI, UNWATCH is queued like any command (as in Redis).
            "unwatch" if self.multi.is_none() => return self.unwatch(),
            "quit" => return Pending::Close(b"+OK\r\n".to_vec()),
            "reset" => {
                self.subs.reset();
                self.multi = None;
                self.watch = None;
                return self.local(argv);
            }
            _ => {}
        }
        if let Some(m) = self.multi.as_mut() {
            // SSUBSCRIBE names its channels as keys: queued, it would turn a shared backend connection into a
            // subscriber.
            if pubsub::command(name).is_some() {
                m.failed = true;
                return error(format!(
                    "ERR '{name}' inside MULTI is not supported by the proxy"
                ));
            }
            return self.queue(spec, argv, raw, topo);
        }
        match name {
            "ping" | "echo" | "command" | "select" | "auth" => self.local(argv),
            "hello" => self.hello(argv),
            "client" => self.client_cmd(argv),
            "info" => self.info(argv, topo),
            "ring" => self.ring(argv, topo),
            "dbsize" => self.fan_out(topo, raw, merge_sum),
            "flushall" | "flushdb" => self.fan_out(topo, raw, merge_ok),
            "keys" => self.fan_out(topo, raw, merge_concat),
            "scan" => self.scan(argv, topo),
            "mget" => self.split(spec, argv, raw, topo, 1, merge_mget),
            "del" | "unlink" | "exists" | "touch" => {
                self.split(spec, argv, raw, topo, 1, |parts, _| merge_sum(parts))
            }
            // An odd argument count must fail as a whole, before any part is written.
            "mset" if argv.len() % 2 == 0 => error(CmdError::WrongArity("mset".into())),
            "mset" => self.split(spec, argv, raw, topo, 2, |parts, _| merge_ok(parts)),
            "eval" | "eval_ro" | "evalsha" | "evalsha_ro" => {
                self.script_call(spec, argv, raw, topo)
            }
            "script" => self.script_cmd(argv, raw, topo),
            "function" => self.function_cmd(argv, raw, topo),
            "pubsub" => self.pubsub_cmd(argv, raw, topo),
            _ if pubsub::command(name).is_some() => self.subscription(name, argv, topo),
            _ => self.forward(spec, argv, raw, topo),
        }
    }

    /// (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE (see the pubsub module).
    fn subscription(&mut self, name: &str, argv: Argv<'_>, topo: &Topology) -> Pending {
        let Some((kind, subscribe)) = pubsub::command(name) else {
            return error("ERR internal: not a subscription command");
        };
        let names: Vec<&[u8]> = argv.iter_from(1).collect();
        let resp3 = self.resp3();
        let acks = if subscribe {
            match self.subs.subscribe(kind, names, topo, resp3) {
                Ok(acks) => acks,
                Err(e) => return error(e),
            }
        } else {
            self.subs.unsubscribe(kind, names, resp3)
        };
        Pending::Acks(acks)
    }

    /// PUBSUB CHANNELS / SHARDCHANNELS / NUMSUB / SHARDNUMSUB / NUMPAT: every backend, merged; HELP here.
    fn pubsub_cmd(&mut self, argv: Argv<'_>, raw: &[u8], topo: &Topology) -> Pending {
        let sub = String::from_utf8_lossy(argv.get(1)).to_ascii_lowercase();
        let raw = &request_bytes(argv, raw);
        match sub.as_str() {
            "channels" | "shardchannels" => self.fan_out(topo, raw, pubsub::merge_union),
            "numsub" | "shardnumsub" => self.fan_out(topo, raw, pubsub::merge_numsub),
            "numpat" => self.fan_out(topo, raw, pubsub::merge_max),
            _ => self.local(argv),
        }
    }

    /// Runs a keyless command on the proxy's local command table.
    fn local(&mut self, argv: Argv<'_>) -> Pending {
        let mut out = self.reply();
        match cmd::dispatch(
            &self.state.local,
            &mut self.client,
            argv,
            &mut out,
            &mut HeldShard::new(&self.state.local.store, false),
        ) {
            Flow::Close => Pending::Close(out.buf),
            _ => Pending::Ready(out.buf),
        }
    }

    /// HELLO, answered here. A client that switches protocol while it watches has its WATCH connection switched
    /// too (before the answer), so that EXEC's reply, which comes from there, is in the protocol it now speaks.
    fn hello(&mut self, argv: Argv<'_>) -> Pending {
        let before = self.resp3();
        let answer = self.local(argv);
        let switched = self.resp3() != before;
        match (&self.watch, answer) {
            (Some(watch), Pending::Ready(answer)) if switched => {
                let proto: &[u8] = if self.resp3() { b"3" } else { b"2" };
                let hello = encode([&b"HELLO"[..], proto].into_iter());
                let done = watch.conn.send(&mut self.outbox, hello, 1);
                let (info, previous) = (self.client.info.clone(), if before { 3 } else { 2 });
                wait(async move {
                    let refused = done.await;
                    if refused.starts_with(b"-") {
                        // The watched backend cannot switch (no RESP3): neither does the client, as after a HELLO
                        // Redis refuses. Nothing was routed meanwhile: HELLO is routed alone.
                        info.resp.store(previous, Ordering::Relaxed);
                        return refused;
                    }
                    answer
                })
            }
            (_, answer) => answer,
        }
    }

    fn client_cmd(&mut self, argv: Argv<'_>) -> Pending {
        const SUPPORTED: &[&str] = &[
            "setname", "getname", "id", "setinfo", "list", "info", "help", "kill",
        ];
        let sub = String::from_utf8_lossy(argv.get(1)).to_ascii_lowercase();
        if !SUPPORTED.contains(&sub.as_str()) {
            return error(format!(
                "ERR CLIENT {} is not supported by the proxy",
                sub.to_ascii_uppercase()
            ));
        }
        self.local(argv)
    }

    /// Sends a request to the single backend of its keys.
    fn forward(
        &mut self,
        spec: &CommandSpec,
        argv: Argv<'_>,
        raw: &[u8],
        topo: &Topology,
    ) -> Pending {
        let backend = match owner(spec, argv, topo) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return error(format!(
                    "ERR '{}' names no key, so the proxy cannot route it",
                    String::from_utf8_lossy(argv.get(0))
                ))
            }
            Err(e) => return error(e),
        };
        let backend = &topo.backends[backend];
        if blocks(spec, argv) {
            self.held = true;
            let conn = backend.dedicated(self.resp3(), true);
            let reply = conn.send(&mut self.outbox, request_bytes(argv, raw), 1);
            // The connection closes once this future (so the client) stops waiting.
            return Pending::Blocked(Box::pin(async move { (reply.await, conn).0 }));
        }
        let lane = self.lane();
        Pending::Part(self.outbox.gather(backend, lane, &request_slice(argv, raw)))
    }

    /// Splits a multi-key command into one request per backend (keys grouped with their `group - 1` following
    /// arguments) and merges the replies with `merge(replies, key order)`.
    fn split(
        &mut self,
        spec: &CommandSpec,
        argv: Argv<'_>,
        raw: &[u8],
        topo: &Topology,
        group: usize,
        merge: SplitMerge,
    ) -> Pending {
        // Per backend: the key ordinals it got and the request it is sent.
        let mut parts: Vec<Part<'_>> = Vec::new();
        for (ordinal, i) in spec.key_indices(argv).enumerate() {
            let Some(b) = topo.locate(argv.get(i)) else {
                return error(no_backend());
            };
            let part = match parts.iter().position(|p| p.0 == b) {
                Some(p) => &mut parts[p],
                None => {
                    parts.push((b, Vec::new(), vec![argv.get(0)]));
                    parts.last_mut().expect("just pushed")
                }
            };
            part.1.push(ordinal);
            part.2.extend(
                (i..i + group)
                    .filter(|&j| j < argv.len())
                    .map(|j| argv.get(j)),
            );
        }
        if parts.len() == 1 {
            return wait(self.send(&topo.backends[parts[0].0], request_bytes(argv, raw), 1));
        }
        let order: Vec<Vec<usize>> = parts.iter().map(|p| p.1.clone()).collect();
        let sent: Vec<_> = parts
            .iter()
            .map(|(b, _, args)| self.send(&topo.backends[*b], encode(args.iter().copied()), 1))
            .collect();
        wait(async move {
            let mut replies = Vec::with_capacity(sent.len());
            for f in sent {
                replies.push(f.await);
            }
            merge(replies, order)
        })
    }

    /// EVAL / EVALSHA (and _RO): routed by their keys (or their SHA1 without keys). An EVAL's body is remembered; an
    /// EVALSHA of a remembered script is loaded ahead by a connection that has not loaded it (see
    /// [`Backend::call_script`]), and retried once if its backend still answers `NOSCRIPT` (flushed directly).
    fn script_call(
        &mut self,
        spec: &CommandSpec,
        argv: Argv<'_>,
        raw: &[u8],
        topo: &Topology,
    ) -> Pending {
        let backend = match owner(spec, argv, topo) {
            Ok(Some(b)) => topo.backends[b].clone(),
            Ok(None) => return error(no_backend()),
            Err(e) => return error(e),
        };
        let bytes = request_bytes(argv, raw);
        let Some(sha) = evalsha_target(argv) else {
            // Redis caches an EVAL's body once its numkeys is valid and the body compiles; a body that does not
            // compile is forgotten again when the backend says so (no backend can ever load it).
            let numkeys = crate::cmd::args::parse_i64(argv.get(2));
            if !numkeys.is_some_and(|n| n >= 0 && n as usize <= argv.len() - 3) {
                return wait(self.send(&backend, bytes, 1));
            }
            let sha = crate::script::sha1_hex(argv.get(1));
            self.state.remember_script(sha.clone(), argv.get(1));
            let state = self.state.clone();
            let reply = self.send(&backend, bytes, 1);
            return wait(async move { state.forget_if_uncompiled(&sha, reply.await) });
        };
        // The body as known now: a script the client loads only later in its pipeline must not repair this call
        // (on Redis it would fail with NOSCRIPT).
        let known = self.state.script(sha);
        let lane = self.lane();
        let script = known.clone().map(|body| Script {
            sha: String::from_utf8_lossy(sha).to_ascii_lowercase(),
            body,
        });
        let first = backend.call_script(&mut self.outbox, lane, bytes.clone(), script);
        let sends = self.outbox.sends();
        let sent = sends.load(Ordering::Relaxed);
        // NOSCRIPT despite that: the backend's scripts were flushed behind the proxy's back, so its connections load
        // them again before their next call. This call is loaded and retried unless the client sent anything after
        // it (which the backend has run, or will run, before a retry): then the client gets the NOSCRIPT, as from a
        // Redis whose scripts were flushed, rather than replies out of order.
        wait(async move {
            let reply = first.await;
            if !reply.starts_with(b"-NOSCRIPT") {
                return reply;
            }
            let Some(body) = known else {
                return reply;
            };
            backend.forget_scripts();
            if sends.load(Ordering::Relaxed) != sent {
                return reply;
            }
            let mut retry = script_load(&body);
            retry.extend_from_slice(&bytes);
            backend.resend(lane, retry, 2).await
        })
    }

    /// SCRIPT LOAD / EXISTS / FLUSH / KILL go to every backend; SCRIPT HELP is answered here.
    fn script_cmd(&mut self, argv: Argv<'_>, raw: &[u8], topo: &Topology) -> Pending {
        let sub = String::from_utf8_lossy(argv.get(1)).to_ascii_lowercase();
        let raw = &request_bytes(argv, raw);
        match sub.as_str() {
            "load" => {
                // Remembered now, in the client's order with SCRIPT FLUSH and EVALSHA (as EVAL's body is).
                let body = argv.get(2);
                let sha = crate::script::sha1_hex(body);
                self.state.remember_script(sha.clone(), body);
                let state = self.state.clone();
                self.fan_out(topo, raw, move |replies| {
                    state.forget_if_uncompiled(&sha, merge_same(replies))
                })
            }
            "exists" => {
                // A script whose body the proxy remembers runs wherever an EVALSHA goes (a NOSCRIPT is repaired).
                let known: Vec<bool> = argv
                    .iter_from(2)
                    .map(|sha| self.state.script(sha).is_some())
                    .collect();
                self.fan_out(topo, raw, move |replies| merge_exists(replies, &known))
            }
            "flush" => {
                self.state.forget_scripts();
                self.fan_out(topo, raw, merge_ok)
            }
            "kill" => self.fan_out(topo, raw, merge_any_ok),
            "help" => self.local(argv),
            _ => error(format!(
                "ERR SCRIPT {} is not supported by the proxy",
                sub.to_ascii_uppercase()
            )),
        }
    }

    /// FUNCTION LOAD / DELETE / FLUSH / RESTORE / KILL / LIST / STATS / DUMP go to every backend (LIST, STATS and DUMP
    /// answer with the first backend's reply, as all hold the same libraries); FUNCTION HELP is answered here.
    fn function_cmd(&mut self, argv: Argv<'_>, raw: &[u8], topo: &Topology) -> Pending {
        let sub = String::from_utf8_lossy(argv.get(1)).to_ascii_lowercase();
        let raw = &request_bytes(argv, raw);
        match sub.as_str() {
            "load" | "delete" | "flush" | "restore" | "list" | "stats" | "dump" => {
                self.fan_out(topo, raw, merge_same)
            }
            "kill" => self.fan_out(topo, raw, merge_any_ok),
            "help" => self.local(argv),
            _ => error(format!(
                "ERR FUNCTION {} is not supported by the proxy",
                sub.to_ascii_uppercase()
            )),
        }
    }

    fn scan(&mut self, argv: Argv<'_>, topo: &Topology) -> Pending {
        let n = topo.backends.len().max(1) as u64;
        let Some(cursor) = std::str::from_utf8(argv.get(1))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return error("ERR invalid cursor");
        };
        let (backend, inner) = ((cursor % n) as usize, cursor / n);
        let mut args: Vec<&[u8]> = argv.iter_from(0).collect();
        let inner_text = inner.to_string();
        args[1] = inner_text.as_bytes();
        let reply = self.send(&topo.backends[backend], encode(args.into_iter()), 1);
        wait(async move {
            let reply = reply.await;
            let Some([next, keys]) =
                resp::elements(&reply).and_then(|e| <[&[u8]; 2]>::try_from(e).ok())
            else {
                return reply;
            };
            let next = resp::bulk(next)
                .and_then(|b| std::str::from_utf8(b).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            let composite = match next {
                0 if backend as u64 + 1 < n => Some(backend as u64 + 1),
                0 => Some(0),
                c => c.checked_mul(n).and_then(|c| c.checked_add(backend as u64)),
            };
            let Some(composite) = composite else {
                return b"-ERR backend cursor too large for the proxy's composite cursor\r\n"
                    .to_vec();
            };
            let mut out = Reply::new(false);
            out.array(2);
            out.bulk(composite.to_string().as_bytes());
            out.raw(keys);
            out.buf
        })
    }

    fn info(&mut self, argv: Argv<'_>, topo: &Topology) -> Pending {
        // Sections as Redis picks them: all without an argument, else those named (or all/everything/default);
        // an unknown name selects nothing.
        let wanted = |section: &str| {
            argv.len() < 2
                || argv.iter_from(1).any(|a| {
                    ["all", "everything", "default", section]
                        .iter()
                        .any(|name| a.eq_ignore_ascii_case(name.as_bytes()))
                })
        };
        // Each section ends with its last field's line break; a blank line separates them.
        let mut sections: Vec<String> = Vec::new();
        let state = &self.state;
        if wanted("server") {
            sections.push(format!(
                "# Server\r\nredis_version:{}\r\nringkv_role:proxy\r\nuptime_in_seconds:{}\r\n",
                cmd::REDIS_VERSION,
                state.started.elapsed().as_secs()
            ));
        }
        if wanted("clients") {
            sections.push(format!(
                "# Clients\r\nconnected_clients:{}\r\n",
                state.local.clients.len()
            ));
        }
        if wanted("proxy") {
            sections.push(self.proxy_section(topo));
        }
        let mut out = self.reply();
        if !wanted("keyspace") || topo.ejected.iter().all(Option::is_some) {
            out.verbatim(sections.join("\r\n").as_bytes());
            return Pending::Ready(out.buf);
        }
        self.fan_out(
            topo,
            &encode([&b"INFO"[..], b"keyspace"].into_iter()),
            move |replies| {
                sections.push(keyspace_section(&replies));
                out.verbatim(sections.join("\r\n").as_bytes());
                out.buf
            },
        )
    }

    /// INFO's `# Proxy` section: the proxy's settings and each backend's state.
    fn proxy_section(&self, topo: &Topology) -> String {
        let state = &self.state;
        let mut text = format!(
            "# Proxy\r\ndistribution:{}\r\nkey_hash:{}\r\nbackends:{}\r\nring_epoch:{}\r\nauto_eject:{}\r\n\
             server_failure_limit:{}\r\nserver_retry_timeout_ms:{}\r\nhealth_check_interval_ms:{}\r\n",
            topo.ring.distribution().name(),
            topo.ring.distribution().key_hash_name(),
            topo.backends.len(),
            topo.epoch,
            if state.config.auto_eject { "yes" } else { "no" },
            state.config.server_failure_limit,
            state.config.server_retry_timeout,
            state.config.health_check_interval_ms,
        );
        let shares = topo.ring.shares();
        let now = std::time::Instant::now();
        for (i, b) in topo.backends.iter().enumerate() {
            let (check, rtt) = b.health.last_check();
            let ejected_for =
                topo.ejected[i].map_or(0, |until| until.saturating_duration_since(now).as_millis());
            text.push_str(&format!(
                "backend{i}:addr={},weight={},share={:.4},status={},failures={},requests={},last_check={check},\
                 ping_us={},ejected_for_ms={ejected_for}\r\n",
                b.addr,
                b.weight,
                shares[i],
                topo.status(i).replace([',', ':'], " "),
                b.health.failures.load(std::sync::atomic::Ordering::Relaxed),
                b.health.requests.load(std::sync::atomic::Ordering::Relaxed),
                rtt.map_or(-1, |us| us as i64),
            ));
        }
        text
    }

    fn ring(&mut self, argv: Argv<'_>, topo: &Topology) -> Pending {
        let sub = argv.get(1);
        if ["add", "remove", "weight"].iter().any(|s| args::is(sub, s)) {
            return match self.change_ring(argv, topo) {
                Ok(bytes) => Pending::Ready(bytes),
                Err(e) => error(e),
            };
        }
        let view = RingView {
            role: "proxy",
            ring: &topo.ring,
            nodes: (0..topo.backends.len())
                .map(|i| NodeState {
                    address: topo.backends[i].addr.clone(),
                    status: topo.status(i),
                    keys: None,
                })
                .collect(),
            epoch: topo.epoch,
        };
        let mut out = self.reply();
        if let Err(e) = cmd::ring::reply(&view, argv, &mut out) {
            out.error(&e.to_string());
        }
        Pending::Ready(out.buf)
    }

    /// RING ADD/REMOVE/WEIGHT: a new topology (existing backends keep their connections). Keys are not migrated.
    fn change_ring(&self, argv: Argv<'_>, topo: &Topology) -> Result<Vec<u8>, CmdError> {
        let mut change = Change::parse(argv, 1)?;
        if let Change::Add(addr, _) = &mut change {
            *addr = crate::config::parse_addr(addr).map_err(CmdError::err)?;
            if self.state.config.is_own_addr(addr) {
                return Err(CmdError::err(format!("{addr} is this proxy's own address")));
            }
        }
        // Validates against the current ring (unknown node, duplicate, last node) before anything changes.
        let after = topo.ring.rebuilt(change.apply(&topo.ring)?);
        let moved: f64 = crate::ring::diff(&topo.ring, &after)
            .iter()
            .map(|t| t.share)
            .sum();
        let next = self.state.update(|t| {
            let name = crate::ring::node_name(change.addr(), self.state.dist);
            let at = t
                .backends
                .iter()
                .position(|b| crate::ring::node_name(&b.addr, self.state.dist) == name);
            let (mut backends, mut ejected) = (t.backends.clone(), t.ejected.clone());
            match (&change, at) {
                (Change::Add(addr, w), None) => {
                    backends.push(self.state.new_backend(addr.clone(), *w));
                    ejected.push(None);
                }
                (Change::Remove(_), Some(i)) => {
                    backends.remove(i);
                    ejected.remove(i);
                }
                (Change::Weight(_, w), Some(i)) => {
                    let b = &backends[i];
                    backends[i] = Arc::new(b.with_weight(*w));
                }
                // Raced with another change: keep the current ring.
                _ => {}
            }
            (backends, ejected)
        });
        tracing::info!(epoch = next.epoch, "ring changed: {change:?}");
        let mut out = self.reply();
        out.map(3);
        out.bulk(b"epoch");
        out.int(next.epoch as i64);
        out.bulk(b"moved");
        out.double(moved);
        out.bulk(b"migration");
        out.bulk(b"none: keys on moved ranges are not migrated");
        Ok(out.buf)
    }

    fn multi_start(&mut self, topo: &Topology) -> Pending {
        if self.multi.is_some() {
            return error("ERR MULTI calls can not be nested");
        }
        let watched = self.watch.as_ref();
        self.multi = Some(Multi {
            queued: Vec::new(),
            preload: Vec::new(),
            backend: watched.and_then(|w| topo.backends.iter().position(|b| b.addr == w.addr)),
            epoch: watched.map_or(topo.epoch, |w| w.epoch),
            failed: false,
        });
        Pending::Ready(b"+OK\r\n".to_vec())
    }

    /// Queues a request inside MULTI: its keys must map to the transaction's one backend.
    fn queue(
        &mut self,
        spec: &CommandSpec,
        argv: Argv<'_>,
        raw: &[u8],
        topo: &Topology,
    ) -> Pending {
        let Some(multi) = self.multi.as_mut() else {
            return error("ERR internal: no transaction");
        };
        if multi.epoch != topo.epoch {
            multi.failed = true;
            return error(format!("ERR {RING_CHANGED}"));
        }
        let outcome = match owner(spec, argv, topo) {
            Ok(Some(b)) if multi.backend.is_none_or(|t| t == b) => Ok(Some(b)),
            Ok(Some(_)) => Err(CROSSSLOT.to_string()),
            Ok(None) if ANY_BACKEND_IN_MULTI.contains(&spec.name) => Ok(None),
            Ok(None) => Err(format!(
                "ERR '{}' without keys is not supported inside MULTI by the proxy",
                String::from_utf8_lossy(argv.get(0))
            )),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(b) => {
                multi.backend = b.or(multi.backend);
                // A backend that lacks the script would fail this EVALSHA inside EXEC, where it cannot be retried:
                // the known body is loaded just before the transaction instead.
                if let Some(body) = evalsha_target(argv).and_then(|sha| self.state.script(sha)) {
                    multi.preload.push(script_load(&body));
                }
                multi.queued.push(request_bytes(argv, raw));
                Pending::Ready(b"+QUEUED\r\n".to_vec())
            }
            Err(e) => {
                multi.failed = true;
                error(e)
            }
        }
    }

    fn exec(&mut self, topo: &Topology) -> Pending {
        let Some(multi) = self.multi.take() else {
            return error("ERR EXEC without MULTI");
        };
        let watch = self.watch.take();
        if multi.failed {
            return error("EXECABORT Transaction discarded because of previous errors.");
        }
        if multi.epoch != topo.epoch {
            return error(format!(
                "EXECABORT Transaction discarded because {RING_CHANGED}."
            ));
        }
        let backend = match multi.backend {
            Some(b) => b,
            // Neither keys nor WATCH: nothing queued, or keyless commands only (PING, ECHO, UNWATCH), which run on
            // the backend owning the empty key.
            None if multi.queued.is_empty() => return Pending::Ready(b"*0\r\n".to_vec()),
            None => match topo.locate(b"") {
                Some(b) => b,
                None => return error(no_backend()),
            },
        };
        let n = multi.preload.len() + multi.queued.len() + 2;
        let mut bundle = multi.preload.concat();
        bundle.extend_from_slice(&encode([&b"MULTI"[..]].into_iter()));
        for q in &multi.queued {
            bundle.extend_from_slice(q);
        }
        bundle.extend_from_slice(&encode([&b"EXEC"[..]].into_iter()));
        match watch {
            Some(w) => {
                let reply = w.conn.send(&mut self.outbox, bundle, n);
                // The dedicated connection lives until the reply came.
                wait(async move { (reply.await, w).0 })
            }
            None => match topo.backends.get(backend) {
                Some(b) => wait(self.send(b, bundle, n)),
                None => error(no_backend()),
            },
        }
    }

    fn discard(&mut self) -> Pending {
        if self.multi.take().is_none() {
            return error("ERR DISCARD without MULTI");
        }
        self.watch = None;
        Pending::Ready(b"+OK\r\n".to_vec())
    }

    fn watch(
        &mut self,
        spec: &CommandSpec,
        argv: Argv<'_>,
        raw: &[u8],
        topo: &Topology,
    ) -> Pending {
        if self.multi.is_some() {
            return error("ERR WATCH inside MULTI is not allowed");
        }
        let backend = match single_backend(spec, argv, topo) {
            Ok(Some(b)) => b,
            Ok(None) => return error(no_backend()),
            Err(e) => return error(e),
        };
        let addr = &topo.backends[backend].addr;
        if self.watch.as_ref().is_some_and(|w| w.addr != *addr) {
            return error(CROSSSLOT);
        }
        // A connection that was lost before any WATCH on it succeeded watches nothing: start afresh, as a WATCH
        // after a failed one does on Redis. (Lost after a success, it stays, so that EXEC fails.)
        if let Some(w) = &self.watch {
            if w.conn.is_closed() && !w.watching.load(Ordering::Acquire) {
                self.watch = None;
            }
        }
        let resp3 = self.resp3();
        let watch = self.watch.get_or_insert_with(|| Watch {
            addr: addr.clone(),
            epoch: topo.epoch,
            conn: topo.backends[backend].dedicated(resp3, false),
            watching: Arc::default(),
        });
        let reply = watch
            .conn
            .send(&mut self.outbox, request_bytes(argv, raw), 1);
        let watching = watch.watching.clone();
        wait(async move {
            let reply = reply.await;
            if reply == b"+OK\r\n" {
                watching.store(true, Ordering::Release);
            }
            reply
        })
    }

    fn unwatch(&mut self) -> Pending {
        // Dropping the dedicated connection ends the backend's WATCH with it.
        self.watch = None;
        Pending::Ready(b"+OK\r\n".to_vec())
    }
}

/// The one backend of the request's keys: `Ok(None)` without keys, CROSSSLOT when they span backends.
fn single_backend(
    spec: &CommandSpec,
    argv: Argv<'_>,
    topo: &Topology,
) -> Result<Option<usize>, String> {
    let mut found = None;
    for i in spec.key_indices(argv) {
        let b = topo.locate(argv.get(i)).ok_or_else(no_backend)?;
        match found {
            Some(f) if f != b => return Err(CROSSSLOT.to_string()),
            _ => found = Some(b),
        }
    }
    Ok(found)
}

/// [`single_backend`], except that a script call without keys (EVAL/EVALSHA with numkeys 0) goes to the backend
/// that owns its SHA1 as if it were a key: deterministic, so the same script always runs on the same backend; FCALL
/// likewise by the function's name, PUBLISH and SPUBLISH by their channel. A
/// command that takes keys but names none (`LMPOP 0 ...`, XREAD without STREAMS keys) goes to the backend owning its
/// name: it can only fail there, with the error Redis gives (as Redis Cluster runs such a command on any node).
fn owner(spec: &CommandSpec, argv: Argv<'_>, topo: &Topology) -> Result<Option<usize>, String> {
    if let Some(found) = single_backend(spec, argv, topo)? {
        return Ok(Some(found));
    }
    let name = argv.get(0);
    let place: Cow<[u8]> = if is_script_call(argv) {
        script_sha(argv).into_bytes().into()
    } else if args::is(name, "fcall") || args::is(name, "fcall_ro") {
        argv.get(1).to_ascii_lowercase().into()
    } else if args::is(name, "publish") || args::is(name, "spublish") {
        // The channel is placed on the ring like a key, where subscriptions through the proxy are made too (and so
        // inside MULTI a PUBLISH joins the transaction's backend when its channel lives there).
        argv.get(1).into()
    } else if !matches!(spec.keys, Keys::None) {
        argv.get(0).to_ascii_lowercase().into()
    } else {
        return Ok(None);
    };
    topo.locate(&place).map(Some).ok_or_else(no_backend)
}

/// EVAL, EVAL_RO, EVALSHA or EVALSHA_RO.
fn is_script_call(argv: Argv<'_>) -> bool {
    ["eval", "eval_ro", "evalsha", "evalsha_ro"]
        .iter()
        .any(|n| args::is(argv.get(0), n))
}

/// The SHA1 an EVAL/EVALSHA names, lower-case (as Redis matches it).
fn script_sha(argv: Argv<'_>) -> String {
    match evalsha_target(argv) {
        Some(sha) => String::from_utf8_lossy(sha).to_ascii_lowercase(),
        None => crate::script::sha1_hex(argv.get(1)),
    }
}

/// The SHA1 argument of EVALSHA / EVALSHA_RO.
fn evalsha_target(argv: Argv<'_>) -> Option<&[u8]> {
    let name = argv.get(0);
    (args::is(name, "evalsha") || args::is(name, "evalsha_ro")).then(|| argv.get(1))
}

/// The error of a request when every backend is ejected.
pub(super) fn no_backend() -> String {
    "ERR no backend available: every backend is ejected".to_string()
}

/// The bytes to forward: the request as received when it was multibulk, else re-encoded (inline requests).
fn request_slice<'a>(argv: Argv<'_>, raw: &'a [u8]) -> Cow<'a, [u8]> {
    if raw.first() == Some(&b'*') {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(encode(argv.iter_from(0)))
    }
}

/// [`request_slice`], owned (for a request sent on its own).
fn request_bytes(argv: Argv<'_>, raw: &[u8]) -> Vec<u8> {
    request_slice(argv, raw).into_owned()
}

/// Encodes arguments as a multibulk request.
pub(super) fn encode<'a>(args: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let args: Vec<&[u8]> = args.collect();
    let mut out = Reply::new(false);
    out.array(args.len());
    for a in args {
        out.bulk(a);
    }
    out.buf
}

/// The first error among `replies`, if any.
fn first_error(replies: &[Vec<u8>]) -> Option<Vec<u8>> {
    replies.iter().find(|r| resp::is_error(r)).cloned()
}

fn merge_sum(replies: Vec<Vec<u8>>) -> Vec<u8> {
    if let Some(e) = first_error(&replies) {
        return e;
    }
    let mut sum = 0i64;
    for r in &replies {
        match resp::integer(r) {
            Some(n) => sum = sum.saturating_add(n),
            None => return b"-ERR unexpected reply from a backend\r\n".to_vec(),
        }
    }
    format!(":{sum}\r\n").into_bytes()
}

/// INFO's `# Keyspace` section from the backends' `INFO keyspace` replies: database 0 (the one the proxy's clients
/// see) with keys and expires summed and avg_ttl averaged over the keys with a TTL. A backend that does not answer is
/// left out; its state shows in the `# Proxy` section.
fn keyspace_section(replies: &[Vec<u8>]) -> String {
    let (mut keys, mut expires, mut ttl_total) = (0u64, 0u64, 0u128);
    for reply in replies {
        let text = resp::text(reply)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let Some(db0) = text.lines().find_map(|l| l.strip_prefix("db0:")) else {
            continue;
        };
        let field = |name: &str| -> u64 {
            db0.split(',')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        let with_ttl = field("expires");
        keys += field("keys");
        expires += with_ttl;
        ttl_total += u128::from(field("avg_ttl")) * u128::from(with_ttl);
    }
    let mut section = String::from("# Keyspace\r\n");
    if keys > 0 {
        let avg_ttl = ttl_total.checked_div(u128::from(expires)).unwrap_or(0);
        section += &format!("db0:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n");
    }
    section
}

fn merge_ok(replies: Vec<Vec<u8>>) -> Vec<u8> {
    first_error(&replies).unwrap_or_else(|| b"+OK\r\n".to_vec())
}

fn merge_concat(replies: Vec<Vec<u8>>) -> Vec<u8> {
    if let Some(e) = first_error(&replies) {
        return e;
    }
    let mut items = Vec::new();
    for r in &replies {
        match resp::elements(r) {
            Some(e) => items.extend(e),
            None => return b"-ERR unexpected reply from a backend\r\n".to_vec(),
        }
    }
    let mut out = Reply::new(false);
    out.array(items.len());
    for i in items {
        out.raw(i);
    }
    out.buf
}

/// Replies that should all be the same (SCRIPT LOAD's SHA1): the first error, else the first reply.
fn merge_same(replies: Vec<Vec<u8>>) -> Vec<u8> {
    if let Some(e) = first_error(&replies) {
        return e;
    }
    replies.into_iter().next().unwrap_or_default()
}

/// SCRIPT KILL: OK when a script was killed anywhere, else the first backend's error (NOTBUSY).
fn merge_any_ok(replies: Vec<Vec<u8>>) -> Vec<u8> {
    match replies.iter().find(|r| r.as_slice() == b"+OK\r\n") {
        Some(ok) => ok.clone(),
        None => replies.into_iter().next().unwrap_or_default(),
    }
}

/// SCRIPT EXISTS: per SHA1, 1 when every backend has the script (an EVALSHA may go to any of them) or its body is
/// `known` to the proxy, which loads it where an EVALSHA finds it missing.
fn merge_exists(replies: Vec<Vec<u8>>, known: &[bool]) -> Vec<u8> {
    if let Some(e) = first_error(&replies) {
        return e;
    }
    let mut all: Option<Vec<bool>> = None;
    for r in &replies {
        let Some(flags) = resp::elements(r).map(|e| {
            e.iter()
                .map(|x| resp::integer(x) == Some(1))
                .collect::<Vec<_>>()
        }) else {
            return b"-ERR unexpected reply from a backend\r\n".to_vec();
        };
        all = Some(match all {
            Some(prev) if prev.len() == flags.len() => {
                prev.iter().zip(&flags).map(|(a, b)| *a && *b).collect()
            }
            Some(_) => return b"-ERR unexpected reply from a backend\r\n".to_vec(),
            None => flags,
        });
    }
    let all = all.unwrap_or_default();
    let mut out = Reply::new(false);
    out.array(all.len());
    for (i, f) in all.into_iter().enumerate() {
        out.int(i64::from(f || known.get(i) == Some(&true)));
    }
    out.buf
}

/// MGET: each backend's values put back at their keys' positions.
fn merge_mget(replies: Vec<Vec<u8>>, order: Vec<Vec<usize>>) -> Vec<u8> {
    if let Some(e) = first_error(&replies) {
        return e;
    }
    let total = order.iter().map(Vec::len).sum();
    // Every position is filled below (the ordinals cover every key).
    let mut slots: Vec<&[u8]> = vec![&[]; total];
    for (reply, ordinals) in replies.iter().zip(&order) {
        match resp::elements(reply) {
            Some(values) if values.len() == ordinals.len() => {
                for (v, &o) in values.into_iter().zip(ordinals) {
                    slots[o] = v;
                }
            }
            _ => return b"-ERR unexpected reply from a backend\r\n".to_vec(),
        }
    }
    let mut out = Reply::new(false);
    out.array(total);
    for s in slots {
        out.raw(s);
    }
    out.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mget_parts_are_put_back_in_key_order() {
        let replies = vec![
            b"*2\r\n$1\r\na\r\n$-1\r\n".to_vec(),
            b"*1\r\n$1\r\nb\r\n".to_vec(),
        ];
        let order = vec![vec![0, 2], vec![1]];
        assert_eq!(
            merge_mget(replies, order),
            b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n"
        );
    }

    #[test]
    fn merged_counts_are_summed_and_any_backend_error_wins() {
        assert_eq!(
            merge_sum(vec![b":2\r\n".to_vec(), b":3\r\n".to_vec()]),
            b":5\r\n"
        );
        let down = b"-ERR backend x unavailable: connect failed\r\n".to_vec();
        assert_eq!(merge_sum(vec![b":2\r\n".to_vec(), down.clone()]), down);
        assert_eq!(merge_ok(vec![b"+OK\r\n".to_vec(), down.clone()]), down);
    }

    #[test]
    fn inline_requests_are_re_encoded_as_multibulk() {
        let argv = crate::protocol::OwnedArgv::from_args(["GET", "k"]);
        assert_eq!(
            request_bytes(argv.argv(), b"GET k\r\n"),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }
}
