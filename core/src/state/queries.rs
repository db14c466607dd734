//! Reads of the replicated state on a plain connection (no transaction needed).
//!
//! These serve `stale_ok` reads from the local replica and linearizable reads after the Raft
//! layer's read-index wait. Every list is returned in a total order, so two replicas at the same
//! applied index answer identically.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::{Job, JobStatus, LockInfo, WorkItem, WorkStatus};
use super::work_queue::{backpressure_refuses, BACKPRESSURE_WARN_ABOVE};
use super::{jobs, kv, locks, work_queue};
use crate::error::Result;
use crate::store::{meta, storage_error};

pub use super::digest::state_digest;

fn count(n: i64) -> u64 {
    // COUNT(*) is never negative; the fallback only avoids an unwrap.
    u64::try_from(n).unwrap_or(0)
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// One work item, or `None` when the id is unknown.
pub fn work_get(conn: &Connection, work_id: &str) -> Result<Option<WorkItem>> {
    work_queue::get(conn, work_id).map_err(storage_error)
}

/// Up to `limit` items, optionally only those with `status` and/or claimed by `node_id`, in
/// claim order (`priority DESC, created_at ASC, work_id ASC`). An unknown status name is an
/// `InvalidArgument` error.
pub fn work_list(
    conn: &Connection,
    status: Option<&str>,
    node_id: Option<&str>,
    limit: usize,
) -> Result<Vec<WorkItem>> {
    let status = status.map(str::parse::<WorkStatus>).transpose()?;
    (|| {
        conn.prepare_cached(&format!(
            "SELECT {} FROM work_items
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR claimed_by = ?2)
             ORDER BY priority DESC, created_at ASC, work_id ASC
             LIMIT ?3",
            WorkItem::COLUMNS
        ))?
        .query_map(
            params![status.map(WorkStatus::as_str), node_id, limit_param(limit)],
            WorkItem::from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()
    })()
    .map_err(storage_error)
}

/// Up to `limit` terminal items (completed, failed, timeout, cancelled), newest
/// `completed_at` first (ties by `work_id`), optionally only those with `status`; a
/// non-terminal status gives an empty list, an unknown one an `InvalidArgument` error.
pub fn work_history(
    conn: &Connection,
    limit: usize,
    status: Option<&str>,
) -> Result<Vec<WorkItem>> {
    let status = status.map(str::parse::<WorkStatus>).transpose()?;
    (|| {
        conn.prepare_cached(&format!(
            "SELECT {} FROM work_items
             WHERE status IN ('completed', 'failed', 'timeout', 'cancelled')
               AND (?1 IS NULL OR status = ?1)
             ORDER BY completed_at DESC, work_id ASC
             LIMIT ?2",
            WorkItem::COLUMNS
        ))?
        .query_map(
            params![status.map(WorkStatus::as_str), limit_param(limit)],
            WorkItem::from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()
    })()
    .map_err(storage_error)
}

/// Work queue statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkStats {
    /// Items waiting to be claimed.
    pub pending: u64,
    /// Items claimed, not started.
    pub claimed: u64,
    /// Items running.
    pub running: u64,
    /// Items completed (until retention removes them).
    pub completed: u64,
    /// Items failed for good.
    pub failed: u64,
    /// Items timed out for good.
    pub timeout: u64,
    /// Items cancelled.
    pub cancelled: u64,
    /// All items in the table.
    pub total: u64,
    /// All items in the table by `work_type`.
    pub by_type: BTreeMap<String, u64>,
    /// Items ever added.
    pub total_added: u64,
    /// Completions ever.
    pub total_completed: u64,
    /// Items that ever became `failed`.
    pub total_failed: u64,
    /// Timeouts ever (requeued or final).
    pub total_timeout: u64,
    /// Cancellations ever.
    pub total_cancelled: u64,
    /// Whether the next unforced add would be refused for backpressure.
    pub backpressure_active: bool,
    /// More than 500 items are pending.
    pub backpressure_warning: bool,
}

/// Items waiting or being worked on: `pending + claimed + running` of [`work_stats`], without
/// reading the whole table (the status line refreshes it every second on every node). The
/// pending part comes from the trigger-kept count (`work_pending_count`, see
/// [`crate::store::schema`]); the claimed and running items, and the NULL statuses a foreign
/// file may hold (they read as pending), are counted in the claim-order index, whose first
/// column is the status, so the cost follows the active items, not the history.
pub fn work_queue_size(conn: &Connection) -> Result<u64> {
    conn.prepare_cached(WORK_QUEUE_SIZE)
        .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
        .map(count)
        .map_err(storage_error)
}

const WORK_QUEUE_SIZE: &str = "SELECT COALESCE((SELECT n FROM work_pending_count), 0)
    + (SELECT COUNT(*) FROM work_items WHERE status = 'claimed')
    + (SELECT COUNT(*) FROM work_items WHERE status = 'running')
    + (SELECT COUNT(*) FROM work_items WHERE status IS NULL)";

/// Counts by status and type, lifetime totals, and the backpressure state.
pub fn work_stats(conn: &Connection) -> Result<WorkStats> {
    work_stats_inner(conn).map_err(storage_error)
}

fn work_stats_inner(conn: &Connection) -> rusqlite::Result<WorkStats> {
    let mut stats = WorkStats::default();
    let by_status: Vec<(Option<String>, i64)> = conn
        .prepare_cached("SELECT status, COUNT(*) FROM work_items GROUP BY status ORDER BY status")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (status, n) in by_status {
        let n = count(n);
        stats.total += n;
        // A NULL status reads as pending (see `WorkItem::from_row`); an unknown one (only
        // possible in a foreign file) counts in the total alone.
        let status = status.map_or(Ok(WorkStatus::Pending), |s| s.parse::<WorkStatus>());
        match status {
            Ok(WorkStatus::Pending) => stats.pending += n,
            Ok(WorkStatus::Claimed) => stats.claimed += n,
            Ok(WorkStatus::Running) => stats.running += n,
            Ok(WorkStatus::Completed) => stats.completed += n,
            Ok(WorkStatus::Failed) => stats.failed += n,
            Ok(WorkStatus::Timeout) => stats.timeout += n,
            Ok(WorkStatus::Cancelled) => stats.cancelled += n,
            Err(_) => {}
        }
    }
    stats.by_type = conn
        .prepare_cached(
            "SELECT COALESCE(work_type, ''), COUNT(*) FROM work_items
             GROUP BY 1 ORDER BY 1",
        )?
        .query_map([], |row| Ok((row.get::<_, String>(0)?, count(row.get(1)?))))?
        .collect::<rusqlite::Result<_>>()?;
    let totals: Vec<(String, Option<i64>)> = conn
        .prepare_cached("SELECT key, value FROM work_stats ORDER BY key")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (key, value) in totals {
        let value = count(value.unwrap_or(0));
        match key.as_str() {
            "total_added" => stats.total_added = value,
            "total_completed" => stats.total_completed = value,
            "total_failed" => stats.total_failed = value,
            "total_timeout" => stats.total_timeout = value,
            "total_cancelled" => stats.total_cancelled = value,
            _ => {}
        }
    }
    let pending = work_queue::count_pending(conn)?;
    let flag = meta::get_flag(conn, meta::BACKPRESSURE_ACTIVE)?;
    stats.backpressure_active = backpressure_refuses(flag, pending);
    stats.backpressure_warning = pending > BACKPRESSURE_WARN_ABOVE;
    Ok(stats)
}

/// One job, or `None` when the id is unknown.
pub fn job_get(conn: &Connection, job_id: &str) -> Result<Option<Job>> {
    jobs::get(conn, job_id).map_err(storage_error)
}

/// The jobs assigned to `node_id`, by `job_id`; only assigned and running ones when
/// `active_only`.
pub fn jobs_for_node(conn: &Connection, node_id: &str, active_only: bool) -> Result<Vec<Job>> {
    (|| {
        conn.prepare_cached(&format!(
            "SELECT {} FROM jobs
             WHERE node_id = ?1 AND (?2 = 0 OR status IN ('assigned', 'running'))
             ORDER BY job_id",
            Job::COLUMNS
        ))?
        .query_map(params![node_id, active_only], Job::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()
    })()
    .map_err(storage_error)
}

/// Job counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Assigned, not started.
    pub assigned: u64,
    /// Running.
    pub running: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// All of them.
    pub total: u64,
}

impl JobCounts {
    fn add(&mut self, status: JobStatus, n: u64) {
        match status {
            JobStatus::Assigned => self.assigned += n,
            JobStatus::Running => self.running += n,
            JobStatus::Completed => self.completed += n,
            JobStatus::Failed => self.failed += n,
        }
        self.total += n;
    }
}

/// Job statistics: overall and per node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    /// Counts over all jobs (flattened into the top level when serialized).
    #[serde(flatten)]
    pub all: JobCounts,
    /// Counts per node id.
    pub by_node: BTreeMap<String, JobCounts>,
}

/// Job counts by status, overall and per node.
pub fn job_stats(conn: &Connection) -> Result<JobStats> {
    (|| {
        let rows: Vec<(String, String, i64)> = conn
            .prepare_cached(
                "SELECT COALESCE(node_id, ''), status, COUNT(*) FROM jobs
                 GROUP BY 1, 2 ORDER BY 1, 2",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stats = JobStats::default();
        for (node, status, n) in rows {
            if let Ok(status) = status.parse::<JobStatus>() {
                stats.all.add(status, count(n));
                stats.by_node.entry(node).or_default().add(status, count(n));
            }
        }
        Ok(stats)
    })()
    .map_err(storage_error)
}

/// Who holds lock `name` at log time `now_us`; `None` when it is free or expired. Pass the
/// caller's current time (a read has no log entry to take it from); the state machine itself
/// judges expiry by the log's clock on the next acquire.
pub fn lock_holder(conn: &Connection, name: &str, now_us: i64) -> Result<Option<LockInfo>> {
    Ok(locks::get(conn, name)
        .map_err(storage_error)?
        .filter(|lock| !lock.is_expired(now_us)))
}

/// One key's value, or `None` when absent.
pub fn kv_get(conn: &Connection, key: &str) -> Result<Option<Value>> {
    kv::get(conn, key).map_err(storage_error)
}

/// Every key starting with `prefix` (all keys for `""`) with its value.
pub fn kv_list(conn: &Connection, prefix: &str) -> Result<BTreeMap<String, Value>> {
    (|| {
        conn.prepare_cached(
            "SELECT key, value FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )?
        .query_map([prefix], |row| {
            let value: Option<String> = row.get(1)?;
            Ok((
                row.get::<_, String>(0)?,
                crate::store::json::value_or(value, Value::Null),
            ))
        })?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()
    })()
    .map_err(storage_error)
}

/// The write index of the last applied write (writes are numbered consecutively, several per
/// Raft log entry: see [`super::apply_next`]); `None` before the first.
pub fn last_applied_index(conn: &Connection) -> Result<Option<u64>> {
    let index = meta::get_i64(conn, meta::LAST_APPLIED_INDEX).map_err(storage_error)?;
    Ok(index.and_then(|i| u64::try_from(i).ok()))
}

/// The state machine's clock (µs): the largest `now_us` applied so far; `None` before the
/// first entry.
pub fn last_now_us(conn: &Connection) -> Result<Option<i64>> {
    meta::get_i64(conn, meta::LAST_NOW_US).map_err(storage_error)
}

/// Whether a sweep would change anything at `now_us`: `(claims past their timeout, expired
/// locks)`. The leader asks its replica this before proposing `WorkCheckTimeouts` /
/// `LockExpire`, so sweeps add no log entries while nothing is due.
pub fn sweeps_due(conn: &Connection, now_us: i64) -> Result<(bool, bool)> {
    (|| {
        let now_s = now_us as f64 / 1_000_000.0;
        let timeouts: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM work_items WHERE status IN ('claimed', 'running')
                   AND ?1 - COALESCE(claimed_at, 0) > timeout_seconds)",
            )?
            .query_row([now_s], |row| row.get(0))?;
        let locks = conn
            .prepare_cached(&format!("SELECT {} FROM locks", LockInfo::COLUMNS))?
            .query_map([], LockInfo::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .iter()
            .any(|lock| lock.is_expired(now_us));
        Ok((timeouts, locks))
    })()
    .map_err(storage_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status line's queue size never walks the whole table: every count it makes is a
    /// range of the claim-order index (so finished items cost nothing).
    #[test]
    fn queue_size_reads_the_index_not_the_table() {
        let conn = crate::store::open_in_memory().unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {WORK_QUEUE_SIZE}"))
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let on_items: Vec<&String> = plan.iter().filter(|l| l.contains("work_items")).collect();
        assert_eq!(on_items.len(), 3, "{plan:?}");
        for line in on_items {
            assert!(
                line.starts_with(
                    "SEARCH work_items USING COVERING INDEX idx_work_items_claim_order"
                ),
                "{plan:?}"
            );
        }
    }
}
