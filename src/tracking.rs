//! Client-side caching (Redis's `tracking.c`): which clients may hold which keys, and the invalidation messages sent
//! when those keys change.
//!
//! Two modes, as in Redis. Default: after a read-only command of a tracking client, its keys are remembered in a
//! key -> client ids table; when a key is modified, every client remembered for it gets one invalidation and the key
//! is forgotten. BCAST: a client registers prefixes (the empty prefix matches every key) and gets every modified key
//! matching them, read or not, without any per-key state. Keys are global names, not per database, as in Redis.
//!
//! Where changes come from: each keyspace records the keys it modifies (inserted, removed, changed in place,
//! expired lazily or actively) and whether it was flushed, but only while the [`notify::TRACKING`] bit of the shared
//! events word is set, that is while at least one client tracks. The dispatcher takes them after each command (and
//! after each command of a transaction or script, so that the table changes in Redis's order: a key read after a
//! FLUSHALL in the same transaction stays remembered) and calls [`Tracking::invalidate_modified`]; the active expiry
//! does the same. BCAST clients hear of a command's keys at its end, after any flush's null, as Redis broadcasts
//! before it sleeps. With no tracking client this costs one relaxed load per modified key and nothing else.
//!
//! Delivery goes through the connection's message queue ([`crate::pubsub::Outbox`]), so an invalidation for the
//! calling client itself follows its command's reply, as Redis's `tracking_pending_keys` arranges. A RESP3 client
//! gets a push `invalidate [keys]`; with REDIRECT, the redirect target gets it, as a push in RESP3 or as a Pub/Sub
//! `message` on `__redis__:invalidate` when it is a RESP2 subscriber. A RESP2 client without redirect gets nothing.
//! A flush sends a null instead of the key array to every tracking client.
//!
//! Locking: one mutex for the whole table. It is taken while the command still holds its shard locks (the order is
//! always shard locks, then this table, then the client registry's lock to find a redirect target); code holding
//! the table never waits for a shard, and delivery never blocks (a full queue disconnects its client).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use parking_lot::Mutex;

use crate::client::{Client, ClientInfo, ClientRegistry};
use crate::notify::{self, Events};
use crate::protocol::Reply;
use crate::store::Keyspace;

/// The Pub/Sub channel RESP2 redirect targets receive invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";
/// Most keys remembered for default-mode clients (Redis's `tracking-table-max-keys` default). Past it, keys are
/// evicted from the table by sending their invalidations, as if they had been modified.
pub const MAX_KEYS: usize = 1_000_000;

/// [`ClientInfo::tracking`] bit: tracking is on (CLIENT LIST `t`).
pub const ON: u8 = 1;
/// [`ClientInfo::tracking`] bit: the redirect target has gone (CLIENT LIST `R`).
pub const BROKEN_REDIRECT: u8 = 2;
/// [`ClientInfo::tracking`] bit: BCAST mode (CLIENT LIST `B`).
pub const BCAST: u8 = 4;
/// CLIENT LIST letters of the tracking bits, in Redis's order.
pub const LIST_FLAGS: [(u8, char); 3] = [(ON, 't'), (BROKEN_REDIRECT, 'R'), (BCAST, 'B')];

/// The options of CLIENT TRACKING ON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    /// BCAST: every modified key matching a prefix.
    pub bcast: bool,
    /// OPTIN: keys are remembered only for a command after CLIENT CACHING yes.
    pub optin: bool,
    /// OPTOUT: keys are remembered except for a command after CLIENT CACHING no.
    pub optout: bool,
    /// NOLOOP: no invalidation for the client's own writes.
    pub noloop: bool,
}

impl Mode {
    /// Whether the keys of the command being run are remembered, given CLIENT CACHING (`caching`) for it.
    pub fn remembers(&self, caching: bool) -> bool {
        // OPTIN needs CACHING yes; OPTOUT skips after CACHING no.
        let opted_out = if caching { self.optout } else { self.optin };
        !self.bcast && !opted_out
    }
}

/// One tracking client, as others' writes need to see it.
struct Tracker {
    info: Arc<ClientInfo>,
    mode: Mode,
    /// The client id invalidations go to; 0 for the client itself.
    redirect: u64,
    /// BCAST prefixes, in the order registered.
    prefixes: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Table {
    /// Default mode: key -> ids of the clients that may cache it.
    keys: HashMap<Box<[u8]>, HashSet<u64>>,
    /// Ids stored across `keys` (INFO `tracking_total_items`).
    items: usize,
    clients: HashMap<u64, Tracker>,
    /// BCAST: prefix -> ids of the clients registered for it (ordered, as Redis's radix tree).
    prefixes: BTreeMap<Vec<u8>, HashSet<u64>>,
}

/// The server's tracking table.
pub struct Tracking {
    events: Events,
    table: Mutex<Table>,
    max_keys: usize,
}

/// What CLIENT TRACKINGINFO shows of a client.
pub struct Info {
    /// The redirect id (0: none).
    pub redirect: u64,
    /// BCAST prefixes, sorted.
    pub prefixes: Vec<Vec<u8>>,
}

/// INFO figures: tracking clients, keys remembered, ids stored, BCAST prefixes.
pub struct Stats {
    /// Clients with tracking on.
    pub clients: usize,
    /// Keys in the table.
    pub keys: usize,
    /// Client ids across all keys.
    pub items: usize,
    /// Distinct BCAST prefixes.
    pub prefixes: usize,
}

impl Tracking {
    /// An empty table that raises [`notify::TRACKING`] in `events` (the word every keyspace reads) while in use.
    pub fn new(events: Events) -> Self {
        Self::with_max_keys(events, MAX_KEYS)
    }

    /// [`Self::new`] remembering at most `max_keys` keys.
    pub fn with_max_keys(events: Events, max_keys: usize) -> Self {
        Tracking {
            events,
            table: Mutex::new(Table::default()),
            max_keys,
        }
    }

    /// Redis's `checkPrefixCollisionsOrReply`: the error text when one of `prefixes` overlaps (one is a prefix of
    /// the other) with a prefix client `id` already has, or with another of `prefixes`.
    pub fn prefix_overlap(&self, id: u64, prefixes: &[&[u8]]) -> Option<String> {
        let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
        let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        let table = self.table.lock();
        let mut existing: Vec<&[u8]> = table
            .clients
            .get(&id)
            .map_or_else(Vec::new, |t| t.prefixes.iter().map(Vec::as_slice).collect());
        existing.sort_unstable();
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(old) = existing.iter().find(|old| overlap(old, p)) {
                return Some(format!(
                    "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    text(p),
                    text(old)
                ));
            }
            if let Some(other) = prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
                return Some(format!(
                    "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not \
                     overlap.",
                    text(p),
                    text(other)
                ));
            }
        }
        None
    }

    /// CLIENT TRACKING ON: (re)enables tracking for `client` with `mode`, invalidations going to `redirect` (0: the
    /// client itself). In BCAST mode `prefixes` (none: the empty prefix) are added to those it has.
    pub fn enable(&self, client: &mut Client, mode: Mode, redirect: u64, prefixes: Vec<Vec<u8>>) {
        let info = client.info.clone();
        let id = info.id;
        let mut table = self.table.lock();
        let Table {
            clients,
            prefixes: by_prefix,
            ..
        } = &mut *table;
        let tracker = clients.entry(id).or_insert_with(|| Tracker {
            info: info.clone(),
            mode,
            redirect,
            prefixes: Vec::new(),
        });
        tracker.mode = mode;
        tracker.redirect = redirect;
        if mode.bcast {
            let wanted = if prefixes.is_empty() {
                vec![Vec::new()]
            } else {
                prefixes
            };
            for p in wanted {
                if by_prefix.entry(p.clone()).or_default().insert(id) {
                    tracker.prefixes.push(p);
                }
            }
        }
        let bits = if mode.bcast { ON | BCAST } else { ON };
        info.tracking.store(bits, Ordering::Relaxed);
        self.events.fetch_or(notify::TRACKING, Ordering::Relaxed);
        client.tracking = Some(mode);
    }

    /// CLIENT TRACKING OFF, RESET, disconnect: `client` tracks nothing any more. Its ids left in the key table are
    /// skipped and dropped as those keys change (Redis's lazy cleanup); when no client tracks, the table is emptied
    /// and keyspaces stop recording changes.
    pub fn disable(&self, client: &mut Client) {
        client.caching = false;
        if client.tracking.take().is_none() {
            return;
        }
        client.info.tracking.store(0, Ordering::Relaxed);
        let mut table = self.table.lock();
        let Some(tracker) = table.clients.remove(&client.id()) else {
            return;
        };
        for p in tracker.prefixes {
            if let Some(ids) = table.prefixes.get_mut(&p) {
                ids.remove(&client.id());
                if ids.is_empty() {
                    table.prefixes.remove(&p);
                }
            }
        }
        if table.clients.is_empty() {
            self.events.fetch_and(!notify::TRACKING, Ordering::Relaxed);
            table.keys = HashMap::new();
            table.items = 0;
        }
    }

    /// The redirect and prefixes of client `id`, when it tracks.
    pub fn info(&self, id: u64) -> Option<Info> {
        let table = self.table.lock();
        let tracker = table.clients.get(&id)?;
        let mut prefixes = tracker.prefixes.clone();
        prefixes.sort_unstable();
        Some(Info {
            redirect: tracker.redirect,
            prefixes,
        })
    }

    /// Figures for INFO.
    pub fn stats(&self) -> Stats {
        let table = self.table.lock();
        Stats {
            clients: table.clients.len(),
            keys: table.keys.len(),
            items: table.items,
            prefixes: table.prefixes.len(),
        }
    }

    /// Remembers that client `id` may cache `keys` (Redis's `trackingRememberKeys`); past the key limit, evicts keys
    /// by invalidating them.
    pub fn remember<'k>(
        &self,
        clients: &ClientRegistry,
        id: u64,
        keys: impl Iterator<Item = &'k [u8]>,
    ) {
        let mut table = self.table.lock();
        for key in keys {
            if table.keys.entry_ref(key).or_default().insert(id) {
                table.items += 1;
            }
        }
        while table.keys.len() > self.max_keys {
            let Some(victim) = table.keys.keys().next().cloned() else {
                break;
            };
            invalidate_key(&mut table, clients, &victim, 0);
        }
    }

    /// Sends the invalidations for what `keyspaces` recorded as modified (see [`Keyspace::take_modified`]) by client
    /// `by` (0: nobody, as expiry), at the end of a command: the default-mode ones and a flush's null, then the BCAST
    /// ones for those keys and for `settled` (keys whose default-mode invalidations went out earlier in the command,
    /// see [`Self::settle_modified`]), once per prefix, as Redis broadcasts before it sleeps.
    pub fn invalidate_modified<'k>(
        &self,
        clients: &ClientRegistry,
        keyspaces: impl Iterator<Item = &'k mut Keyspace>,
        by: u64,
        mut settled: Vec<Box<[u8]>>,
    ) {
        let (keys, flushed) = take_modified(keyspaces);
        if keys.is_empty() && !flushed && settled.is_empty() {
            return;
        }
        let mut table = self.table.lock();
        invalidate_keys(&mut table, clients, &keys, flushed, by);
        if !table.prefixes.is_empty() {
            settled.extend(keys);
            broadcast(&table, clients, &settled, by);
        }
    }

    /// Sends the default-mode invalidations and a flush's null for what `keyspaces` recorded as modified by client
    /// `by`, now: after each command of a transaction or script, so that the next one finds the table as Redis
    /// would (a key read after a FLUSHALL stays remembered). Returns the keys, which BCAST clients hear of at the end
    /// (see [`Self::invalidate_modified`]).
    pub fn settle_modified<'k>(
        &self,
        clients: &ClientRegistry,
        keyspaces: impl Iterator<Item = &'k mut Keyspace>,
        by: u64,
    ) -> Vec<Box<[u8]>> {
        let (keys, flushed) = take_modified(keyspaces);
        if !keys.is_empty() || flushed {
            invalidate_keys(&mut self.table.lock(), clients, &keys, flushed, by);
        }
        keys
    }
}

/// The keys `keyspaces` recorded as modified and whether one was flushed (see [`Keyspace::take_modified`]).
fn take_modified<'k>(keyspaces: impl Iterator<Item = &'k mut Keyspace>) -> (Vec<Box<[u8]>>, bool) {
    let (mut keys, mut flushed) = (Vec::new(), false);
    for ks in keyspaces {
        if let Some((modified, flush)) = ks.take_modified() {
            if keys.is_empty() {
                keys = modified;
            } else {
                keys.extend(modified);
            }
            flushed |= flush;
        }
    }
    (keys, flushed)
}

/// The default-mode invalidations for `keys`, modified by client `by` (0: nobody, as expiry), then for a flush when
/// `flushed`: a null to every tracking client, and the table emptied.
fn invalidate_keys(
    table: &mut Table,
    clients: &ClientRegistry,
    keys: &[Box<[u8]>],
    flushed: bool,
    by: u64,
) {
    for key in keys {
        invalidate_key(table, clients, key, by);
    }
    if flushed {
        for tracker in table.clients.values() {
            let null: &[u8] = if resp3(&tracker.info) {
                b"_\r\n"
            } else {
                b"$-1\r\n"
            };
            send(clients, tracker, null);
        }
        table.keys = HashMap::new();
        table.items = 0;
    }
}

fn resp3(info: &ClientInfo) -> bool {
    info.resp.load(Ordering::Relaxed) == 3
}

/// Redis's `trackingInvalidateKey` for the default mode: tells every client remembered for `key` (but `by` when it
/// asked for NOLOOP, and clients since switched to BCAST) and forgets the key.
fn invalidate_key(table: &mut Table, clients: &ClientRegistry, key: &[u8], by: u64) {
    let Some(ids) = table.keys.remove(key) else {
        return;
    };
    table.items -= ids.len();
    let mut value = Reply::scratch(false);
    value.array(1);
    value.bulk(key);
    for id in ids {
        match table.clients.get(&id) {
            Some(t) if !(t.mode.bcast || t.mode.noloop && id == by) => send(clients, t, &value.buf),
            _ => {}
        }
    }
}

/// BCAST: for each prefix, the modified keys under it (sorted, once each) to each client registered for it; a
/// NOLOOP client is skipped for its own changes.
fn broadcast(table: &Table, clients: &ClientRegistry, keys: &[Box<[u8]>], by: u64) {
    for (prefix, ids) in &table.prefixes {
        let mut matched: Vec<&[u8]> = keys
            .iter()
            .map(|k| &**k)
            .filter(|k| k.starts_with(prefix))
            .collect();
        if matched.is_empty() {
            continue;
        }
        matched.sort_unstable();
        matched.dedup();
        let mut value = Reply::scratch(false);
        value.array(matched.len());
        for k in matched {
            value.bulk(k);
        }
        for id in ids {
            match table.clients.get(id) {
                Some(t) if !(t.mode.noloop && *id == by) => send(clients, t, &value.buf),
                _ => {}
            }
        }
    }
}

/// Redis's `sendTrackingMessage`: `value` (an encoded key array, or a null after a flush) to `tracker`'s
/// connection or its redirect target, in the form that one's protocol allows; a missing redirect target marks the
/// redirect broken and tells a RESP3 client so.
fn send(clients: &ClientRegistry, tracker: &Tracker, value: &[u8]) {
    let redirected;
    let target = if tracker.redirect == 0 {
        &tracker.info
    } else {
        match clients.get(tracker.redirect) {
            Some(t) => {
                redirected = t;
                &redirected
            }
            None => {
                let info = &tracker.info;
                info.tracking.fetch_or(BROKEN_REDIRECT, Ordering::Relaxed);
                if resp3(info) {
                    let mut msg = Reply::scratch(true);
                    msg.push(2);
                    msg.bulk(b"tracking-redir-broken");
                    msg.int(tracker.redirect as i64);
                    info.outbox.deliver(info, &Bytes::from(msg.buf));
                }
                return;
            }
        }
    };
    let mut msg = Reply::scratch(true);
    if resp3(target) {
        msg.push(2);
        msg.bulk(b"invalidate");
    } else if tracker.redirect != 0 && target.is_subscribed() {
        msg.array(3);
        msg.bulk(b"message");
        msg.bulk(CHANNEL);
    } else {
        // RESP2 has no push messages on a connection that is not subscribed.
        return;
    }
    msg.raw(value);
    target.outbox.deliver(target, &Bytes::from(msg.buf));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientRegistry;

    fn reader(clients: &ClientRegistry, tracking: &Tracking) -> Client {
        let addr = "127.0.0.1:0".parse().unwrap();
        let mut client = clients.register(addr, addr);
        client.info.resp.store(3, Ordering::Relaxed);
        tracking.enable(&mut client, Mode::default(), 0, Vec::new());
        client
    }

    fn pushes(client: &mut Client) -> String {
        let mut out = Reply::scratch(true);
        client.inbox.drain(&mut out);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    #[test]
    fn past_the_key_limit_keys_are_evicted_as_invalidations() {
        let (clients, events) = (ClientRegistry::default(), Events::default());
        let tracking = Tracking::with_max_keys(events.clone(), 2);
        let mut c = reader(&clients, &tracking);
        assert_ne!(events.load(Ordering::Relaxed) & notify::TRACKING, 0);
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        tracking.remember(&clients, c.id(), keys.into_iter());
        let stats = tracking.stats();
        assert_eq!((stats.keys, stats.items, stats.clients), (2, 2, 1));
        let got = pushes(&mut c);
        assert!(
            got.starts_with(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\n"),
            "{got}"
        );
        assert_eq!(got.matches("invalidate").count(), 1);
    }

    #[test]
    fn the_last_client_off_empties_the_table_and_clears_the_bit() {
        let (clients, events) = (ClientRegistry::default(), Events::default());
        let tracking = Tracking::new(events.clone());
        let (mut a, mut b) = (reader(&clients, &tracking), reader(&clients, &tracking));
        tracking.remember(&clients, a.id(), [&b"k"[..]].into_iter());
        tracking.disable(&mut a);
        assert_eq!(tracking.stats().keys, 1);
        // A disabled client's id left in the table is skipped.
        invalidate_keys(
            &mut tracking.table.lock(),
            &clients,
            &[Box::from(&b"k"[..])],
            false,
            0,
        );
        assert_eq!(pushes(&mut a), "");
        tracking.disable(&mut b);
        assert_eq!(events.load(Ordering::Relaxed) & notify::TRACKING, 0);
        assert_eq!(tracking.stats().keys, 0);
    }
}
