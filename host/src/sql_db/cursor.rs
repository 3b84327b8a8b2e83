//! [`Cursor`] (Odoo's `sql_db.Cursor`): one transaction at a time on a pooled connection, in
//! `REPEATABLE READ` (read-only when asked), begun on the first statement. It is committed or
//! rolled back by its owner; dropped with a transaction open, it is rolled back (the
//! connection is closed when no runtime is there to do it).
//!
//! A cron job runs on the cursor that holds its locks ([`JobRun`], [`Cursor::try_lock_job`]):
//! the job's row lock in each transaction and, for the whole run, a session-level advisory
//! lock on the cursor's connection, which stays with the cursor across the handler's commits
//! (no other run starts in between) and goes back to the pool only once that lock is released
//! ([`Cursor::unlock_job`]; a cursor dropped holding it closes its connection). Its handler's
//! commits and rollbacks keep the job locked and its run recorded, so that the handler's work
//! and the job's bookkeeping always commit together (see `service::cron`).

use super::value::{Param, Raw};
use super::{DbError, PooledConn, Pools};
use inphms_sdk::abi::{SqlRows, SqlValue};
use std::sync::Arc;
use tokio_postgres::types::ToSql;

const TARGET: &str = "inphms.sql_db";

#[cfg(test)]
mod kept_tests;
mod pipelined;
mod timeout;
#[cfg(test)]
mod timeout_tests;

/// What to do once the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostCommit {
    /// Wake the cron workers (a NOTIFY on `cron_trigger` in the `cron_db` database:
    /// [`super::notify`]).
    NotifyCron,
    /// A NOTIFY on `channel` with `payload` in the `cron_db` database, where every host
    /// LISTENs ([`super::listen`]; Odoo's post-commit `pg_notify('imbus', …)` on
    /// `postgres`).
    Notify {
        /// The channel (an identifier).
        channel: String,
        /// The payload (under 8000 bytes).
        payload: String,
    },
}

/// The savepoint set after a cron job's lock is taken: the handler's work is undone to it
/// (its failure, or its own rollback) without losing the lock.
pub const JOB_SAVEPOINT: &str = "inphms_cron_job";

/// The first key of the session-level advisory lock a cron job's run holds
/// (`pg_advisory_lock(JOB_LOCK_NAMESPACE, ir_cron.id)`; `0x696e6372`, "incr"): a key space of
/// its own, apart from addons' advisory locks.
pub const JOB_LOCK_NAMESPACE: i32 = 0x696e_6372;

/// A cron job running on this cursor (`service::cron`): while set, a commit asked for by the
/// handler first records the run as started ([`JobRun::checkpoint`]: `nextcall` moved on),
/// so that its committed work is never run again; each transaction
/// after it takes the job's lock again; a rollback asked for by the handler goes back to
/// [`JOB_SAVEPOINT`], keeping the lock.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// `ir_cron.id`.
    pub job_id: i64,
    /// The statement recording the run as started.
    pub checkpoint: &'static str,
    /// Its parameters.
    pub checkpoint_params: Vec<SqlValue>,
}

/// A database cursor.
pub struct Cursor {
    pools: Arc<Pools>,
    db: String,
    readonly: bool,
    conn: Option<PooledConn>,
    in_transaction: bool,
    /// The first error after which the transaction must be retried (40001, 40P01, 55P03).
    retryable: Option<DbError>,
    /// Whether a statement failed for writing in a read-only transaction (25006).
    wrote_in_readonly: bool,
    post_commit: Vec<PostCommit>,
    closed: bool,
    /// The limit of each statement: PostgreSQL's `statement_timeout`, set on the connection
    /// before a transaction begins when it has another one ([`PgConn`](super::pool::PgConn)).
    statement_timeout: Option<std::time::Duration>,
    /// The cron job running on this cursor, if any.
    job: Option<JobRun>,
    /// The job whose advisory lock this cursor's connection holds: the connection is kept
    /// across commits and never given back to the pool with it.
    job_lock: Option<i64>,
    /// Whether the connection holding `job_lock` was lost (with the lock): the cursor refuses
    /// any further transaction rather than go on without it.
    job_lock_lost: bool,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("db", &self.db)
            .field("readonly", &self.readonly)
            .field("in_transaction", &self.in_transaction)
            .finish()
    }
}

impl Cursor {
    /// A cursor on `db`; no connection is taken before the first statement.
    pub fn new(pools: Arc<Pools>, db: &str, readonly: bool) -> Cursor {
        Cursor {
            pools,
            db: db.to_owned(),
            readonly,
            conn: None,
            in_transaction: false,
            retryable: None,
            wrote_in_readonly: false,
            post_commit: Vec::new(),
            closed: false,
            statement_timeout: None,
            job: None,
            job_lock: None,
            job_lock_lost: false,
        }
    }

    /// Runs a cron job on this cursor (see [`JobRun`]); its transaction must be open, with
    /// the job's lock taken and [`JOB_SAVEPOINT`] set.
    pub fn set_job(&mut self, job: JobRun) {
        self.job = Some(job);
    }

    /// Ends the job's run on this cursor: commits and rollbacks are plain again (the job's
    /// advisory lock, if held, stays until [`Cursor::unlock_job`]).
    pub fn take_job(&mut self) -> Option<JobRun> {
        self.job.take()
    }

    /// Takes the session-level advisory lock of the cron job `job_id` without waiting, in
    /// the current transaction's connection (begun if needed): true when taken (held until
    /// [`Cursor::unlock_job`], across commits; the connection is kept by this cursor
    /// meanwhile), false when another run holds it.
    pub async fn try_lock_job(&mut self, job_id: i64) -> Result<bool, DbError> {
        if self.job_lock.is_some() {
            return Err(DbError::Other(
                "this cursor already holds a cron job's lock".into(),
            ));
        }
        let rows = self
            .execute_cached(
                &format!("SELECT pg_try_advisory_lock({JOB_LOCK_NAMESPACE}, $1::int4)"),
                &[SqlValue::Int(job_id)],
            )
            .await?;
        let taken = rows.rows.first().and_then(|r| r.first()) == Some(&SqlValue::Bool(true));
        if taken {
            self.job_lock = Some(job_id);
        }
        Ok(taken)
    }

    /// Releases the cron job's advisory lock taken by [`Cursor::try_lock_job`] (nothing to
    /// do when none is held); the connection goes back to the pool when no transaction is
    /// open. When the lock cannot be released, the connection is closed (which releases it).
    pub async fn unlock_job(&mut self) {
        let Some(job_id) = self.job_lock else {
            return;
        };
        let released = match &self.conn {
            Some(conn) => conn
                .query_one(
                    "SELECT pg_advisory_unlock($1::int4, $2::int4)",
                    &[&JOB_LOCK_NAMESPACE, &(job_id as i32)],
                )
                .await
                .ok()
                .and_then(|r| r.try_get::<_, bool>(0).ok()),
            None => None,
        };
        if released == Some(true) {
            self.job_lock = None;
            if !self.in_transaction {
                self.conn = None;
            }
        } else {
            tracing::warn!(target: TARGET, "cannot release the lock of cron job {job_id}: its connection is closed instead");
            self.discard();
        }
    }

    /// Whether the connection holding the cron job's advisory lock was lost.
    pub fn job_lock_lost(&self) -> bool {
        self.job_lock_lost
    }

    /// Bounds every statement of the cursor's transactions (`statement_timeout`):
    /// a request past its time limit has its statement cancelled by PostgreSQL instead of
    /// holding locks and a connection.
    pub fn with_statement_timeout(mut self, timeout: Option<std::time::Duration>) -> Cursor {
        self.statement_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// The database.
    pub fn dbname(&self) -> &str {
        &self.db
    }

    /// Whether the transactions are read-only.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// The first error after which the transaction should be run again, if any.
    pub fn retryable_error(&self) -> Option<&DbError> {
        self.retryable.as_ref()
    }

    /// Whether a statement tried to write in a read-only transaction.
    pub fn wrote_in_readonly(&self) -> bool {
        self.wrote_in_readonly
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Refuses any further use (a job past its time limit).
    pub fn close_for_use(&mut self) {
        self.closed = true;
    }

    /// Takes the actions queued for after the next commit: its owner runs them itself
    /// (a cron run, once its job's lock is released).
    pub fn take_after_commit(&mut self) -> Vec<PostCommit> {
        std::mem::take(&mut self.post_commit)
    }

    /// Queues an action for after the next successful commit.
    pub fn after_commit(&mut self, action: PostCommit) {
        if !self.post_commit.contains(&action) {
            self.post_commit.push(action);
        }
    }

    fn record(&mut self, e: &DbError) {
        if e.is_stale_statement() {
            // The transaction runs again, on statements prepared anew.
            if let Some(conn) = &self.conn {
                conn.forget_statements();
            }
            if self.retryable.is_none() {
                self.retryable = Some(e.clone());
            }
        }
        if e.is_retryable() && self.retryable.is_none() {
            self.retryable = Some(e.clone());
        }
        if e.sqlstate() == Some("25006") {
            self.wrote_in_readonly = true;
        }
    }

    /// The statement beginning a transaction (but for a cron job's).
    fn begin_sql(&self) -> &'static str {
        if self.readonly {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            "BEGIN ISOLATION LEVEL REPEATABLE READ"
        }
    }

    /// Takes a connection and begins the transaction, once.
    async fn begin(&mut self) -> Result<(), DbError> {
        if self.closed {
            return Err(DbError::Other("the cursor is closed".into()));
        }
        if self.in_transaction {
            return Ok(());
        }
        if self.job_lock_lost {
            return Err(DbError::Unavailable(
                "the connection holding the cron job's lock was lost".into(),
            ));
        }
        let mut begin = self.begin_sql().to_owned();
        if let Some(job) = &self.job {
            // A cron job's handler committed: its job is locked again (no other worker takes
            // it while it runs) and the savepoint set again.
            begin.push_str(&format!(
                "; SELECT 1 FROM ir_cron WHERE id = {} FOR NO KEY UPDATE; SAVEPOINT {JOB_SAVEPOINT}",
                job.job_id
            ));
        }
        // A connection found dead (the server restarted) is thrown away, and one new one
        // is tried.
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.conn = Some(self.pools.get(&self.db).await?);
            }
            let set = self.timeout_sql();
            let conn = self.conn.as_ref().expect("just set");
            match timeout::begin_on(conn, set.as_deref(), &begin).await {
                Ok(()) => {
                    if set.is_some() {
                        self.timeout_set();
                    }
                    self.in_transaction = true;
                    return Ok(());
                }
                Err(e) => {
                    let err = DbError::from_pg(&e);
                    // Another connection would not hold the job's lock.
                    let pinned = self.job_lock.is_some();
                    self.discard();
                    if attempt == 1 || pinned || !(err.is_unavailable() || e.is_closed()) {
                        return Err(err);
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Drops the connection instead of giving it back (closing it releases a job's advisory
    /// lock it holds).
    fn discard(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = deadpool::managed::Object::take(conn);
        }
        self.in_transaction = false;
        if self.job_lock.take().is_some() {
            self.job_lock_lost = true;
        }
    }

    /// Gives the connection back to the pool after a transaction, unless it holds a cron
    /// job's advisory lock (then the cursor keeps it for the job's next transaction).
    fn release(&mut self) {
        if self.job_lock.is_none() {
            self.conn = None;
        }
    }

    /// Runs one statement with `$n` parameters; returns its rows and row count.
    pub async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<SqlRows, DbError> {
        self.run(sql, params, false).await
    }

    /// [`Cursor::execute`] for the host's own fixed statements run again and again (the
    /// cron workers'): prepared once per connection and kept (one round trip per run
    /// instead of two). Not for addons' SQL: a kept statement whose result columns change
    /// (`SELECT *` after a column is added) fails instead of being planned again.
    pub async fn execute_cached(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<SqlRows, DbError> {
        self.run(sql, params, true).await
    }

    async fn run(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        cached: bool,
    ) -> Result<SqlRows, DbError> {
        self.begin().await?;
        let result = self.execute_in_transaction(sql, params, cached).await;
        if let Err(e) = &result {
            tracing::debug!(target: TARGET, "bad query: {sql}\nERROR: {e}");
            self.record(e);
            if e.is_unavailable() {
                self.discard();
            }
        }
        result
    }

    async fn execute_in_transaction(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        cached: bool,
    ) -> Result<SqlRows, DbError> {
        let conn = self.conn.as_ref().expect("begun");
        let stmt = if cached {
            conn.prepare_cached(sql).await
        } else {
            conn.prepare_kept(sql).await
        }
        .map_err(|e| DbError::from_pg(&e))?;
        if stmt.params().len() != params.len() {
            return Err(DbError::Other(format!(
                "the statement takes {} parameter(s), {} given",
                stmt.params().len(),
                params.len()
            )));
        }
        let wrapped: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        if stmt.columns().is_empty() {
            let n = conn
                .execute(&stmt, &refs)
                .await
                .map_err(|e| DbError::from_pg(&e))?;
            return Ok(SqlRows {
                rowcount: n,
                ..SqlRows::default()
            });
        }
        let rows = conn
            .query(&stmt, &refs)
            .await
            .map_err(|e| DbError::from_pg(&e))?;
        let columns = stmt.columns().iter().map(|c| c.name().into()).collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut values = Vec::with_capacity(row.len());
            for i in 0..row.len() {
                let v: Raw = row.try_get(i).map_err(|e| DbError::Other(e.to_string()))?;
                values.push(v.0);
            }
            out.push(values.into());
        }
        Ok(SqlRows {
            columns,
            rowcount: out.len() as u64,
            rows: out.into(),
        })
    }

    /// Runs `sql` (several statements, no parameters) in the transaction.
    pub async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.begin().await?;
        let conn = self.conn.as_ref().expect("begun");
        let result = conn
            .batch_execute(sql)
            .await
            .map_err(|e| DbError::from_pg(&e));
        if let Err(e) = &result {
            self.record(e);
            if e.is_unavailable() {
                self.discard();
            }
        }
        result
    }

    /// Commits the transaction (nothing to do when none is open), then runs the post-commit
    /// actions. The connection goes back to the pool.
    pub async fn commit(&mut self) -> Result<(), DbError> {
        if !self.in_transaction {
            self.release();
            return Ok(());
        }
        if let Some(job) = &self.job {
            // A cron job's handler commits: its run is recorded as started in the same
            // transaction, so that this work is never run again. A transaction the handler
            // went on with after an error fails here, instead of PostgreSQL's silent
            // rollback at COMMIT.
            let (sql, params) = (job.checkpoint, job.checkpoint_params.clone());
            if let Err(e) = self.execute_in_transaction(sql, &params, true).await {
                self.record(&e);
                if e.is_unavailable() {
                    self.discard();
                }
                return Err(e);
            }
        }
        let conn = self.conn.as_ref().expect("in a transaction");
        let result = conn
            .batch_execute("COMMIT")
            .await
            .map_err(|e| DbError::from_pg(&e));
        self.in_transaction = false;
        match &result {
            Ok(()) => {
                self.release();
                let actions = std::mem::take(&mut self.post_commit);
                super::notify::post_commit(&self.pools, &self.db, actions).await;
            }
            Err(e) => {
                self.record(e);
                self.post_commit.clear();
                if e.is_unavailable() || self.job_lock.is_none() {
                    self.discard();
                } else {
                    // A COMMIT refused by the server (a deferred constraint, a serialization
                    // failure) ended the transaction: the connection, and the job's lock it
                    // holds, are kept. ROLLBACK only makes sure no transaction is left.
                    let conn = self.conn.as_ref().expect("in a transaction");
                    if conn.batch_execute("ROLLBACK").await.is_err() {
                        self.discard();
                    }
                }
            }
        }
        result
    }

    /// Rolls the transaction back (nothing to do when none is open). The connection goes
    /// back to the pool, or is closed when the rollback fails.
    pub async fn rollback(&mut self) -> Result<(), DbError> {
        self.post_commit.clear();
        if !self.in_transaction {
            self.release();
            return Ok(());
        }
        if self.job.is_some() {
            // A cron job's handler rolls back: its work goes, the job's lock stays.
            let conn = self.conn.as_ref().expect("in a transaction");
            let result = conn
                .batch_execute(&format!("ROLLBACK TO SAVEPOINT {JOB_SAVEPOINT}"))
                .await
                .map_err(|e| DbError::from_pg(&e));
            if result.is_err() {
                self.discard();
            }
            return result;
        }
        let conn = self.conn.as_ref().expect("in a transaction");
        let result = conn
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| DbError::from_pg(&e));
        self.in_transaction = false;
        match result {
            Ok(()) => self.release(),
            Err(_) => self.discard(),
        }
        result
    }

    /// Forgets the retry state before another attempt.
    pub fn reset_attempt(&mut self) {
        self.retryable = None;
        self.wrote_in_readonly = false;
        self.post_commit.clear();
    }

    /// Makes later transactions read/write (Odoo's `ro->rw`).
    pub fn set_readwrite(&mut self) {
        self.readonly = false;
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        if self.job_lock.is_some() {
            // Never back to the pool with a job's lock (an error, a panic, a cancelled run):
            // closing the connection releases it.
            self.discard();
            return;
        }
        if !self.in_transaction {
            return;
        }
        let Some(conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if conn.batch_execute("ROLLBACK").await.is_err() {
                        let _ = deadpool::managed::Object::take(conn);
                    }
                });
            }
            Err(_) => {
                // No runtime to roll back on: closing the connection rolls back.
                let _ = deadpool::managed::Object::take(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{test_info, TestDb};
    use super::super::Pools;
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn typed_values_round_trip() {
        let db = TestDb::create("types").await;
        let pools = Pools::new(test_info(), 4);
        let mut cr = Cursor::new(Arc::clone(&pools), &db.name, false);
        let rows = cr
            .execute(
                "SELECT $1::int AS i, $2::bigint AS b, $3::numeric AS n, $4::text AS t, $5::bool AS ok, \
                 $6::jsonb AS j, $7::bytea AS by, $8::timestamp AS ts, $9::date AS d, NULL::int AS nul, \
                 1.5::float8 AS f, (-1234.5600)::numeric AS n2, 0.001::numeric AS n3, 100000::numeric AS n4, \
                 '2024-01-02 03:04:05.123456+02'::timestamptz AS tz",
                &[
                    SqlValue::Int(7),
                    SqlValue::Int(1 << 40),
                    SqlValue::Numeric("12.50".into()),
                    SqlValue::Text("héllo".into()),
                    SqlValue::Bool(true),
                    SqlValue::Json("{\"a\": [1, 2]}".into()),
                    SqlValue::Bytes(vec![0u8, 1, 255].into()),
                    SqlValue::Timestamp(1_700_000_000_123_456),
                    SqlValue::Date(19_000),
                ],
            )
            .await
            .unwrap();
        let r = &rows.rows[0];
        assert_eq!(rows.columns[0].as_str(), "i");
        assert_eq!(r[0], SqlValue::Int(7));
        assert_eq!(r[1], SqlValue::Int(1 << 40));
        assert_eq!(r[2], SqlValue::Numeric("12.50".into()));
        assert_eq!(r[3], SqlValue::Text("héllo".into()));
        assert_eq!(r[4], SqlValue::Bool(true));
        assert_eq!(r[5], SqlValue::Json("{\"a\": [1, 2]}".into()));
        assert_eq!(r[6], SqlValue::Bytes(vec![0u8, 1, 255].into()));
        assert_eq!(r[7], SqlValue::Timestamp(1_700_000_000_123_456));
        assert_eq!(r[8], SqlValue::Date(19_000));
        assert_eq!(r[9], SqlValue::Null);
        assert_eq!(r[10], SqlValue::Float(1.5));
        assert_eq!(r[11], SqlValue::Numeric("-1234.5600".into()));
        assert_eq!(r[12], SqlValue::Numeric("0.001".into()));
        assert_eq!(r[13], SqlValue::Numeric("100000".into()));
        // 2024-01-02 01:04:05.123456 UTC
        assert_eq!(r[14], SqlValue::Timestamp(1_704_157_445_123_456));
        cr.rollback().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_rollback_errors_and_readonly() {
        let db = TestDb::create("tx").await;
        let pools = Pools::new(test_info(), 4);
        let mut cr = Cursor::new(Arc::clone(&pools), &db.name, false);
        cr.batch("CREATE TABLE t (id int PRIMARY KEY)")
            .await
            .unwrap();
        cr.commit().await.unwrap();
        cr.execute("INSERT INTO t VALUES ($1)", &[SqlValue::Int(1)])
            .await
            .unwrap();
        cr.rollback().await.unwrap();
        let n = cr.execute("SELECT count(*) FROM t", &[]).await.unwrap();
        assert_eq!(n.rows[0][0], SqlValue::Int(0));
        let w = cr
            .execute("INSERT INTO t VALUES (1), (2)", &[])
            .await
            .unwrap();
        assert_eq!(w.rowcount, 2);
        cr.commit().await.unwrap();
        let e = cr
            .execute("INSERT INTO t VALUES (1)", &[])
            .await
            .unwrap_err();
        assert_eq!(e.sqlstate(), Some("23505"), "{e}");
        cr.rollback().await.unwrap();
        let mut ro = Cursor::new(Arc::clone(&pools), &db.name, true);
        let e = ro
            .execute("INSERT INTO t VALUES (3)", &[])
            .await
            .unwrap_err();
        assert_eq!(e.sqlstate(), Some("25006"));
        assert!(ro.wrote_in_readonly());
        ro.rollback().await.unwrap();
        // Dropped in a transaction: rolled back, the row is not there.
        {
            let mut c = Cursor::new(Arc::clone(&pools), &db.name, false);
            c.execute("INSERT INTO t VALUES (9)", &[]).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let n = cr
            .execute("SELECT count(*) FROM t WHERE id = 9", &[])
            .await
            .unwrap();
        assert_eq!(n.rows[0][0], SqlValue::Int(0));
        cr.rollback().await.unwrap();
        pools.close_db(&db.name);
    }

    async fn pid(cr: &mut Cursor) -> SqlValue {
        let rows = cr.execute("SELECT pg_backend_pid()", &[]).await.unwrap();
        rows.rows[0][0].clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_lock_holds_across_commits_and_never_goes_back_to_the_pool() {
        let db = TestDb::create("joblock").await;
        let pools = Pools::new(test_info(), 4);
        let mut a = Cursor::new(Arc::clone(&pools), &db.name, false);
        assert!(a.try_lock_job(7).await.unwrap());
        let first = pid(&mut a).await;
        a.commit().await.unwrap();
        // Between two transactions of the run: still held, by the same connection.
        let mut b = Cursor::new(Arc::clone(&pools), &db.name, false);
        assert!(!b.try_lock_job(7).await.unwrap());
        assert!(b.try_lock_job(8).await.is_ok_and(|taken| taken));
        b.unlock_job().await;
        b.rollback().await.unwrap();
        assert_eq!(pid(&mut a).await, first);
        a.rollback().await.unwrap();
        let mut b = Cursor::new(Arc::clone(&pools), &db.name, false);
        assert!(!b.try_lock_job(7).await.unwrap());
        b.rollback().await.unwrap();
        // Released: another run takes it.
        a.unlock_job().await;
        let mut c = Cursor::new(Arc::clone(&pools), &db.name, false);
        assert!(c.try_lock_job(7).await.unwrap());
        c.commit().await.unwrap();
        // Dropped while holding it: its connection is closed, which releases it.
        drop(c);
        let mut d = Cursor::new(Arc::clone(&pools), &db.name, false);
        let mut taken = false;
        for _ in 0..50 {
            taken = d.try_lock_job(7).await.unwrap();
            if taken {
                break;
            }
            d.rollback().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(taken, "the lock of a dropped cursor was not released");
        d.unlock_job().await;
        d.rollback().await.unwrap();
        // No pooled connection holds a job lock.
        let mut e = Cursor::new(Arc::clone(&pools), &db.name, false);
        let held = e
            .execute(
                &format!("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {JOB_LOCK_NAMESPACE} \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(held.rows[0][0], SqlValue::Int(0));
        e.rollback().await.unwrap();
        pools.close_db(&db.name);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_give_a_retryable_serialization_failure() {
        let db = TestDb::create("serial").await;
        let pools = Pools::new(test_info(), 4);
        let mut setup = Cursor::new(Arc::clone(&pools), &db.name, false);
        setup
            .batch("CREATE TABLE c (id int PRIMARY KEY, v int); INSERT INTO c VALUES (1, 0)")
            .await
            .unwrap();
        setup.commit().await.unwrap();
        let mut a = Cursor::new(Arc::clone(&pools), &db.name, false);
        let mut b = Cursor::new(Arc::clone(&pools), &db.name, false);
        a.execute("SELECT v FROM c WHERE id = 1", &[])
            .await
            .unwrap();
        b.execute("SELECT v FROM c WHERE id = 1", &[])
            .await
            .unwrap();
        a.execute("UPDATE c SET v = v + 1 WHERE id = 1", &[])
            .await
            .unwrap();
        a.commit().await.unwrap();
        let e = b
            .execute("UPDATE c SET v = v + 1 WHERE id = 1", &[])
            .await
            .unwrap_err();
        assert_eq!(e.sqlstate(), Some("40001"), "{e}");
        assert!(b.retryable_error().is_some());
        b.rollback().await.unwrap();
    }
}
