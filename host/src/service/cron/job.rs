//! Running one cron job and its bookkeeping: acquiring a due job (row lock and advisory
//! lock), running its handler under the time limit on the job's transaction, recording the
//! outcome (next call, failures, deactivation) and resolving runs whose COMMIT was lost;
//! also the listing and the manual run of `inphms-host cron`.

use super::Cron;
use super::{
    next_call, MIN_DELTA_BEFORE_DEACTIVATION, MIN_FAILURE_COUNT_BEFORE_DEACTIVATION, TARGET,
};
use crate::config::Config;
use crate::modules::registry::Registry;
use crate::sql_db::cursor::{JobRun, JOB_SAVEPOINT};
use crate::sql_db::notify::post_commit;
use crate::sql_db::{self, env, DbError};
use abi_stable::std_types::{ROption, RString, RVec};
use chrono::{NaiveDateTime, TimeDelta};
use inphms_sdk::abi::{HttpRequest, Invocation, ItemKind, SqlValue};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn text(v: Option<&SqlValue>) -> String {
    match v {
        Some(SqlValue::Text(s)) => s.to_string(),
        _ => String::new(),
    }
}

fn int(v: Option<&SqlValue>) -> i64 {
    match v {
        Some(SqlValue::Int(i)) => *i,
        _ => 0,
    }
}

fn timestamp(v: Option<&SqlValue>) -> Option<NaiveDateTime> {
    match v {
        Some(SqlValue::Timestamp(us)) => {
            chrono::DateTime::from_timestamp_micros(*us).map(|t| t.naive_utc())
        }
        _ => None,
    }
}

fn ts_value(t: NaiveDateTime) -> SqlValue {
    SqlValue::Timestamp(t.and_utc().timestamp_micros())
}

/// The due condition of a job (Odoo's ready-jobs query).
const DUE: &str = "active AND (nextcall <= (now() AT TIME ZONE 'UTC') OR id IN \
                   (SELECT cron_id FROM ir_cron_trigger WHERE call_at <= (now() AT TIME ZONE 'UTC')))";

/// A job acquired for a run.
#[derive(Debug, Clone)]
struct Job {
    id: i64,
    name: String,
    handler: String,
    interval_number: i64,
    interval_type: String,
    nextcall: NaiveDateTime,
    failure_count: i64,
    first_failure_date: Option<NaiveDateTime>,
    db_now: NaiveDateTime,
}

const JOB_COLUMNS: &str =
    "id, cron_name, handler, interval_number, interval_type, nextcall, failure_count, \
                           first_failure_date, (now() AT TIME ZONE 'UTC') AS db_now";

fn job_of(row: &RVec<SqlValue>) -> Job {
    Job {
        id: int(row.first()),
        name: text(row.get(1)),
        handler: text(row.get(2)),
        interval_number: int(row.get(3)),
        interval_type: text(row.get(4)),
        nextcall: timestamp(row.get(5)).unwrap_or_default(),
        failure_count: int(row.get(6)),
        first_failure_date: timestamp(row.get(7)),
        db_now: timestamp(row.get(8)).unwrap_or_default(),
    }
}

/// A run whose COMMIT was lost with its connection: its transaction, to ask the server
/// whether it committed once it is back (`txid_status`), and say so in the log.
#[derive(Debug)]
pub(super) struct InDoubt {
    db: String,
    job_id: i64,
    name: String,
    txid: i64,
}

fn in_doubt(cron: &Cron) -> std::sync::MutexGuard<'_, Vec<InDoubt>> {
    cron.in_doubt.lock().unwrap_or_else(|e| e.into_inner())
}

/// Logs what became of the runs of `db` whose COMMIT was lost. The job itself needs
/// nothing: a committed run left it no longer due, one rolled back left it due.
async fn resolve_in_doubt(cron: &Cron, db: &str) -> Result<(), DbError> {
    let mut pending: Vec<InDoubt> = {
        let mut all = in_doubt(cron);
        let (mine, others) = std::mem::take(&mut *all)
            .into_iter()
            .partition(|d| d.db == db);
        *all = others;
        mine
    };
    while let Some(d) = pending.pop() {
        let mut cr = cron.databases().cursor(db, true);
        let status = cr
            .execute("SELECT txid_status($1)", &[SqlValue::Int(d.txid)])
            .await;
        let _ = cr.rollback().await;
        let (name, id, txid) = (&d.name, d.job_id, d.txid);
        match status {
            Ok(rows) => match text(rows.rows.first().and_then(|r| r.first())).as_str() {
                "committed" => {
                    tracing::info!(target: TARGET, "Job {name:?} ({id}): the run whose COMMIT was lost did commit (transaction {txid}); it is not run again")
                }
                "aborted" => {
                    tracing::info!(target: TARGET, "Job {name:?} ({id}): the run whose COMMIT was lost did not commit (transaction {txid}); nothing of it was kept, and the job, still due, runs again")
                }
                other => {
                    tracing::info!(target: TARGET, "Job {name:?} ({id}): the outcome of the run whose COMMIT was lost is not known to the server (transaction {txid}: {other:?}); the job runs again only if it is still due")
                }
            },
            Err(e) if e.is_unavailable() => {
                pending.push(d);
                in_doubt(cron).append(&mut pending);
                return Err(e);
            }
            // "transaction ID is in the future": it never committed.
            Err(e) => {
                tracing::info!(target: TARGET, "Job {name:?} ({id}): the run whose COMMIT was lost did not commit (transaction {txid}: {e}); the job, still due, runs again")
            }
        }
    }
    Ok(())
}

/// Processes the due jobs of the registry's database, one at a time.
pub(super) async fn process_jobs(
    reg: &Arc<Registry>,
    cron: &Cron,
    stop: &watch::Receiver<bool>,
) -> Result<usize, DbError> {
    let db = reg.db_name.as_str();
    let mut cr = cron.databases().cursor(db, false);
    let base = cr
        .execute_cached(
            "SELECT latest_version FROM ir_module_module WHERE name = 'base'",
            &[],
        )
        .await?;
    if base
        .rows
        .first()
        .and_then(|r| r.first())
        .is_none_or(|v| *v == SqlValue::Null)
    {
        let _ = cr.rollback().await;
        tracing::warn!(target: TARGET, "Skipping database {db} because of modules to install/upgrade/remove.");
        return Ok(0);
    }
    resolve_in_doubt(cron, db).await?;
    let ids = cr
        .execute_cached(
            &format!("SELECT id FROM ir_cron WHERE {DUE} ORDER BY failure_count, priority, id"),
            &[],
        )
        .await?;
    let _ = cr.rollback().await;
    drop(cr);
    let mut done = 0;
    for row in ids.rows.iter() {
        if *stop.borrow() {
            break;
        }
        let id = int(row.first());
        // The job's own cursor: its lock, its handler's work and its bookkeeping are one
        // transaction.
        let mut cr = cron
            .databases()
            .cursor(db, false)
            .with_statement_timeout(time_limit(&cron.config));
        let acquired = cr
            .execute_cached(
                &format!("SELECT {JOB_COLUMNS} FROM ir_cron WHERE {DUE} AND id = $1 FOR NO KEY UPDATE SKIP LOCKED"),
                &[SqlValue::Int(id)],
            )
            .await;
        let job = match acquired {
            Ok(rows) if !rows.rows.is_empty() => job_of(&rows.rows[0]),
            Ok(_) => {
                let _ = cr.rollback().await;
                continue;
            }
            Err(e) if e.is_retryable() => {
                // Another worker just ran it.
                let _ = cr.rollback().await;
                continue;
            }
            Err(e) => {
                let _ = cr.rollback().await;
                return Err(e);
            }
        };
        // A run of the job between two of its handler's commits holds its advisory lock,
        // not its row: skipped as well.
        if !cr.try_lock_job(id).await? {
            let _ = cr.rollback().await;
            continue;
        }
        process_job(cr, reg, cron, job, Run::Scheduled).await?;
        done += 1;
    }
    Ok(done)
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The handler succeeded; its work is committed with the run's record.
    Done,
    /// The handler failed (or timed out); its work is rolled back, its failure recorded.
    Failed(String),
}

impl RunOutcome {
    fn label(&self) -> String {
        match self {
            RunOutcome::Done => "done".into(),
            RunOutcome::Failed(m) => format!("failed: {m}"),
        }
    }
}

/// Why a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// It is due: `nextcall` moves on, its triggers are consumed, failures are counted.
    Scheduled,
    /// `inphms-host cron --run`: only the run's start, end and outcome are recorded.
    Manual,
}

/// The time limit of a job: `limit_time_real_cron`, `limit_time_real` when it is -1, none
/// when 0.
fn time_limit(config: &Config) -> Option<Duration> {
    let limit = if config.limit_time_real_cron < 0 {
        config.limit_time_real as i64
    } else {
        config.limit_time_real_cron
    };
    (limit > 0).then(|| Duration::from_secs(limit as u64))
}

/// The run recorded as started when the handler commits on its own (see
/// [`sql_db::cursor::JobRun`]): `nextcall` moved on, so that the committed work is never
/// run again (the due triggers were consumed when the run started).
const CHECKPOINT: &str = "UPDATE ir_cron SET nextcall = $2, lastcall = $3, last_start = $3, \
     last_end = NULL, last_outcome = 'running' WHERE id = $1";
/// The same for a manual run (no `nextcall`, no triggers).
const CHECKPOINT_MANUAL: &str =
    "UPDATE ir_cron SET lastcall = $3, last_start = $3, last_end = NULL, \
     last_outcome = 'running' WHERE id = $1 AND $2::timestamp IS NOT NULL";

/// The job's cursor, back from its handler.
type JobCursor = tokio::sync::OwnedMutexGuard<sql_db::Cursor>;

/// Runs the handler of `job` on the blocking pool, under the time limit, with `cr` (the
/// job's locked transaction) as its cursor; the outcome and the cursor back.
async fn run_handler(
    reg: &Arc<Registry>,
    cron: &Cron,
    cr: sql_db::Cursor,
    job: &Job,
) -> (RunOutcome, JobCursor) {
    let Some((addon, item)) = reg.cron_handler(&cron.registries.server_wide(), &job.handler) else {
        let failed = RunOutcome::Failed(format!(
            "no cron handler '{}' among the addons of {} (is its addon installed?)",
            job.handler, reg.db_name
        ));
        return (
            failed,
            Arc::new(tokio::sync::Mutex::new(cr)).lock_owned().await,
        );
    };
    let db = reg.db_name.clone();
    let (job_id, name) = (job.id, job.name.clone());
    let cursors = cron.databases().cursors();
    let handle = cursors.register(cr);
    let task = tokio::task::spawn_blocking(move || {
        let call = addon.library.module.call();
        env::with_current(Some(handle), || {
            call(Invocation {
                kind: ItemKind::Cron,
                item,
                request: ROption::RSome(HttpRequest {
                    db: ROption::RSome(db.as_str().into()),
                    ..HttpRequest::default()
                }),
                endpoint: ROption::RNone,
                args: vec![
                    RString::from(job_id.to_string()),
                    RString::from(name.as_str()),
                ]
                .into(),
                handle: 0,
                socket_event: abi_stable::std_types::ROption::RNone,
                outcome: abi_stable::std_types::ROption::RNone,
            })
        })
    });
    let joined = match time_limit(&cron.config) {
        Some(limit) => tokio::time::timeout(limit, task).await.map_err(|_| limit),
        None => Ok(task.await),
    };
    // The handler's later calls on its cursor fail ("cursor closed"); a statement it still
    // runs is waited for (its statement_timeout bounds it).
    let slot = cursors.unregister(handle).unwrap_or_else(|| {
        Arc::new(tokio::sync::Mutex::new(
            cron.databases().cursor(&reg.db_name, false),
        ))
    });
    let cr = slot.lock_owned().await;
    let outcome = match joined {
        Err(limit) => RunOutcome::Failed(format!(
            "timed out after {}s (limit_time_real_cron)",
            limit.as_secs()
        )),
        Ok(Ok(outcome)) => match outcome.error.into_option() {
            None => RunOutcome::Done,
            Some(e) => RunOutcome::Failed(if e.debug.is_empty() {
                e.message.to_string()
            } else {
                format!("{}: {}", e.message, e.debug)
            }),
        },
        Ok(Err(e)) => RunOutcome::Failed(format!("handler task failed: {e}")),
    };
    (outcome, cr)
}

/// Undoes the handler's work in the job's transaction, back to [`JOB_SAVEPOINT`] (the lock
/// stays). When that is impossible the whole transaction is rolled back (the record that
/// follows is then its own transaction).
async fn undo(cr: &mut sql_db::Cursor) -> Result<(), DbError> {
    if !cr.in_transaction() {
        return Ok(());
    }
    match cr
        .batch(&format!("ROLLBACK TO SAVEPOINT {JOB_SAVEPOINT}"))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_unavailable() => Err(e),
        Err(_) => {
            let _ = cr.rollback().await;
            Ok(())
        }
    }
}

/// Runs an acquired job on its cursor `cr` (its transaction open, the job locked) and
/// records the outcome in the same transaction, then commits: the handler's work through
/// the job's cursor and the job's bookkeeping commit together, or neither does.
///
/// When the connection is lost during that COMMIT, whether it happened is unknown, and the
/// job is not run again blindly: the next pass reads the job from the database. If the
/// transaction committed, the job is no longer due (its `nextcall` moved on, its triggers
/// are gone, its run recorded) and is not run; if it did not, nothing of the run was kept
/// (neither its work nor its record), the job is still due and runs, for the first time as
/// far as the database knows.
async fn process_job(
    cr: sql_db::Cursor,
    reg: &Arc<Registry>,
    cron: &Cron,
    job: Job,
    run: Run,
) -> Result<RunOutcome, DbError> {
    let mut cr = cr;
    let started_at = Instant::now();
    let start = job.db_now;
    // The triggers due now are consumed before the savepoint, in the job's transaction
    // (kept even if the handler fails, as the record of its failure): those the handler
    // adds for its job (`Cursor::trigger_cron`, more to do) are not, and run it again. A
    // manual run leaves them.
    let consume = match run {
        Run::Scheduled => format!(
            "DELETE FROM ir_cron_trigger WHERE cron_id = {} AND call_at <= (now() AT TIME ZONE 'UTC'); ",
            job.id
        ),
        Run::Manual => String::new(),
    };
    cr.batch(&format!("{consume}SAVEPOINT {JOB_SAVEPOINT}"))
        .await?;
    let (checkpoint, next) = match run {
        Run::Scheduled => (
            CHECKPOINT,
            next_call(job.nextcall, job.interval_number, &job.interval_type, start),
        ),
        Run::Manual => (CHECKPOINT_MANUAL, start),
    };
    cr.set_job(JobRun {
        job_id: job.id,
        checkpoint,
        checkpoint_params: vec![SqlValue::Int(job.id), ts_value(next), ts_value(start)],
    });
    tracing::info!(target: TARGET, "Job {:?} ({}) starting", job.name, job.id);
    let (mut outcome, mut cr) = run_handler(reg, cron, cr, &job).await;
    cr.take_job();
    if outcome == RunOutcome::Done {
        if let Some(e) = cr.retryable_error() {
            // The handler swallowed a serialization failure: its snapshot cannot commit.
            outcome = RunOutcome::Failed(e.to_string());
        }
    }
    if outcome != RunOutcome::Done {
        undo(&mut cr).await?;
    }
    let elapsed = started_at.elapsed();
    let end = start + TimeDelta::from_std(elapsed).unwrap_or_default();
    // The run's transaction was lost (rolled back whole: a COMMIT of the handler refused,
    // an undo that could not go back to the savepoint): its record needs one of its own.
    reopen(&mut cr, &job, run).await?;
    let txid = match record(&mut cr, &job, &outcome, run, end).await {
        Ok(txid) => txid,
        Err(e) if e.is_unavailable() || outcome != RunOutcome::Done => return Err(e),
        Err(e) => {
            // The handler went on after an error in its transaction, which cannot commit:
            // its work is undone and the run recorded as failed.
            undo(&mut cr).await?;
            reopen(&mut cr, &job, run).await?;
            outcome = RunOutcome::Failed(format!("its transaction cannot commit: {e}"));
            record(&mut cr, &job, &outcome, run, end).await?
        }
    };
    // The workers are woken (a trigger the handler added) once the job's lock is released,
    // not before: woken before, they would find it held and skip it.
    let mut after_commit = cr.take_after_commit();
    let committed = match cr.commit().await {
        Err(e) if !e.is_unavailable() && !cr.job_lock_lost() => {
            after_commit.clear();
            // Refused by the server (a deferred constraint, a serialization failure): the
            // run's work and record are rolled back. Its failure is recorded in a new
            // transaction (the run still holds the job's advisory lock), so that the job is
            // not run again and again without a trace.
            outcome = RunOutcome::Failed(format!("its transaction could not commit: {e}"));
            reopen(&mut cr, &job, run).await?;
            record(&mut cr, &job, &outcome, run, end).await?;
            cr.commit().await
        }
        other => other,
    };
    if let Err(e) = committed {
        if e.is_unavailable() {
            tracing::warn!(target: TARGET, "Job {:?} ({}): the connection was lost during COMMIT ({e}); whether the run committed \
                (transaction {txid}) is unknown. The next pass reads it: committed, the job is no longer due; rolled back, nothing \
                of the run was kept and the job, still due, runs again", job.name, job.id);
            in_doubt(cron).push(InDoubt {
                db: reg.db_name.clone(),
                job_id: job.id,
                name: job.name.clone(),
                txid,
            });
        }
        return Err(e);
    }
    // Not before the commit: between the two, the job's row is free and only this lock
    // keeps another run from starting.
    cr.unlock_job().await;
    post_commit(cron.databases().pools(), &reg.db_name, after_commit).await;
    cron.metrics.cron.job_ran(
        &reg.db_name,
        &job.name,
        outcome == RunOutcome::Done,
        elapsed,
    );
    match &outcome {
        RunOutcome::Done => {
            tracing::info!(target: TARGET, "Job {:?} ({}) done in {:.3}s", job.name, job.id, elapsed.as_secs_f64())
        }
        RunOutcome::Failed(m) => {
            tracing::error!(target: TARGET, "Job {:?} ({}) server action #{} failed: {m}", job.name, job.id, job.id)
        }
    }
    Ok(outcome)
}

/// Opens the transaction of the run's record when the run's own was lost (rolled back
/// whole): the job's row locked again (waiting: the run holds the job's advisory lock, so
/// no other run has it) and, for a scheduled run, the triggers due at its start consumed
/// again. Nothing to do while the run's transaction is open.
async fn reopen(cr: &mut sql_db::Cursor, job: &Job, run: Run) -> Result<(), DbError> {
    if cr.in_transaction() {
        return Ok(());
    }
    cr.execute_cached(
        "SELECT 1 FROM ir_cron WHERE id = $1 FOR NO KEY UPDATE",
        &[SqlValue::Int(job.id)],
    )
    .await?;
    if run == Run::Scheduled {
        cr.execute_cached(
            "DELETE FROM ir_cron_trigger WHERE cron_id = $1 AND call_at <= $2",
            &[SqlValue::Int(job.id), ts_value(job.db_now)],
        )
        .await?;
    }
    Ok(())
}

/// Records the run of `job` in the job's transaction: its start, end and outcome, and for a
/// scheduled run the next call and the failure count (deactivated
/// after 5 failures spanning 7 days).
async fn record(
    cr: &mut sql_db::Cursor,
    job: &Job,
    outcome: &RunOutcome,
    run: Run,
    end: NaiveDateTime,
) -> Result<i64, DbError> {
    let start = job.db_now;
    // Each statement answers the transaction's id, to ask later whether a COMMIT lost with
    // its connection happened.
    let txid = |rows: inphms_sdk::abi::SqlRows| int(rows.rows.first().and_then(|r| r.first()));
    if run == Run::Manual {
        let rows = cr.execute_cached(
            "UPDATE ir_cron SET lastcall = $2, last_start = $2, last_end = $3, last_outcome = $4 WHERE id = $1 \
             RETURNING txid_current()",
            &[SqlValue::Int(job.id), ts_value(start), ts_value(end), SqlValue::Text(outcome.label().into())],
        )
        .await?;
        return Ok(txid(rows));
    }
    let (failure_count, first_failure, active) = match outcome {
        RunOutcome::Done => (0, None, true),
        RunOutcome::Failed(_) => {
            let count = job.failure_count + 1;
            let first = job.first_failure_date.unwrap_or(start);
            if count >= MIN_FAILURE_COUNT_BEFORE_DEACTIVATION
                && first + MIN_DELTA_BEFORE_DEACTIVATION < end
            {
                tracing::warn!(target: TARGET, "Cron job {} ({}) has been deactivated after failing {count} times since {first}", job.name, job.id);
                (0, None, false)
            } else {
                (count, Some(first), true)
            }
        }
    };
    let next = next_call(job.nextcall, job.interval_number, &job.interval_type, end);
    let rows = cr.execute_cached(
        "UPDATE ir_cron SET nextcall = $2, lastcall = $3, last_start = $3, last_end = $4, last_outcome = $5, \
         failure_count = $6, first_failure_date = $7, active = $8 WHERE id = $1 RETURNING txid_current()",
        &[
            SqlValue::Int(job.id),
            ts_value(next),
            ts_value(start),
            ts_value(end),
            SqlValue::Text(outcome.label().into()),
            SqlValue::Int(failure_count),
            first_failure.map(ts_value).unwrap_or(SqlValue::Null),
            SqlValue::Bool(active),
        ],
    )
    .await?;
    Ok(txid(rows))
}

/// One line of `inphms-host cron -d DB`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    /// `ir_cron.id`.
    pub id: i64,
    /// The job's name.
    pub name: String,
    /// Its handler.
    pub handler: String,
    /// Whether it is active.
    pub active: bool,
    /// `every N unit`.
    pub interval: String,
    /// The last run's start, end and outcome.
    pub last_start: Option<NaiveDateTime>,
    /// The last run's end.
    pub last_end: Option<NaiveDateTime>,
    /// `done` or `failed: ...`.
    pub last_outcome: Option<String>,
    /// The next due time (UTC), or now when a trigger is due.
    pub next_due: Option<NaiveDateTime>,
    /// Consecutive failures.
    pub failure_count: i64,
}

/// Every job of `db`, with its last run and next due time.
pub async fn list_jobs(dbs: &sql_db::Databases, db: &str) -> Result<Vec<JobInfo>, DbError> {
    let mut cr = dbs.cursor(db, true);
    let rows = cr
        .execute(
            "SELECT c.id, c.cron_name, c.handler, c.active, c.interval_number, c.interval_type, c.last_start, \
             c.last_end, c.last_outcome, LEAST(c.nextcall, (SELECT min(call_at) FROM ir_cron_trigger t WHERE t.cron_id = c.id)), \
             c.failure_count FROM ir_cron c ORDER BY c.id",
            &[],
        )
        .await?;
    let _ = cr.rollback().await;
    Ok(rows
        .rows
        .iter()
        .map(|r| JobInfo {
            id: int(r.first()),
            name: text(r.get(1)),
            handler: text(r.get(2)),
            active: r.get(3) == Some(&SqlValue::Bool(true)),
            interval: format!("{} {}", int(r.get(4)), text(r.get(5))),
            last_start: timestamp(r.get(6)),
            last_end: timestamp(r.get(7)),
            last_outcome: match r.get(8) {
                Some(SqlValue::Text(s)) => Some(s.to_string()),
                _ => None,
            },
            next_due: timestamp(r.get(9)),
            failure_count: int(r.get(10)),
        })
        .collect())
}

/// Runs the job `job` (its id or name) of `db` now (Odoo's `method_direct_trigger`): takes
/// the job's lock without waiting, so a job being run elsewhere is "already running"; does
/// not change `nextcall` nor the failure counters.
pub async fn run_manually(cron: &Cron, db: &str, job: &str) -> Result<RunOutcome, crate::Error> {
    let reg = cron.registries.get(db).await?;
    let mut cr = cron
        .databases()
        .cursor(db, false)
        .with_statement_timeout(time_limit(&cron.config));
    // A worker that committed an update of the row after this transaction's snapshot
    // makes the lock a serialization failure (40001): a new snapshot decides, as Odoo's
    // `retrying` does (a few tries; a run still holding the row is 55P03 below).
    let mut tries = 0;
    let rows = loop {
        let rows = cr
            .execute(
                &format!("SELECT {JOB_COLUMNS} FROM ir_cron WHERE id::text = $1 OR cron_name = $1 ORDER BY id LIMIT 1 FOR NO KEY UPDATE NOWAIT"),
                &[SqlValue::Text(job.into())],
            )
            .await;
        match rows {
            Err(e) if e.sqlstate() == Some("40001") && tries < crate::sql_db::env::MAX_TRIES => {
                tries += 1;
                let _ = cr.rollback().await;
                cr.reset_attempt();
            }
            rows => break rows,
        }
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) if e.sqlstate() == Some("55P03") => {
            let _ = cr.rollback().await;
            return Err(crate::Error::JobRunning {
                job: job.to_owned(),
            });
        }
        Err(e) => return Err(crate::Error::database(db, e)),
    };
    let Some(row) = rows.rows.first() else {
        return Err(crate::Error::NoSuchJob {
            db: db.to_owned(),
            job: job.to_owned(),
        });
    };
    let found = job_of(row);
    if !cr
        .try_lock_job(found.id)
        .await
        .map_err(|e| crate::Error::database(db, e))?
    {
        let _ = cr.rollback().await;
        return Err(crate::Error::JobRunning {
            job: job.to_owned(),
        });
    }
    let job = found;
    process_job(cr, &reg, cron, job, Run::Manual)
        .await
        .map_err(|e| crate::Error::database(db, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits() {
        let mut c = Config::defaults();
        assert_eq!(time_limit(&c), Some(Duration::from_secs(120)));
        c.limit_time_real_cron = 0;
        assert_eq!(time_limit(&c), None);
        c.limit_time_real_cron = 5;
        assert_eq!(time_limit(&c), Some(Duration::from_secs(5)));
    }
}
