//! The sorted set value: members with f64 scores, ordered by (score, member bytes), with O(log n) insert, remove,
//! rank and access by rank.
//!
//! Two structures hold the same elements:
//! - a [`Dict`] from member to score: O(1) ZSCORE, and ZSCAN cursors with Redis's guarantees;
//! - an [`OrderTree`]: a treap (randomized balanced binary search tree) whose nodes carry their subtree size, so that
//!   the rank of an element, the element at a rank and the number of elements below a bound are all O(log n) expected.
//!   Range replies walk it in order from a rank with an explicit stack.
//!
//! Scores are never NaN (the commands refuse NaN before it gets here), so the order is total.
//!
//! OBJECT ENCODING follows Redis 7.2's rules: `listpack` while there are at most [`MAX_LISTPACK_ENTRIES`] members of
//! at most [`MAX_LISTPACK_VALUE`] bytes, then `skiplist` for good (a zset never converts back, except results that STORE
//! commands build, which Redis converts when they fit: [`ZSet::compact_encoding`]).

use std::cmp::Ordering;

use super::dict::Dict;

/// Redis 7.2's `zset-max-listpack-entries` default.
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis 7.2's `zset-max-listpack-value` default.
pub const MAX_LISTPACK_VALUE: usize = 64;

/// No node.
const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    score: f64,
    member: Box<[u8]>,
    left: u32,
    right: u32,
    /// Nodes in this subtree, this one included.
    size: u32,
    /// Heap priority: a parent's is at least its children's, which keeps the tree balanced in expectation.
    priority: u32,
}

/// The order of two (score, member) elements.
fn compare(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

/// An order-statistics treap of (score, member) elements, nodes kept in an arena.
#[derive(Clone, Debug)]
struct OrderTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
}

impl Default for OrderTree {
    fn default() -> Self {
        OrderTree::new()
    }
}

impl OrderTree {
    /// An empty tree.
    pub fn new() -> Self {
        OrderTree {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.size(self.root)
    }

    fn size(&self, t: u32) -> usize {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].size as usize
        }
    }

    fn update(&mut self, t: u32) {
        let n = &self.nodes[t as usize];
        let size = 1 + self.size(n.left) + self.size(n.right);
        self.nodes[t as usize].size = size as u32;
    }

    /// Joins two trees where every element of `a` is below every element of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].priority >= self.nodes[b as usize].priority {
            let right = self.nodes[a as usize].right;
            self.nodes[a as usize].right = self.merge(right, b);
            self.update(a);
            a
        } else {
            let left = self.nodes[b as usize].left;
            self.nodes[b as usize].left = self.merge(a, left);
            self.update(b);
            b
        }
    }

    /// Splits `t` into the elements below `key` and the rest.
    fn split(&mut self, t: u32, key: (f64, &[u8])) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let n = &self.nodes[t as usize];
        if compare((n.score, &n.member), key) == Ordering::Less {
            let right = n.right;
            let (l, r) = self.split(right, key);
            self.nodes[t as usize].right = l;
            self.update(t);
            (t, r)
        } else {
            let left = n.left;
            let (l, r) = self.split(left, key);
            self.nodes[t as usize].left = r;
            self.update(t);
            (l, t)
        }
    }

    /// Points the link `at` (a parent and which child, or the root when `None`) to `t`.
    fn relink(&mut self, at: Option<(u32, Ordering)>, t: u32) {
        match at {
            None => self.root = t,
            Some((p, Ordering::Less)) => self.nodes[p as usize].left = t,
            Some((p, _)) => self.nodes[p as usize].right = t,
        }
    }

    /// Puts the unlinked node `id` in its place: down the path while the nodes outrank it (each gains it in its
    /// subtree), then it takes over the subtree there, split around it. One pass over the path, and the split is of a
    /// subtree that is small in expectation, unlike a split and two merges of the whole tree.
    fn attach(&mut self, id: u32) {
        let (score, priority) = (
            self.nodes[id as usize].score,
            self.nodes[id as usize].priority,
        );
        let member = std::mem::take(&mut self.nodes[id as usize].member);
        let (mut at, mut t) = (None, self.root);
        while t != NIL && self.nodes[t as usize].priority >= priority {
            let n = &mut self.nodes[t as usize];
            n.size += 1;
            let side = compare((score, &member), (n.score, &n.member));
            at = Some((t, side));
            t = if side == Ordering::Less {
                n.left
            } else {
                n.right
            };
        }
        let (l, r) = self.split(t, (score, &member));
        let size = 1 + self.size(l) + self.size(r);
        let n = &mut self.nodes[id as usize];
        (n.member, n.left, n.right, n.size) = (member, l, r, size as u32);
        self.relink(at, id);
    }

    /// Unlinks the node of an element from the tree and returns it, or `None` when the element is not there.
    fn detach(&mut self, key: (f64, &[u8])) -> Option<u32> {
        // Find it first: sizes on the path shrink only if it is there (the second walk is then in cache).
        let mut t = self.root;
        loop {
            if t == NIL {
                return None;
            }
            let n = &self.nodes[t as usize];
            match compare(key, (n.score, &n.member)) {
                Ordering::Less => t = n.left,
                Ordering::Greater => t = n.right,
                Ordering::Equal => break,
            }
        }
        let (mut at, mut p) = (None, self.root);
        while p != t {
            let n = &mut self.nodes[p as usize];
            n.size -= 1;
            let side = compare(key, (n.score, &n.member));
            at = Some((p, side));
            p = if side == Ordering::Less {
                n.left
            } else {
                n.right
            };
        }
        let (left, right) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
        let joined = self.merge(left, right);
        self.relink(at, joined);
        Some(t)
    }

    /// Adds an element, which must not be in the tree.
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        let node = Node {
            score,
            member: member.into(),
            left: NIL,
            right: NIL,
            size: 1,
            priority: fastrand::u32(..),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.attach(id);
    }

    /// Moves an element to a new score, reusing its node.
    pub fn rescore(&mut self, score: f64, member: &[u8], new_score: f64) {
        match self.detach((score, member)) {
            Some(id) => {
                self.nodes[id as usize].score = new_score;
                self.attach(id);
            }
            None => self.insert(new_score, member),
        }
    }

    /// Removes an element; true when it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let Some(id) = self.detach((score, member)) else {
            return false;
        };
        self.nodes[id as usize].member = Box::default();
        self.free.push(id);
        if self.root == NIL {
            // Nothing is left: give the arena back.
            *self = OrderTree::new();
        }
        true
    }

    /// How many elements the prefix for which `before` holds has (`before` must hold for a prefix of the order).
    pub fn count_while(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let (mut t, mut count) = (self.root, 0);
        while t != NIL {
            let n = &self.nodes[t as usize];
            if before(n.score, &n.member) {
                count += self.size(n.left) + 1;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        count
    }

    /// The 0-based rank of an element (which must be in the tree).
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        self.count_while(|s, m| compare((s, m), (score, member)) == Ordering::Less)
    }

    /// The element at rank `i`, if any.
    pub fn get(&self, mut i: usize) -> Option<(&[u8], f64)> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            let left = self.size(n.left);
            match i.cmp(&left) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return Some((&n.member, n.score)),
                Ordering::Greater => {
                    i -= left + 1;
                    t = n.right;
                }
            }
        }
        None
    }

    /// The elements in walk order from position `start` of that order: ascending, or descending when `rev` (position
    /// 0 is then the greatest element).
    pub fn iter_from(&self, start: usize, rev: bool) -> Iter<'_> {
        let mut iter = Iter {
            tree: self,
            stack: Vec::new(),
            rev,
        };
        // Walk to rank `start`, stacking the nodes still to visit after it (those we go "before" of).
        let (mut t, mut i) = (self.root, start);
        while t != NIL && i < self.len() {
            let n = &self.nodes[t as usize];
            let (near, far) = if rev {
                (n.right, n.left)
            } else {
                (n.left, n.right)
            };
            let near_size = self.size(near);
            match i.cmp(&near_size) {
                Ordering::Less => {
                    iter.stack.push(t);
                    t = near;
                }
                Ordering::Equal => {
                    iter.stack.push(t);
                    break;
                }
                Ordering::Greater => {
                    i -= near_size + 1;
                    t = far;
                }
            }
        }
        iter
    }
}

/// An in-order walk of an [`OrderTree`] (see [`OrderTree::iter_from`]).
pub struct Iter<'a> {
    tree: &'a OrderTree,
    stack: Vec<u32>,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        let t = self.stack.pop()?;
        let nodes = &self.tree.nodes;
        let n = &nodes[t as usize];
        let mut c = if self.rev { n.left } else { n.right };
        while c != NIL {
            self.stack.push(c);
            let cn = &nodes[c as usize];
            c = if self.rev { cn.right } else { cn.left };
        }
        Some((&n.member, n.score))
    }
}

/// A sorted set.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    scores: Dict<f64>,
    order: OrderTree,
    /// True once the set outgrew the listpack limits (OBJECT ENCODING `skiplist`).
    skiplist: bool,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// True when `count` members, the longest `max_len` bytes, fit Redis's listpack limits.
fn fits_listpack(count: usize, max_len: usize) -> bool {
    count <= MAX_LISTPACK_ENTRIES && max_len <= MAX_LISTPACK_VALUE
}

impl ZSet {
    /// An empty zset in the encoding Redis 7.2's `zsetTypeCreate` picks for about `size_hint` members of at most
    /// `max_len` bytes.
    pub fn with_hint(size_hint: usize, max_len: usize) -> Self {
        ZSet {
            skiplist: !fits_listpack(size_hint, max_len),
            ..ZSet::default()
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// OBJECT ENCODING's name.
    pub fn encoding(&self) -> &'static str {
        if self.skiplist {
            "skiplist"
        } else {
            "listpack"
        }
    }

    /// True while the set is small enough for Redis's listpack form (ZSCAN returns it whole).
    pub fn is_listpack(&self) -> bool {
        !self.skiplist
    }

    /// Re-picks the encoding from the contents, as Redis's `zsetConvertToListpackIfNeeded` does for STORE results.
    pub fn compact_encoding(&mut self) {
        let max_len = self.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        self.skiplist = !fits_listpack(self.len(), max_len);
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score (adding it when new); returns the previous score.
    /// A score of -0 is stored as 0, as Redis's listpack stores it.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let score = score + 0.0;
        let old = self.scores.insert(member, score);
        match old {
            Some(s) if s == score => return old,
            Some(s) => self.order.rescore(s, member, score),
            None => self.order.insert(score, member),
        }
        if !fits_listpack(self.len(), member.len()) {
            self.skiplist = true;
        }
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.remove(member)?;
        self.order.remove(score, member);
        Some(score)
    }

    /// The 0-based rank of `member` in ascending order, with its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        let score = self.score(member)?;
        Some((self.order.rank(score, member), score))
    }

    /// The member at ascending rank `i`.
    pub fn get(&self, i: usize) -> Option<(&[u8], f64)> {
        self.order.get(i)
    }

    /// How many members, in ascending order, satisfy `before` (which must hold for a prefix of the order).
    pub fn count_while(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.order.count_while(before)
    }

    /// Members from position `start` of ascending order, or when `rev` of descending order (position 0 is then the
    /// greatest member); nothing when `start` is past the end.
    pub fn range(&self, start: usize, rev: bool) -> Iter<'_> {
        self.order.iter_from(start, rev)
    }

    /// Every member in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.order.iter_from(0, false)
    }

    /// A uniformly chosen member, if any.
    pub fn random(&self) -> Option<(&[u8], f64)> {
        (!self.is_empty())
            .then(|| self.get(fastrand::usize(..self.len())))
            .flatten()
    }

    /// One ZSCAN step over the member table (see [`Dict::scan`]).
    pub fn scan<'a>(&'a self, cursor: u64, count: usize, mut f: impl FnMut(&'a [u8], f64)) -> u64 {
        self.scores.scan(cursor, count, |m, s| f(m, *s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(it: Iter<'_>) -> Vec<String> {
        it.map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn order_is_by_score_then_member_bytes() {
        let mut z = ZSet::default();
        for (m, s) in [
            ("b", 1.0),
            ("a", 1.0),
            ("c", 0.5),
            ("d", f64::INFINITY),
            ("e", -2.0),
        ] {
            assert_eq!(z.insert(m.as_bytes(), s), None);
        }
        assert_eq!(members(z.iter()), ["e", "c", "a", "b", "d"]);
        assert_eq!(members(z.range(1, true)), ["b", "a", "c", "e"]);
        assert_eq!(members(z.range(4, false)), ["d"]);
        assert!(members(z.range(5, false)).is_empty());
        assert_eq!(z.rank(b"a"), Some((2, 1.0)));
        assert_eq!(z.get(3), Some((&b"b"[..], 1.0)));
        // A new score moves the member.
        assert_eq!(z.insert(b"e", 10.0), Some(-2.0));
        assert_eq!(members(z.iter()), ["c", "a", "b", "e", "d"]);
        assert_eq!(z.remove(b"a"), Some(1.0));
        assert_eq!(z.remove(b"a"), None);
        assert_eq!(members(z.iter()), ["c", "b", "e", "d"]);
        assert_eq!(z.count_while(|s, _| s < 5.0), 2);
    }

    #[test]
    fn ranks_and_walks_agree_with_a_sorted_vector_under_random_changes() {
        let mut z = ZSet::default();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for step in 0..4000 {
            let member = format!("m{}", rng.u32(..300)).into_bytes();
            let score = rng.i32(-50..50) as f64 / 4.0;
            model.retain(|(_, m)| *m != member);
            if rng.bool() {
                z.insert(&member, score);
                model.push((score, member));
            } else {
                z.remove(&member);
            }
            model.sort_by(|a, b| compare((a.0, &a.1), (b.0, &b.1)));
            assert_eq!(z.len(), model.len());
            if step % 97 == 0 || step == 3999 {
                // Subtree sizes stay right through every kind of change, or ranks drift.
                for (i, (s, m)) in model.iter().enumerate() {
                    assert_eq!(z.rank(m), Some((i, *s)));
                    assert_eq!(z.get(i), Some((&m[..], *s)));
                }
            }
        }
        let start = model.len() / 3;
        let forward: Vec<&[u8]> = z.range(start, false).map(|(m, _)| m).collect();
        let expected: Vec<&[u8]> = model[start..].iter().map(|(_, m)| &m[..]).collect();
        assert_eq!(forward, expected);
        let backward: Vec<&[u8]> = z.range(start, true).map(|(m, _)| m).collect();
        let expected: Vec<&[u8]> = model[..model.len() - start]
            .iter()
            .rev()
            .map(|(_, m)| &m[..])
            .collect();
        assert_eq!(backward, expected);
    }

    #[test]
    fn encoding_becomes_skiplist_past_the_limits_and_stays() {
        let mut z = ZSet::with_hint(1, 1);
        for i in 0..MAX_LISTPACK_ENTRIES {
            z.insert(i.to_string().as_bytes(), i as f64);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"one more", 0.0);
        assert_eq!(z.encoding(), "skiplist");
        z.remove(b"one more");
        assert_eq!(z.encoding(), "skiplist");
        z.compact_encoding();
        assert_eq!(z.encoding(), "listpack");
        let mut long = ZSet::with_hint(1, 1);
        long.insert(&[b'x'; MAX_LISTPACK_VALUE + 1], 1.0);
        assert_eq!(long.encoding(), "skiplist");
        assert_eq!(
            ZSet::with_hint(MAX_LISTPACK_ENTRIES + 1, 1).encoding(),
            "skiplist"
        );
    }
}
