//! The sorted set family through the real binary: ranks and rank ranges on a 100k-member zset stay fast (the
//! order-statistics tree, not a linear walk), the ZRANGE variants, ZUNIONSTORE/ZINTERSTORE/ZRANGESTORE across shards
//! (`--shards 16`), and `redis-benchmark -t zadd,zpopmin` completing without errors.
//!
//! The redis-benchmark test skips when the tool is not installed, except under CI (`CI=true`), where that fails.

mod common;

use std::time::{Duration, Instant};

use common::{bulks, keys_on_distinct_shards, pipeline, Server};

const SHARDS: usize = 16;

#[test]
fn ranks_and_rank_ranges_on_a_100k_member_zset_stay_fast() {
    const N: usize = 100_000;
    let server = Server::start(&[]);
    let mut c = server.raw();
    // Scores in reverse of the member number, so the rank of m{i} is N - 1 - i.
    let batches: Vec<Vec<String>> = (0..N)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            let mut cmd = vec!["ZADD".to_string(), "big".to_string()];
            for i in chunk {
                cmd.push((N - i).to_string());
                cmd.push(format!("m{i}"));
            }
            cmd
        })
        .collect();
    for reply in pipeline(&mut c, &batches) {
        assert_eq!(reply, b":1000\r\n");
    }
    assert_eq!(c.line("ZCARD big"), ":100000\r\n");
    assert_eq!(c.line("OBJECT ENCODING big"), "$8\r\nskiplist\r\n");

    let picks: Vec<usize> = (0..2000).map(|k| (k * 7919) % N).collect();
    let ranks: Vec<Vec<String>> = picks
        .iter()
        .map(|i| vec!["ZRANK".into(), "big".into(), format!("m{i}")])
        .collect();
    let by_index: Vec<Vec<String>> = picks
        .iter()
        .map(|i| vec!["ZRANGE".into(), "big".into(), i.to_string(), i.to_string()])
        .collect();
    let started = Instant::now();
    let rank_replies = pipeline(&mut c, &ranks);
    let range_replies = pipeline(&mut c, &by_index);
    let elapsed = started.elapsed();
    for (i, reply) in picks.iter().zip(&rank_replies) {
        assert_eq!(*reply, format!(":{}\r\n", N - 1 - i).into_bytes());
    }
    for (i, reply) in picks.iter().zip(&range_replies) {
        assert_eq!(bulks(reply), [format!("m{}", N - 1 - i)]);
    }
    // 4000 lookups that each walked the set would visit ~2e8 members; O(log n) ones take milliseconds.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_eq!(bulks(&c.cmd(&["ZREVRANGE", "big", "0", "1"])), ["m0", "m1"]);
    assert_eq!(c.line("ZCOUNT big (99990 +inf"), ":10\r\n");
}

#[test]
fn zrange_variants_agree_with_each_other() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    c.line("ZADD z 1 a 2 b 3 c 4 d 5 e 6 f");
    assert_eq!(bulks(&c.cmd(&["ZRANGE", "z", "1", "3"])), ["b", "c", "d"]);
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", "z", "1", "3", "REV"])),
        ["e", "d", "c"]
    );
    assert_eq!(
        bulks(&c.cmd(&[
            "ZRANGE",
            "z",
            "(2",
            "5",
            "BYSCORE",
            "LIMIT",
            "1",
            "2",
            "WITHSCORES"
        ])),
        ["d", "4", "e", "5"]
    );
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", "z", "5", "(2", "BYSCORE", "REV", "LIMIT", "1", "2"])),
        bulks(&c.cmd(&["ZREVRANGEBYSCORE", "z", "5", "(2", "LIMIT", "1", "2"]))
    );
    c.line("ZADD l 0 a 0 b 0 c 0 d");
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", "l", "[b", "+", "BYLEX"])),
        bulks(&c.cmd(&["ZRANGEBYLEX", "l", "[b", "+"]))
    );
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", "l", "(c", "-", "BYLEX", "REV"])),
        ["b", "a"]
    );
    assert_eq!(c.line("ZRANGESTORE top z 0 1 REV"), ":2\r\n");
    assert_eq!(bulks(&c.cmd(&["ZRANGE", "top", "0", "-1"])), ["e", "f"]);
}

#[test]
fn union_intersection_and_rangestore_work_across_shards() {
    let server = Server::start(&["--shards", "16"]);
    let mut c = server.raw();
    let k = keys_on_distinct_shards("z", 4, SHARDS);
    let (a, b, s, dst) = (&k[0], &k[1], &k[2], &k[3]);
    c.cmd(&["ZADD", a, "1", "x", "2", "y"]);
    c.cmd(&["ZADD", b, "10", "y", "20", "z"]);
    c.cmd(&["SADD", s, "x", "z"]);
    assert_eq!(c.cmd(&["ZUNIONSTORE", dst, "3", a, b, s]), b":3\r\n");
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", dst, "0", "-1", "WITHSCORES"])),
        ["x", "2", "y", "12", "z", "21"]
    );
    assert_eq!(
        c.cmd(&[
            "ZINTERSTORE",
            dst,
            "2",
            a,
            b,
            "WEIGHTS",
            "3",
            "1",
            "AGGREGATE",
            "MIN"
        ]),
        b":1\r\n"
    );
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", dst, "0", "-1", "WITHSCORES"])),
        ["y", "6"]
    );
    assert_eq!(c.cmd(&["ZRANGESTORE", dst, b, "0", "0"]), b":1\r\n");
    assert_eq!(bulks(&c.cmd(&["ZRANGE", dst, "0", "-1"])), ["y"]);
    assert_eq!(
        bulks(&c.cmd(&["ZUNION", "2", a, s, "WITHSCORES"])),
        ["z", "1", "x", "2", "y", "2"]
    );
    assert_eq!(c.cmd(&["ZDIFFSTORE", dst, "2", a, b]), b":1\r\n");
    assert_eq!(bulks(&c.cmd(&["ZRANGE", dst, "0", "-1"])), ["x"]);
    // The keys a STORE form names are reported like Redis's (destination, then the sources).
    assert_eq!(
        bulks(&c.cmd(&[
            "COMMAND",
            "GETKEYS",
            "ZUNIONSTORE",
            dst,
            "2",
            a,
            b,
            "WEIGHTS",
            "1",
            "2"
        ])),
        [dst.as_str(), a.as_str(), b.as_str()]
    );
}

#[test]
fn redis_benchmark_zadd_zpopmin_completes_without_errors() {
    let server = Server::start(&[]);
    common::redis_benchmark_runs_clean(server.port, &["zadd", "zpopmin"], 20000);
}
