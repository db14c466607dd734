//! The replicated work queue (DESIGN.md §4): add, claim, the claim lifecycle, timeouts,
//! retention and backpressure.
//!
//! Each function here is one command's effect on the open transaction. A command that does not
//! apply in the current state answers `Bool(false)` (unknown id, wrong status, wrong node: what
//! the orchestrator expects for "not found") or [`CommandResult::Rejected`] (invalid arguments,
//! duplicates, backpressure); it never fails the entry. Claims are conditional updates on the
//! claimable predicate, so two nodes can never both hold one item.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::command::{CommandResult, NewWorkItem, RejectKind};
use super::machine::Ctx;
use super::records::{empty_object, WorkItem, WorkStatus};
use crate::store::schema::WORK_STATS_KEYS;
use crate::store::{json, meta};

/// An add is refused while more than this many items are pending (unless forced).
pub const BACKPRESSURE_REFUSE_ABOVE: i64 = 1000;
/// Above this many pending items the queue reports a backpressure warning.
pub const BACKPRESSURE_WARN_ABOVE: i64 = 500;
/// Once refusing, adds are accepted again only when pending is back to this many or fewer.
pub const BACKPRESSURE_RESUME_AT: i64 = 200;
/// The largest `WorkAddBatch`.
pub const MAX_BATCH: usize = 100;
/// Lowest allowed priority.
pub const MIN_PRIORITY: i64 = 0;
/// Highest allowed priority.
pub const MAX_PRIORITY: i64 = 100;
/// The error recorded on an item whose claim timed out.
pub const TIMEOUT_ERROR: &str = "timeout";

/// SQL predicate over the alias `w`: pending, attempts left, and no dependency that exists and
/// is not completed. A dependency that no longer exists (cleaned up, or never added) counts as
/// completed; a failed, cancelled or timed-out one blocks forever. `depends_on` that is not a
/// JSON array (possible in a legacy file) and non-text entries are ignored, exactly as
/// `WorkItem::depends_on` reads them.
const CLAIMABLE: &str = "w.status = 'pending' AND w.attempts < w.max_attempts AND NOT EXISTS (
    SELECT 1 FROM json_each(CASE WHEN json_valid(w.depends_on)
                                 THEN CASE WHEN json_type(w.depends_on) = 'array'
                                           THEN w.depends_on ELSE '[]' END
                                 ELSE '[]' END) AS d
    JOIN work_items AS dep ON dep.work_id = d.value
    WHERE d.type = 'text' AND dep.status IS NOT 'completed')";

/// Whether an add would be refused, given the replicated flag and the pending count: the
/// hysteresis refuses above [`BACKPRESSURE_REFUSE_ABOVE`] and keeps refusing until pending is
/// at most [`BACKPRESSURE_RESUME_AT`].
pub fn backpressure_refuses(active: bool, pending: i64) -> bool {
    if active {
        pending > BACKPRESSURE_RESUME_AT
    } else {
        pending > BACKPRESSURE_REFUSE_ABOVE
    }
}

fn rejected(kind: RejectKind, message: impl Into<String>) -> CommandResult {
    CommandResult::rejected(kind, message)
}

fn invalid(message: impl Into<String>) -> CommandResult {
    rejected(RejectKind::InvalidArgument, message)
}

/// The argument rules of an add. Beyond DESIGN.md's ranges it refuses an item that depends on
/// itself (it could never be claimed) and a `config` that is neither an object nor null.
fn validate(item: &NewWorkItem) -> Option<String> {
    if item.work_id.trim().is_empty() {
        return Some("work_id must not be empty".into());
    }
    if item.work_type.trim().is_empty() {
        return Some(format!("work_type of {:?} must not be empty", item.work_id));
    }
    if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&item.priority) {
        return Some(format!(
            "priority {} of {:?} is out of range ({MIN_PRIORITY}-{MAX_PRIORITY})",
            item.priority, item.work_id
        ));
    }
    if !(item.timeout_seconds.is_finite() && item.timeout_seconds > 0.0) {
        return Some(format!(
            "timeout_seconds {} of {:?} must be a finite number > 0",
            item.timeout_seconds, item.work_id
        ));
    }
    if item.max_attempts < 1 {
        return Some(format!(
            "max_attempts {} of {:?} must be at least 1",
            item.max_attempts, item.work_id
        ));
    }
    if !matches!(item.config, Value::Object(_) | Value::Null) {
        return Some(format!(
            "config of {:?} must be a JSON object",
            item.work_id
        ));
    }
    if item.depends_on.iter().any(|dep| dep.is_empty()) {
        return Some(format!("depends_on of {:?} has an empty id", item.work_id));
    }
    if item.depends_on.contains(&item.work_id) {
        return Some(format!("{:?} depends on itself", item.work_id));
    }
    None
}

fn exists(conn: &Connection, work_id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM work_items WHERE work_id = ?1")?
        .query_row([work_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Number of items with status `pending` (kept by triggers, see
/// [`crate::store::schema::rebuild_pending_count`]).
pub(crate) fn count_pending(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT n FROM work_pending_count WHERE id = 1")?
        .query_row([], |row| row.get(0))
}

/// Decides an unforced add against backpressure and updates the replicated flag. `None` admits.
/// A batch is judged like a single add, by the pending count before it.
fn admit(conn: &Connection, force: bool) -> rusqlite::Result<Option<CommandResult>> {
    if force {
        return Ok(None);
    }
    let pending = count_pending(conn)?;
    let active = meta::get_flag(conn, meta::BACKPRESSURE_ACTIVE)?;
    let refuse = backpressure_refuses(active, pending);
    if refuse != active {
        meta::set_flag(conn, meta::BACKPRESSURE_ACTIVE, refuse)?;
    }
    Ok(refuse.then(|| {
        rejected(
            RejectKind::Backpressure,
            format!(
                "work queue backpressure: {pending} pending items; adds are refused until \
                 {BACKPRESSURE_RESUME_AT} or fewer remain (force bypasses)"
            ),
        )
    }))
}

fn insert(conn: &Connection, ctx: &Ctx<'_>, item: &NewWorkItem) -> rusqlite::Result<()> {
    let config = match &item.config {
        Value::Null => empty_object(),
        other => other.clone(),
    };
    conn.prepare_cached(
        "INSERT INTO work_items (work_id, work_type, priority, config, created_at, claimed_at,
             started_at, completed_at, status, claimed_by, attempts, max_attempts,
             timeout_seconds, result, error, depends_on)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0, 'pending', '', 0, ?6, ?7, '{}', '', ?8)",
    )?
    .execute(params![
        item.work_id,
        item.work_type,
        item.priority,
        json::to_text(&config)?,
        ctx.now_s(),
        item.max_attempts,
        item.timeout_seconds,
        json::to_text(&item.depends_on)?,
    ])?;
    Ok(())
}

/// A `work_stats` counter (the keys of [`WORK_STATS_KEYS`], in that order).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stat {
    Added,
    Completed,
    Failed,
    Timeout,
    Cancelled,
}

/// What the writes of one [`crate::state::apply_writes`] call add to the `work_stats`
/// counters, stored once by [`StatDeltas::store`] at the end of the call.
///
/// Why: an add and a complete each upserted their counter row, about 5 % of the
/// instructions of a write (callgrind, the add / claim_next / complete mix); a batch of 26
/// writes now stores at most five rows. Nothing reads `work_stats` while a call applies.
#[derive(Debug, Default)]
pub(crate) struct StatDeltas([Cell<i64>; WORK_STATS_KEYS.len()]);

impl StatDeltas {
    /// Counts `by` more on `stat`.
    pub(crate) fn add(&self, stat: Stat, by: i64) {
        let cell = &self.0[stat as usize];
        cell.set(cell.get() + by);
    }

    /// Adds the counted deltas to their rows, in key order.
    pub(crate) fn store(&self, conn: &Connection) -> rusqlite::Result<()> {
        for (key, delta) in WORK_STATS_KEYS.iter().zip(&self.0) {
            let by = delta.take();
            if by == 0 {
                continue;
            }
            conn.prepare_cached(
                "INSERT INTO work_stats (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = COALESCE(value, 0) + excluded.value",
            )?
            .execute(params![key, by])?;
        }
        Ok(())
    }
}

/// `WorkAdd`: validates, refuses a duplicate id (any status; a cleaned-up id may be reused),
/// applies backpressure unless `force`, then inserts a pending item created at `now`.
pub(crate) fn add(
    conn: &Connection,
    ctx: &Ctx<'_>,
    item: &NewWorkItem,
    force: bool,
) -> rusqlite::Result<CommandResult> {
    if let Some(message) = validate(item) {
        return Ok(invalid(message));
    }
    if exists(conn, &item.work_id)? {
        return Ok(invalid(format!("duplicate work_id {:?}", item.work_id)));
    }
    if let Some(refusal) = admit(conn, force)? {
        return Ok(refusal);
    }
    insert(conn, ctx, item)?;
    ctx.stats.add(Stat::Added, 1);
    Ok(CommandResult::WorkId(item.work_id.clone()))
}

/// `WorkAddBatch`: 1–[`MAX_BATCH`] items, all or none. Everything is checked before anything is
/// written (arguments, duplicates inside the batch and against the table, backpressure), so a
/// refusal leaves the queue untouched.
pub(crate) fn add_batch(
    conn: &Connection,
    ctx: &Ctx<'_>,
    items: &[NewWorkItem],
    force: bool,
) -> rusqlite::Result<CommandResult> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Ok(invalid(format!(
            "a batch holds 1-{MAX_BATCH} items, not {}",
            items.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(message) = validate(item) {
            return Ok(invalid(format!("batch item {i}: {message}")));
        }
        if !seen.insert(item.work_id.as_str()) {
            return Ok(invalid(format!(
                "batch item {i}: duplicate work_id {:?} within the batch",
                item.work_id
            )));
        }
        if exists(conn, &item.work_id)? {
            return Ok(invalid(format!(
                "batch item {i}: duplicate work_id {:?}",
                item.work_id
            )));
        }
    }
    if let Some(refusal) = admit(conn, force)? {
        return Ok(refusal);
    }
    for item in items {
        insert(conn, ctx, item)?;
    }
    ctx.stats.add(Stat::Added, items.len() as i64);
    Ok(CommandResult::WorkIds(
        items.iter().map(|item| item.work_id.clone()).collect(),
    ))
}

/// The conditional claim update. A new attempt has not started yet, so `started_at` resets.
fn claim_if_claimable(
    conn: &Connection,
    ctx: &Ctx<'_>,
    work_id: &str,
    node_id: &str,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(&format!(
            "UPDATE work_items AS w SET status = 'claimed', claimed_by = ?2, claimed_at = ?3,
                 started_at = 0, attempts = attempts + 1
             WHERE w.work_id = ?1 AND {CLAIMABLE}"
        ))?
        .execute(params![work_id, node_id, ctx.now_s()])?;
    Ok(changed == 1)
}

/// `WorkClaim`: claims `work_id` for `node_id` when it is claimable (pending, attempts left,
/// dependencies completed or gone) → `Bool`. An empty `node_id` is refused: a claim must name
/// its holder or the node checks of the later steps mean nothing.
pub(crate) fn claim(
    conn: &Connection,
    ctx: &Ctx<'_>,
    work_id: &str,
    node_id: &str,
) -> rusqlite::Result<CommandResult> {
    if node_id.trim().is_empty() {
        return Ok(invalid("node_id must not be empty"));
    }
    Ok(CommandResult::Bool(claim_if_claimable(
        conn, ctx, work_id, node_id,
    )?))
}

/// `WorkClaimNext`: claims the first claimable item in `priority DESC, created_at ASC,
/// work_id ASC` whose type is in `capabilities` (`None` or empty = any) → the row after the
/// claim, or `Item(None)`.
pub(crate) fn claim_next(
    conn: &Connection,
    ctx: &Ctx<'_>,
    node_id: &str,
    capabilities: Option<&[String]>,
) -> rusqlite::Result<CommandResult> {
    if node_id.trim().is_empty() {
        return Ok(invalid("node_id must not be empty"));
    }
    let capabilities = match capabilities {
        Some(types) if !types.is_empty() => Some(json::to_text(types)?),
        _ => None,
    };
    // The whole row comes with the candidate: the answer is that row as the claim leaves it,
    // so it is not read a second time (a second lookup cost about a fifth of a claim).
    static NEXT_CLAIMABLE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM work_items AS w
             WHERE {CLAIMABLE}
               AND (?1 IS NULL OR w.work_type IN (SELECT value FROM json_each(?1)))
             ORDER BY w.priority DESC, w.created_at ASC, w.work_id ASC
             LIMIT 1",
            WorkItem::COLUMNS
        )
    });
    let candidate = conn
        .prepare_cached(&NEXT_CLAIMABLE)?
        .query_row([capabilities], WorkItem::from_row)
        .optional()?;
    let Some(mut item) = candidate else {
        return Ok(CommandResult::Item(None));
    };
    // The row was just selected as claimable inside this transaction: the claim needs no
    // second check. Claimable means `attempts` is not NULL, so `attempts + 1` below and in
    // the answer agree.
    conn.prepare_cached(
        "UPDATE work_items SET status = 'claimed', claimed_by = ?2, claimed_at = ?3,
             started_at = 0, attempts = attempts + 1
         WHERE work_id = ?1",
    )?
    .execute(params![item.work_id, node_id, ctx.now_s()])?;
    item.status = WorkStatus::Claimed;
    item.claimed_by = node_id.to_string();
    item.claimed_at = ctx.now_s();
    item.started_at = 0.0;
    item.attempts += 1;
    Ok(CommandResult::Item(Some(Box::new(item))))
}

/// Reads one item.
pub(crate) fn get(conn: &Connection, work_id: &str) -> rusqlite::Result<Option<WorkItem>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM work_items WHERE work_id = ?1",
        WorkItem::COLUMNS
    ))?
    .query_row([work_id], WorkItem::from_row)
    .optional()
}

/// An item's claim state, for the lifecycle steps.
struct ClaimState {
    status: WorkStatus,
    claimed_by: String,
    attempts: i64,
    max_attempts: i64,
}

impl ClaimState {
    /// When the caller names a node, it must be the one holding the claim: a worker whose claim
    /// timed out and was re-claimed elsewhere must not finish someone else's attempt.
    fn held_by(&self, node_id: Option<&str>) -> bool {
        node_id.is_none_or(|node| node == self.claimed_by)
    }

    fn is_active(&self) -> bool {
        matches!(self.status, WorkStatus::Claimed | WorkStatus::Running)
    }
}

/// Reads only the claim columns (the lifecycle steps run on most writes; the whole row with its
/// JSON columns is not needed), with the same NULL defaults as [`WorkItem::from_row`].
fn claim_state(conn: &Connection, work_id: &str) -> rusqlite::Result<Option<ClaimState>> {
    conn.prepare_cached(
        "SELECT status, claimed_by, attempts, max_attempts FROM work_items WHERE work_id = ?1",
    )?
    .query_row([work_id], |row| {
        Ok(ClaimState {
            status: WorkStatus::from_column(row, 0)?,
            claimed_by: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            attempts: row.get::<_, Option<i64>>(2)?.unwrap_or(0),
            max_attempts: row.get::<_, Option<i64>>(3)?.unwrap_or(3),
        })
    })
    .optional()
}

/// `WorkStart`: claimed → running, `started_at = now` → `Bool`.
pub(crate) fn start(
    conn: &Connection,
    ctx: &Ctx<'_>,
    work_id: &str,
    node_id: Option<&str>,
) -> rusqlite::Result<CommandResult> {
    let Some(state) = claim_state(conn, work_id)? else {
        return Ok(CommandResult::Bool(false));
    };
    if state.status != WorkStatus::Claimed || !state.held_by(node_id) {
        return Ok(CommandResult::Bool(false));
    }
    conn.prepare_cached(
        "UPDATE work_items SET status = 'running', started_at = ?2 WHERE work_id = ?1",
    )?
    .execute(params![work_id, ctx.now_s()])?;
    Ok(CommandResult::Bool(true))
}

/// `WorkComplete`: claimed|running → completed with `result` (`None` stores `{}`) and
/// `completed_at = now` → `Bool`.
pub(crate) fn complete(
    conn: &Connection,
    ctx: &Ctx<'_>,
    work_id: &str,
    result: Option<&Value>,
    node_id: Option<&str>,
) -> rusqlite::Result<CommandResult> {
    let Some(state) = claim_state(conn, work_id)? else {
        return Ok(CommandResult::Bool(false));
    };
    if !state.is_active() || !state.held_by(node_id) {
        return Ok(CommandResult::Bool(false));
    }
    let result = result.cloned().unwrap_or_else(empty_object);
    conn.prepare_cached(
        "UPDATE work_items SET status = 'completed', completed_at = ?2, result = ?3
         WHERE work_id = ?1",
    )?
    .execute(params![work_id, ctx.now_s(), json::to_text(&result)?])?;
    ctx.stats.add(Stat::Completed, 1);
    Ok(CommandResult::Bool(true))
}

/// `WorkFail`: claimed|running → pending (claim cleared, `error` kept) while
/// `attempts < max_attempts`, else → failed with `completed_at = now` → `Bool`.
/// `total_failed` counts items that became `failed`, not retried failures.
pub(crate) fn fail(
    conn: &Connection,
    ctx: &Ctx<'_>,
    work_id: &str,
    error: &str,
    node_id: Option<&str>,
) -> rusqlite::Result<CommandResult> {
    let Some(state) = claim_state(conn, work_id)? else {
        return Ok(CommandResult::Bool(false));
    };
    if !state.is_active() || !state.held_by(node_id) {
        return Ok(CommandResult::Bool(false));
    }
    if state.attempts < state.max_attempts {
        conn.prepare_cached(
            "UPDATE work_items SET status = 'pending', claimed_by = '', error = ?2
             WHERE work_id = ?1",
        )?
        .execute(params![work_id, error])?;
    } else {
        conn.prepare_cached(
            "UPDATE work_items SET status = 'failed', error = ?2, completed_at = ?3
             WHERE work_id = ?1",
        )?
        .execute(params![work_id, error, ctx.now_s()])?;
        ctx.stats.add(Stat::Failed, 1);
    }
    Ok(CommandResult::Bool(true))
}

/// `WorkRelease`: claimed|running → pending with the claim cleared and the attempt given back
/// (`attempts − 1`, never below 0) → `Bool`.
pub(crate) fn release(
    conn: &Connection,
    work_id: &str,
    node_id: Option<&str>,
) -> rusqlite::Result<CommandResult> {
    let Some(state) = claim_state(conn, work_id)? else {
        return Ok(CommandResult::Bool(false));
    };
    if !state.is_active() || !state.held_by(node_id) {
        return Ok(CommandResult::Bool(false));
    }
    conn.prepare_cached(
        "UPDATE work_items SET status = 'pending', claimed_by = '',
             attempts = MAX(attempts - 1, 0)
         WHERE work_id = ?1",
    )?
    .execute([work_id])?;
    Ok(CommandResult::Bool(true))
}

/// `WorkCancel`: pending|claimed|running → cancelled with `completed_at = now` → `Bool`
/// (`false` for a terminal or unknown item).
pub(crate) fn cancel(
    conn: &Connection,
    ctx: &Ctx<'_>,
    work_id: &str,
) -> rusqlite::Result<CommandResult> {
    let changed = conn
        .prepare_cached(
            "UPDATE work_items SET status = 'cancelled', completed_at = ?2
             WHERE work_id = ?1 AND status IN ('pending', 'claimed', 'running')",
        )?
        .execute(params![work_id, ctx.now_s()])?;
    if changed == 1 {
        ctx.stats.add(Stat::Cancelled, 1);
    }
    Ok(CommandResult::Bool(changed == 1))
}

/// `WorkCheckTimeouts`: every claimed|running item with `now - claimed_at > timeout_seconds`
/// goes back to pending (claim cleared, `error = "timeout"`) when attempts remain, else to
/// `timeout` with `completed_at = now` → `Ids` of all of them, sorted. The attempt is not given
/// back: a timed-out attempt was used. `total_timeout` counts every timeout, requeued or final.
pub(crate) fn check_timeouts(conn: &Connection, ctx: &Ctx<'_>) -> rusqlite::Result<CommandResult> {
    let now_s = ctx.now_s();
    let overdue: Vec<(String, i64, i64)> = conn
        .prepare_cached(
            "SELECT work_id, attempts, max_attempts FROM work_items
             WHERE status IN ('claimed', 'running')
               AND ?1 - COALESCE(claimed_at, 0) > timeout_seconds
             ORDER BY work_id",
        )?
        .query_map([now_s], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (work_id, attempts, max_attempts) in &overdue {
        if attempts < max_attempts {
            conn.prepare_cached(
                "UPDATE work_items SET status = 'pending', claimed_by = '', error = ?2
                 WHERE work_id = ?1",
            )?
            .execute(params![work_id, TIMEOUT_ERROR])?;
        } else {
            conn.prepare_cached(
                "UPDATE work_items SET status = 'timeout', error = ?2, completed_at = ?3
                 WHERE work_id = ?1",
            )?
            .execute(params![work_id, TIMEOUT_ERROR, now_s])?;
        }
    }
    if !overdue.is_empty() {
        ctx.stats.add(Stat::Timeout, overdue.len() as i64);
    }
    Ok(CommandResult::Ids(
        overdue.into_iter().map(|(work_id, _, _)| work_id).collect(),
    ))
}

/// `WorkCleanup`: deletes terminal items with `now - completed_at > retention` → `Ids` of the
/// deleted items, sorted. A terminal item with `completed_at = 0` (possible in a legacy file)
/// ages from `created_at` instead. Non-terminal items are never deleted, however old. A negative
/// retention is refused.
pub(crate) fn cleanup(
    conn: &Connection,
    ctx: &Ctx<'_>,
    retention_us: i64,
) -> rusqlite::Result<CommandResult> {
    if retention_us < 0 {
        return Ok(invalid(format!(
            "retention_us {retention_us} must not be negative"
        )));
    }
    let expired: Vec<String> = conn
        .prepare_cached(
            "SELECT work_id FROM work_items
             WHERE status IN ('completed', 'failed', 'timeout', 'cancelled')
               AND ?1 - (CASE WHEN completed_at > 0 THEN completed_at
                              ELSE COALESCE(created_at, 0) END) > ?2
             ORDER BY work_id",
        )?
        .query_map(
            params![ctx.now_s(), retention_us as f64 / 1_000_000.0],
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = conn.prepare_cached("DELETE FROM work_items WHERE work_id = ?1")?;
    for work_id in &expired {
        delete.execute([work_id])?;
    }
    Ok(CommandResult::Ids(expired))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `StatDeltas` indexes the counters by `Stat as usize`: the variants must follow
    /// `WORK_STATS_KEYS`.
    #[test]
    fn stats_follow_the_key_order() {
        let pairs = [
            (Stat::Added, "total_added"),
            (Stat::Completed, "total_completed"),
            (Stat::Failed, "total_failed"),
            (Stat::Timeout, "total_timeout"),
            (Stat::Cancelled, "total_cancelled"),
        ];
        assert_eq!(pairs.len(), WORK_STATS_KEYS.len());
        for (stat, key) in pairs {
            assert_eq!(WORK_STATS_KEYS[stat as usize], key);
        }
    }
}
