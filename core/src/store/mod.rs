//! SQLite schema and access shared by the Raft state machine and the legacy (bully) mode.
//!
//! One database file holds every replicated table: `raft/state.db` under Raft, the orchestrator's
//! `work_queue.db` layout in legacy mode. Both use the same schema ([`schema`]) so that moving
//! between the modes is an import of rows, not a conversion. The state machine itself lives in
//! [`crate::state`]; this module only knows how to open, migrate and read the bookkeeping table
//! `sm_meta` ([`meta`]).

pub(crate) mod json;
pub mod meta;
pub mod schema;

pub use meta::{meta_get, meta_set};
pub use schema::{migrate, open_in_memory, open_state_db};

use crate::error::{Error, ErrorKind};

/// Maps a SQLite failure to the engine's [`ErrorKind::Storage`]. rusqlite errors never cross the
/// public API, so Python and C see one stable kind for every disk or database problem.
pub(crate) fn storage_error(err: rusqlite::Error) -> Error {
    Error::new(ErrorKind::Storage, format!("sqlite: {err}"))
}
