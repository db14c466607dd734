//! The `swimraft_coordinator` handle: make, start, stop, free, and the read-only queries.

use std::ffi::c_char;
use std::sync::Arc;

use swimraft_core::coordinator::Lifecycle;
use swimraft_core::{Config, Coordinator};

use crate::error::{ffi_call, swimraft_result, Failure};
use crate::events::Events;
use crate::runtime::{self, block_on, current_pid};
use crate::strings::{arg_str, opt_arg_str, out_ptr, owned_c_string, owned_json, write_out};

/// A coordinator: one node's membership (SWIM) and consensus (Raft with the replicated state).
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
/// `SWIMRAFT_UNAVAILABLE` (called from an async runtime thread), `SWIMRAFT_SHUTDOWN` (after `_stop`: a stopped coordinator does not restart),
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
/// True only while this node is the Raft leader with a quorum acknowledgement younger than the
/// minimum election timeout; `false` in bully mode (the legacy Bully leader is the
/// orchestrator's own business) and while Raft is not running.
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
        let is_leader = handle.coordinator.is_leader();
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, is_leader) };
        Ok(())
    })
}

/// Writes the Raft leader's node id to `*out` (release it with `swimraft_string_free`), `""`
/// when there is none (no Raft, or an election in progress).
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
        let leader = owned_c_string(handle.coordinator.leader_id())?;
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, leader) };
        Ok(())
    })
}

/// Runs one operation on the replicated state and writes its JSON result to `*out_json`
/// (release it with `swimraft_string_free`). `op_json` is one of:
///
/// * `{"write": {"command": {...}, "request_id": "optional idempotency key"}}` — commands such as
///   `{"work_add": {"item": {"work_id": "w1", "work_type": "selfplay"}, "force": false}}`,
///   `{"work_claim_next": {"node_id": "n1", "capabilities": null}}`,
///   `{"work_complete": {"work_id": "w1", "result": {}, "node_id": null}}`,
///   `{"job_assign": {...}}`, `{"lock_acquire": {"name": "l", "holder": "h", "ttl_us": 300000000}}`,
///   `{"kv_set": {"key": "k", "value": 1}}`, `{"kv_compare_and_set": {...}}`; the result is
///   `{"work_id": "w1"}`, `{"bool": true}`, `{"item": {...}|null}`, `{"token": 7|null}`, `"unit"`, ...
/// * `{"read": {"query": {"work_get": {"work_id": "w1"}}, "stale_ok": false}}` (also `work_list`,
///   `work_history`, `"work_stats"`, `job_get`, `jobs_for_node`, `"job_stats"`, `lock_holder`,
///   `kv_get`, `kv_list`); the result is the value (`null` when not found);
/// * `{"add_voter": {"node_id": "n4", "address": "10.0.0.4:4321"}}`, `{"remove_voter": {"node_id": "n4"}}`.
///
/// `timeout_ms` bounds the call (0 = the default 5 s). Blocks the calling thread; call it from
/// a plain thread. From an event callback it works but holds up every event behind it for as
/// long as the operation waits (a leader election, a quorum), so hand it to another thread.
///
/// Errors: `SWIMRAFT_NULL_ARGUMENT`, `SWIMRAFT_INVALID_UTF8`, `SWIMRAFT_INVALID_ARGUMENT`
/// (malformed operation, refused argument, duplicate id), `SWIMRAFT_BACKPRESSURE`,
/// `SWIMRAFT_UNAVAILABLE` (not applied: no leader, Raft not running, bully mode — retry),
/// `SWIMRAFT_TIMEOUT` (outcome unknown), `SWIMRAFT_SHUTDOWN`, `SWIMRAFT_FORKED`.
///
/// # Safety
/// `coordinator` is NULL or a live handle; `op_json` is NULL or a NUL-terminated string;
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn swimraft_coordinator_execute(
    coordinator: *const swimraft_coordinator,
    op_json: *const c_char,
    timeout_ms: u32,
    out_json: *mut *mut c_char,
) -> swimraft_result {
    ffi_call("swimraft_coordinator_execute", || {
        // SAFETY: caller contract.
        let handle = unsafe { handle_ref(coordinator) }?;
        let out = out_ptr(out_json, "out_json")?;
        // SAFETY: caller contract.
        let text = unsafe { arg_str(op_json, "op_json") }?;
        let op = swimraft_core::ops::parse(text)?;
        let timeout =
            (timeout_ms > 0).then(|| std::time::Duration::from_millis(u64::from(timeout_ms)));
        let coordinator = handle.coordinator.clone();
        let value =
            block_on(async move { swimraft_core::ops::execute(&coordinator, op, timeout).await })??;
        let json = owned_c_string(value.to_string())?;
        // SAFETY: checked by `out_ptr`.
        unsafe { write_out(out, json) };
        Ok(())
    })
}
