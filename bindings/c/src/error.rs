//! Result codes, the thread-local last error and the panic boundary every export goes through.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use swimraft_core::{Error, ErrorKind};

/// What a call did. `SWIMRAFT_OK` is success; 1-12 are the engine's error kinds (the same
/// numbers as core's `ErrorKind`, shared with Python); 100 and up are errors of the C boundary
/// itself. Numbers are never reused; new codes are added at the end of their group.
/// `swimraft_last_error_message()` describes every failure.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum swimraft_result {
    /// Success.
    SWIMRAFT_OK = 0,
    /// A configuration value is missing, malformed or contradicts another one; the message
    /// names the key (or `RINGRIFT_*` variable) and quotes the value.
    SWIMRAFT_INVALID_CONFIG = 1,
    /// A write reached a node that is not the leader (legacy bully mode only).
    SWIMRAFT_NOT_LEADER = 2,
    /// Not applied; may be retried (no quorum, no leader, not started, or a blocking call made
    /// from a thread that runs an async runtime).
    SWIMRAFT_UNAVAILABLE = 3,
    /// The deadline passed; the outcome is unknown.
    SWIMRAFT_TIMEOUT = 4,
    /// Disk or database failure.
    SWIMRAFT_STORAGE = 5,
    /// The coordinator was stopped (a stopped coordinator cannot start again; make a new one).
    SWIMRAFT_SHUTDOWN = 6,
    /// A peer spoke something this node cannot understand.
    SWIMRAFT_PROTOCOL = 7,
    /// The work queue refuses new items until it drains.
    SWIMRAFT_BACKPRESSURE = 8,
    /// A lock is held by another holder.
    SWIMRAFT_LOCK_HELD = 9,
    /// The named item does not exist.
    SWIMRAFT_NOT_FOUND = 10,
    /// An argument is out of range or malformed.
    SWIMRAFT_INVALID_ARGUMENT = 11,
    /// Binding a socket, starting a thread or another operating-system call failed.
    SWIMRAFT_IO = 12,
    /// A required pointer argument was NULL; nothing was done.
    SWIMRAFT_NULL_ARGUMENT = 100,
    /// A bug inside swimraft was caught at the boundary (a Rust panic or a broken internal
    /// invariant). The handle may be left in any state but memory stays valid; please report it.
    SWIMRAFT_PANIC = 101,
    /// An input string was not valid UTF-8.
    SWIMRAFT_INVALID_UTF8 = 102,
    /// The call was made in a child of `fork()`: the handle, or the runtime, belongs to the
    /// parent process, whose threads do not exist here. Nothing was done (a handle passed to
    /// `_free` is leaked on purpose).
    SWIMRAFT_FORKED = 103,
}

impl swimraft_result {
    /// The code of an engine error kind. Exhaustive on purpose: a new kind must get its code.
    pub(crate) fn from_kind(kind: ErrorKind) -> swimraft_result {
        use swimraft_result::*;
        match kind {
            ErrorKind::InvalidConfig => SWIMRAFT_INVALID_CONFIG,
            ErrorKind::NotLeader => SWIMRAFT_NOT_LEADER,
            ErrorKind::Unavailable => SWIMRAFT_UNAVAILABLE,
            ErrorKind::Timeout => SWIMRAFT_TIMEOUT,
            ErrorKind::Storage => SWIMRAFT_STORAGE,
            ErrorKind::Shutdown => SWIMRAFT_SHUTDOWN,
            ErrorKind::Protocol => SWIMRAFT_PROTOCOL,
            ErrorKind::Backpressure => SWIMRAFT_BACKPRESSURE,
            ErrorKind::LockHeld => SWIMRAFT_LOCK_HELD,
            ErrorKind::NotFound => SWIMRAFT_NOT_FOUND,
            ErrorKind::InvalidArgument => SWIMRAFT_INVALID_ARGUMENT,
            ErrorKind::Io => SWIMRAFT_IO,
        }
    }
}

/// A failed call: the code to return and the message for `swimraft_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: swimraft_result,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: swimraft_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A required pointer argument was NULL.
    pub(crate) fn null(argument: &str) -> Failure {
        Failure::new(
            swimraft_result::SWIMRAFT_NULL_ARGUMENT,
            format!("argument `{argument}` is NULL"),
        )
    }

    /// A broken internal invariant (reported like a panic: it is a bug).
    pub(crate) fn internal(message: impl Into<String>) -> Failure {
        Failure::new(
            swimraft_result::SWIMRAFT_PANIC,
            format!("internal error (a bug in swimraft): {}", message.into()),
        )
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        // `Error`'s Display is "<kind name>: <message>", e.g. "invalid_config: swim_port=...".
        Failure::new(swimraft_result::from_kind(err.kind()), err.to_string())
    }
}

thread_local! {
    /// The message of the last failed call on this thread; empty after a success.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NULs would cut the C string short; they never come from our messages, but the
    // message may quote user input.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
}

fn clear_last_error() {
    LAST_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if !slot.as_bytes().is_empty() {
            *slot = CString::default();
        }
    });
}

/// The message of the last call on this thread that failed, or `""` when the last call
/// succeeded (or none was made). The text names the function, the error kind and the cause,
/// e.g. `swimraft_coordinator_new: invalid_config: swim_port="abc" is not a port ...`.
///
/// The pointer is never NULL. It belongs to the library and stays valid until the next
/// swimraft call on this thread; copy the text to keep it. Do not free it.
#[no_mangle]
pub extern "C" fn swimraft_last_error_message() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|slot| slot.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

/// Text of a panic payload (`panic!("...")` carries a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic with a non-text payload"
    }
}

/// Runs the body of the export `name` behind the panic boundary: a panic becomes
/// `SWIMRAFT_PANIC`, a failure sets the thread's last error (prefixed with `name`), a success
/// clears it.
pub(crate) fn ffi_call<F>(name: &str, body: F) -> swimraft_result
where
    F: FnOnce() -> Result<(), Failure>,
{
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            clear_last_error();
            return swimraft_result::SWIMRAFT_OK;
        }
        Ok(Err(failure)) => failure,
        Err(payload) => {
            let failure = Failure::new(
                swimraft_result::SWIMRAFT_PANIC,
                format!(
                    "panic inside swimraft (a bug; please report it): {}",
                    panic_message(payload.as_ref())
                ),
            );
            // Dropping a payload can itself panic; never let that unwind into C.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            failure
        }
    };
    set_last_error(&format!("{name}: {}", failure.message));
    failure.code
}
