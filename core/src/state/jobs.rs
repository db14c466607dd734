//! Job assignments: which node runs which job, and how it went.
//!
//! Unlike work items, jobs are pushed to a node (assigned) rather than pulled (claimed), and an
//! assignment may be changed at any time by assigning the job again.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::command::{CommandResult, RejectKind};
use super::machine::Ctx;
use super::records::{Job, JobStatus};
use crate::store::json;

/// Reads one job.
pub(crate) fn get(conn: &Connection, job_id: &str) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM jobs WHERE job_id = ?1",
        Job::COLUMNS
    ))?
    .query_row([job_id], Job::from_row)
    .optional()
}

/// `JobAssign`: creates the job, or reassigns an existing one whatever its status, as
/// `assigned` to `node_id` at `now` with result, error and start/end times cleared →
/// `Bool(true)`. `data = None` keeps a reassigned job's payload (a new job gets `null`).
/// Empty ids are refused.
pub(crate) fn assign(
    conn: &Connection,
    ctx: &Ctx<'_>,
    job_id: &str,
    node_id: &str,
    data: Option<&Value>,
) -> rusqlite::Result<CommandResult> {
    if job_id.trim().is_empty() || node_id.trim().is_empty() {
        return Ok(CommandResult::rejected(
            RejectKind::InvalidArgument,
            "job_id and node_id must not be empty",
        ));
    }
    let data = match data {
        Some(value) => value.clone(),
        None => get(conn, job_id)?.map_or(Value::Null, |job| job.data),
    };
    conn.prepare_cached(
        "INSERT INTO jobs (job_id, node_id, status, data, result, error, assigned_at,
             started_at, completed_at)
         VALUES (?1, ?2, 'assigned', ?3, 'null', '', ?4, 0, 0)
         ON CONFLICT(job_id) DO UPDATE SET node_id = excluded.node_id, status = 'assigned',
             data = excluded.data, result = 'null', error = '',
             assigned_at = excluded.assigned_at, started_at = 0, completed_at = 0",
    )?
    .execute(params![job_id, node_id, json::to_text(&data)?, ctx.now_s()])?;
    Ok(CommandResult::Bool(true))
}

fn status(conn: &Connection, job_id: &str) -> rusqlite::Result<Option<JobStatus>> {
    Ok(get(conn, job_id)?.map(|job| job.status))
}

/// `JobStart`: assigned → running, `started_at = now` → `Bool`.
pub(crate) fn start(
    conn: &Connection,
    ctx: &Ctx<'_>,
    job_id: &str,
) -> rusqlite::Result<CommandResult> {
    if status(conn, job_id)? != Some(JobStatus::Assigned) {
        return Ok(CommandResult::Bool(false));
    }
    conn.prepare_cached("UPDATE jobs SET status = 'running', started_at = ?2 WHERE job_id = ?1")?
        .execute(params![job_id, ctx.now_s()])?;
    Ok(CommandResult::Bool(true))
}

/// `JobComplete`: assigned|running → completed with `result` (`None` = `null`) → `Bool`.
pub(crate) fn complete(
    conn: &Connection,
    ctx: &Ctx<'_>,
    job_id: &str,
    result: Option<&Value>,
) -> rusqlite::Result<CommandResult> {
    if !status(conn, job_id)?.is_some_and(JobStatus::is_active) {
        return Ok(CommandResult::Bool(false));
    }
    let result = result.cloned().unwrap_or(Value::Null);
    conn.prepare_cached(
        "UPDATE jobs SET status = 'completed', result = ?2, completed_at = ?3 WHERE job_id = ?1",
    )?
    .execute(params![job_id, json::to_text(&result)?, ctx.now_s()])?;
    Ok(CommandResult::Bool(true))
}

/// `JobFail`: assigned|running → failed with `error` → `Bool`.
pub(crate) fn fail(
    conn: &Connection,
    ctx: &Ctx<'_>,
    job_id: &str,
    error: &str,
) -> rusqlite::Result<CommandResult> {
    if !status(conn, job_id)?.is_some_and(JobStatus::is_active) {
        return Ok(CommandResult::Bool(false));
    }
    conn.prepare_cached(
        "UPDATE jobs SET status = 'failed', error = ?2, completed_at = ?3 WHERE job_id = ?1",
    )?
    .execute(params![job_id, error, ctx.now_s()])?;
    Ok(CommandResult::Bool(true))
}
