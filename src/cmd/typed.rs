//! Typed access to a key's value for the container families (lists, hashes, sets, sorted sets): WRONGTYPE for another
//! type, reading apart from changing (only a change spoils a WATCH, see [`Keyspace::get_mut`]), and the invariant that
//! a container never exists empty.

use super::CmdError;
use crate::store::{Entry, Hash, Keyspace, List, Set, Value, ZSet};

/// A value type stored under a key that holds several elements.
pub(crate) trait Container: Sized {
    /// The container inside `value`, if it is of this type.
    fn of(value: &Value) -> Option<&Self>;
    /// The same, to change.
    fn of_mut(value: &mut Value) -> Option<&mut Self>;
    /// True when it holds no element (and so must not exist).
    fn is_empty(&self) -> bool;
}

/// The container at `key`, to read: `None` when the key does not exist, WRONGTYPE when it holds another type.
pub(crate) fn lookup<'a, T: Container>(
    db: &'a mut Keyspace,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a T>, CmdError> {
    typed(db.get(key, now))
}

/// The container at `key` as a command that writes looks at it first: as [`lookup`], but no keyspace hit or miss
/// is counted (see [`Keyspace::find`]).
pub(crate) fn find<'a, T: Container>(
    db: &'a mut Keyspace,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a T>, CmdError> {
    typed(db.find(key, now))
}

/// The container in `entry` (none for a missing key), or WRONGTYPE.
fn typed<T: Container>(entry: Option<&Entry>) -> Result<Option<&T>, CmdError> {
    entry
        .map(|e| T::of(&e.value).ok_or(CmdError::WrongType))
        .transpose()
}

/// The container at `key`, to change (which counts as modifying the key, for WATCH).
pub(crate) fn lookup_mut<'a, T: Container>(
    db: &'a mut Keyspace,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut T>, CmdError> {
    match db.get_mut(key, now) {
        None => Ok(None),
        Some(e) => T::of_mut(&mut e.value).map(Some).ok_or(CmdError::WrongType),
    }
}

/// Changes the container at `key` with `f` (`None` when the key does not exist), then deletes the key if `f` emptied
/// it. `f` returns its result and whether it changed anything; when it did not, the keyspace version taken by
/// [`lookup_mut`] is put back, so a command that changes nothing (LREM without a match, SREM of absent members)
/// spoils no WATCH: Redis signals a key only when a command wrote it.
pub(crate) fn update<T: Container, R>(
    db: &mut Keyspace,
    key: &[u8],
    now: u64,
    f: impl FnOnce(&mut T) -> (R, bool),
) -> Result<Option<R>, CmdError> {
    let version = db.version();
    let Some(container) = lookup_mut::<T>(db, key, now)? else {
        return Ok(None);
    };
    let (result, changed) = f(container);
    if changed {
        remove_if_empty::<T>(db, key, now);
    } else {
        db.restore_version(version);
    }
    Ok(Some(result))
}

/// [`update`] on the container at `key`, created with `make()` first when the key does not exist (a new key is a
/// change, so `f` must then fill it and report a change). WRONGTYPE when the key holds another type.
pub(crate) fn upsert<T: Container, R>(
    db: &mut Keyspace,
    key: &[u8],
    now: u64,
    make: impl FnOnce() -> Value,
    f: impl FnOnce(&mut T) -> (R, bool),
) -> Result<R, CmdError> {
    if find::<T>(db, key, now)?.is_none() {
        db.insert(key, make(), None);
    }
    update(db, key, now, f)?.ok_or(CmdError::WrongType)
}

/// Deletes `key` if it holds an empty container of type `T`.
pub(crate) fn remove_if_empty<T: Container>(db: &mut Keyspace, key: &[u8], now: u64) {
    if matches!(find::<T>(db, key, now), Ok(Some(c)) if c.is_empty()) {
        db.remove(key, now);
    }
}

macro_rules! container {
    ($type:ty, $variant:ident) => {
        impl Container for $type {
            fn of(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn of_mut(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn is_empty(&self) -> bool {
                <$type>::is_empty(self)
            }
        }
    };
}

container!(List, List);
container!(Hash, Hash);
container!(Set, Set);
container!(ZSet, ZSet);
