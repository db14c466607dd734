//! Property tests of the state machine over random command sequences: several nodes, a small
//! pool of ids (so commands collide), a clock that mostly moves forward but sometimes steps
//! back, client sessions with retries.
//!
//! Checked after every step: (1) no item is held by two nodes (a claimed/running item has one
//! non-empty `claimed_by`, and a successful claim only ever takes a pending item whose
//! dependencies are completed or gone); (2) `attempts <= max_attempts` and `attempts` equals
//! successful claims minus releases; (3) `check_timeouts` times out exactly the items with
//! `now - claimed_at > timeout_seconds`; (4) lock tokens strictly increase across grants and a
//! renewal keeps its token. Separately (5): replaying the log into a fresh database, in
//! arbitrary batches, gives identical results and an identical `state_digest`.
//!
//! proptest prints the minimal failing sequence; `PROPTEST_CASES=n` runs more cases.

mod state_support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::json;
use state_support::{Db, SEC};
use swimraft_core::state::{
    apply_batch, apply_writes, apply_writes_grouped, queries, Command, CommandResult, Envelope,
    NewWorkItem, SessionCache, WorkItem, WorkStatus,
};
use swimraft_core::store;

const IDS: u8 = 6;
const NODES: u8 = 3;
const LOCKS: u8 = 2;

fn wid(i: u8) -> String {
    format!("w{i}")
}
fn node(i: u8) -> String {
    format!("n{i}")
}
fn lock(i: u8) -> String {
    format!("l{i}")
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        id: u8,
        kind: u8,
        priority: i64,
        max_attempts: i64,
        timeout_s: u8,
        deps: Vec<u8>,
        force: bool,
    },
    Batch(Vec<u8>),
    Claim(u8, u8),
    ClaimNext(u8, Option<Vec<u8>>),
    Start(u8, Option<u8>),
    Complete(u8, Option<u8>),
    Fail(u8, Option<u8>),
    Release(u8, Option<u8>),
    Cancel(u8),
    CheckTimeouts,
    Cleanup(u8),
    Acquire(u8, u8, u8),
    ReleaseLock(u8, u8),
    ExpireLocks,
    KvSet(u8, i64),
    KvCas(u8, Option<i64>, Option<i64>),
    KvDelete(u8),
    JobAssign(u8, u8),
    JobStart(u8),
    JobComplete(u8),
    JobFail(u8),
    /// Re-send the last sessioned write of a client (same seq): must not apply twice.
    Retry(u8),
}

#[derive(Debug, Clone)]
struct Step {
    op: Op,
    /// Clock change before this step, ms; sometimes negative (a leader with a slower clock).
    dt_ms: i64,
    /// Send in this client's session (`None` = no session).
    client: Option<u8>,
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..IDS;
    let n = 0..NODES;
    let maybe_node = proptest::option::of(0..NODES);
    prop_oneof![
        6 => (0..IDS, 0..2u8, prop_oneof![Just(0i64), Just(50), Just(100)], 1..=3i64, 1..=5u8,
              proptest::collection::vec(0..IDS, 0..2), proptest::bool::weighted(0.1))
            .prop_map(|(id, kind, priority, max_attempts, timeout_s, deps, force)| Op::Add {
                id, kind, priority, max_attempts, timeout_s, deps, force
            }),
        1 => proptest::collection::vec(0..IDS, 1..4).prop_map(Op::Batch),
        5 => (id.clone(), n.clone()).prop_map(|(i, n)| Op::Claim(i, n)),
        5 => (n.clone(), proptest::option::of(proptest::collection::vec(0..2u8, 0..2)))
            .prop_map(|(n, caps)| Op::ClaimNext(n, caps)),
        3 => (id.clone(), maybe_node.clone()).prop_map(|(i, n)| Op::Start(i, n)),
        3 => (id.clone(), maybe_node.clone()).prop_map(|(i, n)| Op::Complete(i, n)),
        3 => (id.clone(), maybe_node.clone()).prop_map(|(i, n)| Op::Fail(i, n)),
        3 => (id.clone(), maybe_node).prop_map(|(i, n)| Op::Release(i, n)),
        1 => id.clone().prop_map(Op::Cancel),
        3 => Just(Op::CheckTimeouts),
        1 => (0..10u8).prop_map(Op::Cleanup),
        4 => (0..LOCKS, n.clone(), 1..=5u8).prop_map(|(l, h, t)| Op::Acquire(l, h, t)),
        2 => (0..LOCKS, n.clone()).prop_map(|(l, h)| Op::ReleaseLock(l, h)),
        1 => Just(Op::ExpireLocks),
        1 => (0..3u8, -3..3i64).prop_map(|(k, v)| Op::KvSet(k, v)),
        1 => (0..3u8, proptest::option::of(-3..3i64), proptest::option::of(-3..3i64))
            .prop_map(|(k, e, v)| Op::KvCas(k, e, v)),
        1 => (0..3u8).prop_map(Op::KvDelete),
        1 => (0..3u8, n).prop_map(|(j, n)| Op::JobAssign(j, n)),
        1 => (0..3u8).prop_map(Op::JobStart),
        1 => (0..3u8).prop_map(Op::JobComplete),
        1 => (0..3u8).prop_map(Op::JobFail),
        2 => (0..2u8).prop_map(Op::Retry),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        op(),
        prop_oneof![8 => 0..1500i64, 1 => -3000..0i64, 1 => 1500..6000i64],
        proptest::option::weighted(0.4, 0..2u8),
    )
        .prop_map(|(op, dt_ms, client)| Step { op, dt_ms, client })
}

fn command(op: &Op) -> Command {
    let opt_node = |n: &Option<u8>| n.map(node);
    match op {
        Op::Add {
            id,
            kind,
            priority,
            max_attempts,
            timeout_s,
            deps,
            force,
        } => {
            let mut item = NewWorkItem::new(wid(*id), ["a", "b"][*kind as usize]);
            item.priority = *priority;
            item.max_attempts = *max_attempts;
            item.timeout_seconds = f64::from(*timeout_s);
            item.depends_on = deps.iter().map(|d| wid(*d)).collect();
            Command::WorkAdd {
                item,
                force: *force,
            }
        }
        Op::Batch(ids) => Command::WorkAddBatch {
            items: ids.iter().map(|i| NewWorkItem::new(wid(*i), "a")).collect(),
            force: false,
        },
        Op::Claim(i, n) => Command::WorkClaim {
            work_id: wid(*i),
            node_id: node(*n),
        },
        Op::ClaimNext(n, caps) => Command::WorkClaimNext {
            node_id: node(*n),
            capabilities: caps.as_ref().map(|c| {
                c.iter()
                    .map(|k| ["a", "b"][*k as usize].to_string())
                    .collect()
            }),
        },
        Op::Start(i, n) => Command::WorkStart {
            work_id: wid(*i),
            node_id: opt_node(n),
        },
        Op::Complete(i, n) => Command::WorkComplete {
            work_id: wid(*i),
            result: Some(json!({"by": opt_node(n)})),
            node_id: opt_node(n),
        },
        Op::Fail(i, n) => Command::WorkFail {
            work_id: wid(*i),
            error: "boom".into(),
            node_id: opt_node(n),
        },
        Op::Release(i, n) => Command::WorkRelease {
            work_id: wid(*i),
            node_id: opt_node(n),
        },
        Op::Cancel(i) => Command::WorkCancel { work_id: wid(*i) },
        Op::CheckTimeouts => Command::WorkCheckTimeouts,
        Op::Cleanup(s) => Command::WorkCleanup {
            retention_us: i64::from(*s) * SEC,
        },
        Op::Acquire(l, h, t) => Command::LockAcquire {
            name: lock(*l),
            holder: node(*h),
            ttl_us: i64::from(*t) * SEC,
        },
        Op::ReleaseLock(l, h) => Command::LockRelease {
            name: lock(*l),
            holder: node(*h),
        },
        Op::ExpireLocks => Command::LockExpire,
        Op::KvSet(k, v) => Command::KvSet {
            key: format!("k{k}"),
            value: json!(v),
        },
        Op::KvCas(k, e, v) => Command::KvCompareAndSet {
            key: format!("k{k}"),
            expected: e.map(|e| json!(e)),
            new: v.map(|v| json!(v)),
        },
        Op::KvDelete(k) => Command::KvDelete {
            key: format!("k{k}"),
        },
        Op::JobAssign(j, n) => Command::JobAssign {
            job_id: format!("j{j}"),
            node_id: node(*n),
            data: None,
        },
        Op::JobStart(j) => Command::JobStart {
            job_id: format!("j{j}"),
        },
        Op::JobComplete(j) => Command::JobComplete {
            job_id: format!("j{j}"),
            result: None,
        },
        Op::JobFail(j) => Command::JobFail {
            job_id: format!("j{j}"),
            error: "x".into(),
        },
        Op::Retry(_) => Command::Noop,
    }
}

fn items(db: &Db) -> BTreeMap<String, WorkItem> {
    queries::work_list(&db.conn, None, None, 10_000)
        .unwrap()
        .into_iter()
        .map(|i| (i.work_id.clone(), i))
        .collect()
}

/// What a run produced: the log as applied, each entry's result, and the final digest.
struct Run {
    log: Vec<(u64, Envelope)>,
    results: Vec<CommandResult>,
    digest: String,
}

/// Applies `steps` to `db`, checking invariants (1)–(4) after every step.
fn run_checked(mut db: Db, steps: &[Step]) -> Result<Run, TestCaseError> {
    let mut log = Vec::new();
    let mut results = Vec::new();
    // (2) successful claims minus releases per item, since it was (re-)added.
    let mut claims: BTreeMap<String, i64> = BTreeMap::new();
    // (4) the largest token ever granted.
    let mut max_token = 0u64;
    let mut seqs = [0u64; 2];
    let mut last_sent: [Option<Envelope>; 2] = [None, None];

    for step in steps {
        db.now_us += step.dt_ms * 1000;
        let mut cached = false;
        let env = match (&step.op, step.client) {
            (Op::Retry(c), _) => match &last_sent[*c as usize] {
                Some(prev) => {
                    cached = true;
                    Envelope {
                        now_us: db.now_us,
                        ..prev.clone()
                    }
                }
                None => Envelope::new(db.now_us, Command::Noop),
            },
            (op, Some(c)) => {
                seqs[c as usize] += 1;
                let env = Envelope::with_session(
                    format!("client-{c}"),
                    seqs[c as usize],
                    db.now_us,
                    command(op),
                );
                last_sent[c as usize] = Some(env.clone());
                env
            }
            (op, None) => Envelope::new(db.now_us, command(op)),
        };

        let before = items(&db);
        let last_now = queries::last_now_us(&db.conn).unwrap();
        let now_us = last_now.map_or(env.now_us, |l| l.max(env.now_us));
        let now_s = now_us as f64 / 1e6;
        let lock_before = match &env.command {
            Command::LockAcquire { name, .. } => {
                queries::lock_holder(&db.conn, name, now_us).unwrap()
            }
            _ => None,
        };

        let (index, result) = swimraft_core::state::apply_local(&mut db.conn, &env).unwrap();
        let after = items(&db);

        if !cached {
            // (1) a successful claim took a pending, unblocked item.
            let claimed_id = match (&env.command, &result) {
                (Command::WorkClaim { work_id, .. }, CommandResult::Bool(true)) => {
                    Some(work_id.clone())
                }
                (Command::WorkClaimNext { .. }, CommandResult::Item(Some(it))) => {
                    Some(it.work_id.clone())
                }
                _ => None,
            };
            if let (Command::WorkClaimNext { .. }, CommandResult::Item(Some(it))) =
                (&env.command, &result)
            {
                // The answer is the row as the claim left it (built from the selected row,
                // not read back).
                prop_assert_eq!(&after[&it.work_id], it.as_ref(), "claim_next answer");
            }
            if let Some(id) = &claimed_id {
                let prev = &before[id];
                prop_assert_eq!(
                    prev.status,
                    WorkStatus::Pending,
                    "claimed {} from {:?}",
                    id,
                    prev.status
                );
                prop_assert!(prev.attempts < prev.max_attempts);
                for dep in &prev.depends_on {
                    if let Some(d) = before.get(dep) {
                        prop_assert_eq!(
                            d.status,
                            WorkStatus::Completed,
                            "{} claimed with dep {} {:?}",
                            id,
                            dep,
                            d.status
                        );
                    }
                }
                *claims.entry(id.clone()).or_default() += 1;
            }
            match (&env.command, &result) {
                (Command::WorkRelease { work_id, .. }, CommandResult::Bool(true)) => {
                    *claims.entry(work_id.clone()).or_default() -= 1;
                }
                (Command::WorkAdd { item, .. }, CommandResult::WorkId(_)) => {
                    claims.insert(item.work_id.clone(), 0);
                }
                (Command::WorkAddBatch { items, .. }, CommandResult::WorkIds(_)) => {
                    for it in items {
                        claims.insert(it.work_id.clone(), 0);
                    }
                }
                _ => {}
            }

            // (3) timeouts: exactly the overdue claims.
            if let (Command::WorkCheckTimeouts, CommandResult::Ids(ids)) = (&env.command, &result) {
                let expected: Vec<String> = before
                    .values()
                    .filter(|i| matches!(i.status, WorkStatus::Claimed | WorkStatus::Running))
                    .filter(|i| now_s - i.claimed_at > i.timeout_seconds)
                    .map(|i| i.work_id.clone())
                    .collect();
                prop_assert_eq!(ids, &expected);
            }

            // (4) tokens.
            if let (Command::LockAcquire { holder, .. }, CommandResult::Token(token)) =
                (&env.command, &result)
            {
                match (&lock_before, token) {
                    (Some(held), Some(t)) if &held.holder == holder => {
                        prop_assert_eq!(*t, held.token, "renewal must keep its token");
                    }
                    (Some(held), None) => prop_assert_ne!(&held.holder, holder),
                    (None, Some(t)) => {
                        prop_assert!(*t > max_token, "token {} after {}", t, max_token);
                        prop_assert_eq!(*t, index);
                        max_token = *t;
                    }
                    (held, token) => {
                        return Err(TestCaseError::fail(format!(
                            "acquire by {holder}: before {held:?}, got {token:?}"
                        )))
                    }
                }
            }
        } else {
            // A retry answers from the session and changes no work item.
            prop_assert_eq!(&before, &after, "a retry changed the queue");
        }

        // The trigger-kept pending count (backpressure reads it) equals a recount.
        let (kept, counted) = state_support::pending_counts(&db.conn);
        prop_assert_eq!(kept, counted, "pending count after {:?}", &env.command);
        // The status line's queue size, read from that count and the index, equals the stats.
        let stats = queries::work_stats(&db.conn).unwrap();
        prop_assert_eq!(
            queries::work_queue_size(&db.conn).unwrap(),
            stats.pending + stats.claimed + stats.running,
            "queue size after {:?}",
            &env.command
        );

        // (1) one holder per claimed/running item; (2) attempts bounded and accounted.
        for it in after.values() {
            if matches!(it.status, WorkStatus::Claimed | WorkStatus::Running) {
                prop_assert!(!it.claimed_by.is_empty(), "{} held by nobody", it.work_id);
            }
            prop_assert!(it.attempts <= it.max_attempts, "{:?}", it);
            prop_assert!(it.attempts >= 0);
            prop_assert_eq!(
                it.attempts,
                claims.get(&it.work_id).copied().unwrap_or(0),
                "attempts of {}",
                it.work_id
            );
        }
        log.push((index, env));
        results.push(result);
    }
    Ok(Run {
        log,
        results,
        digest: queries::state_digest(&db.conn).unwrap(),
    })
}

/// Applies `log` to `replica` in transactions of the sizes in `chunks` (cycled), with `apply`
/// doing one transaction's part; returns every result in order.
fn replay_in_chunks<T>(
    replica: &mut rusqlite::Connection,
    log: &[T],
    chunks: &[usize],
    apply: impl Fn(&rusqlite::Transaction<'_>, &[T]) -> Vec<CommandResult>,
) -> Vec<CommandResult> {
    let mut replayed = Vec::new();
    let mut rest = log;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        let tx = replica.transaction().unwrap();
        replayed.extend(apply(&tx, &rest[..n]));
        tx.commit().unwrap();
        rest = &rest[n..];
    }
    replayed
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 1..120)
}

proptest! {
    #![proptest_config(Config { cases: 256, failure_persistence: None, ..Config::default() })]

    /// Invariants (1)–(4) on an in-memory database.
    #[test]
    fn invariants_hold(steps in steps()) {
        run_checked(Db::memory(), &steps)?;
    }
}

proptest! {
    #![proptest_config(Config { cases: 48, failure_persistence: None, ..Config::default() })]

    /// (5) Determinism: the same log replayed into a fresh file database, in arbitrary batches
    /// of entries per transaction, gives the same results and the same digest.
    #[test]
    fn replay_gives_identical_state(
        steps in steps(),
        chunks in proptest::collection::vec(1..8usize, 1..40),
    ) {
        let original = run_checked(Db::file(), &steps)?;
        let dir = tempfile::tempdir().unwrap();
        let mut replica = store::open_state_db(&dir.path().join("replica.db")).unwrap();
        let replayed = replay_in_chunks(&mut replica, &original.log, &chunks, |tx, part| {
            apply_batch(tx, part).unwrap()
        });
        prop_assert_eq!(&replayed, &original.results);
        prop_assert_eq!(queries::state_digest(&replica).unwrap(), original.digest);
        prop_assert!(original.log.last().map(|(i, _)| *i) == queries::last_applied_index(&replica).unwrap());
    }

    /// (6) Batched entries: the same writes applied as Raft batches (`apply_writes`, several
    /// writes per entry, numbered by the state machine) give the same results and state.
    #[test]
    fn batched_writes_give_identical_state(
        steps in steps(),
        chunks in proptest::collection::vec(1..8usize, 1..40),
    ) {
        let original = run_checked(Db::file(), &steps)?;
        prop_assume!(original.log.iter().enumerate().all(|(i, (index, _))| *index == i as u64 + 1));
        let dir = tempfile::tempdir().unwrap();
        let mut replica = store::open_state_db(&dir.path().join("replica.db")).unwrap();
        let writes: Vec<Envelope> = original.log.iter().map(|(_, env)| env.clone()).collect();
        let replayed = replay_in_chunks(&mut replica, &writes, &chunks, |tx, part| {
            apply_writes(tx, part).unwrap()
        });
        prop_assert_eq!(&replayed, &original.results);
        prop_assert_eq!(queries::state_digest(&replica).unwrap(), original.digest);
        prop_assert!(original.log.last().map(|(i, _)| *i) == queries::last_applied_index(&replica).unwrap());
    }
}

/// One sessioned write of the session test: `seq` drawn from a small range, so writes of a
/// client arrive out of order, repeat and go stale; `first_unacked` lags `seq` by `lag`.
#[derive(Debug, Clone)]
struct SessionWrite {
    client: u8,
    seq: u64,
    lag: u64,
    add: bool,
    dt_ms: i64,
}

fn session_write() -> impl Strategy<Value = SessionWrite> {
    (
        0..3u8,
        1..24u64,
        0..6u64,
        any::<bool>(),
        // Now and then past the session lifetime, so that silent clients expire.
        prop_oneof![12 => Just(0i64), 2 => 1..2000i64, 1 => 3_601_000..3_603_000i64],
    )
        .prop_map(|(client, seq, lag, add, dt_ms)| SessionWrite {
            client,
            seq,
            lag,
            add,
            dt_ms,
        })
}

proptest! {
    #![proptest_config(Config { cases: 128, failure_persistence: None, ..Config::default() })]

    /// (7) Sessions are cached in memory (`SessionCache`) and written to the tables at the end
    /// of each call, or, grouped as the Raft state store does, just before each commit of
    /// several entries: applying writes many per entry, and entries many per transaction,
    /// answers every write and leaves the sessions, watermarks and data exactly as applying
    /// them one at a time, whatever the order, repeats and acknowledgements of the clients'
    /// sequence numbers, and across session expiry.
    #[test]
    fn sessions_batched_per_entry_match_one_write_at_a_time(
        writes in proptest::collection::vec(session_write(), 1..80),
        chunks in proptest::collection::vec(1..30usize, 1..20),
        groups in proptest::collection::vec(1..6usize, 1..10),
    ) {
        let mut single = Db::file();
        let mut now = single.now_us;
        let envs: Vec<Envelope> = writes
            .iter()
            .map(|w| {
                now += w.dt_ms * 1000;
                let command = if w.add {
                    Command::WorkAdd {
                        item: NewWorkItem::new(format!("w{}-{}", w.client, w.seq % 8), "selfplay"),
                        force: false,
                    }
                } else {
                    Command::KvSet { key: format!("k{}", w.seq % 5), value: json!(w.seq) }
                };
                Envelope {
                    first_unacked: w.seq.saturating_sub(w.lag).max(1),
                    ..Envelope::with_session(format!("client-{}", w.client), w.seq, now, command)
                }
            })
            .collect();
        let one_by_one: Vec<CommandResult> = envs.iter().map(|env| single.apply(env)).collect();
        let dir = tempfile::tempdir().unwrap();
        let mut batched = store::open_state_db(&dir.path().join("batched.db")).unwrap();
        let replayed = replay_in_chunks(&mut batched, &envs, &chunks, |tx, part| {
            apply_writes(tx, part).unwrap()
        });
        prop_assert_eq!(&replayed, &one_by_one);
        prop_assert_eq!(
            queries::state_digest(&batched).unwrap(),
            queries::state_digest(&single.conn).unwrap()
        );

        // Grouped, as the Raft state store applies: one transaction and one session cache
        // over several entries, persisted just before each commit.
        let mut grouped = store::open_state_db(&dir.path().join("grouped.db")).unwrap();
        let mut sessions = SessionCache::new();
        let mut answers = Vec::new();
        let mut rest = &envs[..];
        let mut sizes = chunks.iter().cycle();
        let mut groups = groups.iter().cycle();
        while !rest.is_empty() {
            let tx = grouped.transaction().unwrap();
            for _ in 0..*groups.next().unwrap() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                answers.extend(apply_writes_grouped(&tx, &mut sessions, &rest[..n]).unwrap());
                rest = &rest[n..];
            }
            sessions.persist(&tx).unwrap();
            tx.commit().unwrap();
        }
        prop_assert!(sessions.is_empty());
        prop_assert_eq!(&answers, &one_by_one);
        prop_assert_eq!(
            queries::state_digest(&grouped).unwrap(),
            queries::state_digest(&single.conn).unwrap()
        );
    }
}
