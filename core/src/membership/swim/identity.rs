//! The foca identity of a node: the advertised SWIM socket address, the node id and a bump.
//!
//! The address is foca's `Addr` because foca answers an announce only when the destination's
//! address is its own: a joining node knows a seed's socket address but not its name. The bump
//! orders identities of the same node: it starts at the process start time in milliseconds
//! (never reset, never random), so a restarted node always outranks the identity the cluster
//! remembers as down, and foca's auto-rejoin (`renew`) raises it by one.

use foca::Identity;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A node's SWIM identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwimId {
    /// The advertised SWIM socket address.
    pub addr: SocketAddr,
    /// The node id (a name such as `gpu-h100-1`).
    pub node_id: String,
    /// Identity generation; larger wins.
    pub bump: u64,
}

impl SwimId {
    /// An identity for a seed we only know by address; foca accepts an announce addressed to
    /// it because only the address is compared.
    pub fn seed(addr: SocketAddr) -> Self {
        SwimId {
            addr,
            node_id: String::new(),
            bump: 0,
        }
    }
}

impl Identity for SwimId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(SwimId {
            bump: self.bump.saturating_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.bump, &self.node_id) > (adversary.bump, &adversary.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_bump_wins_and_renew_outranks() {
        let a = SwimId {
            addr: "127.0.0.1:1".parse().unwrap(),
            node_id: "n1".into(),
            bump: 10,
        };
        let b = a.renew().unwrap();
        assert_eq!(b.bump, 11);
        assert!(b.win_addr_conflict(&a));
        assert!(!a.win_addr_conflict(&b));
    }
}

/// The bump for a new process start: `max(persisted + 1, now_ms)`, written back to `path` so
/// that even a clock that went backwards cannot produce a bump the cluster already saw.
/// Without a writable path, `now_ms` alone (milliseconds since the Unix epoch) is used.
pub fn next_bump(path: Option<&std::path::Path>, now_ms: u64) -> u64 {
    let persisted = path.and_then(|p| match std::fs::read_to_string(p) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(previous) => Some(previous),
            Err(err) => {
                // The clock alone decides this start's bump; only a clock that went back
                // since the last start could then reuse an identity the cluster saw.
                tracing::warn!(path = %p.display(), %err, "the SWIM identity bump file is damaged; replacing it");
                None
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            tracing::warn!(path = %p.display(), %err, "cannot read the SWIM identity bump file");
            None
        }
    });
    let bump = match persisted {
        Some(previous) => now_ms.max(previous.saturating_add(1)),
        None => now_ms,
    };
    if let Some(p) = path {
        if let Err(err) = std::fs::write(p, bump.to_string()) {
            tracing::warn!(path = %p.display(), %err, "could not persist the SWIM identity bump");
        }
    }
    bump
}

#[cfg(test)]
mod bump_tests {
    use super::next_bump;

    #[test]
    fn bump_grows_even_when_the_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swim.bump");
        assert_eq!(next_bump(Some(&path), 1000), 1000);
        assert_eq!(next_bump(Some(&path), 500), 1001);
        assert_eq!(next_bump(Some(&path), 5000), 5000);
        assert_eq!(next_bump(None, 7), 7);
    }
}
