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

/// What the node looks like to the breaker after a metrics change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Campaigning in this term.
    Candidate(u64),
    /// Following a known leader, or leading: elections are over.
    Settled,
    /// A follower that knows no leader (it voted for someone else's campaign).
    Waiting,
}

/// The breaker's decisions, free of I/O and clocks (the caller passes `now` and the drawn
/// delay), so they can be tested on their own.
#[derive(Debug, Default)]
pub struct Breaker {
    rounds: u32,
    /// The campaign being watched: its term and when to campaign again.
    watching: Option<(u64, Instant)>,
}

impl Breaker {
    /// Takes in what the node looks like now; `delay` draws the wait, called only when a new
    /// campaign starts being watched (metrics change on every applied entry, so most calls
    /// draw nothing).
    pub fn observe(&mut self, seen: Seen, now: Instant, delay: impl FnOnce() -> Duration) {
        match seen {
            Seen::Candidate(term) => {
                if self.watching.is_none_or(|(t, _)| t != term) {
                    self.rounds = self.rounds.saturating_add(1);
                    self.watching = Some((term, now + delay()));
                }
            }
            Seen::Settled => {
                self.watching = None;
                self.rounds = 0;
            }
            Seen::Waiting => self.watching = None,
        }
    }

    /// When to campaign again, if at all: never after [`MAX_ROUNDS`] rounds in a row, and
    /// never in a term where a peer with a longer log refused this node.
    pub fn deadline(&self, outranked: &Outranked) -> Option<Instant> {
        self.watching
            .filter(|(term, _)| self.rounds <= MAX_ROUNDS && !outranked.since(*term))
            .map(|(_, at)| at)
    }

    /// The deadline passed: campaign again unless outranked meanwhile. Returns the term to
    /// leave (the caller triggers the election).
    pub fn fire(&mut self, outranked: &Outranked) -> Option<u64> {
        let (term, _) = self.watching?;
        if outranked.since(term) {
            return None;
        }
        self.watching = None;
        Some(term)
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
    let mut breaker = Breaker::default();
    loop {
        let seen = {
            let m = metrics.borrow_and_update();
            match m.state {
                ServerState::Candidate => Seen::Candidate(m.current_term),
                ServerState::Follower if m.current_leader.is_none() => Seen::Waiting,
                _ => Seen::Settled,
            }
        };
        breaker.observe(seen, Instant::now(), || random_between(min, max));
        let deadline = breaker.deadline(&outranked);
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = sleep_until(deadline) => {
                if let Some(term) = breaker.fire(&outranked) {
                    tracing::debug!(term, "campaign failed; campaigning again after a fresh random delay");
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

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_millis(20);

    #[test]
    fn a_failed_campaign_is_retried_once_per_term_after_the_drawn_delay() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        let none = Outranked::default();
        b.observe(Seen::Candidate(5), t0, || D);
        assert_eq!(b.deadline(&none), Some(t0 + D));
        // More metrics events in the same term keep the first draw and draw nothing.
        b.observe(Seen::Candidate(5), t0 + D / 2, || {
            panic!("no new draw in the same term")
        });
        assert_eq!(b.deadline(&none), Some(t0 + D));
        assert_eq!(b.fire(&none), Some(5));
        assert_eq!(b.deadline(&none), None, "one re-campaign per term");
        // The new term gets a new draw.
        b.observe(Seen::Candidate(6), t0 + D, || D * 2);
        assert_eq!(b.deadline(&none), Some(t0 + D * 3));
    }

    #[test]
    fn a_settled_election_or_another_campaign_stops_the_retry() {
        let t0 = Instant::now();
        let none = Outranked::default();
        let mut b = Breaker::default();
        b.observe(Seen::Candidate(5), t0, || D);
        b.observe(Seen::Waiting, t0, || D);
        assert_eq!(b.deadline(&none), None, "voted for another candidate");
        b.observe(Seen::Candidate(7), t0, || D);
        b.observe(Seen::Settled, t0, || D);
        assert_eq!(b.deadline(&none), None, "a leader is known");
        assert_eq!(b.fire(&none), None);
    }

    #[test]
    fn a_longer_log_elsewhere_leaves_the_election_to_openraft() {
        let t0 = Instant::now();
        let outranked = Outranked::default();
        let mut b = Breaker::default();
        b.observe(Seen::Candidate(5), t0, || D);
        outranked.record(5);
        assert_eq!(b.deadline(&outranked), None);
        assert_eq!(
            b.fire(&outranked),
            None,
            "refused after the deadline was armed"
        );
        // A later term is judged afresh.
        b.observe(Seen::Candidate(6), t0, || D);
        assert_eq!(b.deadline(&outranked), Some(t0 + D));
        assert!(outranked.since(5) && !outranked.since(6));
    }

    #[test]
    fn only_max_rounds_in_a_row_then_back_to_openraft() {
        let t0 = Instant::now();
        let none = Outranked::default();
        let mut b = Breaker::default();
        for term in 1..=u64::from(MAX_ROUNDS) {
            b.observe(Seen::Candidate(term), t0, || D);
            assert!(b.deadline(&none).is_some(), "round {term}");
            assert_eq!(b.fire(&none), Some(term));
        }
        b.observe(Seen::Candidate(u64::from(MAX_ROUNDS) + 1), t0, || D);
        assert_eq!(
            b.deadline(&none),
            None,
            "cut off from the majority: stop pushing terms"
        );
        // Settling resets the count.
        b.observe(Seen::Settled, t0, || D);
        b.observe(Seen::Candidate(100), t0, || D);
        assert!(b.deadline(&none).is_some());
    }
}
