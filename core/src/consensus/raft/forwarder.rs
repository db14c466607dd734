//! [`Forwarder`]: how a node that does not lead sends its callers' writes to the leader, many
//! per request. Every write forwarded by this node goes through one queue; a task drains
//! whatever is queued, groups it by destination and sends each group as one
//! [`Request::ClientWrites`], without waiting for earlier groups to be answered.
//!
//! Why: the leader proposes a forwarded write together with the others it has queued anyway
//! ([`super::proposer`]), but one request per write costs a frame, a decode, a task and an
//! answer on both nodes for each write. With 64 concurrent clients on a follower several
//! writes are queued whenever the task runs, and they travel as one. A lone write is sent at
//! once: no timer, only a hop through the task.
//!
//! Each caller keeps its own deadline: a group's request may wait as long as its latest
//! member, but a member whose deadline passes first is answered `Timeout` (outcome unknown:
//! the group may still be applied) at its own deadline.

use super::network::{CallError, Peers};
use super::proposer::{Outcome, MAX_BYTES, MAX_WRITES};
use super::rpc::{ForwardError, Request, Response};
use crate::state::Envelope;
use crate::transport::tcp::RpcError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What a forwarded write's caller gets: the leader's outcome, or why the request failed.
pub type Forwarded = Result<Outcome, CallError>;

struct Queued {
    addr: String,
    env: Envelope,
    bytes: usize,
    deadline: Instant,
    reply: oneshot::Sender<Forwarded>,
}

/// A handle to the forwarding task of one node. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Queued>,
}

impl Forwarder {
    /// Starts the forwarding task over `peers`. It ends when every handle is dropped.
    pub fn start(peers: Peers) -> (Forwarder, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(peers, rx));
        (Forwarder { tx }, task)
    }

    /// Sends `env` (`bytes` of JSON, already checked against the size limit) to the node at
    /// `addr` and waits for its outcome until `deadline`.
    pub async fn forward(
        &self,
        addr: &str,
        env: Envelope,
        bytes: usize,
        deadline: Instant,
    ) -> Forwarded {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            addr: addr.to_string(),
            env,
            bytes,
            deadline,
            reply,
        };
        if self.tx.send(queued).is_err() {
            return Ok(Err(ForwardError::Unavailable(
                "the Raft node is stopping".into(),
            )));
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(forwarded)) => forwarded,
            Ok(Err(_)) => Ok(Err(ForwardError::Unavailable(
                "the Raft node stopped".into(),
            ))),
            Err(_) => Err(CallError::Rpc(RpcError::Timeout(addr.to_string()))),
        }
    }
}

async fn run(peers: Peers, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    while let Some(first) = rx.recv().await {
        // The write that woke this task usually has siblings started in the same instant
        // (one event-loop iteration's operations start together) that are ready to run but
        // not yet queued: the runtime runs a task it just woke before them. Yielding once
        // lets them queue first, so they leave together. Only while earlier requests are in
        // flight (concurrent load): a lone write would pay the yield and gain nothing.
        if in_flight.load(Ordering::Relaxed) > 0 {
            tokio::task::yield_now().await;
        }
        // Per destination, in arrival order. Nearly always one (the leader): a linear search
        // of a short list, with no key copied per write.
        let mut by_addr: Vec<Vec<Queued>> = vec![vec![first]];
        let mut taken = 1;
        // Bounded so a flood of writes cannot keep the task from sending.
        while taken < 4 * MAX_WRITES {
            let Ok(next) = rx.try_recv() else { break };
            match by_addr.iter_mut().find(|q| q[0].addr == next.addr) {
                Some(queued) => queued.push(next),
                None => by_addr.push(vec![next]),
            }
            taken += 1;
        }
        for queued in by_addr {
            let addr = queued[0].addr.clone();
            for group in split(queued) {
                in_flight.fetch_add(1, Ordering::Relaxed);
                let in_flight = in_flight.clone();
                let peers = peers.clone();
                let addr = addr.clone();
                tokio::spawn(async move {
                    send(peers, addr, group).await;
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                });
            }
        }
    }
}

/// Cuts writes to one destination into groups of at most [`MAX_WRITES`] writes and about
/// [`MAX_BYTES`] of JSON (a larger write goes alone), like the leader's proposals, so a
/// group's frame stays far below the frame limit.
fn split(queued: Vec<Queued>) -> Vec<Vec<Queued>> {
    let mut groups = Vec::new();
    let mut group: Vec<Queued> = Vec::new();
    let mut bytes = 0;
    for q in queued {
        if !group.is_empty() && (group.len() == MAX_WRITES || bytes + q.bytes > MAX_BYTES) {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += q.bytes;
        group.push(q);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

async fn send(peers: Peers, addr: String, group: Vec<Queued>) {
    let deadline = group
        .iter()
        .map(|q| q.deadline)
        .max()
        .unwrap_or_else(Instant::now);
    let mut envs = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    for q in group {
        envs.push(q.env);
        replies.push(q.reply);
    }
    let count = envs.len();
    let timeout = deadline.saturating_duration_since(Instant::now());
    let answer = peers
        .call(&addr, &Request::ClientWrites(envs), timeout)
        .await;
    match answer {
        Ok(Response::ClientWrites(outcomes)) if outcomes.len() == count => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Ok(other) => {
            let why = ForwardError::Unavailable(format!(
                "unexpected answer to {count} forwarded writes: {other:?}"
            ));
            for reply in replies {
                let _ = reply.send(Ok(Err(why.clone())));
            }
        }
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::raft::rpc::{decode, encode};
    use crate::state::{Command, CommandResult};
    use crate::transport::frame::FrameCodec;
    use crate::transport::tcp::{serve, Handler, ServerStats};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::net::TcpListener;
    use tokio::sync::{watch, Notify};

    fn write(seq: u64) -> Envelope {
        let mut env = Envelope::new(0, Command::KvDelete { key: "k".into() });
        env.client_id = "c".into();
        env.seq = seq;
        env
    }

    /// A leader stand-in: reports the size of each `ClientWrites` it gets, waits for `release`
    /// (when given), then answers each write with its own seq as a work id.
    async fn fake_leader(
        release: Option<Arc<Notify>>,
    ) -> (String, mpsc::UnboundedReceiver<usize>, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let handler: Handler = Arc::new(move |payload: Vec<u8>| {
            let seen_tx = seen_tx.clone();
            let release = release.clone();
            Box::pin(async move {
                let Ok(Request::ClientWrites(envs)) = decode::<Request>(&payload) else {
                    return encode(&Response::Malformed("not ClientWrites".into()));
                };
                let _ = seen_tx.send(envs.len());
                if let Some(release) = release {
                    release.notified().await;
                }
                let outcomes: Vec<Outcome> = envs
                    .iter()
                    .map(|e| Ok(CommandResult::WorkId(e.seq.to_string())))
                    .collect();
                encode(&Response::ClientWrites(outcomes))
            })
        });
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(serve(
            listener,
            FrameCodec::new("t"),
            handler,
            Arc::new(ServerStats::default()),
            stop_rx,
        ));
        (addr, seen, stop)
    }

    fn soon(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    /// One task per seq, each forwarding its write to `addr` with a 5 s deadline.
    fn spawn_callers(
        forwarder: &Forwarder,
        addr: &str,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> Vec<JoinHandle<Forwarded>> {
        seqs.map(|seq| {
            let (forwarder, addr) = (forwarder.clone(), addr.to_string());
            tokio::spawn(async move { forwarder.forward(&addr, write(seq), 64, soon(5)).await })
        })
        .collect()
    }

    // The single-threaded runtime runs the 20 callers before the forwarding task, so all 20
    // are queued when it drains: deterministic grouping.
    #[tokio::test]
    async fn writes_queued_together_travel_as_one_request_and_each_gets_its_own_outcome() {
        let (addr, mut seen, stop) = fake_leader(None).await;
        let (forwarder, task) = Forwarder::start(Peers::new("t"));
        let callers = spawn_callers(&forwarder, &addr, 1..=20);
        for (seq, caller) in (1..=20u64).zip(callers) {
            let outcome = caller.await.unwrap().expect("call").expect("outcome");
            assert_eq!(outcome, CommandResult::WorkId(seq.to_string()));
        }
        assert_eq!(seen.recv().await, Some(20), "one request of 20 writes");
        assert!(seen.try_recv().is_err(), "and no other");

        // A lone write later leaves at once, alone.
        let outcome = forwarder.forward(&addr, write(21), 64, soon(5)).await;
        assert_eq!(outcome.unwrap(), Ok(CommandResult::WorkId("21".into())));
        assert_eq!(seen.recv().await, Some(1));
        drop(forwarder);
        task.await.unwrap();
        let _ = stop.send(true);
    }

    // A leader change while writes are queued: each destination gets one request of its own.
    #[tokio::test]
    async fn writes_for_two_destinations_leave_as_one_request_each() {
        let (old_leader, mut seen_old, stop_old) = fake_leader(None).await;
        let (new_leader, mut seen_new, stop_new) = fake_leader(None).await;
        let (forwarder, _task) = Forwarder::start(Peers::new("t"));
        let mut callers = spawn_callers(&forwarder, &old_leader, 1..=3);
        callers.extend(spawn_callers(&forwarder, &new_leader, 4..=8));
        callers.extend(spawn_callers(&forwarder, &old_leader, 9..=9));
        for (seq, caller) in (1..=9u64).zip(callers) {
            let outcome = caller.await.unwrap().expect("call").expect("outcome");
            assert_eq!(outcome, CommandResult::WorkId(seq.to_string()));
        }
        assert_eq!(seen_old.recv().await, Some(4));
        assert_eq!(seen_new.recv().await, Some(5));
        assert!(seen_old.try_recv().is_err() && seen_new.try_recv().is_err());
        let _ = (stop_old.send(true), stop_new.send(true));
    }

    #[tokio::test]
    async fn a_member_whose_deadline_passes_first_times_out_alone() {
        let release = Arc::new(Notify::new());
        let (addr, mut seen, stop) = fake_leader(Some(release.clone())).await;
        let (forwarder, _task) = Forwarder::start(Peers::new("t"));
        let short = {
            let (forwarder, addr) = (forwarder.clone(), addr.clone());
            let deadline = Instant::now() + Duration::from_millis(100);
            tokio::spawn(async move { forwarder.forward(&addr, write(1), 64, deadline).await })
        };
        let long = {
            let (forwarder, addr) = (forwarder.clone(), addr.clone());
            tokio::spawn(async move { forwarder.forward(&addr, write(2), 64, soon(10)).await })
        };
        // The leader holds the request of both until the short caller has given up.
        assert_eq!(seen.recv().await, Some(2));
        let short = short.await.unwrap();
        assert!(
            matches!(short, Err(CallError::Rpc(RpcError::Timeout(ref a))) if *a == addr),
            "{short:?}"
        );
        release.notify_one();
        let long = long.await.unwrap();
        assert_eq!(long.unwrap(), Ok(CommandResult::WorkId("2".into())));
        let _ = stop.send(true);
    }

    #[tokio::test]
    async fn every_member_gets_the_transport_error() {
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let (forwarder, _task) = Forwarder::start(Peers::new("t"));
        let callers = spawn_callers(&forwarder, &addr, 1..=3);
        for caller in callers {
            let got = caller.await.unwrap();
            assert!(
                matches!(got, Err(CallError::Rpc(RpcError::Unreachable(_)))),
                "{got:?}"
            );
        }
    }

    #[test]
    fn groups_stay_within_the_write_and_byte_limits() {
        let queued = |bytes: usize| {
            let (reply, _) = oneshot::channel();
            Queued {
                addr: "a".into(),
                env: write(0),
                bytes,
                deadline: Instant::now(),
                reply,
            }
        };
        let sizes = |groups: Vec<Vec<Queued>>| -> Vec<Vec<usize>> {
            groups
                .into_iter()
                .map(|g| g.iter().map(|q| q.bytes).collect())
                .collect()
        };
        let third = MAX_BYTES / 3;
        let big = MAX_BYTES + 1;
        let input = vec![third, third, third, third, big, 10];
        assert_eq!(
            sizes(split(input.into_iter().map(queued).collect())),
            vec![vec![third, third, third], vec![third], vec![big], vec![10]]
        );
        let many = split((0..MAX_WRITES + 1).map(|_| queued(1)).collect());
        assert_eq!(
            many.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_WRITES, 1]
        );
    }
}
