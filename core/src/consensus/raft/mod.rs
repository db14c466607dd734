//! Raft on openraft. Every openraft type stays inside this folder so a version change touches
//! one place.
//!
//! * [`node_id`]: the node id as openraft sees it (a name, interned so it is `Copy`).
//! * [`types`]: the openraft type configuration.
//! * [`rpc`]: the messages on a Raft connection (RPCs and forwarded client requests).
//! * [`network`]: outbound RPCs (openraft's network factory) over multiplexed TCP.
//! * [`server`]: inbound RPCs and forwarded client requests.
//! * [`proposer`]: the leader's write batcher (many writes per log entry).
//! * [`forwarder`]: a follower's or client's write batcher (many writes per forwarded request).
//! * [`split_vote`]: re-campaigns after a failed round with a fresh random delay.
//! * [`log_store`]: the Raft log and vote on SQLite (one writer thread, fsync before ack, except
//!   a leader's own entries: [`durability`] says why that is safe).
//! * [`state_store`]: the state machine on SQLite; [`snapshot`]: its snapshot files;
//!   [`group_commit`]: its write connection, one transaction over several apply batches.

pub mod durability;
pub mod forwarder;
pub mod group_commit;
pub mod log_store;
pub mod network;
pub mod node;
pub mod node_id;
pub mod proposer;
pub mod rpc;
pub mod server;
pub mod session;
pub mod snapshot;
pub mod split_vote;
pub mod state_store;
pub mod types;
