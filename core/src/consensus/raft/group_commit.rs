//! Group commit: the state machine's write connection keeps one SQLite transaction open over
//! several apply batches.
//!
//! Applying a batch of writes is cheap next to committing it: a commit writes every page the
//! transaction dirtied to the WAL (two `pwrite`s per page, plus the checkpoints that follow),
//! and the next batch dirties most of the same pages again (the claim-order index, the session
//! rows, `sm_meta`, the newest table pages). With a commit per batch, committing was a quarter
//! of a follower's CPU under 64 concurrent clients. So a [`Writer`] commits its open
//! transaction only
//!
//! * when it is [`MAX_AGE`] old or holds [`MAX_WRITES`] writes, checked after each batch;
//! * before any read of the state ([`Writer::flush`], called by the state store's readers), so
//!   a read sees every applied entry exactly as with a commit per batch;
//! * before a snapshot is built or installed;
//! * by a timer once it is [`MAX_AGE`] old although no batch came to commit it
//!   ([`spawn_idle_flusher`], which sleeps until the open transaction is due), so the file on
//!   disk trails the applied state by about [`MAX_AGE`] at most;
//! * when the writer is dropped.
//!
//! The client sessions applied in the open transaction stay in memory (a write's answer
//! usually lives only a few entries, see [`SessionCache`]) and are written into the
//! transaction just before it commits; a rollback discards them with it.
//!
//! Losing the open transaction is safe: it holds only applied entries, which are committed in
//! the Raft log and durable in this node's log before they are applied, and openraft applies
//! them again after `last_applied` on start, exactly as it does for a commit that
//! `synchronous=NORMAL` lost to a power cut. What must not happen is applying on top of a
//! state that silently lost entries while the process goes on, so a failed commit, or a failed
//! apply that rolls the transaction back, leaves the writer *failed*: every later apply and
//! read returns the error (openraft stops on a state machine error), and a restart re-applies
//! from the log.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::error::{Error, ErrorKind};
use crate::state::SessionCache;
use crate::store::storage_error;

/// The oldest an open transaction gets before it is committed (after a batch, or by the idle
/// flusher).
pub const MAX_AGE: Duration = Duration::from_millis(20);
/// The most writes an open transaction collects before it is committed.
pub const MAX_WRITES: usize = 1024;

/// The transaction currently open on the write connection.
#[derive(Debug, Clone, Copy)]
struct OpenTransaction {
    since: Instant,
    writes: usize,
}

/// The state machine's write connection with its group-committed transaction.
pub struct Writer {
    conn: Connection,
    open: Option<OpenTransaction>,
    /// Client sessions applied in the open transaction, written into it just before it
    /// commits (see [`SessionCache`]).
    sessions: SessionCache,
    /// Why the writer refuses further work (a failed commit or rollback).
    failed: Option<String>,
    /// Wakes the idle flusher when a transaction opens (and when the writer is dropped).
    opened: Arc<Notify>,
}

fn failed_error(why: &str) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("the state machine's writer failed earlier ({why}); restart the node to re-apply from the log"),
    )
}

impl Writer {
    /// Wraps `conn`, which must have no transaction open.
    pub fn new(conn: Connection) -> Writer {
        Writer {
            conn,
            open: None,
            sessions: SessionCache::new(),
            failed: None,
            opened: Arc::new(Notify::new()),
        }
    }

    /// The connection inside the open transaction, beginning one if none is open, with the
    /// session cache that belongs to that transaction (for
    /// [`crate::state::apply_writes_grouped`]). Apply a batch on it, then call
    /// [`Writer::applied`] (or [`Writer::abort`] if applying failed).
    pub fn begin(&mut self) -> crate::Result<(&Connection, &mut SessionCache)> {
        if let Some(why) = &self.failed {
            return Err(failed_error(why));
        }
        if self.open.is_none() {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(storage_error)?;
            self.open = Some(OpenTransaction {
                since: Instant::now(),
                writes: 0,
            });
            self.opened.notify_one();
        }
        Ok((&self.conn, &mut self.sessions))
    }

    /// Counts `writes` more writes applied in the open transaction and commits it when it is
    /// old or large enough.
    pub fn applied(&mut self, writes: usize) -> crate::Result<()> {
        let Some(open) = &mut self.open else {
            return Ok(());
        };
        open.writes += writes;
        if open.writes >= MAX_WRITES {
            return self.flush();
        }
        self.flush_if_due()
    }

    /// Rolls back the open transaction after a batch failed half-way. Entries applied earlier
    /// in it are lost with it, so the writer is failed from here on (see the module docs).
    pub fn abort(&mut self, why: &Error) {
        self.sessions.discard();
        if self.open.take().is_some() && !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "cannot roll back the state machine's transaction");
            }
        }
        self.failed
            .get_or_insert_with(|| format!("applying a batch failed: {why}"));
    }

    /// Commits the open transaction, if any. Call before reading the state through another
    /// connection.
    pub fn flush(&mut self) -> crate::Result<()> {
        if let Some(why) = &self.failed {
            return Err(failed_error(why));
        }
        if self.open.take().is_none() {
            return Ok(());
        }
        let persisted = self.sessions.persist(&self.conn);
        if let Err(e) = persisted.and_then(|()| self.conn.execute_batch("COMMIT")) {
            self.sessions.discard();
            let error = storage_error(e);
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.failed = Some(format!("committing applied entries failed: {error}"));
            return Err(error);
        }
        Ok(())
    }

    /// Commits the open transaction if it is at least [`MAX_AGE`] old.
    fn flush_if_due(&mut self) -> crate::Result<()> {
        match self.due_at() {
            Some(due) if Instant::now() >= due => self.flush(),
            _ => Ok(()),
        }
    }

    /// When the open transaction is due to be committed by age; `None` when none is open.
    fn due_at(&self) -> Option<Instant> {
        self.open.map(|open| open.since + MAX_AGE)
    }

    /// Whether a transaction is open (applied entries not yet committed to the file).
    pub fn has_open_transaction(&self) -> bool {
        self.open.is_some()
    }

    /// The connection with everything applied committed, for work that needs its own
    /// transaction (installing a snapshot).
    pub fn committed(&mut self) -> crate::Result<&mut Connection> {
        self.flush()?;
        Ok(&mut self.conn)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A failed writer has nothing left to commit (its transaction was rolled back).
        if self.failed.is_none() {
            if let Err(e) = self.flush() {
                tracing::warn!(error = %e, "state machine: applied entries not committed at close; they are re-applied from the log on start");
            }
        }
        // Lets the idle flusher see that the writer is gone.
        self.opened.notify_one();
    }
}

fn lock(writer: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    writer.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the task that commits a transaction left open when batches stop coming. It sleeps
/// until a transaction opens, then until that transaction is due ([`MAX_AGE`] old), commits
/// it unless a batch or a read did already (a newer transaction sets a new deadline), and
/// ends when the writer is dropped. Call inside a tokio runtime.
pub fn spawn_idle_flusher(writer: &Arc<Mutex<Writer>>) {
    let opened = Arc::clone(&lock(writer).opened);
    let weak: Weak<Mutex<Writer>> = Arc::downgrade(writer);
    tokio::spawn(async move {
        loop {
            opened.notified().await;
            loop {
                let Some(writer) = weak.upgrade() else {
                    return;
                };
                let Some(due) = lock(&writer).due_at() else {
                    break;
                };
                if Instant::now() < due {
                    // Not holding the writer while asleep: its drop must be able to end this task.
                    drop(writer);
                    tokio::time::sleep_until(due.into()).await;
                    continue;
                }
                // A commit may run a WAL checkpoint (file I/O): off the async workers.
                let flushed =
                    tokio::task::spawn_blocking(move || lock(&writer).flush_if_due()).await;
                if let Ok(Err(e)) = flushed {
                    tracing::error!(error = %e, "state machine: committing applied entries failed");
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open_state_db(&dir.path().join("state.db")).unwrap();
        (dir, Writer::new(conn))
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
            .unwrap()
    }

    fn other_connection(dir: &tempfile::TempDir) -> Connection {
        Connection::open(dir.path().join("state.db")).unwrap()
    }

    fn insert(conn: &Connection, key: &str) {
        conn.execute("INSERT INTO kv (key, value) VALUES (?1, '1')", [key])
            .unwrap();
    }

    #[test]
    fn batches_stay_in_one_transaction_until_flushed() {
        let (dir, mut w) = writer();
        insert(w.begin().unwrap().0, "a");
        w.applied(1).unwrap();
        insert(w.begin().unwrap().0, "b");
        w.applied(1).unwrap();
        assert!(w.has_open_transaction());
        assert_eq!(count(&other_connection(&dir)), 0, "nothing committed yet");
        w.flush().unwrap();
        assert!(!w.has_open_transaction());
        assert_eq!(count(&other_connection(&dir)), 2);
    }

    #[test]
    fn commits_when_the_transaction_is_large_enough() {
        let (dir, mut w) = writer();
        insert(w.begin().unwrap().0, "a");
        w.applied(MAX_WRITES).unwrap();
        assert!(!w.has_open_transaction());
        assert_eq!(count(&other_connection(&dir)), 1);
    }

    #[test]
    fn commits_when_the_transaction_is_old_enough() {
        let (dir, mut w) = writer();
        insert(w.begin().unwrap().0, "a");
        w.open.as_mut().unwrap().since -= MAX_AGE;
        w.applied(1).unwrap();
        assert!(!w.has_open_transaction());
        assert_eq!(count(&other_connection(&dir)), 1);
    }

    #[test]
    fn dropping_the_writer_commits() {
        let (dir, mut w) = writer();
        insert(w.begin().unwrap().0, "a");
        w.applied(1).unwrap();
        drop(w);
        assert_eq!(count(&other_connection(&dir)), 1);
    }

    #[test]
    fn an_aborted_batch_loses_the_transaction_and_fails_the_writer() {
        let (dir, mut w) = writer();
        insert(w.begin().unwrap().0, "a");
        w.applied(1).unwrap();
        insert(w.begin().unwrap().0, "b");
        w.abort(&Error::new(ErrorKind::Storage, "disk on fire"));
        assert_eq!(
            count(&other_connection(&dir)),
            0,
            "both batches rolled back"
        );
        let begin = w.begin().map(|_| ()).unwrap_err();
        assert!(begin.to_string().contains("disk on fire"), "{begin}");
        assert!(w.flush().is_err());
        assert!(w.committed().is_err());
    }

    #[test]
    fn a_failed_commit_fails_the_writer() {
        let (dir, mut w) = writer();
        insert(w.begin().unwrap().0, "a");
        w.applied(1).unwrap();
        // End the transaction behind the writer's back: its COMMIT then has nothing to commit.
        w.conn.execute_batch("ROLLBACK").unwrap();
        let error = w.flush().unwrap_err();
        assert!(error.to_string().contains("no transaction"), "{error}");
        assert!(
            w.begin().is_err(),
            "the writer refuses work after a failed commit"
        );
        assert_eq!(count(&other_connection(&dir)), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_idle_flusher_commits_a_transaction_left_open() {
        let (dir, w) = writer();
        let w = Arc::new(Mutex::new(w));
        spawn_idle_flusher(&w);
        {
            let mut guard = lock(&w);
            insert(guard.begin().unwrap().0, "a");
            guard.applied(1).unwrap();
        }
        // No further batch and no read: only the flusher can commit. Bounded wait (≤ 2 s).
        for _ in 0..100 {
            if !lock(&w).has_open_transaction() {
                break;
            }
            tokio::time::sleep(MAX_AGE).await;
        }
        assert!(!lock(&w).has_open_transaction());
        assert_eq!(count(&other_connection(&dir)), 1);
    }
}
