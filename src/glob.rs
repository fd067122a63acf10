//! Redis's glob-style pattern matching (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET): `*`, `?`, `[...]` with ranges and
//! `^` negation, and `\` escapes. A port of `stringmatchlen` from Redis, including its quirks (`[` classes may be
//! unterminated; `{` is literal), with the same recursion guard against pathological patterns.

/// True when `s` matches `pattern`.
pub fn matches(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, nocase, &mut skip_longer, 0)
}

fn match_impl(
    mut p: &[u8],
    mut s: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: u32,
) -> bool {
    // Redis caps recursion to defend against patterns like "a*a*a*a*...b".
    if nesting > 1000 {
        return false;
    }
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_impl(&p[1..], s, nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                // No match for the rest of the pattern on any suffix: longer strings will not match either.
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == s[0] {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut start, mut end) = (p[0], p[2]);
                        let mut c = s[0];
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = start.to_ascii_lowercase();
                            end = end.to_ascii_lowercase();
                            c = c.to_ascii_lowercase();
                        }
                        p = &p[2..];
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if eq(p[0], s[0]) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                // An unterminated class (empty `p`) simply ends the pattern here, as in Redis.
                if matched == not {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if !eq(p[0], s[0]) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if !eq(c, s[0]) {
                    return false;
                }
                s = &s[1..];
            }
        }
        if !p.is_empty() {
            p = &p[1..];
        }
        // Trailing stars match nothing only once the string ran out here, inside the loop: an empty string is matched
        // by the empty pattern alone (`*` and `**` do not match it), as in Redis.
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards_classes_and_escapes() {
        assert!(matches(b"*", b"anything", false));
        assert!(matches(b"h?llo", b"hello", false));
        assert!(matches(b"h*llo", b"heeeello", false));
        assert!(matches(b"h[ae]llo", b"hallo", false));
        assert!(!matches(b"h[^e]llo", b"hello", false));
        assert!(matches(b"h[^e]llo", b"hallo", false));
        assert!(matches(b"h[a-b]llo", b"hbllo", false));
        assert!(matches(b"h[b-a]llo", b"hbllo", false));
        assert!(matches(b"h\\*llo", b"h*llo", false));
        assert!(!matches(b"h\\*llo", b"hello", false));
        assert!(matches(b"{a}", b"{a}", false));
        assert!(matches(b"HELLO", b"hello", true));
        assert!(!matches(b"a*b", b"acbd", false));
        assert!(matches(b"", b"", false));
        assert!(!matches(b"", b"a", false));
    }

    #[test]
    fn only_the_empty_pattern_matches_the_empty_string() {
        assert!(!matches(b"*", b"", false));
        assert!(!matches(b"**", b"", false));
        assert!(!matches(b"?", b"", false));
        assert!(matches(b"a*", b"a", false));
        assert!(matches(b"a**", b"a", false));
        assert!(matches(b"*a*", b"a", false));
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let pattern = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let subject = vec![b'a'; 10_000];
        let start = std::time::Instant::now();
        assert!(!matches(pattern, &subject, false));
        assert!(start.elapsed().as_secs() < 2);
    }
}
