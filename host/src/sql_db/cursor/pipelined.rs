//! [`Cursor::execute_pipelined`]: a statement sent with the `BEGIN` of its transaction, in
//! one round trip (tokio-postgres pipelines the requests issued on a connection before
//! their answers come). The async cursor of async routes uses it
//! (`HostApi::cursor_execute_async`).

use super::timeout::begin_on;
use super::{Cursor, TARGET};
use crate::sql_db::value::{Param, Raw};
use crate::sql_db::{DbError, PooledConn};
use inphms_sdk::abi::{SqlRows, SqlValue};
use tokio_postgres::types::ToSql;

impl Cursor {
    /// [`Cursor::execute`], but the first statement of a transaction goes with its
    /// `BEGIN`: the two are issued together, without waiting in between. A statement the
    /// connection keeps prepared (run on it before) is bound and executed in that same
    /// round trip; another is prepared there, then executed (and kept). A cron job's
    /// cursor, or one already in a transaction, runs as [`Cursor::execute`].
    pub async fn execute_pipelined(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<SqlRows, DbError> {
        if self.in_transaction || self.job.is_some() || self.closed || self.job_lock_lost {
            return self.execute(sql, params).await;
        }
        if self.conn.is_none() {
            self.conn = Some(self.pools.get(&self.db).await?);
        }
        let begin = self.begin_sql();
        let set = self.timeout_sql();
        // Counted as begun before its answer: dropped while waiting (a request cancelled
        // at `limit_time_real`), the cursor rolls back (a ROLLBACK without a transaction
        // is only a warning) rather than give the pool a connection in a transaction.
        self.in_transaction = true;
        let conn = self.conn.as_ref().expect("just set");
        let begin = begin_on(conn, set.as_deref(), begin);
        let (begun, result) = tokio::join!(begin, prepared(conn, sql, params));
        if let Err(e) = begun {
            let err = DbError::from_pg(&e);
            let dead = err.is_unavailable() || e.is_closed();
            self.discard();
            if dead && result.is_err() {
                // A connection found dead (the server restarted): once more, on a new one.
                return self.execute(sql, params).await;
            }
            return Err(err);
        }
        if set.is_some() {
            self.timeout_set();
        }
        self.recorded(sql, result)
    }

    /// The statement's result, its error recorded as [`Cursor::execute`] does.
    fn recorded(
        &mut self,
        sql: &str,
        result: Result<SqlRows, DbError>,
    ) -> Result<SqlRows, DbError> {
        if let Err(e) = &result {
            tracing::debug!(target: TARGET, "bad query: {sql}\nERROR: {e}");
            self.record(e);
            if e.is_unavailable() {
                self.discard();
            }
        }
        result
    }
}

/// A statement, kept prepared on the connection ([`PgConn::prepare_kept`]): executed at
/// once when kept (its request goes with the `BEGIN`), else prepared (that request goes
/// with the `BEGIN`) then executed.
///
/// [`PgConn::prepare_kept`]: crate::sql_db::pool::PgConn::prepare_kept
async fn prepared(conn: &PooledConn, sql: &str, params: &[SqlValue]) -> Result<SqlRows, DbError> {
    let stmt = conn
        .prepare_kept(sql)
        .await
        .map_err(|e| DbError::from_pg(&e))?;
    if stmt.params().len() != params.len() {
        return Err(DbError::Other(format!(
            "the statement takes {} parameter(s), {} given",
            stmt.params().len(),
            params.len()
        )));
    }
    let wrapped: Vec<Param<'_>> = params.iter().map(Param).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = wrapped.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
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
        out.push(values(row)?);
    }
    Ok(SqlRows {
        columns,
        rowcount: out.len() as u64,
        rows: out.into(),
    })
}

fn values(row: &tokio_postgres::Row) -> Result<abi_stable::std_types::RVec<SqlValue>, DbError> {
    let mut values = Vec::with_capacity(row.len());
    for i in 0..row.len() {
        let v: Raw = row.try_get(i).map_err(|e| DbError::Other(e.to_string()))?;
        values.push(v.0);
    }
    Ok(values.into())
}
