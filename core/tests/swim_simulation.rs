//! Deterministic SWIM simulations: real `SwimNode`s (foca inside) on the in-memory network
//! with a virtual clock and seeded randomness. Each test prints its seed when it fails; rerun
//! one seed with `SWIM_SIM_SEED=<seed> cargo test --test swim_simulation`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use swimraft_core::config::Config;
use swimraft_core::membership::swim::{SwimNode, SwimNodeConfig, SwimOutput, SwimTimer};
use swimraft_core::membership::view::{MemberState, MembershipEvent, NodeMeta};
use swimraft_core::transport::memory::{SimEvent, SimNetwork};

struct Sim {
    net: SimNetwork<SwimTimer>,
    nodes: BTreeMap<SocketAddr, SwimNode>,
    /// Every event with the virtual time and the observer's address.
    events: Vec<(Duration, SocketAddr, MembershipEvent)>,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16))
}

fn name(i: usize) -> String {
    format!("n{i}")
}

impl Sim {
    fn new(seed: u64, n: usize, loss: f64) -> Sim {
        let mut net = SimNetwork::new(seed);
        net.loss = loss;
        let timing = Config::local().membership.timing;
        let mut sim = Sim {
            net,
            nodes: BTreeMap::new(),
            events: Vec::new(),
        };
        for i in 0..n {
            let node = SwimNode::new(SwimNodeConfig {
                node_id: name(i),
                addr: addr(i),
                bump: 1_000 + i as u64,
                cluster_name: "sim".into(),
                timing: timing.clone(),
                meta: NodeMeta {
                    host: "127.0.0.1".into(),
                    swim_port: addr(i).port(),
                    raft_port: 4321,
                    http_port: 8770,
                    roles: vec![],
                },
                rng_seed: seed.wrapping_mul(31).wrapping_add(i as u64),
            })
            .expect("node");
            sim.nodes.insert(addr(i), node);
        }
        sim.nodes.get_mut(&addr(0)).expect("node 0").mark_joined();
        for i in 1..n {
            let mut out = SwimOutput::default();
            let node = sim.nodes.get_mut(&addr(i)).expect("node");
            node.announce(addr(0), &mut out).expect("announce");
            sim.apply(addr(i), out);
        }
        sim
    }

    fn apply(&mut self, at: SocketAddr, mut out: SwimOutput) {
        for (to, data) in out.sends.drain(..) {
            self.net.send(at, to, data);
        }
        for (after, timer) in out.timers.drain(..) {
            self.net.schedule(at, after, timer);
        }
        for event in out.events.drain(..) {
            self.events.push((self.net.now(), at, event));
        }
    }

    /// Runs until `done` holds or `limit` of virtual time passes; returns whether it held.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let until = self.net.now() + limit;
        while !done(self) {
            let Some(event) = self.net.next_until(until) else {
                self.net.advance_to(until);
                return done(self);
            };
            let mut out = SwimOutput::default();
            let at = match event {
                SimEvent::Datagram { to, data, .. } => {
                    if let Some(node) = self.nodes.get_mut(&to) {
                        node.handle_datagram(&data, &mut out);
                    }
                    to
                }
                SimEvent::Timer { at, timer } => {
                    if let Some(node) = self.nodes.get_mut(&at) {
                        node.handle_timer(timer, &mut out);
                    }
                    at
                }
            };
            self.apply(at, out);
        }
        true
    }

    fn live(&self) -> Vec<SocketAddr> {
        self.nodes
            .keys()
            .copied()
            .filter(|a| !self.net.is_crashed(*a))
            .collect()
    }

    fn state_of(&self, observer: SocketAddr, node_id: &str) -> Option<MemberState> {
        self.nodes[&observer]
            .snapshot()
            .member(node_id)
            .map(|m| m.state)
    }

    fn all_see_all_alive(&self) -> bool {
        let live = self.live();
        live.iter().all(|o| {
            let snap = self.nodes[o].snapshot();
            snap.live_peers().len() == live.len() - 1
                && live.iter().filter(|a| *a != o).all(|a| {
                    let id = name((a.port() - 20_000) as usize);
                    snap.member(&id)
                        .is_some_and(|m| m.state == MemberState::Alive)
                })
        })
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("SWIM_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SWIM_SIM_SEED must be an integer")],
        Err(_) => vec![1, 2, 3, 17, 2024],
    }
}

#[test]
fn crashed_member_is_failed_everywhere_and_nobody_else_is_suspected() {
    for seed in seeds() {
        let mut sim = Sim::new(seed, 8, 0.0);
        assert!(
            sim.run_until(Duration::from_secs(20), Sim::all_see_all_alive),
            "seed {seed}: cluster did not converge"
        );
        // Metadata arrives by gossip too.
        assert!(
            sim.run_until(Duration::from_secs(10), |s| s.live().iter().all(|o| {
                s.nodes[o]
                    .snapshot()
                    .members
                    .iter()
                    .all(|m| m.meta.as_ref().is_some_and(|meta| meta.raft_port == 4321))
            })),
            "seed {seed}: metadata did not reach every node"
        );
        let victim = addr(5);
        let crashed_at = sim.net.now();
        sim.net.crash(victim);
        let all_failed = sim.run_until(Duration::from_secs(30), |s| {
            s.live()
                .iter()
                .all(|o| s.state_of(*o, "n5") == Some(MemberState::Failed))
        });
        assert!(
            all_failed,
            "seed {seed}: not every survivor marked n5 failed"
        );
        let took = sim.net.now() - crashed_at;
        let false_suspicions: Vec<_> = sim
            .events
            .iter()
            .filter(|(_, _, e)| e.node_id != "n5" && e.state != MemberState::Alive)
            .collect();
        assert!(
            false_suspicions.is_empty(),
            "seed {seed}: false suspicions with no loss: {false_suspicions:?}"
        );
        // Every survivor saw a suspicion or failure event for n5, in that order.
        for o in sim.live() {
            let seen: Vec<MemberState> = sim
                .events
                .iter()
                .filter(|(_, at, e)| *at == o && e.node_id == "n5")
                .map(|(_, _, e)| e.state)
                .collect();
            assert_eq!(
                seen.last(),
                Some(&MemberState::Failed),
                "seed {seed}: {o} saw {seen:?}"
            );
        }
        println!("seed {seed}: every survivor marked n5 failed after {took:?} (virtual)");
    }
}

#[test]
fn restarted_member_with_a_higher_bump_is_alive_again() {
    for seed in seeds() {
        let mut sim = Sim::new(seed, 5, 0.0);
        assert!(
            sim.run_until(Duration::from_secs(20), Sim::all_see_all_alive),
            "seed {seed}"
        );
        let victim = addr(3);
        sim.net.crash(victim);
        assert!(
            sim.run_until(Duration::from_secs(30), |s| s
                .live()
                .iter()
                .all(|o| s.state_of(*o, "n3") == Some(MemberState::Failed))),
            "seed {seed}: n3 not failed everywhere"
        );
        // Restart: same address and node id, a new process with a higher bump. Whatever
        // the dead process had scheduled is gone with it.
        sim.run_until(Duration::from_secs(2), |_| false);
        sim.net.revive(victim);
        let timing = Config::local().membership.timing;
        let node = SwimNode::new(SwimNodeConfig {
            node_id: "n3".into(),
            addr: victim,
            bump: 5_000,
            cluster_name: "sim".into(),
            timing,
            meta: NodeMeta::default(),
            rng_seed: seed,
        })
        .expect("node");
        sim.nodes.insert(victim, node);
        let mut out = SwimOutput::default();
        sim.nodes
            .get_mut(&victim)
            .expect("restarted")
            .announce(addr(0), &mut out)
            .expect("announce");
        sim.apply(victim, out);
        assert!(
            sim.run_until(Duration::from_secs(20), |s| s
                .live()
                .iter()
                .filter(|o| **o != victim)
                .all(|o| s.state_of(*o, "n3") == Some(MemberState::Alive))),
            "seed {seed}: restarted n3 not alive everywhere"
        );
        for o in sim.live().into_iter().filter(|o| *o != victim) {
            let info = sim.nodes[&o]
                .snapshot()
                .member("n3")
                .cloned()
                .expect("n3 known");
            assert_eq!(
                info.bump, 5_000,
                "seed {seed}: {o} keeps an old identity of n3"
            );
        }
    }
}

#[test]
fn graceful_leave_is_reported_as_left() {
    for seed in seeds() {
        let mut sim = Sim::new(seed, 5, 0.0);
        assert!(
            sim.run_until(Duration::from_secs(20), Sim::all_see_all_alive),
            "seed {seed}"
        );
        let leaver = addr(2);
        let mut out = SwimOutput::default();
        sim.nodes
            .get_mut(&leaver)
            .expect("n2")
            .leave(&mut out)
            .expect("leave");
        sim.apply(leaver, out);
        // After leaving, the process is gone.
        sim.net.crash(leaver);
        assert!(
            sim.run_until(Duration::from_secs(20), |s| s
                .live()
                .iter()
                .all(|o| s.state_of(*o, "n2") == Some(MemberState::Left))),
            "seed {seed}: leave not seen as left everywhere: {:?}",
            sim.live()
                .iter()
                .map(|o| sim.state_of(*o, "n2"))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn foreign_and_garbage_datagrams_are_dropped_and_counted() {
    let mut sim = Sim::new(7, 3, 0.0);
    assert!(sim.run_until(Duration::from_secs(20), Sim::all_see_all_alive));
    let node = sim.nodes.get_mut(&addr(0)).expect("n0");
    let before = node.counters();
    let mut out = SwimOutput::default();
    node.handle_datagram(b"GET / HTTP/1.1\r\n", &mut out);
    node.handle_datagram(&[], &mut out);
    // Our magic and version, another cluster.
    node.handle_datagram(b"SWRF\x01\x05other\x00\x00", &mut out);
    // Our header, garbage body.
    let mut garbage = b"SWRF\x01\x03sim".to_vec();
    garbage.extend_from_slice(&[0xff; 40]);
    node.handle_datagram(&garbage, &mut out);
    let after = node.counters();
    assert_eq!(after.dropped_foreign - before.dropped_foreign, 3);
    assert_eq!(after.dropped_malformed - before.dropped_malformed, 1);
    assert!(out.events.is_empty());
    assert!(sim.run_until(Duration::from_secs(2), Sim::all_see_all_alive));
}

#[test]
fn lossy_network_still_detects_the_crash() {
    for seed in seeds() {
        let mut sim = Sim::new(seed, 6, 0.05);
        assert!(
            sim.run_until(Duration::from_secs(30), Sim::all_see_all_alive),
            "seed {seed}: no convergence at 5% loss"
        );
        sim.net.crash(addr(4));
        assert!(
            sim.run_until(Duration::from_secs(60), |s| s
                .live()
                .iter()
                .all(|o| s.state_of(*o, "n4") == Some(MemberState::Failed))),
            "seed {seed}: crash not detected at 5% loss"
        );
        // Suspicions of live members may happen under loss, but they must all be refuted.
        assert!(
            sim.run_until(Duration::from_secs(30), |s| {
                let live = s.live();
                live.iter().all(|o| {
                    live.iter().filter(|a| *a != o).all(|a| {
                        s.state_of(*o, &name((a.port() - 20_000) as usize))
                            == Some(MemberState::Alive)
                    })
                })
            }),
            "seed {seed}: a live member stayed suspected or failed at 5% loss"
        );
    }
}
