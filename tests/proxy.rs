//! The proxy through real processes: `ringkv proxy` in front of ringkv backends and real `redis-server` backends, and
//! next to twemproxy (`nutcracker`) in ketama mode over the same Redis servers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{encode, nutcracker, redis_server, External, Raw, Server};

/// Backends (ringkv or redis-server processes) and a proxy in front of them.
struct Cluster {
    proxy: Server,
    addrs: Vec<String>,
    ringkv: Vec<Server>,
    _redis: Vec<External>,
}

impl Cluster {
    fn ringkv(n: usize, extra: &[&str]) -> Cluster {
        let ringkv: Vec<Server> = (0..n).map(|_| Server::start(&[])).collect();
        let addrs = ringkv.iter().map(Server::addr).collect();
        Cluster::with(addrs, ringkv, Vec::new(), extra)
    }

    fn redis(n: usize, extra: &[&str]) -> Option<Cluster> {
        let redis = (0..n)
            .map(|_| redis_server(0))
            .collect::<Option<Vec<_>>>()?;
        let addrs = redis.iter().map(External::addr).collect();
        Some(Cluster::with(addrs, Vec::new(), redis, extra))
    }

    fn with(
        addrs: Vec<String>,
        ringkv: Vec<Server>,
        redis: Vec<External>,
        extra: &[&str],
    ) -> Cluster {
        let mut args: Vec<&str> = Vec::new();
        for a in &addrs {
            args.extend(["--backend", a.as_str()]);
        }
        args.extend(extra);
        Cluster {
            proxy: Server::start_proxy(&args),
            addrs,
            ringkv,
            _redis: redis,
        }
    }

    fn backend(&self, addr: &str) -> Raw {
        Raw::connect(addr)
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The owner node names RING LOCATE gives for `keys`, in order.
fn owners(c: &mut Raw, keys: &[String]) -> Vec<String> {
    let mut args = vec!["RING".to_string(), "LOCATE".to_string()];
    args.extend(keys.iter().cloned());
    let reply = text(c.cmd(&args));
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let names: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "node")
        .map(|(i, _)| lines[i + 2].to_string())
        .collect();
    assert_eq!(names.len(), keys.len(), "{reply}");
    names
}

fn owner(c: &mut Raw, key: &str) -> String {
    owners(c, &[key.to_string()]).remove(0)
}

/// The commands of the issue, checked through the proxy and against each backend directly.
fn exercise(cluster: &Cluster) {
    let mut c = cluster.proxy.raw();
    assert_eq!(c.line("PING"), "+PONG\r\n");
    // AUTH is answered as a server without a password answers it (clients given a password send it on connecting).
    assert_eq!(c.line("AUTH default anything"), "+OK\r\n");
    assert!(c
        .line("AUTH secret")
        .starts_with("-ERR AUTH <password> called without any password configured"));
    assert_eq!(c.line("AUTH a b c"), "-ERR syntax error\r\n");
    assert_eq!(c.line("SET greeting hello"), "+OK\r\n");
    assert_eq!(c.line("GET greeting"), "$5\r\nhello\r\n");
    assert_eq!(c.line("INCR counter"), ":1\r\n");
    assert_eq!(c.line("INCRBY counter 41"), ":42\r\n");
    assert_eq!(c.line("RPUSH list a b c"), ":3\r\n");
    assert_eq!(c.line("LPOP list"), "$1\r\na\r\n");
    assert_eq!(c.line("LRANGE list 0 -1"), "*2\r\n$1\r\nb\r\n$1\r\nc\r\n");

    // Keys spread over every backend, each exactly where RING LOCATE says.
    let keys: Vec<String> = (0..40).map(|i| format!("key:{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for k in &keys {
        mset.extend([k.clone(), format!("v-{k}")]);
    }
    assert_eq!(text(c.cmd(&mset)), "+OK\r\n");
    let placed = owners(&mut c, &keys);
    let mut per_backend: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, node) in keys.iter().zip(&placed) {
        *per_backend.entry(node.as_str()).or_default() += 1;
        for addr in &cluster.addrs {
            let got = text(cluster.backend(addr).cmd(&["EXISTS", k]));
            let expect = if addr == node { ":1\r\n" } else { ":0\r\n" };
            assert_eq!(got, expect, "{k} on {addr} (owner {node})");
        }
    }
    assert_eq!(per_backend.len(), cluster.addrs.len(), "{per_backend:?}");

    // MGET answers in key order, with a missing key in the middle.
    let reply = text(c.cmd(&["MGET", "key:3", "nope", "key:17", "key:0"]));
    assert_eq!(
        reply,
        "*4\r\n$7\r\nv-key:3\r\n$-1\r\n$8\r\nv-key:17\r\n$7\r\nv-key:0\r\n"
    );
    let mut exists = vec!["EXISTS".to_string()];
    exists.extend(keys.iter().cloned());
    exists.push("nope".into());
    assert_eq!(text(c.cmd(&exists)), ":40\r\n");

    // Hash tags keep keys together, so multi-key commands on them work.
    let tagged: Vec<String> = (0..10).map(|i| format!("{{user1}}.f{i}")).collect();
    let nodes: BTreeSet<String> = owners(&mut c, &tagged).into_iter().collect();
    assert_eq!(nodes.len(), 1);
    assert_eq!(c.line("MSETNX {user1}.a 1 {user1}.b 2"), ":1\r\n");
    assert_eq!(c.line("RENAME {user1}.a {user1}.c"), "+OK\r\n");

    // What cannot be split is refused, never answered wrongly.
    let (a, b) = first_two_on_different_nodes(&mut c);
    let crossslot = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    assert_eq!(text(c.cmd(&["RENAME", &a, &b])), crossslot);
    assert_eq!(text(c.cmd(&["MSETNX", &a, "1", &b, "2"])), crossslot);
    assert!(c
        .line("RANDOMKEY")
        .starts_with("-ERR 'RANDOMKEY' names no key"));
    // A command that takes keys but names none fails on a backend, with the backend's own error.
    assert_eq!(
        c.line("LMPOP -1 k LEFT"),
        "-ERR numkeys should be greater than 0\r\n"
    );
    assert_eq!(
        c.line("BLMPOP 0.01 0 k LEFT"),
        "-ERR numkeys should be greater than 0\r\n"
    );

    // Fan-out: DBSIZE sums, KEYS concatenates, SCAN walks every backend.
    let total: i64 = cluster
        .addrs
        .iter()
        .map(|a| text(cluster.backend(a).cmd(&["DBSIZE"])))
        .map(|r| r.trim_start_matches(':').trim().parse::<i64>().unwrap())
        .sum();
    assert_eq!(c.line("DBSIZE"), format!(":{total}\r\n"));
    assert!(c.line("KEYS *").starts_with(&format!("*{total}\r\n")));
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = text(c.cmd(&["SCAN", &cursor, "COUNT", "7"]));
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_string();
        seen.extend(lines[4..].iter().skip(1).step_by(2).map(|s| s.to_string()));
        if cursor == "0" {
            break;
        }
    }
    seen.remove("");
    assert_eq!(seen.len() as i64, total);

    // DEL splits and sums; a pipeline across backends is answered in request order.
    let mut del = vec!["DEL".to_string()];
    del.extend(keys[..20].iter().cloned());
    assert_eq!(text(c.cmd(&del)), ":20\r\n");
    let mut pipeline = Vec::new();
    for k in &keys[20..] {
        pipeline.extend(encode(&["GET", k.as_str()]));
        pipeline.extend(encode(&["ECHO", k.as_str()]));
    }
    c.send(&pipeline);
    for k in &keys[20..] {
        assert_eq!(text(c.reply()), format!("${}\r\nv-{k}\r\n", k.len() + 2));
        assert_eq!(text(c.reply()), format!("${}\r\n{k}\r\n", k.len()));
    }

    // Plain requests of one read go to each backend together; what is split, fanned out or answered here in between
    // still sees every earlier request done, and replies keep request order.
    let (a, b) = first_two_on_different_nodes(&mut c);
    let steps: [(&[&str], String); 8] = [
        (&["SET", &a, "1"], "+OK\r\n".into()),
        (&["INCR", &a], ":2\r\n".into()),
        (&["MGET", &a, &b], "*2\r\n$1\r\n2\r\n$-1\r\n".into()),
        (&["SET", &b, "x"], "+OK\r\n".into()),
        (&["ECHO", "between"], "$7\r\nbetween\r\n".into()),
        (&["DEL", &a], ":1\r\n".into()),
        (&["GET", &a], "$-1\r\n".into()),
        (&["EXISTS", &a, &b], ":1\r\n".into()),
    ];
    let pipeline: Vec<u8> = steps.iter().flat_map(|(cmd, _)| encode(cmd)).collect();
    c.send(&pipeline);
    for (cmd, expect) in &steps {
        assert_eq!(&text(c.reply()), expect, "{cmd:?}");
    }
    assert_eq!(c.line("FLUSHALL"), "+OK\r\n");
    assert_eq!(c.line("DBSIZE"), ":0\r\n");
}

fn first_two_on_different_nodes(c: &mut Raw) -> (String, String) {
    let first = owner(c, "x0");
    let other = (1..)
        .map(|i| format!("x{i}"))
        .find(|k| owner(c, k) != first)
        .expect("some key elsewhere");
    ("x0".into(), other)
}

#[test]
fn commands_work_through_the_proxy_on_ringkv_backends() {
    exercise(&Cluster::ringkv(3, &[]));
}

#[test]
fn commands_work_through_the_proxy_on_redis_backends() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    exercise(&cluster);
}

/// Commands the server role lacks (bitmaps, HyperLogLog, geo, LCS, DUMP / RESTORE) reach Redis backends by their
/// keys, and keys on two backends get the cross-backend error rather than a partial answer.
#[test]
fn commands_only_redis_has_reach_redis_backends_by_their_keys() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    let mut c = cluster.proxy.raw();
    let (a, b) = first_two_on_different_nodes(&mut c);
    let steps: &[(&[&str], &str)] = &[
        (&["SETBIT", &a, "7", "1"], ":0\r\n"),
        (&["GETBIT", &a, "7"], ":1\r\n"),
        (&["BITCOUNT", &a], ":1\r\n"),
        (&["PFADD", &b, "x", "y", "z"], ":1\r\n"),
        (&["PFCOUNT", &b], ":3\r\n"),
        (&["SET", "{t}1", "hello"], "+OK\r\n"),
        (&["SET", "{t}2", "hallo"], "+OK\r\n"),
        (&["LCS", "{t}1", "{t}2"], "$4\r\nhllo\r\n"),
        (&["BITOP", "OR", "{t}3", "{t}1", "{t}2"], ":5\r\n"),
        (
            &["GEOADD", "geo", "13.361389", "38.115556", "palermo"],
            ":1\r\n",
        ),
        (
            &["GEOHASH", "geo", "palermo"],
            "*1\r\n$11\r\nsqc8b49rny0\r\n",
        ),
        (
            &["SETBIT"],
            "-ERR wrong number of arguments for 'setbit' command\r\n",
        ),
        (&["RPUSH", "sortme", "3", "1", "2"], ":3\r\n"),
        (&["SORT", "sortme"], "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"),
        (
            &["SORT_RO", "sortme", "BY", "nosort", "GET", "#", "LIMIT", "0", "1"],
            "*1\r\n$1\r\n3\r\n",
        ),
        (
            &["SORT", "sortme", "BY", "w_*"],
            "-ERR SORT with BY names keys the proxy cannot place: not supported by the proxy\r\n",
        ),
        (
            &["SORT", "sortme", "GET", "#", "GET", "h_*->f"],
            "-ERR SORT with GET names keys the proxy cannot place: not supported by the proxy\r\n",
        ),
        (
            &["SORT", "sortme", "STORE", "sorted"],
            "-ERR SORT with STORE names keys the proxy cannot place: not supported by the proxy\r\n",
        ),
        (
            &["GEORADIUS", "geo", "13", "38", "200", "km"],
            "*1\r\n$7\r\npalermo\r\n",
        ),
        // Option names as values are values: a GET pattern `store`, a member named `store`.
        (
            &["SORT", "sortme", "LIMIT", "0", "1", "GET", "store"],
            "*1\r\n$-1\r\n",
        ),
        (
            &["GEOADD", "geo", "13.361389", "38.115556", "store"],
            ":1\r\n",
        ),
        (
            &["GEORADIUSBYMEMBER", "geo", "store", "1", "km"],
            "*2\r\n$7\r\npalermo\r\n$5\r\nstore\r\n",
        ),
        (
            &["GEORADIUSBYMEMBER", "geo", "palermo", "1", "km", "STORE", "x"],
            "-ERR GEORADIUSBYMEMBER with STORE names keys the proxy cannot place: not supported by the proxy\r\n",
        ),
    ];
    for (cmd, expect) in steps {
        assert_eq!(text(c.cmd(cmd)), *expect, "{cmd:?}");
    }
    for cross in [["PFCOUNT", &a, &b], ["LCS", &a, &b]] {
        assert!(text(c.cmd(&cross)).starts_with("-CROSSSLOT"), "{cross:?}");
    }
    // DUMP's payload restores under another key on whatever backend owns it.
    let dump = c.cmd(&["DUMP", "{t}1"]);
    let payload = &dump[dump.iter().position(|&x| x == b'\n').unwrap() + 1..dump.len() - 2];
    assert_eq!(
        text(c.cmd(&[&b"RESTORE"[..], b.as_bytes(), b"0", payload, b"REPLACE"])),
        "+OK\r\n"
    );
    assert_eq!(text(c.cmd(&["GET", &b])), "$5\r\nhello\r\n");
}

#[test]
fn a_killed_backend_fails_only_its_keys_and_the_proxy_recovers_when_it_returns() {
    let mut cluster = Cluster::ringkv(3, &["--timeout-ms", "500"]);
    let mut c = cluster.proxy.raw();
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for k in &keys {
        assert_eq!(text(c.cmd(&["SET", k, "v"])), "+OK\r\n");
    }
    let placed = owners(&mut c, &keys);
    let dead = cluster.addrs[1].clone();
    let port = cluster.ringkv[1].port;
    cluster.ringkv[1].kill();
    for (k, node) in keys.iter().zip(&placed) {
        let start = Instant::now();
        let got = text(c.cmd(&["GET", k]));
        assert!(start.elapsed() < Duration::from_secs(2), "GET {k} hung");
        if *node == dead {
            let expect = format!("-ERR backend {dead} unavailable");
            assert!(got.starts_with(&expect), "{k}: {got}");
        } else {
            assert_eq!(got, "$1\r\nv\r\n", "{k}");
        }
    }
    assert!(c
        .line("DBSIZE")
        .starts_with(&format!("-ERR backend {dead} unavailable")));
    // The same in one pipeline: the dead backend's share fails request by request, the rest is answered.
    let pipeline: Vec<u8> = keys.iter().flat_map(|k| encode(&["GET", k])).collect();
    c.send(&pipeline);
    for (k, node) in keys.iter().zip(&placed) {
        let got = text(c.reply());
        if *node == dead {
            let expect = format!("-ERR backend {dead} unavailable");
            assert!(got.starts_with(&expect), "pipelined {k}: {got}");
        } else {
            assert_eq!(got, "$1\r\nv\r\n", "pipelined {k}");
        }
    }

    cluster.ringkv[1] = Server::start_on(port, &[]);
    let lost = keys
        .iter()
        .zip(&placed)
        .find(|(_, n)| **n == dead)
        .map(|(k, _)| k.clone())
        .expect("a key on the restarted backend");
    let start = Instant::now();
    loop {
        let got = text(c.cmd(&["SET", &lost, "again"]));
        if got == "+OK\r\n" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no recovery: {got}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(text(c.cmd(&["GET", &lost])), "$5\r\nagain\r\n");
    assert_eq!(
        text(Raw::connect(&dead).cmd(&["GET", &lost])),
        "$5\r\nagain\r\n"
    );
}

#[test]
fn ring_add_and_remove_change_placement_live() {
    let cluster = Cluster::ringkv(3, &[]);
    let extra = Server::start(&[]);
    let mut c = cluster.proxy.raw();
    let added = text(c.cmd(&["RING", "ADD", &extra.addr()]));
    assert!(
        added.starts_with("*6\r\n$5\r\nepoch\r\n:1\r\n$5\r\nmoved\r\n"),
        "{added}"
    );
    assert!(added.contains("keys on moved ranges are not migrated"));
    assert!(c.line("RING NODES").starts_with("*4\r\n"));
    let key = (0..)
        .map(|i| format!("moved:{i}"))
        .find(|k| owner(&mut c, k) == extra.addr())
        .expect("a key on the new node");
    assert_eq!(text(c.cmd(&["SET", &key, "here"])), "+OK\r\n");
    assert_eq!(text(extra.raw().cmd(&["GET", &key])), "$4\r\nhere\r\n");
    // A change takes effect for the very next request, also within one pipeline.
    let extra_addr = extra.addr();
    let pipeline: Vec<u8> = [
        &["RING", "REMOVE", extra_addr.as_str()][..],
        &["GET", &key],
        &["RING", "ADD", &extra_addr],
        &["GET", &key],
    ]
    .iter()
    .flat_map(|cmd| encode(cmd))
    .collect();
    c.send(&pipeline);
    assert!(text(c.reply()).starts_with("*6\r\n$5\r\nepoch\r\n:2\r\n"));
    assert_eq!(text(c.reply()), "$-1\r\n");
    assert!(text(c.reply()).starts_with("*6\r\n$5\r\nepoch\r\n:3\r\n"));
    assert_eq!(text(c.reply()), "$4\r\nhere\r\n");

    let removed = text(c.cmd(&["RING", "REMOVE", &extra.addr()]));
    assert!(
        removed.starts_with("*6\r\n$5\r\nepoch\r\n:4\r\n"),
        "{removed}"
    );
    assert_ne!(owner(&mut c, &key), extra.addr());
    // Not migrated: the key stays on the removed node and is not found through the ring.
    assert_eq!(text(c.cmd(&["GET", &key])), "$-1\r\n");
    assert_eq!(
        text(c.cmd(&["RING", "REMOVE", &extra.addr()])),
        format!("-ERR no such node '{}'\r\n", extra.addr())
    );
    assert!(c
        .line("RING WEIGHT nope 2")
        .starts_with("-ERR no such node"));
    // An address that cannot work is refused before the ring changes: what --backend refuses, and the proxy itself.
    let own = cluster.proxy.addr();
    let own_padded = own.replace(':', ":0");
    let own_upper = own.replace("127.0.0.1", "LOCALHOST");
    for (addr, error) in [
        ("notanaddr", "-ERR 'notanaddr' is not HOST:PORT\r\n"),
        ("", "-ERR '' is not HOST:PORT\r\n"),
        (
            "127.0.0.1:99999",
            "-ERR bad port in '127.0.0.1:99999' (1..65535)\r\n",
        ),
        (
            "127.0.0.1:7000:2",
            "-ERR bad port in '127.0.0.1:7000:2' (1..65535)\r\n",
        ),
        (":7000", "-ERR bad host in ':7000'\r\n"),
        (&own, &format!("-ERR {own} is this proxy's own address\r\n")),
        (
            &own_padded,
            &format!("-ERR {own} is this proxy's own address\r\n"),
        ),
        (
            &own_upper,
            &format!("-ERR {own_upper} is this proxy's own address\r\n"),
        ),
    ] {
        assert_eq!(
            text(c.cmd(&["RING", "ADD", addr])),
            error,
            "RING ADD {addr:?}"
        );
    }
    assert!(c.line("RING NODES").starts_with("*3\r\n"));
    // A form of its address that check cannot see through (127.1, a host name) is found on connecting: requests there
    // fail at once, instead of going around through the proxy again until they time out.
    let alias = own.replace("127.0.0.1", "127.1");
    assert!(text(c.cmd(&["RING", "ADD", &alias])).starts_with("*6\r\n"));
    let key = (0..)
        .map(|i| format!("self:{i}"))
        .find(|k| owner(&mut c, k) == alias)
        .expect("a key on the alias");
    assert_eq!(
        text(c.cmd(&["GET", &key])),
        format!("-ERR backend {alias} unavailable: it is this proxy\r\n")
    );
    assert!(text(c.cmd(&["RING", "REMOVE", &alias])).starts_with("*6\r\n"));
    assert!(c.line("RING NODES").starts_with("*3\r\n"));
}

/// A transaction (or a WATCH) begun before the ring changed is discarded at EXEC: the keys may have moved, and the
/// backend it was bound to may no longer be at the index it had (RING REMOVE of another node once made EXEC write a
/// key to a backend the proxy never reads it from).
#[test]
fn a_transaction_across_a_ring_change_is_discarded() {
    let cluster = Cluster::ringkv(3, &[]);
    let extra = Server::start(&[]);
    let mut admin = cluster.proxy.raw();
    let mut c = cluster.proxy.raw();
    let ring_changed = "the ring changed while the transaction was queued";
    // Owned by the first backend, and by it still once a fourth node joined.
    assert!(text(admin.cmd(&["RING", "ADD", &extra.addr()])).starts_with("*6\r\n"));
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| owner(&mut admin, k) == cluster.addrs[0])
        .unwrap();
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", &key, "from-multi"]), b"+QUEUED\r\n");
    assert!(text(admin.cmd(&["RING", "REMOVE", &cluster.addrs[1]])).starts_with("*6\r\n"));
    assert_eq!(owner(&mut admin, &key), cluster.addrs[0]);
    let exec = text(c.cmd(&["EXEC"]));
    assert!(
        exec.starts_with("-EXECABORT") && exec.contains(ring_changed),
        "{exec}"
    );
    assert_eq!(text(c.cmd(&["GET", &key])), "$-1\r\n");
    for b in cluster.addrs.iter().chain([&extra.addr()]) {
        let mut direct = cluster.backend(b);
        assert_eq!(direct.line("DBSIZE"), ":0\r\n", "{b} got nothing");
    }
    // Watching: a command queued after the change is refused, and EXEC is discarded.
    assert_eq!(c.cmd(&["WATCH", &key]), b"+OK\r\n");
    assert!(text(admin.cmd(&["RING", "ADD", &cluster.addrs[1]])).starts_with("*6\r\n"));
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    let queued = text(c.cmd(&["SET", &key, "v"]));
    assert!(
        queued.starts_with("-ERR") && queued.contains(ring_changed),
        "{queued}"
    );
    assert!(text(c.cmd(&["EXEC"])).starts_with("-EXECABORT"));
    // A transaction begun after the change runs.
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", &key, "v"]), b"+QUEUED\r\n");
    assert_eq!(c.line("EXEC"), "*1\r\n+OK\r\n");
    assert_eq!(c.cmd(&["GET", &key]), b"$1\r\nv\r\n");
}

#[test]
fn a_backend_given_twice_or_the_proxy_itself_as_backend_is_refused_at_startup() {
    let bin = env!("CARGO_BIN_EXE_ringkv");
    let port = common::free_port().to_string();
    let own = format!("127.0.0.1:{port}");
    for (backends, error) in [
        (
            vec!["127.0.0.1:6390", "127.0.0.1:6391", "127.0.0.1:6390"],
            "ringkv: proxying on 127.0.0.1:{port}: backend 127.0.0.1:6390 is given twice\n",
        ),
        (
            vec!["127.0.0.1:6390", own.as_str()],
            "ringkv: proxying on 127.0.0.1:{port}: backend 127.0.0.1:{port} is this proxy's own address\n",
        ),
    ] {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["proxy", "--port", &port]);
        for b in &backends {
            cmd.args(["--backend", b]);
        }
        let out = cmd.output().expect("run ringkv proxy");
        assert!(!out.status.success(), "{backends:?} started");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            error.replace("{port}", &port)
        );
    }
}

#[test]
fn blocking_pops_and_transactions_run_on_the_keys_backend() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    let mut a = cluster.proxy.raw();
    let mut b = cluster.proxy.raw();
    a.send_cmd(&["BLPOP", "queue", "5"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.line("LPUSH queue job"), ":1\r\n");
    assert_eq!(text(a.reply()), "*2\r\n$5\r\nqueue\r\n$3\r\njob\r\n");
    assert_eq!(a.line("BLPOP queue 0.1"), "*-1\r\n");
    let (x, y) = first_two_on_different_nodes(&mut a);
    assert!(text(a.cmd(&["BLPOP", &x, &y, "1"])).starts_with("-CROSSSLOT"));

    assert_eq!(a.line("MULTI"), "+OK\r\n");
    assert_eq!(a.line("SET {t}a 1"), "+QUEUED\r\n");
    assert_eq!(a.line("INCR {t}b"), "+QUEUED\r\n");
    assert_eq!(a.line("EXEC"), "*2\r\n+OK\r\n:1\r\n");

    assert_eq!(a.line("MULTI"), "+OK\r\n");
    assert_eq!(text(a.cmd(&["SET", &x, "1"])), "+QUEUED\r\n");
    assert!(text(a.cmd(&["SET", &y, "1"])).starts_with("-CROSSSLOT"));
    assert_eq!(
        a.line("EXEC"),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );

    assert_eq!(a.line("WATCH {t}a"), "+OK\r\n");
    assert_eq!(b.line("SET {t}a 2"), "+OK\r\n");
    assert_eq!(a.line("MULTI"), "+OK\r\n");
    assert_eq!(a.line("SET {t}a 3"), "+QUEUED\r\n");
    assert_eq!(a.line("EXEC"), "*-1\r\n");
    assert_eq!(a.line("GET {t}a"), "$1\r\n2\r\n");
}

/// The backend's id of the proxy connection that last ran `cmd` (CLIENT LIST's `cmd=`).
fn backend_client_running(backend: &mut Raw, cmd: &str) -> String {
    let list = text(backend.cmd(&["CLIENT", "LIST"]));
    let line = list.lines().find(|l| l.contains(&format!(" cmd={cmd} ")));
    let line = line.unwrap_or_else(|| panic!("no connection ran {cmd} in: {list}"));
    let id = line.split(' ').find_map(|f| f.strip_prefix("id="));
    id.expect("CLIENT LIST has id=").to_string()
}

#[test]
fn a_watch_whose_backend_connection_is_lost_never_lets_exec_run() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    let mut a = cluster.proxy.raw();
    let mut b = cluster.proxy.raw();
    let owner = owner(&mut a, "{w}k");
    let mut backend = cluster.backend(&owner);
    assert_eq!(a.line("WATCH {w}k"), "+OK\r\n");
    let id = backend_client_running(&mut backend, "watch");
    assert_eq!(backend.line(&format!("CLIENT KILL ID {id}")), ":1\r\n");
    assert_eq!(b.line("SET {w}k theirs"), "+OK\r\n");
    assert_eq!(a.line("MULTI"), "+OK\r\n");
    assert_eq!(a.line("SET {w}k mine"), "+QUEUED\r\n");
    // Without its WATCH the transaction must not run: an error, never a silent success on a new connection.
    let exec = a.line("EXEC");
    assert!(exec.starts_with("-ERR backend"), "EXEC replied {exec:?}");
    assert_eq!(b.line("GET {w}k"), "$6\r\ntheirs\r\n");
    // The next WATCH takes a new connection and works.
    assert_eq!(a.line("WATCH {w}k"), "+OK\r\n");
    assert_eq!(a.line("MULTI"), "+OK\r\n");
    assert_eq!(a.line("SET {w}k mine"), "+QUEUED\r\n");
    assert_eq!(a.line("EXEC"), "*1\r\n+OK\r\n");
}

#[test]
fn a_watch_that_could_not_connect_never_lets_exec_run() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let proxy = Server::start_proxy(&["--backend", &addr]);
    let (mut a, mut d) = (proxy.raw(), proxy.raw());
    assert!(a.line("WATCH k").starts_with("-ERR backend"));
    assert!(d.line("WATCH k").starts_with("-ERR backend"));
    // The backend comes up: the failed WATCH's connection must not be made now, watching nothing.
    let Some(_redis) = redis_server(port) else {
        return;
    };
    let mut b = proxy.raw();
    eventually(5, "the backend answers", || {
        b.line("SET k theirs") == "+OK\r\n"
    });
    // Past the 100 ms in which a connection that failed to connect fails requests without trying.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.line("MULTI"), "+OK\r\n");
    assert_eq!(a.line("SET k mine"), "+QUEUED\r\n");
    let exec = a.line("EXEC");
    assert!(exec.starts_with("-ERR backend"), "EXEC replied {exec:?}");
    assert_eq!(b.line("GET k"), "$6\r\ntheirs\r\n");
    // A client that retries its failed WATCH gets a WATCH in force, as on Redis.
    assert_eq!(d.line("WATCH k"), "+OK\r\n");
    assert_eq!(d.line("MULTI"), "+OK\r\n");
    assert_eq!(d.line("SET k d"), "+QUEUED\r\n");
    assert_eq!(d.line("EXEC"), "*1\r\n+OK\r\n");
}

#[test]
fn hello_while_watching_switches_exec_to_the_new_protocol() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    let mut a = cluster.proxy.raw();
    assert_eq!(a.line("HSET {w}h f v"), ":1\r\n");
    for (from, to, exec) in [
        ("2", "3", "*2\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n_\r\n"),
        ("3", "2", "*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n$-1\r\n"),
    ] {
        a.cmd(&["HELLO", from]);
        assert_eq!(a.line("WATCH {w}k"), "+OK\r\n");
        a.cmd(&["HELLO", to]);
        assert_eq!(a.line("MULTI"), "+OK\r\n");
        assert_eq!(a.line("HGETALL {w}h"), "+QUEUED\r\n");
        assert_eq!(a.line("GET {w}none"), "+QUEUED\r\n");
        assert_eq!(
            a.line("EXEC"),
            exec,
            "HELLO {from} then WATCH then HELLO {to}"
        );
    }
}

#[test]
fn the_proxy_gives_back_the_memory_of_a_big_value() {
    let backend = Server::start(&[]);
    let proxy = Server::start_proxy(&["--backend", &backend.addr()]);
    let (before, after) = proxy.rss_around_a_big_value();
    // Kept, the client's read buffer, the backend connection's buffers and the reply would hold 250 MiB and more.
    assert!(
        after < before + 40,
        "resident {before} MiB, then {after} MiB"
    );
}

/// Celery's result backend stores a result and announces it in one transaction: `MULTI, SET key, PUBLISH channel,
/// EXEC` with the key and the channel under one hash tag.
#[test]
fn publish_in_a_transaction_goes_with_the_keys_of_its_hash_tag() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    let mut sub = cluster.proxy.raw();
    assert_eq!(
        sub.line("SUBSCRIBE {c}:meta"),
        "*3\r\n$9\r\nsubscribe\r\n$8\r\n{c}:meta\r\n:1\r\n"
    );
    let mut c = cluster.proxy.raw();
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.line("SET {c}:meta done"), "+QUEUED\r\n");
    assert_eq!(c.line("PUBLISH {c}:meta done"), "+QUEUED\r\n");
    assert_eq!(c.line("EXEC"), "*2\r\n+OK\r\n:1\r\n");
    assert_eq!(
        text(sub.reply()),
        "*3\r\n$7\r\nmessage\r\n$8\r\n{c}:meta\r\n$4\r\ndone\r\n"
    );
    // A channel on another backend than the transaction's keys: refused, and the transaction with it.
    let (x, y) = first_two_on_different_nodes(&mut c);
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(text(c.cmd(&["SET", &x, "1"])), "+QUEUED\r\n");
    assert!(text(c.cmd(&["PUBLISH", &y, "m"])).starts_with("-CROSSSLOT"));
    assert!(c.line("EXEC").starts_with("-EXECABORT"));
    // Outside MULTI it goes to the channel's owner, as before.
    assert_eq!(c.line("PUBLISH {c}:meta again"), ":1\r\n");
}

#[test]
fn ketama_mode_places_every_key_where_twemproxy_does() {
    let Some(redis) = (0..3).map(|_| redis_server(0)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let servers: String = redis
        .iter()
        .map(|r| format!("   - {}:1\n", r.addr()))
        .collect();
    let yaml = format!(
        "alpha:\n  listen: 127.0.0.1:{{port}}\n  hash: fnv1a_64\n  hash_tag: \"{{}}\"\n  distribution: ketama\n  \
         redis: true\n  timeout: 2000\n  servers:\n{servers}"
    );
    let Some(twemproxy) = nutcracker(&yaml) else {
        return;
    };
    let addrs: Vec<String> = redis.iter().map(External::addr).collect();
    let cluster = Cluster::with(
        addrs,
        Vec::new(),
        Vec::new(),
        &["--distribution", "ketama", "--hash", "fnv1a_64"],
    );
    let keys: Vec<String> = (0..10_000).map(|i| format!("user:{i}:profile")).collect();

    let mut tw = twemproxy.raw();
    for chunk in keys.chunks(500) {
        let batch: Vec<u8> = chunk
            .iter()
            .flat_map(|k| encode(&["SET", k.as_str(), k.as_str()]))
            .collect();
        tw.send(&batch);
        for _ in chunk {
            assert_eq!(text(tw.reply()), "+OK\r\n");
        }
    }

    let mut c = cluster.proxy.raw();
    for chunk in keys.chunks(500) {
        let batch: Vec<u8> = chunk
            .iter()
            .flat_map(|k| encode(&["GET", k.as_str()]))
            .collect();
        c.send(&batch);
        for k in chunk {
            assert_eq!(text(c.reply()), format!("${}\r\n{k}\r\n", k.len()), "{k}");
        }
    }
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for chunk in keys.chunks(1000) {
        for node in owners(&mut c, chunk) {
            *expected.entry(node).or_default() += 1;
        }
    }
    for r in &redis {
        let dbsize = text(r.raw().cmd(&["DBSIZE"]));
        let want = expected.get(&r.addr()).copied().unwrap_or(0);
        assert_eq!(dbsize, format!(":{want}\r\n"), "{}", r.addr());
        assert!(want > 2000, "{}: {want} keys", r.addr());
    }
}

#[test]
fn mset_with_a_missing_value_writes_nothing() {
    let cluster = Cluster::ringkv(3, &[]);
    let mut c = cluster.proxy.raw();
    let (a, b) = first_two_on_different_nodes(&mut c);
    assert_eq!(
        text(c.cmd(&["MSET", &a, "1", &b])),
        "-ERR wrong number of arguments for 'mset' command\r\n"
    );
    assert_eq!(text(c.cmd(&["EXISTS", &a, &b])), ":0\r\n");
}

#[test]
fn a_backend_that_stops_answering_times_out_instead_of_hanging() {
    let Some(cluster) = Cluster::redis(3, &["--timeout-ms", "300"]) else {
        return;
    };
    let mut c = cluster.proxy.raw();
    let slow = cluster.addrs[0].clone();
    let key = (0..)
        .map(|i| format!("t{i}"))
        .find(|k| owner(&mut c, k) == slow)
        .expect("a key on the first backend");
    assert_eq!(text(c.cmd(&["SET", &key, "v"])), "+OK\r\n");
    let mut admin = Raw::connect(&slow);
    admin.send_cmd(&["DEBUG", "SLEEP", "1.5"]);
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let got = text(c.cmd(&["GET", &key]));
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(
        got,
        format!("-ERR backend {slow} unavailable: timed out after 300 ms\r\n")
    );
    assert_eq!(text(admin.reply()), "+OK\r\n");
    assert_eq!(text(c.cmd(&["GET", &key])), "$1\r\nv\r\n");

    // A WATCH's own connection times out too: EXEC, and a WATCH from another client, answer the error.
    assert_eq!(c.cmd(&["WATCH", &key]), b"+OK\r\n");
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", &key, "w"]), b"+QUEUED\r\n");
    admin.send_cmd(&["DEBUG", "SLEEP", "1.5"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut other = cluster.proxy.raw();
    let start = Instant::now();
    c.send_cmd(&["EXEC"]);
    other.send_cmd(&["WATCH", &key]);
    let timed_out = format!("-ERR backend {slow} unavailable: timed out after 300 ms\r\n");
    assert_eq!(text(c.reply()), timed_out, "EXEC");
    assert_eq!(text(other.reply()), timed_out, "WATCH");
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(text(admin.reply()), "+OK\r\n");
}

#[test]
fn auto_eject_takes_a_failing_backend_out_of_the_ring_until_its_retry_time() {
    let mut cluster = Cluster::ringkv(
        3,
        &[
            "--auto-eject",
            "--server-failure-limit",
            "1",
            "--server-retry-timeout",
            "60000",
        ],
    );
    let mut c = cluster.proxy.raw();
    let dead = cluster.addrs[2].clone();
    let key = (0..)
        .map(|i| format!("e{i}"))
        .find(|k| owner(&mut c, k) == dead)
        .expect("a key on the third backend");
    cluster.ringkv[2].kill();
    assert!(text(c.cmd(&["GET", &key])).starts_with(&format!("-ERR backend {dead} unavailable")));
    let start = Instant::now();
    while owner(&mut c, &key) == dead {
        assert!(start.elapsed() < Duration::from_secs(3), "not ejected");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(text(c.cmd(&["SET", &key, "elsewhere"])), "+OK\r\n");
    assert_eq!(c.line("DBSIZE"), ":1\r\n");
    let nodes = c.line("RING NODES");
    assert!(
        nodes.contains("$6\r\nstatus\r\n$7\r\nejected\r\n"),
        "{nodes}"
    );
}

#[test]
fn a_client_that_leaves_while_blocked_does_not_take_an_element() {
    let cluster = Cluster::ringkv(3, &[]);
    let mut gone = cluster.proxy.raw();
    gone.send_cmd(&["BLPOP", "jobs", "0"]);
    std::thread::sleep(Duration::from_millis(200));
    drop(gone);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = cluster.proxy.raw();
    assert_eq!(c.line("RPUSH jobs one"), ":1\r\n");
    assert_eq!(c.line("LLEN jobs"), ":1\r\n");
}

/// What a client pipelines after a blocking pop waits until the pop answers, as Redis leaves a blocked client's
/// input unread: it neither runs first (the pop does not get what a later request pushes) nor takes an element that
/// a client leaving while blocked would never read.
#[test]
fn requests_pipelined_after_a_blocking_pop_wait_for_it() {
    let cluster = Cluster::ringkv(3, &[]);
    let mut c = cluster.proxy.raw();
    let mut batch = encode(&["BLPOP", "q", "0.2"]);
    batch.extend(encode(&["RPUSH", "q", "x"]));
    batch.extend(encode(&["LPOP", "q"]));
    c.send(&batch);
    assert_eq!(
        c.reply(),
        b"*-1\r\n",
        "the pop timed out: the push had not run"
    );
    assert_eq!(c.reply(), b":1\r\n");
    assert_eq!(c.reply(), b"$1\r\nx\r\n");

    // A client blocked on one queue, with pops of two more pipelined behind, leaves: no element is taken.
    let mut admin = cluster.proxy.raw();
    admin.line("RPUSH a 1");
    admin.line("RPUSH b 2");
    let mut gone = cluster.proxy.raw();
    let mut batch = encode(&["BLPOP", "empty", "0"]);
    batch.extend(encode(&["BLPOP", "a", "0"]));
    batch.extend(encode(&["RPOP", "b"]));
    gone.send(&batch);
    std::thread::sleep(Duration::from_millis(200));
    drop(gone);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin.line("LLEN a"), ":1\r\n");
    assert_eq!(admin.line("LLEN b"), ":1\r\n");
    assert_eq!(admin.line("RPUSH empty e"), ":1\r\n");
    assert_eq!(admin.line("LLEN empty"), ":1\r\n");
}

/// A blocking pop (on a connection of its own) or an XREAD runs after what the client pipelined before it on the
/// shared connection: behind a thousand writes, `SET l str` then `BLPOP l` is WRONGTYPE (not a time-out: the pop
/// overtook the SET in four runs of five), and `XADD` then `XREAD` sees the entry.
#[test]
fn a_blocking_pop_or_xread_runs_after_the_requests_before_it() {
    let cluster = Cluster::ringkv(3, &[]);
    let mut c = cluster.proxy.raw();
    let pad = "p".repeat(100);
    for round in 0..5 {
        let mut batch = Vec::new();
        for _ in 0..1000 {
            batch.extend(encode(&["SET", "{t}pad", &pad]));
        }
        batch.extend(encode(&["SET", "{t}l", "str"]));
        batch.extend(encode(&["BLPOP", "{t}l", "0.2"]));
        batch.extend(encode(&["DEL", "{t}s"]));
        batch.extend(encode(&["XADD", "{t}s", "1-1", "f", "v"]));
        batch.extend(encode(&["XREAD", "STREAMS", "{t}s", "0"]));
        c.send(&batch);
        for _ in 0..1001 {
            assert_eq!(c.reply(), b"+OK\r\n");
        }
        assert!(
            text(c.reply()).starts_with("-WRONGTYPE"),
            "round {round}: BLPOP ran before the SET"
        );
        c.reply();
        assert_eq!(c.reply(), b"$3\r\n1-1\r\n");
        assert_eq!(
            text(c.reply()),
            "*1\r\n*2\r\n$4\r\n{t}s\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
            "round {round}: XREAD ran before the XADD"
        );
    }
}

/// A client that sends its requests and then closes its side of the connection (`nc -N`, socat) gets every reply,
/// as from Redis; one blocked by then is dropped, as Redis drops it: the replies before the blocking pop come, and
/// the pop is cancelled on its backend.
#[test]
fn a_client_that_half_closes_gets_its_replies() {
    let cluster = Cluster::ringkv(3, &[]);
    let mut c = cluster.proxy.raw();
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(encode(&["SET", &format!("k{i}"), &format!("v{i}")]));
        batch.extend(encode(&["GET", &format!("k{i}")]));
    }
    batch.extend(encode(&["PING"]));
    c.send(&batch);
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut want = String::new();
    for i in 0..50 {
        want += &format!("+OK\r\n${}\r\nv{i}\r\n", format!("v{i}").len());
    }
    want += "+PONG\r\n";
    assert_eq!(text(c.read_to_close()), want);

    let mut c = cluster.proxy.raw();
    let mut batch = encode(&["SET", "x", "1"]);
    batch.extend(encode(&["BLPOP", "empty", "0"]));
    batch.extend(encode(&["GET", "x"]));
    c.send(&batch);
    std::thread::sleep(Duration::from_millis(100));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(text(c.read_to_close()), "+OK\r\n");
    let mut admin = cluster.proxy.raw();
    assert_eq!(admin.line("RPUSH empty e"), ":1\r\n");
    assert_eq!(
        admin.line("LLEN empty"),
        ":1\r\n",
        "the dropped pop took nothing"
    );
}

/// Random pipelines mixing blocking pops (20 ms timeouts), MULTI/EXEC/DISCARD and WATCH/UNWATCH with pushes, pops,
/// reads and PING on three hash-tagged lists give, reply for reply, what one redis-server gives: through the proxy a
/// pipeline runs in order, blocking, watching or not.
#[test]
fn pipelines_with_blocking_pops_and_transactions_match_redis_through_the_proxy() {
    let (Some(cluster), Some(direct)) = (Cluster::redis(3, &[]), redis_server(0)) else {
        return;
    };
    let keys = ["{q}a", "{q}b", "{q}c"];
    let mut rng = fastrand::Rng::with_seed(7);
    let mut via_proxy = cluster.proxy.raw();
    let mut via_redis = direct.raw();
    let pick = |rng: &mut fastrand::Rng, of: &[&str]| of[rng.usize(..of.len())].to_string();
    for round in 0..30 {
        let mut pipeline: Vec<Vec<String>> =
            vec![["DEL"].iter().chain(&keys).map(|s| s.to_string()).collect()];
        for _ in 0..rng.usize(1..=12) {
            let (key, other) = (pick(&mut rng, &keys), pick(&mut rng, &keys));
            let timeout = "0.02".to_string();
            let cmd: Vec<String> = match rng.usize(..14) {
                10 => vec![pick(&mut rng, &["MULTI", "EXEC", "DISCARD", "PING"])],
                11 => vec!["WATCH".into(), key],
                12 => vec!["UNWATCH".into()],
                13 => vec!["MULTI".into()],
                0..=2 => vec![
                    pick(&mut rng, &["LPUSH", "RPUSH"]),
                    key,
                    format!("v{}", rng.u8(..10)),
                ],
                3 | 4 => vec![pick(&mut rng, &["BLPOP", "BRPOP"]), key, other, timeout],
                5 => {
                    let (from, to) = (
                        pick(&mut rng, &["LEFT", "RIGHT"]),
                        pick(&mut rng, &["LEFT", "RIGHT"]),
                    );
                    vec!["BLMOVE".into(), key, other, from, to, timeout]
                }
                6 => {
                    let side = pick(&mut rng, &["LEFT", "RIGHT"]);
                    vec![
                        "BLMPOP".into(),
                        timeout,
                        "2".into(),
                        key,
                        other,
                        side,
                        "COUNT".into(),
                        "2".into(),
                    ]
                }
                7 | 8 => vec![pick(&mut rng, &["LPOP", "RPOP"]), key],
                _ => vec!["LRANGE".into(), key, "0".into(), "-1".into()],
            };
            pipeline.push(cmd);
        }
        // Leave no transaction or watch open for the next round (and for the PING that marks the end).
        pipeline.push(vec!["DISCARD".into()]);
        pipeline.push(vec!["UNWATCH".into()]);
        let mut bytes: Vec<u8> = pipeline.iter().flat_map(|c| encode(c)).collect();
        bytes.extend(encode(&["PING", "end"]));
        let replies = |c: &mut Raw| {
            c.send(&bytes);
            let mut all = Vec::new();
            loop {
                let reply = c.reply();
                if reply == b"$3\r\nend\r\n" {
                    return all;
                }
                all.push(text(reply));
            }
        };
        let (got, want) = (replies(&mut via_proxy), replies(&mut via_redis));
        assert_eq!(got, want, "round {round}: {pipeline:?}");
    }
}

/// The proxy learns and forgets script bodies in the client's order: an EVALSHA is repaired only with a body known
/// when it was sent, and a SCRIPT LOAD followed by SCRIPT FLUSH leaves the script unknown, as on Redis.
#[test]
fn script_bodies_are_learned_and_forgotten_in_pipeline_order() {
    let cluster = Cluster::ringkv(3, &[]);
    let mut c = cluster.proxy.raw();
    let noscript = "-NOSCRIPT No matching script. Please use EVAL.\r\n";
    let sha_of = |body: &str| {
        let mut backend = cluster.backend(&cluster.addrs[0]);
        let sha = text(backend.cmd(&["SCRIPT", "LOAD", body]))[5..45].to_string();
        backend.line("SCRIPT FLUSH");
        sha
    };
    let (first, second) = ("return 'first'", "return 'second'");
    let (first_sha, second_sha) = (sha_of(first), sha_of(second));

    let mut batch = encode(&["SCRIPT", "FLUSH"]);
    batch.extend(encode(&["EVALSHA", &first_sha, "0"]));
    batch.extend(encode(&["EVAL", first, "0"]));
    batch.extend(encode(&["EVALSHA", &first_sha, "0"]));
    c.send(&batch);
    assert_eq!(text(c.reply()), "+OK\r\n");
    assert_eq!(
        text(c.reply()),
        noscript,
        "not repaired with a body sent after it"
    );
    assert_eq!(text(c.reply()), "$5\r\nfirst\r\n");
    assert_eq!(text(c.reply()), "$5\r\nfirst\r\n");

    let mut batch = encode(&["SCRIPT", "LOAD", second]);
    batch.extend(encode(&["SCRIPT", "FLUSH"]));
    c.send(&batch);
    assert_eq!(text(c.reply()), format!("$40\r\n{second_sha}\r\n"));
    assert_eq!(text(c.reply()), "+OK\r\n");
    assert_eq!(text(c.cmd(&["EVALSHA", &second_sha, "0"])), noscript);
    assert_eq!(
        text(c.cmd(&["SCRIPT", "EXISTS", &second_sha])),
        "*1\r\n:0\r\n"
    );
}

/// HELLO 3 and RESET switch a client to the other protocol's backend connections: what it pipelined before the
/// switch has run when what follows runs.
#[test]
fn a_protocol_switch_keeps_the_pipeline_in_order() {
    let cluster = Cluster::ringkv(3, &[]);
    for i in 0..20 {
        let mut c = cluster.proxy.raw();
        let key = format!("switch{i}");
        let big = "v".repeat(2000);
        let mut batch = encode(&["SET", &key, &big]);
        batch.extend(encode(&["HELLO", "3"]));
        batch.extend(encode(&["GET", &key]));
        batch.extend(encode(&["SET", &key, "w"]));
        batch.extend(encode(&["RESET"]));
        batch.extend(encode(&["GET", &key]));
        c.send(&batch);
        assert_eq!(c.reply(), b"+OK\r\n");
        assert!(c.reply().starts_with(b"%"), "HELLO 3's map");
        assert_eq!(text(c.reply()), format!("$2000\r\n{big}\r\n"), "round {i}");
        assert_eq!(c.reply(), b"+OK\r\n");
        assert_eq!(c.reply(), b"+RESET\r\n");
        assert_eq!(c.reply(), b"$1\r\nw\r\n", "round {i}");
    }
}

/// A RESP3 client that pipelines SUBSCRIBE and a PUBLISH to the same channel gets its own message, as on Redis:
/// the subscription is made before the PUBLISH runs.
#[test]
fn a_resp3_client_gets_what_it_publishes_right_after_subscribing() {
    let cluster = Cluster::ringkv(3, &[]);
    for i in 0..20 {
        let mut c = cluster.proxy.raw();
        assert!(c.line("HELLO 3").starts_with('%'));
        let channel = format!("own{i}");
        let mut batch = encode(&["SUBSCRIBE", &channel]);
        batch.extend(encode(&["PUBLISH", &channel, "m"]));
        c.send(&batch);
        let confirmation = text(c.reply());
        assert!(
            confirmation.starts_with(">3\r\n$9\r\nsubscribe\r\n"),
            "{confirmation}"
        );
        let next: Vec<String> = (0..2).map(|_| text(c.reply())).collect();
        let message = format!(
            ">3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n$1\r\nm\r\n",
            channel.len()
        );
        assert!(
            next.contains(&message) && next.contains(&":1\r\n".to_string()),
            "round {i}: {next:?}"
        );
    }
}

#[test]
fn quit_answers_what_was_pipelined_before_it_then_closes() {
    let cluster = Cluster::ringkv(3, &[]);
    let mut c = cluster.proxy.raw();
    let mut batch = encode(&["SET", "q", "1"]);
    batch.extend(encode(&["GET", "q"]));
    batch.extend(encode(&["QUIT"]));
    batch.extend(encode(&["GET", "q"]));
    c.send(&batch);
    assert_eq!(text(c.read_to_close()), "+OK\r\n$1\r\n1\r\n+OK\r\n");
}

/// The backends (by address) whose script cache holds `sha`, asked directly.
fn backends_with_script(cluster: &Cluster, sha: &str) -> Vec<String> {
    cluster
        .addrs
        .iter()
        .filter(|a| text(cluster.backend(a).cmd(&["SCRIPT", "EXISTS", sha])) == "*1\r\n:1\r\n")
        .cloned()
        .collect()
}

fn scripts(cluster: &Cluster) {
    let mut c = cluster.proxy.raw();
    let set = "return redis.call('SET', KEYS[1], ARGV[1])";
    let set_sha = text(c.cmd(&["SCRIPT", "LOAD", set]));
    assert!(set_sha.starts_with("$40\r\n"), "{set_sha}");
    let set_sha = set_sha[5..45].to_string();
    assert_eq!(backends_with_script(cluster, &set_sha), cluster.addrs);

    // Routed by the keys: each key lands on its owner.
    for i in 0..12 {
        let key = format!("s{i}");
        assert_eq!(
            text(c.cmd(&["EVALSHA", &set_sha, "1", &key, "v"])),
            "+OK\r\n"
        );
        let node = owner(&mut c, &key);
        assert_eq!(text(Raw::connect(&node).cmd(&["GET", &key])), "$1\r\nv\r\n");
    }
    let (a, b) = first_two_on_different_nodes(&mut c);
    let two = "return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)";
    assert!(text(c.cmd(&["EVAL", two, "2", &a, &b])).starts_with("-CROSSSLOT"));
    assert_eq!(
        text(c.cmd(&["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "s0"])),
        "$1\r\nv\r\n"
    );

    // Without keys: always the backend owning the script's SHA1, so only that one caches it.
    let keyless = "return 'keyless'";
    for _ in 0..3 {
        assert_eq!(text(c.cmd(&["EVAL", keyless, "0"])), "$7\r\nkeyless\r\n");
    }
    let keyless_sha = text(Raw::connect(&cluster.addrs[0]).cmd(&["SCRIPT", "LOAD", keyless]));
    let keyless_sha = keyless_sha[5..45].to_string();
    let _ = text(Raw::connect(&cluster.addrs[0]).cmd(&["SCRIPT", "FLUSH"]));
    assert_eq!(text(c.cmd(&["EVAL", keyless, "0"])), "$7\r\nkeyless\r\n");
    assert_eq!(
        backends_with_script(cluster, &keyless_sha),
        vec![owner(&mut c, &keyless_sha)]
    );
    // EXISTS is 1 where an EVALSHA works: every backend has the script, or the proxy remembers its body (seen in an
    // EVAL or SCRIPT LOAD through it) and loads it where missing. Neither backend copies are complete here (only the
    // keyless script's owner has it, and the FLUSH above removed the SET script from one backend), as on a Redis
    // that ran both scripts; a script the proxy never saw is 0 unless every backend has it.
    assert_eq!(
        text(c.cmd(&["SCRIPT", "EXISTS", &keyless_sha, &set_sha, "nope"])),
        "*3\r\n:1\r\n:1\r\n:0\r\n"
    );
    let unseen = "return 'unseen'";
    let unseen_sha = text(Raw::connect(&cluster.addrs[0]).cmd(&["SCRIPT", "LOAD", unseen]));
    assert_eq!(
        text(c.cmd(&["SCRIPT", "EXISTS", &unseen_sha[5..45]])),
        "*1\r\n:0\r\n"
    );
    assert_eq!(
        text(c.cmd(&["SCRIPT", "LOAD", set])),
        format!("$40\r\n{set_sha}\r\n")
    );
    assert_eq!(text(c.cmd(&["SCRIPT", "EXISTS", &set_sha])), "*1\r\n:1\r\n");

    // NOSCRIPT repair: a backend that lost its scripts (restart, flush) is given the body again, unseen by the client.
    for addr in &cluster.addrs {
        assert_eq!(
            text(cluster.backend(addr).cmd(&["SCRIPT", "FLUSH"])),
            "+OK\r\n"
        );
    }
    for i in 0..12 {
        let key = format!("s{i}");
        assert_eq!(
            text(c.cmd(&["EVALSHA", &set_sha, "1", &key, "again"])),
            "+OK\r\n",
            "{key}"
        );
    }
    assert_eq!(
        text(c.cmd(&["EVALSHA", &keyless_sha, "0"])),
        "$7\r\nkeyless\r\n"
    );
    // ... also inside a transaction, where the body is loaded before MULTI.
    for addr in &cluster.addrs {
        assert_eq!(
            text(cluster.backend(addr).cmd(&["SCRIPT", "FLUSH"])),
            "+OK\r\n"
        );
    }
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(
        text(c.cmd(&["EVALSHA", &set_sha, "1", "{t}x", "tx"])),
        "+QUEUED\r\n"
    );
    assert_eq!(c.line("GET {t}x"), "+QUEUED\r\n");
    assert_eq!(c.line("EXEC"), "*2\r\n+OK\r\n$2\r\ntx\r\n");

    // ... but not behind the client's back: with requests pipelined after the call (which its backend runs before any
    // retry), the client gets the NOSCRIPT, as from a flushed Redis, and later calls are loaded again.
    let incr = "return redis.call('INCR', KEYS[1])";
    let incr_sha = text(c.cmd(&["SCRIPT", "LOAD", incr]))[5..45].to_string();
    assert_eq!(text(c.cmd(&["EVALSHA", &incr_sha, "1", "{p}m"])), ":1\r\n");
    let node = owner(&mut c, "{p}n");
    assert_eq!(
        text(cluster.backend(&node).cmd(&["SCRIPT", "FLUSH"])),
        "+OK\r\n"
    );
    let pipeline: Vec<u8> = [
        &["SET", "{p}n", "10"][..],
        &["EVALSHA", &incr_sha, "1", "{p}n"],
        &["INCR", "{p}n"],
    ]
    .iter()
    .flat_map(|cmd| encode(cmd))
    .collect();
    c.send(&pipeline);
    assert_eq!(text(c.reply()), "+OK\r\n");
    let noscript = text(c.reply());
    assert!(noscript.starts_with("-NOSCRIPT"), "{noscript}");
    assert_eq!(text(c.reply()), ":11\r\n");
    assert_eq!(text(c.cmd(&["EVALSHA", &incr_sha, "1", "{p}n"])), ":12\r\n");

    // SCRIPT FLUSH through the proxy forgets: EVALSHA then fails as on Redis.
    assert_eq!(c.line("SCRIPT FLUSH"), "+OK\r\n");
    assert_eq!(
        text(c.cmd(&["EVALSHA", &set_sha, "1", "s0", "x"])),
        "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
    assert_eq!(text(c.cmd(&["SCRIPT", "EXISTS", &set_sha])), "*1\r\n:0\r\n");
    assert_eq!(
        c.line("SCRIPT KILL"),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
}

#[test]
fn scripts_are_routed_by_keys_loaded_everywhere_and_repaired_on_noscript_over_ringkv() {
    scripts(&Cluster::ringkv(3, &[]));
}

#[test]
fn scripts_are_routed_by_keys_loaded_everywhere_and_repaired_on_noscript_over_redis() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    scripts(&cluster);
}

/// Functions: FUNCTION LOAD and RESTORE reach every backend, FCALL goes to the backend of its keys (or of its name).
fn functions(cluster: &Cluster) {
    let mut c = cluster.proxy.raw();
    let lib = "#!lua name=q\nredis.register_function('push', function(k, a) return redis.call('rpush', k[1], a[1]) end)\n\
               redis.register_function('where', function() return redis.call('ping') end)";
    assert_eq!(text(c.cmd(&["FUNCTION", "LOAD", lib])), "$1\r\nq\r\n");
    for addr in &cluster.addrs {
        let listed = text(cluster.backend(addr).cmd(&["FUNCTION", "LIST"]));
        assert!(listed.contains("$4\r\npush\r\n"), "{addr}: {listed}");
    }
    assert_eq!(
        text(c.cmd(&["FUNCTION", "LOAD", lib])),
        "-ERR Library 'q' already exists\r\n"
    );
    let (x, y) = first_two_on_different_nodes(&mut c);
    assert_eq!(text(c.cmd(&["FCALL", "push", "1", &x, "a"])), ":1\r\n");
    assert_eq!(text(c.cmd(&["FCALL", "PUSH", "1", &x, "b"])), ":2\r\n");
    let owner_addr = owner(&mut c, &x);
    assert_eq!(
        text(cluster.backend(&owner_addr).cmd(&["LRANGE", &x, "0", "-1"])),
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert!(text(c.cmd(&["FCALL", "push", "2", &x, &y, "c"])).starts_with("-CROSSSLOT"));
    assert_eq!(c.line("FCALL where 0"), "+PONG\r\n");
    assert!(c
        .line("FUNCTION STATS")
        .contains("functions_count\r\n:2\r\n"));
    let dump = c.cmd(&["FUNCTION", "DUMP"]);
    assert!(dump.starts_with(b"$"), "{}", text(dump));
    let payload = &dump[dump.iter().position(|&b| b == b'\n').unwrap() + 1..dump.len() - 2];
    assert_eq!(c.line("FUNCTION DELETE q"), "+OK\r\n");
    for addr in &cluster.addrs {
        assert_eq!(
            text(cluster.backend(addr).cmd(&["FUNCTION", "LIST"])),
            "*0\r\n"
        );
    }
    assert_eq!(c.line("FCALL where 0"), "-ERR Function not found\r\n");
    // FUNCTION RESTORE reaches every backend too.
    let restore = |c: &mut Raw| c.cmd(&[&b"FUNCTION"[..], b"RESTORE", payload]);
    assert_eq!(text(restore(&mut c)), "+OK\r\n");
    assert_eq!(text(restore(&mut c)), "-ERR Library q already exists\r\n");
    for addr in &cluster.addrs {
        let listed = text(cluster.backend(addr).cmd(&["FUNCTION", "LIST"]));
        assert!(listed.contains("$4\r\npush\r\n"), "{addr}: {listed}");
    }
    assert_eq!(c.line("FUNCTION FLUSH"), "+OK\r\n");
    assert!(c.line("FUNCTION HELP").starts_with("*"));
}

#[test]
fn functions_are_loaded_everywhere_and_called_by_keys_over_ringkv() {
    functions(&Cluster::ringkv(3, &[]));
}

#[test]
fn functions_are_loaded_everywhere_and_called_by_keys_over_redis() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    functions(&cluster);
}

#[test]
fn a_backend_added_by_ring_add_gets_known_scripts_on_first_use() {
    let cluster = Cluster::ringkv(2, &[]);
    let extra = Server::start(&[]);
    let mut c = cluster.proxy.raw();
    let get = "return redis.call('GET', KEYS[1])";
    let sha = text(c.cmd(&["SCRIPT", "LOAD", get]))[5..45].to_string();
    assert!(text(c.cmd(&["RING", "ADD", &extra.addr()])).starts_with("*6\r\n"));
    let key = (0..)
        .map(|i| format!("n{i}"))
        .find(|k| owner(&mut c, k) == extra.addr())
        .expect("a key on the new node");
    assert_eq!(text(c.cmd(&["SET", &key, "new"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["EVALSHA", &sha, "1", &key])), "$3\r\nnew\r\n");
    assert_eq!(
        text(extra.raw().cmd(&["SCRIPT", "EXISTS", &sha])),
        "*1\r\n:1\r\n"
    );
}

#[test]
fn a_script_called_on_a_restarted_backend_runs_in_pipeline_order() {
    let mut cluster = Cluster::ringkv(1, &[]);
    let mut c = cluster.proxy.raw();
    let incr = "return redis.call('INCRBY', KEYS[1], 1)";
    let sha = text(c.cmd(&["SCRIPT", "LOAD", incr]))[5..45].to_string();
    assert_eq!(text(c.cmd(&["EVALSHA", &sha, "1", "k"])), ":1\r\n");
    // The restarted backend has lost the script; the proxy notices its connection close.
    let port = cluster.ringkv[0].port;
    cluster.ringkv[0].kill();
    cluster.ringkv[0] = Server::start_on(port, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let commands = [
        vec!["SET", "k", "10"],
        vec!["EVALSHA", sha.as_str(), "1", "k"],
        vec!["INCR", "k"],
        vec!["GET", "k"],
    ];
    let replies: Vec<String> = common::pipeline(&mut c, &commands)
        .into_iter()
        .map(text)
        .collect();
    // The new connection loads the body ahead of the call in the same write, so the INCR after it sees its effect.
    assert_eq!(replies, ["+OK\r\n", ":11\r\n", ":12\r\n", "$2\r\n12\r\n"]);
}

/// How many SCRIPT LOADs a Redis backend has run (INFO commandstats).
fn script_loads(backend: &mut Raw) -> u64 {
    let stats = text(backend.cmd(&["INFO", "commandstats"]));
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_script|load:"));
    let calls = line.and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok());
    calls.unwrap_or(0)
}

#[test]
fn a_script_is_loaded_once_per_backend_connection_not_per_call() {
    let Some(cluster) = Cluster::redis(1, &[]) else {
        return;
    };
    let mut backend = cluster.backend(&cluster.addrs[0]);
    let mut c = cluster.proxy.raw();
    let get = "return redis.call('GET', KEYS[1])";
    let sha = text(c.cmd(&["SCRIPT", "LOAD", get]))[5..45].to_string();
    assert_eq!(text(c.cmd(&["EVALSHA", &sha, "1", "k"])), "$-1\r\n");
    let loads = script_loads(&mut backend);
    // Blocking pops make connections of their own, the health check has its own: none of them voids what the
    // shared connection loaded.
    for _ in 0..10 {
        assert_eq!(text(c.cmd(&["EVALSHA", &sha, "1", "k"])), "$-1\r\n");
        assert_eq!(c.line("BLPOP q 0.01"), "*-1\r\n");
    }
    assert_eq!(script_loads(&mut backend), loads);
    // A SCRIPT FLUSH through the proxy voids it (and forgets the body: NOSCRIPT, as on Redis).
    assert_eq!(c.line("SCRIPT FLUSH"), "+OK\r\n");
    assert!(text(c.cmd(&["EVALSHA", &sha, "1", "k"])).starts_with("-NOSCRIPT"));
}

#[test]
fn info_through_the_proxy_gives_the_sections_asked_for() {
    let cluster = Cluster::ringkv(2, &["--health-check-interval-ms", "0"]);
    let mut c = cluster.proxy.raw();
    // Each backend's request count counts every request of a pipeline (sent as one batch).
    let requests = |c: &mut Raw| -> u64 {
        (0..2)
            .map(|i| {
                let line = backend_info(c, i);
                let field = line.split(',').find_map(|f| f.strip_prefix("requests="));
                field
                    .and_then(|n| n.parse::<u64>().ok())
                    .expect("requests=N")
            })
            .sum()
    };
    let before = requests(&mut c);
    let pipeline: Vec<u8> = (0..50)
        .flat_map(|i| encode(&["GET", &format!("k{i}")]))
        .collect();
    c.send(&pipeline);
    for _ in 0..50 {
        assert_eq!(text(c.reply()), "$-1\r\n");
    }
    assert_eq!(requests(&mut c), before + 50);
    let all = c.line("INFO");
    assert!(
        all.contains("# Server\r\n")
            && all.contains("# Clients\r\n")
            && all.contains("# Proxy\r\n")
    );
    let proxy = c.line("INFO proxy");
    assert!(proxy.contains("# Proxy\r\n") && !proxy.contains("# Server"));
    let server = c.line("INFO SERVER clients");
    assert!(server.contains("# Server\r\n") && server.contains("# Clients\r\n"));
    assert!(!server.contains("# Proxy"));
    // As Redis: an unknown section selects nothing.
    assert_eq!(c.line("INFO nosuch"), "$0\r\n\r\n");
    // Keyspace: database 0 summed over the backends (no line while it is empty, as Redis).
    assert!(c.line("INFO keyspace").ends_with("# Keyspace\r\n\r\n"));
    for i in 0..40 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    c.cmd(&["SET", "ttl", "v", "EX", "1000"]);
    for info in [c.line("INFO keyspace"), c.line("INFO")] {
        assert!(
            info.contains("\r\n# Keyspace\r\ndb0:keys=41,expires=1,avg_ttl="),
            "{info}"
        );
    }
}

/// The INFO line of backend `i` (`backendI:addr=...`).
fn backend_info(c: &mut Raw, i: usize) -> String {
    let info = c.line("INFO proxy");
    let prefix = format!("backend{i}:");
    info.split("\r\n")
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {info}"))
        .to_string()
}

/// Polls `done` every 20 ms for up to `secs` seconds.
fn eventually(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn health_checks_eject_an_idle_dead_backend_and_readmit_it_only_once_it_answers() {
    let mut cluster = Cluster::ringkv(
        3,
        &[
            "--auto-eject",
            "--server-failure-limit",
            "2",
            "--server-retry-timeout",
            "300",
            "--health-check-interval-ms",
            "100",
        ],
    );
    let mut c = cluster.proxy.raw();
    let dead = cluster.addrs[2].clone();
    let key = (0..)
        .map(|i| format!("h{i}"))
        .find(|k| owner(&mut c, k) == dead)
        .expect("a key on the third backend");
    eventually(3, "no successful check", || {
        backend_info(&mut c, 2).contains("last_check=ok,ping_us=")
    });
    let port = cluster.ringkv[2].port;
    cluster.ringkv[2].kill();
    // No client request goes to it: the health check alone notices.
    eventually(3, "not ejected", || owner(&mut c, &key) != dead);
    let line = backend_info(&mut c, 2);
    assert!(line.contains("status=ejected"), "{line}");
    assert!(line.contains("last_check=failed,ping_us=-1"), "{line}");
    // Past the retry time it stays out while it does not answer.
    std::thread::sleep(Duration::from_millis(700));
    assert_ne!(owner(&mut c, &key), dead);
    assert_eq!(text(c.cmd(&["SET", &key, "meanwhile"])), "+OK\r\n");

    cluster.ringkv[2] = Server::start_on(port, &[]);
    eventually(3, "not re-admitted", || owner(&mut c, &key) == dead);
    assert_eq!(text(c.cmd(&["SET", &key, "back"])), "+OK\r\n");
    assert_eq!(
        text(Raw::connect(&dead).cmd(&["GET", &key])),
        "$4\r\nback\r\n"
    );
    let line = backend_info(&mut c, 2);
    assert!(line.contains("status=up,failures=0"), "{line}");
}

#[test]
fn health_checks_report_a_dead_backend_in_info_without_client_traffic() {
    let mut cluster = Cluster::ringkv(2, &["--health-check-interval-ms", "50"]);
    let mut c = cluster.proxy.raw();
    cluster.ringkv[1].kill();
    eventually(3, "failures not counted", || {
        let line = backend_info(&mut c, 1);
        line.contains("status=down (connect failed") && !line.contains("failures=1,")
    });
    assert!(c.line("INFO").contains("health_check_interval_ms:50\r\n"));
    assert!(backend_info(&mut c, 0).contains("status=up,failures=0"));
}

#[test]
fn a_config_file_gives_backends_and_options_and_the_command_line_overrides_it() {
    let backends: Vec<Server> = (0..3).map(|_| Server::start(&[])).collect();
    let mut file = String::from("# ringkv proxy\nport 1\ndistribution ketama\nhash fnv1a_64\n");
    file.push_str("health-check-interval-ms 5000\n");
    for b in &backends {
        file.push_str(&format!("backend {}\n", b.addr()));
    }
    let path = std::env::temp_dir().join(format!("ringkv-proxy-test-{}.conf", std::process::id()));
    std::fs::write(&path, file).unwrap();
    // The helper's `--port 0` overrides the file's port; this `--health-check-interval-ms` overrides the file's.
    let proxy = Server::start_proxy(&[
        "--config",
        path.to_str().unwrap(),
        "--health-check-interval-ms",
        "700",
    ]);
    std::fs::remove_file(&path).unwrap();
    let mut c = proxy.raw();
    let info = c.line("INFO");
    assert!(
        info.contains("distribution:ketama\r\nkey_hash:fnv1a_64\r\nbackends:3\r\n"),
        "{info}"
    );
    assert!(info.contains("health_check_interval_ms:700\r\n"), "{info}");
    assert_eq!(c.line("SET k v"), "+OK\r\n");
    let node = owner(&mut c, "k");
    assert_eq!(text(Raw::connect(&node).cmd(&["GET", "k"])), "$1\r\nv\r\n");
}

/// `n` channel names (`prefix0`, `prefix1`, ...) owned by `n` different backends, with their owners.
fn channels_on_distinct_nodes(c: &mut Raw, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        let name = format!("{prefix}{i}");
        let node = owner(c, &name);
        if !found.iter().any(|(_, n)| *n == node) {
            found.push((name, node));
        }
        if found.len() == n {
            return found;
        }
    }
    unreachable!()
}

/// Sends `cmd` and reads `replies` replies, concatenated as text.
fn replies(c: &mut Raw, cmd: &[&str], replies: usize) -> String {
    c.send_cmd(cmd);
    (0..replies).map(|_| text(c.reply())).collect()
}

/// A message frame (RESP2) as text: `message channel payload`, or `pmessage pattern channel payload`.
fn message(parts: &[&str]) -> String {
    text(encode(parts))
}

/// The backend's clients that are subscriber connections (their last command subscribed or unsubscribed).
fn subscriber_connections(addr: &str) -> usize {
    let list = text(Raw::connect(addr).cmd(&["CLIENT", "LIST"]));
    list.lines()
        .filter(|l| {
            [
                "subscribe",
                "psubscribe",
                "ssubscribe",
                "unsubscribe",
                "punsubscribe",
                "sunsubscribe",
            ]
            .iter()
            .any(|c| l.contains(&format!(" cmd={c} ")))
        })
        .count()
}

/// Pub/Sub through the proxy, as a client of one Redis sees it.
fn pubsub(cluster: &Cluster) {
    let mut c = cluster.proxy.raw();
    let chans = channels_on_distinct_nodes(&mut c, "c", 2);
    let (a, a_node) = (chans[0].0.as_str(), chans[0].1.as_str());
    let (b, b_node) = (chans[1].0.as_str(), chans[1].1.as_str());
    let mut sub = cluster.proxy.raw();

    // Confirmations, refusals and PING in subscriber mode: byte for byte what one redis-server sends.
    let sequence: &[(&[&str], usize)] = &[
        (&["SUBSCRIBE", a, b], 2),
        (&["PSUBSCRIBE", "c*"], 1),
        (&["SSUBSCRIBE", "s"], 1),
        (&["SUBSCRIBE", a], 1),
        (&["GET", "x"], 1),
        (&["CLIENT", "LIST"], 1),
        (&["PING"], 1),
        (&["PING", "hi"], 1),
        (&["UNSUBSCRIBE", a, "zz"], 2),
        (&["PUNSUBSCRIBE", "c*"], 1),
        (&["SUNSUBSCRIBE"], 1),
        (&["SUNSUBSCRIBE"], 1),
        (&["PSUBSCRIBE", "c*"], 1),
        (&["PUNSUBSCRIBE"], 1),
        (&["UNSUBSCRIBE"], 1),
        (&["UNSUBSCRIBE"], 1),
        (&["PUNSUBSCRIBE"], 1),
        (&["GET", "x"], 1),
    ];
    let through: Vec<String> = sequence
        .iter()
        .map(|(cmd, n)| replies(&mut sub, cmd, *n))
        .collect();
    if let Some(single) = redis_server(0) {
        let mut direct = single.raw();
        for ((cmd, n), got) in sequence.iter().zip(&through) {
            assert_eq!(*got, replies(&mut direct, cmd, *n), "{cmd:?}");
        }
    }
    assert!(
        through[4].starts_with("-ERR Can't execute 'get'"),
        "{}",
        through[4]
    );
    assert!(through[5].starts_with("-ERR Can't execute 'client|list'"));
    assert_eq!(through[17], "$-1\r\n");

    // Messages: PUBLISH through the proxy and directly on the owner; each arrives once, a pattern's from the one
    // backend it was published on.
    replies(&mut sub, &["SUBSCRIBE", a, b], 2);
    replies(&mut sub, &["PSUBSCRIBE", "c*"], 1);
    assert_eq!(text(c.cmd(&["PUBLISH", a, "m1"])), ":2\r\n");
    assert_eq!(
        text(Raw::connect(b_node).cmd(&["PUBLISH", b, "m2"])),
        ":2\r\n"
    );
    // Published on a backend that does not own `a`: only the pattern subscription there sees it.
    assert_eq!(
        text(Raw::connect(b_node).cmd(&["PUBLISH", a, "m3"])),
        ":1\r\n"
    );
    let mut want = vec![
        message(&["message", a, "m1"]),
        message(&["pmessage", "c*", a, "m1"]),
        message(&["message", b, "m2"]),
        message(&["pmessage", "c*", b, "m2"]),
        message(&["pmessage", "c*", a, "m3"]),
    ];
    // Two backends deliver: the order holds per backend, not across them.
    let mut got: Vec<String> = (0..want.len()).map(|_| text(sub.reply())).collect();
    let per_node = |v: &[String], ch: &str| -> Vec<String> {
        v.iter()
            .filter(|m| m.contains(&format!("\r\n{ch}\r\n")))
            .cloned()
            .collect()
    };
    for ch in [a, b] {
        assert_eq!(per_node(&got, ch), per_node(&want, ch), "{got:?}");
    }
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Nothing else is on its way: the next frame is PING's answer.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(text(sub.cmd(&["PING"])), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");

    // Order per channel across many messages on two backends.
    for i in 0..50 {
        c.cmd(&["PUBLISH", a, &format!("{a}-{i}")]);
        c.cmd(&["PUBLISH", b, &format!("{b}-{i}")]);
    }
    let frames: Vec<String> = (0..200).map(|_| text(sub.reply())).collect();
    for ch in [a, b] {
        let plain: Vec<String> = frames
            .iter()
            .filter(|f| {
                f.starts_with("*3\r\n$7\r\nmessage\r\n") && f.contains(&format!("\r\n{ch}\r\n"))
            })
            .cloned()
            .collect();
        let expected: Vec<String> = (0..50)
            .map(|i| message(&["message", ch, &format!("{ch}-{i}")]))
            .collect();
        assert_eq!(plain, expected, "{ch}");
    }

    // PUBSUB merged over the backends.
    let mut other = cluster.proxy.raw();
    let channels = text(other.cmd(&["PUBSUB", "CHANNELS", "c*"]));
    assert!(
        channels.starts_with("*2\r\n") && channels.contains(a) && channels.contains(b),
        "{channels}"
    );
    assert_eq!(
        text(other.cmd(&["PUBSUB", "NUMSUB", a, b, "none"])),
        text(encode(&[a, "1", b, "1", "none", "0"]))
            .replace("$1\r\n1\r\n", ":1\r\n")
            .replace("$1\r\n0\r\n", ":0\r\n")
    );
    assert_eq!(text(other.cmd(&["PUBSUB", "NUMPAT"])), ":1\r\n");

    // The subscriber connections close with the subscriptions, and with the client.
    assert!(subscriber_connections(a_node) >= 1);
    replies(&mut sub, &["UNSUBSCRIBE"], 2);
    replies(&mut sub, &["PUNSUBSCRIBE"], 1);
    eventually(5, "subscriber connections closed after UNSUBSCRIBE", || {
        cluster.addrs.iter().all(|n| subscriber_connections(n) == 0)
    });
    replies(&mut sub, &["SUBSCRIBE", a, b], 2);
    replies(&mut sub, &["PSUBSCRIBE", "x*"], 1);
    // One connection per backend: the pattern is on every one, and the channels share them.
    for node in &cluster.addrs {
        assert_eq!(subscriber_connections(node), 1, "{node}");
    }
    drop(sub);
    eventually(5, "subscriber connections closed with their client", || {
        cluster.addrs.iter().all(|n| subscriber_connections(n) == 0)
    });
    assert_eq!(text(other.cmd(&["PUBSUB", "NUMPAT"])), ":0\r\n");

    // RESP3: pushes alongside other commands.
    let mut r3 = cluster.proxy.raw();
    r3.line("HELLO 3");
    let confirm = text(r3.cmd(&["SUBSCRIBE", a]));
    assert_eq!(
        confirm,
        format!(">3\r\n$9\r\nsubscribe\r\n${}\r\n{a}\r\n:1\r\n", a.len())
    );
    assert_eq!(text(r3.cmd(&["SET", "k", "v"])), "+OK\r\n");
    assert_eq!(text(r3.cmd(&["GET", "k"])), "$1\r\nv\r\n");
    assert_eq!(text(r3.cmd(&["PING"])), "+PONG\r\n");
    assert_eq!(text(other.cmd(&["PUBLISH", a, "hey"])), ":1\r\n");
    assert_eq!(
        text(r3.reply()),
        format!(
            ">3\r\n$7\r\nmessage\r\n${}\r\n{a}\r\n$3\r\nhey\r\n",
            a.len()
        )
    );
    // A message published by the client itself comes around too; PUBLISH's own reply follows it or precedes it.
    r3.send_cmd(&["PUBLISH", a, "self"]);
    let mut two = [text(r3.reply()), text(r3.reply())];
    two.sort();
    assert_eq!(two[0], ":1\r\n");
    assert!(two[1].starts_with(">3\r\n$7\r\nmessage"), "{two:?}");
    assert_eq!(
        text(r3.cmd(&["UNSUBSCRIBE"])),
        format!(">3\r\n$11\r\nunsubscribe\r\n${}\r\n{a}\r\n:0\r\n", a.len())
    );
    assert_eq!(
        text(r3.cmd(&["UNSUBSCRIBE"])),
        ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
    );
    assert_eq!(r3.line("MULTI"), "+OK\r\n");
    let refused = r3.line("SSUBSCRIBE s");
    assert!(
        refused.contains("inside MULTI is not supported by the proxy"),
        "{refused}"
    );
    assert!(r3.line("EXEC").starts_with("-EXECABORT"));

    // No message follows its channel's UNSUBSCRIBE confirmation, however busy the channel.
    let mut quiet = cluster.proxy.raw();
    replies(&mut quiet, &["SUBSCRIBE", a], 1);
    let proxy = cluster.proxy.addr();
    let channel = a.to_string();
    let publisher = std::thread::spawn(move || {
        let mut p = Raw::connect(&proxy);
        let burst: Vec<u8> = (0..2000)
            .flat_map(|i| encode(&["PUBLISH", &channel, &i.to_string()]))
            .collect();
        p.send(&burst);
        for _ in 0..2000 {
            p.reply();
        }
    });
    // Unsubscribe while messages stream in.
    assert!(text(quiet.reply()).starts_with("*3\r\n$7\r\nmessage"));
    quiet.send_cmd(&["UNSUBSCRIBE", a]);
    let confirmation = format!("*3\r\n$11\r\nunsubscribe\r\n${}\r\n{a}\r\n:0\r\n", a.len());
    loop {
        let frame = text(quiet.reply());
        if frame == confirmation {
            break;
        }
        assert!(frame.starts_with("*3\r\n$7\r\nmessage"), "{frame}");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(text(quiet.cmd(&["PING"])), "+PONG\r\n");
    publisher.join().expect("publisher");

    // RESET drops every subscription, and the client leaves subscriber mode.
    replies(&mut quiet, &["SUBSCRIBE", a], 1);
    replies(&mut quiet, &["PSUBSCRIBE", "c*"], 1);
    assert_eq!(quiet.line("RESET"), "+RESET\r\n");
    assert_eq!(quiet.line("GET nokey"), "$-1\r\n");
    eventually(5, "subscriber connections closed after RESET", || {
        cluster.addrs.iter().all(|n| subscriber_connections(n) == 0)
    });
    assert_eq!(text(other.cmd(&["PUBLISH", a, "late"])), ":0\r\n");
}

#[test]
fn pubsub_through_the_proxy_on_ringkv_backends() {
    pubsub(&Cluster::ringkv(3, &[]));
}

#[test]
fn pubsub_through_the_proxy_on_redis_backends() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    pubsub(&cluster);
}

#[test]
fn a_killed_backend_closes_the_connections_of_its_subscribers() {
    let mut cluster = Cluster::ringkv(3, &["--timeout-ms", "500"]);
    let mut c = cluster.proxy.raw();
    let chans = channels_on_distinct_nodes(&mut c, "k", 3);
    let mut sub = cluster.proxy.raw();
    let names: Vec<&str> = chans.iter().map(|(n, _)| n.as_str()).collect();
    replies(&mut sub, &[&["SUBSCRIBE"][..], &names].concat(), 3);
    let victim = cluster
        .addrs
        .iter()
        .position(|a| *a == chans[1].1)
        .expect("a backend");
    cluster.ringkv[victim].kill();
    let rest = text(sub.read_to_close());
    assert!(
        rest.starts_with("-ERR backend ") && rest.contains("unavailable"),
        "{rest}"
    );
    // Other clients are not affected.
    assert_eq!(text(c.cmd(&["PUBLISH", names[0], "x"])), ":0\r\n");
}

#[test]
fn hello_through_the_proxy_refuses_unknown_protocols() {
    let cluster = Cluster::ringkv(1, &[]);
    let mut c = cluster.proxy.raw();
    assert_eq!(
        c.line("HELLO 4"),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert!(c.line("HELLO 2").starts_with("*14\r\n"));
}

/// A RESP3 client (`HELLO 3`) gets through the proxy, byte for byte, the replies it gets from the key's backend
/// directly in RESP3, while a RESP2 client of the same proxy keeps getting RESP2; `HELLO 2` switches back.
fn resp3_through_the_proxy(cluster: &Cluster) {
    let mut c = cluster.proxy.raw();
    let mut old = cluster.proxy.raw();
    let hello = text(c.line("HELLO 3").into_bytes());
    assert!(
        hello.starts_with("%7\r\n") && hello.contains("proto\r\n:3\r\n"),
        "{hello}"
    );
    for setup in [
        "HSET h f v g w",
        "ZADD z 1.5 m",
        "RPUSH l a b",
        "SADD set x",
    ] {
        c.line(setup);
    }
    // The null, map, double, set and array replies, from the owner of each key.
    for cmd in [
        "GET missing",
        "HGETALL h",
        "ZSCORE z m",
        "ZRANGE z 0 -1 WITHSCORES",
        "SMEMBERS set",
        "LPOS l zz",
        "LRANGE l 0 -1",
        "ZSCORE z nope",
        "BLPOP empty 0.05",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        let mut direct = Raw::connect(&owner(&mut old, args[1]));
        direct.line("HELLO 3");
        assert_eq!(c.line(cmd), direct.line(cmd), "{cmd}");
    }
    assert_eq!(old.line("GET missing"), "$-1\r\n");
    assert_eq!(old.line("BLPOP empty 0.05"), "*-1\r\n");

    // Merged and proxy-made replies.
    let (x, y) = first_two_on_different_nodes(&mut old);
    assert_eq!(text(c.cmd(&["SET", &x, "1"])), "+OK\r\n");
    assert_eq!(text(c.cmd(&["MGET", &x, &y])), "*2\r\n$1\r\n1\r\n_\r\n");
    assert_eq!(text(old.cmd(&["MGET", &x, &y])), "*2\r\n$1\r\n1\r\n$-1\r\n");
    assert!(
        c.line("INFO server").starts_with("="),
        "INFO is verbatim text in RESP3"
    );
    assert!(c.line("RING INFO").starts_with("%"));
    assert!(old.line("RING INFO").starts_with("*"));

    // A transaction aborted by WATCH, on the client's own connection: RESP3's null.
    let mut other = cluster.proxy.raw();
    assert_eq!(c.line("WATCH {t}a"), "+OK\r\n");
    assert_eq!(other.line("SET {t}a 2"), "+OK\r\n");
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.line("SET {t}a 3"), "+QUEUED\r\n");
    assert_eq!(c.line("EXEC"), "_\r\n");
    assert_eq!(c.line("MULTI"), "+OK\r\n");
    assert_eq!(c.line("HGETALL h"), "+QUEUED\r\n");
    assert!(c.line("EXEC").starts_with("*1\r\n%2\r\n"));

    assert!(c.line("HELLO 2").starts_with("*14\r\n"));
    assert_eq!(c.line("GET missing"), "$-1\r\n");
    assert!(c.line("HGETALL h").starts_with("*4\r\n"));
}

/// A RESP2-only backend (as Redis 5 is), on raw TCP: `HELLO` is an unknown command, GET finds nothing.
fn resp2_only_backend() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0; 4096];
                while let Ok(n @ 1..) = std::io::Read::read(&mut conn, &mut buf) {
                    // One request per read is enough for this test's one-at-a-time requests.
                    let reply: &[u8] = match &buf[..n] {
                        r if r.windows(5).any(|w| w == b"HELLO") => {
                            b"-ERR unknown command 'HELLO'\r\n"
                        }
                        r if r.windows(4).any(|w| w == b"PING") => b"+PONG\r\n",
                        _ => b"$-1\r\n",
                    };
                    if std::io::Write::write_all(&mut conn, reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_backend_without_resp3_refuses_resp3_clients_only_and_stays_up() {
    let addr = resp2_only_backend();
    let proxy = Server::start_proxy(&[
        "--backend",
        &addr,
        "--auto-eject",
        "--server-failure-limit",
        "1",
    ]);
    let mut old = proxy.raw();
    let mut new = proxy.raw();
    assert!(new.line("HELLO 3").starts_with("%7\r\n"));
    let refused = new.line("GET k");
    assert!(
        refused.starts_with(&format!(
            "-ERR backend {addr} unavailable: no RESP3 (HELLO 3: ERR unknown command"
        )),
        "{refused}"
    );
    assert_eq!(old.line("GET k"), "$-1\r\n");
    assert_eq!(new.line("GET k"), refused, "refused again, not ejected");
    assert!(
        old.line("INFO proxy").contains(",status=up,"),
        "counted as up"
    );
    assert!(new.line("HELLO 2").starts_with("*14\r\n"));
    assert_eq!(new.line("GET k"), "$-1\r\n");
    // Watching, the switch must reach the WATCH connection too: refused there, HELLO fails and the client stays.
    assert_eq!(old.line("WATCH k"), "$-1\r\n", "this fake backend's answer");
    assert_eq!(old.line("HELLO 3"), "-ERR unknown command 'HELLO'\r\n");
    assert!(old.line("CLIENT INFO").contains(" resp=2 "));
}

#[test]
fn resp3_clients_get_resp3_replies_through_the_proxy_on_ringkv_backends() {
    resp3_through_the_proxy(&Cluster::ringkv(3, &[]));
}

#[test]
fn resp3_clients_get_resp3_replies_through_the_proxy_on_redis_backends() {
    let Some(cluster) = Cluster::redis(3, &[]) else {
        return;
    };
    resp3_through_the_proxy(&cluster);
}
