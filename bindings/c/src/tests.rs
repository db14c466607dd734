//! Unit tests of the boundary itself: result codes, NULL handling, the panic boundary, fork
//! detection and the event dispatcher. `tests/c/` drives the same functions from C.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use swimraft_core::ErrorKind;

use crate::coordinator::*;
use crate::error::{ffi_call, swimraft_result, swimraft_result::*, Failure};
use crate::events::swimraft_coordinator_set_event_callback;
use crate::strings::{swimraft_string_free, swimraft_version};

fn last_error() -> String {
    // SAFETY: never NULL, NUL-terminated, valid until the next call on this thread.
    unsafe { CStr::from_ptr(crate::error::swimraft_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn c(text: &str) -> CString {
    CString::new(text).expect("no NUL in test strings")
}

fn new_coordinator(json: &str) -> *mut swimraft_coordinator {
    let json = c(json);
    let mut out = ptr::null_mut();
    // SAFETY: valid string and out-parameter.
    let code = unsafe { swimraft_coordinator_new(json.as_ptr(), &mut out) };
    assert_eq!(code, SWIMRAFT_OK, "{}", last_error());
    assert!(!out.is_null());
    out
}

fn free(handle: *mut swimraft_coordinator) {
    // SAFETY: a live handle from `new_coordinator`.
    assert_eq!(unsafe { swimraft_coordinator_free(handle) }, SWIMRAFT_OK);
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "swimraft-c-unit-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn node_config(node_id: &str, dir: &TempDir, seed: Option<&str>) -> String {
    let mut config = serde_json::json!({
        "node_id": node_id,
        "swim_enabled": true,
        "membership_mode": "swim",
        "preset": "local",
        "bind_host": "127.0.0.1",
        "advertise_host": "127.0.0.1",
        "swim_port": 0,
        "raft_port": 0,
        "cluster_name": format!("c-unit-{}", std::process::id()),
        "data_dir": dir.0.to_string_lossy(),
    });
    if let Some(seed) = seed {
        config["swim_seeds"] = seed.into();
    }
    config.to_string()
}

fn take_string(ptr: *mut c_char) -> String {
    assert!(!ptr.is_null());
    // SAFETY: a string returned by swimraft, freed right after.
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: as above.
    unsafe { swimraft_string_free(ptr) };
    text
}

fn status(handle: *const swimraft_coordinator) -> serde_json::Value {
    let mut out = ptr::null_mut();
    // SAFETY: live handle, valid out-parameter.
    let code = unsafe { swimraft_coordinator_status_json(handle, &mut out) };
    assert_eq!(code, SWIMRAFT_OK, "{}", last_error());
    serde_json::from_str(&take_string(out)).expect("status is JSON")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn result_codes_are_the_error_kind_numbers() {
    let kinds = [
        ErrorKind::InvalidConfig,
        ErrorKind::NotLeader,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Storage,
        ErrorKind::Shutdown,
        ErrorKind::Protocol,
        ErrorKind::Backpressure,
        ErrorKind::LockHeld,
        ErrorKind::NotFound,
        ErrorKind::InvalidArgument,
        ErrorKind::Io,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let code = swimraft_result::from_kind(kind) as u32;
        assert_eq!(code, kind as u32, "{kind}");
        assert_eq!(code as usize, i + 1);
    }
    assert_eq!(SWIMRAFT_OK as u32, 0);
    assert_eq!(SWIMRAFT_NULL_ARGUMENT as u32, 100);
    assert_eq!(SWIMRAFT_PANIC as u32, 101);
    assert_eq!(SWIMRAFT_INVALID_UTF8 as u32, 102);
    assert_eq!(SWIMRAFT_FORKED as u32, 103);
}

#[test]
fn panic_boundary_catches_every_payload() {
    let code = ffi_call("swimraft_test_export", || panic!("boom {}", 42));
    assert_eq!(code, SWIMRAFT_PANIC);
    let message = last_error();
    assert!(message.starts_with("swimraft_test_export: "), "{message}");
    assert!(message.contains("boom 42"), "{message}");

    assert_eq!(ffi_call("static_str", || panic!("plain")), SWIMRAFT_PANIC);
    assert!(last_error().contains("plain"));
    assert_eq!(
        ffi_call("any", || std::panic::panic_any(7_u8)),
        SWIMRAFT_PANIC
    );
    assert!(last_error().contains("non-text payload"));

    // A success clears the message; a failure sets it with its code.
    assert_eq!(ffi_call("ok", || Ok(())), SWIMRAFT_OK);
    assert_eq!(last_error(), "");
    let code = ffi_call("fails", || {
        Err(Failure::from(swimraft_core::Error::new(
            ErrorKind::NotFound,
            "no such thing",
        )))
    });
    assert_eq!(code, SWIMRAFT_NOT_FOUND);
    assert_eq!(last_error(), "fails: not_found: no such thing");
    // Interior NULs in messages do not truncate them.
    ffi_call("nul", || Err(Failure::new(SWIMRAFT_IO, "a\0b")));
    assert_eq!(last_error(), "nul: a\\0b");
}

#[test]
fn null_arguments_are_errors_and_outputs_stay_untouched() {
    let sentinel = ptr::dangling_mut::<c_char>();
    let mut text = sentinel;
    let mut flag = true;
    let null = ptr::null_mut::<swimraft_coordinator>();
    // SAFETY: NULL handles and valid out-parameters; every call must refuse before touching them.
    unsafe {
        assert_eq!(
            swimraft_coordinator_new(ptr::null(), ptr::null_mut()),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert!(last_error().contains("`out`"), "{}", last_error());
        assert_eq!(swimraft_coordinator_start(null), SWIMRAFT_NULL_ARGUMENT);
        assert_eq!(swimraft_coordinator_stop(null), SWIMRAFT_NULL_ARGUMENT);
        assert_eq!(swimraft_coordinator_free(null), SWIMRAFT_OK);
        assert_eq!(
            swimraft_coordinator_status_json(null, &mut text),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert!(last_error().contains("`coordinator`"), "{}", last_error());
        assert_eq!(
            swimraft_coordinator_alive_peers_json(null, &mut text),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_members_json(null, &mut text),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_leader_id(null, &mut text),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_is_leader(null, &mut flag),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_is_peer_alive(null, c"x".as_ptr(), &mut flag),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_set_event_callback(null, None, ptr::null_mut()),
            SWIMRAFT_NULL_ARGUMENT
        );
        swimraft_string_free(ptr::null_mut());
    }
    assert_eq!(text, sentinel);
    assert!(flag);

    let handle = new_coordinator(r#"{"node_id": "unit-null"}"#);
    // SAFETY: a live handle; NULL or invalid secondary arguments.
    unsafe {
        assert_eq!(
            swimraft_coordinator_status_json(handle, ptr::null_mut()),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert!(last_error().contains("`out_json`"), "{}", last_error());
        assert_eq!(
            swimraft_coordinator_is_peer_alive(handle, ptr::null(), &mut flag),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_is_peer_alive(handle, c"\xff".as_ptr(), &mut flag),
            SWIMRAFT_INVALID_UTF8
        );
        assert!(last_error().contains("node_id"), "{}", last_error());
        assert_eq!(
            swimraft_coordinator_is_peer_alive(handle, c"x".as_ptr(), ptr::null_mut()),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_is_leader(handle, ptr::null_mut()),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_leader_id(handle, ptr::null_mut()),
            SWIMRAFT_NULL_ARGUMENT
        );
        assert_eq!(
            swimraft_coordinator_is_peer_alive(handle, c"x".as_ptr(), &mut flag),
            SWIMRAFT_OK
        );
    }
    assert!(!flag);
    free(handle);
}

#[test]
fn configuration_errors_name_the_key() {
    let mut out = ptr::null_mut();
    for (json, code, words) in [
        (
            r#"{"swim_port": "abc"}"#,
            SWIMRAFT_INVALID_CONFIG,
            &["swim_port", "abc"][..],
        ),
        (
            r#"{"membership_mode": "swim", "swim_enabled": false}"#,
            SWIMRAFT_INVALID_CONFIG,
            &["membership_mode", "swim_enabled"][..],
        ),
        (r#"{"bogus": 1}"#, SWIMRAFT_INVALID_CONFIG, &["bogus"][..]),
        (
            "{not json",
            SWIMRAFT_INVALID_CONFIG,
            &["not valid JSON"][..],
        ),
    ] {
        let json = c(json);
        // SAFETY: valid string and out-parameter.
        assert_eq!(
            unsafe { swimraft_coordinator_new(json.as_ptr(), &mut out) },
            code
        );
        let message = last_error();
        assert!(
            message.starts_with("swimraft_coordinator_new: invalid_config: "),
            "{message}"
        );
        for word in words {
            assert!(message.contains(word), "{message} lacks {word}");
        }
    }
    // SAFETY: a NUL-terminated, non-UTF-8 string.
    let code = unsafe { swimraft_coordinator_new(c"{\"node_id\":\"\xff\"}".as_ptr(), &mut out) };
    assert_eq!(code, SWIMRAFT_INVALID_UTF8);
    assert!(out.is_null());
    // NULL and "" mean no explicit keys.
    // SAFETY: valid out-parameter.
    assert_eq!(
        unsafe { swimraft_coordinator_new(ptr::null(), &mut out) },
        SWIMRAFT_OK
    );
    free(out);
    free(new_coordinator(""));
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(swimraft_version()) };
    assert_eq!(version.to_str(), Ok(env!("CARGO_PKG_VERSION")));
}

#[test]
fn handles_from_another_process_are_refused() {
    let handle = new_coordinator(r#"{"node_id": "unit-fork"}"#);
    // Pretend the handle was inherited through fork() from another process.
    // SAFETY: a live handle, not shared with other threads.
    let real_pid = unsafe { (*handle).pid };
    unsafe { (*handle).pid = real_pid.wrapping_add(1) };
    let mut text = ptr::null_mut();
    // SAFETY: a live handle and valid out-parameters.
    unsafe {
        assert_eq!(
            swimraft_coordinator_status_json(handle, &mut text),
            SWIMRAFT_FORKED
        );
        assert!(last_error().contains("fork()"), "{}", last_error());
        assert_eq!(swimraft_coordinator_start(handle), SWIMRAFT_FORKED);
        assert_eq!(swimraft_coordinator_free(handle), SWIMRAFT_FORKED);
    }
    assert!(text.is_null());
    // Still alive (free refused and leaked it): restore and free it for real.
    // SAFETY: as above.
    unsafe { (*handle).pid = real_pid };
    free(handle);
}

#[test]
fn blocking_calls_are_refused_inside_an_async_runtime() {
    let handle = new_coordinator(r#"{"node_id": "unit-async"}"#);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let handle_addr = handle as usize;
    let code = runtime.block_on(async move {
        // SAFETY: a live handle.
        unsafe { swimraft_coordinator_start(handle_addr as *mut swimraft_coordinator) }
    });
    assert_eq!(code, SWIMRAFT_UNAVAILABLE);
    assert!(last_error().contains("tokio runtime"), "{}", last_error());
    free(handle);
}

#[test]
fn start_stop_and_no_restart() {
    let dir = TempDir::new("lifecycle");
    let handle = new_coordinator(&node_config("unit-life", &dir, None));
    // SAFETY: a live handle.
    unsafe {
        assert_eq!(swimraft_coordinator_start(handle), SWIMRAFT_OK);
        assert_eq!(swimraft_coordinator_start(handle), SWIMRAFT_OK);
    }
    let s = status(handle);
    assert_eq!(s["lifecycle"], "running");
    assert!(s["swim"]["advertised_addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    let (mut leader, mut leader_id) = (true, ptr::null_mut());
    // SAFETY: a live handle and valid out-parameters.
    unsafe {
        assert_eq!(
            swimraft_coordinator_is_leader(handle, &mut leader),
            SWIMRAFT_OK
        );
        assert_eq!(
            swimraft_coordinator_leader_id(handle, &mut leader_id),
            SWIMRAFT_OK
        );
        assert_eq!(swimraft_coordinator_stop(handle), SWIMRAFT_OK);
        assert_eq!(swimraft_coordinator_stop(handle), SWIMRAFT_OK);
        assert_eq!(swimraft_coordinator_start(handle), SWIMRAFT_SHUTDOWN);
    }
    assert!(!leader);
    assert_eq!(take_string(leader_id), "");
    assert!(last_error().starts_with("swimraft_coordinator_start: shutdown: "));
    assert_eq!(status(handle)["lifecycle"], "stopped");
    free(handle);
}

/// State shared with `free_self_on_event`.
struct SelfFree {
    handle: AtomicPtr<swimraft_coordinator>,
    result: AtomicU32,
    done: AtomicBool,
}

unsafe extern "C" fn free_self_on_event(event_json: *const c_char, userdata: *mut c_void) {
    // SAFETY: userdata is the `SelfFree` the test keeps alive until `done`.
    let state = unsafe { &*(userdata as *const SelfFree) };
    // SAFETY: valid during the call.
    let event = unsafe { CStr::from_ptr(event_json) }.to_string_lossy();
    assert!(event.contains(r#""type":"member""#), "{event}");
    let handle = state.handle.swap(ptr::null_mut(), Ordering::SeqCst);
    if !handle.is_null() {
        // SAFETY: our own live handle, freed from inside its callback (documented as allowed).
        let result = unsafe { swimraft_coordinator_free(handle) };
        state.result.store(result as u32, Ordering::SeqCst);
        state.done.store(true, Ordering::SeqCst);
    }
}

unsafe extern "C" fn count_event(_event_json: *const c_char, userdata: *mut c_void) {
    // SAFETY: userdata is an `AtomicUsize` the test keeps alive.
    unsafe { &*(userdata as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn events_reach_the_callback_and_a_callback_may_free_its_handle() {
    let (dir_a, dir_b) = (TempDir::new("ev-a"), TempDir::new("ev-b"));
    let a = new_coordinator(&node_config("unit-ev-a", &dir_a, None));
    let counter = AtomicUsize::new(0);
    // SAFETY: live handle; the counter outlives the registration (removed before it drops).
    unsafe {
        let userdata = &counter as *const AtomicUsize as *mut c_void;
        assert_eq!(
            swimraft_coordinator_set_event_callback(a, Some(count_event), userdata),
            SWIMRAFT_OK
        );
        assert_eq!(swimraft_coordinator_start(a), SWIMRAFT_OK);
    }
    let seed = status(a)["swim"]["advertised_addr"]
        .as_str()
        .expect("advertised")
        .to_string();

    let b = new_coordinator(&node_config("unit-ev-b", &dir_b, Some(&seed)));
    let state = SelfFree {
        handle: AtomicPtr::new(b),
        result: AtomicU32::new(u32::MAX),
        done: AtomicBool::new(false),
    };
    // SAFETY: live handle; `state` outlives the dispatcher (we wait for `done`).
    unsafe {
        let userdata = &state as *const SelfFree as *mut c_void;
        assert_eq!(
            swimraft_coordinator_set_event_callback(b, Some(free_self_on_event), userdata),
            SWIMRAFT_OK
        );
        assert_eq!(swimraft_coordinator_start(b), SWIMRAFT_OK);
    }
    // b's first event (a is alive) frees b from inside the callback.
    wait_until("b to free itself", || state.done.load(Ordering::SeqCst));
    assert_eq!(state.result.load(Ordering::SeqCst), SWIMRAFT_OK as u32);
    wait_until("a to see b come and go", || {
        counter.load(Ordering::SeqCst) >= 2
    });

    // SAFETY: a live handle.
    unsafe {
        assert_eq!(
            swimraft_coordinator_set_event_callback(a, None, ptr::null_mut()),
            SWIMRAFT_OK
        );
    }
    free(a);
}
