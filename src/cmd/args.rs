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

/// What C's `strtod` makes of a whole argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Strtod {
    /// The value, correctly rounded (infinite on overflow, zero on underflow).
    pub value: f64,
    /// `ERANGE` as Redis checks it: the number overflowed to infinity or underflowed to zero.
    pub range_error: bool,
}

/// Reads `s` as C's `strtod` does and requires it to use all of `s` (see [`strtod_prefix`]). `None` when anything is
/// left over or there is no number.
pub fn strtod(s: &[u8]) -> Option<Strtod> {
    let blank = s
        .iter()
        .take_while(|c| b" \t\n\x0b\x0c\r".contains(c))
        .count();
    match strtod_prefix(&s[blank..])? {
        (r, used) if blank + used == s.len() => Some(r),
        _ => None,
    }
}

/// C's `strtod` (glibc) on the start of `s`, after any white space the caller skipped: an optional sign, then decimal
/// digits (`1.5e3`, `.5`, `5.`), hexadecimal (`0x1.8p3`), `inf`, `infinity` or `nan` (`nan(chars)`) in any case,
/// correctly rounded. Returns the number and the bytes it used; an exponent or `0x` without digits after it is not
/// used (`1e` reads `1`, `0x` reads `0`). `None` when no number starts there.
pub fn strtod_prefix(s: &[u8]) -> Option<(Strtod, usize)> {
    let (neg, mut i) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let done = |magnitude: f64, range_error: bool, used: usize| {
        let value = if neg { -magnitude } else { magnitude };
        Some((Strtod { value, range_error }, used))
    };
    let starts = |i: usize, word: &[u8]| {
        s.get(i..i + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    let digits = |from: usize, hex: bool| {
        s[from.min(s.len())..]
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count()
    };
    if starts(i, b"inf") {
        let len = if starts(i, b"infinity") { 8 } else { 3 };
        return done(f64::INFINITY, false, i + len);
    }
    if starts(i, b"nan") {
        i += 3;
        // "nan(n-char-sequence)" is read whole only when the parenthesis closes.
        if s.get(i) == Some(&b'(') {
            let inner = s[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if s.get(i + 1 + inner) == Some(&b')') {
                i += inner + 2;
            }
        }
        return done(f64::NAN, false, i);
    }
    let hex = s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && (digits(i + 2, true) > 0 || (s.get(i + 2) == Some(&b'.') && digits(i + 3, true) > 0));
    let start = if hex { i + 2 } else { i };
    let int = digits(start, hex);
    let mut end = start + int;
    let mut frac = 0;
    if s.get(end) == Some(&b'.') {
        frac = digits(end + 1, hex);
        end += 1 + frac;
    }
    if int + frac == 0 {
        return None;
    }
    let mantissa_end = end;
    if matches!(s.get(end), Some(c) if *c | 0x20 == if hex { b'p' } else { b'e' }) {
        let sign = usize::from(matches!(s.get(end + 1), Some(b'+' | b'-')));
        let n = digits(end + 1 + sign, false);
        if n > 0 {
            end += 1 + sign + n;
        }
    }
    // Every byte in start..end is ASCII by construction.
    let text = std::str::from_utf8(&s[start..end]).ok()?;
    let (magnitude, range_error) = if hex {
        hex_float(&text.to_ascii_lowercase())?
    } else {
        // Rust reads `e` and `E` alike, as strtod does.
        let v = text.parse::<f64>().ok()?;
        let nonzero = s[start..mantissa_end]
            .iter()
            .any(|c| (b'1'..=b'9').contains(c));
        (v, v.is_infinite() || (v == 0.0 && nonzero))
    };
    done(magnitude, range_error, end)
}

/// The value of hexadecimal digits `h[.h][p[+-]d]` (after `0x`), correctly rounded to nearest even as `strtod`
/// does, with its range error; `None` unless the whole text is such a number with at least one digit.
fn hex_float(text: &str) -> Option<(f64, bool)> {
    let (digits, exp) = match text.split_once('p') {
        Some((d, e)) => (d, Some(e)),
        None => (text, None),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // The first 120 bits of the digits exactly, the rest only as "something nonzero" (sticky).
    let (mut mant, mut exp2, mut sticky) = (0u128, 0i64, false);
    for (i, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = c.to_digit(16)?;
        if mant >> 116 == 0 {
            mant = mant << 4 | d as u128;
            exp2 -= if i >= int.len() { 4 } else { 0 };
        } else {
            sticky |= d != 0;
            exp2 += if i >= int.len() { 0 } else { 4 };
        }
    }
    if let Some(e) = exp {
        let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Saturate: anything this large overflows or underflows either way.
        let n = unsigned.parse::<i64>().unwrap_or(i64::MAX).min(1 << 40);
        exp2 += if e.starts_with('-') { -n } else { n };
    }
    if mant == 0 {
        return Some((0.0, false));
    }
    // The top bit's weight is 2^top; a double keeps 53 bits down to 2^-1074 (subnormals keep fewer).
    let bits = 128 - mant.leading_zeros() as i64;
    let top = exp2 + bits - 1;
    if top > 1023 {
        return Some((f64::INFINITY, true));
    }
    if top < -1075 {
        // Below half the smallest subnormal.
        return Some((0.0, true));
    }
    let keep = (top + 1075).min(53).min(bits);
    let (mut m, mut scale) = (mant, exp2);
    if keep < bits {
        let drop = (bits - keep.max(0)) as u32;
        let half = drop <= 128 && mant >> (drop - 1) & 1 == 1;
        let rest = sticky || (drop > 1 && mant & ((1u128 << (drop - 1).min(127)) - 1) != 0);
        m = if drop >= 128 { 0 } else { mant >> drop };
        if half && (rest || m & 1 == 1) {
            m += 1;
        }
        scale += drop as i64;
    }
    // m has at most 54 bits and m * 2^scale is a double (or overflows to infinity when rounding carried past 2^1024):
    // scaling in two steps keeps every intermediate exact.
    let mut v = m as f64;
    let first = scale.clamp(-1000, 1000);
    v *= 2f64.powi(first as i32);
    v *= 2f64.powi((scale - first) as i32);
    Some((v, v.is_infinite() || v == 0.0))
}

/// Parses a double as Redis's `getDoubleFromObject` (7.2's `string2d`) accepts it: [`strtod`] over the whole
/// string, but no leading space, no NaN and no range error (`1e400` and `1e-400` are refused; the word `inf` is not).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.first().is_some_and(|c| b" \t\n\x0b\x0c\r".contains(c)) {
        return None;
    }
    strtod(s)
        .filter(|r| !r.range_error && !r.value.is_nan())
        .map(|r| r.value)
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
    fn floats_accept_what_strtod_accepts_but_nan_and_range_errors() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"1E3"), Some(1000.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"5."), Some(5.0));
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"-0X1.8p1"), Some(-3.0));
        assert_eq!(parse_f64(b"0x.8"), Some(0.5));
        assert_eq!(parse_f64(b"1e-310"), Some(1e-310));
        assert_eq!(parse_f64(b"0e-999"), Some(0.0));
        for bad in [
            &b"nan"[..],
            b" 1",
            b"1 ",
            b"abc",
            b"",
            b"1.0x",
            b"1e400",
            b"1e-400",
            b"2e-324",
            b"0x",
            b"0x1p",
            b"0x1p1024",
            b"0x1p-1076",
            b"inf ",
            b"+-1",
            b".",
            b"e5",
        ] {
            assert_eq!(parse_f64(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn hexadecimal_floats_round_to_nearest_even_like_strtod() {
        let v = |s: &str| strtod(s.as_bytes()).map(|r| (r.value, r.range_error));
        // 2^53 + 1 is halfway between two doubles: ties go to the even one; anything above goes up.
        assert_eq!(v("0x20000000000001"), Some((9007199254740992.0, false)));
        assert_eq!(v("0x20000000000003"), Some((9007199254740996.0, false)));
        // Past 120 bits the digits only count as "above halfway": (2^53 + 1) + 2^-68 rounds up.
        assert_eq!(
            v("0x2000000000000100000000000000001p-68"),
            Some((9007199254740994.0, false))
        );
        // The subnormal end: 2^-1074 is the smallest double, 2^-1075 rounds to even (zero), a hair above it up.
        assert_eq!(v("0x1p-1074"), Some((f64::from_bits(1), false)));
        assert_eq!(v("0x1p-1075"), Some((0.0, true)));
        assert_eq!(v("0x1.0000001p-1075"), Some((f64::from_bits(1), false)));
        assert_eq!(v("0x1.fffffffffffff8p1023"), Some((f64::INFINITY, true)));
        assert_eq!(v("0x1.fffffffffffffp1023"), Some((f64::MAX, false)));
        assert_eq!(v("  -0x0p0"), Some((-0.0, false)));
    }
}
