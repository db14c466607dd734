//! The replicated key/value map: JSON values under text keys.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::command::{CommandResult, RejectKind};
use crate::store::json;

/// Reads one value.
pub(crate) fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?;
    Ok(text.map(|t| json::value_or(Some(t), Value::Null)))
}

fn empty_key() -> CommandResult {
    CommandResult::rejected(RejectKind::InvalidArgument, "kv key must not be empty")
}

fn write(conn: &Connection, key: &str, value: &Value) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, json::to_text(value)?])?;
    Ok(())
}

fn remove(conn: &Connection, key: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM kv WHERE key = ?1")?
        .execute([key])?
        == 1)
}

/// `KvSet` → `Unit`. An empty key is refused (choice: it cannot be told apart from "no key"
/// in the HTTP paths).
pub(crate) fn set(conn: &Connection, key: &str, value: &Value) -> rusqlite::Result<CommandResult> {
    if key.is_empty() {
        return Ok(empty_key());
    }
    write(conn, key, value)?;
    Ok(CommandResult::Unit)
}

/// `KvDelete` → `Bool(existed)`.
pub(crate) fn delete(conn: &Connection, key: &str) -> rusqlite::Result<CommandResult> {
    Ok(CommandResult::Bool(remove(conn, key)?))
}

/// `KvCompareAndSet` → `Bool`: when the current value equals `expected` (`None` = the key must
/// be absent), writes `new` (`None` = delete) and answers `true`; otherwise changes nothing.
/// Values compare as JSON values (`serde_json::Value` equality: `1` and `1.0` differ).
pub(crate) fn compare_and_set(
    conn: &Connection,
    key: &str,
    expected: Option<&Value>,
    new: Option<&Value>,
) -> rusqlite::Result<CommandResult> {
    if key.is_empty() {
        return Ok(empty_key());
    }
    if get(conn, key)?.as_ref() != expected {
        return Ok(CommandResult::Bool(false));
    }
    match new {
        Some(value) => write(conn, key, value)?,
        None => {
            remove(conn, key)?;
        }
    }
    Ok(CommandResult::Bool(true))
}
