//! Keyspace notifications (Redis's `notify.c`): the `notify-keyspace-events` classes, and publishing one event as
//! `__keyspace@<db>__:<key>` (message: the event name) and/or `__keyevent@<db>__:<event>` (message: the key) through
//! the ordinary Pub/Sub registry.
//!
//! The enabled classes live in one [`AtomicU32`] shared by the settings (CONFIG SET writes it) and every keyspace.
//! Disabled (the default) costs a relaxed load and a test: nothing is formatted or allocated unless a class the event
//! belongs to is enabled, together with `K` or `E`.
//!
//! Events are published while the command still holds its shard locks, like Redis publishes inside the command.
//! That is safe because [`PubSub::publish`] takes only the registry's own lock and never waits for anything else
//! (a full subscriber queue disconnects the subscriber instead of blocking), and nobody holding the registry's lock
//! ever waits for a shard.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::pubsub::PubSub;
use crate::store::Keyspace;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key deleted because its deadline passed.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key evicted for maxmemory (ringkv never evicts).
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: a read that found no key (`keymiss`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (ringkv has no modules).
pub const MODULE: u32 = 1 << 13;
/// `n`: a key created.
pub const NEW: u32 = 1 << 14;
/// The classes a keyspace raises itself during a command (see [`crate::store::Keyspace::take_events`]): they are
/// published after it, or before the command's own next event.
pub const RAISED: u32 = EXPIRED | NEW | KEY_MISS;
/// Not a class: set while any client has CLIENT TRACKING on, so that keyspaces record the keys they modify for
/// [`crate::tracking`] with the same relaxed load that gates their events. Never shown or parsed.
pub const TRACKING: u32 = 1 << 31;
/// `A`: `g$lshzxetd` (not `n` or `m`, as in Redis).
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The enabled classes, shared by the settings and every keyspace.
pub type Events = std::sync::Arc<AtomicU32>;

/// Parses a `notify-keyspace-events` value (Redis's `keyspaceEventsStringToFlags`); `None` for an unknown letter.
pub fn parse(classes: &[u8]) -> Option<u32> {
    classes.iter().try_fold(0, |flags, c| {
        Some(
            flags
                | match c {
                    b'A' => ALL,
                    b'g' => GENERIC,
                    b'$' => STRING,
                    b'l' => LIST,
                    b's' => SET,
                    b'h' => HASH,
                    b'z' => ZSET,
                    b'x' => EXPIRED,
                    b'e' => EVICTED,
                    b'K' => KEYSPACE,
                    b'E' => KEYEVENT,
                    b't' => STREAM,
                    b'm' => KEY_MISS,
                    b'd' => MODULE,
                    b'n' => NEW,
                    _ => return None,
                },
        )
    })
}

/// The canonical spelling of `flags` (Redis's `keyspaceEventsFlagsToString`): `A` for every class of [`ALL`] (which
/// then hides `n`, as in Redis), else the class letters in Redis's order; then `K`, `E`, `m`.
pub fn format(flags: u32) -> String {
    const CLASSES: [(u32, char); 11] = [
        (GENERIC, 'g'),
        (STRING, '$'),
        (LIST, 'l'),
        (SET, 's'),
        (HASH, 'h'),
        (ZSET, 'z'),
        (EXPIRED, 'x'),
        (EVICTED, 'e'),
        (STREAM, 't'),
        (MODULE, 'd'),
        (NEW, 'n'),
    ];
    const TAIL: [(u32, char); 3] = [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')];
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        out.extend(
            CLASSES
                .iter()
                .filter(|(f, _)| flags & f != 0)
                .map(|(_, c)| c),
        );
    }
    out.extend(TAIL.iter().filter(|(f, _)| flags & f != 0).map(|(_, c)| c));
    out
}

/// True when an event of `class` is published under `flags`: its class is enabled, and at least one of `K` / `E`.
#[inline]
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

/// The enabled classes now (one relaxed load: the value only gates what gets published).
#[inline]
pub fn load(events: &AtomicU32) -> u32 {
    events.load(Ordering::Relaxed)
}

/// Publishes event `event` for `key` of database `db` on the channels `flags` enables (Redis's
/// `notifyKeyspaceEvent`, after its class check, which the caller made with [`wanted`]).
#[cold]
pub fn publish(pubsub: &PubSub, flags: u32, event: &str, key: &[u8], db: usize) {
    if flags & KEYSPACE != 0 {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(key);
        pubsub.publish(&channel, event.as_bytes());
    }
    if flags & KEYEVENT != 0 {
        pubsub.publish(format!("__keyevent@{db}__:{event}").as_bytes(), key);
    }
}

/// Publishes the events keyspace `ks` (database `db`) raised itself (`expired`, `new`, `keymiss`; see
/// [`Keyspace::take_events`]), oldest first.
#[cold]
pub fn publish_raised(pubsub: &PubSub, flags: u32, ks: &mut Keyspace, db: usize) {
    if ks.has_events() {
        for (event, key) in ks.take_events() {
            publish(pubsub, flags, event, &key, db);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> Option<String> {
        parse(s.as_bytes()).map(format)
    }

    #[test]
    fn flags_read_back_in_redis_canonical_order() {
        // Each pair was checked with CONFIG SET / CONFIG GET on redis-server 7.0.15.
        for (set, get) in [
            ("KEA", "AKE"),
            ("Kx", "xK"),
            ("gg", "g"),
            ("A", "A"),
            ("Ag$lshzxetdn", "A"),
            ("", ""),
            ("EnmK", "nKEm"),
            ("g$lshzxetd", "A"),
            ("KEd", "dKE"),
            ("Kt$lz", "$lztK"),
        ] {
            assert_eq!(round_trip(set).as_deref(), Some(get), "{set}");
        }
    }

    #[test]
    fn an_unknown_letter_is_refused() {
        for bad in ["Kq", "a", "k", " K", "KE "] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn an_event_needs_its_class_and_a_channel_kind() {
        let flags = parse(b"Kg").unwrap();
        assert!(wanted(flags, GENERIC));
        assert!(!wanted(flags, STRING));
        // A class without K or E publishes nothing.
        assert!(!wanted(parse(b"A").unwrap(), GENERIC));
        // `A` leaves out `n`: a new key is announced only when asked for by name.
        assert!(!wanted(parse(b"AKE").unwrap(), NEW));
        assert!(wanted(parse(b"nE").unwrap(), NEW));
    }
}
