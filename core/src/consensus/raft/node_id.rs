//! The Raft node id: a node's *name* (`gpu-h100-1`), never a hash of it.
//!
//! openraft 0.9 requires `NodeId: Copy`, which a `String` cannot be. [`NodeId`] therefore holds
//! a `&'static str` from a process-wide interner: each distinct name is allocated once and
//! never freed, so copies are free and equality, ordering and hashing follow the text. The
//! memory kept is bounded by the number of distinct node names this process ever sees (a
//! cluster has a handful; a hostile peer could only add names as fast as it can get frames
//! past the cluster-name check). On the wire it is the plain string.
//!
//! `From<u64>` exists for openraft's storage test suite, which names nodes 0, 1, 2…: the number
//! becomes the name `"0"`, `"1"`, … (a name, not a hash).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// A node's name as a cheap `Copy` handle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(&'static str);

/// openraft fills placeholders with `NodeId::default()` and its storage suite expects that
/// placeholder to equal `NodeId::from(0)` (as it is for `u64` ids), so the default is `"0"`.
impl Default for NodeId {
    fn default() -> Self {
        NodeId::new("0")
    }
}

fn interner() -> &'static Mutex<HashSet<&'static str>> {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    NAMES.get_or_init(|| Mutex::new(HashSet::new()))
}

impl NodeId {
    /// The id for `name` (interned on first use).
    pub fn new(name: &str) -> NodeId {
        let mut names = match interner().lock() {
            Ok(names) => names,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(existing) = names.get(name) {
            return NodeId(existing);
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(leaked);
        NodeId(leaked)
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl From<u64> for NodeId {
    fn from(n: u64) -> Self {
        NodeId::new(&n.to_string())
    }
}

impl From<&str> for NodeId {
    fn from(name: &str) -> Self {
        NodeId::new(name)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(NodeId::new(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_id_ordered_by_text() {
        let a = NodeId::new("gpu-1");
        let b = NodeId::from("gpu-1");
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "interned once");
        assert!(NodeId::new("a") < NodeId::new("b"));
        assert_eq!(NodeId::from(3u64).as_str(), "3");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"gpu-1\"");
        let back: NodeId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }
}
