//! The process-wide tokio runtime, created on first use, and the fork guard.
//!
//! A forked child inherits the runtime's memory but not its threads, so every entry point
//! checks the pid first and raises a clear error instead of hanging.

use std::sync::OnceLock;
use swimraft_core::{Error, ErrorKind, Result};
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<(u32, Runtime)> = OnceLock::new();
static FIRST_PID: OnceLock<u32> = OnceLock::new();

/// Errors when called in a process forked after swimraft was first used.
pub fn check_fork() -> Result<()> {
    let pid = std::process::id();
    let first = *FIRST_PID.get_or_init(|| pid);
    if first != pid {
        return Err(Error::new(
            ErrorKind::Shutdown,
            format!(
                "swimraft was initialized in process {first} and cannot be used after fork() \
                 (this is process {pid}); create coordinators in the child only"
            ),
        ));
    }
    Ok(())
}

/// The runtime (two worker threads: the machine's cores; SWIM tasks never block).
pub fn get() -> Result<&'static Runtime> {
    check_fork()?;
    if let Some((_, rt)) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("swimraft-worker")
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot start the tokio runtime: {e}"),
            )
        })?;
    let _ = RUNTIME.set((std::process::id(), rt));
    RUNTIME
        .get()
        .map(|(_, rt)| rt)
        .ok_or_else(|| Error::new(ErrorKind::Io, "tokio runtime unavailable"))
}
