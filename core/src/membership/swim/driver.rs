//! The tokio driver of a SWIM node: one task owns the [`SwimNode`] and its UDP socket, one
//! scheduler task delivers its timers, and readers get an `Arc` snapshot that is swapped in
//! whenever the view changes (no lock is held across a protocol step).
//!
//! Joining: announce to the seeds on the [`JoinSchedule`] for as long as this node knows no
//! active member — at start, and again whenever it finds itself alone (after a partition every
//! other member may have been declared down), so partitions heal through the seeds too.

use super::node::{SwimNode, SwimNodeConfig, SwimOutput, SwimTimer};
use super::timers::spawn_scheduler;
use crate::error::Result;
use crate::membership::join::JoinSchedule;
use crate::membership::view::{EventSink, MembershipSnapshot, SwimCounters};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Receive buffer: larger than any datagram we accept, so an oversized one is read whole and
/// rejected instead of being truncated into something that parses.
const RECV_BUFFER: usize = 65_536;

/// How to start a driver.
#[derive(Debug, Clone)]
pub struct SwimDriverConfig {
    /// The protocol node's configuration. Its `addr` port 0 is replaced by the bound port.
    pub node: SwimNodeConfig,
    /// Where to bind the UDP socket (port 0 = any free port).
    pub bind: SocketAddr,
    /// Resolved seed addresses (entries equal to this node are dropped).
    pub seeds: Vec<SocketAddr>,
}

enum Command {
    Leave(oneshot::Sender<()>),
}

struct Shared {
    snapshot: RwLock<Arc<MembershipSnapshot>>,
    counters: Mutex<SwimCounters>,
    events: EventSink,
}

/// Reads a driver's published state without touching its task.
#[derive(Clone)]
pub struct SnapshotReader {
    shared: Arc<Shared>,
}

impl SnapshotReader {
    /// The latest membership snapshot.
    pub fn snapshot(&self) -> Arc<MembershipSnapshot> {
        match self.shared.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Traffic and drop counters.
    pub fn counters(&self) -> SwimCounters {
        match self.shared.counters.lock() {
            Ok(c) => *c,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

/// A running SWIM node.
pub struct SwimDriver {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    advertised: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl SwimDriver {
    /// Binds the socket and starts the node; transitions go to `events`, called on the node's
    /// task (it must not block). Must be called inside a tokio runtime.
    pub async fn start(mut cfg: SwimDriverConfig, events: EventSink) -> Result<SwimDriver> {
        let socket = crate::transport::udp::bind(cfg.bind).await?;
        let local_addr = socket.local_addr()?;
        if cfg.node.addr.port() == 0 {
            cfg.node.addr.set_port(local_addr.port());
        }
        let advertised = cfg.node.addr;
        let mut own = vec![advertised, local_addr];
        if !cfg.bind.ip().is_unspecified() {
            own.push(cfg.bind);
        }
        let schedule = JoinSchedule::new(cfg.seeds.clone(), &own);
        let mut node = SwimNode::new(cfg.node)?;
        if schedule.is_first_node() {
            node.mark_joined();
        }
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Arc::new(node.snapshot())),
            counters: Mutex::new(SwimCounters::default()),
            events,
        });
        let (commands, command_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(node, socket, schedule, command_rx, shared.clone()));
        Ok(SwimDriver {
            commands,
            shared,
            local_addr,
            advertised,
            task: Some(task),
        })
    }

    /// The latest membership snapshot.
    pub fn snapshot(&self) -> Arc<MembershipSnapshot> {
        self.reader().snapshot()
    }

    /// Traffic and drop counters.
    pub fn counters(&self) -> SwimCounters {
        self.reader().counters()
    }

    /// A handle that reads the snapshot and counters from any thread, even after the driver
    /// has stopped (it then shows the last published state).
    pub fn reader(&self) -> SnapshotReader {
        SnapshotReader {
            shared: self.shared.clone(),
        }
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The advertised SWIM address (this node's identity address).
    pub fn advertised_addr(&self) -> SocketAddr {
        self.advertised
    }

    /// Leaves the cluster gracefully and waits for the task to end. Idempotent.
    pub async fn stop(&mut self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.commands.send(Command::Leave(done_tx)).is_ok() {
            let _ = done_rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SwimDriver {
    fn drop(&mut self) {
        // Dropping the command sender makes the task leave and end by itself.
        if let Some(task) = self.task.take() {
            drop(task);
        }
    }
}

async fn flush(
    socket: &UdpSocket,
    node: &mut SwimNode,
    out: &mut SwimOutput,
    timers: &mpsc::UnboundedSender<(std::time::Duration, SwimTimer)>,
    shared: &Shared,
) {
    for (to, datagram) in out.sends.drain(..) {
        match socket.send_to(&datagram, to).await {
            Ok(sent) => node.record_sent(sent),
            Err(err) => tracing::debug!(%to, %err, "SWIM send failed"),
        }
    }
    for timer in out.timers.drain(..) {
        let _ = timers.send(timer);
    }
    for event in out.events.drain(..) {
        (shared.events)(event);
    }
}

async fn run(
    mut node: SwimNode,
    socket: UdpSocket,
    mut schedule: JoinSchedule,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let (timer_tx, mut timer_rx) = mpsc::unbounded_channel::<SwimTimer>();
    let (schedule_tx, scheduler) = spawn_scheduler(timer_tx);
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut out = SwimOutput::default();
    let mut next_join: Option<Instant> = (!schedule.is_first_node()).then(Instant::now);
    let mut published = node.generation();
    let mut leave_ack = None;

    loop {
        tokio::select! {
            command = commands.recv() => {
                if let Some(Command::Leave(ack)) = command {
                    leave_ack = Some(ack);
                }
                // Either way (stop() or the driver dropped) this node leaves and ends.
                if let Err(err) = node.leave(&mut out) {
                    tracing::warn!(%err, "SWIM leave failed");
                }
                flush(&socket, &mut node, &mut out, &schedule_tx, &shared).await;
                break;
            }
            Some(timer) = timer_rx.recv() => node.handle_timer(timer, &mut out),
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, _from)) => node.handle_datagram(&buf[..len], &mut out),
                Err(err) => tracing::debug!(%err, "SWIM receive failed"),
            },
            _ = async {
                match next_join {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                next_join = None;
                if node.active_members() == 0 {
                    if let Some((seed, wait)) = schedule.next_attempt() {
                        if let Err(err) = node.announce(seed, &mut out) {
                            tracing::debug!(%seed, %err, "announce failed");
                        }
                        if schedule.exhausted() {
                            node.set_join_error(Some(format!(
                                "no seed answered after {} attempts (seeds: {:?}); still retrying every {} s",
                                schedule.attempts(),
                                schedule.seeds(),
                                JoinSchedule::MAX_BACKOFF.as_secs()
                            )));
                        }
                        next_join = Some(Instant::now() + wait);
                    }
                }
            }
        }

        // Alone again (or still): keep announcing to the seeds; connected: reset the back-off.
        if node.active_members() == 0 {
            if next_join.is_none() && !schedule.is_first_node() {
                next_join = Some(Instant::now() + std::time::Duration::from_secs(1));
            }
        } else if next_join.is_some() || schedule.attempts() > 0 {
            next_join = None;
            schedule = JoinSchedule::new(schedule.seeds().to_vec(), &[]);
        }

        flush(&socket, &mut node, &mut out, &schedule_tx, &shared).await;
        if let Ok(mut counters) = shared.counters.lock() {
            *counters = node.counters();
        }
        if published != node.generation() {
            published = node.generation();
            let snapshot = Arc::new(node.snapshot());
            if let Ok(mut current) = shared.snapshot.write() {
                *current = snapshot;
            }
        }
    }

    drop(schedule_tx);
    let _ = scheduler.await;
    if let Some(ack) = leave_ack {
        let _ = ack.send(());
    }
}
