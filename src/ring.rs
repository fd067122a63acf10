//! The consistent-hash ring: pure placement math, no I/O.
//!
//! Each node owns `POINTS_PER_WEIGHT x weight` points on a 32-bit circle, placed by a well-mixed hash of
//! `"<node-name>-<i>"`. A key's position is the CRC-32 (IEEE) of the key, or of its hash tag (the part inside the first
//! `{...}` when non-empty, as Redis Cluster does), and its owner is the first point clockwise from it. Adding or removing
//! a node therefore moves only the keys on the arcs that node gains or loses, about 1/N of them.
//!
//! The server uses the ring to place keys on its in-memory shards and the proxy to place them on backends; both call
//! the same code, so placement is identical by construction.

/// Points a node gets per unit of weight (ketama's 160).
pub const POINTS_PER_WEIGHT: u32 = 160;

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

/// The ring: nodes and their sorted points.
#[derive(Clone, Debug)]
pub struct Ring {
    nodes: Vec<Node>,
    points: Vec<Point>,
}

impl Ring {
    /// Builds the ring for `nodes`. Ties between equal positions go to the node listed first, so the result never
    /// depends on anything but the node list.
    pub fn new(nodes: Vec<Node>) -> Self {
        let mut points = Vec::new();
        for (idx, node) in nodes.iter().enumerate() {
            for i in 0..POINTS_PER_WEIGHT * node.weight {
                points.push(Point {
                    pos: point_hash(&node.name, i),
                    node: idx as u32,
                });
            }
        }
        points.sort_unstable_by_key(|p| (p.pos, p.node));
        points.dedup_by_key(|p| p.pos);
        Ring { nodes, points }
    }

    /// The nodes, in the order given.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// All points, sorted by position.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Index of the node that owns ring position `pos`. Panics on an empty ring.
    pub fn owner_of(&self, pos: u32) -> usize {
        let i = self.points.partition_point(|p| p.pos < pos);
        let point = self.points.get(i).unwrap_or(&self.points[0]);
        point.node as usize
    }

    /// Index of the node that owns `key`.
    pub fn locate(&self, key: &[u8]) -> usize {
        self.owner_of(key_position(key))
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

    fn ring(n: usize) -> Ring {
        Ring::new(
            (0..n)
                .map(|i| Node {
                    name: format!("10.0.0.{i}:6379"),
                    weight: 1,
                })
                .collect(),
        )
    }

    fn spread(ring: &Ring, keys: u32) -> Vec<u32> {
        let mut counts = vec![0u32; ring.nodes().len()];
        for k in 0..keys {
            counts[ring.locate(format!("key:{k}").as_bytes())] += 1;
        }
        counts
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
    fn ten_equal_nodes_each_hold_about_a_tenth_of_the_keys() {
        let counts = spread(&ring(10), 200_000);
        let mean = 20_000.0;
        for c in counts {
            assert!(
                (c as f64 / mean - 1.0).abs() < 0.15,
                "node holds {c} keys, mean {mean}"
            );
        }
    }

    #[test]
    fn adding_a_node_moves_only_about_its_share() {
        let (before, after) = (ring(10), ring(11));
        let moved = (0..100_000u32)
            .filter(|k| {
                let key = format!("key:{k}");
                before.nodes()[before.locate(key.as_bytes())]
                    != after.nodes()[after.locate(key.as_bytes())]
            })
            .count();
        let ideal = 100_000.0 / 11.0;
        assert!(
            (moved as f64) < ideal * 1.15,
            "moved {moved}, ideal {ideal}"
        );
    }

    #[test]
    fn shares_add_up_to_the_whole_circle() {
        let total: f64 = ring(3).shares().iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}
