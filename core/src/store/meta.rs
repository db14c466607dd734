//! `sm_meta`: the state machine's own bookkeeping, one text value per key.
//!
//! The keys the state machine writes are constants here so that the Raft layer, the importer and
//! the queries agree on their spelling. Values are text; numbers are decimal, flags are
//! `true`/`false`, and `membership` is whatever JSON the Raft layer stores.

use rusqlite::{Connection, OptionalExtension};

use super::storage_error;
use crate::error::Result;

/// Write index of the last applied write (not a Raft log index: an entry carries several
/// writes), written by every apply in the same transaction.
pub const LAST_APPLIED_INDEX: &str = "last_applied_index";
/// The state machine's clock in microseconds: the largest `now_us` any command carried.
pub const LAST_NOW_US: &str = "last_now_us";
/// `true` while the work queue refuses new items (backpressure hysteresis, replicated).
pub const BACKPRESSURE_ACTIVE: &str = "backpressure_active";
/// The Raft membership as JSON, owned by the Raft layer (the state machine never reads it).
pub const MEMBERSHIP: &str = "membership";
/// Version of the schema created by [`crate::store::migrate`].
pub const SCHEMA_VERSION: &str = "schema_version";

/// Reads one `sm_meta` value; `None` when the key was never written.
pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    get(conn, key).map_err(storage_error)
}

/// Writes one `sm_meta` value. Pass the open transaction (`&tx` coerces to `&Connection`) so the
/// value commits or aborts together with the entry it belongs to.
pub fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    set(conn, key, value).map_err(storage_error)
}

pub(crate) fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM sm_meta WHERE key = ?1")?
        .query_row([key], |row| row.get::<_, Option<String>>(0))
        .optional()
        .map(Option::flatten)
}

pub(crate) fn set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sm_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// Reads an integer value; a value that is not a decimal integer is a storage error (these keys
/// are only ever written by us).
pub(crate) fn get_i64(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    match get(conn, key)? {
        None => Ok(None),
        Some(text) => text.trim().parse::<i64>().map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        }),
    }
}

/// Writes an integer value as decimal text.
pub(crate) fn set_i64(conn: &Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    set(conn, key, &value.to_string())
}

/// Reads a flag; anything but `true` (including a missing key) is false.
pub(crate) fn get_flag(conn: &Connection, key: &str) -> rusqlite::Result<bool> {
    Ok(get(conn, key)?.as_deref() == Some("true"))
}

/// Writes a flag as `true` / `false`.
pub(crate) fn set_flag(conn: &Connection, key: &str, value: bool) -> rusqlite::Result<()> {
    set(conn, key, if value { "true" } else { "false" })
}
