//! The one tokio runtime of the process, made on first use, and fork detection.
//!
//! After `fork()` only the forking thread exists in the child: the runtime's workers, the
//! dispatcher threads and every lock they held stay behind in the parent. Anything made before
//! the fork (the runtime, handles) is refused in the child with `SWIMRAFT_FORKED` instead of
//! hanging on threads that will never answer.

use std::future::Future;
use std::sync::{Mutex, OnceLock, PoisonError};

use tokio::runtime::{Builder, Runtime};

use crate::error::{swimraft_result, Failure};

/// Worker threads of the shared runtime (DESIGN.md §9: two workers; blocking work such as
/// SQLite and fsync gets its own threads).
const WORKER_THREADS: usize = 2;

struct Shared {
    runtime: Runtime,
    /// The process that made the runtime.
    pid: u32,
}

static RUNTIME: OnceLock<Shared> = OnceLock::new();
/// Serializes the first construction (`OnceLock::get_or_try_init` is not stable).
static INIT: Mutex<()> = Mutex::new(());

/// The id of the calling process.
pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// `SWIMRAFT_FORKED` with a message that says what was made where.
pub(crate) fn forked(what: &str, owner_pid: u32) -> Failure {
    Failure::new(
        swimraft_result::SWIMRAFT_FORKED,
        format!(
            "{what} was made in process {owner_pid}, and this is process {}, a child of fork(): \
             the threads that serve it do not exist here. Use swimraft in the child only after \
             exec(), or make coordinators only in processes that did not inherit them",
            current_pid()
        ),
    )
}

/// Fails with `SWIMRAFT_FORKED` when the runtime exists and belongs to a parent process.
pub(crate) fn check_not_forked() -> Result<(), Failure> {
    match RUNTIME.get() {
        Some(shared) if shared.pid != current_pid() => {
            Err(forked("the swimraft runtime", shared.pid))
        }
        _ => Ok(()),
    }
}

/// The shared runtime, made on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, Failure> {
    if let Some(shared) = RUNTIME.get() {
        check_not_forked()?;
        return Ok(&shared.runtime);
    }
    let _guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(shared) = RUNTIME.get() {
        return Ok(&shared.runtime);
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .thread_name("swimraft-rt")
        .enable_all()
        .build()
        .map_err(|err| {
            Failure::new(
                swimraft_result::SWIMRAFT_IO,
                format!("cannot start the tokio runtime: {err}"),
            )
        })?;
    let shared = RUNTIME.get_or_init(|| Shared {
        runtime,
        pid: current_pid(),
    });
    Ok(&shared.runtime)
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread.
///
/// Refused on a thread that is itself driving a tokio runtime (an engine worker, or a caller's
/// async task): blocking there would stall the tasks it runs, and tokio panics on it.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output, Failure> {
    let runtime = runtime()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Failure::new(
            swimraft_result::SWIMRAFT_UNAVAILABLE,
            "blocking call made from a thread that runs a tokio runtime (an async task or a \
             swimraft engine thread); call it from a plain thread",
        ));
    }
    Ok(runtime.block_on(future))
}
