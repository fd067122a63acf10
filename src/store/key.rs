//! [`Key`]: the stored copy of a key (of the keyspace, or of a hash, set or sorted set [`super::Dict`]), kept inside
//! its table slot when it is short.
//!
//! Most keys and members are short (`user:1000:session`, `job:42`). Kept inline, a lookup compares the key without
//! following a pointer to another cache line, and inserting a new key allocates nothing for it. Longer keys go to the
//! heap.

use std::ops::Deref;

/// The longest key kept inline: the inline form then has the heap form's size (24 bytes with its tag).
const INLINE_MAX: usize = 22;

/// A key, inline up to [`INLINE_MAX`] bytes.
#[derive(Clone)]
pub enum Key {
    /// A short key: its length and bytes.
    Inline(u8, [u8; INLINE_MAX]),
    /// A longer key.
    Heap(Box<[u8]>),
}

/// The heap bytes a stored key of `len` bytes takes beside its slot: none when it is kept inline.
pub fn key_heap_bytes(len: usize) -> usize {
    if len <= INLINE_MAX {
        0
    } else {
        len
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_MAX {
            let mut inline = [0; INLINE_MAX];
            inline[..bytes.len()].copy_from_slice(bytes);
            Key::Inline(bytes.len() as u8, inline)
        } else {
            Key::Heap(bytes.into())
        }
    }
}

impl Default for Key {
    /// The empty key (inline): what a slot holds once its key has been moved out.
    fn default() -> Self {
        Key::Inline(0, [0; INLINE_MAX])
    }
}

impl Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Key::Inline(len, bytes) => &bytes[..*len as usize],
            Key::Heap(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_every_length_read_back_as_given() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let key = Key::from(&bytes[..]);
            assert_eq!(&*key, &bytes[..]);
            assert_eq!(matches!(key, Key::Inline(..)), len <= INLINE_MAX);
        }
    }
}
