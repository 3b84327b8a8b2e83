//! Item 9: cron, on a PostgreSQL database of the suite's own with `test_db` installed.
//!
//! - **Measures**: the latency from a trigger's NOTIFY to its job's start (median and p99 of
//!   50 triggers sent one at a time), and jobs per second for 1000 due jobs and 2 workers.
//! - **Baseline**: none.
//! - **Target**: none (measured).

use crate::model::{Options, Row};
use crate::pg;
use crate::servers::{install_test_db, Env, Kind, Server};
use crate::stats::{max, median, percentile};
use std::time::{Duration, Instant};

/// Item 9: cron. A database of the suite's own, with `test_db` installed (its cron handler
/// `test_db.write_row` inserts a row whose `started` is `clock_timestamp()`: the moment the
/// handler runs, in the database's clock); a host with `--max-cron-threads 2` whose workers
/// LISTEN on that database (`--cron-db`), so that a trigger row and its NOTIFY commit
/// together.
///
/// - Latency: 50 jobs (20 with `--quick`) that are not due, each triggered in turn by a
///   transaction that inserts its `ir_cron_trigger` row, records `clock_timestamp()` and
///   sends `pg_notify('cron_trigger', db)`; the latency is the handler's `started` minus
///   that time. The next trigger waits until the job ran.
/// - Throughput: 1000 jobs due an hour ago inserted in one transaction with one NOTIFY;
///   jobs per second from the NOTIFY to the last job's `last_end`.
pub fn item9_cron(env: &Env, opts: &Options) -> Result<Vec<Row>, String> {
    let triggers = if opts.quick { 20 } else { 50 };
    const JOBS: usize = 1000;
    let db = pg::database("cron")?;
    let dir = env.scratch("cron")?;
    let addons_arg = install_test_db(env, &dir, &db.name)?.display().to_string();
    db.try_sql("CREATE TABLE bench_notify (job_id integer PRIMARY KEY, sent timestamp NOT NULL)")?;
    db.try_sql(&format!(
        "INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         SELECT 'bench notify ' || n, 'test_db.write_row', 1, 'days', now() AT TIME ZONE 'UTC' + interval '1 day' \
         FROM generate_series(1, {triggers}) n"
    ))?;
    let mut args = pg::server_args();
    args.extend(
        [
            "--addons-path",
            &addons_arg,
            "-d",
            &db.name,
            "--max-cron-threads",
            "2",
            "--cron-db",
            &db.name,
        ]
        .map(String::from),
    );
    let server = Server::start_with(env, &Kind::HOST, &dir, &args)?;
    // The first pass of each worker (after its LISTEN) runs base's autovacuum, due since
    // the install; the measures start after it.
    server
        .wait_for_log(Duration::from_secs(30), |l| {
            l.contains("cron worker(s) started")
                && l.contains("Auto-vacuum internal data\" (1) done")
        })
        .ok_or_else(|| {
            format!(
                "the cron workers did not make their first pass:\n{}",
                server.log_tail()
            )
        })?;
    std::thread::sleep(Duration::from_millis(500));
    let ids: Vec<i64> = db
        .try_sql("SELECT id FROM ir_cron WHERE cron_name LIKE 'bench notify %' ORDER BY id")?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let wait_for =
        |sql: &str, want: &str, timeout: Duration, every: Duration| -> Result<(), String> {
            let started = Instant::now();
            loop {
                let got = db.try_sql(sql)?;
                if got == want {
                    return Ok(());
                }
                if started.elapsed() > timeout {
                    return Err(format!(
                        "`{sql}` gave {got}, not {want}, within {timeout:?}:\n{}",
                        server.log_tail()
                    ));
                }
                std::thread::sleep(every);
            }
        };
    for id in &ids {
        db.try_sql(&format!(
            "BEGIN; INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ({id}, now() AT TIME ZONE 'UTC'); \
             INSERT INTO bench_notify (job_id, sent) VALUES ({id}, clock_timestamp() AT TIME ZONE 'UTC'); \
             SELECT pg_notify('cron_trigger', '{}'); COMMIT;",
            db.name
        ))?;
        // Not polling at once: the check would compete for the CPU with the job's start.
        std::thread::sleep(Duration::from_millis(100));
        wait_for(
            &format!("SELECT count(*) FROM test_db_cron_log WHERE job_id = {id}"),
            "1",
            Duration::from_secs(10),
            Duration::from_millis(50),
        )?;
    }
    let latencies: Vec<f64> = db
        .try_sql("SELECT extract(epoch FROM l.started - n.sent) * 1000 FROM bench_notify n JOIN test_db_cron_log l USING (job_id) ORDER BY 1")?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if latencies.len() != ids.len() {
        return Err(format!(
            "{} latencies for {} triggers",
            latencies.len(),
            ids.len()
        ));
    }
    eprintln!("bench: cron NOTIFY-to-start latencies (ms, sorted): {latencies:.1?}");

    db.try_sql(&format!(
        "BEGIN; INSERT INTO ir_cron (cron_name, handler, interval_number, interval_type, nextcall) \
         SELECT 'bench job ' || n, 'test_db.write_row', 1, 'days', now() AT TIME ZONE 'UTC' - interval '1 hour' \
         FROM generate_series(1, {JOBS}) n; \
         INSERT INTO bench_notify (job_id, sent) VALUES (0, clock_timestamp() AT TIME ZONE 'UTC'); \
         SELECT pg_notify('cron_trigger', '{}'); COMMIT;",
        db.name
    ))?;
    wait_for(
        "SELECT count(*) FROM ir_cron WHERE cron_name LIKE 'bench job %' AND last_outcome IS NOT NULL",
        &JOBS.to_string(),
        Duration::from_secs(300),
        // Rarely: the end time comes from the database, and each psql costs CPU.
        Duration::from_secs(1),
    )?;
    let row = db.try_sql(
        "SELECT extract(epoch FROM max(c.last_end) - (SELECT sent FROM bench_notify WHERE job_id = 0)), \
         extract(epoch FROM min(c.last_start) - (SELECT sent FROM bench_notify WHERE job_id = 0)) * 1000, \
         count(*) FILTER (WHERE c.last_outcome <> 'done'), \
         (SELECT count(*) FROM test_db_cron_log WHERE job_name LIKE 'bench job %'), \
         (SELECT count(DISTINCT job_id) FROM test_db_cron_log WHERE job_name LIKE 'bench job %') \
         FROM ir_cron c WHERE c.cron_name LIKE 'bench job %'",
    )?;
    server.stop();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    let f: Vec<&str> = row.split('|').collect();
    let num = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("cannot read the throughput row: {row}"))
    };
    let (secs, first_ms, not_done, runs, distinct) = (num(0)?, num(1)?, num(2)?, num(3)?, num(4)?);
    if not_done > 0.0 || runs != JOBS as f64 || distinct != JOBS as f64 {
        return Err(format!(
            "of {JOBS} due jobs: {not_done} not done, {runs} runs of {distinct} distinct jobs"
        ));
    }
    let rate = JOBS as f64 / secs;
    eprintln!("bench: cron: {JOBS} jobs in {secs:.3} s ({rate:.0}/s); first job started {first_ms:.1} ms after the NOTIFY");
    Ok(vec![
        Row::host_only(
            "9",
            format!("cron: NOTIFY to job start, median and p99 (ms; {} triggers one at a time, `--max-cron-threads 2`, workers LISTENing on the job's database; start = the handler's `clock_timestamp()`; max {:.1})", latencies.len(), max(&latencies)),
            format!("{:.1} / {:.1}", median(&latencies), percentile(&latencies, 99.0)),
            "",
            String::new(),
        ),
        Row::host_only(
            "9",
            format!("cron: jobs per second, {JOBS} trivial due jobs, 2 workers (one NOTIFY to the last job's end: {secs:.2} s; first job started {first_ms:.0} ms after the NOTIFY; each ran once)"),
            format!("{rate:.0}"),
            "",
            String::new(),
        ),
    ])
}
