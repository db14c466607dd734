//! When and where to announce while joining through seeds.
//!
//! Five attempts with back-off 1, 2, 4, 8 s, then every 30 s for as long as the node has not
//! joined, rotating through the seed list so one dead seed does not block the join. Pure logic:
//! the driver asks for the next step and sleeps.

use std::net::SocketAddr;
use std::time::Duration;

/// Attempts with growing back-off before the schedule settles at [`JoinSchedule::MAX_BACKOFF`].
pub const JOIN_ATTEMPTS: u32 = 5;

/// The seed-join schedule of one node.
#[derive(Debug, Clone)]
pub struct JoinSchedule {
    seeds: Vec<SocketAddr>,
    attempt: u32,
}

impl JoinSchedule {
    /// Back-off ceiling once the initial attempts are spent.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

    /// A schedule over `seeds`, minus the entries that are this node (`own`).
    pub fn new(seeds: Vec<SocketAddr>, own: &[SocketAddr]) -> Self {
        let mut kept: Vec<SocketAddr> = Vec::new();
        for seed in seeds {
            if !own.contains(&seed) && !kept.contains(&seed) {
                kept.push(seed);
            }
        }
        JoinSchedule {
            seeds: kept,
            attempt: 0,
        }
    }

    /// No seed other than this node: it is the first node of its cluster, not a failed join.
    pub fn is_first_node(&self) -> bool {
        self.seeds.is_empty()
    }

    /// The seeds this schedule announces to.
    pub fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// True once the initial attempts are spent without joining.
    pub fn exhausted(&self) -> bool {
        self.attempt >= JOIN_ATTEMPTS
    }

    /// The seed to announce to now and how long to wait before the next attempt.
    /// `None` when there are no seeds.
    pub fn next_attempt(&mut self) -> Option<(SocketAddr, Duration)> {
        if self.seeds.is_empty() {
            return None;
        }
        let seed = self.seeds[self.attempt as usize % self.seeds.len()];
        let wait = if self.attempt + 1 < JOIN_ATTEMPTS {
            Duration::from_secs(1u64 << self.attempt.min(16))
        } else {
            Self::MAX_BACKOFF
        };
        self.attempt = self.attempt.saturating_add(1);
        Some((seed, wait.min(Self::MAX_BACKOFF)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn backs_off_then_caps_and_rotates() {
        let mut s = JoinSchedule::new(vec![addr(1), addr(2)], &[]);
        let steps: Vec<_> = (0..7).map(|_| s.next_attempt().unwrap()).collect();
        let waits: Vec<u64> = steps.iter().map(|(_, w)| w.as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 30, 30, 30]);
        let seeds: Vec<u16> = steps.iter().map(|(a, _)| a.port()).collect();
        assert_eq!(seeds, vec![1, 2, 1, 2, 1, 2, 1]);
        assert!(s.exhausted());
    }

    #[test]
    fn own_address_is_dropped_and_only_self_means_first_node() {
        let s = JoinSchedule::new(vec![addr(7947), addr(7947)], &[addr(7947)]);
        assert!(s.is_first_node());
        let s = JoinSchedule::new(vec![addr(7947), addr(7948), addr(7948)], &[addr(7947)]);
        assert!(!s.is_first_node());
        assert_eq!(s.seeds(), &[addr(7948)]);
    }

    #[test]
    fn no_seeds_no_attempts() {
        let mut s = JoinSchedule::new(vec![], &[]);
        assert!(s.next_attempt().is_none());
        assert_eq!(s.attempts(), 0);
    }
}
