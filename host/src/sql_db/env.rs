//! Cursors as addons see them: a table of cursor handles for the `cursor_*` callbacks of the
//! host API, the cursor of the invocation running on this thread, the bridge from the
//! addon's blocking thread onto the host's runtime, and [`transaction`]: a handler run in a
//! transaction with Odoo's `retrying` (`odoo/service/model.py`).
//!
//! Addon handlers run on tokio's blocking pool; a callback there runs the query on the
//! runtime with `Handle::block_on`, which is allowed outside the runtime's worker threads.

use super::cursor::{Cursor, PostCommit};
use super::DbError;
use abi_stable::std_types::RVec;
use inphms_sdk::abi::{ErrorInfo, ErrorKind, SqlRows, SqlValue};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TARGET: &str = "inphms.sql_db";

/// Odoo's `MAX_TRIES_ON_CONCURRENCY_FAILURE`.
pub const MAX_TRIES: u32 = 5;

pub(super) type Slot = Arc<tokio::sync::Mutex<Cursor>>;

thread_local! {
    /// The cursor of the invocation running on this thread (set and restored by the guard
    /// of [`with_current`]).
    // global: the running invocation's thread-local context, as Odoo's `request.env.cr`
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The cursor handles lent to addons (the `cursor_*` callbacks name a cursor by its handle),
/// and the runtime their queries run on: part of [`Databases`](super::Databases).
pub struct Cursors {
    /// By handle (foldhash: looked up several times per statement).
    table: Mutex<HashMap<u64, Slot, foldhash::fast::RandomState>>,
    next: AtomicU64,
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.table.lock().map_or(0, |t| t.len());
        f.debug_struct("Cursors").field("open", &open).finish()
    }
}

impl Cursors {
    /// No cursor lent yet; queries run on `runtime` (else on the asking thread's runtime).
    pub fn new(runtime: Option<tokio::runtime::Handle>) -> Cursors {
        Cursors {
            table: Mutex::new(HashMap::default()),
            next: AtomicU64::new(1),
            runtime,
        }
    }

    pub fn runtime(&self) -> Result<tokio::runtime::Handle, DbError> {
        if let Some(h) = &self.runtime {
            return Ok(h.clone());
        }
        tokio::runtime::Handle::try_current()
            .map_err(|_| DbError::Other("no runtime to run the query on".into()))
    }

    /// Runs `f` on the host's runtime and waits for it: from a handler thread, or from a
    /// `blocking = false` handler running inline on a runtime worker (which is then moved
    /// off the event loop with `block_in_place` for the wait).
    pub fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, DbError> {
        let rt = self.runtime()?;
        Ok(tokio::task::block_in_place(|| rt.block_on(f)))
    }

    /// Puts `cursor` in the table; its handle.
    pub fn register(&self, cursor: Cursor) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::new(tokio::sync::Mutex::new(cursor)));
        id
    }

    /// Takes the cursor `id` out of the table (callbacks on it then fail).
    pub fn unregister(&self, id: u64) -> Option<Slot> {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    pub(super) fn slot(&self, id: u64) -> Result<Slot, DbError> {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| DbError::Other(format!("cursor {id} is closed")))
    }

    /// Runs `f` on the cursor `id` from a blocking thread.
    fn on_cursor<T>(
        &self,
        id: u64,
        f: impl for<'c> FnOnce(
            &'c mut Cursor,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, DbError>> + Send + 'c>,
        >,
    ) -> Result<T, DbError> {
        let slot = self.slot(id)?;
        self.block_on(async move {
            let mut cursor = slot.lock().await;
            f(&mut cursor).await
        })?
    }

    /// `cursor_execute`.
    pub fn execute(&self, id: u64, sql: &str, params: RVec<SqlValue>) -> Result<SqlRows, DbError> {
        let params = params.into_vec();
        let sql = sql.to_owned();
        self.on_cursor(id, move |c| {
            Box::pin(async move { c.execute(&sql, &params).await })
        })
    }

    /// `cursor_commit`.
    pub fn commit(&self, id: u64) -> Result<(), DbError> {
        self.on_cursor(id, |c| Box::pin(c.commit()))
    }

    /// `cursor_rollback`.
    pub fn rollback(&self, id: u64) -> Result<(), DbError> {
        self.on_cursor(id, |c| Box::pin(c.rollback()))
    }

    /// `cron_trigger`: a trigger row for the active jobs named (or handled by) `job`, and a
    /// wake-up of the cron workers after the commit.
    pub fn cron_trigger(&self, id: u64, job: &str) -> Result<u64, DbError> {
        let job = job.to_owned();
        self.on_cursor(id, move |c| {
            Box::pin(async move {
                let rows = c
                    .execute(
                        "INSERT INTO ir_cron_trigger (cron_id, call_at) \
                         SELECT id, now() AT TIME ZONE 'UTC' FROM ir_cron \
                         WHERE active AND (cron_name = $1 OR handler = $1)",
                        &[SqlValue::Text(job.as_str().into())],
                    )
                    .await?;
                if rows.rowcount > 0 {
                    c.after_commit(PostCommit::NotifyCron);
                }
                Ok(rows.rowcount)
            })
        })
    }
}

impl Cursors {
    /// `cursor_notify`: a NOTIFY on `channel` with `payload` in `cron_db`, sent once the
    /// cursor's transaction commits (dropped on rollback).
    pub fn notify_after_commit(
        &self,
        id: u64,
        channel: &str,
        payload: &str,
    ) -> Result<(), DbError> {
        let ok_channel = !channel.is_empty()
            && channel.len() <= 63
            && channel
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok_channel {
            return Err(DbError::Other(format!(
                "cannot NOTIFY on {channel:?}: expected 1 to 63 ASCII letters, digits or underscores"
            )));
        }
        if payload.len() >= 8000 {
            return Err(DbError::Other(format!(
                "a NOTIFY payload is under 8000 bytes, this one has {}",
                payload.len()
            )));
        }
        let action = PostCommit::Notify {
            channel: channel.to_owned(),
            payload: payload.to_owned(),
        };
        self.on_cursor(id, move |c| {
            Box::pin(async move {
                c.after_commit(action);
                Ok(())
            })
        })
    }
}

/// Runs `f` with the cursor `id` as this thread's invocation cursor.
pub fn with_current<R>(id: Option<u64>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(id));
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The cursor of the invocation running on this thread.
pub fn current() -> Result<u64, DbError> {
    CURRENT
        .with(Cell::get)
        .ok_or_else(|| DbError::Other("this call has no database".into()))
}

/// A database error as the addon receives it.
pub fn error_info(e: &DbError) -> ErrorInfo {
    let (name, sqlstate, debug) = match e {
        DbError::Sql {
            sqlstate, detail, ..
        } => (
            "inphms.sql_db.DatabaseError",
            sqlstate.clone(),
            detail.clone().unwrap_or_default(),
        ),
        DbError::PoolFull { .. } => ("inphms.sql_db.PoolError", String::new(), String::new()),
        DbError::Unavailable(_) => (
            "inphms.sql_db.OperationalError",
            String::new(),
            String::new(),
        ),
        DbError::Other(_) => ("inphms.sql_db.InterfaceError", String::new(), String::new()),
    };
    let message = match e {
        DbError::Sql { message, .. } => message.clone(),
        other => other.to_string(),
    };
    ErrorInfo {
        kind: ErrorKind::Internal,
        name: name.into(),
        arguments: serde_json::json!([message, sqlstate]).to_string().into(),
        message: message.into(),
        debug: debug.into(),
    }
}

/// How one attempt of a handler ended, as [`transaction`] needs to know it.
pub trait AttemptOutcome {
    /// Whether the handler failed (its transaction is rolled back).
    fn failed(&self) -> bool;
}

impl AttemptOutcome for inphms_sdk::abi::Outcome {
    fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// Runs `attempt` in a transaction on `db` (Odoo's `_transactioning` + `retrying`): the
/// attempt gets a fresh cursor as its invocation cursor; a failed attempt is rolled back; a
/// successful one is committed. An attempt that met a serialization failure, a deadlock or
/// a lock not available (even if the handler swallowed the error) is rolled back and run
/// again after a random sleep of up to 2^n seconds, at most `tries` times in all. A
/// read-only attempt that tried to write runs again read/write.
///
/// `statement_timeout` bounds each statement (the request's or job's time limit), so that
/// a handler answered 504 does not leave its statement running.
///
/// Call it from a blocking thread (the handler's). `Err` is a failure of the transaction
/// itself (the commit, or the last retry), to answer as the handler's error.
pub fn transaction<T: AttemptOutcome>(
    dbs: &super::Databases,
    db: &str,
    readonly: bool,
    tries: u32,
    statement_timeout: Option<Duration>,
    mut attempt: impl FnMut() -> T,
) -> Result<T, DbError> {
    let cursors = dbs.cursors();
    let rt = cursors.runtime()?;
    let mut readonly = readonly;
    let mut tryno = 0;
    loop {
        tryno += 1;
        let id = cursors.register(
            dbs.cursor(db, readonly)
                .with_statement_timeout(statement_timeout),
        );
        let out = with_current(Some(id), &mut attempt);
        let Some(slot) = cursors.unregister(id) else {
            return Err(DbError::Other("the cursor vanished".into()));
        };
        // An addon thread may still hold it for a moment (it cannot after the handler
        // returned, but be safe): waited for on the runtime only then.
        let mut cursor = match Arc::clone(&slot).try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => rt.block_on(async move { slot.lock_owned().await }),
        };
        if readonly && cursor.wrote_in_readonly() {
            tracing::warn!(target: TARGET, "a read-only transaction tried to write on {db}; retrying read/write");
            let _ = rt.block_on(cursor.rollback());
            readonly = false;
            continue;
        }
        if let Some(e) = cursor.retryable_error().cloned() {
            let _ = rt.block_on(cursor.rollback());
            if tryno >= tries {
                tracing::info!(target: TARGET, "{e}, maximum number of tries reached");
                return Err(e);
            }
            let wait = retry_wait(&e, tryno);
            tracing::info!(target: TARGET, "{e}, {} tries left, try again in {wait:.4} sec...", tries - tryno);
            std::thread::sleep(Duration::from_secs_f64(wait));
            continue;
        }
        if !cursor.in_transaction() {
            // No statement ran (a handler that never touched the database, a session
            // token found in the cache): no connection was taken, nothing to end.
            return Ok(out);
        }
        if out.failed() {
            let _ = rt.block_on(cursor.rollback());
            return Ok(out);
        }
        match rt.block_on(cursor.commit()) {
            Ok(()) => return Ok(out),
            Err(e) if e.is_retryable() && tryno < tries => {
                let wait = rand::random::<f64>() * 2f64.powi(tryno as i32);
                tracing::info!(target: TARGET, "{e} at commit, {} tries left, try again in {wait:.4} sec...", tries - tryno);
                std::thread::sleep(Duration::from_secs_f64(wait));
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long to wait, in seconds, before the try after `tryno` failed with `e`: Odoo's
/// random wait of up to 2^`tryno` seconds, none after a kept statement gone stale (the
/// next try prepares it anew; nothing else to wait for).
pub(crate) fn retry_wait(e: &super::DbError, tryno: u32) -> f64 {
    if e.is_stale_statement() {
        0.0
    } else {
        rand::random::<f64>() * 2f64.powi(tryno as i32)
    }
}
