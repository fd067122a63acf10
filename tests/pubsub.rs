//! Pub/Sub through the real binary: the same transcript run against ringkv and a real redis-server must give the same
//! bytes; subscribers receive while idle; a subscriber that stops reading is disconnected without holding the
//! publisher back or growing the server's memory; one PUBLISH reaches a thousand subscribers.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{assert_same_as_redis, Raw, Server, Step};

/// Subscriber mode, pushes, patterns and introspection, in an order whose replies Redis makes deterministic.
const TRANSCRIPT: &[Step] = &[
    (0, "UNSUBSCRIBE", 1),
    (0, "PUNSUBSCRIBE", 1),
    (0, "UNSUBSCRIBE nothing", 1),
    (0, "SUBSCRIBE c1 c2 c1", 3),
    (0, "GET x", 1),
    (0, "PUBSUB NUMPAT", 1),
    (0, "PING", 1),
    (0, "PING hi", 1),
    (0, "UNSUBSCRIBE zz", 1),
    (0, "PSUBSCRIBE h?llo c*", 2),
    (1, "PUBLISH c1 m1", 1),
    (1, "PUBLISH hello m2", 1),
    (1, "PUBLISH zz x", 1),
    (0, "", 3),
    (1, "PUBSUB NUMSUB c1 c2 zz", 1),
    (1, "PUBSUB NUMSUB", 1),
    (1, "PUBSUB CHANNELS c1*", 1),
    (1, "PUBSUB CHANNELS a b", 1),
    (1, "PUBSUB channels a b", 1),
    (1, "PUBSUB SHARDCHANNELS", 1),
    (1, "PUBSUB SHARDCHANNELS x y", 1),
    (1, "PUBSUB SHARDNUMSUB c1 zz", 1),
    (1, "PUBSUB NUMPAT", 1),
    (1, "PUBSUB FOO", 1),
    (1, "PUBSUB", 1),
    (1, "PUBSUB NUMPAT x", 1),
    (1, "PUBLISH a", 1),
    (1, "SUBSCRIBE", 1),
    (0, "UNSUBSCRIBE c2", 1),
    (0, "UNSUBSCRIBE c1", 1),
    (0, "PUNSUBSCRIBE c* h?llo", 2),
    (0, "GET x", 1),
    // Redis glob semantics for patterns: classes, negation, escapes, literal braces.
    // Each channel matches at most one pattern: Redis's order among several matching patterns is its dict's.
    (0, "PSUBSCRIBE h[ae]llo x[^e]y a\\*b *{x}*", 4),
    (1, "PUBLISH hallo 1", 1),
    (1, "PUBLISH hello 2", 1),
    (1, "PUBLISH hillo 3", 1),
    (1, "PUBLISH xey 4", 1),
    (1, "PUBLISH xzy 5", 1),
    (1, "PUBLISH a*b 6", 1),
    (1, "PUBLISH axb 7", 1),
    (1, "PUBLISH q{x} 8", 1),
    (0, "", 5),
    (0, "SET x 1", 1),
    (0, "RESET", 1),
    (1, "PUBSUB NUMPAT", 1),
    (0, "GET x", 1),
    // RESP3: pushes, and any command allowed while subscribed.
    (2, "HELLO 3", 1),
    (2, "SUBSCRIBE r", 1),
    (2, "GET x", 1),
    (2, "PING", 1),
    (1, "PUBLISH r hey", 1),
    (2, "", 1),
    (2, "UNSUBSCRIBE", 1),
    (2, "UNSUBSCRIBE", 1),
    (2, "PSUBSCRIBE r*", 1),
    (1, "PUBLISH rr x", 1),
    (2, "", 1),
    // Scripts may publish, not subscribe.
    (1, "EVAL return(redis.call('publish','rr','lua')) 0", 1),
    (2, "", 1),
    (1, "EVAL return(redis.call('subscribe','x')) 0", 1),
    // SUBSCRIBE inside MULTI runs at EXEC, and the client is then in subscriber mode.
    (3, "MULTI", 1),
    (3, "SUBSCRIBE m", 1),
    (3, "PSUBSCRIBE n*", 1),
    (3, "GET a", 1),
    (3, "EXEC", 1),
    (3, "GET a", 1),
    (3, "CLIENT INFO", 1),
    (3, "QUIT", 1),
];

/// Sharded Pub/Sub (standalone semantics): its own namespace, counts of shard channels only in its confirmations,
/// subscriber mode lasting while any subscription of any kind is left, introspection, RESET and MULTI.
const SHARD_TRANSCRIPT: &[Step] = &[
    (0, "SUNSUBSCRIBE", 1),
    (0, "SSUBSCRIBE s1 s2 s1", 3),
    (0, "SUBSCRIBE c1", 1),
    (0, "PSUBSCRIBE *", 1),
    (0, "SSUBSCRIBE s3", 1),
    (0, "GET x", 1),
    (0, "PUBSUB SHARDNUMSUB s1", 1),
    (0, "SUNSUBSCRIBE zz", 1),
    (0, "PING", 1),
    (1, "PUBSUB SHARDNUMSUB s1 zz c1", 1),
    (1, "PUBSUB SHARDNUMSUB", 1),
    (1, "PUBSUB SHARDCHANNELS s[3]", 1),
    (1, "PUBSUB SHARDCHANNELS nothing*", 1),
    (1, "PUBSUB NUMSUB s1 c1", 1),
    (1, "SPUBLISH s1 hi", 1),
    (0, "", 1),
    // PUBLISH reaches the pattern only; SPUBLISH to a plain channel reaches nobody.
    (1, "PUBLISH s1 x", 1),
    (0, "", 1),
    (1, "SPUBLISH c1 x", 1),
    (1, "SPUBLISH nobody x", 1),
    (1, "SPUBLISH a", 1),
    (1, "SSUBSCRIBE", 1),
    (0, "SUNSUBSCRIBE s3 s2 s1", 3),
    (0, "GET x", 1),
    (0, "UNSUBSCRIBE", 1),
    (0, "SSUBSCRIBE last", 1),
    (0, "PUNSUBSCRIBE", 1),
    (0, "GET x", 1),
    (0, "SUNSUBSCRIBE", 1),
    (0, "GET x", 1),
    (0, "SUNSUBSCRIBE", 1),
    (0, "SSUBSCRIBE r", 1),
    (0, "RESET", 1),
    (1, "PUBSUB SHARDNUMSUB r", 1),
    (1, "COMMAND GETKEYS SPUBLISH ch m", 1),
    (1, "COMMAND GETKEYS SSUBSCRIBE a b", 1),
    // RESP3: pushes, and any command allowed while shard-subscribed.
    (2, "HELLO 3", 1),
    (2, "SSUBSCRIBE r", 1),
    (2, "GET x", 1),
    (1, "SPUBLISH r hey", 1),
    (2, "", 1),
    (2, "SUNSUBSCRIBE", 1),
    (2, "SUNSUBSCRIBE", 1),
    // Unlike SUBSCRIBE, SSUBSCRIBE is refused inside EXEC (Redis's DENY BLOCKING client).
    (3, "MULTI", 1),
    (3, "SSUBSCRIBE m", 1),
    (3, "EXEC", 1),
    (3, "GET a", 1),
    (3, "EVAL return(redis.call('spublish','m','lua')) 0", 1),
    (3, "EVAL return(redis.call('ssubscribe','x')) 0", 1),
];

/// A RESP3 subscriber blocked in BLPOP still receives messages, then its BLPOP reply.
const BLOCKED_SUBSCRIBER: &[Step] = &[
    (0, "HELLO 3", 1),
    (0, "SUBSCRIBE c", 1),
    (0, "BLPOP list 0", 0),
    (1, "PUBLISH c while-blocked", 1),
    (0, "", 1),
    (1, "LPUSH list x", 1),
    (0, "", 1),
];

#[test]
fn replies_match_redis_byte_for_byte() {
    assert_same_as_redis(TRANSCRIPT);
}

#[test]
fn sharded_pubsub_replies_match_redis_byte_for_byte() {
    assert_same_as_redis(SHARD_TRANSCRIPT);
}

#[test]
fn a_blocked_resp3_subscriber_still_receives_messages() {
    assert_same_as_redis(BLOCKED_SUBSCRIBER);
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected_while_others_go_on() {
    const MESSAGES: usize = 200_000;
    const BATCH: usize = 1_000;
    let server = Server::start(&[]);
    let mut publisher = server.raw();
    let mut slow = server.raw();
    assert!(slow.line("SUBSCRIBE feed").contains("subscribe"));
    let mut fast = server.raw();
    assert!(fast.line("SUBSCRIBE feed").contains("subscribe"));
    let before = publisher.memory_info("used_memory_rss");

    let payload = vec![b'x'; 1024];
    let one = format!(
        "*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n$1024\r\n{}\r\n",
        "x".repeat(1024)
    )
    .len();
    // The fast subscriber counts bytes: every message has the same encoding.
    let reader = std::thread::spawn(move || {
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        while got < MESSAGES * one {
            let n = fast.stream.read(&mut buf).expect("fast subscriber reads");
            assert!(n > 0, "fast subscriber was disconnected after {got} bytes");
            got += n;
        }
        (got, fast)
    });
    let started = Instant::now();
    let mut request = Vec::new();
    for _ in 0..BATCH {
        request.extend_from_slice(&common::encode(&[&b"PUBLISH"[..], b"feed", &payload]));
    }
    for _ in 0..MESSAGES / BATCH {
        publisher.send(&request);
        for _ in 0..BATCH {
            let reply = publisher.reply();
            assert!(reply == b":2\r\n" || reply == b":1\r\n", "{reply:?}");
        }
    }
    let (got, _fast) = reader.join().unwrap();
    assert_eq!(got, MESSAGES * one);
    // 200 MB went out; the slow one could hold at most its 32 MB queue (plus socket buffers).
    let after = publisher.memory_info("used_memory_rss");
    assert!(
        after < before + 128 * 1024 * 1024,
        "RSS grew from {before} to {after}"
    );
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Only what the server wrote before closing it; a timeout here would mean it is still connected.
    let mut unread = Vec::new();
    slow.stream
        .read_to_end(&mut unread)
        .expect("the server closes the slow subscriber");
    assert!(unread.len() < MESSAGES * one, "{} bytes", unread.len());
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(
        publisher.line("PUBSUB NUMSUB feed"),
        "*2\r\n$4\r\nfeed\r\n:1\r\n"
    );
}

#[test]
fn one_publish_reaches_a_thousand_subscribers() {
    let server = Server::start(&[]);
    let mut subscribers: Vec<Raw> = (0..1000).map(|_| server.raw()).collect();
    for (i, s) in subscribers.iter_mut().enumerate() {
        // Half by channel, half by pattern: both count as receivers.
        let command = if i % 2 == 0 {
            "SUBSCRIBE news"
        } else {
            "PSUBSCRIBE n*s"
        };
        assert!(s.line(command).ends_with(":1\r\n"));
    }
    let mut publisher = server.raw();
    assert_eq!(publisher.line("PUBLISH news hello"), ":1000\r\n");
    for (i, s) in subscribers.iter_mut().enumerate() {
        let expected = if i % 2 == 0 {
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
        } else {
            "*4\r\n$8\r\npmessage\r\n$3\r\nn*s\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
        };
        assert_eq!(String::from_utf8_lossy(&s.reply()), expected);
    }
    assert_eq!(
        publisher.line("PUBSUB NUMSUB news"),
        "*2\r\n$4\r\nnews\r\n:500\r\n"
    );
    assert_eq!(publisher.line("PUBSUB NUMPAT"), ":1\r\n");
    // Disconnecting drops the subscriptions.
    subscribers.clear();
    let start = Instant::now();
    while publisher.line("PUBLISH news again") != ":0\r\n" {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Redis 7.2 (unlike 7.0, so not in the transcript): a RESP3 client publishing to a channel it is subscribed to gets
/// PUBLISH's reply first, then the message, and both before the next command's reply.
#[test]
fn publishing_to_oneself_replies_before_the_message() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("HELLO 3");
    c.line("SUBSCRIBE me");
    c.send(
        &[
            common::encode(&["PUBLISH", "me", "hi"]),
            common::encode(&["PING"]),
        ]
        .concat(),
    );
    assert_eq!(String::from_utf8_lossy(&c.reply()), ":1\r\n");
    assert_eq!(
        String::from_utf8_lossy(&c.reply()),
        ">3\r\n$7\r\nmessage\r\n$2\r\nme\r\n$2\r\nhi\r\n"
    );
    assert_eq!(String::from_utf8_lossy(&c.reply()), "+PONG\r\n");
}

#[test]
fn messages_published_before_a_command_arrive_before_its_reply() {
    let server = Server::start(&[]);
    let mut sub = server.raw();
    let mut publisher = server.raw();
    sub.line("SUBSCRIBE c");
    for i in 0..100 {
        assert_eq!(publisher.line(&format!("PUBLISH c m{i}")), ":1\r\n");
    }
    // Whatever was queued goes out first, then the confirmation.
    sub.send_cmd(&["UNSUBSCRIBE", "c"]);
    for i in 0..100 {
        let m = format!("m{i}");
        let expected = format!("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n${}\r\n{m}\r\n", m.len());
        assert_eq!(String::from_utf8_lossy(&sub.reply()), expected);
    }
    assert_eq!(
        String::from_utf8_lossy(&sub.reply()),
        "*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n"
    );
    assert_eq!(sub.line("GET c"), "$-1\r\n");
}

/// Keyspace notifications: a key nobody reads again is announced as `expired` by the background expiry, within a
/// bounded time after its deadline, on both channel kinds, and the key is gone when the event arrives.
#[test]
fn background_expiry_announces_expired_keys_nobody_reads() {
    let server = Server::start(&[]);
    let mut sub = server.raw();
    let mut c = server.raw();
    assert_eq!(c.line("CONFIG SET notify-keyspace-events KEx"), "+OK\r\n");
    sub.line("PSUBSCRIBE __key*@0__:*");
    let start = Instant::now();
    assert_eq!(c.line("SET job:1 payload PX 50"), "+OK\r\n");
    assert_eq!(c.line("SET job:2 payload"), "+OK\r\n");
    // The keyspace message comes first, then the keyevent one, as Redis publishes them.
    assert_eq!(
        String::from_utf8_lossy(&sub.reply()),
        "*4\r\n$8\r\npmessage\r\n$12\r\n__key*@0__:*\r\n$20\r\n__keyspace@0__:job:1\r\n$7\r\nexpired\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&sub.reply()),
        "*4\r\n$8\r\npmessage\r\n$12\r\n__key*@0__:*\r\n$22\r\n__keyevent@0__:expired\r\n$5\r\njob:1\r\n"
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // Reclaimed already: DBSIZE counts what the table holds, expired or not.
    assert_eq!(c.line("DBSIZE"), ":1\r\n");
    // Turned off, a later expiry publishes nothing: the next thing the subscriber reads is its PING's reply.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]),
        b"+OK\r\n"
    );
    assert_eq!(c.line("SET job:3 payload PX 20"), "+OK\r\n");
    let start = Instant::now();
    while c.line("DBSIZE") != ":1\r\n" {
        assert!(start.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        String::from_utf8_lossy(&sub.cmd(&["PING"])),
        "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
}
