//! Operations as JSON, for the bindings: Python and C send one JSON object per call and get
//! JSON back, so neither binding holds logic of its own.
//!
//! ```json
//! {"write": {"command": {"work_add": {"item": {"work_id": "w1", "work_type": "selfplay"}, "force": false}},
//!            "request_id": "optional idempotency key"}}
//! {"read":  {"query": {"work_get": {"work_id": "w1"}}, "stale_ok": false}}
//! {"add_voter": {"node_id": "n4", "address": "10.0.0.4:4321"}}
//! {"remove_voter": {"node_id": "n4"}}
//! ```
//! A write answers the command's result (`{"work_id": "w1"}`, `{"bool": true}`,
//! `{"item": {...}}`, `{"token": 7}`, ...); a read answers the query's value; voter changes
//! answer `null`. Unknown fields and malformed JSON are `InvalidArgument` errors that quote
//! the parser's complaint.

use crate::consensus::read::ReadQuery;
use crate::coordinator::Coordinator;
use crate::error::{Error, ErrorKind, Result};
use crate::state::Command;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// One call from a binding.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// A replicated write.
    Write {
        /// The command.
        command: Command,
        /// Idempotency key for the caller's own retries.
        #[serde(default)]
        request_id: Option<String>,
    },
    /// A read of the replicated state.
    Read {
        /// The query.
        query: ReadQuery,
        /// Serve the local replica as it is (no leader round trip).
        #[serde(default)]
        stale_ok: bool,
    },
    /// Add a Raft voter.
    AddVoter {
        /// Its node id.
        node_id: String,
        /// Its Raft `host:port`.
        address: String,
    },
    /// Remove a Raft voter.
    RemoveVoter {
        /// Its node id.
        node_id: String,
    },
}

/// Parses an operation, naming what is wrong.
pub fn parse(json: &str) -> Result<Op> {
    serde_json::from_str(json).map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("malformed operation: {e}"),
        )
    })
}

/// Runs an operation on the coordinator.
pub async fn execute(coord: &Coordinator, op: Op, timeout: Option<Duration>) -> Result<Value> {
    match op {
        Op::Write {
            command,
            request_id,
        } => {
            let result = coord.write(command, timeout, request_id.as_deref()).await?;
            serde_json::to_value(result)
                .map_err(|e| Error::new(ErrorKind::Protocol, format!("cannot encode result: {e}")))
        }
        Op::Read { query, stale_ok } => coord.read(query, stale_ok, timeout).await,
        Op::AddVoter { node_id, address } => {
            coord.add_voter(&node_id, &address, timeout).await?;
            Ok(Value::Null)
        }
        Op::RemoveVoter { node_id } => {
            coord.remove_voter(&node_id, timeout).await?;
            Ok(Value::Null)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_writes_reads_and_refuses_garbage() {
        let op =
            parse(r#"{"write": {"command": {"kv_set": {"key": "a", "value": [1]}}}}"#).unwrap();
        assert!(matches!(
            op,
            Op::Write {
                request_id: None,
                ..
            }
        ));
        // The spelling the unknown-field cases below get wrong.
        parse(r#"{"write": {"command": {"work_add": {"item": {"work_id": "w", "priority": 90}, "force": false}}}}"#)
            .unwrap();
        let op =
            parse(r#"{"read": {"query": {"kv_get": {"key": "a"}}, "stale_ok": true}}"#).unwrap();
        assert!(matches!(op, Op::Read { stale_ok: true, .. }));
        for bad in [
            "",
            "{",
            "[]",
            r#"{"write": {"command": {"kv_set": {"key": "a"}}}}"#,
            r#"{"write": {"command": "no_such_command"}}"#,
            r#"{"read": {"query": {"kv_get": {"key": "a", "extra": 1}}}}"#,
            // Unknown fields of a write, of a command and of a new work item.
            r#"{"write": {"command": {"kv_set": {"key": "a", "value": 1}}, "extra": 1}}"#,
            r#"{"write": {"command": {"kv_set": {"key": "a", "value": 1, "ttl": 5}}}}"#,
            r#"{"write": {"command": {"work_add": {"item": {"work_id": "w", "priorty": 90}, "force": false}}}}"#,
            r#"{"explode": {}}"#,
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }
}
