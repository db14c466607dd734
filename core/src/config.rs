//! Configuration: [`Config`], its presets and where its values come from.
//!
//! DESIGN.md §2 is the contract. A configuration is built from three layers, highest first:
//!
//! 1. explicit keys (from Python or C): the environment variable's name in lower case without the
//!    [`ENV_PREFIX`] (`swim_port`, `raft_voters`); durations carry their unit
//!    (`swim_gossip_interval_ms`). Unknown keys are rejected.
//! 2. `RINGRIFT_*` environment variables ([`KEYS`] lists every one). Unknown `RINGRIFT_*`
//!    variables are ignored (other software uses the prefix); a variable set to the empty string
//!    counts as unset.
//! 3. the preset ([`Preset`]): `lan` unless `preset` / `RINGRIFT_PRESET` says otherwise.
//!
//! Every bad value is an [`Error::invalid_config`] whose message names the variable (the
//! environment variable when the value came from the environment, the key when it was explicit),
//! quotes the value and says what is allowed. [`Config::validate`] then checks the rules between
//! fields; nothing starts on a half-valid configuration.

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use serde::{ser::SerializeStruct, Serialize, Serializer};
use serde_json::{json, Value};

use crate::error::{Error, ErrorKind, Result};

// ---------------------------------------------------------------------------------------------
// Preset timings. These are starting values and are expected to be tuned; change them here only.
// ---------------------------------------------------------------------------------------------

/// SWIM timings of the `lan` preset (datacenter or one site; sub-millisecond to few-ms RTTs).
const LAN_SWIM_TIMING: SwimTiming = SwimTiming {
    // One member is probed per period; detection time scales with it (memberlist uses 1 s).
    probe_period: Duration::from_millis(500),
    // Wait this long for a direct ack before asking others to probe indirectly (< probe_period).
    probe_rtt: Duration::from_millis(200),
    // How many members are asked to probe indirectly when the direct probe is not acked.
    num_indirect_probes: 3,
    // A suspected member is declared down after this; foca has no Lifeguard, so this is the
    // main lever against false positives (>= probe_period).
    suspicion_timeout: Duration::from_millis(1500),
    // Every gossip_interval, updates are sent to gossip_fanout random members.
    gossip_interval: Duration::from_millis(200),
    // Members each periodic gossip round is sent to.
    gossip_fanout: 3,
    // Each update (and custom broadcast) is piggybacked at most this many times.
    max_transmissions: 8,
    // Periodic announce to a random live member; heals partitions and refreshes views.
    announce_interval: Duration::from_secs(30),
    // Periodic announce to down members, so a healed partition merges back.
    announce_down_interval: Duration::from_secs(30),
};

/// SWIM timings of the `wan` preset (several sites; tens to hundreds of ms RTT, lossy links).
const WAN_SWIM_TIMING: SwimTiming = SwimTiming {
    // Probe period: slow, to keep traffic low over expensive links.
    probe_period: Duration::from_secs(5),
    // Direct-probe ack deadline; generous for intercontinental RTTs (< probe_period).
    probe_rtt: Duration::from_secs(3),
    // Indirect probers per failed direct probe.
    num_indirect_probes: 3,
    // Suspicion lasts several periods so a lossy link does not declare members down.
    suspicion_timeout: Duration::from_secs(30),
    // Periodic gossip interval.
    gossip_interval: Duration::from_millis(500),
    // Members per periodic gossip round.
    gossip_fanout: 4,
    // Piggyback count per update; larger clusters over lossy links need more.
    max_transmissions: 10,
    // Periodic announce to a live member.
    announce_interval: Duration::from_secs(60),
    // Periodic announce to down members.
    announce_down_interval: Duration::from_secs(125),
};

/// SWIM timings of the `local` preset (tests on loopback: fast timers, quick detection).
const LOCAL_SWIM_TIMING: SwimTiming = SwimTiming {
    // Probe period: fast, so tests detect failures in about a second.
    probe_period: Duration::from_millis(200),
    // Direct-probe ack deadline on loopback (< probe_period).
    probe_rtt: Duration::from_millis(80),
    // Indirect probers per failed direct probe.
    num_indirect_probes: 3,
    // Suspicion timeout (three periods).
    suspicion_timeout: Duration::from_millis(600),
    // Periodic gossip interval.
    gossip_interval: Duration::from_millis(100),
    // Members per periodic gossip round.
    gossip_fanout: 3,
    // Piggyback count per update.
    max_transmissions: 8,
    // Periodic announce to a live member.
    announce_interval: Duration::from_secs(2),
    // Periodic announce to down members.
    announce_down_interval: Duration::from_secs(5),
};

/// Raft timings of the `lan` preset. openraft 0.9 starts an election only after the leader lease
/// (`election_timeout_max`) plus the node's election timeout, checked every 1.5 heartbeats, so
/// these give ≈ 150–225 ms from the last heartbeat to the first vote. Measured here: no leader
/// change in any throughput run (64 concurrent clients on 2 cores), failover median ≈ 0.2 s.
const LAN_RAFT_TIMING: RaftTiming = RaftTiming {
    // Leader heartbeat period (< election_timeout_min).
    heartbeat_interval: Duration::from_millis(15),
    // Lower bound of the randomized election timeout.
    election_timeout_min: Duration::from_millis(50),
    // Upper bound of the randomized election timeout (also openraft's leader lease).
    election_timeout_max: Duration::from_millis(100),
};

/// Raft timings of the `wan` preset: tolerate RTTs of a few hundred milliseconds.
const WAN_RAFT_TIMING: RaftTiming = RaftTiming {
    // Leader heartbeat period.
    heartbeat_interval: Duration::from_millis(100),
    // Lower bound of the randomized election timeout.
    election_timeout_min: Duration::from_millis(500),
    // Upper bound of the randomized election timeout.
    election_timeout_max: Duration::from_millis(1000),
};

/// Raft timings of the `local` preset (same as `lan`; loopback is at least as fast).
const LOCAL_RAFT_TIMING: RaftTiming = LAN_RAFT_TIMING;

/// Snapshot and log-compaction interval of every preset.
const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);
/// Shortest accepted snapshot interval.
const MIN_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest accepted snapshot interval (one day).
const MAX_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(86_400);
/// Shortest accepted SWIM protocol period.
const MIN_SWIM_PERIOD: Duration = Duration::from_millis(10);
/// Longest accepted SWIM protocol period.
const MAX_SWIM_PERIOD: Duration = Duration::from_secs(60);

/// Default SWIM UDP port.
const DEFAULT_SWIM_PORT: u16 = 7947;
/// Default Raft RPC TCP port.
const DEFAULT_RAFT_PORT: u16 = 4321;
/// Default orchestrator HTTP port.
const DEFAULT_P2P_PORT: u16 = 8770;
/// Default cluster name.
const DEFAULT_CLUSTER_NAME: &str = "swimraft";
/// Default data directory.
const DEFAULT_DATA_DIR: &str = "./data";
/// Node id used when the hostname cannot be read.
const FALLBACK_HOSTNAME: &str = "swimraft-node";
/// Longest node id, in bytes.
const MAX_NODE_ID_BYTES: usize = 128;
/// Longest cluster name, in bytes.
const MAX_CLUSTER_NAME_BYTES: usize = 64;
/// Longest DNS name accepted as a host.
const MAX_HOST_BYTES: usize = 253;

/// Prefix of every environment variable read by [`Config::from_env`].
pub const ENV_PREFIX: &str = "RINGRIFT_";

/// Every accepted explicit key as `(key, environment variable, default, meaning)`, in the order
/// of DESIGN.md §2. Used for documentation and for the list of allowed keys in error messages.
/// The explicit key is the variable's name in lower case without [`ENV_PREFIX`]; duration keys
/// carry their unit (`_ms`) while their variables are in seconds.
pub const KEYS: &[(&str, &str, &str, &str)] = &[
    (
        "swim_enabled",
        "RINGRIFT_SWIM_ENABLED",
        "false",
        "run SWIM at all (1, true, yes, on / 0, false, no, off; case-insensitive)",
    ),
    (
        "membership_mode",
        "RINGRIFT_MEMBERSHIP_MODE",
        "http",
        "http, swim or hybrid: what answers alive peers",
    ),
    (
        "raft_enabled",
        "RINGRIFT_RAFT_ENABLED",
        "false",
        "run Raft at all (same spellings as swim_enabled)",
    ),
    (
        "raft_join",
        "RINGRIFT_RAFT_JOIN",
        "false",
        "swimraft addition: start an empty replica that waits to be added with add_voter (never initializes a group)",
    ),
    (
        "consensus_mode",
        "RINGRIFT_CONSENSUS_MODE",
        "bully",
        "bully, raft or hybrid: what answers is-leader and work operations",
    ),
    (
        "swim_port",
        "RINGRIFT_SWIM_PORT",
        "7947",
        "SWIM UDP port 0-65535; 0 = any free port (the bound port is advertised)",
    ),
    (
        "swim_bind_port",
        "RINGRIFT_SWIM_BIND_PORT",
        "7947",
        "alias of swim_port",
    ),
    (
        "raft_port",
        "RINGRIFT_RAFT_PORT",
        "4321",
        "Raft RPC TCP port 0-65535; 0 = any free port (the bound port is advertised)",
    ),
    (
        "raft_bind_port",
        "RINGRIFT_RAFT_BIND_PORT",
        "4321",
        "alias of raft_port",
    ),
    (
        "swim_gossip_interval_ms",
        "RINGRIFT_SWIM_GOSSIP_INTERVAL",
        "the preset's probe period (lan 500 ms)",
        "SWIM protocol period, 10 ms-60 s (key in milliseconds, variable in seconds, e.g. 0.5); \
         probe RTT, suspicion timeout and gossip interval scale with it",
    ),
    (
        "raft_snapshot_interval_ms",
        "RINGRIFT_RAFT_SNAPSHOT_INTERVAL",
        "60 s",
        "how often the state machine is snapshotted and the log compacted, 1 s-1 day \
         (key in milliseconds, variable in seconds)",
    ),
    (
        "node_id",
        "RINGRIFT_NODE_ID",
        "the hostname",
        "this node's name, e.g. gpu-h100-1: 1-128 bytes, no whitespace, ',' or '='",
    ),
    (
        "bind_host",
        "RINGRIFT_BIND_HOST",
        "0.0.0.0",
        "IP address the SWIM and Raft sockets bind",
    ),
    (
        "advertise_host",
        "RINGRIFT_ADVERTISE_HOST",
        "bind_host when it is a specific address; else 127.0.0.1 without seeds and voters, \
         else the first non-loopback IPv4 address",
        "IP address peers use to reach this node; never 0.0.0.0 or ::",
    ),
    (
        "cluster_name",
        "RINGRIFT_CLUSTER_NAME",
        "swimraft",
        "1-64 bytes of A-Z a-z 0-9 . _ -; carried in every packet, other clusters are ignored",
    ),
    (
        "swim_seeds",
        "RINGRIFT_SWIM_SEEDS",
        "empty",
        "host:port,... to join through (IPv6 as [addr]:port, port 1-65535); \
         the key may also be a JSON list of strings",
    ),
    (
        "raft_voters",
        "RINGRIFT_RAFT_VOTERS",
        "empty (this node alone; only without seeds)",
        "node_id=host:port,...; the key may also be a JSON list of such strings or a JSON \
         object {node_id: \"host:port\"}; node ids must be unique",
    ),
    (
        "data_dir",
        "RINGRIFT_DATA_DIR",
        "./data",
        "directory of the SQLite databases",
    ),
    (
        "p2p_port",
        "RINGRIFT_P2P_PORT",
        "8770",
        "the orchestrator's HTTP port (used by the CLI server), 0-65535",
    ),
    (
        "cluster_key",
        "RINGRIFT_CLUSTER_KEY",
        "empty",
        "shared secret for SWIM and Raft traffic; not implemented yet, so any non-empty value \
         is a configuration error",
    ),
    (
        "auth_token",
        "RINGRIFT_AUTH_TOKEN",
        "empty",
        "when set, mutating HTTP endpoints need Authorization: Bearer or X-Auth-Token \
         (kept for the HTTP layer, which swimraft does not serve yet: nothing checks it today)",
    ),
    (
        "preset",
        "RINGRIFT_PRESET",
        "lan",
        "lan, wan or local: the base timings",
    ),
];

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// Which membership view answers "alive peers" (rollout phases 1–3). Default: [`MembershipMode::Http`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipMode {
    /// Legacy HTTP heartbeat polling only.
    Http,
    /// SWIM only; requires `swim_enabled = true`.
    Swim,
    /// Union of SWIM and heartbeat views; falls back to HTTP while SWIM is not running.
    Hybrid,
}

impl MembershipMode {
    /// The lower-case name used in variables and JSON: `"http"`, `"swim"` or `"hybrid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipMode::Http => "http",
            MembershipMode::Swim => "swim",
            MembershipMode::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for MembershipMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which leader election and work queue answer (rollout phases 3–5). Default: [`ConsensusMode::Bully`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusMode {
    /// Legacy Bully election and leader-local SQLite queue.
    Bully,
    /// Raft only (no Raft leader = no leader); requires `raft_enabled = true`.
    Raft,
    /// Raft when it has a leader, else Bully.
    Hybrid,
}

impl ConsensusMode {
    /// The lower-case name used in variables and JSON: `"bully"`, `"raft"` or `"hybrid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsensusMode::Bully => "bully",
            ConsensusMode::Raft => "raft",
            ConsensusMode::Hybrid => "hybrid",
        }
    }
}

impl fmt::Display for ConsensusMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named set of base timings. Default: [`Preset::Lan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// One site: SWIM period 500 ms, suspicion 1.5 s; Raft heartbeat 15 ms, election 50–100 ms.
    Lan,
    /// Several sites: SWIM period 5 s, suspicion 30 s; Raft heartbeat 100 ms, election 0.5–1 s.
    Wan,
    /// Tests on loopback: SWIM period 200 ms, suspicion 600 ms; Raft as `Lan`.
    Local,
}

impl Preset {
    /// The lower-case name used in variables and JSON: `"lan"`, `"wan"` or `"local"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Lan => "lan",
            Preset::Wan => "wan",
            Preset::Local => "local",
        }
    }

    /// The preset's SWIM timings.
    fn swim_timing(self) -> SwimTiming {
        match self {
            Preset::Lan => LAN_SWIM_TIMING,
            Preset::Wan => WAN_SWIM_TIMING,
            Preset::Local => LOCAL_SWIM_TIMING,
        }
    }

    /// The preset's Raft timings.
    fn raft_timing(self) -> RaftTiming {
        match self {
            Preset::Lan => LAN_RAFT_TIMING,
            Preset::Wan => WAN_RAFT_TIMING,
            Preset::Local => LOCAL_RAFT_TIMING,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Raft timings of one preset.
struct RaftTiming {
    heartbeat_interval: Duration,
    election_timeout_min: Duration,
    election_timeout_max: Duration,
}

/// `host:port` as written by the user. The host may be an IP address or a DNS name and is
/// resolved later, by the transport. Displayed as `host:port`, IPv6 as `[::1]:7947`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostPort {
    /// IP address or DNS name; IPv6 without brackets (`::1`). Non-empty; a DNS name is at most
    /// 253 bytes of `A-Z a-z 0-9 . _ -`.
    pub host: String,
    /// Port, 1–65535 (0 is not a reachable port).
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for HostPort {
    type Err = Error;

    /// Parses `host:port` or `[ipv6]:port` (surrounding whitespace ignored); a malformed value is
    /// an [`ErrorKind::InvalidArgument`] error.
    fn from_str(s: &str) -> Result<Self> {
        parse_host_port(s)
            .map_err(|why| Error::new(ErrorKind::InvalidArgument, format!("{s:?}: {why}")))
    }
}

/// One Raft voter: its node id and the address of its Raft port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Voter {
    /// The voter's node id (same rules as [`Config::node_id`]).
    pub node_id: String,
    /// The voter's Raft RPC address (its `raft_port`).
    pub addr: HostPort,
}

/// SWIM (foca) timings. Defaults come from the [`Preset`]; [`Config::set_swim_period`] rescales
/// them. Constraints are checked by [`Config::validate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SwimTiming {
    /// Protocol period: one member is probed per period. 10 ms–60 s. Lan 500 ms, wan 5 s,
    /// local 200 ms; `RINGRIFT_SWIM_GOSSIP_INTERVAL` overrides it.
    pub probe_period: Duration,
    /// Time to wait for a direct ack before probing indirectly. > 0 and < `probe_period`.
    /// Lan 200 ms, wan 3 s, local 80 ms.
    pub probe_rtt: Duration,
    /// Members asked to probe indirectly after a missed direct ack. ≥ 1; 3 in every preset.
    pub num_indirect_probes: usize,
    /// Time a member stays suspected before it is declared down. ≥ `probe_period`.
    /// Lan 1.5 s, wan 30 s, local 600 ms.
    pub suspicion_timeout: Duration,
    /// Interval of periodic gossip rounds. > 0. Lan 200 ms, wan 500 ms, local 100 ms.
    pub gossip_interval: Duration,
    /// Members each periodic gossip round is sent to. ≥ 1. Lan 3, wan 4, local 3.
    pub gossip_fanout: usize,
    /// Times each update and custom broadcast is piggybacked. ≥ 1. Lan 8, wan 10, local 8.
    pub max_transmissions: u8,
    /// Interval of periodic announces to a live member. > 0. Lan 30 s, wan 60 s, local 2 s.
    pub announce_interval: Duration,
    /// Interval of periodic announces to down members (partition healing). > 0.
    /// Lan 30 s, wan 125 s, local 5 s.
    pub announce_down_interval: Duration,
}

/// Membership (SWIM) settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MembershipConfig {
    /// Run SWIM at all (`RINGRIFT_SWIM_ENABLED`). Default false.
    pub swim_enabled: bool,
    /// Which view answers alive peers (`RINGRIFT_MEMBERSHIP_MODE`). Default `http`;
    /// `swim` requires `swim_enabled`.
    pub mode: MembershipMode,
    /// SWIM UDP port (`RINGRIFT_SWIM_PORT`, alias `RINGRIFT_SWIM_BIND_PORT`). Default 7947;
    /// 0 = any free port, and then the bound port is advertised. Must differ from `raft_port`.
    pub swim_port: u16,
    /// Nodes to join through (`RINGRIFT_SWIM_SEEDS`), in the order given, duplicates removed.
    /// Default empty (this node is the first). An entry that is this node is dropped at join.
    pub seeds: Vec<HostPort>,
    /// SWIM timings, from the preset unless rescaled.
    pub timing: SwimTiming,
}

/// Consensus (Raft) settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RaftConfig {
    /// Run Raft at all (`RINGRIFT_RAFT_ENABLED`). Default false.
    pub enabled: bool,
    /// Which election and queue answer (`RINGRIFT_CONSENSUS_MODE`). Default `bully`;
    /// `raft` requires `enabled`.
    pub mode: ConsensusMode,
    /// Raft RPC TCP port (`RINGRIFT_RAFT_PORT`, alias `RINGRIFT_RAFT_BIND_PORT`). Default 4321;
    /// 0 = any free port, and then the bound port is advertised.
    pub raft_port: u16,
    /// Initial voters (`RINGRIFT_RAFT_VOTERS`), unique node ids and addresses. Default empty =
    /// this node alone, which is an error when Raft is enabled and seeds are set. This node may
    /// be absent (it is then a client, not a replica). Membership on disk wins after first start.
    pub voters: Vec<Voter>,
    /// Snapshot and log-compaction interval (`RINGRIFT_RAFT_SNAPSHOT_INTERVAL`). 1 s–1 day;
    /// default 60 s.
    pub snapshot_interval: Duration,
    /// Leader heartbeat period. > 0 and < `election_timeout_min`. Lan/local 15 ms, wan 100 ms.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout. < `election_timeout_max`.
    /// Lan/local 50 ms, wan 500 ms.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout (also openraft's leader lease).
    /// Lan/local 100 ms, wan 1 s.
    pub election_timeout_max: Duration,
    /// Start as an empty replica that waits to be added by `add_voter` on the cluster
    /// (`RINGRIFT_RAFT_JOIN`, a swimraft addition). Such a node never initializes a group, even
    /// when it is not in `voters`. Default false.
    pub join: bool,
}

/// Addresses.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetworkConfig {
    /// Address the SWIM and Raft sockets bind (`RINGRIFT_BIND_HOST`). Default `0.0.0.0`.
    pub bind_host: IpAddr,
    /// Address peers use to reach this node (`RINGRIFT_ADVERTISE_HOST`). Never unspecified.
    /// Default: `bind_host` when that is a specific address; else `127.0.0.1` when no seeds and
    /// no voters are set; else the first non-loopback IPv4 interface address (or `127.0.0.1`).
    pub advertise_host: IpAddr,
    /// The orchestrator's HTTP port (`RINGRIFT_P2P_PORT`), served by the CLI server.
    /// Default 8770; 0 = any free port.
    pub p2p_port: u16,
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StorageConfig {
    /// Directory of the SQLite databases (`RINGRIFT_DATA_DIR`). Non-empty; default `./data`.
    pub data_dir: PathBuf,
}

/// Secrets. `Debug` and `Serialize` print the token as `"***"`, never its value.
#[derive(Clone, PartialEq)]
pub struct SecurityConfig {
    /// When set, mutating HTTP endpoints need `Authorization: Bearer <token>` or
    /// `X-Auth-Token` (`RINGRIFT_AUTH_TOKEN`). Default `None`; an empty value is `None`.
    /// Only carried today: the HTTP layer that would check it (DESIGN §6) is not part of this
    /// engine yet, and the orchestrator's own server keeps checking its requests.
    pub auth_token: Option<String>,
}

impl fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("auth_token", &self.auth_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Serialize for SecurityConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SecurityConfig", 1)?;
        s.serialize_field("auth_token", &self.auth_token.as_ref().map(|_| "***"))?;
        s.end()
    }
}

/// The whole configuration of one node. Build it with a preset ([`Config::lan`], ...) or from
/// [`Config::from_env`] / [`Config::from_sources`] / [`Config::from_json`], which validate it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// This node's name (`RINGRIFT_NODE_ID`), e.g. `gpu-h100-1`, never an IP. Default the
    /// hostname; 1–128 bytes without whitespace, control characters, `,` or `=`.
    pub node_id: String,
    /// Cluster name carried in every packet and frame (`RINGRIFT_CLUSTER_NAME`); nodes of another
    /// cluster are ignored. Default `swimraft`; 1–64 bytes of `A-Z a-z 0-9 . _ -`.
    pub cluster_name: String,
    /// The preset the timings started from (`RINGRIFT_PRESET`). Default `lan`.
    pub preset: Preset,
    /// SWIM settings.
    pub membership: MembershipConfig,
    /// Raft settings.
    pub raft: RaftConfig,
    /// Addresses.
    pub network: NetworkConfig,
    /// Storage settings.
    pub storage: StorageConfig,
    /// Secrets.
    pub security: SecurityConfig,
}

impl Default for Config {
    /// The `lan` preset, as [`Config::lan`].
    fn default() -> Self {
        Config::lan()
    }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

impl Config {
    /// The `lan` preset with every other value at its default; `node_id` is [`hostname()`].
    pub fn lan() -> Config {
        Config::preset(Preset::Lan)
    }

    /// The `wan` preset with every other value at its default; `node_id` is [`hostname()`].
    pub fn wan() -> Config {
        Config::preset(Preset::Wan)
    }

    /// The `local` preset (fast timers, for tests) with every other value at its default;
    /// `node_id` is [`hostname()`].
    pub fn local() -> Config {
        Config::preset(Preset::Local)
    }

    /// The given preset with every other value at its default; `node_id` is [`hostname()`],
    /// `advertise_host` is `127.0.0.1` (no seeds, no voters).
    pub fn preset(p: Preset) -> Config {
        Config::base(p, hostname())
    }

    /// The preset's defaults with the given node id.
    fn base(p: Preset, node_id: String) -> Config {
        let raft = p.raft_timing();
        Config {
            node_id,
            cluster_name: DEFAULT_CLUSTER_NAME.to_string(),
            preset: p,
            membership: MembershipConfig {
                swim_enabled: false,
                mode: MembershipMode::Http,
                swim_port: DEFAULT_SWIM_PORT,
                seeds: Vec::new(),
                timing: p.swim_timing(),
            },
            raft: RaftConfig {
                enabled: false,
                mode: ConsensusMode::Bully,
                raft_port: DEFAULT_RAFT_PORT,
                voters: Vec::new(),
                snapshot_interval: DEFAULT_SNAPSHOT_INTERVAL,
                heartbeat_interval: raft.heartbeat_interval,
                election_timeout_min: raft.election_timeout_min,
                election_timeout_max: raft.election_timeout_max,
                join: false,
            },
            network: NetworkConfig {
                bind_host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                advertise_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
                p2p_port: DEFAULT_P2P_PORT,
            },
            storage: StorageConfig {
                data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            },
            security: SecurityConfig { auth_token: None },
        }
    }

    /// Reads the `RINGRIFT_*` environment variables over the preset and validates the result.
    /// Same as [`Config::from_sources`] with no explicit keys. A variable of [`KEYS`] whose value
    /// is not UTF-8 is an error naming it.
    pub fn from_env() -> Result<Config> {
        check_env_utf8()?;
        Config::from_sources(&BTreeMap::new(), &env_value)
    }

    /// Builds and validates a configuration: explicit keys (lower case, no prefix; see [`KEYS`])
    /// > environment (`env` is called with a variable name and returns its value) > preset.
    ///
    /// Explicit values may be JSON strings (parsed like the variable) or the natural JSON type
    /// (number, bool, list, object); `null` means "not given". Unknown explicit keys are an error
    /// listing the allowed keys; unknown environment variables are never read. An environment
    /// value that is empty (or only whitespace) counts as unset.
    pub fn from_sources(
        explicit: &BTreeMap<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        if let Some(key) = explicit
            .keys()
            .find(|k| !KEYS.iter().any(|(known, ..)| known == k))
        {
            return Err(unknown_key_error(key));
        }
        let src = Sources { explicit, env };
        src.check_cluster_key()?;

        let preset = src
            .get("preset", "RINGRIFT_PRESET", parse_preset)?
            .unwrap_or(Preset::Lan);
        let node_id = match src.get("node_id", "RINGRIFT_NODE_ID", parse_node_id)? {
            Some(id) => id,
            None => hostname(),
        };
        let mut c = Config::base(preset, node_id);

        if let Some(v) = src.get("swim_enabled", "RINGRIFT_SWIM_ENABLED", parse_bool)? {
            c.membership.swim_enabled = v;
        }
        if let Some(v) = src.get(
            "membership_mode",
            "RINGRIFT_MEMBERSHIP_MODE",
            parse_membership_mode,
        )? {
            c.membership.mode = v;
        }
        if let Some(v) = src.get("raft_enabled", "RINGRIFT_RAFT_ENABLED", parse_bool)? {
            c.raft.enabled = v;
        }
        if let Some(v) = src.get("raft_join", "RINGRIFT_RAFT_JOIN", parse_bool)? {
            c.raft.join = v;
        }
        if let Some(v) = src.get(
            "consensus_mode",
            "RINGRIFT_CONSENSUS_MODE",
            parse_consensus_mode,
        )? {
            c.raft.mode = v;
        }
        if let Some(v) = src.get_aliased(
            ("swim_port", "RINGRIFT_SWIM_PORT"),
            ("swim_bind_port", "RINGRIFT_SWIM_BIND_PORT"),
            parse_port,
        )? {
            c.membership.swim_port = v;
        }
        if let Some(v) = src.get_aliased(
            ("raft_port", "RINGRIFT_RAFT_PORT"),
            ("raft_bind_port", "RINGRIFT_RAFT_BIND_PORT"),
            parse_port,
        )? {
            c.raft.raft_port = v;
        }
        if let Some(v) = src.get("p2p_port", "RINGRIFT_P2P_PORT", parse_port)? {
            c.network.p2p_port = v;
        }
        if let Some(period) = src.get(
            "swim_gossip_interval_ms",
            "RINGRIFT_SWIM_GOSSIP_INTERVAL",
            |raw| parse_duration(raw, MIN_SWIM_PERIOD, MAX_SWIM_PERIOD),
        )? {
            c.set_swim_period(period);
        }
        if let Some(v) = src.get(
            "raft_snapshot_interval_ms",
            "RINGRIFT_RAFT_SNAPSHOT_INTERVAL",
            |raw| parse_duration(raw, MIN_SNAPSHOT_INTERVAL, MAX_SNAPSHOT_INTERVAL),
        )? {
            c.raft.snapshot_interval = v;
        }
        if let Some(v) = src.get("cluster_name", "RINGRIFT_CLUSTER_NAME", parse_cluster_name)? {
            c.cluster_name = v;
        }
        if let Some(v) = src.get("swim_seeds", "RINGRIFT_SWIM_SEEDS", parse_seeds)? {
            c.membership.seeds = v;
        }
        if let Some(v) = src.get("raft_voters", "RINGRIFT_RAFT_VOTERS", parse_voters)? {
            c.raft.voters = v;
        }
        if let Some(v) = src.get("data_dir", "RINGRIFT_DATA_DIR", parse_data_dir)? {
            c.storage.data_dir = v;
        }
        if let Some(v) = src.get("auth_token", "RINGRIFT_AUTH_TOKEN", parse_auth_token)? {
            c.security.auth_token = v;
        }
        if let Some(v) = src.get("bind_host", "RINGRIFT_BIND_HOST", parse_bind_host)? {
            c.network.bind_host = v;
        }
        c.network.advertise_host = match src.get(
            "advertise_host",
            "RINGRIFT_ADVERTISE_HOST",
            parse_advertise_host,
        )? {
            Some(v) => v,
            None => default_advertise_host(
                c.network.bind_host,
                !c.membership.seeds.is_empty() || !c.raft.voters.is_empty(),
            ),
        };

        c.validate()?;
        Ok(c)
    }

    /// For C and Python: `json` is a JSON object of explicit keys (as in
    /// [`Config::from_sources`]), or `""`, `"null"` or `"{}"` for none. With `use_env` the
    /// `RINGRIFT_*` variables fill what the object leaves out; without it the environment is
    /// ignored entirely. Malformed JSON or a non-object is an error.
    pub fn from_json(json: &str, use_env: bool) -> Result<Config> {
        let text = json.trim();
        let explicit: BTreeMap<String, Value> = if text.is_empty() {
            BTreeMap::new()
        } else {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Null) => BTreeMap::new(),
                Ok(Value::Object(map)) => map.into_iter().collect(),
                Ok(other) => {
                    return Err(Error::invalid_config(format!(
                        "configuration JSON must be an object of keys (or null), got {}: {}",
                        json_type(&other),
                        truncate(&other.to_string(), 200)
                    )))
                }
                Err(e) => {
                    return Err(Error::invalid_config(format!(
                        "configuration JSON {:?} is not valid JSON: {e}",
                        truncate(text, 200)
                    )))
                }
            }
        };
        if use_env {
            check_env_utf8()?;
            Config::from_sources(&explicit, &env_value)
        } else {
            Config::from_sources(&explicit, &|_| None)
        }
    }

    /// Checks every field and the rules between fields; the first violation is returned as an
    /// [`ErrorKind::InvalidConfig`] error that names the variables and prints their values.
    pub fn validate(&self) -> Result<()> {
        self.validate_identity()?;
        self.validate_addresses()?;
        self.validate_modes()?;
        self.validate_swim_timing()?;
        self.validate_raft_timing()
    }

    fn validate_identity(&self) -> Result<()> {
        if let Err(why) = check_node_id(&self.node_id) {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_NODE_ID (node_id)={:?}: {why} (it defaults to the hostname; set it \
                 explicitly)",
                self.node_id
            )));
        }
        if let Err(why) = check_cluster_name(&self.cluster_name) {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_CLUSTER_NAME (cluster_name)={:?}: {why}",
                self.cluster_name
            )));
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(Error::invalid_config(
                "RINGRIFT_DATA_DIR (data_dir)=\"\": expected a non-empty directory path",
            ));
        }
        Ok(())
    }

    fn validate_addresses(&self) -> Result<()> {
        let net = &self.network;
        if let Err(why) = check_advertise_host(net.advertise_host) {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_ADVERTISE_HOST (advertise_host)=\"{}\": {why}",
                net.advertise_host
            )));
        }
        if net.bind_host.is_ipv4() && net.advertise_host.is_ipv6() {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_ADVERTISE_HOST (advertise_host)=\"{}\" is IPv6 but RINGRIFT_BIND_HOST \
                 (bind_host)=\"{}\" is IPv4: sockets bound to an IPv4 address cannot be reached \
                 over IPv6; bind \"::\" or advertise an IPv4 address",
                net.advertise_host, net.bind_host
            )));
        }
        let (swim, raft) = (self.membership.swim_port, self.raft.raft_port);
        if swim != 0 && swim == raft {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_SWIM_PORT (swim_port)={swim} and RINGRIFT_RAFT_PORT (raft_port)={raft} \
                 are the same port on bind host {}: give SWIM and Raft different ports",
                net.bind_host
            )));
        }
        for seed in &self.membership.seeds {
            if let Err(why) = check_host_port(seed) {
                return Err(Error::invalid_config(format!(
                    "RINGRIFT_SWIM_SEEDS (swim_seeds) entry \"{seed}\": {why}"
                )));
            }
        }
        let voters = &self.raft.voters;
        for (i, v) in voters.iter().enumerate() {
            let shown = format!("{}={}", v.node_id, v.addr);
            if let Err(why) = check_node_id(&v.node_id) {
                return Err(Error::invalid_config(format!(
                    "RINGRIFT_RAFT_VOTERS (raft_voters) entry {shown:?}: node id {:?}: {why}",
                    v.node_id
                )));
            }
            if let Err(why) = check_host_port(&v.addr) {
                return Err(Error::invalid_config(format!(
                    "RINGRIFT_RAFT_VOTERS (raft_voters) entry {shown:?}: {why}"
                )));
            }
            if let Some(other) = voters[..i].iter().find(|o| o.node_id == v.node_id) {
                return Err(Error::invalid_config(format!(
                    "RINGRIFT_RAFT_VOTERS (raft_voters): node id {:?} appears twice (\"{}={}\" \
                     and {shown:?}); node ids must be unique",
                    v.node_id, other.node_id, other.addr
                )));
            }
            if let Some(other) = voters[..i].iter().find(|o| o.addr == v.addr) {
                return Err(Error::invalid_config(format!(
                    "RINGRIFT_RAFT_VOTERS (raft_voters): address \"{}\" is given for both {:?} \
                     and {:?}; every voter needs its own address",
                    v.addr, other.node_id, v.node_id
                )));
            }
        }
        Ok(())
    }

    fn validate_modes(&self) -> Result<()> {
        let m = &self.membership;
        if m.mode == MembershipMode::Swim && !m.swim_enabled {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_MEMBERSHIP_MODE (membership_mode)=\"{}\" needs SWIM but \
                 RINGRIFT_SWIM_ENABLED (swim_enabled)={}: set RINGRIFT_SWIM_ENABLED=true, or use \
                 RINGRIFT_MEMBERSHIP_MODE=hybrid (falls back to http while SWIM is off) or http",
                m.mode, m.swim_enabled
            )));
        }
        let r = &self.raft;
        if r.mode == ConsensusMode::Raft && !r.enabled {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_CONSENSUS_MODE (consensus_mode)=\"{}\" needs Raft but \
                 RINGRIFT_RAFT_ENABLED (raft_enabled)={}: set RINGRIFT_RAFT_ENABLED=true, or use \
                 RINGRIFT_CONSENSUS_MODE=hybrid (falls back to bully while Raft is off) or bully",
                r.mode, r.enabled
            )));
        }
        if r.enabled && r.voters.is_empty() && !m.seeds.is_empty() {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_RAFT_VOTERS is empty but RINGRIFT_SWIM_SEEDS is set ({:?}): with \
                 RINGRIFT_RAFT_ENABLED=true a node that joins a cluster needs the voter list \
                 (node_id=host:port,...); an empty list means a single-node Raft cluster",
                join_display(&m.seeds)
            )));
        }
        Ok(())
    }

    fn validate_swim_timing(&self) -> Result<()> {
        let t = &self.membership.timing;
        let fail = |msg: String| Err(Error::invalid_config(format!("SWIM timing: {msg}")));
        if t.probe_period < MIN_SWIM_PERIOD || t.probe_period > MAX_SWIM_PERIOD {
            return fail(format!(
                "probe_period {:?} (RINGRIFT_SWIM_GOSSIP_INTERVAL / swim_gossip_interval_ms) must \
                 be between {MIN_SWIM_PERIOD:?} and {MAX_SWIM_PERIOD:?}",
                t.probe_period
            ));
        }
        if t.probe_rtt.is_zero() || t.probe_rtt >= t.probe_period {
            return fail(format!(
                "probe_rtt {:?} must be greater than zero and shorter than probe_period {:?}",
                t.probe_rtt, t.probe_period
            ));
        }
        if t.suspicion_timeout < t.probe_period {
            return fail(format!(
                "suspicion_timeout {:?} must be at least probe_period {:?}",
                t.suspicion_timeout, t.probe_period
            ));
        }
        if t.num_indirect_probes == 0 {
            return fail("num_indirect_probes is 0; it must be at least 1".to_string());
        }
        if t.gossip_fanout == 0 {
            return fail("gossip_fanout is 0; it must be at least 1".to_string());
        }
        if t.max_transmissions == 0 {
            return fail("max_transmissions is 0; it must be at least 1".to_string());
        }
        for (name, d) in [
            ("gossip_interval", t.gossip_interval),
            ("announce_interval", t.announce_interval),
            ("announce_down_interval", t.announce_down_interval),
        ] {
            if d.is_zero() {
                return fail(format!("{name} is 0; it must be greater than zero"));
            }
        }
        Ok(())
    }

    fn validate_raft_timing(&self) -> Result<()> {
        let r = &self.raft;
        if r.snapshot_interval < MIN_SNAPSHOT_INTERVAL
            || r.snapshot_interval > MAX_SNAPSHOT_INTERVAL
        {
            return Err(Error::invalid_config(format!(
                "RINGRIFT_RAFT_SNAPSHOT_INTERVAL (raft_snapshot_interval_ms)={:?}: must be between \
                 {MIN_SNAPSHOT_INTERVAL:?} and {MAX_SNAPSHOT_INTERVAL:?}",
                r.snapshot_interval
            )));
        }
        if r.election_timeout_min >= r.election_timeout_max {
            return Err(Error::invalid_config(format!(
                "Raft timing: election_timeout_min {:?} must be shorter than election_timeout_max \
                 {:?}",
                r.election_timeout_min, r.election_timeout_max
            )));
        }
        if r.heartbeat_interval.is_zero() || r.heartbeat_interval >= r.election_timeout_min {
            return Err(Error::invalid_config(format!(
                "Raft timing: heartbeat_interval {:?} must be greater than zero and shorter than \
                 election_timeout_min {:?}",
                r.heartbeat_interval, r.election_timeout_min
            )));
        }
        Ok(())
    }

    /// The SWIM socket's bind address, `bind_host:swim_port`.
    pub fn swim_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.network.bind_host, self.membership.swim_port)
    }

    /// The SWIM address peers use, `advertise_host:swim_port` (with port 0 the caller advertises
    /// the port actually bound).
    pub fn swim_advertise_addr(&self) -> SocketAddr {
        SocketAddr::new(self.network.advertise_host, self.membership.swim_port)
    }

    /// The Raft address peers use, `advertise_host:raft_port` (with port 0 the caller advertises
    /// the port actually bound).
    pub fn raft_advertise_addr(&self) -> SocketAddr {
        SocketAddr::new(self.network.advertise_host, self.raft.raft_port)
    }

    /// The effective configuration as JSON for status and debugging: sections as in [`Config`],
    /// durations as `*_ms` numbers (integers when whole), addresses as strings, seeds as
    /// `"host:port"` and voters as `{node_id, addr}`; `auth_token` is `"***"` when set, else null.
    pub fn to_json(&self) -> Value {
        let m = &self.membership;
        let t = &m.timing;
        let r = &self.raft;
        let n = &self.network;
        json!({
            "node_id": self.node_id,
            "cluster_name": self.cluster_name,
            "preset": self.preset.as_str(),
            "membership": {
                "swim_enabled": m.swim_enabled,
                "mode": m.mode.as_str(),
                "swim_port": m.swim_port,
                "seeds": m.seeds.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "timing": {
                    "probe_period_ms": millis(t.probe_period),
                    "probe_rtt_ms": millis(t.probe_rtt),
                    "num_indirect_probes": t.num_indirect_probes,
                    "suspicion_timeout_ms": millis(t.suspicion_timeout),
                    "gossip_interval_ms": millis(t.gossip_interval),
                    "gossip_fanout": t.gossip_fanout,
                    "max_transmissions": t.max_transmissions,
                    "announce_interval_ms": millis(t.announce_interval),
                    "announce_down_interval_ms": millis(t.announce_down_interval),
                },
            },
            "raft": {
                "enabled": r.enabled,
                "join": r.join,
                "mode": r.mode.as_str(),
                "raft_port": r.raft_port,
                "voters": r.voters.iter()
                    .map(|v| json!({"node_id": v.node_id, "addr": v.addr.to_string()}))
                    .collect::<Vec<_>>(),
                "snapshot_interval_ms": millis(r.snapshot_interval),
                "heartbeat_interval_ms": millis(r.heartbeat_interval),
                "election_timeout_min_ms": millis(r.election_timeout_min),
                "election_timeout_max_ms": millis(r.election_timeout_max),
            },
            "network": {
                "bind_host": n.bind_host.to_string(),
                "advertise_host": n.advertise_host.to_string(),
                "p2p_port": n.p2p_port,
                "swim_bind_addr": self.swim_bind_addr().to_string(),
                "swim_advertise_addr": self.swim_advertise_addr().to_string(),
                "raft_advertise_addr": self.raft_advertise_addr().to_string(),
            },
            "storage": {
                "data_dir": self.storage.data_dir.to_string_lossy(),
            },
            "security": {
                "auth_token": self.security.auth_token.as_ref().map(|_| "***"),
            },
        })
    }

    /// Applies a new SWIM protocol period: `probe_period = period`, and `probe_rtt`,
    /// `suspicion_timeout` and `gossip_interval` are the preset's values multiplied by
    /// `period / preset probe_period` (so calling it twice does not compound). Fan-out,
    /// transmissions and announce intervals are untouched. Never panics; call
    /// [`Config::validate`] afterwards to check the result (10 ms–60 s).
    pub fn set_swim_period(&mut self, period: Duration) {
        let base = self.preset.swim_timing();
        let factor = period.as_secs_f64() / base.probe_period.as_secs_f64();
        let t = &mut self.membership.timing;
        t.probe_period = period;
        t.probe_rtt = scale(base.probe_rtt, factor);
        t.suspicion_timeout = scale(base.suspicion_timeout, factor);
        t.gossip_interval = scale(base.gossip_interval, factor);
    }
}

/// This machine's hostname: `/proc/sys/kernel/hostname`, else `gethostname(2)`, else
/// `"swimraft-node"`. Surrounding whitespace is trimmed. Used as the default node id.
pub fn hostname() -> String {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let s = s.trim();
        if !s.is_empty() {
            return s.to_string();
        }
    }
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the pointer and length describe `buf`, which outlives the call; gethostname
        // writes at most `len` bytes into it.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if let Ok(s) = std::str::from_utf8(&buf[..end]) {
                let s = s.trim();
                if !s.is_empty() {
                    return s.to_string();
                }
            }
        }
    }
    FALLBACK_HOSTNAME.to_string()
}

// ---------------------------------------------------------------------------------------------
// Sources and raw values
// ---------------------------------------------------------------------------------------------

/// The two layers above the preset.
struct Sources<'a> {
    explicit: &'a BTreeMap<String, Value>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

/// One value as given, with where it came from (for error messages).
enum Raw<'a> {
    /// An explicit key's JSON value (never null).
    Explicit { key: &'static str, value: &'a Value },
    /// An environment variable's value (never empty or only whitespace).
    Env { var: &'static str, value: String },
}

impl Raw<'_> {
    /// `NAME="value"` (or `name=<json>` for explicit non-strings), for error messages.
    fn shown(&self) -> String {
        match self {
            Raw::Env { var, value } => format!("{var}={value:?}"),
            Raw::Explicit {
                key,
                value: Value::String(s),
            } => format!("{key}={s:?}"),
            Raw::Explicit { key, value } => {
                format!("{key}={}", truncate(&value.to_string(), 200))
            }
        }
    }

    /// The error for this value: `NAME="value": expected`.
    fn error(&self, expected: impl fmt::Display) -> Error {
        Error::invalid_config(format!("{}: {expected}", self.shown()))
    }

    /// The value as text: the environment value or an explicit JSON string.
    fn text(&self) -> Option<&str> {
        match self {
            Raw::Env { value, .. } => Some(value),
            Raw::Explicit {
                value: Value::String(s),
                ..
            } => Some(s),
            Raw::Explicit { .. } => None,
        }
    }

    /// True when the value came from the environment (durations are then in seconds).
    fn is_env(&self) -> bool {
        matches!(self, Raw::Env { .. })
    }
}

/// The value of the environment variable `var` (checked to be UTF-8 by [`check_env_utf8`]).
fn env_value(var: &str) -> Option<String> {
    std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
}

/// Refuses a variable of [`KEYS`] whose value is not UTF-8. Read lossily, such a value would
/// quietly become another one — a `RINGRIFT_DATA_DIR` naming a different, empty directory, a
/// node id with a replacement character. Variables swimraft does not read are not looked at.
fn check_env_utf8() -> Result<()> {
    for (_, var, _, _) in KEYS {
        if let Some(value) = std::env::var_os(var) {
            if value.to_str().is_none() {
                let shown = match *var {
                    "RINGRIFT_CLUSTER_KEY" | "RINGRIFT_AUTH_TOKEN" => {
                        "(a secret, not shown)".into()
                    }
                    _ => format!("{:?}", value.to_string_lossy()),
                };
                return Err(Error::invalid_config(format!(
                    "{var}={shown} is not valid UTF-8: swimraft reads its variables as UTF-8 text"
                )));
            }
        }
    }
    Ok(())
}

impl<'a> Sources<'a> {
    fn explicit(&self, key: &'static str) -> Option<Raw<'a>> {
        match self.explicit.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Raw::Explicit { key, value }),
        }
    }

    fn env(&self, var: &'static str) -> Option<Raw<'a>> {
        (self.env)(var)
            .filter(|v| !v.trim().is_empty())
            .map(|value| Raw::Env { var, value })
    }

    /// The explicit value of `key`, else the environment value of `var`, parsed.
    fn get<T>(
        &self,
        key: &'static str,
        var: &'static str,
        parse: impl Fn(&Raw<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.explicit(key).or_else(|| self.env(var)) {
            Some(raw) => parse(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`Sources::get`] for a key with an alias: within one layer either name may be
    /// given; both with different values is an error naming both.
    fn get_aliased<T: PartialEq + fmt::Display>(
        &self,
        (key, var): (&'static str, &'static str),
        (alias_key, alias_var): (&'static str, &'static str),
        parse: impl Fn(&Raw<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let layers = [
            (self.explicit(key), self.explicit(alias_key)),
            (self.env(var), self.env(alias_var)),
        ];
        for layer in layers {
            match layer {
                (None, None) => continue,
                (Some(raw), None) | (None, Some(raw)) => return parse(&raw).map(Some),
                (Some(primary), Some(alias)) => {
                    let a = parse(&primary)?;
                    let b = parse(&alias)?;
                    if a != b {
                        return Err(Error::invalid_config(format!(
                            "{} and its alias {} disagree ({a} vs {b}): set only one of them",
                            primary.shown(),
                            alias.shown()
                        )));
                    }
                    return Ok(Some(a));
                }
            }
        }
        Ok(None)
    }

    /// A non-empty cluster key is an error: authentication is not implemented, and a secret
    /// that is silently ignored would give a false sense of security. The value is never printed.
    fn check_cluster_key(&self) -> Result<()> {
        match self.explicit.get("cluster_key") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(_) => {
                return Err(Error::invalid_config(
                    "cluster_key is set but authentication of SWIM and Raft traffic is not \
                     implemented yet; remove it",
                ))
            }
        }
        if (self.env)("RINGRIFT_CLUSTER_KEY").is_some_and(|v| !v.is_empty()) {
            return Err(Error::invalid_config(
                "RINGRIFT_CLUSTER_KEY is set but authentication of SWIM and Raft traffic is not \
                 implemented yet; unset it",
            ));
        }
        Ok(())
    }
}

fn unknown_key_error(key: &str) -> Error {
    let allowed: Vec<&str> = KEYS.iter().map(|(k, ..)| *k).collect();
    let lower = key.trim().to_ascii_lowercase();
    let normalized = lower.strip_prefix("ringrift_").unwrap_or(&lower);
    let hint = match KEYS.iter().find(|(k, ..)| *k == normalized) {
        Some((k, ..)) => format!(" (did you mean {k:?}? keys are lower case without the prefix)"),
        None => String::new(),
    };
    Error::invalid_config(format!(
        "unknown configuration key {key:?}{hint}; allowed keys: {}",
        allowed.join(", ")
    ))
}

// ---------------------------------------------------------------------------------------------
// Parsers: each names the variable and the value when it fails
// ---------------------------------------------------------------------------------------------

fn parse_bool(raw: &Raw<'_>) -> Result<bool> {
    const EXPECTED: &str = "expected a boolean: 1, true, yes, on / 0, false, no, off";
    if let Raw::Explicit { value, .. } = raw {
        match value {
            Value::Bool(b) => return Ok(*b),
            Value::Number(n) => {
                return match n.as_u64() {
                    Some(0) => Ok(false),
                    Some(1) => Ok(true),
                    _ => Err(raw.error(EXPECTED)),
                }
            }
            _ => {}
        }
    }
    let text = raw.text().ok_or_else(|| raw.error(EXPECTED))?;
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(raw.error(EXPECTED)),
    }
}

/// A case-insensitive choice among `names`.
fn parse_choice<T: Copy>(raw: &Raw<'_>, choices: &[(&str, T)]) -> Result<T> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let expected = format!("expected one of {}", names.join(", "));
    let text = raw.text().ok_or_else(|| raw.error(&expected))?;
    let lower = text.trim().to_ascii_lowercase();
    choices
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, v)| *v)
        .ok_or_else(|| raw.error(&expected))
}

fn parse_membership_mode(raw: &Raw<'_>) -> Result<MembershipMode> {
    parse_choice(
        raw,
        &[
            ("http", MembershipMode::Http),
            ("swim", MembershipMode::Swim),
            ("hybrid", MembershipMode::Hybrid),
        ],
    )
}

fn parse_consensus_mode(raw: &Raw<'_>) -> Result<ConsensusMode> {
    parse_choice(
        raw,
        &[
            ("bully", ConsensusMode::Bully),
            ("raft", ConsensusMode::Raft),
            ("hybrid", ConsensusMode::Hybrid),
        ],
    )
}

fn parse_preset(raw: &Raw<'_>) -> Result<Preset> {
    parse_choice(
        raw,
        &[
            ("lan", Preset::Lan),
            ("wan", Preset::Wan),
            ("local", Preset::Local),
        ],
    )
}

fn parse_port(raw: &Raw<'_>) -> Result<u16> {
    const EXPECTED: &str = "expected an integer port 0-65535 (0 = any free port)";
    let n = match raw {
        Raw::Explicit {
            value: Value::Number(n),
            ..
        } => n.as_u64(),
        _ => raw.text().and_then(|t| t.trim().parse::<u64>().ok()),
    };
    n.and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| raw.error(EXPECTED))
}

/// A duration: explicit keys in milliseconds, environment variables in seconds; decimals allowed.
fn parse_duration(raw: &Raw<'_>, min: Duration, max: Duration) -> Result<Duration> {
    let (unit, nanos_per_unit, lo, hi) = if raw.is_env() {
        ("seconds", 1e9, min.as_secs_f64(), max.as_secs_f64())
    } else {
        (
            "milliseconds",
            1e6,
            min.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
        )
    };
    let expected = format!("expected a number of {unit} from {lo} to {hi}");
    let value = match raw {
        Raw::Explicit {
            value: Value::Number(n),
            ..
        } => n.as_f64(),
        _ => raw.text().and_then(|t| t.trim().parse::<f64>().ok()),
    };
    match value {
        Some(v) if v.is_finite() => {
            let nanos = (v * nanos_per_unit).round();
            let in_range =
                nanos >= min.as_nanos() as f64 && nanos <= max.as_nanos() as f64 && nanos >= 0.0;
            if in_range {
                // In range, so the conversion is exact and cannot overflow.
                Ok(Duration::from_nanos(nanos as u64))
            } else {
                Err(raw.error(expected))
            }
        }
        _ => Err(raw.error(expected)),
    }
}

/// Text of a string-valued key, trimmed; non-strings are an error.
fn string_value<'r>(raw: &'r Raw<'_>, expected: &str) -> Result<&'r str> {
    raw.text().map(str::trim).ok_or_else(|| raw.error(expected))
}

fn parse_node_id(raw: &Raw<'_>) -> Result<String> {
    let s = string_value(raw, "expected a string node id")?;
    check_node_id(s).map_err(|why| raw.error(why))?;
    Ok(s.to_string())
}

fn parse_cluster_name(raw: &Raw<'_>) -> Result<String> {
    let s = string_value(raw, "expected a string cluster name")?;
    check_cluster_name(s).map_err(|why| raw.error(why))?;
    Ok(s.to_string())
}

fn parse_data_dir(raw: &Raw<'_>) -> Result<PathBuf> {
    let s = string_value(raw, "expected a non-empty directory path")?;
    if s.is_empty() {
        return Err(raw.error("expected a non-empty directory path"));
    }
    Ok(PathBuf::from(s))
}

/// The token verbatim (not trimmed); empty = `None`.
fn parse_auth_token(raw: &Raw<'_>) -> Result<Option<String>> {
    match raw {
        Raw::Env { value, .. } => Ok(Some(value.clone())),
        Raw::Explicit {
            value: Value::String(s),
            ..
        } => Ok((!s.is_empty()).then(|| s.clone())),
        Raw::Explicit { key, value } => Err(Error::invalid_config(format!(
            "{key} is a JSON {}: expected a string token (its value is not printed)",
            json_type(value)
        ))),
    }
}

/// An IP address, optionally in brackets (`[::1]`).
fn ip_from_text(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    t.parse().ok()
}

fn parse_bind_host(raw: &Raw<'_>) -> Result<IpAddr> {
    const EXPECTED: &str =
        "expected an IP address such as 0.0.0.0, 127.0.0.1 or :: (not a DNS name)";
    raw.text()
        .and_then(ip_from_text)
        .ok_or_else(|| raw.error(EXPECTED))
}

fn parse_advertise_host(raw: &Raw<'_>) -> Result<IpAddr> {
    const EXPECTED: &str =
        "expected the IP address peers use to reach this node, e.g. 10.0.0.5 (not a DNS name)";
    let ip = raw
        .text()
        .and_then(ip_from_text)
        .ok_or_else(|| raw.error(EXPECTED))?;
    check_advertise_host(ip).map_err(|why| raw.error(why))?;
    Ok(ip)
}

/// The entries of a list-valued key: split on ',' for text, the strings of a JSON list;
/// entries are trimmed and empty ones skipped.
fn list_entries(raw: &Raw<'_>, expected: &str) -> Result<Vec<String>> {
    if let Raw::Explicit {
        value: Value::Array(items),
        ..
    } = raw
    {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                Value::String(_) => {}
                other => {
                    return Err(raw.error(format!(
                        "list entry {} is not a string; {expected}",
                        truncate(&other.to_string(), 100)
                    )))
                }
            }
        }
        return Ok(out);
    }
    let text = raw
        .text()
        .ok_or_else(|| raw.error(format!("{expected} (a string or a JSON list of strings)")))?;
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect())
}

fn parse_seeds(raw: &Raw<'_>) -> Result<Vec<HostPort>> {
    const EXPECTED: &str = "expected host:port,... (IPv6 as [addr]:port, port 1-65535)";
    let mut seeds: Vec<HostPort> = Vec::new();
    for entry in list_entries(raw, EXPECTED)? {
        let hp = parse_host_port(&entry)
            .map_err(|why| raw.error(format!("entry {entry:?}: {why}; {EXPECTED}")))?;
        if !seeds.contains(&hp) {
            seeds.push(hp);
        }
    }
    Ok(seeds)
}

fn parse_voters(raw: &Raw<'_>) -> Result<Vec<Voter>> {
    const EXPECTED: &str = "expected node_id=host:port,... (IPv6 as [addr]:port, port 1-65535)";
    let pairs: Vec<(String, String)> = match raw {
        Raw::Explicit {
            value: Value::Object(map),
            ..
        } => {
            let mut pairs = Vec::with_capacity(map.len());
            for (id, addr) in map {
                match addr {
                    Value::String(a) => pairs.push((id.trim().to_string(), a.trim().to_string())),
                    other => {
                        return Err(raw.error(format!(
                            "the address of {id:?} is {}, not a \"host:port\" string",
                            truncate(&other.to_string(), 100)
                        )))
                    }
                }
            }
            pairs
        }
        _ => {
            let mut pairs = Vec::new();
            for entry in list_entries(raw, EXPECTED)? {
                let (id, addr) = entry
                    .split_once('=')
                    .ok_or_else(|| raw.error(format!("entry {entry:?} has no '='; {EXPECTED}")))?;
                pairs.push((id.trim().to_string(), addr.trim().to_string()));
            }
            pairs
        }
    };
    let mut voters: Vec<Voter> = Vec::with_capacity(pairs.len());
    for (id, addr) in pairs {
        let entry = format!("{id}={addr}");
        check_node_id(&id)
            .map_err(|why| raw.error(format!("entry {entry:?}: node id {id:?}: {why}")))?;
        let addr = parse_host_port(&addr)
            .map_err(|why| raw.error(format!("entry {entry:?}: {why}; {EXPECTED}")))?;
        if let Some(other) = voters.iter().find(|v| v.node_id == id) {
            return Err(raw.error(format!(
                "node id {id:?} appears twice (\"{}={}\" and {entry:?}); node ids must be unique",
                other.node_id, other.addr
            )));
        }
        if let Some(other) = voters.iter().find(|v| v.addr == addr) {
            return Err(raw.error(format!(
                "address \"{addr}\" is given for both {:?} and {id:?}; every voter needs its own \
                 address",
                other.node_id
            )));
        }
        voters.push(Voter { node_id: id, addr });
    }
    Ok(voters)
}

// ---------------------------------------------------------------------------------------------
// Field rules shared by the parsers and validate(): Err is the reason, without the name
// ---------------------------------------------------------------------------------------------

fn check_node_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("the node id is empty".to_string());
    }
    if id.len() > MAX_NODE_ID_BYTES {
        return Err(format!(
            "the node id is {} bytes; at most {MAX_NODE_ID_BYTES} are allowed",
            id.len()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || c == ',' || c == '=')
    {
        return Err(format!(
            "the node id contains {c:?}; whitespace, control characters, ',' and '=' are not \
             allowed"
        ));
    }
    Ok(())
}

fn check_cluster_name(name: &str) -> std::result::Result<(), String> {
    let ok_len = !name.is_empty() && name.len() <= MAX_CLUSTER_NAME_BYTES;
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "expected 1-{MAX_CLUSTER_NAME_BYTES} bytes of A-Z, a-z, 0-9, '.', '_' and '-'"
        ))
    }
}

fn check_advertise_host(ip: IpAddr) -> std::result::Result<(), String> {
    if ip.is_unspecified() {
        return Err(
            "an unspecified address (0.0.0.0 or ::) cannot be reached by peers; advertise a \
             specific address, e.g. 127.0.0.1 on one machine or this node's LAN address"
                .to_string(),
        );
    }
    if ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return Err("a multicast or broadcast address cannot identify one node".to_string());
    }
    Ok(())
}

/// A host as written: an IPv6 address (no brackets) or a DNS name / IPv4 address.
fn check_host(host: &str) -> std::result::Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host.contains(':') {
        return host
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("{host:?} is not an IPv6 address"));
    }
    if host.len() > MAX_HOST_BYTES {
        return Err(format!(
            "the host is {} bytes; at most {MAX_HOST_BYTES} are allowed",
            host.len()
        ));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(format!(
            "host {host:?} is neither an IP address nor a DNS name (A-Z, a-z, 0-9, '.', '-', '_')"
        ));
    }
    Ok(())
}

fn check_host_port(hp: &HostPort) -> std::result::Result<(), String> {
    check_host(&hp.host)?;
    if hp.port == 0 {
        return Err("port 0 is not reachable; expected a port 1-65535".to_string());
    }
    Ok(())
}

/// `host:port` or `[ipv6]:port`; the port must be 1–65535.
fn parse_host_port(s: &str) -> std::result::Result<HostPort, String> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing ']' after the IPv6 address".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "missing ':port' after ']'".to_string())?;
        if !host.contains(':') {
            return Err(format!(
                "brackets are only for IPv6 addresses, got [{host}]"
            ));
        }
        (host, port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| "missing ':port'".to_string())?;
        if host.contains(':') {
            return Err("an IPv6 address must be written in brackets, as [addr]:port".to_string());
        }
        (host, port)
    };
    check_host(host)?;
    if port.is_empty() {
        return Err("the port is empty".to_string());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not an integer 1-65535"))?;
    let hp = HostPort {
        host: host.to_string(),
        port,
    };
    check_host_port(&hp)?;
    Ok(hp)
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// The default advertise address: a specific `bind` address is the only one the sockets answer
/// on; else loopback for a lone node; else the first non-loopback IPv4 interface address.
fn default_advertise_host(bind: IpAddr, has_peers: bool) -> IpAddr {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if !bind.is_unspecified() {
        return bind;
    }
    if !has_peers {
        return loopback;
    }
    match first_non_loopback_ipv4() {
        Some(ip) => ip,
        None => {
            tracing::warn!(
                "RINGRIFT_ADVERTISE_HOST is unset and no non-loopback IPv4 address was found; \
                 advertising 127.0.0.1, which remote peers cannot reach"
            );
            loopback
        }
    }
}

/// The first non-loopback IPv4 interface address, preferring non-link-local ones.
fn first_non_loopback_ipv4() -> Option<IpAddr> {
    let interfaces = match if_addrs::get_if_addrs() {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!("cannot list network interfaces: {e}");
            return None;
        }
    };
    let candidates: Vec<IpAddr> = interfaces
        .iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .filter(IpAddr::is_ipv4)
        .collect();
    let is_link_local = |ip: &IpAddr| matches!(ip, IpAddr::V4(v4) if v4.is_link_local());
    candidates
        .iter()
        .find(|ip| !is_link_local(ip))
        .or_else(|| candidates.first())
        .copied()
}

/// A duration in milliseconds: an integer when whole, else a float.
fn millis(d: Duration) -> Value {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    } else {
        json!(d.as_secs_f64() * 1e3)
    }
}

/// `d * factor`, rounded to the nanosecond, saturating instead of panicking.
fn scale(d: Duration, factor: f64) -> Duration {
    let nanos = (d.as_nanos() as f64 * factor).round();
    if !nanos.is_finite() || nanos <= 0.0 {
        Duration::ZERO
    } else if nanos >= u64::MAX as f64 {
        Duration::from_nanos(u64::MAX)
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

fn join_display(items: &[HostPort]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// At most `max` bytes of `s` (on a char boundary), with "..." when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake environment: never touches the real process environment.
    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn explicit_of(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn load(explicit: &[(&str, Value)], env: &[(&str, &str)]) -> Result<Config> {
        Config::from_sources(&explicit_of(explicit), &env_of(env))
    }

    fn load_env(env: &[(&str, &str)]) -> Config {
        match load(&[], env) {
            Ok(c) => c,
            Err(e) => panic!("unexpected error for {env:?}: {e}"),
        }
    }

    /// The error message for a configuration that must be rejected.
    fn err(explicit: &[(&str, Value)], env: &[(&str, &str)]) -> String {
        match load(explicit, env) {
            Ok(c) => panic!("expected an error for {explicit:?} {env:?}, got {c:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidConfig);
                e.message().to_string()
            }
        }
    }

    fn err_env(env: &[(&str, &str)]) -> String {
        err(&[], env)
    }

    fn assert_mentions(msg: &str, parts: &[&str]) {
        for p in parts {
            assert!(msg.contains(p), "message {msg:?} should contain {p:?}");
        }
    }

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn defaults_with_empty_env() {
        let c = load_env(&[]);
        assert_eq!(c, Config::lan());
        assert_eq!(c.node_id, hostname());
        assert_eq!(c.cluster_name, "swimraft");
        assert_eq!(c.preset, Preset::Lan);
        assert!(!c.membership.swim_enabled);
        assert_eq!(c.membership.mode, MembershipMode::Http);
        assert_eq!(c.membership.swim_port, 7947);
        assert!(c.membership.seeds.is_empty());
        assert_eq!(c.membership.timing, LAN_SWIM_TIMING);
        assert!(!c.raft.enabled);
        assert_eq!(c.raft.mode, ConsensusMode::Bully);
        assert_eq!(c.raft.raft_port, 4321);
        assert!(c.raft.voters.is_empty());
        assert_eq!(c.raft.snapshot_interval, Duration::from_secs(60));
        assert_eq!(c.raft.heartbeat_interval, Duration::from_millis(15));
        assert_eq!(c.raft.election_timeout_min, Duration::from_millis(50));
        assert_eq!(c.raft.election_timeout_max, Duration::from_millis(100));
        assert_eq!(c.network.bind_host, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.network.advertise_host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.network.p2p_port, 8770);
        assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(c.security.auth_token, None);
        assert_eq!(c.swim_bind_addr().to_string(), "0.0.0.0:7947");
        assert_eq!(c.swim_advertise_addr().to_string(), "127.0.0.1:7947");
        assert_eq!(c.raft_advertise_addr().to_string(), "127.0.0.1:4321");
    }

    #[test]
    fn presets_are_valid_and_distinct() {
        for p in [Preset::Lan, Preset::Wan, Preset::Local] {
            let c = Config::preset(p);
            c.validate().expect("preset validates");
            assert_eq!(c.preset, p);
        }
        assert_eq!(
            Config::lan().membership.timing.probe_period,
            Duration::from_millis(500)
        );
        let wan = Config::wan();
        assert_eq!(wan.membership.timing.probe_period, Duration::from_secs(5));
        assert_eq!(
            wan.membership.timing.suspicion_timeout,
            Duration::from_secs(30)
        );
        assert_eq!(wan.membership.timing.gossip_fanout, 4);
        assert_eq!(wan.membership.timing.max_transmissions, 10);
        assert_eq!(wan.raft.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(wan.raft.election_timeout_max, Duration::from_secs(1));
        let local = Config::local();
        assert_eq!(
            local.membership.timing.probe_period,
            Duration::from_millis(200)
        );
        assert_eq!(
            local.membership.timing.announce_interval,
            Duration::from_secs(2)
        );
        assert_eq!(Config::default(), Config::lan());
        assert_eq!(Preset::Local.as_str(), "local");
        assert_eq!(MembershipMode::Hybrid.as_str(), "hybrid");
        assert_eq!(ConsensusMode::Raft.to_string(), "raft");
    }

    #[test]
    fn each_env_var_parsed() {
        let c = load_env(&[
            ("RINGRIFT_SWIM_ENABLED", "true"),
            ("RINGRIFT_MEMBERSHIP_MODE", "SWIM"),
            ("RINGRIFT_RAFT_ENABLED", "yes"),
            ("RINGRIFT_CONSENSUS_MODE", "Hybrid"),
            ("RINGRIFT_SWIM_PORT", "8000"),
            ("RINGRIFT_RAFT_PORT", " 9000 "),
            ("RINGRIFT_SWIM_GOSSIP_INTERVAL", "1"),
            ("RINGRIFT_RAFT_SNAPSHOT_INTERVAL", "300"),
            ("RINGRIFT_NODE_ID", "gpu-h100-1"),
            ("RINGRIFT_BIND_HOST", "0.0.0.0"),
            ("RINGRIFT_ADVERTISE_HOST", "10.0.0.5"),
            ("RINGRIFT_CLUSTER_NAME", "prod.cluster_1"),
            (
                "RINGRIFT_SWIM_SEEDS",
                " a.example:7947 , 10.0.0.2:7947,,[::1]:7000 ",
            ),
            (
                "RINGRIFT_RAFT_VOTERS",
                "gpu-h100-1=10.0.0.5:9000, n2=10.0.0.2:9000,n3=host3:9000",
            ),
            ("RINGRIFT_DATA_DIR", "/var/lib/swimraft"),
            ("RINGRIFT_P2P_PORT", "8080"),
            ("RINGRIFT_CLUSTER_KEY", ""),
            ("RINGRIFT_AUTH_TOKEN", "s3cret"),
            ("RINGRIFT_PRESET", "wan"),
        ]);
        assert!(c.membership.swim_enabled);
        assert_eq!(c.membership.mode, MembershipMode::Swim);
        assert!(c.raft.enabled);
        assert_eq!(c.raft.mode, ConsensusMode::Hybrid);
        assert_eq!(c.membership.swim_port, 8000);
        assert_eq!(c.raft.raft_port, 9000);
        assert_eq!(c.preset, Preset::Wan);
        // wan period 5 s -> 1 s: factor 0.2
        assert_eq!(c.membership.timing.probe_period, Duration::from_secs(1));
        assert_eq!(c.membership.timing.probe_rtt, Duration::from_millis(600));
        assert_eq!(
            c.membership.timing.suspicion_timeout,
            Duration::from_secs(6)
        );
        assert_eq!(
            c.membership.timing.gossip_interval,
            Duration::from_millis(100)
        );
        assert_eq!(c.membership.timing.gossip_fanout, 4);
        assert_eq!(c.raft.snapshot_interval, Duration::from_secs(300));
        assert_eq!(c.node_id, "gpu-h100-1");
        assert_eq!(
            c.network.advertise_host,
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(c.cluster_name, "prod.cluster_1");
        assert_eq!(
            c.membership.seeds,
            vec![hp("a.example", 7947), hp("10.0.0.2", 7947), hp("::1", 7000)]
        );
        assert_eq!(c.membership.seeds[2].to_string(), "[::1]:7000");
        assert_eq!(c.raft.voters.len(), 3);
        assert_eq!(c.raft.voters[1].node_id, "n2");
        assert_eq!(c.raft.voters[2].addr, hp("host3", 9000));
        assert_eq!(c.storage.data_dir, PathBuf::from("/var/lib/swimraft"));
        assert_eq!(c.network.p2p_port, 8080);
        assert_eq!(c.security.auth_token.as_deref(), Some("s3cret"));
        assert_eq!(c.raft_advertise_addr().to_string(), "10.0.0.5:9000");
    }

    #[test]
    fn bind_host_and_ipv6() {
        let c = load_env(&[
            ("RINGRIFT_BIND_HOST", "::"),
            ("RINGRIFT_ADVERTISE_HOST", "[::1]"),
        ]);
        assert_eq!(c.swim_bind_addr().to_string(), "[::]:7947");
        assert_eq!(c.swim_advertise_addr().to_string(), "[::1]:7947");
        let msg = err_env(&[("RINGRIFT_BIND_HOST", "localhost")]);
        assert_mentions(&msg, &["RINGRIFT_BIND_HOST", "\"localhost\"", "IP address"]);
        let msg = err_env(&[("RINGRIFT_ADVERTISE_HOST", "::1")]);
        assert_mentions(
            &msg,
            &["RINGRIFT_ADVERTISE_HOST", "::1", "RINGRIFT_BIND_HOST"],
        );
    }

    #[test]
    fn bool_spellings() {
        for t in ["1", "true", "TRUE", "Yes", "on", "ON", " true "] {
            let c = load_env(&[("RINGRIFT_SWIM_ENABLED", t), ("RINGRIFT_RAFT_ENABLED", t)]);
            assert!(c.membership.swim_enabled, "{t:?}");
            assert!(c.raft.enabled, "{t:?}");
        }
        for f in ["0", "false", "False", "no", "NO", "off", "Off"] {
            let c = load_env(&[("RINGRIFT_SWIM_ENABLED", f), ("RINGRIFT_RAFT_ENABLED", f)]);
            assert!(!c.membership.swim_enabled, "{f:?}");
            assert!(!c.raft.enabled, "{f:?}");
        }
        let c = load(
            &[("swim_enabled", json!(true)), ("raft_enabled", json!("on"))],
            &[],
        )
        .expect("explicit bools");
        assert!(c.membership.swim_enabled && c.raft.enabled);
        let c = load(&[("swim_enabled", json!(1))], &[]).expect("explicit 1");
        assert!(c.membership.swim_enabled);

        let msg = err_env(&[("RINGRIFT_SWIM_ENABLED", "maybe")]);
        assert_mentions(&msg, &["RINGRIFT_SWIM_ENABLED", "\"maybe\"", "true", "off"]);
        let msg = err(&[("raft_enabled", json!(2))], &[]);
        assert_mentions(&msg, &["raft_enabled", "2", "boolean"]);
        let msg = err(&[("raft_enabled", json!(["x"]))], &[]);
        assert_mentions(&msg, &["raft_enabled", "[\"x\"]"]);
    }

    #[test]
    fn alias_ports() {
        let c = load_env(&[
            ("RINGRIFT_SWIM_BIND_PORT", "7000"),
            ("RINGRIFT_RAFT_BIND_PORT", "7001"),
        ]);
        assert_eq!((c.membership.swim_port, c.raft.raft_port), (7000, 7001));

        let c = load(
            &[
                ("swim_bind_port", json!(7100)),
                ("raft_bind_port", json!("7101")),
            ],
            &[("RINGRIFT_SWIM_PORT", "1"), ("RINGRIFT_RAFT_PORT", "2")],
        )
        .expect("explicit aliases beat env");
        assert_eq!((c.membership.swim_port, c.raft.raft_port), (7100, 7101));

        // Same value under both names is fine; different values are ambiguous.
        let c = load_env(&[
            ("RINGRIFT_SWIM_PORT", "7200"),
            ("RINGRIFT_SWIM_BIND_PORT", "7200"),
        ]);
        assert_eq!(c.membership.swim_port, 7200);
        let msg = err_env(&[
            ("RINGRIFT_SWIM_PORT", "7200"),
            ("RINGRIFT_SWIM_BIND_PORT", "7300"),
        ]);
        assert_mentions(
            &msg,
            &[
                "RINGRIFT_SWIM_PORT",
                "7200",
                "RINGRIFT_SWIM_BIND_PORT",
                "7300",
            ],
        );
        let msg = err(
            &[("raft_port", json!(1)), ("raft_bind_port", json!(2))],
            &[],
        );
        assert_mentions(&msg, &["raft_port=1", "raft_bind_port=2"]);
        // A bad alias value is reported under the alias's name.
        let msg = err_env(&[("RINGRIFT_RAFT_BIND_PORT", "x")]);
        assert_mentions(&msg, &["RINGRIFT_RAFT_BIND_PORT", "\"x\""]);
    }

    #[test]
    fn explicit_beats_env_beats_preset() {
        let env = [
            ("RINGRIFT_SWIM_PORT", "8000"),
            ("RINGRIFT_NODE_ID", "from-env"),
            ("RINGRIFT_PRESET", "local"),
            ("RINGRIFT_CLUSTER_NAME", "envcluster"),
        ];
        let c = load(
            &[
                ("swim_port", json!(9000)),
                ("node_id", json!("from-explicit")),
                ("preset", json!("wan")),
                ("raft_port", Value::Null),
            ],
            &env,
        )
        .expect("valid");
        assert_eq!(c.membership.swim_port, 9000);
        assert_eq!(c.node_id, "from-explicit");
        assert_eq!(c.preset, Preset::Wan);
        assert_eq!(c.membership.timing, WAN_SWIM_TIMING);
        assert_eq!(c.cluster_name, "envcluster"); // env beats preset
        assert_eq!(c.raft.raft_port, 4321); // null = not given

        let c = load_env(&env);
        assert_eq!(c.preset, Preset::Local);
        assert_eq!(c.membership.timing, LOCAL_SWIM_TIMING);
        assert_eq!(c.node_id, "from-env");

        // Explicit gossip interval (ms) beats the env one (s).
        let c = load(
            &[("swim_gossip_interval_ms", json!(250))],
            &[("RINGRIFT_SWIM_GOSSIP_INTERVAL", "2")],
        )
        .expect("valid");
        assert_eq!(c.membership.timing.probe_period, Duration::from_millis(250));
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let c = load_env(&[
            ("RINGRIFT_SWIM_PORT", ""),
            ("RINGRIFT_NODE_ID", "  "),
            ("RINGRIFT_AUTH_TOKEN", ""),
            ("RINGRIFT_MEMBERSHIP_MODE", ""),
        ]);
        assert_eq!(c.membership.swim_port, 7947);
        assert_eq!(c.node_id, hostname());
        assert_eq!(c.security.auth_token, None);
        // Unknown RINGRIFT_* variables are none of our business.
        let c = load_env(&[("RINGRIFT_SOMETHING_ELSE", "whatever")]);
        assert_eq!(c, Config::lan());
    }

    #[test]
    fn unknown_explicit_key_rejected() {
        let msg = err(&[("swim_prot", json!(1))], &[]);
        assert_mentions(&msg, &["\"swim_prot\"", "allowed keys"]);
        for (key, ..) in KEYS {
            assert!(msg.contains(key), "{msg:?} should list {key}");
        }
        let msg = err(&[("RINGRIFT_SWIM_PORT", json!(1))], &[]);
        assert_mentions(&msg, &["RINGRIFT_SWIM_PORT", "did you mean \"swim_port\""]);
    }

    #[test]
    fn keys_table_is_consistent() {
        for (key, var, default, meaning) in KEYS {
            let stem = key.strip_suffix("_ms").unwrap_or(key);
            assert_eq!(format!("{ENV_PREFIX}{}", stem.to_ascii_uppercase()), *var);
            assert!(!default.is_empty() && !meaning.is_empty());
        }
        // Each key is accepted as explicit (null = not given).
        let all: Vec<(&str, Value)> = KEYS.iter().map(|(k, ..)| (*k, Value::Null)).collect();
        load(&all, &[]).expect("every listed key is accepted");
    }

    #[test]
    fn bad_ports() {
        for bad in ["abc", "70000", "-1", "1.5", "65536"] {
            let msg = err_env(&[("RINGRIFT_SWIM_PORT", bad)]);
            assert_mentions(
                &msg,
                &["RINGRIFT_SWIM_PORT", &format!("\"{bad}\""), "0-65535"],
            );
        }
        let msg = err_env(&[("RINGRIFT_SWIM_PORT", "abc")]);
        assert!(msg.starts_with("RINGRIFT_SWIM_PORT=\"abc\": expected an integer port 0-65535"));
        let msg = err(&[("swim_port", json!(70000))], &[]);
        assert_mentions(&msg, &["swim_port=70000", "0-65535"]);
        let msg = err(&[("raft_port", json!(-1))], &[]);
        assert_mentions(&msg, &["raft_port=-1", "0-65535"]);
        let msg = err(&[("p2p_port", json!("abc"))], &[]);
        assert_mentions(&msg, &["p2p_port=\"abc\"", "0-65535"]);
        let msg = err_env(&[("RINGRIFT_P2P_PORT", "http")]);
        assert_mentions(&msg, &["RINGRIFT_P2P_PORT", "\"http\""]);
        // 0 = any free port is accepted, for both.
        let c = load_env(&[("RINGRIFT_SWIM_PORT", "0"), ("RINGRIFT_RAFT_PORT", "0")]);
        assert_eq!((c.membership.swim_port, c.raft.raft_port), (0, 0));
    }

    #[test]
    fn unknown_mode() {
        let msg = err_env(&[("RINGRIFT_MEMBERSHIP_MODE", "gossip")]);
        assert_mentions(
            &msg,
            &[
                "RINGRIFT_MEMBERSHIP_MODE",
                "\"gossip\"",
                "http, swim, hybrid",
            ],
        );
        let msg = err_env(&[("RINGRIFT_CONSENSUS_MODE", "paxos")]);
        assert_mentions(
            &msg,
            &[
                "RINGRIFT_CONSENSUS_MODE",
                "\"paxos\"",
                "bully, raft, hybrid",
            ],
        );
        let msg = err_env(&[("RINGRIFT_PRESET", "moon")]);
        assert_mentions(&msg, &["RINGRIFT_PRESET", "\"moon\"", "lan, wan, local"]);
        let msg = err(&[("consensus_mode", json!(3))], &[]);
        assert_mentions(&msg, &["consensus_mode=3", "bully"]);
    }

    #[test]
    fn malformed_seeds() {
        for (bad, why) in [
            ("host", "missing ':port'"),
            ("host:", "port is empty"),
            (":80", "host is empty"),
            ("h:abc", "\"abc\" is not an integer"),
            ("h:0", "port 0"),
            ("h:70000", "not an integer 1-65535"),
            ("::1:80", "brackets"),
            ("[::1:80", "missing ']'"),
            ("[zz::1]:80", "not an IPv6 address"),
            ("a b:80", "neither an IP address nor a DNS name"),
            ("ok:1,bad", "missing ':port'"),
        ] {
            let msg = err_env(&[("RINGRIFT_SWIM_SEEDS", bad)]);
            assert_mentions(&msg, &["RINGRIFT_SWIM_SEEDS", &format!("{bad:?}"), why]);
        }
        let msg = err(&[("swim_seeds", json!(["a:1", "host:"]))], &[]);
        assert_mentions(&msg, &["swim_seeds=", "\"host:\"", "port is empty"]);
        let msg = err(&[("swim_seeds", json!(["a:1", 5]))], &[]);
        assert_mentions(&msg, &["swim_seeds=", "5", "not a string"]);
        let msg = err(&[("swim_seeds", json!(12))], &[]);
        assert_mentions(&msg, &["swim_seeds=12", "host:port"]);
    }

    #[test]
    fn seeds_forms() {
        let c = load(&[("swim_seeds", json!(["a:1", " b:2 ", "", "a:1"]))], &[]).expect("list");
        assert_eq!(c.membership.seeds, vec![hp("a", 1), hp("b", 2)]);
        let c = load(&[("swim_seeds", json!("a:1,b:2"))], &[]).expect("string");
        assert_eq!(c.membership.seeds, vec![hp("a", 1), hp("b", 2)]);
        let c = load_env(&[("RINGRIFT_SWIM_SEEDS", " , ")]);
        assert!(c.membership.seeds.is_empty());
        assert_eq!(
            "[::1]:7947".parse::<HostPort>().expect("v6"),
            hp("::1", 7947)
        );
        assert_eq!(hp("::1", 7947).to_string(), "[::1]:7947");
        assert_eq!(hp("node-1", 80).to_string(), "node-1:80");
        let e = "nope".parse::<HostPort>().expect_err("no port");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("\"nope\""));
    }

    #[test]
    fn malformed_voters() {
        for (bad, why) in [
            ("a", "has no '='"),
            ("=h:1", "node id is empty"),
            ("a=h", "missing ':port'"),
            ("a=h:0", "port 0"),
            ("a b=h:1", "contains ' '"),
            ("a=h:1,a=h:2", "appears twice"),
            ("a=h:1,b=h:1", "given for both"),
        ] {
            let msg = err_env(&[("RINGRIFT_RAFT_VOTERS", bad)]);
            assert_mentions(&msg, &["RINGRIFT_RAFT_VOTERS", &format!("{bad:?}"), why]);
        }
        let msg = err(&[("raft_voters", json!({"a": 5}))], &[]);
        assert_mentions(&msg, &["raft_voters=", "{\"a\":5}", "host:port"]);
        let msg = err(&[("raft_voters", json!(["a=h:1", "a=h:2"]))], &[]);
        assert_mentions(&msg, &["raft_voters=", "\"a\"", "appears twice"]);
    }

    #[test]
    fn voters_forms() {
        let want = vec![
            Voter {
                node_id: "a".into(),
                addr: hp("10.0.0.1", 4321),
            },
            Voter {
                node_id: "b".into(),
                addr: hp("::1", 4321),
            },
        ];
        for v in [
            json!("a=10.0.0.1:4321, b=[::1]:4321"),
            json!(["a=10.0.0.1:4321", "b=[::1]:4321"]),
            json!({"a": "10.0.0.1:4321", "b": "[::1]:4321"}),
        ] {
            let c = load(&[("raft_voters", v.clone())], &[]).expect("voters");
            assert_eq!(c.raft.voters, want, "{v}");
        }
    }

    #[test]
    fn mode_needing_a_disabled_protocol() {
        let msg = err_env(&[("RINGRIFT_MEMBERSHIP_MODE", "swim")]);
        assert_mentions(
            &msg,
            &[
                "RINGRIFT_MEMBERSHIP_MODE",
                "\"swim\"",
                "RINGRIFT_SWIM_ENABLED",
                "false",
            ],
        );
        let msg = err_env(&[
            ("RINGRIFT_CONSENSUS_MODE", "raft"),
            ("RINGRIFT_RAFT_ENABLED", "0"),
        ]);
        assert_mentions(
            &msg,
            &[
                "RINGRIFT_CONSENSUS_MODE",
                "\"raft\"",
                "RINGRIFT_RAFT_ENABLED",
                "false",
            ],
        );
        // Enabled: fine.
        let c = load_env(&[
            ("RINGRIFT_MEMBERSHIP_MODE", "swim"),
            ("RINGRIFT_SWIM_ENABLED", "1"),
            ("RINGRIFT_CONSENSUS_MODE", "raft"),
            ("RINGRIFT_RAFT_ENABLED", "1"),
        ]);
        assert_eq!(c.membership.mode, MembershipMode::Swim);
        assert_eq!(c.raft.mode, ConsensusMode::Raft);
    }

    #[test]
    fn hybrid_allowed_with_disabled() {
        let c = load_env(&[
            ("RINGRIFT_MEMBERSHIP_MODE", "hybrid"),
            ("RINGRIFT_SWIM_ENABLED", "false"),
            ("RINGRIFT_CONSENSUS_MODE", "hybrid"),
            ("RINGRIFT_RAFT_ENABLED", "false"),
        ]);
        assert_eq!(c.membership.mode, MembershipMode::Hybrid);
        assert!(!c.membership.swim_enabled);
        assert_eq!(c.raft.mode, ConsensusMode::Hybrid);
        assert!(!c.raft.enabled);
    }

    #[test]
    fn cluster_key_set_is_an_error() {
        let msg = err_env(&[("RINGRIFT_CLUSTER_KEY", "topsecret")]);
        assert_mentions(
            &msg,
            &["RINGRIFT_CLUSTER_KEY", "not implemented yet", "unset it"],
        );
        assert!(!msg.contains("topsecret"), "the secret must not be printed");
        let msg = err_env(&[("RINGRIFT_CLUSTER_KEY", " ")]);
        assert_mentions(&msg, &["RINGRIFT_CLUSTER_KEY"]);
        let msg = err(&[("cluster_key", json!("k"))], &[]);
        assert_mentions(&msg, &["cluster_key", "not implemented yet"]);
        // Empty is fine.
        load(
            &[("cluster_key", json!(""))],
            &[("RINGRIFT_CLUSTER_KEY", "")],
        )
        .expect("empty");
        // Explicit does not hide a set environment key when the environment is used.
        let msg = err(
            &[("cluster_key", json!(""))],
            &[("RINGRIFT_CLUSTER_KEY", "x")],
        );
        assert_mentions(&msg, &["RINGRIFT_CLUSTER_KEY"]);
    }

    #[test]
    fn raft_voters_empty_with_seeds() {
        let msg = err_env(&[
            ("RINGRIFT_RAFT_ENABLED", "true"),
            ("RINGRIFT_SWIM_SEEDS", "10.0.0.2:7947"),
            ("RINGRIFT_ADVERTISE_HOST", "10.0.0.1"),
        ]);
        assert!(msg.starts_with("RINGRIFT_RAFT_VOTERS is empty but RINGRIFT_SWIM_SEEDS is set"));
        assert_mentions(&msg, &["10.0.0.2:7947"]);
        // Raft disabled, or voters given: fine. Non-voter node: fine.
        load_env(&[
            ("RINGRIFT_SWIM_SEEDS", "10.0.0.2:7947"),
            ("RINGRIFT_ADVERTISE_HOST", "10.0.0.1"),
        ]);
        let c = load_env(&[
            ("RINGRIFT_RAFT_ENABLED", "true"),
            ("RINGRIFT_NODE_ID", "client"),
            ("RINGRIFT_SWIM_SEEDS", "10.0.0.2:7947"),
            ("RINGRIFT_RAFT_VOTERS", "n2=10.0.0.2:4321"),
            ("RINGRIFT_ADVERTISE_HOST", "10.0.0.1"),
        ]);
        assert!(c.raft.voters.iter().all(|v| v.node_id != c.node_id));
        // Raft alone without seeds or voters: a single-node cluster.
        load_env(&[("RINGRIFT_RAFT_ENABLED", "true")]);
    }

    #[test]
    fn port_conflict() {
        let msg = err_env(&[
            ("RINGRIFT_SWIM_PORT", "5000"),
            ("RINGRIFT_RAFT_PORT", "5000"),
        ]);
        assert_mentions(&msg, &["RINGRIFT_SWIM_PORT", "RINGRIFT_RAFT_PORT", "5000"]);
    }

    #[test]
    fn gossip_interval_scales_timing() {
        let c = load_env(&[("RINGRIFT_SWIM_GOSSIP_INTERVAL", "0.5")]);
        let t = &c.membership.timing;
        assert_eq!(t.probe_period, Duration::from_millis(500));
        assert_eq!(t.probe_rtt, Duration::from_millis(200));
        assert_eq!(t.suspicion_timeout, Duration::from_millis(1500));

        let c = load_env(&[
            ("RINGRIFT_SWIM_GOSSIP_INTERVAL", "0.5"),
            ("RINGRIFT_PRESET", "local"),
        ]);
        let t = &c.membership.timing;
        assert_eq!(t.probe_period, Duration::from_millis(500));
        assert_eq!(t.probe_rtt, Duration::from_millis(200)); // 80 ms * 2.5
        assert_eq!(t.suspicion_timeout, Duration::from_millis(1500)); // 600 ms * 2.5
        assert_eq!(t.gossip_interval, Duration::from_millis(250)); // 100 ms * 2.5
        assert_eq!(t.announce_interval, Duration::from_secs(2)); // untouched
        assert_eq!(t.gossip_fanout, 3);

        let c = load(&[("swim_gossip_interval_ms", json!(1000))], &[]).expect("ms");
        let t = &c.membership.timing;
        assert_eq!(t.probe_period, Duration::from_secs(1));
        assert_eq!(t.probe_rtt, Duration::from_millis(400));
        assert_eq!(t.suspicion_timeout, Duration::from_secs(3));
        assert_eq!(t.gossip_interval, Duration::from_millis(400));

        // Not compounding: scaling is relative to the preset.
        let mut c = Config::lan();
        c.set_swim_period(Duration::from_secs(1));
        c.set_swim_period(Duration::from_secs(1));
        assert_eq!(c.membership.timing.probe_rtt, Duration::from_millis(400));
        // Never panics, even on absurd input; validate rejects it.
        c.set_swim_period(Duration::MAX);
        assert!(c.validate().is_err());
        c.set_swim_period(Duration::ZERO);
        assert!(c.validate().is_err());

        for bad in ["0", "0.001", "61", "-1", "abc", "NaN", "inf"] {
            let msg = err_env(&[("RINGRIFT_SWIM_GOSSIP_INTERVAL", bad)]);
            assert_mentions(
                &msg,
                &[
                    "RINGRIFT_SWIM_GOSSIP_INTERVAL",
                    &format!("\"{bad}\""),
                    "seconds",
                ],
            );
        }
        let msg = err(&[("swim_gossip_interval_ms", json!(5))], &[]);
        assert_mentions(&msg, &["swim_gossip_interval_ms=5", "milliseconds", "10"]);
    }

    #[test]
    fn snapshot_interval() {
        let c = load_env(&[("RINGRIFT_RAFT_SNAPSHOT_INTERVAL", "1.5")]);
        assert_eq!(c.raft.snapshot_interval, Duration::from_millis(1500));
        let c = load(&[("raft_snapshot_interval_ms", json!("120000"))], &[]).expect("ms");
        assert_eq!(c.raft.snapshot_interval, Duration::from_secs(120));
        let msg = err_env(&[("RINGRIFT_RAFT_SNAPSHOT_INTERVAL", "0.5")]);
        assert_mentions(
            &msg,
            &["RINGRIFT_RAFT_SNAPSHOT_INTERVAL", "\"0.5\"", "seconds"],
        );
        let msg = err(&[("raft_snapshot_interval_ms", json!(100_000_000))], &[]);
        assert_mentions(&msg, &["raft_snapshot_interval_ms=100000000", "86400000"]);
    }

    #[test]
    fn names_and_paths() {
        for bad in ["a b", "a,b", "a=b", "tab\there"] {
            let msg = err_env(&[("RINGRIFT_NODE_ID", bad)]);
            assert_mentions(&msg, &["RINGRIFT_NODE_ID", &format!("{bad:?}")]);
        }
        let long = "x".repeat(129);
        let msg = err_env(&[("RINGRIFT_NODE_ID", &long)]);
        assert_mentions(&msg, &["RINGRIFT_NODE_ID", "129 bytes"]);
        load_env(&[("RINGRIFT_NODE_ID", &"x".repeat(128))]);
        let msg = err(&[("node_id", json!(7))], &[]);
        assert_mentions(&msg, &["node_id=7", "string"]);

        for bad in ["has space", "slash/name", &"c".repeat(65)] {
            let msg = err_env(&[("RINGRIFT_CLUSTER_NAME", bad)]);
            assert_mentions(&msg, &["RINGRIFT_CLUSTER_NAME", &format!("{bad:?}")]);
        }
        let msg = err(&[("data_dir", json!(""))], &[]);
        assert_mentions(&msg, &["data_dir=\"\"", "non-empty"]);
    }

    #[test]
    fn validate_catches_programmatic_changes() {
        let mut c = Config::lan();
        c.membership.timing.probe_rtt = Duration::from_millis(600);
        assert_mentions(
            &c.validate().unwrap_err().to_string(),
            &["probe_rtt", "600ms"],
        );

        let mut c = Config::lan();
        c.membership.timing.suspicion_timeout = Duration::from_millis(100);
        assert_mentions(
            &c.validate().unwrap_err().to_string(),
            &["suspicion_timeout"],
        );

        let mut c = Config::lan();
        c.membership.timing.gossip_fanout = 0;
        assert_mentions(&c.validate().unwrap_err().to_string(), &["gossip_fanout"]);

        let mut c = Config::lan();
        c.raft.election_timeout_min = Duration::from_millis(150);
        assert_mentions(
            &c.validate().unwrap_err().to_string(),
            &["election_timeout_min", "election_timeout_max", "150ms"],
        );

        let mut c = Config::lan();
        c.raft.heartbeat_interval = Duration::from_millis(75);
        assert_mentions(
            &c.validate().unwrap_err().to_string(),
            &["heartbeat_interval", "75ms"],
        );

        let mut c = Config::lan();
        c.network.advertise_host = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert_mentions(
            &c.validate().unwrap_err().to_string(),
            &["RINGRIFT_ADVERTISE_HOST", "0.0.0.0", "unspecified"],
        );

        let mut c = Config::lan();
        c.raft.voters = vec![
            Voter {
                node_id: "a".into(),
                addr: hp("h", 1),
            },
            Voter {
                node_id: "a".into(),
                addr: hp("h", 2),
            },
        ];
        assert_mentions(&c.validate().unwrap_err().to_string(), &["\"a\"", "twice"]);

        let mut c = Config::lan();
        c.membership.seeds = vec![hp("", 1)];
        assert_mentions(
            &c.validate().unwrap_err().to_string(),
            &["RINGRIFT_SWIM_SEEDS"],
        );

        let mut c = Config::lan();
        c.node_id = String::new();
        assert_mentions(
            &c.validate().unwrap_err().to_string(),
            &["RINGRIFT_NODE_ID"],
        );
    }

    #[test]
    fn advertise_host_defaults() {
        let c = load_env(&[]);
        assert_eq!(c.network.advertise_host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        // A specific bind address is what peers must use.
        let c = load_env(&[
            ("RINGRIFT_BIND_HOST", "127.0.0.1"),
            ("RINGRIFT_SWIM_SEEDS", "127.0.0.1:7000"),
        ]);
        assert_eq!(c.network.advertise_host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        // With seeds and a wildcard bind: some non-loopback IPv4 address, or loopback.
        let c = load_env(&[("RINGRIFT_SWIM_SEEDS", "10.1.1.1:7947")]);
        assert!(c.network.advertise_host.is_ipv4());
        assert!(!c.network.advertise_host.is_unspecified());

        for bad in ["0.0.0.0", "::", "224.0.0.1", "example.com"] {
            let msg = err_env(&[
                ("RINGRIFT_ADVERTISE_HOST", bad),
                ("RINGRIFT_BIND_HOST", "::"),
            ]);
            assert_mentions(&msg, &["RINGRIFT_ADVERTISE_HOST", &format!("\"{bad}\"")]);
        }
    }

    #[test]
    fn from_json_forms() {
        for none in ["", "  ", "null", "{}"] {
            let c = Config::from_json(none, false).expect("no keys");
            assert_eq!(c, Config::lan());
        }
        let c = Config::from_json(
            r#"{"swim_port": 7000, "node_id": "n1", "swim_seeds": ["a:1"], "raft_voters": null}"#,
            false,
        )
        .expect("object");
        assert_eq!(c.membership.swim_port, 7000);
        assert_eq!(c.node_id, "n1");
        assert_eq!(c.membership.seeds, vec![hp("a", 1)]);

        let e = Config::from_json("{not json", false).expect_err("bad json");
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert_mentions(e.message(), &["not valid JSON", "{not json"]);
        for non_object in ["[1,2]", "42", "\"swim_port\"", "true"] {
            let e = Config::from_json(non_object, false).expect_err("non-object");
            assert_mentions(e.message(), &["must be an object", non_object]);
        }
        let e = Config::from_json(r#"{"bogus": 1}"#, false).expect_err("unknown key");
        assert_mentions(e.message(), &["\"bogus\"", "allowed keys", "swim_port"]);
    }

    #[test]
    fn secrets_are_redacted() {
        let c = load_env(&[("RINGRIFT_AUTH_TOKEN", "hunter2")]);
        assert_eq!(c.security.auth_token.as_deref(), Some("hunter2"));
        let j = c.to_json();
        assert_eq!(j["security"]["auth_token"], json!("***"));
        assert!(!j.to_string().contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let ser = serde_json::to_string(&c.security).expect("serialize");
        assert_eq!(ser, r#"{"auth_token":"***"}"#);
        assert_eq!(
            Config::lan().to_json()["security"]["auth_token"],
            Value::Null
        );
        let c = load(
            &[("auth_token", json!(""))],
            &[("RINGRIFT_AUTH_TOKEN", "x")],
        )
        .expect("ok");
        assert_eq!(c.security.auth_token, None); // explicit empty beats env
        let msg = err(&[("auth_token", json!(12345))], &[]);
        assert_mentions(&msg, &["auth_token", "number"]);
        assert!(!msg.contains("12345"));
    }

    #[test]
    fn to_json_shape() {
        let c = load_env(&[
            ("RINGRIFT_PRESET", "local"),
            ("RINGRIFT_SWIM_GOSSIP_INTERVAL", "0.3"),
            ("RINGRIFT_RAFT_VOTERS", "a=h:1"),
        ]);
        let j = c.to_json();
        assert_eq!(j["preset"], json!("local"));
        assert_eq!(j["membership"]["mode"], json!("http"));
        assert_eq!(j["membership"]["timing"]["probe_period_ms"], json!(300));
        assert_eq!(j["membership"]["timing"]["probe_rtt_ms"], json!(120));
        assert_eq!(
            j["membership"]["timing"]["announce_down_interval_ms"],
            json!(5000)
        );
        assert_eq!(j["raft"]["snapshot_interval_ms"], json!(60000));
        assert_eq!(
            j["raft"]["voters"][0],
            json!({"node_id": "a", "addr": "h:1"})
        );
        assert_eq!(j["network"]["swim_bind_addr"], json!("0.0.0.0:7947"));
        assert_eq!(j["storage"]["data_dir"], json!("./data"));
        assert_eq!(millis(Duration::from_micros(1500)), json!(1.5));
    }

    #[test]
    fn hostname_is_usable() {
        let h = hostname();
        assert!(!h.is_empty());
        assert_eq!(h, h.trim());
    }
}
