//! The replicated key/value map.

mod state_support;

use serde_json::{json, Value};
use state_support::*;
use swimraft_core::state::{queries, Command, CommandResult, RejectKind};

fn set(key: &str, value: Value) -> Command {
    Command::KvSet {
        key: key.into(),
        value,
    }
}
fn cas(key: &str, expected: Option<Value>, new: Option<Value>) -> Command {
    Command::KvCompareAndSet {
        key: key.into(),
        expected,
        new,
    }
}

#[test]
fn set_get_delete() {
    let mut db = Db::memory();
    assert_eq!(db.run(set("a", json!({"x": [1, 2]}))), CommandResult::Unit);
    assert_eq!(
        queries::kv_get(&db.conn, "a").unwrap(),
        Some(json!({"x": [1, 2]}))
    );
    db.run(set("a", json!(null)));
    assert_eq!(queries::kv_get(&db.conn, "a").unwrap(), Some(Value::Null));
    assert_eq!(db.run(Command::KvDelete { key: "a".into() }), TRUE);
    assert_eq!(db.run(Command::KvDelete { key: "a".into() }), FALSE);
    assert_eq!(queries::kv_get(&db.conn, "a").unwrap(), None);
    assert_rejected(&db.run(set("", json!(1))), RejectKind::InvalidArgument);
}

#[test]
fn compare_and_set() {
    let mut db = Db::memory();
    // expected None = must be absent.
    assert_eq!(db.run(cas("k", None, Some(json!(1)))), TRUE);
    assert_eq!(db.run(cas("k", None, Some(json!(2)))), FALSE);
    assert_eq!(db.run(cas("k", Some(json!(2)), Some(json!(3)))), FALSE);
    assert_eq!(db.run(cas("k", Some(json!(1)), Some(json!(3)))), TRUE);
    assert_eq!(queries::kv_get(&db.conn, "k").unwrap(), Some(json!(3)));
    // Numbers compare as JSON values: 3.0 is not 3.
    assert_eq!(db.run(cas("k", Some(json!(3.0)), None)), FALSE);
    // new None = delete.
    assert_eq!(db.run(cas("k", Some(json!(3)), None)), TRUE);
    assert_eq!(queries::kv_get(&db.conn, "k").unwrap(), None);
    // Objects compare regardless of key order.
    db.run(set("o", json!({"a": 1, "b": 2})));
    assert_eq!(
        db.run(cas("o", Some(json!({"b": 2, "a": 1})), Some(json!(0)))),
        TRUE
    );
    // A JSON null value is present, unlike absence.
    db.run(set("n", Value::Null));
    assert_eq!(db.run(cas("n", None, Some(json!(1)))), FALSE);
    assert_eq!(db.run(cas("n", Some(Value::Null), Some(json!(1)))), TRUE);
}

#[test]
fn list_by_prefix_is_sorted() {
    let mut db = Db::memory();
    for key in ["job/2", "job/10", "jobs", "job/1", "other", "ключ/1"] {
        db.run(set(key, json!(key)));
    }
    let keys = |prefix: &str| -> Vec<String> {
        queries::kv_list(&db.conn, prefix)
            .unwrap()
            .into_keys()
            .collect()
    };
    assert_eq!(keys("job/"), ["job/1", "job/10", "job/2"]);
    assert_eq!(keys("job"), ["job/1", "job/10", "job/2", "jobs"]);
    assert_eq!(keys("ключ"), ["ключ/1"]);
    assert_eq!(keys("").len(), 6);
    assert!(keys("zzz").is_empty());
    assert_eq!(
        queries::kv_list(&db.conn, "other").unwrap()["other"],
        json!("other")
    );
}
