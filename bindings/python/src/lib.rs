//! `swimraft._native`: the PyO3 module under the pure-Python `swimraft` package.
//!
//! Conversion only: configuration and status cross as JSON text, errors map by
//! [`ErrorKind`] to the exception classes defined in `swimraft/errors.py`, every blocking call
//! releases the GIL, and one tokio runtime serves the whole process. The ergonomic API
//! (keyword arguments, asyncio, callbacks) lives in Python. A panic inside the engine never
//! crosses into Python as such: [`boundary`] turns it into `SwimraftError(kind="panic")`.

mod boundary;
mod runtime;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swimraft_core::coordinator::{Coordinator, Event};
use swimraft_core::{ops, Config, Error, ErrorKind};

use boundary::{Completion, CompletionSlot, Failure};

/// A caller's timeout in seconds: `None` (the engine's default) or a finite number in
/// (0, 86400].
fn engine_timeout(timeout_s: Option<f64>) -> Result<Option<Duration>, Error> {
    match timeout_s {
        None => Ok(None),
        Some(t) if t.is_finite() && t > 0.0 && t <= 86_400.0 => {
            Ok(Some(Duration::from_secs_f64(t)))
        }
        Some(t) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("timeout must be a number of seconds in (0, 86400], got {t}"),
        )),
    }
}

fn timeout_of(timeout_s: Option<f64>) -> PyResult<Option<Duration>> {
    engine_timeout(timeout_s).map_err(to_py)
}

/// The Python exception class (in `swimraft.errors`) for an error kind.
fn exception_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidConfig => "ConfigError",
        ErrorKind::NotLeader => "NotLeaderError",
        ErrorKind::Unavailable => "UnavailableError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::Storage => "StorageError",
        ErrorKind::Shutdown => "ShutdownError",
        ErrorKind::Backpressure => "BackpressureError",
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Protocol | ErrorKind::LockHeld | ErrorKind::NotFound | ErrorKind::Io => {
            "SwimraftError"
        }
    }
}

/// An engine error as Python sees it: exception class name, message, kind name.
fn failure_of(err: &Error) -> Failure {
    (
        exception_name(err.kind()).to_string(),
        err.message().to_string(),
        err.kind().name().to_string(),
    )
}

/// Builds the `swimraft.errors` exception `class(message, kind)`.
fn failure_to_py((class, message, kind): Failure) -> PyErr {
    Python::attach(|py| {
        let class_obj = py
            .import("swimraft.errors")
            .and_then(|m| m.getattr(class.as_str()))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class_obj {
            Ok(class_obj) => PyErr::from_type(class_obj, (message, kind)),
            Err(_) => PyRuntimeError::new_err(format!("{kind}: {message}")),
        }
    })
}

/// Converts an engine error into the matching `swimraft.errors` exception.
fn to_py(err: Error) -> PyErr {
    failure_to_py(failure_of(&err))
}

/// Runs a method body behind the panic boundary (see [`boundary`]).
fn guarded<T>(body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    boundary::catch(body).unwrap_or_else(|failure| Err(failure_to_py(failure)))
}

/// Resolves a configuration: `explicit_json` is an object of explicit keys; the environment
/// is consulted when `use_env`. Returns the effective configuration as JSON text (secrets
/// redacted) or raises `ConfigError`.
#[pyfunction]
#[pyo3(signature = (explicit_json, use_env=true))]
fn resolve_config(explicit_json: &str, use_env: bool) -> PyResult<String> {
    runtime::check_fork().map_err(to_py)?;
    let config = Config::from_json(explicit_json, use_env).map_err(to_py)?;
    Ok(config.to_json().to_string())
}

/// The engine's version.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// A coordinator owned by Python. All methods are safe to call from any thread.
#[pyclass(frozen, module = "swimraft._native")]
struct NativeCoordinator {
    inner: Arc<Coordinator>,
    events: Mutex<Option<Receiver<Event>>>,
    completions_tx: Mutex<Sender<Completion>>,
    completions: Mutex<Receiver<Completion>>,
}

#[pymethods]
impl NativeCoordinator {
    /// Builds a coordinator (no network): raises `ConfigError` on a bad configuration.
    #[new]
    #[pyo3(signature = (explicit_json, use_env=true))]
    fn new(explicit_json: &str, use_env: bool) -> PyResult<Self> {
        guarded(|| {
            runtime::check_fork().map_err(to_py)?;
            let config = Config::from_json(explicit_json, use_env).map_err(to_py)?;
            let inner = Arc::new(Coordinator::new(config).map_err(to_py)?);
            let events = inner.subscribe();
            let (completions_tx, completions) = mpsc::channel();
            Ok(NativeCoordinator {
                inner,
                events: Mutex::new(Some(events)),
                completions_tx: Mutex::new(completions_tx),
                completions: Mutex::new(completions),
            })
        })
    }

    /// This node's id.
    #[getter]
    fn node_id(&self) -> PyResult<String> {
        guarded(|| Ok(self.inner.node_id().to_string()))
    }

    /// The effective configuration as JSON text (secrets redacted).
    fn config_json(&self) -> PyResult<String> {
        guarded(|| Ok(self.inner.config().to_json().to_string()))
    }

    /// Starts the configured parts; blocks (without the GIL) until they run.
    fn start(&self, py: Python<'_>) -> PyResult<bool> {
        let rt = runtime::get().map_err(to_py)?;
        let inner = self.inner.clone();
        py.detach(move || boundary::catch(|| rt.block_on(inner.start())))
            .map_err(failure_to_py)?
            .map_err(to_py)
    }

    /// Leaves the cluster and stops; blocks (without the GIL). Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let rt = runtime::get().map_err(to_py)?;
        let inner = self.inner.clone();
        py.detach(move || boundary::catch(|| rt.block_on(inner.stop())))
            .map_err(failure_to_py)
    }

    /// `running`, `created` or `stopped`.
    fn lifecycle(&self) -> PyResult<String> {
        guarded(|| {
            Ok(serde_json::to_value(self.inner.lifecycle())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default())
        })
    }

    /// The status snapshot as JSON text (no network, no waiting on the engine).
    fn status_json(&self) -> PyResult<String> {
        guarded(|| {
            serde_json::to_string(&self.inner.status())
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
    }

    /// SWIM's member list as JSON text.
    fn members_json(&self) -> PyResult<String> {
        guarded(|| {
            serde_json::to_string(&self.inner.members())
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
        })
    }

    /// Alive and suspected peers (never this node).
    fn alive_peers(&self) -> PyResult<Vec<String>> {
        guarded(|| Ok(self.inner.alive_peers()))
    }

    /// True when `node_id` is an alive or suspected peer.
    fn is_peer_alive(&self, node_id: &str) -> PyResult<bool> {
        guarded(|| Ok(self.inner.is_peer_alive(node_id)))
    }

    /// True while this node is the Raft leader (fresh quorum acknowledgement).
    fn is_leader(&self) -> PyResult<bool> {
        guarded(|| Ok(self.inner.is_leader()))
    }

    /// The Raft leader's id, `""` when none.
    fn leader_id(&self) -> PyResult<String> {
        guarded(|| Ok(self.inner.leader_id()))
    }

    /// Runs one JSON operation (see `swimraft_core::ops`) and returns its JSON result; blocks
    /// without the GIL until done or `timeout_s` (default 5 s) passes.
    #[pyo3(signature = (op_json, timeout_s=None))]
    fn call(&self, py: Python<'_>, op_json: &str, timeout_s: Option<f64>) -> PyResult<String> {
        let rt = runtime::get().map_err(to_py)?;
        let op = ops::parse(op_json).map_err(to_py)?;
        let timeout = timeout_of(timeout_s)?;
        let inner = self.inner.clone();
        let value = py
            .detach(move || boundary::catch(|| rt.block_on(ops::execute(&inner, op, timeout))))
            .map_err(failure_to_py)?
            .map_err(to_py)?;
        Ok(value.to_string())
    }

    /// Starts JSON operations without waiting: `[(op_json, token, timeout_s)]`, all the
    /// operations one event-loop iteration asked for. Each outcome arrives, tagged with its
    /// token, from `next_completions`, except for an operation refused before it started
    /// (malformed JSON, a bad timeout, a stopped runtime): those are returned at once, as
    /// `[(token, (class, message, kind))]`.
    ///
    /// Why a batch: every operation needs a task on the runtime, and a task handed in from
    /// outside the runtime wakes a parked worker thread (a system call, made with the GIL held).
    /// One call per iteration hands in one task that starts the others from inside, so 64
    /// clients cost one wake-up where they cost 64.
    fn submit_many(&self, ops: Vec<(String, u64, Option<f64>)>) -> PyResult<Vec<(u64, Failure)>> {
        guarded(|| {
            let mut refused = Vec::new();
            let rt = match runtime::get() {
                Ok(rt) => rt,
                Err(err) => {
                    let failure = failure_of(&err);
                    return Ok(ops
                        .into_iter()
                        .map(|(_, token, _)| (token, failure.clone()))
                        .collect());
                }
            };
            let done = self
                .completions_tx
                .lock()
                .map_err(|_| PyRuntimeError::new_err("completion channel poisoned"))?
                .clone();
            let mut started = Vec::with_capacity(ops.len());
            for (op_json, token, timeout_s) in ops {
                let parsed =
                    ops::parse(&op_json).and_then(|op| Ok((op, engine_timeout(timeout_s)?)));
                match parsed {
                    // The slot answers even if the operation panics (see `boundary`).
                    Ok((op, timeout)) => {
                        started.push((op, timeout, CompletionSlot::new(token, done.clone())))
                    }
                    Err(err) => refused.push((token, failure_of(&err))),
                }
            }
            if !started.is_empty() {
                let inner = self.inner.clone();
                rt.spawn(async move {
                    for (op, timeout, slot) in started {
                        let inner = inner.clone();
                        tokio::spawn(async move {
                            let outcome = match ops::execute(&inner, op, timeout).await {
                                Ok(value) => Ok(value.to_string()),
                                Err(err) => Err(failure_of(&err)),
                            };
                            slot.send(outcome);
                        });
                    }
                });
            }
            Ok(refused)
        })
    }

    /// Waits up to `timeout_ms` (without the GIL) for finished operations and returns all
    /// that are ready at once, so one event-loop wake-up completes many futures:
    /// `[(token, ok, payload, class, kind)]` with payload the result JSON or the error message,
    /// `class` the exception class name and `kind` the error kind (both `""` on success).
    #[allow(clippy::type_complexity)]
    fn next_completions(
        &self,
        py: Python<'_>,
        timeout_ms: u64,
    ) -> PyResult<Vec<(u64, bool, String, String, String)>> {
        guarded(|| {
            let completions = &self.completions;
            let batch: Vec<Completion> = py.detach(|| {
                let Ok(receiver) = completions.lock() else {
                    return Vec::new();
                };
                let mut batch = Vec::new();
                if let Ok(first) = receiver.recv_timeout(Duration::from_millis(timeout_ms)) {
                    batch.push(first);
                    batch.extend(receiver.try_iter().take(4095));
                }
                batch
            });
            Ok(batch
                .into_iter()
                .map(|(token, outcome)| match outcome {
                    Ok(json) => (token, true, json, String::new(), String::new()),
                    Err((class, message, kind)) => (token, false, message, class, kind),
                })
                .collect())
        })
    }

    /// Records an HTTP heartbeat from a peer (legacy membership view).
    fn record_heartbeat(&self, node_id: &str) -> PyResult<()> {
        guarded(|| {
            self.inner.record_heartbeat(node_id);
            Ok(())
        })
    }

    /// Waits up to `timeout_ms` (without the GIL) for events; returns them as JSON texts, an
    /// empty list on timeout, or `None` once the event stream has ended.
    fn next_events(&self, py: Python<'_>, timeout_ms: u64) -> PyResult<Option<Vec<String>>> {
        guarded(|| {
            let events = &self.events;
            let batch = py.detach(|| {
                // One reader at a time; the lock is taken without the GIL.
                let guard = events.lock().ok()?;
                let receiver = guard.as_ref()?;
                let mut batch = Vec::new();
                match receiver.recv_timeout(Duration::from_millis(timeout_ms)) {
                    Ok(first) => batch.push(first),
                    Err(RecvTimeoutError::Timeout) => return Some(batch),
                    Err(RecvTimeoutError::Disconnected) => return None,
                }
                batch.extend(receiver.try_iter().take(1023));
                Some(batch)
            });
            Ok(batch.map(|batch| {
                batch
                    .iter()
                    .filter_map(|e| serde_json::to_string(e).ok())
                    .collect()
            }))
        })
    }
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeCoordinator>()?;
    m.add_function(wrap_pyfunction!(resolve_config, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
