//! The client side of exactly-once writes: this process's session id and sequence numbers.
//!
//! Every write carries `(client_id, seq)`; a retry of the same write (after a timeout or a
//! leader change) reuses its `seq`, and the state machine answers it from the session's cached
//! result instead of applying it twice. `client_id` is the node id plus a random number drawn
//! at process start, so a restarted process never collides with its previous sessions.
//! A caller-supplied `request_id` becomes its own one-write session (`req:<id>`, seq 1), so
//! the caller's own retries are idempotent too.

use rand::RngExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// This process's write session.
#[derive(Debug)]
pub struct ClientSession {
    client_id: String,
    next_seq: AtomicU64,
}

impl ClientSession {
    /// A fresh session for `node_id`.
    pub fn new(node_id: &str) -> Self {
        let nonce: u64 = rand::rng().random();
        ClientSession {
            client_id: format!("{node_id}/{nonce:016x}"),
            next_seq: AtomicU64::new(1),
        }
    }

    /// The session id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `(client_id, seq)` for a new write, or the idempotency key's own session.
    pub fn next(&self, request_id: Option<&str>) -> (String, u64) {
        match request_id {
            Some(id) => (format!("req:{id}"), 1),
            None => (
                self.client_id.clone(),
                self.next_seq.fetch_add(1, Ordering::Relaxed),
            ),
        }
    }
}
