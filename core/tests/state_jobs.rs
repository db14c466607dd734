//! Job assignments: assign/reassign, start, complete, fail, per-node lists and stats.

mod state_support;

use serde_json::{json, Value};
use state_support::*;
use swimraft_core::state::{queries, Command, CommandResult, JobStatus, RejectKind};

fn assign(job: &str, node: &str, data: Option<Value>) -> Command {
    Command::JobAssign {
        job_id: job.into(),
        node_id: node.into(),
        data,
    }
}
fn start(job: &str) -> Command {
    Command::JobStart { job_id: job.into() }
}
fn complete(job: &str, result: Option<Value>) -> Command {
    Command::JobComplete {
        job_id: job.into(),
        result,
    }
}
fn fail(job: &str, error: &str) -> Command {
    Command::JobFail {
        job_id: job.into(),
        error: error.into(),
    }
}

#[test]
fn lifecycle() {
    let mut db = Db::memory();
    assert_eq!(db.run(assign("j1", "n1", Some(json!({"k": 1})))), TRUE);
    let job = queries::job_get(&db.conn, "j1").unwrap().unwrap();
    assert_eq!(
        (job.node_id.as_str(), job.status, job.data.clone()),
        ("n1", JobStatus::Assigned, json!({"k": 1}))
    );
    assert_eq!(job.assigned_at, db.now_s());
    assert_eq!(db.run(complete("j1", None)), TRUE, "assigned can complete");
    assert_eq!(db.run(start("j1")), FALSE, "completed cannot start");

    db.run(assign("j2", "n1", None));
    db.advance(SEC);
    assert_eq!(db.run(start("j2")), TRUE);
    assert_eq!(db.run(start("j2")), FALSE);
    let job = queries::job_get(&db.conn, "j2").unwrap().unwrap();
    assert_eq!(
        (job.status, job.started_at),
        (JobStatus::Running, db.now_s())
    );
    assert_eq!(job.data, Value::Null);
    assert_eq!(db.run(complete("j2", Some(json!([1, 2])))), TRUE);
    let job = queries::job_get(&db.conn, "j2").unwrap().unwrap();
    assert_eq!(
        (job.status, job.result),
        (JobStatus::Completed, json!([1, 2]))
    );
    assert_eq!(db.run(fail("j2", "late")), FALSE);

    db.run(assign("j3", "n2", None));
    assert_eq!(db.run(fail("j3", "oom")), TRUE);
    let job = queries::job_get(&db.conn, "j3").unwrap().unwrap();
    assert_eq!((job.status, job.error.as_str()), (JobStatus::Failed, "oom"));
    assert_eq!(job.completed_at, db.now_s());

    for cmd in [start("nope"), complete("nope", None), fail("nope", "x")] {
        assert_eq!(db.run(cmd), FALSE);
    }
    assert!(queries::job_get(&db.conn, "nope").unwrap().is_none());
}

#[test]
fn reassign_moves_the_job_and_keeps_data_unless_given() {
    let mut db = Db::memory();
    db.run(assign("j", "n1", Some(json!({"payload": true}))));
    db.run(start("j"));
    db.run(fail("j", "node died"));
    db.advance(SEC);
    assert_eq!(db.run(assign("j", "n2", None)), TRUE);
    let job = queries::job_get(&db.conn, "j").unwrap().unwrap();
    assert_eq!(job.node_id, "n2");
    assert_eq!(job.status, JobStatus::Assigned);
    assert_eq!(job.data, json!({"payload": true}));
    assert_eq!((job.error.as_str(), job.result), ("", Value::Null));
    assert_eq!((job.started_at, job.completed_at), (0.0, 0.0));
    assert_eq!(job.assigned_at, db.now_s());
    db.run(assign("j", "n3", Some(json!(7))));
    assert_eq!(
        queries::job_get(&db.conn, "j").unwrap().unwrap().data,
        json!(7)
    );
    assert_rejected(&db.run(assign("", "n", None)), RejectKind::InvalidArgument);
    assert_rejected(&db.run(assign("j", "", None)), RejectKind::InvalidArgument);
}

#[test]
fn per_node_lists_and_stats() {
    let mut db = Db::memory();
    db.run(assign("b", "n1", None));
    db.run(assign("a", "n1", None));
    db.run(assign("c", "n1", None));
    db.run(assign("d", "n2", None));
    db.run(start("a"));
    db.run(complete("c", None));
    let ids = |jobs: Vec<swimraft_core::state::Job>| -> Vec<String> {
        jobs.into_iter().map(|j| j.job_id).collect()
    };
    assert_eq!(
        ids(queries::jobs_for_node(&db.conn, "n1", true).unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        ids(queries::jobs_for_node(&db.conn, "n1", false).unwrap()),
        ["a", "b", "c"]
    );
    let stats = queries::job_stats(&db.conn).unwrap();
    assert_eq!(
        (
            stats.all.assigned,
            stats.all.running,
            stats.all.completed,
            stats.all.failed,
            stats.all.total
        ),
        (2, 1, 1, 0, 4)
    );
    assert_eq!(stats.by_node["n1"].total, 3);
    assert_eq!(stats.by_node["n2"].assigned, 1);
    let v = serde_json::to_value(&stats).unwrap();
    assert_eq!(v["total"], json!(4), "overall counts are flattened");
    assert!(matches!(db.run(Command::Noop), CommandResult::Unit));
}
