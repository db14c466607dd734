//! Frames on a Raft TCP connection.
//!
//! `magic "SWRT" (4) | version (1) | cluster name length (1) | cluster name | kind (1) |
//! request id (u64 BE) | payload length (u32 BE) | payload`.
//!
//! Every frame names its cluster, so a node of another cluster (or another program) is refused
//! on the first frame; the payload length is capped so a corrupt or hostile length cannot make
//! us allocate gigabytes. Errors say what was wrong; nothing here panics on input.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// First bytes of every Raft frame.
pub const MAGIC: [u8; 4] = *b"SWRT";
/// Frame format version.
pub const VERSION: u8 = 1;
/// Largest accepted payload (snapshot chunks and batched appends stay well below).
pub const MAX_PAYLOAD: u32 = 64 * 1024 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A request; the payload's first byte says which RPC.
    Request = 1,
    /// A response to the request with the same id.
    Response = 2,
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection closed or failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// Not our magic number.
    #[error("not a swimraft Raft frame (bad magic)")]
    BadMagic,
    /// Another protocol version.
    #[error("unsupported Raft frame version {0} (this node speaks {VERSION})")]
    BadVersion(u8),
    /// Another cluster.
    #[error("frame from cluster {0:?}, this node is in another cluster")]
    OtherCluster(String),
    /// Unknown frame kind.
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    /// Payload over [`MAX_PAYLOAD`].
    #[error("frame payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge(u32),
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Request or response.
    pub kind: FrameKind,
    /// Correlates a response with its request.
    pub id: u64,
    /// Serialized body.
    pub payload: Vec<u8>,
}

/// Encodes and checks frames of one cluster.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    cluster: Vec<u8>,
}

impl FrameCodec {
    /// A codec for `cluster_name` (1–64 bytes, validated by the configuration).
    pub fn new(cluster_name: &str) -> Self {
        let bytes = cluster_name.as_bytes();
        FrameCodec {
            cluster: bytes[..bytes.len().min(255)].to_vec(),
        }
    }

    /// The frame as bytes.
    pub fn encode(&self, frame: &Frame) -> Vec<u8> {
        let mut out = Vec::with_capacity(19 + self.cluster.len() + frame.payload.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.cluster.len() as u8);
        out.extend_from_slice(&self.cluster);
        out.push(frame.kind as u8);
        out.extend_from_slice(&frame.id.to_be_bytes());
        out.extend_from_slice(&(frame.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&frame.payload);
        out
    }

    /// Writes one frame.
    pub async fn write<W: AsyncWriteExt + Unpin>(
        &self,
        w: &mut W,
        frame: &Frame,
    ) -> Result<(), FrameError> {
        w.write_all(&self.encode(frame)).await?;
        Ok(())
    }

    /// Reads one frame, checking magic, version, cluster, kind and size.
    pub async fn read<R: AsyncReadExt + Unpin>(&self, r: &mut R) -> Result<Frame, FrameError> {
        let mut head = [0u8; 6];
        r.read_exact(&mut head).await?;
        if head[..4] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if head[4] != VERSION {
            return Err(FrameError::BadVersion(head[4]));
        }
        let mut cluster = vec![0u8; head[5] as usize];
        r.read_exact(&mut cluster).await?;
        if cluster != self.cluster {
            return Err(FrameError::OtherCluster(
                String::from_utf8_lossy(&cluster).into_owned(),
            ));
        }
        let mut fixed = [0u8; 13];
        r.read_exact(&mut fixed).await?;
        let kind = match fixed[0] {
            1 => FrameKind::Request,
            2 => FrameKind::Response,
            other => return Err(FrameError::BadKind(other)),
        };
        let mut id = [0u8; 8];
        id.copy_from_slice(&fixed[1..9]);
        let mut len = [0u8; 4];
        len.copy_from_slice(&fixed[9..13]);
        let len = u32::from_be_bytes(len);
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload).await?;
        Ok(Frame {
            kind,
            id: u64::from_be_bytes(id),
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_refusals() {
        let codec = FrameCodec::new("prod");
        let frame = Frame {
            kind: FrameKind::Request,
            id: 42,
            payload: b"{\"x\":1}".to_vec(),
        };
        let bytes = codec.encode(&frame);
        assert_eq!(codec.read(&mut &bytes[..]).await.unwrap(), frame);

        let other = FrameCodec::new("test").encode(&frame);
        assert!(matches!(
            codec.read(&mut &other[..]).await,
            Err(FrameError::OtherCluster(c)) if c == "test"
        ));
        assert!(matches!(
            codec.read(&mut &b"GET / HTTP/1.1\r\n\r\n"[..]).await,
            Err(FrameError::BadMagic)
        ));
        let mut bad_version = bytes.clone();
        bad_version[4] = 9;
        assert!(matches!(
            codec.read(&mut &bad_version[..]).await,
            Err(FrameError::BadVersion(9))
        ));
        let mut huge = bytes.clone();
        let len_at = 6 + 4 + 1 + 8;
        huge[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            codec.read(&mut &huge[..]).await,
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            codec.read(&mut &bytes[..bytes.len() - 1]).await,
            Err(FrameError::Io(_))
        ));
    }
}
