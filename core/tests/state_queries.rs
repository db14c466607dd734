//! Reads: lists, history, filters and the state digest.

mod state_support;

use serde_json::json;
use state_support::*;
use swimraft_core::error::ErrorKind;
use swimraft_core::state::{queries, Command, NewWorkItem};

fn ids(items: Vec<swimraft_core::state::WorkItem>) -> Vec<String> {
    items.into_iter().map(|i| i.work_id).collect()
}

#[test]
fn work_list_filters_and_orders() {
    let mut db = Db::memory();
    for (id, p) in [("a", 10), ("b", 90), ("c", 50), ("d", 50)] {
        let mut it = NewWorkItem::new(id, "selfplay");
        it.priority = p;
        db.add_item(it);
    }
    db.run(claim("c", "n1"));
    db.run(claim("d", "n2"));
    assert_eq!(
        ids(queries::work_list(&db.conn, None, None, 100).unwrap()),
        ["b", "c", "d", "a"]
    );
    assert_eq!(
        ids(queries::work_list(&db.conn, Some("pending"), None, 100).unwrap()),
        ["b", "a"]
    );
    assert_eq!(
        ids(queries::work_list(&db.conn, None, Some("n1"), 100).unwrap()),
        ["c"]
    );
    assert_eq!(
        ids(queries::work_list(&db.conn, Some("claimed"), Some("n2"), 100).unwrap()),
        ["d"]
    );
    assert_eq!(
        ids(queries::work_list(&db.conn, None, None, 2).unwrap()),
        ["b", "c"]
    );
    let err = queries::work_list(&db.conn, Some("bogus"), None, 10).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn history_is_terminal_items_newest_first() {
    let mut db = Db::memory();
    for id in ["a", "b", "c", "d", "p"] {
        db.add(id);
    }
    db.run(claim("a", "n"));
    db.run(complete("a", Some(json!({"ok": true})), None));
    db.advance(SEC);
    db.run(cancel("b"));
    db.advance(SEC);
    db.run(claim("c", "n"));
    db.run(complete("c", None, None));
    db.run(cancel("d")); // same completed_at as c: id breaks the tie
    assert_eq!(
        ids(queries::work_history(&db.conn, 50, None).unwrap()),
        ["c", "d", "b", "a"]
    );
    assert_eq!(
        ids(queries::work_history(&db.conn, 50, Some("completed")).unwrap()),
        ["c", "a"]
    );
    assert_eq!(
        ids(queries::work_history(&db.conn, 1, None).unwrap()),
        ["c"]
    );
    assert!(queries::work_history(&db.conn, 50, Some("pending"))
        .unwrap()
        .is_empty());
    assert_eq!(
        queries::work_history(&db.conn, 50, Some("nope"))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn work_item_serializes_with_lowercase_status() {
    let mut db = Db::memory();
    db.add("w");
    db.run(claim("w", "n"));
    let v = serde_json::to_value(db.item("w")).unwrap();
    assert_eq!(v["status"], json!("claimed"));
    assert_eq!(v["claimed_by"], json!("n"));
    assert_eq!(v["depends_on"], json!([]));
    for key in [
        "work_id",
        "work_type",
        "priority",
        "config",
        "created_at",
        "claimed_at",
        "started_at",
        "completed_at",
        "attempts",
        "max_attempts",
        "timeout_seconds",
        "result",
        "error",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
}

#[test]
fn digest_covers_every_table_and_changes_with_state() {
    let mut db = Db::memory();
    let empty = queries::state_digest(&db.conn).unwrap();
    for table in [
        "[sm_meta]",
        "[work_items]",
        "[work_stats]",
        "[jobs]",
        "[locks]",
        "[kv]",
        "[client_sessions]",
    ] {
        assert!(empty.contains(table), "{table}");
    }
    db.run(Command::KvSet {
        key: "k".into(),
        value: json!("v|\n"),
    });
    let after = queries::state_digest(&db.conn).unwrap();
    assert_ne!(after, empty);
    assert!(after.contains(r#""k"|"\"v|\\n\"""#), "{after}");
    assert_eq!(queries::state_digest(&db.conn).unwrap(), after);
}
