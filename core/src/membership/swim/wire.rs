//! The datagram header: `magic(4) | version(1) | cluster name length(1) | cluster name`, then
//! foca's payload. A datagram from another program, another protocol version or another
//! cluster is dropped (and counted) before foca sees it.

/// First bytes of every swimraft SWIM datagram.
pub const MAGIC: [u8; 4] = *b"SWRF";
/// Wire version; bumped on any incompatible change of header or payload.
pub const VERSION: u8 = 1;
/// Longest accepted cluster name, in bytes.
pub const MAX_CLUSTER_NAME: usize = 64;

/// Why a datagram was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than a header.
    #[error("shorter than a swimraft header")]
    Truncated,
    /// Not our magic number: some other program.
    #[error("not a swimraft datagram (another program?)")]
    BadMagic,
    /// Our magic, another protocol version.
    #[error("swimraft wire version {0}, this node speaks another")]
    BadVersion(u8),
    /// Another cluster's traffic.
    #[error("from another cluster (check RINGRIFT_CLUSTER_NAME on both ends)")]
    OtherCluster,
}

/// Encodes and checks the header for one cluster.
#[derive(Debug, Clone)]
pub struct WireHeader {
    prefix: Vec<u8>,
}

impl WireHeader {
    /// The header for `cluster_name` (validated by the configuration: 1–64 bytes).
    pub fn new(cluster_name: &str) -> Self {
        let name = &cluster_name.as_bytes()[..cluster_name.len().min(MAX_CLUSTER_NAME)];
        let mut prefix = Vec::with_capacity(6 + name.len());
        prefix.extend_from_slice(&MAGIC);
        prefix.push(VERSION);
        prefix.push(name.len() as u8);
        prefix.extend_from_slice(name);
        WireHeader { prefix }
    }

    /// Header length in bytes.
    pub fn len(&self) -> usize {
        self.prefix.len()
    }

    /// Always false: a header is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Header followed by `payload`.
    pub fn wrap(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + payload.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(payload);
        out
    }

    /// The payload of `datagram` if its header is ours.
    pub fn unwrap<'a>(&self, datagram: &'a [u8]) -> Result<&'a [u8], WireError> {
        if datagram.len() < 6 {
            return Err(WireError::Truncated);
        }
        if datagram[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        if datagram[4] != VERSION {
            return Err(WireError::BadVersion(datagram[4]));
        }
        if datagram.len() < self.prefix.len() {
            return Err(WireError::Truncated);
        }
        if datagram[..self.prefix.len()] != self.prefix[..] {
            return Err(WireError::OtherCluster);
        }
        Ok(&datagram[self.prefix.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_rejections() {
        let h = WireHeader::new("prod");
        let d = h.wrap(b"hello");
        assert_eq!(h.unwrap(&d), Ok(&b"hello"[..]));
        assert_eq!(h.unwrap(b"SWR"), Err(WireError::Truncated));
        assert_eq!(h.unwrap(b"XXXX\x01\x04prod"), Err(WireError::BadMagic));
        assert_eq!(h.unwrap(b"SWRF\x09\x04prod"), Err(WireError::BadVersion(9)));
        assert_eq!(
            h.unwrap(&WireHeader::new("test").wrap(b"x")),
            Err(WireError::OtherCluster)
        );
        // a prefix of our cluster name is another cluster, not a truncated packet of ours
        assert_eq!(
            h.unwrap(&WireHeader::new("pro").wrap(b"dx")),
            Err(WireError::OtherCluster)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let h = WireHeader::new("swimraft");
            let _ = h.unwrap(&data);
        }
    }
}
