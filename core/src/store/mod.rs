//! SQLite schema and access shared by the Raft state machine and the legacy mode.
