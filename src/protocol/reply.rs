//! The reply encoder: writes RESP2 or RESP3 straight into the connection's output buffer.
//!
//! Handlers describe a reply by its shape (map, set, double, null...) and this module picks the wire form for the
//! client's protocol, the way Redis's `addReply*` functions do: a RESP3 map is a flat array of pairs in RESP2, a double
//! is a bulk string, a null is `$-1` (or `*-1` for a null array).

/// An output buffer plus the protocol version of the client it is for.
pub struct Reply {
    /// Encoded bytes waiting to be written.
    pub buf: Vec<u8>,
    resp3: bool,
}

impl Reply {
    /// An empty buffer for a RESP2 (`resp3 = false`) or RESP3 client.
    pub fn new(resp3: bool) -> Self {
        Reply {
            buf: Vec::with_capacity(16 * 1024),
            resp3,
        }
    }
    /// An empty buffer that allocates only as it grows: for a single short reply (a script's `redis.call`, a served
    /// waiter), or a connection's output, which should cost an idle connection nothing.
    pub fn scratch(resp3: bool) -> Self {
        Reply {
            buf: Vec::new(),
            resp3,
        }
    }
    /// An empty buffer with room for `capacity` bytes: for one reply of about known size (a served waiter's).
    pub fn with_capacity(resp3: bool, capacity: usize) -> Self {
        Reply {
            buf: Vec::with_capacity(capacity),
            resp3,
        }
    }
    /// True when the client speaks RESP3.
    pub fn resp3(&self) -> bool {
        self.resp3
    }
    /// Switches the protocol (HELLO).
    pub fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
    }

    /// `+OK`.
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }
    /// A simple string; `s` must not contain CR or LF.
    pub fn simple(&mut self, s: &str) {
        self.line(b'+', s.as_bytes());
    }
    /// A status line of any bytes (a script's `{ok=...}`), CR and LF replaced by spaces.
    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        self.buf.extend(s.iter().map(|&b| one_line(b)));
        self.buf.extend_from_slice(b"\r\n");
    }
    /// An error line: `s` starts with its code (`ERR ...`, `WRONGTYPE ...`). CR and LF are replaced by spaces, as Redis
    /// does, so a client-supplied argument inside the message cannot break the protocol.
    pub fn error(&mut self, s: &str) {
        self.error_bytes(s.as_bytes());
    }
    /// [`Reply::error`] of any bytes (a script's `{err=...}` need not be UTF-8).
    pub fn error_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'-');
        self.buf.extend(s.iter().map(|&b| one_line(b)));
        self.buf.extend_from_slice(b"\r\n");
    }
    /// An integer.
    pub fn int(&mut self, n: i64) {
        self.buf.push(b':');
        self.number(n);
    }
    /// A bulk string.
    pub fn bulk(&mut self, s: &[u8]) {
        self.buf.push(b'$');
        self.number(s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }
    /// An integer sent as a bulk string (INCRBYFLOAT-style replies, CONFIG values).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }
    /// A null bulk string (`$-1` / `_`).
    pub fn null(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }
    /// A null array (`*-1` / `_`), as a timed-out BLPOP replies.
    pub fn null_array(&mut self) {
        self.buf
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }
    /// An array header for `n` elements.
    pub fn array(&mut self, n: usize) {
        self.aggregate(b'*', n);
    }
    /// A map header for `n` key/value pairs (a flat array of `2n` in RESP2).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.aggregate(b'%', n)
        } else {
            self.aggregate(b'*', 2 * n)
        }
    }
    /// A set header for `n` elements (an array in RESP2).
    pub fn set(&mut self, n: usize) {
        self.aggregate(if self.resp3 { b'~' } else { b'*' }, n);
    }
    /// A push header (RESP3 out-of-band data; an array in RESP2).
    pub fn push(&mut self, n: usize) {
        self.aggregate(if self.resp3 { b'>' } else { b'*' }, n);
    }
    /// A boolean (`:1`/`:0` in RESP2).
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }
    /// A double: RESP3 `,` type, RESP2 bulk string in Redis's human format.
    pub fn double(&mut self, d: f64) {
        let s = format_double(d);
        if self.resp3 {
            self.line(b',', s.as_bytes());
        } else {
            self.bulk(s.as_bytes());
        }
    }
    /// A verbatim string (`=` in RESP3, bulk in RESP2) such as INFO and CLIENT LIST reply.
    pub fn verbatim(&mut self, s: &[u8]) {
        self.verbatim_as(b"txt", s);
    }
    /// A verbatim string of the given format: its first three bytes, padded with spaces (Redis's addReplyVerbatim).
    pub fn verbatim_as(&mut self, format: &[u8], s: &[u8]) {
        if self.resp3 {
            self.buf.push(b'=');
            self.number(s.len() as i64 + 4);
            let mut ext = *b"   ";
            for (e, f) in ext.iter_mut().zip(format) {
                *e = *f;
            }
            self.buf.extend_from_slice(&ext);
            self.buf.push(b':');
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }
    /// Appends bytes that are already encoded for this client (a queued or served reply).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn aggregate(&mut self, tag: u8, n: usize) {
        self.buf.push(tag);
        self.number(n as i64);
    }
    fn line(&mut self, tag: u8, s: &[u8]) {
        self.buf.push(tag);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }
    fn number(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// A byte of a one-line reply: CR and LF become spaces.
pub(crate) fn one_line(b: u8) -> u8 {
    if b == b'\r' || b == b'\n' {
        b' '
    } else {
        b
    }
}

/// Redis's `double2ll`: the integer a double holds exactly, if it is one within +-2^62 (where the integer printer is
/// exact and faster).
pub fn exact_integer(d: f64) -> Option<i64> {
    let limit = (i64::MAX / 2) as f64;
    ((-limit..=limit).contains(&d) && d == d.trunc()).then_some(d as i64)
}

/// Formats a double as Redis 7.2's `d2string` does in replies: `inf`/`-inf`/`nan`, a signed zero, an integer
/// within +-2^62 as an integer (1700000000000, not 1.7e+12), else (`fpconv_dtoa`) the shortest digits that read
/// back to the same value, written plainly when the exponent is moderate and as `d.ddde+N` otherwise.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sign = if d.is_sign_negative() { "-" } else { "" };
    if d == 0.0 {
        return format!("{sign}0");
    }
    if let Some(n) = exact_integer(d) {
        return n.to_string();
    }
    // Shortest round-trip digits from Rust's `{:e}`: "d.ddde<exp>".
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp10) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i64;
    let k = exp10.parse::<i64>().expect("integer exponent") - (n - 1);
    let exp = (k + n - 1).abs();
    let body = if k >= 0 && exp < n + 7 {
        format!("{digits}{}", "0".repeat(k as usize))
    } else if k < 0 && (k > -7 || exp < 4) {
        let offset = n + k;
        if offset <= 0 {
            format!("0.{}{digits}", "0".repeat((-offset) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..offset as usize],
                &digits[offset as usize..]
            )
        }
    } else {
        let frac = if n > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let esign = if k + n - 1 < 0 { '-' } else { '+' };
        format!("{}{frac}e{esign}{exp}", &digits[..1])
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_a_flat_array_in_resp2_and_a_map_in_resp3() {
        let mut r2 = Reply::new(false);
        r2.map(2);
        let mut r3 = Reply::new(true);
        r3.map(2);
        assert_eq!(r2.buf, b"*4\r\n");
        assert_eq!(r3.buf, b"%2\r\n");
    }

    #[test]
    fn errors_never_carry_newlines() {
        let mut r = Reply::new(false);
        r.error("ERR unknown command 'a\r\nb'");
        assert_eq!(r.buf, b"-ERR unknown command 'a  b'\r\n");
    }

    #[test]
    fn doubles_use_redis_human_format() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(-0.1), "-0.1");
        assert_eq!(format_double(1e21), "1e+21");
        assert_eq!(format_double(1.7e12), "1700000000000");
        assert_eq!(format_double(-1e8), "-100000000");
        assert_eq!(format_double(4611686018427387904.0), "4611686018427387904");
        assert_eq!(format_double(9223372036854775808.0), "9223372036854776000");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(1.5e-7), "1.5e-7");
        assert_eq!(format_double(123456.789), "123456.789");
        assert_eq!(format_double(0.000123), "0.000123");
        assert_eq!(format_double(-2.5e300), "-2.5e+300");
    }
}
