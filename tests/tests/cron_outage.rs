//! Cron through a PostgreSQL outage (issue 15, "Found broken 4"), against a private server
//! the test starts and stops itself ([`PgInstance`]): 300 due jobs, each writing one row
//! through the job's cursor; PostgreSQL stopped (`pg_ctl stop -m fast`) when some but not all
//! have run, while one job is inside the COMMIT of its run's record (a deferred trigger
//! makes it last), then started again. Every job runs exactly once (one row per job: the handler's
//! work commits with the job's bookkeeping, so no job is run again because its bookkeeping
//! was lost), and the jobs left for after the outage start within 5 s of PostgreSQL's return
//! (the workers reconnect and pass at once, a pass meeting a database still coming up is
//! retried within seconds, not at the next poll).
//!
//! Also the handler's own commit and rollback on the job's cursor (against the shared
//! server): a commit is a checkpoint whose work is never run again, a rollback undoes the
//! handler's work and keeps the job's lock and bookkeeping, a trigger the handler adds for
//! its own job runs it again, a handler past its time limit is rolled back and recorded.

use inphms_tests::pg::{self, TestDb};
use inphms_tests::pg_instance::PgInstance;
use inphms_tests::{wait_until, with_test_addons, TestDir};
use std::time::Duration;

const JOBS: usize = 300;

/// `--addons-path` with the test addons (`test_db`).
fn test_addons() -> String {
    format!("--addons-path={}", with_test_addons(&[]))
}
const DB: &str = "cron_outage";

#[test]
fn each_of_300_jobs_runs_exactly_once_through_a_postgres_restart() {
    let pg = PgInstance::start_new();
    let td = TestDir::new();
    let mut args = vec!["server".to_string(), "--stop-after-init".into()];
    args.extend(pg.server_args());
    args.push(test_addons());
    args.extend(["-d".into(), DB.into(), "-i".into(), "test_db".into()]);
    let out = td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    let sql = |q: &str| pg.psql(DB, q);

    let mut args = pg.server_args();
    args.push(test_addons());
    args.extend([
        "-d".into(),
        DB.into(),
        "--no-http".into(),
        "--max-cron-threads=3".into(),
    ]);
    let server = td.server(args).no_wait().start();
    // The first pass (after LISTEN) runs base's autovacuum, due since install.
    assert!(
        wait_until(Duration::from_secs(30), || sql(
            "SELECT last_outcome FROM ir_cron WHERE id = 1"
        ) == "done"),
        "{}",
        server.stderr()
    );

    // The COMMIT that records the run of job 'outage 100' takes 30 s (a deferred trigger on
    // its record sleeps in it) while this postmaster runs: the stop falls in that COMMIT,
    // whose outcome its worker cannot know. Were the handler's work committed apart from the
    // record, as before, the job would run again after the restart.
    sql(
        "CREATE TABLE outage_first_start AS SELECT pg_postmaster_start_time() AS t; \
         CREATE FUNCTION outage_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.cron_name = 'outage 100' AND NEW.last_outcome = 'done' \
             AND pg_postmaster_start_time() = (SELECT t FROM outage_first_start) \
           THEN PERFORM pg_sleep(30); END IF; RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER outage_slow_commit AFTER UPDATE ON ir_cron \
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION outage_slow_commit()",
    );
    sql(&format!(
        "INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         SELECT 'outage ' || n, 'test_db.write_row_slowly', 1, 'days', now() AT TIME ZONE 'UTC' - interval '1 hour' \
         FROM generate_series(1, {JOBS}) n"
    ));
    pg.psql(
        "postgres",
        &format!("SELECT pg_notify('cron_trigger', '{DB}')"),
    );
    let rows = || {
        pg.try_psql(
            DB,
            "SELECT count(*) FROM test_db_cron_log WHERE job_name LIKE 'outage %'",
        )
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
    };
    let committing = || {
        pg.try_psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}' AND wait_event = 'PgSleep'"),
        )
        .is_ok_and(|n| n == "1")
    };
    assert!(
        wait_until(Duration::from_secs(30), committing),
        "job 'outage 100' did not reach its COMMIT: {} of {JOBS} jobs ran\n{}",
        rows(),
        server.stderr()
    );

    // The outage, in the middle of the jobs and in that COMMIT.
    pg.stop_fast();
    let lost_commit = || {
        server.stderr().lines().any(|l| {
            l.contains("Job \"outage 100\" (")
                && l.contains("the connection was lost during COMMIT")
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), lost_commit),
        "{}",
        server.stderr()
    );
    assert!(
        server.wait_for_log(
            "cannot LISTEN on database postgres",
            Duration::from_secs(10)
        ),
        "the workers did not see the outage\n{}",
        server.stderr()
    );
    // Long enough for every worker's reconnection backoff to reach its longest wait.
    std::thread::sleep(Duration::from_secs(3));
    pg.start();
    // PostgreSQL's return: its postmaster's start, on the clock of the rows' timestamps.
    let back = pg.psql(
        "postgres",
        "SELECT (pg_postmaster_start_time() AT TIME ZONE 'UTC')::text",
    );
    let before = sql(&format!(
        "SELECT count(*) FROM test_db_cron_log WHERE job_name LIKE 'outage %' AND started < '{back}'"
    ));
    let before: usize = before.parse().expect("a count");
    assert!(
        before > 0 && before < JOBS,
        "the outage must fall among the jobs: {before} of {JOBS} had run before it"
    );

    // Once back, the host asks whether that COMMIT happened (it did not: the stop ended it).
    let resolved = || {
        server.stderr().lines().any(|l| {
            l.contains("Job \"outage 100\" (")
                && l.contains("the run whose COMMIT was lost did not commit")
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), resolved),
        "{}",
        server.stderr()
    );
    let done = || {
        sql("SELECT count(*) FROM ir_cron WHERE cron_name LIKE 'outage %' AND last_outcome = 'done'")
    };
    assert!(
        wait_until(Duration::from_secs(60), || done() == JOBS.to_string()),
        "{} of {JOBS} jobs done after the outage\n{}",
        done(),
        server.stderr()
    );

    // Exactly once: one row per job, none missing, none twice.
    assert_eq!(rows(), JOBS, "{}", server.stderr());
    assert_eq!(
        sql("SELECT count(*) FROM ir_cron c WHERE c.cron_name LIKE 'outage %' \
             AND (SELECT count(*) FROM test_db_cron_log l WHERE l.job_id = c.id) <> 1"),
        "0",
        "jobs run other than once:\n{}",
        sql("SELECT string_agg(job_id || 'x' || n, ' ') FROM (SELECT job_id, count(*) n FROM test_db_cron_log \
             GROUP BY job_id HAVING count(*) <> 1) d")
    );
    // Each job's bookkeeping is there: next call tomorrow, no failure left.
    assert_eq!(
        sql(
            "SELECT count(*) FROM ir_cron WHERE cron_name LIKE 'outage %' AND failure_count = 0 \
             AND nextcall > now() AT TIME ZONE 'UTC'"
        ),
        JOBS.to_string()
    );

    // The jobs left for after the outage started within 5 s of PostgreSQL's return.
    let first: f64 = sql(&format!(
        "SELECT extract(epoch FROM min(started) - '{back}'::timestamp) FROM test_db_cron_log \
         WHERE job_name LIKE 'outage %' AND started >= '{back}'"
    ))
    .parse()
    .expect("a delay");
    let last: f64 = sql(&format!(
        "SELECT extract(epoch FROM max(started) - '{back}'::timestamp) FROM test_db_cron_log \
         WHERE job_name LIKE 'outage %'"
    ))
    .parse()
    .expect("a delay");
    for line in server.stderr().lines() {
        if line.contains("COMMIT was lost") || line.contains("lost during COMMIT") {
            eprintln!("{line}");
        }
    }
    eprintln!(
        "{before} of {JOBS} jobs ran before the outage; after PostgreSQL's return the first \
         of the others started in {first:.3}s, the last in {last:.3}s"
    );
    assert!(
        first < 5.0,
        "the first job after the outage started {first:.3}s after PostgreSQL's return\n{}",
        server.stderr()
    );
}

#[test]
fn a_handler_commit_is_a_checkpoint_and_its_rollback_keeps_the_job() {
    let td = TestDir::new();
    let db = TestDb::new("checkpoint");
    let mut args = vec!["server".to_string(), "--stop-after-init".into()];
    args.extend(pg::server_args());
    args.push(test_addons());
    args.extend(["-d".into(), db.name.clone(), "-i".into(), "test_db".into()]);
    let out = td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    let add = |handler: &str| -> i64 {
        db.sql(&format!(
            "INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
             VALUES ('{handler}', '{handler}', 1, 'days', now() AT TIME ZONE 'UTC' - interval '1 hour') RETURNING id"
        ))
        .parse()
        .expect("an id")
    };
    let checkpoint = add("test_db.commit_then_fail");
    let rollback = add("test_db.rollback_then_write");
    let retrigger = add("test_db.retrigger_once");
    let too_long = add("test_db.sleep_past_limit");
    let mut args = pg::server_args();
    args.push(test_addons());
    args.extend([
        "-d".into(),
        db.name.clone(),
        "--no-http".into(),
        "--max-cron-threads=2".into(),
        "--limit-time-real-cron=2".into(),
    ]);
    let server = td.server(args).no_wait().start();
    let outcome = |id: i64| {
        db.sql(&format!(
            "SELECT coalesce(last_outcome, '') || '|' || failure_count || '|' || (nextcall > now() AT TIME ZONE 'UTC') \
             FROM ir_cron WHERE id = {id}"
        ))
    };
    assert!(
        wait_until(Duration::from_secs(30), || outcome(checkpoint)
            .starts_with("failed")
            && outcome(rollback).starts_with("done")),
        "{} / {}\n{}",
        outcome(checkpoint),
        outcome(rollback),
        server.stderr()
    );
    let rows = |id: i64| {
        db.sql(&format!(
            "SELECT coalesce(string_agg(job_name, ',' ORDER BY id), '') FROM test_db_cron_log WHERE job_id = {id}"
        ))
    };
    // The committed part stays, the part after it is rolled back with the failure, which
    // is recorded; the job is not due any more (its next call moved on at the checkpoint),
    // so no pass runs it again.
    assert_eq!(rows(checkpoint), "checkpointed");
    assert_eq!(
        outcome(checkpoint),
        "failed: test_db.commit_then_fail failed on purpose|1|true"
    );
    // The rollback undid the first row only; the run is recorded as done.
    assert_eq!(rows(rollback), "kept");
    assert_eq!(outcome(rollback), "done|0|true");
    // A trigger the handler adds for its own job is not consumed by its run: it runs again.
    let triggers = || {
        db.sql(&format!(
            "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = {retrigger}"
        ))
    };
    assert!(
        wait_until(Duration::from_secs(10), || rows(retrigger)
            == "test_db.retrigger_once,test_db.retrigger_once"
            && triggers() == "0"),
        "{} / {} trigger(s)\n{}",
        rows(retrigger),
        triggers(),
        server.stderr()
    );
    assert_eq!(outcome(retrigger), "done|0|true");
    // A handler past its time limit: its statement cancelled, its work rolled back to the
    // job's savepoint, its failure recorded in the same transaction.
    assert!(
        wait_until(Duration::from_secs(15), || outcome(too_long)
            .starts_with("failed")),
        "{}\n{}",
        outcome(too_long),
        server.stderr()
    );
    assert_eq!(rows(too_long), "");
    assert!(
        outcome(too_long).ends_with("|1|true"),
        "{}",
        outcome(too_long)
    );
}
