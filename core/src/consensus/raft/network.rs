//! Outbound Raft RPCs: openraft's `RaftNetworkFactory` over multiplexed TCP clients, one per
//! peer address, shared with client-request forwarding so a follower and its leader keep one
//! connection.

use super::durability::Durability;
use super::node_id::NodeId;
use super::rpc::{decode, encode, Request, Response};
use super::split_vote::Outranked;
use super::types::{RaftPeer, TypeConfig};
use crate::transport::frame::FrameCodec;
use crate::transport::tcp::{RpcClient, RpcError};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared TCP clients, keyed by peer address.
#[derive(Clone)]
pub struct Peers {
    codec: FrameCodec,
    clients: Arc<Mutex<HashMap<String, RpcClient>>>,
}

impl Peers {
    /// An empty pool for one cluster.
    pub fn new(cluster_name: &str) -> Self {
        Peers {
            codec: FrameCodec::new(cluster_name),
            clients: Arc::default(),
        }
    }

    /// The client for `addr` (created on first use).
    pub fn client(&self, addr: &str) -> RpcClient {
        let mut clients = match self.clients.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        clients
            .entry(addr.to_string())
            .or_insert_with(|| RpcClient::new(addr, self.codec.clone()))
            .clone()
    }

    /// Sends a request to `addr` and decodes the answer.
    pub async fn call(
        &self,
        addr: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        let answer = self
            .client(addr)
            .call(encode(request), timeout)
            .await
            .map_err(CallError::Rpc)?;
        decode::<Response>(&answer).map_err(CallError::Decode)
    }
}

/// A failed call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Transport failure.
    #[error("{0}")]
    Rpc(RpcError),
    /// The answer could not be decoded.
    #[error("{0}")]
    Decode(String),
}

/// openraft's factory: one [`PeerNetwork`] per target.
#[derive(Clone)]
pub struct NetworkFactory {
    peers: Peers,
    outranked: Outranked,
    durability: Durability,
}

impl NetworkFactory {
    /// A factory using `peers`; refusals for a longer log are reported to `outranked`; the
    /// commit index sent to followers never passes `durability`, this node's durable log end
    /// (rule 2 of [`super::durability`]).
    pub fn new(peers: Peers, outranked: Outranked, durability: Durability) -> Self {
        NetworkFactory {
            peers,
            outranked,
            durability,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &RaftPeer) -> PeerNetwork {
        PeerNetwork {
            target,
            client: self.peers.client(&node.addr),
            outranked: self.outranked.clone(),
            durability: self.durability.clone(),
        }
    }
}

/// RPCs to one peer.
pub struct PeerNetwork {
    target: NodeId,
    client: RpcClient,
    outranked: Outranked,
    durability: Durability,
}

type NetResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, RaftPeer, E>>;

impl PeerNetwork {
    async fn send<E: std::error::Error>(
        &self,
        action: RPCTypes,
        request: &Request,
        option: &RPCOption,
    ) -> NetResult<Response, E> {
        let ttl = option.hard_ttl();
        match self.client.call(encode(request), ttl).await {
            Ok(answer) => decode::<Response>(&answer)
                .map_err(|e| RPCError::Network(NetworkError::new(&StringError(e)))),
            Err(RpcError::Timeout(_)) => Err(RPCError::Timeout(Timeout {
                action,
                id: NodeId::default(),
                target: self.target,
                timeout: ttl,
            })),
            Err(err @ RpcError::Unreachable(_)) => {
                Err(RPCError::Unreachable(Unreachable::new(&err)))
            }
            Err(err) => Err(RPCError::Network(NetworkError::new(&err))),
        }
    }

    fn unexpected<E: std::error::Error>(&self, got: &Response) -> RPCError<NodeId, RaftPeer, E> {
        RPCError::Network(NetworkError::new(&StringError(format!(
            "unexpected answer from {}: {got:?}",
            self.target
        ))))
    }
}

#[derive(Debug)]
struct StringError(String);

impl std::fmt::Display for StringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StringError {}

/// How long openraft waits before retrying a peer that was unreachable. openraft's default is
/// 500 ms, longer than a restarted follower's election timeout (leader lease + election
/// timeout, about 150-225 ms on the LAN preset): the follower would come back, hear nothing,
/// campaign and depose a healthy leader. Retrying every 50 ms reaches it first; a refused
/// connection to a dead peer costs next to nothing.
pub const UNREACHABLE_RETRY: Duration = Duration::from_millis(50);

impl RaftNetwork<TypeConfig> for PeerNetwork {
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(UNREACHABLE_RETRY))
    }

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> NetResult<AppendEntriesResponse<NodeId>> {
        rpc.leader_commit = self.durability.clamp_commit(rpc.leader_commit);
        match self
            .send(
                RPCTypes::AppendEntries,
                &Request::AppendEntries(rpc),
                &option,
            )
            .await?
        {
            Response::AppendEntries(Ok(r)) => Ok(r),
            Response::AppendEntries(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> NetResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self
            .send(
                RPCTypes::InstallSnapshot,
                &Request::InstallSnapshot(rpc),
                &option,
            )
            .await?
        {
            Response::InstallSnapshot(Ok(r)) => Ok(r),
            Response::InstallSnapshot(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> NetResult<VoteResponse<NodeId>> {
        let (term, last_log_id) = (rpc.vote.leader_id().term, rpc.last_log_id);
        match self
            .send(RPCTypes::Vote, &Request::Vote(rpc), &option)
            .await?
        {
            Response::Vote(Ok(r)) => {
                if !r.vote_granted && r.last_log_id > last_log_id {
                    self.outranked.record(term);
                }
                Ok(r)
            }
            Response::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tcp::{serve, ServerStats};
    use openraft::testing::log_id;
    use tokio::net::TcpListener;
    use tokio::sync::{mpsc, watch};

    fn id(index: u64) -> crate::consensus::raft::types::LogId {
        log_id::<NodeId>(2, NodeId::from(1u64), index)
    }

    /// Rule 2 of `durability.rs` on the real path: the commit index a leader sends over TCP
    /// never passes its durable log end, and follows it as the end moves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_entries_carry_a_commit_no_further_than_the_durable_log() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let handler: crate::transport::tcp::Handler = Arc::new(move |payload: Vec<u8>| {
            let seen_tx = seen_tx.clone();
            Box::pin(async move {
                let request: Request = decode(&payload).unwrap();
                let Request::AppendEntries(rpc) = request else {
                    panic!("unexpected {request:?}")
                };
                let _ = seen_tx.send(rpc.leader_commit);
                encode(&Response::AppendEntries(Ok(AppendEntriesResponse::Success)))
            })
        });
        let (stop, stop_rx) = watch::channel(false);
        let server = tokio::spawn(serve(
            listener,
            FrameCodec::new("t"),
            handler,
            Arc::new(ServerStats::default()),
            stop_rx,
        ));

        let durability = Durability::new(Some(id(3)));
        let mut factory =
            NetworkFactory::new(Peers::new("t"), Outranked::default(), durability.clone());
        let mut net = factory
            .new_client(NodeId::from(2u64), &RaftPeer { addr })
            .await;
        let send = |commit| AppendEntriesRequest::<TypeConfig> {
            vote: crate::consensus::raft::types::Vote::new_committed(2, NodeId::from(1u64)),
            prev_log_id: Some(id(5)),
            entries: Vec::new(),
            leader_commit: commit,
        };
        let option = RPCOption::new(Duration::from_secs(5));
        for (durable, commit, told) in [
            (3, 5, Some(id(3))), // openraft counted the leader's queued entries 4 and 5
            (5, 5, Some(id(5))), // both on disk now
            (7, 6, Some(id(6))), // the commit is the lower one
        ] {
            durability.set_last(Some(id(durable)));
            net.append_entries(send(Some(id(commit))), option.clone())
                .await
                .unwrap();
            assert_eq!(
                seen.recv().await.unwrap(),
                told,
                "durable {durable}, commit {commit}"
            );
        }
        stop.send(true).unwrap();
        let _ = server.await;
    }
}
