//! [`Proposer`]: the leader's write batcher. Every write this node proposes (its own callers',
//! those forwarded by followers and the leader's sweeps) goes through one queue; a task drains
//! whatever is queued into one [`Proposal`] and hands it to openraft as one log entry.
//!
//! Why: every log entry costs a commit round (the followers' fsync and a round trip, the
//! leader's own fsync beside them, see [`super::durability`]), so one entry per write caps a
//! node at one write per round whatever the concurrency. With a batch per entry the round is
//! paid once per batch. Batches form by themselves: while one proposal is in openraft's hands,
//! new writes wait in the queue and leave together as the next one, so a lone write never
//! waits for a timer and many concurrent writes share one entry. (Two proposals in flight
//! measured slower on 3 nodes, both before and after the leader's fsync moved beside the
//! replication: the second slot mostly carried a few writes, each costing a full round.)
//!
//! Results come back in the proposal's order (one [`CommandResult`] per write), and every
//! caller gets its own; an openraft error (not leader, shutting down) is given to every write
//! of the proposal, which was then not applied.

use super::rpc::ForwardError;
use super::server::{forward_error, now_us};
use super::types::{Proposal, Raft};
use crate::state::{CommandResult, Envelope};
use openraft::error::{ClientWriteError, RaftError};
use std::io::Write;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most writes in one proposal.
pub const MAX_WRITES: usize = 512;

/// A proposal stops growing past this many bytes of JSON (one larger write still goes alone),
/// so an AppendEntries of `max_payload_entries` proposals stays far below the frame limit.
pub const MAX_BYTES: usize = 256 * 1024;

/// The largest single write (its JSON), refused with `InvalidArgument` above this: every
/// entry must fit, with many others, in one replication frame.
pub const MAX_WRITE_BYTES: usize = 1024 * 1024;

/// The outcome of one write: its result, or why it was not applied.
pub type Outcome = Result<CommandResult, ForwardError>;

struct Pending {
    env: Envelope,
    bytes: usize,
    reply: oneshot::Sender<Outcome>,
}

/// A handle to the batching task of one Raft node. Cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    /// Starts the batching task for `raft`. It ends when every handle is dropped.
    pub fn start(raft: Raft) -> (Proposer, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(raft, rx));
        (Proposer { tx }, task)
    }

    /// Proposes `env` (the leader stamps `now_us` when the batch leaves) and waits for its
    /// entry to be applied.
    pub async fn propose(&self, env: Envelope) -> Outcome {
        match self.enqueue(env) {
            Ok(answer) => settle(answer).await,
            Err(refused) => Err(refused),
        }
    }

    /// Proposes every write of `envs` (queued together, so they usually share a proposal)
    /// and waits for all of them: one outcome per write, in order.
    pub async fn propose_all(&self, envs: Vec<Envelope>) -> Vec<Outcome> {
        let queued: Vec<_> = envs.into_iter().map(|env| self.enqueue(env)).collect();
        let mut outcomes = Vec::with_capacity(queued.len());
        for q in queued {
            outcomes.push(match q {
                Ok(answer) => settle(answer).await,
                Err(refused) => Err(refused),
            });
        }
        outcomes
    }

    fn enqueue(&self, env: Envelope) -> Result<oneshot::Receiver<Outcome>, ForwardError> {
        let (reply, answer) = oneshot::channel();
        let bytes = checked_size(&env).map_err(ForwardError::Invalid)?;
        self.tx
            .send(Pending { env, bytes, reply })
            .map_err(|_| ForwardError::Unavailable("the Raft node is stopping".into()))?;
        Ok(answer)
    }
}

async fn settle(answer: oneshot::Receiver<Outcome>) -> Outcome {
    answer
        .await
        .unwrap_or_else(|_| Err(ForwardError::Unavailable("the Raft node stopped".into())))
}

/// The encoded size of `env`, or why it is refused: larger than [`MAX_WRITE_BYTES`]. The
/// proposer checks it (and needs the size for its batches), and so does a node before it
/// forwards a write to the leader, so an oversized write is refused wherever it enters.
pub(crate) fn checked_size(env: &Envelope) -> Result<usize, String> {
    let bytes = encoded_len(env);
    if bytes > MAX_WRITE_BYTES {
        return Err(format!(
            "a write of {bytes} bytes exceeds the {MAX_WRITE_BYTES}-byte limit of one write"
        ));
    }
    Ok(bytes)
}

/// Bytes of `env` as JSON, counted without building the text.
fn encoded_len(env: &Envelope) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, env);
    count.0
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut carried: Option<Pending> = None;
    let mut busy = false;
    loop {
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => {
                    if busy {
                        // As in the forwarder: let the writes started in the same instant as
                        // this one queue before the proposal leaves. Only under concurrent
                        // load (the last proposal carried several writes): a lone write would
                        // pay the yield and gain nothing (sequential writes measured ~5 %
                        // slower with an unconditional yield).
                        tokio::task::yield_now().await;
                    }
                    p
                }
                None => return,
            },
        };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < MAX_WRITES && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok(p) if bytes + p.bytes > MAX_BYTES => {
                    carried = Some(p);
                    break;
                }
                Ok(p) => {
                    bytes += p.bytes;
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        busy = batch.len() > 1;
        // One proposal at a time, awaited here: writes arriving meanwhile form the next batch.
        propose_batch(&raft, batch).await;
    }
}

async fn propose_batch(raft: &Raft, batch: Vec<Pending>) {
    let now = now_us();
    let mut replies = Vec::with_capacity(batch.len());
    let mut writes = Vec::with_capacity(batch.len());
    for mut p in batch {
        p.env.now_us = now;
        writes.push(p.env);
        replies.push(p.reply);
    }
    let count = writes.len();
    let started = std::time::Instant::now();
    let answer = raft.client_write(Proposal { writes }).await;
    tracing::trace!(writes = count, elapsed = ?started.elapsed(), "proposal answered");
    match answer {
        Ok(resp) => {
            let mut results = resp.data.into_iter();
            for reply in replies {
                let outcome = match results.next() {
                    Some(result) => Ok(result),
                    None => Err(ForwardError::Unavailable(
                        "the state machine returned fewer results than writes".into(),
                    )),
                };
                let _ = reply.send(outcome);
            }
        }
        Err(err) => {
            let answer = match &err {
                RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                    ForwardError::Invalid(e.to_string())
                }
                _ => forward_error(&err),
            };
            for reply in replies {
                let _ = reply.send(Err(answer.clone()));
            }
        }
    }
}
