//! Generated differential test: seeded random sequences of string, key, expiry and list commands, and EVALs of
//! random Lua results (nested tables, the reply forms, booleans, `redis.call` replies and errors), over a small key
//! space (so wrong types, missing keys and overwrites happen often), with valid and invalid arguments, sent to
//! ringkv and Redis in lockstep and compared reply by reply.
//!
//! `RINGKV_COMPAT_SEED=n` replays one seed; `RINGKV_COMPAT_SEEDS` (default 20) and `RINGKV_COMPAT_STEPS` (default 300)
//! size the default run.

use std::path::Path;
use std::time::Duration;

use crate::cases::{agree, Mode};
use crate::common::Server;
use crate::redis::{report, Conn, Got, RedisServer};

const WAIT: Duration = Duration::from_secs(2);

/// How a generated command's replies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Through [`agree`] in this mode.
    Mode(Mode),
    /// Integer replies may differ by this much (TTLs read at slightly different instants).
    Within(i64),
}

struct Gen {
    rng: fastrand::Rng,
    /// Generating for the proxy: no RANDOMKEY (the proxy refuses it; DBSIZE instead).
    proxy: bool,
}

const VALUES: &[&str] = &[
    "",
    "a",
    "abc",
    "hello world",
    "0",
    "1",
    "-1",
    "10",
    "3.5",
    "-0.25",
    "1e3",
    "9223372036854775807",
    "-9223372036854775808",
    " 1",
    "inf",
    "\x00\u{ff}bin",
];
const INTS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "-3",
    "7",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "abc",
    "1.5",
    "",
    " 1",
    "01",
];
const FLOATS: &[&str] = &[
    "0", "1.5", "-2.25", "3", "1e10", "-1e-3", "inf", "-inf", "nan", "abc", "0.1", "1e308", ".5",
    "",
];
/// Expiry amounts never expire a key during a run, in seconds or in milliseconds (none is a small positive number), so
/// results do not depend on timing; zero, negative and out-of-range ones test the errors and immediate deletions.
const TTLS: &[&str] = &[
    "0",
    "-1",
    "100000",
    "5000000",
    "9223372036854775807",
    "-9223372036854775808",
    "abc",
    "1.5",
];
const INDEXES: &[&str] = &["0", "1", "2", "-1", "-2", "5", "-100", "100", "x"];

impl Gen {
    fn pick(&mut self, pool: &[&str]) -> String {
        pool[self.rng.usize(..pool.len())].to_string()
    }
    fn key(&mut self) -> String {
        match self.rng.u8(..40) {
            0 => String::new(),
            1 => "k\u{0}\u{ff}".to_string(),
            _ => format!("k{}", self.rng.u8(..8)),
        }
    }
    fn keys(&mut self, max: usize) -> Vec<String> {
        (0..self.rng.usize(1..=max)).map(|_| self.key()).collect()
    }
    fn side(&mut self) -> String {
        // Mostly valid; now and then a word that is not a side.
        let sides = if self.maybe(5) { 4 } else { 3 };
        self.pick(&["LEFT", "RIGHT", "left", "middle"][..sides])
    }
    fn maybe(&mut self, percent: u8) -> bool {
        self.rng.u8(..100) < percent
    }

    /// One command and how to compare its replies.
    fn command(&mut self) -> (Vec<String>, Check) {
        let exact = Check::Mode(Mode::Exact);
        let k = self.key();
        let mut cmd: Vec<String> = match self.rng.u8(..59) {
            0..=3 => vec!["GET".into(), k],
            4..=7 => self.set(k),
            8 => vec!["SETNX".into(), k, self.pick(VALUES)],
            9 => vec!["SETEX".into(), k, self.pick(TTLS), self.pick(VALUES)],
            10 => vec!["PSETEX".into(), k, self.pick(TTLS), self.pick(VALUES)],
            11 => vec!["GETSET".into(), k, self.pick(VALUES)],
            12 => vec!["GETDEL".into(), k],
            13 => {
                let mut c = vec!["GETEX".into(), k];
                match self.rng.u8(..6) {
                    0 => c.extend(["EX".into(), self.pick(TTLS)]),
                    1 => c.extend(["PX".into(), self.pick(TTLS)]),
                    2 => c.push("PERSIST".into()),
                    3 => c.extend(["EXAT".into(), "4102444800".into()]),
                    4 => c.extend(["PERSIST".into(), "EX".into(), "100".into()]),
                    _ => {}
                }
                c
            }
            14 => vec!["APPEND".into(), k, self.pick(VALUES)],
            15 => vec!["STRLEN".into(), k],
            16 => vec!["INCR".into(), k],
            17 => vec!["DECR".into(), k],
            18 => vec!["INCRBY".into(), k, self.pick(INTS)],
            19 => vec!["DECRBY".into(), k, self.pick(INTS)],
            20 => vec!["INCRBYFLOAT".into(), k, self.pick(FLOATS)],
            21 => vec!["GETRANGE".into(), k, self.pick(INDEXES), self.pick(INDEXES)],
            22 => {
                let offset = self.pick(&["0", "1", "3", "10", "-1", "536870912", "x"]);
                vec!["SETRANGE".into(), k, offset, self.pick(VALUES)]
            }
            23 => [vec!["MGET".into()], self.keys(4)].concat(),
            24 | 25 => {
                let name = if self.maybe(50) { "MSET" } else { "MSETNX" };
                let mut c = vec![name.to_string()];
                for key in self.keys(3) {
                    c.extend([key, self.pick(VALUES)]);
                }
                c
            }
            26 => [vec!["DEL".into()], self.keys(3)].concat(),
            27 => [vec!["EXISTS".into()], self.keys(3)].concat(),
            28 => vec!["TYPE".into(), k],
            29 => {
                let name = if self.maybe(50) { "RENAME" } else { "RENAMENX" };
                vec![name.into(), k, self.key()]
            }
            30 => {
                let mut c = vec!["COPY".into(), k, self.key()];
                if self.maybe(50) {
                    c.push("REPLACE".into());
                }
                c
            }
            31 | 32 => {
                let name = self.pick(&["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]);
                let when = if name.ends_with("AT") {
                    self.pick(&["1", "0", "-5", "4102444800", "4102444800000", "x"])
                } else {
                    self.pick(TTLS)
                };
                let mut c = vec![name, k, when];
                if self.maybe(40) {
                    c.push(self.pick(&["NX", "XX", "GT", "LT", "nx", "ZZ"]));
                }
                if self.maybe(5) {
                    c.push(self.pick(&["NX", "XX", "GT", "LT"]));
                }
                c
            }
            33 => {
                let (name, slack) = [
                    ("TTL", 1),
                    ("PTTL", 1000),
                    ("EXPIRETIME", 1),
                    ("PEXPIRETIME", 1000),
                ][self.rng.usize(..4)];
                return (vec![name.into(), k], Check::Within(slack));
            }
            34 => vec!["PERSIST".into(), k],
            35 => [vec![self.pick(&["TOUCH", "UNLINK"])], self.keys(3)].concat(),
            36 => {
                return match self.rng.u8(..4) {
                    0 => (vec!["DBSIZE".into()], exact),
                    1 => (
                        vec!["KEYS".into(), self.pick(&["*", "k[0-3]", "k?", "*1*"])],
                        Check::Mode(Mode::Sort),
                    ),
                    2 => (
                        vec!["SCAN".into(), "0".into(), "COUNT".into(), "1000".into()],
                        Check::Mode(Mode::Sort),
                    ),
                    _ if self.proxy => (vec!["DBSIZE".into()], exact),
                    _ => (vec!["RANDOMKEY".into()], Check::Mode(Mode::Shape)),
                };
            }
            37..=39 => {
                let name = self.pick(&["LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]);
                let mut c = vec![name, k];
                for _ in 0..self.rng.usize(1..4) {
                    c.push(self.pick(VALUES));
                }
                c
            }
            40 | 41 => {
                let mut c = vec![self.pick(&["LPOP", "RPOP"]), k];
                if self.maybe(40) {
                    c.push(self.pick(INTS));
                }
                c
            }
            42 => vec!["LLEN".into(), k],
            43 => vec!["LRANGE".into(), k, self.pick(INDEXES), self.pick(INDEXES)],
            44 => vec!["LINDEX".into(), k, self.pick(INDEXES)],
            45 => vec!["LSET".into(), k, self.pick(INDEXES), self.pick(VALUES)],
            46 => vec!["LREM".into(), k, self.pick(INDEXES), self.pick(VALUES)],
            47 => vec!["LTRIM".into(), k, self.pick(INDEXES), self.pick(INDEXES)],
            48 => {
                let place = self.pick(&["BEFORE", "AFTER", "after", "AROUND"]);
                vec![
                    "LINSERT".into(),
                    k,
                    place,
                    self.pick(VALUES),
                    self.pick(VALUES),
                ]
            }
            49 => {
                let mut c = vec!["LPOS".into(), k, self.pick(VALUES)];
                for _ in 0..self.rng.usize(..3) {
                    let opt = self.pick(&["RANK", "COUNT", "MAXLEN", "rank", "BOGUS"]);
                    // Not INTS: RANK LLONG_MIN is a known 7.0/7.2 difference (redis-compat/accepted.txt).
                    c.extend([opt, self.pick(&INTS[..9])]);
                }
                c
            }
            50 => vec!["LMOVE".into(), k, self.key(), self.side(), self.side()],
            51 => vec!["RPOPLPUSH".into(), k, self.key()],
            52 => {
                let keys = self.keys(3);
                let mut c = vec!["LMPOP".into(), keys.len().to_string()];
                c.extend(keys);
                c.push(self.side());
                if self.maybe(50) {
                    c.extend(["COUNT".into(), self.pick(INTS)]);
                }
                c
            }
            53 => {
                let name = self.pick(&["BLPOP", "BRPOP"]);
                [
                    vec![name],
                    self.keys(2),
                    vec![self.pick(&["0.01", "0.02", "-1", "x"])],
                ]
                .concat()
            }
            54 => vec![
                "BLMOVE".into(),
                k,
                self.key(),
                self.side(),
                self.side(),
                "0.01".into(),
            ],
            56..=58 => {
                let resp3 = if self.maybe(30) {
                    "redis.setresp(3) "
                } else {
                    ""
                };
                let body = format!("{resp3}return {}", self.lua_value(0));
                vec!["EVAL".into(), body, "2".into(), k, self.key()]
            }
            _ => {
                let keys = self.keys(2);
                let mut c = vec!["BLMPOP".into(), "0.01".into(), keys.len().to_string()];
                c.extend(keys);
                c.push(self.side());
                c
            }
        };
        // Now and then a wrong arity or a stray argument (not on blocking commands, where a stray argument becomes
        // the timeout and LLONG_MAX seconds is a known 7.0/7.2 difference).
        match self.rng.u8(..40) {
            _ if cmd[0].starts_with('B') => {}
            0 if cmd.len() > 1 => {
                cmd.pop();
            }
            1 => cmd.push(self.pick(VALUES)),
            _ => {}
        }
        (cmd, exact)
    }

    /// A Lua expression for a script to return: every conversion rule's input, nested up to three tables deep.
    /// Doubles are ones both Redis versions print alike (7.0 writes `%.17g`, 7.2 the shortest form).
    fn lua_value(&mut self, depth: u32) -> String {
        let kinds = if depth < 3 { 14 } else { 6 };
        match self.rng.u8(..kinds) {
            0 => self.pick(&["0", "1", "-1", "3.7", "-2.5", "0.1", "2^53", "1e20"]),
            1 => self.pick(&["''", "'a'", "'x\\r\\ny'", "'\\0z'"]),
            2 => self.pick(&["true", "false", "nil"]),
            3 => "redis.call('get', KEYS[1])".into(),
            4 => "redis.pcall('incr', KEYS[2])".into(),
            5 => "redis.pcall('lpush', KEYS[1], 'x')".into(),
            6 => {
                let items: Vec<String> = (0..self.rng.usize(..5))
                    .map(|_| self.lua_value(depth + 1))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
            7 => format!("{{ok={}}}", self.pick(&["'fine'", "'a\\nb'", "5"])),
            8 => format!(
                "{{err={}}}",
                self.pick(&["'bad thing'", "'-MY code'", "'ERR x'"])
            ),
            9 => format!("{{double={}}}", self.pick(&["1.5", "3", "-0.25"])),
            10 => {
                let (a, b) = (self.lua_value(depth + 1), self.lua_value(depth + 1));
                format!("{{map={{a={a}, [2]={b}}}}}")
            }
            11 => "{set={x=true, y=true}}".into(),
            12 => "{big_number='123456789012345678901234567890'}".into(),
            _ => "redis.pcall('lrange', KEYS[2], 0, -1)".into(),
        }
    }

    fn set(&mut self, key: String) -> Vec<String> {
        let mut c = vec!["SET".into(), key, self.pick(VALUES)];
        for _ in 0..self.rng.usize(..3) {
            match self.rng.u8(..9) {
                0 => c.push("NX".into()),
                1 => c.push("XX".into()),
                2 => c.push("GET".into()),
                3 => c.push("KEEPTTL".into()),
                4 => c.extend(["EX".into(), self.pick(TTLS)]),
                5 => c.extend(["PX".into(), self.pick(TTLS)]),
                // Not a past time: the key would then exist until Redis's active expiry reclaims it, and DBSIZE
                // would depend on timing (the transcripts check SET ... EXAT 1 instead).
                6 => c.extend(["EXAT".into(), self.pick(&["4102444800", "0", "x"])]),
                7 => c.extend(["PXAT".into(), self.pick(&["4102444800000", "-1"])]),
                _ => c.push(self.pick(&["ex", "FOO", "px"])),
            }
        }
        c
    }
}

fn agree_within(slack: i64, a: &Got, b: &Got) -> bool {
    let int = |g: &Got| match g {
        Got::Reply(bytes) if bytes.first() == Some(&b':') => std::str::from_utf8(&bytes[1..])
            .ok()
            .and_then(|s| s.trim_end().parse::<i64>().ok()),
        _ => None,
    };
    match (int(a), int(b)) {
        // Negative TTLs are the exact answers -1 and -2.
        (Some(x), Some(y)) if x >= 0 && y >= 0 => (x - y).abs() <= slack,
        _ => a == b,
    }
}

fn show(cmd: &[String]) -> String {
    cmd.iter()
        .map(|a| format!("\"{}\"", a.as_bytes().escape_ascii()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs one seed against both servers; on the first difference returns its report (with the commands that led
/// there, to replay or minimise).
fn run_seed(seed: u64, steps: u64, redis: &str, ours: &str, proxy: bool) -> Result<u64, String> {
    let mut gen = Gen {
        rng: fastrand::Rng::with_seed(seed),
        proxy,
    };
    let (label, test) = if proxy {
        ("proxy ", "random_sequences_through_the_proxy")
    } else {
        ("ringkv", "random_sequences_match")
    };
    let (mut a, mut b) = (Conn::connect(redis), Conn::connect(ours));
    for conn in [&mut a, &mut b] {
        assert_eq!(
            conn.cmd(&["FLUSHALL"], WAIT),
            Got::Reply(b"+OK\r\n".to_vec())
        );
    }
    let mut history = Vec::new();
    for step in 0..steps {
        let (cmd, check) = gen.command();
        let (x, y) = (a.cmd(&cmd, WAIT), b.cmd(&cmd, WAIT));
        history.push(show(&cmd));
        let same = match check {
            Check::Mode(mode) => agree(mode, &x, &y),
            Check::Within(slack) => agree_within(slack, &x, &y),
        };
        if !same {
            return Err(format!(
                "seed {seed}, command {} of {steps}: {}\n    redis:  {}\n    {label}: {}\n  commands so far:\n    {}\n  \
                 replay: RINGKV_COMPAT_SEED={seed} RINGKV_COMPAT_STEPS={} cargo test --test compat {test} -- --nocapture",
                step + 1,
                show(&cmd),
                x.show(),
                y.show(),
                history.join("\n    "),
                step + 1,
            ));
        }
    }
    Ok(steps)
}

/// The generated test: every seed against one Redis and one ringkv, or (`proxy`) against one Redis directly and
/// `ringkv proxy` over another redis-server (one backend, so every key has one owner and multi-key commands run).
/// `default_seeds` applies unless `RINGKV_COMPAT_SEEDS` says otherwise.
pub fn run(binary: &Path, proxy: bool, default_seeds: u64) {
    let redis = RedisServer::start(&binary.to_path_buf());
    let backend = proxy.then(|| RedisServer::start(&binary.to_path_buf()));
    let ours = match &backend {
        Some(b) => Server::start_proxy(&["--backend", &b.addr()]),
        None => Server::start(&[]),
    };
    let steps = env_num("RINGKV_COMPAT_STEPS").unwrap_or(300);
    let seeds: Vec<u64> = match env_num("RINGKV_COMPAT_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env_num("RINGKV_COMPAT_SEEDS").unwrap_or(default_seeds)).collect(),
    };
    let mut compared = 0;
    let mut failures = Vec::new();
    for &seed in &seeds {
        match run_seed(seed, steps, &redis.addr(), &ours.addr(), proxy) {
            Ok(n) => compared += n,
            Err(report) => failures.push(report),
        }
    }
    report(&format!(
        "compat random{} summary: {} seeds x {steps} commands, {compared} commands compared, {} failing seeds",
        if proxy { " through the proxy" } else { "" },
        seeds.len(),
        failures.len()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
