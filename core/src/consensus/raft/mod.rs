//! Raft on openraft. Every openraft type stays inside this folder so a version change touches
//! one place.
//!
//! * [`node_id`]: the node id as openraft sees it (a name, interned so it is `Copy`).
//! * [`types`]: the openraft type configuration.

pub mod node_id;
pub mod types;
