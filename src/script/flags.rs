//! Script flags (Redis 7): what an EVAL script declares in its `#!lua flags=...` shebang line and a function in
//! `redis.register_function{flags={...}}`.
//!
//! Only `no-writes` changes anything here: such a script may not run write commands, and only such a script may run
//! through EVAL_RO / FCALL_RO once it has a shebang (a script without one keeps Redis 6 behaviour: EVAL_RO runs it
//! read-only). The others (`allow-oom`, `allow-stale`, `no-cluster`, `allow-cross-slot-keys`) are accepted and listed;
//! ringkv has no maxmemory, replicas or cluster mode for them to relax.

use std::ops::Range;

use crate::protocol::parser::split_args;

/// The flag names, in the order FUNCTION LIST gives them (Redis's `scripts_flags_def`).
pub const NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// A set of flags: bit `i` is [`NAMES`]`[i]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// The bit of `name`, compared as given (EVAL shebangs) or ignoring case (functions).
    pub fn bit(name: &[u8], ignore_case: bool) -> Option<Flags> {
        NAMES
            .iter()
            .position(|n| {
                if ignore_case {
                    n.as_bytes().eq_ignore_ascii_case(name)
                } else {
                    n.as_bytes() == name
                }
            })
            .map(|i| Flags(1 << i))
    }

    /// True for `no-writes`.
    pub fn no_writes(self) -> bool {
        self.0 & 1 != 0
    }

    /// The names of the flags set, in [`NAMES`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| n)
    }
}

/// What an EVAL script's first line declares: `None` without a shebang (Redis 6 compatible mode), else its flags,
/// and where the code to compile starts (at the shebang's line feed, so line numbers stay the user's).
pub fn eval_shebang(body: &[u8]) -> Result<(Option<Flags>, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((None, 0));
    }
    let end = body
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("Invalid script shebang")?;
    let (mut data, mut spans) = (Vec::new(), Vec::new());
    if split_args(&body[..end], &mut data, &mut spans).is_none() || spans.is_empty() {
        return Err("Invalid engine in script shebang".into());
    }
    let part = |r: &Range<usize>| String::from_utf8_lossy(&data[r.clone()]).into_owned();
    if &data[spans[0].clone()] != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            part(&spans[0])
        ));
    }
    let mut flags = Flags::default();
    for span in &spans[1..] {
        let Some(list) = data[span.clone()].strip_prefix(b"flags=") else {
            return Err(format!("Unknown lua shebang option: {}", part(span)));
        };
        // `flags=` alone declares none; an empty name between commas is an unknown flag, as in Redis.
        if list.is_empty() {
            continue;
        }
        for name in list.split(|&b| b == b',') {
            let bit = Flags::bit(name, false).ok_or_else(|| {
                format!(
                    "Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(name)
                )
            })?;
            flags.0 |= bit.0;
        }
    }
    Ok((Some(flags), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_flags_and_errors_follow_redis() {
        assert_eq!(eval_shebang(b"return 1"), Ok((None, 0)));
        assert_eq!(eval_shebang(b"#!lua\nreturn 1"), Ok((Some(Flags(0)), 5)));
        let (flags, at) = eval_shebang(b"#!lua  flags=no-writes,allow-oom \nx").unwrap();
        assert_eq!(flags, Some(Flags(0b11)));
        assert_eq!(at, 33);
        assert!(flags.unwrap().no_writes());
        assert_eq!(
            flags.unwrap().names().collect::<Vec<_>>(),
            ["no-writes", "allow-oom"]
        );
        assert_eq!(eval_shebang(b"#!lua flags=\nx"), Ok((Some(Flags(0)), 12)));
        for (body, err) in [
            (&b"#!lua"[..], "Invalid script shebang"),
            (b"#!lua \"x\n", "Invalid engine in script shebang"),
            (b"#! lua\n", "Unexpected engine in script shebang: #!"),
            (b"#!py\n", "Unexpected engine in script shebang: #!py"),
            (b"#!lua name=x\n", "Unknown lua shebang option: name=x"),
            (
                b"#!lua flags=NO-WRITES\n",
                "Unexpected flag in script shebang: NO-WRITES",
            ),
            (
                b"#!lua flags=no-writes,,allow-oom\n",
                "Unexpected flag in script shebang: ",
            ),
        ] {
            assert_eq!(eval_shebang(body), Err(err.to_string()), "{body:?}");
        }
        assert_eq!(Flags::bit(b"NO-WRITES", true), Some(Flags(1)));
        assert_eq!(Flags::bit(b"allow-cross-slot-keys", false), Some(Flags(16)));
    }
}
