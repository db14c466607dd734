//! Commands and their results: plain data that goes through the Raft log.
//!
//! A command is proposed wrapped in an [`Envelope`] carrying the leader's clock and the client's
//! session; applying it yields a [`CommandResult`]. Both are serde types with the default
//! (externally tagged, snake_case) representation. They contain `serde_json::Value`s, so encode
//! them with a self-describing format (JSON); postcard cannot decode a `Value`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::WorkItem;
use crate::error::{Error, ErrorKind};

/// Library default of [`NewWorkItem::work_type`].
pub const DEFAULT_WORK_TYPE: &str = "selfplay";
/// Library default of [`NewWorkItem::priority`].
pub const DEFAULT_PRIORITY: i64 = 50;
/// Library default of [`NewWorkItem::timeout_seconds`] (the HTTP `/work/add` default, 5400, is
/// the HTTP layer's).
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 3600.0;
/// Library default of [`NewWorkItem::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;

/// One log entry's payload: a command plus the context that makes applying it deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The proposing client's session id (node id + a random number per process start), or
    /// empty for no session (no exactly-once guarantee).
    #[serde(default)]
    pub client_id: String,
    /// The client's sequence number for this write; a repeat returns the cached result.
    #[serde(default)]
    pub seq: u64,
    /// Every write of this client with a smaller `seq` has been answered: the state machine
    /// may forget those results, and refuses such a `seq` from then on. With several writes in
    /// flight this is the smallest unanswered `seq`, so writes may apply in any order.
    #[serde(default)]
    pub first_unacked: u64,
    /// The leader's wall clock in microseconds, stamped just before proposing. The state
    /// machine never reads a clock; it uses `max(last now, now_us)`.
    pub now_us: i64,
    /// What to do.
    pub command: Command,
}

impl Envelope {
    /// A command without a client session.
    pub fn new(now_us: i64, command: Command) -> Envelope {
        Envelope {
            client_id: String::new(),
            seq: 0,
            first_unacked: 0,
            now_us,
            command,
        }
    }

    /// A command in the session `client_id` with sequence number `seq`, the only write in
    /// flight (every smaller `seq` is answered).
    pub fn with_session(
        client_id: impl Into<String>,
        seq: u64,
        now_us: i64,
        command: Command,
    ) -> Envelope {
        Envelope {
            client_id: client_id.into(),
            seq,
            first_unacked: seq,
            now_us,
            command,
        }
    }
}

/// A work item to add. Every field is chosen by the caller before proposing (ids included);
/// missing JSON fields take the library defaults, unknown ones are refused (a misspelt
/// `priorty` must not quietly become the default priority).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkItem {
    /// Unique, non-empty id.
    pub work_id: String,
    /// Non-empty kind of work.
    #[serde(default = "default_work_type")]
    pub work_type: String,
    /// 0–100, higher first.
    #[serde(default = "default_priority")]
    pub priority: i64,
    /// A JSON object (`null` is stored as `{}`).
    #[serde(default = "default_config")]
    pub config: Value,
    /// Seconds a claim may last before it times out; finite and > 0.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: f64,
    /// Claims allowed; ≥ 1.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    /// Ids that must complete first.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

impl NewWorkItem {
    /// An item with the library defaults: priority 50, config `{}`, timeout 3600 s,
    /// 3 attempts, no dependencies.
    pub fn new(work_id: impl Into<String>, work_type: impl Into<String>) -> NewWorkItem {
        NewWorkItem {
            work_id: work_id.into(),
            work_type: work_type.into(),
            priority: DEFAULT_PRIORITY,
            config: default_config(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            depends_on: Vec::new(),
        }
    }
}

fn default_work_type() -> String {
    DEFAULT_WORK_TYPE.to_string()
}
fn default_config() -> Value {
    Value::Object(serde_json::Map::new())
}
fn default_priority() -> i64 {
    DEFAULT_PRIORITY
}
fn default_timeout_seconds() -> f64 {
    DEFAULT_TIMEOUT_SECONDS
}
fn default_max_attempts() -> i64 {
    DEFAULT_MAX_ATTEMPTS
}

/// Every write the state machine understands. The rules are documented on the functions of
/// [`crate::state::work_queue`], [`crate::state::jobs`], [`crate::state::locks`] and
/// [`crate::state::kv`]. Unknown fields are refused, as for [`NewWorkItem`]: an entry written
/// by a newer version with fields this one does not know fails to decode instead of being
/// applied without them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Add one work item → `WorkId` or `Rejected` (InvalidArgument, Backpressure).
    WorkAdd {
        /// The item.
        item: NewWorkItem,
        /// Bypass backpressure.
        force: bool,
    },
    /// Add 1–100 items atomically → `WorkIds` or `Rejected` (nothing added).
    WorkAddBatch {
        /// The items, in order.
        items: Vec<NewWorkItem>,
        /// Bypass backpressure.
        force: bool,
    },
    /// Claim one item → `Bool`.
    WorkClaim {
        /// The item.
        work_id: String,
        /// The claiming node.
        node_id: String,
    },
    /// Claim the first claimable item → `Item(Some(row after claim))` or `Item(None)`.
    WorkClaimNext {
        /// The claiming node.
        node_id: String,
        /// Work types the node can run; `None` or empty = any.
        capabilities: Option<Vec<String>>,
    },
    /// claimed → running → `Bool`.
    WorkStart {
        /// The item.
        work_id: String,
        /// When given, must equal `claimed_by`.
        node_id: Option<String>,
    },
    /// claimed|running → completed → `Bool`.
    WorkComplete {
        /// The item.
        work_id: String,
        /// The worker's result (`None` stores `{}`).
        result: Option<Value>,
        /// When given, must equal `claimed_by`.
        node_id: Option<String>,
    },
    /// claimed|running → pending (attempts left) or failed → `Bool`.
    WorkFail {
        /// The item.
        work_id: String,
        /// Why it failed.
        error: String,
        /// When given, must equal `claimed_by`.
        node_id: Option<String>,
    },
    /// claimed|running → pending, attempts − 1 → `Bool`.
    WorkRelease {
        /// The item.
        work_id: String,
        /// When given, must equal `claimed_by`.
        node_id: Option<String>,
    },
    /// Any non-terminal → cancelled → `Bool`.
    WorkCancel {
        /// The item.
        work_id: String,
    },
    /// Time out overdue claims → `Ids` of the affected items.
    WorkCheckTimeouts,
    /// Delete terminal items older than the retention → `Ids` of the deleted items.
    WorkCleanup {
        /// Retention in microseconds (the caller's default is 24 h).
        retention_us: i64,
    },
    /// Create or reassign a job → `Bool(true)`.
    JobAssign {
        /// The job.
        job_id: String,
        /// The node it goes to.
        node_id: String,
        /// Its payload (`None` keeps the payload of a reassigned job).
        data: Option<Value>,
    },
    /// assigned → running → `Bool`.
    JobStart {
        /// The job.
        job_id: String,
    },
    /// assigned|running → completed → `Bool`.
    JobComplete {
        /// The job.
        job_id: String,
        /// The node's result.
        result: Option<Value>,
    },
    /// assigned|running → failed → `Bool`.
    JobFail {
        /// The job.
        job_id: String,
        /// Why it failed.
        error: String,
    },
    /// Acquire or renew a lock → `Token(Some(fencing token))` or `Token(None)` when held.
    LockAcquire {
        /// The lock.
        name: String,
        /// Who wants it.
        holder: String,
        /// Lifetime after this grant or renewal, µs, > 0.
        ttl_us: i64,
    },
    /// Release a lock held by `holder` → `Bool`.
    LockRelease {
        /// The lock.
        name: String,
        /// Who releases it.
        holder: String,
    },
    /// Remove expired locks → `Ids` (names) of the removed locks.
    LockExpire,
    /// Set a key → `Unit`.
    KvSet {
        /// The key.
        key: String,
        /// The value.
        value: Value,
    },
    /// Delete a key → `Bool` (whether it existed).
    KvDelete {
        /// The key.
        key: String,
    },
    /// Compare and set → `Bool` (whether the expectation held and the write happened).
    KvCompareAndSet {
        /// The key.
        key: String,
        /// The current value expected; `None` = must be absent.
        expected: Option<Value>,
        /// The value to write; `None` = delete.
        new: Option<Value>,
    },
    /// Does nothing → `Unit` (a leader's first entry, tests).
    Noop,
}

impl Command {
    /// A short stable name for logs and metrics (`work_add`, `lock_acquire`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Command::WorkAdd { .. } => "work_add",
            Command::WorkAddBatch { .. } => "work_add_batch",
            Command::WorkClaim { .. } => "work_claim",
            Command::WorkClaimNext { .. } => "work_claim_next",
            Command::WorkStart { .. } => "work_start",
            Command::WorkComplete { .. } => "work_complete",
            Command::WorkFail { .. } => "work_fail",
            Command::WorkRelease { .. } => "work_release",
            Command::WorkCancel { .. } => "work_cancel",
            Command::WorkCheckTimeouts => "work_check_timeouts",
            Command::WorkCleanup { .. } => "work_cleanup",
            Command::JobAssign { .. } => "job_assign",
            Command::JobStart { .. } => "job_start",
            Command::JobComplete { .. } => "job_complete",
            Command::JobFail { .. } => "job_fail",
            Command::LockAcquire { .. } => "lock_acquire",
            Command::LockRelease { .. } => "lock_release",
            Command::LockExpire => "lock_expire",
            Command::KvSet { .. } => "kv_set",
            Command::KvDelete { .. } => "kv_delete",
            Command::KvCompareAndSet { .. } => "kv_compare_and_set",
            Command::Noop => "noop",
        }
    }
}

/// Why a command was refused. A refusal is a deterministic, replicated outcome (every replica
/// refuses the same entry), not a failure to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// An argument is out of range or malformed, a work id is a duplicate, or a session
    /// sequence number is stale.
    InvalidArgument,
    /// The work queue refuses new items until it drains.
    Backpressure,
    /// The named item does not exist (reserved: the work API answers `Bool(false)` instead, as
    /// the orchestrator expects).
    NotFound,
    /// A lock is held by another holder (reserved: `LockAcquire` answers `Token(None)`).
    LockHeld,
}

impl RejectKind {
    /// The engine error kind this refusal maps to.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            RejectKind::InvalidArgument => ErrorKind::InvalidArgument,
            RejectKind::Backpressure => ErrorKind::Backpressure,
            RejectKind::NotFound => ErrorKind::NotFound,
            RejectKind::LockHeld => ErrorKind::LockHeld,
        }
    }
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandResult {
    /// Done, nothing to report.
    Unit,
    /// Whether the operation took effect (`false` also for an unknown id).
    Bool(bool),
    /// The id of the added work item.
    WorkId(String),
    /// The ids of a batch, in the batch's order.
    WorkIds(Vec<String>),
    /// The claimed item, or `None` when nothing was claimable (boxed: a row is large).
    Item(Option<Box<WorkItem>>),
    /// Ids affected by a sweep (timeouts, cleanup, expired locks), sorted.
    Ids(Vec<String>),
    /// A lock's fencing token, or `None` while another holder has it.
    Token(Option<u64>),
    /// Refused; nothing changed except bookkeeping (clock, index, session, backpressure flag).
    Rejected {
        /// Why.
        kind: RejectKind,
        /// What, for humans.
        message: String,
    },
}

impl CommandResult {
    /// A refusal.
    pub fn rejected(kind: RejectKind, message: impl Into<String>) -> CommandResult {
        CommandResult::Rejected {
            kind,
            message: message.into(),
        }
    }

    /// The refusal as an engine [`Error`], or `None` when the command was not refused.
    pub fn rejection(&self) -> Option<Error> {
        match self {
            CommandResult::Rejected { kind, message } => {
                Some(Error::new(kind.error_kind(), message.clone()))
            }
            _ => None,
        }
    }
}
