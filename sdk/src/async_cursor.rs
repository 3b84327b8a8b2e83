//! [`AsyncCursor`]: the request's database cursor as an async route awaits it. The host
//! runs each statement on its runtime ([`HostApi::cursor_execute_async`](crate::abi::HostApi)),
//! so no thread waits for PostgreSQL; the transaction is the request's, as for
//! [`Request::cursor`] (opened by the host, committed when the handler returns `Ok`, rolled
//! back on an error, the handler run again after a serialization failure).

use crate::abi;
use crate::cursor::{Rows, SqlValue};
use crate::{Error, Request, Result};
use abi_stable::std_types::{RStr, RVec};
use std::future::Future;

/// The database cursor of an async route's request; see the [module docs](self).
///
/// ```
/// use inphms_sdk::{route, Request, Result};
///
/// /// `SELECT count(*)` awaited: the worker serves other requests meanwhile.
/// #[route("/notes/count", auth = "none", readonly = true)]
/// async fn count(req: &mut Request<'_>) -> Result<String> {
///     let mut cr = req.async_cursor()?;
///     let rows = cr.execute("SELECT count(*) AS n FROM note", &[]).await?;
///     let n: i64 = rows.first().map(|r| r.get("n")).transpose()?.unwrap_or(0);
///     Ok(n.to_string())
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone)]
pub struct AsyncCursor {
    handle: u64,
    db: String,
}

impl AsyncCursor {
    /// The database's name.
    pub fn dbname(&self) -> &str {
        &self.db
    }

    /// Runs one statement with `$1, $2...` parameters (see [`params!`](crate::params)) and
    /// returns its rows and row count, as [`Cursor::execute`](crate::Cursor::execute).
    /// The first statement of the transaction travels with its `BEGIN`.
    pub fn execute(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<Rows>> + Send + 'static {
        let started = crate::host::api().and_then(|api| {
            let f = api
                .cursor_execute_async()
                .ok_or_else(|| Error::internal("this host offers no async cursor"))?;
            let params: RVec<abi::SqlValue> =
                params.iter().cloned().map(SqlValue::into_abi).collect();
            Ok(f(api.ctx(), self.handle, RStr::from_str(sql), params))
        });
        async move {
            started?
                .await
                .into_result()
                .map(Rows::from_abi)
                .map_err(|e| Error::from_info(&e))
        }
    }
}

impl Request<'_> {
    /// The database cursor of this request, for an async route (see [`AsyncCursor`]); an
    /// error when the request has no database.
    pub fn async_cursor(&self) -> Result<AsyncCursor> {
        let cursor = self.cursor()?;
        Ok(AsyncCursor {
            handle: cursor.handle(),
            db: cursor.dbname().to_owned(),
        })
    }
}
