//! Client sessions: exactly-once writes through `(client_id, seq)`.
//!
//! A client retries a write with the same `seq` when it does not know whether the first try was
//! applied (timeout, leader change). The state machine remembers the results of a client's
//! recent writes, keyed by `(client_id, seq)`, and answers a repeat from that memory instead of
//! applying twice. A client may have many writes in flight at once, and they may be applied in
//! any order; each carries `first_unacked`, the smallest `seq` the client still waits for, so
//! results below it are forgotten and the client's watermark rises: a `seq` under the watermark
//! was answered already and is refused as stale. Sessions expire by the log's clock, so every
//! replica expires the same sessions at the same entry.

use rusqlite::{Connection, OptionalExtension};

use super::command::{CommandResult, RejectKind};
use crate::store::json;

/// A session not used for this long (log time) is forgotten; a retry after that is applied as a
/// new write.
pub const SESSION_TTL_US: i64 = 3_600_000_000;

/// What the session table says about an incoming `(client_id, seq)`.
#[derive(Debug)]
pub(crate) enum SessionCheck {
    /// Not seen yet: apply it and [`record`] the result.
    Fresh,
    /// A write already applied, repeated: answer with its result, apply nothing.
    Repeat(CommandResult),
    /// Below the client's watermark: it was answered and forgotten; refuse.
    Stale(CommandResult),
}

/// Forgets sessions whose last write is more than [`SESSION_TTL_US`] older than `now_us`.
pub(crate) fn expire(conn: &Connection, now_us: i64) -> rusqlite::Result<()> {
    let cutoff = now_us.saturating_sub(SESSION_TTL_US);
    conn.prepare_cached("DELETE FROM client_sessions WHERE updated_us < ?1")?
        .execute([cutoff])?;
    conn.prepare_cached("DELETE FROM client_watermarks WHERE updated_us < ?1")?
        .execute([cutoff])?;
    Ok(())
}

fn stale_range(seq: u64) -> SessionCheck {
    SessionCheck::Stale(CommandResult::rejected(
        RejectKind::InvalidArgument,
        format!("sequence number {seq} is out of range (max {})", i64::MAX),
    ))
}

/// Classifies `(client_id, seq)` against the remembered session.
pub(crate) fn check(
    conn: &Connection,
    client_id: &str,
    seq: u64,
) -> rusqlite::Result<SessionCheck> {
    let Ok(signed) = i64::try_from(seq) else {
        // SQLite integers are signed; such a sequence number can only come from a broken client.
        return Ok(stale_range(seq));
    };
    let cached: Option<String> = conn
        .prepare_cached("SELECT result FROM client_sessions WHERE client_id = ?1 AND seq = ?2")?
        .query_row(rusqlite::params![client_id, signed], |row| row.get(0))
        .optional()?;
    if let Some(result) = cached {
        return Ok(SessionCheck::Repeat(json::from_text(0, &result)?));
    }
    let low: Option<i64> = conn
        .prepare_cached("SELECT low FROM client_watermarks WHERE client_id = ?1")?
        .query_row([client_id], |row| row.get(0))
        .optional()?;
    Ok(match low {
        Some(low) if signed < low => SessionCheck::Stale(CommandResult::rejected(
            RejectKind::InvalidArgument,
            format!(
                "stale sequence: {seq} of client {client_id:?} was answered already (watermark {low})"
            ),
        )),
        _ => SessionCheck::Fresh,
    })
}

/// Remembers `result` as the answer to `(client_id, seq)`, forgets the answers below
/// `first_unacked` and raises the client's watermark to it.
pub(crate) fn record(
    conn: &Connection,
    client_id: &str,
    seq: u64,
    first_unacked: u64,
    result: &CommandResult,
    now_us: i64,
) -> rusqlite::Result<()> {
    let to_i64 =
        |v: u64| i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)));
    let seq = to_i64(seq)?;
    // A watermark above this write's own seq would refuse its retries; cap it.
    let low = to_i64(first_unacked)?.min(seq);
    conn.prepare_cached(
        "INSERT INTO client_sessions (client_id, seq, result, updated_us) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(client_id, seq) DO UPDATE SET result = excluded.result,
             updated_us = excluded.updated_us",
    )?
    .execute(rusqlite::params![
        client_id,
        seq,
        json::to_text(result)?,
        now_us
    ])?;
    conn.prepare_cached("DELETE FROM client_sessions WHERE client_id = ?1 AND seq < ?2")?
        .execute(rusqlite::params![client_id, low])?;
    conn.prepare_cached(
        "INSERT INTO client_watermarks (client_id, low, updated_us) VALUES (?1, ?2, ?3)
         ON CONFLICT(client_id) DO UPDATE SET low = MAX(low, excluded.low),
             updated_us = excluded.updated_us",
    )?
    .execute(rusqlite::params![client_id, low, now_us])?;
    Ok(())
}
