//! The state machine on SQLite (`<data_dir>/raft/state.db`), openraft's [`RaftStateMachine`].
//!
//! * **Apply**: batches of committed entries are applied inline in openraft's state-machine
//!   task (a batch is short: no fsync; a hop to a blocking thread and back costs more than
//!   the batch) into one SQLite transaction that stays open over several batches and is
//!   committed in groups ([`super::group_commit`]: by age and size, before every read and
//!   snapshot). The writes of a normal entry go through
//!   [`crate::state::apply_writes_grouped`], with client sessions kept in memory until the
//!   group commits,
//!   membership entries are stored, blank entries only advance the index; the applied
//!   [`LogId`] and the [`StoredMembership`] are written in the same transaction, into
//!   `sm_meta` ([`LAST_APPLIED_LOG_ID`], [`meta::MEMBERSHIP`]), so state and bookkeeping never
//!   disagree.
//!   The file runs with `synchronous=NORMAL`: a commit lost to a power cut, like a group not
//!   yet committed when the process dies, is re-applied from the durable log (openraft
//!   re-applies from `last_applied` on start).
//! * **Reads**: [`StateStore::reader`] hands out [`StateReader`]s that run closures on
//!   separate read-only connections (WAL lets them read beside the writer), each closure in
//!   one read transaction, on a blocking thread.
//! * **Snapshots** ([`super::snapshot`]): built by `VACUUM INTO` from a read-only connection,
//!   so building runs beside apply; installed by copying the snapshot's rows into `state.db`
//!   in one transaction. Building, installing and handing out the current snapshot are
//!   serialized by one async lock.
//!
//! The state machine has one write connection, used under a mutex by `apply`, by installs and
//! by the group-commit flushes, so writes to `state.db` never interleave.
//!
//! Installing a snapshot is crash-safe because of the order of its steps:
//!
//! 1. the received data is copied into a temp file in the snapshot directory and fsynced;
//! 2. it is renamed to a snapshot file and its meta is written: from here on it is the current
//!    snapshot on disk;
//! 3. its rows replace `state.db`'s in one transaction;
//! 4. older snapshots are deleted.
//!
//! A crash before step 2 leaves the old snapshot and the old state. After step 2,
//! [`StateStore::open`] sees `last_applied` behind the current snapshot and installs it again
//! (the same happens if `synchronous=NORMAL` lost the commit of step 3).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use rusqlite::Connection;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::durability::Durability;
use super::group_commit::{self, Writer};
use super::snapshot::{install_into, SnapshotDir, SnapshotMeta, StoredSnapshot};
use super::types::{Entry, LogId, StorageError, StoredMembership, TypeConfig};
use crate::error::{Error, ErrorKind};
use crate::state::{self, CommandResult};
use crate::store::{meta, meta_get, meta_set, open_state_db, storage_error};

/// File name of the state database inside the Raft directory.
pub const STATE_DB_FILE: &str = "state.db";
/// Name of the snapshot directory inside the Raft directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// `sm_meta` key of the last applied [`LogId`] (JSON; `null` before the first entry).
pub const LAST_APPLIED_LOG_ID: &str = "raft_last_applied_log_id";

/// Idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn storage(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Storage, message)
}

/// Reads the applied log id and membership from `sm_meta` (defaults when never written).
pub(crate) fn read_applied(conn: &Connection) -> crate::Result<(Option<LogId>, StoredMembership)> {
    let applied: Option<LogId> = match meta_get(conn, LAST_APPLIED_LOG_ID)? {
        None => None,
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| storage(format!("sm_meta {LAST_APPLIED_LOG_ID} is unreadable: {e}")))?,
    };
    let membership: StoredMembership = match meta_get(conn, meta::MEMBERSHIP)? {
        None => StoredMembership::default(),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| storage(format!("sm_meta {} is unreadable: {e}", meta::MEMBERSHIP)))?,
    };
    Ok((applied, membership))
}

/// Writes the applied log id and the membership into `sm_meta`. Pass the open transaction.
/// (The state machine's own `last_applied_index` counts writes, not log entries; see
/// [`state::apply_next`].)
pub(crate) fn write_applied(
    conn: &Connection,
    applied: Option<LogId>,
    membership: &StoredMembership,
) -> crate::Result<()> {
    let applied_json = serde_json::to_string(&applied)
        .map_err(|e| storage(format!("cannot encode the applied log id: {e}")))?;
    let membership_json = serde_json::to_string(membership)
        .map_err(|e| storage(format!("cannot encode the membership: {e}")))?;
    meta_set(conn, LAST_APPLIED_LOG_ID, &applied_json)?;
    meta_set(conn, meta::MEMBERSHIP, &membership_json)?;
    Ok(())
}

/// Up to MAX_IDLE_READERS of these stay open; the writer keeps SQLite's default 2 MiB.
fn open_reader(path: &Path) -> crate::Result<Connection> {
    crate::store::open_read_only(path, READER_CACHE_KIB).map_err(storage_error)
}

/// SQLite page cache of each read connection, in KiB.
const READER_CACHE_KIB: i64 = 512;

/// Why an apply batch failed (kept small; converted to openraft's error at the boundary).
enum ApplyError {
    /// Applying this entry failed.
    Entry(LogId, Error),
    /// Opening or committing the transaction, or the bookkeeping, failed.
    Write(Error),
}

impl ApplyError {
    fn error(&self) -> &Error {
        match self {
            ApplyError::Entry(_, e) | ApplyError::Write(e) => e,
        }
    }
}

impl From<ApplyError> for StorageError {
    fn from(e: ApplyError) -> StorageError {
        match e {
            ApplyError::Entry(log_id, e) => StorageIOError::apply(log_id, AnyError::new(&e)).into(),
            ApplyError::Write(e) => StorageIOError::write_state_machine(AnyError::new(&e)).into(),
        }
    }
}

/// What the store, its readers and its snapshot builders share.
struct Shared {
    db_path: PathBuf,
    /// The only write connection (apply, installs), committing in groups ([`Writer`]).
    writer: Arc<Mutex<Writer>>,
    /// Cache of `(last applied log id, membership)`, updated after each apply batch (ahead of
    /// the file while a group is open).
    applied: Mutex<(Option<LogId>, StoredMembership)>,
    readers: Mutex<Vec<Connection>>,
    snapshots: SnapshotDir,
    /// Serializes building, installing and opening the current snapshot.
    snapshot_lock: tokio::sync::Mutex<()>,
    current: Mutex<Option<StoredSnapshot>>,
}

impl Shared {
    fn apply_entries(&self, entries: Vec<Entry>) -> Result<Vec<Vec<CommandResult>>, ApplyError> {
        let mut writer = lock(&self.writer);
        let (mut applied, mut membership) = lock(&self.applied).clone();
        let (conn, sessions) = writer.begin().map_err(ApplyError::Write)?;
        let mut results = Vec::with_capacity(entries.len());
        let mut writes = 0;
        let outcome = entries.iter().try_for_each(|entry| {
            let log_id = entry.log_id;
            let result = match &entry.payload {
                EntryPayload::Normal(proposal) => {
                    state::apply_writes_grouped(conn, sessions, &proposal.writes)
                        .map_err(|e| ApplyError::Entry(log_id, e))?
                }
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(log_id), m.clone());
                    Vec::new()
                }
                EntryPayload::Blank => Vec::new(),
            };
            writes += result.len();
            applied = Some(log_id);
            results.push(result);
            Ok(())
        });
        let outcome = outcome
            .and_then(|()| write_applied(conn, applied, &membership).map_err(ApplyError::Write));
        if let Err(e) = outcome {
            writer.abort(e.error());
            return Err(e);
        }
        // The cache runs ahead of the file while the transaction is open; every reader of the
        // file flushes first, and a crash re-applies from the log (see `group_commit`).
        *lock(&self.applied) = (applied, membership);
        writer.applied(writes).map_err(ApplyError::Write)?;
        Ok(results)
    }

    fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> crate::Result<T>,
    ) -> crate::Result<T> {
        // Every applied entry is visible to the read (read-your-writes, linearizable reads).
        lock(&self.writer).flush()?;
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.db_path)?,
        };
        let (result, reusable) = {
            let tx = conn.unchecked_transaction().map_err(storage_error)?;
            let result = f(&tx);
            (result, tx.rollback().is_ok())
        };
        if reusable {
            let mut idle = lock(&self.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        result
    }

    /// Installs the snapshot whose data was copied to `data_tmp` (see the module docs).
    fn install_blocking(&self, data_tmp: &Path, meta: &SnapshotMeta) -> crate::Result<()> {
        let stored = match self.snapshots.persist(data_tmp, meta) {
            Ok(stored) => stored,
            Err(e) => {
                let _ = std::fs::remove_file(data_tmp);
                return Err(e);
            }
        };
        *lock(&self.current) = Some(stored.clone());
        {
            let mut writer = lock(&self.writer);
            install_into(writer.committed()?, &stored.path, meta)?;
            *lock(&self.applied) = (meta.last_log_id, meta.last_membership.clone());
        }
        self.snapshots.remove_all_except(&stored);
        Ok(())
    }

    fn build_blocking(&self) -> crate::Result<StoredSnapshot> {
        // The snapshot holds everything applied so far.
        lock(&self.writer).flush()?;
        let stored = self.snapshots.capture(&self.db_path)?;
        *lock(&self.current) = Some(stored.clone());
        self.snapshots.remove_all_except(&stored);
        Ok(stored)
    }
}

/// The replicated state machine of one node over `<raft dir>/state.db`, with its snapshots in
/// `<raft dir>/snapshots/`. See the module docs.
pub struct StateStore {
    shared: Arc<Shared>,
    /// When set, entries are applied only once the log holds them on disk (rule 1 of
    /// [`super::durability`]).
    durability: Option<Durability>,
}

/// Runs read queries on the state database beside the Raft node's writes. Cloneable. A read
/// first commits the open group (it takes the writer's lock for that, so it waits for an apply
/// in progress: the read must see every applied entry), then runs on its own pooled read-only
/// connection, so the query itself runs beside later applies.
#[derive(Clone)]
pub struct StateReader {
    shared: Arc<Shared>,
}

/// Builds a snapshot of the state machine (openraft's [`RaftSnapshotBuilder`]).
pub struct StateSnapshotBuilder {
    shared: Arc<Shared>,
}

impl StateStore {
    /// Opens (creating `dir` and the database if needed) the state machine in `dir`, the
    /// node's Raft directory (`<data_dir>/raft`). If the newest snapshot is ahead of the
    /// applied log id (a crash during or after an install), the snapshot is installed first.
    pub async fn open(dir: &Path) -> crate::Result<StateStore> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || StateStore::open_blocking(&dir))
            .await
            .map_err(|e| storage(format!("opening state.db: {e}")))?
    }

    fn open_blocking(dir: &Path) -> crate::Result<StateStore> {
        std::fs::create_dir_all(dir)?;
        let db_path = dir.join(STATE_DB_FILE);
        let mut conn = open_state_db(&db_path)?;
        let snapshots = SnapshotDir::open(&dir.join(SNAPSHOT_DIR))?;
        let current = snapshots.latest()?;
        let (mut applied, mut membership) = read_applied(&conn)?;
        snapshots.remove_stale(current.as_ref().map(|s| s.stem()));
        if let Some(snapshot) = &current {
            if snapshot.meta.last_log_id > applied {
                tracing::info!(
                    snapshot = %snapshot.meta,
                    "state.db is behind the current snapshot; installing the snapshot"
                );
                install_into(&mut conn, &snapshot.path, &snapshot.meta)?;
                applied = snapshot.meta.last_log_id;
                membership = snapshot.meta.last_membership.clone();
            }
        }
        let writer = Arc::new(Mutex::new(Writer::new(conn)));
        group_commit::spawn_idle_flusher(&writer);
        Ok(StateStore {
            shared: Arc::new(Shared {
                db_path,
                writer,
                applied: Mutex::new((applied, membership)),
                readers: Mutex::new(Vec::new()),
                snapshots,
                snapshot_lock: tokio::sync::Mutex::new(()),
                current: Mutex::new(current),
            }),
            durability: None,
        })
    }

    /// Applies an entry only once `durability` says the log holds it on disk, as a log store
    /// that acknowledges a leader's appends early requires (see [`super::durability`]).
    pub fn apply_after(mut self, durability: Durability) -> StateStore {
        self.durability = Some(durability);
        self
    }

    /// Path of `state.db`.
    pub fn path(&self) -> &Path {
        &self.shared.db_path
    }

    /// A reader for queries (stale reads, or linearizable ones after a read-index wait).
    pub fn reader(&self) -> StateReader {
        StateReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The last applied log id.
    pub fn applied_log_id(&self) -> Option<LogId> {
        lock(&self.shared.applied).0
    }

    /// Whether applied entries wait in the open group-commit transaction, not yet in the file
    /// ([`super::group_commit`]).
    pub fn has_uncommitted(&self) -> bool {
        lock(&self.shared.writer).has_open_transaction()
    }

    /// Metadata of the current (newest) snapshot.
    pub fn current_snapshot_meta(&self) -> Option<SnapshotMeta> {
        lock(&self.shared.current).as_ref().map(|s| s.meta.clone())
    }
}

impl StateReader {
    /// Runs `f` on a read-only connection inside one read transaction (a consistent view for
    /// all of its queries) on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> crate::Result<T>
    where
        F: FnOnce(&Connection) -> crate::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.read_blocking(f))
            .await
            .map_err(|e| storage(format!("state read task failed: {e}")))?
    }

    /// [`Self::read`] on the calling thread, for callers that are already on a blocking
    /// thread. Never call it from a tokio worker.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> crate::Result<T>,
    ) -> crate::Result<T> {
        self.shared.read_blocking(f)
    }

    /// The last applied log id (updated after each apply batch).
    pub fn applied_log_id(&self) -> Option<LogId> {
        lock(&self.shared.applied).0
    }
}

fn join_error(e: tokio::task::JoinError) -> AnyError {
    AnyError::new(&e)
}

impl RaftSnapshotBuilder<TypeConfig> for StateSnapshotBuilder {
    /// Copies `state.db` into a new snapshot file in one read transaction (`VACUUM INTO`),
    /// makes it the current snapshot and deletes the older ones.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let _guard = self.shared.snapshot_lock.lock().await;
        let shared = Arc::clone(&self.shared);
        let stored = tokio::task::spawn_blocking(move || shared.build_blocking())
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, join_error(e))))?
            .map_err(|e| {
                StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&e)))
            })?;
        let file = tokio::fs::File::open(&stored.path).await.map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(stored.meta.signature()),
                AnyError::new(&e),
            ))
        })?;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(file),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateStore {
    type SnapshotBuilder = StateSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok(lock(&self.shared.applied).clone())
    }

    /// One transaction for the whole batch, run inline; one result per entry.
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<CommandResult>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        if let Some(durability) = &self.durability {
            durability
                .wait_for(last.index)
                .await
                .map_err(|e| StorageError::from(StorageIOError::apply(last, AnyError::error(e))))?;
        }
        // Inline, not on a blocking thread: a batch's transaction is short (no fsync with
        // `synchronous=NORMAL`), and two thread hand-offs per batch cost more CPU than the apply.
        self.shared
            .apply_entries(entries)
            .map_err(StorageError::from)
    }

    async fn get_snapshot_builder(&mut self) -> StateSnapshotBuilder {
        StateSnapshotBuilder {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A new empty file to receive a snapshot into. It is unlinked at once where the platform
    /// allows (the handle stays usable), so an abandoned transfer leaves nothing behind;
    /// otherwise the next open deletes it.
    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.shared.snapshots.receive_path();
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| {
                StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&e)))
            })?;
        if let Err(e) = tokio::fs::remove_file(&path).await {
            tracing::debug!(path = %path.display(), error = %e, "cannot unlink the snapshot receive file; it is removed on the next open");
        }
        Ok(Box::new(file))
    }

    /// Copies the received data into the snapshot directory, makes it the current snapshot,
    /// then replaces the state with it in one transaction (see the module docs for the crash
    /// order).
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let signature = meta.signature();
        let write_error = |e: AnyError| {
            StorageError::from(StorageIOError::write_snapshot(Some(signature.clone()), e))
        };
        let _guard = self.shared.snapshot_lock.lock().await;
        let tmp = self.shared.snapshots.temp_path("install");
        let copied: std::io::Result<()> = async {
            let mut source = *snapshot;
            source.flush().await?;
            source.seek(SeekFrom::Start(0)).await?;
            let mut target = tokio::fs::File::create(&tmp).await?;
            tokio::io::copy(&mut source, &mut target).await?;
            target.flush().await?;
            target.sync_all().await?;
            Ok(())
        }
        .await;
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(write_error(AnyError::new(&e)));
        }
        let shared = Arc::clone(&self.shared);
        let owned_meta = meta.clone();
        tokio::task::spawn_blocking(move || shared.install_blocking(&tmp, &owned_meta))
            .await
            .map_err(|e| write_error(join_error(e)))?
            .map_err(|e| write_error(AnyError::new(&e)))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let _guard = self.shared.snapshot_lock.lock().await;
        let current = lock(&self.shared.current).clone();
        let Some(stored) = current else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(&stored.path).await.map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(stored.meta.signature()),
                AnyError::new(&e),
            ))
        })?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(file),
        }))
    }
}
