//! One error type for the whole engine.
//!
//! [`ErrorKind`] is the stable part: Python maps each kind to one exception class and C maps it
//! to one numbered result code (`swimraft_result`). Codes are never reused; add new kinds at the
//! end.

use std::fmt;

/// What went wrong, independent of the message. Stable across Rust, Python and C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorKind {
    /// A configuration value is missing, malformed or contradicts another one.
    InvalidConfig = 1,
    /// A write reached a node that is not the leader (legacy bully mode only).
    NotLeader = 2,
    /// The operation was not applied and may be retried (no quorum, no leader, not started).
    Unavailable = 3,
    /// The deadline passed; the outcome is unknown.
    Timeout = 4,
    /// Disk or database failure.
    Storage = 5,
    /// The engine was stopped or is stopping.
    Shutdown = 6,
    /// A peer spoke something we cannot understand (bad magic, version, cluster, encoding).
    Protocol = 7,
    /// The work queue refuses new items until it drains.
    Backpressure = 8,
    /// A lock is held by another holder.
    LockHeld = 9,
    /// The named item does not exist.
    NotFound = 10,
    /// An argument is out of range or malformed.
    InvalidArgument = 11,
    /// Binding a socket or another operating-system call failed.
    Io = 12,
}

impl ErrorKind {
    /// A short stable name, used in logs, JSON and HTTP error codes.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::NotLeader => "not_leader",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Storage => "storage",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Backpressure => "backpressure",
            ErrorKind::LockHeld => "lock_held",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine error: a kind plus a human-readable message that says what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Builds an error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// A configuration error; the message names the variable, the value and what is allowed.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidConfig, message)
    }

    /// The kind, for mapping to exceptions and result codes.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, err.to_string())
    }
}

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
