//! How far this node's Raft log is on disk, and the two rules that let a leader write its own
//! log in parallel with replicating it (Raft thesis §10.2.1).
//!
//! openraft 0.9 waits for the leader's fsync of an entry before it sends the entry to the
//! followers, so a write costs two fsyncs in series (the leader's, then a follower's). The
//! log store therefore tells openraft that a *leader's own* append is persisted as soon as it
//! is queued for the writer (see [`super::log_store`]), and openraft sends it at once; the
//! leader's fsync then runs beside the followers'. openraft now counts the leader in the
//! majority before the leader's copy is on disk, so its commit index alone no longer proves
//! that a majority holds an entry durably. Two rules make up for it, both keyed on the index
//! this handle publishes (the last entry whose transaction committed):
//!
//! 1. **Apply waits for the local disk** ([`Durability::wait_for`], called by the state
//!    machine before it applies). On the leader an entry is applied, and its client answered,
//!    only once it is durable on the leader *and* on the follower whose acknowledgement
//!    committed it: a majority of three. (Followers acknowledge only after their fsync.)
//! 2. **Followers learn a commit only once the leader holds it durably**
//!    ([`Durability::clamp_commit`], applied to `leader_commit` of every AppendEntries the
//!    leader sends). Otherwise a follower could apply an entry that only it holds on disk; if
//!    the leader then died before its fsync and came back without the entry, the leader and
//!    the third node could elect a leader without it and the follower's applied state would
//!    be rolled back.
//!
//! So nothing is applied anywhere, answered, or persisted as committed (the log store stores a
//! committed id only within a transaction that also makes the log durable up to it) before a
//! majority holds it on disk, which is what Raft's commit
//! means; only openraft's in-memory commit index runs ahead on the leader. A failed write
//! poisons the handle: the waits return the error, and openraft stops on the apply error.

use std::sync::Arc;

use tokio::sync::watch;

use super::types::LogId;

/// What the log writer has made durable.
#[derive(Debug, Clone, Default)]
struct Durable {
    /// The last entry on disk (after a truncation: the last entry left).
    last: Option<LogId>,
    /// Set when a write failed: nothing after it becomes durable.
    failed: Option<String>,
}

/// A cloneable view of the log's durable end, fed by the log writer.
#[derive(Clone)]
pub struct Durability {
    tx: Arc<watch::Sender<Durable>>,
}

impl Durability {
    /// A handle whose durable end is `last` (the log as found on disk).
    pub fn new(last: Option<LogId>) -> Self {
        let (tx, _) = watch::channel(Durable { last, failed: None });
        Durability { tx: Arc::new(tx) }
    }

    /// The last durable entry.
    pub fn last(&self) -> Option<LogId> {
        self.tx.borrow().last
    }

    /// The error that stopped the writer, if any.
    pub fn failed(&self) -> Option<String> {
        self.tx.borrow().failed.clone()
    }

    /// Records the new durable end after a committed write (it moves back after a truncation).
    pub fn set_last(&self, last: Option<LogId>) {
        self.tx.send_if_modified(|d| {
            let changed = d.last != last;
            d.last = last;
            changed
        });
    }

    /// Records that the writer failed; every wait returns `msg` from now on.
    pub fn fail(&self, msg: &str) {
        self.tx.send_modify(|d| {
            if d.failed.is_none() {
                d.failed = Some(msg.to_string());
            }
        });
    }

    /// Waits until the entry at `index` is on disk (rule 1). Returns at once when it already
    /// is, which is the case on every follower and, nearly always, on the leader (a follower's
    /// acknowledgement takes longer than the leader's own fsync).
    pub async fn wait_for(&self, index: u64) -> Result<(), String> {
        let mut rx = self.tx.subscribe();
        let reached = rx
            .wait_for(|d| d.failed.is_some() || d.last.is_some_and(|l| l.index >= index))
            .await
            .map_err(|_| "the raft log writer is gone".to_string())?;
        match &reached.failed {
            Some(msg) => Err(format!(
                "the raft log cannot make entry {index} durable: {msg}"
            )),
            None => Ok(()),
        }
    }

    /// The commit index a leader may tell its followers (rule 2): `commit`, held back to the
    /// last entry the leader has on disk. Both are entries of the leader's own log, so the
    /// lower one is committed too.
    pub fn clamp_commit(&self, commit: Option<LogId>) -> Option<LogId> {
        let durable = self.last();
        match (commit, durable) {
            (Some(c), Some(d)) if d.index < c.index => Some(d),
            (Some(_), None) => None,
            (commit, _) => commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::raft::node_id::NodeId;
    use std::time::Duration;

    fn id(term: u64, index: u64) -> LogId {
        openraft::testing::log_id::<NodeId>(term, NodeId::from(1u64), index)
    }

    #[tokio::test]
    async fn wait_for_returns_once_the_index_is_durable() {
        let durability = Durability::new(Some(id(1, 3)));
        durability.wait_for(3).await.unwrap();
        let waiter = tokio::spawn({
            let durability = durability.clone();
            async move { durability.wait_for(5).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "index 5 is not durable yet");
        durability.set_last(Some(id(1, 4)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "index 4 is not enough");
        durability.set_last(Some(id(1, 6)));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the wait ends")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_failure_ends_every_wait_with_its_error() {
        let durability = Durability::new(None);
        let waiter = tokio::spawn({
            let durability = durability.clone();
            async move { durability.wait_for(1).await }
        });
        durability.fail("disk full");
        let err = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the wait ends")
            .unwrap()
            .unwrap_err();
        assert!(err.contains("disk full"), "{err}");
        // Later waits fail too, even for an index that was durable.
        durability.set_last(Some(id(1, 9)));
        assert!(durability.wait_for(1).await.is_err());
        assert_eq!(durability.failed().as_deref(), Some("disk full"));
    }

    #[test]
    fn the_commit_told_to_followers_never_passes_the_durable_end() {
        let durability = Durability::new(None);
        assert_eq!(durability.clamp_commit(None), None);
        assert_eq!(durability.clamp_commit(Some(id(2, 5))), None);
        durability.set_last(Some(id(2, 3)));
        assert_eq!(durability.clamp_commit(Some(id(2, 5))), Some(id(2, 3)));
        assert_eq!(durability.clamp_commit(Some(id(1, 2))), Some(id(1, 2)));
        durability.set_last(Some(id(2, 7)));
        assert_eq!(durability.clamp_commit(Some(id(2, 5))), Some(id(2, 5)));
        assert_eq!(durability.last(), Some(id(2, 7)));
    }
}
