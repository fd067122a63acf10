//! Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, the sharded SSUBSCRIBE, SUNSUBSCRIBE
//! and SPUBLISH (standalone semantics: one node holds every shard channel), and the PUBSUB container.
//!
//! The shard commands name their channels where Redis's key specs put keys (flagged `NOT_KEY`, for cluster routing);
//! their specs carry [`flag::NOT_KEY`](super::flag::NOT_KEY), so COMMAND INFO reports the positions while the
//! dispatcher locks no shard for them and COMMAND GETKEYS finds no key, as in Redis.
//!
//! The registry is [`crate::pubsub`]; a client's own subscriptions live in `Client::pubsub`, which is `Some` exactly
//! while it has one (RESP2 subscriber mode, see [`subscriber_mode_error`]). Messages reach an idle subscriber through
//! its connection's queue (src/connection.rs).

use std::sync::atomic::Ordering;

use super::{flag::*, reply_help, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::client::Client;
use crate::protocol::{Argv, Reply};
use crate::pubsub::{Kind, Subscriptions};
use crate::server::ServerState;

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        Keys::None,
        subscribe,
    ),
    CommandSpec::new(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        Keys::None,
        unsubscribe,
    ),
    CommandSpec::new(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        Keys::None,
        psubscribe,
    ),
    CommandSpec::new(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        Keys::None,
        punsubscribe,
    ),
    CommandSpec::new(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        Keys::None,
        publish,
    ),
    CommandSpec::new(
        "ssubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | NOT_KEY,
        Keys::ALL,
        ssubscribe,
    ),
    CommandSpec::new(
        "sunsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | NOT_KEY,
        Keys::ALL,
        sunsubscribe,
    ),
    CommandSpec::new(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE | NOT_KEY,
        Keys::FIRST,
        spublish,
    ),
    CommandSpec::container("pubsub", 0, PUBSUB_SUBCOMMANDS),
];

const PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "channels",
        -2,
        PUBSUB | LOADING | STALE,
        Keys::None,
        pubsub_channels,
    ),
    CommandSpec::new(
        "numsub",
        -2,
        PUBSUB | LOADING | STALE,
        Keys::None,
        pubsub_numsub,
    ),
    CommandSpec::new(
        "numpat",
        2,
        PUBSUB | LOADING | STALE,
        Keys::None,
        pubsub_numpat,
    ),
    CommandSpec::new(
        "shardchannels",
        -2,
        PUBSUB | LOADING | STALE,
        Keys::None,
        pubsub_shardchannels,
    ),
    CommandSpec::new(
        "shardnumsub",
        -2,
        PUBSUB | LOADING | STALE,
        Keys::None,
        pubsub_shardnumsub,
    ),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, pubsub_help),
];

/// The commands that change subscriptions and confirm each change.
const SUBSCRIPTION_CHANGES: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
];

/// Commands a RESP2 client may run while subscribed (top-level names), besides [`SUBSCRIPTION_CHANGES`].
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &["ping", "quit", "reset"];

/// Redis's refusal of a command (`parent`, or `parent|sub`) for a RESP2 client in subscriber mode, or `None` when
/// it may run. RESP3 clients may run anything while subscribed.
pub fn subscriber_mode_error(
    client: &Client,
    resp3: bool,
    parent: &str,
    sub: Option<&str>,
) -> Option<CmdError> {
    if client.pubsub.is_none() || resp3 {
        return None;
    }
    refused_while_subscribed(parent, sub)
}

/// Redis's refusal of a command (`parent`, or `parent|sub`) in RESP2 subscriber mode, or `None` when it is one of
/// those allowed there (shared with the proxy, which tracks its clients' subscriptions itself).
pub fn refused_while_subscribed(parent: &str, sub: Option<&str>) -> Option<CmdError> {
    if SUBSCRIPTION_CHANGES.contains(&parent) || ALLOWED_WHILE_SUBSCRIBED.contains(&parent) {
        return None;
    }
    let name = match sub {
        Some(sub) => format!("{parent}|{sub}"),
        None => parent.to_string(),
    };
    Some(CmdError::err(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this \
         context"
    )))
}

/// Drops every subscription of `client` without replies (RESET, disconnect).
pub fn unsubscribe_all(server: &ServerState, client: &mut Client) {
    if let Some(mut subs) = client.pubsub.take() {
        server.pubsub.unsubscribe_all(&mut subs);
        record_counts(client, None);
    }
}

/// Mirrors the subscription counts in the client's shared record (CLIENT LIST `sub=` / `psub=` / `ssub=`).
fn record_counts(client: &Client, subs: Option<&Subscriptions>) {
    let info = &client.info;
    for (kind, field) in [
        (Kind::Channel, &info.sub),
        (Kind::Pattern, &info.psub),
        (Kind::Shard, &info.ssub),
    ] {
        field.store(subs.map_or(0, |s| s.len(kind) as u32), Ordering::Relaxed);
    }
}

/// Whether command `name` confirms subscription changes: its confirmations are pushes, which CLIENT REPLY OFF|SKIP
/// does not silence (Redis's `CLIENT_PUSHING`), unlike its errors.
pub fn confirms_subscriptions(name: &[u8]) -> bool {
    SUBSCRIPTION_CHANGES
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c.as_bytes()))
}

/// One `subscribe`-style confirmation: `[event, name or null, count]` as a push (an array in RESP2).
pub fn confirm(out: &mut Reply, event: &str, name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(event.as_bytes());
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

fn subscribe(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    subscribe_to(ctx, argv, Kind::Channel, "subscribe")
}

fn psubscribe(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    subscribe_to(ctx, argv, Kind::Pattern, "psubscribe")
}

fn unsubscribe(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    unsubscribe_from(ctx, argv, Kind::Channel, "unsubscribe")
}

fn punsubscribe(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    unsubscribe_from(ctx, argv, Kind::Pattern, "punsubscribe")
}

fn ssubscribe(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    // Redis refuses it to a client that cannot block (inside EXEC), where SUBSCRIBE is let through.
    if ctx.client.in_exec {
        return Err(CmdError::err(
            "SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    subscribe_to(ctx, argv, Kind::Shard, "ssubscribe")
}

fn sunsubscribe(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    unsubscribe_from(ctx, argv, Kind::Shard, "sunsubscribe")
}

fn subscribe_to(ctx: &mut Ctx, argv: Argv, kind: Kind, event: &str) -> CmdResult {
    let info = &ctx.client.info;
    let subs = ctx
        .client
        .pubsub
        .get_or_insert_with(|| Box::new(Subscriptions::new(info.clone())));
    for name in argv.iter_from(1) {
        ctx.server.pubsub.subscribe(subs, kind, name);
        confirm(ctx.out, event, Some(name), subs.count(kind));
    }
    record_counts(ctx.client, ctx.client.pubsub.as_deref());
    Ok(())
}

/// Unsubscribes from the named channels (patterns, shard channels), or from all of them when none is named; one
/// confirmation each, or a single one with a null name when there was nothing to leave, as Redis replies. The client
/// leaves subscriber mode when no subscription of any kind is left.
fn unsubscribe_from(ctx: &mut Ctx, argv: Argv, kind: Kind, event: &str) -> CmdResult {
    let names: Vec<Vec<u8>> = if argv.len() > 1 {
        argv.iter_from(1).map(<[u8]>::to_vec).collect()
    } else {
        ctx.client
            .pubsub
            .as_ref()
            .map_or_else(Vec::new, |s| s.names(kind))
    };
    if names.is_empty() {
        let count = ctx.client.pubsub.as_ref().map_or(0, |s| s.count(kind));
        confirm(ctx.out, event, None, count);
        return Ok(());
    }
    for name in &names {
        let count = match ctx.client.pubsub.as_deref_mut() {
            Some(subs) => {
                ctx.server.pubsub.unsubscribe(subs, kind, name);
                subs.count(kind)
            }
            None => 0,
        };
        confirm(ctx.out, event, Some(name), count);
    }
    // Leaving subscriber mode: messages already queued stay in the connection's inbox and are still sent.
    if ctx.client.pubsub.as_ref().is_some_and(|s| s.total() == 0) {
        ctx.client.pubsub = None;
    }
    record_counts(ctx.client, ctx.client.pubsub.as_deref());
    Ok(())
}

fn publish(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let receivers = ctx.server.pubsub.publish(argv.get(1), argv.get(2));
    ctx.out.int(receivers as i64);
    Ok(())
}

fn spublish(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let receivers = ctx.server.pubsub.spublish(argv.get(1), argv.get(2));
    ctx.out.int(receivers as i64);
    Ok(())
}

fn pubsub_channels(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    reply_channels(ctx, argv, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    reply_channels(ctx, argv, Kind::Shard)
}

/// PUBSUB CHANNELS / SHARDCHANNELS [pattern]: the active channels of `kind`.
fn reply_channels(ctx: &mut Ctx, argv: Argv, kind: Kind) -> CmdResult {
    let pattern = optional_pattern(argv)?;
    let channels = ctx.server.pubsub.channels(kind, pattern);
    ctx.out.array(channels.len());
    for c in &channels {
        ctx.out.bulk(c);
    }
    Ok(())
}

/// The optional pattern of CHANNELS / SHARDCHANNELS; more arguments get Redis's subcommand syntax error, which
/// names the subcommand as the client spelled it.
fn optional_pattern(argv: Argv<'_>) -> Result<Option<&[u8]>, CmdError> {
    match argv.len() {
        2 => Ok(None),
        3 => Ok(Some(argv.get(2))),
        _ => Err(CmdError::subcommand_syntax("PUBSUB", argv.get(1))),
    }
}

fn pubsub_numsub(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    reply_numsub(ctx, argv, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    reply_numsub(ctx, argv, Kind::Shard)
}

/// PUBSUB NUMSUB / SHARDNUMSUB [channel ...]: each channel with its number of subscribers of `kind`.
fn reply_numsub(ctx: &mut Ctx, argv: Argv, kind: Kind) -> CmdResult {
    ctx.out.array((argv.len() - 2) * 2);
    for channel in argv.iter_from(2) {
        ctx.out.bulk(channel);
        ctx.out.int(ctx.server.pubsub.numsub(kind, channel) as i64);
    }
    Ok(())
}

fn pubsub_numpat(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.int(ctx.server.pubsub.numpat() as i64);
    Ok(())
}

fn pubsub_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;
    use crate::protocol::Reply;

    #[test]
    fn subscribe_confirms_each_channel_with_the_running_count() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("SUBSCRIBE c1 c2 c1"),
            "*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nc2\r\n:2\r\n\
             *3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:2\r\n"
        );
        assert_eq!(
            c.cmd("PSUBSCRIBE h?llo"),
            "*3\r\n$10\r\npsubscribe\r\n$5\r\nh?llo\r\n:3\r\n"
        );
        assert_eq!(
            c.cmd("UNSUBSCRIBE zz"),
            "*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:3\r\n"
        );
    }

    #[test]
    fn unsubscribe_with_nothing_subscribed_replies_a_null_channel() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("UNSUBSCRIBE"),
            "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(
            c.cmd("PUNSUBSCRIBE"),
            "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
        );
        c.cmd("HELLO 3");
        assert_eq!(
            c.cmd("UNSUBSCRIBE"),
            ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
        );
    }

    #[test]
    fn unsubscribe_all_leaves_subscriber_mode() {
        let mut c = TestClient::new();
        c.cmd("SUBSCRIBE a");
        c.cmd("PSUBSCRIBE p");
        assert_eq!(
            c.cmd("UNSUBSCRIBE"),
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n"
        );
        assert!(c.client.pubsub.is_some());
        assert_eq!(
            c.cmd("PUNSUBSCRIBE"),
            "*3\r\n$12\r\npunsubscribe\r\n$1\r\np\r\n:0\r\n"
        );
        assert!(c.client.pubsub.is_none());
        assert_eq!(c.cmd("GET x"), "$-1\r\n");
    }

    #[test]
    fn resp2_subscriber_mode_allows_only_pubsub_ping_quit_reset() {
        let mut c = TestClient::new();
        c.cmd("SUBSCRIBE a");
        assert_eq!(
            c.cmd("GET x"),
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed \
             in this context\r\n"
        );
        assert!(c
            .cmd("PUBSUB NUMPAT")
            .starts_with("-ERR Can't execute 'pubsub|numpat'"));
        assert_eq!(c.cmd("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        assert_eq!(c.cmd("PING hi"), "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
        assert_eq!(c.cmd("RESET"), "+RESET\r\n");
        assert_eq!(c.cmd("PUBSUB NUMSUB a"), "*2\r\n$1\r\na\r\n:0\r\n");
    }

    #[test]
    fn shard_confirmations_count_shard_channels_and_mode_lasts_while_any_is_left() {
        let mut c = TestClient::new();
        c.cmd("SUBSCRIBE c");
        assert_eq!(
            c.cmd("SSUBSCRIBE s1 s2"),
            "*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n*3\r\n$10\r\nssubscribe\r\n$2\r\ns2\r\n:2\r\n"
        );
        assert_eq!(
            c.cmd("UNSUBSCRIBE"),
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n"
        );
        assert!(c.cmd("GET x").starts_with("-ERR Can't execute 'get'"));
        assert_eq!(
            c.cmd("SUNSUBSCRIBE s2 s1"),
            "*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns2\r\n:1\r\n*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:0\r\n"
        );
        assert_eq!(c.cmd("GET x"), "$-1\r\n");
        assert_eq!(
            c.cmd("SUNSUBSCRIBE"),
            "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n"
        );
    }

    #[test]
    fn shard_channels_show_in_introspection_and_go_with_reset() {
        let mut c = TestClient::new();
        let mut other = TestClient::on(c.server.clone());
        other.cmd("SSUBSCRIBE s1 s2");
        assert_eq!(c.cmd("PUBSUB SHARDCHANNELS s1"), "*1\r\n$2\r\ns1\r\n");
        assert_eq!(
            c.cmd("PUBSUB SHARDNUMSUB s1 zz"),
            "*4\r\n$2\r\ns1\r\n:1\r\n$2\r\nzz\r\n:0\r\n"
        );
        assert_eq!(c.cmd("PUBSUB CHANNELS"), "*0\r\n");
        assert_eq!(c.cmd("SPUBLISH s1 m"), ":1\r\n");
        assert_eq!(c.cmd("PUBLISH s1 m"), ":0\r\n");
        let list = c.cmd("CLIENT LIST");
        assert!(list.contains("flags=P db=0 sub=0 psub=0 ssub=2 "), "{list}");
        assert!(c.cmd("CLIENT LIST TYPE pubsub").contains("ssub=2"));
        assert!(c.cmd("INFO stats").contains("pubsubshard_channels:2\r\n"));
        // The channels are not keys: nothing to lock, and COMMAND GETKEYS finds none; COMMAND INFO keeps Redis's range.
        assert_eq!(
            c.cmd("COMMAND GETKEYS SPUBLISH ch m"),
            "-ERR The command has no key arguments\r\n"
        );
        assert!(c
            .cmd("COMMAND INFO ssubscribe")
            .contains(":1\r\n:-1\r\n:1\r\n"));
        other.cmd("RESET");
        assert_eq!(c.cmd("PUBSUB SHARDCHANNELS"), "*0\r\n");
        assert_eq!(c.cmd("SPUBLISH s1 m"), ":0\r\n");
    }

    #[test]
    fn ssubscribe_is_refused_inside_exec() {
        let mut c = TestClient::new();
        c.cmd("MULTI");
        assert_eq!(c.cmd("SSUBSCRIBE x"), "+QUEUED\r\n");
        assert_eq!(
            c.cmd("EXEC"),
            "*1\r\n-ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client\r\n"
        );
        assert!(c.client.pubsub.is_none());
    }

    #[test]
    fn resp3_subscribers_may_run_any_command() {
        let mut c = TestClient::new();
        c.cmd("HELLO 3");
        assert_eq!(
            c.cmd("SUBSCRIBE r"),
            ">3\r\n$9\r\nsubscribe\r\n$1\r\nr\r\n:1\r\n"
        );
        assert_eq!(c.cmd("GET x"), "_\r\n");
        assert_eq!(c.cmd("PING"), "+PONG\r\n");
        // Publishing to oneself: the reply first, the push after it (Redis 7.2; 7.0 sent the push first).
        assert_eq!(c.cmd("PUBLISH r m"), ":1\r\n");
        let mut queued = Reply::new(true);
        c.client.inbox.drain(&mut queued);
        assert_eq!(queued.buf, b">3\r\n$7\r\nmessage\r\n$1\r\nr\r\n$1\r\nm\r\n");
    }

    #[test]
    fn subscribe_inside_multi_runs_at_exec() {
        let mut c = TestClient::new();
        c.cmd("MULTI");
        assert_eq!(c.cmd("PSUBSCRIBE x"), "+QUEUED\r\n");
        assert_eq!(c.cmd("GET a"), "+QUEUED\r\n");
        assert_eq!(
            c.cmd("EXEC"),
            "*2\r\n*3\r\n$10\r\npsubscribe\r\n$1\r\nx\r\n:1\r\n$-1\r\n"
        );
        assert!(c.cmd("GET a").starts_with("-ERR Can't execute 'get'"));
    }

    #[test]
    fn pubsub_introspection_reads_like_redis() {
        let mut c = TestClient::new();
        let mut other = TestClient::on(c.server.clone());
        other.cmd("SUBSCRIBE c1 c2");
        other.cmd("PSUBSCRIBE c* d*");
        assert_eq!(
            c.cmd("PUBSUB NUMSUB c1 zz"),
            "*4\r\n$2\r\nc1\r\n:1\r\n$2\r\nzz\r\n:0\r\n"
        );
        assert_eq!(c.cmd("PUBSUB NUMSUB"), "*0\r\n");
        assert_eq!(c.cmd("PUBSUB NUMPAT"), ":2\r\n");
        assert_eq!(c.cmd("PUBSUB CHANNELS c1*"), "*1\r\n$2\r\nc1\r\n");
        assert!(c.cmd("PUBSUB CHANNELS").starts_with("*2\r\n"));
        assert_eq!(
            c.cmd("PUBSUB CHANNELS a b"),
            "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
        );
        assert_eq!(c.cmd("PUBLISH c1 m"), ":2\r\n");
        assert_eq!(c.cmd("PUBLISH dd m"), ":1\r\n");
        assert_eq!(
            c.cmd("PUBSUB FOO"),
            "-ERR unknown subcommand 'FOO'. Try PUBSUB HELP.\r\n"
        );
        assert!(c
            .cmd("PUBSUB HELP")
            .starts_with("*14\r\n+PUBSUB <subcommand>"));
        assert_eq!(
            c.cmd("PUBLISH a"),
            "-ERR wrong number of arguments for 'publish' command\r\n"
        );
        let list = c.cmd("CLIENT LIST");
        assert!(list.contains("flags=P db=0 sub=2 psub=2 "), "{list}");
        let stats = c.cmd("INFO stats");
        assert!(
            stats.contains("pubsub_channels:2\r\npubsub_patterns:2\r\npubsubshard_channels:0\r\n"),
            "{stats}"
        );
        other.cmd("RESET");
        assert_eq!(c.cmd("PUBSUB NUMPAT"), ":0\r\n");
        assert_eq!(c.cmd("PUBLISH c1 m"), ":0\r\n");
    }
}
