//! The database callbacks of the host API (`cursor_env`, `cursor_execute`, `cursor_commit`,
//! `cursor_rollback`, `cron_trigger`, `db_list`, `db_server_status`, `cursor_notify`,
//! `db_execute`, `listen_wait`): each finds the host's databases through
//! its `ctx`, is guarded so that no panic unwinds into addon code, and returns every failure
//! as an error value.

use super::HostServices;
use crate::sql_db::dblist::{self, ListError};
use crate::sql_db::{env, env_async, Databases, DbError};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use async_ffi::{FfiFuture, FutureExt};
use inphms_sdk::abi::{ErrorInfo, ErrorKind, Heard, HostCtx, SqlRows, SqlValue};

fn guard<T>(f: impl FnOnce() -> RResult<T, ErrorInfo>) -> RResult<T, ErrorInfo> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        RResult::RErr(env::error_info(&DbError::Other(
            "the host failed to run the database call".into(),
        )))
    })
}

fn wrap<T>(r: Result<T, DbError>) -> RResult<T, ErrorInfo> {
    r.map_err(|e| env::error_info(&e)).into()
}

/// Runs `f` with the databases of the host `ctx` names, guarded.
fn with_databases<T>(
    ctx: HostCtx,
    f: impl FnOnce(&HostServices, &Databases) -> Result<T, DbError>,
) -> RResult<T, ErrorInfo> {
    guard(|| {
        let Some(host) = HostServices::of(ctx) else {
            return wrap(Err(DbError::Other("no host behind this handle".into())));
        };
        wrap(f(host, host.http.databases()))
    })
}

/// `HostApi::cursor_env`.
pub extern "C" fn cursor_env(_: HostCtx) -> RResult<u64, ErrorInfo> {
    guard(|| wrap(env::current()))
}

/// `HostApi::cursor_execute`.
pub extern "C" fn cursor_execute(
    ctx: HostCtx,
    cursor: u64,
    sql: RStr<'_>,
    params: RVec<SqlValue>,
) -> RResult<SqlRows, ErrorInfo> {
    with_databases(ctx, |_, dbs| {
        dbs.cursors().execute(cursor, sql.as_str(), params)
    })
}

/// `HostApi::cursor_execute_async`: the statement as a future of the host's runtime
/// ([`env_async::execute`]), sent with its transaction's `BEGIN` when it is the first.
pub extern "C" fn cursor_execute_async(
    ctx: HostCtx,
    cursor: u64,
    sql: RStr<'_>,
    params: RVec<SqlValue>,
) -> FfiFuture<RResult<SqlRows, ErrorInfo>> {
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let host = HostServices::of(ctx)
            .ok_or_else(|| DbError::Other("no host behind this handle".into()))?;
        Ok(env_async::execute(
            host.http.databases().cursors(),
            cursor,
            sql.as_str().to_owned(),
            params.into_vec(),
        ))
    }));
    match started {
        Ok(Ok(statement)) => async move { wrap(statement.await) }.into_ffi(),
        Ok(Err(e)) => std::future::ready(wrap(Err(e))).into_ffi(),
        Err(_) => std::future::ready(wrap(Err(DbError::Other(
            "the host failed to run the database call".into(),
        ))))
        .into_ffi(),
    }
}

/// `HostApi::cursor_commit`.
pub extern "C" fn cursor_commit(ctx: HostCtx, cursor: u64) -> RResult<(), ErrorInfo> {
    with_databases(ctx, |_, dbs| dbs.cursors().commit(cursor))
}

/// `HostApi::cursor_rollback`.
pub extern "C" fn cursor_rollback(ctx: HostCtx, cursor: u64) -> RResult<(), ErrorInfo> {
    with_databases(ctx, |_, dbs| dbs.cursors().rollback(cursor))
}

/// `HostApi::cron_trigger`.
pub extern "C" fn cron_trigger(
    ctx: HostCtx,
    cursor: u64,
    job: RStr<'_>,
) -> RResult<u64, ErrorInfo> {
    with_databases(ctx, |_, dbs| {
        dbs.cursors().cron_trigger(cursor, job.as_str())
    })
}

/// `HostApi::db_list`.
pub extern "C" fn db_list(ctx: HostCtx, host: RStr<'_>) -> RResult<RVec<RString>, ErrorInfo> {
    let list = with_databases(ctx, |services, dbs| {
        // The registries' configuration: the one a SIGHUP last gave.
        let Some(config) = services.http.registries.config() else {
            return Err(DbError::Other("the server is not set up".into()));
        };
        let host = host.as_str().to_owned();
        dbs.cursors()
            .block_on(async move { dblist::db_list(dbs, &config, false, &host).await })
    });
    match list {
        RResult::ROk(Ok(list)) => RResult::ROk(list.into_iter().map(RString::from).collect()),
        RResult::ROk(Err(ListError::AccessDenied)) => RResult::RErr(ErrorInfo {
            kind: ErrorKind::Access,
            name: inphms_sdk::exceptions::ACCESS_DENIED.into(),
            message: "Access Denied".into(),
            arguments: "[\"Access Denied\"]".into(),
            debug: RString::new(),
        }),
        RResult::ROk(Err(ListError::Db(e))) => wrap(Err(e)),
        RResult::RErr(e) => RResult::RErr(e),
    }
}

/// `HostApi::db_server_status`: `SELECT 1` on a pooled connection to the server's
/// `postgres` database (Odoo's health check opens a cursor there); fails fast while the
/// server is in its reconnection backoff, and after [`STATUS_TIMEOUT`] at most.
pub extern "C" fn db_server_status(ctx: HostCtx) -> RResult<(), ErrorInfo> {
    with_databases(ctx, |_, dbs| {
        let pools = std::sync::Arc::clone(dbs.pools());
        let check = async move {
            let conn = pools.get("postgres").await?;
            conn.simple_query("SELECT 1")
                .await
                .map(|_| ())
                .map_err(|e| DbError::from_pg(&e))
        };
        dbs.cursors().block_on(async move {
            tokio::time::timeout(STATUS_TIMEOUT, check)
                .await
                .unwrap_or_else(|_| {
                    Err(DbError::Unavailable(format!(
                        "PostgreSQL did not answer within {} s",
                        STATUS_TIMEOUT.as_secs()
                    )))
                })
        })?
    })
}

/// How long [`db_server_status`] waits for the server: a health check answers, even when
/// PostgreSQL hangs (a connection that never answers is not waited for).
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `HostApi::cursor_notify`.
pub extern "C" fn cursor_notify(
    ctx: HostCtx,
    cursor: u64,
    channel: RStr<'_>,
    payload: RStr<'_>,
) -> RResult<(), ErrorInfo> {
    with_databases(ctx, |_, dbs| {
        dbs.cursors()
            .notify_after_commit(cursor, channel.as_str(), payload.as_str())
    })
}

/// `HostApi::db_execute`: a cursor of its own on `db`, one statement, committed.
pub extern "C" fn db_execute(
    ctx: HostCtx,
    db: RStr<'_>,
    sql: RStr<'_>,
    params: RVec<SqlValue>,
) -> RResult<SqlRows, ErrorInfo> {
    with_databases(ctx, |_, dbs| {
        let mut cr = dbs.cursor(db.as_str(), false);
        let (sql, params) = (sql.as_str().to_owned(), params.into_vec());
        dbs.cursors().block_on(async move {
            let rows = cr.execute(&sql, &params).await;
            match rows {
                Ok(rows) => cr.commit().await.map(|()| rows),
                Err(e) => {
                    let _ = cr.rollback().await;
                    Err(e)
                }
            }
        })?
    })
}

/// `HostApi::listen_wait`.
pub extern "C" fn listen_wait(
    ctx: HostCtx,
    channel: RStr<'_>,
    timeout_ms: u64,
) -> RResult<Heard, RString> {
    let heard = with_databases(ctx, |_, dbs| {
        dbs.listeners().wait(
            channel.as_str(),
            std::time::Duration::from_millis(timeout_ms.min(3_600_000)),
        )
    });
    match heard {
        RResult::ROk(h) => RResult::ROk(Heard {
            payloads: h.payloads.into_iter().map(RString::from).collect(),
            resync: h.resync,
        }),
        RResult::RErr(e) => RResult::RErr(e.message),
    }
}
