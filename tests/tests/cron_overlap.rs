//! A cron job's run holds its job across its handler's commits (issue 15, review): a job
//! whose handler checkpoints in steps and triggers itself again (more to do; the trigger's
//! NOTIFY wakes the other worker between two of its commits) never has two runs at once,
//! neither by the other worker nor by a manual run (`inphms-host cron --run`, which says
//! "already running"); and a run whose COMMIT is refused by the server (a deferred
//! constraint) is recorded as failed, once, instead of being run again and again without a
//! trace. Against the shared PostgreSQL, with the real host binary and the `test_db` addon.

use inphms_tests::cron::{add_job, cron_server, install_test_db, run_manually};
use inphms_tests::pg::TestDb;
use inphms_tests::{wait_until, TestDir};
use std::time::Duration;

fn outcome(db: &TestDb, id: i64) -> String {
    db.sql(&format!(
        "SELECT coalesce(last_outcome, '') || '|' || failure_count || '|' || (nextcall > now() AT TIME ZONE 'UTC') \
         FROM ir_cron WHERE id = {id}"
    ))
}

#[test]
fn runs_of_a_job_never_overlap_across_its_handlers_commits() {
    let td = TestDir::new();
    let db = TestDb::new("overlap");
    install_test_db(&td, &db);
    let id = add_job(
        &db,
        "test_db.checkpoint_steps",
        "test_db.checkpoint_steps",
        "1 minutes",
        true,
    );
    let server = cron_server(&td, &db, 2, &[]);
    let steps = || {
        db.sql(&format!(
            "SELECT coalesce(string_agg(run || '.' || step, ',' ORDER BY id), '') FROM test_db_run_step WHERE job_id = {id}"
        ))
    };
    // The first run committed its second step and waits at its gate, holding no row lock;
    // its trigger (more to do) woke the other worker at its first commit.
    assert!(
        wait_until(Duration::from_secs(30), || steps().ends_with(".2")),
        "{}\n{}",
        steps(),
        server.stderr()
    );
    // A manual run meanwhile refuses, instead of running beside it.
    let out = run_manually(&td, &db, id);
    assert_eq!(out.code, Some(1), "{out}\nsteps: {}", steps());
    assert!(out.stderr.contains("already running"), "{out}");
    db.sql(&format!("INSERT INTO test_db_gate VALUES ({id})"));
    // 3 runs (the first and the 2 it and its successor triggered), one after the other.
    let runs = || {
        db.sql(&format!(
            "SELECT count(DISTINCT run) FROM test_db_run_step WHERE job_id = {id}"
        ))
    };
    assert!(
        wait_until(Duration::from_secs(30), || runs() == "3"
            && steps().matches(".3").count() == 3
            && db.sql(&format!(
                "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = {id}"
            )) == "0"
            && outcome(&db, id).starts_with("done")),
        "{} run(s): {}; {}\n{}",
        runs(),
        steps(),
        outcome(&db, id),
        server.stderr()
    );
    // Each run's steps 1, 2, 3, in a block: no step of one run between two of another's,
    // no run cut short (by a serialization failure at its job's re-lock).
    let all = steps();
    let runs_in_order: Vec<(&str, &str)> = all
        .split(',')
        .map(|s| s.split_once('.').expect("run.step"))
        .collect();
    assert_eq!(runs_in_order.len(), 9, "{all}");
    for block in runs_in_order.chunks(3) {
        assert!(
            block.iter().all(|(run, _)| *run == block[0].0),
            "interleaved runs: {all}"
        );
        let order: Vec<&str> = block.iter().map(|(_, step)| *step).collect();
        assert_eq!(order, ["1", "2", "3"], "{all}");
    }
    assert_eq!(outcome(&db, id), "done|0|true");
    assert!(
        !server
            .stderr()
            .contains(&format!("server action #{id} failed")),
        "a run failed:\n{}",
        server.stderr()
    );
}

#[test]
fn a_run_whose_commit_is_refused_is_recorded_as_failed_once() {
    let td = TestDir::new();
    let db = TestDb::new("refused");
    install_test_db(&td, &db);
    let id = add_job(
        &db,
        "test_db.violate_deferred",
        "test_db.violate_deferred",
        "1 days",
        true,
    );
    let server = cron_server(&td, &db, 1, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || outcome(&db, id)
            .starts_with("failed")),
        "{}\n{}",
        outcome(&db, id),
        server.stderr()
    );
    let recorded = outcome(&db, id);
    assert!(
        recorded.contains("could not commit") && recorded.contains("23503"),
        "{recorded}"
    );
    // Counted once, and no longer due: its next call moved on with the failure.
    assert!(recorded.ends_with("|1|true"), "{recorded}");
    // The run's work was rolled back with it.
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM test_db_cron_log WHERE job_id = {id}"
        )),
        "0"
    );
    assert_eq!(db.sql("SELECT count(*) FROM test_db_deferred"), "0");
    // A manual run is recorded the same way (its failure, nothing else).
    let out = run_manually(&td, &db, id);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("could not commit"), "{out}");
    assert_eq!(
        db.sql(&format!(
            "SELECT failure_count FROM ir_cron WHERE id = {id}"
        )),
        "1"
    );
}
