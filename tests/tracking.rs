//! Client-side caching through the real binary: transcripts compared byte for byte with a real redis-server
//! (argument errors, RESP3 invalidation pushes, BCAST, OPTIN / OPTOUT, NOLOOP, flushes, transactions), and the
//! cases whose replies carry client ids (REDIRECT to a RESP2 subscriber, a broken redirect) or depend on time
//! (expiry) checked on ringkv alone. Every wait for a push is bounded by the raw client's read timeout.

mod common;

use std::time::Duration;

use common::{assert_same_as_redis, Raw, Server, Step};

const ERRORS: &[Step] = &[
    (0, "CLIENT TRACKING on PREFIX a", 1),
    (0, "CLIENT TRACKING on BCAST OPTIN", 1),
    (0, "CLIENT TRACKING on BCAST OPTOUT", 1),
    (0, "CLIENT TRACKING on OPTIN OPTOUT", 1),
    (0, "CLIENT TRACKING maybe", 1),
    (0, "CLIENT TRACKING on REDIRECT 99999", 1),
    (0, "CLIENT TRACKING on REDIRECT x", 1),
    (0, "CLIENT TRACKING on REDIRECT 0", 1),
    (0, "CLIENT TRACKING on FOO", 1),
    (0, "CLIENT TRACKING on PREFIX", 1),
    (0, "CLIENT TRACKING", 1),
    (0, "CLIENT TRACKING on BCAST PREFIX ab PREFIX a", 1),
    (0, "CLIENT TRACKING on BCAST PREFIX a", 1),
    (0, "CLIENT TRACKING on BCAST PREFIX abc", 1),
    (0, "CLIENT TRACKING on BCAST PREFIX b", 1),
    (0, "CLIENT TRACKINGINFO", 1),
    (0, "CLIENT GETREDIR", 1),
    (0, "CLIENT TRACKING on", 1),
    (0, "CLIENT CACHING yes", 1),
    (0, "CLIENT TRACKING off", 1),
    (0, "CLIENT TRACKING off", 1),
    (0, "CLIENT CACHING yes", 1),
    (0, "CLIENT GETREDIR", 1),
    (0, "CLIENT TRACKINGINFO", 1),
    (0, "CLIENT TRACKING on OPTIN NOLOOP", 1),
    (0, "CLIENT CACHING no", 1),
    (0, "CLIENT CACHING maybe", 1),
    (0, "CLIENT CACHING yes", 1),
    (0, "CLIENT TRACKINGINFO", 1),
    (0, "CLIENT TRACKING on OPTOUT", 1),
    (0, "CLIENT TRACKING on BCAST", 1),
    (0, "CLIENT GETREDIR x", 1),
    (0, "CLIENT TRACKINGINFO x", 1),
    (0, "CLIENT CACHING", 1),
    (0, "HELLO 3", 1),
    (0, "CLIENT TRACKINGINFO", 1),
    (0, "RESET", 1),
    (0, "CLIENT GETREDIR", 1),
];

const RESP3_PUSHES: &[Step] = &[
    (0, "HELLO 3", 1),
    (0, "CLIENT TRACKING on", 1),
    (0, "GET k", 1),
    (0, "MGET k k2", 1),
    (1, "SET k 1", 1),
    (0, "", 1),
    // Forgotten after one invalidation: a second write sends nothing until it is read again.
    (1, "SET k 2", 1),
    (1, "SET k2 2", 1),
    (0, "", 1),
    (0, "GET k", 1),
    // Its own write: the reply first, then the push.
    (0, "SET k 3", 2),
    (0, "GET k", 1),
    (1, "DEL k", 1),
    (0, "", 1),
    (0, "GET k", 1),
    (1, "FLUSHDB", 1),
    (0, "", 1),
    (0, "FLUSHALL", 2),
    // Reads and a write inside one transaction: the push follows EXEC's reply.
    (0, "MULTI", 1),
    (0, "GET m", 1),
    (0, "SET m 1", 1),
    (0, "EXEC", 2),
    // A script's reads are remembered, and RENAME changes both keys.
    (0, "EVAL return(redis.call('get',KEYS[1])) 1 s", 1),
    (0, "GET r", 1),
    (1, "SET s 1", 1),
    (0, "", 1),
    (0, "GET s", 1),
    (1, "RENAME s r", 1),
    (0, "", 2),
    (0, "CLIENT TRACKING off", 1),
    (0, "GET z", 1),
    (1, "SET z 1", 1),
    (0, "PING", 1),
];

const MODES: &[Step] = &[
    (0, "HELLO 3", 1),
    (
        0,
        "CLIENT TRACKING on BCAST PREFIX user: PREFIX obj: NOLOOP",
        1,
    ),
    (0, "CLIENT TRACKINGINFO", 1),
    (1, "MSET user:1 a user:2 b obj:1 c zzz d", 1),
    (0, "", 2),
    // NOLOOP: nothing for its own write.
    (0, "SET user:3 x", 1),
    (1, "DEL user:1 nothing", 1),
    (0, "", 1),
    (0, "CLIENT TRACKING off", 1),
    (0, "CLIENT TRACKING on BCAST", 1),
    (1, "SET anything 1", 1),
    (0, "", 1),
    (0, "CLIENT TRACKING off", 1),
    // OPTIN: only the read after CLIENT CACHING yes is remembered.
    (0, "CLIENT TRACKING on OPTIN", 1),
    (0, "GET o1", 1),
    (0, "CLIENT CACHING yes", 1),
    (0, "GET o2", 1),
    (0, "GET o3", 1),
    (1, "MSET o1 1 o2 2 o3 3", 1),
    (0, "", 1),
    (0, "CLIENT TRACKING off", 1),
    // OPTOUT: every read but the one after CLIENT CACHING no.
    (0, "CLIENT TRACKING on OPTOUT", 1),
    (0, "GET o1", 1),
    (0, "CLIENT CACHING no", 1),
    (0, "GET o2", 1),
    (1, "MSET o1 1 o2 2", 1),
    (0, "", 1),
    (0, "CLIENT TRACKING off", 1),
    // NOLOOP in default mode.
    (0, "CLIENT TRACKING on NOLOOP", 1),
    (0, "GET n", 1),
    (0, "SET n 1", 1),
    (0, "GET n", 1),
    (1, "SET n 2", 1),
    (0, "", 1),
];

#[test]
fn tracking_arguments_and_errors_match_redis() {
    assert_same_as_redis(ERRORS);
}

#[test]
fn resp3_invalidation_pushes_match_redis() {
    assert_same_as_redis(RESP3_PUSHES);
}

#[test]
fn bcast_optin_optout_and_noloop_match_redis() {
    assert_same_as_redis(MODES);
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn id_of(c: &mut Raw) -> String {
    c.line("CLIENT ID")
        .trim_start_matches(':')
        .trim()
        .to_string()
}

#[test]
fn resp2_redirect_to_a_subscriber_gets_messages_and_a_gone_target_breaks_it() {
    let server = Server::start(&[]);
    let (mut reader, mut sub, mut writer) = (server.raw(), server.raw(), server.raw());
    let sub_id = id_of(&mut sub);
    sub.line("SUBSCRIBE __redis__:invalidate");
    assert_eq!(
        reader.line(&format!("CLIENT TRACKING on REDIRECT {sub_id}")),
        "+OK\r\n"
    );
    assert_eq!(reader.line("CLIENT GETREDIR"), format!(":{sub_id}\r\n"));
    reader.line("GET x");
    writer.line("SET x 1");
    assert_eq!(
        text(sub.reply()),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nx\r\n"
    );
    writer.line("FLUSHALL");
    assert_eq!(
        text(sub.reply()),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
    );
    // The target leaves: the next invalidation marks the redirect broken (a RESP2 client is told nothing).
    drop(sub);
    std::thread::sleep(Duration::from_millis(200));
    reader.line("GET x");
    writer.line("SET x 2");
    let info = reader.line("CLIENT INFO");
    assert!(info.contains(" flags=tR "), "{info}");
    assert!(info.contains(&format!(" redir={sub_id} ")), "{info}");
    let tracking = reader.line("CLIENT TRACKINGINFO");
    assert!(tracking.contains("broken_redirect"), "{tracking}");
    // A RESP3 client with a broken redirect gets a tracking-redir-broken push.
    let (mut r3, gone) = (server.raw(), server.raw());
    let gone_id = {
        let mut gone = gone;
        let id = id_of(&mut gone);
        r3.line("HELLO 3");
        r3.line(&format!("CLIENT TRACKING on REDIRECT {id}"));
        id
    };
    std::thread::sleep(Duration::from_millis(200));
    r3.line("GET y");
    writer.line("SET y 1");
    assert_eq!(
        text(r3.reply()),
        format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{gone_id}\r\n")
    );
}

#[test]
fn resp2_without_redirect_gets_nothing_and_disconnect_leaves_the_table() {
    let server = Server::start(&[]);
    let (mut reader, mut writer) = (server.raw(), server.raw());
    assert_eq!(reader.line("CLIENT TRACKING on"), "+OK\r\n");
    reader.line("GET k");
    writer.line("SET k 1");
    // Nothing queued before PING's reply.
    assert_eq!(reader.line("PING"), "+PONG\r\n");
    let info = reader.line("CLIENT INFO");
    assert!(
        info.contains(" flags=t ") && info.contains(" redir=0 "),
        "{info}"
    );
    drop(reader);
    std::thread::sleep(Duration::from_millis(200));
    let list = writer.line("CLIENT LIST");
    assert!(!list.contains("flags=t"), "{list}");
}

#[test]
fn an_expired_key_is_invalidated_by_active_expiry() {
    let server = Server::start(&[]);
    let (mut reader, mut writer) = (server.raw(), server.raw());
    reader.line("HELLO 3");
    reader.line("CLIENT TRACKING on");
    writer.line("SET e 1 PX 300");
    assert_eq!(reader.line("GET e"), "$1\r\n1\r\n");
    // Nobody touches the key: the active expiry deletes it and sends the push.
    assert_eq!(
        text(reader.reply()),
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\ne\r\n"
    );
}

#[test]
fn a_blocked_pop_served_by_a_push_invalidates_the_list() {
    let server = Server::start(&[]);
    let (mut reader, mut popper, mut pusher) = (server.raw(), server.raw(), server.raw());
    reader.line("HELLO 3");
    reader.line("CLIENT TRACKING on BCAST PREFIX dst");
    popper.send_cmd(&["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    pusher.line("RPUSH src a");
    assert_eq!(popper.reply(), b"$1\r\na\r\n");
    assert_eq!(
        text(reader.reply()),
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\ndst\r\n"
    );
}
