//! Reading backend replies: a flat RESP2/RESP3 reply-length scanner and small accessors for the replies the proxy
//! merges (integers, arrays of bulk strings, errors).
//!
//! The scanner never recurses (an aggregate only adds its element count to a counter), so a deeply nested reply cannot
//! overflow the stack, and it copies nothing: it returns how many bytes the first complete reply spans.

use crate::cmd::args::parse_i64;

/// A backend sent bytes that are not RESP; the connection cannot be trusted afterwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reply from backend: {0}")]
pub struct ReplyError(pub &'static str);

/// The length of the first complete reply in `buf`: `Ok(None)` when more bytes are needed.
pub fn reply_len(buf: &[u8]) -> Result<Option<usize>, ReplyError> {
    let mut pos = 0;
    // Elements still to read: one reply, plus whatever the aggregates read so far announce.
    let mut remaining: u64 = 1;
    while remaining > 0 {
        let nl = match buf[pos..].iter().position(|&b| b == b'\n') {
            Some(nl) if nl >= 2 && buf[pos + nl - 1] == b'\r' => nl - 1,
            Some(_) => return Err(ReplyError("line without CRLF")),
            None => return Ok(None),
        };
        let (tag, line) = (buf[pos], &buf[pos + 1..pos + nl]);
        pos += nl + 2;
        remaining -= 1;
        match tag {
            b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => {}
            b'$' | b'!' | b'=' => {
                let len = number(line)?;
                if len >= 0 {
                    let end = pos + len as usize + 2;
                    if buf.len() < end {
                        return Ok(None);
                    }
                    if &buf[end - 2..end] != b"\r\n" {
                        return Err(ReplyError("bulk string without CRLF"));
                    }
                    pos = end;
                }
            }
            b'*' | b'~' | b'>' => remaining += number(line)?.max(0) as u64,
            b'%' => remaining += 2 * number(line)?.max(0) as u64,
            // An attribute map comes before the reply it describes, which is still to be read.
            b'|' => remaining += 2 * number(line)?.max(0) as u64 + 1,
            _ => return Err(ReplyError("unknown type byte")),
        }
    }
    Ok(Some(pos))
}

fn number(line: &[u8]) -> Result<i64, ReplyError> {
    parse_i64(line).ok_or(ReplyError("bad length"))
}

/// True when `reply` is an error reply.
pub fn is_error(reply: &[u8]) -> bool {
    reply.first() == Some(&b'-')
}

/// The value of an integer reply (`:N`).
pub fn integer(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(body).ok()?.parse().ok()
}

/// The elements of an array reply (`*N` followed by N replies), each as its encoded bytes.
pub fn elements(reply: &[u8]) -> Option<Vec<&[u8]>> {
    let nl = reply.windows(2).position(|w| w == b"\r\n")?;
    if reply.first() != Some(&b'*') {
        return None;
    }
    let n = number(&reply[1..nl]).ok()?;
    let mut rest = &reply[nl + 2..];
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let len = reply_len(rest).ok()??;
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    Some(out)
}

/// The content of a bulk string reply.
pub fn bulk(reply: &[u8]) -> Option<&[u8]> {
    payload(reply, b'$')
}

/// The text of a bulk string or verbatim string reply (a verbatim string's `txt:` format left out): what INFO sends.
pub fn text(reply: &[u8]) -> Option<&[u8]> {
    payload(reply, b'$').or_else(|| payload(reply, b'=')?.get(4..))
}

/// The payload of a length-prefixed reply of type `kind` (`$` bulk string, `=` verbatim string).
fn payload(reply: &[u8], kind: u8) -> Option<&[u8]> {
    let nl = reply.windows(2).position(|w| w == b"\r\n")?;
    if reply.first() != Some(&kind) {
        return None;
    }
    let len = usize::try_from(number(&reply[1..nl]).ok()?).ok()?;
    reply.get(nl + 2..nl + 2 + len)
}

/// The first element of an array or push reply when it is a bulk string: a Pub/Sub frame's kind (`message`,
/// `subscribe`, ...).
pub fn frame_kind(reply: &[u8]) -> Option<&[u8]> {
    if !matches!(reply.first(), Some(b'*' | b'>')) {
        return None;
    }
    let nl = reply.windows(2).position(|w| w == b"\r\n")?;
    let first = &reply[nl + 2..];
    let len = reply_len(first).ok()??;
    bulk(&first[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_every_resp2_and_resp3_type_without_recursion() {
        for reply in [
            &b"+OK\r\n"[..],
            b"-ERR x\r\n",
            b":12\r\n",
            b"$3\r\nabc\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"%1\r\n+k\r\n,1.5\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"_\r\n",
        ] {
            let mut buf = reply.to_vec();
            buf.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(reply_len(&buf), Ok(Some(reply.len())), "{reply:?}");
            assert_eq!(reply_len(&reply[..reply.len() - 1]), Ok(None));
        }
        let deep = "*1\r\n".repeat(100_000) + ":1\r\n";
        assert_eq!(reply_len(deep.as_bytes()), Ok(Some(deep.len())));
        assert!(reply_len(b"?x\r\n").is_err());
        assert!(reply_len(b"+OK\n").is_err());
        assert!(reply_len(b"$0x\r\n").is_err());
    }

    #[test]
    fn accessors_read_integers_arrays_and_bulks() {
        assert_eq!(integer(b":-5\r\n"), Some(-5));
        let arr = b"*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n";
        assert_eq!(
            elements(arr),
            Some(vec![&b"$1\r\na\r\n"[..], b"$-1\r\n", b"$2\r\nbc\r\n"])
        );
        assert_eq!(bulk(b"$2\r\nbc\r\n"), Some(&b"bc"[..]));
        assert!(is_error(b"-ERR\r\n"));
        assert_eq!(
            frame_kind(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
            Some(&b"message"[..])
        );
        assert_eq!(frame_kind(b"*1\r\n:1\r\n"), None);
    }
}
