//! Work queue rules (DESIGN.md §4): add, validation, backpressure, batches, claims,
//! dependencies, the lifecycle with node checks, timeouts, retention and stats.

mod state_support;

use serde_json::json;
use state_support::*;
use swimraft_core::state::work_queue::{BACKPRESSURE_REFUSE_ABOVE, BACKPRESSURE_RESUME_AT};
use swimraft_core::state::{queries, Command, CommandResult, NewWorkItem, RejectKind, WorkStatus};

fn batch(ids: &[&str]) -> Command {
    Command::WorkAddBatch {
        items: ids.iter().map(|id| item(id)).collect(),
        force: false,
    }
}

fn pending(db: &Db) -> u64 {
    queries::work_stats(&db.conn).unwrap().pending
}

// ---- add and validation ------------------------------------------------------------------

#[test]
fn add_stores_a_pending_item_created_at_now() {
    let mut db = Db::memory();
    let mut new = NewWorkItem::new("w1", "training");
    new.priority = 70;
    new.config = json!({"board": "hex8"});
    new.timeout_seconds = 120.5;
    new.max_attempts = 2;
    new.depends_on = vec!["w0".into()];
    db.add_item(new);
    let it = db.item("w1");
    assert_eq!(it.work_type, "training");
    assert_eq!(it.priority, 70);
    assert_eq!(it.config, json!({"board": "hex8"}));
    assert_eq!(it.created_at, db.now_s());
    assert_eq!(
        (it.claimed_at, it.started_at, it.completed_at),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(it.status, WorkStatus::Pending);
    assert_eq!(it.claimed_by, "");
    assert_eq!((it.attempts, it.max_attempts), (0, 2));
    assert_eq!(it.timeout_seconds, 120.5);
    assert_eq!(it.result, json!({}));
    assert_eq!(it.error, "");
    assert_eq!(it.depends_on, vec!["w0".to_string()]);
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_added, 1);
}

#[test]
fn null_config_is_stored_as_empty_object() {
    let mut db = Db::memory();
    let mut new = item("w1");
    new.config = serde_json::Value::Null;
    db.add_item(new);
    assert_eq!(db.item("w1").config, json!({}));
}

#[test]
fn duplicate_id_is_invalid_argument_and_changes_nothing() {
    let mut db = Db::memory();
    db.add("w1");
    let mut again = item("w1");
    again.priority = 99;
    let r = db.run(Command::WorkAdd {
        item: again,
        force: true,
    });
    assert!(assert_rejected(&r, RejectKind::InvalidArgument).contains("duplicate"));
    assert_eq!(db.item("w1").priority, 50);
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_added, 1);
}

type Mutation = Box<dyn Fn(&mut NewWorkItem)>;

#[test]
fn invalid_arguments_are_rejected() {
    let mut db = Db::memory();
    let cases: Vec<(&str, Mutation)> = vec![
        ("empty id", Box::new(|i| i.work_id = String::new())),
        ("empty type", Box::new(|i| i.work_type = String::new())),
        ("priority -1", Box::new(|i| i.priority = -1)),
        ("priority 101", Box::new(|i| i.priority = 101)),
        ("timeout 0", Box::new(|i| i.timeout_seconds = 0.0)),
        ("timeout <0", Box::new(|i| i.timeout_seconds = -5.0)),
        ("timeout NaN", Box::new(|i| i.timeout_seconds = f64::NAN)),
        (
            "timeout inf",
            Box::new(|i| i.timeout_seconds = f64::INFINITY),
        ),
        ("max_attempts 0", Box::new(|i| i.max_attempts = 0)),
        ("config list", Box::new(|i| i.config = json!([1]))),
        (
            "self dep",
            Box::new(|i| i.depends_on = vec![i.work_id.clone()]),
        ),
        (
            "empty dep",
            Box::new(|i| i.depends_on = vec![String::new()]),
        ),
    ];
    for (name, mutate) in cases {
        let mut new = item("w1");
        mutate(&mut new);
        let r = db.run(Command::WorkAdd {
            item: new,
            force: false,
        });
        assert_rejected(&r, RejectKind::InvalidArgument);
        assert!(!db.has("w1"), "{name} was stored");
    }
    for p in [0, 100] {
        let mut new = item(&format!("p{p}"));
        new.priority = p;
        db.add_item(new);
    }
}

// ---- backpressure -------------------------------------------------------------------------

#[test]
fn backpressure_hysteresis_1000_200_and_force() {
    let mut db = Db::memory();
    let total = BACKPRESSURE_REFUSE_ABOVE as usize + 1;
    // 1000 pending still admits one more (refusal is strictly "over 1000").
    for chunk in 0..total.div_ceil(100) {
        let items: Vec<NewWorkItem> = (chunk * 100..((chunk + 1) * 100).min(total))
            .map(|i| item(&format!("w{i:04}")))
            .collect();
        assert!(matches!(
            db.run(Command::WorkAddBatch {
                items,
                force: false
            }),
            CommandResult::WorkIds(_)
        ));
    }
    assert_eq!(pending(&db), 1001);
    // The replicated flag flips on the first refused add; stats already say the next add will
    // be refused.
    assert_eq!(
        swimraft_core::store::meta_get(&db.conn, "backpressure_active").unwrap(),
        None
    );
    assert!(queries::work_stats(&db.conn).unwrap().backpressure_active);
    assert!(queries::work_stats(&db.conn).unwrap().backpressure_warning);

    let r = db.run(Command::WorkAdd {
        item: item("x1"),
        force: false,
    });
    assert_rejected(&r, RejectKind::Backpressure);
    assert_eq!(
        swimraft_core::store::meta_get(&db.conn, "backpressure_active").unwrap(),
        Some("true".into())
    );
    assert!(queries::work_stats(&db.conn).unwrap().backpressure_active);
    // Batches are refused too, and `force` bypasses.
    assert_rejected(&db.run(batch(&["x2"])), RejectKind::Backpressure);
    assert_eq!(
        db.run(Command::WorkAdd {
            item: item("forced"),
            force: true
        }),
        CommandResult::WorkId("forced".into())
    );

    // Drain to 201: still refusing (hysteresis).
    let mut ids: Vec<String> = queries::work_list(&db.conn, Some("pending"), None, 5000)
        .unwrap()
        .into_iter()
        .map(|i| i.work_id)
        .collect();
    ids.sort();
    while pending(&db) > (BACKPRESSURE_RESUME_AT + 1) as u64 {
        let id = ids.pop().unwrap();
        assert_eq!(db.run(cancel(&id)), TRUE);
    }
    assert_rejected(
        &db.run(Command::WorkAdd {
            item: item("x3"),
            force: false,
        }),
        RejectKind::Backpressure,
    );
    // At 200 the next add is admitted and the flag clears.
    let id = ids.pop().unwrap();
    assert_eq!(db.run(cancel(&id)), TRUE);
    assert_eq!(pending(&db), 200);
    assert!(!queries::work_stats(&db.conn).unwrap().backpressure_active);
    db.add("x4");
    assert_eq!(
        swimraft_core::store::meta_get(&db.conn, "backpressure_active").unwrap(),
        Some("false".into())
    );
    db.add("x5");
    assert_eq!(pending(&db), 202);
}

// ---- batches --------------------------------------------------------------------------------

#[test]
fn batch_adds_all_in_order() {
    let mut db = Db::memory();
    assert_eq!(
        db.run(batch(&["b", "a", "c"])),
        CommandResult::WorkIds(vec!["b".into(), "a".into(), "c".into()])
    );
    assert!(db.has("a") && db.has("b") && db.has("c"));
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_added, 3);
}

#[test]
fn batch_is_all_or_none() {
    let mut db = Db::memory();
    db.add("existing");
    assert_rejected(
        &db.run(batch(&["a", "b", "a"])),
        RejectKind::InvalidArgument,
    );
    assert_rejected(
        &db.run(batch(&["a", "existing"])),
        RejectKind::InvalidArgument,
    );
    let mut items = vec![item("a"), item("b")];
    items[1].priority = 500;
    assert_rejected(
        &db.run(Command::WorkAddBatch {
            items,
            force: false,
        }),
        RejectKind::InvalidArgument,
    );
    assert!(!db.has("a") && !db.has("b"));
    assert_eq!(queries::work_stats(&db.conn).unwrap().total, 1);
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_added, 1);
}

#[test]
fn batch_size_is_1_to_100() {
    let mut db = Db::memory();
    assert_rejected(&db.run(batch(&[])), RejectKind::InvalidArgument);
    let ids: Vec<String> = (0..101).map(|i| format!("w{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_rejected(&db.run(batch(&refs)), RejectKind::InvalidArgument);
    assert_eq!(queries::work_stats(&db.conn).unwrap().total, 0);
    assert!(matches!(db.run(batch(&refs[..100])), CommandResult::WorkIds(v) if v.len() == 100));
}

// ---- claims ---------------------------------------------------------------------------------

#[test]
fn claim_sets_claim_fields_once() {
    let mut db = Db::memory();
    db.add("w1");
    db.advance(5 * SEC);
    assert_eq!(db.run(claim("w1", "n1")), TRUE);
    let it = db.item("w1");
    assert_eq!(it.status, WorkStatus::Claimed);
    assert_eq!(it.claimed_by, "n1");
    assert_eq!(it.claimed_at, db.now_s());
    assert_eq!(it.attempts, 1);
    assert_eq!(db.run(claim("w1", "n2")), FALSE);
    assert_eq!(db.run(claim("w1", "n1")), FALSE);
    assert_eq!(db.item("w1").claimed_by, "n1");
    assert_eq!(db.run(claim("nope", "n1")), FALSE);
    assert_rejected(&db.run(claim("w1", "")), RejectKind::InvalidArgument);
}

#[test]
fn claim_needs_attempts_left() {
    let mut db = Db::memory();
    let mut new = item("w1");
    new.max_attempts = 1;
    db.add_item(new);
    assert_eq!(db.run(claim("w1", "n1")), TRUE);
    assert_eq!(db.run(fail("w1", "boom", None)), TRUE);
    assert_eq!(db.item("w1").status, WorkStatus::Failed);
    assert_eq!(db.run(claim("w1", "n1")), FALSE);
}

fn finish(db: &mut Db, id: &str, how: &str) {
    match how {
        "completed" => {
            assert_eq!(db.run(claim(id, "n0")), TRUE);
            assert_eq!(db.run(complete(id, None, None)), TRUE);
        }
        "failed" => {
            assert_eq!(db.run(claim(id, "n0")), TRUE);
            // Spend every attempt.
            assert_eq!(db.run(fail(id, "x", None)), TRUE);
            assert_eq!(db.run(claim(id, "n0")), TRUE);
            assert_eq!(db.run(fail(id, "x", None)), TRUE);
            assert_eq!(db.run(claim(id, "n0")), TRUE);
            assert_eq!(db.run(fail(id, "x", None)), TRUE);
        }
        "cancelled" => assert_eq!(db.run(cancel(id)), TRUE),
        "timeout" => {
            for _ in 0..3 {
                assert_eq!(db.run(claim(id, "n0")), TRUE);
                db.advance(3601 * SEC);
                db.run(Command::WorkCheckTimeouts);
            }
        }
        _ => unreachable!(),
    }
    assert_eq!(db.item(id).status.as_str(), how);
}

#[test]
fn dependencies_gate_claims() {
    let mut db = Db::memory();
    let mut child = item("child");
    child.priority = 100;
    child.depends_on = vec!["parent".into(), "never-added".into()];
    db.add("parent");
    db.add_item(child);
    // Parent pending: the child is blocked, and claim_next skips it for the parent.
    assert_eq!(db.run(claim("child", "n1")), FALSE);
    match db.run(claim_next("n9", None)) {
        CommandResult::Item(Some(it)) => assert_eq!(it.work_id, "parent"),
        other => panic!("{other:?}"),
    }
    assert_eq!(db.run(claim_next("n1", None)), CommandResult::Item(None));
    // Parent claimed, then running: still blocked.
    assert_eq!(db.run(claim("child", "n1")), FALSE);
    assert_eq!(db.run(start("parent", Some("n9"))), TRUE);
    assert_eq!(db.run(claim("child", "n1")), FALSE);
    // Parent completed; "never-added" does not exist and counts as completed.
    assert_eq!(db.run(complete("parent", None, Some("n9"))), TRUE);
    match db.run(claim_next("n1", None)) {
        CommandResult::Item(Some(it)) => assert_eq!(it.work_id, "child"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_cancelled_or_timed_out_dependencies_block_forever() {
    for how in ["failed", "cancelled", "timeout"] {
        let mut db = Db::memory();
        db.add("parent");
        let mut child = item("child");
        child.depends_on = vec!["parent".into()];
        child.timeout_seconds = 1e9;
        db.add_item(child);
        finish(&mut db, "parent", how);
        assert_eq!(db.run(claim("child", "n1")), FALSE, "{how}");
        assert_eq!(db.run(claim_next("n1", None)), CommandResult::Item(None));
    }
}

#[test]
fn cleaned_up_dependency_counts_as_completed() {
    let mut db = Db::memory();
    db.add("parent");
    let mut child = item("child");
    child.depends_on = vec!["parent".into()];
    db.add_item(child);
    finish(&mut db, "parent", "completed");
    db.advance(25 * 3600 * SEC);
    assert_eq!(
        db.run(Command::WorkCleanup {
            retention_us: 24 * 3600 * SEC
        }),
        CommandResult::Ids(vec!["parent".into()])
    );
    assert_eq!(db.run(claim("child", "n1")), TRUE);
}

#[test]
fn claim_next_order_is_priority_then_age_then_id() {
    let mut db = Db::memory();
    let add = |db: &mut Db, id: &str, priority: i64| {
        let mut it = item(id);
        it.priority = priority;
        db.add_item(it);
    };
    add(&mut db, "old-low", 10);
    db.advance(SEC);
    add(&mut db, "b-high", 90);
    add(&mut db, "a-high", 90); // same priority and time as b-high: id breaks the tie
    db.advance(SEC);
    add(&mut db, "new-high", 90);
    add(&mut db, "mid", 50);
    let order: Vec<String> = (0..5)
        .map(|_| match db.run(claim_next("n1", None)) {
            CommandResult::Item(Some(it)) => {
                assert_eq!(it.status, WorkStatus::Claimed);
                assert_eq!(it.claimed_by, "n1");
                assert_eq!(it.attempts, 1);
                it.work_id
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(order, ["a-high", "b-high", "new-high", "mid", "old-low"]);
    assert_eq!(db.run(claim_next("n1", None)), CommandResult::Item(None));
}

#[test]
fn claim_next_respects_capabilities() {
    let mut db = Db::memory();
    let mut gpu = NewWorkItem::new("train", "training");
    gpu.priority = 100;
    db.add_item(gpu);
    db.add_item(NewWorkItem::new("play", "selfplay"));
    let got = |r: CommandResult| match r {
        CommandResult::Item(Some(it)) => it.work_id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        got(db.run(claim_next("cpu", Some(&["selfplay", "eval"])))),
        "play"
    );
    assert_eq!(
        db.run(claim_next("cpu", Some(&["selfplay"]))),
        CommandResult::Item(None)
    );
    // Empty capabilities = any.
    assert_eq!(got(db.run(claim_next("gpu", Some(&[])))), "train");
    assert_rejected(&db.run(claim_next("", None)), RejectKind::InvalidArgument);
}

// ---- lifecycle --------------------------------------------------------------------------------

#[test]
fn start_moves_claimed_to_running_for_the_holder_only() {
    let mut db = Db::memory();
    db.add("w1");
    assert_eq!(db.run(start("w1", None)), FALSE, "pending cannot start");
    assert_eq!(db.run(claim("w1", "n1")), TRUE);
    assert_eq!(db.run(start("w1", Some("n2"))), FALSE);
    db.advance(SEC);
    assert_eq!(db.run(start("w1", Some("n1"))), TRUE);
    let it = db.item("w1");
    assert_eq!(it.status, WorkStatus::Running);
    assert_eq!(it.started_at, db.now_s());
    assert_eq!(db.run(start("w1", None)), FALSE, "already running");
    assert_eq!(db.run(start("nope", None)), FALSE);
}

#[test]
fn complete_from_claimed_or_running() {
    let mut db = Db::memory();
    db.add("a");
    db.add("b");
    assert_eq!(db.run(complete("a", None, None)), FALSE, "pending");
    db.run(claim("a", "n1"));
    db.run(claim("b", "n1"));
    db.run(start("b", None));
    assert_eq!(
        db.run(complete("a", Some(json!({"x": 1})), Some("n2"))),
        FALSE
    );
    db.advance(SEC);
    assert_eq!(
        db.run(complete("a", Some(json!({"x": 1})), Some("n1"))),
        TRUE
    );
    assert_eq!(db.run(complete("b", None, None)), TRUE);
    let a = db.item("a");
    assert_eq!(a.status, WorkStatus::Completed);
    assert_eq!(a.result, json!({"x": 1}));
    assert_eq!(a.completed_at, db.now_s());
    assert_eq!(db.item("b").result, json!({}));
    assert_eq!(db.run(complete("a", None, None)), FALSE, "terminal");
    assert_eq!(db.run(complete("nope", None, None)), FALSE);
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_completed, 2);
}

#[test]
fn fail_requeues_while_attempts_remain_then_fails() {
    let mut db = Db::memory();
    let mut new = item("w1");
    new.max_attempts = 2;
    db.add_item(new);
    assert_eq!(db.run(fail("w1", "e0", None)), FALSE, "pending");
    db.run(claim("w1", "n1"));
    assert_eq!(db.run(fail("w1", "e1", Some("n2"))), FALSE);
    assert_eq!(db.run(fail("w1", "e1", Some("n1"))), TRUE);
    let it = db.item("w1");
    assert_eq!(
        (
            it.status,
            it.error.as_str(),
            it.claimed_by.as_str(),
            it.attempts
        ),
        (WorkStatus::Pending, "e1", "", 1)
    );
    db.run(claim("w1", "n2"));
    db.run(start("w1", Some("n2")));
    assert_eq!(db.run(fail("w1", "e2", Some("n2"))), TRUE);
    let it = db.item("w1");
    assert_eq!((it.status, it.error.as_str()), (WorkStatus::Failed, "e2"));
    assert_eq!(it.completed_at, db.now_s());
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_failed, 1);
    assert_eq!(db.run(fail("nope", "x", None)), FALSE);
}

#[test]
fn release_gives_the_attempt_back() {
    let mut db = Db::memory();
    db.add("w1");
    assert_eq!(db.run(release("w1", None)), FALSE, "pending");
    db.run(claim("w1", "n1"));
    assert_eq!(db.run(release("w1", Some("n2"))), FALSE);
    assert_eq!(db.run(release("w1", Some("n1"))), TRUE);
    let it = db.item("w1");
    assert_eq!(
        (it.status, it.attempts, it.claimed_by.as_str()),
        (WorkStatus::Pending, 0, "")
    );
    db.run(claim("w1", "n2"));
    db.run(start("w1", None));
    assert_eq!(db.run(release("w1", None)), TRUE);
    assert_eq!(db.item("w1").attempts, 0);
    assert_eq!(db.run(release("nope", None)), FALSE);
}

#[test]
fn cancel_any_non_terminal() {
    let mut db = Db::memory();
    for id in ["p", "c", "r", "done"] {
        db.add(id);
    }
    db.run(claim("c", "n1"));
    db.run(claim("r", "n1"));
    db.run(start("r", None));
    db.run(claim("done", "n1"));
    db.run(complete("done", None, None));
    db.advance(SEC);
    for id in ["p", "c", "r"] {
        assert_eq!(db.run(cancel(id)), TRUE, "{id}");
        let it = db.item(id);
        assert_eq!(it.status, WorkStatus::Cancelled);
        assert_eq!(it.completed_at, db.now_s());
    }
    assert_eq!(db.run(cancel("done")), FALSE);
    assert_eq!(db.run(cancel("p")), FALSE);
    assert_eq!(db.run(cancel("nope")), FALSE);
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_cancelled, 3);
}

// ---- timeouts -----------------------------------------------------------------------------------

#[test]
fn timeouts_use_strictly_greater_than_timeout_seconds() {
    let mut db = Db::memory();
    let mut new = item("w1");
    new.timeout_seconds = 10.0;
    new.max_attempts = 2;
    db.add_item(new);
    db.run(claim("w1", "n1"));
    db.advance(10 * SEC);
    assert_eq!(
        db.run(Command::WorkCheckTimeouts),
        CommandResult::Ids(vec![]),
        "exactly at the timeout is not over it"
    );
    db.advance(1);
    assert_eq!(
        db.run(Command::WorkCheckTimeouts),
        CommandResult::Ids(vec!["w1".into()])
    );
    let it = db.item("w1");
    assert_eq!(
        (
            it.status,
            it.error.as_str(),
            it.claimed_by.as_str(),
            it.attempts
        ),
        (WorkStatus::Pending, "timeout", "", 1)
    );
    // Second attempt times out for good.
    db.run(claim("w1", "n2"));
    db.run(start("w1", None));
    db.advance(11 * SEC);
    assert_eq!(
        db.run(Command::WorkCheckTimeouts),
        CommandResult::Ids(vec!["w1".into()])
    );
    let it = db.item("w1");
    assert_eq!(it.status, WorkStatus::Timeout);
    assert_eq!(it.completed_at, db.now_s());
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_timeout, 2);
}

#[test]
fn timeouts_are_sorted_and_ignore_pending_and_terminal() {
    let mut db = Db::memory();
    for id in ["c", "a", "b", "p", "done"] {
        let mut new = item(id);
        new.timeout_seconds = 1.0;
        db.add_item(new);
    }
    for id in ["c", "a", "b", "done"] {
        db.run(claim(id, "n1"));
    }
    db.run(complete("done", None, None));
    db.advance(2 * SEC);
    assert_eq!(
        db.run(Command::WorkCheckTimeouts),
        CommandResult::Ids(vec!["a".into(), "b".into(), "c".into()])
    );
}

#[test]
fn stale_worker_cannot_complete_a_reclaimed_item() {
    let mut db = Db::memory();
    let mut new = item("w1");
    new.timeout_seconds = 1.0;
    db.add_item(new);
    db.run(claim("w1", "slow"));
    db.advance(2 * SEC);
    db.run(Command::WorkCheckTimeouts);
    assert_eq!(db.run(claim("w1", "fast")), TRUE);
    assert_eq!(db.run(complete("w1", None, Some("slow"))), FALSE);
    assert_eq!(db.run(fail("w1", "x", Some("slow"))), FALSE);
    assert_eq!(db.run(release("w1", Some("slow"))), FALSE);
    assert_eq!(db.run(complete("w1", None, Some("fast"))), TRUE);
}

// ---- retention ----------------------------------------------------------------------------------

#[test]
fn cleanup_deletes_only_terminal_items_past_retention() {
    let mut db = Db::memory();
    for id in [
        "old-done",
        "old-cancel",
        "old-pending",
        "old-claimed",
        "new-done",
    ] {
        db.add(id);
    }
    db.run(claim("old-done", "n1"));
    db.run(complete("old-done", None, None));
    db.run(cancel("old-cancel"));
    db.run(claim("old-claimed", "n1"));
    db.advance(100 * SEC);
    db.run(claim("new-done", "n1"));
    db.run(complete("new-done", None, None));
    // old-* finished at T0; new-done at T0 + 100 s. Retention 60 s at T0 + 100 s:
    let r = db.run(Command::WorkCleanup {
        retention_us: 60 * SEC,
    });
    assert_eq!(
        r,
        CommandResult::Ids(vec!["old-cancel".into(), "old-done".into()])
    );
    assert!(db.has("old-pending") && db.has("old-claimed") && db.has("new-done"));
    // Exactly at the retention boundary it stays; just past it goes.
    db.advance(60 * SEC);
    let r = db.run(Command::WorkCleanup {
        retention_us: 60 * SEC,
    });
    assert_eq!(r, CommandResult::Ids(vec![]));
    db.advance(1);
    let r = db.run(Command::WorkCleanup {
        retention_us: 60 * SEC,
    });
    assert_eq!(r, CommandResult::Ids(vec!["new-done".into()]));
    assert_rejected(
        &db.run(Command::WorkCleanup { retention_us: -1 }),
        RejectKind::InvalidArgument,
    );
    // Totals survive cleanup; a cleaned id can be reused.
    let stats = queries::work_stats(&db.conn).unwrap();
    assert_eq!((stats.total_completed, stats.total), (2, 2));
    db.add("old-done");
}

// ---- stats --------------------------------------------------------------------------------------

#[test]
fn stats_count_by_status_and_type() {
    let mut db = Db::memory();
    db.add_item(NewWorkItem::new("t1", "training"));
    db.add_item(NewWorkItem::new("t2", "training"));
    db.add("s1");
    db.add("s2");
    db.add("s3");
    db.run(claim("t1", "n"));
    db.run(claim("t2", "n"));
    db.run(start("t2", None));
    db.run(claim("s1", "n"));
    db.run(complete("s1", None, None));
    db.run(cancel("s2"));
    let stats = queries::work_stats(&db.conn).unwrap();
    assert_eq!(
        (
            stats.pending,
            stats.claimed,
            stats.running,
            stats.completed,
            stats.failed,
            stats.timeout,
            stats.cancelled,
            stats.total
        ),
        (1, 1, 1, 1, 0, 0, 1, 5)
    );
    assert_eq!(stats.by_type.get("training"), Some(&2));
    assert_eq!(stats.by_type.get("selfplay"), Some(&3));
    assert_eq!(
        (
            stats.total_added,
            stats.total_completed,
            stats.total_cancelled
        ),
        (5, 1, 1)
    );
    assert!(!stats.backpressure_active && !stats.backpressure_warning);
}
