//! Shared helpers for the `state_*` tests: a database with a test clock, and command builders.
#![allow(dead_code)]

use rusqlite::Connection;
use serde_json::Value;
use swimraft_core::state::{
    apply_local, queries, Command, CommandResult, Envelope, NewWorkItem, RejectKind, WorkItem,
};
use swimraft_core::store;
use tempfile::TempDir;

/// A fixed epoch for tests (2023-11-14T22:13:20Z) so timestamps are exact in f64.
pub const T0: i64 = 1_700_000_000_000_000;
/// One second in µs.
pub const SEC: i64 = 1_000_000;

/// A state database plus the clock stamped on the next command.
pub struct Db {
    pub conn: Connection,
    pub now_us: i64,
    pub dir: Option<TempDir>,
}

impl Db {
    /// In-memory database.
    pub fn memory() -> Db {
        Db {
            conn: store::open_in_memory().expect("open in-memory db"),
            now_us: T0,
            dir: None,
        }
    }

    /// A real file in a temporary directory.
    pub fn file() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = store::open_state_db(&dir.path().join("state.db")).expect("open file db");
        Db {
            conn,
            now_us: T0,
            dir: Some(dir),
        }
    }

    /// Applies `command` at the current test clock without a session.
    pub fn run(&mut self, command: Command) -> CommandResult {
        let env = Envelope::new(self.now_us, command);
        self.apply(&env)
    }

    /// Applies an envelope as the next local entry.
    pub fn apply(&mut self, env: &Envelope) -> CommandResult {
        apply_local(&mut self.conn, env).expect("apply").1
    }

    /// Moves the test clock.
    pub fn advance(&mut self, us: i64) {
        self.now_us += us;
    }

    /// Current test clock in float seconds.
    pub fn now_s(&self) -> f64 {
        self.now_us as f64 / 1e6
    }

    /// Adds an item with the library defaults; panics unless it is accepted.
    pub fn add(&mut self, id: &str) {
        self.add_item(item(id));
    }

    /// Adds `item`; panics unless it is accepted.
    pub fn add_item(&mut self, item: NewWorkItem) {
        let id = item.work_id.clone();
        assert_eq!(
            self.run(Command::WorkAdd { item, force: false }),
            CommandResult::WorkId(id)
        );
    }

    /// Reads an item that must exist.
    pub fn item(&self, id: &str) -> WorkItem {
        queries::work_get(&self.conn, id)
            .expect("work_get")
            .unwrap_or_else(|| panic!("item {id} missing"))
    }

    /// Whether an item exists.
    pub fn has(&self, id: &str) -> bool {
        queries::work_get(&self.conn, id)
            .expect("work_get")
            .is_some()
    }
}

/// A `selfplay` item with library defaults.
pub fn item(id: &str) -> NewWorkItem {
    NewWorkItem::new(id, "selfplay")
}

pub fn claim(id: &str, node: &str) -> Command {
    Command::WorkClaim {
        work_id: id.into(),
        node_id: node.into(),
    }
}

pub fn claim_next(node: &str, caps: Option<&[&str]>) -> Command {
    Command::WorkClaimNext {
        node_id: node.into(),
        capabilities: caps.map(|c| c.iter().map(|s| s.to_string()).collect()),
    }
}

pub fn start(id: &str, node: Option<&str>) -> Command {
    Command::WorkStart {
        work_id: id.into(),
        node_id: node.map(Into::into),
    }
}

pub fn complete(id: &str, result: Option<Value>, node: Option<&str>) -> Command {
    Command::WorkComplete {
        work_id: id.into(),
        result,
        node_id: node.map(Into::into),
    }
}

pub fn fail(id: &str, error: &str, node: Option<&str>) -> Command {
    Command::WorkFail {
        work_id: id.into(),
        error: error.into(),
        node_id: node.map(Into::into),
    }
}

pub fn release(id: &str, node: Option<&str>) -> Command {
    Command::WorkRelease {
        work_id: id.into(),
        node_id: node.map(Into::into),
    }
}

pub fn cancel(id: &str) -> Command {
    Command::WorkCancel { work_id: id.into() }
}

pub fn acquire(name: &str, holder: &str, ttl_us: i64) -> Command {
    Command::LockAcquire {
        name: name.into(),
        holder: holder.into(),
        ttl_us,
    }
}

pub fn release_lock(name: &str, holder: &str) -> Command {
    Command::LockRelease {
        name: name.into(),
        holder: holder.into(),
    }
}

/// Asserts `result` is a rejection of `kind` and returns its message.
#[track_caller]
pub fn assert_rejected(result: &CommandResult, kind: RejectKind) -> String {
    match result {
        CommandResult::Rejected { kind: k, message } if *k == kind => message.clone(),
        other => panic!("expected Rejected({kind:?}), got {other:?}"),
    }
}

pub const TRUE: CommandResult = CommandResult::Bool(true);
pub const FALSE: CommandResult = CommandResult::Bool(false);

/// The trigger-kept pending count and a recount of the pending rows: `(kept, counted)`.
pub fn pending_counts(conn: &Connection) -> (i64, i64) {
    conn.query_row(
        "SELECT (SELECT n FROM work_pending_count),
                (SELECT COUNT(*) FROM work_items WHERE status = 'pending')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("read the pending counts")
}
