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

use rusqlite::{Connection, OptionalExtension};

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

/// A client's watermark row as stored.
#[derive(Debug, Clone, Copy)]
struct Watermark {
    low: i64,
    updated_us: i64,
}

/// What the session table says about an incoming `(client_id, seq)`.
#[derive(Debug)]
pub(crate) enum SessionCheck {
    /// Not seen yet: apply it and [`Sessions::record`] the result.
    Fresh,
    /// A write already applied, repeated: answer with its result, apply nothing.
    Repeat(CommandResult),
    /// Below the client's watermark: it was answered and forgotten; refuse.
    Stale(CommandResult),
}

/// One client's session while a run of writes is applied.
#[derive(Debug)]
struct Client {
    id: String,
    /// The watermark row when the run began.
    stored: Option<Watermark>,
    /// The watermark now (`stored`, raised by the run's writes).
    low: Option<i64>,
    /// The largest `seq` with a remembered answer: a larger one is new without a lookup.
    high: Option<i64>,
    /// A write of the run was recorded.
    recorded: bool,
}

/// The sessions of the clients whose writes are being applied, for one run of writes with
/// the same `now_us` (in practice one log entry: the leader stamps a batch once).
///
/// Why: the watermark row was read, raised and rewritten, and the answers below it deleted,
/// once per write; a batch holds dozens of writes of the same client (every asyncio task of a
/// process shares its client id). Here the row is read once per client and run (with the
/// largest remembered `seq`, so that a write above it needs no lookup), kept in memory while
/// the run's writes are checked and recorded, and written back by [`Sessions::flush`], with
/// the answers below the final watermark deleted in one statement. The tables end the run
/// exactly as the per-write steps left them: the row holds the highest watermark and the
/// run's `now_us`, and the answers left are those at or above it. The answers themselves are
/// inserted as each write is applied, so a repeat later in the same run finds its answer.
#[derive(Debug)]
pub(crate) struct Sessions {
    now_us: i64,
    clients: Vec<Client>,
}

impl Sessions {
    /// Sessions for a run of writes stamped `now_us`.
    pub(crate) fn new(now_us: i64) -> Sessions {
        Sessions {
            now_us,
            clients: Vec::new(),
        }
    }

    /// The run's `now_us`.
    pub(crate) fn now_us(&self) -> i64 {
        self.now_us
    }

    fn client(&mut self, conn: &Connection, client_id: &str) -> rusqlite::Result<&mut Client> {
        // A run holds a handful of clients at most; a scan beats a map.
        if let Some(at) = self.clients.iter().position(|c| c.id == client_id) {
            return Ok(&mut self.clients[at]);
        }
        let (stored, high) = conn
            .prepare_cached(
                "SELECT w.low, w.updated_us,
                        (SELECT MAX(seq) FROM client_sessions WHERE client_id = ?1)
                 FROM (SELECT 1) LEFT JOIN client_watermarks w ON w.client_id = ?1",
            )?
            .query_row([client_id], |row| {
                let low: Option<i64> = row.get(0)?;
                let updated_us: Option<i64> = row.get(1)?;
                let high: Option<i64> = row.get(2)?;
                Ok((
                    low.zip(updated_us)
                        .map(|(low, updated_us)| Watermark { low, updated_us }),
                    high,
                ))
            })?;
        self.clients.push(Client {
            id: client_id.to_string(),
            stored,
            low: stored.map(|w| w.low),
            high,
            recorded: false,
        });
        Ok(self.clients.last_mut().expect("just pushed"))
    }

    /// Classifies `(client_id, seq)` against the remembered session.
    pub(crate) fn check(
        &mut self,
        conn: &Connection,
        client_id: &str,
        seq: u64,
    ) -> rusqlite::Result<SessionCheck> {
        let Ok(signed) = i64::try_from(seq) else {
            // SQLite integers are signed; such a sequence number can only come from a broken
            // client.
            return Ok(stale_range(seq));
        };
        let client = self.client(conn, client_id)?;
        if let Some(low) = client.low.filter(|low| signed < *low) {
            // Every answer below the watermark is forgotten (or is, once the run is flushed).
            return Ok(SessionCheck::Stale(CommandResult::rejected(
                RejectKind::InvalidArgument,
                format!(
                    "stale sequence: {seq} of client {client_id:?} was answered already (watermark {low})"
                ),
            )));
        }
        if client.high.is_none_or(|high| signed > high) {
            return Ok(SessionCheck::Fresh);
        }
        let cached: Option<String> = conn
            .prepare_cached("SELECT result FROM client_sessions WHERE client_id = ?1 AND seq = ?2")?
            .query_row(rusqlite::params![client_id, signed], |row| row.get(0))
            .optional()?;
        Ok(match cached {
            Some(result) => SessionCheck::Repeat(json::from_text(0, &result)?),
            None => SessionCheck::Fresh,
        })
    }

    /// Remembers `result` as the answer to `(client_id, seq)` and raises the client's
    /// watermark to `first_unacked` (capped at `seq`: a watermark above a write's own `seq`
    /// would refuse its retries). The answers below the watermark are forgotten by
    /// [`Sessions::flush`].
    pub(crate) fn record(
        &mut self,
        conn: &Connection,
        client_id: &str,
        seq: u64,
        first_unacked: u64,
        result: &CommandResult,
    ) -> rusqlite::Result<()> {
        let to_i64 = |v: u64| {
            i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        let seq = to_i64(seq)?;
        let low = to_i64(first_unacked)?.min(seq);
        let now_us = self.now_us;
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
        let client = self.client(conn, client_id)?;
        client.low = Some(client.low.map_or(low, |l| l.max(low)));
        client.high = Some(client.high.map_or(seq, |h| h.max(seq)));
        client.recorded = true;
        Ok(())
    }

    /// Writes back what the run changed: forgets the answers below each raised watermark and
    /// stores the watermark rows (an unchanged one only every [`WATERMARK_REFRESH_US`]).
    pub(crate) fn flush(self, conn: &Connection) -> rusqlite::Result<()> {
        for client in self.clients.iter().filter(|c| c.recorded) {
            let Some(low) = client.low else { continue };
            let rises = client.stored.is_none_or(|w| low > w.low);
            if rises {
                conn.prepare_cached(
                    "DELETE FROM client_sessions WHERE client_id = ?1 AND seq < ?2",
                )?
                .execute(rusqlite::params![client.id, low])?;
            }
            let stale_row = client
                .stored
                .is_none_or(|w| self.now_us.saturating_sub(w.updated_us) >= WATERMARK_REFRESH_US);
            if rises || stale_row {
                conn.prepare_cached(
                    "INSERT INTO client_watermarks (client_id, low, updated_us) VALUES (?1, ?2, ?3)
                     ON CONFLICT(client_id) DO UPDATE SET low = MAX(low, excluded.low),
                         updated_us = excluded.updated_us",
                )?
                .execute(rusqlite::params![client.id, low, self.now_us])?;
            }
        }
        Ok(())
    }
}

/// Forgets the clients whose watermark row is more than [`SESSION_TTL_US`] +
/// [`WATERMARK_REFRESH_US`] older than `now_us`, with their remembered answers. Every client
/// with a remembered answer has a watermark row ([`Sessions::flush`] writes one with the first
/// answer, before the clock moves on and this runs), refreshed at least every
/// [`WATERMARK_REFRESH_US`] while the client writes, so no answer is forgotten less than
/// [`SESSION_TTL_US`] after its client's last write.
pub(crate) fn expire(conn: &Connection, now_us: i64) -> rusqlite::Result<()> {
    let cutoff = now_us
        .saturating_sub(SESSION_TTL_US)
        .saturating_sub(WATERMARK_REFRESH_US);
    // This runs for nearly every entry and almost never finds anything: one probe of the
    // `updated_us` index is cheaper than the two deletes (about 5 % of apply, perf).
    let any_expired = conn
        .prepare_cached("SELECT 1 FROM client_watermarks WHERE updated_us < ?1 LIMIT 1")?
        .exists([cutoff])?;
    if !any_expired {
        return Ok(());
    }
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
