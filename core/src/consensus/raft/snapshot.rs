//! Snapshot files of the state machine (`<data_dir>/raft/snapshots/`).
//!
//! A snapshot is a complete SQLite database: a copy of `state.db` made by `VACUUM INTO`, which
//! reads the source inside ONE read transaction, so the copy is a consistent point in time that
//! includes every table (work items, jobs, locks, kv, client sessions, stats and `sm_meta` with
//! the clock, the applied log id and the membership). The snapshot's [`SnapshotMeta`] is read
//! back from the copy itself, so meta and data can never disagree. Snapshots are streamed from
//! their file (`SnapshotData = tokio::fs::File`) and never held in memory.
//!
//! On disk, snapshot `<stem>` is two files:
//!
//! * `<stem>.db`: the database, fsynced before it gets its final name;
//! * `<stem>.json`: its [`SnapshotMeta`], written last (temp file, fsync, rename, directory
//!   fsync). A snapshot exists exactly when its `.json` exists.
//!
//! `<stem>` is `snap-<last index, 20 digits>-<time and counter>`, so the greatest stem is the
//! newest snapshot. Temporary files end in `.tmp` / `.part` and are deleted on open. Only the
//! newest snapshot is kept.
//!
//! [`install_into`] replaces the contents of `state.db` with a snapshot inside ONE SQLite
//! transaction (attach, delete every table's rows, copy the snapshot's rows, commit): a crash
//! leaves either the old state or the new one, never a mixture, and the open connections of
//! readers stay valid.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::node_id::NodeId;
use super::state_store::{read_applied, write_applied};
use super::types::{LogId, RaftPeer};
use crate::error::{Error, ErrorKind};
use crate::store::storage_error;

/// openraft's snapshot metadata for our types.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, RaftPeer>;

const STEM_PREFIX: &str = "snap-";

/// One durable snapshot: its metadata and the path of its database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// What the snapshot contains (last log id, membership, id).
    pub meta: SnapshotMeta,
    /// The snapshot's SQLite database.
    pub path: PathBuf,
    stem: String,
}

impl StoredSnapshot {
    /// The file name stem shared by the `.db` and `.json` files.
    pub fn stem(&self) -> &str {
        &self.stem
    }
}

/// The snapshot directory.
#[derive(Debug)]
pub struct SnapshotDir {
    dir: PathBuf,
}

fn storage(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Storage, message)
}

/// A suffix that is unique within this process and increases with time.
fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:032x}-{n:016x}")
}

fn path_text(path: &Path) -> crate::Result<&str> {
    path.to_str()
        .ok_or_else(|| storage(format!("path {} is not UTF-8", path.display())))
}

/// fsyncs a directory so that renames and creations in it are durable.
fn sync_dir(dir: &Path) -> crate::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// A new snapshot id: `<term>-<leader>-<index>-<unique>` (or `none-<unique>` when nothing
/// was applied).
fn new_snapshot_id(last: Option<LogId>) -> String {
    match last {
        Some(id) => format!(
            "{}-{}-{}-{}",
            id.leader_id.term,
            id.leader_id.node_id,
            id.index,
            unique()
        ),
        None => format!("none-{}", unique()),
    }
}

impl SnapshotDir {
    /// Opens (creating) the snapshot directory and deletes temporary files left by a crash.
    pub fn open(dir: &Path) -> crate::Result<SnapshotDir> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") || name.ends_with(".part") {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale snapshot temp file");
                }
            }
        }
        Ok(SnapshotDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A fresh temporary path in the directory (deleted on the next open if left behind).
    pub fn temp_path(&self, purpose: &str) -> PathBuf {
        self.dir.join(format!("{purpose}-{}.tmp", unique()))
    }

    /// A fresh path for a snapshot being received (deleted on the next open if left behind).
    pub fn receive_path(&self) -> PathBuf {
        self.dir.join(format!("recv-{}.part", unique()))
    }

    /// The newest complete snapshot, if any.
    pub fn latest(&self) -> crate::Result<Option<StoredSnapshot>> {
        let mut stems = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(".json") {
                if stem.starts_with(STEM_PREFIX) {
                    stems.push(stem.to_string());
                }
            }
        }
        let Some(stem) = stems.into_iter().max() else {
            return Ok(None);
        };
        let meta_path = self.dir.join(format!("{stem}.json"));
        let text = std::fs::read(&meta_path)?;
        let meta: SnapshotMeta = serde_json::from_slice(&text).map_err(|e| {
            storage(format!(
                "snapshot meta {} is unreadable: {e}",
                meta_path.display()
            ))
        })?;
        let path = self.dir.join(format!("{stem}.db"));
        if !path.exists() {
            return Err(storage(format!(
                "snapshot {} has meta but no database file",
                path.display()
            )));
        }
        Ok(Some(StoredSnapshot { meta, path, stem }))
    }

    /// Copies the database at `source` into a new snapshot (`VACUUM INTO`, one read
    /// transaction) and makes it durable. The meta is read from the copy.
    pub fn capture(&self, source: &Path) -> crate::Result<StoredSnapshot> {
        let tmp = self.temp_path("build");
        let result = self.capture_into(source, &tmp);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn capture_into(&self, source: &Path, tmp: &Path) -> crate::Result<StoredSnapshot> {
        {
            let conn = Connection::open_with_flags(
                source,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(storage_error)?;
            conn.busy_timeout(crate::store::schema::BUSY_TIMEOUT)
                .map_err(storage_error)?;
            conn.execute("VACUUM INTO ?1", [path_text(tmp)?])
                .map_err(storage_error)?;
        }
        let (applied, membership) = {
            let conn = Connection::open(tmp).map_err(storage_error)?;
            // A self-contained single file (no -wal beside it), whatever the source's mode.
            let _mode: String = conn
                .query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))
                .map_err(storage_error)?;
            read_applied(&conn)?
        };
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id: new_snapshot_id(applied),
        };
        self.persist(tmp, &meta)
    }

    /// Makes the database file `data_tmp` (in this directory) the durable snapshot `meta`:
    /// fsync the data, rename it, write the meta (temp, fsync, rename), fsync the directory.
    pub fn persist(&self, data_tmp: &Path, meta: &SnapshotMeta) -> crate::Result<StoredSnapshot> {
        std::fs::File::open(data_tmp)?.sync_all()?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        let stem = format!("{STEM_PREFIX}{index:020}-{}", unique());
        let path = self.dir.join(format!("{stem}.db"));
        std::fs::rename(data_tmp, &path)?;
        sync_dir(&self.dir)?;

        let json = serde_json::to_vec_pretty(meta)
            .map_err(|e| storage(format!("cannot encode snapshot meta: {e}")))?;
        let meta_tmp = self.dir.join(format!("{stem}.json.tmp"));
        {
            let mut file = std::fs::File::create(&meta_tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
        }
        std::fs::rename(&meta_tmp, self.dir.join(format!("{stem}.json")))?;
        sync_dir(&self.dir)?;
        Ok(StoredSnapshot {
            meta: meta.clone(),
            path,
            stem,
        })
    }

    /// Deletes every snapshot but `keep` (meta first, so a crash never leaves a meta without
    /// its data). Failures are logged: a leftover file costs disk space, not correctness.
    pub fn remove_all_except(&self, keep: &StoredSnapshot) {
        self.remove_stale(Some(&keep.stem));
    }

    /// Deletes every snapshot file whose stem is not `keep` (all of them for `None`).
    pub fn remove_stale(&self, keep: Option<&str>) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the snapshot directory");
                return;
            }
        };
        let mut stale: BTreeSet<String> = BTreeSet::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".json")
                .or_else(|| name.strip_suffix(".db"));
            if let Some(stem) = stem {
                if stem.starts_with(STEM_PREFIX) && Some(stem) != keep {
                    stale.insert(stem.to_string());
                }
            }
        }
        for stem in stale {
            for ext in ["json", "db"] {
                let path = self.dir.join(format!("{stem}.{ext}"));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove an old snapshot file")
                    }
                }
            }
        }
    }
}

/// Quotes an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn table_names(conn: &Connection, schema: &str) -> rusqlite::Result<BTreeSet<String>> {
    let sql = format!(
        "SELECT name FROM {}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        quote(schema)
    );
    let mut stmt = conn.prepare(&sql)?;
    let names = stmt.query_map([], |row| row.get::<_, String>(0))?;
    names.collect()
}

fn column_names(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1, ?2) ORDER BY cid")?;
    let names = stmt.query_map([table, schema], |row| row.get::<_, String>(0))?;
    names.collect()
}

/// Replaces the whole contents of the database on `conn` (the state machine's writer
/// connection) with the snapshot database at `snapshot`, in one transaction, and records
/// `meta`'s last log id and membership as applied. Tables the snapshot lacks are emptied;
/// columns are copied by name, so a snapshot from an older schema fills the defaults.
pub fn install_into(
    conn: &mut Connection,
    snapshot: &Path,
    meta: &SnapshotMeta,
) -> crate::Result<()> {
    conn.execute("ATTACH DATABASE ?1 AS snap", [path_text(snapshot)?])
        .map_err(storage_error)?;
    let result = copy_attached(conn, meta);
    let detached = conn
        .execute("DETACH DATABASE snap", [])
        .map_err(storage_error);
    result?;
    detached.map(|_| ())
}

fn copy_attached(conn: &mut Connection, meta: &SnapshotMeta) -> crate::Result<()> {
    let check: String = conn
        .query_row("PRAGMA snap.quick_check(1)", [], |row| row.get(0))
        .map_err(storage_error)?;
    if check != "ok" {
        return Err(storage(format!("snapshot database is damaged: {check}")));
    }
    let main_tables = table_names(conn, "main").map_err(storage_error)?;
    let snap_tables = table_names(conn, "snap").map_err(storage_error)?;
    if !snap_tables.contains("sm_meta") {
        return Err(storage(
            "snapshot is not a swimraft state database (no sm_meta)",
        ));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(storage_error)?;
    for table in &main_tables {
        tx.execute(&format!("DELETE FROM main.{}", quote(table)), [])
            .map_err(storage_error)?;
        if !snap_tables.contains(table) {
            continue;
        }
        let snap_columns: BTreeSet<String> = column_names(&tx, "snap", table)
            .map_err(storage_error)?
            .into_iter()
            .collect();
        let columns: Vec<String> = column_names(&tx, "main", table)
            .map_err(storage_error)?
            .into_iter()
            .filter(|c| snap_columns.contains(c))
            .map(|c| quote(&c))
            .collect();
        if columns.is_empty() {
            continue;
        }
        let list = columns.join(", ");
        tx.execute(
            &format!(
                "INSERT INTO main.{t} ({list}) SELECT {list} FROM snap.{t}",
                t = quote(table)
            ),
            [],
        )
        .map_err(storage_error)?;
    }
    // Derived data: a snapshot from a build without the table (or with a stale copy) must not
    // leave a wrong count behind.
    crate::store::schema::rebuild_pending_count(&tx).map_err(storage_error)?;
    write_applied(&tx, meta.last_log_id, &meta.last_membership)?;
    tx.commit().map_err(storage_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_counts(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT (SELECT n FROM work_pending_count),
                    (SELECT COUNT(*) FROM work_items WHERE status = 'pending')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    /// A snapshot made by a build that had no pending count (the derived table is missing)
    /// still leaves a right count behind after it is installed.
    #[test]
    fn installing_a_snapshot_without_the_pending_count_recounts_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = crate::store::open_state_db(&dir.path().join("source.db")).unwrap();
        source
            .execute_batch(
                "INSERT INTO work_items (work_id, status) VALUES ('a', 'pending'), ('b', 'pending'),
                     ('c', 'completed');",
            )
            .unwrap();
        let snap = dir.path().join("snap.db");
        source
            .execute("VACUUM INTO ?1", [snap.to_str().unwrap()])
            .unwrap();
        Connection::open(&snap)
            .unwrap()
            .execute_batch("DROP TABLE work_pending_count;")
            .unwrap();

        let mut target = crate::store::open_state_db(&dir.path().join("target.db")).unwrap();
        target
            .execute(
                "INSERT INTO work_items (work_id, status) VALUES ('x', 'pending')",
                [],
            )
            .unwrap();
        let meta = SnapshotMeta {
            last_log_id: None,
            last_membership: Default::default(),
            snapshot_id: "test".into(),
        };
        install_into(&mut target, &snap, &meta).unwrap();
        assert_eq!(pending_counts(&target), (2, 2));
        // And the triggers go on counting after the install.
        target
            .execute(
                "UPDATE work_items SET status = 'claimed' WHERE work_id = 'a'",
                [],
            )
            .unwrap();
        assert_eq!(pending_counts(&target), (1, 1));
    }
}
