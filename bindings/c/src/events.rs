//! Event callbacks: one dispatcher thread per handle calls the registered C function.
//!
//! The engine never calls C: it sends `coordinator::Event`s into a channel, and the handle's
//! dispatcher thread (started by the first registration, ended by `_free`) turns each into
//! JSON and calls the callback. A slow callback therefore delays later callbacks but never the
//! SWIM task. The registration sits in a mutex-protected slot with an "in flight" flag, so that
//! replacing or removing a callback, or freeing the handle, waits for a call in progress.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Duration;

use swimraft_core::coordinator::Event;
use swimraft_core::Coordinator;

use crate::coordinator::{handle_ref, swimraft_coordinator};
use crate::error::{ffi_call, swimraft_result, Failure};

/// How often an idle dispatcher looks at its stop flag. Freeing a handle usually wakes it at
/// once (the engine's senders go away with the coordinator); this bounds the wait otherwise.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Called with one event as a JSON object, on the handle's dispatcher thread (never on the
/// thread that registered it, never on an engine thread), one call at a time and in order.
///
/// `event_json` is valid only during the call: copy it to keep it. `userdata` is the pointer
/// given to `swimraft_coordinator_set_event_callback`, untouched. Membership events look like
/// `{"type":"member","node_id":"node-b","state":"alive","addr":"127.0.0.1:7947"}` with `state`
/// one of `alive`, `suspected`, `failed`, `left`; Raft leader changes look like
/// `{"type":"leader","leader_id":"node-a"}` (`""` when there is no leader). Later builds may add
/// other `type`s, so ignore types you do not know.
///
/// The callback may call any swimraft function, including `_set_event_callback` and `_free` on
/// its own handle (the dispatcher then ends after the callback returns). It should return
/// quickly: events queue up behind a slow callback, so leave `swimraft_coordinator_execute`
/// (which waits for the cluster) to another thread.
#[allow(non_camel_case_types)]
pub type swimraft_event_callback =
    Option<unsafe extern "C" fn(event_json: *const c_char, userdata: *mut c_void)>;

/// A registered callback and its userdata.
#[derive(Clone, Copy)]
struct Registration {
    callback: unsafe extern "C" fn(*const c_char, *mut c_void),
    userdata: *mut c_void,
}

// SAFETY: the registration is only used to call the C function on the dispatcher thread; the
// caller's contract (`swimraft_coordinator_set_event_callback`) is that callback and userdata
// may be used from that thread.
unsafe impl Send for Registration {}

#[derive(Default)]
struct Slot {
    registration: Option<Registration>,
    /// The dispatcher is inside the callback.
    in_flight: bool,
    /// The handle is being freed: no more calls, the dispatcher ends.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    slot: Mutex<Slot>,
    /// Signalled when a call in flight ends.
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A poisoned slot still holds consistent plain data.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no callback runs, unless the caller is the dispatcher itself (it would wait
    /// for its own return).
    fn wait_idle<'a>(&self, mut slot: MutexGuard<'a, Slot>, dispatcher: Option<ThreadId>) {
        if dispatcher == Some(thread::current().id()) {
            return;
        }
        while slot.in_flight {
            slot = self.idle.wait(slot).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct Dispatcher {
    thread: JoinHandle<()>,
    id: ThreadId,
}

/// The event side of a handle.
#[derive(Default)]
pub(crate) struct Events {
    shared: Arc<Shared>,
    dispatcher: Mutex<Option<Dispatcher>>,
}

impl Events {
    fn dispatcher_id(&self) -> Option<ThreadId> {
        self.dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|d| d.id)
    }

    /// Registers (or with `None` removes) the callback. Returns after a previous callback in
    /// flight has finished, so its userdata may be released.
    fn set(
        &self,
        coordinator: &Coordinator,
        registration: Option<Registration>,
    ) -> Result<(), Failure> {
        if registration.is_some() {
            self.ensure_dispatcher(coordinator)?;
        }
        let mut slot = self.shared.lock();
        if slot.closed {
            return Err(Failure::new(
                swimraft_result::SWIMRAFT_SHUTDOWN,
                "the handle is being freed",
            ));
        }
        slot.registration = registration;
        self.shared.wait_idle(slot, self.dispatcher_id());
        Ok(())
    }

    fn ensure_dispatcher(&self, coordinator: &Coordinator) -> Result<(), Failure> {
        let mut dispatcher = self
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if dispatcher.is_some() {
            return Ok(());
        }
        let events = coordinator.subscribe();
        let shared = self.shared.clone();
        let thread = thread::Builder::new()
            .name("swimraft-events".into())
            .spawn(move || dispatch(&shared, &events))
            .map_err(|err| {
                Failure::new(
                    swimraft_result::SWIMRAFT_IO,
                    format!("cannot start the event dispatcher thread: {err}"),
                )
            })?;
        let id = thread.thread().id();
        *dispatcher = Some(Dispatcher { thread, id });
        Ok(())
    }

    /// First half of `_free`: no callback is called after this returns (except the one the
    /// caller may be inside of).
    pub(crate) fn close(&self) {
        let mut slot = self.shared.lock();
        slot.closed = true;
        slot.registration = None;
        self.shared.wait_idle(slot, self.dispatcher_id());
    }

    /// Second half of `_free`, after the coordinator is gone: ends the dispatcher thread and
    /// waits for it, unless this is that thread (inside a callback), which then ends by itself
    /// when the callback returns.
    pub(crate) fn join(self) {
        let dispatcher = self
            .dispatcher
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = dispatcher {
            if d.id != thread::current().id() {
                // The dispatcher catches its own panics; an Err here carries nothing to report.
                let _ = d.thread.join();
            }
        }
    }
}

/// The dispatcher thread: receives events until the handle is freed.
fn dispatch(shared: &Shared, events: &Receiver<Event>) {
    loop {
        let event = match events.recv_timeout(STOP_POLL) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            // The coordinator is gone: the handle is being freed.
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let registration = {
            let mut slot = shared.lock();
            if slot.closed {
                break;
            }
            match (event.is_some(), slot.registration) {
                (true, Some(registration)) => {
                    slot.in_flight = true;
                    registration
                }
                // Nobody listens: the event is dropped rather than queued without bound.
                _ => continue,
            }
        };
        if let Some(event) = event {
            // Nothing here should panic, but a panic must neither kill the thread silently
            // with `in_flight` set nor unwind anywhere near C.
            let _ = catch_unwind(AssertUnwindSafe(|| deliver(registration, &event)));
        }
        shared.lock().in_flight = false;
        shared.idle.notify_all();
    }
}

fn deliver(registration: Registration, event: &Event) {
    let json = match serde_json::to_string(event).map(CString::new) {
        Ok(Ok(json)) => json,
        // Cannot happen (JSON escapes NUL); an event we cannot encode is dropped.
        _ => return,
    };
    // SAFETY: the caller registered a valid function and vouched for the userdata; the string
    // outlives the call.
    unsafe { (registration.callback)(json.as_ptr(), registration.userdata) };
}

/// Registers `callback` to receive this coordinator's events (membership changes and
/// leader changes), or removes the registration when `callback` is NULL. Replaces any previous
/// callback. Events that happen while no callback is registered are not kept.
///
/// Callbacks run on a dispatcher thread owned by the handle (see `swimraft_event_callback`).
/// When this function returns, the previous callback is not running and will not be called
/// again, so its userdata may be released (unless this is called from inside that callback).
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_IO` (thread creation failed), `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle from `swimraft_coordinator_new`. `callback`, when
/// not NULL, must stay callable, and `userdata` usable from another thread, until the callback
/// is replaced or removed, or the handle is freed.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_set_event_callback(
    coordinator: *mut swimraft_coordinator,
    callback: swimraft_event_callback,
    userdata: *mut c_void,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_set_event_callback", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        let registration = callback.map(|callback| Registration { callback, userdata });
        handle.events.set(&handle.coordinator, registration)
    })
}
