//! In-process cluster on real loopback UDP sockets: coordinators converge, a stopped node is
//! seen as left, an unreachable seed shows up as a join error with the fallback flag, and bad
//! datagrams on the real socket are counted and change nothing.
//! Every wait is bounded; every node is stopped at the end.

use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use swimraft_core::config::Config;
use swimraft_core::coordinator::{Coordinator, Event};
use swimraft_core::membership::view::MemberState;

fn config(node_id: &str, seeds: &[String], extra: serde_json::Value) -> Config {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let mut keys: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    keys.insert("node_id".into(), json!(node_id));
    keys.insert("swim_enabled".into(), json!(true));
    keys.insert("membership_mode".into(), json!("swim"));
    keys.insert("preset".into(), json!("local"));
    keys.insert("bind_host".into(), json!("127.0.0.1"));
    keys.insert("advertise_host".into(), json!("127.0.0.1"));
    keys.insert("swim_port".into(), json!(0));
    keys.insert("raft_port".into(), json!(0));
    keys.insert("cluster_name".into(), json!("udp-test"));
    keys.insert("swim_seeds".into(), json!(seeds));
    keys.insert("data_dir".into(), json!(dir.to_string_lossy()));
    if let serde_json::Value::Object(map) = extra {
        keys.extend(map);
    }
    Config::from_sources(&keys, &|_| None).expect("valid config")
}

async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge_and_a_stopped_node_is_seen_as_left() {
    let first = Coordinator::new(config("u0", &[], json!({}))).expect("u0");
    assert!(first.start().await.expect("start u0"));
    let seed = first
        .status()
        .swim
        .advertised_addr
        .expect("bound")
        .to_string();
    let mut nodes = vec![first];
    for i in 1..5 {
        let c = Coordinator::new(config(
            &format!("u{i}"),
            std::slice::from_ref(&seed),
            json!({}),
        ))
        .expect("node");
        assert!(c.start().await.expect("start"));
        nodes.push(c);
    }
    let events = nodes[0].subscribe();
    let converged = wait_for(Duration::from_secs(20), || {
        nodes
            .iter()
            .all(|n| n.alive_peers().len() == 4 && n.status().swim.available)
    })
    .await;
    assert!(
        converged,
        "no convergence: {:?}",
        nodes.iter().map(|n| n.alive_peers()).collect::<Vec<_>>()
    );
    for n in &nodes {
        let st = n.status();
        assert_eq!(st.swim.alive_count, 4);
        assert!(
            !st.hybrid_status.swim_fallback_active,
            "{:?}",
            st.hybrid_status
        );
        assert!(
            !n.alive_peers().contains(&n.node_id().to_string()),
            "self is never a peer"
        );
        assert!(n.is_peer_alive("u0") || n.node_id() == "u0");
    }
    // Metadata travels by gossip: every member's raft/http ports become known.
    let meta_known = wait_for(Duration::from_secs(10), || {
        nodes
            .iter()
            .all(|n| n.members().iter().all(|m| m.meta.is_some()))
    })
    .await;
    assert!(meta_known, "metadata did not spread");

    let leaver = nodes.remove(3);
    leaver.stop().await;
    let left = wait_for(Duration::from_secs(15), || {
        nodes.iter().all(|n| {
            n.members()
                .iter()
                .any(|m| m.node_id == "u3" && m.state == MemberState::Left)
        })
    })
    .await;
    assert!(
        left,
        "u3's leave not seen: {:?}",
        nodes.iter().map(|n| n.members()).collect::<Vec<_>>()
    );
    assert!(nodes.iter().all(|n| !n.is_peer_alive("u3")));
    let saw_left = events
        .try_iter()
        .any(|event| matches!(event, Event::Member(e) if e.node_id == "u3" && e.state == MemberState::Left));
    assert!(saw_left, "no 'left' event delivered to the subscriber");
    // Calls after stop: start is a clear error, reads still answer.
    assert!(leaver.start().await.is_err());
    assert!(leaver.alive_peers().is_empty());
    for n in &nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_seed_is_a_join_error_and_hybrid_falls_back() {
    // A bound but silent socket: announces go nowhere.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let seed = silent.local_addr().expect("addr").to_string();
    let c = Coordinator::new(config(
        "lonely",
        &[seed],
        json!({"membership_mode": "hybrid"}),
    ))
    .expect("config");
    assert!(c.start().await.expect("hybrid start returns true"));
    let st = c.status();
    assert!(st.swim.started);
    assert!(!st.swim.available);
    assert!(st.hybrid_status.swim_fallback_active);
    assert!(st.hybrid_status.swim_fallback_reason.is_some());
    // Hybrid: heartbeat view answers while SWIM has nobody.
    c.record_heartbeat("legacy-peer");
    assert_eq!(c.alive_peers(), vec!["legacy-peer".to_string()]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swim_mode_with_a_taken_port_is_an_error_and_hybrid_falls_back() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let strict = Coordinator::new(config("strict", &[], json!({"swim_port": port}))).expect("cfg");
    let err = strict.start().await.expect_err("port in use");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    let lenient = Coordinator::new(config(
        "lenient",
        &[],
        json!({"swim_port": port, "membership_mode": "hybrid"}),
    ))
    .expect("cfg");
    assert!(lenient.start().await.expect("hybrid starts"));
    let st = lenient.status();
    assert!(!st.swim.started);
    assert!(st.hybrid_status.swim_fallback_active);
    assert!(st
        .hybrid_status
        .swim_fallback_reason
        .as_deref()
        .is_some_and(|r| r.contains("failed to start")));
    lenient.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_datagrams_on_the_real_socket_are_counted_and_change_nothing() {
    use swimraft_core::membership::swim::wire::WireHeader;

    let a = Coordinator::new(config("g0", &[], json!({}))).expect("g0");
    assert!(a.start().await.expect("start g0"));
    let addr = a.status().swim.advertised_addr.expect("bound");
    let b = Coordinator::new(config("g1", &[addr.to_string()], json!({}))).expect("g1");
    assert!(b.start().await.expect("start g1"));
    let both = || a.alive_peers() == ["g1"] && b.alive_peers() == ["g0"];
    assert!(
        wait_for(Duration::from_secs(20), both).await,
        "no convergence"
    );

    let before = a.status().swim.counters;
    let ours = WireHeader::new("udp-test");
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("sender");
    let foreign: [Vec<u8>; 3] = [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(), // another program
        WireHeader::new("another-cluster").wrap(b"\x01\x02"), // another cluster
        vec![0x53],                         // shorter than any header
    ];
    let malformed: [Vec<u8>; 2] = [
        ours.wrap(&[0xff; 40]),   // our header, a body foca cannot decode
        ours.wrap(&[0x00; 3000]), // our header, larger than any SWIM datagram
    ];
    for datagram in foreign.iter().chain(malformed.iter()) {
        sender.send_to(datagram, addr).expect("send");
    }
    let counted = wait_for(Duration::from_secs(5), || {
        let now = a.status().swim.counters;
        now.dropped_foreign == before.dropped_foreign + foreign.len() as u64
            && now.dropped_malformed == before.dropped_malformed + malformed.len() as u64
    })
    .await;
    assert!(
        counted,
        "counters {:?} -> {:?}",
        before,
        a.status().swim.counters
    );
    // The protocol keeps running: genuine datagrams arrive after the bad ones (which count as
    // received too) — a few probe rounds of them...
    let bad = (foreign.len() + malformed.len()) as u64;
    let more = wait_for(Duration::from_secs(5), || {
        a.status().swim.counters.packets_received >= before.packets_received + bad + 10
    })
    .await;
    assert!(more, "no SWIM traffic after the bad datagrams");
    // ...and nothing changed for the members: still both alive, nobody suspected.
    assert!(both(), "{:?} / {:?}", a.members(), b.members());
    assert_eq!(a.status().swim.suspected_count, 0);
    a.stop().await;
    b.stop().await;
}
