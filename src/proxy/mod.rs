//! The proxy role (`ringkv proxy --backend HOST:PORT[:WEIGHT] ...`): one Redis-protocol endpoint in front of several
//! backends (ringkv or Redis), placing keys with the same [`crate::ring`] the server uses for its shards.
//!
//! - [`session`]: one client: parse requests, route each by its keys (positions from the shared command table), answer
//!   what the proxy owns itself, split and merge multi-key commands, and write replies back in request order.
//! - [`backend`]: shared pipelined connections per backend (replies matched in order), dedicated connections for
//!   blocking pops and WATCH, time-outs and reconnection.
//! - [`pubsub`]: subscriptions through the proxy (per-client subscriber connections, confirmations with one Redis's
//!   counts, PUBSUB merged over the backends).
//! - [`resp`]: the reply-length scanner and accessors for the replies the proxy merges.
//! - [`passthrough`]: where the keys are in commands only the backends have (bitmaps, HyperLogLog, geo, ...).
//!
//! The routing state ([`Topology`]: ring + backends + epoch) is an immutable snapshot swapped whole when the ring
//! changes (RING ADD/REMOVE/WEIGHT, auto-eject), so a request always sees one consistent ring. Keys are never
//! migrated: after a change, keys on moved arcs stay on their old backend.

pub mod backend;
pub mod passthrough;
pub mod pubsub;
pub mod resp;
pub mod session;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;

use crate::config::{Config, ProxyConfig};
use crate::ring::{node_name, Distribution, Node, Ring};
use crate::server::ServerState;
use backend::Backend;

/// The ring and the backends it places keys on, by the same index.
pub struct Topology {
    /// The routing ring; an ejected backend has weight 0 (no points) but keeps its index.
    pub ring: Ring,
    /// Backends, by ring node index.
    pub backends: Vec<Arc<Backend>>,
    /// Ejected backends, by index: until when.
    pub ejected: Vec<Option<Instant>>,
    /// Increments on every change.
    pub epoch: u64,
}

impl Topology {
    fn build(
        dist: Distribution,
        backends: Vec<Arc<Backend>>,
        ejected: Vec<Option<Instant>>,
        epoch: u64,
    ) -> Topology {
        let nodes = backends
            .iter()
            .zip(&ejected)
            .map(|(b, out)| Node {
                name: node_name(&b.addr, dist),
                weight: if out.is_some() { 0 } else { b.weight },
            })
            .collect();
        Topology {
            ring: Ring::with_distribution(nodes, dist),
            backends,
            ejected,
            epoch,
        }
    }

    /// The backend index that owns `key`, or None when every backend is ejected.
    pub fn locate(&self, key: &[u8]) -> Option<usize> {
        self.ring.try_owner_of(self.ring.position(key))
    }

    /// `up`, `down (...)` or `ejected` for backend `i`.
    pub fn status(&self, i: usize) -> String {
        match self.ejected[i] {
            Some(_) => "ejected".into(),
            None => self.backends[i].health.status(),
        }
    }
}

/// Everything the proxy's clients share.
pub struct ProxyState {
    /// The command line.
    pub config: ProxyConfig,
    /// The placement mode.
    pub dist: Distribution,
    topology: RwLock<Arc<Topology>>,
    /// The current topology's epoch, readable without the lock: sessions keep a topology while it matches.
    epoch: AtomicU64,
    /// A keyless local server that runs the commands the proxy answers itself (PING, COMMAND, CLIENT ...) through the
    /// shared command table, and keeps the client registry behind CLIENT LIST/ID.
    pub local: ServerState,
    /// Process start, for INFO.
    pub started: Instant,
    /// Script bodies seen in EVAL and SCRIPT LOAD, by lower-case SHA1: what repairs a backend's `NOSCRIPT`.
    scripts: Mutex<HashMap<String, Arc<[u8]>>>,
}

impl ProxyState {
    /// State for `config`: backends are connected lazily.
    pub fn new(config: ProxyConfig) -> anyhow::Result<ProxyState> {
        let dist = config.placement().map_err(anyhow::Error::msg)?;
        let mut names = std::collections::HashSet::new();
        for b in &config.backends {
            if config.is_own_addr(&b.addr) {
                anyhow::bail!("backend {} is this proxy's own address", b.addr);
            }
            if !names.insert(node_name(&b.addr, dist)) {
                anyhow::bail!("backend {} is given twice", b.addr);
            }
        }
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let backends: Vec<_> = config
            .backends
            .iter()
            .map(|b| {
                Backend::new(
                    b.addr.clone(),
                    b.weight,
                    config.backend_connections,
                    timeout,
                )
            })
            .collect();
        let ejected = vec![None; backends.len()];
        let local = Config::parse_from(["ringkv", "--shards", "1", "--databases", "1"]);
        Ok(ProxyState {
            topology: RwLock::new(Arc::new(Topology::build(dist, backends, ejected, 0))),
            epoch: AtomicU64::new(0),
            dist,
            config,
            local: ServerState::new(local),
            started: Instant::now(),
            scripts: Mutex::new(HashMap::new()),
        })
    }

    /// The current routing snapshot.
    pub fn topology(&self) -> Arc<Topology> {
        self.topology.read().clone()
    }

    /// The epoch of the current routing snapshot.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Replaces the topology with `change(current)`'s backends and ejection marks, bumping the epoch; returns it.
    pub fn update(
        &self,
        change: impl FnOnce(&Topology) -> (Vec<Arc<Backend>>, Vec<Option<Instant>>),
    ) -> Arc<Topology> {
        let mut guard = self.topology.write();
        let (backends, ejected) = change(&guard);
        let next = Arc::new(Topology::build(
            self.dist,
            backends,
            ejected,
            guard.epoch + 1,
        ));
        *guard = next.clone();
        self.epoch.store(next.epoch, Ordering::Release);
        next
    }

    /// Remembers a script body under its SHA1 (lower-case hex).
    pub fn remember_script(&self, sha: String, body: &[u8]) {
        self.scripts
            .lock()
            .entry(sha)
            .or_insert_with(|| body.into());
    }

    /// The body of a script seen before, by SHA1 in any case.
    pub fn script(&self, sha: &[u8]) -> Option<Arc<[u8]>> {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.scripts.lock().get(&sha).cloned()
    }

    /// Passes on a backend's `reply` to loading script `sha` (EVAL, SCRIPT LOAD), forgetting the body when the reply
    /// says it does not compile: no backend can ever load it.
    pub fn forget_if_uncompiled(&self, sha: &str, reply: Vec<u8>) -> Vec<u8> {
        if reply.starts_with(b"-ERR Error compiling script") {
            self.scripts.lock().remove(sha);
        }
        reply
    }

    /// Forgets every script (SCRIPT FLUSH), so an EVALSHA fails afterwards as it does on Redis.
    pub fn forget_scripts(&self) {
        self.scripts.lock().clear();
        for backend in &self.topology().backends {
            backend.forget_scripts();
        }
    }

    /// A new backend with this proxy's connection settings.
    pub fn new_backend(&self, addr: String, weight: u32) -> Arc<Backend> {
        let timeout = Duration::from_millis(self.config.timeout_ms.max(1));
        Backend::new(addr, weight, self.config.backend_connections, timeout)
    }
}

/// Binds the configured address and serves until the returned future is dropped.
pub async fn run(mut config: ProxyConfig) -> anyhow::Result<()> {
    let listener = TcpListener::bind((config.bind.as_str(), config.port))
        .await
        .context("binding the proxy port")?;
    let local = listener.local_addr()?;
    // The port bound (`--port 0` picks one): INFO reports it, and a backend there would be the proxy itself.
    config.port = local.port();
    backend::set_listening(local);
    let state = Arc::new(ProxyState::new(config)?);
    tracing::info!(
        backends = state.config.backends.len(),
        distribution = state.dist.name(),
        "ringkv proxy listening on {local}"
    );
    if state.config.auto_eject {
        tokio::spawn(eject_failing(state.clone()));
    }
    if state.config.health_check_interval_ms > 0 {
        let every = Duration::from_millis(state.config.health_check_interval_ms);
        tokio::spawn(health_check(state.clone(), every));
    }
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let laddr = stream.local_addr().unwrap_or(local);
        let client = state.local.clients.register(addr, laddr);
        tokio::spawn(session::handle(stream, state.clone(), client));
    }
}

/// The health check: every interval, a PING to each backend on its probe connection (all sent at once, each bounded
/// by the request time-out). Its outcome feeds the same failure counter as client requests do, so an idle backend
/// that died is noticed (and, with auto-eject, ejected) without a client paying for it.
async fn health_check(state: Arc<ProxyState>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let topo = state.topology();
        let checks: Vec<_> = topo.backends.iter().map(|b| b.check()).collect();
        for check in checks {
            check.await;
        }
    }
}

/// twemproxy's auto_eject_hosts: a backend that failed `server_failure_limit` times in a row leaves the ring for
/// `server_retry_timeout` ms. Then, without health checks, it comes back (and leaves again if it keeps failing, as in
/// twemproxy); with health checks, it comes back only once its last contact succeeded, so clients are not sent to a
/// backend known to be down.
async fn eject_failing(state: Arc<ProxyState>) {
    let limit = state.config.server_failure_limit.max(1);
    let retry = Duration::from_millis(state.config.server_retry_timeout);
    let checked = state.config.health_check_interval_ms > 0;
    let failures = |b: &Backend| b.health.failures.load(Ordering::Relaxed);
    // What backend `b`, ejected until `out` (or in the ring), should be now.
    let next = |b: &Backend, out: Option<Instant>, now: Instant| match out {
        Some(until) if now < until || (checked && failures(b) > 0) => Some(until),
        Some(_) => None,
        None if failures(b) >= limit => Some(now + retry),
        None => None,
    };
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let topo = state.topology();
        let now = Instant::now();
        let changed = topo
            .backends
            .iter()
            .zip(&topo.ejected)
            .any(|(b, out)| next(b, *out, now) != *out);
        if !changed {
            continue;
        }
        state.update(|t| {
            let ejected = t
                .backends
                .iter()
                .zip(&t.ejected)
                .map(|(b, out)| {
                    let after = next(b, *out, now);
                    match (out, after) {
                        (Some(_), None) => {
                            // Re-admitted: it gets `limit` fresh failures before it is ejected again.
                            b.health.failures.store(0, Ordering::Relaxed);
                            tracing::info!("backend {} re-admitted to the ring", b.addr);
                        }
                        (None, Some(_)) => {
                            tracing::warn!("backend {} ejected from the ring", b.addr)
                        }
                        _ => {}
                    }
                    after
                })
                .collect();
            (t.backends.clone(), ejected)
        });
    }
}
