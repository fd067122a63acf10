//! A reply decoder: one complete RESP2 or RESP3 reply into a [`Frame`] tree.
//!
//! Used where the server reads its own replies back (a script's `redis.call` runs a handler into a buffer and hands
//! the result to Lua) and, later, by the proxy for backend replies. It never recurses: aggregates are built with an
//! explicit stack, and nesting deeper than [`MAX_DEPTH`] is an error, so no input can overflow the thread's stack.

/// One decoded reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+...`
    Simple(Vec<u8>),
    /// `-...` (the text without the leading `-`).
    Error(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `$n` bulk string.
    Bulk(Vec<u8>),
    /// `$-1`: RESP2 null bulk string.
    NullBulk,
    /// `*-1`: RESP2 null array.
    NullArray,
    /// `_`: RESP3 null.
    Null,
    /// `*n` array.
    Array(Vec<Frame>),
    /// `%n` map (RESP3).
    Map(Vec<(Frame, Frame)>),
    /// `~n` set (RESP3).
    Set(Vec<Frame>),
    /// `>n` push (RESP3).
    Push(Vec<Frame>),
    /// `,d` double (RESP3).
    Double(f64),
    /// `#t` / `#f` boolean (RESP3).
    Boolean(bool),
    /// `(n` big number (RESP3), as its digits.
    BigNumber(Vec<u8>),
    /// `=n` verbatim string (RESP3): its three-letter format and its text.
    Verbatim(Vec<u8>, Vec<u8>),
}

/// Deepest nesting [`decode`] accepts.
pub const MAX_DEPTH: usize = 512;

/// Why a buffer does not hold a valid reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The reply is not complete yet.
    #[error("incomplete reply")]
    Incomplete,
    /// The bytes are not RESP.
    #[error("protocol error: {0}")]
    Invalid(&'static str),
}

/// An aggregate being filled: its kind, how many elements it still expects, what it has so far.
struct Open {
    kind: u8,
    want: usize,
    items: Vec<Frame>,
}

/// Decodes the first reply in `buf`, returning it and the number of bytes it took. Attribute frames (`|`) are
/// skipped, as clients do.
pub fn decode(buf: &[u8]) -> Result<(Frame, usize), DecodeError> {
    let mut pos = 0;
    let mut stack: Vec<Open> = Vec::new();
    loop {
        let line = read_line(buf, &mut pos)?;
        let (&tag, rest) = line
            .split_first()
            .ok_or(DecodeError::Invalid("empty line"))?;
        let mut frame = match tag {
            b'+' => Frame::Simple(rest.to_vec()),
            b'-' => Frame::Error(rest.to_vec()),
            b':' => Frame::Int(parse_int(rest)?),
            b'_' => Frame::Null,
            b'#' => match rest {
                b"t" => Frame::Boolean(true),
                b"f" => Frame::Boolean(false),
                _ => return Err(DecodeError::Invalid("bad boolean")),
            },
            b',' => Frame::Double(parse_double(rest)?),
            b'(' => Frame::BigNumber(rest.to_vec()),
            b'$' | b'=' | b'!' => {
                let n = parse_int(rest)?;
                if n < 0 {
                    Frame::NullBulk
                } else {
                    let body = read_body(buf, &mut pos, n as usize)?;
                    match tag {
                        b'$' => Frame::Bulk(body.to_vec()),
                        b'!' => Frame::Error(body.to_vec()),
                        _ if body.len() >= 4 && body[3] == b':' => {
                            Frame::Verbatim(body[..3].to_vec(), body[4..].to_vec())
                        }
                        _ => return Err(DecodeError::Invalid("bad verbatim string")),
                    }
                }
            }
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let n = parse_int(rest)?;
                if n < 0 {
                    Frame::NullArray
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err(DecodeError::Invalid("nesting too deep"));
                    }
                    let n = n as usize;
                    let want = if matches!(tag, b'%' | b'|') { 2 * n } else { n };
                    stack.push(Open {
                        kind: tag,
                        want,
                        // The count comes from the peer: never pre-allocate more than the buffer could hold.
                        items: Vec::with_capacity(want.min(buf.len() / 3)),
                    });
                    match close_complete(&mut stack) {
                        Some(f) => f,
                        None => continue,
                    }
                }
            }
            _ => return Err(DecodeError::Invalid("unknown type byte")),
        };
        // Push the finished frame into its parent, closing every aggregate it completes.
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok((frame, pos));
            };
            top.items.push(frame);
            top.want -= 1;
            match close_complete(&mut stack) {
                Some(f) => frame = f,
                None => break,
            }
        }
    }
}

/// Pops the top aggregate if it has all its elements and returns it as a frame. A complete attribute is dropped
/// (it annotates the reply after it), so `None` means: keep reading.
fn close_complete(stack: &mut Vec<Open>) -> Option<Frame> {
    loop {
        if stack.last()?.want > 0 {
            return None;
        }
        let open = stack.pop()?;
        let frame = match open.kind {
            b'*' => Frame::Array(open.items),
            b'~' => Frame::Set(open.items),
            b'>' => Frame::Push(open.items),
            b'%' => Frame::Map(pairs(open.items)),
            // An attribute annotates the next reply: drop it and keep reading.
            _ => continue,
        };
        return Some(frame);
    }
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn read_line<'b>(buf: &'b [u8], pos: &mut usize) -> Result<&'b [u8], DecodeError> {
    let rest = &buf[*pos..];
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(DecodeError::Incomplete)?;
    *pos += end + 2;
    Ok(&rest[..end])
}

fn read_body<'b>(buf: &'b [u8], pos: &mut usize, n: usize) -> Result<&'b [u8], DecodeError> {
    let rest = &buf[*pos..];
    if rest.len() < n.saturating_add(2) {
        return Err(DecodeError::Incomplete);
    }
    if &rest[n..n + 2] != b"\r\n" {
        return Err(DecodeError::Invalid("bulk length mismatch"));
    }
    *pos += n + 2;
    Ok(&rest[..n])
}

fn parse_int(s: &[u8]) -> Result<i64, DecodeError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(DecodeError::Invalid("bad integer"))
}

fn parse_double(s: &[u8]) -> Result<f64, DecodeError> {
    match s {
        b"inf" => Ok(f64::INFINITY),
        b"-inf" => Ok(f64::NEG_INFINITY),
        b"nan" => Ok(f64::NAN),
        _ => std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(DecodeError::Invalid("bad double")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &[u8]) -> Frame {
        let (f, used) = decode(s).unwrap();
        assert_eq!(used, s.len(), "whole input consumed");
        f
    }

    #[test]
    fn decodes_resp2_scalars_and_nulls() {
        assert_eq!(one(b"+OK\r\n"), Frame::Simple(b"OK".to_vec()));
        assert_eq!(one(b"-ERR x\r\n"), Frame::Error(b"ERR x".to_vec()));
        assert_eq!(one(b":-42\r\n"), Frame::Int(-42));
        assert_eq!(one(b"$3\r\na\r\n\r\n"), Frame::Bulk(b"a\r\n".to_vec()));
        assert_eq!(one(b"$0\r\n\r\n"), Frame::Bulk(vec![]));
        assert_eq!(one(b"$-1\r\n"), Frame::NullBulk);
        assert_eq!(one(b"*-1\r\n"), Frame::NullArray);
    }

    #[test]
    fn decodes_nested_aggregates_without_recursion() {
        assert_eq!(
            one(b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n*0\r\n+x\r\n"),
            Frame::Array(vec![
                Frame::Int(1),
                Frame::Array(vec![Frame::Bulk(b"a".to_vec()), Frame::Array(vec![])]),
                Frame::Simple(b"x".to_vec()),
            ])
        );
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(decode(&deep), Err(DecodeError::Invalid("nesting too deep")));
    }

    #[test]
    fn decodes_resp3_types() {
        assert_eq!(
            one(b"%1\r\n+k\r\n,1.5\r\n"),
            Frame::Map(vec![(Frame::Simple(b"k".to_vec()), Frame::Double(1.5))])
        );
        assert_eq!(
            one(b"~2\r\n#t\r\n#f\r\n"),
            Frame::Set(vec![Frame::Boolean(true), Frame::Boolean(false)])
        );
        assert_eq!(one(b"_\r\n"), Frame::Null);
        assert_eq!(one(b",-inf\r\n"), Frame::Double(f64::NEG_INFINITY));
        assert_eq!(one(b"(123\r\n"), Frame::BigNumber(b"123".to_vec()));
        assert_eq!(
            one(b"=6\r\ntxt:hi\r\n"),
            Frame::Verbatim(b"txt".to_vec(), b"hi".to_vec())
        );
        // An attribute is skipped: the reply is what follows it.
        assert_eq!(one(b"|1\r\n+a\r\n+b\r\n:7\r\n"), Frame::Int(7));
    }

    #[test]
    fn reports_incomplete_and_invalid_input() {
        assert_eq!(decode(b"*2\r\n:1\r\n"), Err(DecodeError::Incomplete));
        assert_eq!(decode(b"$5\r\nab"), Err(DecodeError::Incomplete));
        assert_eq!(decode(b"+OK"), Err(DecodeError::Incomplete));
        assert!(matches!(decode(b"?x\r\n"), Err(DecodeError::Invalid(_))));
        assert!(matches!(
            decode(b"$2\r\nabc\r\n"),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(decode(b":1x\r\n"), Err(DecodeError::Invalid(_))));
        // Two replies: only the first is taken.
        assert_eq!(decode(b":1\r\n:2\r\n"), Ok((Frame::Int(1), 4)));
    }
}
