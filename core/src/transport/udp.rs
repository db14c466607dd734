//! UDP socket set-up for SWIM.

use crate::error::{Error, ErrorKind, Result};
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// Binds a UDP socket at `addr`; the error names the address and the reason (port in use,
/// address not on this host, permission).
pub async fn bind(addr: SocketAddr) -> Result<UdpSocket> {
    UdpSocket::bind(addr).await.map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot bind the SWIM UDP socket to {addr}: {e}"),
        )
    })
}
