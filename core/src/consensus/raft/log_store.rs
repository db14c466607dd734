//! The Raft log and vote on SQLite (`<data_dir>/raft/log.db`), openraft's [`RaftLogStorage`].
//!
//! ```text
//!   RaftCore ──append / save_vote / truncate / purge───────────────────▶ LogStore
//!                                                                         │ (1) entries into the
//!                                                                         │     unflushed tail
//!                                                                         │ (2) Op into the queue
//!                                                                         ▼
//!                        one writer thread: drain the queue ─ one transaction ─ COMMIT (fsync)
//!                                                                         │
//!                              drop flushed entries from the tail, then ack every op in order
//!   LogReader (replication) ── unflushed tail ∪ recent cache ∪ read-only connections ──▶ entries
//! ```
//!
//! **Durability.** The writer connection runs in WAL mode with `synchronous=FULL`, so a
//! `COMMIT` returns only after the WAL is fsynced. openraft is told that an entry is persisted
//! (the [`LogFlushed`] callback) and a vote, truncation or purge returns only after the
//! transaction carrying it has committed. One exception, when enabled with
//! [`LogStore::overlap_leader_fsync`]: a leader's own appends are acknowledged when queued, so
//! openraft replicates them while they are being fsynced; [`super::durability`] explains the
//! two rules that keep this safe. The writer publishes the durable end of the log there after
//! every commit.
//!
//! **Order.** openraft requires that log and vote writes reach the disk in the order they were
//! issued. All of them (vote, append, truncate, purge) go through one channel to one writer
//! thread that owns the only write connection. The thread takes every
//! operation that is queued (up to [`MAX_BATCH_OPS`]), applies them in queue order inside ONE
//! transaction, commits once (one fsync for the whole group — this is where throughput comes
//! from) and then completes the callbacks in queue order. A failed transaction poisons the
//! writer: every later operation fails with the same error, so no later entry can be made
//! durable after a lost one (a hole in the log).
//!
//! **Readable at once.** openraft requires appended entries to be readable when `append`
//! returns, which is before their fsync. `append` therefore first puts the entries in an
//! in-memory *unflushed tail* (`BTreeMap<index, Entry>`); the writer removes them after its
//! commit, before acknowledging. Readers look at the tail first and then at the database through
//! their own read-only connections (WAL lets them run beside the writer): an entry that left the
//! tail was committed before it left, so the later database read sees it; an entry in both is
//! the same entry, and the tail's copy wins. `truncate` and `purge` drop the affected entries
//! from the tail as well.
//!
//! **Recent entries stay in memory.** Flushed entries move from the tail into a cache of the
//! latest entries (at most [`RECENT_ENTRIES`] and [`RECENT_BYTES`]), so replication streams (which read what was just
//! appended, often after its fsync) are served from memory instead of a database query on a
//! blocking thread. Truncate and purge drop entries from the cache as from the tail.
//!
//! `save_vote`, `truncate` and `purge` wait for their own commit. `save_committed` is not
//! queued at all: it is optional in openraft, and it comes twice per replicated round on a
//! follower (the entries' AppendEntries and the commit-only one after it), so a message would
//! wake the writer thread for nothing. It only records the id in memory; every write
//! transaction stores the newest recorded id that is not past the log end that transaction
//! makes durable (a committed id must never point beyond the stored log). A lost or older
//! committed id only means a restart re-applies a little less eagerly, so a commit advance
//! never costs a wake-up or an fsync of its own.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::durability::Durability;
use super::node_id::NodeId;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::error::{Error, ErrorKind};
use crate::store::storage_error;

/// File name of the log database inside the Raft directory.
pub const LOG_DB_FILE: &str = "log.db";

/// Most operations one writer transaction carries. Bounds the latency of the first operation
/// of a group and the size of one transaction.
pub const MAX_BATCH_OPS: usize = 4096;

/// Flushed entries kept in memory for replication reads (see the module docs): at most this
/// many, and at most [`RECENT_BYTES`] of their encoded size (an entry can carry a batch of
/// hundreds of writes).
pub const RECENT_ENTRIES: usize = 2048;

/// Size bound of the recent-entries cache (JSON bytes of the entries).
pub const RECENT_BYTES: usize = 1024 * 1024;

/// SQLite page cache of the writer connection, in KiB.
const WRITER_CACHE_KIB: i64 = 1024;
/// SQLite page cache of each read connection, in KiB.
const READER_CACHE_KIB: i64 = 256;

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    log_index INTEGER PRIMARY KEY,
    term INTEGER NOT NULL,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// `log_meta` key of the vote (JSON).
const KEY_VOTE: &str = "vote";
/// `log_meta` key of the last purged log id (JSON).
const KEY_PURGED: &str = "last_purged_log_id";
/// `log_meta` key of the committed log id (JSON), see [`RaftLogStorage::save_committed`].
const KEY_COMMITTED: &str = "committed_log_id";

/// Locks a mutex, recovering the data if a panicking thread poisoned it (every critical section
/// here leaves the data consistent, so the poison carries no information).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A log index or term as a SQLite integer.
fn to_i64(value: u64) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{value} does not fit a SQLite integer"))
}

/// Clamps a `u64` bound into SQLite's range (no real index gets near `i64::MAX`).
fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn io_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, msg: impl ToString) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::error(msg)).into()
}

fn write_logs_error(msg: impl ToString) -> StorageError {
    StorageIOError::write_logs(AnyError::error(msg)).into()
}

fn read_logs_error(msg: impl ToString) -> StorageError {
    StorageIOError::read_logs(AnyError::error(msg)).into()
}

/// One row of the `log` table, serialized by the caller so the writer only moves bytes.
struct Row {
    index: i64,
    term: i64,
    json: String,
}

/// How an operation is acknowledged once its transaction committed (or failed).
enum Done {
    /// openraft's "entries are persisted" callback.
    Flushed(LogFlushed<TypeConfig>),
    /// A waiting `save_vote` / `truncate` / `purge`.
    Reply(oneshot::Sender<Result<(), String>>),
    /// Nothing to tell: openraft was told when the entries were queued (a leader's own
    /// append, see [`super::durability`]). A failure reaches openraft through the
    /// [`Durability`] handle instead.
    Early,
    /// A plain callback (tests observe the acknowledgement order with it).
    #[cfg_attr(not(test), allow(dead_code))]
    Hook(Box<dyn FnOnce(Result<(), String>) + Send>),
}

impl Done {
    fn complete(self, result: Result<(), String>) {
        match self {
            Done::Flushed(callback) => callback.log_io_completed(result.map_err(io::Error::other)),
            Done::Reply(tx) => {
                // The waiter may have been cancelled; the write happened regardless.
                let _ = tx.send(result);
            }
            Done::Hook(hook) => hook(result),
            Done::Early => {}
        }
    }
}

/// A write for the writer thread.
enum Op {
    Append {
        rows: Vec<Row>,
        log_ids: Vec<LogId>,
        done: Done,
    },
    SaveVote {
        json: String,
        done: Done,
    },
    Truncate {
        since: i64,
        done: Done,
    },
    Purge {
        upto: i64,
        log_id: LogId,
        json: String,
        done: Done,
    },
    /// Runs alone on the writer connection, outside any batch (tests: inspect pragmas, hold
    /// the writer to queue operations behind it).
    #[cfg_attr(not(test), allow(dead_code))]
    Exclusive(Box<dyn FnOnce(&mut Connection) + Send>),
}

impl Op {
    fn complete(self, result: Result<(), String>) {
        match self {
            Op::Append { done, .. }
            | Op::SaveVote { done, .. }
            | Op::Truncate { done, .. }
            | Op::Purge { done, .. } => done.complete(result),
            Op::Exclusive(_) => {}
        }
    }
}

/// The latest flushed entries, bounded by [`RECENT_ENTRIES`] and [`RECENT_BYTES`]; the
/// oldest go first.
#[derive(Default)]
struct Recent {
    /// Entry and its encoded size, by index.
    entries: BTreeMap<u64, (Entry, usize)>,
    bytes: usize,
}

impl Recent {
    fn insert(&mut self, index: u64, entry: Entry, size: usize) {
        if let Some((_, old)) = self.entries.insert(index, (entry, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
        while self.entries.len() > RECENT_ENTRIES || self.bytes > RECENT_BYTES {
            match self.entries.pop_first() {
                Some((_, (_, size))) => self.bytes -= size,
                None => break,
            }
        }
    }

    /// Drops the entries at `index` and after (truncation).
    fn remove_from(&mut self, index: u64) {
        let removed = self.entries.split_off(&index);
        self.bytes -= removed.values().map(|(_, size)| size).sum::<usize>();
    }

    /// Drops the entries up to `index` (purge).
    fn remove_upto(&mut self, index: u64) {
        let kept = self.entries.split_off(&index.saturating_add(1));
        let removed = std::mem::replace(&mut self.entries, kept);
        self.bytes -= removed.values().map(|(_, size)| size).sum::<usize>();
    }
}

/// What readers and the writer share.
struct Shared {
    path: PathBuf,
    mem: Mutex<LogMem>,
    readers: Mutex<Vec<Connection>>,
    /// Write transactions committed so far (each is one fsync of the WAL).
    flushes: AtomicU64,
    /// The durable end of the log, published after every commit.
    durability: Durability,
}

/// The in-memory view: the unflushed tail plus the small pieces of state openraft asks for.
struct LogMem {
    /// Appended entries whose transaction has not committed yet, by index.
    unflushed: BTreeMap<u64, Entry>,
    /// The latest flushed entries, by index.
    recent: Recent,
    last_log_id: Option<LogId>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl Shared {
    /// Runs `f` on a pooled read-only connection (opened on demand). Call on a blocking thread.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        if result.is_ok() {
            let mut idle = lock(&self.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        result
    }

    /// Entries with `start <= index < end` from the database, in index order.
    fn read_range(&self, start: u64, end: u64) -> Result<Vec<Entry>, String> {
        let rows = self
            .with_reader(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT entry FROM log WHERE log_index >= ?1 AND log_index < ?2
                     ORDER BY log_index",
                )?;
                let rows = stmt.query_map(params![clamp_i64(start), clamp_i64(end)], |row| {
                    row.get::<_, String>(0)
                })?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(|e| format!("reading log entries {start}..{end}: {e}"))?;
        rows.iter().map(|json| parse_entry(json)).collect()
    }

    /// The log id of the last database entry below `index`, if any.
    fn read_last_below(&self, index: u64) -> Result<Option<LogId>, String> {
        let json = self
            .with_reader(|conn| last_entry_below(conn, clamp_i64(index)))
            .map_err(|e| format!("reading the last log entry below {index}: {e}"))?;
        json.map(|json| parse_entry(&json).map(|e| e.log_id))
            .transpose()
    }

    /// Moves the entries `batch` appended from the unflushed tail (they are durable now) into
    /// the recent cache. An entry moves only if the tail still holds that very log id: a
    /// truncation may have replaced it.
    fn forget_flushed(&self, batch: &[Op]) {
        let mut mem = lock(&self.mem);
        for op in batch {
            if let Op::Append { log_ids, rows, .. } = op {
                for (log_id, row) in log_ids.iter().zip(rows) {
                    let size = row.json.len();
                    if mem
                        .unflushed
                        .get(&log_id.index)
                        .is_some_and(|e| e.log_id == *log_id)
                    {
                        if let Some(entry) = mem.unflushed.remove(&log_id.index) {
                            mem.recent.insert(log_id.index, entry, size);
                        }
                    }
                }
            }
        }
    }
}

fn parse_entry(json: &str) -> Result<Entry, String> {
    serde_json::from_str(json).map_err(|e| format!("log.db holds an unreadable entry: {e}"))
}

/// Replication reads come from memory; these connections only serve lagging followers.
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    crate::store::open_read_only(path, READER_CACHE_KIB)
}

/// Opens the writer connection: WAL, `synchronous=FULL` (every commit fsyncs the WAL), the
/// schema.
fn open_writer(path: &Path) -> crate::Result<Connection> {
    let conn = Connection::open(path).map_err(storage_error)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(storage_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::new(
            ErrorKind::Storage,
            format!("log.db: journal_mode=WAL was refused (journal_mode is {mode})"),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        // The writer only appends and deletes: a small page cache is enough.
        .and_then(|()| conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB))
        .and_then(|()| conn.busy_timeout(crate::store::schema::BUSY_TIMEOUT))
        .and_then(|()| crate::store::stable_plans(&conn))
        .and_then(|()| conn.execute_batch(SCHEMA))
        .map_err(storage_error)?;
    Ok(conn)
}

fn meta_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    key: &str,
) -> crate::Result<Option<T>> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM log_meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()
        .map_err(storage_error)?;
    match text {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Storage,
                format!("log.db: log_meta {key} is unreadable: {e}"),
            )
        }),
    }
}

/// Reads what a restart needs: vote, purged and committed ids and the last entry's id.
fn load(conn: &Connection) -> crate::Result<LogMem> {
    let vote: Option<Vote> = meta_json(conn, KEY_VOTE)?;
    let last_purged: Option<LogId> = meta_json::<Option<LogId>>(conn, KEY_PURGED)?.flatten();
    let committed: Option<LogId> = meta_json::<Option<LogId>>(conn, KEY_COMMITTED)?.flatten();
    let last_json: Option<String> = conn
        .query_row(
            "SELECT entry FROM log ORDER BY log_index DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(storage_error)?;
    let last_entry = match last_json {
        None => None,
        Some(json) => Some(
            parse_entry(&json)
                .map_err(|e| Error::new(ErrorKind::Storage, e))?
                .log_id,
        ),
    };
    Ok(LogMem {
        unflushed: BTreeMap::new(),
        recent: Recent::default(),
        last_log_id: last_entry.max(last_purged),
        last_purged,
        vote,
        committed,
    })
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO log_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// The stored text of the last entry below `index` in `conn`'s view of the log.
fn last_entry_below(conn: &Connection, index: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT entry FROM log WHERE log_index < ?1 ORDER BY log_index DESC LIMIT 1",
    )?
    .query_row([index], |row| row.get(0))
    .optional()
}

/// The id of the last entry below `index` as the writer's open transaction sees it (after a
/// truncation), or the last purged id when none is left.
fn durable_end_below(conn: &Connection, index: i64) -> Result<Option<LogId>, String> {
    match last_entry_below(conn, index).map_err(|e| e.to_string())? {
        Some(json) => parse_entry(&json).map(|entry| Some(entry.log_id)),
        None => meta_json::<Option<LogId>>(conn, KEY_PURGED)
            .map(Option::flatten)
            .map_err(|e| e.to_string()),
    }
}

/// Applies a batch in queue order inside one transaction, with the newest committed id it may
/// carry, and commits it (one fsync). Returns the durable end of the log after the commit,
/// starting from the one published before it.
fn write_batch(
    conn: &mut Connection,
    batch: &[Op],
    shared: &Shared,
    committed: &mut Committed,
) -> Result<Option<LogId>, String> {
    let mut durable = shared.durability.last();
    let sql = |e: rusqlite::Error| e.to_string();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    for op in batch {
        match op {
            Op::Append { rows, log_ids, .. } => {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO log (log_index, term, entry) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(sql)?;
                for row in rows {
                    stmt.execute(params![row.index, row.term, row.json])
                        .map_err(sql)?;
                }
                if let Some(last) = log_ids.last() {
                    durable = Some(*last);
                }
            }
            Op::SaveVote { json, .. } => set_meta(&tx, KEY_VOTE, json).map_err(sql)?,
            Op::Truncate { since, .. } => {
                tx.prepare_cached("DELETE FROM log WHERE log_index >= ?1")
                    .and_then(|mut stmt| stmt.execute([since]))
                    .map_err(sql)?;
                if durable.is_some_and(|d| clamp_i64(d.index) >= *since) {
                    durable = durable_end_below(&tx, *since)?;
                }
            }
            Op::Purge {
                upto, log_id, json, ..
            } => {
                tx.prepare_cached("DELETE FROM log WHERE log_index <= ?1")
                    .and_then(|mut stmt| stmt.execute([upto]))
                    .map_err(sql)?;
                set_meta(&tx, KEY_PURGED, json).map_err(sql)?;
                durable = durable.max(Some(*log_id));
            }
            Op::Exclusive(_) => {}
        }
    }
    let recorded = lock(&shared.mem).committed;
    let stored = committed
        .store_within(&tx, recorded, durable)
        .map_err(sql)?;
    tx.commit().map_err(sql)?;
    committed.saved = stored;
    Ok(durable)
}

/// The committed id the writer last stored; `save_committed` records newer ones in
/// [`LogMem::committed`].
struct Committed {
    saved: Option<LogId>,
}

impl Committed {
    /// Stores `recorded` in `tx` when it is new and not past `durable` (the log end the
    /// transaction makes durable); returns the id stored once `tx` commits.
    fn store_within(
        &self,
        tx: &Connection,
        recorded: Option<LogId>,
        durable: Option<LogId>,
    ) -> rusqlite::Result<Option<LogId>> {
        let storable =
            recorded > self.saved && recorded.map(|c| c.index) <= durable.map(|d| d.index);
        if !storable {
            return Ok(self.saved);
        }
        let json = serde_json::to_string(&recorded)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        set_meta(tx, KEY_COMMITTED, &json)?;
        Ok(recorded)
    }
}

/// The writer thread: drain, write, commit, forget the flushed tail, acknowledge in order.
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Op>, shared: Arc<Shared>) {
    let mut failed: Option<String> = None;
    let mut held_back: Option<Op> = None;
    let mut committed = Committed {
        saved: lock(&shared.mem).committed,
    };
    loop {
        let first = match held_back.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                // Every sender is gone: the store was dropped and the queue is empty. Keep a
                // newer committed id, if one was recorded since the last write (a transaction
                // that stores only that).
                Err(mpsc::RecvError) => {
                    let newer = lock(&shared.mem).committed > committed.saved;
                    if failed.is_none() && newer {
                        let _ = write_batch(&mut conn, &[], &shared, &mut committed);
                    }
                    break;
                }
            },
        };
        if let Op::Exclusive(run) = first {
            run(&mut conn);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(Op::Exclusive(run)) => {
                    held_back = Some(Op::Exclusive(run));
                    break;
                }
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let result = match &failed {
            Some(msg) => Err(msg.clone()),
            None => write_batch(&mut conn, &batch, &shared, &mut committed)
                .map_err(|e| format!("log.db write failed: {e}")),
        };
        let result = match result {
            Ok(durable) => {
                shared.flushes.fetch_add(1, Ordering::SeqCst);
                shared.forget_flushed(&batch);
                shared.durability.set_last(durable);
                Ok(())
            }
            Err(msg) => {
                if failed.is_none() {
                    tracing::error!(error = %msg, "raft log writer failed; later writes are refused");
                    shared.durability.fail(&msg);
                    failed = Some(msg.clone());
                }
                Err(msg)
            }
        };
        for op in batch {
            op.complete(result.clone());
        }
    }
}

/// The Raft log and vote of one node, in `<raft dir>/log.db`. See the module docs for the
/// durability and ordering rules.
pub struct LogStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Op>,
    /// This node's id when its own appends as leader are acknowledged on queueing (see
    /// [`LogStore::overlap_leader_fsync`]).
    overlap_as: Option<NodeId>,
}

/// A cloneable reader of the log (openraft hands one to every replication stream). Sees
/// appended entries at once, flushed or not.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogStore {
    /// Opens (creating `dir` and the database if needed) the log in `dir`, the node's Raft
    /// directory (`<data_dir>/raft`), and starts its writer thread. Everything committed
    /// before a crash is there after reopening.
    pub async fn open(dir: &Path) -> crate::Result<LogStore> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || LogStore::open_blocking(&dir))
            .await
            .map_err(|e| Error::new(ErrorKind::Storage, format!("opening log.db: {e}")))?
    }

    fn open_blocking(dir: &Path) -> crate::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG_DB_FILE);
        let (conn, mem) = open_writer(&path)
            .and_then(|conn| load(&conn).map(|mem| (conn, mem)))
            .map_err(|e| crate::store::in_file(&path, e))?;
        let durability = Durability::new(mem.last_log_id);
        let shared = Arc::new(Shared {
            path,
            mem: Mutex::new(mem),
            readers: Mutex::new(Vec::new()),
            flushes: AtomicU64::new(0),
            durability,
        });
        let (tx, rx) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("raft-log-writer".to_string())
            .spawn(move || writer_loop(conn, rx, writer_shared))?;
        Ok(LogStore {
            shared,
            tx,
            overlap_as: None,
        })
    }

    /// Lets the leader's fsync of its own entries run beside the replication (Raft thesis
    /// §10.2.1): while the stored vote is `me`'s committed vote, `append` tells openraft the
    /// entries are persisted as soon as they are queued. Only sound together with the two
    /// rules of [`super::durability`]: the state machine waits for [`LogStore::durability`]
    /// before applying, and the network clamps the commit index it sends to followers.
    pub fn overlap_leader_fsync(mut self, me: NodeId) -> LogStore {
        self.overlap_as = Some(me);
        self
    }

    /// The durable end of this log (see [`super::durability`]).
    pub fn durability(&self) -> Durability {
        self.shared.durability.clone()
    }

    /// True when an append now is this node's own, as leader, and may be acknowledged before
    /// its fsync (see [`LogStore::overlap_leader_fsync`]).
    fn acks_on_queueing(&self) -> bool {
        let Some(me) = self.overlap_as else {
            return false;
        };
        let mem = lock(&self.shared.mem);
        mem.vote
            .is_some_and(|v| v.is_committed() && v.leader_id().voted_for() == Some(me))
    }

    /// Path of `log.db`.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Write transactions (= WAL fsyncs) committed since open: a batching metric.
    pub fn flush_count(&self) -> u64 {
        self.shared.flushes.load(Ordering::SeqCst)
    }

    /// A reader sharing this store's unflushed tail.
    pub fn reader(&self) -> LogReader {
        LogReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Queues `op`; if the writer is gone the op is completed with an error at once.
    fn submit(&self, op: Op) -> Result<(), String> {
        self.tx.send(op).map_err(|mpsc::SendError(op)| {
            let msg = "the raft log writer thread has stopped".to_string();
            op.complete(Err(msg.clone()));
            msg
        })
    }

    /// Queues `op` and waits for its commit.
    async fn submit_and_wait(&self, make: impl FnOnce(Done) -> Op) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.submit(make(Done::Reply(tx)))?;
        rx.await
            .unwrap_or_else(|_| Err("the raft log writer stopped before answering".to_string()))
    }

    /// Puts `entries` into the unflushed tail and queues their write; `done` fires after the
    /// commit. The error is a message for [`StorageIOError::write_logs`].
    fn enqueue_append(&self, entries: Vec<Entry>, done: Done) -> Result<(), String> {
        let mut rows = Vec::with_capacity(entries.len());
        let mut log_ids = Vec::with_capacity(entries.len());
        for entry in &entries {
            let json = serde_json::to_string(entry)
                .map_err(|e| format!("cannot encode log entry {}: {e}", entry.log_id))?;
            rows.push(Row {
                index: to_i64(entry.log_id.index)?,
                term: to_i64(entry.log_id.leader_id.term)?,
                json,
            });
            log_ids.push(entry.log_id);
        }
        {
            let mut mem = lock(&self.shared.mem);
            for entry in entries {
                mem.last_log_id = Some(entry.log_id);
                mem.unflushed.insert(entry.log_id.index, entry);
            }
        }
        self.submit(Op::Append {
            rows,
            log_ids,
            done,
        })
    }

    /// Queues a vote; `done` fires after the commit. The error is a message for
    /// [`StorageIOError::write_vote`].
    fn enqueue_vote(&self, vote: &Vote, done: Done) -> Result<(), String> {
        let json =
            serde_json::to_string(vote).map_err(|e| format!("cannot encode the vote: {e}"))?;
        self.submit(Op::SaveVote { json, done })
    }
}

impl LogReader {
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Entry>, StorageError> {
        if start >= end {
            return Ok(Vec::new());
        }
        // Tail first, database second (see the module docs for why this order is safe).
        let mut found: BTreeMap<u64, Entry> = {
            let mem = lock(&self.shared.mem);
            let mut found: BTreeMap<u64, Entry> = mem
                .unflushed
                .range(start..end)
                .map(|(index, entry)| (*index, entry.clone()))
                .collect();
            for (index, (entry, _)) in mem.recent.entries.range(start..end) {
                found.entry(*index).or_insert_with(|| entry.clone());
            }
            found
        };
        let covered = u64::try_from(found.len()).is_ok_and(|n| n == end - start);
        if !covered {
            let shared = Arc::clone(&self.shared);
            let stored = tokio::task::spawn_blocking(move || shared.read_range(start, end))
                .await
                .map_err(read_logs_error)?
                .map_err(read_logs_error)?;
            for entry in stored {
                found.entry(entry.log_id.index).or_insert(entry);
            }
        }
        Ok(found.into_values().collect())
    }
}

/// `[start, end)` of a range of indexes, saturating at `u64::MAX`.
fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_bounds(&range);
        self.entries(start, end).await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_bounds(&range);
        self.reader().entries(start, end).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = lock(&self.shared.mem);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: mem.last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    /// Returns after the vote's transaction committed (fsynced).
    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let write_vote_error =
            |e: String| StorageError::from(StorageIOError::write_vote(AnyError::error(e)));
        let (tx, rx) = oneshot::channel();
        self.enqueue_vote(vote, Done::Reply(tx))
            .map_err(write_vote_error)?;
        rx.await
            .unwrap_or_else(|_| Err("the raft log writer stopped before answering".to_string()))
            .map_err(write_vote_error)?;
        lock(&self.shared.mem).vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(lock(&self.shared.mem).vote)
    }

    /// Recorded in memory; the next write transaction stores it (see the module docs).
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut mem = lock(&self.shared.mem);
        // openraft never moves it back; keep the newest if a stale id ever arrived late.
        mem.committed = mem.committed.max(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(lock(&self.shared.mem).committed)
    }

    /// Entries are readable when this returns; `callback` fires after their commit.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if !self.acks_on_queueing() {
            return self
                .enqueue_append(entries, Done::Flushed(callback))
                .map_err(write_logs_error);
        }
        if let Some(msg) = self.shared.durability.failed() {
            return Err(write_logs_error(msg));
        }
        self.enqueue_append(entries, Done::Early)
            .map_err(write_logs_error)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    /// Deletes entries with index `>= log_id.index`; returns after the commit.
    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let index = log_id.index;
        let delete_error = |e: String| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let since = to_i64(index).map_err(delete_error)?;
        // Hide the truncated tail from readers now; the writer deletes the rows in order.
        let tail_last = {
            let mut mem = lock(&self.shared.mem);
            drop(mem.unflushed.split_off(&index));
            mem.recent.remove_from(index);
            mem.unflushed.last_key_value().map(|(_, e)| e.log_id)
        };
        self.submit_and_wait(|done| Op::Truncate { since, done })
            .await
            .map_err(delete_error)?;
        let shared = Arc::clone(&self.shared);
        let stored_last = tokio::task::spawn_blocking(move || shared.read_last_below(index))
            .await
            .map_err(read_logs_error)?
            .map_err(read_logs_error)?;
        let mut mem = lock(&self.shared.mem);
        mem.last_log_id = tail_last.max(stored_last).max(mem.last_purged);
        Ok(())
    }

    /// Deletes entries with index `<= log_id.index` and records `log_id` as the last purged
    /// id; returns after the commit.
    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let delete_error = |e: String| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let upto = to_i64(log_id.index).map_err(delete_error)?;
        let json = serde_json::to_string(&Some(log_id)).map_err(|e| delete_error(e.to_string()))?;
        self.submit_and_wait(|done| Op::Purge {
            upto,
            log_id,
            json,
            done,
        })
        .await
        .map_err(delete_error)?;
        let mut mem = lock(&self.shared.mem);
        let kept = mem.unflushed.split_off(&log_id.index.saturating_add(1));
        mem.unflushed = kept;
        mem.recent.remove_upto(log_id.index);
        mem.last_purged = Some(log_id);
        if mem.last_log_id < Some(log_id) {
            mem.last_log_id = Some(log_id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::{blank_ent, log_id};
    use std::sync::mpsc::{channel, Receiver};
    use std::time::Duration;

    fn node() -> NodeId {
        NodeId::from(1u64)
    }

    #[test]
    fn recent_cache_is_bounded_by_count_and_bytes() {
        let mut recent = Recent::default();
        let big = RECENT_BYTES / 10;
        for i in 1..=20u64 {
            recent.insert(i, blank_ent::<TypeConfig>(1, node(), i), big);
            assert!(recent.bytes <= RECENT_BYTES);
        }
        // Only the newest entries that fit stay.
        assert_eq!(recent.entries.len(), 10);
        assert_eq!(recent.entries.keys().next(), Some(&11));
        recent.remove_from(18);
        recent.remove_upto(12);
        assert_eq!(
            recent.entries.keys().copied().collect::<Vec<_>>(),
            vec![13, 14, 15, 16, 17]
        );
        assert_eq!(recent.bytes, 5 * big);
        for i in 100..(100 + RECENT_ENTRIES as u64 + 5) {
            recent.insert(i, blank_ent::<TypeConfig>(1, node(), i), 1);
        }
        assert_eq!(recent.entries.len(), RECENT_ENTRIES);
        assert_eq!(
            recent.bytes,
            recent.entries.values().map(|(_, size)| size).sum::<usize>()
        );
    }

    /// Holds the writer thread until the returned sender is dropped or sent to.
    fn pause_writer(store: &LogStore) -> mpsc::Sender<()> {
        let (release, gate) = channel::<()>();
        let (started, wait_started) = channel::<()>();
        store
            .submit(Op::Exclusive(Box::new(move |_conn| {
                let _ = started.send(());
                let _ = gate.recv();
            })))
            .unwrap();
        wait_started.recv().unwrap();
        release
    }

    /// Whether a brand-new connection sees entry `index` (i.e. it is committed).
    fn committed_entry(path: &Path, index: u64) -> bool {
        let conn = Connection::open(path).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM log WHERE log_index = ?1",
            [index as i64],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    fn committed_vote(path: &Path) -> Option<Vote> {
        let conn = Connection::open(path).unwrap();
        meta_json(&conn, KEY_VOTE).unwrap()
    }

    /// A hook that reports `(label, committed-before-ack)` on `tx`.
    fn hook(
        label: &'static str,
        path: PathBuf,
        check: impl Fn(&Path) -> bool + Send + 'static,
        tx: mpsc::Sender<(&'static str, bool)>,
    ) -> Done {
        Done::Hook(Box::new(move |result| {
            assert!(result.is_ok(), "{label}: {result:?}");
            let _ = tx.send((label, check(&path)));
        }))
    }

    /// Queues `entries`; the receiver gets the writer's answer after their commit.
    fn append_with_receipt(store: &LogStore, entries: Vec<Entry>) -> Receiver<Result<(), String>> {
        let (tx, rx) = channel();
        store
            .enqueue_append(entries, Done::Hook(Box::new(move |r| tx.send(r).unwrap())))
            .unwrap();
        rx
    }

    fn collect(rx: &Receiver<(&'static str, bool)>, n: usize) -> Vec<(&'static str, bool)> {
        (0..n).map(|_| rx.recv().unwrap()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writer_connection_is_wal_and_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).await.unwrap();
        let (tx, rx) = channel();
        store
            .submit(Op::Exclusive(Box::new(move |conn| {
                let sync: i64 = conn
                    .query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .unwrap();
                let mode: String = conn
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .unwrap();
                tx.send((sync, mode)).unwrap();
            })))
            .unwrap();
        let (sync, mode) = rx.recv().unwrap();
        assert_eq!(sync, 2, "synchronous must be FULL (2)");
        assert_eq!(mode, "wal");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acks_in_submission_order_after_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).await.unwrap();
        let path = store.path().to_path_buf();
        let release = pause_writer(&store);
        let flushes_before = store.flush_count();

        let (tx, rx) = channel();
        let a = blank_ent::<TypeConfig>(1, node(), 1);
        let b = blank_ent::<TypeConfig>(1, node(), 2);
        let c = blank_ent::<TypeConfig>(2, node(), 3);
        let vote = Vote::new(2, node());
        store
            .enqueue_append(
                vec![a],
                hook("A", path.clone(), |p| committed_entry(p, 1), tx.clone()),
            )
            .unwrap();
        store
            .enqueue_append(
                vec![b],
                hook("B", path.clone(), |p| committed_entry(p, 2), tx.clone()),
            )
            .unwrap();
        store
            .enqueue_vote(
                &vote,
                hook(
                    "vote",
                    path.clone(),
                    move |p| committed_vote(p) == Some(vote),
                    tx.clone(),
                ),
            )
            .unwrap();
        store
            .enqueue_append(
                vec![c],
                hook("C", path.clone(), |p| committed_entry(p, 3), tx.clone()),
            )
            .unwrap();

        // Readable at once, before any commit; not yet visible to a fresh connection.
        let read = store.try_get_log_entries(1..4).await.unwrap();
        assert_eq!(
            read.iter().map(|e| e.log_id).collect::<Vec<_>>(),
            vec![
                log_id(1, node(), 1),
                log_id(1, node(), 2),
                log_id(2, node(), 3)
            ]
        );
        assert!(!committed_entry(&path, 1));
        assert!(rx.try_recv().is_err(), "no ack before the commit");

        release.send(()).unwrap();
        let acks = collect(&rx, 4);
        assert_eq!(
            acks,
            vec![("A", true), ("B", true), ("vote", true), ("C", true)],
            "acks in submission order, each after its commit"
        );
        assert_eq!(
            store.flush_count(),
            flushes_before + 1,
            "the queued writes were committed in one transaction"
        );
        // Flushed entries left the tail and are read from the database.
        assert!(lock(&store.shared.mem).unflushed.is_empty());
        assert_eq!(store.try_get_log_entries(..).await.unwrap().len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submitters_are_acked_in_queue_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LogStore::open(dir.path()).await.unwrap());
        let path = store.path().to_path_buf();
        let release = pause_writer(&store);

        // Each submitter takes the next index and queues under one lock, so the queue order is
        // the index order; acks must come back in exactly that order.
        let next = Arc::new(Mutex::new(0u64));
        let (tx, rx) = channel();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                let next = Arc::clone(&next);
                let tx = tx.clone();
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        let index = *n;
                        let tx = tx.clone();
                        let path = path.clone();
                        let done = Done::Hook(Box::new(move |result| {
                            assert!(result.is_ok());
                            tx.send((index, committed_entry(&path, index))).unwrap();
                        }));
                        store
                            .enqueue_append(vec![blank_ent::<TypeConfig>(1, node(), index)], done)
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        release.send(()).unwrap();
        let acks: Vec<(u64, bool)> = (0..100).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(
            acks,
            (1..=100).map(|i| (i, true)).collect::<Vec<_>>(),
            "acks in queue order, each after its commit"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn truncate_and_purge_hide_the_unflushed_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).await.unwrap();
        let entries: Vec<Entry> = (1..=5)
            .map(|i| blank_ent::<TypeConfig>(1, node(), i))
            .collect();
        let rx = append_with_receipt(&store, entries);
        store.truncate(log_id(1, node(), 4)).await.unwrap();
        assert!(rx.recv().unwrap().is_ok());
        store.purge(log_id(1, node(), 1)).await.unwrap();
        let left: Vec<u64> = store
            .try_get_log_entries(..)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id.index)
            .collect();
        assert_eq!(left, vec![2, 3]);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, node(), 3)));
        assert_eq!(state.last_purged_log_id, Some(log_id(1, node(), 1)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_poisons_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).await.unwrap();
        // Make every later write fail, as a full disk would.
        let (tx, rx) = channel();
        store
            .submit(Op::Exclusive(Box::new(move |conn| {
                conn.execute_batch("DROP TABLE log").unwrap();
                tx.send(()).unwrap();
            })))
            .unwrap();
        rx.recv().unwrap();
        let rx = append_with_receipt(&store, vec![blank_ent::<TypeConfig>(1, node(), 1)]);
        assert!(rx.recv().unwrap().is_err());
        // The vote table is intact, but the writer refuses anything after a lost write.
        assert!(store.save_vote(&Vote::new(1, node())).await.is_err());
        // The durability handle carries the failure to the state machine's wait.
        assert!(store.durability().failed().is_some());
        assert!(store.durability().wait_for(1).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_leaders_own_appends_are_acked_on_queueing() {
        let dir = tempfile::tempdir().unwrap();
        let other = NodeId::from(2u64);
        let mut plain = LogStore::open(&dir.path().join("plain")).await.unwrap();
        plain
            .save_vote(&Vote::new_committed(1, node()))
            .await
            .unwrap();
        assert!(!plain.acks_on_queueing(), "not enabled");

        let mut store = LogStore::open(&dir.path().join("overlap"))
            .await
            .unwrap()
            .overlap_leader_fsync(node());
        assert!(!store.acks_on_queueing(), "no vote yet");
        store.save_vote(&Vote::new(1, node())).await.unwrap();
        assert!(!store.acks_on_queueing(), "a candidate is not a leader");
        store
            .save_vote(&Vote::new_committed(1, node()))
            .await
            .unwrap();
        assert!(store.acks_on_queueing(), "leader of term 1");
        store
            .save_vote(&Vote::new_committed(2, other))
            .await
            .unwrap();
        assert!(!store.acks_on_queueing(), "a follower of node 2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durability_follows_commits_truncation_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).await.unwrap();
        let durability = store.durability();
        assert_eq!(durability.last(), None);
        let release = pause_writer(&store);
        let entries: Vec<Entry> = (1..=5)
            .map(|i| blank_ent::<TypeConfig>(1, node(), i))
            .collect();
        store.enqueue_append(entries, Done::Early).unwrap();
        let waiter = tokio::spawn({
            let durability = durability.clone();
            async move { durability.wait_for(5).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "queued is not durable");
        assert_eq!(durability.last(), None);
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("durable after the commit")
            .unwrap()
            .unwrap();
        assert_eq!(durability.last(), Some(log_id(1, node(), 5)));

        // A truncation moves the durable end back to the last entry left.
        store.truncate(log_id(1, node(), 4)).await.unwrap();
        assert_eq!(durability.last(), Some(log_id(1, node(), 3)));
        store.purge(log_id(1, node(), 2)).await.unwrap();
        assert_eq!(durability.last(), Some(log_id(1, node(), 3)));
        // Truncating everything that is left falls back to the purged id.
        store.truncate(log_id(1, node(), 3)).await.unwrap();
        assert_eq!(durability.last(), Some(log_id(1, node(), 2)));
        let rx = append_with_receipt(&store, vec![blank_ent::<TypeConfig>(2, node(), 3)]);
        assert!(rx.recv().unwrap().is_ok());
        assert_eq!(durability.last(), Some(log_id(2, node(), 3)));
        drop(store);

        // After a restart the whole log on disk is durable.
        let store = LogStore::open(dir.path()).await.unwrap();
        assert_eq!(store.durability().last(), Some(log_id(2, node(), 3)));
    }
}
