//! Connection commands: PING, ECHO, QUIT, SELECT, HELLO, RESET, AUTH and the CLIENT family.
//!
//! CLIENT LIST / INFO / KILL read other connections through the [`crate::client::ClientRegistry`]; killing another
//! client only flags it (its own task closes the socket), while killing oneself closes after the reply, as in Redis.

use std::sync::atomic::Ordering;

use super::args::{self, is};
use super::{blocking, flag::*, reply_help, CmdError, CmdResult, CommandSpec, Ctx, Flow, Keys};
use crate::client::{ClientInfo, ReplyMode};
use crate::protocol::Argv;
use crate::tracking::{self, Mode};

/// The Redis version we are compatible with, reported by HELLO and INFO.
pub const REDIS_VERSION: &str = "7.2.4";

pub(super) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, FAST, Keys::None, ping),
    CommandSpec::new("echo", 2, FAST, Keys::None, echo),
    CommandSpec::new(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        Keys::None,
        quit,
    ),
    CommandSpec::new("select", 2, LOADING | STALE | FAST, Keys::None, select),
    CommandSpec::new(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        Keys::None,
        hello,
    ),
    CommandSpec::new(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        Keys::None,
        reset,
    ),
    CommandSpec::new(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        Keys::None,
        auth,
    ),
    CommandSpec::container("client", 0, CLIENT_SUBCOMMANDS),
];

const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("id", 2, NOSCRIPT | LOADING | STALE, Keys::None, client_id),
    CommandSpec::new(
        "setname",
        3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_setname,
    ),
    CommandSpec::new(
        "getname",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_getname,
    ),
    CommandSpec::new(
        "list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_list,
    ),
    CommandSpec::new(
        "info",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_info,
    ),
    CommandSpec::new(
        "setinfo",
        4,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_setinfo,
    ),
    CommandSpec::new(
        "kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_kill,
    ),
    CommandSpec::new(
        "no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_on_off,
    ),
    CommandSpec::new(
        "no-touch",
        3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_on_off,
    ),
    CommandSpec::new(
        "reply",
        3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_reply,
    ),
    CommandSpec::new(
        "unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_unblock,
    ),
    CommandSpec::new(
        "tracking",
        -3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_tracking,
    ),
    CommandSpec::new(
        "caching",
        3,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_caching,
    ),
    CommandSpec::new(
        "getredir",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_getredir,
    ),
    CommandSpec::new(
        "trackinginfo",
        2,
        NOSCRIPT | LOADING | STALE,
        Keys::None,
        client_trackinginfo,
    ),
    CommandSpec::new("help", 2, LOADING | STALE, Keys::None, client_help),
];

fn ping(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    // A RESP2 subscriber cannot take a plain reply between its messages: Redis answers with a `pong` message.
    if ctx.client.pubsub.is_some() && !ctx.out.resp3() && argv.len() <= 2 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out
            .bulk(if argv.len() == 2 { argv.get(1) } else { b"" });
        return Ok(());
    }
    match argv.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(argv.get(1)),
        _ => return Err(CmdError::WrongArity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    ctx.out.bulk(argv.get(1));
    Ok(())
}

fn quit(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.ok();
    ctx.flow = Flow::Close;
    Ok(())
}

fn select(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    // Redis reads the index with getIntFromObjectOrReply: an integer first, then one that fits an int.
    let db = args::int(argv.get(1))?;
    if i32::try_from(db).is_err() {
        return Err(CmdError::err(format!(
            "value is out of range, value must between {} and {}",
            i32::MIN,
            i32::MAX
        )));
    }
    if db < 0 || db as usize >= ctx.server.config.databases {
        return Err(CmdError::DbIndex);
    }
    ctx.client.select(db as usize);
    ctx.out.ok();
    Ok(())
}

/// True when `name` is acceptable to CLIENT SETNAME / HELLO SETNAME / CLIENT SETINFO: printable ASCII without spaces.
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

const BAD_NAME: &str = "Client names cannot contain spaces, newlines or special characters.";

fn hello(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mut resp = ctx.client.info.resp.load(Ordering::Relaxed);
    let mut next = 1;
    if argv.len() > 1 {
        let ver = args::parse_i64(argv.get(1))
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&ver) {
            return Err(CmdError::Coded(
                "NOPROTO unsupported protocol version".into(),
            ));
        }
        resp = ver as usize;
        next = 2;
    }
    let mut name = None;
    while next < argv.len() {
        let opt = argv.get(next);
        let more = argv.len() - next - 1;
        if is(opt, "AUTH") && more >= 2 {
            if !is(argv.get(next + 1), "default") {
                return Err(CmdError::Coded(
                    "WRONGPASS invalid username-password pair or user is disabled.".into(),
                ));
            }
            next += 3;
        } else if is(opt, "SETNAME") && more >= 1 {
            let n = argv.get(next + 1);
            if !valid_client_name(n) {
                return Err(CmdError::err(BAD_NAME));
            }
            name = Some(n);
            next += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args::c_str(opt))
            )));
        }
    }
    if let Some(n) = name {
        *ctx.client.info.name.lock() = n.to_vec();
    }
    ctx.client.info.resp.store(resp, Ordering::Relaxed);
    ctx.out.set_resp3(resp == 3);
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(resp as i64);
    out.bulk(b"id");
    out.int(ctx.client.id() as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// RESET: back to a fresh connection's state (no transaction or WATCH, database 0, RESP2, no name), replying
/// `+RESET`.
fn reset(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.client.end_multi();
    ctx.client.info.no_evict.store(false, Ordering::Relaxed);
    ctx.client.info.no_touch.store(false, Ordering::Relaxed);
    ctx.client.unwatch_pending = true;
    super::unsubscribe_all(ctx.server, ctx.client);
    ctx.server.tracking.disable(ctx.client);
    ctx.client.select(0);
    ctx.client.info.resp.store(2, Ordering::Relaxed);
    ctx.out.set_resp3(false);
    ctx.client.info.name.lock().clear();
    // CLIENT REPLY OFF and a pending SKIP end; a RESET that is itself the skipped command stays unanswered.
    if ctx.client.reply_mode != ReplyMode::Skipping {
        ctx.client.reply_mode = ReplyMode::On;
    }
    ctx.out.simple("RESET");
    Ok(())
}

/// AUTH with no password configured: the default user accepts anything under its own name, as Redis's `nopass` does.
fn auth(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    match argv.len() {
        2 => Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )),
        3 if is(argv.get(1), "default") => {
            ctx.out.ok();
            Ok(())
        }
        3 => Err(CmdError::Coded(
            "WRONGPASS invalid username-password pair or user is disabled.".into(),
        )),
        _ => Err(CmdError::Syntax),
    }
}

fn client_id(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.int(ctx.client.id() as i64);
    Ok(())
}

fn client_setname(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let name = argv.get(2);
    if !valid_client_name(name) {
        return Err(CmdError::err(BAD_NAME));
    }
    *ctx.client.info.name.lock() = name.to_vec();
    ctx.out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let name = ctx.client.info.name.lock();
    if name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&name);
    }
    Ok(())
}

fn client_setinfo(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (attr, value) = (argv.get(2), argv.get(3));
    let attr_text = String::from_utf8_lossy(attr);
    let lib_name = is(attr, "LIB-NAME");
    if !lib_name && !is(attr, "LIB-VER") {
        return Err(CmdError::err(format!("Unrecognized option '{attr_text}'")));
    }
    if !valid_client_name(value) {
        return Err(CmdError::err(format!(
            "{attr_text} cannot contain spaces, newlines or special characters."
        )));
    }
    let value = String::from_utf8_lossy(value).into_owned();
    let mut lib = ctx.client.info.lib.lock();
    if lib_name {
        lib.0 = value;
    } else {
        lib.1 = value;
    }
    ctx.out.ok();
    Ok(())
}

/// One CLIENT LIST line in Redis 7.2's format. ringkv does not account per-client buffers, so their fields are 0.
fn client_line(c: &ClientInfo, redir: i64) -> String {
    let (lib_name, lib_ver) = c.lib.lock().clone();
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} \
         qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} \
         user=default redir={redir} resp={} lib-name={lib_name} lib-ver={lib_ver}\n",
        c.id,
        c.addr,
        c.laddr,
        c.fd.load(Ordering::Relaxed),
        c.name_string(),
        c.created.elapsed().as_secs(),
        c.idle_secs(),
        client_flags(c),
        c.db.load(Ordering::Relaxed),
        c.sub.load(Ordering::Relaxed),
        c.psub.load(Ordering::Relaxed),
        c.ssub.load(Ordering::Relaxed),
        c.multi.load(Ordering::Relaxed),
        c.last_cmd(),
        c.resp.load(Ordering::Relaxed),
    )
}

/// CLIENT LIST `redir=`: the tracking redirect (0 for none) while tracking, else -1.
fn redirect_of(ctx: &Ctx, id: u64) -> i64 {
    ctx.server
        .tracking
        .info(id)
        .map_or(-1, |info| info.redirect as i64)
}

/// CLIENT LIST `flags=`, in Redis's order: `P` subscribed, `x` in MULTI, `b` blocked, `t` tracking, `R` broken
/// tracking redirect, `B` broadcast tracking, `d` a watched key was written, `e` NO-EVICT, `T` NO-TOUCH; `N` for none.
fn client_flags(c: &ClientInfo) -> String {
    let mut flags = String::new();
    if ClientType::of(c) == ClientType::PubSub {
        flags.push('P');
    }
    if c.multi.load(Ordering::Relaxed) >= 0 {
        flags.push('x');
    }
    if c.waiter.lock().is_some() {
        flags.push('b');
    }
    let tracking = c.tracking.load(Ordering::Relaxed);
    flags.extend(
        tracking::LIST_FLAGS
            .iter()
            .filter(|(bit, _)| tracking & bit != 0)
            .map(|(_, letter)| letter),
    );
    if c.watch.lock().as_ref().is_some_and(|w| w.is_spoiled()) {
        flags.push('d');
    }
    if c.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if c.no_touch.load(Ordering::Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    flags
}

/// Redis's client types: `pubsub` while subscribed, else `normal`; ringkv has no masters or replicas.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    PubSub,
    /// `master`, `replica`, `slave`: valid names that select nobody.
    None,
}

impl ClientType {
    fn parse(name: &[u8]) -> Result<Self, CmdError> {
        if is(name, "normal") {
            Ok(ClientType::Normal)
        } else if is(name, "pubsub") {
            Ok(ClientType::PubSub)
        } else if ["master", "replica", "slave"].iter().any(|t| is(name, t)) {
            Ok(ClientType::None)
        } else {
            Err(CmdError::err(format!(
                "Unknown client type '{}'",
                String::from_utf8_lossy(args::c_str(name))
            )))
        }
    }
    fn of(c: &ClientInfo) -> Self {
        let subs = [&c.sub, &c.psub, &c.ssub].map(|n| n.load(Ordering::Relaxed));
        if subs.iter().any(|&n| n > 0) {
            ClientType::PubSub
        } else {
            ClientType::Normal
        }
    }
}

fn client_list(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let clients = ctx.server.clients.snapshot();
    let chosen: Vec<_> = if argv.len() == 4 && is(argv.get(2), "TYPE") {
        let kind = ClientType::parse(argv.get(3))?;
        clients
            .into_iter()
            .filter(|c| ClientType::of(c) == kind)
            .collect()
    } else if argv.len() > 3 && is(argv.get(2), "ID") {
        let ids = argv
            .iter_from(3)
            .map(|a| args::parse_i64(a).ok_or_else(|| CmdError::err("Invalid client ID")))
            .collect::<Result<Vec<_>, _>>()?;
        clients
            .into_iter()
            .filter(|c| ids.contains(&(c.id as i64)))
            .collect()
    } else if argv.len() == 2 {
        clients
    } else {
        return Err(CmdError::Syntax);
    };
    let text: String = chosen
        .iter()
        .map(|c| client_line(c, redirect_of(ctx, c.id)))
        .collect();
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let line = client_line(&ctx.client.info, redirect_of(ctx, ctx.client.id()));
    ctx.out.verbatim(line.as_bytes());
    Ok(())
}

/// Which clients a CLIENT KILL filter form selects.
#[derive(Default)]
struct KillFilter<'a> {
    id: Option<u64>,
    kind: Option<ClientType>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    skipme: bool,
}

impl KillFilter<'_> {
    fn matches(&self, c: &ClientInfo, me: u64) -> bool {
        self.id.is_none_or(|id| id == c.id)
            && self.kind.is_none_or(|k| k == ClientType::of(c))
            && self.addr.is_none_or(|a| a == c.addr.to_string().as_bytes())
            && self
                .laddr
                .is_none_or(|a| a == c.laddr.to_string().as_bytes())
            && !(self.skipme && c.id == me)
    }
}

fn parse_kill_filter(argv: Argv<'_>) -> Result<KillFilter<'_>, CmdError> {
    let mut f = KillFilter {
        skipme: true,
        ..Default::default()
    };
    let mut i = 2;
    while i < argv.len() {
        if i + 1 >= argv.len() {
            return Err(CmdError::Syntax);
        }
        let (opt, value) = (argv.get(i), argv.get(i + 1));
        if is(opt, "ID") {
            let id = args::parse_i64(value)
                .filter(|&n| n > 0)
                .ok_or_else(|| CmdError::err("client-id should be greater than 0"))?;
            f.id = Some(id as u64);
        } else if is(opt, "TYPE") {
            f.kind = Some(ClientType::parse(value)?);
        } else if is(opt, "ADDR") {
            f.addr = Some(value);
        } else if is(opt, "LADDR") {
            f.laddr = Some(value);
        } else if is(opt, "USER") {
            if value != b"default" {
                return Err(CmdError::err(format!(
                    "No such user '{}'",
                    String::from_utf8_lossy(args::c_str(value))
                )));
            }
        } else if is(opt, "SKIPME") {
            f.skipme = if is(value, "yes") {
                true
            } else if is(value, "no") {
                false
            } else {
                return Err(CmdError::Syntax);
            };
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(f)
}

/// CLIENT KILL addr (old form: `+OK` or `No such client`) or CLIENT KILL filter... (new form: how many were killed).
fn client_kill(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let old_form = argv.len() == 3;
    let filter = if old_form {
        KillFilter {
            addr: Some(argv.get(2)),
            ..Default::default()
        }
    } else {
        parse_kill_filter(argv)?
    };
    let me = ctx.client.id();
    let mut killed = 0;
    for c in ctx.server.clients.snapshot() {
        if filter.matches(&c, me) {
            killed += 1;
            if c.id == me {
                // Closing oneself happens after this reply is written.
                ctx.flow = Flow::Close;
            } else {
                c.kill();
            }
        }
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::err("No such client"));
        }
        ctx.out.ok();
    } else {
        ctx.out.int(killed);
    }
    Ok(())
}

/// CLIENT NO-EVICT / NO-TOUCH ON|OFF: only shown in CLIENT LIST (`e`, `T`): ringkv never evicts, and keeps no LRU
/// clock for NO-TOUCH to spare.
fn client_on_off(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let on = match argv.get(2) {
        v if is(v, "ON") => true,
        v if is(v, "OFF") => false,
        _ => return Err(CmdError::Syntax),
    };
    let info = &ctx.client.info;
    let flag = if is(argv.get(1), "NO-EVICT") {
        &info.no_evict
    } else {
        &info.no_touch
    };
    flag.store(on, Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

/// CLIENT REPLY ON|OFF|SKIP: the connection drops replies as the mode says (see `Client::reply_suppressed`). SKIP
/// while OFF changes nothing, as in Redis.
fn client_reply(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let mode = argv.get(2);
    ctx.client.reply_mode = if is(mode, "ON") {
        ReplyMode::On
    } else if is(mode, "OFF") {
        ReplyMode::Off
    } else if is(mode, "SKIP") {
        match ctx.client.reply_mode {
            ReplyMode::Off => ReplyMode::Off,
            _ => ReplyMode::SkipNext,
        }
    } else {
        return Err(CmdError::Syntax);
    };
    ctx.out.ok();
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking command as a timeout (default) or with the
/// UNBLOCKED error. 1 when that client was blocked, else 0.
fn client_unblock(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    // Redis's order: the argument count, the reason, then the id.
    let with_error = match argv.len() {
        3 => false,
        4 if is(argv.get(3), "TIMEOUT") => false,
        4 if is(argv.get(3), "ERROR") => true,
        4 => {
            return Err(CmdError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
        _ => return Err(CmdError::subcommand_syntax("CLIENT", argv.get(1))),
    };
    let id = args::int(argv.get(2))?;
    let waiter = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.server.clients.get(id))
        .and_then(|c| c.waiter.lock().clone());
    let unblocked = waiter.is_some_and(|w| blocking::unblock(&w, with_error));
    ctx.out.int(unblocked as i64);
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP], with the checks of Redis's
/// `clientCommand` in its order: options first (syntax, redirect target), then their compatibility.
fn client_tracking(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let (mut mode, mut redirect, mut prefixes) = (Mode::default(), 0u64, Vec::new());
    let mut j = 3;
    while j < argv.len() {
        let (opt, more) = (argv.get(j), j + 1 < argv.len());
        if is(opt, "REDIRECT") && more {
            j += 1;
            if redirect != 0 {
                return Err(CmdError::err(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = args::parse_i64(argv.get(j)).ok_or(CmdError::NotInteger)?;
            // Checked now, though the target may leave later (then the redirect is broken).
            if id <= 0 || ctx.server.clients.get(id as u64).is_none() {
                return Err(CmdError::err(
                    "The client ID you want redirect to does not exist",
                ));
            }
            redirect = id as u64;
        } else if is(opt, "BCAST") {
            mode.bcast = true;
        } else if is(opt, "OPTIN") {
            mode.optin = true;
        } else if is(opt, "OPTOUT") {
            mode.optout = true;
        } else if is(opt, "NOLOOP") {
            mode.noloop = true;
        } else if is(opt, "PREFIX") && more {
            j += 1;
            prefixes.push(argv.get(j));
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let on = argv.get(2);
    if is(on, "OFF") {
        ctx.server.tracking.disable(ctx.client);
        ctx.out.ok();
        return Ok(());
    }
    if !is(on, "ON") {
        return Err(CmdError::Syntax);
    }
    if !mode.bcast && !prefixes.is_empty() {
        return Err(CmdError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let current = ctx.client.tracking;
    if current.is_some_and(|m| m.bcast != mode.bcast) {
        return Err(CmdError::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it \
             with a different mode.",
        ));
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err(CmdError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if mode.optin && mode.optout {
        return Err(CmdError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if current.is_some_and(|m| (mode.optin && m.optout) || (mode.optout && m.optin)) {
        return Err(CmdError::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it \
             with a different mode.",
        ));
    }
    if mode.bcast {
        if let Some(e) = ctx
            .server
            .tracking
            .prefix_overlap(ctx.client.id(), &prefixes)
        {
            return Err(CmdError::err(e));
        }
    }
    let prefixes = prefixes.into_iter().map(<[u8]>::to_vec).collect();
    ctx.server
        .tracking
        .enable(ctx.client, mode, redirect, prefixes);
    ctx.out.ok();
    Ok(())
}

/// CLIENT CACHING YES|NO: whether the next command's keys are remembered, in OPTIN / OPTOUT mode.
fn client_caching(ctx: &mut Ctx, argv: Argv) -> CmdResult {
    let Some(mode) = ctx.client.tracking else {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    let opt = argv.get(2);
    if is(opt, "YES") {
        if !mode.optin {
            return Err(CmdError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(opt, "NO") {
        if !mode.optout {
            return Err(CmdError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.client.caching = true;
    ctx.out.ok();
    Ok(())
}

/// CLIENT GETREDIR: the redirect id, 0 when tracking without one, -1 when not tracking.
fn client_getredir(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    ctx.out.int(redirect_of(ctx, ctx.client.id()));
    Ok(())
}

/// CLIENT TRACKINGINFO: a map of `flags` (a set), `redirect` and `prefixes`.
fn client_trackinginfo(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    let mode = ctx.client.tracking;
    let info = ctx.server.tracking.info(ctx.client.id());
    let broken = ctx.client.info.tracking.load(Ordering::Relaxed) & tracking::BROKEN_REDIRECT != 0;
    let mut flags = vec![if mode.is_some() { "on" } else { "off" }];
    if let Some(m) = mode {
        let caching = ctx.client.caching;
        for (set, name) in [
            (m.bcast, "bcast"),
            (m.optin, "optin"),
            (m.optin && caching, "caching-yes"),
            (m.optout, "optout"),
            (m.optout && caching, "caching-no"),
            (m.noloop, "noloop"),
            (broken, "broken_redirect"),
        ] {
            if set {
                flags.push(name);
            }
        }
    }
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(info.as_ref().map_or(-1, |i| i.redirect as i64));
    out.bulk(b"prefixes");
    let prefixes = info.map(|i| i.prefixes).unwrap_or_default();
    out.array(prefixes.len());
    for p in prefixes {
        out.bulk(&p);
    }
    Ok(())
}

fn client_help(ctx: &mut Ctx, _argv: Argv) -> CmdResult {
    reply_help(
        ctx.out,
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::TestClient;

    #[test]
    fn select_reads_its_index_as_redis_does() {
        let mut c = TestClient::new();
        for arg in ["abc", "1.0", ""] {
            assert_eq!(
                c.run(&["SELECT", arg]),
                "-ERR value is not an integer or out of range\r\n"
            );
        }
        assert_eq!(
            c.cmd("SELECT 9999999999"),
            "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
        );
        assert_eq!(c.cmd("SELECT 16"), "-ERR DB index is out of range\r\n");
        assert_eq!(c.cmd("SELECT -1"), "-ERR DB index is out of range\r\n");
        assert_eq!(c.cmd("SELECT 15"), "+OK\r\n");
    }

    #[test]
    fn client_setname_validates_and_getname_reads_back() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(
            c.run(&["CLIENT", "SETNAME", "a b"]),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(c.cmd("CLIENT SETNAME worker"), "+OK\r\n");
        assert_eq!(c.cmd("CLIENT GETNAME"), "$6\r\nworker\r\n");
        assert_eq!(c.cmd("CLIENT ID"), format!(":{}\r\n", c.client.id()));
    }

    #[test]
    fn client_info_line_has_the_redis_7_2_fields() {
        let mut c = TestClient::new();
        c.cmd("SELECT 2");
        c.cmd("CLIENT SETNAME me");
        c.cmd("CLIENT SETINFO LIB-NAME redis-py");
        let info = c.cmd("CLIENT INFO");
        let line = info.split("\r\n").nth(1).unwrap();
        let fields: Vec<&str> = line
            .split(' ')
            .map(|f| f.split('=').next().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp",
                "lib-name",
                "lib-ver"
            ]
        );
        for want in [
            " name=me ",
            " db=2 ",
            " cmd=client|info ",
            " resp=2 ",
            "lib-name=redis-py ",
        ] {
            assert!(line.contains(want), "{want} not in {line}");
        }
        assert!(info.ends_with("lib-ver=\n\r\n"));
    }

    #[test]
    fn client_setinfo_validates_like_redis() {
        let mut c = TestClient::new();
        assert_eq!(
            c.run(&["CLIENT", "SETINFO", "lib-ver", "a b"]),
            "-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(
            c.cmd("CLIENT SETINFO foo x"),
            "-ERR Unrecognized option 'foo'\r\n"
        );
        assert_eq!(c.cmd("CLIENT SETINFO LIB-VER 1.0"), "+OK\r\n");
    }

    #[test]
    fn client_list_filters_by_type_and_id() {
        let mut a = TestClient::new();
        let mut b = TestClient::on(a.server.clone());
        let all = a.cmd("CLIENT LIST");
        assert_eq!(all.matches("\n").count() - 2, 2, "{all}");
        let only_b = a.cmd(&format!("CLIENT LIST ID {}", b.client.id()));
        assert!(only_b.contains(&format!("id={} ", b.client.id())));
        assert!(!only_b.contains(&format!("id={} ", a.client.id())));
        assert_eq!(a.cmd("CLIENT LIST TYPE pubsub"), "$0\r\n\r\n");
        b.cmd("SUBSCRIBE c");
        let pubsub = a.cmd("CLIENT LIST TYPE pubsub");
        assert!(
            pubsub.contains(&format!("id={} ", b.client.id())),
            "{pubsub}"
        );
        assert!(!a
            .cmd("CLIENT LIST TYPE normal")
            .contains(&format!("id={} ", b.client.id())));
        assert_eq!(a.cmd("CLIENT LIST TYPE master"), "$0\r\n\r\n");
        b.cmd("RESET");
        assert_eq!(
            a.cmd("CLIENT LIST TYPE foo"),
            "-ERR Unknown client type 'foo'\r\n"
        );
        assert_eq!(a.cmd("CLIENT LIST ID x"), "-ERR Invalid client ID\r\n");
        assert_eq!(a.cmd("CLIENT LIST foo"), "-ERR syntax error\r\n");
        assert_eq!(b.cmd("CLIENT ID"), format!(":{}\r\n", b.client.id()));
    }

    #[test]
    fn client_kill_forms_and_errors() {
        let mut a = TestClient::new();
        let b = TestClient::on(a.server.clone());
        assert_eq!(a.cmd("CLIENT KILL 1.2.3.4:5"), "-ERR No such client\r\n");
        assert_eq!(a.cmd("CLIENT KILL ID 999"), ":0\r\n");
        assert_eq!(
            a.cmd("CLIENT KILL ID 0"),
            "-ERR client-id should be greater than 0\r\n"
        );
        assert_eq!(a.cmd("CLIENT KILL USER bob"), "-ERR No such user 'bob'\r\n");
        assert_eq!(a.cmd("CLIENT KILL SKIPME maybe"), "-ERR syntax error\r\n");
        assert_eq!(a.cmd("CLIENT KILL ID 1 SKIPME"), "-ERR syntax error\r\n");
        // Three arguments is always the old form, even when the address reads like an option.
        assert_eq!(a.cmd("CLIENT KILL ID"), "-ERR No such client\r\n");
        assert_eq!(
            a.cmd(&format!("CLIENT KILL ID {}", b.client.id())),
            ":1\r\n"
        );
        // Both test clients share the address 127.0.0.1:0; SKIPME (default yes) spares the caller.
        assert_eq!(a.cmd("CLIENT KILL ADDR 127.0.0.1:0"), ":1\r\n");
    }

    #[test]
    fn reset_restores_db_protocol_and_name() {
        let mut c = TestClient::new();
        c.cmd("SELECT 3");
        c.cmd("CLIENT SETNAME x");
        c.cmd("HELLO 3");
        assert_eq!(c.cmd("RESET"), "+RESET\r\n");
        assert_eq!(c.client.db, 0);
        assert_eq!(c.cmd("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(c.cmd("CLIENT INFO").as_bytes()[0], b'$');
    }

    #[test]
    fn auth_without_a_password_reads_like_redis() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("AUTH foo"),
            "-ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?\r\n"
        );
        assert_eq!(c.cmd("AUTH default x"), "+OK\r\n");
        assert_eq!(
            c.cmd("AUTH bob x"),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(c.cmd("AUTH a b c"), "-ERR syntax error\r\n");
    }

    #[test]
    fn client_flags_on_off_and_reply_on_are_accepted() {
        let mut c = TestClient::new();
        assert_eq!(c.cmd("CLIENT NO-EVICT on"), "+OK\r\n");
        assert_eq!(c.cmd("CLIENT NO-TOUCH OFF"), "+OK\r\n");
        assert_eq!(c.cmd("CLIENT NO-EVICT maybe"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("CLIENT REPLY ON"), "+OK\r\n");
        assert_eq!(c.cmd("CLIENT REPLY maybe"), "-ERR syntax error\r\n");
        assert!(c.cmd("CLIENT HELP").starts_with("*"));
    }

    #[test]
    fn client_info_shows_multi_dirty_watch_no_evict_and_no_touch_as_redis_does() {
        let mut c = TestClient::new();
        let info = |c: &mut TestClient| c.cmd("CLIENT INFO");
        assert!(info(&mut c).contains(" flags=N "));
        assert!(info(&mut c).contains(" multi=-1 "));
        c.cmd("CLIENT NO-EVICT on");
        c.cmd("CLIENT NO-TOUCH on");
        assert!(info(&mut c).contains(" flags=eT "));
        c.cmd("MULTI");
        c.cmd("SET k v");
        c.cmd("GET k");
        let line = c.client.info.clone();
        assert!(super::client_line(&line, -1).contains(" flags=xeT "));
        assert!(super::client_line(&line, -1).contains(" multi=2 "));
        c.cmd("EXEC");
        c.cmd("CLIENT NO-EVICT off");
        assert!(info(&mut c).contains(" flags=T "));
        assert!(info(&mut c).contains(" multi=-1 "));
        c.cmd("MULTI");
        c.cmd("RESET");
        assert!(info(&mut c).contains(" flags=N "));
        assert!(info(&mut c).contains(" multi=-1 "));
        // `d`: a watched key was written (by anyone, this client too), until the watch ends.
        c.cmd("WATCH k");
        assert!(info(&mut c).contains(" flags=N "));
        c.cmd("SET k v2");
        assert!(info(&mut c).contains(" flags=d "));
        c.cmd("UNWATCH");
        assert!(info(&mut c).contains(" flags=N "));
    }

    fn pushes(c: &mut TestClient) -> String {
        let mut out = crate::protocol::Reply::new(true);
        c.client.inbox.drain(&mut out);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    #[test]
    fn client_tracking_checks_options_in_redis_order() {
        let mut c = TestClient::new();
        assert_eq!(
            c.cmd("CLIENT TRACKING on PREFIX a"),
            "-ERR PREFIX option requires BCAST mode to be enabled\r\n"
        );
        assert_eq!(
            c.cmd("CLIENT TRACKING on OPTIN OPTOUT"),
            "-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"
        );
        assert_eq!(
            c.cmd("CLIENT TRACKING on REDIRECT 42"),
            "-ERR The client ID you want redirect to does not exist\r\n"
        );
        assert_eq!(c.cmd("CLIENT TRACKING on BOGUS"), "-ERR syntax error\r\n");
        assert_eq!(c.cmd("CLIENT GETREDIR"), ":-1\r\n");
        assert_eq!(c.cmd("CLIENT TRACKING on BCAST PREFIX ab"), "+OK\r\n");
        assert_eq!(
            c.cmd("CLIENT TRACKING on BCAST PREFIX a"),
            "-ERR Prefix 'a' overlaps with an existing prefix 'ab'. Prefixes for a single client must not overlap.\r\n"
        );
        assert_eq!(c.cmd("CLIENT GETREDIR"), ":0\r\n");
        assert_eq!(
            c.cmd("CLIENT TRACKINGINFO"),
            "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n\
             $8\r\nprefixes\r\n*1\r\n$2\r\nab\r\n"
        );
        assert_eq!(c.cmd("RESET"), "+RESET\r\n");
        assert_eq!(c.cmd("CLIENT GETREDIR"), ":-1\r\n");
        assert_eq!(
            c.cmd("CLIENT CACHING yes"),
            "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode \
             enabled\r\n"
        );
    }

    #[test]
    fn caching_yes_lasts_one_command_and_a_read_after_it_is_invalidated() {
        let mut reader = TestClient::new();
        let mut writer = TestClient::on(reader.server.clone());
        reader.cmd("HELLO 3");
        assert_eq!(reader.cmd("CLIENT TRACKING on OPTIN"), "+OK\r\n");
        assert_eq!(reader.cmd("CLIENT CACHING yes"), "+OK\r\n");
        assert!(reader.client.caching);
        reader.cmd("GET a");
        assert!(!reader.client.caching);
        reader.cmd("GET b");
        writer.cmd("MSET a 1 b 2");
        assert_eq!(
            pushes(&mut reader),
            ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n"
        );
        assert_eq!(pushes(&mut reader), "");
        // CLIENT TRACKING OFF forgets the client: no more pushes.
        reader.cmd("CLIENT CACHING yes");
        reader.cmd("GET a");
        reader.cmd("CLIENT TRACKING off");
        writer.cmd("SET a 2");
        assert_eq!(pushes(&mut reader), "");
    }
}
