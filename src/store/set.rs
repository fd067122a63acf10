//! The set value: Redis 7.2's three encodings and its rules for moving between them (`setTypeCreate`,
//! `setTypeAddAux`), so that member order and OBJECT ENCODING match Redis for small sets.
//!
//! - `intset`: only integers (Redis's `string2ll` form), kept sorted by value, up to [`MAX_INTSET_ENTRIES`]: SMEMBERS of
//!   a small integer set is sorted, as in Redis.
//! - `listpack`: up to [`MAX_LISTPACK_ENTRIES`] members of at most [`MAX_LISTPACK_VALUE`] bytes, in insertion order.
//! - `hashtable`: a [`Dict`].
//!
//! A set only moves forward (intset -> listpack -> hashtable, or intset -> hashtable), like Redis; the one way back
//! is Redis 7.2's SPOP of most members, which rebuilds the survivors ([`Set::rebuild_after_pop`]). Members are stored
//! as the client's bytes; an intset's members are canonical integers, so their bytes are the integer's decimal form.

use super::dict::Dict;
use crate::cmd::args::parse_i64;

/// Redis's `set-max-intset-entries` default.
pub const MAX_INTSET_ENTRIES: usize = 512;
/// Redis 7.2's `set-max-listpack-entries` default.
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis 7.2's `set-max-listpack-value` default.
pub const MAX_LISTPACK_VALUE: usize = 64;

/// A set of byte strings, owned copies.
#[derive(Clone, Debug, PartialEq)]
pub enum Set {
    /// Integer members sorted by value.
    Intset(Vec<Vec<u8>>),
    /// Members in insertion order.
    Listpack(Vec<Vec<u8>>),
    /// The large form.
    Table(Dict<()>),
}

impl Default for Set {
    /// An empty intset: the set Redis starts SINTERSTORE/SUNIONSTORE/SDIFFSTORE results from.
    fn default() -> Self {
        Set::Intset(Vec::new())
    }
}

/// Where integer `n` is (or would go) in a sorted intset.
fn intset_position(members: &[Vec<u8>], n: i64) -> Result<usize, usize> {
    members.binary_search_by_key(&n, |m| parse_i64(m).unwrap_or(0))
}

impl Set {
    /// An empty set in the encoding Redis's `setTypeCreate` picks for a first member `first` and about `size_hint`
    /// members (SADD passes its member count, SMOVE 1).
    pub fn for_members(first: &[u8], size_hint: usize) -> Self {
        if parse_i64(first).is_some() && size_hint <= MAX_INTSET_ENTRIES {
            Set::Intset(Vec::new())
        } else if size_hint <= MAX_LISTPACK_ENTRIES {
            Set::Listpack(Vec::new())
        } else {
            Set::Table(Dict::new())
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            Set::Intset(m) | Set::Listpack(m) => m.len(),
            Set::Table(d) => d.len(),
        }
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Intset(_) => "intset",
            Set::Listpack(_) => "listpack",
            Set::Table(_) => "hashtable",
        }
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            Set::Intset(m) => parse_i64(member).is_some_and(|n| intset_position(m, n).is_ok()),
            Set::Listpack(m) => m.iter().any(|x| x == member),
            Set::Table(d) => d.contains(member),
        }
    }

    /// Adds `member`; true when it is new. Converts by Redis 7.2's rules.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Intset(m) => match parse_i64(member) {
                Some(n) => {
                    let Err(at) = intset_position(m, n) else {
                        return false;
                    };
                    m.insert(at, member.to_vec());
                    if m.len() > MAX_INTSET_ENTRIES {
                        self.table();
                    }
                    true
                }
                // Integers are at most 20 bytes, so only the count and the new member can rule out a listpack.
                None if m.len() < MAX_LISTPACK_ENTRIES && member.len() <= MAX_LISTPACK_VALUE => {
                    m.push(member.to_vec());
                    *self = Set::Listpack(std::mem::take(m));
                    true
                }
                None => self.table().insert(member, ()).is_none(),
            },
            Set::Listpack(m) => {
                if m.iter().any(|x| x == member) {
                    return false;
                }
                if m.len() < MAX_LISTPACK_ENTRIES && member.len() <= MAX_LISTPACK_VALUE {
                    m.push(member.to_vec());
                    return true;
                }
                self.table().insert(member, ()).is_none()
            }
            Set::Table(d) => d.insert(member, ()).is_none(),
        }
    }

    /// The hashtable form, converting first.
    fn table(&mut self) -> &mut Dict<()> {
        if let Set::Intset(m) | Set::Listpack(m) = self {
            let mut d = Dict::new();
            for member in m.drain(..) {
                d.insert(&member, ());
            }
            *self = Set::Table(d);
        }
        match self {
            Set::Table(d) => d,
            _ => unreachable!("converted above"),
        }
    }

    /// Removes `member`; true when it was there. The others keep their order.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let (m, at) = match self {
            Set::Intset(m) => {
                let at = parse_i64(member).and_then(|n| intset_position(m, n).ok());
                (m, at)
            }
            Set::Listpack(m) => {
                let at = m.iter().position(|x| x == member);
                (m, at)
            }
            Set::Table(d) => return d.remove(member).is_some(),
        };
        at.map(|i| m.remove(i)).is_some()
    }

    /// What is left after SPOP took most members: Redis 7.2 copies the survivors of a large pop (count * 5 > size)
    /// into a new set, which for a hashtable is a listpack while they fit one (the only way a set moves back).
    pub fn rebuild_after_pop(&mut self) {
        if let Set::Table(d) = self {
            if d.len() <= MAX_LISTPACK_ENTRIES
                && d.iter().all(|(m, _)| m.len() <= MAX_LISTPACK_VALUE)
            {
                *self = Set::Listpack(d.iter().map(|(m, _)| m.to_vec()).collect());
            }
        }
    }

    /// Every member, in the encoding's order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let (small, large) = match self {
            Set::Intset(m) | Set::Listpack(m) => (Some(m.iter().map(Vec::as_slice)), None),
            Set::Table(d) => (None, Some(d.iter().map(|(k, _)| k))),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
    }

    /// A uniformly chosen member, if any.
    pub fn random(&self) -> Option<&[u8]> {
        match self {
            Set::Intset(m) | Set::Listpack(m) if m.is_empty() => None,
            Set::Intset(m) | Set::Listpack(m) => Some(&m[fastrand::usize(..m.len())]),
            Set::Table(d) => d.random().map(|(k, _)| k),
        }
    }

    /// Removes and returns a uniformly chosen member, if any.
    pub fn pop_random(&mut self) -> Option<Vec<u8>> {
        match self {
            Set::Intset(m) | Set::Listpack(m) if m.is_empty() => None,
            Set::Intset(m) | Set::Listpack(m) => Some(m.remove(fastrand::usize(..m.len()))),
            Set::Table(d) => {
                let member = d.random()?.0.to_vec();
                d.remove(&member);
                Some(member)
            }
        }
    }

    /// One SSCAN step (see [`Dict::scan`]); an intset or listpack is returned whole with cursor 0, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8])) -> u64 {
        match self {
            Set::Intset(m) | Set::Listpack(m) => {
                m.iter().for_each(|x| f(x));
                0
            }
            Set::Table(d) => d.scan(cursor, count, |k, _| f(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<String> {
        s.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    fn set_of(items: &[&str]) -> Set {
        let mut s = Set::for_members(items[0].as_bytes(), items.len());
        for i in items {
            s.insert(i.as_bytes());
        }
        s
    }

    #[test]
    fn integers_stay_sorted_until_a_string_arrives_then_order_is_insertion() {
        let mut s = set_of(&["3", "-1", "20", "3"]);
        assert_eq!(
            (s.encoding(), members(&s)),
            ("intset", vec!["-1".into(), "3".into(), "20".into()])
        );
        assert!(s.contains(b"20") && !s.contains(b"020") && !s.contains(b"x"));
        s.insert(b"b");
        s.insert(b"7");
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(members(&s), ["-1", "3", "20", "b", "7"]);
        assert!(s.remove(b"3") && !s.remove(b"3"));
        assert_eq!(members(&s), ["-1", "20", "b", "7"]);
    }

    #[test]
    fn encodings_follow_redis_7_2_limits() {
        let ints: Vec<String> = (0..=MAX_INTSET_ENTRIES).map(|i| i.to_string()).collect();
        let mut s = Set::for_members(b"0", 1);
        ints.iter()
            .take(MAX_INTSET_ENTRIES)
            .for_each(|i| assert!(s.insert(i.as_bytes())));
        assert_eq!(s.encoding(), "intset");
        s.insert(ints[MAX_INTSET_ENTRIES].as_bytes());
        assert_eq!((s.encoding(), s.len()), ("hashtable", 513));

        // An intset of 128 integers takes a string by becoming a hashtable, one of 127 by becoming a listpack.
        let mut big = Set::for_members(b"0", 1);
        ints.iter().take(MAX_LISTPACK_ENTRIES).for_each(|i| {
            big.insert(i.as_bytes());
        });
        big.insert(b"x");
        assert_eq!(big.encoding(), "hashtable");
        let mut small = Set::for_members(b"0", 1);
        ints.iter().take(MAX_LISTPACK_ENTRIES - 1).for_each(|i| {
            small.insert(i.as_bytes());
        });
        small.insert(b"x");
        assert_eq!((small.encoding(), small.len()), ("listpack", 128));
        small.insert(b"y");
        assert_eq!((small.encoding(), small.len()), ("hashtable", 129));

        let mut long = set_of(&["a"]);
        long.insert(&[b'x'; MAX_LISTPACK_VALUE + 1]);
        assert_eq!(long.encoding(), "hashtable");
        assert_eq!(
            Set::for_members(b"a", MAX_LISTPACK_ENTRIES + 1).encoding(),
            "hashtable"
        );
        assert_eq!(
            Set::for_members(b"1", MAX_INTSET_ENTRIES + 1).encoding(),
            "hashtable"
        );
    }

    #[test]
    fn pop_random_empties_every_encoding() {
        for items in [&["1", "2", "3"][..], &["a", "b"][..]] {
            let mut s = set_of(items);
            let mut popped: Vec<Vec<u8>> = std::iter::from_fn(|| s.pop_random()).collect();
            popped.sort();
            assert_eq!(popped.len(), items.len());
            assert!(s.is_empty());
        }
    }
}
