//! Pub/Sub through the proxy: a client's subscriptions, its subscriber connections, and the PUBSUB merges.
//!
//! - A channel (SUBSCRIBE) or shard channel (SSUBSCRIBE) is subscribed on the backend that owns it on the ring, the
//!   same placement PUBLISH / SPUBLISH use, so a message published through the proxy reaches subscribers through it.
//! - A pattern (PSUBSCRIBE) is subscribed on every backend in the ring, since it may match a channel anywhere. A
//!   message is published on one backend only (its channel's owner, or the one a direct publisher used), so exactly
//!   one backend sends the client each matching `pmessage`.
//! - Each (client, backend) pair gets its own subscriber connection ([`Backend::subscriber`]) on the first
//!   subscription there, in the client's protocol; it is closed when the client has no subscription left on it.
//! - The proxy tracks the client's subscriptions itself and writes every confirmation, with the counts one Redis
//!   would send (channels + patterns; shard channels apart): each backend only knows its own share. A confirmation is
//!   written once every backend involved has acknowledged its part ([`Acks`]), so a PUBLISH the client sends after
//!   reading it reaches the subscription.
//! - A subscriber connection that fails closes the client connection: Redis has no notion of a subscription lost
//!   behind the client's back, and a client that silently stopped receiving would be worse than one that reconnects.

use hashbrown::HashMap;

use super::backend::{Backend, SubEvents, Subscriber};
use super::resp;
use super::Topology;
use crate::cmd::pubsub::confirm;
use crate::protocol::Reply;
use crate::pubsub::Kind;

/// The (un)subscribe commands: their kind, and whether they subscribe.
pub fn command(name: &str) -> Option<(Kind, bool)> {
    COMMANDS
        .iter()
        .find(|c| c.0 == name)
        .map(|&(_, kind, subscribe)| (kind, subscribe))
}

/// The (un)subscription commands: name, kind, and whether it subscribes.
const COMMANDS: [(&str, Kind, bool); 6] = [
    ("subscribe", Kind::Channel, true),
    ("psubscribe", Kind::Pattern, true),
    ("ssubscribe", Kind::Shard, true),
    ("unsubscribe", Kind::Channel, false),
    ("punsubscribe", Kind::Pattern, false),
    ("sunsubscribe", Kind::Shard, false),
];

/// The command (and confirmation event) name of a kind: subscribe or unsubscribe.
fn verb(kind: Kind, subscribe: bool) -> &'static str {
    match (kind, subscribe) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Shard, true) => "ssubscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, false) => "punsubscribe",
        (Kind::Shard, false) => "sunsubscribe",
    }
}

fn index(kind: Kind) -> usize {
    match kind {
        Kind::Channel => 0,
        Kind::Pattern => 1,
        Kind::Shard => 2,
    }
}

/// Confirmations owed to a client, written once every subscriber connection involved has acknowledged its part.
pub struct Acks {
    bytes: Vec<u8>,
    /// Per subscriber connection id: confirmations still expected from it.
    from: Vec<(usize, usize)>,
    /// The first error a backend answered with (or the loss of a connection): written instead of the confirmations.
    error: Option<Vec<u8>>,
}

impl Acks {
    /// Every acknowledgement is in.
    pub fn done(&self) -> bool {
        self.from.iter().all(|(_, n)| *n == 0)
    }

    /// Connection `conn` still owes an acknowledgement.
    pub fn waits_on(&self, conn: usize) -> bool {
        self.from.iter().any(|&(c, n)| c == conn && n > 0)
    }

    /// Connection `conn` took part.
    pub fn involves(&self, conn: usize) -> bool {
        self.from.iter().any(|&(c, _)| c == conn)
    }

    /// Counts one acknowledgement from `conn`; an error settles the connection's whole part.
    pub fn ack(&mut self, conn: usize, error: Option<Vec<u8>>) {
        if let Some(part) = self.from.iter_mut().find(|(c, n)| *c == conn && *n > 0) {
            part.1 = if error.is_some() { 0 } else { part.1 - 1 };
        }
        if self.error.is_none() {
            self.error = error;
        }
    }

    /// The bytes to write, once [`Acks::done`].
    pub fn take(&mut self) -> Vec<u8> {
        self.error
            .take()
            .unwrap_or_else(|| std::mem::take(&mut self.bytes))
    }
}

/// One client's subscriptions and subscriber connections.
pub struct Subscriptions {
    /// Channels, patterns, shard channels (by [`index`]): each name with the backend addresses it is subscribed on.
    sets: [HashMap<Vec<u8>, Vec<String>>; 3],
    /// Subscriber connections by backend address, with their ids.
    conns: HashMap<String, (usize, Subscriber)>,
    next_id: usize,
    events: SubEvents,
}

impl Subscriptions {
    /// No subscriptions yet; connections made later report on `events`.
    pub fn new(events: SubEvents) -> Subscriptions {
        Subscriptions {
            sets: Default::default(),
            conns: HashMap::new(),
            next_id: 0,
            events,
        }
    }

    /// The client has a subscription (RESP2 subscriber mode).
    pub fn active(&self) -> bool {
        self.sets.iter().any(|s| !s.is_empty())
    }

    /// Connection `conn` is one the client still subscribes through (its loss loses subscriptions).
    pub fn live(&self, conn: usize) -> bool {
        self.conns.values().any(|(id, _)| *id == conn)
    }

    /// Drops every subscription and connection without confirmations (RESET).
    pub fn reset(&mut self) {
        self.sets.iter_mut().for_each(HashMap::clear);
        self.conns.clear();
    }

    /// The count a confirmation carries, as Redis counts: channels + patterns, or shard channels.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.sets[2].len(),
            _ => self.sets[0].len() + self.sets[1].len(),
        }
    }

    /// (P|S)SUBSCRIBE `names`: one confirmation per name, written once the backends confirmed the new ones.
    pub fn subscribe(
        &mut self,
        kind: Kind,
        names: Vec<&[u8]>,
        topo: &Topology,
        resp3: bool,
    ) -> Result<Acks, String> {
        let live: Vec<&str> = (0..topo.backends.len())
            .filter(|&i| topo.ejected[i].is_none())
            .map(|i| topo.backends[i].addr.as_str())
            .collect();
        let mut sends: Vec<(String, Vec<&[u8]>)> = Vec::new();
        let mut out = Reply::new(resp3);
        for name in names {
            if !self.sets[index(kind)].contains_key(name) {
                let targets: Vec<String> = match kind {
                    Kind::Pattern => live.iter().map(|a| a.to_string()).collect(),
                    _ => topo
                        .locate(name)
                        .map(|b| topo.backends[b].addr.clone())
                        .into_iter()
                        .collect(),
                };
                if targets.is_empty() {
                    return Err(super::session::no_backend());
                }
                for t in &targets {
                    add_to(&mut sends, t, name);
                }
                self.sets[index(kind)].insert(name.to_vec(), targets);
            }
            confirm(&mut out, verb(kind, true), Some(name), self.count(kind));
        }
        let from = sends
            .into_iter()
            .map(|(addr, names)| {
                let id = self.connect(&addr, topo, resp3);
                self.send(&addr, kind, true, &names);
                (id, names.len())
            })
            .collect();
        Ok(Acks {
            bytes: out.buf,
            from,
            error: None,
        })
    }

    /// (P|S)UNSUBSCRIBE `names` (every name of the kind when none is given): one confirmation per name, or one with a
    /// null name when there was nothing to unsubscribe from.
    pub fn unsubscribe(&mut self, kind: Kind, names: Vec<&[u8]>, resp3: bool) -> Acks {
        let all: Vec<Vec<u8>>;
        let names = if names.is_empty() {
            all = self.sets[index(kind)].keys().cloned().collect();
            all.iter().map(Vec::as_slice).collect()
        } else {
            names
        };
        let mut out = Reply::new(resp3);
        if names.is_empty() {
            confirm(&mut out, verb(kind, false), None, self.count(kind));
        }
        let mut sends: Vec<(String, Vec<&[u8]>)> = Vec::new();
        for name in names {
            if let Some(targets) = self.sets[index(kind)].remove(name) {
                for t in &targets {
                    add_to(&mut sends, t, name);
                }
            }
            confirm(&mut out, verb(kind, false), Some(name), self.count(kind));
        }
        let mut from = Vec::new();
        for (addr, names) in &sends {
            if let Some((id, _)) = self.conns.get(addr) {
                from.push((*id, names.len()));
                self.send(addr, kind, false, names);
            }
        }
        // A connection that carries no subscription any more closes once its confirmations are in.
        let used: Vec<&String> = self
            .sets
            .iter()
            .flat_map(|s| s.values().flatten())
            .collect();
        self.conns.retain(|addr, _| used.contains(&addr));
        Acks {
            bytes: out.buf,
            from,
            error: None,
        }
    }

    /// The id of the subscriber connection to `addr`, made now if needed.
    fn connect(&mut self, addr: &str, topo: &Topology, resp3: bool) -> usize {
        if let Some((id, _)) = self.conns.get(addr) {
            return *id;
        }
        let id = self.next_id;
        self.next_id += 1;
        // `addr` comes from this topology, so the backend is there.
        if let Some(b) = topo.backends.iter().find(|b| b.addr == addr) {
            let conn = Backend::subscriber(b, resp3, id, self.events.clone());
            self.conns.insert(addr.to_string(), (id, conn));
        }
        id
    }

    fn send(&self, addr: &str, kind: Kind, subscribe: bool, names: &[&[u8]]) {
        if let Some((_, conn)) = self.conns.get(addr) {
            let name = verb(kind, subscribe).as_bytes();
            let request =
                super::session::encode(std::iter::once(name).chain(names.iter().copied()));
            conn.send(request, names.len());
        }
    }
}

/// Appends `name` to the names bound for `addr`.
fn add_to<'a>(sends: &mut Vec<(String, Vec<&'a [u8]>)>, addr: &str, name: &'a [u8]) {
    match sends.iter_mut().find(|(a, _)| a == addr) {
        Some((_, names)) => names.push(name),
        None => sends.push((addr.to_string(), vec![name])),
    }
}

/// The first error among the replies, or `Err` of a generic one when a reply is not what `parse` expects.
fn checked<'a, T>(
    replies: &'a [Vec<u8>],
    parse: impl Fn(&'a [u8]) -> Option<T>,
) -> Result<Vec<T>, Vec<u8>> {
    if let Some(e) = replies.iter().find(|r| resp::is_error(r)) {
        return Err(e.clone());
    }
    replies
        .iter()
        .map(|r| parse(r).ok_or_else(|| b"-ERR unexpected reply from a backend\r\n".to_vec()))
        .collect()
}

/// PUBSUB CHANNELS / SHARDCHANNELS: the union of every backend's channels (each listed once).
pub fn merge_union(replies: Vec<Vec<u8>>) -> Vec<u8> {
    let lists = match checked(&replies, resp::elements) {
        Ok(lists) => lists,
        Err(e) => return e,
    };
    let mut seen: Vec<&[u8]> = Vec::new();
    for item in lists.into_iter().flatten() {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    let mut out = Reply::new(false);
    out.array(seen.len());
    seen.iter().for_each(|i| out.raw(i));
    out.buf
}

/// PUBSUB NUMSUB / SHARDNUMSUB: `[channel, count, ...]` with each count summed over the backends.
pub fn merge_numsub(replies: Vec<Vec<u8>>) -> Vec<u8> {
    let lists = match checked(&replies, resp::elements) {
        Ok(lists) => lists,
        Err(e) => return e,
    };
    let Some(first) = lists.first() else {
        return b"*0\r\n".to_vec();
    };
    let mut out = Reply::new(false);
    out.array(first.len());
    for (i, item) in first.iter().enumerate() {
        if i % 2 == 0 {
            out.raw(item);
            continue;
        }
        let counts: Option<Vec<i64>> = lists
            .iter()
            .map(|l| l.get(i).and_then(|c| resp::integer(c)))
            .collect();
        match counts {
            Some(c) => out.int(c.iter().sum()),
            None => return b"-ERR unexpected reply from a backend\r\n".to_vec(),
        }
    }
    out.buf
}

/// PUBSUB NUMPAT: the largest count of any backend. A pattern subscribed through the proxy is on every backend, so a
/// sum would count it once per backend; the maximum counts it once (and is exact when every pattern subscriber
/// comes through the proxy), at the price of undercounting patterns subscribed directly on different backends.
pub fn merge_max(replies: Vec<Vec<u8>>) -> Vec<u8> {
    match checked(&replies, resp::integer) {
        Ok(counts) => format!(":{}\r\n", counts.into_iter().max().unwrap_or(0)).into_bytes(),
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubsub_replies_merge_as_one_server_would_answer() {
        let a = b"*2\r\n$1\r\nx\r\n$1\r\ny\r\n".to_vec();
        let b = b"*2\r\n$1\r\ny\r\n$1\r\nz\r\n".to_vec();
        assert_eq!(
            merge_union(vec![a, b]),
            b"*3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"
        );
        let a = b"*4\r\n$1\r\nx\r\n:1\r\n$1\r\ny\r\n:0\r\n".to_vec();
        let b = b"*4\r\n$1\r\nx\r\n:2\r\n$1\r\ny\r\n:3\r\n".to_vec();
        assert_eq!(
            merge_numsub(vec![a, b]),
            b"*4\r\n$1\r\nx\r\n:3\r\n$1\r\ny\r\n:3\r\n"
        );
        assert_eq!(
            merge_max(vec![b":1\r\n".to_vec(), b":2\r\n".to_vec()]),
            b":2\r\n"
        );
    }

    #[test]
    fn acks_wait_for_every_connection_and_an_error_wins() {
        let mut acks = Acks {
            bytes: b"ok".to_vec(),
            from: vec![(0, 2), (1, 1)],
            error: None,
        };
        acks.ack(0, None);
        assert!(acks.waits_on(0) && !acks.done());
        acks.ack(1, Some(b"-ERR no\r\n".to_vec()));
        acks.ack(0, None);
        assert!(acks.done() && acks.involves(1) && !acks.waits_on(1));
        assert_eq!(acks.take(), b"-ERR no\r\n");
    }
}
