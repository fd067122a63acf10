//! Clients: the per-connection state commands see, and the registry behind CLIENT LIST / KILL and INFO clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{oneshot, Notify};

use crate::cmd::CommandSpec;
use crate::protocol::OwnedArgv;
use crate::pubsub::{self, Inbox, Outbox, Subscriptions};
use crate::store::{Waiter, WatchState};
use crate::tracking;

/// What other connections may see or change of a client (CLIENT LIST, CLIENT KILL).
pub struct ClientInfo {
    /// Unique, increasing id (CLIENT ID).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// The socket's file descriptor (-1 for clients without a socket, as Redis shows fake clients).
    pub fd: AtomicI32,
    /// When the connection was accepted.
    pub created: Instant,
    /// CLIENT SETNAME / HELLO SETNAME.
    pub name: Mutex<Vec<u8>>,
    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub lib: Mutex<(String, String)>,
    /// Selected database.
    pub db: AtomicUsize,
    /// Protocol version (2 or 3).
    pub resp: AtomicUsize,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    /// The last command run, as (command, subcommand) names; `None` before the first or after an unknown one.
    last_cmd: Mutex<Option<(&'static str, Option<&'static str>)>>,
    /// The waiter while the client is blocked (CLIENT UNBLOCK, `flags=b`).
    pub waiter: Mutex<Option<Arc<Waiter>>>,
    /// Channel subscriptions (CLIENT LIST `sub=`).
    pub sub: AtomicU32,
    /// Pattern subscriptions (CLIENT LIST `psub=`).
    pub psub: AtomicU32,
    /// Shard channel subscriptions (CLIENT LIST `ssub=`).
    pub ssub: AtomicU32,
    /// Client-side caching flags others see (CLIENT LIST `t`, `R`, `B`; see [`tracking::LIST_FLAGS`]).
    pub tracking: AtomicU8,
    /// Commands queued in MULTI, -1 outside it (CLIENT LIST `multi=` and flag `x`).
    pub multi: AtomicI64,
    /// CLIENT NO-EVICT ON (flag `e`; ringkv never evicts).
    pub no_evict: AtomicBool,
    /// CLIENT NO-TOUCH ON (flag `T`; ringkv keeps no LRU clock for it to spare).
    pub no_touch: AtomicBool,
    /// The WATCH in force, if any (flag `d` once a watched key was written).
    pub watch: Mutex<Option<Arc<WatchState>>>,
    /// Where Pub/Sub messages and invalidations for this connection are queued.
    pub outbox: Outbox,
    killed: AtomicBool,
    kill: Notify,
}

impl ClientInfo {
    /// Asks the connection to close (CLIENT KILL).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_one();
    }
    /// Whether the client has a channel, pattern or shard channel subscription (Redis's CLIENT_PUBSUB).
    pub fn is_subscribed(&self) -> bool {
        [&self.sub, &self.psub, &self.ssub]
            .iter()
            .any(|n| n.load(Ordering::Relaxed) > 0)
    }
    /// Whether the client has been killed.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }
    /// Resolves when the client has been killed.
    pub async fn killed(&self) {
        if !self.is_killed() {
            self.kill.notified().await;
        }
    }
    /// Records activity now (for `idle=` in CLIENT LIST).
    pub fn touch(&self) {
        self.last_active_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Ordering::Relaxed))
            / 1000
    }
    /// Records the command being run (CLIENT LIST `cmd=`). Names are static, so this never allocates.
    pub fn set_last_cmd(&self, cmd: Option<(&'static str, Option<&'static str>)>) {
        *self.last_cmd.lock() = cmd;
    }
    /// The last command's full name as CLIENT LIST shows it: `get`, `client|list`, or `NULL`.
    pub fn last_cmd(&self) -> String {
        match *self.last_cmd.lock() {
            None => "NULL".into(),
            Some((name, None)) => name.into(),
            Some((name, Some(sub))) => format!("{name}|{sub}"),
        }
    }
    /// The client's name, lossily as text.
    pub fn name_string(&self) -> String {
        String::from_utf8_lossy(&self.name.lock()).into_owned()
    }
}

/// The calling connection's own state, owned by its task and lent to each command.
pub struct Client {
    /// The client's shared record.
    pub info: Arc<ClientInfo>,
    /// Selected database (mirrored in `info.db`).
    pub db: usize,
    /// Set by a blocking command that found no data; the connection then waits on it.
    pub blocked: Option<Blocked>,
    /// The open transaction, between MULTI and EXEC/DISCARD.
    pub multi: Option<Transaction>,
    /// True while EXEC runs the queue: blocking commands then answer at once, as in Redis.
    pub in_exec: bool,
    /// True while a script runs (Redis's CLIENT_SCRIPT; `in_exec` is set too): XREAD and XREADGROUP refuse BLOCK.
    pub in_script: bool,
    /// Commands EXEC just ran, for the dispatcher's after-write work (WATCH spoiling, waking waiters).
    pub executed: Option<Vec<(&'static CommandSpec, OwnedArgv)>>,
    /// Keys watched since WATCH.
    pub watch: Option<Watch>,
    /// Set when the watch must be dropped once the command's locks are released.
    pub unwatch_pending: bool,
    /// Channel, pattern and shard channel subscriptions; `Some` exactly while there is at least one (subscriber mode).
    pub pubsub: Option<Box<Subscriptions>>,
    /// CLIENT REPLY: whether command replies are sent.
    pub reply_mode: ReplyMode,
    /// Messages queued for this connection (Pub/Sub, invalidations), written between replies.
    pub inbox: Inbox,
    /// CLIENT TRACKING: the mode while tracking is on.
    pub tracking: Option<tracking::Mode>,
    /// CLIENT CACHING yes|no was given for the next command (or transaction).
    pub caching: bool,
    /// Keys the commands of the running transaction or script modified, whose default-mode invalidations went out
    /// command by command: BCAST clients hear of them when it ends (see [`tracking::Tracking::settle_modified`]).
    pub settled: Vec<Box<[u8]>>,
}

/// CLIENT REPLY modes. Only command replies are dropped; Pub/Sub messages still flow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    /// Replies are sent (the default).
    On,
    /// No reply is sent until CLIENT REPLY ON.
    Off,
    /// The reply to the next command is dropped, then replies resume.
    SkipNext,
    /// This command's reply is the one dropped, unless the command turns replies on (CLIENT REPLY ON, RESET).
    Skipping,
}

impl Client {
    /// Starts MULTI.
    pub fn begin_multi(&mut self) {
        self.multi = Some(Transaction::default());
        self.info.multi.store(0, Ordering::Relaxed);
    }
    /// Queues a command in MULTI.
    pub fn queue(&mut self, spec: &'static CommandSpec, argv: OwnedArgv) {
        if let Some(tx) = &mut self.multi {
            tx.queue.push((spec, argv));
            self.info
                .multi
                .store(tx.queue.len() as i64, Ordering::Relaxed);
        }
    }
    /// Ends MULTI (EXEC, DISCARD, RESET, an aborted EXEC) and hands over the transaction, if there was one.
    pub fn end_multi(&mut self) -> Option<Transaction> {
        self.info.multi.store(-1, Ordering::Relaxed);
        self.multi.take()
    }
    /// Called before each command: true when this command's reply is the one CLIENT REPLY SKIP drops.
    pub fn take_skip(&mut self) -> bool {
        let skip = self.reply_mode == ReplyMode::SkipNext;
        if skip {
            self.reply_mode = ReplyMode::Skipping;
        }
        skip
    }
    /// Undoes [`Self::take_skip`] for a command that did not run after all.
    pub fn untake_skip(&mut self, skip: bool) {
        if skip && self.reply_mode == ReplyMode::Skipping {
            self.reply_mode = ReplyMode::SkipNext;
        }
    }
    /// After a command: true when its reply is not sent: it was the skipped one, or the mode is not ON after it ran
    /// (which also silences CLIENT REPLY OFF|SKIP themselves, as in Redis). A skipped CLIENT REPLY ON is answered.
    pub fn reply_suppressed(&mut self) -> bool {
        match self.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Skipping => {
                self.reply_mode = ReplyMode::On;
                true
            }
            ReplyMode::Off | ReplyMode::SkipNext => true,
        }
    }
}

/// Commands queued between MULTI and EXEC.
#[derive(Default)]
pub struct Transaction {
    /// The queue, with each command's spec resolved when it was queued.
    pub queue: Vec<(&'static CommandSpec, OwnedArgv)>,
    /// Set when a queued command was rejected: EXEC then fails with EXECABORT.
    pub aborted: bool,
}

/// A client's WATCH: the shared flag writers spoil, and the keys it is registered on.
pub struct Watch {
    /// Spoiled by any write to a watched key.
    pub state: Arc<WatchState>,
    /// (database, key, deadline when watched): a key whose deadline passes spoils the watch too.
    pub keys: Vec<(usize, Vec<u8>, Option<u64>)>,
}

/// A blocked command in progress: its queued waiter, where its reply will arrive, and when it times out.
pub struct Blocked {
    /// The waiter queued on the command's keys.
    pub waiter: Arc<Waiter>,
    /// Receives the encoded reply from whoever serves the waiter.
    pub reply: oneshot::Receiver<Vec<u8>>,
    /// When to give up; `None` waits forever.
    pub deadline: Option<tokio::time::Instant>,
}

impl Client {
    /// The client's id.
    pub fn id(&self) -> u64 {
        self.info.id
    }
    /// Whether messages may be queued for this connection while it is idle: it subscribes, speaks RESP3 (pushes: its
    /// own invalidations, or another client's redirected to it), or some are queued already. Otherwise its connection
    /// need not watch its queue.
    pub fn may_receive(&self) -> bool {
        self.info.resp.load(Ordering::Relaxed) == 3
            || self.info.is_subscribed()
            || self.inbox.has_pending()
    }
    /// Selects database `db`.
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.info.db.store(db, Ordering::Relaxed);
    }
}

/// All connected clients, by id.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    next_id: AtomicU64,
}

impl ClientRegistry {
    /// Registers a new connection and returns its state.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Client {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (outbox, inbox) = pubsub::mailbox();
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            fd: AtomicI32::new(-1),
            created: Instant::now(),
            name: Mutex::new(Vec::new()),
            lib: Mutex::new((String::new(), String::new())),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            last_active_ms: AtomicU64::new(0),
            last_cmd: Mutex::new(None),
            waiter: Mutex::new(None),
            sub: AtomicU32::new(0),
            psub: AtomicU32::new(0),
            ssub: AtomicU32::new(0),
            tracking: AtomicU8::new(0),
            multi: AtomicI64::new(-1),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            watch: Mutex::new(None),
            outbox,
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        });
        self.clients.lock().insert(id, info.clone());
        Client {
            info,
            db: 0,
            blocked: None,
            multi: None,
            in_exec: false,
            in_script: false,
            executed: None,
            watch: None,
            unwatch_pending: false,
            pubsub: None,
            reply_mode: ReplyMode::On,
            inbox,
            tracking: None,
            caching: false,
            settled: Vec::new(),
        }
    }
    /// Removes a closed connection.
    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }
    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }
    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of clients blocked on keys (INFO blocked_clients).
    pub fn blocked_count(&self) -> usize {
        self.clients
            .lock()
            .values()
            .filter(|c| c.waiter.lock().is_some())
            .count()
    }
    /// A snapshot of every client, by ascending id.
    pub fn snapshot(&self) -> Vec<Arc<ClientInfo>> {
        self.clients.lock().values().cloned().collect()
    }
    /// The client with this id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.lock().get(&id).cloned()
    }
}
