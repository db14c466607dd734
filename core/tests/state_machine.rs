//! `apply` itself: the log clock, the applied index, client sessions (exactly-once retries,
//! stale sequences, expiry) and batches.

mod state_support;

use state_support::*;
use swimraft_core::error::ErrorKind;
use swimraft_core::state::session::{SESSION_TTL_US, WATERMARK_REFRESH_US};
use swimraft_core::state::{
    apply, apply_batch, queries, Command, CommandResult, Envelope, RejectKind,
};
use swimraft_core::store;

fn add_cmd(id: &str) -> Command {
    Command::WorkAdd {
        item: item(id),
        force: false,
    }
}

#[test]
fn time_never_goes_backwards() {
    let mut db = Db::memory();
    db.run(Command::Noop);
    assert_eq!(queries::last_now_us(&db.conn).unwrap(), Some(T0));
    // A command stamped by a leader with a slower clock.
    db.apply(&Envelope::new(T0 - 60 * SEC, add_cmd("w1")));
    assert_eq!(db.item("w1").created_at, T0 as f64 / 1e6);
    assert_eq!(queries::last_now_us(&db.conn).unwrap(), Some(T0));
    // Expiry and timeouts judge by the log clock too: an older stamp cannot un-expire a lock.
    db.apply(&Envelope::new(T0 + 10 * SEC, acquire("l", "a", SEC)));
    assert_eq!(
        db.apply(&Envelope::new(T0, acquire("l", "b", SEC))),
        CommandResult::Token(None)
    );
    assert_eq!(queries::last_now_us(&db.conn).unwrap(), Some(T0 + 10 * SEC));
}

#[test]
fn last_applied_index_advances_with_every_entry_even_rejected() {
    let mut db = Db::memory();
    assert_eq!(queries::last_applied_index(&db.conn).unwrap(), None);
    let tx = db.conn.transaction().unwrap();
    assert_eq!(
        apply(&tx, 7, &Envelope::new(T0, Command::Noop)).unwrap(),
        CommandResult::Unit
    );
    let r = apply(&tx, 9, &Envelope::new(T0, claim("w", ""))).unwrap();
    assert_rejected(&r, RejectKind::InvalidArgument);
    tx.commit().unwrap();
    assert_eq!(queries::last_applied_index(&db.conn).unwrap(), Some(9));
}

#[test]
fn an_index_that_does_not_advance_is_an_error() {
    let mut db = Db::memory();
    let tx = db.conn.transaction().unwrap();
    apply(&tx, 5, &Envelope::new(T0, Command::Noop)).unwrap();
    for index in [5, 4] {
        let err = apply(&tx, index, &Envelope::new(T0, add_cmd("w"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    let err = apply(&tx, u64::MAX, &Envelope::new(T0, Command::Noop)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn aborted_transaction_applies_nothing() {
    let mut db = Db::memory();
    {
        let tx = db.conn.transaction().unwrap();
        apply(&tx, 1, &Envelope::new(T0, add_cmd("w1"))).unwrap();
        // dropped without commit
    }
    assert!(!db.has("w1"));
    assert_eq!(queries::last_applied_index(&db.conn).unwrap(), None);
}

#[test]
fn apply_batch_returns_results_in_order() {
    let mut db = Db::memory();
    let tx = db.conn.transaction().unwrap();
    let entries = vec![
        (1, Envelope::new(T0, add_cmd("w1"))),
        (2, Envelope::new(T0, add_cmd("w1"))),
        (3, Envelope::new(T0, claim("w1", "n1"))),
    ];
    let results = apply_batch(&tx, &entries).unwrap();
    tx.commit().unwrap();
    assert_eq!(results[0], CommandResult::WorkId("w1".into()));
    assert_rejected(&results[1], RejectKind::InvalidArgument);
    assert_eq!(results[2], TRUE);
    assert_eq!(queries::last_applied_index(&db.conn).unwrap(), Some(3));
}

#[test]
fn session_retry_returns_cached_result_without_applying_twice() {
    let mut db = Db::memory();
    db.add("w1");
    let env = Envelope::with_session("node-a:42", 1, T0, claim_next("node-a", None));
    let first = db.apply(&env);
    let CommandResult::Item(Some(claimed)) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(claimed.attempts, 1);
    // The retry (e.g. after a leader change) gets the same answer, later in log time.
    let retry = Envelope {
        now_us: T0 + 5 * SEC,
        ..env.clone()
    };
    assert_eq!(db.apply(&retry), first);
    assert_eq!(db.item("w1").attempts, 1);

    // A retried add is not a duplicate.
    let add = Envelope::with_session("node-a:42", 2, T0, add_cmd("w2"));
    assert_eq!(db.apply(&add), CommandResult::WorkId("w2".into()));
    assert_eq!(db.apply(&add), CommandResult::WorkId("w2".into()));
    assert_eq!(queries::work_stats(&db.conn).unwrap().total_added, 2);
}

#[test]
fn rejections_are_cached_too() {
    let mut db = Db::memory();
    db.add("w1");
    let env = Envelope::with_session("c", 1, T0, add_cmd("w1"));
    let first = db.apply(&env);
    assert_rejected(&first, RejectKind::InvalidArgument);
    assert_eq!(db.apply(&env), first);
}

#[test]
fn stale_sequence_is_rejected_and_not_applied() {
    let mut db = Db::memory();
    db.apply(&Envelope::with_session("c", 5, T0, Command::Noop));
    let r = db.apply(&Envelope::with_session("c", 4, T0, add_cmd("w1")));
    assert!(assert_rejected(&r, RejectKind::InvalidArgument).contains("stale sequence"));
    assert!(!db.has("w1"));
    // The session still answers seq 5 and accepts 6.
    assert_eq!(
        db.apply(&Envelope::with_session("c", 5, T0, add_cmd("w1"))),
        CommandResult::Unit
    );
    assert_eq!(
        db.apply(&Envelope::with_session("c", 6, T0, add_cmd("w1"))),
        CommandResult::WorkId("w1".into())
    );
    // Sessions are per client.
    assert_eq!(
        db.apply(&Envelope::with_session("other", 1, T0, add_cmd("w2"))),
        CommandResult::WorkId("w2".into())
    );
    let r = db.apply(&Envelope::with_session("c", u64::MAX, T0, Command::Noop));
    assert_rejected(&r, RejectKind::InvalidArgument);
}

#[test]
fn concurrent_writes_of_one_client_apply_in_any_order_exactly_once() {
    let mut db = Db::memory();
    let env = |seq: u64, first_unacked: u64, id: &str| Envelope {
        first_unacked,
        ..Envelope::with_session("c", seq, T0, add_cmd(id))
    };
    // Writes 1 and 2 are in flight together; 2 is applied first.
    assert_eq!(
        db.apply(&env(2, 1, "w2")),
        CommandResult::WorkId("w2".into())
    );
    assert_eq!(
        db.apply(&env(1, 1, "w1")),
        CommandResult::WorkId("w1".into())
    );
    // Retries of both are answered from the session, not applied again.
    assert_eq!(
        db.apply(&env(2, 1, "w2")),
        CommandResult::WorkId("w2".into())
    );
    assert_eq!(
        db.apply(&env(1, 1, "w1")),
        CommandResult::WorkId("w1".into())
    );
    // Both answered: the next write acknowledges them, and their results are forgotten.
    assert_eq!(
        db.apply(&env(3, 3, "w3")),
        CommandResult::WorkId("w3".into())
    );
    let remembered: i64 = db
        .conn
        .query_row(
            "SELECT COUNT(*) FROM client_sessions WHERE client_id = 'c'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(remembered, 1);
    // A late duplicate of an acknowledged write is refused, never applied twice.
    assert_rejected(&db.apply(&env(1, 1, "w1")), RejectKind::InvalidArgument);
}

#[test]
fn sessions_expire_an_hour_after_the_clients_last_write() {
    let mut db = Db::memory();
    let env = Envelope::with_session("c", 1, T0, add_cmd("w1"));
    assert_eq!(db.apply(&env), CommandResult::WorkId("w1".into()));
    let sessions = |db: &Db| -> i64 {
        db.conn
            .query_row("SELECT COUNT(*) FROM client_sessions", [], |r| r.get(0))
            .unwrap()
    };
    // An hour plus the watermark's refresh slack later the session is still there.
    let last = T0 + SESSION_TTL_US + WATERMARK_REFRESH_US;
    db.apply(&Envelope::new(last, Command::Noop));
    assert_eq!(sessions(&db), 1);
    db.apply(&Envelope::new(last + 1, Command::Noop));
    assert_eq!(sessions(&db), 0);
    // The forgotten retry is applied anew (and now finds a duplicate).
    let r = db.apply(&env);
    assert_rejected(&r, RejectKind::InvalidArgument);
}

/// Sessions expire by client: a client that keeps writing keeps the answer of a write it has
/// not acknowledged, however old, while a silent client beside it is forgotten.
#[test]
fn a_writing_client_keeps_its_unacknowledged_answers_past_the_hour() {
    let mut db = Db::memory();
    let env = |client: &str, seq: u64, first_unacked: u64, now: i64, cmd: Command| Envelope {
        first_unacked,
        ..Envelope::with_session(client, seq, now, cmd)
    };
    assert_eq!(
        db.apply(&env("c", 1, 1, T0, add_cmd("w1"))),
        CommandResult::WorkId("w1".into())
    );
    db.apply(&env("d", 1, 1, T0, Command::Noop));
    // Client c writes every half hour with seq 1 still unacknowledged; d stays silent.
    let mut now = T0;
    for seq in 2..=5 {
        now += SESSION_TTL_US / 2;
        db.apply(&env("c", seq, 1, now, Command::Noop));
    }
    assert!(now > T0 + SESSION_TTL_US + WATERMARK_REFRESH_US);
    // c's retry of seq 1 is answered from its session, not applied again.
    assert_eq!(
        db.apply(&env("c", 1, 1, now, add_cmd("w1"))),
        CommandResult::WorkId("w1".into())
    );
    let of = |db: &Db, client: &str| -> i64 {
        db.conn
            .query_row(
                "SELECT COUNT(*) FROM client_sessions WHERE client_id = ?1",
                [client],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(of(&db, "c"), 5);
    assert_eq!(of(&db, "d"), 0, "the silent client is forgotten");
}

/// A watermark that does not move is rewritten at most every `WATERMARK_REFRESH_US`, yet it
/// never expires before `SESSION_TTL_US` after the client's last write: a late duplicate is
/// refused for the whole hour.
#[test]
fn an_unmoved_watermark_is_refreshed_lazily_but_never_expires_early() {
    let mut db = Db::memory();
    let watermark = |db: &Db| -> Option<(i64, i64)> {
        db.conn
            .query_row(
                "SELECT low, updated_us FROM client_watermarks WHERE client_id = 'c'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
    };
    // Write 1 answered; then writes 2, 3, 4 with write 2 still unanswered (watermark 2).
    let env = |seq: u64, first_unacked: u64, now: i64| Envelope {
        first_unacked,
        ..Envelope::with_session("c", seq, now, Command::Noop)
    };
    db.apply(&env(1, 1, T0));
    db.apply(&env(2, 2, T0));
    assert_eq!(
        watermark(&db),
        Some((2, T0)),
        "a rising watermark is written"
    );
    let half = WATERMARK_REFRESH_US / 2;
    db.apply(&env(3, 2, T0 + half));
    assert_eq!(
        watermark(&db),
        Some((2, T0)),
        "unchanged and fresh: not rewritten"
    );
    let last_write = T0 + WATERMARK_REFRESH_US;
    db.apply(&env(4, 2, last_write));
    assert_eq!(
        watermark(&db),
        Some((2, last_write)),
        "refreshed after the interval"
    );

    // One hour after the last write, the write acknowledged before the watermark is still
    // refused (its session row is gone, the watermark is not).
    db.apply(&Envelope::new(last_write + SESSION_TTL_US, Command::Noop));
    assert_rejected(
        &db.apply(&env(1, 1, last_write + SESSION_TTL_US)),
        RejectKind::InvalidArgument,
    );
    // Past the hour and the refresh slack, the client is forgotten entirely.
    db.apply(&Envelope::new(
        last_write + SESSION_TTL_US + WATERMARK_REFRESH_US + 1,
        Command::Noop,
    ));
    assert_eq!(watermark(&db), None);
}

#[test]
fn no_session_without_client_id() {
    let mut db = Db::memory();
    db.run(add_cmd("w1"));
    let n: i64 = db
        .conn
        .query_row("SELECT COUNT(*) FROM client_sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    // Without a session a repeat is applied again.
    assert_rejected(&db.run(add_cmd("w1")), RejectKind::InvalidArgument);
}

#[test]
fn commands_and_results_round_trip_through_json() {
    let env = Envelope::with_session(
        "c",
        3,
        T0,
        Command::WorkAddBatch {
            items: vec![item("a"), item("b")],
            force: true,
        },
    );
    let text = serde_json::to_string(&env).unwrap();
    assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), env);
    let minimal: Envelope = serde_json::from_str(
        r#"{"now_us": 5, "command": {"work_add": {"item": {"work_id": "x"}, "force": false}}}"#,
    )
    .unwrap();
    assert_eq!(
        minimal.command,
        Command::WorkAdd {
            item: item("x"),
            force: false
        }
    );
    let mut db = Db::memory();
    db.add("w");
    let r = db.run(claim_next("n", None));
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<CommandResult>(&text).unwrap(), r);
    let rejected = CommandResult::rejected(RejectKind::Backpressure, "full");
    assert_eq!(
        rejected.rejection().unwrap().kind(),
        ErrorKind::Backpressure
    );
    assert!(CommandResult::Unit.rejection().is_none());
}

#[test]
fn store_meta_helpers() {
    let db = Db::memory();
    assert_eq!(store::meta_get(&db.conn, "membership").unwrap(), None);
    store::meta_set(&db.conn, "membership", r#"{"voters":["a"]}"#).unwrap();
    assert_eq!(
        store::meta_get(&db.conn, "membership").unwrap().as_deref(),
        Some(r#"{"voters":["a"]}"#)
    );
}
