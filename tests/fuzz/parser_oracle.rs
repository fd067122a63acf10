//! The request parser's fuzzing oracle, shared by the cargo-fuzz target (`fuzz/fuzz_targets/parser.rs`) and the
//! stable fallback test (`tests/fuzz_parser.rs`). For one input it checks that `RequestParser`:
//! - never panics, whatever the bytes;
//! - gives the same requests (and the same error) however the input is split into reads;
//! - agrees with `redis-protocol`'s RESP2 decoder on every canonical multibulk request of bulk strings (the form
//!   clients send), in both directions.

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use ringkv::protocol::RequestParser;

/// The parser's limit on one bulk (Redis's default proto-max-bulk-len, 512 MiB).
const MAX_BULK: usize = 512 * 1024 * 1024;

/// What parsing a whole input gave: the requests, and whether it ended in a protocol error.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Each complete request's arguments (empty for a skipped blank request).
    pub requests: Vec<Vec<Vec<u8>>>,
    /// Bytes each request used.
    pub lengths: Vec<usize>,
    /// The protocol error that stopped parsing, if any.
    pub error: Option<String>,
}

/// Parses `input` arriving in reads of the given sizes (cycled; the rest arrives in the last one), the way a
/// connection does: the buffer grows, and every complete request is taken from its front.
pub fn parse_in_reads(input: &[u8], reads: &[usize]) -> Parsed {
    let mut parser = RequestParser::new(MAX_BULK);
    let mut out = Parsed {
        requests: Vec::new(),
        lengths: Vec::new(),
        error: None,
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut sizes = reads.iter().copied().filter(|&n| n > 0).cycle();
    while fed < input.len() {
        let n = sizes.next().unwrap_or(input.len()).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        loop {
            match parser.parse(&buf) {
                Ok(Some(used)) => {
                    let argv = parser.argv(&buf);
                    out.requests
                        .push(argv.iter_from(0).map(<[u8]>::to_vec).collect());
                    out.lengths.push(used);
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e.0);
                    return out;
                }
            }
        }
    }
    out
}

/// The RESP2 encoding of a request, as clients send it.
pub fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What `redis-protocol` reads at the start of `input`, if it is a multibulk frame of bulk strings: the arguments
/// and the bytes used. Inputs with nested arrays are not decoded (the crate recurses, and our parser refuses them
/// at the second `*` anyway).
fn decoded_request(input: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    if input.first() != Some(&b'*') || input.windows(3).filter(|w| w == b"\n*").count() > 64 {
        return None;
    }
    match decode(input) {
        Ok(Some((OwnedFrame::Array(items), used))) => {
            let args = items
                .into_iter()
                .map(|f| match f {
                    OwnedFrame::BulkString(b) => Some(b),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some((args, used))
        }
        _ => None,
    }
}

/// Checks every property on one input; `reads` chooses the split. Panics with the input on a violation.
pub fn check(input: &[u8], reads: &[usize]) {
    let whole = parse_in_reads(input, &[input.len().max(1)]);
    let split = parse_in_reads(input, reads);
    assert_eq!(
        whole,
        split,
        "split reads {reads:?} changed the result for {:?}",
        input.escape_ascii().to_string()
    );
    let first = whole.requests.first().zip(whole.lengths.first());
    // Redis (and so ringkv) skips the two bytes after a bulk without looking at them, and reads blank requests;
    // redis-protocol is strict. On canonical requests, the form clients send, both must read the same thing.
    let canonical =
        |args: &[Vec<u8>], used: usize| !args.is_empty() && encode(args) == input[..used];
    if let (Some((args, &used)), Some(b'*')) = (first, input.first()) {
        if canonical(args, used) {
            assert_eq!(
                decoded_request(input),
                Some((args.clone(), used)),
                "redis-protocol reads {:?} differently",
                input.escape_ascii().to_string()
            );
        }
    }
    if let Some((args, used)) = decoded_request(input) {
        if canonical(&args, used) {
            assert_eq!(
                first,
                Some((&args, &used)),
                "we read the canonical request {:?} differently",
                input.escape_ascii().to_string()
            );
        }
    }
}
