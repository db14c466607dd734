//! [`SwimNode`]: one SWIM member as pure protocol logic.
//!
//! It owns the `Foca` value and translates between foca and the rest of swimraft: datagrams and
//! timers go in; datagrams to send, timers to schedule and membership events come out in a
//! [`SwimOutput`]. It does no I/O and reads no clock, so the UDP driver and the deterministic
//! simulation run exactly the same code.
//!
//! foca reports no "suspected" transition and has no "left" state, so after every foca call the
//! node re-reads foca's member table and derives the view itself: per node id the identity with
//! the newest bump wins (a late `MemberDown` of an older identity of a live node changes
//! nothing, and a `Rename` is just the newer identity being alive), and a Down identity that
//! announced its leave is reported as `left`.

use super::broadcast::{Notice, NoticeBook, NoticeHandler};
use super::identity::SwimId;
use super::wire::WireHeader;
use crate::config::SwimTiming;
use crate::error::{Error, ErrorKind, Result};
use crate::membership::view::{
    MemberInfo, MemberState, MembershipEvent, MembershipSnapshot, NodeMeta, SwimCounters,
};
use foca::{Foca, Member, OwnedNotification, PeriodicParams, PostcardCodec, Runtime, State};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

/// A timer event foca asked to be delivered later.
pub type SwimTimer = foca::Timer<SwimId>;

type FocaNode = Foca<SwimId, PostcardCodec, StdRng, NoticeHandler>;

/// Largest datagram we produce or accept, header included: below a 1500-byte MTU minus IP and
/// UDP headers, with room to spare for tunnels (RFC 8085).
pub const MAX_DATAGRAM: usize = 1400;

/// How long foca remembers a down member. A restarted node rejoins at once regardless (its
/// bump is higher); this bounds how long `failed` members stay in the view and in
/// `failed_count`.
pub const REMEMBER_DOWN: Duration = Duration::from_secs(3600);

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct SwimNodeConfig {
    /// This node's id.
    pub node_id: String,
    /// The advertised SWIM socket address (what peers send to).
    pub addr: SocketAddr,
    /// Identity generation; must exceed every earlier run's (see [`super::identity`]).
    pub bump: u64,
    /// Cluster name carried in every datagram.
    pub cluster_name: String,
    /// Protocol timings.
    pub timing: SwimTiming,
    /// Metadata to gossip about this node.
    pub meta: NodeMeta,
    /// Seed of foca's random choices (member order, gossip targets).
    pub rng_seed: u64,
}

/// What one call produced.
#[derive(Debug, Default)]
pub struct SwimOutput {
    /// Datagrams to send, header included.
    pub sends: Vec<(SocketAddr, Vec<u8>)>,
    /// Timers to deliver back through [`SwimNode::handle_timer`] after the given delay.
    pub timers: Vec<(Duration, SwimTimer)>,
    /// Membership transitions of other members, in the order they were observed.
    pub events: Vec<MembershipEvent>,
}

impl SwimOutput {
    /// True when nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.sends.is_empty() && self.timers.is_empty() && self.events.is_empty()
    }
}

/// Adapts foca's `Runtime` callbacks into a [`SwimOutput`].
struct Collector<'a> {
    header: &'a WireHeader,
    out: &'a mut SwimOutput,
    notifications: &'a mut Vec<OwnedNotification<SwimId>>,
}

impl Runtime<SwimId> for Collector<'_> {
    fn notify(&mut self, notification: foca::Notification<'_, SwimId>) {
        self.notifications.push(notification.to_owned());
    }

    fn send_to(&mut self, to: SwimId, data: &[u8]) {
        self.out.sends.push((to.addr, self.header.wrap(data)));
    }

    fn submit_after(&mut self, event: SwimTimer, after: Duration) {
        self.out.timers.push((after, event));
    }
}

/// One SWIM member: foca plus the derived view.
pub struct SwimNode {
    foca: FocaNode,
    header: WireHeader,
    book: NoticeBook,
    node_id: String,
    meta: NodeMeta,
    meta_version: u64,
    view: BTreeMap<String, MemberInfo>,
    joined: bool,
    join_error: Option<String>,
    counters: SwimCounters,
    notifications: Vec<OwnedNotification<SwimId>>,
    generation: u64,
}

fn foca_config(timing: &SwimTiming, header_len: usize) -> foca::Config {
    let mut c = foca::Config::simple();
    c.probe_period = timing.probe_period;
    c.probe_rtt = timing.probe_rtt;
    c.num_indirect_probes =
        NonZeroUsize::new(timing.num_indirect_probes).unwrap_or(NonZeroUsize::MIN);
    c.max_transmissions = NonZeroU8::new(timing.max_transmissions).unwrap_or(NonZeroU8::MIN);
    c.suspect_to_down_after = timing.suspicion_timeout;
    c.remove_down_after = Some(REMEMBER_DOWN);
    c.max_packet_size =
        NonZeroUsize::new(MAX_DATAGRAM.saturating_sub(header_len)).unwrap_or(NonZeroUsize::MIN);
    c.notify_down_members = true;
    c.periodic_announce = Some(PeriodicParams {
        frequency: timing.announce_interval,
        num_members: NonZeroUsize::MIN,
    });
    c.periodic_announce_to_down_members = Some(PeriodicParams {
        frequency: timing.announce_down_interval,
        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    });
    c.periodic_gossip = Some(PeriodicParams {
        frequency: timing.gossip_interval,
        num_members: NonZeroUsize::new(timing.gossip_fanout).unwrap_or(NonZeroUsize::MIN),
    });
    c
}

fn derive_state(foca_state: State, left_bump: Option<u64>, bump: u64) -> MemberState {
    match foca_state {
        State::Alive => MemberState::Alive,
        State::Suspect => MemberState::Suspected,
        State::Down if left_bump == Some(bump) => MemberState::Left,
        State::Down => MemberState::Failed,
    }
}

fn foca_error(err: foca::Error) -> Error {
    Error::new(ErrorKind::Protocol, format!("foca: {err}"))
}

impl SwimNode {
    /// A node that knows nobody yet. Its metadata is queued for gossip immediately.
    pub fn new(cfg: SwimNodeConfig) -> Result<Self> {
        let header = WireHeader::new(&cfg.cluster_name);
        let book = NoticeBook::default();
        let identity = SwimId {
            addr: cfg.addr,
            node_id: cfg.node_id.clone(),
            bump: cfg.bump,
        };
        let foca = Foca::with_custom_broadcast(
            identity,
            foca_config(&cfg.timing, header.len()),
            StdRng::seed_from_u64(cfg.rng_seed),
            PostcardCodec,
            NoticeHandler::new(book.clone()),
        );
        let mut node = SwimNode {
            foca,
            header,
            book,
            node_id: cfg.node_id,
            meta: cfg.meta,
            meta_version: 0,
            view: BTreeMap::new(),
            joined: false,
            join_error: None,
            counters: SwimCounters::default(),
            notifications: Vec::new(),
            generation: 0,
        };
        node.publish_meta()?;
        Ok(node)
    }

    /// This node's current identity (the bump changes if foca auto-rejoins).
    pub fn identity(&self) -> &SwimId {
        self.foca.identity()
    }

    /// Sends an announce to a seed known only by its address.
    pub fn announce(&mut self, seed: SocketAddr, out: &mut SwimOutput) -> Result<()> {
        let result = self.call_foca(out, |foca, rt| foca.announce(SwimId::seed(seed), rt));
        self.after_call(out);
        result.map_err(foca_error)
    }

    /// Feeds one received datagram. Foreign and malformed datagrams are dropped and counted;
    /// they never stop the node.
    pub fn handle_datagram(&mut self, data: &[u8], out: &mut SwimOutput) {
        self.counters.packets_received += 1;
        let payload = match self.header.unwrap(data) {
            Ok(payload) => payload,
            Err(err) => {
                self.counters.dropped_foreign += 1;
                // Usually a node of another cluster (RINGRIFT_CLUSTER_NAME) or version: say so,
                // at the 1st, 2nd, 4th, 8th, ... such datagram, so a misconfigured peer is seen
                // in the log without a line per packet.
                if self.counters.dropped_foreign.is_power_of_two() {
                    tracing::warn!(
                        error = %err,
                        dropped = self.counters.dropped_foreign,
                        "dropped a datagram that is not of this SWIM cluster"
                    );
                }
                return;
            }
        };
        let result = self.call_foca(out, |foca, rt| foca.handle_data(payload, rt));
        if let Err(err) = result {
            self.counters.dropped_malformed += 1;
            if self.counters.dropped_malformed.is_power_of_two() {
                tracing::warn!(
                    error = %err,
                    dropped = self.counters.dropped_malformed,
                    "dropped a malformed SWIM datagram"
                );
            }
        }
        self.after_call(out);
    }

    /// Delivers a timer foca scheduled earlier.
    pub fn handle_timer(&mut self, timer: SwimTimer, out: &mut SwimOutput) {
        // Errors here concern a single message foca tried to build; the protocol goes on.
        let _ = self.call_foca(out, |foca, rt| foca.handle_timer(timer, rt));
        self.after_call(out);
    }

    /// Gossips a leave notice, then declares this identity down to a few members. The node
    /// takes no further part in the protocol afterwards.
    pub fn leave(&mut self, out: &mut SwimOutput) -> Result<()> {
        let identity = self.foca.identity().clone();
        let notice = Notice::Leave {
            node_id: identity.node_id,
            bump: identity.bump,
        };
        self.foca
            .add_broadcast(&notice.encode())
            .map_err(foca_error)?;
        let result = self.call_foca(out, |foca, rt| foca.leave_cluster(rt));
        self.after_call(out);
        result.map_err(foca_error)
    }

    /// Marks this node as part of a cluster without a seed answering (first node).
    pub fn mark_joined(&mut self) {
        self.joined = true;
        self.join_error = None;
        self.generation += 1;
    }

    /// Records why joining has not worked yet (shown in status until it works).
    pub fn set_join_error(&mut self, reason: Option<String>) {
        if !self.joined && self.join_error != reason {
            self.join_error = reason;
            self.generation += 1;
        }
    }

    /// True once some member knows this identity (or this is the first node).
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Counts a datagram the driver has sent.
    pub fn record_sent(&mut self, bytes: usize) {
        self.counters.packets_sent += 1;
        self.counters.bytes_sent += bytes as u64;
    }

    /// Traffic and drop counters.
    pub fn counters(&self) -> SwimCounters {
        self.counters
    }

    /// The current view as a snapshot.
    pub fn snapshot(&self) -> MembershipSnapshot {
        MembershipSnapshot {
            members: self.view.values().cloned().collect(),
            joined: self.joined,
            join_error: self.join_error.clone(),
        }
    }

    /// Grows whenever the snapshot would differ from the previous one; drivers republish
    /// their snapshot only then.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of members foca currently considers active (alive or suspect).
    pub fn active_members(&self) -> usize {
        self.foca.num_members()
    }

    /// Runs one foca call with a runtime that collects into `out` and `self.notifications`.
    fn call_foca<R>(
        &mut self,
        out: &mut SwimOutput,
        call: impl FnOnce(&mut FocaNode, Collector<'_>) -> Result<R, foca::Error>,
    ) -> Result<R, foca::Error> {
        let collector = Collector {
            header: &self.header,
            out,
            notifications: &mut self.notifications,
        };
        call(&mut self.foca, collector)
    }

    fn publish_meta(&mut self) -> Result<()> {
        self.meta_version += 1;
        let identity = self.foca.identity();
        let notice = Notice::Meta {
            node_id: identity.node_id.clone(),
            bump: identity.bump,
            version: self.meta_version,
            meta: self.meta.clone(),
        };
        self.foca
            .add_broadcast(&notice.encode())
            .map_err(foca_error)?;
        Ok(())
    }

    /// Reacts to foca's notifications, then re-derives the view and emits transitions.
    fn after_call(&mut self, out: &mut SwimOutput) {
        let mut republish = false;
        for notification in std::mem::take(&mut self.notifications) {
            match notification {
                // A member came up or we rejoined under a new bump: gossip our metadata again
                // so late joiners learn it (custom broadcasts are sent a bounded number of times).
                OwnedNotification::MemberUp(_) | OwnedNotification::Rejoin(_) => republish = true,
                OwnedNotification::Active => self.mark_joined(),
                _ => {}
            }
        }
        if republish {
            // Encoding our own small notice cannot exceed the packet size.
            let _ = self.publish_meta();
        }
        self.sync_view(out);
    }

    fn sync_view(&mut self, out: &mut SwimOutput) {
        let mut newest: BTreeMap<&str, &Member<SwimId>> = BTreeMap::new();
        for member in self.foca.iter_membership_state() {
            let id = member.id();
            if id.node_id.is_empty() || id.node_id == self.node_id {
                continue;
            }
            let keep = match newest.get(id.node_id.as_str()) {
                Some(current) => id.bump > current.id().bump,
                None => true,
            };
            if keep {
                newest.insert(id.node_id.as_str(), member);
            }
        }
        let book = match self.book.lock() {
            Ok(book) => book,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next: BTreeMap<String, MemberInfo> = BTreeMap::new();
        for (node_id, member) in newest {
            let id = member.id();
            let notices = book.get(node_id);
            let state = derive_state(member.state(), notices.and_then(|n| n.left_bump), id.bump);
            let info = MemberInfo {
                node_id: node_id.to_string(),
                addr: id.addr,
                state,
                incarnation: member.incarnation(),
                bump: id.bump,
                meta: notices.and_then(|n| n.meta.clone()),
            };
            let changed = match self.view.get(node_id) {
                Some(old) => old.state != state,
                // A member first seen as down was never reported up: nothing to report.
                None => state.is_live(),
            };
            if changed {
                out.events.push(MembershipEvent {
                    node_id: info.node_id.clone(),
                    state,
                    addr: info.addr,
                });
            }
            next.insert(info.node_id.clone(), info);
        }
        drop(book);
        if next != self.view {
            self.view = next;
            self.generation += 1;
        }
    }
}
