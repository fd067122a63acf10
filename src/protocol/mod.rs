//! Bytes <-> values, knowing nothing of commands.
//!
//! [`parser`] turns a client's input buffer into argument vectors (multibulk and inline requests, with Redis's
//! limits and error strings); [`reply`] encodes replies straight into an output buffer in RESP2 or RESP3; [`value`] decodes
//! one reply back into a tree (script `redis.call` results, backend replies).

pub mod parser;
pub mod reply;
pub mod value;

pub use parser::{Argv, OwnedArgv, ProtocolError, RequestParser};
pub use reply::Reply;
pub use value::Frame;
