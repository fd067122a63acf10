//! Redis 7 functions: libraries loaded by FUNCTION LOAD (a `#!lua name=mylib` line, then code that calls
//! `redis.register_function`) and called by FCALL / FCALL_RO.
//!
//! The server keeps each library's code and what it registered ([`Functions`]). Every VM runs the code of every
//! library itself, when it first calls a function after a change (an epoch tells it), to get callbacks of its own
//! ([`FunctionCache`]). So a library's top-level local variables live once per worker thread, where Redis has one VM.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hashbrown::HashMap;
use mlua::Function;
use parking_lot::Mutex;

use super::flags::Flags;
use super::Sha;
use crate::protocol::parser::split_args;

/// A function a library registered.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<Vec<u8>>,
    pub flags: Flags,
}

/// A loaded library.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    /// The code as loaded, first line included (FUNCTION LIST WITHCODE).
    pub code: Box<[u8]>,
    /// Where the Lua code starts: at the first line's line feed, so line numbers stay the user's.
    pub body_at: usize,
    /// In the order registered.
    pub functions: Vec<FunctionInfo>,
}

impl Library {
    /// The Lua code, without the first line.
    pub fn body(&self) -> &[u8] {
        &self.code[self.body_at..]
    }
}

/// The server's libraries.
#[derive(Default)]
pub struct Functions {
    /// By name (case-sensitive, as in Redis).
    libraries: Mutex<BTreeMap<String, Arc<Library>>>,
    /// Bumped by every change: a VM whose callbacks are older loads the libraries again.
    epoch: AtomicU64,
}

const BAD_NAME: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one \
                        character long";

/// True for a valid library or function name: letters, digits and underscores, at least one.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// FUNCTION LOAD's first line, `#!lua name=<library>`: the library name and where its code starts, or Redis's error.
pub fn library_metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let invalid = || "Invalid library metadata".to_string();
    let end = code.iter().position(|&b| b == b'\n').ok_or_else(invalid)?;
    let (mut data, mut spans) = (Vec::new(), Vec::new());
    if split_args(&code[..end], &mut data, &mut spans).is_none() || spans.is_empty() {
        return Err(invalid());
    }
    let part = |r: &Range<usize>| &data[r.clone()];
    let mut name: Option<&[u8]> = None;
    for span in &spans[1..] {
        let p = part(span);
        match p.get(..5) {
            Some(key) if key.eq_ignore_ascii_case(b"name=") => {
                if name.replace(&p[5..]).is_some() {
                    return Err(
                        "Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
            }
            _ => {
                return Err(format!(
                    "Invalid metadata value given: {}",
                    String::from_utf8_lossy(p)
                ))
            }
        }
    }
    let name = name.ok_or("Library name was not given")?;
    if !valid_name(name) {
        return Err(BAD_NAME.into());
    }
    let engine = &part(&spans[0])[2..];
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    Ok((String::from_utf8_lossy(name).into_owned(), end))
}

/// What FUNCTION RESTORE does with the libraries already loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

/// Adds the library of `code` to `libraries` as FUNCTION LOAD does (Redis's `functionsCreateWithLibraryCtx`): its
/// metadata, then its name (taken unless `replace`), then what `register` says its code registers, then its
/// functions' names against the other libraries'. Returns the library's name.
fn create(
    libraries: &mut BTreeMap<String, Arc<Library>>,
    code: &[u8],
    replace: bool,
    register: impl FnOnce(&[u8]) -> Result<Vec<FunctionInfo>, String>,
) -> Result<String, String> {
    let library = build(code, |name| check_free(libraries, name, replace), register)?;
    add(libraries, library, replace)
}

/// The library of `code`: its metadata read, `check` run on its name, then its code registered (in Redis's order).
fn build(
    code: &[u8],
    check: impl FnOnce(&str) -> Result<(), String>,
    register: impl FnOnce(&[u8]) -> Result<Vec<FunctionInfo>, String>,
) -> Result<Library, String> {
    let (name, body_at) = library_metadata(code)?;
    check(&name)?;
    let functions = register(&code[body_at..])?;
    Ok(Library {
        name,
        code: code.into(),
        body_at,
        functions,
    })
}

/// Redis's error when a library `name` is loaded without `replace`.
fn check_free(
    libraries: &BTreeMap<String, Arc<Library>>,
    name: &str,
    replace: bool,
) -> Result<(), String> {
    if libraries.contains_key(name) && !replace {
        return Err(format!("Library '{name}' already exists"));
    }
    Ok(())
}

/// Adds a library whose code has run: it must have registered a function, and none another library has.
fn add(
    libraries: &mut BTreeMap<String, Arc<Library>>,
    library: Library,
    replace: bool,
) -> Result<String, String> {
    check_free(libraries, &library.name, replace)?;
    if library.functions.is_empty() {
        return Err("No functions registered".into());
    }
    let others = libraries.values().filter(|l| l.name != library.name);
    if let Some(new) = collision(&library.functions, others.flat_map(|l| &l.functions)) {
        return Err(format!("Function {} already exists", new.name));
    }
    let name = library.name.clone();
    libraries.insert(name.clone(), Arc::new(library));
    Ok(name)
}

/// The first of `new` whose name (in any letter case, as Redis compares function names) one of `old` has.
fn collision<'a, 'b>(
    new: impl IntoIterator<Item = &'a FunctionInfo>,
    old: impl Iterator<Item = &'b FunctionInfo> + Clone,
) -> Option<&'a FunctionInfo> {
    new.into_iter()
        .find(|n| old.clone().any(|o| o.name.eq_ignore_ascii_case(&n.name)))
}

impl Functions {
    /// The current epoch and every library, for a VM to load.
    pub fn snapshot(&self) -> (u64, Vec<Arc<Library>>) {
        let libraries = self.libraries.lock();
        (
            self.epoch.load(Ordering::Acquire),
            libraries.values().cloned().collect(),
        )
    }

    /// The epoch of the libraries now.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// FUNCTION LOAD: `register` runs the library's code (on the caller's VM) and returns what it registered; the
    /// library is added (or replaces the one of its name, with `replace`) unless one of its functions belongs to
    /// another library. Returns the library's name.
    pub fn load(
        &self,
        code: &[u8],
        replace: bool,
        register: impl FnOnce(&[u8]) -> Result<Vec<FunctionInfo>, String>,
    ) -> Result<String, String> {
        // The library's code runs (up to 500 ms) without the lock, so FCALLs on other threads never wait for it; the
        // name is checked before it, in Redis's order, and again when the library is added.
        let check = |name: &str| check_free(&self.libraries.lock(), name, replace);
        let library = build(code, check, register)?;
        let name = add(&mut self.libraries.lock(), library, replace)?;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(name)
    }

    /// FUNCTION RESTORE: every library of `codes` is loaded (through `register`, as FUNCTION LOAD does) into a new
    /// set, which then takes the place of the libraries (`Flush`) or joins them: `Append` fails on a library name
    /// already loaded, `Replace` replaces the libraries of those names; both fail on a function another library
    /// has. All or nothing: on an error the libraries stay as they were.
    pub fn restore(
        &self,
        codes: impl IntoIterator<Item = Result<Vec<u8>, String>>,
        policy: RestorePolicy,
        mut register: impl FnMut(&[u8]) -> Result<Vec<FunctionInfo>, String>,
    ) -> Result<(), String> {
        let mut restored = BTreeMap::new();
        for code in codes {
            create(&mut restored, &code?, false, &mut register)?;
        }
        let mut libraries = self.libraries.lock();
        if policy == RestorePolicy::Flush {
            *libraries = restored;
        } else {
            if policy == RestorePolicy::Append {
                if let Some(name) = restored.keys().find(|n| libraries.contains_key(*n)) {
                    // Redis's text for this collision has no quotes (FUNCTION LOAD's has).
                    return Err(format!("Library {name} already exists"));
                }
            }
            let kept = libraries
                .values()
                .filter(|l| !restored.contains_key(&l.name));
            let new = restored.values().flat_map(|l| &l.functions);
            if let Some(f) = collision(new, kept.flat_map(|l| &l.functions)) {
                return Err(format!("Function {} already exists", f.name));
            }
            libraries.extend(restored);
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// True when a library has the function `name` (any letter case).
    pub fn exists(&self, name: &[u8]) -> bool {
        self.libraries
            .lock()
            .values()
            .flat_map(|l| &l.functions)
            .any(|f| f.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// FUNCTION DELETE: false when there is no such library.
    pub fn delete(&self, name: &[u8]) -> bool {
        let removed = self
            .libraries
            .lock()
            .remove(String::from_utf8_lossy(name).as_ref())
            .is_some();
        if removed {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        removed
    }

    /// FUNCTION FLUSH.
    pub fn flush(&self) {
        self.libraries.lock().clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The libraries and the number of functions they have (FUNCTION STATS).
    pub fn counts(&self) -> (usize, usize) {
        let libraries = self.libraries.lock();
        let functions = libraries.values().map(|l| l.functions.len()).sum();
        (libraries.len(), functions)
    }
}

/// A function as one VM holds it.
pub struct Loaded {
    pub f: Function,
    pub flags: Flags,
    /// The name as registered (errors and FUNCTION STATS show it).
    pub name: String,
    /// Changes with the library's code: the key under which what its runs showed about their keys is kept.
    pub id: Sha,
}

/// One VM's callbacks, by lower-cased name (FCALL finds a function whatever the case, as Redis does).
#[derive(Default)]
pub struct FunctionCache {
    /// The server and its epoch the callbacks were made for.
    pub valid_for: Option<(u64, u64)>,
    pub by_name: HashMap<String, Loaded>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_metadata_errors_follow_redis() {
        assert_eq!(
            library_metadata(b"#!lua name=mylib\nx"),
            Ok(("mylib".into(), 16))
        );
        assert_eq!(
            library_metadata(b"#!LUA   NAME=up  \nx"),
            Ok(("up".into(), 17))
        );
        for (code, err) in [
            (&b"return 1"[..], "Missing library metadata"),
            (b"#!lua name=a", "Invalid library metadata"),
            (b"#!lua name=q \"x\n", "Invalid library metadata"),
            (b"#!lua\n", "Library name was not given"),
            (
                b"#!lua name=a name=b\n",
                "Invalid metadata value, name argument was given multiple times",
            ),
            (
                b"#!lua name=a foo=b\n",
                "Invalid metadata value given: foo=b",
            ),
            (b"#!lua name=\n", BAD_NAME),
            (b"#!lua name=t-3\n", BAD_NAME),
            (b"#!py name=a\n", "Engine 'py' not found"),
        ] {
            assert_eq!(library_metadata(code), Err(err.to_string()), "{code:?}");
        }
    }

    fn info(name: &str) -> FunctionInfo {
        FunctionInfo {
            name: name.into(),
            description: None,
            flags: Flags::default(),
        }
    }

    #[test]
    fn loading_checks_names_against_other_libraries_and_bumps_the_epoch() {
        let f = Functions::default();
        let one = |names: &'static [&'static str]| {
            move |_: &[u8]| Ok(names.iter().map(|n| info(n)).collect())
        };
        assert_eq!(
            f.load(b"#!lua name=a\n", false, one(&["f"])),
            Ok("a".into())
        );
        assert_eq!(f.epoch(), 1);
        assert_eq!(
            f.load(b"#!lua name=a\n", false, one(&["g"])),
            Err("Library 'a' already exists".into())
        );
        assert_eq!(
            f.load(b"#!lua name=b\n", false, one(&["F"])),
            Err("Function F already exists".into())
        );
        assert_eq!(
            f.load(b"#!lua name=b\n", false, one(&[])),
            Err("No functions registered".into())
        );
        assert_eq!(
            f.load(b"#!lua name=a\n", true, one(&["f", "g"])),
            Ok("a".into())
        );
        assert_eq!(f.counts(), (1, 2));
        assert!(!f.delete(b"b"));
        assert!(f.delete(b"a"));
        assert_eq!((f.counts(), f.epoch()), ((0, 0), 3));
    }

    #[test]
    fn restoring_is_all_or_nothing_under_each_policy() {
        let f = Functions::default();
        // The library's functions are named in its code after the first line.
        let register = |body: &[u8]| {
            let names = String::from_utf8_lossy(body);
            Ok(names.split_whitespace().map(info).collect())
        };
        let codes = |libs: &[&str]| -> Vec<Result<Vec<u8>, String>> {
            libs.iter().map(|l| Ok(l.as_bytes().to_vec())).collect()
        };
        let names = |f: &Functions| -> Vec<String> {
            let (_, libs) = f.snapshot();
            libs.iter()
                .flat_map(|l| l.functions.iter().map(|x| format!("{}.{}", l.name, x.name)))
                .collect()
        };
        use RestorePolicy::*;
        f.load(b"#!lua name=a\nfa", false, register).unwrap();
        f.load(b"#!lua name=b\nfb", false, register).unwrap();
        for (libs, policy, err) in [
            (
                &["#!lua name=c\nfc", "#!lua name=c\nfd"][..],
                Flush,
                "Library 'c' already exists",
            ),
            (
                &["#!lua name=c\nfc", "#!lua name=d\nFC"],
                Flush,
                "Function FC already exists",
            ),
            (
                &["#!lua name=c\nfc", "#!lua name=a\nfa2"],
                Append,
                "Library a already exists",
            ),
            (&["#!lua name=c\nFB"], Append, "Function FB already exists"),
            (&["#!lua name=a\nfb"], Replace, "Function fb already exists"),
            (
                &["#!lua name=c\nfc", "#!lua name=d\n"],
                Flush,
                "No functions registered",
            ),
        ] {
            assert_eq!(
                f.restore(codes(libs), policy, register),
                Err(err.into()),
                "{libs:?}"
            );
        }
        let read_error = vec![
            Ok(b"#!lua name=c\nfc".to_vec()),
            Err("can not read data type".into()),
        ];
        assert_eq!(
            f.restore(read_error, Flush, register),
            Err("can not read data type".into())
        );
        assert_eq!(
            (names(&f), f.epoch()),
            (vec!["a.fa".into(), "b.fb".into()], 2)
        );

        f.restore(
            codes(&["#!lua name=a\nfb2 fa2", "#!lua name=c\nfc"]),
            Replace,
            register,
        )
        .unwrap();
        assert_eq!(names(&f), ["a.fb2", "a.fa2", "b.fb", "c.fc"]);
        f.restore(codes(&["#!lua name=d\nfd"]), Append, register)
            .unwrap();
        assert_eq!(f.counts(), (4, 5));
        f.restore(codes(&["#!lua name=b\nFA2"]), Flush, register)
            .unwrap();
        assert_eq!((names(&f), f.epoch()), (vec!["b.FA2".into()], 5));
    }
}
