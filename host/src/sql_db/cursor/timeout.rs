//! The cursor's time limit, PostgreSQL's `statement_timeout`, kept by its connection
//! ([`PgConn`](crate::sql_db::pool::PgConn) remembers it): a `SET` is sent, as a statement
//! of its own before the `BEGIN`, only when the connection has another limit.

use super::Cursor;
use crate::sql_db::PooledConn;

impl Cursor {
    /// The cursor's `statement_timeout` in milliseconds (0: none).
    fn timeout_ms(&self) -> u128 {
        self.statement_timeout.map_or(0, |t| t.as_millis())
    }

    /// `SET statement_timeout` for the cursor's connection, when it does not have the
    /// cursor's limit already: sent as a statement of its own before the `BEGIN` (in the
    /// same Query message, PostgreSQL would make it part of the transaction, undone by a
    /// rollback), so that it lasts for the connection. The connection's limit counts as
    /// unknown until [`Cursor::timeout_set`] (a cursor dropped while it waits leaves it
    /// so, and the next one sets it again).
    pub(super) fn timeout_sql(&mut self) -> Option<String> {
        let ms = self.timeout_ms();
        let conn = self.conn.as_mut()?;
        if conn.statement_timeout_ms() == Some(ms) {
            return None;
        }
        conn.forget_statement_timeout();
        Some(format!("SET statement_timeout = {ms}"))
    }

    /// Records that the connection now has the cursor's `statement_timeout`.
    pub(super) fn timeout_set(&mut self) {
        let ms = self.timeout_ms();
        if let Some(conn) = self.conn.as_mut() {
            conn.set_statement_timeout_ms(ms);
        }
    }
}

/// Begins a transaction on `conn` with `begin`, after `set` (the connection's
/// `statement_timeout`) when given: both sent before the first answer is awaited.
pub(in crate::sql_db::cursor) async fn begin_on(
    conn: &PooledConn,
    set: Option<&str>,
    begin: &str,
) -> Result<(), tokio_postgres::Error> {
    match set {
        Some(set) => {
            let (set, begun) = tokio::join!(conn.batch_execute(set), conn.batch_execute(begin));
            set.and(begun)
        }
        None => conn.batch_execute(begin).await,
    }
}
