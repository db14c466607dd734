//! SWIM membership on foca.
//!
//! * [`identity`]: `{addr, node_id, bump}`, the foca identity.
//! * [`wire`]: the header every datagram carries (magic, version, cluster name).
//! * [`broadcast`]: gossiped metadata and leave notices (foca custom broadcasts).
//! * [`node`]: [`node::SwimNode`], the sans-I/O protocol node: packets and timers in, datagrams,
//!   timers and membership events out. Simulations drive it directly.
//! * [`timers`]: the single timer-scheduler task.
//! * [`driver`]: the tokio task that owns a `SwimNode` and its UDP socket.

pub mod broadcast;
pub mod driver;
pub mod identity;
pub mod node;
pub mod timers;
pub mod wire;

pub use driver::{SwimDriver, SwimDriverConfig};
pub use identity::SwimId;
pub use node::{SwimNode, SwimNodeConfig, SwimOutput, SwimTimer};
