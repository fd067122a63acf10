//! Lua scripting through the real binary: the lock scripts that lock libraries send (through EVALSHA with the
//! NOSCRIPT -> SCRIPT LOAD fallback, under contention), waking blocked clients from a script, the embedded
//! libraries, and scripts reaching undeclared keys on other shards.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{Raw, Server};

/// redis-py `Lock`: release only while we still hold the token.
const REDIS_PY_UNLOCK: &str = r#"
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1
"#;

/// redis-py `Lock.extend` (replace_ttl = 1): a new PX when the token still matches.
const REDIS_PY_EXTEND: &str = r#"
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
local expiration = redis.call('pttl', KEYS[1])
if not expiration then
    expiration = 0
end
if expiration < 0 then
    return 0
end
local newttl = ARGV[2]
if ARGV[3] == "0" then
    newttl = ARGV[2] + expiration
end
redis.call('pexpire', KEYS[1], newttl)
return 1
"#;

/// node-redlock release: DEL every resource still holding our value, count them.
const REDLOCK_RELEASE: &str = r#"
local count = 0
for _, key in ipairs(KEYS) do
    if redis.call("get", key) == ARGV[1] then
        redis.pcall("del", key)
        count = count + 1
    end
end
return count
"#;

/// node-redlock extend: PEXPIRE every resource still holding our value; all or nothing.
const REDLOCK_EXTEND: &str = r#"
for _, key in ipairs(KEYS) do
    if redis.call("get", key) ~= ARGV[1] then
        return 0
    end
end
for _, key in ipairs(KEYS) do
    redis.call("set", key, ARGV[1], "PX", ARGV[2])
end
return #KEYS
"#;

/// redsync delete and touch.
const REDSYNC_DELETE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
else
    return 0
end
"#;
const REDSYNC_TOUCH: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("PEXPIRE", KEYS[1], ARGV[2])
else
    return 0
end
"#;

/// pottery Redlock release (its `_release` script).
const POTTERY_RELEASE: &str = r#"
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
else
    return 0
end
"#;

/// Runs `script` the way client libraries do: EVALSHA first, then SCRIPT LOAD and EVALSHA again on NOSCRIPT.
fn evalsha(c: &mut Raw, script: &str, keys: &[&str], args: &[&str]) -> String {
    let sha = sha1(script);
    let numkeys = keys.len().to_string();
    let mut cmd: Vec<&str> = vec!["EVALSHA", &sha, &numkeys];
    cmd.extend_from_slice(keys);
    cmd.extend_from_slice(args);
    let reply = String::from_utf8(c.cmd(&cmd)).unwrap();
    if !reply.starts_with("-NOSCRIPT") {
        return reply;
    }
    assert_eq!(reply, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    let loaded = String::from_utf8(c.cmd(&["SCRIPT", "LOAD", script])).unwrap();
    assert_eq!(loaded, format!("$40\r\n{sha}\r\n"));
    String::from_utf8(c.cmd(&cmd)).unwrap()
}

fn sha1(s: &str) -> String {
    ringkv::script::sha1_hex(s.as_bytes())
}

#[test]
fn lock_library_scripts_only_touch_a_lock_holding_their_token() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    for unlock in [REDIS_PY_UNLOCK, REDSYNC_DELETE, POTTERY_RELEASE] {
        assert_eq!(c.line("SET lock mine PX 10000"), "+OK\r\n");
        assert_eq!(evalsha(&mut c, unlock, &["lock"], &["theirs"]), ":0\r\n");
        assert_eq!(c.line("GET lock"), "$4\r\nmine\r\n");
        assert_eq!(evalsha(&mut c, unlock, &["lock"], &["mine"]), ":1\r\n");
        assert_eq!(c.line("EXISTS lock"), ":0\r\n");
        assert_eq!(evalsha(&mut c, unlock, &["lock"], &["mine"]), ":0\r\n");
    }
    c.line("SET lock mine PX 1000");
    assert_eq!(
        evalsha(
            &mut c,
            REDIS_PY_EXTEND,
            &["lock"],
            &["theirs", "60000", "1"]
        ),
        ":0\r\n"
    );
    assert_eq!(
        evalsha(&mut c, REDIS_PY_EXTEND, &["lock"], &["mine", "60000", "1"]),
        ":1\r\n"
    );
    let pttl: i64 = c.line("PTTL lock")[1..].trim().parse().unwrap();
    assert!(pttl > 50_000, "{pttl}");
    assert_eq!(
        evalsha(&mut c, REDSYNC_TOUCH, &["lock"], &["mine", "90000"]),
        ":1\r\n"
    );
    let pttl: i64 = c.line("PTTL lock")[1..].trim().parse().unwrap();
    assert!(pttl > 80_000, "{pttl}");
    // Redlock over several resources (keys on different shards).
    c.line("SET r1 tok PX 1000");
    c.line("SET r2 tok PX 1000");
    c.line("SET r3 other PX 1000");
    assert_eq!(
        evalsha(
            &mut c,
            REDLOCK_EXTEND,
            &["r1", "r2", "r3"],
            &["tok", "30000"]
        ),
        ":0\r\n"
    );
    assert_eq!(
        evalsha(&mut c, REDLOCK_EXTEND, &["r1", "r2"], &["tok", "30000"]),
        ":2\r\n"
    );
    assert_eq!(
        evalsha(&mut c, REDLOCK_RELEASE, &["r1", "r2", "r3"], &["tok"]),
        ":2\r\n"
    );
    assert_eq!(c.line("EXISTS r1 r2 r3"), ":1\r\n");
}

#[test]
fn lock_scripts_give_mutual_exclusion_under_contention() {
    let server = Server::start(&["--threads", "2", "--shards", "16"]);
    c_flush(&server);
    let addr = server.addr();
    let clients = 20;
    let rounds = 30;
    let unlocks = [
        REDIS_PY_UNLOCK,
        REDSYNC_DELETE,
        POTTERY_RELEASE,
        REDLOCK_RELEASE,
    ];
    let handles: Vec<_> = (0..clients)
        .map(|id| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                let mut held = 0;
                for round in 0..rounds {
                    let token = format!("client-{id}-{round}");
                    // Acquire: SET NX PX, retried.
                    loop {
                        let r = c.cmd(&["SET", "resource", &token, "NX", "PX", "10000"]);
                        if r == b"+OK\r\n" {
                            break;
                        }
                        thread::sleep(Duration::from_micros(200));
                    }
                    // The critical section: a read-modify-write that loses updates without mutual exclusion.
                    assert_eq!(c.cmd(&["INCR", "inside"]), b":1\r\n", "two holders at once");
                    let n = String::from_utf8(c.cmd(&["GET", "counter"])).unwrap();
                    let n: i64 = n.lines().nth(1).map_or(0, |v| v.parse().unwrap());
                    c.cmd(&["SET", "counter", &(n + 1).to_string()]);
                    assert_eq!(c.cmd(&["DECR", "inside"]), b":0\r\n");
                    let unlock = unlocks[(id + round) % unlocks.len()];
                    // A stale token never releases someone else's lock.
                    assert_eq!(evalsha(&mut c, unlock, &["resource"], &["stale"]), ":0\r\n");
                    assert_eq!(evalsha(&mut c, unlock, &["resource"], &[&token]), ":1\r\n");
                    held += 1;
                }
                held
            })
        })
        .collect();
    let total: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mut c = server.raw();
    assert_eq!(total, (clients * rounds) as i64);
    assert_eq!(
        c.line("GET counter"),
        format!("${}\r\n{total}\r\n", total.to_string().len())
    );
}

fn c_flush(server: &Server) {
    let mut c = server.raw();
    assert_eq!(c.line("SCRIPT FLUSH"), "+OK\r\n");
}

#[test]
fn a_script_pushing_to_a_list_wakes_a_blpop_waiter_after_the_script() {
    let server = Server::start(&["--shards", "16"]);
    for (numkeys, keys) in [("1", vec!["queue"]), ("0", vec![])] {
        let addr = server.addr();
        let waiter = thread::spawn(move || {
            let mut w = Raw::connect(&addr);
            String::from_utf8(w.cmd(&["BLPOP", "queue", "5"])).unwrap()
        });
        thread::sleep(Duration::from_millis(300));
        let mut c = server.raw();
        let mut cmd = vec![
            "EVAL",
            "redis.call('rpush', 'queue', 'a', 'b') return redis.call('llen', 'queue')",
            numkeys,
        ];
        cmd.extend(keys);
        // The waiter is served after the whole script: the script saw both elements.
        assert_eq!(c.cmd(&cmd), b":2\r\n");
        assert_eq!(waiter.join().unwrap(), "*2\r\n$5\r\nqueue\r\n$1\r\na\r\n");
        assert_eq!(c.line("LPOP queue"), "$1\r\nb\r\n");
    }
}

#[test]
fn cjson_and_cmsgpack_round_trip() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let json = r#"[1,2.5,"x\/y",[true,false,null],{"k":"v"},[]]"#;
    let reply = c.cmd(&[
        "EVAL",
        "return cjson.encode(cjson.decode(ARGV[1]))",
        "0",
        json,
    ]);
    assert_eq!(
        String::from_utf8(reply).unwrap(),
        // An empty JSON array decodes to an empty table, which encodes as an object.
        format!("${}\r\n{}\r\n", json.len(), json.replace("[]]", "{}]"))
    );
    assert_eq!(
        c.cmd(&["EVAL", "return cmsgpack.pack({1,2,3})", "0"]),
        b"$4\r\n\x93\x01\x02\x03\r\n"
    );
    let script =
        "local t = cmsgpack.unpack(cmsgpack.pack(cjson.decode(ARGV[1]))) return cjson.encode(t)";
    let data = r#"{"name":"job","data":[1,-300,70000,0.5,"s"],"opts":{"attempts":3}}"#;
    let reply = String::from_utf8(c.cmd(&["EVAL", script, "0", data])).unwrap();
    let body = reply.lines().nth(1).unwrap();
    for part in [
        r#""name":"job""#,
        r#""data":[1,-300,70000,0.5,"s"]"#,
        r#""opts":{"attempts":3}"#,
    ] {
        assert!(body.contains(part), "{body} lacks {part}");
    }
    assert_eq!(
        c.cmd(&[
            &b"EVAL"[..],
            b"return {cmsgpack.unpack(ARGV[1])}",
            b"0",
            b"\x01\x02\xa1z"
        ]),
        b"*3\r\n:1\r\n:2\r\n$1\r\nz\r\n"
    );
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return {bit.band(0xff, 0x0f), bit.tohex(255, -4), struct.unpack('>I2', 'ab')}",
            "0"
        ]),
        b"*4\r\n:15\r\n$4\r\n00FF\r\n:24930\r\n:3\r\n"
    );
}

/// BullMQ's pattern: scripts declare their own keys (one per client here), write them, then reach keys they did not
/// declare (job hashes named from a prefix), from many connections at once. Every run must succeed, as in Redis,
/// from the very first one.
#[test]
fn scripts_that_write_then_reach_undeclared_keys_never_fail_under_contention() {
    let server = Server::start(&["--threads", "2", "--shards", "16"]);
    let script =
        "redis.call('incr', KEYS[1]) for i = 1, 16 do redis.call('incr', 'job:' .. i) end return 1";
    let addr = Arc::new(server.addr());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                let counter = format!("counter:{t}");
                for _ in 0..40 {
                    let reply = c.cmd(&["EVAL", script, "1", &counter]);
                    assert_eq!(String::from_utf8_lossy(&reply), ":1\r\n");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = server.raw();
    for t in 0..8 {
        assert_eq!(c.line(&format!("GET counter:{t}")), "$2\r\n40\r\n");
    }
    for i in 1..=16 {
        assert_eq!(c.line(&format!("GET job:{i}")), "$3\r\n320\r\n", "job:{i}");
    }
}

#[test]
fn scripts_reaching_undeclared_keys_on_other_shards_stay_atomic() {
    let server = Server::start(&["--threads", "2", "--shards", "16"]);
    // Reads every key first (which locks every shard it needs), then increments: a failed lock leaves no writes.
    let script = "local n = {} for i = 1, 16 do n[i] = redis.call('get', 'k' .. i) end \
                  for i = 1, 16 do redis.call('incr', 'k' .. i) end return 1";
    let addr = Arc::new(server.addr());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut c = Raw::connect(&addr);
                let mut done = 0;
                while done < 40 {
                    let r = String::from_utf8(c.cmd(&["EVAL", script, "0"])).unwrap();
                    match r.as_str() {
                        ":1\r\n" => done += 1,
                        other => assert!(other.contains("not declared in KEYS"), "{other}"),
                    }
                }
                done
            })
        })
        .collect();
    let total: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mut c = server.raw();
    for i in 1..=16 {
        assert_eq!(
            c.line(&format!("GET k{i}")),
            format!("${}\r\n{total}\r\n", total.to_string().len()),
            "k{i}"
        );
    }
}

const BUSY: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";

/// Sends SCRIPT KILL until the reply is no longer NOTBUSY (the script may not have passed the threshold yet).
fn script_kill(c: &mut Raw) -> String {
    for _ in 0..200 {
        let reply = c.line("SCRIPT KILL");
        if !reply.starts_with("-NOTBUSY") {
            return reply;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("the script never became busy");
}

/// Starts `script` with `key` declared on its own connection; the handle yields its reply.
fn spawn_script(server: &Server, script: &'static str, key: &str) -> thread::JoinHandle<String> {
    let mut c = server.raw();
    let key = key.to_string();
    let handle = thread::spawn(move || {
        c.stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        String::from_utf8(c.cmd(&["EVAL", script, "1", &key])).unwrap()
    });
    // Let the script take its shard and pass the 100 ms threshold.
    thread::sleep(Duration::from_millis(400));
    handle
}

/// With one worker (the default), the script's worker hands its other clients to a new thread; with two, the other
/// worker serves them.
#[test]
fn a_busy_script_makes_commands_on_its_shards_busy_until_script_kill() {
    for threads in ["1", "2"] {
        busy_script_until_script_kill(threads);
    }
}

fn busy_script_until_script_kill(threads: &str) {
    let server = Server::start(&["--threads", threads, "--shards", "8"]);
    let keys = common::keys_on_distinct_shards("busy", 2, 8);
    let (held, free) = (&keys[0], &keys[1]);
    let mut c = server.raw();
    assert_eq!(c.line("CONFIG SET busy-reply-threshold 100"), "+OK\r\n");
    assert_eq!(
        c.line("CONFIG GET lua-time-limit"),
        "*2\r\n$14\r\nlua-time-limit\r\n$3\r\n100\r\n"
    );
    // A new script's first run locks every shard; one quick run shows this one stays on its declared shard.
    let looping = "if redis.call('get', KEYS[1]) == 'quick' then return 0 end local n = 0 while true do n = n + 1 end";
    assert_eq!(c.line(&format!("SET {held} quick")), "+OK\r\n");
    assert_eq!(c.cmd(&["EVAL", looping, "1", held]), b":0\r\n");
    assert_eq!(c.line(&format!("DEL {held}")), ":1\r\n");
    let runner = spawn_script(&server, looping, held);
    assert_eq!(c.line(&format!("SET {held} 1")), BUSY);
    assert_eq!(c.line(&format!("GET {held}")), BUSY);
    // EXEC of a transaction touching the shard is aborted, as Redis's rejectCommand does.
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.line(&format!("INCR {held}")), "+QUEUED\r\n");
    assert_eq!(
        c.line("EXEC"),
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &BUSY[1..]
        )
    );
    // Better than Redis: keys on other shards, and commands without keys, go on.
    assert_eq!(c.line(&format!("SET {free} 1")), "+OK\r\n");
    assert_eq!(c.line("PING"), "+PONG\r\n");
    assert_eq!(script_kill(&mut c), "+OK\r\n");
    assert_eq!(
        runner.join().unwrap(),
        format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {}, on @user_script:1.\r\n",
            sha1(looping)
        )
    );
    assert_eq!(c.line(&format!("SET {held} 2")), "+OK\r\n");
    assert_eq!(
        c.line("SCRIPT KILL"),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
}

#[test]
fn a_busy_script_that_wrote_cannot_be_killed_and_ends_normally() {
    let server = Server::start(&["--shards", "8"]);
    let mut c = server.raw();
    assert_eq!(c.line("CONFIG SET busy-reply-threshold 100"), "+OK\r\n");
    let writing = "redis.call('set', KEYS[1], 'w') for i = 1, 2e8 do end return 1";
    let runner = spawn_script(&server, writing, "k");
    assert_eq!(
        script_kill(&mut c),
        "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait \
         the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n"
    );
    assert_eq!(c.line("GET k"), BUSY);
    assert_eq!(runner.join().unwrap(), ":1\r\n");
    assert_eq!(c.line("GET k"), "$1\r\nw\r\n");
}
