//! The openraft type configuration of swimraft.
//!
//! | openraft asks for | we chose | why |
//! |---|---|---|
//! | `D` (request) | [`Proposal`]: the client writes the leader batched into one entry, each an [`Envelope`] `(client_id, seq, now_us, command)` | every entry costs a commit round (fsyncs and a round trip), so one entry per write caps throughput at one write per round; sessions give exactly-once writes; `now_us` is the leader's clock, so apply never reads one |
//! | `R` (response) | `Vec<`[`CommandResult`]`>`, one per write of the proposal | rejections (duplicate id, backpressure) are replicated outcomes, not errors |
//! | `NodeId` | [`NodeId`], an interned name | names, never hashes; `Copy` as openraft 0.9 requires |
//! | `Node` | [`RaftPeer`]: the Raft `host:port` | enough to dial a voter |
//! | `SnapshotData` | a `tokio::fs::File` | snapshots are streamed from a file, never built in RAM |

use super::node_id::NodeId;
use crate::state::command::{CommandResult, Envelope};
use serde::{Deserialize, Serialize};

/// One log entry's application payload: writes batched by the leader's
/// [`super::proposer::Proposer`], applied in order in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The writes, in the order they are applied.
    pub writes: Vec<Envelope>,
}

/// What openraft stores about each member: where its Raft endpoint listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftPeer {
    /// `host:port` of the member's Raft TCP listener.
    pub addr: String,
}

impl std::fmt::Display for RaftPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.addr)
    }
}

openraft::declare_raft_types!(
    /// swimraft's openraft type configuration.
    pub TypeConfig:
        D = Proposal,
        R = Vec<CommandResult>,
        NodeId = NodeId,
        Node = RaftPeer,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader, index).
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// Membership as stored with the state machine.
pub type StoredMembership = openraft::StoredMembership<NodeId, RaftPeer>;
/// openraft's storage error.
pub type StorageError = openraft::StorageError<NodeId>;
/// A running Raft instance.
pub type Raft = openraft::Raft<TypeConfig>;
