//! Breaks repeated split votes by re-campaigning after a fresh random delay every round.
//!
//! openraft 0.9 draws a node's election timeout once, when the node starts, and checks it on a
//! periodic tick (1.5 × heartbeat). Two survivors whose timeouts round to the same number of
//! ticks and whose tick phases are close campaign together round after round: each votes for
//! itself, refuses the other, and both wait the same fixed timeout again. A failover measured
//! here took three such rounds (~0.9 s instead of ~0.3 s).
//!
//! This task watches the node's own state. While it stays a candidate in one term (its
//! campaign failed: no majority, no new leader), it campaigns again after a delay drawn anew
//! for every term from `[min, max)` — shorter than openraft's own timeout, so the fresh draw,
//! not the fixed timeout, decides who asks first next time. It never does so after a peer
//! refused its vote for holding a longer log ([`Outranked`]): such a node cannot win, and
//! campaigning again would only raise the term under the peer that can (a failover measured
//! with that mistake took six terms). It acts only for
//! [`MAX_ROUNDS`] consecutive rounds; after that (a node cut off from the majority keeps
//! failing) it leaves elections to openraft's timer, so terms do not climb faster than
//! openraft's own pace for long.

use super::types::Raft;
use openraft::ServerState;
use rand::RngExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Consecutive failed rounds this task re-starts; later ones are left to openraft.
pub const MAX_ROUNDS: u32 = 8;

/// The latest term in which a peer refused this node's vote request because the peer's log is
/// longer (recorded by the network layer, read by [`break_split_votes`]).
#[derive(Debug, Clone, Default)]
pub struct Outranked(Arc<AtomicU64>);

impl Outranked {
    /// A peer with a longer log refused our campaign for `term`.
    pub fn record(&self, term: u64) {
        self.0.fetch_max(term, Ordering::Relaxed);
    }

    /// Whether that happened in `term` or later.
    pub fn since(&self, term: u64) -> bool {
        self.0.load(Ordering::Relaxed) >= term
    }
}

/// Runs until `stopped` changes. `min..max` is the re-campaign delay after a failed round
/// (a vote round trip with two fsyncs takes a few milliseconds here, so `min` must leave
/// room for the current round to finish).
pub async fn break_split_votes(
    raft: Raft,
    outranked: Outranked,
    min: Duration,
    max: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut metrics = raft.metrics();
    let mut rounds: u32 = 0;
    // (term of the campaign being watched, when to campaign again)
    let mut watching: Option<(u64, Instant)> = None;
    loop {
        let (state, term) = {
            let m = metrics.borrow_and_update();
            (m.state, m.current_term)
        };
        if state == ServerState::Candidate {
            let fresh = watching.is_none_or(|(t, _)| t != term);
            if fresh {
                rounds = rounds.saturating_add(1);
                watching = Some((term, Instant::now() + random_between(min, max)));
            }
        } else {
            watching = None;
            if state != ServerState::Follower || raft.metrics().borrow().current_leader.is_some() {
                rounds = 0;
            }
        }
        // No deadline once a longer log refused this campaign: openraft's timer decides.
        let deadline = watching
            .filter(|(t, _)| rounds <= MAX_ROUNDS && !outranked.since(*t))
            .map(|(_, at)| at);
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = sleep_until(deadline) => {
                if !outranked.since(term) {
                    tracing::debug!(term, rounds, "campaign failed; campaigning again after a fresh random delay");
                    watching = None;
                    let _ = raft.trigger().elect().await;
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

fn random_between(min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    let span = u64::try_from((max - min).as_micros()).unwrap_or(u64::MAX);
    min + Duration::from_micros(rand::rng().random_range(0..span))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
