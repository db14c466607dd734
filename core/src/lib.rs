//! swimraft-core: the coordination engine.
//!
//! ```text
//!   Python (swimraft, PyO3)        C (libswimraft, cbindgen header)
//!            \                        /
//!             +--- bindings: conversion only, GIL released, panics caught
//!                          |
//!                 coordinator.rs  (routes by mode, keeps the status snapshot)
//!                   /                         \
//!     membership/ (SWIM on foca)      consensus/ (Raft on openraft; later)
//!        swim.rs   sans-I/O core          |
//!        driver.rs tokio task + timers    |
//!                   \                    /
//!                transport/ (udp, in-memory for simulations)
//! ```
//!
//! Protocol logic does no I/O and reads no clock: [`membership::swim::SwimNode`] takes packets,
//! timers and `now` as inputs and returns what to send, what to schedule and what changed.
//! Drivers own sockets and timers.

pub mod config;
pub mod consensus;
pub mod coordinator;
pub mod error;
pub mod membership;
pub mod ops;
pub mod state;
pub mod store;
pub mod transport;

pub use config::Config;
pub use coordinator::Coordinator;
pub use error::{Error, ErrorKind, Result};
