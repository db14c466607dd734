//! Custom broadcasts carried by foca's gossip: each node's metadata and its leave notice.
//!
//! foca sends a custom broadcast `max_transmissions` times and then forgets it, so the node
//! re-adds its metadata (with a higher version) whenever a member comes up; late joiners learn
//! it that way. A leave notice is gossiped before `leave_cluster`, so the Down that follows is
//! reported as `left`, not `failed`.

use crate::membership::view::NodeMeta;
use foca::{BroadcastHandler, Invalidates};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What one broadcast says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// Node `node_id` (identity generation `bump`) describes itself; newer `version` wins.
    Meta {
        node_id: String,
        bump: u64,
        version: u64,
        meta: NodeMeta,
    },
    /// Node `node_id` (generation `bump`) is leaving on purpose.
    Leave { node_id: String, bump: u64 },
}

impl Notice {
    fn key(&self) -> NoticeKey {
        match self {
            Notice::Meta {
                node_id,
                bump,
                version,
                ..
            } => NoticeKey {
                node_id: node_id.clone(),
                rank: (*bump, *version),
            },
            // A leave outranks every metadata version of the same identity.
            Notice::Leave { node_id, bump } => NoticeKey {
                node_id: node_id.clone(),
                rank: (*bump, u64::MAX),
            },
        }
    }

    /// postcard encoding, as carried in foca's broadcast section.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs of strings and integers into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }
}

/// Dissemination key: the newest `(bump, version)` per node id replaces older ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeKey {
    node_id: String,
    rank: (u64, u64),
}

impl Invalidates for NoticeKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node_id == other.node_id && self.rank >= other.rank
    }
}

/// What is known about one node from its broadcasts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeNotices {
    /// `(bump, version)` of the newest notice.
    pub rank: (u64, u64),
    /// Its newest metadata.
    pub meta: Option<NodeMeta>,
    /// Generation that announced it is leaving, if any.
    pub left_bump: Option<u64>,
}

/// Notices received so far, shared between foca's broadcast handler and the node that reads
/// them after each foca call (same task; the mutex is never contended).
pub type NoticeBook = Arc<Mutex<BTreeMap<String, NodeNotices>>>;

/// A decode failure of a custom broadcast.
#[derive(Debug, thiserror::Error)]
#[error("malformed custom broadcast: {0}")]
pub struct NoticeError(String);

/// foca's broadcast handler: keeps the newest notice per node and tells foca whether a
/// received notice is news worth passing on.
pub struct NoticeHandler {
    book: NoticeBook,
}

impl NoticeHandler {
    /// A handler writing into `book`.
    pub fn new(book: NoticeBook) -> Self {
        NoticeHandler { book }
    }
}

impl<T> BroadcastHandler<T> for NoticeHandler {
    type Key = NoticeKey;
    type Error = NoticeError;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&T>,
    ) -> Result<Option<NoticeKey>, NoticeError> {
        let notice: Notice = postcard::from_bytes(data).map_err(|e| NoticeError(e.to_string()))?;
        let key = notice.key();
        let mut book = self
            .book
            .lock()
            .map_err(|_| NoticeError("poisoned".into()))?;
        if book
            .get(&key.node_id)
            .is_some_and(|known| known.rank >= key.rank)
        {
            return Ok(None);
        }
        let entry = book.entry(key.node_id.clone()).or_default();
        entry.rank = key.rank;
        match notice {
            Notice::Meta { meta, .. } => entry.meta = Some(meta),
            Notice::Leave { bump, .. } => entry.left_bump = Some(bump),
        }
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_notice(bump: u64, version: u64, port: u16) -> Notice {
        Notice::Meta {
            node_id: "n1".into(),
            bump,
            version,
            meta: NodeMeta {
                raft_port: port,
                ..NodeMeta::default()
            },
        }
    }

    #[test]
    fn newer_notices_replace_older_and_repeats_are_not_news() {
        let book = NoticeBook::default();
        let mut h = NoticeHandler::new(book.clone());
        let recv = |h: &mut NoticeHandler, n: &Notice| {
            BroadcastHandler::<()>::receive_item(h, &n.encode(), None).unwrap()
        };
        assert!(recv(&mut h, &meta_notice(5, 1, 10)).is_some());
        assert!(recv(&mut h, &meta_notice(5, 1, 10)).is_none());
        assert!(recv(&mut h, &meta_notice(5, 0, 9)).is_none());
        assert!(recv(&mut h, &meta_notice(6, 0, 11)).is_some());
        assert_eq!(
            book.lock().unwrap()["n1"].meta.as_ref().unwrap().raft_port,
            11
        );
        let leave = Notice::Leave {
            node_id: "n1".into(),
            bump: 6,
        };
        assert!(recv(&mut h, &leave).is_some());
        assert_eq!(book.lock().unwrap()["n1"].left_bump, Some(6));
        assert!(recv(&mut h, &meta_notice(6, 99, 12)).is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut h = NoticeHandler::new(NoticeBook::default());
        assert!(BroadcastHandler::<()>::receive_item(&mut h, &[0xff, 0xff, 0xff], None).is_err());
    }

    #[test]
    fn keys_invalidate_only_same_node_older_rank() {
        let a = meta_notice(5, 2, 1).key();
        let b = meta_notice(5, 1, 1).key();
        assert!(a.invalidates(&b));
        assert!(!b.invalidates(&a));
    }
}
