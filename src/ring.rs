//! The consistent-hash ring: pure placement math, no I/O.
//!
//! Two placement modes share one lookup:
//! - **Default**: each node owns `points_per_weight x weight` points on a 32-bit circle (640 for backends,
//!   [`SHARD_POINTS`] for the server's shards), placed by a well-mixed hash of `"<node-name>-<i>"`. A key's position
//!   is the CRC-32 (IEEE) of the key.
//! - **Ketama** (twemproxy-compatible, `--distribution ketama --hash fnv1a_64`): the continuum of twemproxy's
//!   `nc_ketama.c`, point for point: each live node gets `floor(weight / total_weight x 160 / 4 x node_count) x 4`
//!   points, four from each MD5 digest of `"<name>-<i>"` (little-endian 32-bit words), and a key's position is the
//!   configured twemproxy hash function of the key. A twemproxy user can switch without moving keys.
//!
//! In both modes the hashed part of a key is its hash tag (the part inside the first `{...}` when non-empty, as Redis
//! Cluster and twemproxy's `hash_tag: "{}"` do), and its owner is the first point clockwise from its position (binary
//! search, wrapping to the first point). Adding or removing a node moves only the keys on the arcs it gains or loses,
//! about 1/N of them. At equal positions the point of the node listed first owns the arc (twemproxy leaves that to
//! `qsort`); the other stays, owning nothing, so each node has exactly its number of points.
//!
//! The server uses the ring to place keys on its in-memory shards and the proxy to place them on backends; both call
//! the same code, so placement is identical by construction.

use md5::{Digest, Md5};

/// Points a node gets per unit of weight in the default mode. Measured over 1M keys: 160 points (ketama's count) left
/// the busiest of 3 or 10 nodes 12-17% above its share depending on the node names; 640 keeps every node within 9%.
pub const POINTS_PER_WEIGHT: u32 = 640;

/// Points per shard on the server's ring: its nodes are many equal shards, where balance only spreads lock traffic,
/// and every command looks its keys up. 160 (DESIGN.md's count) keeps the 128-shard ring at 20,480 points, as small
/// as a 32-node ring at 640; MSET of 10 keys and MULTI+5+EXEC ran 5-10 % faster than with 640.
pub const SHARD_POINTS: u32 = 160;

/// Points per server of equal weight in ketama mode (twemproxy's `KETAMA_POINTS_PER_SERVER`).
pub const KETAMA_POINTS_PER_SERVER: u32 = 160;

/// twemproxy's `KETAMA_MAX_HOSTLEN`: its point names are formatted into a buffer of this size (so cut at 85 bytes).
const KETAMA_MAX_HOSTLEN: usize = 86;

/// The key hash functions of twemproxy's hashkit that ringkv reproduces, by their twemproxy names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyHash {
    /// Bob Jenkins' one-at-a-time.
    OneAtATime,
    /// First 32-bit little-endian word of the MD5 digest.
    Md5,
    /// libmemcached's CRC-32: bits 16..30 of the IEEE CRC.
    Crc32,
    /// The IEEE CRC-32 (the default mode's key hash).
    Crc32a,
    /// FNV-1 64-bit, truncated to 32 bits.
    Fnv1_64,
    /// twemproxy's "FNV-1a 64": FNV-1a computed in 32 bits with the 64-bit constants truncated.
    Fnv1a64,
    /// FNV-1 32-bit.
    Fnv1_32,
    /// FNV-1a 32-bit.
    Fnv1a32,
}

impl KeyHash {
    /// Every supported hash, for parsing and help text.
    pub const ALL: [KeyHash; 8] = [
        KeyHash::OneAtATime,
        KeyHash::Md5,
        KeyHash::Crc32,
        KeyHash::Crc32a,
        KeyHash::Fnv1_64,
        KeyHash::Fnv1a64,
        KeyHash::Fnv1_32,
        KeyHash::Fnv1a32,
    ];

    /// The twemproxy configuration name (`fnv1a_64`, `crc32a`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyHash::OneAtATime => "one_at_a_time",
            KeyHash::Md5 => "md5",
            KeyHash::Crc32 => "crc32",
            KeyHash::Crc32a => "crc32a",
            KeyHash::Fnv1_64 => "fnv1_64",
            KeyHash::Fnv1a64 => "fnv1a_64",
            KeyHash::Fnv1_32 => "fnv1_32",
            KeyHash::Fnv1a32 => "fnv1a_32",
        }
    }

    /// The hash named `name` (twemproxy spelling, case-insensitive).
    pub fn from_name(name: &str) -> Option<KeyHash> {
        Self::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// Hashes `key` exactly as twemproxy's hashkit does on x86-64, where `char` is signed: bytes >= 0x80 are
    /// sign-extended by the functions that read them through `const char *` (which is what the `as i8` casts mimic).
    pub fn hash(self, key: &[u8]) -> u32 {
        const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
        const FNV_64_PRIME: u64 = 0x0100_0000_01b3;
        const FNV_32_INIT: u32 = 2_166_136_261;
        const FNV_32_PRIME: u32 = 16_777_619;
        let signed = |b: u8| b as i8 as i64;
        match self {
            KeyHash::OneAtATime => {
                let mut v: u32 = 0;
                for &b in key {
                    v = v.wrapping_add(signed(b) as u32);
                    v = v.wrapping_add(v << 10);
                    v ^= v >> 6;
                }
                v = v.wrapping_add(v << 3);
                v ^= v >> 11;
                v.wrapping_add(v << 15)
            }
            KeyHash::Md5 => md5_word(key),
            KeyHash::Crc32 => (crc32fast::hash(key) >> 16) & 0x7fff,
            KeyHash::Crc32a => crc32fast::hash(key),
            KeyHash::Fnv1_64 => {
                let mut h = FNV_64_INIT;
                for &b in key {
                    h = h.wrapping_mul(FNV_64_PRIME);
                    h ^= signed(b) as u64;
                }
                h as u32
            }
            KeyHash::Fnv1a64 => {
                let mut h = FNV_64_INIT as u32;
                for &b in key {
                    h ^= signed(b) as u32;
                    h = h.wrapping_mul(FNV_64_PRIME as u32);
                }
                h
            }
            KeyHash::Fnv1_32 => {
                let mut h = FNV_32_INIT;
                for &b in key {
                    h = h.wrapping_mul(FNV_32_PRIME);
                    h ^= signed(b) as u32;
                }
                h
            }
            KeyHash::Fnv1a32 => {
                let mut h = FNV_32_INIT;
                for &b in key {
                    h ^= signed(b) as u32;
                    h = h.wrapping_mul(FNV_32_PRIME);
                }
                h
            }
        }
    }
}

/// The first little-endian 32-bit word of the MD5 digest of `data` (twemproxy's `hash_md5`).
fn md5_word(data: &[u8]) -> u32 {
    let digest = Md5::digest(data);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// How points and key positions are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// ringkv's own: mixed FNV points, CRC-32 key positions.
    Default,
    /// twemproxy's ketama continuum with this key hash.
    Ketama(KeyHash),
}

impl Distribution {
    /// The key hash's name, for RING INFO.
    pub fn key_hash_name(self) -> &'static str {
        match self {
            Distribution::Default => "crc32-ieee",
            Distribution::Ketama(h) => h.name(),
        }
    }
    /// The point hash's name, for RING INFO.
    pub fn point_hash_name(self) -> &'static str {
        match self {
            Distribution::Default => "fnv1a64-fmix64",
            Distribution::Ketama(_) => "ketama-md5",
        }
    }
    /// The mode's name (`default` or `ketama`).
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Default => "default",
            Distribution::Ketama(_) => "ketama",
        }
    }
}

/// One member of the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The name its points are hashed from (a backend address or a shard name).
    pub name: String,
    /// Relative share of the ring; 0 removes the node from placement.
    pub weight: u32,
}

/// A point on the circle and the node (index into [`Ring::nodes`]) that owns the arc ending there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// Position on the circle.
    pub pos: u32,
    /// Index of the owning node.
    pub node: u32,
}

/// The circle is cut into `2^BUCKET_BITS` equal slices to find a position's neighbourhood in O(1).
const BUCKET_BITS: u32 = 12;

/// The ring: nodes, their sorted points, and the distribution that placed them.
#[derive(Clone, Debug)]
pub struct Ring {
    nodes: Vec<Node>,
    points: Vec<Point>,
    dist: Distribution,
    /// Points per unit of weight in the default mode.
    points_per_weight: u32,
    /// For each slice of the circle, the index of the first point at or after the slice's start (and `points.len()`
    /// at the end): a lookup searches only the few points of its own slice instead of the whole ring.
    slice_start: Box<[u32]>,
}

impl Ring {
    /// Builds the default-mode ring for `nodes`.
    pub fn new(nodes: Vec<Node>) -> Self {
        Self::with_distribution(nodes, Distribution::Default)
    }

    /// Builds the ring for `nodes` with `dist`. Ties between equal positions go to the node listed first, so the
    /// result never depends on anything but the node list.
    pub fn with_distribution(nodes: Vec<Node>, dist: Distribution) -> Self {
        Self::build(nodes, dist, POINTS_PER_WEIGHT)
    }

    /// The server's ring over its shards: the default mode with [`SHARD_POINTS`] points per shard.
    pub fn for_shards(nodes: Vec<Node>) -> Self {
        Self::build(nodes, Distribution::Default, SHARD_POINTS)
    }

    fn build(nodes: Vec<Node>, dist: Distribution, points_per_weight: u32) -> Self {
        let mut points = Vec::new();
        match dist {
            Distribution::Default => {
                for (idx, node) in nodes.iter().enumerate() {
                    for i in 0..points_per_weight * node.weight {
                        points.push(Point {
                            pos: point_hash(&node.name, i),
                            node: idx as u32,
                        });
                    }
                }
            }
            Distribution::Ketama(_) => ketama_points(&nodes, &mut points),
        }
        points.sort_unstable_by_key(|p| (p.pos, p.node));
        let slice_start = (0..=1u64 << BUCKET_BITS)
            .map(|b| {
                let start = b << (32 - BUCKET_BITS);
                points.partition_point(|p| (p.pos as u64) < start) as u32
            })
            .collect();
        Ring {
            nodes,
            points,
            dist,
            points_per_weight,
            slice_start,
        }
    }

    /// The same distribution over another node list (RING ADD/REMOVE/WEIGHT, RING DIFF).
    pub fn rebuilt(&self, nodes: Vec<Node>) -> Ring {
        Ring::build(nodes, self.dist, self.points_per_weight)
    }

    /// Points per unit of weight (RING INFO): ketama's are twemproxy's per server of equal weight.
    pub fn points_per_weight(&self) -> u32 {
        match self.dist {
            Distribution::Default => self.points_per_weight,
            Distribution::Ketama(_) => KETAMA_POINTS_PER_SERVER,
        }
    }

    /// How this ring places points and keys.
    pub fn distribution(&self) -> Distribution {
        self.dist
    }

    /// A key's position on this ring: the distribution's key hash of its hash tag.
    pub fn position(&self, key: &[u8]) -> u32 {
        match self.dist {
            Distribution::Default => key_position(key),
            // twemproxy's server_pool_hash: an empty key hashes to 0.
            Distribution::Ketama(h) => match hash_tag(key) {
                [] => 0,
                k => h.hash(k),
            },
        }
    }

    /// Number of points each node has, by node index.
    pub fn point_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.nodes.len()];
        for p in &self.points {
            counts[p.node as usize] += 1;
        }
        counts
    }

    /// The nodes, in the order given.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// All points, sorted by position.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Index of the node that owns ring position `pos` (ketama_dispatch), or `None` on a ring without points.
    pub fn try_owner_of(&self, pos: u32) -> Option<usize> {
        let slice = (pos >> (32 - BUCKET_BITS)) as usize;
        let (lo, hi) = (
            self.slice_start[slice] as usize,
            self.slice_start[slice + 1] as usize,
        );
        // The first point at or after `pos` is in this slice, or else it is the first one after it (`hi`).
        let i = lo + self.points[lo..hi].partition_point(|p| p.pos < pos);
        let point = self.points.get(i).or(self.points.first())?;
        Some(point.node as usize)
    }

    /// Index of the node that owns ring position `pos`. Panics on a ring without points.
    pub fn owner_of(&self, pos: u32) -> usize {
        self.try_owner_of(pos).expect("a ring with points")
    }

    /// Index of the node that owns `key`. Panics on a ring without points.
    pub fn locate(&self, key: &[u8]) -> usize {
        self.owner_of(self.position(key))
    }

    /// Fraction of the circle each node owns, by node index.
    pub fn shares(&self) -> Vec<f64> {
        let mut owned = vec![0u64; self.nodes.len()];
        let Some(last) = self.points.last() else {
            return vec![0.0; self.nodes.len()];
        };
        let mut prev = last.pos;
        for (i, p) in self.points.iter().enumerate() {
            // The arc (prev, p.pos] belongs to p; the first point's arc wraps past zero.
            let len = if i == 0 {
                (u32::MAX - prev) as u64 + p.pos as u64 + 1
            } else {
                (p.pos - prev) as u64
            };
            owned[p.node as usize] += len;
            prev = p.pos;
        }
        owned
            .iter()
            .map(|&o| o as f64 / (1u64 << 32) as f64)
            .collect()
    }
}

/// One flow of ring share between two rings: the arcs `from` owned before and `to` owns after.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    /// Owner before.
    pub from: String,
    /// Owner after.
    pub to: String,
    /// Fraction of the whole circle.
    pub share: f64,
}

/// What changes hands between `before` and `after` (matched by node name), largest flows first. Empty when either
/// ring has no points.
pub fn diff(before: &Ring, after: &Ring) -> Vec<Transfer> {
    if before.points.is_empty() || after.points.is_empty() {
        return Vec::new();
    }
    let mut bounds: Vec<u32> = before
        .points
        .iter()
        .chain(&after.points)
        .map(|p| p.pos)
        .collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut flows: Vec<Transfer> = Vec::new();
    let mut prev = *bounds.last().expect("non-empty");
    for (i, &pos) in bounds.iter().enumerate() {
        // No point of either ring lies strictly inside (prev, pos], so each ring has one owner for the whole arc.
        let len = if i == 0 {
            (u32::MAX - prev) as u64 + pos as u64 + 1
        } else {
            (pos - prev) as u64
        };
        prev = pos;
        let from = &before.nodes[before.owner_of(pos)].name;
        let to = &after.nodes[after.owner_of(pos)].name;
        if from == to {
            continue;
        }
        let share = len as f64 / (1u64 << 32) as f64;
        match flows.iter_mut().find(|t| &t.from == from && &t.to == to) {
            Some(t) => t.share += share,
            None => flows.push(Transfer {
                from: from.clone(),
                to: to.clone(),
                share,
            }),
        }
    }
    flows.sort_by(|a, b| b.share.total_cmp(&a.share));
    flows
}

/// The ring name of a backend at `addr` (`host:port`) under `dist`: the address itself, except that ketama drops the
/// port when it is 11211, as twemproxy does for libmemcached compatibility.
pub fn node_name(addr: &str, dist: Distribution) -> String {
    match (dist, addr.strip_suffix(":11211")) {
        (Distribution::Ketama(_), Some(host)) => host.to_string(),
        _ => addr.to_string(),
    }
}

/// The part of `key` that is hashed: the content of the first `{...}` if it is non-empty, else the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// A key's position on the ring: CRC-32 (IEEE) of its hash tag.
pub fn key_position(key: &[u8]) -> u32 {
    crc32fast::hash(hash_tag(key))
}

/// twemproxy's `ketama_update`: the live nodes' points, with its float arithmetic reproduced (the `+ 0.0000000001` is
/// a double literal, so the product is widened to double, then narrowed back to float before `floorf`).
fn ketama_points(nodes: &[Node], points: &mut Vec<Point>) {
    let live = nodes.iter().filter(|n| n.weight > 0).count();
    let total: u32 = nodes.iter().map(|n| n.weight).sum();
    if total == 0 {
        return;
    }
    for (idx, node) in nodes.iter().enumerate() {
        let pct = node.weight as f32 / total as f32;
        let quarter =
            (pct * KETAMA_POINTS_PER_SERVER as f32 / 4.0 * live as f32) as f64 + 0.000_000_000_1;
        let per_node = (quarter as f32).floor() as u32 * 4;
        for i in 0..per_node / 4 {
            let mut host = format!("{}-{}", node.name, i).into_bytes();
            host.truncate(KETAMA_MAX_HOSTLEN - 1);
            let digest = Md5::digest(&host);
            for word in digest.chunks_exact(4) {
                points.push(Point {
                    pos: u32::from_le_bytes([word[0], word[1], word[2], word[3]]),
                    node: idx as u32,
                });
            }
        }
    }
}

/// Position of point `i` of node `name`: FNV-1a 64 of `"<name>-<i>"`, finished with MurmurHash3's fmix64 so that
/// neighbouring names and indexes land far apart, folded to 32 bits.
fn point_hash(name: &str, i: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(name.as_bytes());
    feed(b"-");
    feed(itoa::Buffer::new().format(i).as_bytes());
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's 256 shards have two points at one position: both stay, so every shard has its 160 points (the
    /// first listed owns the arc), as RING INFO and RING NODES report.
    #[test]
    fn equal_positions_keep_both_points_and_the_first_node_owns_the_arc() {
        let shards = (0..256).map(|i| Node {
            name: format!("shard-{i}"),
            weight: 1,
        });
        let ring = Ring::for_shards(shards.collect());
        assert!(ring
            .point_counts()
            .iter()
            .all(|&n| n == SHARD_POINTS as usize));
        let points = ring.points();
        let tie = points
            .windows(2)
            .find(|w| w[0].pos == w[1].pos)
            .expect("a collision among 40,960 points");
        assert!(tie[0].node < tie[1].node);
        assert_eq!(ring.owner_of(tie[0].pos), tie[0].node as usize);
    }

    #[test]
    fn slice_lookup_agrees_with_a_search_of_the_whole_ring() {
        let ketama = Distribution::Ketama(KeyHash::ALL[0]);
        for ring in [
            ring(3, Distribution::Default),
            ring(32, Distribution::Default),
            ring(5, ketama),
            Ring::new(Vec::new()),
        ] {
            for i in 0..200_000u64 {
                let pos = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32;
                let whole = ring.points().partition_point(|p| p.pos < pos);
                let expect = ring
                    .points()
                    .get(whole)
                    .or(ring.points().first())
                    .map(|p| p.node as usize);
                assert_eq!(ring.try_owner_of(pos), expect, "position {pos}");
            }
            for pos in [0, 1, u32::MAX, u32::MAX - 1] {
                let whole = ring.points().partition_point(|p| p.pos < pos);
                let expect = ring
                    .points()
                    .get(whole)
                    .or(ring.points().first())
                    .map(|p| p.node as usize);
                assert_eq!(ring.try_owner_of(pos), expect, "position {pos}");
            }
        }
    }

    const KETAMA: Distribution = Distribution::Ketama(KeyHash::Fnv1a64);

    fn ring(n: usize, dist: Distribution) -> Ring {
        Ring::with_distribution(
            (0..n)
                .map(|i| Node {
                    name: format!("10.0.0.{i}:6379"),
                    weight: 1,
                })
                .collect(),
            dist,
        )
    }

    fn spread(ring: &Ring, keys: u32) -> Vec<u32> {
        let mut counts = vec![0u32; ring.nodes().len()];
        for k in 0..keys {
            counts[ring.locate(format!("key:{k}").as_bytes())] += 1;
        }
        counts
    }

    /// Largest relative deviation of a node's key count from the mean.
    fn worst_imbalance(ring: &Ring, keys: u32) -> f64 {
        let counts = spread(ring, keys);
        let mean = keys as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&c| (c as f64 / mean - 1.0).abs())
            .fold(0.0, f64::max)
    }

    /// Keys (of `keys`) whose owner changes from `before` to `after`, over the ideal share 1/|after|.
    fn moved_over_ideal(before: &Ring, after: &Ring, keys: u32) -> f64 {
        let moved = (0..keys)
            .filter(|k| {
                let key = format!("key:{k}");
                before.nodes()[before.locate(key.as_bytes())]
                    != after.nodes()[after.locate(key.as_bytes())]
            })
            .count();
        moved as f64 / (keys as f64 / after.nodes().len() as f64)
    }

    #[test]
    fn hash_tags_follow_redis_cluster_rules() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"plain"), b"plain");
    }

    #[test]
    fn key_hashes_match_published_vectors_and_twemproxy_quirks() {
        assert_eq!(KeyHash::Fnv1a32.hash(b""), 0x811c_9dc5);
        assert_eq!(KeyHash::Fnv1a32.hash(b"foobar"), 0xbf9c_f968);
        assert_eq!(KeyHash::Fnv1_32.hash(b"foobar"), 0x31f0_b262);
        assert_eq!(KeyHash::Fnv1_64.hash(b"foobar"), 0xa4dd_a9c2);
        assert_eq!(KeyHash::Crc32a.hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(KeyHash::Crc32.hash(b"123456789"), 0x4bf4);
        assert_eq!(KeyHash::Md5.hash(b""), 0xd98c_1dd4);
        // twemproxy's fnv1a_64 runs FNV-1a in 32 bits with the truncated 64-bit constants.
        let mut h = 0x8422_2325u32;
        for b in *b"foobar" {
            h = (h ^ b as u32).wrapping_mul(0x1b3);
        }
        assert_eq!(KeyHash::Fnv1a64.hash(b"foobar"), h);
        // A signed `char` sign-extends bytes >= 0x80 before they are mixed in.
        let high = (0x8422_2325u32 ^ 0xffff_ff80).wrapping_mul(0x1b3);
        assert_eq!(KeyHash::Fnv1a64.hash(&[0x80]), high);
        assert_eq!(KeyHash::from_name("FNV1A_64"), Some(KeyHash::Fnv1a64));
    }

    #[test]
    fn ketama_gives_each_equal_node_160_points_from_md5_of_name_dash_index() {
        let r = ring(3, KETAMA);
        assert_eq!(r.point_counts(), vec![160, 160, 160]);
        let digest = Md5::digest(b"10.0.0.1:6379-0");
        let first = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        assert!(r.points().iter().any(|p| p.pos == first && p.node == 1));
    }

    #[test]
    fn ketama_points_follow_weight_over_total_weight() {
        let nodes = vec![
            Node {
                name: "a:1".into(),
                weight: 1,
            },
            Node {
                name: "b:1".into(),
                weight: 3,
            },
        ];
        // floor(1/4 * 40 * 2) * 4 = 80 and floor(3/4 * 40 * 2) * 4 = 240.
        let r = Ring::with_distribution(nodes, KETAMA);
        assert_eq!(r.point_counts(), vec![80, 240]);
    }

    #[test]
    fn default_mode_keeps_three_and_ten_equal_nodes_within_ten_percent() {
        for n in [3, 10] {
            let worst = worst_imbalance(&ring(n, Distribution::Default), 1_000_000);
            assert!(worst < 0.10, "{n} nodes: busiest node off by {worst:.3}");
        }
    }

    /// Ketama's balance is twemproxy's (160 points): measured 7-10% off for these names, up to 18% for others. What
    /// ringkv owns is that keys follow the arcs (the key hash is uniform), so the key spread equals the ring's shares.
    #[test]
    fn ketama_keys_follow_the_arc_shares_of_three_and_ten_nodes() {
        for n in [3, 10] {
            let r = ring(n, KETAMA);
            let keys = 1_000_000;
            let counts = spread(&r, keys);
            for (count, share) in counts.iter().zip(r.shares()) {
                let key_share = *count as f64 / keys as f64;
                assert!(
                    (key_share - share).abs() < 0.01,
                    "{n} nodes: keys {key_share:.4} vs arc {share:.4}"
                );
            }
            let worst = worst_imbalance(&r, keys);
            assert!(worst < 0.11, "{n} nodes: busiest node off by {worst:.3}");
        }
    }

    #[test]
    fn adding_an_eleventh_node_moves_at_most_1_1_times_its_ideal_share() {
        for dist in [Distribution::Default, KETAMA] {
            let ratio = moved_over_ideal(&ring(10, dist), &ring(11, dist), 1_000_000);
            assert!(ratio <= 1.1, "{dist:?}: moved {ratio:.3} x ideal");
        }
    }

    #[test]
    fn diff_of_adding_a_node_only_flows_to_it_and_matches_its_share() {
        let (before, after) = (ring(3, KETAMA), ring(4, KETAMA));
        let flows = diff(&before, &after);
        assert!(flows.iter().all(|t| t.to == "10.0.0.3:6379"));
        let moved: f64 = flows.iter().map(|t| t.share).sum();
        assert!((moved - after.shares()[3]).abs() < 1e-9);
    }

    #[test]
    fn shares_add_up_to_the_whole_circle() {
        for dist in [Distribution::Default, KETAMA] {
            let total: f64 = ring(3, dist).shares().iter().sum();
            assert!((total - 1.0).abs() < 1e-9);
        }
    }
}
