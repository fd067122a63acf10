//! Argument parsing shared by every command: Redis's number rules and a cursor over option lists.

use super::CmdError;
use crate::protocol::Argv;

/// Parses a decimal integer exactly as Redis's `string2ll`: optional `-`, no `+`, no spaces, no leading zeros.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Parses a float as Redis's `strtold`-based parsing accepts it: no leading space, the whole string used, no NaN.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty()
        || text.len() > 5 * 1024
        || text.starts_with(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let v = match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => lower.parse::<f64>().ok()?,
        t if t.starts_with(|c: char| c.is_ascii_digit() || c == '.') => {
            lower.parse::<f64>().ok()?
        }
        _ => return None,
    };
    (!v.is_nan()).then_some(v)
}

/// The bytes before the first NUL: what Redis shows of an argument it formats into an error with `%s`.
pub fn c_str(arg: &[u8]) -> &[u8] {
    arg.split(|&b| b == 0).next().unwrap_or(arg)
}

/// An integer argument, or Redis's `value is not an integer or out of range`.
pub fn int(s: &[u8]) -> Result<i64, CmdError> {
    parse_i64(s).ok_or(CmdError::NotInteger)
}

/// An integer argument within `min..=max`, with Redis's `getRangeLongFromObjectOrReply` errors (SRANDMEMBER and
/// HRANDFIELD counts).
pub fn int_in_range(s: &[u8], min: i64, max: i64) -> Result<i64, CmdError> {
    let n = int(s)?;
    if !(min..=max).contains(&n) {
        return Err(CmdError::err(format!(
            "value is out of range, value must between {min} and {max}"
        )));
    }
    Ok(n)
}

/// Parses an integer argument that must be at least `min`, replying `msg` when it is not an integer or is smaller,
/// as Redis's `getRangeLongFromObjectOrReply` does when given a message.
pub fn int_at_least(arg: &[u8], min: i64, msg: &str) -> Result<usize, CmdError> {
    match parse_i64(arg) {
        Some(n) if n >= min => Ok(n as usize),
        _ => Err(CmdError::err(msg)),
    }
}

/// The arguments of LMPOP / ZMPOP and their blocking forms after the command (and the timeout): `numkeys key
/// [key ...] <where> [COUNT count]`, with `numkeys` at index `at` and `<where>` read by `side` (LEFT|RIGHT, MIN|MAX).
/// Returns the number of keys, the side and the count, with Redis's errors in Redis's order.
pub fn mpop_args<S>(
    argv: Argv,
    at: usize,
    side: impl Fn(&[u8]) -> Result<S, CmdError>,
) -> Result<(usize, S, usize), CmdError> {
    let numkeys = int_at_least(argv.get(at), 1, "numkeys should be greater than 0")?;
    // Redis answers a numkeys that runs past the arguments with a plain syntax error.
    let where_at = numkeys.saturating_add(at + 1);
    if where_at >= argv.len() {
        return Err(CmdError::Syntax);
    }
    let side = side(argv.get(where_at))?;
    let mut count = None;
    let mut opts = Cursor::new(argv, where_at + 1);
    while let Some(opt) = opts.next() {
        if count.is_none() && is(opt, "COUNT") && opts.remaining() > 0 {
            count = Some(int_at_least(
                opts.value()?,
                1,
                "count should be greater than 0",
            )?);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((numkeys, side, count.unwrap_or(1)))
}

/// The LIMIT of SINTERCARD and ZINTERCARD: a count where 0 means none (`usize::MAX`), with Redis's one error for a
/// negative or non-integer value.
pub fn intercard_limit(s: &[u8]) -> Result<usize, CmdError> {
    match parse_i64(s) {
        Some(0) => Ok(usize::MAX),
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(CmdError::err("LIMIT can't be negative")),
    }
}

/// A float argument, or Redis's `value is not a valid float`.
pub fn float(s: &[u8]) -> Result<f64, CmdError> {
    parse_f64(s).ok_or(CmdError::NotFloat)
}

/// Case-insensitive keyword comparison (`nx`, `NX`, `Nx` are all NX).
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Parses a SCAN-family cursor as Redis does with `strtoul`: no leading space, an optional sign (a negative number
/// wraps), decimal digits, nothing after them; an empty string is 0. Anything else, or a value past `u64`, is an
/// error.
pub fn scan_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::err("invalid cursor");
    let (negative, digits) = match arg.first() {
        None => return Ok(0),
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        Some(_) => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((d - b'0') as u64))
            .ok_or_else(invalid)?;
    }
    Ok(if negative { v.wrapping_neg() } else { v })
}

/// The options of SCAN, HSCAN, SSCAN after the cursor, as Redis's `scanGenericCommand` parses them.
pub struct ScanOpts<'a> {
    /// COUNT: the work per call (default 10, at least 1).
    pub count: i64,
    /// MATCH, unless it is `*` (which matches everything).
    pub pattern: Option<&'a [u8]>,
    /// TYPE (SCAN only).
    pub type_name: Option<&'a [u8]>,
}

impl<'a> ScanOpts<'a> {
    /// Parses the options from argument `start`; TYPE is accepted only when `with_type` (the keyspace SCAN).
    pub fn parse(argv: Argv<'a>, start: usize, with_type: bool) -> Result<Self, CmdError> {
        let mut opts = ScanOpts {
            count: 10,
            pattern: None,
            type_name: None,
        };
        let mut args = Cursor::new(argv, start);
        while let Some(opt) = args.next() {
            if is(opt, "COUNT") {
                opts.count = args.int()?;
                if opts.count < 1 {
                    return Err(CmdError::Syntax);
                }
            } else if is(opt, "MATCH") {
                opts.pattern = Some(args.value()?).filter(|p| *p != b"*");
            } else if with_type && is(opt, "TYPE") {
                opts.type_name = Some(args.value()?);
            } else {
                return Err(CmdError::Syntax);
            }
        }
        Ok(opts)
    }
}

/// A cursor over the optional arguments of a command, from a start index.
pub struct Cursor<'a> {
    argv: Argv<'a>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at argument `start`.
    pub fn new(argv: Argv<'a>, start: usize) -> Self {
        Cursor { argv, pos: start }
    }
    /// The value that must follow an option, or a syntax error.
    pub fn value(&mut self) -> Result<&'a [u8], CmdError> {
        self.next().ok_or(CmdError::Syntax)
    }
    /// The integer that must follow an option.
    pub fn int(&mut self) -> Result<i64, CmdError> {
        int(self.value()?)
    }
    /// Arguments not yet consumed.
    pub fn remaining(&self) -> usize {
        self.argv.len().saturating_sub(self.pos)
    }
}

impl<'a> Iterator for Cursor<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let arg = (self.pos < self.argv.len()).then(|| self.argv.get(self.pos))?;
        self.pos += 1;
        Some(arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"+1",
            b" 1",
            b"01",
            b"-0",
            b"",
            b"-",
            b"1.0",
            b"1 ",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_accept_what_strtold_accepts_but_nan() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        for bad in [&b"nan"[..], b" 1", b"1 ", b"abc", b"", b"1.0x"] {
            assert_eq!(parse_f64(bad), None);
        }
    }
}
