//! The end of a worker's round: connections wait here to write their replies after every ready client has run, as
//! Redis writes its replies just before it sleeps.
//!
//! A connection that has replies calls [`end`]; the worker wakes every such connection when it has no other task
//! left, just before it would poll the sockets again (the runtime's `on_thread_park` hook, set by [`install`]). The
//! woken tasks reach tokio's shared queue, which the worker checks before it sleeps, so it runs them instead. A
//! round's replies then reach a client process with many connections (a pool, a benchmark) together, so it is woken
//! once for them, and the server's next poll finds more requests ready. Unlike `yield_now`, which tokio defers until
//! after the next poll of the sockets, the replies go out before new requests are read.
//!
//! Usually the round ends earlier, at the same point: a connection that calls [`end`] while the worker has no other
//! task queued is the round's last, and wakes the others itself. Woken from a task they go on the worker's own queue;
//! woken from the park hook they take the shared queue, and the worker parks and unparks at once, timing each of the
//! two batches of tasks (tokio reads the clock four times per batch): with a few clients per round, tokio's clock
//! reads were 10-15 % of the server's user time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

/// Connections waiting for the end of the round.
static WAITING: Mutex<Vec<Waker>> = Mutex::new(Vec::new());
/// Whether a runtime ends its rounds by waking [`WAITING`]; without one, nothing may wait there.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Makes the runtime's workers end each round by waking the connections waiting for it.
pub fn install(runtime: &mut tokio::runtime::Builder) {
    runtime.on_thread_park(wake_waiting);
    INSTALLED.store(true, Ordering::Relaxed);
}

/// Whether [`end`] may be used: some runtime was built with [`install`].
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Completes once the worker has run every other ready task.
pub fn end() -> impl Future<Output = ()> {
    EndOfRound { waiting: false }
}

/// Wakes the connections waiting for the end of the round (called by a worker before it parks).
fn wake_waiting() {
    let mut woken = {
        let mut waiting = WAITING.lock();
        if waiting.is_empty() {
            return;
        }
        std::mem::take(&mut *waiting)
    };
    // Woken outside the lock: a woken task may already be waiting again on another worker.
    woken.drain(..).for_each(Waker::wake);
    // The list goes back for the next round, so a round's waits do not grow a new one.
    let mut waiting = WAITING.lock();
    if waiting.is_empty() {
        *waiting = woken;
    }
}

struct EndOfRound {
    waiting: bool,
}

impl Future for EndOfRound {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiting {
            return Poll::Ready(());
        }
        if last_ready_task() {
            wake_waiting();
            return Poll::Ready(());
        }
        self.waiting = true;
        WAITING.lock().push(cx.waker().clone());
        Poll::Pending
    }
}

/// Whether the calling task is the only worker's last ready one: nothing queued on the worker or in the shared queue.
#[cfg(tokio_unstable)]
fn last_ready_task() -> bool {
    thread_local! {
        /// The worker's runtime metrics, taken once: taking them clones the runtime's handle.
        static METRICS: Option<tokio::runtime::RuntimeMetrics> =
            tokio::runtime::Handle::try_current().ok().map(|h| h.metrics());
    }
    METRICS.with(|metrics| {
        metrics.as_ref().is_some_and(|m| {
            m.num_workers() == 1
                && m.worker_local_queue_depth(0) == 0
                && m.global_queue_depth() == 0
        })
    })
}

/// Without tokio's unstable API (see `.cargo/config.toml`) the queue depth is unknown: the park hook ends every round.
#[cfg(not(tokio_unstable))]
fn last_ready_task() -> bool {
    false
}
