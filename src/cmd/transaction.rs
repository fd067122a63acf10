//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Between MULTI and EXEC the dispatcher queues commands (after checking they exist and their arity; a rejected one
//! makes EXEC fail with EXECABORT). EXEC is atomic across shards: the dispatcher locks the shards of every queued
//! command's keys at once, in ascending order, before EXEC runs the queue, so no other client sees a partial
//! transaction. Runtime errors inside EXEC are replied per command, without rollback, as in Redis. Blocked clients
//! woken by the transaction's pushes are served after the whole transaction.

use std::sync::Arc;

use super::{flag::*, CmdError, CmdResult, CommandSpec, Ctx, Keys};
use crate::client::Client;
use crate::client::Watch;
use crate::protocol::Argv;
use crate::server::ServerState;
use crate::store::WatchState;

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        Keys::None,
        multi,
    ),
    CommandSpec::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | TRANSACTION,
        Keys::None,
        exec,
    ),
    CommandSpec::new(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        Keys::None,
        discard,
    ),
    CommandSpec::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        Keys::ALL,
        watch,
    ),
    CommandSpec::new(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        Keys::None,
        unwatch,
    ),
];

/// Commands that run at once inside MULTI instead of being queued.
pub(super) fn runs_inside_multi(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.client.begin_multi();
    ctx.out.ok();
    Ok(())
}

fn exec(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let Some(tx) = ctx.client.end_multi() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    let spoiled = watch_spoiled(ctx.client, ctx.now);
    ctx.client.unwatch_pending = true;
    if tx.aborted {
        return Err(CmdError::Coded(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    if spoiled {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(tx.queue.len());
    ctx.client.in_exec = true;
    for (spec, argv) in &tx.queue {
        if let Err(e) = super::run_handler(ctx, spec, argv.argv()) {
            ctx.out.error(&e.to_string());
        }
        if ctx.events & crate::notify::TRACKING != 0 {
            super::track_step(ctx, spec, argv.argv());
        }
    }
    ctx.client.in_exec = false;
    // Extend, not replace: a script inside the transaction has recorded the writes it ran.
    ctx.client
        .executed
        .get_or_insert_with(Vec::new)
        .extend(tx.queue);
    Ok(())
}

/// True when a watched key was written, or its deadline passed, since WATCH.
fn watch_spoiled(client: &crate::client::Client, now: u64) -> bool {
    client.watch.as_ref().is_some_and(|w| {
        w.state.is_spoiled()
            || w.keys
                .iter()
                .any(|(_, _, deadline)| deadline.is_some_and(|d| d <= now))
    })
}

fn discard(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    if ctx.client.end_multi().is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    ctx.client.unwatch_pending = true;
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let state = match &ctx.client.watch {
        Some(w) => w.state.clone(),
        None => {
            let state = Arc::new(WatchState::default());
            *ctx.client.info.watch.lock() = Some(state.clone());
            state
        }
    };
    let db = ctx.client.db;
    let mut keys = Vec::new();
    for key in argv.iter_from(1) {
        let idx = ctx.server.store.shard_of(key);
        if ctx.shards.shard(idx).watched.add(db, key, &state) {
            let now = ctx.now;
            let deadline = ctx.db(key).find(key, now).and_then(|e| e.expires_at());
            keys.push((db, key.to_vec(), deadline));
        }
    }
    match &mut ctx.client.watch {
        Some(w) => w.keys.extend(keys),
        None => ctx.client.watch = Some(Watch { state, keys }),
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.client.unwatch_pending = true;
    ctx.out.ok();
    Ok(())
}

/// Drops the client's watch: removes its registrations, locking the shards of its watched keys. Called with no
/// shard held (after a command, or when the connection closes).
pub fn unwatch_all(server: &ServerState, client: &mut Client) {
    client.unwatch_pending = false;
    let Some(watch) = client.watch.take() else {
        return;
    };
    *client.info.watch.lock() = None;
    let store = &server.store;
    let mut idx: Vec<usize> = watch
        .keys
        .iter()
        .map(|(_, k, _)| store.shard_of(k))
        .collect();
    idx.sort_unstable();
    idx.dedup();
    let mut shards = store.lock(&idx);
    for (db, key, _) in &watch.keys {
        shards
            .shard(store.shard_of(key))
            .watched
            .remove(*db, key, &watch.state);
    }
    store.unlock(shards);
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;

    #[test]
    fn exec_runs_the_queue_in_order_with_runtime_errors_inline() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("MULTI"), "+OK\r\n");
        assert_eq!(c.cmd("SET a x"), "+QUEUED\r\n");
        assert_eq!(c.cmd("INCR a"), "+QUEUED\r\n");
        assert_eq!(c.cmd("GET a"), "+QUEUED\r\n");
        assert_eq!(
            c.cmd("EXEC"),
            "*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nx\r\n"
        );
    }

    #[test]
    fn a_rejected_command_aborts_exec_but_nested_multi_and_watch_do_not() {
        let mut c = TestClient::new();
        c.cmd("MULTI");
        assert_eq!(c.cmd("MULTI"), "-ERR MULTI calls can not be nested\r\n");
        assert_eq!(
            c.cmd("WATCH x"),
            "-ERR WATCH inside MULTI is not allowed\r\n"
        );
        assert_eq!(c.cmd("SET a 1"), "+QUEUED\r\n");
        assert_eq!(c.cmd("EXEC"), "*1\r\n+OK\r\n");
        c.cmd("MULTI");
        assert!(c.cmd("FOO").starts_with("-ERR unknown command 'FOO'"));
        assert_eq!(
            c.cmd("SET a"),
            "-ERR wrong number of arguments for 'set' command\r\n"
        );
        assert_eq!(
            c.cmd("EXEC"),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert_eq!(c.cmd("EXEC"), "-ERR EXEC without MULTI\r\n");
        assert_eq!(c.cmd("DISCARD"), "-ERR DISCARD without MULTI\r\n");
        assert_eq!(c.cmd("GET a"), "$1\r\n1\r\n");
    }

    #[test]
    fn discard_drops_the_queue() {
        let mut c = TestClient::new();
        c.cmd("MULTI");
        c.cmd("SET a 1");
        assert_eq!(c.cmd("DISCARD"), "+OK\r\n");
        assert_eq!(c.cmd("EXISTS a"), ":0\r\n");
    }

    #[test]
    fn exec_with_arguments_discards_the_transaction() {
        let abort = "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n";
        let mut c = TestClient::new();
        c.cmd("MULTI");
        c.cmd("SET a 1");
        assert_eq!(c.cmd("EXEC x"), abort);
        assert_eq!(c.cmd("EXEC"), "-ERR EXEC without MULTI\r\n");
        assert_eq!(c.cmd("EXISTS a"), ":0\r\n");
        // Outside MULTI too, as Redis's execCommandAbort.
        assert_eq!(c.cmd("EXEC x"), abort);
    }

    #[test]
    fn a_write_by_another_client_spoils_a_watch() {
        let mut c = TestClient::new();
        let mut other = TestClient::on(c.server.clone());
        assert_eq!(c.cmd("WATCH k"), "+OK\r\n");
        other.cmd("SET k changed");
        c.cmd("MULTI");
        c.cmd("SET k mine");
        assert_eq!(c.cmd("EXEC"), "*-1\r\n");
        assert_eq!(c.cmd("GET k"), "$7\r\nchanged\r\n");
        // The watch ended with EXEC: the next transaction runs.
        other.cmd("SET k again");
        c.cmd("MULTI");
        c.cmd("SET k mine");
        assert_eq!(c.cmd("EXEC"), "*1\r\n+OK\r\n");
    }

    #[test]
    fn an_untouched_watch_and_unwatch_let_exec_run() {
        let mut c = TestClient::new();
        let mut other = TestClient::on(c.server.clone());
        c.cmd("WATCH k");
        other.cmd("SET unrelated 1");
        c.cmd("MULTI");
        c.cmd("INCR k");
        assert_eq!(c.cmd("EXEC"), "*1\r\n:1\r\n");
        c.cmd("WATCH k");
        assert_eq!(c.cmd("UNWATCH"), "+OK\r\n");
        other.cmd("SET k 5");
        c.cmd("MULTI");
        c.cmd("INCR k");
        assert_eq!(c.cmd("EXEC"), "*1\r\n:6\r\n");
    }

    #[test]
    fn commands_that_change_nothing_do_not_spoil_a_watch() {
        let mut c = TestClient::new();
        let mut other = TestClient::on(c.server.clone());
        c.cmd("SET lock mine");
        c.cmd("WATCH lock");
        assert_eq!(other.cmd("SET lock theirs NX PX 1000"), "$-1\r\n");
        assert_eq!(other.cmd("SETNX lock theirs"), ":0\r\n");
        assert_eq!(other.cmd("GET lock"), "$4\r\nmine\r\n");
        c.cmd("MULTI");
        c.cmd("DEL lock");
        assert_eq!(c.cmd("EXEC"), "*1\r\n:1\r\n");
    }

    #[test]
    fn flushall_spoils_every_watch() {
        let mut c = TestClient::new();
        let mut other = TestClient::on(c.server.clone());
        c.cmd("SET k 1");
        c.cmd("WATCH k");
        other.cmd("FLUSHALL");
        c.cmd("MULTI");
        c.cmd("GET k");
        assert_eq!(c.cmd("EXEC"), "*-1\r\n");
    }

    #[test]
    fn blocking_commands_inside_exec_answer_at_once() {
        let mut c = TestClient::new();
        c.cmd("MULTI");
        c.cmd("BLPOP k 0");
        c.cmd("BLMOVE k d LEFT LEFT 0");
        c.cmd("BLMPOP 0 1 k LEFT");
        assert_eq!(c.cmd("EXEC"), "*3\r\n*-1\r\n$-1\r\n*-1\r\n");
    }
}
