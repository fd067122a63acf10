//! One client connection: read, parse every complete request, run each, encode replies into one buffer, write once.
//!
//! Replies to pipelined requests are batched into a single write per read. A protocol error gets Redis's error reply
//! after the replies to the requests before it, then the connection closes; command errors never close it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Client;
use crate::cmd::{self, Flow};
use crate::protocol::{Reply, RequestParser};
use crate::server::ServerState;

const READ_CHUNK: usize = 16 * 1024;
/// An output buffer larger than this is freed after it is written, so one big reply does not pin memory.
const OUT_KEEP: usize = 1024 * 1024;

/// Serves one client until it quits, is killed, breaks the protocol or the server stops.
pub async fn handle(mut stream: TcpStream, state: Arc<ServerState>, mut client: Client) {
    let info = client.info.clone();
    if let Err(e) = serve(&mut stream, &state, &mut client).await {
        tracing::debug!(id = info.id, "connection closed: {e}");
    }
    state.clients.unregister(info.id);
}

async fn serve(
    stream: &mut TcpStream,
    state: &ServerState,
    client: &mut Client,
) -> std::io::Result<()> {
    let info = client.info.clone();
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new(state.settings.proto_max_bulk_len());
    let mut out = Reply::new(false);
    loop {
        reserve_for_next_read(&mut rbuf, &parser);
        let n = tokio::select! {
            n = stream.read_buf(&mut rbuf) => n?,
            _ = info.killed() => return Ok(()),
            _ = state.shutdown_requested() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        state
            .stats
            .net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        info.touch();
        parser.set_max_bulk(state.settings.proto_max_bulk_len());
        let mut flow = Flow::Continue;
        let mut at = 0;
        let mut commands = 0;
        while flow == Flow::Continue {
            match parser.parse(&rbuf[at..]) {
                Ok(Some(used)) => {
                    let argv = parser.argv(&rbuf[at..]);
                    if !argv.is_empty() {
                        flow = cmd::dispatch(state, client, argv, &mut out);
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
        rbuf.advance(at);
        state
            .stats
            .commands_processed
            .fetch_add(commands, Ordering::Relaxed);
        if !out.buf.is_empty() {
            stream.write_all(&out.buf).await?;
            state
                .stats
                .net_output_bytes
                .fetch_add(out.buf.len() as u64, Ordering::Relaxed);
            out.buf.clear();
            if out.buf.capacity() > OUT_KEEP {
                out.buf = Vec::with_capacity(READ_CHUNK);
            }
        }
        match flow {
            Flow::Continue => {}
            Flow::Close => return Ok(()),
            Flow::Shutdown => {
                state.request_shutdown();
                return Ok(());
            }
        }
    }
}

/// Makes room for the next read: a chunk normally, more when a large bulk is known to be arriving (bounded growth, so
/// a header alone never makes us allocate its whole declared size).
fn reserve_for_next_read(rbuf: &mut BytesMut, parser: &RequestParser) {
    let spare = rbuf.capacity() - rbuf.len();
    let want = parser.wanted(rbuf).map_or(READ_CHUNK, |total| {
        total
            .saturating_sub(rbuf.len())
            .clamp(READ_CHUNK, rbuf.len().max(64 * 1024))
    });
    if spare < want {
        rbuf.reserve(want);
    }
}
