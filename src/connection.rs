//! One client connection: read, parse every complete request, run each, encode replies into one buffer, write once.
//!
//! Replies to pipelined requests are batched into a single write per read. A protocol error gets Redis's error reply
//! after the replies to the requests before it, then the connection closes; command errors never close it.
//!
//! With one worker thread (the default), replies wait for the end of the worker's round ([`round`]), after every
//! client that was ready has run and before the sockets are polled again, as Redis writes its replies before it
//! sleeps: a client process with many connections (a pool, a benchmark) is then woken once for many replies, and
//! the next poll finds more requests ready, which costs both sides less CPU than the wait adds. The reply a served
//! waiter (BLPOP and its family) gets goes out at once: that is a queue's delivery, and it would wait behind the
//! producers' acknowledgements. With several workers the wait does not pay (measured).
//!
//! A subscribed client (Pub/Sub) also owns a bounded queue of messages published to it: while idle (or blocked) the
//! connection writes them as they come, a batch per write, and before running each request it sends the messages
//! queued so far, so they precede that request's reply as in Redis.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Blocked, Client};
use crate::cmd::{self, blocking, Flow};
use crate::protocol::{Argv, Reply, RequestParser};
use crate::round;
use crate::server::ServerState;
use crate::store::HeldShard;

/// The largest read of a connection that is not receiving a large bulk.
const READ_CHUNK: usize = 16 * 1024;
/// A new connection's first read: reads double from here while they fill what was offered, so an idle connection of
/// a pool costs a few KB, not a 16 KB buffer, and a pipelining one reaches [`READ_CHUNK`] after a few reads.
const FIRST_READ: usize = 1024;
/// A buffer larger than this is freed once emptied (an output buffer written, a read buffer whose requests all ran),
/// so one big value does not pin its memory for the life of the connection. The proxy's buffers follow it too.
pub const BUFFER_KEEP: usize = 1024 * 1024;
/// Most unprocessed input kept for a client (Redis's client-query-buffer-limit).
pub const QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;

/// Serves one client until it quits, is killed, breaks the protocol or the server stops.
pub async fn handle(mut stream: TcpStream, state: Arc<ServerState>, mut client: Client) {
    let info = client.info.clone();
    if let Err(e) = serve(&mut stream, &state, &mut client).await {
        tracing::debug!(id = info.id, "connection closed: {e}");
    }
    cmd::unwatch_all(&state, &mut client);
    cmd::unsubscribe_all(&state, &mut client);
    state.tracking.disable(&mut client);
    state.clients.unregister(info.id);
}

async fn serve(
    stream: &mut TcpStream,
    state: &ServerState,
    client: &mut Client,
) -> std::io::Result<()> {
    let info = client.info.clone();
    let mut rbuf = BytesMut::new();
    let mut read_size = FIRST_READ;
    let mut parser = RequestParser::new(state.settings.proto_max_bulk_len());
    // Grows with the replies (and keeps its size between them, up to BUFFER_KEEP).
    let mut out = Reply::scratch(false);
    // Made once and polled on every read: building these futures per read costs a registration each time.
    let stop = async {
        tokio::select! {
            _ = info.killed() => {}
            _ = state.shutdown_requested() => {}
        }
    };
    tokio::pin!(stop);
    let end_of_round = state.config.threads == 1 && round::installed();
    loop {
        // Run every complete request already buffered (after a blocked command, the rest of its pipeline).
        let (flow, silent, commands) =
            run_buffered(state, client, &mut parser, &mut rbuf, &mut out);
        // A served waiter's reply (no command ran) goes out at once.
        if end_of_round && commands > 0 && !out.buf.is_empty() {
            round::end().await;
        }
        flush(stream, state, &mut out).await?;
        match flow {
            Flow::Continue => {}
            Flow::Close => return Ok(()),
            Flow::Shutdown => {
                state.request_shutdown();
                return Ok(());
            }
            Flow::Contended(shard) => {
                // The rest of the batch, from the command that found its shard busy, runs once it is released.
                state.store.wait_for(shard).await;
                continue;
            }
            Flow::Block => {
                let blocked = client
                    .blocked
                    .take()
                    .expect("Flow::Block comes with a blocked command");
                let stop = stop.as_mut();
                if !wait_blocked(stream, state, client, blocked, &mut rbuf, &mut out, stop).await? {
                    return Ok(());
                }
                if silent {
                    // Only the blocked command's reply is left in `out`: messages were written as they came.
                    out.buf.clear();
                }
                continue;
            }
        }
        let offered = reserve_for_next_read(&mut rbuf, &parser, read_size);
        // While idle, a subscriber also writes the messages published to it, a batch per write. Only a connection that
        // may receive messages watches its queue: with thousands of connections, polling an empty queue on every
        // wake-up was a visible share of the server's time.
        let n = loop {
            tokio::select! {
                // In this order: a ready read, the usual case, polls nothing else (a client killed while its
                // requests keep coming is caught by the check after the read).
                biased;
                n = stream.read_buf(&mut rbuf) => break n?,
                _ = next_messages(client, &mut out), if client.may_receive() => tokio::select! {
                    written = flush(stream, state, &mut out) => written?,
                    // A subscriber that stops reading blocks this write until the publisher disconnects it.
                    _ = &mut stop => return Ok(()),
                },
                _ = &mut stop => return Ok(()),
            }
        };
        if n == 0 || info.is_killed() || state.is_shutting_down() {
            return Ok(());
        }
        if n >= offered {
            read_size = (read_size * 2).min(READ_CHUNK);
        }
        if rbuf.len() > QUERY_BUFFER_LIMIT {
            tracing::warn!(
                id = info.id,
                "closing client: query buffer over {QUERY_BUFFER_LIMIT} bytes"
            );
            return Ok(());
        }
        state
            .stats
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        info.touch();
    }
}

/// Runs every complete request in `rbuf` (consuming them) until one stops the batch (blocks, closes, breaks the
/// protocol, or finds its shard held by another thread: that one is left in `rbuf`), appending replies to `out`.
/// Returns what to do next, whether the last command's reply is suppressed by CLIENT REPLY OFF|SKIP (for a blocked
/// command, its reply still to come), and how many commands ran.
fn run_buffered(
    state: &ServerState,
    client: &mut Client,
    parser: &mut RequestParser,
    rbuf: &mut BytesMut,
    out: &mut Reply,
) -> (Flow, bool, u64) {
    parser.set_max_bulk(state.settings.proto_max_bulk_len());
    let (mut flow, mut at, mut commands, mut silent) = (Flow::Continue, 0, 0, false);
    // The shard lock kept between the commands of this batch; dropped with this function, before any write.
    let mut held = HeldShard::new(&state.store, true);
    while flow == Flow::Continue {
        match parser.parse(&rbuf[at..]) {
            Ok(Some(used)) => {
                let argv = parser.argv(&rbuf[at..]);
                // Messages queued before this command was read go out before its reply.
                client.inbox.drain(out);
                if !argv.is_empty() {
                    let (mark, skip) = (out.buf.len(), client.take_skip());
                    flow = cmd::dispatch(state, client, argv, out, &mut held);
                    if let Flow::Contended(_) = flow {
                        // Not run: it stays in the buffer, and keeps its CLIENT REPLY SKIP.
                        client.untake_skip(skip);
                        break;
                    }
                    silent = client.reply_suppressed();
                    if silent && !confirmed_subscriptions(argv, &out.buf[mark..]) {
                        out.buf.truncate(mark);
                    }
                    commands += 1;
                }
                at += used;
            }
            Ok(None) => break,
            Err(e) => {
                out.error(&format!("ERR {e}"));
                flow = Flow::Close;
            }
        }
    }
    drop(held);
    consume(rbuf, at, 0);
    state
        .stats
        .commands_processed
        .fetch_add(commands, Ordering::Relaxed);
    (flow, silent, commands)
}

/// Waits for messages queued for the client (Pub/Sub, invalidations) and appends them to `out`.
async fn next_messages(client: &mut Client, out: &mut Reply) {
    client.inbox.recv(out).await
}

/// Writes the pending replies, if any, in one write.
async fn flush(
    stream: &mut TcpStream,
    state: &ServerState,
    out: &mut Reply,
) -> std::io::Result<()> {
    if out.buf.is_empty() {
        return Ok(());
    }
    stream.write_all(&out.buf).await?;
    state
        .stats
        .net_output_bytes
        .fetch_add(out.buf.len() as u64, Ordering::Relaxed);
    out.buf.clear();
    if out.buf.capacity() > BUFFER_KEEP {
        out.buf = Vec::new();
    }
    Ok(())
}

/// Whether `reply`, the reply to `argv`, is the confirmations of a (un)subscribe command: pushes, which CLIENT REPLY
/// OFF|SKIP does not silence.
fn confirmed_subscriptions(argv: Argv, reply: &[u8]) -> bool {
    matches!(reply.first(), Some(b'*' | b'>')) && cmd::pubsub::confirms_subscriptions(argv.get(0))
}

/// Waits for a blocked command to be served, time out, or be unblocked, and appends its reply to `out`. Meanwhile
/// it keeps reading (into `rbuf`, for after the wait) to notice a client that hangs up. Returns false when the
/// connection should close: the client left or was killed, or the server is stopping; a waiter nobody claimed yet
/// is then claimed here, so no element is ever popped for a client that is gone.
async fn wait_blocked(
    stream: &mut TcpStream,
    state: &ServerState,
    client: &mut Client,
    mut blocked: Blocked,
    rbuf: &mut BytesMut,
    out: &mut Reply,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) -> std::io::Result<bool> {
    let waiter = blocked.waiter.clone();
    let deadline = blocked.deadline;
    let timed_out = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timed_out);
    // Once we lose the claim to a server (it is serving us right now), only the reply is awaited.
    let (mut closing, mut waiting) = (false, true);
    loop {
        tokio::select! {
            reply = &mut blocked.reply => {
                out.raw(&reply.unwrap_or_default());
                break;
            }
            _ = &mut timed_out, if waiting && !closing => {
                waiting = false;
                if waiter.claim() {
                    out.raw(&blocking::timeout_reply(&waiter.op, out.resp3()));
                    break;
                }
            }
            read = stream.read_buf(rbuf), if !closing && rbuf.len() < QUERY_BUFFER_LIMIT => {
                if matches!(read, Ok(0) | Err(_)) {
                    closing = true;
                }
            }
            _ = &mut stop, if !closing => closing = true,
            // A RESP3 subscriber may block; messages published meanwhile still reach it.
            _ = next_messages(client, out), if !closing => tokio::select! {
                written = flush(stream, state, out) => written?,
                _ = &mut stop => closing = true,
            },
        }
        if closing && waiter.claim() {
            break;
        }
    }
    *client.info.waiter.lock() = None;
    blocking::end_wait(state, &waiter);
    Ok(!closing)
}

/// Drops the first `n` bytes of `buf`, the requests or replies handled. When that empties a buffer that grew past
/// [`BUFFER_KEEP`] for a large value, it starts again at `fresh` bytes: emptied, a `BytesMut` keeps its allocation
/// (and its `capacity()` no longer shows it).
pub fn consume(buf: &mut BytesMut, n: usize, fresh: usize) {
    if n == buf.len() && buf.capacity() > BUFFER_KEEP {
        *buf = BytesMut::with_capacity(fresh);
    } else {
        buf.advance(n);
    }
}

/// Makes room for the next read and returns how much it offers: `read_size` normally, more when a large bulk is known
/// to be arriving (bounded growth, so a header alone never makes us allocate its whole declared size).
fn reserve_for_next_read(rbuf: &mut BytesMut, parser: &RequestParser, read_size: usize) -> usize {
    let want = parser.wanted(rbuf).map_or(read_size, |total| {
        total
            .saturating_sub(rbuf.len())
            .clamp(read_size, rbuf.len().max(64 * 1024))
    });
    if rbuf.capacity() - rbuf.len() < want {
        rbuf.reserve(want);
    }
    rbuf.capacity() - rbuf.len()
}
