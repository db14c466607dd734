//! The replicated state machine: work queue, job assignments, locks and key/value, as pure
//! deterministic code over SQLite.
//!
//! ```text
//!   Envelope { client_id, seq, now_us, Command }      (one write; a Raft entry carries a batch)
//!            |
//!   machine::apply_writes(tx, &[envelope])             clock, write index, sessions, dispatch
//!            |
//!   work_queue | jobs | locks | kv                     one command's effect on `tx`
//!            |
//!   store::schema tables (work_items, jobs, locks, kv, client_sessions, sm_meta)
//!            |
//!   queries::*  (reads on a plain connection; state_digest for replica comparison)
//! ```
//!
//! The Raft layer calls [`apply_writes_grouped`] for each committed entry (an entry carries a
//! batch of writes) inside its group-commit transaction, which spans several entries and keeps
//! client sessions in memory until it commits; [`apply_writes`] applies one batch in a caller's
//! transaction and stores its sessions at once; [`apply_local`] applies one write in a
//! transaction of its own (tests; nothing in the engine calls it: the legacy bully mode's queue
//! is not part of this engine). Writes are numbered consecutively (the *write index*, which is also a lock's fencing token). Apply reads no clock, draws no random number and
//! depends on no iteration order, so replaying a log into an empty database reproduces the
//! state byte for byte ([`queries::state_digest`]).

pub mod command;
mod digest;
pub mod jobs;
pub mod kv;
pub mod locks;
pub mod machine;
pub mod queries;
pub mod records;
pub mod session;
pub mod work_queue;

pub use command::{Command, CommandResult, Envelope, NewWorkItem, RejectKind};
pub use machine::{
    apply, apply_batch, apply_local, apply_next, apply_writes, apply_writes_grouped,
};
pub use records::{Job, JobStatus, LockInfo, WorkItem, WorkStatus};
pub use session::SessionCache;
