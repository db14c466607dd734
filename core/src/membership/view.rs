//! The membership view shared by every membership protocol: member states, transition events
//! and the snapshot that fast status reads return without touching the protocol task.

use serde::Serialize;
use std::net::SocketAddr;

/// How this node currently sees a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Answers probes.
    Alive,
    /// Missed a probe; still counted as a live peer until the suspicion times out or is refuted.
    Suspected,
    /// Declared down by the cluster without saying goodbye.
    Failed,
    /// Announced its departure (graceful `stop()`), then went down.
    Left,
}

impl MemberState {
    /// `alive`, `suspected`, `failed` or `left`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspected => "suspected",
            MemberState::Failed => "failed",
            MemberState::Left => "left",
        }
    }

    /// Alive and suspected members count as live peers (SWIM's rule: a suspect is alive until
    /// proven otherwise).
    pub fn is_live(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspected)
    }
}

/// What a member told the cluster about itself, disseminated by gossip. Enough for later layers
/// to map a member to its Raft voter address and HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
pub struct NodeMeta {
    /// The member's advertised host (an IP address in text form).
    pub host: String,
    /// SWIM UDP port.
    pub swim_port: u16,
    /// Raft TCP port.
    pub raft_port: u16,
    /// The orchestrator's HTTP port.
    pub http_port: u16,
    /// Free-form roles (`voter`, `gpu`, ...).
    pub roles: Vec<String>,
}

/// One member as seen from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    /// The member's node id (its name, never an IP).
    pub node_id: String,
    /// Its SWIM socket address.
    pub addr: SocketAddr,
    /// Current state.
    pub state: MemberState,
    /// SWIM incarnation of the identity (raised by the member to refute suspicion).
    pub incarnation: u16,
    /// Identity generation: grows on every restart, so the newest identity of a node id wins.
    pub bump: u64,
    /// Gossiped metadata, once it has arrived.
    pub meta: Option<NodeMeta>,
}

/// A membership transition about another member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipEvent {
    /// The member concerned.
    pub node_id: String,
    /// Its new state.
    pub state: MemberState,
    /// Its SWIM address.
    pub addr: SocketAddr,
}

/// Traffic and error counters of the SWIM socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SwimCounters {
    /// Datagrams sent.
    pub packets_sent: u64,
    /// UDP payload bytes sent (our header included, IP/UDP headers not).
    pub bytes_sent: u64,
    /// Datagrams received.
    pub packets_received: u64,
    /// Datagrams dropped because the magic, version or cluster name did not match.
    pub dropped_foreign: u64,
    /// Datagrams with our header whose body foca could not decode or rejected.
    pub dropped_malformed: u64,
}

/// A point-in-time picture of membership, cheap to clone and read from any thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MembershipSnapshot {
    /// Every remembered member except this node, sorted by node id.
    pub members: Vec<MemberInfo>,
    /// True once this node is part of a cluster (joined through a seed, reached by a peer, or
    /// the first node with no other seed).
    pub joined: bool,
    /// Why joining has not succeeded yet, when it has not.
    pub join_error: Option<String>,
}

impl MembershipSnapshot {
    /// Members currently in `state`.
    pub fn count(&self, state: MemberState) -> usize {
        self.members.iter().filter(|m| m.state == state).count()
    }

    /// Node ids of alive and suspected members (never this node), sorted.
    pub fn live_peers(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.state.is_live())
            .map(|m| m.node_id.clone())
            .collect()
    }

    /// The member with this node id, if remembered.
    pub fn member(&self, node_id: &str) -> Option<&MemberInfo> {
        self.members.iter().find(|m| m.node_id == node_id)
    }
}

/// Where a membership protocol delivers its transitions (the coordinator fans them out).
pub type EventSink = std::sync::Arc<dyn Fn(MembershipEvent) + Send + Sync>;
