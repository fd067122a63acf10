//! Criterion micro-benchmarks of the request hot path: parsing, reply encoding, store get/set, ring lookup, and whole
//! commands (SET, EVAL, EVALSHA) through the dispatcher, without the network.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use ringkv::config::Config;
use ringkv::protocol::{OwnedArgv, Reply, RequestParser};
use ringkv::ring::{Node, Ring};
use ringkv::server::ServerState;
use ringkv::store::{HeldShard, Store, Value};

fn parse_pipeline(c: &mut Criterion) {
    let mut input = Vec::new();
    for i in 0..10_000 {
        let key = format!("key:{i:06}");
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$3\r\nxyz\r\n",
                key.len()
            )
            .as_bytes(),
        );
    }
    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("10k_pipelined_sets", |b| {
        let mut p = RequestParser::new(512 << 20);
        b.iter(|| {
            let mut at = 0;
            while let Some(n) = p.parse(&input[at..]).unwrap() {
                black_box(p.argv(&input[at..]).get(1));
                at += n;
            }
        })
    });
    g.finish();
}

fn encode_replies(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    g.bench_function("ok", |b| {
        let mut r = Reply::new(false);
        b.iter(|| {
            r.buf.clear();
            r.ok();
        })
    });
    g.bench_function("bulk_64b", |b| {
        let mut r = Reply::new(false);
        let v = [b'x'; 64];
        b.iter(|| {
            r.buf.clear();
            r.bulk(black_box(&v));
        })
    });
    g.finish();
}

fn store_get_set(c: &mut Criterion) {
    let store = Store::new(32, 16);
    let keys: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("key:{i}").into_bytes())
        .collect();
    let mut g = c.benchmark_group("store");
    g.bench_function("set", |b| {
        let mut i = 0;
        b.iter(|| {
            let key = &keys[i % keys.len()];
            i += 1;
            let s = store.shard_of(key);
            let mut shard = store.lock_shard(s);
            shard.dbs[0].insert(key, Value::Str(b"value".to_vec()), None);
        })
    });
    g.bench_function("get", |b| {
        let mut i = 0;
        b.iter(|| {
            let key = &keys[i % keys.len()];
            i += 1;
            let s = store.shard_of(key);
            let mut shard = store.lock_shard(s);
            black_box(shard.dbs[0].get(key, 0).is_some());
        })
    });
    g.finish();
}

fn ring_lookup(c: &mut Criterion) {
    // A proxy's ring over 10 backends, and the server's over its 128 shards (64 per core on two cores); 100k keys,
    // so the points are reached as scattered as real traffic reaches them.
    let proxy: Vec<String> = (0..10).map(|i| format!("10.0.0.{i}:6379")).collect();
    let server: Vec<String> = (0..128).map(|i| format!("shard-{i}")).collect();
    let keys: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("user:{i}:profile").into_bytes())
        .collect();
    let nodes = |names: Vec<String>| -> Vec<Node> {
        names
            .into_iter()
            .map(|name| Node { name, weight: 1 })
            .collect()
    };
    let rings = [
        ("10_nodes", Ring::new(nodes(proxy))),
        ("128_shards", Ring::for_shards(nodes(server))),
    ];
    for (what, ring) in rings {
        c.bench_function(&format!("ring/locate_{what}"), |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                black_box(ring.locate(&keys[i % keys.len()]))
            })
        });
    }
}

/// One client's commands run by the dispatcher as a connection runs them, on a server with the default options, over
/// 100k keys: the cost of a command without the network, and what a script adds to the SET it runs.
fn dispatched_commands(c: &mut Criterion) {
    let server = ServerState::new(Config::defaults());
    let addr = "127.0.0.1:0".parse().expect("an address");
    let mut client = server.clients.register(addr, addr);
    let mut out = Reply::new(false);
    let script = "return redis.call('SET', KEYS[1], ARGV[1])";
    let sha = "d8f2fad9f8e86a53d2a6ebd960b33c4972cacc37";
    let keys: Vec<String> = (0..100_000).map(|i| format!("key:{i:012}")).collect();
    // Each command's arguments, the key at index `at`.
    let commands: [(&str, &[&str], usize); 3] = [
        ("set", &["SET", "", "xxx"], 1),
        ("eval_set", &["EVAL", script, "1", "", "xxx"], 3),
        ("evalsha_set", &["EVALSHA", sha, "1", "", "xxx"], 3),
    ];
    let mut g = c.benchmark_group("command");
    for (name, args, at) in commands {
        let requests: Vec<OwnedArgv> = keys
            .iter()
            .map(|k| {
                let mut args = args.to_vec();
                args[at] = k;
                OwnedArgv::from_args(&args)
            })
            .collect();
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                let mut held = HeldShard::new(&server.store, false);
                ringkv::cmd::dispatch(
                    &server,
                    &mut client,
                    requests[i % requests.len()].argv(),
                    &mut out,
                    &mut held,
                );
                i += 1;
                out.buf.clear();
            })
        });
    }
    g.finish();
}

fn blocking_timeout(c: &mut Criterion) {
    c.bench_function("args/parse_timeout", |b| {
        b.iter(|| ringkv::cmd::blocking::parse_timeout(black_box(b"0.5"), 1_800_000_000_000))
    });
}

criterion_group!(
    benches,
    parse_pipeline,
    encode_replies,
    store_get_set,
    ring_lookup,
    dispatched_commands,
    blocking_timeout
);
criterion_main!(benches);
