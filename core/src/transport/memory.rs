//! A deterministic in-memory network with a virtual clock, for protocol simulations.
//!
//! Everything that happens is an event in one queue ordered by virtual time (ties by insertion
//! order); latency and loss come from one seeded RNG. The same seed gives the same run, so a
//! failing simulation is reproduced by its printed seed.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

/// Something the simulation delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEvent<T> {
    /// A datagram arrives at `to`.
    Datagram {
        /// Sender.
        from: SocketAddr,
        /// Receiver.
        to: SocketAddr,
        /// Bytes.
        data: Vec<u8>,
    },
    /// A timer of the node at `at` fires.
    Timer {
        /// The node that scheduled it.
        at: SocketAddr,
        /// Its payload.
        timer: T,
    },
}

/// The simulated network and clock.
#[derive(Debug)]
pub struct SimNetwork<T> {
    now: Duration,
    seq: u64,
    queue: BTreeMap<(Duration, u64), SimEvent<T>>,
    rng: StdRng,
    /// Probability that a datagram is lost, 0.0–1.0.
    pub loss: f64,
    /// Datagram latency range (uniform).
    pub latency: (Duration, Duration),
    crashed: BTreeSet<SocketAddr>,
    cut: BTreeSet<(SocketAddr, SocketAddr)>,
    /// Datagrams sent so far (including lost ones).
    pub datagrams_sent: u64,
    /// Datagrams lost to `loss`, crashes or cuts.
    pub datagrams_lost: u64,
}

impl<T> SimNetwork<T> {
    /// A network with no loss and 1–5 ms latency, driven by `seed`.
    pub fn new(seed: u64) -> Self {
        SimNetwork {
            now: Duration::ZERO,
            seq: 0,
            queue: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
            loss: 0.0,
            latency: (Duration::from_millis(1), Duration::from_millis(5)),
            crashed: BTreeSet::new(),
            cut: BTreeSet::new(),
            datagrams_sent: 0,
            datagrams_lost: 0,
        }
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    fn push(&mut self, at: Duration, event: SimEvent<T>) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    /// Sends a datagram; it may be lost or delayed.
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.datagrams_sent += 1;
        let lost = self.crashed.contains(&from)
            || self.cut.contains(&(from, to))
            || (self.loss > 0.0 && self.rng.random::<f64>() < self.loss);
        if lost {
            self.datagrams_lost += 1;
            return;
        }
        let (lo, hi) = self.latency;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        let delay = lo
            + Duration::from_micros(if span == 0 {
                0
            } else {
                self.rng.random_range(0..=span)
            });
        self.push(self.now + delay, SimEvent::Datagram { from, to, data });
    }

    /// Schedules a timer for the node at `at`.
    pub fn schedule(&mut self, at: SocketAddr, after: Duration, timer: T) {
        self.push(self.now + after, SimEvent::Timer { at, timer });
    }

    /// Crashes a node: it sends and receives nothing and its timers never fire.
    pub fn crash(&mut self, node: SocketAddr) {
        self.crashed.insert(node);
    }

    /// Lets a crashed address take part again (a restarted process on the same port). Timers
    /// of the crashed process were already dropped when they came due.
    pub fn revive(&mut self, node: SocketAddr) {
        self.crashed.remove(&node);
    }

    /// True when `node` was crashed.
    pub fn is_crashed(&self, node: SocketAddr) -> bool {
        self.crashed.contains(&node)
    }

    /// Drops every datagram between `a` and `b`, both ways.
    pub fn cut(&mut self, a: SocketAddr, b: SocketAddr) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Restores every cut link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The next event not addressed to a crashed node, advancing the clock to it; `None` when
    /// nothing is left or the next event is after `until`.
    pub fn next_until(&mut self, until: Duration) -> Option<SimEvent<T>> {
        loop {
            let (&(at, seq), _) = self.queue.iter().next()?;
            if at > until {
                return None;
            }
            let event = self.queue.remove(&(at, seq))?;
            self.now = at;
            let target = match &event {
                SimEvent::Datagram { to, .. } => *to,
                SimEvent::Timer { at, .. } => *at,
            };
            if self.crashed.contains(&target) {
                if matches!(event, SimEvent::Datagram { .. }) {
                    self.datagrams_lost += 1;
                }
                continue;
            }
            return Some(event);
        }
    }

    /// Moves the clock to `until` once no event is left before it.
    pub fn advance_to(&mut self, until: Duration) {
        if until > self.now {
            self.now = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn same_seed_same_schedule_and_crashed_nodes_get_nothing() {
        let run = |seed| {
            let mut net: SimNetwork<u8> = SimNetwork::new(seed);
            net.loss = 0.3;
            for i in 0..50u8 {
                net.send(a(1), a(2), vec![i]);
            }
            net.schedule(a(3), Duration::from_millis(2), 9);
            net.crash(a(3));
            let mut got = Vec::new();
            while let Some(ev) = net.next_until(Duration::from_secs(1)) {
                got.push((net.now(), ev));
            }
            got
        };
        let first = run(42);
        assert_eq!(first, run(42));
        assert!(first.len() < 50, "some datagrams must be lost at 30% loss");
        assert!(first
            .iter()
            .all(|(_, ev)| !matches!(ev, SimEvent::Timer { .. })));
    }
}
