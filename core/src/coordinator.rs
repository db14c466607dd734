//! The HybridCoordinator: owns the protocol parts, starts and stops them according to the
//! configured modes, routes membership queries, and keeps the status that fast reads return.
//!
//! Membership routing (DESIGN.md §3): `http` answers from the heartbeat view the orchestrator
//! feeds, `swim` from SWIM only, `hybrid` from the union of both. When the mode wants SWIM but
//! SWIM is not running (disabled, failed to bind, not joined yet) `swim_fallback_active` says so
//! with a reason; it is derived on every read, so a recovered protocol clears it.
//!
//! Consensus routing: `raft` mode serves the replicated state through Raft only (no leader = no
//! leader); `hybrid` runs Raft when it can and reports `raft_fallback_active` with a reason
//! while it cannot; `bully` leaves leadership and the work queue to the orchestrator's legacy
//! paths, and the replicated-state calls answer `Unavailable` saying so.

use crate::config::{Config, ConsensusMode, MembershipMode};
use crate::consensus::raft::node::{RaftNode, RaftNodeConfig};
use crate::consensus::read::ReadQuery;
use crate::error::{Error, ErrorKind, Result};
use crate::membership::heartbeat::HeartbeatView;
use crate::membership::swim::driver::SnapshotReader;
use crate::membership::swim::identity::next_bump;
use crate::membership::swim::{SwimDriver, SwimDriverConfig, SwimNodeConfig};
use crate::membership::view::{
    EventSink, MemberInfo, MemberState, MembershipEvent, MembershipSnapshot, NodeMeta, SwimCounters,
};
use crate::state::{Command, CommandResult};
use serde::Serialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Something that happened, delivered to subscribers in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A member changed state.
    Member(MembershipEvent),
    /// The Raft leader changed; `leader_id` is `""` when there is none.
    Leader {
        /// The new leader's node id.
        leader_id: String,
    },
}

/// Lifecycle of a coordinator. `Stopped` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Built, nothing started.
    Created,
    /// `start()` succeeded.
    Running,
    /// `stop()` was called.
    Stopped,
}

/// The `swim` part of the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwimStatus {
    /// `RINGRIFT_SWIM_ENABLED`.
    pub enabled: bool,
    /// SWIM is running and has joined a cluster.
    pub available: bool,
    /// SWIM was started (socket bound).
    pub started: bool,
    /// Alive members other than this node.
    pub alive_count: usize,
    /// Suspected members.
    pub suspected_count: usize,
    /// Failed members still remembered (left members are not failures).
    pub failed_count: usize,
    /// Members that left gracefully, still remembered.
    pub left_count: usize,
    /// The bound SWIM address, once started.
    pub local_addr: Option<SocketAddr>,
    /// The advertised SWIM address, once started.
    pub advertised_addr: Option<SocketAddr>,
    /// Why joining has not succeeded yet.
    pub join_error: Option<String>,
    /// Socket counters.
    pub counters: SwimCounters,
}

/// The `raft` part of the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsensusStatus {
    /// `RINGRIFT_RAFT_ENABLED`.
    pub enabled: bool,
    /// Raft can serve requests.
    pub available: bool,
    /// The Raft group is initialized.
    pub initialized: bool,
    /// This node is the Raft leader.
    pub is_leader: bool,
    /// `host:port` of the leader's Raft endpoint, `""` when none.
    pub leader_address: String,
    /// The leader's node id, `""` when none.
    pub leader_id: String,
    /// Current term.
    pub term: u64,
    /// Items in the replicated work queue.
    pub work_queue_size: u64,
    /// Pending job assignments.
    pub pending_jobs: u64,
    /// `voter` or `client` (not in the voter list), `""` when Raft is not running.
    pub role: String,
    /// Last applied log index.
    pub applied_index: u64,
    /// Last log index.
    pub last_log_index: u64,
    /// Index of the latest snapshot.
    pub snapshot_index: u64,
    /// Voter ids.
    pub voters: Vec<String>,
    /// This node's Raft address (voters).
    pub raft_address: String,
    /// Connections to this node's Raft port closed for a bad frame (a node of another
    /// cluster, a program that is not swimraft); each is also logged as a warning at the 1st,
    /// 2nd, 4th, ... occurrence.
    pub bad_frames: u64,
}

/// Fallback flags with their reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HybridStatus {
    /// The mode wants SWIM but SWIM is not serving.
    pub swim_fallback_active: bool,
    /// Why, when active.
    pub swim_fallback_reason: Option<String>,
    /// The mode wants Raft but Raft is not serving.
    pub raft_fallback_active: bool,
    /// Why, when active.
    pub raft_fallback_reason: Option<String>,
}

/// `get_status()`: the shape of DESIGN.md §5 plus a few diagnostic fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// This node's id.
    pub node_id: String,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// `http`, `swim` or `hybrid`.
    pub membership_mode: MembershipMode,
    /// `bully`, `raft` or `hybrid`.
    pub consensus_mode: ConsensusMode,
    /// SWIM.
    pub swim: SwimStatus,
    /// Raft.
    pub raft: ConsensusStatus,
    /// Fallbacks.
    pub hybrid_status: HybridStatus,
}

/// The running protocol parts.
#[derive(Default)]
struct Parts {
    swim: Option<SwimDriver>,
    /// Why SWIM is not running although the mode wants it.
    swim_down_reason: Option<String>,
    raft: Option<Arc<RaftNode>>,
}

/// Default deadline of a replicated-state call.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type Subscribers = Arc<Mutex<Vec<mpsc::Sender<Event>>>>;

/// The coordinator. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Coordinator {
    config: Config,
    lifecycle: RwLock<Lifecycle>,
    parts: tokio::sync::Mutex<Parts>,
    /// What fast reads see: swapped by start/stop, read without waiting on the parts lock.
    swim_reader: RwLock<Option<SwimReader>>,
    swim_down_reason: RwLock<Option<String>>,
    raft: RwLock<Option<Arc<RaftNode>>>,
    raft_down_reason: RwLock<Option<String>>,
    heartbeats: Mutex<HeartbeatView>,
    subscribers: Subscribers,
}

/// A cheap handle for reading SWIM's snapshot without the parts lock.
#[derive(Clone)]
struct SwimReader {
    read: SnapshotReader,
    local_addr: SocketAddr,
    advertised_addr: SocketAddr,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn resolve_seeds(config: &Config) -> (Vec<SocketAddr>, Vec<String>) {
    let mut resolved = Vec::new();
    let mut unresolved = Vec::new();
    for seed in &config.membership.seeds {
        match (seed.host.as_str(), seed.port).to_socket_addrs() {
            Ok(addrs) => {
                // Prefer the address family we advertise.
                let want_v4 = config.network.advertise_host.is_ipv4();
                let all: Vec<SocketAddr> = addrs.collect();
                match all.iter().find(|a| a.is_ipv4() == want_v4).or(all.first()) {
                    Some(addr) => resolved.push(*addr),
                    None => unresolved.push(seed.to_string()),
                }
            }
            Err(_) => unresolved.push(seed.to_string()),
        }
    }
    (resolved, unresolved)
}

impl Coordinator {
    /// Builds a coordinator from a validated configuration. Starts nothing and touches no
    /// network.
    pub fn new(config: Config) -> Result<Coordinator> {
        config.validate()?;
        Ok(Coordinator {
            config,
            lifecycle: RwLock::new(Lifecycle::Created),
            parts: tokio::sync::Mutex::new(Parts::default()),
            swim_reader: RwLock::new(None),
            swim_down_reason: RwLock::new(None),
            raft: RwLock::new(None),
            raft_down_reason: RwLock::new(None),
            heartbeats: Mutex::new(HeartbeatView::default()),
            subscribers: Arc::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// Current lifecycle state.
    pub fn lifecycle(&self) -> Lifecycle {
        *self.lifecycle.read().unwrap_or_else(|p| p.into_inner())
    }

    fn wants_swim(&self) -> bool {
        self.config.membership.mode != MembershipMode::Http
    }

    /// Receives every event from now on (membership transitions and Raft leader changes).
    pub fn subscribe(&self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        rx
    }

    fn event_sink(&self) -> EventSink {
        let subscribers = self.subscribers.clone();
        Arc::new(move |event: MembershipEvent| {
            if let Ok(mut subs) = subscribers.lock() {
                subs.retain(|tx| tx.send(Event::Member(event.clone())).is_ok());
            }
        })
    }

    /// Starts the parts the modes ask for. Returns `Ok(true)` also when a hybrid mode falls
    /// back (the status says why). A second call while running is a no-op; after `stop()` it
    /// is a `Shutdown` error. Must run inside a tokio runtime.
    pub async fn start(&self) -> Result<bool> {
        let mut parts = self.parts.lock().await;
        match self.lifecycle() {
            Lifecycle::Running => return Ok(true),
            Lifecycle::Stopped => {
                return Err(Error::new(
                    ErrorKind::Shutdown,
                    "the coordinator was stopped; create a new one to start again",
                ))
            }
            Lifecycle::Created => {}
        }
        if self.wants_swim() {
            if !self.config.membership.swim_enabled {
                parts.swim_down_reason = Some(
                    "RINGRIFT_SWIM_ENABLED is false (hybrid mode uses the heartbeat view)".into(),
                );
            } else {
                match self.start_swim().await {
                    Ok(driver) => {
                        let reader = swim_reader(&driver);
                        parts.swim = Some(driver);
                        *self.swim_reader.write().unwrap_or_else(|p| p.into_inner()) = Some(reader);
                    }
                    Err(err) if self.config.membership.mode == MembershipMode::Hybrid => {
                        tracing::warn!(%err, "SWIM failed to start; hybrid mode falls back to heartbeats");
                        parts.swim_down_reason = Some(format!("SWIM failed to start: {err}"));
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        *self
            .swim_down_reason
            .write()
            .unwrap_or_else(|p| p.into_inner()) = parts.swim_down_reason.clone();
        let mut raft_down = None;
        if self.config.raft.mode != ConsensusMode::Bully {
            if !self.config.raft.enabled {
                raft_down = Some("RINGRIFT_RAFT_ENABLED is false (hybrid mode uses Bully)".into());
            } else {
                match RaftNode::start(self.raft_node_config(), self.leader_sink()).await {
                    Ok(node) => {
                        let node = Arc::new(node);
                        parts.raft = Some(node.clone());
                        *self.raft.write().unwrap_or_else(|p| p.into_inner()) = Some(node);
                    }
                    Err(err) if self.config.raft.mode == ConsensusMode::Hybrid => {
                        tracing::warn!(%err, "Raft failed to start; hybrid mode falls back to Bully");
                        raft_down = Some(format!("Raft failed to start: {err}"));
                    }
                    Err(err) => {
                        // Nothing half-started stays behind.
                        *self.swim_reader.write().unwrap_or_else(|p| p.into_inner()) = None;
                        if let Some(mut swim) = parts.swim.take() {
                            swim.stop().await;
                        }
                        return Err(err);
                    }
                }
            }
        }
        *self
            .raft_down_reason
            .write()
            .unwrap_or_else(|p| p.into_inner()) = raft_down;
        *self.lifecycle.write().unwrap_or_else(|p| p.into_inner()) = Lifecycle::Running;
        Ok(true)
    }

    fn raft_node_config(&self) -> RaftNodeConfig {
        let cfg = &self.config;
        let voters: Vec<(String, String)> = cfg
            .raft
            .voters
            .iter()
            .map(|v| (v.node_id.clone(), v.addr.to_string()))
            .collect();
        // A voter's own entry fixes its port when RINGRIFT_RAFT_PORT leaves it open (0).
        let port = match cfg.raft.raft_port {
            0 => cfg
                .raft
                .voters
                .iter()
                .find(|v| v.node_id == cfg.node_id)
                .map_or(0, |v| v.addr.port),
            port => port,
        };
        RaftNodeConfig {
            node_id: cfg.node_id.clone(),
            cluster_name: cfg.cluster_name.clone(),
            bind: SocketAddr::new(cfg.network.bind_host, port),
            advertise_host: cfg.network.advertise_host,
            data_dir: cfg.storage.data_dir.clone(),
            voters,
            heartbeat_interval: cfg.raft.heartbeat_interval,
            election_timeout_min: cfg.raft.election_timeout_min,
            election_timeout_max: cfg.raft.election_timeout_max,
            snapshot_interval: cfg.raft.snapshot_interval,
            join_existing: cfg.raft.join,
        }
    }

    fn leader_sink(&self) -> Arc<dyn Fn(String) + Send + Sync> {
        let subscribers = self.subscribers.clone();
        Arc::new(move |leader_id: String| {
            if let Ok(mut subs) = subscribers.lock() {
                subs.retain(|tx| {
                    tx.send(Event::Leader {
                        leader_id: leader_id.clone(),
                    })
                    .is_ok()
                });
            }
        })
    }

    fn raft_node(&self) -> Result<Arc<RaftNode>> {
        if self.lifecycle() == Lifecycle::Stopped {
            return Err(Error::new(
                ErrorKind::Shutdown,
                "the coordinator was stopped",
            ));
        }
        if let Some(node) = self.raft.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(node);
        }
        let why = match (self.config.raft.mode, self.lifecycle()) {
            (ConsensusMode::Bully, _) => "RINGRIFT_CONSENSUS_MODE=bully: leadership and the work \
                 queue belong to the orchestrator's legacy Bully path, not to swimraft"
                .to_string(),
            (_, Lifecycle::Created) => "the coordinator is not started".to_string(),
            _ => self
                .raft_down_reason
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| "Raft is not running".to_string()),
        };
        Err(Error::new(ErrorKind::Unavailable, why))
    }

    /// Proposes a write to the replicated state machine and waits for its result (default
    /// deadline [`DEFAULT_TIMEOUT`]). Rejections come back as errors of their kind.
    pub async fn write(
        &self,
        command: Command,
        timeout: Option<std::time::Duration>,
        request_id: Option<&str>,
    ) -> Result<CommandResult> {
        let node = self.raft_node()?;
        node.write(command, timeout.unwrap_or(DEFAULT_TIMEOUT), request_id)
            .await
    }

    /// Reads the replicated state: linearizable unless `stale_ok`.
    pub async fn read(
        &self,
        query: ReadQuery,
        stale_ok: bool,
        timeout: Option<std::time::Duration>,
    ) -> Result<serde_json::Value> {
        let node = self.raft_node()?;
        node.read(query, stale_ok, timeout.unwrap_or(DEFAULT_TIMEOUT))
            .await
    }

    /// Adds a Raft voter (learner first, promoted once caught up).
    pub async fn add_voter(
        &self,
        node_id: &str,
        address: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<()> {
        if node_id.is_empty() || address.parse::<crate::config::HostPort>().is_err() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("add_voter needs a node id and a host:port address, got {node_id:?} and {address:?}"),
            ));
        }
        let node = self.raft_node()?;
        node.add_voter(node_id, address, timeout.unwrap_or(DEFAULT_TIMEOUT * 3))
            .await
    }

    /// Removes a Raft voter.
    pub async fn remove_voter(
        &self,
        node_id: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<()> {
        let node = self.raft_node()?;
        node.remove_voter(node_id, timeout.unwrap_or(DEFAULT_TIMEOUT))
            .await
    }

    /// True while this node is the Raft leader with a fresh quorum acknowledgement. False in
    /// bully mode and without Raft.
    pub fn is_leader(&self) -> bool {
        self.raft
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|n| n.status().is_leader)
    }

    /// The Raft leader's id, `""` when none is known.
    pub fn leader_id(&self) -> String {
        self.raft
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|n| n.status().leader_id)
            .unwrap_or_default()
    }

    async fn start_swim(&self) -> Result<SwimDriver> {
        let cfg = &self.config;
        let data_dir = &cfg.storage.data_dir;
        let bump_path = match std::fs::create_dir_all(data_dir) {
            Ok(()) => Some(data_dir.join("swim.bump")),
            Err(err) => {
                tracing::warn!(dir = %data_dir.display(), %err, "data dir unusable; SWIM bump from the clock alone");
                None
            }
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let bump = next_bump(bump_path.as_deref(), now_ms);
        let (seeds, unresolved) = resolve_seeds(cfg);
        for seed in &unresolved {
            tracing::warn!(%seed, "SWIM seed does not resolve; skipped");
        }
        let advertise = cfg.swim_advertise_addr();
        let node = SwimNodeConfig {
            node_id: cfg.node_id.clone(),
            addr: advertise,
            bump,
            cluster_name: cfg.cluster_name.clone(),
            timing: cfg.membership.timing.clone(),
            meta: NodeMeta {
                host: advertise.ip().to_string(),
                swim_port: advertise.port(),
                raft_port: cfg.raft.raft_port,
                http_port: cfg.network.p2p_port,
                roles: Vec::new(),
            },
            rng_seed: bump ^ u64::from(std::process::id()),
        };
        SwimDriver::start(
            SwimDriverConfig {
                node,
                bind: cfg.swim_bind_addr(),
                seeds,
            },
            self.event_sink(),
        )
        .await
    }

    /// Leaves the cluster gracefully and stops every part. Idempotent; final.
    pub async fn stop(&self) {
        let mut parts = self.parts.lock().await;
        *self.swim_reader.write().unwrap_or_else(|p| p.into_inner()) = None;
        *self.raft.write().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(raft) = parts.raft.take() {
            raft.stop().await;
        }
        if let Some(mut swim) = parts.swim.take() {
            swim.stop().await;
        }
        *self.lifecycle.write().unwrap_or_else(|p| p.into_inner()) = Lifecycle::Stopped;
        // A stopped node has no peers; `record_heartbeat` refuses new ones from now on (it
        // checks the lifecycle under this lock, so none slips in after the clear).
        *self.heartbeats.lock().unwrap_or_else(|p| p.into_inner()) = HeartbeatView::default();
    }

    fn swim_snapshot(&self) -> Option<(Arc<MembershipSnapshot>, SwimCounters, SwimReader)> {
        let reader = self
            .swim_reader
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let (snapshot, counters) = (reader.read.snapshot(), reader.read.counters());
        Some((snapshot, counters, reader))
    }

    /// Records an HTTP heartbeat answer from `node_id` (the orchestrator's legacy polling).
    /// Ignored after [`Coordinator::stop`].
    pub fn record_heartbeat(&self, node_id: &str) {
        if node_id == self.config.node_id {
            return;
        }
        if let Ok(mut view) = self.heartbeats.lock() {
            if self.lifecycle() != Lifecycle::Stopped {
                view.record(node_id, unix_now());
            }
        }
    }

    fn heartbeat_peers(&self) -> Vec<String> {
        self.heartbeats
            .lock()
            .map(|v| v.alive_peers(unix_now()))
            .unwrap_or_default()
    }

    /// Alive and suspected peers (never this node), by the membership mode, sorted.
    pub fn alive_peers(&self) -> Vec<String> {
        let swim = || {
            self.swim_snapshot()
                .map(|(s, _, _)| s.live_peers())
                .unwrap_or_default()
        };
        let mut peers = match self.config.membership.mode {
            MembershipMode::Http => self.heartbeat_peers(),
            MembershipMode::Swim => swim(),
            MembershipMode::Hybrid => {
                let mut all = swim();
                all.extend(self.heartbeat_peers());
                all
            }
        };
        peers.sort();
        peers.dedup();
        peers.retain(|p| p != &self.config.node_id);
        peers
    }

    /// True when `node_id` is among [`Coordinator::alive_peers`].
    pub fn is_peer_alive(&self, node_id: &str) -> bool {
        self.alive_peers().iter().any(|p| p == node_id)
    }

    /// SWIM's member list (empty when SWIM is not running).
    pub fn members(&self) -> Vec<MemberInfo> {
        self.swim_snapshot()
            .map(|(s, _, _)| s.members.clone())
            .unwrap_or_default()
    }

    /// The status snapshot (DESIGN.md §5). Reads shared snapshots only; no network.
    pub fn status(&self) -> Status {
        let swim = self.swim_snapshot();
        let swim_status = match &swim {
            Some((snap, counters, reader)) => SwimStatus {
                enabled: self.config.membership.swim_enabled,
                available: snap.joined,
                started: true,
                alive_count: snap.count(MemberState::Alive),
                suspected_count: snap.count(MemberState::Suspected),
                failed_count: snap.count(MemberState::Failed),
                left_count: snap.count(MemberState::Left),
                local_addr: Some(reader.local_addr),
                advertised_addr: Some(reader.advertised_addr),
                join_error: snap.join_error.clone(),
                counters: *counters,
            },
            None => SwimStatus {
                enabled: self.config.membership.swim_enabled,
                available: false,
                started: false,
                alive_count: 0,
                suspected_count: 0,
                failed_count: 0,
                left_count: 0,
                local_addr: None,
                advertised_addr: None,
                join_error: None,
                counters: SwimCounters::default(),
            },
        };
        let swim_fallback_reason = if !self.wants_swim() {
            None
        } else if let Some(reason) = self
            .swim_down_reason
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(reason)
        } else {
            match (&swim, self.lifecycle()) {
                (_, Lifecycle::Created) => Some("not started".to_string()),
                (_, Lifecycle::Stopped) => Some("stopped".to_string()),
                (Some((snap, _, _)), _) if !snap.joined => Some(
                    snap.join_error
                        .clone()
                        .unwrap_or_else(|| "joining the cluster through the seeds".to_string()),
                ),
                (Some(_), _) => None,
                (None, _) => Some("SWIM is not running".to_string()),
            }
        };
        let raft_wanted = self.config.raft.mode != ConsensusMode::Bully;
        let raft_node = self.raft.read().unwrap_or_else(|p| p.into_inner()).clone();
        let rs = raft_node.as_ref().map(|n| n.status()).unwrap_or_default();
        let raft_fallback_reason = if !raft_wanted {
            None
        } else if let Some(reason) = self
            .raft_down_reason
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(reason)
        } else {
            match (&raft_node, self.lifecycle()) {
                (_, Lifecycle::Created) => Some("not started".to_string()),
                (_, Lifecycle::Stopped) => Some("stopped".to_string()),
                (Some(_), _) if rs.leader_id.is_empty() => {
                    Some("no Raft leader (election in progress or no quorum)".to_string())
                }
                (Some(_), _) => None,
                (None, _) => Some("Raft is not running".to_string()),
            }
        };
        Status {
            node_id: self.config.node_id.clone(),
            lifecycle: self.lifecycle(),
            membership_mode: self.config.membership.mode,
            consensus_mode: self.config.raft.mode,
            swim: swim_status,
            raft: ConsensusStatus {
                enabled: self.config.raft.enabled,
                available: raft_node.is_some() && !rs.leader_id.is_empty(),
                initialized: rs.initialized,
                is_leader: rs.is_leader,
                leader_address: rs.leader_address,
                leader_id: rs.leader_id,
                term: rs.term,
                work_queue_size: rs.work_queue_size,
                pending_jobs: rs.pending_jobs,
                role: rs.role,
                applied_index: rs.applied_index,
                last_log_index: rs.last_log_index,
                snapshot_index: rs.snapshot_index,
                voters: rs.voters,
                raft_address: rs.raft_address,
                bad_frames: raft_node.as_ref().map_or(0, |n| n.bad_frames()),
            },
            hybrid_status: HybridStatus {
                swim_fallback_active: swim_fallback_reason.is_some(),
                swim_fallback_reason,
                raft_fallback_active: raft_fallback_reason.is_some(),
                raft_fallback_reason,
            },
        }
    }
}

fn swim_reader(driver: &SwimDriver) -> SwimReader {
    SwimReader {
        read: driver.reader(),
        local_addr: driver.local_addr(),
        advertised_addr: driver.advertised_addr(),
    }
}
