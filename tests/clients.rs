//! Client-library acceptance: real job-queue and lock libraries, unmodified, against the real binary. Each scenario
//! in `tests/clients/` (RQ, Celery, BullMQ, Sidekiq; redis-py through the proxy, redis-py client-side caching;
//! Redlock and node-redis locks) runs as a child process with `REDIS_URL` pointing at a fresh ringkv (or proxy;
//! Redlock gets three independent ringkv in `REDIS_URLS`, comma-separated), under a hard time limit; it prints one
//! summary line of `key=value` counts, which the test checks along with its exit status.
//!
//! The libraries come from `tests/clients/setup.sh` (pinned versions): a Python virtualenv at
//! `target/clients-venv`, BullMQ in `tests/clients/bullmq/node_modules` and Redlock, ioredis and node-redis in
//! `tests/clients/locks/node_modules`; Sidekiq is Debian's ruby-sidekiq package (Sidekiq 6.4.1, redis-rb 4.8.0).
//! Without them a test is skipped with a note, except under CI (`CI=true`), where `.ci/run` installs them and a
//! missing one is a failure.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{required_program, Server};

/// How long one scenario may run before it is killed (each takes a few seconds here).
const TIME_LIMIT: Duration = Duration::from_secs(180);

/// `tests/clients/` in the source tree.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The virtualenv's Python, or `None` (skipped; a failure under CI) when setup.sh has not been run.
fn venv_python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients-venv/bin/python");
    let found = required_program(python.to_str()?);
    if found.is_none() {
        eprintln!("run tests/clients/setup.sh to install the pinned client libraries");
    }
    found
}

/// `node`, with the `modules` installed by `npm ci` in `tests/clients/<dir>/node_modules`, or `None` (skipped; a
/// failure under CI).
fn node_with(dir: &str, modules: &[&str]) -> Option<PathBuf> {
    let node = required_program("node")?;
    for module in modules {
        let package = clients_dir().join(format!("{dir}/node_modules/{module}/package.json"));
        if required_program(package.to_str()?).is_none() {
            eprintln!("run tests/clients/setup.sh to install the pinned client libraries");
            return None;
        }
    }
    Some(node)
}

/// `ruby` with Sidekiq (its `sidekiq` executable on PATH; Debian: ruby-sidekiq), or `None` (skipped; a failure
/// under CI).
fn ruby_with_sidekiq() -> Option<PathBuf> {
    let ruby = required_program("ruby")?;
    if required_program("sidekiq").is_none() {
        eprintln!("install Sidekiq (Debian: apt-get install ruby-sidekiq)");
        return None;
    }
    Some(ruby)
}

/// What a finished scenario left behind.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// The `key=value` pairs of the summary line that starts with `tag:`.
    fn summary(&self, tag: &str) -> HashMap<String, String> {
        let prefix = format!("{tag}:");
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` summary line\n{}", self.report()));
        line[prefix.len()..]
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Exit status and the end of both streams, for assertion messages.
    fn report(&self) -> String {
        format!(
            "status: {}\n--- stdout (end) ---\n{}\n--- stderr (end) ---\n{}",
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }

    /// Asserts a clean exit and that each `(key, value)` appears in the summary line.
    fn assert_summary(&self, tag: &str, expected: &[(&str, &str)]) {
        let summary = self.summary(tag);
        for (key, value) in expected {
            assert_eq!(
                summary.get(*key).map(String::as_str),
                Some(*value),
                "{tag} {key}\n{}",
                self.report()
            );
        }
        assert!(self.status.success(), "{}", self.report());
    }

    /// Asserts that each `(key, least)` of the summary line is a number of at least `least` (counts that depend on
    /// timing).
    fn assert_at_least(&self, tag: &str, expected: &[(&str, u64)]) {
        let summary = self.summary(tag);
        for (key, least) in expected {
            let value = summary.get(*key).and_then(|v| v.parse::<u64>().ok());
            assert!(
                value.is_some_and(|v| v >= *least),
                "{tag} {key}: {value:?}, expected at least {least}\n{}",
                self.report()
            );
        }
    }
}

/// The last 60 lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Reads a child's stream to the end on a thread of its own, so a chatty child never blocks on a full pipe.
fn drain(stream: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut stream) = stream {
            let _ = stream.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// Kills every process of the child's process group (the scenario and whatever workers it started).
fn kill_group(child: &Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

/// Runs `program args` in `dir` against `server` as the leader of a new process group; after TIME_LIMIT the
/// whole group is killed and the test fails. The group is killed on a normal exit too, so that no worker a
/// scenario started outlives it.
fn run_scenario(server: &Server, program: &Path, args: &[&str], dir: &Path) -> Outcome {
    run_scenario_on(&[server], program, args, dir)
}

/// [`run_scenario`] against several independent servers: `REDIS_URLS` lists them all, comma-separated
/// (`REDIS_URL` is the first).
fn run_scenario_on(servers: &[&Server], program: &Path, args: &[&str], dir: &Path) -> Outcome {
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("redis://{}/0", s.addr()))
        .collect();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("REDIS_URL", &urls[0])
        .env("REDIS_URLS", urls.join(","))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for scenario") {
            break Some(status);
        }
        if start.elapsed() > TIME_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    kill_group(&child);
    let status = status.unwrap_or_else(|| child.wait().expect("reap scenario"));
    let outcome = Outcome {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        start.elapsed() <= TIME_LIMIT,
        "scenario killed after {TIME_LIMIT:?}\n{}",
        outcome.report()
    );
    outcome
}

#[test]
fn rq_burst_worker_runs_200_jobs_a_dependent_one_and_records_the_failing_one() {
    let Some(python) = venv_python() else {
        return;
    };
    let server = Server::start(&[]);
    let outcome = run_scenario(&server, &python, &["rq_scenario.py"], &clients_dir());
    outcome.assert_summary(
        "rq",
        &[
            // 200 jobs and the one that depended on the last of them.
            ("finished", "201"),
            ("results_ok", "200"),
            ("dependent_ok", "True"),
            ("failed", "1"),
            ("failure_recorded", "True"),
            ("queued", "0"),
        ],
    );
}

#[test]
fn celery_worker_runs_100_tasks_a_chord_and_a_countdown_and_every_result_comes_back() {
    let Some(python) = venv_python() else {
        return;
    };
    let server = Server::start(&[]);
    let outcome = run_scenario(&server, &python, &["celery_scenario.py"], &clients_dir());
    outcome.assert_summary(
        "celery",
        &[
            ("results", "100"),
            ("correct", "100"),
            ("sum", "9900"),
            ("chord", "55"),
            ("countdown", "42"),
            ("failure_raised", "True"),
            ("worker_exit", "0"),
        ],
    );
}

#[test]
fn redis_py_with_its_resp3_default_works_through_the_proxy() {
    let Some(python) = venv_python() else {
        return;
    };
    let backends: Vec<Server> = (0..3).map(|_| Server::start(&[])).collect();
    let mut args = Vec::new();
    for b in &backends {
        args.extend(["--backend".to_string(), b.addr()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proxy = Server::start_proxy(&args);
    let outcome = run_scenario(&proxy, &python, &["redis_py_proxy.py"], &clients_dir());
    outcome.assert_summary(
        "redispy",
        &[
            ("proto", "3"),
            ("mget_ok", "True"),
            ("hash_ok", "True"),
            ("score_ok", "True"),
            ("pipeline_ok", "True"),
            ("tx_ok", "True"),
            ("blpop_ok", "True"),
            ("acquired", "20"),
            ("extended", "20"),
            ("released", "20"),
            ("stolen", "False"),
            ("confirmed", "6"),
            ("receivers", "10"),
            ("pubsub_ok", "True"),
        ],
    );
}

#[test]
fn bullmq_worker_processes_jobs_and_queue_events_sees_every_completion() {
    let Some(node) = node_with("bullmq", &["bullmq"]) else {
        return;
    };
    let server = Server::start(&[]);
    let outcome = run_scenario(
        &server,
        &node,
        &["scenario.js"],
        &clients_dir().join("bullmq"),
    );
    // 100 plain jobs + a delayed one, two prioritized, one retried once, and a flow of a parent and two children.
    outcome.assert_summary(
        "bullmq",
        &[
            ("completed", "107"),
            ("events", "107"),
            ("results_ok", "107"),
            ("failed_attempts", "1"),
            ("counted_completed", "107"),
            ("failed", "0"),
            ("waiting", "0"),
            ("active", "0"),
            ("delayed", "0"),
            ("prioritized", "0"),
            ("parent", "completed"),
        ],
    );
}

#[test]
fn sidekiq_worker_runs_jobs_and_a_scheduled_one_retries_one_and_buries_another() {
    let Some(ruby) = ruby_with_sidekiq() else {
        return;
    };
    let server = Server::start(&[]);
    let outcome = run_scenario(
        &server,
        &ruby,
        &["scenario.rb"],
        &clients_dir().join("sidekiq"),
    );
    // 120 AddJobs, a SoonJob (perform_in 1 s), FlakyJob twice, DoomedJob twice and PatientJob once (4 raised).
    // Left behind: an AddJob scheduled an hour ahead, PatientJob's retry due in an hour and the dead DoomedJob.
    outcome.assert_summary(
        "sidekiq",
        &[
            ("processed", "126"),
            ("failed", "4"),
            ("results_ok", "120"),
            ("enqueued", "0"),
            ("scheduled", "1"),
            ("retry", "1"),
            ("dead", "1"),
            ("flaky_attempts", "2"),
            ("processes", "0"),
            ("worker_exit", "0"),
            ("checks_failed", "none"),
        ],
    );
}

#[test]
fn redis_py_client_side_cache_is_invalidated_by_another_clients_set() {
    let Some(python) = venv_python() else {
        return;
    };
    let server = Server::start(&[]);
    let outcome = run_scenario(&server, &python, &["redis_py_cache.py"], &clients_dir());
    outcome.assert_summary(
        "redispy_cache",
        &[
            ("first", "ada"),
            ("second", "ada"),
            ("cached_after_read", "1"),
            ("served_locally", "True"),
            ("fresh", "grace"),
            ("flushed_size", "0"),
        ],
    );
}

#[test]
fn redlock_over_three_servers_keeps_20_workers_apart_extends_and_takes_over_a_stalled_lock() {
    let Some(node) = node_with("locks", &["redlock", "ioredis"]) else {
        return;
    };
    let servers: Vec<Server> = (0..3).map(|_| Server::start(&[])).collect();
    let servers: Vec<&Server> = servers.iter().collect();
    let outcome = run_scenario_on(
        &servers,
        &node,
        &["redlock.js"],
        &clients_dir().join("locks"),
    );
    // 20 workers x 5 sections, each bumping the counter with an unprotected GET ... SET; two `using()` sections
    // of 1.5 s on a 1 s TTL; a 300 ms lock whose holder stalls.
    outcome.assert_summary(
        "redlock",
        &[
            ("servers", "3"),
            ("acquisitions", "100"),
            ("gave_up", "0"),
            ("counter", "100"),
            ("violations", "0"),
            ("errors", "0"),
            ("using_sections", "2"),
            ("held_past_ttl", "2"),
            ("refused_while_held", "1"),
            ("taken_over", "1"),
            ("stale_release_refused", "1"),
            ("kept_by_new_holder", "1"),
            ("keys_left", "0"),
        ],
    );
    // An extension about every 300 ms of each 1.5 s section; contenders refused after the first TTL had passed.
    outcome.assert_at_least(
        "redlock",
        &[("extensions", 4), ("contended", 1), ("refused_past_ttl", 1)],
    );
}

#[test]
fn node_redis_lock_watch_and_blocking_pops_over_resp2_and_resp3() {
    let Some(node) = node_with("locks", &["redis"]) else {
        return;
    };
    let server = Server::start(&[]);
    let outcome = run_scenario(
        &server,
        &node,
        &["node_redis.js"],
        &clients_dir().join("locks"),
    );
    for (tag, proto) in [("noderedis_resp2", "2"), ("noderedis_resp3", "3")] {
        // 10 workers x 10 rounds of SET NX PX + compare-and-delete (EVALSHA, EVAL after SCRIPT FLUSH).
        outcome.assert_summary(
            tag,
            &[
                ("proto", proto),
                ("acquired", "100"),
                ("released", "100"),
                ("counter", "100"),
                ("violations", "0"),
                ("flushed", "0"),
                ("script_cached", "1"),
                ("first_set", "OK"),
                ("second_refused", "1"),
                ("foreign_release", "0"),
                ("taken_over", "1"),
                ("stale_release", "0"),
                ("kept", "1"),
                ("own_release", "1"),
                // 100, 1100 after the conflicting write, 1090 after the retry.
                ("watch_error", "1"),
                ("watch_committed", "2"),
                ("balance", "1090"),
                ("blpop_waited", "1"),
                ("blpop", "queue/job-1"),
                ("blmove_waited", "1"),
                ("blmove", "job-2"),
                ("target", "job-2"),
                ("blpop_timeout", "null"),
                ("timeout_ok", "1"),
            ],
        );
    }
}
