//! Cron workers (Odoo's `cron_thread` and `ir.cron._process_jobs`, 18.0 semantics).
//!
//! [`spawn`] starts `max_cron_threads` supervised workers (none with 0; they run with
//! `--no-http` too). Each keeps a dedicated, non-pooled connection to the `cron_db` database
//! (`postgres` by default) that LISTENs on `cron_trigger`, and wakes on a notification or
//! after 60 s plus its number in seconds. When LISTEN is refused (no such database, no
//! CONNECT right, a cluster in recovery) it polls, with a warning. When the server is
//! unavailable (down, starting up, shutting down), the LISTEN connection is tried again
//! every [`RETRY_MIN`] doubling up to [`RETRY_MAX`]; once it is back, the pools forget their
//! reconnection backoff and a pass over every database runs at once (notifications sent
//! meanwhile are lost). A pass that meets an unavailable database is run again with the same
//! short backoff, not at the next poll. A worker that panics is logged and restarted.
//!
//! A pass processes, for each ready registry, the due jobs of its database: each job is
//! acquired alone with `FOR NO KEY UPDATE SKIP LOCKED` and `pg_try_advisory_lock` (so several
//! workers and several hosts never run one job twice, nor two runs of it at once), and its handler (found by name among the database's addons)
//! runs on the blocking pool under `limit_time_real_cron` with that same transaction as its
//! cursor (`CronContext::cursor`), after a savepoint. The job's bookkeeping is written in
//! that transaction: `nextcall` moved on by its interval past now (missed runs are skipped,
//! never replayed), the due `ir_cron_trigger` rows consumed, `failure_count` and
//! `first_failure_date` (deactivated after 5 failures spanning 7 days), and the run's
//! start, end and outcome (`last_start`, `last_end`, `last_outcome`) that `inphms-host cron
//! -d DB` lists. A failed handler's work is rolled back to the savepoint and its failure
//! recorded. So the handler's work through the job's cursor and the job's bookkeeping commit
//! together or not at all: a job whose work committed is no longer due, and one whose commit
//! was lost (a server stopped mid-run) is still due with nothing of the run kept. When the
//! connection is lost during that COMMIT, the record's transaction id is kept and, once the
//! database answers again, `txid_status` tells the log whether the run committed. A handler
//! that commits on its own records the run as started in each of its commits (see
//! [`JobRun`](crate::sql_db::cursor::JobRun)). Between those commits the job's row is not locked, so a run also holds the
//! job's session-level advisory lock (`Cursor::try_lock_job`) on its cursor's connection,
//! which the cursor keeps for the whole run and releases after its final commit: another
//! worker or host finding the job due again meanwhile (a trigger the handler added, a run
//! longer than its interval) skips it, and the workers are woken for such a trigger only once
//! it is released. A COMMIT the server refuses (a deferred constraint, a serialization
//! failure) rolls the run back; its failure is then recorded in a new transaction, under the
//! same lock. A manual run ([`run_manually`]) takes both locks without waiting and says
//! "already running" instead of running twice.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::modules::registry::Registries;
use crate::sql_db::{Databases, DbError};
use chrono::TimeDelta;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod job;
mod listen;
mod schedule;

use job::process_jobs;
pub use job::{list_jobs, run_manually, JobInfo, RunOutcome};
use listen::worker;
pub use listen::{RETRY_MAX, RETRY_MIN};
pub use schedule::{add_interval, next_call};

const TARGET: &str = "inphms.service.cron";

/// Odoo's `SLEEP_INTERVAL`.
pub const SLEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Failures before a job may be deactivated.
pub const MIN_FAILURE_COUNT_BEFORE_DEACTIVATION: i64 = 5;
/// The span those failures must cover.
pub const MIN_DELTA_BEFORE_DEACTIVATION: TimeDelta = TimeDelta::days(7);

/// What the cron workers of one host share: the configuration, the registries (and the
/// databases behind them), and the runs whose COMMIT was lost. Built by the composition root
/// (or `inphms-host cron`) and handed to the workers by `Arc`.
#[derive(Debug)]
pub struct Cron {
    /// The configuration (`max_cron_threads`, `cron_db`, the time limits).
    pub config: Arc<Config>,
    /// The registries whose databases the workers serve.
    pub registries: Arc<Registries>,
    /// The host's metrics (runs, failures and duration per job).
    pub metrics: Arc<Metrics>,
    in_doubt: Mutex<Vec<job::InDoubt>>,
}

impl Cron {
    /// For `config`, on `registries`, recording into `metrics`.
    pub fn new(
        config: Arc<Config>,
        registries: Arc<Registries>,
        metrics: Arc<Metrics>,
    ) -> Arc<Cron> {
        Arc::new(Cron {
            config,
            registries,
            metrics,
            in_doubt: Mutex::new(Vec::new()),
        })
    }

    /// The databases (the registries').
    pub fn databases(&self) -> &Arc<Databases> {
        self.registries.databases()
    }

    /// The same workers' state for `config` (the one a SIGHUP gave, when the workers start
    /// again): the runs in doubt move over.
    pub fn with_config(&self, config: Arc<Config>) -> Arc<Cron> {
        let mut in_doubt = self.in_doubt.lock().unwrap_or_else(|e| e.into_inner());
        Arc::new(Cron {
            config,
            registries: Arc::clone(&self.registries),
            metrics: Arc::clone(&self.metrics),
            in_doubt: Mutex::new(std::mem::take(&mut *in_doubt)),
        })
    }
}

/// The running workers; [`CronHandle::stop`] stops them once their current job is done.
#[derive(Debug)]
pub struct CronHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl CronHandle {
    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.tasks.len()
    }

    /// Stops the workers: each finishes the job it runs, then ends.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts `max_cron_threads` supervised workers on the current runtime.
pub fn spawn(cron: &Arc<Cron>) -> CronHandle {
    let config = &cron.config;
    let (stop, stop_rx) = watch::channel(false);
    let tasks = (0..config.max_cron_threads)
        .map(|i| tokio::spawn(supervise(i, Arc::clone(cron), stop_rx.clone())))
        .collect::<Vec<_>>();
    if !tasks.is_empty() {
        tracing::info!(target: TARGET, "{} cron worker(s) started, listening on database {}", tasks.len(), config.cron_db);
    }
    CronHandle { stop, tasks }
}

/// Runs worker `i`, restarting it when it panics or ends before the stop.
async fn supervise(i: u32, cron: Arc<Cron>, stop: watch::Receiver<bool>) {
    loop {
        let task = tokio::spawn(worker(i, Arc::clone(&cron), stop.clone()));
        let result = task.await;
        if *stop.borrow() {
            return;
        }
        match result {
            Ok(()) => tracing::error!(target: TARGET, "cron{i} ended unexpectedly; restarting it"),
            Err(e) => tracing::error!(target: TARGET, "cron{i} died: {e}; restarting it"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits until `stop` is set; returns at once if it is.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One pass over the ready registries; the first error that says a database was
/// unavailable (the pass should be run again soon), if any. Other errors are logged.
async fn pass(i: u32, cron: &Cron, stop: &watch::Receiver<bool>) -> Option<DbError> {
    let mut unavailable = None;
    for reg in cron.registries.ready_registries() {
        if *stop.borrow() {
            return None;
        }
        match process_jobs(&reg, cron, stop).await {
            Ok(_) => {}
            Err(e) if e.is_unavailable() => {
                tracing::debug!(target: TARGET, "cron{i}: database {} unavailable: {e}", reg.db_name);
                unavailable.get_or_insert(e);
            }
            Err(e) => {
                tracing::warn!(target: TARGET, "cron{i} encountered an Exception on {}: {e}", reg.db_name)
            }
        }
    }
    unavailable
}
