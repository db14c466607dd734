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

use std::collections::{BTreeMap, HashMap};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watermark {
    low: i64,
    updated_us: i64,
}

/// What the session table says about an incoming `(client_id, seq)`.
#[derive(Debug)]
pub(crate) enum SessionCheck {
    /// Not seen yet: apply it and [`SessionCache::record`] the result.
    Fresh,
    /// A write already applied, repeated: answer with its result, apply nothing.
    Repeat(CommandResult),
    /// Below the client's watermark: it was answered and forgotten; refuse.
    Stale(CommandResult),
}

/// One client's session as the cache holds it.
#[derive(Debug)]
struct Client {
    id: String,
    /// The watermark row in the file when the client was loaded.
    file_wm: Option<Watermark>,
    /// The file held answers of this client when it was loaded.
    file_has_answers: bool,
    /// The watermark row as the tables would hold it after the last finished run.
    wm: Option<Watermark>,
    /// The watermark now (`wm`'s, raised by the current run's writes).
    low: Option<i64>,
    /// The largest `seq` with a remembered answer: a larger one is new without a lookup.
    high: Option<i64>,
    /// Answers recorded since the client was loaded, not in the file yet:
    /// `seq → (now_us of the run that recorded it, answer)`.
    answers: BTreeMap<i64, (i64, CommandResult)>,
    /// A write of the current run was recorded.
    recorded: bool,
}

/// Client sessions held in memory between writes to the file.
///
/// Why: a write's answer lives only until its client has seen it — with 64 asyncio tasks of
/// one process in flight, a few milliseconds — yet each was inserted into `client_sessions`
/// and deleted again a few entries later, and each client's watermark row was read and
/// rewritten per entry: about 30 % of the instructions of applying a write (callgrind,
/// the add / claim_next / complete mix). The Raft state store keeps one cache beside its
/// group-committed transaction and [`SessionCache::persist`]s it just before each commit, so
/// an answer acknowledged within the group never reaches the file, and a client's rows are
/// read and written once per group. Other callers persist after every call
/// ([`crate::state::apply_writes`]).
///
/// The rules are those of writing through, one run of writes with one `now_us` at a time
/// (in practice one log entry: the leader stamps a batch once): a run checks and records
/// writes; at its end (`end_run`) each client that recorded a write raises its
/// watermark, forgets the answers below it, and stores the watermark row when it rose or is
/// [`WATERMARK_REFRESH_US`] old. After `persist` the tables hold exactly what writing every
/// run through would have left (property test: grouped, batched and one-at-a-time apply give
/// the same answers and the same state digest).
#[derive(Debug, Default)]
pub struct SessionCache {
    now_us: i64,
    /// In load order, which is the order `persist` writes them in.
    clients: Vec<Client>,
    /// Position of each client in `clients`. A group holds up to one client per write: every
    /// write with a `request_id` is a client of its own, so a scan would be quadratic.
    by_id: HashMap<String, usize>,
}

impl SessionCache {
    /// An empty cache.
    pub fn new() -> SessionCache {
        SessionCache::default()
    }

    /// Whether the cache holds nothing the file lacks.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Starts a run of writes stamped `now_us`.
    pub(crate) fn begin_run(&mut self, now_us: i64) {
        self.now_us = now_us;
    }

    fn client(&mut self, conn: &Connection, client_id: &str) -> rusqlite::Result<&mut Client> {
        if let Some(&at) = self.by_id.get(client_id) {
            return Ok(&mut self.clients[at]);
        }
        let (file_wm, high) = conn
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
            file_wm,
            file_has_answers: high.is_some(),
            wm: file_wm,
            low: file_wm.map(|w| w.low),
            high,
            answers: BTreeMap::new(),
            recorded: false,
        });
        self.by_id
            .insert(client_id.to_string(), self.clients.len() - 1);
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
            // Every answer below the watermark is forgotten (or is, once the run ends).
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
        if let Some((_, answer)) = client.answers.get(&signed) {
            return Ok(SessionCheck::Repeat(answer.clone()));
        }
        if !client.file_has_answers {
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
    /// would refuse its retries). The answers below the watermark are forgotten when the run
    /// ends.
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
        let client = self.client(conn, client_id)?;
        client.answers.insert(seq, (now_us, result.clone()));
        client.low = Some(client.low.map_or(low, |l| l.max(low)));
        client.high = Some(client.high.map_or(seq, |h| h.max(seq)));
        client.recorded = true;
        Ok(())
    }

    /// Ends the current run: each client that recorded a write forgets the answers below its
    /// watermark and keeps its watermark row up to date (an unchanged one is refreshed only
    /// every [`WATERMARK_REFRESH_US`]).
    pub(crate) fn end_run(&mut self) {
        let now_us = self.now_us;
        for client in self.clients.iter_mut().filter(|c| c.recorded) {
            client.recorded = false;
            let Some(low) = client.low else { continue };
            let rises = client.wm.is_none_or(|w| low > w.low);
            let stale_row = client
                .wm
                .is_none_or(|w| now_us.saturating_sub(w.updated_us) >= WATERMARK_REFRESH_US);
            if rises {
                client.answers = client.answers.split_off(&low);
            }
            if rises || stale_row {
                let low = client.wm.map_or(low, |w| w.low.max(low));
                client.wm = Some(Watermark {
                    low,
                    updated_us: now_us,
                });
            }
        }
    }

    /// Writes what the cache holds into the tables (inside the caller's transaction) and
    /// empties it. Call between runs.
    pub fn persist(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.by_id.clear();
        for client in std::mem::take(&mut self.clients) {
            debug_assert!(!client.recorded, "persist inside a run");
            let Some(wm) = client.wm else { continue };
            let rose = client.file_wm.is_none_or(|f| wm.low > f.low);
            if rose && client.file_has_answers {
                conn.prepare_cached(
                    "DELETE FROM client_sessions WHERE client_id = ?1 AND seq < ?2",
                )?
                .execute(rusqlite::params![client.id, wm.low])?;
            }
            for (seq, (updated_us, answer)) in &client.answers {
                conn.prepare_cached(
                    "INSERT INTO client_sessions (client_id, seq, result, updated_us)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(client_id, seq) DO UPDATE SET result = excluded.result,
                         updated_us = excluded.updated_us",
                )?
                .execute(rusqlite::params![
                    client.id,
                    seq,
                    json::to_text(answer)?,
                    updated_us
                ])?;
            }
            if client.file_wm != Some(wm) {
                conn.prepare_cached(
                    "INSERT INTO client_watermarks (client_id, low, updated_us) VALUES (?1, ?2, ?3)
                     ON CONFLICT(client_id) DO UPDATE SET low = MAX(low, excluded.low),
                         updated_us = excluded.updated_us",
                )?
                .execute(rusqlite::params![client.id, wm.low, wm.updated_us])?;
            }
        }
        Ok(())
    }

    /// Forgets everything cached (after the transaction it belonged to rolled back).
    pub fn discard(&mut self) {
        self.clients.clear();
        self.by_id.clear();
    }
}

/// Forgets the clients whose watermark row is more than [`SESSION_TTL_US`] +
/// [`WATERMARK_REFRESH_US`] older than `now_us`, with their remembered answers. Every client
/// with a remembered answer has a watermark row ([`SessionCache::end_run`] sets one with the
/// first answer, before the clock moves on and this runs), refreshed at least every
/// [`WATERMARK_REFRESH_US`] while the client writes, so no answer is forgotten less than
/// [`SESSION_TTL_US`] after its client's last write.
///
/// The cache is persisted first when anything is to expire, so the deletes see every
/// watermark as applied so far.
pub(crate) fn expire(
    conn: &Connection,
    cache: &mut SessionCache,
    now_us: i64,
) -> rusqlite::Result<()> {
    let cutoff = now_us
        .saturating_sub(SESSION_TTL_US)
        .saturating_sub(WATERMARK_REFRESH_US);
    // This runs for nearly every entry and almost never finds anything: one probe of the
    // `updated_us` index is cheaper than the two deletes (about 5 % of apply, perf).
    let cached_due = cache
        .clients
        .iter()
        .any(|c| c.wm.is_some_and(|w| w.updated_us < cutoff));
    let any_expired = cached_due
        || conn
            .prepare_cached("SELECT 1 FROM client_watermarks WHERE updated_us < ?1 LIMIT 1")?
            .exists([cutoff])?;
    if !any_expired {
        return Ok(());
    }
    cache.persist(conn)?;
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
