//! The SQLite store on real files: pragmas, idempotent migration, legacy work-queue files,
//! and state surviving a reopen.

mod state_support;

use rusqlite::Connection;
use serde_json::json;
use state_support::*;
use swimraft_core::state::{queries, Command, WorkStatus};
use swimraft_core::store;

fn pragma<T: rusqlite::types::FromSql>(conn: &Connection, name: &str) -> T {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn file_database_pragmas() {
    let db = Db::file();
    assert_eq!(pragma::<String>(&db.conn, "journal_mode"), "wal");
    assert_eq!(pragma::<i64>(&db.conn, "synchronous"), 1, "NORMAL");
    assert_eq!(pragma::<i64>(&db.conn, "busy_timeout"), 10_000);
    assert_eq!(pragma::<i64>(&db.conn, "foreign_keys"), 0);
    assert_eq!(
        pragma::<i64>(&db.conn, "wal_autocheckpoint"),
        store::schema::STATE_WAL_AUTOCHECKPOINT
    );
}

#[test]
fn migrate_is_idempotent_and_creates_every_table() {
    let db = Db::file();
    store::migrate(&db.conn).unwrap();
    store::migrate(&db.conn).unwrap();
    let tables: Vec<String> = db
        .conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "client_sessions",
            "client_watermarks",
            "jobs",
            "kv",
            "locks",
            "sm_meta",
            "work_items",
            "work_pending_count",
            "work_stats"
        ]
    );
    let keys: Vec<(String, i64)> = db
        .conn
        .prepare("SELECT key, value FROM work_stats ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys.len(), 5);
    assert!(keys.iter().all(|(_, v)| *v == 0));
    let indexes: Vec<String> = db
        .conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'work_items' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["idx_work_items_claim_order"]);
    assert_eq!(
        store::meta_get(&db.conn, "schema_version")
            .unwrap()
            .as_deref(),
        Some("1")
    );
}

#[test]
fn state_survives_reopen() {
    let mut db = Db::file();
    db.add("w1");
    db.add("w2");
    db.run(claim("w1", "n1"));
    db.run(acquire("l", "n1", 60 * SEC));
    db.run(Command::KvSet {
        key: "k".into(),
        value: json!({"v": 1}),
    });
    let digest = queries::state_digest(&db.conn).unwrap();
    let dir = db.dir.take().unwrap();
    drop(db.conn);
    let conn = store::open_state_db(&dir.path().join("state.db")).unwrap();
    assert_eq!(queries::state_digest(&conn).unwrap(), digest);
    assert_eq!(queries::last_applied_index(&conn).unwrap(), Some(5));
    let mut db = Db {
        conn,
        now_us: T0,
        dir: Some(dir),
    };
    // Applying continues at the next index.
    assert_eq!(db.run(claim("w2", "n2")), TRUE);
    assert_eq!(queries::last_applied_index(&db.conn).unwrap(), Some(6));
}

/// A work queue file as the orchestrator created it: its own DDL, NULLs where it left them, no
/// `depends_on` column (added later in its history).
#[test]
fn legacy_work_queue_file_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("work_queue.db");
    {
        let legacy = Connection::open(&path).unwrap();
        legacy
            .execute_batch(
                "CREATE TABLE work_items (
                    work_id TEXT PRIMARY KEY, work_type TEXT NOT NULL, priority INTEGER,
                    config TEXT, created_at REAL, claimed_at REAL, started_at REAL,
                    completed_at REAL, status TEXT, claimed_by TEXT, attempts INTEGER,
                    max_attempts INTEGER, timeout_seconds REAL, result TEXT, error TEXT);
                 CREATE TABLE work_stats (key TEXT PRIMARY KEY, value INTEGER);
                 INSERT INTO work_stats VALUES ('total_added', 7);
                 INSERT INTO work_items VALUES ('old-1', 'selfplay', 60, '{\"a\": 1}',
                    1699990000.5, 0, 0, 0, 'pending', NULL, 0, 3, 5400, NULL, NULL);
                 INSERT INTO work_items VALUES ('old-2', 'training', 40, NULL,
                    1699990001.0, 1699990002.0, 0, 0, 'claimed', 'gpu-1', 1, 3, 5400, '', '');",
            )
            .unwrap();
    }
    let conn = store::open_state_db(&path).unwrap();
    let old1 = queries::work_get(&conn, "old-1").unwrap().unwrap();
    assert_eq!(old1.config, json!({"a": 1}));
    assert_eq!(old1.claimed_by, "");
    assert_eq!(old1.result, json!({}));
    assert_eq!(old1.depends_on, Vec::<String>::new());
    let old2 = queries::work_get(&conn, "old-2").unwrap().unwrap();
    assert_eq!(
        (old2.status, old2.claimed_by.as_str()),
        (WorkStatus::Claimed, "gpu-1")
    );
    let stats = queries::work_stats(&conn).unwrap();
    assert_eq!((stats.total_added, stats.pending, stats.claimed), (7, 1, 1));
    let mut db = Db {
        conn,
        now_us: T0,
        dir: Some(dir),
    };
    // The pending count backpressure reads was counted from the rows found at migration.
    assert_eq!(pending_count(&db.conn), 1);
    // The migrated queue works: the old items are claimable and completable.
    assert_eq!(db.run(claim("old-1", "n1")), TRUE);
    assert_eq!(db.run(complete("old-2", None, Some("gpu-1"))), TRUE);
    db.add("new-1");
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_added, 8);
    assert_eq!(pending_count(&db.conn), 1);
    // The orchestrator writing the shared file with its own SQL keeps the count right too:
    // triggers live in the file.
    let path = db.dir.as_ref().unwrap().path().join("work_queue.db");
    let orchestrator = Connection::open(&path).unwrap();
    orchestrator
        .execute_batch(
            "INSERT INTO work_items (work_id, work_type, status) VALUES ('orch-1', 'selfplay', 'pending');
             UPDATE work_items SET status = 'cancelled' WHERE work_id = 'new-1';
             DELETE FROM work_items WHERE work_id = 'old-1';",
        )
        .unwrap();
    assert_eq!(pending_count(&db.conn), 1);
    orchestrator
        .execute("DELETE FROM work_items WHERE work_id = 'orch-1'", [])
        .unwrap();
    assert_eq!(pending_count(&db.conn), 0);
}

/// The trigger-kept pending count, checked against a recount.
fn pending_count(conn: &Connection) -> i64 {
    let (kept, counted) = pending_counts(conn);
    assert_eq!(kept, counted, "kept pending count vs a recount");
    kept
}

#[test]
fn malformed_legacy_depends_on_does_not_block_or_break() {
    let mut db = Db::memory();
    db.add("dep");
    // Pending items whose ids a misread list could name.
    db.add("1");
    db.add("2");
    for (id, deps) in [
        ("not-json", "dep, other"),
        ("scalar", "\"dep\""),
        ("numbers", "[1, 2]"),
        ("null", "NULL"),
    ] {
        let deps_sql = if deps == "NULL" {
            "NULL".to_string()
        } else {
            format!("'{deps}'")
        };
        db.conn
            .execute_batch(&format!(
                "INSERT INTO work_items (work_id, work_type, priority, created_at, status,
                     attempts, max_attempts, timeout_seconds, depends_on)
                 VALUES ('{id}', 'selfplay', 50, 1, 'pending', 0, 3, 60, {deps_sql})"
            ))
            .unwrap();
        assert_eq!(db.item(id).depends_on, Vec::<String>::new());
        assert_eq!(db.run(claim(id, "n1")), TRUE, "{id}");
    }
}

/// Files of earlier versions carried an index on `claimed_by` that no query used; opening one
/// drops it (it cost every claim an index update).
#[test]
fn opening_drops_the_unused_claimed_by_index() {
    let (_dir, path) =
        tampered_state_file("CREATE INDEX idx_work_items_claimed_by ON work_items (claimed_by)");
    let conn = store::open_state_db(&path).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'idx_work_items_claimed_by'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

/// A state file made by this build, then changed behind its back by `sql` on a plain
/// connection (what an older or newer version would have left).
fn tampered_state_file(sql: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(store::open_state_db(&path).unwrap());
    Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    (dir, path)
}

#[test]
fn a_file_of_a_newer_schema_version_is_refused_untouched() {
    let (_dir, path) =
        tampered_state_file("UPDATE sm_meta SET value = '99' WHERE key = 'schema_version'");
    let err = store::open_state_db(&path).unwrap_err();
    assert_eq!(err.kind(), swimraft_core::ErrorKind::Storage, "{err}");
    assert!(err.message().contains("schema version 99"), "{err}");
    assert!(err.message().contains("state.db"), "{err}");
    let conn = Connection::open(&path).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM sm_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, "99", "the newer file was relabelled");
}
