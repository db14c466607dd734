//! Inbound side of a Raft connection: openraft's RPCs go to the local `Raft`; forwarded client
//! requests are served only when this node leads, otherwise answered with a leader hint (one
//! hop: a forwarded request is never forwarded again, so there are no loops).

use super::node_id::NodeId;
use super::proposer::Proposer;
use super::rpc::{decode, encode, ForwardError, Request, Response};
use super::state_store::StateReader;
use super::types::{Raft, RaftPeer};
use crate::consensus::read::ReadQuery;
use openraft::error::RaftError;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The leader's wall clock in microseconds since the Unix epoch, stamped on a command just
/// before it is proposed (apply takes `max(last_now, now)`, so a slower clock after failover
/// never moves replicated time backwards).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Maps an openraft error to a forwarding answer: a leader hint when there is one.
pub fn forward_error<E>(err: &RaftError<NodeId, E>) -> ForwardError
where
    E: std::error::Error + openraft::TryAsRef<openraft::error::ForwardToLeader<NodeId, RaftPeer>>,
{
    match err.forward_to_leader() {
        Some(fwd) => ForwardError::NotLeader {
            leader: fwd.leader_id,
            leader_addr: fwd.leader_node.as_ref().map(|n| n.addr.clone()),
        },
        None => ForwardError::Unavailable(err.to_string()),
    }
}

/// Adds a learner, waits for it to catch up, then makes it a voter.
pub async fn add_voter(raft: &Raft, node_id: NodeId, addr: String) -> Result<(), ForwardError> {
    raft.add_learner(node_id, RaftPeer { addr }, true)
        .await
        .map_err(|e| forward_error(&e))?;
    let metrics = raft.metrics().borrow().clone();
    let mut voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    voters.insert(node_id);
    raft.change_membership(voters, false)
        .await
        .map_err(|e| forward_error(&e))?;
    Ok(())
}

/// Removes a voter (it leaves the membership entirely).
pub async fn remove_voter(raft: &Raft, node_id: NodeId) -> Result<(), ForwardError> {
    let metrics = raft.metrics().borrow().clone();
    let mut voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    if !voters.remove(&node_id) {
        return Err(ForwardError::Invalid(format!("{node_id} is not a voter")));
    }
    if voters.is_empty() {
        return Err(ForwardError::Invalid("cannot remove the last voter".into()));
    }
    raft.change_membership(voters, false)
        .await
        .map_err(|e| forward_error(&e))?;
    Ok(())
}

/// Serves a client-only node's read: confirm leadership, wait for apply, read locally.
async fn serve_read(
    raft: &Raft,
    reader: &StateReader,
    query: ReadQuery,
) -> Result<serde_json::Value, ForwardError> {
    raft.ensure_linearizable()
        .await
        .map_err(|e| forward_error(&e))?;
    reader
        .read(move |conn| crate::consensus::read::execute(conn, &query))
        .await
        .map_err(|e| match e.kind() {
            crate::error::ErrorKind::InvalidArgument => {
                ForwardError::Invalid(e.message().to_string())
            }
            _ => ForwardError::Unavailable(e.to_string()),
        })
}

/// Answers one decoded request.
pub async fn handle(
    raft: Raft,
    reader: StateReader,
    proposer: Proposer,
    request: Request,
) -> Response {
    match request {
        Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
        Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
        Request::InstallSnapshot(rpc) => {
            Response::InstallSnapshot(raft.install_snapshot(rpc).await)
        }
        Request::ClientWrites(envs) => Response::ClientWrites(proposer.propose_all(envs).await),
        Request::Read(query) => Response::Read(serve_read(&raft, &reader, query).await),
        Request::ReadIndex => Response::ReadIndex(match raft.get_read_log_id().await {
            Ok((read_log_id, _applied)) => Ok(read_log_id.map(|l| l.index).unwrap_or(0)),
            Err(err) => Err(forward_error(&err)),
        }),
        Request::AddVoter { node_id, addr } => {
            Response::Management(add_voter(&raft, node_id, addr).await)
        }
        Request::RemoveVoter { node_id } => {
            Response::Management(remove_voter(&raft, node_id).await)
        }
    }
}

/// The transport handler: decode, answer, encode. Malformed payloads get an answer saying so.
pub fn handler(
    raft: Raft,
    reader: StateReader,
    proposer: Proposer,
) -> crate::transport::tcp::Handler {
    Arc::new(move |payload: Vec<u8>| {
        let raft = raft.clone();
        let reader = reader.clone();
        let proposer = proposer.clone();
        Box::pin(async move {
            let response = match decode::<Request>(&payload) {
                Ok(request) => handle(raft, reader, proposer, request).await,
                Err(err) => Response::Malformed(err),
            };
            encode(&response)
        }) as Pin<Box<dyn Future<Output = Vec<u8>> + Send>>
    })
}
