//! The database callbacks of the host API (`cursor_env`, `cursor_execute`, `cursor_commit`,
//! `cursor_rollback`, `cron_trigger`, `db_list`): each finds the host's databases through
//! its `ctx`, is guarded so that no panic unwinds into addon code, and returns every failure
//! as an error value.

use super::HostServices;
use crate::sql_db::dblist::{self, ListError};
use crate::sql_db::{env, Databases, DbError};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use inphms_sdk::abi::{ErrorInfo, ErrorKind, HostCtx, SqlRows, SqlValue};

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
