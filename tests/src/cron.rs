//! What the cron tests share: the options for the test PostgreSQL and the test addons, a
//! database with `test_db` installed, a cron-only server waited for until its workers
//! started, a job row, a manual run (`inphms-host cron --run`) and the NOTIFY that wakes
//! the workers.

use crate::pg::{self, TestDb};
use crate::{with_test_addons, Output, Server, TestDir};
use std::time::Duration;

/// The options for the test PostgreSQL and the test addons (`test_db`).
pub fn server_args() -> Vec<String> {
    let mut args = pg::server_args();
    args.push(format!("--addons-path={}", with_test_addons(&[])));
    args
}

/// Installs `test_db` (and `base`) in `db`: `server --stop-after-init -i test_db`.
pub fn install_test_db(td: &TestDir, db: &TestDb) {
    let mut args: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    args.extend(server_args());
    args.extend(["-d".into(), db.name.clone(), "-i".into(), "test_db".into()]);
    let out = td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
}

/// A server on `db` with `workers` cron workers, no HTTP, and the `extra` options, once it
/// logged that its workers started.
pub fn cron_server(td: &TestDir, db: &TestDb, workers: u32, extra: &[&str]) -> Server {
    let mut args = server_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "-d".into(),
        db.name.clone(),
        "--no-http".into(),
        format!("--max-cron-threads={workers}"),
    ]);
    let server = td.server(args).no_wait().start();
    assert!(
        server.wait_for_log("cron worker(s) started", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    server
}

/// Adds the job `name` running `handler` every `interval` (`"N unit"`, as `"1 days"`), due
/// an hour ago when `due_now`, else in a day; returns its id.
pub fn add_job(db: &TestDb, name: &str, handler: &str, interval: &str, due_now: bool) -> i64 {
    let (n, unit) = interval.split_once(' ').expect("an interval as N unit");
    let nextcall = if due_now {
        "now() AT TIME ZONE 'UTC' - interval '1 hour'"
    } else {
        "now() AT TIME ZONE 'UTC' + interval '1 day'"
    };
    db.sql(&format!(
        "INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         VALUES ('{name}', '{handler}', {n}, '{unit}', {nextcall}) RETURNING id"
    ))
    .parse()
    .expect("an id")
}

/// `inphms-host cron -d DB --run ID`: a manual run of the job `id`.
pub fn run_manually(td: &TestDir, db: &TestDb, id: i64) -> Output {
    td.cmd(["cron", "-d", &db.name, "--run", &id.to_string()])
        .args(server_args())
        .timeout(Duration::from_secs(60))
        .run()
}

/// Wakes the cron workers of `db`: a NOTIFY on the `postgres` database, as Odoo's
/// `_notifydb`.
pub fn notify(db: &TestDb) {
    pg::psql(
        "postgres",
        &format!("SELECT pg_notify('cron_trigger', '{}')", db.name),
    );
}
