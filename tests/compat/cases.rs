//! The transcript case format (documented in `redis-compat/README.md`), the list of accepted differences, and
//! playing a case against one server.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use ringkv::protocol::parser::split_args;

use crate::redis::{Conn, Got};
use crate::resp::Value;

/// How long a server may take to answer a command before the runner records "(no reply)".
const REPLY_WAIT: Duration = Duration::from_secs(2);

/// How a line's replies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Byte for byte.
    Exact,
    /// After sorting every aggregate (`~sort`: KEYS, SCAN).
    Sort,
    /// Types and aggregate sizes only (`~shape`: HELLO, CLIENT ID, TIME).
    Shape,
    /// Not at all; the line only runs (`~any`).
    Any,
}

/// What a line does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send a command; `read`: read its reply now (else it is read later by a `<` line).
    Cmd { args: Vec<Vec<u8>>, read: bool },
    /// Read the reply of an earlier `>` command.
    Read,
    /// Expect no reply to arrive within this many milliseconds (a client that stays blocked).
    NoReply(u64),
    /// Wait this many milliseconds.
    Sleep(u64),
    /// Send these bytes as they are; `read`: read one reply.
    Raw { bytes: Vec<u8>, read: bool },
    /// Read until the server closes the connection.
    Closed,
    /// Drop the client's connection and open a new one.
    Reconnect,
}

/// One line of a case file.
#[derive(Clone, Debug)]
pub struct Line {
    /// 1-based line number in the file.
    pub no: usize,
    /// The line as written, without its `@N`/`~mode`/`>` prefixes.
    pub text: String,
    /// The client (1-based) the line acts on.
    pub client: usize,
    /// How the replies are compared.
    pub mode: Mode,
    /// What it does.
    pub action: Action,
    /// The command whose reply this line reads (for `<` lines, the earlier `>` command), for accepted-list matching.
    pub command: Vec<Vec<u8>>,
    /// In ringkv-only files: the reply ringkv must give (`=> "..."`).
    pub expect: Option<Vec<u8>>,
}

impl Line {
    /// `file:line [case] client N: text`, for diffs.
    pub fn locate(&self, case: &Case) -> String {
        format!(
            "{}:{} [case \"{}\"] client {}: {}",
            case.file, self.no, case.name, self.client, self.text
        )
    }
}

/// A named run of lines that starts on an empty server with fresh connections.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case file's name (`strings.txt`).
    pub file: String,
    /// The name after `===` (or the file's name for lines before the first `===`).
    pub name: String,
    /// Its lines.
    pub lines: Vec<Line>,
}

fn unquote_one(rest: &str, what: &str, at: &str) -> Vec<u8> {
    let args = split(rest, at);
    assert!(args.len() == 1, "{at}: {what} takes one quoted string");
    args.into_iter().next().unwrap_or_default()
}

fn split(text: &str, at: &str) -> Vec<Vec<u8>> {
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    split_args(text.as_bytes(), &mut out, &mut spans)
        .unwrap_or_else(|| panic!("{at}: unbalanced quotes"));
    spans.into_iter().map(|s| out[s].to_vec()).collect()
}

fn number(rest: &str, at: &str) -> u64 {
    rest.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{at}: expected a number of milliseconds, got {rest:?}"))
}

/// Parses a case file.
pub fn parse_file(path: &Path) -> Vec<Case> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut cases = vec![Case {
        file: file.clone(),
        name: file.clone(),
        lines: Vec::new(),
    }];
    // The last `>` command per client, which a later `<` line reads the reply of.
    let mut pending: HashMap<usize, Vec<Vec<u8>>> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("===") {
            cases.push(Case {
                file: file.clone(),
                name: name.trim().to_string(),
                lines: Vec::new(),
            });
            pending.clear();
            continue;
        }
        let case = cases.last_mut().expect("a case");
        if let Some(expect) = trimmed.strip_prefix("=>") {
            let last = case
                .lines
                .last_mut()
                .unwrap_or_else(|| panic!("{at}: `=>` needs a line before it"));
            last.expect = Some(unquote_one(expect, "=>", &at));
            continue;
        }
        let (mut client, mut mode, mut read) = (1, Mode::Exact, true);
        let mut rest = trimmed;
        loop {
            let (token, after) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(n) = token.strip_prefix('@').and_then(|n| n.parse().ok()) {
                client = n;
            } else if let Some(m) = token.strip_prefix('~') {
                mode = match m {
                    "sort" => Mode::Sort,
                    "shape" => Mode::Shape,
                    "any" => Mode::Any,
                    _ => panic!("{at}: unknown mode ~{m}"),
                };
            } else if token == ">" {
                read = false;
            } else {
                break;
            }
            rest = after.trim_start();
        }
        assert!(client >= 1, "{at}: clients are numbered from 1");
        let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        let action = match word {
            "<" => Action::Read,
            "!sleep" => Action::Sleep(number(arg, &at)),
            "!noreply" => Action::NoReply(number(arg, &at)),
            "!raw" => Action::Raw {
                bytes: unquote_one(arg, "!raw", &at),
                read,
            },
            "!closed" => Action::Closed,
            "!reconnect" => Action::Reconnect,
            w if w.starts_with('!') => panic!("{at}: unknown directive {w}"),
            _ => Action::Cmd {
                args: split(rest, &at),
                read,
            },
        };
        let command = match &action {
            Action::Cmd { args, read } => {
                if !read {
                    pending.insert(client, args.clone());
                }
                args.clone()
            }
            Action::Read => pending.remove(&client).unwrap_or_default(),
            _ => Vec::new(),
        };
        case.lines.push(Line {
            no: i + 1,
            text: rest.to_string(),
            client,
            mode,
            action,
            command,
            expect: None,
        });
    }
    cases.retain(|c| !c.lines.is_empty());
    cases
}

/// Plays a case on the server at `addr`, after FLUSHALL; one entry per line, `None` for lines without a reply.
pub fn play(case: &Case, addr: &str) -> Vec<Option<Got>> {
    let mut setup = Conn::connect(addr);
    assert_eq!(
        setup.cmd(&["FLUSHALL"], REPLY_WAIT),
        Got::Reply(b"+OK\r\n".to_vec()),
        "FLUSHALL on {addr}"
    );
    drop(setup);
    let mut clients: HashMap<usize, Conn> = HashMap::new();
    let mut out = Vec::with_capacity(case.lines.len());
    for line in &case.lines {
        let conn = clients
            .entry(line.client)
            .or_insert_with(|| Conn::connect(addr));
        let got = match &line.action {
            Action::Cmd { args, read } => {
                conn.send(&crate::common::encode(args));
                read.then(|| conn.read(REPLY_WAIT))
            }
            Action::Raw { bytes, read } => {
                conn.send(bytes);
                read.then(|| conn.read(REPLY_WAIT))
            }
            Action::Read => Some(conn.read(REPLY_WAIT)),
            Action::NoReply(ms) => Some(conn.read(Duration::from_millis(*ms))),
            Action::Closed => Some(conn.read_to_close(REPLY_WAIT)),
            Action::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                None
            }
            Action::Reconnect => {
                *conn = Conn::connect(addr);
                None
            }
        };
        out.push(got);
    }
    out
}

/// True when two replies agree under `mode`.
pub fn agree(mode: Mode, a: &Got, b: &Got) -> bool {
    let transform = |v: Value| match mode {
        Mode::Sort => v.sorted(),
        Mode::Shape => v.shape(),
        Mode::Exact | Mode::Any => v,
    };
    match (mode, a, b) {
        (Mode::Any, _, _) => true,
        (Mode::Sort | Mode::Shape, Got::Reply(x), Got::Reply(y)) => {
            match (Value::parse(x), Value::parse(y)) {
                (Some(x), Some(y)) => transform(x) == transform(y),
                _ => x == y,
            }
        }
        _ => a == b,
    }
}

/// What an accepted difference matches.
#[derive(Debug)]
enum Selector {
    /// Every line whose command starts with these words (compared case-insensitively).
    Command(Vec<Vec<u8>>),
    /// One line of one case file, by number.
    LineNo(String, usize),
    /// Lines of one case file, by their text.
    LineText(String, String),
}

/// One entry of `redis-compat/accepted.txt`.
#[derive(Debug)]
pub struct Accepted {
    selector: Selector,
    /// Why the difference is acceptable.
    pub reason: String,
    /// The entry as written.
    pub text: String,
    /// How many differences it explained in this run.
    pub used: usize,
}

/// Parses the accepted-differences file: `<selector> | <reason>` per line, `#` comments.
pub fn parse_accepted(path: &Path) -> Vec<Accepted> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("accepted.txt:{}", i + 1);
        let (selector, reason) = line
            .split_once(" | ")
            .unwrap_or_else(|| panic!("{at}: expected `<selector> | <reason>`"));
        assert!(
            !reason.trim().is_empty(),
            "{at}: every entry needs a reason"
        );
        let selector = if let Some(words) = selector.strip_prefix("cmd ") {
            Selector::Command(split(words, &at))
        } else if let Some(place) = selector.strip_prefix("line ") {
            let (file, what) = place
                .split_once(':')
                .unwrap_or_else(|| panic!("{at}: expected `line FILE:LINE` or `line FILE:TEXT`"));
            match what.trim().parse() {
                Ok(n) => Selector::LineNo(file.trim().to_string(), n),
                Err(_) => Selector::LineText(file.trim().to_string(), what.trim().to_string()),
            }
        } else {
            panic!("{at}: a selector is `cmd WORDS...` or `line FILE:...`");
        };
        out.push(Accepted {
            selector,
            reason: reason.trim().to_string(),
            text: selector_text(line),
            used: 0,
        });
    }
    out
}

fn selector_text(line: &str) -> String {
    line.split(" | ").next().unwrap_or(line).to_string()
}

/// The accepted entry that explains a difference on `line` of `case`, if any.
pub fn find_accepted<'a>(
    accepted: &'a mut [Accepted],
    case: &Case,
    line: &Line,
) -> Option<&'a mut Accepted> {
    accepted.iter_mut().find(|a| match &a.selector {
        Selector::Command(words) => {
            words.len() <= line.command.len()
                && words
                    .iter()
                    .zip(&line.command)
                    .all(|(w, c)| w.eq_ignore_ascii_case(c))
        }
        Selector::LineNo(file, no) => *file == case.file && *no == line.no,
        Selector::LineText(file, text) => *file == case.file && *text == line.text,
    })
}
