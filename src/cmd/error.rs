//! Command errors and the one place they become Redis's error strings.

/// Why a command failed. `Display` is the exact error line Redis sends (without the leading `-`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// Arity mismatch; carries the command's full name (`get`, `client|kill`).
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// Options that do not parse or do not combine.
    #[error("ERR syntax error")]
    Syntax,
    /// A number argument that is not a 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// A number argument that is not a float.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// INCR/DECR family past the i64 range.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// The key does not exist where it must (RENAME, LSET...).
    #[error("ERR no such key")]
    NoSuchKey,
    /// SELECT, MOVE, COPY DB to a database that does not exist.
    #[error("ERR DB index is out of range")]
    DbIndex,
    /// Any other `ERR ...` message (the text after `ERR `).
    #[error("ERR {0}")]
    Err(String),
    /// A message that carries its own code (`NOSCRIPT ...`, `BUSY ...`, `EXECABORT ...`).
    #[error("{0}")]
    Coded(String),
}

impl CmdError {
    /// An `ERR` error with this text.
    pub fn err(msg: impl Into<String>) -> Self {
        CmdError::Err(msg.into())
    }

    /// Redis's `addReplySubcommandSyntaxError`: subcommand `sub` of `container` (`CLIENT`, `FUNCTION`...) is unknown
    /// or has the wrong number of arguments; names it as the client wrote it (`%.128s`: up to a NUL, 128 bytes).
    pub fn subcommand_syntax(container: &str, sub: &[u8]) -> Self {
        let sub = super::args::c_str(sub);
        CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
            String::from_utf8_lossy(&sub[..sub.len().min(128)])
        ))
    }
}
