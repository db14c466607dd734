//! Replicated locks with fencing tokens.
//!
//! A grant's token is the write index of the write that granted it (its position in the
//! replicated sequence of writes, see [`super::machine::apply_next`]), so tokens strictly increase
//! across grants and a resource guarded by a lock can refuse a holder whose token is older than
//! one it has seen. Expiry is judged only by the log's `now` (`now > renewed_at + ttl`), never
//! by a replica's clock, so every replica agrees on who holds a lock at every entry.

use rusqlite::{params, Connection, OptionalExtension};

use super::command::{CommandResult, RejectKind};
use super::machine::Ctx;
use super::records::LockInfo;

/// SQLite integers are signed; `apply` refuses indexes beyond `i64::MAX` before we get here.
fn signed(index: u64) -> rusqlite::Result<i64> {
    i64::try_from(index).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Reads one lock row, expired or not.
pub(crate) fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<LockInfo>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM locks WHERE name = ?1",
        LockInfo::COLUMNS
    ))?
    .query_row([name], LockInfo::from_row)
    .optional()
}

/// `LockAcquire` → `Token(Some(token))` or `Token(None)`.
///
/// * free → granted, token = this write's write index (see the module docs);
/// * held by `holder` and not expired → renewed (`renewed_at = now`, the new `ttl`), the token
///   is kept;
/// * expired (whoever held it) → a new grant with a new token. Choice: an expired lock was
///   lost, even if its old holder is the one asking, and the new token tells fenced resources
///   that a new tenure began;
/// * held by another holder and not expired → `Token(None)`.
///
/// Empty names or holders and `ttl_us <= 0` are refused.
pub(crate) fn acquire(
    conn: &Connection,
    ctx: &Ctx<'_>,
    name: &str,
    holder: &str,
    ttl_us: i64,
) -> rusqlite::Result<CommandResult> {
    if name.is_empty() || holder.is_empty() {
        return Ok(CommandResult::rejected(
            RejectKind::InvalidArgument,
            "lock name and holder must not be empty",
        ));
    }
    if ttl_us <= 0 {
        return Ok(CommandResult::rejected(
            RejectKind::InvalidArgument,
            format!("lock ttl_us {ttl_us} must be > 0"),
        ));
    }
    match get(conn, name)? {
        Some(lock) if !lock.is_expired(ctx.now_us) => {
            if lock.holder != holder {
                return Ok(CommandResult::Token(None));
            }
            conn.prepare_cached(
                "UPDATE locks SET renewed_at_us = ?2, ttl_us = ?3 WHERE name = ?1",
            )?
            .execute(params![name, ctx.now_us, ttl_us])?;
            Ok(CommandResult::Token(Some(lock.token)))
        }
        _ => {
            conn.prepare_cached(
                "INSERT INTO locks (name, holder, token, acquired_at_us, renewed_at_us, ttl_us)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder,
                     token = excluded.token, acquired_at_us = excluded.acquired_at_us,
                     renewed_at_us = excluded.renewed_at_us, ttl_us = excluded.ttl_us",
            )?
            .execute(params![
                name,
                holder,
                signed(ctx.write_index)?,
                ctx.now_us,
                ttl_us
            ])?;
            Ok(CommandResult::Token(Some(ctx.write_index)))
        }
    }
}

/// `LockRelease` → `Bool(true)` when `holder` held the lock (unexpired) and it is now free;
/// `false` for another holder (nothing changes) or a lock that is free or already expired.
/// Choice: an expired lock row of this holder is removed (it was garbage) but answers `false`,
/// so the caller learns that it had lost the lock.
pub(crate) fn release(
    conn: &Connection,
    ctx: &Ctx<'_>,
    name: &str,
    holder: &str,
) -> rusqlite::Result<CommandResult> {
    let Some(lock) = get(conn, name)? else {
        return Ok(CommandResult::Bool(false));
    };
    if lock.holder != holder {
        return Ok(CommandResult::Bool(false));
    }
    conn.prepare_cached("DELETE FROM locks WHERE name = ?1")?
        .execute([name])?;
    Ok(CommandResult::Bool(!lock.is_expired(ctx.now_us)))
}

/// `LockExpire`: removes every expired lock → `Ids` of their names, sorted. (Acquire already
/// treats expired locks as free; this only keeps the table small.)
pub(crate) fn expire(conn: &Connection, ctx: &Ctx<'_>) -> rusqlite::Result<CommandResult> {
    // Expiry is computed in Rust with a saturating add, like `LockInfo::is_expired`, so a huge
    // ttl cannot overflow into SQLite's float arithmetic.
    let all: Vec<LockInfo> = conn
        .prepare_cached(&format!(
            "SELECT {} FROM locks ORDER BY name",
            LockInfo::COLUMNS
        ))?
        .query_map([], LockInfo::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut removed = Vec::new();
    let mut delete = conn.prepare_cached("DELETE FROM locks WHERE name = ?1")?;
    for lock in all.into_iter().filter(|lock| lock.is_expired(ctx.now_us)) {
        delete.execute([&lock.name])?;
        removed.push(lock.name);
    }
    Ok(CommandResult::Ids(removed))
}
