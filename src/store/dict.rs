//! [`Dict`]: the large-container table behind hashes and sets (Redis's `hashtable` encoding).
//!
//! A `Dict` is `2^level` hashbrown tables; an entry lives in the table named by the top `level` bits of its scan position (32 bits of its hash).
//! That split is what gives HSCAN/SSCAN Redis's guarantee (every element present from the start to the end of a scan
//! is returned at least once) without access to hashbrown's buckets:
//! - a scan cursor is a position in a 32-bit hash space, and each call returns whole tables, in position order;
//! - growing splits table `i` into `2i` and `2i + 1` and shrinking merges them back, so the set of hash positions a
//!   table covers only ever splits or merges in place: an element never moves to a position a cursor has passed.
//!   (After a merge a cursor may point inside a table; the whole table is returned, which may repeat elements, as Redis
//!   may.)
//!
//! Random picks ([`Dict::random`]) are uniform: a random rank is located by walking the table sizes.
//! Keys are hashed with hashbrown's default seeded hasher (never an unseeded one: members are client-chosen).

use std::hash::BuildHasher;

use hashbrown::hash_table::HashTable;

use super::key::Key;
use hashbrown::DefaultHashBuilder;

/// Average entries per table above which the tables double.
const SPLIT_ABOVE: usize = 64;
/// Average entries per table below which they halve.
const MERGE_BELOW: usize = 8;
/// Bits of hash a scan cursor carries.
const CURSOR_BITS: u32 = 32;

#[derive(Clone, Debug)]
struct Slot<V> {
    hash: u64,
    key: Key,
    value: V,
}

/// A map from byte strings to `V` that can be scanned with a cursor and sampled uniformly.
#[derive(Clone, Debug)]
pub struct Dict<V> {
    tables: Vec<HashTable<Slot<V>>>,
    level: u32,
    len: usize,
    /// At least the size of the largest table (not lowered by removals): the rejection bound of [`Dict::random`].
    bound: usize,
    hasher: DefaultHashBuilder,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Dict {
            tables: vec![HashTable::new()],
            level: 0,
            len: 0,
            bound: 0,
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<V: PartialEq> PartialEq for Dict<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

/// The table index of `hash` at `level`.
fn table_at(hash: u64, level: u32) -> usize {
    position(hash).checked_shr(CURSOR_BITS - level).unwrap_or(0) as usize
}

/// Where an entry sits in the 32-bit scan space: hash bits 25..57. Not the top bits, which hashbrown keeps as each
/// entry's 7-bit tag (all entries of a table would share it, and every probe would compare keys), nor the low bits,
/// which pick its bucket.
fn position(hash: u64) -> u32 {
    (hash >> 25) as u32
}

impl<V> Dict<V> {
    /// An empty dict.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn locate(&self, key: &[u8]) -> (u64, usize) {
        let hash = self.hasher.hash_one(key);
        (hash, table_at(hash, self.level))
    }

    /// The value under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let (hash, t) = self.locate(key);
        self.tables[t]
            .find(hash, |s| *s.key == *key)
            .map(|s| &s.value)
    }

    /// The value under `key`, for changing in place.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let (hash, t) = self.locate(key);
        self.tables[t]
            .find_mut(hash, |s| *s.key == *key)
            .map(|s| &mut s.value)
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value` (the key copied in); returns the previous value.
    pub fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        let (hash, t) = self.locate(key);
        let table = &mut self.tables[t];
        if let Some(slot) = table.find_mut(hash, |s| *s.key == *key) {
            return Some(std::mem::replace(&mut slot.value, value));
        }
        let slot = Slot {
            hash,
            key: key.into(),
            value,
        };
        table.insert_unique(hash, slot, |s| s.hash);
        self.len += 1;
        self.bound = self.bound.max(table.len());
        if self.len > SPLIT_ABOVE << self.level && self.level < CURSOR_BITS {
            self.relevel(self.level + 1);
        }
        None
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let (hash, t) = self.locate(key);
        let (slot, _) = self.tables[t]
            .find_entry(hash, |s| *s.key == *key)
            .ok()?
            .remove();
        self.len -= 1;
        if self.level > 0 && self.len < MERGE_BELOW << self.level {
            self.relevel(self.level - 1);
        }
        Some(slot.value)
    }

    /// Redistributes the entries over `2^level` tables (a split or a merge of neighbours).
    fn relevel(&mut self, level: u32) {
        let mut tables: Vec<HashTable<Slot<V>>> =
            (0..1usize << level).map(|_| HashTable::new()).collect();
        for table in std::mem::take(&mut self.tables) {
            for slot in table {
                tables[table_at(slot.hash, level)].insert_unique(slot.hash, slot, |s| s.hash);
            }
        }
        self.bound = tables.iter().map(HashTable::len).max().unwrap_or(0);
        self.tables = tables;
        self.level = level;
    }

    /// Bytes of the tables themselves: their allocations (slots at capacity, control bytes) and the vector holding
    /// them, not what the keys and values own beyond their slots (MEMORY USAGE).
    pub fn table_bytes(&self) -> usize {
        self.tables.capacity() * std::mem::size_of::<HashTable<Slot<V>>>()
            + self
                .tables
                .iter()
                .map(HashTable::allocation_size)
                .sum::<usize>()
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.tables
            .iter()
            .flat_map(|t| t.iter().map(|s| (&*s.key, &s.value)))
    }

    /// One scan step: calls `f` on the entries of whole tables from position `cursor` on, until at least `count` were
    /// visited; returns the next cursor, 0 when the walk is over (also for a cursor past the end).
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a V),
    ) -> u64 {
        let shift = CURSOR_BITS - self.level;
        let mut t = match usize::try_from(cursor >> shift) {
            Ok(t) if t < self.tables.len() => t,
            _ => return 0,
        };
        let mut visited = 0;
        while t < self.tables.len() {
            for s in self.tables[t].iter() {
                f(&s.key, &s.value);
            }
            visited += self.tables[t].len();
            t += 1;
            if visited >= count {
                break;
            }
        }
        if t == self.tables.len() {
            0
        } else {
            (t as u64) << shift
        }
    }

    /// A uniformly chosen entry, if any. Rejection sampling: a random table and a random rank below the largest
    /// table's size, kept when the table has that rank. Every entry has the same chance per try, and a try succeeds
    /// with probability `len / (tables * bound)`, a constant share since tables are kept between 8 and 64 entries on
    /// average: O(1) expected tries, each O(table size), whatever the size of the dict.
    pub fn random(&self) -> Option<(&[u8], &V)> {
        if self.len == 0 {
            return None;
        }
        loop {
            let table = &self.tables[fastrand::usize(..self.tables.len())];
            let rank = fastrand::usize(..self.bound);
            if rank < table.len() {
                return table.iter().nth(rank).map(|s| (&*s.key, &s.value));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn key(i: usize) -> Vec<u8> {
        format!("k{i}").into_bytes()
    }

    #[test]
    fn grows_and_shrinks_keeping_every_entry() {
        let mut d = Dict::new();
        for i in 0..10_000 {
            assert_eq!(d.insert(&key(i), i), None);
        }
        assert!(d.level > 5);
        assert_eq!(d.insert(&key(7), 70), Some(7));
        assert_eq!(d.get(&key(7)), Some(&70));
        for i in 0..9_990 {
            assert!(d.remove(&key(i)).is_some());
        }
        assert_eq!(d.len(), 10);
        assert!(d.level <= 1);
        assert_eq!(d.iter().count(), 10);
        assert!((9_990..10_000).all(|i| d.contains(&key(i))));
    }

    #[test]
    fn a_scan_returns_every_entry_present_throughout_despite_resizes() {
        let mut d = Dict::new();
        for i in 0..2_000 {
            d.insert(&key(i), ());
        }
        let (mut cursor, mut seen, mut next) = (0, HashSet::new(), 2_000);
        loop {
            cursor = d.scan(cursor, 10, |k, _| {
                seen.insert(k.to_vec());
            });
            // Churn between steps: grow a lot, then shrink below the start, never touching keys 0..500.
            for _ in 0..40 {
                d.insert(&key(next), ());
                next += 1;
            }
            if next > 6_000 {
                for i in 500..next {
                    d.remove(&key(i));
                }
            }
            if cursor == 0 {
                break;
            }
        }
        assert!((0..500).all(|i| seen.contains(&key(i))));
    }

    #[test]
    fn random_picks_cover_every_entry() {
        let mut d = Dict::new();
        for i in 0..200 {
            d.insert(&key(i), i);
        }
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            seen.insert(*d.random().expect("non-empty").1);
        }
        assert_eq!(seen.len(), 200);
        assert!(Dict::<()>::new().random().is_none());
    }
}
