//! SQLite schema and access shared by the Raft state machine and the legacy (bully) mode.
//!
//! One database file holds every replicated table: `raft/state.db` under Raft, the orchestrator's
//! `work_queue.db` layout in legacy mode. Both use the same schema ([`schema`]) so that moving
//! between the modes is an import of rows, not a conversion. The state machine itself lives in
//! [`crate::state`]; this module only knows how to open, migrate and read the bookkeeping table
//! `sm_meta` ([`meta`]).

pub(crate) mod json;
pub mod meta;
pub mod schema;

pub use meta::{meta_get, meta_set};
pub use schema::{migrate, open_in_memory, open_state_db};

use crate::error::{Error, ErrorKind};

/// Fixes every statement's query plan at prepare time (SQLite's query planner stability
/// guarantee).
///
/// The bundled SQLite is built with `SQLITE_ENABLE_STAT4`, and without this setting a statement
/// whose plan could depend on a bound value (a parameter compared with an indexed column,
/// `?1 IS NULL OR ...`, LIKE) is re-compiled whenever that value changes: the state machine's
/// cached statements were re-parsed on nearly every write, a third of the apply CPU. The
/// databases are never `ANALYZE`d, so the generic plan is the plan they would get anyway.
pub(crate) fn stable_plans(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(|_| ())
}

/// Opens a read-only connection to the SQLite file at `path` the way every reader here wants
/// it: stable plans, the shared statement cache size and busy timeout, and a page cache of
/// `cache_kib` KiB.
pub(crate) fn open_read_only(
    path: &std::path::Path,
    cache_kib: i64,
) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.set_prepared_statement_cache_capacity(schema::STATEMENT_CACHE);
    stable_plans(&conn)?;
    conn.busy_timeout(schema::BUSY_TIMEOUT)?;
    // Negative `cache_size` is in KiB.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(conn)
}

/// Names the file an error at opening it came from: "file is not a database" alone does not
/// say which of a node's databases is damaged.
pub(crate) fn in_file(path: &std::path::Path, err: Error) -> Error {
    Error::new(err.kind(), format!("{}: {}", path.display(), err.message()))
}

/// Maps a SQLite failure to the engine's [`ErrorKind::Storage`]. rusqlite errors never cross the
/// public API, so Python and C see one stable kind for every disk or database problem.
pub(crate) fn storage_error(err: rusqlite::Error) -> Error {
    Error::new(ErrorKind::Storage, format!("sqlite: {err}"))
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus};

    /// Runs a statement whose plan depends on its bound value (LIKE on an indexed column) with
    /// two values; returns how often SQLite re-compiled it.
    fn reprepares(conn: &Connection) -> i32 {
        conn.execute_batch(
            "CREATE TABLE t (x TEXT COLLATE NOCASE); CREATE INDEX t_x ON t (x);
             INSERT INTO t VALUES ('alpha'), ('beta');",
        )
        .unwrap();
        let mut stmt = conn
            .prepare("SELECT count(*) FROM t WHERE x LIKE ?1")
            .unwrap();
        for pattern in ["a%", "b%", "al%"] {
            let n: i64 = stmt.query_row([pattern], |r| r.get(0)).unwrap();
            assert_eq!(n, 1);
        }
        stmt.get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn stable_plans_stop_recompiling_on_every_new_binding() {
        let plain = Connection::open_in_memory().unwrap();
        assert!(
            reprepares(&plain) > 0,
            "the bundled SQLite recompiles by default"
        );
        let stable = Connection::open_in_memory().unwrap();
        super::stable_plans(&stable).unwrap();
        assert_eq!(reprepares(&stable), 0);
        // Every state database gets it.
        let state = super::open_in_memory().unwrap();
        assert!(state
            .db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG)
            .unwrap());
    }
}
