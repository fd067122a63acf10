//! Software x87 `long double` (64-bit mantissa, 15-bit exponent) for the commands Redis computes in `long double`:
//! INCRBYFLOAT and blocking timeouts. Redis reads these numbers with `strtold`, adds them in 80-bit precision and
//! prints INCRBYFLOAT results with `%.17Lf`, so f64 gives different answers (0.1 + 0.2 is `0.3` in Redis, f64's
//! `0.30000000000000004`) and a different range (`1e400` is a valid long double).
//!
//! Every operation is exact arithmetic on big integers followed by one round-to-nearest-even to 64 mantissa bits, so
//! results are the correctly rounded ones an x87 FPU gives. Subnormal precision is not modelled: a nonzero value
//! below the smallest subnormal (2^-16445) reads as an underflow, and anything under 10^-17 prints as `0` anyway.

use std::cmp::Ordering;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: `string2ld` refuses inputs of this length or more.
const MAX_CHARS: usize = 5 * 1024;
/// Largest binary exponent of the top mantissa bit (the x87 bias is 16383).
const MAX_EXP: i64 = 16383;
/// A value whose top bit is below 2^-16446 rounds to zero even as a subnormal.
const MIN_EXP: i64 = -16446;

/// An unsigned big integer, little-endian 32-bit limbs, no trailing zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut limbs = Vec::new();
        while v > 0 {
            limbs.push(v as u32);
            v >>= 32;
        }
        Big(limbs)
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trim(mut self) -> Big {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }

    fn bits(&self) -> u64 {
        self.0.last().map_or(0, |top| {
            (self.0.len() as u64 - 1) * 32 + (32 - top.leading_zeros() as u64)
        })
    }

    fn bit(&self, i: u64) -> bool {
        self.0
            .get((i / 32) as usize)
            .is_some_and(|l| l >> (i % 32) & 1 == 1)
    }

    /// True if any bit below `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let (whole, part) = ((i / 32) as usize, i % 32);
        self.0.iter().take(whole).any(|&l| l != 0)
            || (part > 0
                && self
                    .0
                    .get(whole)
                    .is_some_and(|l| l & ((1 << part) - 1) != 0))
    }

    fn mul_small(&self, m: u32) -> Big {
        let mut carry = 0u64;
        let mut out: Vec<u32> = self
            .0
            .iter()
            .map(|&l| {
                let v = l as u64 * m as u64 + carry;
                carry = v >> 32;
                v as u32
            })
            .collect();
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out).trim()
    }

    fn add_small(&self, a: u32) -> Big {
        let mut out = self.0.clone();
        let mut carry = a as u64;
        for l in out.iter_mut() {
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
            if carry == 0 {
                break;
            }
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// `self / d` and the remainder.
    fn div_small(&self, d: u32) -> (Big, u32) {
        let mut rem = 0u64;
        let mut out = vec![0u32; self.0.len()];
        for (i, &l) in self.0.iter().enumerate().rev() {
            let v = (rem << 32) | l as u64;
            out[i] = (v / d as u64) as u32;
            rem = v % d as u64;
        }
        (Big(out).trim(), rem as u32)
    }

    fn shl(&self, n: u64) -> Big {
        if self.is_zero() {
            return self.clone();
        }
        let (whole, part) = ((n / 32) as usize, n % 32);
        let mut out = vec![0u32; whole];
        let mut carry = 0u32;
        for &l in &self.0 {
            out.push((l << part) | carry);
            carry = if part == 0 { 0 } else { l >> (32 - part) };
        }
        out.push(carry);
        Big(out).trim()
    }

    fn shr(&self, n: u64) -> Big {
        let (whole, part) = ((n / 32) as usize, n % 32);
        let src = self.0.get(whole..).unwrap_or(&[]);
        let out = (0..src.len())
            .map(|i| {
                let hi = src.get(i + 1).copied().unwrap_or(0) as u64;
                (((hi << 32) | src[i] as u64) >> part) as u32
            })
            .collect();
        Big(out).trim()
    }

    /// The value modulo 2^n.
    fn low_bits(&self, n: u64) -> Big {
        let (whole, part) = ((n / 32) as usize, n % 32);
        let mut out: Vec<u32> = self.0.iter().take(whole + 1).copied().collect();
        if out.len() > whole {
            out[whole] &= if part == 0 { 0 } else { (1u32 << part) - 1 };
        }
        Big(out).trim()
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self - other`; `self` must be at least `other`.
    fn sub(&self, other: &Big) -> Big {
        let mut borrow = 0i64;
        let out = self
            .0
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                let mut v = l as i64 - other.0.get(i).copied().unwrap_or(0) as i64 - borrow;
                borrow = (v < 0) as i64;
                if v < 0 {
                    v += 1 << 32;
                }
                v as u32
            })
            .collect();
        Big(out).trim()
    }

    fn add(&self, other: &Big) -> Big {
        let mut carry = 0u64;
        let len = self.0.len().max(other.0.len());
        let mut out: Vec<u32> = (0..len)
            .map(|i| {
                let v = self.0.get(i).copied().unwrap_or(0) as u64
                    + other.0.get(i).copied().unwrap_or(0) as u64
                    + carry;
                carry = v >> 32;
                v as u32
            })
            .collect();
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    fn pow10(n: u32) -> Big {
        (0..n).fold(Big::from_u128(1), |b, _| b.mul_small(10))
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut chunks = Vec::new();
        let mut rest = self.clone();
        while !rest.is_zero() {
            let (q, r) = rest.div_small(1_000_000_000);
            chunks.push(r);
            rest = q;
        }
        let mut s = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

/// A long double value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LongDouble {
    /// `(-1)^neg * mant * 2^exp` with the top bit of `mant` set; or zero when `mant` is 0.
    Finite { neg: bool, mant: u64, exp: i64 },
    /// An infinity.
    Inf { neg: bool },
    /// Not a number.
    Nan,
}

impl LongDouble {
    /// Positive zero.
    pub const ZERO: LongDouble = LongDouble::Finite {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// Rounds `x * 2^exp` (plus a sticky nonzero tail below it when `sticky`) to 64 bits, nearest even.
    fn round(neg: bool, x: &Big, exp: i64, sticky: bool) -> LongDouble {
        let bits = x.bits();
        if bits == 0 {
            return LongDouble::Finite {
                neg,
                mant: 0,
                exp: 0,
            };
        }
        let (mut mant, mut exp) = if bits <= 64 {
            (x.shl(64 - bits), exp - (64 - bits) as i64)
        } else {
            let drop = bits - 64;
            let mut m = x.shr(drop);
            let half = x.bit(drop - 1);
            let rest = sticky || x.any_below(drop - 1);
            if half && (rest || m.bit(0)) {
                m = m.add_small(1);
            }
            (m, exp + drop as i64)
        };
        if mant.bits() > 64 {
            mant = mant.shr(1);
            exp += 1;
        }
        let mant = mant
            .0
            .iter()
            .rev()
            .fold(0u64, |acc, &l| (acc << 32) | l as u64);
        // The top bit's weight is 2^(exp + 63).
        if exp + 63 > MAX_EXP {
            LongDouble::Inf { neg }
        } else if exp + 63 < MIN_EXP {
            LongDouble::Finite {
                neg,
                mant: 0,
                exp: 0,
            }
        } else {
            LongDouble::Finite { neg, mant, exp }
        }
    }

    /// Reads a number as Redis's `string2ld` does with `strtold`: decimal or hexadecimal (`0x1.8p3`), `inf` or
    /// `infinity`; no leading space, nothing after the number, no NaN, no overflow or underflow to zero.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_CHARS {
            return None;
        }
        let text = std::str::from_utf8(s).ok()?.to_ascii_lowercase();
        let (neg, body) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, &text[..]),
        };
        if body == "inf" || body == "infinity" {
            return Some(LongDouble::Inf { neg });
        }
        let (digits, value) = match body.strip_prefix("0x") {
            Some(hex) => {
                let (digits, exp2) = split_number(hex, 16, 'p')?;
                let value = LongDouble::round(neg, &digits, exp2, false);
                (digits, value)
            }
            None => {
                let (digits, exp10) = split_number(body, 10, 'e')?;
                let value = from_decimal(neg, &digits, exp10);
                (digits, value)
            }
        };
        match value {
            LongDouble::Finite { mant: 0, .. } if !digits.is_zero() => None,
            LongDouble::Finite { .. } => Some(value),
            _ => None,
        }
    }

    /// The sum, correctly rounded.
    pub fn add(self, other: LongDouble) -> LongDouble {
        use LongDouble::*;
        match (self, other) {
            (Nan, _) | (_, Nan) => Nan,
            (Inf { neg: a }, Inf { neg: b }) if a != b => Nan,
            (Inf { neg }, _) | (_, Inf { neg }) => Inf { neg },
            (Finite { mant: 0, .. }, x) | (x, Finite { mant: 0, .. }) => x,
            (
                Finite {
                    neg: na,
                    mant: ma,
                    exp: ea,
                },
                Finite {
                    neg: nb,
                    mant: mb,
                    exp: eb,
                },
            ) => {
                // A term more than 130 bits smaller only nudges the other below half an ulp.
                if ea - eb > 130 {
                    return self;
                }
                if eb - ea > 130 {
                    return other;
                }
                let e = ea.min(eb);
                let a = Big::from_u128(ma as u128).shl((ea - e) as u64);
                let b = Big::from_u128(mb as u128).shl((eb - e) as u64);
                if na == nb {
                    return LongDouble::round(na, &a.add(&b), e, false);
                }
                match a.cmp(&b) {
                    Ordering::Equal => LongDouble::ZERO,
                    Ordering::Greater => LongDouble::round(na, &a.sub(&b), e, false),
                    Ordering::Less => LongDouble::round(nb, &b.sub(&a), e, false),
                }
            }
        }
    }

    /// The nearest f64, for timeouts, where the precision does not matter but the range does; a nonzero value too
    /// small for f64 becomes its smallest subnormal, so that a tiny timeout stays a timeout (not "wait forever").
    pub fn to_f64(self) -> f64 {
        let (neg, magnitude) = match self {
            LongDouble::Nan => return f64::NAN,
            LongDouble::Inf { neg } => (neg, f64::INFINITY),
            LongDouble::Finite { neg, mant, exp } => {
                // Scale in steps that cannot overflow or underflow on the way (2^exp alone may not be an f64).
                let mut m = mant as f64;
                let mut e = exp;
                while e != 0 && m != 0.0 && m.is_finite() {
                    let step = e.clamp(-1000, 1000);
                    m *= 2f64.powi(step as i32);
                    e -= step;
                }
                if m == 0.0 && mant != 0 {
                    m = f64::from_bits(1);
                }
                (neg, m)
            }
        };
        if neg {
            -magnitude
        } else {
            magnitude
        }
    }

    /// Redis's `ld2string(LD_STR_HUMAN)`: `%.17Lf` with trailing zeros (and a trailing dot) removed, `-0` as `0`.
    /// `None` for NaN and infinities, which INCRBYFLOAT refuses before formatting.
    pub fn to_human(self) -> Option<String> {
        let LongDouble::Finite { neg, mant, exp } = self else {
            return None;
        };
        let m = Big::from_u128(mant as u128);
        let (int, frac) = if exp >= 0 {
            (m.shl(exp as u64), 0u64)
        } else {
            let shift = (-exp) as u64;
            let int = m.shr(shift);
            // The 17 decimals: (fraction * 10^17) / 2^shift, rounded to nearest even like glibc's printf.
            let scaled = m
                .low_bits(shift)
                .mul_small(100_000_000)
                .mul_small(1_000_000_000);
            let q = scaled.shr(shift);
            let r = scaled.low_bits(shift);
            let half = Big::from_u128(1).shl(shift - 1);
            let q =
                q.0.iter()
                    .rev()
                    .fold(0u64, |acc, &l| (acc << 32) | l as u64);
            let up = match r.cmp(&half) {
                Ordering::Greater => true,
                Ordering::Equal => q % 2 == 1,
                Ordering::Less => false,
            };
            let q = q + up as u64;
            if q == 100_000_000_000_000_000 {
                (int.add_small(1), 0)
            } else {
                (int, q)
            }
        };
        let mut s = int.to_decimal();
        if frac > 0 {
            let digits = format!("{frac:017}");
            s.push('.');
            s.push_str(digits.trim_end_matches('0'));
        }
        if neg && s != "0" {
            s.insert(0, '-');
        }
        Some(s)
    }
}

/// Splits `[digits][.digits][<e>[+-]digits]` in `radix` into the digits as one integer and the power of two (hex) or
/// ten (decimal) that scales it. `None` unless the whole text is such a number with at least one digit.
fn split_number(text: &str, radix: u32, exp_char: char) -> Option<(Big, i64)> {
    let (mantissa, exp_text) = match text.split_once(exp_char) {
        Some((m, e)) => (m, Some(e)),
        None => (text, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut digits = Big::from_u128(0);
    for c in int.chars().chain(frac.chars()) {
        digits = digits.mul_small(radix).add_small(c.to_digit(radix)?);
    }
    let exp = match exp_text {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Saturate: anything this large overflows or underflows either way.
            let n = unsigned
                .trim_start_matches('0')
                .parse::<i64>()
                .unwrap_or(if unsigned.trim_start_matches('0').is_empty() {
                    0
                } else {
                    1 << 40
                })
                .min(1 << 40);
            if e.starts_with('-') {
                -n
            } else {
                n
            }
        }
    };
    let per_digit = if radix == 16 { 4 } else { 1 };
    Some((digits, exp - per_digit * frac.len() as i64))
}

/// `digits * 10^exp`, correctly rounded.
fn from_decimal(neg: bool, digits: &Big, exp: i64) -> LongDouble {
    if digits.is_zero() {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    // Decimal magnitude of the value: outside about 1e-4952..1e4933 it is an underflow or overflow.
    let magnitude = exp + digits.to_decimal().len() as i64;
    if magnitude > 4940 {
        return LongDouble::Inf { neg };
    }
    if magnitude < -4970 {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    if exp >= 0 {
        let mut x = digits.clone();
        for _ in 0..exp {
            x = x.mul_small(10);
        }
        return LongDouble::round(neg, &x, 0, false);
    }
    // digits / 10^-exp: a quotient of at least 66 bits, then the remainder as the sticky bit.
    let divisor = Big::pow10((-exp) as u32);
    let shift = (66 + divisor.bits() as i64 - digits.bits() as i64).max(0) as u64;
    let mut rem = digits.shl(shift);
    let mut q = Big::from_u128(0);
    let top = rem.bits().saturating_sub(divisor.bits());
    for k in (0..=top).rev() {
        let d = divisor.shl(k);
        q = q.shl(1);
        if rem.cmp(&d) != Ordering::Less {
            rem = rem.sub(&d);
            q = q.add_small(1);
        }
    }
    LongDouble::round(neg, &q, -(shift as i64), !rem.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes())?;
        let b = LongDouble::parse(b.as_bytes())?;
        a.add(b).to_human()
    }

    #[test]
    fn sums_print_like_redis_long_double() {
        // Replies of Redis 7.0.15 (x86-64, glibc) to INCRBYFLOAT.
        assert_eq!(sum("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(sum("10.50", "0.1").as_deref(), Some("10.6"));
        assert_eq!(sum("5.0e3", "2.0e2").as_deref(), Some("5200"));
        assert_eq!(
            sum("-9223372036854775808", "1e10").as_deref(),
            Some("-9223372026854775808")
        );
        assert_eq!(
            sum("-9223372036854775808", "-2.25").as_deref(),
            Some("-9223372036854775810")
        );
        assert_eq!(sum("0", "1e308").as_deref(), Some(concat!(
            "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747",
            "225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560",
            "543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048"
        )));
        assert_eq!(sum("1.5", "-1.5").as_deref(), Some("0"));
        assert_eq!(sum("-1e-20", "0").as_deref(), Some("0"));
        assert_eq!(sum("0x10", "0x1p-1").as_deref(), Some("16.5"));
        assert_eq!(sum("3", "-0.25").as_deref(), Some("2.75"));
    }

    #[test]
    fn parse_follows_strtold_and_string2ld() {
        for good in [
            "1",
            "-1.5",
            ".5",
            "5.",
            "1e3",
            "1E-3",
            "+2",
            "0x1p3",
            "0X.8",
            "inf",
            "-Infinity",
            "1e400",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good}");
        }
        for bad in [
            "", " 1", "1 ", "abc", "nan", "1e", "e5", ".", "0x", "0x1p", "1e99999", "1e-99999",
            "--1", "1.2.3",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(LongDouble::parse(b"0e-99999"), Some(LongDouble::ZERO));
    }

    #[test]
    fn overflow_and_nan_are_not_finite() {
        let max = LongDouble::parse(b"1e4932").unwrap();
        assert_eq!(max.add(max), LongDouble::Inf { neg: false });
        let inf = LongDouble::parse(b"inf").unwrap();
        let minus = LongDouble::parse(b"-inf").unwrap();
        assert_eq!(inf.add(minus), LongDouble::Nan);
        assert_eq!(LongDouble::parse(b"1e400").unwrap().to_f64(), f64::INFINITY);
        assert_eq!(
            LongDouble::parse(b"-1e-400").unwrap().to_f64(),
            -f64::from_bits(1)
        );
        assert_eq!(
            LongDouble::parse(b"0x1p-1074").unwrap().to_f64(),
            f64::from_bits(1)
        );
        assert_eq!(LongDouble::parse(b"1.5e300").unwrap().to_f64(), 1.5e300);
    }
}
