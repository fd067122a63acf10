//! The Pub/Sub registry: channel -> subscribers, pattern -> subscribers and shard channel -> subscribers, with no I/O.
//!
//! Shard channels (SSUBSCRIBE / SPUBLISH) are a namespace of their own: a PUBLISH never reaches a shard subscriber, an
//! SPUBLISH never reaches a channel or pattern subscriber, and patterns never match shard channels. ringkv runs in
//! standalone mode, so every shard channel lives here, as in a Redis without cluster mode.
//!
//! Each subscribed connection owns a [`Subscriptions`]: its channel, pattern and shard channel sets. Every connection
//! has a bounded queue of encoded messages ([`mailbox`]: the [`Outbox`] in its shared record, the [`Inbox`] in its
//! task), which also carries client-side caching invalidations (see [`crate::tracking`]). PUBLISH encodes a message
//! once per protocol (RESP2 array / RESP3 push), shares the bytes with every receiver and never blocks: a client
//! whose queue holds more than [`OUTPUT_LIMIT_BYTES`] bytes or
//! [`OUTPUT_LIMIT_MESSAGES`] messages is disconnected (like Redis's `client-output-buffer-limit pubsub 32mb`), so a
//! subscriber that stops reading never costs unbounded memory. Once over the limit it stays over (its pending count is
//! never decreased for the refused message), so it gets nothing more before its connection closes.
//!
//! Invariant: a client id is registered under a channel (pattern) exactly when that channel (pattern) is in its
//! `Subscriptions`; both change together, under the registry's write lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use parking_lot::RwLock;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::client::ClientInfo;
use crate::glob;
use crate::protocol::Reply;

/// Most bytes of messages queued for one subscriber before it is disconnected (Redis's pubsub hard limit).
pub const OUTPUT_LIMIT_BYTES: usize = 32 * 1024 * 1024;
/// Most messages queued for one subscriber before it is disconnected (bounds the per-message overhead of tiny ones).
pub const OUTPUT_LIMIT_MESSAGES: usize = 1 << 16;
/// Most messages a connection takes from its queue for one write.
const BATCH: usize = 1024;

/// Channel, pattern or shard channel subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE / UNSUBSCRIBE.
    Channel,
    /// PSUBSCRIBE / PUNSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE / SUNSUBSCRIBE.
    Shard,
}

impl Kind {
    /// Every kind, for dropping all subscriptions.
    pub const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];
}

/// The sending half of a connection's message queue, kept in its [`ClientInfo`] so that anyone holding that record
/// (the Pub/Sub registry, the client-side caching table) can queue messages to it.
pub struct Outbox {
    tx: mpsc::Sender<Bytes>,
    /// Bytes queued and not yet taken by the connection.
    pending: Arc<AtomicUsize>,
}

/// The receiving half of a connection's message queue, owned by the connection.
pub struct Inbox {
    rx: mpsc::Receiver<Bytes>,
    pending: Arc<AtomicUsize>,
    batch: Vec<Bytes>,
}

/// A connection's message queue: Pub/Sub messages and client-side caching invalidations, in the order queued.
pub fn mailbox() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(OUTPUT_LIMIT_MESSAGES);
    let pending = Arc::new(AtomicUsize::new(0));
    let inbox = Inbox {
        rx,
        pending: pending.clone(),
        batch: Vec::new(),
    };
    (Outbox { tx, pending }, inbox)
}

impl Outbox {
    /// Queues `msg` for `info`'s connection without waiting; a client over its limit is disconnected instead.
    pub fn deliver(&self, info: &ClientInfo, msg: &Bytes) {
        let before = self.pending.fetch_add(msg.len(), Ordering::AcqRel);
        if before + msg.len() <= OUTPUT_LIMIT_BYTES {
            match self.tx.try_send(msg.clone()) {
                // A closed queue: the connection is going away and drops its subscriptions itself.
                Ok(()) | Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(_)) => {}
            }
        }
        if before <= OUTPUT_LIMIT_BYTES {
            tracing::warn!(
                id = info.id,
                "closing client: pubsub output buffer limit reached"
            );
        }
        // Keep `pending` above the limit so nothing more is queued before the connection closes.
        self.pending
            .fetch_add(OUTPUT_LIMIT_BYTES + 1, Ordering::AcqRel);
        info.kill();
    }
}

impl Inbox {
    /// Waits for at least one message, then appends up to a batch of queued messages to `out`.
    pub async fn recv(&mut self, out: &mut Reply) {
        if self.rx.recv_many(&mut self.batch, BATCH).await > 0 {
            self.take_batch(out);
        }
    }
    /// Whether messages are queued.
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) != 0
    }
    /// Appends every message queued now to `out` (so they precede replies to commands read after them). With
    /// nothing queued this is one load.
    #[inline]
    pub fn drain(&mut self, out: &mut Reply) {
        if self.has_pending() {
            self.drain_queued(out);
        }
    }
    fn drain_queued(&mut self, out: &mut Reply) {
        while let Ok(msg) = self.rx.try_recv() {
            self.batch.push(msg);
            if self.batch.len() >= BATCH {
                self.take_batch(out);
            }
        }
        self.take_batch(out);
    }
    fn take_batch(&mut self, out: &mut Reply) {
        let mut taken = 0;
        for msg in self.batch.drain(..) {
            taken += msg.len();
            out.raw(&msg);
        }
        self.pending.fetch_sub(taken, Ordering::AcqRel);
    }
}

/// One connection's channel, pattern and shard channel subscriptions.
pub struct Subscriptions {
    channels: HashSet<Vec<u8>>,
    patterns: HashSet<Vec<u8>>,
    shards: HashSet<Vec<u8>>,
    info: Arc<ClientInfo>,
}

impl Subscriptions {
    /// An empty subscription set for the client `info`.
    pub fn new(info: Arc<ClientInfo>) -> Self {
        Subscriptions {
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shards: HashSet::new(),
            info,
        }
    }
    /// The count Redis reports in the (un)subscribe replies of `kind`: channels plus patterns for those, shard
    /// channels alone for SSUBSCRIBE / SUNSUBSCRIBE.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shards.len(),
        }
    }
    /// Every subscription of any kind: the client stays in subscriber mode while this is not 0.
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shards.len()
    }
    /// The number of subscriptions of one kind.
    pub fn len(&self, kind: Kind) -> usize {
        self.set(kind).len()
    }
    /// The names subscribed to of one kind (unordered, as Redis's dict).
    pub fn names(&self, kind: Kind) -> Vec<Vec<u8>> {
        self.set(kind).iter().cloned().collect()
    }
    fn set(&self, kind: Kind) -> &HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shards,
        }
    }
    fn set_mut(&mut self, kind: Kind) -> &mut HashSet<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }
}

type Table = HashMap<Vec<u8>, HashMap<u64, Arc<ClientInfo>>>;

/// Every channel and pattern subscription of the server.
#[derive(Default)]
pub struct PubSub {
    inner: RwLock<Tables>,
}

#[derive(Default)]
struct Tables {
    channels: Table,
    patterns: Table,
    shards: Table,
}

impl Tables {
    fn get(&self, kind: Kind) -> &Table {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shards,
        }
    }
    fn table(&mut self, kind: Kind) -> &mut Table {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }
}

/// The `channel payload` bulk strings that end every message form.
fn message_tail(channel: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut rest = Reply::new(false);
    rest.bulk(channel);
    rest.bulk(payload);
    rest.buf
}

/// Delivers one message to every client of `clients`, each in its protocol; returns how many.
fn send(encoded: &mut Encoded, clients: &HashMap<u64, Arc<ClientInfo>>) -> usize {
    for info in clients.values() {
        let resp3 = info.resp.load(Ordering::Relaxed) == 3;
        info.outbox.deliver(info, encoded.get(resp3));
    }
    clients.len()
}

/// A message encoded for each protocol on first use, so a PUBLISH encodes it at most twice.
struct Encoded<'a> {
    parts: [&'a [u8]; 3],
    forms: [Option<Bytes>; 2],
}

impl<'a> Encoded<'a> {
    fn new(parts: [&'a [u8]; 3]) -> Self {
        Encoded {
            parts,
            forms: [None, None],
        }
    }
    /// `message channel payload`, `smessage channel payload` (an empty pattern slot) or
    /// `pmessage pattern channel payload`.
    fn get(&mut self, resp3: bool) -> &Bytes {
        let parts = self.parts;
        self.forms[resp3 as usize].get_or_insert_with(|| {
            let mut r = Reply::new(resp3);
            let [kind, pattern, rest] = parts;
            let pmessage = kind == b"pmessage";
            r.push(if pmessage { 4 } else { 3 });
            r.bulk(kind);
            if pmessage {
                r.bulk(pattern);
            }
            r.buf.extend_from_slice(rest);
            // Copied: the encoder's buffer has a large capacity that would count against no limit.
            Bytes::copy_from_slice(&r.buf)
        })
    }
}

impl PubSub {
    /// Subscribes `subs` to `name`; false when it already was.
    pub fn subscribe(&self, subs: &mut Subscriptions, kind: Kind, name: &[u8]) -> bool {
        if subs.set(kind).contains(name) {
            return false;
        }
        let mut tables = self.inner.write();
        tables
            .table(kind)
            .entry_ref(name)
            .or_default()
            .insert(subs.info.id, subs.info.clone());
        subs.set_mut(kind).insert(name.to_vec());
        true
    }

    /// Unsubscribes `subs` from `name`; false when it was not subscribed.
    pub fn unsubscribe(&self, subs: &mut Subscriptions, kind: Kind, name: &[u8]) -> bool {
        if !subs.set_mut(kind).remove(name) {
            return false;
        }
        let mut tables = self.inner.write();
        let table = tables.table(kind);
        if let Some(clients) = table.get_mut(name) {
            clients.remove(&subs.info.id);
            if clients.is_empty() {
                table.remove(name);
            }
        }
        true
    }

    /// Drops every subscription of `subs` (RESET, disconnect).
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions) {
        for kind in Kind::ALL {
            for name in subs.names(kind) {
                self.unsubscribe(subs, kind, &name);
            }
        }
    }

    /// Sends `payload` to the subscribers of `channel` and of every pattern matching it; returns the number of
    /// deliveries (a client subscribed to the channel and to a matching pattern counts twice, as in Redis). A
    /// publisher subscribed itself gets its message through its queue too, so after PUBLISH's reply, as Redis 7.2
    /// orders it (7.0 sent it before).
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let rest = message_tail(channel, payload);
        let tables = self.inner.read();
        let mut receivers = 0;
        if let Some(clients) = tables.channels.get(channel) {
            receivers += send(&mut Encoded::new([b"message", b"", &rest]), clients);
        }
        for (pattern, clients) in &tables.patterns {
            if glob::matches(pattern, channel, false) {
                receivers += send(&mut Encoded::new([b"pmessage", pattern, &rest]), clients);
            }
        }
        receivers
    }

    /// Sends `payload` to the subscribers of the shard channel `channel` (SPUBLISH) as `smessage`; returns how many
    /// got it. Patterns do not apply to shard channels.
    pub fn spublish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let rest = message_tail(channel, payload);
        match self.inner.read().shards.get(channel) {
            Some(clients) => send(&mut Encoded::new([b"smessage", b"", &rest]), clients),
            None => 0,
        }
    }

    /// Channels (`Kind::Channel`) or shard channels (`Kind::Shard`) with at least one subscriber, optionally only
    /// those matching `pattern` (PUBSUB CHANNELS / SHARDCHANNELS).
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.inner
            .read()
            .get(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` of `kind`, not counting pattern subscriptions (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        self.inner
            .read()
            .get(kind)
            .get(channel)
            .map_or(0, |c| c.len())
    }

    /// Channels (or shard channels) with at least one subscriber (INFO `pubsub_channels`, `pubsubshard_channels`).
    pub fn channel_count(&self, kind: Kind) -> usize {
        self.inner.read().get(kind).len()
    }

    /// Distinct patterns subscribed to by anyone (PUBSUB NUMPAT, as Redis 7 counts them).
    pub fn numpat(&self) -> usize {
        self.inner.read().patterns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    use crate::client::{Client, ClientRegistry};

    /// A client's subscriptions with its connection's inbox.
    struct Sub {
        subs: Subscriptions,
        client: Client,
    }

    impl std::ops::Deref for Sub {
        type Target = Subscriptions;
        fn deref(&self) -> &Subscriptions {
            &self.subs
        }
    }

    impl std::ops::DerefMut for Sub {
        fn deref_mut(&mut self) -> &mut Subscriptions {
            &mut self.subs
        }
    }

    fn subscriber(clients: &ClientRegistry, resp: usize) -> Sub {
        let addr = "127.0.0.1:0".parse().unwrap();
        let client = clients.register(addr, addr);
        client.info.resp.store(resp, Ordering::Relaxed);
        Sub {
            subs: Subscriptions::new(client.info.clone()),
            client,
        }
    }

    fn received(sub: &mut Sub) -> String {
        let mut out = Reply::new(false);
        sub.client.inbox.drain(&mut out);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    fn publish(ps: &PubSub, channel: &str, payload: &str) -> usize {
        ps.publish(channel.as_bytes(), payload.as_bytes())
    }

    #[test]
    fn publish_encodes_per_subscriber_protocol_and_counts_receivers() {
        let (clients, ps) = (ClientRegistry::default(), PubSub::default());
        let (mut a, mut b) = (subscriber(&clients, 2), subscriber(&clients, 3));
        assert!(ps.subscribe(&mut a, Kind::Channel, b"news"));
        assert!(!ps.subscribe(&mut a, Kind::Channel, b"news"));
        assert!(ps.subscribe(&mut b, Kind::Pattern, b"n?ws"));
        assert_eq!(publish(&ps, "news", "hi"), 2);
        assert_eq!(
            received(&mut a),
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            received(&mut b),
            ">4\r\n$8\r\npmessage\r\n$4\r\nn?ws\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(publish(&ps, "other", "x"), 0);
        assert_eq!(received(&mut a), "");
    }

    #[test]
    fn channel_and_matching_pattern_both_deliver() {
        let (clients, ps) = (ClientRegistry::default(), PubSub::default());
        let mut a = subscriber(&clients, 2);
        ps.subscribe(&mut a, Kind::Channel, b"c1");
        ps.subscribe(&mut a, Kind::Pattern, b"c*");
        ps.subscribe(&mut a, Kind::Pattern, b"[^c]*");
        assert_eq!(publish(&ps, "c1", "m"), 2);
        let got = received(&mut a);
        assert!(got.starts_with("*3\r\n$7\r\nmessage"), "{got}");
        assert!(got.contains("pmessage\r\n$2\r\nc*"), "{got}");
    }

    #[test]
    fn unsubscribe_removes_empty_entries_and_counts_follow() {
        let (clients, ps) = (ClientRegistry::default(), PubSub::default());
        let (mut a, mut b) = (subscriber(&clients, 2), subscriber(&clients, 2));
        ps.subscribe(&mut a, Kind::Channel, b"x");
        ps.subscribe(&mut b, Kind::Channel, b"x");
        ps.subscribe(&mut a, Kind::Pattern, b"p*");
        ps.subscribe(&mut b, Kind::Pattern, b"p*");
        assert_eq!(
            (
                ps.numsub(Kind::Channel, b"x"),
                ps.numpat(),
                a.count(Kind::Channel)
            ),
            (2, 1, 2)
        );
        assert!(ps.unsubscribe(&mut a, Kind::Channel, b"x"));
        assert!(!ps.unsubscribe(&mut a, Kind::Channel, b"x"));
        assert_eq!(ps.numsub(Kind::Channel, b"x"), 1);
        ps.unsubscribe_all(&mut b);
        ps.unsubscribe_all(&mut a);
        assert_eq!(
            (
                ps.numsub(Kind::Channel, b"x"),
                ps.numpat(),
                a.count(Kind::Channel)
            ),
            (0, 0, 0)
        );
        assert!(ps.channels(Kind::Channel, None).is_empty());
    }

    #[test]
    fn shard_channels_are_a_namespace_of_their_own() {
        let (clients, ps) = (ClientRegistry::default(), PubSub::default());
        let (mut a, mut b) = (subscriber(&clients, 2), subscriber(&clients, 3));
        assert!(ps.subscribe(&mut a, Kind::Shard, b"s"));
        assert!(ps.subscribe(&mut b, Kind::Shard, b"s"));
        ps.subscribe(&mut a, Kind::Channel, b"c");
        ps.subscribe(&mut a, Kind::Pattern, b"*");
        assert_eq!(
            (a.count(Kind::Shard), a.count(Kind::Pattern), a.total()),
            (1, 2, 3)
        );
        // SPUBLISH reaches shard subscribers only; PUBLISH never reaches them, and patterns never match them.
        assert_eq!(ps.spublish(b"s", b"m"), 2);
        assert_eq!(
            received(&mut a),
            "*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n"
        );
        assert_eq!(
            received(&mut b),
            ">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n"
        );
        assert_eq!(ps.spublish(b"c", b"m"), 0);
        assert_eq!(publish(&ps, "s", "m"), 1);
        assert!(received(&mut a).starts_with("*4\r\n$8\r\npmessage"));
        assert_eq!(received(&mut b), "");
        assert_eq!(
            (ps.numsub(Kind::Shard, b"s"), ps.numsub(Kind::Channel, b"s")),
            (2, 0)
        );
        assert_eq!(ps.channels(Kind::Shard, None), vec![b"s".to_vec()]);
        assert_eq!(ps.channel_count(Kind::Shard), 1);
        ps.unsubscribe_all(&mut a);
        ps.unsubscribe_all(&mut b);
        assert_eq!((ps.channel_count(Kind::Shard), a.total()), (0, 0));
    }

    #[test]
    fn channels_filter_with_redis_glob() {
        let (clients, ps) = (ClientRegistry::default(), PubSub::default());
        let mut a = subscriber(&clients, 2);
        for c in ["news.tech", "news.art", "sport", "n{x}"] {
            ps.subscribe(&mut a, Kind::Channel, c.as_bytes());
        }
        let mut got = ps.channels(Kind::Channel, Some(b"news.*"));
        got.sort();
        assert_eq!(got, vec![b"news.art".to_vec(), b"news.tech".to_vec()]);
        assert_eq!(
            ps.channels(Kind::Channel, Some(b"n{x}")),
            vec![b"n{x}".to_vec()]
        );
        assert_eq!(ps.channels(Kind::Channel, None).len(), 4);
    }

    #[test]
    fn a_subscriber_over_its_limit_is_killed_and_gets_nothing_more() {
        let (clients, ps) = (ClientRegistry::default(), PubSub::default());
        let (mut slow, mut ok) = (subscriber(&clients, 2), subscriber(&clients, 2));
        ps.subscribe(&mut slow, Kind::Channel, b"c");
        ps.subscribe(&mut ok, Kind::Channel, b"c");
        let payload = "x".repeat(1024 * 1024);
        for _ in 0..(OUTPUT_LIMIT_BYTES / payload.len() + 1) {
            assert_eq!(publish(&ps, "c", &payload), 2);
            // `ok` keeps up.
            assert!(received(&mut ok).ends_with("x\r\n"));
        }
        let killed = slow.client.info.clone();
        assert!(killed.outbox.pending.load(Ordering::Relaxed) > OUTPUT_LIMIT_BYTES);
        let taken = received(&mut slow).len();
        assert!(taken <= OUTPUT_LIMIT_BYTES, "{taken}");
        publish(&ps, "c", "after");
        assert_eq!(received(&mut slow), "");
        let mut fut = std::pin::pin!(killed.killed());
        let waker = std::task::Waker::noop();
        assert!(fut
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_ready());
    }
}
