//! The `swimraft_coordinator` handle: make, start, stop, free, and the read-only queries.

use std::ffi::c_char;
use std::sync::Arc;

use swimraft_core::coordinator::Lifecycle;
use swimraft_core::{Config, Coordinator};

use crate::error::{ffi_call, swimraft_result, Failure};
use crate::events::Events;
use crate::runtime::{self, block_on, current_pid};
use crate::strings::{arg_str, opt_arg_str, out_ptr, owned_c_string, owned_json, write_out};

/// A coordinator: one node's membership (SWIM) and, in later builds, consensus (Raft).
/// Opaque; made by `swimraft_coordinator_new`, released by `swimraft_coordinator_free`.
#[allow(non_camel_case_types)]
pub struct swimraft_coordinator {
    pub(crate) coordinator: Arc<Coordinator>,
    /// The process that made the handle (see `SWIMRAFT_FORKED`).
    pub(crate) pid: u32,
    pub(crate) events: Events,
}

/// Borrows a live handle, refusing NULL and handles inherited through `fork()`.
///
/// # Safety
/// `ptr` is NULL or a live handle from `swimraft_coordinator_new`, not freed during `'a`.
pub(crate) unsafe fn handle_ref<'a>(
    ptr: *const swimraft_coordinator,
) -> Result<&'a swimraft_coordinator, Failure> {
    // SAFETY: caller contract.
    let handle = unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null("coordinator"))?;
    if handle.pid != current_pid() {
        return Err(runtime::forked("this coordinator handle", handle.pid));
    }
    Ok(handle)
}

/// Makes a coordinator from configuration; starts nothing and touches no network.
///
/// `config_json` is a JSON object of explicit configuration keys, e.g.
/// `{"node_id":"n1","swim_enabled":true,"membership_mode":"swim","swim_port":0}`; NULL, `""`
/// and `"null"` mean no explicit keys. Each key is the name of its `RINGRIFT_*` environment
/// variable in lower case without the prefix (durations in milliseconds, `_ms`). The
/// environment is read too: an explicit key beats its `RINGRIFT_*` variable, which beats the
/// preset (`preset`: `lan`, `wan` or `local`).
///
/// On success `*out` receives the handle. Errors: `SWIMRAFT_NULL_ARGUMENT` (`out`),
/// `SWIMRAFT_INVALID_UTF8`, `SWIMRAFT_INVALID_CONFIG` (the message names the key or variable,
/// quotes the value and says what is allowed; unknown keys are refused), `SWIMRAFT_FORKED`.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string; `out` is NULL or points to writable
/// memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_new(
    config_json: *const c_char,
    out: *mut *mut swimraft_coordinator,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_new", || {
        let out = out_ptr(out, "out")?;
        // SAFETY: caller contract.
        let json = unsafe { opt_arg_str(config_json, "config_json") }?.unwrap_or("");
        runtime::check_not_forked()?;
        let config = Config::from_json(json, true)?;
        let coordinator = Coordinator::new(config)?;
        let handle = Box::new(swimraft_coordinator {
            coordinator: Arc::new(coordinator),
            pid: current_pid(),
            events: Events::default(),
        });
        // SAFETY: checked by `out_ptr`, writable per the caller's contract.
        unsafe { write_out(out, Box::into_raw(handle)) };
        Ok(())
    })
}

/// Starts the parts the configured modes ask for (binds the SWIM socket and begins joining
/// through `swim_seeds`) and returns once they run; joining goes on in the background (watch
/// `swim.available` in the status, or the events). A second call while running does nothing.
/// In hybrid modes a part that cannot start is reported in the status
/// (`hybrid_status.*_fallback_reason`) and the call still succeeds.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_IO` (a socket could not be bound),
/// `SWIMRAFT_UNAVAILABLE` (`consensus_mode` `raft`, not in this build; or called from an async
/// runtime thread), `SWIMRAFT_SHUTDOWN` (after `_stop`: a stopped coordinator does not restart),
/// `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_start(
    coordinator: *mut swimraft_coordinator,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_start", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        block_on(handle.coordinator.start())??;
        Ok(())
    })
}

/// Leaves the cluster gracefully (peers see this node as `left`, not `failed`) and stops every
/// part; returns when they have stopped. Idempotent. Final: the handle keeps answering queries
/// (with no peers) but cannot start again.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_UNAVAILABLE` (called from an async runtime
/// thread), `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_stop(
    coordinator: *mut swimraft_coordinator,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_stop", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        block_on(handle.coordinator.stop())
    })
}

/// Releases a coordinator: stops it if it runs (as `_stop`), waits for an event callback in
/// flight, ends the dispatcher thread, then frees the memory. NULL does nothing. Must be the
/// last call on the handle, with no other call on it in progress; may be called from inside
/// the handle's own event callback.
///
/// Returns `SWIMRAFT_OK` once the handle is gone. `SWIMRAFT_FORKED`: the handle belongs to a
/// parent process and is deliberately leaked (its threads are not here to be stopped).
/// `SWIMRAFT_PANIC`: a bug; the handle is gone.
///
/// # Safety
/// `coordinator` is NULL or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_free(
    coordinator: *mut swimraft_coordinator,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_free", || {
        if coordinator.is_null() {
            return Ok(());
        }
        // SAFETY: non-NULL, live per the caller's contract; refuses fork children.
        unsafe { handle_ref(coordinator) }?;
        // SAFETY: made by `Box::into_raw` in `_new`; the caller gives up the pointer.
        let handle = unsafe { Box::from_raw(coordinator) };
        let swimraft_coordinator {
            coordinator,
            events,
            ..
        } = *handle;
        events.close();
        if coordinator.lifecycle() == Lifecycle::Running {
            // When blocking is impossible here (an async runtime thread), dropping the
            // coordinator still makes SWIM leave, in the background.
            let _ = block_on(coordinator.stop());
        }
        // Dropping the coordinator drops the event senders, which wakes the dispatcher.
        drop(coordinator);
        events.join();
        Ok(())
    })
}

/// Writes the status as a JSON object to `*out_json` (release it with `swimraft_string_free`):
/// `node_id`, `lifecycle` (`created`, `running`, `stopped`), `membership_mode`,
/// `consensus_mode`, `swim` (`enabled`, `available`, `started`, the member counts,
/// `local_addr`, `advertised_addr` as `"ip:port"` or null, `join_error`, `counters`), `raft`
/// and `hybrid_status` (fallback flags with reasons). Reads snapshots only; never blocks on
/// the network.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_status_json(
    coordinator: *const swimraft_coordinator,
    out_json: *mut *mut c_char,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_status_json", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        let out = out_ptr(out_json, "out_json")?;
        let json = owned_json(serde_json::to_string(&handle.coordinator.status()))?;
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, json) };
        Ok(())
    })
}

/// Writes the node ids of the live peers (alive or suspected, never this node), sorted, as a
/// JSON array of strings to `*out_json` (release it with `swimraft_string_free`). Which view
/// answers depends on `membership_mode`: `swim` SWIM only, `hybrid` SWIM and heartbeats, `http`
/// heartbeats only.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_alive_peers_json(
    coordinator: *const swimraft_coordinator,
    out_json: *mut *mut c_char,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_alive_peers_json", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        let out = out_ptr(out_json, "out_json")?;
        let json = owned_json(serde_json::to_string(&handle.coordinator.alive_peers()))?;
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, json) };
        Ok(())
    })
}

/// Writes SWIM's member list (every remembered member except this node, sorted by node id) as
/// a JSON array to `*out_json` (release it with `swimraft_string_free`). Each member is
/// `{"node_id", "addr": "ip:port", "state": "alive"|"suspected"|"failed"|"left",
/// "incarnation", "bump", "meta": {"host", "swim_port", "raft_port", "http_port", "roles"} or
/// null}`. Empty while SWIM is not running.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle; `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_members_json(
    coordinator: *const swimraft_coordinator,
    out_json: *mut *mut c_char,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_members_json", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        let out = out_ptr(out_json, "out_json")?;
        let json = owned_json(serde_json::to_string(&handle.coordinator.members()))?;
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, json) };
        Ok(())
    })
}

/// Writes to `*out` whether `node_id` is among the live peers (as
/// `swimraft_coordinator_alive_peers_json`; this node itself is not a peer).
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_INVALID_UTF8`, `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle; `node_id` is NULL or NUL-terminated; `out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_is_peer_alive(
    coordinator: *const swimraft_coordinator,
    node_id: *const c_char,
    out: *mut bool,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_is_peer_alive", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        // SAFETY: caller contract.
        let node_id = unsafe { arg_str(node_id, "node_id") }?;
        let out = out_ptr(out, "out")?;
        let alive = handle.coordinator.is_peer_alive(node_id);
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, alive) };
        Ok(())
    })
}

/// Writes to `*out` whether this node is the Raft leader, from the status's `raft.is_leader`.
/// This build has no consensus yet (the status reports Raft unavailable), so the answer is
/// `false`; the legacy Bully leader is the orchestrator's own business.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_is_leader(
    coordinator: *const swimraft_coordinator,
    out: *mut bool,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_is_leader", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        let out = out_ptr(out, "out")?;
        let is_leader = handle.coordinator.status().raft.is_leader;
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, is_leader) };
        Ok(())
    })
}

/// Writes the Raft leader's node id to `*out` (release it with `swimraft_string_free`), `""`
/// when there is none; from the status's `raft.leader_id`. This build has no consensus yet,
/// so it is `""`.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_leader_id(
    coordinator: *const swimraft_coordinator,
    out: *mut *mut c_char,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_leader_id", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        let out = out_ptr(out, "out")?;
        let leader = owned_c_string(handle.coordinator.status().raft.leader_id)?;
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, leader) };
        Ok(())
    })
}
