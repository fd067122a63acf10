//! ringkv: a Redis-protocol-compatible in-memory server, and a consistent-hashing cluster proxy ([`proxy`]).
//!
//! # The walk of one request
//! 1. [`connection`] reads from the socket into a reusable buffer.
//! 2. [`protocol::parser`] yields each complete request as argument spans (multibulk or inline), no copies.
//! 3. [`cmd`] looks the command up case-insensitively, checks its arity from its [`cmd::CommandSpec`], locks the
//!    shards of its keys in ascending order ([`store`]) and runs the handler, which writes its reply straight into the
//!    output buffer with [`protocol::reply`].
//! 4. Still holding those shards after a write, the dispatcher spoils the WATCHes on the keys it changed and serves
//!    clients blocked on them ([`cmd::blocking`]), oldest first. EXEC and scripts ([`script`]) lock every shard their
//!    commands need before they start, so they are atomic too.
//! 5. When no complete request is left in the read buffer, [`connection`] writes all replies at once (with one
//!    worker, at the end of its [`round`], after every ready client has run); a blocked client waits there (still
//!    reading, to notice a hang-up) until it is served, times out or is unblocked.
//!
//! Keys are placed on shards by the same consistent-hash [`ring`] the proxy uses for backends.

pub mod client;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod glob;
pub mod notify;
pub mod protocol;
pub mod proxy;
pub mod pubsub;
pub mod ring;
pub mod round;
pub mod script;
pub mod server;
pub mod store;
pub mod tracking;
