//! The request parser: a flat, non-recursive reader of RESP multibulk requests and inline (telnet) commands.
//!
//! It never copies a multibulk argument: it records spans into the caller's buffer. It is resumable, so a request that
//! arrives in many reads is not re-parsed from its start each time, and it rejects oversized headers before the body
//! arrives. Errors carry Redis's exact `Protocol error: ...` strings; after one the connection must be closed.

use std::ops::Range;

/// Longest inline request or multibulk/bulk header line, as Redis's `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_MAX: usize = 64 * 1024;
/// Most arguments in one multibulk request: Redis 7 accepts any count up to `INT_MAX`.
pub const MULTIBULK_MAX: i64 = i32::MAX as i64;
/// Argument slots reserved up front from a count header, so a header alone cannot make us allocate much (Redis
/// caps its first allocation the same way).
const RESERVE_MAX: usize = 1024;

/// A malformed request. The string is what Redis replies (after `-ERR `) before it closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(msg: impl Into<String>) -> Self {
        ProtocolError(msg.into())
    }
}

/// The arguments of one request: spans into a byte source. Cheap to copy; never owns the bytes.
#[derive(Clone, Copy)]
pub struct Argv<'a> {
    data: &'a [u8],
    spans: &'a [Range<usize>],
}

impl<'a> Argv<'a> {
    /// Arguments as spans of `data`.
    pub fn new(data: &'a [u8], spans: &'a [Range<usize>]) -> Self {
        Argv { data, spans }
    }
    /// Number of arguments, including the command name.
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    /// True for a request without arguments (never dispatched).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    /// Argument `i`. Panics when out of range: callers check arity first.
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.data[self.spans[i].clone()]
    }
    /// Iterates the arguments from index `from`.
    pub fn iter_from(&self, from: usize) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let data = self.data;
        self.spans[from.min(self.spans.len())..]
            .iter()
            .map(move |r| &data[r.clone()])
    }
    /// Copies the arguments, for a queued transaction or a script call.
    pub fn to_owned(&self) -> OwnedArgv {
        let mut argv = OwnedArgv::default();
        for arg in self.iter_from(0) {
            argv.push(arg);
        }
        argv
    }
}

/// An argument vector that owns its bytes (MULTI queues, scripts, tests).
#[derive(Clone, Default, Debug)]
pub struct OwnedArgv {
    data: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl OwnedArgv {
    /// Builds one from anything that yields byte strings.
    pub fn from_args<I, A>(args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let mut argv = OwnedArgv::default();
        for a in args {
            argv.push(a.as_ref());
        }
        argv
    }
    /// Appends one argument.
    pub fn push(&mut self, arg: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(arg);
        self.spans.push(start..self.data.len());
    }
    /// Borrows it as an [`Argv`].
    pub fn argv(&self) -> Argv<'_> {
        Argv::new(&self.data, &self.spans)
    }
}

/// Where the parser is inside a multibulk request that has not fully arrived.
#[derive(Default)]
struct Pending {
    /// Bulks still expected.
    remaining: usize,
    /// Offset (from the request start) of the next unparsed byte.
    pos: usize,
}

/// Reusable, resumable request parser; one per connection.
pub struct RequestParser {
    spans: Vec<Range<usize>>,
    inline: Vec<u8>,
    inline_request: bool,
    pending: Option<Pending>,
    max_bulk: usize,
}

impl RequestParser {
    /// A parser that refuses bulks longer than `max_bulk` (Redis's `proto-max-bulk-len`).
    pub fn new(max_bulk: usize) -> Self {
        RequestParser {
            spans: Vec::new(),
            inline: Vec::new(),
            inline_request: false,
            pending: None,
            max_bulk,
        }
    }

    /// Changes the bulk length limit (CONFIG SET proto-max-bulk-len).
    pub fn set_max_bulk(&mut self, max_bulk: usize) {
        self.max_bulk = max_bulk;
    }

    /// Parses one request from the start of `buf`. Returns the bytes it used, or `None` when more input is needed.
    /// A return of `Some(n)` with [`Self::argv`] empty is a blank request to skip (an empty inline line, `*0`).
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if buf[0] == b'*' {
            self.parse_multibulk(buf)
        } else {
            self.parse_inline(buf)
        }
    }

    /// The arguments of the request just parsed; `buf` must be the buffer given to [`Self::parse`].
    pub fn argv<'a>(&'a self, buf: &'a [u8]) -> Argv<'a> {
        let data = if self.inline_request {
            &self.inline[..]
        } else {
            buf
        };
        Argv::new(data, &self.spans)
    }

    /// Bytes the current partial request still needs, when a bulk body is known to be on its way (to size reads).
    pub fn wanted(&self, buf: &[u8]) -> Option<usize> {
        let p = self.pending.as_ref()?;
        let rest = buf.get(p.pos..)?;
        if rest.first() != Some(&b'$') {
            return None;
        }
        let eol = find_crlf(rest)?;
        let len: usize = std::str::from_utf8(&rest[1..eol]).ok()?.parse().ok()?;
        Some(p.pos + eol + 2 + len + 2)
    }

    fn parse_multibulk(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        self.inline_request = false;
        let mut state = match self.pending.take() {
            Some(p) => p,
            None => {
                self.spans.clear();
                let Some(eol) = find_crlf(buf) else {
                    if buf.len() > INLINE_MAX {
                        return Err(ProtocolError::new("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                let count = parse_header_int(&buf[1..eol])
                    .filter(|n| *n <= MULTIBULK_MAX)
                    .ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
                if count <= 0 {
                    return Ok(Some(eol + 2));
                }
                self.spans.reserve((count as usize).min(RESERVE_MAX));
                Pending {
                    remaining: count as usize,
                    pos: eol + 2,
                }
            }
        };
        while state.remaining > 0 {
            let rest = &buf[state.pos..];
            let Some(eol) = find_crlf(rest) else {
                if rest.len() > INLINE_MAX {
                    return Err(ProtocolError::new("too big bulk count string"));
                }
                self.pending = Some(state);
                return Ok(None);
            };
            if rest[0] != b'$' {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    rest[0] as char
                )));
            }
            let len = parse_header_int(&rest[1..eol])
                .filter(|n| *n >= 0 && *n as u64 <= self.max_bulk as u64)
                .ok_or_else(|| ProtocolError::new("invalid bulk length"))?
                as usize;
            let start = state.pos + eol + 2;
            if buf.len() < start + len + 2 {
                self.pending = Some(state);
                return Ok(None);
            }
            self.spans.push(start..start + len);
            state.pos = start + len + 2;
            state.remaining -= 1;
        }
        Ok(Some(state.pos))
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        self.inline_request = true;
        self.spans.clear();
        self.inline.clear();
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError::new("too big inline request"));
            }
            return Ok(None);
        };
        let mut line = &buf[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        split_args(line, &mut self.inline, &mut self.spans)
            .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))?;
        Ok(Some(nl + 1))
    }
}

/// Finds the `\r` that ends a header line (its index). As Redis, the byte after it is taken for the `\n` without
/// looking, but it must have arrived.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    let r = buf.iter().position(|&b| b == b'\r')?;
    (r + 1 < buf.len()).then_some(r)
}

/// Parses a length header as Redis's `string2ll` does (no sign but `-`, no spaces, no leading zeros).
fn parse_header_int(s: &[u8]) -> Option<i64> {
    crate::cmd::args::parse_i64(s)
}

/// Splits an inline line like Redis's `sdssplitargs`: whitespace separated, with "double" quotes (C escapes, `\xHH`)
/// and 'single' quotes. Returns `None` on unbalanced quotes. Arguments are written into `out`, their spans to `spans`.
pub fn split_args(line: &[u8], out: &mut Vec<u8>, spans: &mut Vec<Range<usize>>) -> Option<()> {
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() || line[i] == 0 {
            return Some(());
        }
        let start = out.len();
        // The quote we are inside, if any. A closing quote must be followed by a space or the end of the line.
        let mut quote: Option<u8> = None;
        loop {
            let c = at(i);
            match quote {
                Some(b'"')
                    if c == b'\\'
                        && at(i + 1) == b'x'
                        && at(i + 2).is_ascii_hexdigit()
                        && at(i + 3).is_ascii_hexdigit() =>
                {
                    out.push(hex(at(i + 2)) * 16 + hex(at(i + 3)));
                    i += 3;
                }
                Some(b'"') if c == b'\\' && i + 1 < line.len() => {
                    i += 1;
                    out.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                }
                Some(b'\'') if c == b'\\' && at(i + 1) == b'\'' => {
                    i += 1;
                    out.push(b'\'');
                }
                Some(q) if c == q && i < line.len() => {
                    if i + 1 < line.len() && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                Some(_) if i >= line.len() => return None,
                Some(_) => out.push(c),
                None => match c {
                    _ if i >= line.len() => break,
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' | b'\'' => quote = Some(c),
                    _ => out.push(c),
                },
            }
            i += 1;
        }
        spans.push(start..out.len());
    }
}

fn hex(c: u8) -> u8 {
    (c as char).to_digit(16).unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RequestParser::new(512 * 1024 * 1024);
        let mut at = 0;
        let mut out = Vec::new();
        while let Some(n) = p.parse(&input[at..])? {
            let argv = p.argv(&input[at..]);
            if !argv.is_empty() {
                out.push(argv.iter_from(0).map(|a| a.to_vec()).collect());
            }
            at += n;
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_requests_mix_in_one_buffer() {
        let got =
            parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\nSET k \"a b\\x41\"\r\n*0\r\n\r\n")
                .unwrap();
        assert_eq!(
            got,
            vec![
                vec![b"GET".to_vec(), b"a".to_vec()],
                vec![b"PING".to_vec()],
                vec![b"SET".to_vec(), b"k".to_vec(), b"a bA".to_vec()]
            ]
        );
    }

    #[test]
    fn every_split_point_yields_the_same_request() {
        let input = b"*3\r\n$3\r\nSET\r\n$4\r\nk\r\n\0\r\n$5\r\nhello\r\n";
        for cut in 0..input.len() {
            let mut p = RequestParser::new(1 << 20);
            assert_eq!(p.parse(&input[..cut]).unwrap(), None, "cut at {cut}");
            assert_eq!(p.parse(input).unwrap(), Some(input.len()));
            let argv = p.argv(input);
            assert_eq!(argv.get(2), b"hello");
            assert_eq!(argv.get(1), b"k\r\n\0");
        }
    }

    #[test]
    fn the_byte_after_a_header_cr_is_skipped_unread_as_redis_does() {
        assert_eq!(
            parse_all(b"*1\rX$4\r\nPING\r\n").unwrap(),
            vec![vec![b"PING".to_vec()]]
        );
        assert_eq!(
            parse_all(b"*1\r\n$4\rXPING\r\n").unwrap(),
            vec![vec![b"PING".to_vec()]]
        );
        let mut p = RequestParser::new(1 << 20);
        assert_eq!(
            p.parse(b"*1\r$4\r\nPING\r\n").unwrap_err().to_string(),
            "Protocol error: expected '$', got '4'"
        );
        // A CR as the last byte read is not a complete header yet.
        assert_eq!(p.parse(b"*1\r"), Ok(None));
    }

    #[test]
    fn limits_and_malformed_headers_give_redis_errors() {
        let err = |input: &[u8]| parse_all(input).unwrap_err().to_string();
        assert_eq!(err(b"*abc\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            err(b"*2147483648\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err(b"*1\r\n$600000000\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(err(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            err(b"*1\r\nx3\r\n"),
            "Protocol error: expected '$', got 'x'"
        );
        assert_eq!(
            err(b"SET a \"b\n"),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            err(b"SET a \"b\"c\n"),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            err(&vec![b'a'; INLINE_MAX + 1]),
            "Protocol error: too big inline request"
        );
        let mut long_header = b"*1\r\n$".to_vec();
        long_header.extend(std::iter::repeat_n(b'1', INLINE_MAX + 1));
        assert_eq!(
            err(&long_header),
            "Protocol error: too big bulk count string"
        );
    }

    #[test]
    fn single_quotes_and_quotes_inside_tokens_follow_sdssplitargs() {
        let got = parse_all(b"set 'it\\'s' a\"b c\"\r\n").unwrap();
        assert_eq!(
            got[0],
            vec![b"set".to_vec(), b"it's".to_vec(), b"ab c".to_vec()]
        );
    }
}
