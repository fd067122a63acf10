//! The list value: elements packed end to end in chunks of a few kilobytes, the chunks held in a deque.
//!
//! Why packed: a queue holds millions of small elements. One allocation per element (a `Vec<u8>`: 24 bytes, plus its
//! heap block) costs 40-50 bytes for a 3-byte element and a trip through the allocator on every push and pop; packed,
//! an element costs its bytes plus its length before and after it (2 bytes up to 127 bytes), as in Redis's quicklist
//! of listpacks.
//!
//! Invariants:
//! - Every chunk holds at least one element, and at most [`CHUNK_BYTES`] of entries unless one element alone is
//!   larger (it then has a chunk to itself).
//! - An entry is `len` as LEB128, the element's bytes, then `len` again as LEB128 written backwards, so an entry can
//!   be read from either side. A chunk's entries are `buf[head..]`; `buf[..head]` is room for pushes at the front.
//!
//! Pushes and pops at either end touch only that end's chunk: O(1) (amortized when a chunk's buffer grows). Index `i`
//! is reached by walking chunk counts from the nearer end, then the entries of one chunk, so LINDEX and LRANGE near
//! either end never walk the list. A change in the middle (LSET, LINSERT) splices one chunk's bytes, as Redis
//! changes one listpack; LREM compacts the chunks it removes from, walking from the end it starts at and stopping
//! once it has removed what it was asked to.

use std::collections::VecDeque;

use super::End;

/// Entry bytes a chunk holds before pushes at its end start a new chunk (Redis's default `list-max-listpack-size -2`
/// is 8 KB too).
const CHUNK_BYTES: usize = 8 * 1024;

/// A list of byte strings.
#[derive(Clone, Default)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
}

#[derive(Clone, Default)]
struct Chunk {
    buf: Vec<u8>,
    /// Where the first entry starts.
    head: usize,
    /// Entries held.
    count: usize,
}

/// Bytes of `n` as LEB128.
fn varint_len(mut n: usize) -> usize {
    let mut bytes = 1;
    while n >= 0x80 {
        n >>= 7;
        bytes += 1;
    }
    bytes
}

/// Bytes an entry for an element of `len` bytes takes.
fn entry_len(len: usize) -> usize {
    2 * varint_len(len) + len
}

/// Writes the entry for `element` into `out`, which is exactly [`entry_len`] long.
fn write_entry(out: &mut [u8], element: &[u8]) {
    let k = varint_len(element.len());
    let end = out.len();
    let mut n = element.len();
    for i in 0..k {
        let byte = (n & 0x7f) as u8 | if i + 1 < k { 0x80 } else { 0 };
        out[i] = byte;
        out[end - 1 - i] = byte;
        n >>= 7;
    }
    out[k..k + element.len()].copy_from_slice(element);
}

impl Chunk {
    /// Entry bytes held.
    fn live(&self) -> usize {
        self.buf.len() - self.head
    }

    /// The element of the entry starting at `at`, and where the next entry starts.
    fn entry_at(&self, at: usize) -> (&[u8], usize) {
        let (mut len, mut shift, mut k) = (0usize, 0, 0);
        loop {
            let byte = self.buf[at + k];
            len |= usize::from(byte & 0x7f) << shift;
            k += 1;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let start = at + k;
        (&self.buf[start..start + len], start + len + k)
    }

    /// The element of the entry ending at `end`, and where that entry starts.
    fn entry_before(&self, end: usize) -> (&[u8], usize) {
        let (mut len, mut shift, mut k) = (0usize, 0, 0);
        loop {
            let byte = self.buf[end - 1 - k];
            len |= usize::from(byte & 0x7f) << shift;
            k += 1;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let stop = end - k;
        (&self.buf[stop - len..stop], stop - len - k)
    }

    fn push_back(&mut self, element: &[u8]) {
        let n = entry_len(element.len());
        // Reclaim the room popped at the front rather than grow, when it is most of the buffer (a FIFO that stays
        // within one chunk would otherwise grow it forever).
        if self.buf.len() + n > self.buf.capacity() && self.head >= self.live() {
            self.buf.copy_within(self.head.., 0);
            self.buf.truncate(self.live());
            self.head = 0;
        }
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        write_entry(&mut self.buf[at..], element);
        self.count += 1;
    }

    fn push_front(&mut self, element: &[u8]) {
        let n = entry_len(element.len());
        if self.head < n {
            // Move the entries right, leaving room for as many bytes again as they take (so pushes stay O(1)
            // amortized); the buffer grows only when that room does not fit.
            let live = self.live();
            let room = n + live.max(64);
            if self.buf.len() < room + live {
                self.buf.resize(room + live, 0);
            }
            self.buf.copy_within(self.head..self.head + live, room);
            self.buf.truncate(room + live);
            self.head = room;
        }
        self.head -= n;
        write_entry(&mut self.buf[self.head..self.head + n], element);
        self.count += 1;
    }

    fn push(&mut self, end: End, element: &[u8]) {
        match end {
            End::Left => self.push_front(element),
            End::Right => self.push_back(element),
        }
    }

    fn pop_front(&mut self) -> Vec<u8> {
        let (element, next) = self.entry_at(self.head);
        let element = element.to_vec();
        self.head = next;
        self.count -= 1;
        element
    }

    fn pop_back(&mut self) -> Vec<u8> {
        let (element, start) = self.entry_before(self.buf.len());
        let element = element.to_vec();
        self.buf.truncate(start);
        self.count -= 1;
        element
    }

    /// Where entry `i` (< count) starts, walking from the nearer end.
    fn offset(&self, i: usize) -> usize {
        if i <= self.count / 2 {
            (0..i).fold(self.head, |at, _| self.entry_at(at).1)
        } else {
            (i..self.count).fold(self.buf.len(), |end, _| self.entry_before(end).1)
        }
    }

    /// The entries front to back: each element with the byte range of its entry.
    fn entries(&self) -> impl Iterator<Item = (&[u8], std::ops::Range<usize>)> + '_ {
        let mut at = self.head;
        (0..self.count).map(move |_| {
            let (element, next) = self.entry_at(at);
            let range = at..next;
            at = next;
            (element, range)
        })
    }

    /// The entries back to front, as [`Chunk::entries`] gives them.
    fn entries_back(&self) -> impl Iterator<Item = (&[u8], std::ops::Range<usize>)> + '_ {
        let mut end = self.buf.len();
        (0..self.count).map(move |_| {
            let (element, start) = self.entry_before(end);
            let range = start..end;
            end = start;
            (element, range)
        })
    }

    /// Replaces the entry bytes in `range` (possibly empty: an insertion) with the entry for `element`.
    fn splice(&mut self, range: std::ops::Range<usize>, element: &[u8]) {
        let mut entry = vec![0; entry_len(element.len())];
        write_entry(&mut entry, element);
        self.buf.splice(range, entry);
    }

    /// Removes the entries in `ranges` (ascending, within the live bytes) by moving what follows each one down.
    fn remove_entries(&mut self, ranges: &[std::ops::Range<usize>]) {
        let Some(first) = ranges.first() else {
            return;
        };
        let mut write = first.start;
        for (k, r) in ranges.iter().enumerate() {
            let next = ranges.get(k + 1).map_or(self.buf.len(), |n| n.start);
            self.buf.copy_within(r.end..next, write);
            write += next - r.end;
        }
        self.buf.truncate(write);
        self.count -= ranges.len();
    }
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pushes `element` at `end`: into that end's chunk while it has room, else into a new chunk.
    pub fn push(&mut self, end: End, element: &[u8]) {
        let n = entry_len(element.len());
        match self.end_chunk(end).filter(|c| c.live() + n <= CHUNK_BYTES) {
            Some(c) => c.push(end, element),
            None => {
                let mut c = Chunk::default();
                c.push(end, element);
                match end {
                    End::Left => self.chunks.push_front(c),
                    End::Right => self.chunks.push_back(c),
                }
            }
        }
        self.len += 1;
    }

    /// Takes the element at `end`, dropping its chunk when that empties it.
    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let chunk = self.end_chunk(end)?;
        let element = match end {
            End::Left => chunk.pop_front(),
            End::Right => chunk.pop_back(),
        };
        if chunk.count == 0 {
            self.remove_end_chunk(end);
        }
        self.len -= 1;
        Some(element)
    }

    /// The chunk holding element `i` (< len) and the element's index within it, walking from the nearer end.
    fn locate(&self, mut i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            for (ci, c) in self.chunks.iter().enumerate() {
                if i < c.count {
                    return (ci, i);
                }
                i -= c.count;
            }
        } else {
            let mut from_back = self.len - 1 - i;
            for (ci, c) in self.chunks.iter().enumerate().rev() {
                if from_back < c.count {
                    return (ci, c.count - 1 - from_back);
                }
                from_back -= c.count;
            }
        }
        unreachable!("index {i} within the list's length")
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.range(i, 1).next()
    }

    /// Elements `first..first + count` (clamped to the list), front to back.
    pub fn range(&self, first: usize, count: usize) -> Iter<'_> {
        let count = count.min(self.len.saturating_sub(first));
        if count == 0 {
            return Iter::empty(self);
        }
        let (fc, fi) = self.locate(first);
        let (bc, bi) = self.locate(first + count - 1);
        let back = &self.chunks[bc];
        let back_end = back.entry_at(back.offset(bi)).1;
        Iter {
            chunks: &self.chunks,
            front: (fc, self.chunks[fc].offset(fi)),
            back: (bc, back_end),
            left: count,
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len)
    }

    /// Replaces element `i` (< len).
    pub fn set(&mut self, i: usize, element: &[u8]) {
        let (ci, at) = self.locate(i);
        let chunk = &mut self.chunks[ci];
        let start = chunk.offset(at);
        let end = chunk.entry_at(start).1;
        chunk.splice(start..end, element);
        self.repack_if_over(ci);
    }

    /// Inserts `element` before element `i` (at the end when `i == len`).
    pub fn insert(&mut self, i: usize, element: &[u8]) {
        if i == self.len {
            return self.push(End::Right, element);
        }
        let (ci, at) = self.locate(i);
        let chunk = &mut self.chunks[ci];
        let start = chunk.offset(at);
        chunk.splice(start..start, element);
        chunk.count += 1;
        self.len += 1;
        self.repack_if_over(ci);
    }

    /// Repacks chunk `ci` into chunks within [`CHUNK_BYTES`] when a change in its middle left it over (unless it
    /// holds one element).
    fn repack_if_over(&mut self, ci: usize) {
        let chunk = &self.chunks[ci];
        if chunk.live() <= CHUNK_BYTES || chunk.count == 1 {
            return;
        }
        let old = self.chunks.remove(ci).expect("chunk ci exists");
        let repacked: List = old.entries().map(|(element, _)| element).collect();
        for (k, c) in repacked.chunks.into_iter().enumerate() {
            self.chunks.insert(ci + k, c);
        }
    }

    /// Removes up to `limit` elements for which `matches` is true, those nearest `end` first (LREM); returns how
    /// many. Chunks are visited from `end` until `limit` is reached, and only those with a removal are rewritten.
    pub fn remove_matching(
        &mut self,
        end: End,
        limit: usize,
        matches: impl Fn(&[u8]) -> bool,
    ) -> usize {
        let mut removed = 0;
        let mut ci = match end {
            End::Left => 0,
            End::Right => self.chunks.len(),
        };
        loop {
            let chunk = match end {
                End::Left if ci < self.chunks.len() => &mut self.chunks[ci],
                End::Right if ci > 0 => &mut self.chunks[ci - 1],
                _ => break,
            };
            let room = limit - removed;
            let hit = |(element, range): (&[u8], _)| matches(element).then_some(range);
            let found: Vec<std::ops::Range<usize>> = match end {
                End::Left => chunk.entries().filter_map(hit).take(room).collect(),
                End::Right => {
                    let mut back: Vec<_> =
                        chunk.entries_back().filter_map(hit).take(room).collect();
                    back.reverse();
                    back
                }
            };
            chunk.remove_entries(&found);
            removed += found.len();
            let emptied = chunk.count == 0;
            match end {
                End::Left if emptied => drop(self.chunks.remove(ci)),
                End::Left => ci += 1,
                End::Right => {
                    ci -= 1;
                    if emptied {
                        self.chunks.remove(ci);
                    }
                }
            }
            if removed == limit {
                break;
            }
        }
        self.len -= removed;
        removed
    }

    /// Removes `n` elements at `end` (all, when `n >= len`): whole chunks, then the start of the next one.
    pub fn discard(&mut self, end: End, mut n: usize) {
        while n > 0 {
            let Some(c) = self.end_chunk(end) else {
                return;
            };
            if c.count <= n {
                let count = c.count;
                self.remove_end_chunk(end);
                n -= count;
                self.len -= count;
            } else {
                match end {
                    End::Left => c.head = c.offset(n),
                    End::Right => c.buf.truncate(c.offset(c.count - n)),
                }
                c.count -= n;
                self.len -= n;
                return;
            }
        }
    }

    fn end_chunk(&mut self, end: End) -> Option<&mut Chunk> {
        match end {
            End::Left => self.chunks.front_mut(),
            End::Right => self.chunks.back_mut(),
        }
    }

    fn remove_end_chunk(&mut self, end: End) {
        match end {
            End::Left => self.chunks.pop_front(),
            End::Right => self.chunks.pop_back(),
        };
    }

    /// The heap bytes of each chunk (its slot and its buffer), front to back: MEMORY USAGE samples them as Redis
    /// samples a quicklist's nodes.
    pub fn chunk_bytes(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.chunks
            .iter()
            .map(|c| size_of::<Chunk>() + c.buf.capacity())
    }
}

impl<E: AsRef<[u8]>> FromIterator<E> for List {
    fn from_iter<I: IntoIterator<Item = E>>(elements: I) -> List {
        let mut list = List::new();
        for e in elements {
            list.push(End::Right, e.as_ref());
        }
        list
    }
}

/// Equal when the elements are (however they are laid out in chunks).
impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Elements of a list, front to back (or back to front with `rev`).
pub struct Iter<'a> {
    chunks: &'a VecDeque<Chunk>,
    /// Chunk and offset of the next entry from the front (the offset may be the chunk's end: then the next chunk).
    front: (usize, usize),
    /// Chunk and end offset of the next entry from the back (the offset may be the chunk's head: then the previous).
    back: (usize, usize),
    left: usize,
}

impl<'a> Iter<'a> {
    fn empty(list: &'a List) -> Iter<'a> {
        Iter {
            chunks: &list.chunks,
            front: (0, 0),
            back: (0, 0),
            left: 0,
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let chunks = self.chunks;
        while self.front.1 == chunks[self.front.0].buf.len() {
            self.front = (self.front.0 + 1, chunks[self.front.0 + 1].head);
        }
        let (element, next) = chunks[self.front.0].entry_at(self.front.1);
        self.front.1 = next;
        self.left -= 1;
        Some(element)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let chunks = self.chunks;
        while self.back.1 == chunks[self.back.0].head {
            self.back = (self.back.0 - 1, chunks[self.back.0 - 1].buf.len());
        }
        let (element, start) = chunks[self.back.0].entry_before(self.back.1);
        self.back.1 = start;
        self.left -= 1;
        Some(element)
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model to compare with: the plain deque the list replaced.
    fn check(list: &List, model: &VecDeque<Vec<u8>>) {
        assert_eq!(list.len(), model.len());
        let forward: Vec<&[u8]> = list.iter().collect();
        let expected: Vec<&[u8]> = model.iter().map(Vec::as_slice).collect();
        assert_eq!(forward, expected);
        let backward: Vec<&[u8]> = list.iter().rev().collect();
        let expected_back: Vec<&[u8]> = model.iter().rev().map(Vec::as_slice).collect();
        assert_eq!(backward, expected_back);
        assert!(list.chunks.iter().all(|c| c.count > 0), "no empty chunk");
        assert_eq!(
            list.chunks.iter().map(|c| c.count).sum::<usize>(),
            list.len()
        );
    }

    /// A deterministic element of varied size (0 bytes to past a chunk), so entries with 1-, 2- and 3-byte lengths
    /// and chunks holding a single large element all occur.
    fn element(seed: u64) -> Vec<u8> {
        let len = match seed % 10 {
            0 => 0,
            1..=5 => (seed % 20) as usize,
            6 | 7 => (seed % 300) as usize,
            8 => 2000 + (seed % 3000) as usize,
            _ => CHUNK_BYTES + (seed % 20_000) as usize,
        };
        (0..len).map(|i| (seed as usize + i) as u8).collect()
    }

    #[test]
    fn random_operations_match_a_deque() {
        let mut list = List::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let e = element(x >> 8);
            match x % 16 {
                0..=3 => {
                    list.push(End::Left, &e);
                    model.push_front(e);
                }
                4..=7 => {
                    list.push(End::Right, &e);
                    model.push_back(e);
                }
                8 | 9 => assert_eq!(list.pop(End::Left), model.pop_front()),
                10 | 11 => assert_eq!(list.pop(End::Right), model.pop_back()),
                12 if !model.is_empty() => {
                    let i = (x >> 20) as usize % model.len();
                    list.set(i, &e);
                    model[i] = e;
                }
                13 => {
                    let i = (x >> 20) as usize % (model.len() + 1);
                    list.insert(i, &e);
                    model.insert(i, e);
                }
                14 if !model.is_empty() => {
                    let first = (x >> 20) as usize % model.len();
                    let count = (x >> 40) as usize % 50;
                    let got: Vec<&[u8]> = list.range(first, count).collect();
                    let want: Vec<&[u8]> = model
                        .iter()
                        .skip(first)
                        .take(count)
                        .map(Vec::as_slice)
                        .collect();
                    assert_eq!(got, want);
                    assert_eq!(list.get(first), Some(model[first].as_slice()));
                }
                15 => {
                    let n = (x >> 20) as usize % 5;
                    if x & (1 << 30) == 0 {
                        list.discard(End::Left, n);
                        model.drain(..n.min(model.len()));
                    } else {
                        list.discard(End::Right, n);
                        model.truncate(model.len().saturating_sub(n));
                    }
                }
                _ => {}
            }
            if step % 500 == 0 {
                check(&list, &model);
            }
        }
        check(&list, &model);
        let removed = list.remove_matching(End::Left, usize::MAX, |e| e.len() % 2 == 0);
        let before = model.len();
        model.retain(|e| e.len() % 2 != 0);
        assert_eq!(removed, before - model.len());
        check(&list, &model);
    }

    /// LREM's removal from either end with a limit, against removing from a deque one by one.
    #[test]
    fn remove_matching_takes_the_nearest_matches_first() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..300u64 {
            let n = (round * 7) % 900;
            let elements: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 4 {
                        0 => b"m".to_vec(),
                        1 => vec![b'x'; (x >> 8) as usize % 300],
                        _ => element(x >> 8 ^ i),
                    }
                })
                .collect();
            let end = if round % 2 == 0 {
                End::Left
            } else {
                End::Right
            };
            let limit = match round % 3 {
                0 => usize::MAX,
                _ => (round as usize) % 40,
            };
            let mut list: List = elements.iter().collect();
            let removed = list.remove_matching(end, limit, |e| e == b"m");
            let mut model: VecDeque<Vec<u8>> = elements.into_iter().collect();
            let mut want = 0;
            while want < limit {
                let at = match end {
                    End::Left => model.iter().position(|e| e == b"m"),
                    End::Right => model.iter().rposition(|e| e == b"m"),
                };
                let Some(at) = at else { break };
                model.remove(at);
                want += 1;
            }
            assert_eq!(removed, want, "round {round}");
            check(&list, &model);
        }
    }

    /// LSET and LINSERT in the middle keep every chunk within its size, however large the new element.
    #[test]
    fn changes_in_the_middle_keep_chunks_within_their_size() {
        let mut list: List = (0..3000).map(|i| format!("{i:04}")).collect();
        let mut model: VecDeque<Vec<u8>> = list.iter().map(<[u8]>::to_vec).collect();
        for i in 0..400usize {
            let e = vec![b'a' + (i % 26) as u8; (i * 97) % 3000];
            let at = (i * 131) % model.len();
            if i % 2 == 0 {
                list.set(at, &e);
                model[at] = e;
            } else {
                list.insert(at, &e);
                model.insert(at, e);
            }
        }
        check(&list, &model);
        for c in &list.chunks {
            assert!(
                c.count == 1 || c.live() <= CHUNK_BYTES,
                "{} bytes",
                c.live()
            );
        }
    }

    #[test]
    fn small_elements_are_packed() {
        let list: List = (0..100_000).map(|i| format!("{:03}", i % 1000)).collect();
        // 3 bytes each plus a length byte on each side, in 8 KB chunks.
        assert!(
            list.chunk_bytes().sum::<usize>() < 100_000 * 6,
            "{} bytes",
            list.chunk_bytes().sum::<usize>()
        );
        assert_eq!(list.get(99_999), Some(&b"999"[..]));
    }

    #[test]
    fn a_fifo_within_one_chunk_reuses_its_buffer() {
        let mut list = List::new();
        for i in 0..100_000u32 {
            list.push(End::Right, &i.to_le_bytes());
            if i >= 10 {
                list.pop(End::Left);
            }
        }
        assert_eq!(list.len(), 10);
        assert!(
            list.chunk_bytes().sum::<usize>() < 4096,
            "{} bytes",
            list.chunk_bytes().sum::<usize>()
        );
        let mut list = List::new();
        for i in 0..100_000u32 {
            list.push(End::Left, &i.to_le_bytes());
            if i >= 10 {
                list.pop(End::Right);
            }
        }
        assert!(
            list.chunk_bytes().sum::<usize>() < 4096,
            "{} bytes",
            list.chunk_bytes().sum::<usize>()
        );
    }
}
