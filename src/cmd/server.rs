//! Server commands: COMMAND, INFO, CONFIG, DBSIZE, FLUSHDB/FLUSHALL, TIME, SHUTDOWN, DEBUG.

use super::CommandSpec;

pub(super) const COMMANDS: &[CommandSpec] = &[];
