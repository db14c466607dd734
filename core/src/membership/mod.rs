//! Membership: who is alive, suspected, failed or has left.
//!
//! * [`view`]: the protocol-independent picture (member states, events, snapshot) that the
//!   coordinator and the bindings read.
//! * [`swim`]: SWIM on the `foca` crate — a sans-I/O node plus the tokio driver that owns its
//!   socket and timers. Only this folder imports foca.
//! * [`join`]: the seed-join schedule (retries, back-off, rotation), pure logic.

pub mod heartbeat;
pub mod join;
pub mod swim;
pub mod view;
