//! The values a key can hold.

pub use super::hash::Hash;
pub use super::list::List;
pub use super::set::Set;
pub use super::stream::Stream;
pub use super::zset::ZSet;

/// A stored value. Bytes are owned copies: the store never keeps slices of a client's read buffer alive.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string (also integers and floats, parsed on use as Redis does).
    Str(Vec<u8>),
    /// A list: O(1) push/pop at both ends, elements packed in chunks.
    List(List),
    /// A hash (field -> value).
    Hash(Box<Hash>),
    /// A set of members.
    Set(Box<Set>),
    /// A sorted set (member -> score, ordered by score).
    ZSet(Box<ZSet>),
    /// A stream (entries ordered by ID).
    Stream(Box<Stream>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
}
