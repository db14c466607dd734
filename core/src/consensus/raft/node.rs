//! [`RaftNode`]: one node's Raft — a voter replica with its SQLite stores and TCP listener, or,
//! for a node outside the voter list, a client that sends every operation to the voters.
//!
//! Writes are proposed locally when this node leads and otherwise forwarded (one hop) to the
//! leader it knows; on "not leader", an unreachable peer or a leader change the write is
//! retried with the same session `seq` until the caller's deadline, so it is applied exactly
//! once and never hangs past the deadline. Reads are linearizable by default (read-index
//! through the leader, then served from the local replica once it has applied that far) or
//! served from the local replica with `stale_ok`.

use super::forwarder::Forwarder;
use super::network::{CallError, NetworkFactory, Peers};
use super::node_id::NodeId;
use super::proposer::{self, Proposer};
use super::rpc::{ForwardError, Request, Response};
use super::server;
use super::session::ClientSession;
use super::split_vote;
use super::types::{Raft, RaftPeer};
use super::{log_store::LogStore, state_store::StateReader, state_store::StateStore};
use crate::consensus::read::{self, ReadQuery};
use crate::error::{Error, ErrorKind, Result};
use crate::state::{Command, CommandResult, Envelope};
use crate::transport::tcp::{serve, RpcError, ServerStats};
use openraft::{ServerState, SnapshotPolicy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Pause between retries while there is no leader (an election takes a few election timeouts).
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Why a write or linearizable read is refused once the Raft core stopped on its own.
const CORE_ENDED: &str =
    "the Raft core of this node stopped on a fatal error (see its log); restart the node";

/// How to start a node.
#[derive(Debug, Clone)]
pub struct RaftNodeConfig {
    /// This node's id.
    pub node_id: String,
    /// Cluster name carried in every frame.
    pub cluster_name: String,
    /// Where the Raft listener binds (port 0 = any free port; voters usually give the port).
    pub bind: SocketAddr,
    /// The host peers use to reach this node.
    pub advertise_host: std::net::IpAddr,
    /// `<data_dir>/raft` holds `log.db`, `state.db` and snapshots.
    pub data_dir: PathBuf,
    /// Voters as `(node_id, host:port)`; empty means a single-node cluster of this node.
    pub voters: Vec<(String, String)>,
    /// Leader heartbeat.
    pub heartbeat_interval: Duration,
    /// Election timeout range.
    pub election_timeout_min: Duration,
    /// Election timeout range.
    pub election_timeout_max: Duration,
    /// Time between snapshots (also taken every [`SNAPSHOT_EVERY_ENTRIES`]).
    pub snapshot_interval: Duration,
    /// Run an empty replica that waits to be added by `add_voter` (it never initializes a
    /// group, even when it is not in `voters`).
    pub join_existing: bool,
}

/// Most entries in one AppendEntries. An entry holds at most
/// [`proposer::MAX_WRITE_BYTES`] (one large write) or a batch of about
/// [`proposer::MAX_BYTES`], so one RPC stays at 32 MiB at
/// most: inside the frame limit, which a lagging follower's catch-up must never hit.
pub const MAX_ENTRIES_PER_APPEND: u64 = 32;

const _: () = assert!(
    MAX_ENTRIES_PER_APPEND as usize * super::proposer::MAX_WRITE_BYTES
        <= crate::transport::frame::MAX_PAYLOAD as usize / 2
);

/// A snapshot is also taken after this many entries.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 50_000;

/// What a node reports about Raft (the `raft` part of the status, plus detail).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RaftStatus {
    /// `voter` (runs a replica) or `client` (not in the voter list).
    pub role: String,
    /// The group has a membership (initialized).
    pub initialized: bool,
    /// This node leads and has a quorum acknowledgement younger than the minimum election
    /// timeout (so two nodes never both act as leader).
    pub is_leader: bool,
    /// Leader's node id, `""` when none is known (a client node: the voter that last served
    /// its write or that a voter named as leader).
    pub leader_id: String,
    /// Leader's Raft address, `""` when none is known.
    pub leader_address: String,
    /// Current term (0 on a client node, which does not follow terms).
    pub term: u64,
    /// Last log index.
    pub last_log_index: u64,
    /// Last applied index.
    pub applied_index: u64,
    /// Index of the latest snapshot.
    pub snapshot_index: u64,
    /// Voter ids.
    pub voters: Vec<String>,
    /// Learner ids.
    pub learners: Vec<String>,
    /// Raft listener address, for voters.
    pub raft_address: String,
    /// Work items not finished (pending, claimed, running), from the local replica.
    pub work_queue_size: u64,
    /// Jobs assigned and not started, from the local replica.
    pub pending_jobs: u64,
}

/// Called with the new leader id (`""` for none) on every change.
pub type LeaderSink = Arc<dyn Fn(String) + Send + Sync>;

struct Replica {
    raft: Raft,
    proposer: Proposer,
    reader: StateReader,
    stop_server: watch::Sender<bool>,
    stats: Arc<ServerStats>,
}

/// A running Raft node (voter or client).
pub struct RaftNode {
    id: NodeId,
    address: String,
    replica: Option<Replica>,
    peers: Peers,
    forwarder: Forwarder,
    voters: Vec<(NodeId, String)>,
    session: ClientSession,
    leader_hint: Mutex<Option<(NodeId, String)>>,
    status: Arc<RwLock<RaftStatus>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopped: watch::Sender<bool>,
    single_voter: bool,
    quorum_ack_limit: Duration,
}

fn raft_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("{what}: {err}"))
}

impl RaftNode {
    /// Starts the node. A voter opens its stores under `data_dir/raft`, binds its listener and
    /// initializes the group on first start (idempotent when every voter does it at once); a
    /// restart recovers from disk and never re-initializes.
    pub async fn start(cfg: RaftNodeConfig, on_leader: LeaderSink) -> Result<RaftNode> {
        let id = NodeId::new(&cfg.node_id);
        let peers = Peers::new(&cfg.cluster_name);
        let mut voters: Vec<(NodeId, String)> = cfg
            .voters
            .iter()
            .map(|(n, a)| (NodeId::new(n), a.clone()))
            .collect();
        let is_voter =
            cfg.join_existing || voters.is_empty() || voters.iter().any(|(n, _)| *n == id);
        let (stopped, _) = watch::channel(false);
        let status = Arc::new(RwLock::new(RaftStatus::default()));
        let (forwarder, forwarder_task) = Forwarder::start(peers.clone());
        if !is_voter {
            let node = RaftNode {
                id,
                address: String::new(),
                replica: None,
                peers,
                forwarder,
                single_voter: voters.len() == 1,
                voters,
                session: ClientSession::new(&cfg.node_id),
                leader_hint: Mutex::new(None),
                status,
                tasks: Mutex::new(vec![forwarder_task]),
                stopped,
                quorum_ack_limit: cfg.election_timeout_min,
            };
            node.set_status(|s| {
                s.role = "client".into();
                s.voters = node.voters.iter().map(|(n, _)| n.to_string()).collect();
            });
            return Ok(node);
        }

        let listener = TcpListener::bind(cfg.bind).await.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot bind the Raft TCP listener to {}: {e}", cfg.bind),
            )
        })?;
        let bound = listener.local_addr()?;
        let address = SocketAddr::new(cfg.advertise_host, bound.port()).to_string();
        if voters.is_empty() {
            voters.push((id, address.clone()));
        }
        let dir = cfg.data_dir.join("raft");
        // The leader's fsync runs beside the replication; `durability` carries the two rules
        // that keep that safe (see `durability.rs`).
        let log_store = LogStore::open(&dir).await?.overlap_leader_fsync(id);
        let durability = log_store.durability();
        let state = StateStore::open(&dir)
            .await?
            .apply_after(durability.clone());
        let reader = state.reader();
        let raft_config = openraft::Config {
            cluster_name: cfg.cluster_name.clone(),
            heartbeat_interval: cfg.heartbeat_interval.as_millis() as u64,
            election_timeout_min: cfg.election_timeout_min.as_millis() as u64,
            election_timeout_max: cfg.election_timeout_max.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES),
            max_in_snapshot_log_to_keep: 1_000,
            max_payload_entries: MAX_ENTRIES_PER_APPEND,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::invalid_config(format!("Raft timings: {e}")))?;
        let outranked = split_vote::Outranked::default();
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            NetworkFactory::new(peers.clone(), outranked.clone(), durability),
            log_store,
            state,
        )
        .await
        .map_err(|e| raft_error("cannot start Raft", e))?;

        let (proposer, proposer_task) = Proposer::start(raft.clone());
        let (stop_server, server_rx) = watch::channel(false);
        let stats = Arc::new(ServerStats::default());
        let server_task = tokio::spawn(serve(
            listener,
            peers_codec(&cfg.cluster_name),
            server::handler(raft.clone(), reader.clone(), proposer.clone()),
            stats.clone(),
            server_rx,
        ));

        let node = RaftNode {
            id,
            address: address.clone(),
            replica: Some(Replica {
                raft: raft.clone(),
                proposer: proposer.clone(),
                reader,
                stop_server,
                stats,
            }),
            peers,
            forwarder,
            single_voter: voters.len() == 1,
            voters,
            session: ClientSession::new(&cfg.node_id),
            leader_hint: Mutex::new(None),
            status,
            tasks: Mutex::new(vec![server_task, proposer_task, forwarder_task]),
            stopped,
            quorum_ack_limit: cfg.election_timeout_min,
        };
        if !cfg.join_existing {
            node.initialize_or_check(&raft).await?;
        }
        node.spawn(watch_metrics(
            raft.clone(),
            node.status.clone(),
            on_leader,
            address,
            node.single_voter,
            node.quorum_ack_limit,
            node.stopped.subscribe(),
        ));
        if let Some(replica) = &node.replica {
            node.spawn(split_vote::break_split_votes(
                raft.clone(),
                outranked,
                cfg.election_timeout_min / 4,
                cfg.election_timeout_min,
                node.stopped.subscribe(),
            ));
            node.spawn(leader_duties(
                raft.clone(),
                replica.proposer.clone(),
                replica.reader.clone(),
                cfg.snapshot_interval,
                node.stopped.subscribe(),
            ));
            node.spawn(refresh_queue_figures(
                replica.reader.clone(),
                node.status.clone(),
                node.stopped.subscribe(),
            ));
        }
        Ok(node)
    }

    async fn initialize_or_check(&self, raft: &Raft) -> Result<()> {
        let members: BTreeMap<NodeId, RaftPeer> = self
            .voters
            .iter()
            .map(|(n, a)| (*n, RaftPeer { addr: a.clone() }))
            .collect();
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| raft_error("Raft stopped", e))?;
        if !initialized {
            // Every voter calls this with the same membership; whoever is second is refused
            // with NotAllowed, which is the expected outcome, not an error.
            if let Err(err) = raft.initialize(members).await {
                tracing::debug!(%err, "Raft initialize refused (already initialized elsewhere)");
            }
            return Ok(());
        }
        let on_disk: Vec<NodeId> = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        let wanted: Vec<NodeId> = members.keys().copied().collect();
        if on_disk != wanted {
            if on_disk == vec![self.id] && wanted.len() > 1 {
                return Err(Error::invalid_config(format!(
                    "RINGRIFT_RAFT_VOTERS lists {wanted:?}, but the data directory was initialized \
                     as a single-node cluster of {}; start with an empty data directory or \
                     change voters with add_voter",
                    self.id
                )));
            }
            tracing::warn!(
                ?on_disk,
                ?wanted,
                "Raft membership on disk differs from RINGRIFT_RAFT_VOTERS; the disk wins \
                 (change voters with add_voter / remove_voter)"
            );
        }
        Ok(())
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(tokio::spawn(fut));
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut RaftStatus)) {
        if let Ok(mut s) = self.status.write() {
            f(&mut s);
        }
    }

    /// The latest status (no waiting on Raft).
    pub fn status(&self) -> RaftStatus {
        self.status.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The advertised Raft address (`""` for a client).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Connections refused for a bad frame (another cluster, garbage).
    pub fn bad_frames(&self) -> u64 {
        self.replica
            .as_ref()
            .map(|r| {
                r.stats
                    .bad_frames
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .unwrap_or(0)
    }

    /// Whether this voter's Raft core has ended without `stop()` (its metrics channel closes
    /// with it). A client node has no core.
    fn core_ended(&self) -> bool {
        self.replica
            .as_ref()
            .is_some_and(|r| r.raft.metrics().has_changed().is_err())
    }

    fn leader_target(&self) -> Option<(NodeId, String)> {
        if let Some(replica) = &self.replica {
            let m = replica.raft.metrics().borrow().clone();
            if let Some(leader) = m.current_leader {
                if let Some(node) = m.membership_config.membership().get_node(&leader) {
                    return Some((leader, node.addr.clone()));
                }
            }
        }
        self.leader_hint.lock().ok().and_then(|h| h.clone())
    }

    fn remember_leader(&self, leader: Option<NodeId>, addr: Option<String>) {
        if let Ok(mut hint) = self.leader_hint.lock() {
            *hint = match (leader, addr) {
                (Some(l), Some(a)) => Some((l, a)),
                (Some(l), None) => self
                    .voters
                    .iter()
                    .find(|(n, _)| *n == l)
                    .map(|(n, a)| (*n, a.clone())),
                _ => None,
            };
            if self.replica.is_none() {
                // A client's status shows the leader it talks to (its term is not known: 0).
                let (id, address) = hint
                    .as_ref()
                    .map(|(l, a)| (l.to_string(), a.clone()))
                    .unwrap_or_default();
                self.set_status(|s| {
                    s.leader_id = id;
                    s.leader_address = address;
                });
            }
        }
    }

    /// A client whose write a voter at `addr` applied has found the leader (followers answer
    /// forwarded writes with a hint, never by forwarding again).
    fn served_by(&self, addr: &str) {
        if self.replica.is_some() {
            return;
        }
        let known = self.leader_target().is_some_and(|(_, a)| a == addr);
        if !known {
            let voter = self.voters.iter().find(|(_, a)| a == addr).map(|(n, _)| *n);
            self.remember_leader(voter, Some(addr.to_string()));
        }
    }

    /// Proposes `command` and waits for its result until `timeout`. `request_id` makes the
    /// caller's own retries idempotent. Rejections (duplicate id, backpressure, ...) come back
    /// as errors of their kind; `Unavailable` means not applied, `Timeout` means unknown.
    pub async fn write(
        &self,
        command: Command,
        timeout: Duration,
        request_id: Option<&str>,
    ) -> Result<CommandResult> {
        let ticket = self.session.begin(request_id);
        let env = Envelope {
            client_id: ticket.client_id.clone(),
            seq: ticket.seq,
            first_unacked: ticket.first_unacked,
            now_us: 0,
            command,
        };
        let result = self.write_until(env, Instant::now() + timeout).await;
        self.session.finish(&ticket);
        let result = result?;
        match result.rejection() {
            Some(err) => Err(err),
            None => Ok(result),
        }
    }

    async fn write_until(&self, env: Envelope, deadline: Instant) -> Result<CommandResult> {
        let mut maybe_applied = false;
        let mut size: Option<usize> = None;
        let mut rotate = 0usize;
        let mut last_error = String::from("no leader");
        loop {
            if *self.stopped.borrow() {
                return Err(Error::new(ErrorKind::Shutdown, "the Raft node is stopped"));
            }
            // A core that stopped on a fatal error answers nothing until a restart: say so
            // now rather than retrying until the deadline.
            if self.core_ended() {
                let why = CORE_ENDED;
                return Err(if maybe_applied {
                    Error::new(
                        ErrorKind::Timeout,
                        format!("{why}; the write may or may not have been applied"),
                    )
                } else {
                    Error::new(ErrorKind::Unavailable, why)
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(if maybe_applied {
                    Error::new(
                        ErrorKind::Timeout,
                        format!("write not confirmed before the deadline ({last_error}); it may or may not have been applied"),
                    )
                } else {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("write not applied before the deadline: {last_error}"),
                    )
                });
            }
            let target = self.leader_target();
            let local_leader =
                matches!((&target, &self.replica), (Some((l, _)), Some(_)) if *l == self.id);
            let answer = if local_leader {
                let replica = self
                    .replica
                    .as_ref()
                    .ok_or_else(|| raft_error("no replica", ""))?;
                maybe_applied = true;
                match tokio::time::timeout_at(deadline, replica.proposer.propose(env.clone())).await
                {
                    Ok(answer) => answer,
                    Err(_) => continue,
                }
            } else {
                // The proposer checks a local write's size; one to be forwarded is checked
                // before it leaves: the leader would refuse it only after it crossed the
                // network, and one larger than a frame would cut the shared connection.
                let bytes = match size {
                    Some(bytes) => bytes,
                    None => *size.insert(
                        proposer::checked_size(&env)
                            .map_err(|why| Error::new(ErrorKind::InvalidArgument, why))?,
                    ),
                };
                let addr = match &target {
                    Some((_, addr)) => addr.clone(),
                    None => {
                        rotate += 1;
                        match self.voters.get(rotate % self.voters.len().max(1)) {
                            Some((_, addr)) if self.replica.is_none() => addr.clone(),
                            _ => {
                                tokio::time::sleep(RETRY_PAUSE).await;
                                continue;
                            }
                        }
                    }
                };
                match self
                    .forwarder
                    .forward(&addr, env.clone(), bytes, deadline)
                    .await
                {
                    Ok(answer) => {
                        maybe_applied = true;
                        if answer.is_ok() {
                            self.served_by(&addr);
                        }
                        answer
                    }
                    Err(CallError::Rpc(RpcError::Timeout(a))) => {
                        maybe_applied = true;
                        Err(ForwardError::Unavailable(format!("{a} did not answer")))
                    }
                    Err(CallError::Rpc(RpcError::Disconnected(a))) => {
                        maybe_applied = true;
                        self.remember_leader(None, None);
                        Err(ForwardError::Unavailable(format!("connection to {a} lost")))
                    }
                    Err(err) => {
                        self.remember_leader(None, None);
                        Err(ForwardError::Unavailable(err.to_string()))
                    }
                }
            };
            match answer {
                Ok(result) => return Ok(result),
                Err(ForwardError::NotLeader {
                    leader,
                    leader_addr,
                }) => {
                    last_error = format!("not leader (hint {leader:?})");
                    self.remember_leader(leader, leader_addr);
                    if leader.is_none() {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
                Err(ForwardError::Unavailable(why)) => {
                    last_error = why;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(ForwardError::Invalid(why)) => {
                    return Err(Error::new(ErrorKind::InvalidArgument, why))
                }
            }
        }
    }

    /// Runs a read. `stale_ok` serves the local replica as it is; otherwise the read is
    /// linearizable: the leader confirms its leadership with a quorum, and the replica waits
    /// until it has applied the leader's commit index before reading.
    pub async fn read(
        &self,
        query: ReadQuery,
        stale_ok: bool,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let Some(replica) = &self.replica else {
            return self.read_remote(query, deadline).await;
        };
        if !stale_ok {
            // The replica's file still answers `stale_ok` reads; nothing can confirm it is
            // current any more.
            if self.core_ended() {
                return Err(Error::new(ErrorKind::Unavailable, CORE_ENDED));
            }
            let index = self.read_index(deadline).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            replica
                .raft
                .wait(Some(remaining))
                .applied_index_at_least(Some(index), "linearizable read")
                .await
                .map_err(|e| {
                    Error::new(ErrorKind::Timeout, format!("replica did not catch up: {e}"))
                })?;
        }
        replica
            .reader
            .read(move |conn| read::execute(conn, &query))
            .await
    }

    async fn read_index(&self, deadline: Instant) -> Result<u64> {
        loop {
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "no leader confirmed a read index before the deadline",
                ));
            }
            let target = self.leader_target();
            if let (Some((leader, _)), Some(replica)) = (&target, &self.replica) {
                if *leader == self.id {
                    match replica.raft.get_read_log_id().await {
                        Ok((read_log_id, _)) => {
                            return Ok(read_log_id.map(|l| l.index).unwrap_or(0))
                        }
                        Err(err) => {
                            let fwd = server::forward_error(&err);
                            if let ForwardError::NotLeader {
                                leader,
                                leader_addr,
                            } = fwd
                            {
                                self.remember_leader(leader, leader_addr);
                            }
                            tokio::time::sleep(RETRY_PAUSE).await;
                            continue;
                        }
                    }
                }
            }
            let Some((_, addr)) = target else {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.peers.call(&addr, &Request::ReadIndex, remaining).await {
                Ok(Response::ReadIndex(Ok(index))) => return Ok(index),
                Ok(Response::ReadIndex(Err(ForwardError::NotLeader {
                    leader,
                    leader_addr,
                }))) => self.remember_leader(leader, leader_addr),
                _ => {
                    self.remember_leader(None, None);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    async fn read_remote(&self, query: ReadQuery, deadline: Instant) -> Result<serde_json::Value> {
        let mut rotate = 0usize;
        loop {
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "no voter answered the read",
                ));
            }
            let addr = match self.leader_target() {
                Some((_, addr)) => addr,
                None => {
                    rotate += 1;
                    match self.voters.get(rotate % self.voters.len().max(1)) {
                        Some((_, addr)) => addr.clone(),
                        None => {
                            return Err(Error::new(ErrorKind::Unavailable, "no voters configured"))
                        }
                    }
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self
                .peers
                .call(&addr, &Request::Read(query.clone()), remaining)
                .await
            {
                Ok(Response::Read(Ok(value))) => return Ok(value),
                Ok(Response::Read(Err(ForwardError::NotLeader {
                    leader,
                    leader_addr,
                }))) => {
                    self.remember_leader(leader, leader_addr);
                    if leader.is_none() {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
                Ok(Response::Read(Err(ForwardError::Invalid(why)))) => {
                    return Err(Error::new(ErrorKind::InvalidArgument, why))
                }
                _ => {
                    self.remember_leader(None, None);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// Adds a voter (as a learner first, promoted once it has caught up).
    pub async fn add_voter(&self, node_id: &str, addr: &str, timeout: Duration) -> Result<()> {
        self.manage(
            Request::AddVoter {
                node_id: NodeId::new(node_id),
                addr: addr.to_string(),
            },
            timeout,
        )
        .await
    }

    /// Removes a voter.
    pub async fn remove_voter(&self, node_id: &str, timeout: Duration) -> Result<()> {
        self.manage(
            Request::RemoveVoter {
                node_id: NodeId::new(node_id),
            },
            timeout,
        )
        .await
    }

    async fn manage(&self, request: Request, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "membership change not done before the deadline",
                ));
            }
            let answer = match (self.leader_target(), &self.replica) {
                (Some((leader, _)), Some(replica)) if leader == self.id => match &request {
                    Request::AddVoter { node_id, addr } => {
                        server::add_voter(&replica.raft, *node_id, addr.clone()).await
                    }
                    Request::RemoveVoter { node_id } => {
                        server::remove_voter(&replica.raft, *node_id).await
                    }
                    _ => Err(ForwardError::Invalid("not a membership request".into())),
                },
                (Some((_, addr)), _) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    match self.peers.call(&addr, &request, remaining).await {
                        Ok(Response::Management(answer)) => answer,
                        _ => Err(ForwardError::Unavailable("leader did not answer".into())),
                    }
                }
                (None, _) => Err(ForwardError::Unavailable("no leader".into())),
            };
            match answer {
                Ok(()) => return Ok(()),
                Err(ForwardError::Invalid(why)) => {
                    return Err(Error::new(ErrorKind::InvalidArgument, why))
                }
                Err(ForwardError::NotLeader {
                    leader,
                    leader_addr,
                }) => self.remember_leader(leader, leader_addr),
                Err(ForwardError::Unavailable(_)) => tokio::time::sleep(RETRY_PAUSE * 5).await,
            }
        }
    }

    /// Takes a snapshot now, waits for it, and purges the log up to it (tests and operators
    /// use this to force followers onto install-snapshot).
    pub async fn snapshot_and_purge(&self) -> Result<u64> {
        let replica = self
            .replica
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "a client node has no replica"))?;
        let applied = replica.raft.metrics().borrow().last_applied;
        replica
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| raft_error("snapshot", e))?;
        let mut metrics = replica.raft.metrics();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let snapshot = metrics.borrow_and_update().snapshot;
            if snapshot >= applied {
                let index = snapshot.map(|l| l.index).unwrap_or(0);
                replica
                    .raft
                    .trigger()
                    .purge_log(index)
                    .await
                    .map_err(|e| raft_error("purge", e))?;
                return Ok(index);
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return Err(Error::new(ErrorKind::Timeout, "snapshot not built in 30 s"));
            }
        }
    }

    /// Stops Raft, the listener and every task. Idempotent.
    pub async fn stop(&self) {
        if self.stopped.send_replace(true) {
            return;
        }
        if let Some(replica) = &self.replica {
            let _ = replica.stop_server.send(true);
            let _ = replica.raft.shutdown().await;
        }
        let tasks: Vec<JoinHandle<()>> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        self.set_status(|s| {
            s.is_leader = false;
        });
    }
}

fn peers_codec(cluster_name: &str) -> crate::transport::frame::FrameCodec {
    crate::transport::frame::FrameCodec::new(cluster_name)
}

/// Keeps the status current and reports every leader change (including "no leader").
async fn watch_metrics(
    raft: Raft,
    status: Arc<RwLock<RaftStatus>>,
    on_leader: LeaderSink,
    address: String,
    single_voter: bool,
    quorum_ack_limit: Duration,
    stopped: watch::Receiver<bool>,
) {
    let mut metrics = raft.metrics();
    let mut last_leader: Option<NodeId> = None;
    let mut first = true;
    loop {
        let m = metrics.borrow_and_update().clone();
        let membership = m.membership_config.membership();
        let leader_addr = m
            .current_leader
            .and_then(|l| membership.get_node(&l).map(|n| n.addr.clone()))
            .unwrap_or_default();
        let fresh_quorum = single_voter
            || m.millis_since_quorum_ack
                .is_some_and(|ms| Duration::from_millis(ms) < quorum_ack_limit);
        let is_leader =
            m.state == ServerState::Leader && m.current_leader == Some(m.id) && fresh_quorum;
        let voters: Vec<String> = membership.voter_ids().map(|n| n.to_string()).collect();
        let learners: Vec<String> = membership.learner_ids().map(|n| n.to_string()).collect();
        if let Ok(mut s) = status.write() {
            let (work_queue_size, pending_jobs) = (s.work_queue_size, s.pending_jobs);
            *s = RaftStatus {
                work_queue_size,
                pending_jobs,
                role: "voter".into(),
                initialized: !voters.is_empty(),
                is_leader,
                leader_id: m.current_leader.map(|l| l.to_string()).unwrap_or_default(),
                leader_address: leader_addr,
                term: m.current_term,
                last_log_index: m.last_log_index.unwrap_or(0),
                applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
                snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
                voters,
                learners,
                raft_address: address.clone(),
            };
        }
        if first || m.current_leader != last_leader {
            if !(first && m.current_leader.is_none()) {
                on_leader(m.current_leader.map(|l| l.to_string()).unwrap_or_default());
            }
            last_leader = m.current_leader;
            first = false;
        }
        // Quorum freshness changes without a metrics event: re-check at the heartbeat pace.
        match tokio::time::timeout(quorum_ack_limit / 2, metrics.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            Ok(Err(_)) => {
                // The metrics end with the Raft core: at `stop()`, or on their own when the
                // core stopped on a fatal error (a failed log write, a panic inside openraft).
                // Then this node leads nothing and follows no one until it is restarted; the
                // last status must not stay up saying otherwise (`is_leader` is read as fact).
                if !*stopped.borrow() {
                    tracing::error!(
                        "the Raft core stopped on its own; this node takes no part in \
                         consensus until it is restarted"
                    );
                    if let Ok(mut s) = status.write() {
                        s.is_leader = false;
                        s.leader_id.clear();
                        s.leader_address.clear();
                    }
                    if last_leader.is_some() {
                        on_leader(String::new());
                    }
                }
                return;
            }
        }
    }
}

/// Keeps the queue figures of the status fresh (once a second, from the local replica), so
/// status reads never touch SQLite.
async fn refresh_queue_figures(
    reader: StateReader,
    status: Arc<RwLock<RaftStatus>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let figures = reader
            .read(|conn| {
                let queue = crate::state::queries::work_queue_size(conn)?;
                let jobs = crate::state::queries::job_stats(conn)?;
                Ok((queue, jobs.all.assigned))
            })
            .await;
        if let (Ok((queue, jobs)), Ok(mut s)) = (figures, status.write()) {
            s.work_queue_size = queue;
            s.pending_jobs = jobs;
        }
    }
}

/// What the leader proposes by itself: timeouts of claimed work and expiry of locks (checked
/// every second on its replica, proposed only when something is due, so they add no entries
/// to an idle cluster's log), retention cleanup (proposed every minute whether or not anything
/// is old enough: one small entry a minute), and snapshots every `snapshot_interval` on every
/// node.
async fn leader_duties(
    raft: Raft,
    proposer: Proposer,
    reader: StateReader,
    snapshot_interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut snapshot_due = Instant::now() + snapshot_interval;
    let mut cleanup_due = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let now = Instant::now();
        if now >= snapshot_due {
            snapshot_due = now + snapshot_interval;
            let _ = raft.trigger().snapshot().await;
        }
        let leading = {
            let m = raft.metrics().borrow().clone();
            m.state == ServerState::Leader
        };
        if !leading {
            continue;
        }
        let wall_us = server::now_us();
        let (timeouts, locks) = reader
            .read(move |conn| crate::state::queries::sweeps_due(conn, wall_us))
            .await
            .unwrap_or((true, true));
        if timeouts {
            let _ = proposer
                .propose(Envelope::new(0, Command::WorkCheckTimeouts))
                .await;
        }
        if locks {
            let _ = proposer
                .propose(Envelope::new(0, Command::LockExpire))
                .await;
        }
        if now >= cleanup_due {
            cleanup_due = now + Duration::from_secs(60);
            let day_us = 24 * 3600 * 1_000_000;
            let _ = proposer
                .propose(Envelope::new(
                    0,
                    Command::WorkCleanup {
                        retention_us: day_us,
                    },
                ))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NewWorkItem;
    use std::net::{IpAddr, Ipv4Addr};

    /// A core that ends on its own (here: shut down behind the node's back, as a fatal
    /// storage error or a panic inside openraft would end it) must not leave the status saying
    /// this node leads: the leader fields clear, "no leader" is reported, writes fail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_core_that_stops_on_its_own_clears_the_leader_it_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = RaftNodeConfig {
            node_id: "solo".into(),
            cluster_name: "core-end-test".into(),
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertise_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            data_dir: dir.path().to_path_buf(),
            voters: Vec::new(),
            heartbeat_interval: Duration::from_millis(30),
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            snapshot_interval: Duration::from_secs(3600),
            join_existing: false,
        };
        let (changes_tx, mut changes) = tokio::sync::mpsc::unbounded_channel::<String>();
        let sink = Arc::new(move |leader: String| {
            let _ = changes_tx.send(leader);
        }) as LeaderSink;
        let node = RaftNode::start(cfg, sink).await.expect("start");
        let add = |id: &str| Command::WorkAdd {
            item: NewWorkItem::new(id, "selfplay"),
            force: false,
        };
        // A write waits for the election within its timeout.
        node.write(add("w1"), Duration::from_secs(10), None)
            .await
            .expect("first write");
        assert!(node.status().is_leader);

        let raft = node.replica.as_ref().expect("a voter").raft.clone();
        raft.shutdown().await.expect("core shutdown");
        // "No leader" is reported after the status was cleared: await the report.
        let reported = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(leader) = changes.recv().await {
                if leader.is_empty() {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(reported, Ok(true), "no leader reported");
        let status = node.status();
        assert!(
            !status.is_leader && status.leader_id.is_empty(),
            "{status:?}"
        );
        let refused = |err: Error| {
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
            assert!(err.message().contains("restart the node"), "{err}");
        };
        // Refused as not applied, at once: before, it was proposed to the dead core again and
        // again, and ended as "may or may not have been applied" at its deadline.
        refused(
            node.write(add("w2"), Duration::from_secs(10), None)
                .await
                .expect_err("no core, no write"),
        );
        // A linearizable read is refused the same way; the replica still serves a stale one.
        refused(
            node.read(ReadQuery::WorkStats, false, Duration::from_secs(10))
                .await
                .expect_err("nothing confirms the replica is current"),
        );
        let stats = node
            .read(ReadQuery::WorkStats, true, Duration::from_secs(10))
            .await
            .expect("stale read");
        assert_eq!(stats["pending"], serde_json::json!(1));
        node.stop().await;
    }
}
