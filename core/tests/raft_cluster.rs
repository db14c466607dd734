//! In-process 3-node Raft clusters on loopback TCP with SQLite stores in temp dirs: election,
//! replication, writes and reads through every node (followers forward), leader failover,
//! a wiped follower restored by snapshot, and voters added and removed at run time.
//! Every wait is bounded; every node is stopped at the end.

use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swimraft_core::consensus::raft::node::{RaftNode, RaftNodeConfig};
use swimraft_core::consensus::read::ReadQuery;
use swimraft_core::state::{Command, CommandResult, NewWorkItem};
use swimraft_core::ErrorKind;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const T: Duration = Duration::from_secs(5);

/// A port for a test node's Raft listener, bindable on 127.0.0.1 right now.
///
/// Ports come from below Linux's ephemeral range (32768–60999): a port from `bind(0)`, given
/// back before the node binds it, could meanwhile become the source port of another test's
/// outgoing connection or be handed to a test running in parallel (seen in CI: one cluster's
/// node failed with "address in use" and the others talked to a node of the other cluster).
/// A process-wide counter never hands out the same port twice; the start is spread by the pid
/// so that two test processes rarely walk the same ports.
fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (base + n) % SPAN) as u16;
        if std::net::TcpListener::bind((LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

struct Spec {
    /// Each test's cluster has a name of its own: a frame from another test's cluster (whose
    /// nodes have the same ids) is refused by the transport instead of reaching openraft.
    cluster: &'static str,
    name: String,
    port: u16,
    dir: PathBuf,
}

fn config(me: &Spec, voters: &[(String, String)]) -> RaftNodeConfig {
    RaftNodeConfig {
        node_id: me.name.clone(),
        cluster_name: me.cluster.into(),
        bind: SocketAddr::new(LOCALHOST, me.port),
        advertise_host: LOCALHOST,
        data_dir: me.dir.clone(),
        voters: voters.to_vec(),
        heartbeat_interval: Duration::from_millis(30),
        election_timeout_min: Duration::from_millis(150),
        election_timeout_max: Duration::from_millis(300),
        snapshot_interval: Duration::from_secs(3600),
        join_existing: false,
    }
}

fn specs(
    cluster: &'static str,
    n: usize,
    root: &std::path::Path,
) -> (Vec<Spec>, Vec<(String, String)>) {
    let specs: Vec<Spec> = (0..n)
        .map(|i| Spec {
            cluster,
            name: format!("r{i}"),
            port: free_port(),
            dir: root.join(format!("r{i}")),
        })
        .collect();
    let voters = specs
        .iter()
        .map(|s| (s.name.clone(), format!("127.0.0.1:{}", s.port)))
        .collect();
    (specs, voters)
}

fn quiet() -> Arc<dyn Fn(String) + Send + Sync> {
    Arc::new(|_| {})
}

async fn start_all(specs: &[Spec], voters: &[(String, String)]) -> Vec<RaftNode> {
    // All voters start at once: initialization must be idempotent.
    let starts = specs
        .iter()
        .map(|s| RaftNode::start(config(s, voters), quiet()));
    let mut nodes = Vec::new();
    for node in futures_join(starts).await {
        nodes.push(node.expect("start"));
    }
    nodes
}

async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let pinned: Vec<_> = futs.map(Box::pin).collect();
    for f in pinned {
        out.push(f.await);
    }
    out
}

async fn wait_leader(nodes: &[&RaftNode], limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let leaders: Vec<String> = nodes
            .iter()
            .filter(|n| n.status().is_leader)
            .map(|n| n.node_id().to_string())
            .collect();
        if leaders.len() == 1 {
            let id = leaders[0].clone();
            if nodes.iter().all(|n| n.status().leader_id == id) {
                return id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no single leader within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn add(id: &str) -> Command {
    Command::WorkAdd {
        item: NewWorkItem::new(id, "selfplay"),
        force: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_replicate_forward_and_fail_over() {
    let root = tempfile::tempdir().expect("tmp");
    let (specs, voters) = specs("raft-failover-test", 3, root.path());
    let nodes = start_all(&specs, &voters).await;
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    let leader = wait_leader(&refs, Duration::from_secs(10)).await;

    // Writes through every node: followers forward to the leader.
    for (i, node) in nodes.iter().enumerate() {
        let r = node
            .write(add(&format!("w{i}")), T, None)
            .await
            .expect("write");
        assert_eq!(r, CommandResult::WorkId(format!("w{i}")));
    }
    // A duplicate id is a rejection of its kind, not a transport error.
    let dup = nodes[1]
        .write(add("w0"), T, None)
        .await
        .expect_err("duplicate");
    assert_eq!(dup.kind(), ErrorKind::InvalidArgument);
    // Linearizable reads from every node see every acknowledged write.
    for node in &nodes {
        let stats = node
            .read(ReadQuery::WorkStats, false, T)
            .await
            .expect("read");
        assert_eq!(stats["pending"], json!(3), "{stats}");
    }
    // A request id makes a retried write idempotent.
    let once = nodes[2]
        .write(add("w-idem"), T, Some("req-1"))
        .await
        .expect("first");
    let again = nodes[0]
        .write(add("w-idem"), T, Some("req-1"))
        .await
        .expect("retry");
    assert_eq!(once, again);

    // Kill the leader (stop it); a new leader takes over and writes go on.
    let old = nodes
        .iter()
        .position(|n| n.node_id().to_string() == leader)
        .expect("leader");
    nodes[old].stop().await;
    let rest: Vec<&RaftNode> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != old)
        .map(|(_, n)| n)
        .collect();
    let new_leader = wait_leader(&rest, Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    for node in &rest {
        node.write(add(&format!("after-{}", node.node_id())), T, None)
            .await
            .expect("write after failover");
    }
    let stats = rest[0]
        .read(ReadQuery::WorkStats, false, T)
        .await
        .expect("read");
    assert_eq!(stats["pending"], json!(6), "{stats}");
    // A stopped node refuses clearly.
    let err = nodes[old]
        .write(add("late"), T, None)
        .await
        .expect_err("stopped");
    assert_eq!(err.kind(), ErrorKind::Shutdown);
    for n in &nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_follower_is_restored_by_snapshot_and_voters_change() {
    let root = tempfile::tempdir().expect("tmp");
    let (specs, voters) = specs("raft-snapshot-test", 3, root.path());
    let mut nodes = start_all(&specs, &voters).await;
    let refs: Vec<&RaftNode> = nodes.iter().collect();
    let leader = wait_leader(&refs, Duration::from_secs(10)).await;
    for i in 0..50 {
        nodes[0]
            .write(add(&format!("s{i}")), T, None)
            .await
            .expect("write");
    }
    nodes[0]
        .write(
            Command::KvSet {
                key: "k".into(),
                value: json!({"v": 1}),
            },
            T,
            None,
        )
        .await
        .expect("kv");
    let follower = nodes
        .iter()
        .position(|n| n.node_id().to_string() != leader)
        .expect("a follower");
    nodes[follower].stop().await;
    // Snapshot on the leader and purge its log, so the wiped follower needs the snapshot.
    let leader_idx = nodes
        .iter()
        .position(|n| n.node_id().to_string() == leader)
        .expect("leader");
    nodes[leader_idx]
        .snapshot_and_purge()
        .await
        .expect("snapshot");
    std::fs::remove_dir_all(&specs[follower].dir).expect("wipe");
    nodes[follower] = RaftNode::start(config(&specs[follower], &voters), quiet())
        .await
        .expect("restart");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = nodes[follower]
            .read(ReadQuery::KvGet { key: "k".into() }, true, T)
            .await
            .expect("read");
        if v == json!({"v": 1}) {
            break;
        }
        assert!(Instant::now() < deadline, "wiped follower did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = nodes[follower]
        .read(ReadQuery::WorkStats, true, T)
        .await
        .expect("stats");
    assert_eq!(stats["pending"], json!(50));

    // Add a fourth voter at run time (it starts as an empty replica waiting to be added),
    // then remove it.
    let extra = Spec {
        cluster: specs[0].cluster,
        name: "r3".into(),
        port: free_port(),
        dir: root.path().join("r3"),
    };
    let mut joining = config(&extra, &voters);
    joining.join_existing = true;
    let joiner = RaftNode::start(joining, quiet()).await.expect("joiner");
    nodes[0]
        .add_voter(
            "r3",
            &format!("127.0.0.1:{}", extra.port),
            Duration::from_secs(15),
        )
        .await
        .expect("add voter");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nodes[0].status().voters.contains(&"r3".to_string()) {
        assert!(Instant::now() < deadline, "r3 not a voter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = joiner
        .read(ReadQuery::KvGet { key: "k".into() }, false, T)
        .await
        .expect("read on r3");
    assert_eq!(got, json!({"v": 1}));
    nodes[1]
        .remove_voter("r3", Duration::from_secs(10))
        .await
        .expect("remove voter");
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes[0].status().voters.contains(&"r3".to_string()) {
        assert!(Instant::now() < deadline, "r3 still a voter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    joiner.stop().await;
    for n in &nodes {
        n.stop().await;
    }
}
