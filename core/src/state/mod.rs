//! The replicated state machine (work queue, jobs, locks, key/value): pure deterministic code.
