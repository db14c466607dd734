//! What travels on a Raft TCP connection: openraft's three RPCs plus the client operations a
//! follower forwards to the leader, as JSON payloads of [`crate::transport::tcp`] frames.
//!
//! JSON rather than a binary codec because commands carry arbitrary JSON values (`config`,
//! `result`, kv values), which self-describing formats decode and postcard cannot.

use super::node_id::NodeId;
use super::types::{RaftPeer, TypeConfig};
use crate::state::{CommandResult, Envelope};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

/// A request frame's payload.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft log replication / heartbeat.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Client writes forwarded to the node believed to lead, as many as the forwarding node
    /// had queued (see [`super::forwarder`]). The leader stamps `now_us`.
    ClientWrites(Vec<Envelope>),
    /// A read from a node without a replica: the leader serves it linearizably.
    Read(crate::consensus::read::ReadQuery),
    /// Read-index request: the leader confirms its leadership with a quorum and answers the
    /// log index a linearizable read must wait for.
    ReadIndex,
    /// Management: add a learner and promote it to voter.
    AddVoter {
        /// The new voter's id.
        node_id: NodeId,
        /// Its Raft address.
        addr: String,
    },
    /// Management: remove a voter.
    RemoveVoter {
        /// The voter's id.
        node_id: NodeId,
    },
}

/// Why a forwarded operation was not done by the node that received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardError {
    /// This node does not lead; the leader it knows of, if any (one hop only: never
    /// forwarded further, so there are no forwarding loops).
    NotLeader {
        /// Leader hint.
        leader: Option<NodeId>,
        /// Leader's Raft address.
        leader_addr: Option<String>,
    },
    /// Not applied; retry later (election in progress, quorum lost, shutting down).
    Unavailable(String),
    /// The request was malformed or invalid.
    Invalid(String),
}

/// A response frame's payload.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`Request::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`Request::InstallSnapshot`].
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// Answer to [`Request::ClientWrites`]: each write's outcome, in the request's order.
    ClientWrites(Vec<Result<CommandResult, ForwardError>>),
    /// Answer to [`Request::Read`].
    Read(Result<serde_json::Value, ForwardError>),
    /// Answer to [`Request::ReadIndex`].
    ReadIndex(Result<u64, ForwardError>),
    /// Answer to management requests.
    Management(Result<(), ForwardError>),
    /// The request could not be decoded.
    Malformed(String),
}

/// Encodes a message as a frame payload.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain data types to JSON cannot fail.
    serde_json::to_vec(msg).unwrap_or_default()
}

/// Decodes a frame payload.
pub fn decode<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, String> {
    serde_json::from_slice(payload).map_err(|e| format!("malformed Raft message: {e}"))
}

/// The peer entry for a voter address.
pub fn peer(addr: &str) -> RaftPeer {
    RaftPeer {
        addr: addr.to_string(),
    }
}
