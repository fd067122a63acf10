//! `ringkv`: parse the command line, set up logging, run the server (or, with `ringkv proxy`, the cluster proxy) until
//! SHUTDOWN, Ctrl-C or SIGTERM.

use std::future::Future;

use anyhow::Context;
use clap::Parser;
use ringkv::config::{log_filter, Cli, Role};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: values are allocated on one worker thread and often freed on another (a key
/// overwritten from another connection), which glibc serves by locking the owning arena.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The causes on one line, without a backtrace: this is for an operator, not a developer.
            eprintln!("ringkv: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.role {
        None => {
            let config = cli.server;
            let what = format!("serving on {}:{}", config.bind, config.port);
            // Always the multi-thread scheduler, even with one worker: a long script hands its worker's other clients
            // to a new thread (tokio's block_in_place), which the current-thread scheduler cannot do. Its workers end
            // each round by writing the replies that waited for it.
            let mut runtime = multi_thread(config.threads);
            ringkv::round::install(&mut runtime);
            run(&config.loglevel.clone(), runtime, what, async move {
                ringkv::server::run(config).await.map_err(Into::into)
            })
        }
        Some(Role::Proxy(config)) => {
            let cli: Vec<String> = std::env::args_os()
                .skip(2)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let config = config.with_file(&cli).map_err(anyhow::Error::msg)?;
            let what = format!("proxying on {}:{}", config.bind, config.port);
            // One thread: tokio's current-thread scheduler, an event loop that polls the sockets once every ready
            // task has run (no work stealing or cross-thread wake-ups).
            let runtime = match config.threads {
                1 => tokio::runtime::Builder::new_current_thread(),
                n => multi_thread(n),
            };
            run(&config.loglevel.clone(), runtime, what, async move {
                ringkv::proxy::run(config).await
            })
        }
    }
}

/// tokio's multi-thread scheduler with `threads` workers (0: one per core), without its LIFO slot: the slot runs
/// the task woken last first, so of the connections one poll of the sockets finds ready, the last would run first.
/// Redis serves them in the order the kernel reports them, and so do we: of two clients racing for a lock on several
/// servers (Redlock), the one whose request arrived first wins on each. The switch is in tokio's unstable API,
/// enabled by `.cargo/config.toml` (a RUSTFLAGS setting replaces it: tests/strings.rs then fails on the order).
fn multi_thread(threads: usize) -> tokio::runtime::Builder {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    #[cfg(tokio_unstable)]
    runtime.disable_lifo_slot();
    if threads > 0 {
        runtime.worker_threads(threads);
    }
    runtime
}

/// Sets up logging and the runtime, then runs `role` until it ends or Ctrl-C.
fn run(
    loglevel: &str,
    mut runtime: tokio::runtime::Builder,
    what: String,
    role: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log_filter(loglevel)));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .init();

    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.spawn(collect_freed_memory());
    let result = runtime.block_on(async {
        tokio::select! {
            done = role => done.context(what),
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("received Ctrl-C, shutting down");
                Ok(())
            }
            _ = terminated() => {
                tracing::info!("received SIGTERM, shutting down");
                Ok(())
            }
        }
    });
    // A script still running holds its thread, and dropping the runtime would wait for it for ever: SHUTDOWN NOSAVE
    // must end the process even then (it is the way out of a script that wrote), as in Redis.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

/// Completes on SIGTERM (what a supervisor sends), so the process ends as on SHUTDOWN, with status 0.
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Asks mimalloc once a second to give the memory freed since back to the system. It does so only when asked (or when
/// it next maps fresh pages): the 300 MB a 100 MB SET passed through stayed resident in a proxy for good, through
/// later traffic, until this ran. Redis's jemalloc likewise purges in the background. Spawned on the runtime, so it
/// runs on the worker, whose heap frees most.
async fn collect_freed_memory() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        every.tick().await;
        // SAFETY: mi_collect has no preconditions; any thread may call it at any time.
        unsafe { libmimalloc_sys::mi_collect(false) };
    }
}
