//! Client sessions: exactly-once writes through `(client_id, seq)`.
//!
//! A client retries a write with the same `seq` when it does not know whether the first try was
//! applied (timeout, leader change). The state machine remembers the results of a client's
//! recent writes, keyed by `(client_id, seq)`, and answers a repeat from that memory instead of
//! applying twice. A client may have many writes in flight at once, and they may be applied in
//! any order; each carries `first_unacked`, the smallest `seq` the client still waits for, so
//! results below it are forgotten and the client's watermark rises: a `seq` under the watermark
//! was answered already and is refused as stale. Sessions expire by the log's clock, so every
//! replica expires the same sessions at the same entry, and they expire by client (as in the
//! Raft thesis, §6.3): a client silent for [`SESSION_TTL_US`] is forgotten together with every
//! answer it left, so the session table needs no index besides its key.

use rusqlite::Connection;

use super::command::{CommandResult, RejectKind};
use crate::store::json;

/// A client that has not written for this long (log time; up to [`WATERMARK_REFRESH_US`]
/// more, see there) is forgotten with all its remembered answers; a retry after that is
/// applied as a new write.
pub const SESSION_TTL_US: i64 = 3_600_000_000;

/// A client's watermark row refreshes its `updated_us` at most this often (log time) while the
/// watermark itself does not move, so a busy client does not rewrite the row (and its index
/// entry) on every write. Watermarks therefore expire this much later than
/// [`SESSION_TTL_US`] after the client's last write, never earlier.
pub const WATERMARK_REFRESH_US: i64 = 1_000_000;

/// A client's watermark row as [`check`] found it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watermark {
    low: i64,
    updated_us: i64,
}

/// What the session table says about an incoming `(client_id, seq)`.
#[derive(Debug)]
pub(crate) enum SessionCheck {
    /// Not seen yet: apply it and [`record`] the result (with the watermark found, if any).
    Fresh(Option<Watermark>),
    /// A write already applied, repeated: answer with its result, apply nothing.
    Repeat(CommandResult),
    /// Below the client's watermark: it was answered and forgotten; refuse.
    Stale(CommandResult),
}

/// Forgets the clients whose watermark row is more than [`SESSION_TTL_US`] +
/// [`WATERMARK_REFRESH_US`] older than `now_us`, with their remembered answers. Every client
/// with a remembered answer has a watermark row ([`record`] writes one with the first answer),
/// refreshed at least every [`WATERMARK_REFRESH_US`] while the client writes, so no answer is
/// forgotten less than [`SESSION_TTL_US`] after its client's last write.
pub(crate) fn expire(conn: &Connection, now_us: i64) -> rusqlite::Result<()> {
    let cutoff = now_us
        .saturating_sub(SESSION_TTL_US)
        .saturating_sub(WATERMARK_REFRESH_US);
    conn.prepare_cached(
        "DELETE FROM client_sessions WHERE client_id IN
             (SELECT client_id FROM client_watermarks WHERE updated_us < ?1)",
    )?
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
    // One statement: the remembered answer (if any) and the client's watermark row.
    let (cached, watermark): (Option<String>, Option<Watermark>) = conn
        .prepare_cached(
            "SELECT s.result, w.low, w.updated_us FROM (SELECT 1)
             LEFT JOIN client_sessions s ON s.client_id = ?1 AND s.seq = ?2
             LEFT JOIN client_watermarks w ON w.client_id = ?1",
        )?
        .query_row(rusqlite::params![client_id, signed], |row| {
            let low: Option<i64> = row.get(1)?;
            let updated_us: Option<i64> = row.get(2)?;
            Ok((
                row.get(0)?,
                low.zip(updated_us)
                    .map(|(low, updated_us)| Watermark { low, updated_us }),
            ))
        })?;
    if let Some(result) = cached {
        return Ok(SessionCheck::Repeat(json::from_text(0, &result)?));
    }
    Ok(match watermark {
        Some(Watermark { low, .. }) if signed < low => {
            SessionCheck::Stale(CommandResult::rejected(
                RejectKind::InvalidArgument,
                format!(
                    "stale sequence: {seq} of client {client_id:?} was answered already (watermark {low})"
                ),
            ))
        }
        found => SessionCheck::Fresh(found),
    })
}

/// Remembers `result` as the answer to `(client_id, seq)`, forgets the answers below
/// `first_unacked` and raises the client's watermark to it. `found` is the watermark row
/// [`check`] saw: answers below it are gone already, and an unchanged watermark is rewritten
/// only every [`WATERMARK_REFRESH_US`].
pub(crate) fn record(
    conn: &Connection,
    client_id: &str,
    seq: u64,
    first_unacked: u64,
    result: &CommandResult,
    now_us: i64,
    found: Option<Watermark>,
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
    let rises = found.is_none_or(|w| low > w.low);
    if rises {
        conn.prepare_cached("DELETE FROM client_sessions WHERE client_id = ?1 AND seq < ?2")?
            .execute(rusqlite::params![client_id, low])?;
    }
    let stale_row =
        found.is_none_or(|w| now_us.saturating_sub(w.updated_us) >= WATERMARK_REFRESH_US);
    if rises || stale_row {
        conn.prepare_cached(
            "INSERT INTO client_watermarks (client_id, low, updated_us) VALUES (?1, ?2, ?3)
             ON CONFLICT(client_id) DO UPDATE SET low = MAX(low, excluded.low),
                 updated_us = excluded.updated_us",
        )?
        .execute(rusqlite::params![client_id, low, now_us])?;
    }
    Ok(())
}
