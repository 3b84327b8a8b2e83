//! The database side of async routes: [`transaction`], Odoo's `retrying` as a future (the
//! sync [`env::transaction`](super::env::transaction) with every wait awaited on the
//! runtime), and [`execute`], the statement of `HostApi::cursor_execute_async`. Nothing
//! here blocks a thread: the cursor's lock, the statements, the commit and the back-off
//! between tries are awaited.

use super::cursor::Cursor;
use super::env::{AttemptOutcome, Cursors};
use super::DbError;
use inphms_sdk::abi::{SqlRows, SqlValue};
use std::future::Future;
use std::time::Duration;

const TARGET: &str = "inphms.sql_db";

/// Runs the statement `sql` on the lent cursor `id`: a future that holds no reference to
/// the host (it can cross to an addon as `'static`).
pub fn execute(
    cursors: &Cursors,
    id: u64,
    sql: String,
    params: Vec<SqlValue>,
) -> impl Future<Output = Result<SqlRows, DbError>> + Send + 'static {
    let slot = cursors.slot(id);
    async move {
        let slot = slot?;
        let mut cursor = slot.lock().await;
        cursor.execute_pipelined(&sql, &params).await
    }
}

/// A cursor lent to addons (in the table of [`Cursors`]) for one attempt; taken out of the
/// table when dropped, also when the attempt's future is (`limit_time_real`): the cursor
/// then goes with it, its transaction rolled back ([`Cursor`]'s drop).
struct Lent<'c> {
    cursors: &'c Cursors,
    id: u64,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.cursors.unregister(self.id);
    }
}

/// [`env::transaction`](super::env::transaction) for a handler's future: `attempt` is
/// given the handle of a fresh cursor and its future awaited; a failed attempt is rolled
/// back, a successful one committed; a serialization failure (even one the handler
/// swallowed) rolls back and runs the attempt again after a random wait of up to 2^n
/// seconds, at most `tries` times in all; a read-only attempt that tried to write runs
/// again read/write. `Err` is a failure of the transaction itself.
pub async fn transaction<T, F, Fut>(
    dbs: &super::Databases,
    db: &str,
    readonly: bool,
    tries: u32,
    statement_timeout: Option<Duration>,
    mut attempt: F,
) -> Result<T, DbError>
where
    T: AttemptOutcome,
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = T>,
{
    let cursors = dbs.cursors();
    let mut readonly = readonly;
    let mut tryno = 0;
    loop {
        tryno += 1;
        let cursor: Cursor = dbs
            .cursor(db, readonly)
            .with_statement_timeout(statement_timeout);
        let lent = Lent {
            cursors,
            id: cursors.register(cursor),
        };
        let out = attempt(lent.id).await;
        let Some(slot) = cursors.unregister(lent.id) else {
            return Err(DbError::Other("the cursor vanished".into()));
        };
        drop(lent);
        let mut cursor = slot.lock_owned().await;
        if readonly && cursor.wrote_in_readonly() {
            tracing::warn!(target: TARGET, "a read-only transaction tried to write on {db}; retrying read/write");
            let _ = cursor.rollback().await;
            readonly = false;
            continue;
        }
        if let Some(e) = cursor.retryable_error().cloned() {
            let _ = cursor.rollback().await;
            if tryno >= tries {
                tracing::info!(target: TARGET, "{e}, maximum number of tries reached");
                return Err(e);
            }
            let wait = super::env::retry_wait(&e, tryno);
            tracing::info!(target: TARGET, "{e}, {} tries left, try again in {wait:.4} sec...", tries - tryno);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            continue;
        }
        if out.failed() {
            let _ = cursor.rollback().await;
            return Ok(out);
        }
        match cursor.commit().await {
            Ok(()) => return Ok(out),
            Err(e) if e.is_retryable() && tryno < tries => {
                let wait = rand::random::<f64>() * 2f64.powi(tryno as i32);
                tracing::info!(target: TARGET, "{e} at commit, {} tries left, try again in {wait:.4} sec...", tries - tryno);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
