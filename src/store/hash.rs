//! The hash value: Redis 7.2's two encodings and its rule for moving between them.
//!
//! A small hash is a `listpack`: a vector of (field, value) pairs in insertion order, searched linearly (at most
//! [`MAX_LISTPACK_ENTRIES`] pairs), so HGETALL, HKEYS and HSCAN of a small hash answer in the same order Redis does. It
//! becomes a `hashtable` ([`Dict`]) for good once it holds more than [`MAX_LISTPACK_ENTRIES`] fields or any field or
//! value longer than [`MAX_LISTPACK_VALUE`] bytes; like Redis, it never converts back.

use super::dict::Dict;

/// Redis's built-in `hash-max-listpack-entries` (512 in `config.c` since 7.0; the sample `redis.conf` says 128, but a
/// server started without a config file, like ringkv, uses 512: measured on redis-server 7.0.15).
pub const MAX_LISTPACK_ENTRIES: usize = 512;
/// Redis's `hash-max-listpack-value` default.
pub const MAX_LISTPACK_VALUE: usize = 64;

/// A hash: fields to values, owned copies.
#[derive(Clone, Debug, PartialEq)]
pub enum Hash {
    /// Insertion-ordered pairs.
    Listpack(Vec<(Vec<u8>, Vec<u8>)>),
    /// The large form.
    Table(Dict<Vec<u8>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Listpack(Vec::new())
    }
}

impl Hash {
    /// An empty (listpack) hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(pairs) => pairs.len(),
            Hash::Table(d) => d.len(),
        }
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Listpack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Listpack(pairs) => pairs
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, v)| v.as_slice()),
            Hash::Table(d) => d.get(field).map(Vec::as_slice),
        }
    }

    /// Sets `field` to `value`; true when the field is new. Converts to a hashtable by Redis's rule.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self {
            Hash::Listpack(pairs)
                if field.len() <= MAX_LISTPACK_VALUE && value.len() <= MAX_LISTPACK_VALUE =>
            {
                if let Some((_, v)) = pairs.iter_mut().find(|(f, _)| f == field) {
                    *v = value.to_vec();
                    return false;
                }
                pairs.push((field.to_vec(), value.to_vec()));
                if pairs.len() > MAX_LISTPACK_ENTRIES {
                    self.table();
                }
                true
            }
            _ => self.table().insert(field, value.to_vec()).is_none(),
        }
    }

    /// The hashtable form, converting a listpack first.
    fn table(&mut self) -> &mut Dict<Vec<u8>> {
        if let Hash::Listpack(pairs) = self {
            let mut d = Dict::new();
            for (f, v) in pairs.drain(..) {
                d.insert(&f, v);
            }
            *self = Hash::Table(d);
        }
        match self {
            Hash::Table(d) => d,
            Hash::Listpack(_) => unreachable!("converted above"),
        }
    }

    /// Removes `field`; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Listpack(pairs) => match pairs.iter().position(|(f, _)| f == field) {
                Some(i) => {
                    // `remove`, not `swap_remove`: the rest keep their order, as in a listpack.
                    pairs.remove(i);
                    true
                }
                None => false,
            },
            Hash::Table(d) => d.remove(field).is_some(),
        }
    }

    /// Every (field, value), in the encoding's order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let (small, large) = match self {
            Hash::Listpack(pairs) => (Some(pairs.iter().map(|(f, v)| (&f[..], &v[..]))), None),
            Hash::Table(d) => (None, Some(d.iter().map(|(f, v)| (f, &v[..])))),
        };
        small
            .into_iter()
            .flatten()
            .chain(large.into_iter().flatten())
    }

    /// A uniformly chosen (field, value), if any.
    pub fn random(&self) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Listpack(pairs) if pairs.is_empty() => None,
            Hash::Listpack(pairs) => {
                let (f, v) = &pairs[fastrand::usize(..pairs.len())];
                Some((f, v))
            }
            Hash::Table(d) => d.random().map(|(f, v)| (f, &v[..])),
        }
    }

    /// One HSCAN step (see [`Dict::scan`]); a listpack is returned whole with cursor 0, as Redis does.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) -> u64 {
        match self {
            Hash::Listpack(pairs) => {
                pairs.iter().for_each(|(k, v)| f(k, v));
                0
            }
            Hash::Table(d) => d.scan(cursor, count, |k, v| f(k, v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hashes_keep_insertion_order_through_updates_and_deletes() {
        let mut h = Hash::new();
        for f in ["c", "a", "b"] {
            assert!(h.set(f.as_bytes(), b"1"));
        }
        assert!(!h.set(b"a", b"2"));
        assert!(h.remove(b"c"));
        assert!(!h.remove(b"c"));
        let pairs: Vec<_> = h.iter().collect();
        assert_eq!(pairs, vec![(&b"a"[..], &b"2"[..]), (&b"b"[..], &b"1"[..])]);
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn converts_for_good_past_the_entry_or_length_limits() {
        let mut h = Hash::new();
        for i in 0..=MAX_LISTPACK_ENTRIES {
            h.set(format!("f{i}").as_bytes(), b"v");
        }
        assert_eq!(
            (h.encoding(), h.len()),
            ("hashtable", MAX_LISTPACK_ENTRIES + 1)
        );
        for i in 0..100 {
            h.remove(format!("f{i}").as_bytes());
        }
        assert_eq!(h.encoding(), "hashtable");

        let mut long = Hash::new();
        long.set(b"f", &[b'x'; MAX_LISTPACK_VALUE]);
        assert_eq!(long.encoding(), "listpack");
        long.set(&[b'x'; MAX_LISTPACK_VALUE + 1], b"v");
        assert_eq!((long.encoding(), long.len()), ("hashtable", 2));
        assert_eq!(long.get(b"f"), Some(&[b'x'; MAX_LISTPACK_VALUE][..]));
    }
}
