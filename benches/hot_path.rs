//! Criterion micro-benchmarks of the request hot path: parsing, reply encoding, store get/set, ring lookup.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use ringkv::protocol::{Reply, RequestParser};
use ringkv::ring::{Node, Ring};
use ringkv::store::{Store, Value};

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

fn blocking_timeout(c: &mut Criterion) {
    c.bench_function("args/parse_timeout", |b| {
        b.iter(|| ringkv::cmd::blocking::parse_timeout(black_box(b"0.5")))
    });
}

criterion_group!(
    benches,
    parse_pipeline,
    encode_replies,
    store_get_set,
    ring_lookup,
    blocking_timeout
);
criterion_main!(benches);
