//! Read queries as data, so a read can be served locally or sent to the leader (a client-only
//! node has no replica) and answered the same way. Results are JSON values in the shapes the
//! Python and C layers hand out.

use crate::error::Result;
use crate::state::queries;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A read of the replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ReadQuery {
    /// One work item or null.
    WorkGet { work_id: String },
    /// Items by status and/or claimant, in claim order.
    WorkList {
        status: Option<String>,
        node_id: Option<String>,
        limit: usize,
    },
    /// Terminal items, newest first.
    WorkHistory {
        limit: usize,
        status: Option<String>,
    },
    /// Queue statistics.
    WorkStats,
    /// One job or null.
    JobGet { job_id: String },
    /// A node's active jobs.
    JobsForNode { node_id: String },
    /// Job statistics.
    JobStats,
    /// A lock's holder and token, or null when free or expired (by the log's time).
    LockHolder { name: String },
    /// One value or null.
    KvGet { key: String },
    /// Every key with the prefix, sorted.
    KvList { prefix: String },
}

fn json<T: Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Runs `query` on a replica's connection.
pub fn execute(conn: &Connection, query: &ReadQuery) -> Result<Value> {
    Ok(match query {
        ReadQuery::WorkGet { work_id } => json(queries::work_get(conn, work_id)?),
        ReadQuery::WorkList {
            status,
            node_id,
            limit,
        } => json(queries::work_list(
            conn,
            status.as_deref(),
            node_id.as_deref(),
            *limit,
        )?),
        ReadQuery::WorkHistory { limit, status } => {
            json(queries::work_history(conn, *limit, status.as_deref())?)
        }
        ReadQuery::WorkStats => json(queries::work_stats(conn)?),
        ReadQuery::JobGet { job_id } => json(queries::job_get(conn, job_id)?),
        ReadQuery::JobsForNode { node_id } => json(queries::jobs_for_node(conn, node_id, true)?),
        ReadQuery::JobStats => json(queries::job_stats(conn)?),
        ReadQuery::LockHolder { name } => {
            // Expiry is judged by the replicated clock, never this replica's.
            let now = queries::last_now_us(conn)?.unwrap_or(0);
            json(queries::lock_holder(conn, name, now)?)
        }
        ReadQuery::KvGet { key } => json(queries::kv_get(conn, key)?),
        ReadQuery::KvList { prefix } => json(queries::kv_list(conn, prefix)?),
    })
}
