//! The client side of exactly-once writes: this process's session id and sequence numbers.
//!
//! Every write carries `(client_id, seq, first_unacked)`; a retry of the same write (after a
//! timeout or a leader change) reuses its `seq`, and the state machine answers it from the
//! session's cached result instead of applying it twice. `first_unacked` is the smallest `seq`
//! still waiting for an answer in this process, which lets the state machine forget older
//! results while many writes are in flight. `client_id` is the node id plus a random number
//! drawn at process start, so a restarted process never collides with its previous sessions.
//! A caller-supplied `request_id` becomes its own one-write session (`req:<id>`, seq 1), so
//! the caller's own retries are idempotent too.

use rand::RngExt;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// A write's session coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Session id.
    pub client_id: String,
    /// This write's sequence number.
    pub seq: u64,
    /// Smallest unanswered sequence number of the session when the write was issued.
    pub first_unacked: u64,
    own: bool,
}

#[derive(Debug)]
struct Window {
    next_seq: u64,
    in_flight: BTreeSet<u64>,
}

/// This process's write session.
#[derive(Debug)]
pub struct ClientSession {
    client_id: String,
    window: Mutex<Window>,
}

impl ClientSession {
    /// A fresh session for `node_id`.
    pub fn new(node_id: &str) -> Self {
        let nonce: u64 = rand::rng().random();
        ClientSession {
            client_id: format!("{node_id}/{nonce:016x}"),
            window: Mutex::new(Window {
                next_seq: 1,
                in_flight: BTreeSet::new(),
            }),
        }
    }

    /// The session id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Coordinates for a new write: the idempotency key's own session, or the next `seq`.
    pub fn begin(&self, request_id: Option<&str>) -> Ticket {
        if let Some(id) = request_id {
            return Ticket {
                client_id: format!("req:{id}"),
                seq: 1,
                first_unacked: 1,
                own: false,
            };
        }
        let mut w = match self.window.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        let seq = w.next_seq;
        w.next_seq += 1;
        w.in_flight.insert(seq);
        let first_unacked = w.in_flight.first().copied().unwrap_or(seq);
        Ticket {
            client_id: self.client_id.clone(),
            seq,
            first_unacked,
            own: true,
        }
    }

    /// The write is answered (or abandoned): it no longer holds the watermark down.
    pub fn finish(&self, ticket: &Ticket) {
        if !ticket.own {
            return;
        }
        let mut w = match self.window.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        w.in_flight.remove(&ticket.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_the_smallest_write_in_flight() {
        let s = ClientSession::new("n1");
        let a = s.begin(None);
        let b = s.begin(None);
        assert_eq!((a.seq, a.first_unacked), (1, 1));
        assert_eq!((b.seq, b.first_unacked), (2, 1));
        s.finish(&a);
        let c = s.begin(None);
        assert_eq!((c.seq, c.first_unacked), (3, 2));
        s.finish(&b);
        s.finish(&c);
        let d = s.begin(None);
        assert_eq!((d.seq, d.first_unacked), (4, 4));
        let r = s.begin(Some("job-7"));
        assert_eq!((r.client_id.as_str(), r.seq), ("req:job-7", 1));
        assert!(a.client_id.starts_with("n1/"));
    }
}
