//! Transports. [`udp`] carries SWIM datagrams; [`frame`] and [`tcp`] carry Raft RPCs and
//! forwarded client requests; [`memory`] is a deterministic discrete-event network with a
//! virtual clock for protocol simulations — never a stand-in for the real path in cluster tests.

pub mod frame;
pub mod memory;
pub mod tcp;
pub mod udp;
