//! Opening the state database and creating its tables.
//!
//! `work_items` and `work_stats` are the orchestrator's legacy work-queue tables, column for
//! column (COMPAT.md), so a legacy `work_queue.db` can be opened, migrated in place, or imported.
//! Columns carry defaults but no `NOT NULL`: an orchestrator that predates the engine may insert
//! NULLs into a file it shares, and the readers in [`crate::state`] treat NULL as the default.
//! The other tables are the engine's own: jobs, locks, key/value, client sessions and `sm_meta`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::{meta, storage_error};
use crate::error::{Error, ErrorKind, Result};

/// The schema version [`migrate`] writes into `sm_meta`.
pub const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another connection's lock before failing (the legacy queue used
/// the same 10 s).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `work_items` columns with their declared type and default, in the legacy column order. Used
/// both to create the table and to add columns an older file lacks.
const WORK_ITEM_COLUMNS: &[(&str, &str)] = &[
    ("work_id", "TEXT PRIMARY KEY"),
    ("work_type", "TEXT DEFAULT 'selfplay'"),
    ("priority", "INTEGER DEFAULT 50"),
    ("config", "TEXT DEFAULT '{}'"),
    ("created_at", "REAL DEFAULT 0"),
    ("claimed_at", "REAL DEFAULT 0"),
    ("started_at", "REAL DEFAULT 0"),
    ("completed_at", "REAL DEFAULT 0"),
    ("status", "TEXT DEFAULT 'pending'"),
    ("claimed_by", "TEXT DEFAULT ''"),
    ("attempts", "INTEGER DEFAULT 0"),
    ("max_attempts", "INTEGER DEFAULT 3"),
    ("timeout_seconds", "REAL DEFAULT 3600"),
    ("result", "TEXT DEFAULT '{}'"),
    ("error", "TEXT DEFAULT ''"),
    ("depends_on", "TEXT DEFAULT '[]'"),
];

/// The counters of `work_stats`; the first four are the legacy ones.
pub const WORK_STATS_KEYS: &[&str] = &[
    "total_added",
    "total_completed",
    "total_failed",
    "total_timeout",
    "total_cancelled",
];

/// Everything except `work_items`, whose columns come from [`WORK_ITEM_COLUMNS`].
///
/// `client_sessions` is written and deleted by nearly every write, so it has no index besides
/// its `(client_id, seq)` key: sessions expire by client, through `client_watermarks` (see
/// [`crate::state::session`]); the old `updated_us` index of earlier files is dropped. It stays
/// a rowid table: as `WITHOUT ROWID` the 300–500-byte answers overflowed 1 KiB pages (measured
/// slower).
const OTHER_TABLES: &str = "
CREATE TABLE IF NOT EXISTS work_stats (
    key TEXT PRIMARY KEY,
    value INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    node_id TEXT DEFAULT '',
    status TEXT DEFAULT 'assigned',
    data TEXT DEFAULT 'null',
    result TEXT DEFAULT 'null',
    error TEXT DEFAULT '',
    assigned_at REAL DEFAULT 0,
    started_at REAL DEFAULT 0,
    completed_at REAL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_jobs_node ON jobs (node_id, job_id);
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    acquired_at_us INTEGER NOT NULL,
    renewed_at_us INTEGER NOT NULL,
    ttl_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS client_sessions (
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    result TEXT NOT NULL,
    updated_us INTEGER NOT NULL,
    PRIMARY KEY (client_id, seq)
);
DROP INDEX IF EXISTS idx_client_sessions_updated;
CREATE TABLE IF NOT EXISTS client_watermarks (
    client_id TEXT PRIMARY KEY,
    low INTEGER NOT NULL,
    updated_us INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_client_watermarks_updated ON client_watermarks (updated_us, client_id);
CREATE TABLE IF NOT EXISTS sm_meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
";

/// The claim order index: `claim_next` walks `status = 'pending'` in exactly this order.
///
/// There is no index on `claimed_by` (earlier files had one; it is dropped): no query used it
/// (`work_list`'s optional node filter scans), yet every claim moved an entry into the run of
/// its claimer's name, so with 64 claimers a group of writes dirtied about 64 more 1 KiB
/// pages of that index: half of the WAL frames per group commit and about a fifth of the
/// apply time in the 64-client mix (apply microbenchmark, 182-write groups: 139–151 → 68
/// frames per group, 10.4–11.4 → 8.3–9.2 µs per write).
const WORK_ITEM_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS idx_work_items_claim_order
    ON work_items (status, priority DESC, created_at, work_id);
DROP INDEX IF EXISTS idx_work_items_claimed_by;
";

/// The number of `pending` work items, kept by triggers so that an add's backpressure check
/// reads one row instead of counting the pending part of the claim index (which cost an add
/// ~4× a normal write with 900 items pending). Triggers, not the state machine's code, keep it:
/// they fire for every writer of the file, a legacy orchestrator sharing it included, and on
/// every path (add, claim, fail with retry, release, cancel, timeouts, cleanup, snapshot
/// install). Derived data: [`rebuild_pending_count`] recounts it whenever the file is opened
/// and after a snapshot is installed, and the state digest leaves it out.
const PENDING_COUNT: &str = "
CREATE TABLE IF NOT EXISTS work_pending_count (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS work_items_pending_insert AFTER INSERT ON work_items
    WHEN NEW.status IS 'pending'
BEGIN
    UPDATE work_pending_count SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS work_items_pending_delete AFTER DELETE ON work_items
    WHEN OLD.status IS 'pending'
BEGIN
    UPDATE work_pending_count SET n = n - 1;
END;
CREATE TRIGGER IF NOT EXISTS work_items_pending_update AFTER UPDATE OF status ON work_items
    WHEN (OLD.status IS 'pending') <> (NEW.status IS 'pending')
BEGIN
    UPDATE work_pending_count SET n = n + (CASE WHEN NEW.status IS 'pending' THEN 1 ELSE -1 END);
END;
";

/// Recounts `work_pending_count` from `work_items` (the count the triggers of `PENDING_COUNT`
/// in this file keep).
pub fn rebuild_pending_count(conn: &Connection) -> rusqlite::Result<()> {
    // A savepoint: atomic on its own and inside a caller's transaction alike.
    conn.execute_batch(
        "SAVEPOINT rebuild_pending_count;
         DELETE FROM work_pending_count;
         INSERT INTO work_pending_count (id, n)
             SELECT 1, COUNT(*) FROM work_items WHERE status = 'pending';
         RELEASE rebuild_pending_count;",
    )
}

/// Opens (creating if needed) the state database at `path` and migrates it.
///
/// Pragmas: WAL journal, `synchronous=NORMAL` (a lost tail of applied entries is re-applied
/// from the durable Raft log, so the state file does not need an fsync per commit),
/// `busy_timeout=10000`, and foreign keys off (the legacy schema has none and the state machine
/// checks references itself).
pub fn open_state_db(path: &Path) -> Result<Connection> {
    let open = || {
        let conn = Connection::open(path).map_err(storage_error)?;
        configure(&conn, true)?;
        migrate(&conn)?;
        Ok(conn)
    };
    open().map_err(|e| super::in_file(path, e))
}

/// An in-memory, migrated state database for tests (same pragmas, except that an in-memory
/// database has no WAL).
pub fn open_in_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory().map_err(storage_error)?;
    configure(&conn, false)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Prepared statements a connection keeps (rusqlite's default is 16; the state machine and
/// its queries use about 60 distinct statements, and a cache that small re-parses SQL on
/// nearly every command).
pub const STATEMENT_CACHE: usize = 128;

/// Page size of a new state database. Every commit writes each page it changed, whole, to the
/// WAL, and a batch of writes changes rows scattered over the queue, its indexes and the
/// session tables; 1 KiB pages write a quarter of the bytes of SQLite's default 4 KiB for the
/// same rows. Existing files keep their page size.
pub const STATE_PAGE_SIZE: i64 = 1024;

/// WAL frames after which a commit checkpoints them into the database file (SQLite's default
/// is 1,000, only 1 MiB with 1 KiB pages). A checkpoint copies the newest version of each page
/// in the WAL and fsyncs, so the hot pages that nearly every commit rewrites are copied once
/// per checkpoint: 8 MiB of WAL between checkpoints measured about 6 % less CPU per write
/// under 64 concurrent clients than the default (32 MiB: no further gain).
pub const STATE_WAL_AUTOCHECKPOINT: i64 = 8192;

fn configure(conn: &Connection, wal: bool) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    super::stable_plans(conn).map_err(storage_error)?;
    // Only a new, empty file takes a page size, and only before WAL is switched on.
    conn.pragma_update(None, "page_size", STATE_PAGE_SIZE)
        .map_err(storage_error)?;
    if wal {
        // `journal_mode` answers with the mode now in force; WAL can be refused (e.g. on some
        // network file systems), and running without it would change durability, so a refusal
        // is an error.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(storage_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::new(
                ErrorKind::Storage,
                format!("journal_mode=WAL was refused (journal_mode is {mode})"),
            ));
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .and_then(|()| conn.pragma_update(None, "foreign_keys", "OFF"))
        .and_then(|()| conn.pragma_update(None, "wal_autocheckpoint", STATE_WAL_AUTOCHECKPOINT))
        .and_then(|()| conn.busy_timeout(BUSY_TIMEOUT))
        .map_err(storage_error)
}

/// Creates every table and index that does not exist yet, adds `work_items` columns an older
/// file lacks, seeds the `work_stats` counters and records the schema version. Idempotent, and
/// never touches existing rows. A file of a newer schema version is refused untouched: this
/// build would otherwise relabel it as its own version and write rows in its older layout.
pub fn migrate(conn: &Connection) -> Result<()> {
    let has_meta = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sm_meta'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(storage_error)?
        .is_some();
    if has_meta {
        let found = meta::get_i64(conn, meta::SCHEMA_VERSION).map_err(storage_error)?;
        if let Some(version) = found.filter(|v| *v > SCHEMA_VERSION) {
            return Err(Error::new(
                ErrorKind::Storage,
                format!(
                    "the database has schema version {version}, newer than this build's \
                     {SCHEMA_VERSION}: open it with the newer swimraft that wrote it"
                ),
            ));
        }
    }
    migrate_inner(conn).map_err(storage_error)
}

fn migrate_inner(conn: &Connection) -> rusqlite::Result<()> {
    let columns: Vec<String> = WORK_ITEM_COLUMNS
        .iter()
        .map(|(name, decl)| format!("{name} {decl}"))
        .collect();
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS work_items ({});",
        columns.join(", ")
    ))?;
    let existing = table_columns(conn, "work_items")?;
    for (name, decl) in WORK_ITEM_COLUMNS {
        // A PRIMARY KEY cannot be added by ALTER TABLE; a table without work_id is not a
        // work queue and the queries will say so.
        if !existing.iter().any(|c| c.eq_ignore_ascii_case(name)) && *name != "work_id" {
            conn.execute_batch(&format!("ALTER TABLE work_items ADD COLUMN {name} {decl};"))?;
        }
    }
    conn.execute_batch(WORK_ITEM_INDEXES)?;
    conn.execute_batch(OTHER_TABLES)?;
    conn.execute_batch(PENDING_COUNT)?;
    rebuild_pending_count(conn)?;
    for key in WORK_STATS_KEYS {
        conn.execute(
            "INSERT OR IGNORE INTO work_stats (key, value) VALUES (?1, 0)",
            [key],
        )?;
    }
    meta::set_i64(conn, meta::SCHEMA_VERSION, SCHEMA_VERSION)?;
    Ok(())
}

fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let names = stmt.query_map([table], |row| row.get::<_, String>(0))?;
    names.collect()
}
