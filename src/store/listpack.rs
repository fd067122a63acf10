//! The sizes of Redis's listpack encoding (`listpack.c`), for where ringkv follows Redis's node boundaries: a stream
//! closes a node at 4096 listpack bytes, and a small list reports `listpack` while it fits 8 KiB. Nothing is encoded;
//! only the byte counts Redis would reach are computed.
//!
//! A listpack is a 6-byte header, its elements, and a 1-byte end mark. An element is an encoding (an integer in 1 to
//! 9 bytes, or a string with a 1-, 2- or 5-byte length before it) followed by that encoding's length written
//! backwards in 1 to 5 bytes. A string that reads as an integer (Redis's strict `string2ll` rules) is stored as one.

use crate::cmd::args::parse_i64;

/// The header and end mark every listpack has.
pub const FRAME_BYTES: usize = 7;

/// Bytes of an element holding the integer `v`.
pub fn int_bytes(v: i64) -> usize {
    let encoded = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    };
    encoded + backlen_bytes(encoded)
}

/// Bytes of an element holding `s`: as an integer when it reads as one, else as a string.
pub fn element_bytes(s: &[u8]) -> usize {
    if let Some(v) = parse_i64(s) {
        return int_bytes(v);
    }
    let header = match s.len() {
        0..=63 => 1,
        64..=4095 => 2,
        _ => 5,
    };
    let encoded = header + s.len();
    encoded + backlen_bytes(encoded)
}

/// Bytes of the backwards length of an encoding `len` bytes long (`lpEncodeBacklen`).
fn backlen_bytes(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Bytes of a listpack holding `items`.
pub fn listpack_bytes<'a>(items: impl Iterator<Item = &'a [u8]>) -> usize {
    FRAME_BYTES + items.map(element_bytes).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_the_smallest_encoding_that_holds_them() {
        let sizes = [
            (0, 2),
            (127, 2),
            (128, 3),
            (-1, 3),
            (-4096, 3),
            (4096, 4),
            (32767, 4),
            (32768, 5),
            (8_388_608, 6),
            (2_147_483_647, 6),
            (2_147_483_648, 10),
            (i64::MIN, 10),
        ];
        for (v, bytes) in sizes {
            assert_eq!(int_bytes(v), bytes, "{v}");
        }
    }

    #[test]
    fn strings_that_read_as_integers_are_stored_as_integers() {
        assert_eq!(element_bytes(b"100"), 2);
        assert_eq!(element_bytes(b"-5"), 3);
        // Not integers by Redis's rules: a leading zero or plus, a space, "-0", past 64 bits.
        for s in [&b"01"[..], b"+1", b"1 ", b"-0", b"9223372036854775808"] {
            assert_eq!(element_bytes(s), 1 + s.len() + 1, "{s:?}");
        }
        assert_eq!(element_bytes(b""), 2);
        assert_eq!(element_bytes(&[b'x'; 63]), 65);
        assert_eq!(element_bytes(&[b'x'; 64]), 67);
        assert_eq!(element_bytes(&[b'x'; 4096]), 4096 + 5 + 2);
    }

    #[test]
    fn a_listpack_is_its_frame_and_its_elements() {
        let items = [&b"a"[..], b"12", b"hello"];
        assert_eq!(listpack_bytes(items.into_iter()), 7 + 3 + 2 + 7);
        assert_eq!(listpack_bytes(std::iter::empty()), FRAME_BYTES);
    }
}
