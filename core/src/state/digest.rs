//! A canonical text dump of the whole replicated state.
//!
//! Two replicas that applied the same log prefix produce byte-identical digests. Replay tests
//! compare them, and operators can diff replicas. Rows are ordered by primary key, columns by
//! declaration; values are rendered without locale or float formatting choices that could
//! differ between machines (floats use Rust's shortest round-trip form).

use std::fmt::Write;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::error::Result;
use crate::store::storage_error;

/// Every state table and its primary key column, in dump order.
const TABLES: &[(&str, &str)] = &[
    ("sm_meta", "key"),
    ("work_items", "work_id"),
    ("work_stats", "key"),
    ("jobs", "job_id"),
    ("locks", "name"),
    ("kv", "key"),
    ("client_sessions", "client_id, seq"),
    ("client_watermarks", "client_id"),
];

/// Dumps every state table (`sm_meta`, `work_items`, `work_stats`, `jobs`, `locks`, `kv`,
/// `client_sessions`, `client_watermarks`) ordered by primary key, one line per row: `[table]` headers, then the
/// column names, then `|`-separated values (`null`, integers, floats in shortest round-trip
/// form, text as JSON strings, blobs as `x'hex'`).
pub fn state_digest(conn: &Connection) -> Result<String> {
    digest(conn).map_err(storage_error)
}

fn digest(conn: &Connection) -> rusqlite::Result<String> {
    let mut out = String::new();
    for (table, key) in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {key}"))?;
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        out.push_str(&format!("[{table}]\n{}\n", names.join("|")));
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            for i in 0..names.len() {
                if i > 0 {
                    out.push('|');
                }
                render(&mut out, row.get_ref(i)?);
            }
            out.push('\n');
        }
    }
    Ok(out)
}

fn render(out: &mut String, value: ValueRef<'_>) {
    // Writing into a String cannot fail; the results are ignored deliberately.
    match value {
        ValueRef::Null => out.push_str("null"),
        ValueRef::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        ValueRef::Real(f) => {
            let _ = write!(out, "{f:?}");
        }
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let quoted = serde_json::Value::String(text.into_owned()).to_string();
            out.push_str(&quoted);
        }
        ValueRef::Blob(bytes) => {
            out.push_str("x'");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            out.push('\'');
        }
    }
}
