//! JSON text columns (`config`, `result`, `depends_on`, `data`, kv values, cached results).
//!
//! Values are stored as serde_json's compact text. serde_json's `Map` is a `BTreeMap` here, so
//! the text of an object is canonical (sorted keys) and replicas store byte-identical rows.
//! Reading is lenient because an imported legacy database may hold NULL, empty or non-JSON text:
//! a column that does not parse is returned as a JSON string of its raw text instead of failing
//! (a failing read inside `apply` would wedge the state machine on that log entry forever).

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// Serializes `value` for a TEXT column. Serializing a `serde_json::Value` or one of our own
/// types cannot fail in practice; the error path exists so that nothing here panics.
pub(crate) fn to_text<T: Serialize + ?Sized>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Parses a TEXT column written by [`to_text`] into a typed value; failure is a storage error
/// (the column is ours and must hold what we wrote).
pub(crate) fn from_text<T: DeserializeOwned>(column: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Reads a JSON value column leniently: NULL or empty text gives `default`, text that is not
/// JSON gives `Value::String(text)`.
pub(crate) fn value_or(text: Option<String>, default: Value) -> Value {
    match text {
        None => default,
        Some(t) if t.trim().is_empty() => default,
        Some(t) => serde_json::from_str(&t).unwrap_or(Value::String(t)),
    }
}

/// Reads a `depends_on` column leniently: a JSON list of ids. Entries that are not strings are
/// dropped, matching the claim query, which can never find a work item with a non-text id.
pub(crate) fn string_list(text: Option<String>) -> Vec<String> {
    match value_or(text, Value::Array(Vec::new())) {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
