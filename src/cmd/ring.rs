//! RING: inspect the consistent-hash ring (both roles) and change it (proxy role only).
//!
//! The reply logic is shared: the server role describes its in-memory shards (`shard-0`, `shard-1`, ...) and the proxy
//! role its backends, each through a [`RingView`]. Both roles resolve the command through the same spec table, so
//! arity errors, `RING HELP` and `unknown subcommand` read the same. Replies are arrays of pairs in RESP2 and maps in
//! RESP3. Changing the ring (ADD/REMOVE/WEIGHT) never migrates keys: keys on moved arcs stay where they were written
//! and become unreachable through the ring until moved by hand.

use super::args::{self, is};
use super::{flag::*, reply_help, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::protocol::{Argv, Reply};
use crate::ring::{self, Node, Ring};

pub(super) const COMMANDS: &[CommandSpec] =
    &[CommandSpec::container("ring", LOADING | STALE, SUBCOMMANDS)];

const SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("info", 2, LOADING | STALE, Keys::None, server_ring),
    // NODES counts each shard's keys, so it holds every shard.
    CommandSpec::new(
        "nodes",
        2,
        LOADING | STALE | ALL_SHARDS,
        Keys::None,
        server_ring,
    ),
    CommandSpec::new("locate", -3, LOADING | STALE, Keys::None, server_ring),
    CommandSpec::new("hash", 3, LOADING | STALE | FAST, Keys::None, server_ring),
    CommandSpec::new("points", -2, LOADING | STALE, Keys::None, server_ring),
    CommandSpec::new("diff", -4, LOADING | STALE, Keys::None, server_ring),
    CommandSpec::new("add", -3, ADMIN, Keys::None, server_ring),
    CommandSpec::new("remove", 3, ADMIN, Keys::None, server_ring),
    CommandSpec::new("weight", 4, ADMIN, Keys::None, server_ring),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, server_ring),
];

const HELP: &[&str] = &[
    "INFO",
    "    Role, hash functions, points per weight, node and point counts, epoch, migration state.",
    "NODES",
    "    Per node: name, address, weight, points, share of the ring, status, keys (when known).",
    "LOCATE <key> [<key> ...]",
    "    Per key: its ring position and owner node.",
    "HASH <key>",
    "    The key's ring position (hash-tag aware).",
    "POINTS [<node>]",
    "    The points (position, node), sorted, optionally of one node.",
    "DIFF ADD <addr> [WEIGHT <w>] | DIFF REMOVE <addr>",
    "    What share of the ring would move, from which node to which.",
    "ADD <addr> [WEIGHT <w>] | REMOVE <addr> | WEIGHT <addr> <w>",
    "    Proxy only: change the ring live. Keys on moved ranges are not migrated.",
];

/// What a role knows about one node beyond the ring itself.
pub struct NodeState {
    /// Where it is (`host:port`, or `local` for a shard).
    pub address: String,
    /// `up`, `down`, `ejected`...
    pub status: String,
    /// Its key count, when known.
    pub keys: Option<u64>,
}

/// The ring as one role sees it.
pub struct RingView<'a> {
    /// `server` or `proxy`.
    pub role: &'static str,
    /// The ring.
    pub ring: &'a Ring,
    /// Per-node state, by node index.
    pub nodes: Vec<NodeState>,
    /// Increments on every live change of the ring.
    pub epoch: u64,
}

/// A requested change of the ring (RING ADD/REMOVE/WEIGHT, or the same after DIFF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Add a node at this address with this weight.
    Add(String, u32),
    /// Remove the node at this address.
    Remove(String),
    /// Set the weight of the node at this address.
    Weight(String, u32),
}

impl Change {
    /// Parses `ADD addr [WEIGHT w]`, `REMOVE addr` or `WEIGHT addr w` starting at `argv[at]`.
    pub fn parse(argv: Argv<'_>, at: usize) -> Result<Change, CmdError> {
        let text = |i: usize| String::from_utf8_lossy(argv.get(i)).into_owned();
        let rest = argv.len() - at;
        let verb = argv.get(at);
        if is(verb, "ADD") && rest == 2 {
            Ok(Change::Add(text(at + 1), 1))
        } else if is(verb, "ADD") && rest == 4 && is(argv.get(at + 2), "WEIGHT") {
            Ok(Change::Add(text(at + 1), weight(argv.get(at + 3))?))
        } else if is(verb, "REMOVE") && rest == 2 {
            Ok(Change::Remove(text(at + 1)))
        } else if is(verb, "WEIGHT") && rest == 3 {
            Ok(Change::Weight(text(at + 1), weight(argv.get(at + 2))?))
        } else {
            Err(CmdError::Syntax)
        }
    }

    /// The address the change is about.
    pub fn addr(&self) -> &str {
        match self {
            Change::Add(a, _) | Change::Remove(a) | Change::Weight(a, _) => a,
        }
    }

    /// The node list of `ring` after the change, or why it cannot apply.
    pub fn apply(&self, ring: &Ring) -> Result<Vec<Node>, CmdError> {
        let name = ring::node_name(self.addr(), ring.distribution());
        let mut nodes = ring.nodes().to_vec();
        let found = nodes.iter().position(|n| n.name == name);
        match (self, found) {
            (Change::Add(_, w), None) => nodes.push(Node { name, weight: *w }),
            (Change::Add(..), Some(_)) => {
                return Err(CmdError::err(format!(
                    "node '{name}' is already in the ring"
                )))
            }
            (Change::Remove(_), Some(_)) if nodes.len() == 1 => {
                return Err(CmdError::err("cannot remove the last node of the ring"));
            }
            (Change::Remove(_), Some(i)) => {
                nodes.remove(i);
            }
            (Change::Weight(_, w), Some(i)) => nodes[i].weight = *w,
            (_, None) => return Err(CmdError::err(format!("no such node '{name}'"))),
        }
        Ok(nodes)
    }
}

/// A node weight: a positive integer up to 1000.
fn weight(arg: &[u8]) -> Result<u32, CmdError> {
    match args::parse_i64(arg) {
        Some(w @ 1..=1000) => Ok(w as u32),
        _ => Err(CmdError::err(
            "weight must be an integer between 1 and 1000",
        )),
    }
}

/// Runs the RING subcommand in `argv[1]` (already resolved and arity-checked) against `view`. ADD/REMOVE/WEIGHT are
/// refused here: the proxy handles them before calling this.
pub fn reply(view: &RingView<'_>, argv: Argv<'_>, out: &mut Reply) -> CmdResult {
    let ring = view.ring;
    let sub = argv.get(1);
    if is(sub, "help") {
        reply_help(out, "RING", HELP);
    } else if is(sub, "info") {
        info(view, out);
    } else if is(sub, "nodes") {
        nodes(view, out);
    } else if is(sub, "locate") {
        out.array(argv.len() - 2);
        for key in argv.iter_from(2) {
            let pos = ring.position(key);
            out.map(3);
            out.bulk(b"key");
            out.bulk(key);
            out.bulk(b"position");
            out.int(pos as i64);
            out.bulk(b"node");
            match ring.try_owner_of(pos) {
                Some(i) => out.bulk(ring.nodes()[i].name.as_bytes()),
                None => out.null(),
            }
        }
    } else if is(sub, "hash") {
        out.int(ring.position(argv.get(2)) as i64);
    } else if is(sub, "points") {
        points(ring, argv, out)?;
    } else if is(sub, "diff") {
        let after = ring.rebuilt(Change::parse(argv, 2)?.apply(ring)?);
        let flows = ring::diff(ring, &after);
        out.map(2);
        out.bulk(b"moved");
        out.double(flows.iter().map(|t| t.share).sum());
        out.bulk(b"transfers");
        out.array(flows.len());
        for t in flows {
            out.map(3);
            out.bulk(b"from");
            out.bulk(t.from.as_bytes());
            out.bulk(b"to");
            out.bulk(t.to.as_bytes());
            out.bulk(b"share");
            out.double(t.share);
        }
    } else {
        return Err(CmdError::err(format!(
            "RING {} is only available in the proxy role (ringkv proxy)",
            String::from_utf8_lossy(sub).to_ascii_uppercase()
        )));
    }
    Ok(())
}

fn info(view: &RingView<'_>, out: &mut Reply) {
    let ring = view.ring;
    let dist = ring.distribution();
    let points_per_weight = ring.points_per_weight();
    out.map(9);
    out.bulk(b"role");
    out.bulk(view.role.as_bytes());
    out.bulk(b"distribution");
    out.bulk(dist.name().as_bytes());
    out.bulk(b"key_hash");
    out.bulk(dist.key_hash_name().as_bytes());
    out.bulk(b"point_hash");
    out.bulk(dist.point_hash_name().as_bytes());
    out.bulk(b"points_per_weight");
    out.int(points_per_weight as i64);
    out.bulk(b"nodes");
    out.int(ring.nodes().len() as i64);
    out.bulk(b"points");
    out.int(ring.points().len() as i64);
    out.bulk(b"epoch");
    out.int(view.epoch as i64);
    out.bulk(b"migration");
    out.bulk(b"none");
}

fn nodes(view: &RingView<'_>, out: &mut Reply) {
    let ring = view.ring;
    let (shares, counts) = (ring.shares(), ring.point_counts());
    out.array(ring.nodes().len());
    for (i, node) in ring.nodes().iter().enumerate() {
        let state = view.nodes.get(i);
        let keys = state.and_then(|s| s.keys);
        out.map(6 + keys.is_some() as usize);
        out.bulk(b"name");
        out.bulk(node.name.as_bytes());
        out.bulk(b"address");
        out.bulk(state.map_or("", |s| s.address.as_str()).as_bytes());
        out.bulk(b"weight");
        out.int(node.weight as i64);
        out.bulk(b"points");
        out.int(counts[i] as i64);
        out.bulk(b"share");
        out.double(shares[i]);
        out.bulk(b"status");
        out.bulk(state.map_or("unknown", |s| s.status.as_str()).as_bytes());
        if let Some(k) = keys {
            out.bulk(b"keys");
            out.int(k as i64);
        }
    }
}

fn points(ring: &Ring, argv: Argv<'_>, out: &mut Reply) -> CmdResult {
    let only = match argv.len() {
        2 => None,
        3 => {
            let name = argv.get(2);
            let idx = ring.nodes().iter().position(|n| n.name.as_bytes() == name);
            Some(idx.ok_or_else(|| {
                CmdError::err(format!("no such node '{}'", String::from_utf8_lossy(name)))
            })?)
        }
        _ => return Err(CmdError::Syntax),
    };
    let selected: Vec<_> = ring
        .points()
        .iter()
        .filter(|p| only.is_none_or(|i| p.node as usize == i))
        .collect();
    out.array(selected.len());
    for p in selected {
        out.array(2);
        out.int(p.pos as i64);
        out.bulk(ring.nodes()[p.node as usize].name.as_bytes());
    }
    Ok(())
}

/// The server role: the nodes are the store's shards; NODES counts the keys of the client's database in each.
fn server_ring(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let ring = ctx.server.store.ring();
    let counting = is(argv.get(1), "nodes");
    let db = ctx.client.db;
    let nodes = (0..ring.nodes().len())
        .map(|i| NodeState {
            address: "local".into(),
            status: "up".into(),
            keys: counting.then(|| ctx.shards.shard(i).dbs[db].len() as u64),
        })
        .collect();
    let view = RingView {
        role: "server",
        ring,
        nodes,
        epoch: 0,
    };
    reply(&view, argv, ctx.out)
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;

    #[test]
    fn ring_hash_is_the_crc32_of_the_hash_tag() {
        let mut c = TestClient::new();
        let crc = crc32fast::hash(b"user1");
        assert_eq!(c.cmd("RING HASH {user1}.a"), format!(":{crc}\r\n"));
        assert_eq!(c.cmd("RING HASH user1"), format!(":{crc}\r\n"));
    }

    #[test]
    fn ring_locate_names_the_shard_that_holds_the_key() {
        let mut c = TestClient::new();
        let shard = c.server.store.shard_of(b"k");
        let pos = crc32fast::hash(b"k");
        assert_eq!(
            c.cmd("RING LOCATE k"),
            format!("*1\r\n*6\r\n$3\r\nkey\r\n$1\r\nk\r\n$8\r\nposition\r\n:{pos}\r\n$4\r\nnode\r\n$7\r\nshard-{shard}\r\n")
        );
    }

    #[test]
    fn ring_nodes_counts_keys_per_shard() {
        let mut c = TestClient::new();
        c.cmd("SET a 1");
        let reply = c.cmd("RING NODES");
        assert_eq!(reply.matches("$4\r\nkeys\r\n:1\r\n").count(), 1, "{reply}");
        assert_eq!(reply.matches("$4\r\nkeys\r\n:0\r\n").count(), 3, "{reply}");
        assert!(reply.starts_with("*4\r\n*14\r\n$4\r\nname\r\n$7\r\nshard-0\r\n"));
    }

    #[test]
    fn ring_info_reports_the_default_distribution() {
        let mut c = TestClient::new();
        let reply = c.cmd("RING INFO");
        assert!(reply.starts_with(
            "*18\r\n$4\r\nrole\r\n$6\r\nserver\r\n$12\r\ndistribution\r\n$7\r\ndefault\r\n"
        ));
        // Four shards of 160 points each (ring::SHARD_POINTS).
        assert!(reply.contains("$5\r\nnodes\r\n:4\r\n$6\r\npoints\r\n:640\r\n"));
        assert!(
            reply.contains("$17\r\npoints_per_weight\r\n:160\r\n"),
            "{reply}"
        );
    }

    #[test]
    fn ring_replies_are_maps_in_resp3() {
        let mut c = TestClient::new();
        c.cmd("HELLO 3");
        assert!(c
            .cmd("RING INFO")
            .starts_with("%9\r\n$4\r\nrole\r\n$6\r\nserver\r\n"));
        assert!(c
            .cmd("RING LOCATE a")
            .starts_with("*1\r\n%3\r\n$3\r\nkey\r\n"));
        assert!(c
            .cmd("RING DIFF ADD x")
            .starts_with("%2\r\n$5\r\nmoved\r\n,"));
    }

    #[test]
    fn ring_points_of_one_node_are_its_points_only() {
        let mut c = TestClient::new();
        let reply = c.cmd("RING POINTS shard-1");
        assert!(reply.starts_with("*160\r\n"));
        assert_eq!(reply.matches("shard-1").count(), 160);
        assert_eq!(c.cmd("RING POINTS nope"), "-ERR no such node 'nope'\r\n");
    }

    #[test]
    fn ring_diff_add_moves_share_only_to_the_new_node() {
        let mut c = TestClient::new();
        let reply = c.cmd("RING DIFF ADD shard-4");
        assert!(reply.starts_with("*4\r\n$5\r\nmoved\r\n$"), "{reply}");
        assert_eq!(reply.matches("$2\r\nto\r\n$7\r\nshard-4\r\n").count(), 4);
        assert_eq!(
            c.cmd("RING DIFF ADD shard-0"),
            "-ERR node 'shard-0' is already in the ring\r\n"
        );
        assert_eq!(c.cmd("RING DIFF REMOVE x"), "-ERR no such node 'x'\r\n");
        assert_eq!(
            c.cmd("RING DIFF ADD x WEIGHT 0"),
            "-ERR weight must be an integer between 1 and 1000\r\n"
        );
    }

    #[test]
    fn ring_changes_are_refused_in_the_server_role() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("RING ADD 127.0.0.1:7000"),
            "-ERR RING ADD is only available in the proxy role (ringkv proxy)\r\n"
        );
        assert_eq!(
            c.cmd("RING WEIGHT shard-0 2"),
            "-ERR RING WEIGHT is only available in the proxy role (ringkv proxy)\r\n"
        );
    }

    #[test]
    fn ring_help_and_unknown_subcommands_read_like_redis_containers() {
        let mut c = TestClient::new();
        assert!(c.cmd("RING HELP").starts_with(
            "*17\r\n+RING <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+INFO\r\n"
        ));
        assert_eq!(
            c.cmd("RING foo"),
            "-ERR unknown subcommand 'foo'. Try RING HELP.\r\n"
        );
        assert_eq!(
            c.cmd("RING LOCATE"),
            "-ERR wrong number of arguments for 'ring|locate' command\r\n"
        );
    }
}
