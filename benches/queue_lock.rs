//! Queue and lock benchmarks against any Redis-protocol server (ringkv, redis-server, ...).
//!
//! This is a plain program, not a criterion benchmark: it lives in benches/ with `harness = false` so that it builds
//! with the dev-dependencies (the `redis` client crate) and in the release profile, and it measures a server over
//! TCP rather than a function in process. Every client task owns one connection (no connection sharing, no client
//! side batching unless asked), so the figures show what the server does with many independent clients.
//!
//! ```text
//! cargo bench --bench queue_lock -- queue --addr 127.0.0.1:6379 --producers 4 --consumers 4 --messages 100000
//! cargo bench --bench queue_lock -- streams --addr 127.0.0.1:6379 --producers 4 --consumers 4 --messages 100000
//! cargo bench --bench queue_lock -- lock  --addr 127.0.0.1:6379 --clients 50 --seconds 5 --release watch
//! cargo bench --bench queue_lock -- tx    --addr 127.0.0.1:6379 --clients 50 --seconds 5
//! ```
//!
//! `queue`: producers LPUSH unique messages `<id>:<send time in µs>` (one LPUSH per round trip, or `--pipeline N`
//! LPUSHes per round trip), consumers BRPOP the same list(s). Reported: messages per second (first send to last
//! receive), end-to-end latency percentiles (send timestamp to receipt, µs, so time spent waiting in the list counts),
//! and an exactly-once check: every id received exactly once, else the numbers lost and duplicated. Producers run
//! flat out by default, so when they outrun the consumers the latency mostly measures the growing backlog; `--rate`
//! paces them (messages per second in total) to measure latency below saturation.
//!
//! `lock`: clients contend for one lock with `SET lock <token> NX PX <ttl>`, retrying at once (no sleep) when it is
//! taken. A holder runs `INCR holders` (a reply other than 1 is a mutual-exclusion violation), `DECR holders`, then
//! releases with a compare-and-delete chosen by `--release`:
//! - `watch` (default): WATCH lock; GET lock; MULTI; DEL lock; EXEC — optimistic, needs only transactions;
//! - `eval`: the classic Lua `if get == token then del` script;
//! - `delifeq`: `DELIFEQ lock token` (ringkv and Valkey 9; not Redis 7);
//! - `getdel-check`: GETDEL lock and compare afterwards — not safe (it deletes whatever is there and only notices a
//!   foreign lock after the fact, counted as `lost`), kept as the cheapest single-command baseline.
//!
//! `streams`: producers XADD unique messages (same payload as `queue`) to one stream, a group of consumers each run
//! `XREADGROUP GROUP g <name> COUNT <batch> BLOCK <ms> STREAMS key >` and XACK what they got (one XACK per batch).
//! Reported as for `queue`: messages per second, end-to-end latency and the exactly-once check (every id delivered
//! to exactly one consumer of the group, once), plus the group's pending count at the end (0 when every ack landed).
//!
//! A release that finds another token counts as `lost` (the lock expired while held). `--broken` acquires with a plain
//! SET (no NX), so several clients "hold" the lock at once: a self-test that the violation detector fires.
//!
//! `tx`: clients loop on one transaction each, sent as one batch: `MULTI; SET str:<r> v; INCR ctr:<r>;
//! LPUSH list:<r> x; LTRIM list:<r> 0 9; HSET hash:<r> f v; EXEC` with `r` random below `--keys` (so the five keys
//! usually live on different shards of ringkv). Reported: transactions per second, and EXEC replies that are not
//! five results (errors).
//!
//! The last line of output is `RESULT queue|streams|lock|tx key=value ...` for scripts (scripts/bench-queue-lock.sh).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::task::JoinHandle;

#[derive(Parser)]
#[command(
    name = "queue_lock",
    about = "Queue and lock benchmarks for a Redis-protocol server"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Producers LPUSH, consumers BRPOP: throughput, end-to-end latency, exactly-once delivery.
    Queue(QueueArgs),
    /// Producers XADD, a consumer group XREADGROUP BLOCK + XACK: throughput, latency, exactly-once delivery.
    Streams(StreamsArgs),
    /// Clients contend for one SET NX PX lock: acquisitions per second, mutual-exclusion violations.
    Lock(LockArgs),
    /// Clients run MULTI, five writes, EXEC as one batch: transactions per second.
    Tx(TxArgs),
}

#[derive(Args)]
struct Common {
    /// Server address host:port.
    #[arg(long, default_value = "127.0.0.1:6379")]
    addr: String,
    /// Prefix of every key the benchmark uses (deleted before and after the run).
    #[arg(long, default_value = "qlbench:")]
    prefix: String,
    /// Tokio worker threads of this client (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct QueueArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 4)]
    producers: usize,
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// Messages in total (split evenly over the producers).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Lists to spread messages over (message id modulo lists); consumers BRPOP all of them.
    #[arg(long, default_value_t = 1)]
    lists: usize,
    /// LPUSH commands per producer round trip (1 = one command per round trip, the realistic default).
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Total send rate in messages per second, spread over the producers (0: as fast as they can). Flat out, the
    /// producers usually outrun the consumers and latency measures the backlog; below capacity it measures the server.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// BRPOP timeout in seconds.
    #[arg(long, default_value_t = 1.0)]
    timeout: f64,
    #[command(flatten)]
    latencies: Latencies,
}

/// Where to keep every latency of a run, for percentiles pooled over several runs.
#[derive(Args)]
struct Latencies {
    /// Write each message's end-to-end latency (µs, ascending, one per line) to this file.
    #[arg(long = "latencies")]
    path: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct StreamsArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Consumers of the one group.
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// Messages in total (split evenly over the producers).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// XREADGROUP's COUNT: most entries a consumer takes (and acknowledges) per round trip.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// XREADGROUP's BLOCK, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    block_ms: u64,
    #[command(flatten)]
    latencies: Latencies,
}

#[derive(Args)]
struct LockArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 50)]
    clients: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Lock expiry (PX) in milliseconds.
    #[arg(long, default_value_t = 1000)]
    ttl_ms: u64,
    /// How a holder releases the lock.
    #[arg(long, value_enum, default_value_t = Release::Watch)]
    release: Release,
    /// Acquire with SET without NX (no mutual exclusion): checks that violations are detected.
    #[arg(long)]
    broken: bool,
}

#[derive(Args)]
struct TxArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 50)]
    clients: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Random key range of each of the five key families.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Release {
    Watch,
    Eval,
    Delifeq,
    GetdelCheck,
}

const RELEASE_SCRIPT: &str =
    "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

fn main() {
    // `cargo bench` appends `--bench` to the arguments of harness-less benchmarks.
    let cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    if let Err(e) = run(cli) {
        // One line: what failed and why (scripts show it under their table).
        eprintln!("error: {e}: {}", e.root_cause());
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let threads = match &cli.bench {
        Bench::Queue(a) => a.common.threads,
        Bench::Streams(a) => a.common.threads,
        Bench::Lock(a) => a.common.threads,
        Bench::Tx(a) => a.common.threads,
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        rt.worker_threads(n);
    }
    let rt = rt.enable_all().build()?;
    match cli.bench {
        Bench::Queue(a) => rt.block_on(queue(a)),
        Bench::Streams(a) => rt.block_on(streams(a)),
        Bench::Lock(a) => rt.block_on(lock(a)),
        Bench::Tx(a) => rt.block_on(tx(a)),
    }
}

/// Opens one dedicated connection. The crate's default 500 ms response timeout is off: BRPOP blocks longer.
async fn connect(addr: &str) -> Result<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connecting to {addr}"))
}

async fn connect_many(addr: &str, n: usize) -> Result<Vec<MultiplexedConnection>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(connect(addr).await?);
    }
    Ok(conns)
}

async fn del(conn: &mut MultiplexedConnection, keys: &[String]) -> Result<()> {
    redis::cmd("DEL").arg(keys).query_async::<i64>(conn).await?;
    Ok(())
}

/// The value at quantile `q` (0..=1) of sorted `v` by the nearest-rank method; 0 when empty.
fn percentile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Microseconds since `base`, the clock every task of one run shares.
fn micros(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

/// What one consumer saw: `(message id, latency µs)` per message, and payloads it could not parse.
#[derive(Default)]
struct Received {
    msgs: Vec<(u64, u64)>,
    malformed: u64,
}

const STOP: &[u8] = b"stop";

/// Waits for the producers and tells the consumers they are done, then until everything sent has been received (or
/// every consumer gave up). Returns the seconds the producers took.
async fn producers_finished(
    producers: Vec<JoinHandle<Result<()>>>,
    base: Instant,
    producers_done: &AtomicBool,
    received: &AtomicU64,
    total: u64,
    consumers: &[JoinHandle<Result<Received>>],
) -> Result<f64> {
    for p in producers {
        p.await??;
    }
    let produce_secs = base.elapsed().as_secs_f64();
    producers_done.store(true, Ordering::Release);
    while received.load(Ordering::Acquire) < total && !consumers.iter().all(|c| c.is_finished()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(produce_secs)
}

/// Sends `stop` (what wakes the consumers still blocked) and gathers what every consumer received.
async fn stop_consumers(
    stop: redis::Pipeline,
    admin: &mut MultiplexedConnection,
    consumers: Vec<JoinHandle<Result<Received>>>,
) -> Result<Received> {
    stop.query_async::<()>(admin).await?;
    let mut all = Received::default();
    for c in consumers {
        let got = c.await??;
        all.msgs.extend(got.msgs);
        all.malformed += got.malformed;
    }
    Ok(all)
}

async fn queue(a: QueueArgs) -> Result<()> {
    if a.producers == 0 || a.consumers == 0 || a.lists == 0 || a.pipeline == 0 {
        bail!("--producers, --consumers, --lists and --pipeline must be at least 1");
    }
    let lists: Vec<String> = (0..a.lists)
        .map(|i| format!("{}queue:{i}", a.common.prefix))
        .collect();
    let mut admin = connect(&a.common.addr).await?;
    del(&mut admin, &lists).await?;
    let producer_conns = connect_many(&a.common.addr, a.producers).await?;
    let consumer_conns = connect_many(&a.common.addr, a.consumers).await?;

    let base = Instant::now();
    let total = a.messages;
    let received = Arc::new(AtomicU64::new(0));
    let last_receive_us = Arc::new(AtomicU64::new(0));
    let producers_done = Arc::new(AtomicBool::new(false));

    let mut consumers = Vec::new();
    for mut conn in consumer_conns {
        let (lists, received, last, done) = (
            lists.clone(),
            received.clone(),
            last_receive_us.clone(),
            producers_done.clone(),
        );
        let timeout = a.timeout;
        consumers.push(tokio::spawn(async move {
            let mut got = Received::default();
            loop {
                let reply: Option<(Vec<u8>, Vec<u8>)> = redis::cmd("BRPOP")
                    .arg(&lists)
                    .arg(timeout)
                    .query_async(&mut conn)
                    .await?;
                let Some((_, payload)) = reply else {
                    // Timed out: with the producers finished the lists are empty, nothing more will come.
                    if done.load(Ordering::Acquire) {
                        break;
                    }
                    continue;
                };
                if payload == STOP {
                    break;
                }
                let now = micros(base);
                match parse_message(&payload) {
                    Some((id, sent)) => got.msgs.push((id, now.saturating_sub(sent))),
                    None => got.malformed += 1,
                }
                last.fetch_max(now, Ordering::Relaxed);
                received.fetch_add(1, Ordering::Release);
            }
            anyhow::Ok(got)
        }));
    }

    let per_producer = total / a.producers as u64;
    let extra = total % a.producers as u64;
    let mut producers = Vec::new();
    let mut first = 0;
    for (p, mut conn) in producer_conns.into_iter().enumerate() {
        let ids = first..first + per_producer + u64::from((p as u64) < extra);
        first = ids.end;
        let lists = lists.clone();
        let depth = a.pipeline as u64;
        // Each producer sends its batches on a fixed schedule when a rate is set.
        let interval = (a.rate > 0.0)
            .then(|| Duration::from_secs_f64(depth as f64 * a.producers as f64 / a.rate));
        producers.push(tokio::spawn(async move {
            let mut id = ids.start;
            let mut next = tokio::time::Instant::now();
            while id < ids.end {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next).await;
                    next += interval;
                }
                let batch = id..(id + depth).min(ids.end);
                let mut pipe = redis::pipe();
                for i in batch.clone() {
                    let msg = format!("{i}:{}", micros(base));
                    pipe.cmd("LPUSH")
                        .arg(&lists[(i % lists.len() as u64) as usize])
                        .arg(msg)
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn).await?;
                id = batch.end;
            }
            anyhow::Ok(())
        }));
    }
    let produce_secs = producers_finished(
        producers,
        base,
        &producers_done,
        &received,
        total,
        &consumers,
    )
    .await?;
    // Wake the consumers still blocked.
    let mut stop = redis::pipe();
    for _ in 0..a.consumers {
        stop.cmd("LPUSH").arg(&lists[0]).arg(STOP).ignore();
    }
    let all = stop_consumers(stop, &mut admin, consumers).await?;

    // Messages still queued: a consumer stopped early (duplicates made the count reach the total).
    let mut left = 0u64;
    for list in &lists {
        let items: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(list)
            .arg(0)
            .arg(-1)
            .query_async(&mut admin)
            .await?;
        left += items.iter().filter(|m| m.as_slice() != STOP).count() as u64;
    }
    del(&mut admin, &lists).await?;

    let d = Delivery::of(&all, total, &a.latencies)?;
    let (lost, dup, foreign, exactly_once) = (d.lost, d.dup, d.foreign, &d.exactly_once);
    let (n, p50, p99, max) = (d.received, d.p50, d.p99, d.max);
    let secs = last_receive_us.load(Ordering::Relaxed) as f64 / 1e6;
    let rate = d.rate(secs);
    let rate_limit = if a.rate > 0.0 {
        format!("{} msgs/s", a.rate)
    } else {
        "unlimited".to_string()
    };
    println!(
        "queue on {}: {} producers (pipeline {}, rate {rate_limit}), {} consumers, {} list(s), {total} messages",
        a.common.addr, a.producers, a.pipeline, a.consumers, a.lists
    );
    println!(
        "  received {n} in {secs:.3} s = {rate:.0} msgs/s (producers finished after {produce_secs:.3} s)"
    );
    println!(
        "  end-to-end latency µs: p50 {p50}  p99 {p99}  max {max}  (mean {:.0})",
        d.mean
    );
    println!("  exactly-once: {exactly_once} (lost {lost} of which still queued {left}, duplicated {dup}, foreign {foreign})");
    println!(
        "RESULT queue msgs_per_s={rate:.0} p50_us={p50} p99_us={p99} max_us={max} received={n} lost={lost} dup={dup} exactly_once={exactly_once}"
    );
    Ok(())
}

/// The exactly-once check and the latency figures over everything the consumers of one run received.
struct Delivery {
    received: u64,
    lost: u64,
    dup: u64,
    foreign: u64,
    p50: u64,
    p99: u64,
    max: u64,
    mean: f64,
    /// `OK`, or `FAIL(lost=..,dup=..,foreign=..)`.
    exactly_once: String,
}

impl Delivery {
    /// Checks that ids `0..total` each arrived exactly once, and sorts the latencies (written to `keep`, if given).
    fn of(all: &Received, total: u64, keep: &Latencies) -> Result<Self> {
        let mut seen = vec![0u32; total as usize];
        let mut foreign = all.malformed;
        for &(id, _) in &all.msgs {
            match seen.get_mut(id as usize) {
                Some(n) => *n += 1,
                None => foreign += 1,
            }
        }
        let lost = seen.iter().filter(|&&n| n == 0).count() as u64;
        let dup: u64 = seen.iter().map(|&n| u64::from(n.saturating_sub(1))).sum();
        let mut lat: Vec<u64> = all.msgs.iter().map(|&(_, l)| l).collect();
        lat.sort_unstable();
        if let Some(path) = &keep.path {
            let lines: String = lat.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(path, lines)?;
        }
        let received = lat.len() as u64;
        let exactly_once = if lost == 0 && dup == 0 && foreign == 0 {
            "OK".to_string()
        } else {
            format!("FAIL(lost={lost},dup={dup},foreign={foreign})")
        };
        Ok(Delivery {
            received,
            lost,
            dup,
            foreign,
            p50: percentile(&lat, 0.5),
            p99: percentile(&lat, 0.99),
            max: lat.last().copied().unwrap_or(0),
            mean: lat.iter().sum::<u64>() as f64 / received.max(1) as f64,
            exactly_once,
        })
    }

    /// Messages per second over `secs` (first send to last receipt).
    fn rate(&self, secs: f64) -> f64 {
        if secs > 0.0 {
            self.received as f64 / secs
        } else {
            0.0
        }
    }
}

/// Producers XADD, one group of consumers XREADGROUP + XACK (see the module doc).
async fn streams(a: StreamsArgs) -> Result<()> {
    if a.producers == 0 || a.consumers == 0 || a.batch == 0 {
        bail!("--producers, --consumers and --batch must be at least 1");
    }
    let key = format!("{}stream", a.common.prefix);
    let mut admin = connect(&a.common.addr).await?;
    del(&mut admin, std::slice::from_ref(&key)).await?;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query_async::<()>(&mut admin)
        .await?;
    let producer_conns = connect_many(&a.common.addr, a.producers).await?;
    let consumer_conns = connect_many(&a.common.addr, a.consumers).await?;

    let base = Instant::now();
    let total = a.messages;
    let received = Arc::new(AtomicU64::new(0));
    let last_receive_us = Arc::new(AtomicU64::new(0));
    let producers_done = Arc::new(AtomicBool::new(false));

    let mut consumers = Vec::new();
    for (c, mut conn) in consumer_conns.into_iter().enumerate() {
        let (key, received, last, done) = (
            key.clone(),
            received.clone(),
            last_receive_us.clone(),
            producers_done.clone(),
        );
        let (batch, block_ms) = (a.batch, a.block_ms);
        consumers.push(tokio::spawn(async move {
            let name = format!("c{c}");
            let mut got = Received::default();
            loop {
                let reply: Value = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg(&name)
                    .arg("COUNT")
                    .arg(batch)
                    .arg("BLOCK")
                    .arg(block_ms)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(">")
                    .query_async(&mut conn)
                    .await?;
                let entries = stream_entries(reply)?;
                if entries.is_empty() {
                    // Timed out: with the producers finished, nothing more will come.
                    if done.load(Ordering::Acquire) {
                        break;
                    }
                    continue;
                }
                let now = micros(base);
                let mut ack = redis::cmd("XACK");
                ack.arg(&key).arg("g");
                let mut stop = false;
                for (id, payload) in &entries {
                    ack.arg(id);
                    if payload.as_slice() == STOP {
                        stop = true;
                        continue;
                    }
                    match parse_message(payload) {
                        Some((id, sent)) => got.msgs.push((id, now.saturating_sub(sent))),
                        None => got.malformed += 1,
                    }
                    received.fetch_add(1, Ordering::Release);
                }
                last.fetch_max(now, Ordering::Relaxed);
                ack.query_async::<i64>(&mut conn).await?;
                if stop {
                    break;
                }
            }
            anyhow::Ok(got)
        }));
    }

    let per_producer = total / a.producers as u64;
    let extra = total % a.producers as u64;
    let mut producers = Vec::new();
    let mut first = 0;
    for (p, mut conn) in producer_conns.into_iter().enumerate() {
        let ids = first..first + per_producer + u64::from((p as u64) < extra);
        first = ids.end;
        let key = key.clone();
        producers.push(tokio::spawn(async move {
            for i in ids {
                redis::cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("m")
                    .arg(format!("{i}:{}", micros(base)))
                    .query_async::<()>(&mut conn)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    let produce_secs = producers_finished(
        producers,
        base,
        &producers_done,
        &received,
        total,
        &consumers,
    )
    .await?;
    // One stop entry per consumer wakes those still blocked (one that takes two stops ends by its timeout).
    let mut stop = redis::pipe();
    for _ in 0..a.consumers {
        stop.cmd("XADD")
            .arg(&key)
            .arg("*")
            .arg("m")
            .arg(STOP)
            .ignore();
    }
    let all = stop_consumers(stop, &mut admin, consumers).await?;
    let summary: Value = redis::cmd("XPENDING")
        .arg(&key)
        .arg("g")
        .query_async(&mut admin)
        .await?;
    let pending = match summary {
        Value::Array(v) => match v.first() {
            Some(Value::Int(n)) => *n,
            _ => -1,
        },
        _ => -1,
    };
    del(&mut admin, std::slice::from_ref(&key)).await?;

    let d = Delivery::of(&all, total, &a.latencies)?;
    let secs = last_receive_us.load(Ordering::Relaxed) as f64 / 1e6;
    let rate = d.rate(secs);
    println!(
        "streams on {}: {} producers, {} consumers in one group (COUNT {}), {total} messages",
        a.common.addr, a.producers, a.consumers, a.batch
    );
    println!(
        "  received {} in {secs:.3} s = {rate:.0} msgs/s (producers finished after {produce_secs:.3} s)",
        d.received
    );
    println!(
        "  end-to-end latency µs: p50 {}  p99 {}  max {}  (mean {:.0})",
        d.p50, d.p99, d.max, d.mean
    );
    println!(
        "  exactly-once: {} (lost {}, duplicated {}, foreign {}), pending after the run {pending}",
        d.exactly_once, d.lost, d.dup, d.foreign
    );
    println!(
        "RESULT streams msgs_per_s={rate:.0} p50_us={} p99_us={} max_us={} received={} lost={} dup={} pending={pending} exactly_once={}",
        d.p50, d.p99, d.max, d.received, d.lost, d.dup, d.exactly_once
    );
    Ok(())
}

/// The `(id, payload of field m)` pairs of an XREADGROUP reply for one stream (empty for a timeout's null).
fn stream_entries(reply: Value) -> Result<Vec<(String, Vec<u8>)>> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(v) => v,
        other => bail!("unexpected XREADGROUP reply {other:?}"),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut pair) = stream else {
            bail!("unexpected XREADGROUP stream {stream:?}");
        };
        let Some(Value::Array(entries)) = pair.pop() else {
            bail!("XREADGROUP stream without entries");
        };
        for entry in entries {
            let Value::Array(parts) = entry else {
                bail!("unexpected XREADGROUP entry {entry:?}");
            };
            let (Some(Value::BulkString(id)), Some(Value::Array(fields))) =
                (parts.first(), parts.get(1))
            else {
                bail!("unexpected XREADGROUP entry {parts:?}");
            };
            let Some(Value::BulkString(payload)) = fields.get(1) else {
                bail!("XREADGROUP entry without a value");
            };
            out.push((String::from_utf8_lossy(id).into_owned(), payload.clone()));
        }
    }
    Ok(out)
}

/// Splits a payload `<id>:<send µs>`.
fn parse_message(payload: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(payload).ok()?;
    let (id, sent) = s.split_once(':')?;
    Some((id.parse().ok()?, sent.parse().ok()?))
}

/// Counts of one lock client.
#[derive(Default)]
struct LockStats {
    attempts: u64,
    acquisitions: u64,
    violations: u64,
    lost: u64,
    release_retries: u64,
}

/// Keys of the lock benchmark.
struct LockKeys {
    lock: String,
    holders: String,
}

async fn lock(a: LockArgs) -> Result<()> {
    if a.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let keys = Arc::new(LockKeys {
        lock: format!("{}lock", a.common.prefix),
        holders: format!("{}holders", a.common.prefix),
    });
    let mut admin = connect(&a.common.addr).await?;
    let all_keys = [keys.lock.clone(), keys.holders.clone()];
    del(&mut admin, &all_keys).await?;
    // Probe the release method once, so an unsupported command fails clearly instead of in 50 tasks at once.
    let mut probe_stats = LockStats::default();
    let acquired: Value = redis::cmd("SET")
        .arg(&keys.lock)
        .arg("probe")
        .arg("NX")
        .arg("PX")
        .arg(a.ttl_ms)
        .query_async(&mut admin)
        .await?;
    if acquired != Value::Okay {
        bail!("probe: SET NX on a fresh key replied {acquired:?}");
    }
    if !release(&mut admin, a.release, &keys.lock, "probe", &mut probe_stats)
        .await
        .context("release method not supported by this server")?
    {
        bail!("probe: release did not delete the lock it held");
    }

    let conns = connect_many(&a.common.addr, a.clients).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let mut tasks = Vec::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        let keys = keys.clone();
        let (mode, ttl, broken) = (a.release, a.ttl_ms, a.broken);
        tasks.push(tokio::spawn(async move {
            let mut st = LockStats::default();
            while Instant::now() < deadline {
                st.attempts += 1;
                let token = format!("{c}-{}", st.attempts);
                let mut set = redis::cmd("SET");
                set.arg(&keys.lock).arg(&token);
                if !broken {
                    set.arg("NX");
                }
                let reply: Value = set.arg("PX").arg(ttl).query_async(&mut conn).await?;
                if reply != Value::Okay {
                    // Taken: let the other tasks on this worker run, then try again at once.
                    tokio::task::yield_now().await;
                    continue;
                }
                st.acquisitions += 1;
                let holders: i64 = redis::cmd("INCR")
                    .arg(&keys.holders)
                    .query_async(&mut conn)
                    .await?;
                if holders != 1 {
                    st.violations += 1;
                }
                redis::cmd("DECR")
                    .arg(&keys.holders)
                    .query_async::<i64>(&mut conn)
                    .await?;
                if !release(&mut conn, mode, &keys.lock, &token, &mut st).await? {
                    st.lost += 1;
                }
            }
            anyhow::Ok(st)
        }));
    }
    let mut per_client = Vec::new();
    for t in tasks {
        per_client.push(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let holders_left: Option<i64> = redis::cmd("GET")
        .arg(&keys.holders)
        .query_async(&mut admin)
        .await?;
    del(&mut admin, &all_keys).await?;

    let sum = |f: fn(&LockStats) -> u64| per_client.iter().map(f).sum::<u64>();
    let (attempts, acq, violations, lost, retries) = (
        sum(|s| s.attempts),
        sum(|s| s.acquisitions),
        sum(|s| s.violations),
        sum(|s| s.lost),
        sum(|s| s.release_retries),
    );
    let min = per_client.iter().map(|s| s.acquisitions).min().unwrap_or(0);
    let max = per_client.iter().map(|s| s.acquisitions).max().unwrap_or(0);
    let mode = a
        .release
        .to_possible_value()
        .map(|v| v.get_name().to_string());
    let mode = mode.unwrap_or_default();
    println!(
        "lock on {}: {} clients, {secs:.2} s, release {mode}{}",
        a.common.addr,
        a.clients,
        if a.broken { ", BROKEN (no NX)" } else { "" }
    );
    println!(
        "  {:.0} acquisitions/s ({acq} total; per client min {min} max {max}), {:.0} attempts/s",
        acq as f64 / secs,
        attempts as f64 / secs
    );
    println!(
        "  violations {violations}, lost locks {lost}, release retries {retries}, holders at end {}",
        holders_left.unwrap_or(0)
    );
    println!(
        "RESULT lock release={mode} acq_per_s={:.0} attempts_per_s={:.0} violations={violations} lost={lost} release_retries={retries}",
        acq as f64 / secs,
        attempts as f64 / secs
    );
    Ok(())
}

/// The transaction benchmark (see the module doc).
async fn tx(a: TxArgs) -> Result<()> {
    if a.clients == 0 || a.keys == 0 {
        bail!("--clients and --keys must be at least 1");
    }
    let conns = connect_many(&a.common.addr, a.clients).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (prefix, keys) = (a.common.prefix.clone(), a.keys);
        tasks.push(tokio::spawn(async move {
            let (mut done, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let r = fastrand::u64(..keys);
                let list = format!("{prefix}list:{r}");
                // One batch: MULTI, the five commands, EXEC; the reply is EXEC's array.
                let reply: Vec<Value> = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(format!("{prefix}str:{r}"))
                    .arg("v")
                    .cmd("INCR")
                    .arg(format!("{prefix}ctr:{r}"))
                    .cmd("LPUSH")
                    .arg(&list)
                    .arg("x")
                    .cmd("LTRIM")
                    .arg(&list)
                    .arg(0)
                    .arg(9)
                    .cmd("HSET")
                    .arg(format!("{prefix}hash:{r}"))
                    .arg("f")
                    .arg("v")
                    .query_async(&mut conn)
                    .await?;
                done += 1;
                if reply.len() != 5 || reply.iter().any(|v| matches!(v, Value::ServerError(_))) {
                    errors += 1;
                }
            }
            anyhow::Ok((done, errors))
        }));
    }
    let (mut done, mut errors) = (0, 0);
    for t in tasks {
        let (d, e) = t.await??;
        done += d;
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    // Delete every key the run may have made (four families times --keys), in batches.
    let mut admin = connect(&a.common.addr).await?;
    for chunk in (0..a.keys).collect::<Vec<_>>().chunks(1000) {
        let names: Vec<String> = chunk
            .iter()
            .flat_map(|r| {
                ["str", "ctr", "list", "hash"].map(|f| format!("{}{f}:{r}", a.common.prefix))
            })
            .collect();
        del(&mut admin, &names).await?;
    }
    println!(
        "tx on {}: {} clients, {secs:.2} s, MULTI + 5 writes + EXEC per transaction",
        a.common.addr, a.clients
    );
    println!(
        "  {:.0} transactions/s ({done} total), errors {errors}",
        done as f64 / secs
    );
    println!(
        "RESULT tx tx_per_s={:.0} errors={errors}",
        done as f64 / secs
    );
    Ok(())
}

/// Deletes `lock` if it still holds `token`; false when it held something else (the lock expired while held).
async fn release(
    conn: &mut MultiplexedConnection,
    mode: Release,
    lock: &str,
    token: &str,
    st: &mut LockStats,
) -> Result<bool> {
    Ok(match mode {
        Release::Eval => {
            let n: i64 = redis::cmd("EVAL")
                .arg(RELEASE_SCRIPT)
                .arg(1)
                .arg(lock)
                .arg(token)
                .query_async(conn)
                .await?;
            n == 1
        }
        Release::Delifeq => {
            let n: i64 = redis::cmd("DELIFEQ")
                .arg(lock)
                .arg(token)
                .query_async(conn)
                .await?;
            n == 1
        }
        Release::GetdelCheck => {
            let v: Option<Vec<u8>> = redis::cmd("GETDEL").arg(lock).query_async(conn).await?;
            v.as_deref() == Some(token.as_bytes())
        }
        Release::Watch => loop {
            redis::cmd("WATCH")
                .arg(lock)
                .query_async::<()>(conn)
                .await?;
            let v: Option<Vec<u8>> = redis::cmd("GET").arg(lock).query_async(conn).await?;
            if v.as_deref() != Some(token.as_bytes()) {
                redis::cmd("UNWATCH").query_async::<()>(conn).await?;
                break false;
            }
            let replies: Vec<Value> = redis::pipe()
                .cmd("MULTI")
                .cmd("DEL")
                .arg(lock)
                .cmd("EXEC")
                .query_async(conn)
                .await?;
            match replies.last() {
                // EXEC aborted: the lock changed between GET and EXEC; look again.
                Some(Value::Nil) => st.release_retries += 1,
                Some(Value::Array(r)) => break r.first() == Some(&Value::Int(1)),
                other => bail!("unexpected EXEC reply {other:?}"),
            }
        },
    })
}
