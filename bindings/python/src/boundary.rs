//! The panic boundary between the engine and Python.
//!
//! A panic inside the engine is a bug, but it must not reach Python in either of the two
//! shapes it would otherwise take: on the synchronous path pyo3 raises `PanicException`, a
//! `BaseException` that `except Exception` (and `except SwimraftError`) does not catch; on the
//! asynchronous path tokio swallows the panic of the spawned task, no completion is ever
//! sent, and the awaiting future hangs forever. Both paths turn it into a
//! `SwimraftError` whose `kind` is [`PANIC_KIND`] — the same contract as the C ABI's
//! `SWIMRAFT_PANIC`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Sender;

/// Exception class (in `swimraft.errors`) of a caught panic.
pub const PANIC_CLASS: &str = "SwimraftError";
/// `kind` of the exception raised for a caught panic.
pub const PANIC_KIND: &str = "panic";

/// A failed operation as Python sees it: exception class name, message, kind name.
pub type Failure = (String, String, String);

/// A finished asynchronous operation: its token, then the result JSON or the failure.
pub type Completion = (u64, Result<String, Failure>);

/// Text of a panic payload (`panic!("...")` carries a `&str` or a `String`).
fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic with a non-text payload"
    }
}

/// The failure reported for a caught panic.
pub fn panic_failure(detail: &str) -> Failure {
    (
        PANIC_CLASS.to_string(),
        format!("panic inside swimraft (a bug; please report it): {detail}"),
        PANIC_KIND.to_string(),
    )
}

/// Runs `f`; a panic becomes [`panic_failure`] instead of unwinding further.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let failure = panic_failure(payload_text(payload.as_ref()));
        // Dropping a payload can itself panic; never let that unwind either.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
        failure
    })
}

/// Where one asynchronous operation sends its outcome, exactly once. Moved into the task that
/// runs the operation: if the task ends without [`CompletionSlot::send`] — a panic unwinding
/// through it, or the runtime dropping the task — the slot's `drop` sends a panic failure, so
/// the awaiting Python future fails instead of waiting forever.
pub struct CompletionSlot {
    token: u64,
    sender: Option<Sender<Completion>>,
}

impl CompletionSlot {
    pub fn new(token: u64, sender: Sender<Completion>) -> Self {
        CompletionSlot {
            token,
            sender: Some(sender),
        }
    }

    /// Delivers the outcome (a closed channel means nobody waits any more: dropped silently).
    pub fn send(mut self, outcome: Result<String, Failure>) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send((self.token, outcome));
        }
    }
}

impl Drop for CompletionSlot {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let failure = panic_failure(
                "the operation ended without an outcome; it may or may not have been applied",
            );
            let _ = sender.send((self.token, Err(failure)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn catch_turns_every_payload_into_a_panic_failure() {
        assert_eq!(catch(|| 7), Ok(7));
        let (class, message, kind) = catch(|| panic!("boom {}", 42)).unwrap_err();
        assert_eq!((class.as_str(), kind.as_str()), (PANIC_CLASS, PANIC_KIND));
        assert!(message.ends_with("boom 42"), "{message}");
        let (_, message, _) = catch(|| panic!("plain")).unwrap_err();
        assert!(message.ends_with("plain"), "{message}");
        let (_, message, _) = catch(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert!(message.contains("non-text payload"), "{message}");
    }

    #[test]
    fn a_slot_sends_its_outcome_once() {
        let (tx, rx) = mpsc::channel();
        CompletionSlot::new(3, tx).send(Ok("{}".to_string()));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(1)),
            Ok((3, Ok("{}".into())))
        );
        // The sender went with the slot: nothing more arrives.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn a_task_that_panics_still_completes_its_slot() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let (tx, rx) = mpsc::channel();
        let slot = CompletionSlot::new(9, tx);
        let task = rt.spawn(async move {
            tokio::task::yield_now().await;
            if slot.sender.is_some() {
                panic!("engine bug");
            }
            slot.send(Ok("unreachable".to_string()));
        });
        let joined = rt.block_on(task);
        assert!(joined.is_err_and(|e| e.is_panic()));
        let (token, outcome) = rx.recv_timeout(Duration::from_secs(5)).expect("completion");
        assert_eq!(token, 9);
        let (class, _, kind) = outcome.unwrap_err();
        assert_eq!((class.as_str(), kind.as_str()), (PANIC_CLASS, PANIC_KIND));
    }
}
