//! The string family through the real binary: binary safety, atomic multi-key writes across shards, the size limit,
//! and the lock pattern (`SET lock token NX PX ttl` + `DELIFEQ lock token`) under contention.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use redis::aio::MultiplexedConnection;
use ringkv::store::Store;

const SHARDS: usize = 8;

/// One key per shard of a `--shards 8` server, found with the same ring the server places keys with.
fn one_key_per_shard() -> Vec<String> {
    let store = Store::new(SHARDS, 1);
    let mut seen = HashSet::new();
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("key:{i}"))
        .filter(|k| seen.insert(store.shard_of(k.as_bytes())))
        .collect();
    assert_eq!(keys.len(), SHARDS, "every shard owns some key");
    keys
}

async fn query<T: redis::FromRedisValue>(con: &mut MultiplexedConnection, cmd: &redis::Cmd) -> T {
    cmd.query_async(con).await.expect("command succeeds")
}

#[test]
fn binary_values_survive_every_string_command() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let key: &[u8] = b"k\0\r\n";
    let value: &[u8] = b"\0a\r\nb\r\n\0";
    assert_eq!(c.cmd(&[&b"SET"[..], key, value]), b"+OK\r\n");
    assert_eq!(c.cmd(&[&b"GET"[..], key]), b"$8\r\n\0a\r\nb\r\n\0\r\n");
    assert_eq!(c.cmd(&[&b"STRLEN"[..], key]), b":8\r\n");
    assert_eq!(c.cmd(&[&b"APPEND"[..], key, b"\r\n"]), b":10\r\n");
    assert_eq!(
        c.cmd(&[&b"GETRANGE"[..], key, b"1", b"3"]),
        b"$3\r\na\r\n\r\n"
    );
    assert_eq!(c.cmd(&[&b"SETRANGE"[..], key, b"12", b"\0"]), b":13\r\n");
    assert_eq!(
        c.cmd(&[&b"MGET"[..], key, b"missing"]),
        b"*2\r\n$13\r\n\0a\r\nb\r\n\0\r\n\0\0\0\r\n$-1\r\n"
    );
    assert_eq!(
        c.cmd(&[&b"DELIFEQ"[..], key, b"\0a\r\nb\r\n\0\r\n\0\0\0"]),
        b":1\r\n"
    );
    assert_eq!(c.cmd(&[&b"GET"[..], key]), b"$-1\r\n");
}

#[tokio::test]
async fn binary_values_round_trip_through_the_redis_crate() {
    let server = Server::start(&[]);
    let mut con = server.client().await;
    let value = b"\0\r\n\xff\r\n".to_vec();
    let _: () = query(&mut con, redis::cmd("SET").arg(&b"bin\0"[..]).arg(&value)).await;
    let got: Vec<u8> = query(&mut con, redis::cmd("GETDEL").arg(&b"bin\0"[..])).await;
    assert_eq!(got, value);
    let gone: Option<Vec<u8>> = query(&mut con, redis::cmd("GET").arg(&b"bin\0"[..])).await;
    assert_eq!(gone, None);
}

#[test]
fn setrange_and_append_respect_proto_max_bulk_len() {
    let server = Server::start(&["--proto-max-bulk-len", "1024"]);
    let mut c = server.raw();
    let too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    assert_eq!(c.line("SETRANGE k 1023 x"), ":1024\r\n");
    assert_eq!(c.line("SETRANGE k 1024 x"), too_big);
    assert_eq!(c.line("APPEND k x"), too_big);
    assert_eq!(c.line("SETRANGE k -1 x"), "-ERR offset is out of range\r\n");
    assert_eq!(c.line("STRLEN k"), ":1024\r\n");
}

/// A writer sets every key (one per shard) to the same round number with MSET while readers MGET them all: if MSET or
/// MGET were not atomic across shards, a reader would see two rounds at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mset_and_mget_are_atomic_across_shards() {
    let server = Server::start(&["--threads", "2", "--shards", &SHARDS.to_string()]);
    let keys = one_key_per_shard();
    let rounds = 300;

    let mut writer = server.client().await;
    let write_keys = keys.clone();
    let write = tokio::spawn(async move {
        for round in 0..rounds {
            let mut mset = redis::cmd("MSET");
            for k in &write_keys {
                mset.arg(k).arg(round);
            }
            let _: () = query(&mut writer, &mset).await;
        }
    });
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut con = server.client().await;
        let keys = keys.clone();
        readers.push(tokio::spawn(async move {
            let mut torn = 0;
            let mut last = -1;
            while last < rounds - 1 {
                let values: Vec<Option<i64>> = query(&mut con, redis::cmd("MGET").arg(&keys)).await;
                let distinct: HashSet<_> = values.iter().collect();
                torn += (distinct.len() != 1) as usize;
                last = values[0].unwrap_or(-1);
            }
            torn
        }));
    }
    write.await.expect("writer");
    for r in readers {
        assert_eq!(
            r.await.expect("reader"),
            0,
            "an MGET saw a half-applied MSET"
        );
    }

    // MSETNX and MSETEX across the same shards: one existing key stops every write.
    let mut con = server.client().await;
    let fresh: Vec<String> = keys.iter().map(|k| format!("{k}:fresh")).collect();
    let fresh_on_all_shards: HashSet<usize> = {
        let store = Store::new(SHARDS, 1);
        fresh.iter().map(|k| store.shard_of(k.as_bytes())).collect()
    };
    assert!(
        fresh_on_all_shards.len() > 1,
        "the keys span several shards"
    );
    let mut msetnx = redis::cmd("MSETNX");
    for k in fresh.iter().chain([&keys[SHARDS - 1]]) {
        msetnx.arg(k).arg("x");
    }
    assert_eq!(query::<i64>(&mut con, &msetnx).await, 0);
    let mut msetex = redis::cmd("MSETEX");
    msetex.arg(fresh.len() + 1);
    for k in fresh.iter().chain([&keys[0]]) {
        msetex.arg(k).arg("y");
    }
    msetex.arg("NX").arg("PX").arg(100_000);
    assert_eq!(query::<i64>(&mut con, &msetex).await, 0);
    let none: Vec<Option<String>> = query(&mut con, redis::cmd("MGET").arg(&fresh)).await;
    assert!(
        none.iter().all(Option::is_none),
        "nothing was written: {none:?}"
    );
}

/// The lease a holder may rely on: from just before it sent `SET ... PX LEASE` for LEASE, as the server's deadline
/// is at least that late.
const LEASE: Duration = Duration::from_millis(50);

/// Twenty clients contend for one lock. Inside the critical section each does a read-pause-write on a shared
/// counter: two holders at once would lose an update, and the guard below names any holder that entered while
/// another's lease was certainly still valid. A holder only enters with at least half its lease left, so a section
/// (a few microseconds of work and one yield) never outlives its lease on a sane machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_nx_px_and_delifeq_give_mutual_exclusion() {
    let server = Server::start(&[]);
    let counter = Arc::new(AtomicU64::new(0));
    let holder = Arc::new(std::sync::Mutex::new(None::<(usize, Instant)>));
    let entries = Arc::new(AtomicU64::new(0));
    let per_task = 15;
    let mut tasks = Vec::new();
    for id in 0..20 {
        let mut con = server.client().await;
        let (counter, holder, entries) = (counter.clone(), holder.clone(), entries.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < per_task {
                let token = format!("task-{id}-{done}");
                let sent = Instant::now();
                let got: Option<String> = query(
                    &mut con,
                    redis::cmd("SET")
                        .arg("lock")
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(LEASE.as_millis() as u64),
                )
                .await;
                if got.is_none() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                if sent.elapsed() < LEASE / 2 {
                    {
                        let mut h = holder.lock().expect("holder");
                        if let Some((other, valid_until)) = *h {
                            assert!(
                                Instant::now() >= valid_until,
                                "task {id} got the lock while task {other}'s lease was valid"
                            );
                        }
                        *h = Some((id, sent + LEASE));
                    }
                    let seen = counter.load(Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    counter.store(seen + 1, Ordering::SeqCst);
                    entries.fetch_add(1, Ordering::SeqCst);
                    *holder.lock().expect("holder") = None;
                    done += 1;
                }
                // Release only our own lease; a foreign token is never deleted.
                let _: i64 = query(&mut con, redis::cmd("DELIFEQ").arg("lock").arg(&token)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(entries.load(Ordering::SeqCst), 20 * per_task);
    assert_eq!(
        counter.load(Ordering::SeqCst),
        20 * per_task,
        "an update was lost: two holders overlapped"
    );
}

/// Many leases, each checked right after its latest possible deadline: by then every read path says it is gone and
/// the lock can be taken again. (This branch has no TTL/PTTL command yet, so the checks use GET, EXISTS, STRLEN,
/// DIGEST, GETEX, DELIFEQ and SET NX.)
/// Requests that arrive together are served in arrival order, as Redis's event loop serves them: of 20 clients that
/// send `SET lock <i> NX` one after another, the first always wins. Redlock relies on it: a client whose requests
/// reach every server first must win on each, or contenders split the servers and nobody gets a majority.
#[test]
fn contending_requests_are_served_in_arrival_order() {
    let server = Server::start(&[]);
    let mut clients: Vec<_> = (0..20).map(|_| server.raw()).collect();
    let mut control = server.raw();
    for round in 0..200 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.send_cmd(&["SET", "lock", &i.to_string(), "NX"]);
        }
        for c in &mut clients {
            c.reply();
        }
        assert_eq!(control.line("GETDEL lock"), "$1\r\n0\r\n", "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_is_never_visible_after_its_deadline() {
    let server = Server::start(&[]);
    let mut tasks = Vec::new();
    for id in 0..20 {
        let mut con = server.client().await;
        tasks.push(tokio::spawn(async move {
            let key = format!("lease:{id}");
            for round in 0..5 {
                let token = format!("t{round}");
                let ok: Option<String> = query(
                    &mut con,
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(30),
                )
                .await;
                assert_eq!(
                    ok.as_deref(),
                    Some("OK"),
                    "the previous lease on {key} expired"
                );
                // The server set the deadline before its reply arrived: it is at most 30 ms from now (+1 for the
                // millisecond clock).
                let latest_deadline = Instant::now() + Duration::from_millis(31);
                tokio::time::sleep_until(latest_deadline.into()).await;
                let get: Option<String> = query(&mut con, redis::cmd("GET").arg(&key)).await;
                assert_eq!(get, None, "{key} still visible after its deadline");
                let exists: i64 = query(&mut con, redis::cmd("EXISTS").arg(&key)).await;
                let strlen: i64 = query(&mut con, redis::cmd("STRLEN").arg(&key)).await;
                let digest: Option<String> = query(&mut con, redis::cmd("DIGEST").arg(&key)).await;
                let getex: Option<String> = query(&mut con, redis::cmd("GETEX").arg(&key)).await;
                let delifeq: i64 =
                    query(&mut con, redis::cmd("DELIFEQ").arg(&key).arg(&token)).await;
                assert_eq!(
                    (exists, strlen, digest, getex, delifeq),
                    (0, 0, None, None, 0)
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

#[test]
fn pipelined_incrs_on_one_hot_key_from_many_clients_each_run_exactly_once_in_order() {
    // Every client pipelines batches of INCRs on the same key, so the worker threads contend for its shard and
    // commands wait for it and run again (Flow::Contended): each must still run exactly once, in its client's order.
    const CLIENTS: usize = 12;
    const BATCHES: usize = 100;
    const DEPTH: usize = 16;
    let server = Server::start(&["--threads", "2"]);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut c = server.raw();
            std::thread::spawn(move || {
                let batch = vec![vec!["INCR", "hot"]; DEPTH];
                let mut seen = Vec::with_capacity(BATCHES * DEPTH);
                for _ in 0..BATCHES {
                    for reply in common::pipeline(&mut c, &batch) {
                        let text = String::from_utf8(reply).unwrap();
                        seen.push(
                            text.trim_start_matches(':')
                                .trim_end()
                                .parse::<u64>()
                                .unwrap(),
                        );
                    }
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        let seen = worker.join().unwrap();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "a client's INCRs ran out of order"
        );
        all.extend(seen);
    }
    all.sort_unstable();
    let total = (CLIENTS * BATCHES * DEPTH) as u64;
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
    assert_eq!(
        server.raw().line("GET hot"),
        format!("${}\r\n{total}\r\n", total.to_string().len())
    );
}
