//! Raft storage on SQLite: openraft's conformance suite, plus crash/reopen and snapshot tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{blank_ent, log_id, membership_ent, StoreBuilder, Suite};
use openraft::{AnyError, EntryPayload, RaftLogReader, RaftSnapshotBuilder, StorageIOError};
use serde_json::json;
use swimraft_core::consensus::raft::durability::Durability;
use swimraft_core::consensus::raft::log_store::LogStore;
use swimraft_core::consensus::raft::node_id::NodeId;
use swimraft_core::consensus::raft::state_store::{StateStore, SNAPSHOT_DIR, STATE_DB_FILE};
use swimraft_core::consensus::raft::types::{
    Entry, LogId, Proposal, StorageError, TypeConfig, Vote,
};
use swimraft_core::state::command::{Command, CommandResult, Envelope, NewWorkItem};
use swimraft_core::state::queries::state_digest;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

/// A fresh temp dir per suite case; the guard deletes it when the case ends.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateStore), StorageError> {
        let to_storage =
            |e: swimraft_core::Error| StorageError::from(StorageIOError::write(AnyError::new(&e)));
        let dir = tempfile::tempdir()
            .map_err(|e| StorageError::from(StorageIOError::write(AnyError::new(&e))))?;
        let raft = dir.path().join("raft");
        let log = LogStore::open(&raft).await.map_err(to_storage)?;
        let sm = StateStore::open(&raft).await.map_err(to_storage)?;
        Ok((dir, log, sm))
    }
}

/// openraft's storage conformance suite, verbatim, on the SQLite stores.
#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

fn node(n: u64) -> NodeId {
    NodeId::from(n)
}

fn raft_dir(dir: &TempDir) -> PathBuf {
    dir.path().join("raft")
}

fn normal(term: u64, index: u64, command: Command) -> Entry {
    Entry {
        log_id: log_id(term, node(1), index),
        payload: EntryPayload::Normal(Proposal {
            writes: vec![Envelope::with_session(
                "client-1",
                index,
                1_000_000 + index as i64,
                command,
            )],
        }),
    }
}

/// A log touching every table: membership, work items, a lock, kv, sessions.
fn workload() -> Vec<Entry> {
    let voters = BTreeSet::from([node(1), node(2), node(3)]);
    vec![
        membership_ent::<TypeConfig>(1, node(1), 1, vec![voters]),
        blank_ent::<TypeConfig>(1, node(1), 2),
        normal(
            1,
            3,
            Command::WorkAdd {
                item: NewWorkItem::new("w1", "selfplay"),
                force: false,
            },
        ),
        normal(
            1,
            4,
            Command::WorkAdd {
                item: NewWorkItem::new("w2", "train"),
                force: false,
            },
        ),
        normal(
            1,
            5,
            Command::WorkClaim {
                work_id: "w1".into(),
                node_id: "gpu-1".into(),
            },
        ),
        normal(
            1,
            6,
            Command::LockAcquire {
                name: "leader-tasks".into(),
                holder: "gpu-1".into(),
                ttl_us: 60_000_000,
            },
        ),
        normal(
            2,
            7,
            Command::KvSet {
                key: "config/a".into(),
                value: json!({"x": 1}),
            },
        ),
    ]
}

async fn digest(sm: &StateStore) -> String {
    sm.reader().read(state_digest).await.unwrap()
}

/// Blank entries of term 1 (leader `node(1)`) at the indexes of `range`.
fn blanks(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range
        .map(|i| blank_ent::<TypeConfig>(1, node(1), i))
        .collect()
}

/// The committed id a store opened on `raft` reads back.
async fn committed_after_reopen(raft: &Path) -> Option<LogId> {
    LogStore::open(raft)
        .await
        .unwrap()
        .read_committed()
        .await
        .unwrap()
}

/// A committed id costs no transaction of its own, and is never stored past the log end that
/// the storing transaction makes durable: a restart must not find a committed id beyond its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_ids_ride_along_and_never_pass_the_stored_log() {
    let dir = tempfile::tempdir().unwrap();
    let raft = raft_dir(&dir);
    // Records `committed`, then makes one write transaction (a vote) that may store it.
    async fn record_then_write(log: &mut LogStore, committed: u64) {
        let flushes = log.flush_count();
        log.save_committed(Some(log_id(1, node(1), committed)))
            .await
            .unwrap();
        assert_eq!(
            log.flush_count(),
            flushes,
            "recording a committed id writes nothing"
        );
        log.save_vote(&Vote::new(1, node(1))).await.unwrap();
    }
    let mut log = LogStore::open(&raft).await.unwrap();
    log.blocking_append(blanks(1..=5)).await.unwrap();
    record_then_write(&mut log, 3).await;
    // Recorded beyond the stored log (entries 6..9 not appended yet): kept back.
    record_then_write(&mut log, 9).await;
    drop(log);
    assert_eq!(
        committed_after_reopen(&raft).await,
        Some(log_id(1, node(1), 3))
    );

    let mut log = LogStore::open(&raft).await.unwrap();
    log.blocking_append(blanks(6..=10)).await.unwrap();
    record_then_write(&mut log, 9).await;
    drop(log);
    assert_eq!(
        committed_after_reopen(&raft).await,
        Some(log_id(1, node(1), 9))
    );
}

/// A committed id recorded after the last write is stored by the writer thread's last act
/// when the store is dropped (a clean shutdown restarts with it, not with an older one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_id_recorded_last_is_stored_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let raft = raft_dir(&dir);
    let mut log = LogStore::open(&raft).await.unwrap();
    log.blocking_append(blanks(1..=5)).await.unwrap();
    // Recorded only: no write transaction follows before the drop.
    log.save_committed(Some(log_id(1, node(1), 4)))
        .await
        .unwrap();
    drop(log);
    // The writer thread is not joined on drop: reopen until its last transaction shows
    // (bounded: 5 s).
    let mut found = None;
    for _ in 0..500 {
        found = committed_after_reopen(&raft).await;
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(found, Some(log_id(1, node(1), 4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_survives_reopen_without_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let raft = raft_dir(&dir);
    let entries: Vec<Entry> = (1..=20)
        .map(|i| blank_ent::<TypeConfig>(1 + i / 10, node(1), i))
        .collect();
    let vote = Vote::new(3, node(2));
    {
        let mut log = LogStore::open(&raft).await.unwrap();
        log.save_vote(&vote).await.unwrap();
        log.blocking_append(entries.clone()).await.unwrap();
        log.save_committed(Some(log_id(2, node(1), 15)))
            .await
            .unwrap();
        // The committed id is only recorded: the next write transaction stores it.
        log.save_vote(&vote).await.unwrap();
        // Dropped without any shutdown.
    }
    let mut log = LogStore::open(&raft).await.unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    assert_eq!(
        log.read_committed().await.unwrap(),
        Some(log_id(2, node(1), 15))
    );
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(3, node(1), 20)));
    assert_eq!(state.last_purged_log_id, None);
    let read = log.try_get_log_entries(1..=20).await.unwrap();
    assert_eq!(
        read.iter().map(|e| e.log_id).collect::<Vec<_>>(),
        entries.iter().map(|e| e.log_id).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_purge_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let raft = raft_dir(&dir);
    {
        let mut log = LogStore::open(&raft).await.unwrap();
        log.blocking_append(blanks(1..=10)).await.unwrap();
        log.truncate(log_id(1, node(1), 9)).await.unwrap();
        log.purge(log_id(1, node(1), 4)).await.unwrap();
    }
    let mut log = LogStore::open(&raft).await.unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, node(1), 4)));
    assert_eq!(state.last_log_id, Some(log_id(1, node(1), 8)));
    let indexes: Vec<u64> = log
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, vec![5, 6, 7, 8]);

    // Purging everything keeps the purged id as the last log id across a reopen.
    log.purge(log_id(1, node(1), 8)).await.unwrap();
    drop(log);
    let mut log = LogStore::open(&raft).await.unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, node(1), 8)));
    assert_eq!(state.last_log_id, Some(log_id(1, node(1), 8)));
    assert!(log.try_get_log_entries(..).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let raft = raft_dir(&dir);
    let (applied, digest_before) = {
        let mut sm = StateStore::open(&raft).await.unwrap();
        let results = sm.apply(workload()).await.unwrap();
        assert_eq!(results.len(), 7, "one result per entry");
        assert_eq!(results[0], vec![], "membership");
        assert_eq!(results[1], vec![], "blank");
        assert_eq!(results[2], vec![CommandResult::WorkId("w1".into())]);
        // The fourth write (entries 3..=6 carry one write each) is the token.
        assert_eq!(results[5], vec![CommandResult::Token(Some(4))]);
        (sm.applied_state().await.unwrap(), digest(&sm).await)
    };
    assert_eq!(applied.0, Some(log_id(2, node(1), 7)));
    assert_eq!(applied.1.log_id(), &Some(log_id(1, node(1), 1)));

    let mut sm = StateStore::open(&raft).await.unwrap();
    assert_eq!(sm.applied_state().await.unwrap(), applied);
    assert_eq!(digest(&sm).await, digest_before);
    let last = sm
        .reader()
        .read(swimraft_core::state::queries::last_applied_index)
        .await
        .unwrap();
    assert_eq!(last, Some(5), "five writes applied (entries 3..=7)");

    // Applying continues where it stopped.
    let more = vec![
        blank_ent::<TypeConfig>(3, node(1), 8),
        normal(
            3,
            9,
            Command::KvSet {
                key: "config/b".into(),
                value: json!(2),
            },
        ),
    ];
    assert_eq!(sm.apply(more).await.unwrap().len(), 2);
    assert_eq!(sm.applied_log_id(), Some(log_id(3, node(1), 9)));
}

/// One entry carrying several writes (the leader's batches): one result per write, in order,
/// each write numbered on its own, so lock tokens strictly increase inside one entry too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_of_many_writes_applies_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateStore::open(&raft_dir(&dir)).await.unwrap();
    // Four writes in flight at once: nothing answered yet, so the watermark stays at 1.
    let acquire = |name: &str, seq: u64| Envelope {
        first_unacked: 1,
        ..Envelope::with_session(
            "client-1",
            seq,
            1_000_000,
            Command::LockAcquire {
                name: name.into(),
                holder: "gpu-1".into(),
                ttl_us: 60_000_000,
            },
        )
    };
    let batch = Entry {
        log_id: log_id(1, node(1), 2),
        payload: EntryPayload::Normal(Proposal {
            writes: vec![
                acquire("a", 1),
                acquire("b", 2),
                // A repeat of seq 1 is answered from the session, not applied again.
                acquire("a", 1),
                acquire("c", 3),
            ],
        }),
    };
    let results = sm
        .apply(vec![blank_ent::<TypeConfig>(1, node(1), 1), batch])
        .await
        .unwrap();
    assert_eq!(results.len(), 2, "one result list per entry");
    assert_eq!(
        results[1],
        vec![
            CommandResult::Token(Some(1)),
            CommandResult::Token(Some(2)),
            CommandResult::Token(Some(1)),
            CommandResult::Token(Some(4)),
        ]
    );
    assert_eq!(sm.applied_log_id(), Some(log_id(1, node(1), 2)));
}

/// With a leader's early-acknowledged log (see `durability.rs`), an entry is applied only once
/// the log holds it on disk; a failed log write fails the apply (openraft then stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_waits_until_the_log_holds_the_entries_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let durability = Durability::new(Some(log_id(1, node(1), 1)));
    let mut sm = StateStore::open(&raft_dir(&dir))
        .await
        .unwrap()
        .apply_after(durability.clone());
    let reader = sm.reader();
    let entries = workload();
    let last = entries.last().unwrap().log_id;
    let apply = tokio::spawn(async move {
        let results = sm.apply(entries).await;
        (sm, results)
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!apply.is_finished(), "entries 2..=7 are not durable yet");
    let applied = reader
        .read(swimraft_core::state::queries::last_applied_index)
        .await
        .unwrap();
    assert_eq!(applied, None, "nothing applied while waiting");
    durability.set_last(Some(last));
    let (mut sm, results) = tokio::time::timeout(std::time::Duration::from_secs(10), apply)
        .await
        .expect("applied once durable")
        .unwrap();
    assert_eq!(results.unwrap().len(), 7);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(last));

    // A write that can never become durable fails the apply instead of waiting forever.
    durability.fail("disk full");
    let err = sm
        .apply(vec![blank_ent::<TypeConfig>(3, node(1), 8)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(sm.applied_state().await.unwrap().0, Some(last));
}

fn snapshot_files(raft: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(raft.join(SNAPSHOT_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_round_trip_into_a_fresh_store() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut leader = StateStore::open(&raft_dir(&leader_dir)).await.unwrap();
    leader.apply(workload()).await.unwrap();

    let first = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(first.meta.last_log_id, Some(log_id(2, node(1), 7)));
    leader
        .apply(vec![blank_ent::<TypeConfig>(2, node(1), 8)])
        .await
        .unwrap();
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(2, node(1), 8)));
    assert_ne!(snapshot.meta.snapshot_id, first.meta.snapshot_id);
    assert_eq!(
        snapshot_files(&raft_dir(&leader_dir)).len(),
        2,
        "only the newest snapshot (.db + .json) is kept"
    );
    let current = leader.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snapshot.meta);

    // Stream it the way openraft does: write into the receiving file, then install.
    let mut follower = StateStore::open(&raft_dir(&follower_dir)).await.unwrap();
    follower
        .apply(vec![normal(
            1,
            1,
            Command::KvSet {
                key: "overwritten".into(),
                value: json!(true),
            },
        )])
        .await
        .unwrap();
    let data_file = snapshot_files(&raft_dir(&leader_dir))
        .into_iter()
        .find(|name| name.ends_with(".db"))
        .unwrap();
    let data = std::fs::read(raft_dir(&leader_dir).join(SNAPSHOT_DIR).join(data_file)).unwrap();
    let mut receiving = follower.begin_receiving_snapshot().await.unwrap();
    for chunk in data.chunks(1000) {
        receiving.write_all(chunk).await.unwrap();
    }
    receiving.shutdown().await.unwrap();
    follower
        .install_snapshot(&snapshot.meta, receiving)
        .await
        .unwrap();

    assert_eq!(digest(&follower).await, digest(&leader).await);
    assert_eq!(
        follower.applied_state().await.unwrap(),
        leader.applied_state().await.unwrap()
    );
    let installed = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(installed.meta, snapshot.meta);

    // The follower goes on applying after the snapshot, and survives a reopen.
    follower
        .apply(vec![blank_ent::<TypeConfig>(3, node(1), 9)])
        .await
        .unwrap();
    let digest_after = digest(&follower).await;
    drop(follower);
    let mut follower = StateStore::open(&raft_dir(&follower_dir)).await.unwrap();
    assert_eq!(digest(&follower).await, digest_after);
    assert_eq!(
        follower.applied_state().await.unwrap().0,
        Some(log_id(3, node(1), 9))
    );
    assert_eq!(
        follower.get_current_snapshot().await.unwrap().unwrap().meta,
        snapshot.meta
    );
}

/// DESIGN §9: on start, if `last_applied` is behind the current snapshot, install it. Losing
/// `state.db` entirely is the extreme case of `synchronous=NORMAL` losing its tail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_installs_a_snapshot_that_is_ahead_of_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let raft = raft_dir(&dir);
    let (meta, digest_at_snapshot) = {
        let mut sm = StateStore::open(&raft).await.unwrap();
        sm.apply(workload()).await.unwrap();
        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        (snapshot.meta, digest(&sm).await)
    };
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(raft.join(format!("{STATE_DB_FILE}{suffix}")));
    }
    let mut sm = StateStore::open(&raft).await.unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, meta.last_log_id);
    assert_eq!(
        sm.applied_state().await.unwrap().1,
        meta.last_membership.clone()
    );
    assert_eq!(digest(&sm).await, digest_at_snapshot);
    assert_eq!(sm.current_snapshot_meta(), Some(meta));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_applied_state_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateStore::open(&raft_dir(&dir)).await.unwrap();
    sm.apply(workload()).await.unwrap();
    let reader = sm.reader();
    let (value, applied) = reader
        .read(|conn| {
            let value = swimraft_core::state::queries::kv_get(conn, "config/a")?;
            let applied = swimraft_core::state::queries::last_applied_index(conn)?;
            Ok((value, applied))
        })
        .await
        .unwrap();
    assert_eq!(value, Some(json!({"x": 1})));
    assert_eq!(applied, Some(5));
    // Readers are read-only.
    let write = reader
        .read(|conn| {
            conn.execute("DELETE FROM kv", []).map_err(|e| {
                swimraft_core::Error::new(swimraft_core::ErrorKind::Storage, e.to_string())
            })
        })
        .await;
    assert!(write.is_err());
}

/// Group commit: a process that dies with applied entries still in the open transaction
/// leaves a file at the last group commit; the entries after it are applied again on start
/// (openraft re-applies after `last_applied`) and the state ends up the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_only_the_open_group_and_reapplying_restores_it() {
    let entries = workload();
    let (first, rest) = entries.split_at(4);
    // The idle flusher may commit the group before the files are copied (it waits 20 ms);
    // then the image is not a crash image, and the round is tried again (bounded).
    for _attempt in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let raft = raft_dir(&dir);
        let mut sm = StateStore::open(&raft).await.unwrap();
        sm.apply(first.to_vec()).await.unwrap();
        digest(&sm).await; // a read commits the group
        assert!(!sm.has_uncommitted());
        sm.apply(rest.to_vec()).await.unwrap();
        let image = tempfile::tempdir().unwrap();
        let image_raft = raft_dir(&image);
        std::fs::create_dir_all(&image_raft).unwrap();
        for suffix in ["", "-wal"] {
            let name = format!("{STATE_DB_FILE}{suffix}");
            let _ = std::fs::copy(raft.join(&name), image_raft.join(&name));
        }
        if !sm.has_uncommitted() {
            continue;
        }
        let full_digest = digest(&sm).await;
        drop(sm);

        let mut restarted = StateStore::open(&image_raft).await.unwrap();
        assert_eq!(
            restarted.applied_log_id(),
            Some(first[3].log_id),
            "the file holds the last group commit"
        );
        assert_ne!(digest(&restarted).await, full_digest);
        restarted.apply(rest.to_vec()).await.unwrap();
        assert_eq!(restarted.applied_log_id(), Some(rest[2].log_id));
        assert_eq!(digest(&restarted).await, full_digest);
        return;
    }
    panic!("the group was committed before every copy of the files (20 attempts)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_file_is_refused_with_its_name() {
    use swimraft_core::consensus::raft::log_store::LOG_DB_FILE;
    use swimraft_core::ErrorKind;

    for file in [LOG_DB_FILE, STATE_DB_FILE] {
        let dir = TempDir::new().unwrap();
        let raft = raft_dir(&dir);
        std::fs::create_dir_all(&raft).unwrap();
        let garbage =
            b"this is not a SQLite database, just some bytes of another program ".repeat(64);
        std::fs::write(raft.join(file), &garbage).unwrap();
        let err = if file == LOG_DB_FILE {
            LogStore::open(&raft).await.err()
        } else {
            StateStore::open(&raft).await.err()
        }
        .unwrap_or_else(|| panic!("{file} full of garbage was opened"));
        assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
        assert!(err.message().contains(file), "{file}: {err}");
        assert!(err.message().contains("not a database"), "{file}: {err}");
        // Nothing was written over the damaged file: it can still be examined or restored.
        assert_eq!(std::fs::read(raft.join(file)).unwrap(), garbage, "{file}");
    }
}
