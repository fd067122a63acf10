//! The sorted set value: members with f64 scores, ordered by (score, member bytes), with O(log n) insert, remove,
//! rank and access by rank.
//!
//! Two structures hold the same elements:
//! - a [`Dict`] from member to score: O(1) ZSCORE, and ZSCAN cursors with Redis's guarantees;
//! - an [`OrderTree`]: a B+tree whose inner nodes count the elements under each child, so that the rank of an
//!   element, the element at a rank and the number of elements below a bound are all O(log n). Nodes hold up to
//!   [`CAP`] entries in sorted arrays, so an operation on 100k elements reads 4 nodes, where a binary tree follows
//!   ~25 pointers, each a likely cache miss. Range replies walk the linked leaves from a rank.
//!
//! Scores are never NaN (the commands refuse NaN before it gets here), so the order is total.
//!
//! OBJECT ENCODING follows Redis 7.2's rules: `listpack` while there are at most [`MAX_LISTPACK_ENTRIES`] members of
//! at most [`MAX_LISTPACK_VALUE`] bytes, then `skiplist` for good (a zset never converts back, except results that STORE
//! commands build, which Redis converts when they fit: [`ZSet::compact_encoding`]).

use std::cmp::Ordering;

use super::dict::Dict;
use super::key::Key;

/// Redis 7.2's `zset-max-listpack-entries` default.
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis 7.2's `zset-max-listpack-value` default.
pub const MAX_LISTPACK_VALUE: usize = 64;

/// No node.
const NIL: u32 = u32::MAX;
/// Most elements a leaf holds, and most children an inner node has: a node's keys span a few cache lines, so a
/// lookup in a 100k-element set touches 3 nodes rather than the ~25 scattered nodes of a binary tree.
const CAP: usize = 32;
/// Fewest elements (leaf) or children (inner node) a node other than the root keeps: below that it merges with a
/// sibling, or takes some of its sibling's when the two would not fit in one node.
const MIN: usize = CAP / 4;

/// A separator between two children (see [`Inner`]).
type Sep = (f64, Key);

/// The order of two (score, member) elements.
fn compare(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

/// The first index of `0..len` for which `pred` fails (`pred` holds for a prefix).
fn partition_point(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Puts `v` at `a[i]`, moving `a[i..len]` up by one.
fn insert_at<T>(a: &mut [T], len: usize, i: usize, v: T) {
    a[i..=len].rotate_right(1);
    a[i] = v;
}

/// Takes `a[i]` out of `a[..len]`, moving the rest down by one.
fn remove_at<T: Default>(a: &mut [T], len: usize, i: usize) -> T {
    let v = std::mem::take(&mut a[i]);
    a[i..len].rotate_left(1);
    v
}

/// Moves the first `k` of `src[..src_len]` to the end of `dst[..dst_len]`.
fn shift_left<T: Default>(src: &mut [T], src_len: usize, dst: &mut [T], dst_len: usize, k: usize) {
    for j in 0..k {
        dst[dst_len + j] = std::mem::take(&mut src[j]);
    }
    src[..src_len].rotate_left(k);
}

/// Moves the last `k` of `src[..src_len]` to the front of `dst[..dst_len]`.
fn shift_right<T: Default>(src: &mut [T], src_len: usize, dst: &mut [T], dst_len: usize, k: usize) {
    dst[..dst_len + k].rotate_right(k);
    for j in 0..k {
        dst[j] = std::mem::take(&mut src[src_len - k + j]);
    }
}

/// Two distinct elements of a slice, mutably.
fn pair_mut<T>(v: &mut [T], a: u32, b: u32) -> (&mut T, &mut T) {
    let (a, b) = (a as usize, b as usize);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

/// A bottom node: elements in order, scores apart from members so that a search reads few cache lines (members are
/// read only between equal scores). Leaves are linked both ways for range walks. The vectors grow to at most one
/// more than [`CAP`] (a leaf splits just after it overflows), so that a small set takes little memory.
#[derive(Clone, Debug, Default)]
struct Leaf {
    scores: Vec<f64>,
    members: Vec<Key>,
    prev: u32,
    next: u32,
}

impl Leaf {
    fn new() -> Self {
        Leaf {
            prev: NIL,
            next: NIL,
            ..Leaf::default()
        }
    }

    fn len(&self) -> usize {
        self.scores.len()
    }

    fn key(&self, i: usize) -> (f64, &[u8]) {
        (self.scores[i], &self.members[i])
    }

    /// The index of the first element not below `key`.
    fn lower_bound(&self, key: (f64, &[u8])) -> usize {
        partition_point(self.len(), |j| compare(self.key(j), key) == Ordering::Less)
    }

    /// Puts `key` at index `i`.
    fn insert(&mut self, i: usize, key: (f64, &[u8])) {
        let len = self.len();
        if len == self.scores.capacity() {
            // Double, but never past the most a leaf holds.
            let extra = (len * 2).clamp(4, CAP + 1) - len;
            self.scores.reserve_exact(extra);
            self.members.reserve_exact(extra);
        }
        self.scores.insert(i, key.0);
        self.members.insert(i, Key::from(key.1));
    }

    /// Moves the first `k` elements to the end of `dst`.
    fn move_front_to(&mut self, dst: &mut Leaf, k: usize) {
        dst.scores.extend(self.scores.drain(..k));
        dst.members.extend(self.members.drain(..k));
    }

    /// Moves the last `k` elements to the front of `dst`.
    fn move_back_to(&mut self, dst: &mut Leaf, k: usize) {
        let at = self.len() - k;
        dst.scores.splice(..0, self.scores.drain(at..));
        dst.members.splice(..0, self.members.drain(at..));
    }
}

/// A node above the leaves: `len` children with the number of elements under each, and between children `i` and
/// `i + 1` the separator `i`: above every element under child `i`, not above any under child `i + 1`. It is the
/// least element under child `i + 1` when made, and stays as it is when that element goes. One spare slot: a node
/// splits just after it overflows.
#[derive(Clone, Debug)]
struct Inner {
    len: usize,
    sep_scores: [f64; CAP],
    sep_members: [Key; CAP],
    counts: [u32; CAP + 1],
    children: [u32; CAP + 1],
}

impl Inner {
    fn new() -> Self {
        Inner {
            len: 0,
            sep_scores: [0.0; CAP],
            sep_members: std::array::from_fn(|_| Key::default()),
            counts: [0; CAP + 1],
            children: [NIL; CAP + 1],
        }
    }

    fn sep(&self, i: usize) -> (f64, &[u8]) {
        (self.sep_scores[i], &self.sep_members[i])
    }

    fn set_sep(&mut self, i: usize, (score, member): Sep) {
        (self.sep_scores[i], self.sep_members[i]) = (score, member);
    }

    /// The child whose elements `key` falls among.
    fn route(&self, key: (f64, &[u8])) -> usize {
        partition_point(self.len - 1, |j| {
            compare(self.sep(j), key) != Ordering::Greater
        })
    }

    /// Elements under this node.
    fn weight(&self) -> u32 {
        self.counts[..self.len].iter().sum()
    }

    /// Moves the first `k` children to the end of `dst`, `sep` (the separator between `dst` and this node) going
    /// between them; returns the new separator, or `None` when this node gave all its children.
    fn move_front_to(&mut self, dst: &mut Inner, k: usize, (score, member): Sep) -> Option<Sep> {
        let (n, m) = (self.len, dst.len);
        dst.set_sep(m - 1, (score, member));
        shift_left(&mut self.sep_scores, n - 1, &mut dst.sep_scores, m, k - 1);
        shift_left(&mut self.sep_members, n - 1, &mut dst.sep_members, m, k - 1);
        shift_left(&mut self.children, n, &mut dst.children, m, k);
        shift_left(&mut self.counts, n, &mut dst.counts, m, k);
        self.len -= k;
        dst.len += k;
        (k < n).then(|| {
            let score = remove_at(&mut self.sep_scores, n - k, 0);
            (score, remove_at(&mut self.sep_members, n - k, 0))
        })
    }

    /// Moves the last `k` children to the front of `dst`, `sep` (the separator between this node and `dst`, `None`
    /// when `dst` is empty) going between them; returns the new separator.
    fn move_back_to(&mut self, dst: &mut Inner, k: usize, sep: Option<Sep>) -> Sep {
        let (n, m) = (self.len, dst.len);
        let mut dst_seps = m.saturating_sub(1);
        if let Some((score, member)) = sep {
            insert_at(&mut dst.sep_scores, dst_seps, 0, score);
            insert_at(&mut dst.sep_members, dst_seps, 0, member);
            dst_seps += 1;
        }
        shift_right(
            &mut self.sep_scores,
            n - 1,
            &mut dst.sep_scores,
            dst_seps,
            k - 1,
        );
        shift_right(
            &mut self.sep_members,
            n - 1,
            &mut dst.sep_members,
            dst_seps,
            k - 1,
        );
        shift_right(&mut self.children, n, &mut dst.children, m, k);
        shift_right(&mut self.counts, n, &mut dst.counts, m, k);
        self.len -= k;
        dst.len += k;
        let up = n - k - 1;
        (
            self.sep_scores[up],
            std::mem::take(&mut self.sep_members[up]),
        )
    }
}

/// A node that split: the new right half, its separator and its element count.
struct Split {
    sep: Sep,
    node: u32,
    count: u32,
}

/// Takes a slot for `node` in an arena, reusing a freed one first.
fn alloc<T>(arena: &mut Vec<T>, free: &mut Vec<u32>, node: T) -> u32 {
    match free.pop() {
        Some(id) => {
            arena[id as usize] = node;
            id
        }
        None => {
            arena.push(node);
            (arena.len() - 1) as u32
        }
    }
}

/// An order-statistics B+tree of (score, member) elements: elements in linked leaves, inner nodes counting the
/// elements under each child, so that rank, access by rank and counting below a bound are O(log n) like lookups.
/// Nodes live in two arenas (leaves, inner nodes); all leaves are `height` levels below the root.
#[derive(Clone, Debug)]
struct OrderTree {
    leaves: Vec<Leaf>,
    inners: Vec<Inner>,
    free_leaves: Vec<u32>,
    free_inners: Vec<u32>,
    root: u32,
    height: usize,
    len: usize,
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
            leaves: Vec::new(),
            inners: Vec::new(),
            free_leaves: Vec::new(),
            free_inners: Vec::new(),
            root: NIL,
            height: 0,
            len: 0,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the node arenas and of the leaves' vectors at their capacity (not the heap bytes of long members).
    /// O(number of leaves), about a 32nd of the elements.
    fn structure_bytes(&self) -> usize {
        let arenas = self.leaves.capacity() * std::mem::size_of::<Leaf>()
            + self.inners.capacity() * std::mem::size_of::<Inner>()
            + (self.free_leaves.capacity() + self.free_inners.capacity()) * 4;
        let leaves: usize = self
            .leaves
            .iter()
            .map(|l| {
                l.scores.capacity() * std::mem::size_of::<f64>()
                    + l.members.capacity() * std::mem::size_of::<Key>()
            })
            .sum();
        arenas + leaves
    }

    /// Elements (leaf) or children (inner node) of the node `id` at `height`.
    fn node_len(&self, id: u32, height: usize) -> usize {
        if height == 0 {
            self.leaves[id as usize].len()
        } else {
            self.inners[id as usize].len
        }
    }

    /// Elements under the node `id` at `height`.
    fn weight(&self, id: u32, height: usize) -> u32 {
        if height == 0 {
            self.leaves[id as usize].len() as u32
        } else {
            self.inners[id as usize].weight()
        }
    }

    /// Adds an element, which must not be in the tree.
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        if self.root == NIL {
            // Room for just the one leaf: most sets stay that small.
            self.leaves.reserve_exact(1);
            self.root = alloc(&mut self.leaves, &mut self.free_leaves, Leaf::new());
        }
        if let Some(split) = self.insert_in(self.root, self.height, (score, member)) {
            let mut root = Inner::new();
            root.len = 2;
            root.children[..2].copy_from_slice(&[self.root, split.node]);
            root.counts[..2].copy_from_slice(&[self.len as u32 + 1 - split.count, split.count]);
            root.set_sep(0, split.sep);
            self.root = alloc(&mut self.inners, &mut self.free_inners, root);
            self.height += 1;
        }
        self.len += 1;
    }

    /// Adds `key` under the node `id` at `height`; returns the new right half when the node split.
    fn insert_in(&mut self, id: u32, height: usize, key: (f64, &[u8])) -> Option<Split> {
        if height == 0 {
            let leaf = &mut self.leaves[id as usize];
            let i = leaf.lower_bound(key);
            leaf.insert(i, key);
            return (leaf.len() > CAP).then(|| self.split_leaf(id));
        }
        let node = &mut self.inners[id as usize];
        let i = node.route(key);
        node.counts[i] += 1;
        let child = node.children[i];
        let split = self.insert_in(child, height - 1, key)?;
        let node = &mut self.inners[id as usize];
        node.counts[i] -= split.count;
        insert_at(&mut node.children, node.len, i + 1, split.node);
        insert_at(&mut node.counts, node.len, i + 1, split.count);
        let (score, member) = split.sep;
        insert_at(&mut node.sep_scores, node.len - 1, i, score);
        insert_at(&mut node.sep_members, node.len - 1, i, member);
        node.len += 1;
        (node.len > CAP).then(|| self.split_inner(id))
    }

    /// Moves the upper half of an overfull leaf to a new leaf linked after it.
    fn split_leaf(&mut self, id: u32) -> Split {
        let mut right = Leaf {
            scores: Vec::with_capacity(CAP + 1),
            members: Vec::with_capacity(CAP + 1),
            ..Leaf::new()
        };
        let left = &mut self.leaves[id as usize];
        left.move_back_to(&mut right, left.len() - left.len() / 2);
        (right.prev, right.next) = (id, left.next);
        let (sep, next, count) = (
            (right.scores[0], right.members[0].clone()),
            right.next,
            right.len(),
        );
        let node = alloc(&mut self.leaves, &mut self.free_leaves, right);
        self.leaves[id as usize].next = node;
        if next != NIL {
            self.leaves[next as usize].prev = node;
        }
        Split {
            sep,
            node,
            count: count as u32,
        }
    }

    /// Moves the upper half of an overfull inner node to a new one.
    fn split_inner(&mut self, id: u32) -> Split {
        let mut right = Inner::new();
        let left = &mut self.inners[id as usize];
        let sep = left.move_back_to(&mut right, left.len - left.len / 2, None);
        let count = right.weight();
        let node = alloc(&mut self.inners, &mut self.free_inners, right);
        Split { sep, node, count }
    }

    /// Moves an element to a new score.
    pub fn rescore(&mut self, score: f64, member: &[u8], new_score: f64) {
        self.remove(score, member);
        self.insert(new_score, member);
    }

    /// Removes an element; true when it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        if self.root == NIL || !self.remove_in(self.root, self.height, (score, member)) {
            return false;
        }
        self.len -= 1;
        if self.len == 0 {
            // Nothing is left: give the arenas back.
            *self = OrderTree::new();
        } else if self.height > 0 && self.inners[self.root as usize].len == 1 {
            let old = self.root;
            self.root = self.inners[old as usize].children[0];
            self.free_inners.push(old);
            self.height -= 1;
        }
        true
    }

    /// Removes `key` from under the node `id` at `height`, keeping every child there at least [`MIN`] long; true
    /// when it was there.
    fn remove_in(&mut self, id: u32, height: usize, key: (f64, &[u8])) -> bool {
        if height == 0 {
            let leaf = &mut self.leaves[id as usize];
            let i = leaf.lower_bound(key);
            if i == leaf.len() || compare(leaf.key(i), key) != Ordering::Equal {
                return false;
            }
            leaf.scores.remove(i);
            leaf.members.remove(i);
            return true;
        }
        let node = &self.inners[id as usize];
        let i = node.route(key);
        let child = node.children[i];
        if !self.remove_in(child, height - 1, key) {
            return false;
        }
        self.inners[id as usize].counts[i] -= 1;
        if self.node_len(child, height - 1) < MIN {
            self.rebalance(id, i, height - 1);
        }
        true
    }

    /// Refills the short child `i` of `parent` (its children are at `height`) from a neighbour: the two merge when
    /// they fit in one node, else they share evenly.
    fn rebalance(&mut self, parent: u32, i: usize, height: usize) {
        let p = &mut self.inners[parent as usize];
        let l = if i + 1 < p.len { i } else { i - 1 };
        let (a, b) = (p.children[l], p.children[l + 1]);
        let total = self.node_len(a, height) + self.node_len(b, height);
        let merge = total <= CAP;
        let target = if merge { total } else { total / 2 };
        let sep = if height == 0 {
            let (left, right) = pair_mut(&mut self.leaves, a, b);
            if left.len() < target {
                right.move_front_to(left, target - left.len());
            } else {
                left.move_back_to(right, left.len() - target);
            }
            if merge {
                left.next = right.next;
                let next = right.next;
                if next != NIL {
                    self.leaves[next as usize].prev = a;
                }
                None
            } else {
                Some((right.scores[0], right.members[0].clone()))
            }
        } else {
            let p = &mut self.inners[parent as usize];
            let sep = (p.sep_scores[l], std::mem::take(&mut p.sep_members[l]));
            let (left, right) = pair_mut(&mut self.inners, a, b);
            if left.len < target {
                right.move_front_to(left, target - left.len, sep)
            } else {
                Some(left.move_back_to(right, left.len - target, Some(sep)))
            }
        };
        match sep {
            Some(sep) => {
                let (wa, wb) = (self.weight(a, height), self.weight(b, height));
                let p = &mut self.inners[parent as usize];
                p.set_sep(l, sep);
                (p.counts[l], p.counts[l + 1]) = (wa, wb);
            }
            None => {
                let p = &mut self.inners[parent as usize];
                p.counts[l] += p.counts[l + 1];
                remove_at(&mut p.children, p.len, l + 1);
                remove_at(&mut p.counts, p.len, l + 1);
                remove_at(&mut p.sep_scores, p.len - 1, l);
                remove_at(&mut p.sep_members, p.len - 1, l);
                p.len -= 1;
                if height == 0 {
                    // Its vectors go back now; the slot is reused with new ones.
                    self.leaves[b as usize] = Leaf::default();
                    self.free_leaves.push(b);
                } else {
                    self.free_inners.push(b);
                }
            }
        }
    }

    /// How many elements the prefix for which `before` holds has. `before` must hold for a prefix of the order of all
    /// (score, member) pairs, not only of the elements, since a separator may be a removed element's: bounds on
    /// scores do, and so do bounds on members when all elements share a score (a separator then has that score too,
    /// as it lies between two elements).
    pub fn count_while(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        if self.root == NIL {
            return 0;
        }
        let (mut id, mut count) = (self.root, 0);
        for _ in 0..self.height {
            let node = &self.inners[id as usize];
            // Children left of the first separator that fails hold only elements below it.
            let i = partition_point(node.len - 1, |j| {
                before(node.sep_scores[j], &node.sep_members[j])
            });
            count += node.counts[..i].iter().map(|&c| c as usize).sum::<usize>();
            id = node.children[i];
        }
        let leaf = &self.leaves[id as usize];
        count + partition_point(leaf.len(), |j| before(leaf.scores[j], &leaf.members[j]))
    }

    /// The 0-based rank of an element (which must be in the tree).
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        self.count_while(|s, m| compare((s, m), (score, member)) == Ordering::Less)
    }

    /// The leaf and the index in it of the element at rank `i`, if any.
    fn locate(&self, mut i: usize) -> Option<(u32, usize)> {
        if i >= self.len {
            return None;
        }
        let mut id = self.root;
        for _ in 0..self.height {
            let node = &self.inners[id as usize];
            let mut c = 0;
            while i >= node.counts[c] as usize {
                i -= node.counts[c] as usize;
                c += 1;
            }
            id = node.children[c];
        }
        Some((id, i))
    }

    /// The element at rank `i`, if any.
    pub fn get(&self, i: usize) -> Option<(&[u8], f64)> {
        let (leaf, i) = self.locate(i)?;
        let (score, member) = self.leaves[leaf as usize].key(i);
        Some((member, score))
    }

    /// The elements in walk order from position `start` of that order: ascending, or descending when `rev` (position
    /// 0 is then the greatest element).
    pub fn iter_from(&self, start: usize, rev: bool) -> Iter<'_> {
        let remaining = self.len().saturating_sub(start);
        let rank = if rev {
            remaining.wrapping_sub(1)
        } else {
            start
        };
        let (leaf, pos) = self.locate(rank).unwrap_or((NIL, 0));
        Iter {
            tree: self,
            leaf,
            pos,
            rev,
            remaining,
        }
    }
}

/// A walk of an [`OrderTree`] along its leaves (see [`OrderTree::iter_from`]).
pub struct Iter<'a> {
    tree: &'a OrderTree,
    leaf: u32,
    pos: usize,
    rev: bool,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let leaves = &self.tree.leaves;
        let leaf = &leaves[self.leaf as usize];
        let item = (&*leaf.members[self.pos], leaf.scores[self.pos]);
        if !self.rev {
            self.pos += 1;
            if self.pos == leaf.len() {
                (self.leaf, self.pos) = (leaf.next, 0);
            }
        } else if self.pos > 0 {
            self.pos -= 1;
        } else if leaf.prev != NIL {
            self.leaf = leaf.prev;
            self.pos = leaves[self.leaf as usize].len() - 1;
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
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

    /// Bytes of the member table's and the order tree's own allocations, not the heap bytes of members longer than
    /// a slot holds (each member is stored twice, in both): MEMORY USAGE adds those.
    pub fn structure_bytes(&self) -> usize {
        self.scores.table_bytes() + self.order.structure_bytes()
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

    /// How many members, in ascending order, satisfy `before` (which must hold for a prefix of the order of all
    /// (score, member) pairs: a bound on scores, or on members when all members share a score).
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

    /// Checks every rank, every access by rank and the walks both ways from a third of the way in.
    fn assert_agrees(z: &ZSet, model: &[(f64, Vec<u8>)]) {
        assert_eq!(z.len(), model.len());
        for (i, (s, m)) in model.iter().enumerate() {
            assert_eq!(z.rank(m), Some((i, *s)));
            assert_eq!(z.get(i), Some((&m[..], *s)));
        }
        assert_eq!(z.get(model.len()), None);
        for bound in [-13.0, -0.25, 0.0, 3.5, 12.5] {
            let below = model.iter().filter(|(s, _)| *s < bound).count();
            assert_eq!(z.count_while(|s, _| s < bound), below);
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

    /// `steps` random inserts, score changes and removals over `members` members, then removal of what is left in
    /// random order, all checked against a sorted vector.
    fn random_changes_agree_with_a_sorted_vector(steps: usize, members: u32, seed: u64) {
        let mut z = ZSet::default();
        let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
        let mut rng = fastrand::Rng::with_seed(seed);
        for step in 0..steps {
            let member = format!("m{}", rng.u32(..members)).into_bytes();
            let score = rng.i32(-50..50) as f64 / 4.0;
            model.retain(|(_, m)| *m != member);
            if rng.u8(..3) > 0 {
                z.insert(&member, score);
                model.push((score, member));
            } else {
                z.remove(&member);
            }
            model.sort_by(|a, b| compare((a.0, &a.1), (b.0, &b.1)));
            assert_eq!(z.len(), model.len());
            if step % 97 == 0 {
                // Element counts stay right through every kind of change, or ranks drift.
                assert_agrees(&z, &model);
            }
        }
        assert_agrees(&z, &model);
        rng.shuffle(&mut model);
        while let Some((s, m)) = model.pop() {
            assert_eq!(z.remove(&m), Some(s));
            if model.len() % 89 == 0 {
                model.sort_by(|a, b| compare((a.0, &a.1), (b.0, &b.1)));
                assert_agrees(&z, &model);
                rng.shuffle(&mut model);
            }
        }
        assert!(z.is_empty());
        assert!(z.order.leaves.is_empty() && z.order.inners.is_empty());
    }

    #[test]
    fn ranks_and_walks_agree_with_a_sorted_vector_under_random_changes() {
        random_changes_agree_with_a_sorted_vector(4000, 300, 7);
        // Enough members for two levels of inner nodes: splits, merges and sharing at each level.
        random_changes_agree_with_a_sorted_vector(20_000, 5000, 11);
    }

    #[test]
    fn member_bounds_count_right_when_all_scores_are_equal_after_removals() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut z = ZSet::default();
        let mut kept = Vec::new();
        for i in 0..5000 {
            z.insert(format!("m{i:04}").as_bytes(), 1.0);
        }
        // Elements that separated nodes go, and with them some nodes.
        for i in 0..5000 {
            let member = format!("m{i:04}").into_bytes();
            if rng.u8(..3) == 0 {
                kept.push(member);
            } else {
                z.remove(&member);
            }
        }
        for i in (0..5000).step_by(37) {
            let bound = format!("m{i:04}").into_bytes();
            let below = kept.iter().filter(|m| **m < bound).count();
            assert_eq!(z.count_while(|_, m| m < &bound[..]), below);
        }
    }

    /// Fills a set in random order, then pops from one end, checking every pop and, now and then, everything.
    fn popping_from_one_end_keeps_the_order(greatest: bool) {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut model: Vec<(f64, Vec<u8>)> = (0..20_000)
            .map(|i| ((i % 7) as f64, format!("m{i:05}").into_bytes()))
            .collect();
        rng.shuffle(&mut model);
        let mut z = ZSet::default();
        for (s, m) in &model {
            z.insert(m, *s);
        }
        model.sort_by(|a, b| compare((a.0, &a.1), (b.0, &b.1)));
        while !model.is_empty() {
            let (s, m) = if greatest {
                model.pop().unwrap_or_default()
            } else {
                model.remove(0)
            };
            let at = if greatest { model.len() } else { 0 };
            assert_eq!(z.get(at), Some((&m[..], s)));
            assert_eq!(z.remove(&m), Some(s));
            if model.len() % 1000 == 0 {
                assert_agrees(&z, &model);
            }
        }
        assert!(z.is_empty());
    }

    #[test]
    fn popping_the_least_member_repeatedly_keeps_the_order() {
        popping_from_one_end_keeps_the_order(false);
    }

    #[test]
    fn popping_the_greatest_member_repeatedly_keeps_the_order() {
        // The last child of each node runs short, so it takes from its left neighbour.
        popping_from_one_end_keeps_the_order(true);
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
