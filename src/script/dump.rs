//! The FUNCTION DUMP / RESTORE payload, byte-compatible with Redis: each library as the RDB opcode
//! `RDB_OPCODE_FUNCTION2` (245) followed by its code as an RDB string, then a footer of the RDB version (2 bytes,
//! little-endian) and the CRC-64 (Jones polynomial, as Redis's `crc64`, little-endian) of everything before it.
//!
//! Reading takes every RDB string form Redis writes: plain (any length encoding), integer-encoded and LZF-compressed
//! (Redis compresses strings longer than 20 bytes by default). Writing uses plain strings, which every Redis reads.

/// The RDB version ringkv writes. Redis 7.2 writes 11 and 7.0 writes 10; a Redis refuses a payload whose version is
/// above its own, and the library format is the same in both, so 10 restores into Redis 7.0 and later alike.
pub const WRITE_VERSION: u16 = 10;

/// The newest RDB version read (Redis 7.2's): a payload of a later version is refused as Redis 7.2 refuses it.
pub const READ_VERSION: u16 = 11;

/// The opcode before each library.
const OPCODE_FUNCTION: u8 = 245;
/// The opcode of Redis 7.0's release candidates, whose library format differs.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;

/// The version and checksum that end a payload.
const FOOTER: usize = 10;

/// Redis's error for a payload whose footer does not check out.
pub const BAD_PAYLOAD: &str = "DUMP payload version or checksum are wrong";

/// The CRC-64 table of the Jones polynomial (0xad93d23594c935a9), bit-reflected as Redis computes it.
const CRC64_TABLE: [u64; 256] = {
    const REFLECTED_POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ REFLECTED_POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Redis's `crc64(crc, data)`.
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = CRC64_TABLE[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// FUNCTION DUMP's payload for the libraries' codes.
pub fn dump<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION);
        write_len(&mut out, code.len() as u64);
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&WRITE_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// An RDB length: 6 bits, 14 bits, or a marker byte and 32 or 64 bits big-endian.
fn write_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// A payload being read: yields each library's code, or Redis's error for what it cannot read.
pub struct Payload<'a> {
    /// The whole payload, footer included: like Redis's reader, a string may run into the footer.
    data: &'a [u8],
    pos: usize,
}

/// An RDB length, or the encoding of a special string (`ENCVAL`).
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Payload<'a> {
    /// Checks the footer (Redis's `verifyDumpPayload`): a version Redis 7.2 reads and a matching checksum.
    pub fn open(data: &'a [u8]) -> Result<Payload<'a>, &'static str> {
        let body = data
            .len()
            .checked_sub(8)
            .filter(|&n| n >= 2)
            .ok_or(BAD_PAYLOAD)?;
        let version = u16::from_le_bytes([data[body - 2], data[body - 1]]);
        let mut crc = [0u8; 8];
        crc.copy_from_slice(&data[body..]);
        if version > READ_VERSION || crc64(0, &data[..body]) != u64::from_le_bytes(crc) {
            return Err(BAD_PAYLOAD);
        }
        Ok(Payload { data, pos: 0 })
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        let bytes = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    fn len(&mut self) -> Option<Len> {
        let first = self.byte()?;
        let be = |b: &[u8]| b.iter().fold(0u64, |n, &b| n << 8 | b as u64);
        Some(match first >> 6 {
            0 => Len::Plain((first & 0x3f) as u64),
            1 => Len::Plain(((first & 0x3f) as u64) << 8 | self.byte()? as u64),
            3 => Len::Encoded(first & 0x3f),
            _ if first == 0x80 => Len::Plain(be(self.bytes(4)?)),
            _ if first == 0x81 => Len::Plain(be(self.bytes(8)?)),
            _ => return None,
        })
    }

    /// A length where no special string can be: Redis then takes an encoding byte's low bits as the length.
    fn plain_len(&mut self) -> Option<u64> {
        Some(match self.len()? {
            Len::Plain(n) => n,
            Len::Encoded(n) => n as u64,
        })
    }

    /// An RDB string (Redis's `rdbGenericLoadStringObject`).
    fn string(&mut self) -> Option<Vec<u8>> {
        let int = |bytes: &[u8]| {
            let mut le = [0u8; 4];
            le[..bytes.len()].copy_from_slice(bytes);
            // Sign-extend from the stored width.
            let shift = 32 - 8 * bytes.len() as u32;
            ((i32::from_le_bytes(le) << shift) >> shift)
                .to_string()
                .into_bytes()
        };
        match self.len()? {
            Len::Plain(n) => self.bytes(n).map(<[u8]>::to_vec),
            Len::Encoded(0) => self.bytes(1).map(int),
            Len::Encoded(1) => self.bytes(2).map(int),
            Len::Encoded(2) => self.bytes(4).map(int),
            Len::Encoded(3) => {
                let compressed = self.plain_len()?;
                let len = self.plain_len()?;
                let data = self.bytes(compressed)?;
                lzf_decompress(data, usize::try_from(len).ok()?)
            }
            Len::Encoded(_) => None,
        }
    }
}

impl Iterator for Payload<'_> {
    type Item = Result<Vec<u8>, String>;

    /// The next library's code, read as Redis's `functionRestoreCommand` does: until the last 10 bytes.
    fn next(&mut self) -> Option<Self::Item> {
        if self.data.len() - self.pos <= FOOTER {
            return None;
        }
        Some(match self.byte() {
            Some(OPCODE_FUNCTION) => self
                .string()
                .ok_or_else(|| "Failed loading library payload".to_string()),
            Some(OPCODE_FUNCTION_PRE_GA) => Err("Pre-GA function format not supported".into()),
            Some(_) => Err("given type is not a function".into()),
            None => Err("can not read data type".into()),
        })
    }
}

/// LZF decompression (liblzf's `lzf_decompress`, which Redis uses): `None` unless `data` decodes to exactly `len`
/// bytes. Redis compares the decompressed size with `len`, and liblzf reports an error as size 0, so an empty
/// `len` always succeeds.
pub fn lzf_decompress(data: &[u8], len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    // The claimed size comes from the client: reserve no more than the input could expand to (a back reference of
    // two or three bytes writes at most 264).
    let mut out: Vec<u8> = Vec::with_capacity(len.min(data.len().saturating_mul(132)));
    let mut ip = 0;
    while ip < data.len() {
        let ctrl = data[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            // A literal run of ctrl + 1 bytes.
            let run = data.get(ip..ip + ctrl + 1)?;
            if out.len() + run.len() > len {
                return None;
            }
            out.extend_from_slice(run);
            ip += run.len();
        } else {
            // A back reference: length (3 bits, 7 meaning one more byte follows) and offset (5 + 8 bits).
            let mut run = ctrl >> 5;
            if run == 7 {
                run += *data.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *data.get(ip)? as usize + 1;
            ip += 1;
            let from = out.len().checked_sub(back)?;
            if out.len() + run + 2 > len {
                return None;
            }
            // Byte by byte: the reference may overlap what it writes.
            for i in from..from + run + 2 {
                out.push(out[i]);
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FUNCTION DUMP` of redis-server 7.0.15 holding one library (its code LZF-compressed, RDB version 10).
    const REDIS_DUMP: &str = "f5c3406140a71f23216c7561206e616d653d6d796c69620a72656469732e72656769737465725f0b66756e\
        6374696f6e28276d79400b02272c2040066012116b6579732c2061726773292072657475726e600c075b315d20656e6429e0174a0032e0\
        204b0164290a00a4db130c174b69a4";
    const REDIS_CODE: &str =
        "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] \
        end)\nredis.register_function('myfunc2', function(keys, args) return args[1] end)";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn read(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        Payload::open(data)?.collect()
    }

    /// A payload of `body` with a valid footer of `version`.
    fn sealed(body: &[u8], version: u16) -> Vec<u8> {
        let mut out = body.to_vec();
        out.extend_from_slice(&version.to_le_bytes());
        let crc = crc64(0, &out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn crc64_is_redis_jones_crc() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
        assert_eq!(crc64(0, b""), 0);
    }

    #[test]
    fn a_compressed_redis_payload_reads_back_to_the_library_code() {
        assert_eq!(
            read(&hex(REDIS_DUMP)),
            Ok(vec![REDIS_CODE.as_bytes().to_vec()])
        );
    }

    #[test]
    fn a_dump_reads_back_whatever_the_length_form() {
        let codes: Vec<Vec<u8>> = [0, 63, 64, 16383, 16384, 70000]
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        let payload = dump(codes.iter().map(Vec::as_slice));
        assert_eq!(&payload[payload.len() - 10..payload.len() - 8], &[10, 0]);
        assert_eq!(read(&payload), Ok(codes));
        assert_eq!(read(&dump([])), Ok(vec![]));
    }

    #[test]
    fn integer_encoded_strings_read_as_decimal_text() {
        let body = [
            245, 0xc0, 0xfe, 245, 0xc1, 0x39, 0x30, 245, 0xc2, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert_eq!(
            read(&sealed(&body, 11)),
            Ok(vec![
                b"-2".to_vec(),
                b"12345".to_vec(),
                b"2147483647".to_vec()
            ])
        );
    }

    #[test]
    fn bad_footers_opcodes_and_strings_give_redis_errors() {
        let good = hex(REDIS_DUMP);
        let mut flipped = good.clone();
        flipped[5] ^= 1;
        for bad in [&b""[..], &good[..9], &flipped, &sealed(b"", 12)] {
            assert_eq!(read(bad).err().as_deref(), Some(BAD_PAYLOAD));
        }
        assert_eq!(read(&sealed(b"", 7)), Ok(vec![]));
        for (body, err) in [
            (&[246, 1, b'x'][..], "Pre-GA function format not supported"),
            (&[0, 1, b'x'], "given type is not a function"),
            (&[245, 0xc5], "Failed loading library payload"),
            (&[245, 0x82, 0], "Failed loading library payload"),
            // Compressed length 2, original 5: the back reference asks for more than was written.
            (
                &[245, 0xc3, 2, 5, 0, b'a'],
                "Failed loading library payload",
            ),
        ] {
            assert_eq!(read(&sealed(body, 10)), Err(err.to_string()), "{body:?}");
        }
    }

    #[test]
    fn random_payloads_with_valid_footers_never_panic() {
        // Opcode bytes, length markers and LZF controls made likely, so the reader goes deep.
        const BYTES: [u8; 12] = [
            0xf5, 0xf6, 0xc3, 0xc0, 0xc1, 0xc2, 0x80, 0x81, 0x40, 0x1f, 0xe0, b'a',
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| match next() % 3 {
                    0 => BYTES[(next() % BYTES.len() as u64) as usize],
                    _ => next() as u8,
                })
                .collect();
            let _ = read(&sealed(&body, 10));
        }
    }

    #[test]
    fn a_huge_claimed_size_is_refused_without_reserving_it() {
        assert_eq!(lzf_decompress(b"\x00a", usize::MAX), None);
        assert_eq!(lzf_decompress(b"\x00a", 1 << 40), None);
    }

    #[test]
    fn lzf_expands_literals_and_overlapping_back_references() {
        // "abc" then a back reference of length 7 (5 + 2) at distance 3, then a literal "!".
        let data = [2, b'a', b'b', b'c', 5 << 5, 2, 0, b'!'];
        assert_eq!(
            lzf_decompress(&data, 11).as_deref(),
            Some(&b"abcabcabca!"[..])
        );
        assert_eq!(lzf_decompress(&data, 12), None);
        assert_eq!(lzf_decompress(&data, 10), None);
        // A reference before the start, and a truncated literal run.
        assert_eq!(lzf_decompress(&[0, b'a', 1 << 5, 4], 4), None);
        assert_eq!(lzf_decompress(&[3, b'a'], 4), None);
    }
}
