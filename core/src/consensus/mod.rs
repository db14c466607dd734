//! Consensus: Raft on openraft (`raft/`, the only folder that imports openraft).

pub mod raft;
pub mod read;
