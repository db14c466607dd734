//! `apply`: one committed log entry → one deterministic state change and result.
//!
//! The Raft layer calls [`apply_writes_grouped`] for each committed entry (a batch of writes)
//! inside its group-commit transaction; see the module docs of [`super`] for the other entry
//! points. Writes are numbered consecutively (see [`apply_next`]). Apply touches
//! nothing but the transaction it is given: no clock (time is the entry's `now_us`, never
//! earlier than the last one), no randomness, no map iteration order, no rowid order. Every
//! multi-row query orders by a primary key or a total order ending in one.
//!
//! Errors are reserved for storage failures (and for an index that does not advance, which is a
//! caller bug that would otherwise apply an entry twice); the caller then aborts the transaction.
//! A command that is invalid in the current state yields [`CommandResult::Rejected`] or
//! `Bool(false)` instead, because every replica must reach the same verdict and move past it.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::command::{Command, CommandResult, Envelope};
use super::session::{self, SessionCache, SessionCheck};
use super::work_queue::StatDeltas;
use super::{jobs, kv, locks, work_queue};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{meta, storage_error};

/// What a command handler may know about the entry being applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The write's index (see [`apply_next`]; locks use it as the fencing token).
    pub write_index: u64,
    /// The state machine's clock for this entry: `max(last now, envelope now)`, µs.
    pub now_us: i64,
    /// The `work_stats` counters the writes of this call move, stored once at its end.
    pub stats: &'a StatDeltas,
}

impl Ctx<'_> {
    /// The clock as float seconds, the unit of the work item and job timestamps.
    pub fn now_s(&self) -> f64 {
        self.now_us as f64 / 1_000_000.0
    }
}

/// Applies the entry at `log_index` inside `tx` and returns its result.
///
/// In order: checks that `log_index` is past `last_applied_index` (when one is recorded),
/// advances the clock to `max(last_now_us, env.now_us)`, records `last_applied_index`, expires
/// idle client sessions, answers a repeated `(client_id, seq)` from the session, and otherwise
/// runs the command and remembers its result in the client's session. All of it commits or
/// aborts with `tx`.
pub fn apply(tx: &Transaction<'_>, log_index: u64, env: &Envelope) -> Result<CommandResult> {
    let conn: &Connection = tx;
    // SQLite integers are signed; no real log gets past i64::MAX.
    let index = i64::try_from(log_index).map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("log index {log_index} is out of range (max {})", i64::MAX),
        )
    })?;
    if let Some(last) = meta::get_i64(conn, meta::LAST_APPLIED_INDEX).map_err(storage_error)? {
        if index <= last {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("log index {log_index} is not after the last applied index {last}"),
            ));
        }
    }
    let mut sessions = SessionCache::new();
    let (_, mut results) =
        apply_writes_from(conn, &mut sessions, log_index, std::slice::from_ref(env))
            .and_then(|applied| sessions.persist(conn).map(|()| applied))
            .map_err(storage_error)?;
    results
        .pop()
        .ok_or_else(|| Error::new(ErrorKind::Storage, "applying one write returned no result"))
}

/// One write's session handling and effect (the bookkeeping around it is the caller's).
fn apply_write(
    conn: &Connection,
    ctx: &Ctx<'_>,
    sessions: &mut SessionCache,
    env: &Envelope,
) -> rusqlite::Result<CommandResult> {
    if env.client_id.is_empty() {
        return dispatch(conn, ctx, &env.command);
    }
    match sessions.check(conn, &env.client_id, env.seq)? {
        SessionCheck::Repeat(result) | SessionCheck::Stale(result) => Ok(result),
        SessionCheck::Fresh => {
            let result = dispatch(conn, ctx, &env.command)?;
            sessions.record(conn, &env.client_id, env.seq, env.first_unacked, &result)?;
            Ok(result)
        }
    }
}

/// Applies `writes` (one Raft entry's batch) as the next writes, in order, on `conn`, which
/// must be inside the caller's write transaction; one result per write. Client sessions are
/// written to the tables before it returns (see [`apply_writes_grouped`] for keeping them in
/// memory across calls).
///
/// The same state and results as [`apply`] at the next indexes, one write after another, with
/// the bookkeeping done once per batch: the clock and `last_applied_index` are read and stored
/// once, idle client sessions are expired only when the clock moves (a leader's batch shares
/// one clock), and each client's session is read once per call and written back at its end
/// ([`SessionCache`]).
pub fn apply_writes(conn: &Connection, writes: &[Envelope]) -> Result<Vec<CommandResult>> {
    let mut sessions = SessionCache::new();
    let results = apply_writes_grouped(conn, &mut sessions, writes)?;
    sessions.persist(conn).map_err(storage_error)?;
    Ok(results)
}

/// [`apply_writes`] with the client sessions kept in `sessions` instead of the tables: the
/// caller calls [`SessionCache::persist`] before it commits the transaction (the Raft state
/// store does, for each group of entries it commits together, see
/// `consensus::raft::group_commit`), and [`SessionCache::discard`] if it rolls it back.
pub fn apply_writes_grouped(
    conn: &Connection,
    sessions: &mut SessionCache,
    writes: &[Envelope],
) -> Result<Vec<CommandResult>> {
    let (_, results) = apply_writes_inner(conn, sessions, writes).map_err(storage_error)?;
    Ok(results)
}

/// Applies `writes` after the last applied write; returns the index of the last one and the
/// results.
fn apply_writes_inner(
    conn: &Connection,
    sessions: &mut SessionCache,
    writes: &[Envelope],
) -> rusqlite::Result<(u64, Vec<CommandResult>)> {
    let last_index = meta::get_i64(conn, meta::LAST_APPLIED_INDEX)?
        .unwrap_or(0)
        .max(0);
    let last = u64::try_from(last_index).unwrap_or(0);
    if writes.is_empty() {
        return Ok((last, Vec::new()));
    }
    apply_writes_from(conn, sessions, last + 1, writes)
}

/// Applies `writes` as the writes numbered `first_index`, `first_index + 1`, ...; returns the
/// index of the last one and the results. The clock, `last_applied_index` and the
/// `work_stats` counters are read or stored once, and idle sessions are expired whenever the
/// clock moves.
fn apply_writes_from(
    conn: &Connection,
    sessions: &mut SessionCache,
    first_index: u64,
    writes: &[Envelope],
) -> rusqlite::Result<(u64, Vec<CommandResult>)> {
    let mut now_us = meta::get_i64(conn, meta::LAST_NOW_US)?.unwrap_or(i64::MIN);
    // The clock of the current run of writes (see `SessionCache`); a run never spans calls.
    let mut run: Option<i64> = None;
    let stats = StatDeltas::default();
    let mut results = Vec::with_capacity(writes.len());
    let mut index = first_index;
    for (offset, env) in (0u64..).zip(writes) {
        index = first_index + offset;
        now_us = now_us.max(env.now_us);
        // A run ends before the clock moves on and expires old sessions.
        if run != Some(now_us) {
            if run.is_some() {
                sessions.end_run();
            }
            session::expire(conn, sessions, now_us)?;
            sessions.begin_run(now_us);
            run = Some(now_us);
        }
        let ctx = Ctx {
            write_index: index,
            now_us,
            stats: &stats,
        };
        results.push(apply_write(conn, &ctx, sessions, env)?);
    }
    if run.is_some() {
        sessions.end_run();
    }
    stats.store(conn)?;
    meta::set_i64(conn, meta::LAST_NOW_US, now_us)?;
    meta::set(conn, meta::LAST_APPLIED_INDEX, &index.to_string())?;
    Ok((index, results))
}

fn dispatch(
    conn: &Connection,
    ctx: &Ctx<'_>,
    command: &Command,
) -> rusqlite::Result<CommandResult> {
    match command {
        Command::WorkAdd { item, force } => work_queue::add(conn, ctx, item, *force),
        Command::WorkAddBatch { items, force } => work_queue::add_batch(conn, ctx, items, *force),
        Command::WorkClaim { work_id, node_id } => work_queue::claim(conn, ctx, work_id, node_id),
        Command::WorkClaimNext {
            node_id,
            capabilities,
        } => work_queue::claim_next(conn, ctx, node_id, capabilities.as_deref()),
        Command::WorkStart { work_id, node_id } => {
            work_queue::start(conn, ctx, work_id, node_id.as_deref())
        }
        Command::WorkComplete {
            work_id,
            result,
            node_id,
        } => work_queue::complete(conn, ctx, work_id, result.as_ref(), node_id.as_deref()),
        Command::WorkFail {
            work_id,
            error,
            node_id,
        } => work_queue::fail(conn, ctx, work_id, error, node_id.as_deref()),
        Command::WorkRelease { work_id, node_id } => {
            work_queue::release(conn, work_id, node_id.as_deref())
        }
        Command::WorkCancel { work_id } => work_queue::cancel(conn, ctx, work_id),
        Command::WorkCheckTimeouts => work_queue::check_timeouts(conn, ctx),
        Command::WorkCleanup { retention_us } => work_queue::cleanup(conn, ctx, *retention_us),
        Command::JobAssign {
            job_id,
            node_id,
            data,
        } => jobs::assign(conn, ctx, job_id, node_id, data.as_ref()),
        Command::JobStart { job_id } => jobs::start(conn, ctx, job_id),
        Command::JobComplete { job_id, result } => {
            jobs::complete(conn, ctx, job_id, result.as_ref())
        }
        Command::JobFail { job_id, error } => jobs::fail(conn, ctx, job_id, error),
        Command::LockAcquire {
            name,
            holder,
            ttl_us,
        } => locks::acquire(conn, ctx, name, holder, *ttl_us),
        Command::LockRelease { name, holder } => locks::release(conn, ctx, name, holder),
        Command::LockExpire => locks::expire(conn, ctx),
        Command::KvSet { key, value } => kv::set(conn, key, value),
        Command::KvDelete { key } => kv::delete(conn, key),
        Command::KvCompareAndSet { key, expected, new } => {
            kv::compare_and_set(conn, key, expected.as_ref(), new.as_ref())
        }
        Command::Noop => Ok(CommandResult::Unit),
    }
}

/// Applies consecutive entries in one transaction; results are in the entries' order. Stops at
/// the first error (the caller aborts the transaction, so nothing of the batch remains).
pub fn apply_batch(
    tx: &Transaction<'_>,
    entries: &[(u64, Envelope)],
) -> Result<Vec<CommandResult>> {
    entries
        .iter()
        .map(|(index, env)| apply(tx, *index, env))
        .collect()
}

/// Applies `env` as the next write: numbers it `last_applied_index + 1` (the *write index*)
/// and applies it inside `tx`. Returns the index used and the result.
///
/// Writes are numbered consecutively in the order they are applied, the same on every replica.
/// Under Raft one log entry carries a batch of writes, so a write's index (and so a lock's
/// fencing token) is its position in the replicated sequence of writes, not the Raft log index
/// of its entry; either way tokens strictly increase.
pub fn apply_next(tx: &Transaction<'_>, env: &Envelope) -> Result<(u64, CommandResult)> {
    let mut sessions = SessionCache::new();
    let (index, mut results) = apply_writes_inner(tx, &mut sessions, std::slice::from_ref(env))
        .and_then(|applied| sessions.persist(tx).map(|()| applied))
        .map_err(storage_error)?;
    let result = results
        .pop()
        .ok_or_else(|| Error::new(ErrorKind::Storage, "applying one write returned no result"))?;
    Ok((index, result))
}

/// Applies one command outside Raft (tests; no engine path uses it): opens an immediate transaction,
/// applies `env` as the next write ([`apply_next`]) and commits. Returns the index used and the
/// result.
pub fn apply_local(conn: &mut Connection, env: &Envelope) -> Result<(u64, CommandResult)> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage_error)?;
    let applied = apply_next(&tx, env)?;
    tx.commit().map_err(storage_error)?;
    Ok(applied)
}
