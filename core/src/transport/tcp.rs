//! Request/response over TCP with [`frame`](super::frame) framing: one multiplexed connection
//! per peer (many requests in flight, answered by id, in any order), reconnect with back-off,
//! deadlines on every call. Generic over payloads: the Raft layer puts its RPCs and forwarded
//! client requests on top.

use super::frame::{Frame, FrameCodec, FrameKind};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Answers one request payload with a response payload.
pub type Handler =
    Arc<dyn Fn(Vec<u8>) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>> + Send + Sync>;

/// Why a call failed. `Unreachable` and `Disconnected` mean the request may not have arrived;
/// `Timeout` means the outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// Could not connect (or still backing off after a failed connect).
    #[error("cannot reach {0}")]
    Unreachable(String),
    /// The connection broke before the answer came.
    #[error("connection to {0} lost")]
    Disconnected(String),
    /// No answer before the deadline.
    #[error("no answer from {0} before the deadline")]
    Timeout(String),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>>;

struct Connection {
    writer: mpsc::UnboundedSender<Frame>,
    pending: Pending,
    alive: Arc<AtomicBool>,
}

struct ClientState {
    conn: Option<Arc<Connection>>,
    /// Earliest time to try connecting again after a failure.
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// A multiplexed client for one peer address. Cheap to clone.
#[derive(Clone)]
pub struct RpcClient {
    addr: String,
    codec: FrameCodec,
    state: Arc<tokio::sync::Mutex<ClientState>>,
    next_id: Arc<AtomicU64>,
}

/// Reconnect back-off after a failed connect, doubling up to [`MAX_BACKOFF`]. Kept short: a
/// restarted peer must be reached again well within its election timeout, and a refused
/// connect is cheap.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(50);

impl RpcClient {
    /// A client for `addr` (`host:port`); connects lazily.
    pub fn new(addr: impl Into<String>, codec: FrameCodec) -> Self {
        RpcClient {
            addr: addr.into(),
            codec,
            state: Arc::new(tokio::sync::Mutex::new(ClientState {
                conn: None,
                retry_at: None,
                backoff: MIN_BACKOFF,
            })),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The peer address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn connection(&self, deadline: Instant) -> Result<Arc<Connection>, RpcError> {
        let mut state = self.state.lock().await;
        if let Some(conn) = &state.conn {
            if conn.alive.load(Ordering::Acquire) {
                return Ok(conn.clone());
            }
            state.conn = None;
        }
        if let Some(at) = state.retry_at {
            if Instant::now() < at {
                return Err(RpcError::Unreachable(self.addr.clone()));
            }
        }
        let connect = TcpStream::connect(self.addr.as_str());
        let stream = match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) | Err(_) => {
                state.retry_at = Some(Instant::now() + state.backoff);
                state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
                return Err(RpcError::Unreachable(self.addr.clone()));
            }
        };
        let _ = stream.set_nodelay(true);
        state.retry_at = None;
        state.backoff = MIN_BACKOFF;
        let conn = Arc::new(spawn_client_connection(stream, self.codec.clone()));
        state.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Sends `payload` and waits for the answer until `timeout` passes.
    pub async fn call(&self, payload: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, RpcError> {
        let deadline = Instant::now() + timeout;
        let conn = self.connection(deadline).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = conn.pending.lock() {
            pending.insert(id, tx);
        }
        let frame = Frame {
            kind: FrameKind::Request,
            id,
            payload,
        };
        if conn.writer.send(frame).is_err() {
            conn.alive.store(false, Ordering::Release);
            return Err(RpcError::Disconnected(self.addr.clone()));
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RpcError::Disconnected(self.addr.clone())),
            Err(_) => {
                if let Ok(mut pending) = conn.pending.lock() {
                    pending.remove(&id);
                }
                Err(RpcError::Timeout(self.addr.clone()))
            }
        }
    }

    /// Drops the connection (the next call reconnects at once).
    pub async fn reset(&self) {
        let mut state = self.state.lock().await;
        if let Some(conn) = state.conn.take() {
            conn.alive.store(false, Ordering::Release);
        }
        state.retry_at = None;
        state.backoff = MIN_BACKOFF;
    }
}

/// Read buffer of one connection direction. A frame is read in four pieces (head, cluster
/// name, fixed fields, payload); unbuffered, each piece is a `recv` system call, and under load
/// several frames arrive in one segment. Buffered, one call usually brings them all.
const READ_BUFFER: usize = 64 * 1024;

/// The write side of a connection (both directions): writes the queued frames until the
/// queue closes or a write fails. It yields once after waking, so that the tasks already
/// ready queue their frames too, then writes everything queued in one `write`: frames of
/// forwarded writes and of their answers come from many tasks microseconds apart, and a
/// `sendto` per frame (with, on loopback, the receiver's wake-up) cost a follower's clients
/// about a sixth of their CPU per operation.
async fn write_frames(
    mut outgoing: mpsc::UnboundedReceiver<Frame>,
    mut write: OwnedWriteHalf,
    codec: FrameCodec,
) {
    while let Some(frame) = outgoing.recv().await {
        tokio::task::yield_now().await;
        let mut bytes = codec.encode(&frame);
        while let Ok(more) = outgoing.try_recv() {
            bytes.extend_from_slice(&codec.encode(&more));
        }
        if tokio::io::AsyncWriteExt::write_all(&mut write, &bytes)
            .await
            .is_err()
        {
            return;
        }
    }
}

fn spawn_client_connection(stream: TcpStream, codec: FrameCodec) -> Connection {
    let (read, write) = stream.into_split();
    let mut read = BufReader::with_capacity(READ_BUFFER, read);
    let (writer, outgoing) = mpsc::unbounded_channel::<Frame>();
    let pending: Pending = Arc::default();
    let alive = Arc::new(AtomicBool::new(true));
    {
        let codec = codec.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            write_frames(outgoing, write, codec).await;
            alive.store(false, Ordering::Release);
        });
    }
    {
        let pending = pending.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            loop {
                match codec.read(&mut read).await {
                    Ok(frame) if frame.kind == FrameKind::Response => {
                        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&frame.id));
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(frame.payload);
                        }
                    }
                    Ok(_) | Err(_) => break,
                }
            }
            alive.store(false, Ordering::Release);
            // Fail every call still waiting on this connection.
            if let Ok(mut p) = pending.lock() {
                p.clear();
            }
        });
    }
    Connection {
        writer,
        pending,
        alive,
    }
}

/// Counters of a server.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Connections closed because of a bad frame (magic, version, cluster, size).
    pub bad_frames: AtomicU64,
}

/// Accepts connections on `listener` and answers every request with `handler`, concurrently,
/// until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    codec: FrameCodec,
    handler: Handler,
    stats: Arc<ServerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                stats.connections.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    codec.clone(),
                    handler.clone(),
                    stats.clone(),
                    shutdown.clone(),
                ));
            }
        }
    }
}

/// Counts a connection closed for a bad frame — usually a node of another cluster
/// (RINGRIFT_CLUSTER_NAME) or a program that is not swimraft — and says so as a warning at
/// the 1st, 2nd, 4th, ... one, so it shows in the log without a line per connection.
fn count_bad_frame(stats: &ServerStats, peer: SocketAddr, why: &str) {
    let bad = stats.bad_frames.fetch_add(1, Ordering::Relaxed) + 1;
    if bad.is_power_of_two() {
        tracing::warn!(%peer, why, bad_frames = bad, "closing a Raft connection after a bad frame");
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    codec: FrameCodec,
    handler: Handler,
    stats: Arc<ServerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (read, write) = stream.into_split();
    let mut read = BufReader::with_capacity(READ_BUFFER, read);
    let (responses, outgoing) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(write_frames(outgoing, write, codec.clone()));
    loop {
        let frame = tokio::select! {
            frame = codec.read(&mut read) => frame,
            _ = shutdown.changed() => break,
        };
        match frame {
            Ok(frame) if frame.kind == FrameKind::Request => {
                let handler = handler.clone();
                let responses = responses.clone();
                let stats = stats.clone();
                tokio::spawn(async move {
                    let payload = handler(frame.payload).await;
                    stats.requests.fetch_add(1, Ordering::Relaxed);
                    let _ = responses.send(Frame {
                        kind: FrameKind::Response,
                        id: frame.id,
                        payload,
                    });
                });
            }
            Ok(frame) => {
                let why = format!("a {:?} frame where a request belongs", frame.kind);
                count_bad_frame(&stats, peer, &why);
                break;
            }
            Err(super::frame::FrameError::Io(_)) => break,
            Err(err) => {
                count_bad_frame(&stats, peer, &err.to_string());
                break;
            }
        }
    }
    drop(responses);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn echo_handler() -> Handler {
        Arc::new(|payload: Vec<u8>| {
            Box::pin(async move {
                // Later requests may finish first: the reply order is not the request order.
                let delay = payload.first().copied().unwrap_or(0) as u64;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                payload
            })
        })
    }

    async fn server(codec: FrameCodec) -> (SocketAddr, watch::Sender<bool>, Arc<ServerStats>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let stats = Arc::new(ServerStats::default());
        tokio::spawn(serve(listener, codec, echo_handler(), stats.clone(), rx));
        (addr, stop, stats)
    }

    #[tokio::test]
    async fn concurrent_calls_are_matched_by_id() {
        let codec = FrameCodec::new("t");
        let (addr, stop, stats) = server(codec.clone()).await;
        let client = RpcClient::new(addr.to_string(), codec);
        let calls = (0..20u8).map(|i| {
            let client = client.clone();
            async move { client.call(vec![20 - i, i], Duration::from_secs(5)).await }
        });
        let answers = futures_join_all(calls).await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap(), vec![20 - i as u8, i as u8]);
        }
        assert_eq!(
            stats.connections.load(Ordering::Relaxed),
            1,
            "one multiplexed connection"
        );
        let _ = stop.send(true);
    }

    #[tokio::test]
    async fn timeouts_unreachable_and_foreign_frames() {
        let codec = FrameCodec::new("t");
        let (addr, stop, stats) = server(codec.clone()).await;
        let client = RpcClient::new(addr.to_string(), codec.clone());
        assert_eq!(
            client.call(vec![200], Duration::from_millis(50)).await,
            Err(RpcError::Timeout(addr.to_string()))
        );
        // The connection survives a timeout.
        assert_eq!(
            client
                .call(vec![0, 7], Duration::from_secs(2))
                .await
                .unwrap(),
            vec![0, 7]
        );

        // Another cluster's frame closes the connection and is counted.
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let foreign = FrameCodec::new("other").encode(&Frame {
            kind: FrameKind::Request,
            id: 1,
            payload: vec![0],
        });
        raw.write_all(&foreign).await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut raw, &mut buf)
            .await
            .unwrap_or(0);
        assert_eq!(n, 0, "connection closed");
        assert_eq!(stats.bad_frames.load(Ordering::Relaxed), 1);
        let _ = stop.send(true);

        // Nothing listens: unreachable, then fail fast while backing off.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        let client = RpcClient::new(dead_addr.to_string(), codec);
        assert!(matches!(
            client.call(vec![0], Duration::from_secs(1)).await,
            Err(RpcError::Unreachable(_))
        ));
        assert!(matches!(
            client.call(vec![0], Duration::from_secs(1)).await,
            Err(RpcError::Unreachable(_))
        ));
    }

    async fn futures_join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
