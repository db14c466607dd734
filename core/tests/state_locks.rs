//! Locks: fencing tokens, renewal, expiry by the log's clock, release by the holder only.

mod state_support;

use state_support::*;
use swimraft_core::state::{queries, Command, CommandResult, Envelope, RejectKind};

fn token(r: CommandResult) -> Option<u64> {
    match r {
        CommandResult::Token(t) => t,
        other => panic!("{other:?}"),
    }
}

#[test]
fn grant_token_is_the_log_index() {
    let mut db = Db::memory();
    db.run(Command::Noop);
    db.run(Command::Noop);
    // Third entry.
    assert_eq!(token(db.run(acquire("l", "a", 10 * SEC))), Some(3));
    let info = queries::lock_holder(&db.conn, "l", db.now_us)
        .unwrap()
        .unwrap();
    assert_eq!((info.holder.as_str(), info.token), ("a", 3));
    assert_eq!(info.expires_at_us, T0 + 10 * SEC);
}

#[test]
fn held_lock_refuses_others() {
    let mut db = Db::memory();
    assert!(token(db.run(acquire("l", "a", 10 * SEC))).is_some());
    db.advance(10 * SEC);
    assert_eq!(token(db.run(acquire("l", "b", 10 * SEC))), None);
    assert_eq!(
        queries::lock_holder(&db.conn, "l", db.now_us)
            .unwrap()
            .unwrap()
            .holder,
        "a"
    );
}

#[test]
fn renewal_keeps_the_token_and_extends_the_lease() {
    let mut db = Db::memory();
    let t = token(db.run(acquire("l", "a", 10 * SEC)));
    db.advance(8 * SEC);
    assert_eq!(token(db.run(acquire("l", "a", 10 * SEC))), t);
    // Past the first lease, within the renewed one: still held.
    db.advance(8 * SEC);
    assert_eq!(token(db.run(acquire("l", "b", 10 * SEC))), None);
    let info = queries::lock_holder(&db.conn, "l", db.now_us)
        .unwrap()
        .unwrap();
    assert_eq!(info.acquired_at_us, T0);
    assert_eq!(info.renewed_at_us, T0 + 8 * SEC);
}

#[test]
fn expiry_is_judged_by_the_command_clock_only() {
    let mut db = Db::memory();
    let t1 = token(db.run(acquire("l", "a", 10 * SEC))).unwrap();
    // Exactly at renewed + ttl it is still held.
    db.now_us = T0 + 10 * SEC;
    assert_eq!(token(db.run(acquire("l", "b", SEC))), None);
    db.now_us = T0 + 10 * SEC + 1;
    let t2 = token(db.run(acquire("l", "b", SEC))).unwrap();
    assert!(t2 > t1);
    // The lock_holder read uses the time it is given.
    assert!(queries::lock_holder(&db.conn, "l", db.now_us + SEC)
        .unwrap()
        .is_some());
    assert!(queries::lock_holder(&db.conn, "l", db.now_us + SEC + 1)
        .unwrap()
        .is_none());
}

#[test]
fn expired_lock_reacquired_by_its_old_holder_gets_a_new_token() {
    let mut db = Db::memory();
    let t1 = token(db.run(acquire("l", "a", SEC))).unwrap();
    db.advance(2 * SEC);
    let t2 = token(db.run(acquire("l", "a", SEC))).unwrap();
    assert!(t2 > t1);
}

#[test]
fn tokens_strictly_increase_across_grants() {
    let mut db = Db::memory();
    let mut last = 0;
    for i in 0..5 {
        let holder = format!("h{i}");
        let t = token(db.run(acquire("l", &holder, SEC))).unwrap();
        assert!(t > last);
        last = t;
        assert_eq!(db.run(release_lock("l", &holder)), TRUE);
    }
}

#[test]
fn release_by_holder_only() {
    let mut db = Db::memory();
    token(db.run(acquire("l", "a", 10 * SEC)));
    assert_eq!(db.run(release_lock("l", "b")), FALSE);
    assert!(queries::lock_holder(&db.conn, "l", db.now_us)
        .unwrap()
        .is_some());
    assert_eq!(db.run(release_lock("l", "a")), TRUE);
    assert!(queries::lock_holder(&db.conn, "l", db.now_us)
        .unwrap()
        .is_none());
    assert_eq!(db.run(release_lock("l", "a")), FALSE);
    assert!(token(db.run(acquire("l", "b", 10 * SEC))).is_some());
}

#[test]
fn releasing_an_expired_lock_says_it_was_lost() {
    let mut db = Db::memory();
    token(db.run(acquire("l", "a", SEC)));
    db.advance(2 * SEC);
    assert_eq!(db.run(release_lock("l", "a")), FALSE);
    let n: i64 = db
        .conn
        .query_row("SELECT COUNT(*) FROM locks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn lock_expire_removes_only_expired_locks() {
    let mut db = Db::memory();
    token(db.run(acquire("short-b", "x", SEC)));
    token(db.run(acquire("short-a", "x", SEC)));
    token(db.run(acquire("long", "x", 100 * SEC)));
    db.advance(SEC);
    assert_eq!(db.run(Command::LockExpire), CommandResult::Ids(vec![]));
    db.advance(1);
    assert_eq!(
        db.run(Command::LockExpire),
        CommandResult::Ids(vec!["short-a".into(), "short-b".into()])
    );
    assert!(queries::lock_holder(&db.conn, "long", db.now_us)
        .unwrap()
        .is_some());
}

#[test]
fn invalid_lock_arguments_are_rejected() {
    let mut db = Db::memory();
    for cmd in [
        acquire("", "a", SEC),
        acquire("l", "", SEC),
        acquire("l", "a", 0),
        acquire("l", "a", -1),
    ] {
        assert_rejected(&db.run(cmd), RejectKind::InvalidArgument);
    }
    // A huge ttl does not overflow.
    assert!(token(db.run(acquire("l", "a", i64::MAX))).is_some());
    db.apply(&Envelope::new(i64::MAX, Command::LockExpire));
    assert!(queries::lock_holder(&db.conn, "l", i64::MAX)
        .unwrap()
        .is_some());
}
