//! Transports. [`udp`] is the real path (SWIM datagrams on a tokio socket); [`memory`] is a
//! deterministic discrete-event network with a virtual clock for protocol simulations — never a
//! stand-in for the real path in cluster tests.

pub mod memory;
pub mod udp;
