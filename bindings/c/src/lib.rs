//! libswimraft: the C ABI of swimraft. `include/swimraft.h` is generated from this crate by
//! cbindgen (`build.rs`); this crate converts types, owns handles and maps errors, and holds no
//! engine logic.
//!
//! Conventions (repeated at the top of the header):
//!
//! * Names are `swimraft_<type>_<verb>`; handles are opaque pointers made by `_new` and released
//!   by the matching `_free` (NULL is accepted by every `_free` and does nothing).
//! * Every function that can fail returns a `swimraft_result`: `SWIMRAFT_OK` (0), one code per
//!   engine error kind (1-12, the numbers of core's `ErrorKind`), then 100+ for boundary errors.
//!   Codes are never reused.
//! * Outputs go through out-parameters, written only when the call returns `SWIMRAFT_OK`.
//! * NULL where a pointer is required is `SWIMRAFT_NULL_ARGUMENT`, never a crash; input strings
//!   are NUL-terminated UTF-8 (`SWIMRAFT_INVALID_UTF8` otherwise).
//! * A Rust panic never crosses the boundary: it becomes `SWIMRAFT_PANIC` (a bug; report it).
//! * After a failure `swimraft_last_error_message()` says what and why (per thread; a success
//!   clears it; the pointer is valid until the next swimraft call on that thread).
//! * Strings returned through `char **` belong to the caller: release each with
//!   `swimraft_string_free`, never `free()`.
//! * Handles may be used from several threads at once, except `_free`, which must be the last
//!   call on a handle. Handles do not survive `fork()`: use them only in the process that made
//!   them (a forked child gets `SWIMRAFT_FORKED`).
//! * Blocking calls (`_start`, `_stop`, `_free`) run on one shared tokio runtime (two worker
//!   threads, made on first use); event callbacks run on one dispatcher thread per handle.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
mod runtime;
mod strings;

mod coordinator;
mod events;

#[cfg(test)]
mod tests;

pub use coordinator::swimraft_coordinator;
pub use error::swimraft_result;
pub use events::swimraft_event_callback;
