//! The server role: shared state, the accept loop with its client limit, background expiry, and graceful shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::client::ClientRegistry;
use crate::config::{Config, Settings};
use crate::connection;
use crate::notify;
use crate::pubsub::PubSub;
use crate::script::Scripts;
use crate::store::{now_ms, Locked, Store};
use crate::tracking::Tracking;

/// Server-wide counters for INFO stats.
#[derive(Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Connections refused by maxclients.
    pub rejected_connections: AtomicU64,
    /// Commands run.
    pub commands_processed: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
}

/// Everything the connections share.
pub struct ServerState {
    /// The startup configuration.
    pub config: Config,
    /// Settings CONFIG SET may change.
    pub settings: Settings,
    /// The keyspace.
    pub store: Store,
    /// Connected clients.
    pub clients: ClientRegistry,
    /// The Lua script cache and the scripts running now.
    pub scripts: Scripts,
    /// Channel and pattern subscriptions.
    pub pubsub: PubSub,
    /// Client-side caching: who may cache which keys.
    pub tracking: Tracking,
    /// Counters.
    pub stats: Stats,
    /// Process start, for uptime.
    pub started: Instant,
    /// Resident memory when the state was made (MEMORY STATS's `startup.allocated`).
    pub startup_rss: u64,
    /// Random 40-hex-digit id of this run (INFO run_id).
    pub run_id: String,
    /// The actual listening port (differs from the configured one when that was 0).
    pub port: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl ServerState {
    /// State for `config`.
    pub fn new(config: Config) -> Self {
        let settings = Settings::new(&config);
        let store = Store::with_events(
            config.shard_count(),
            config.databases.max(1),
            settings.keyspace_events.clone(),
        );
        let tracking = Tracking::new(settings.keyspace_events.clone());
        ServerState {
            settings,
            store,
            clients: ClientRegistry::default(),
            scripts: Scripts::default(),
            pubsub: PubSub::default(),
            tracking,
            stats: Stats::default(),
            started: Instant::now(),
            startup_rss: crate::cmd::rss_bytes(),
            run_id: (0..40).map(|_| fastrand::digit(16)).collect(),
            port: AtomicU64::new(config.port as u64),
            config,
            shutdown: watch::channel(false).0,
        }
    }

    /// Asks the server to stop (SHUTDOWN).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether shutdown has been requested.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
    /// Resolves once shutdown has been requested.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Binds the configured address and serves until SHUTDOWN or the returned future is dropped.
pub async fn run(config: Config) -> std::io::Result<()> {
    let listener = TcpListener::bind((config.bind.as_str(), config.port)).await?;
    serve(listener, Arc::new(ServerState::new(config))).await
}

/// Serves clients from `listener` until shutdown is requested.
pub async fn serve(listener: TcpListener, state: Arc<ServerState>) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    state.port.store(local.port() as u64, Ordering::Relaxed);
    tracing::info!(
        shards = state.store.shard_count(),
        "ringkv listening on {local}"
    );
    tokio::spawn(expire_keys(state.clone()));
    loop {
        let (mut stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: log, back off briefly, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = state.shutdown_requested() => break,
        };
        state
            .stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        if state.clients.len() as u64 >= state.settings.maxclients() {
            state
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        let _ = stream.set_nodelay(true);
        let laddr = stream.local_addr().unwrap_or(local);
        let client = state.clients.register(addr, laddr);
        client
            .info
            .fd
            .store(std::os::fd::AsRawFd::as_raw_fd(&stream), Ordering::Relaxed);
        tokio::spawn(connection::handle(stream, state.clone(), client));
    }
    tracing::info!("shutting down");
    Ok(())
}

/// Active expiry: reclaims keys whose deadline passed even if nobody reads them. Each round visits every shard,
/// deletes a bounded number of keys per database under the lock, and repeats at once while it keeps finding work.
/// Shards held by a command at that moment are skipped until the next round.
async fn expire_keys(state: Arc<ServerState>) {
    const PER_STEP: usize = 200;
    loop {
        let mut busy = false;
        for idx in 0..state.store.shard_count() {
            let now = now_ms();
            // A held shard is left for the next round: waiting could park this worker for as long as a script
            // runs, and with it every connection it serves.
            let Some(mut shard) = state.store.try_lock_shard(idx) else {
                continue;
            };
            let events = notify::load(&state.settings.keyspace_events);
            for (n, db) in shard.dbs.iter_mut().enumerate() {
                busy |= db.expire_step(now, PER_STEP) == PER_STEP;
                // Published with the shard still held, so a reader never sees the key gone before the event.
                notify::publish_raised(&state.pubsub, events, db, n);
            }
            if events & notify::TRACKING != 0 {
                let keyspaces = shard.dbs.iter_mut();
                state
                    .tracking
                    .invalidate_modified(&state.clients, keyspaces, 0, Vec::new());
            }
            state.store.unlock(Locked::One(idx, shard));
        }
        let pause = if busy {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(100)
        };
        tokio::time::sleep(pause).await;
    }
}
