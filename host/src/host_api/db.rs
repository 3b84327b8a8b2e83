//! The database callbacks of the host API (`cursor_env`, `cursor_execute`, `cursor_commit`,
//! `cursor_rollback`, `cron_trigger`, `db_list`): each is guarded so that no panic unwinds
//! into addon code, and every failure is an error value.

use crate::sql_db::dblist::{self, ListError};
use crate::sql_db::{env, DbError};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use inphms_sdk::abi::{ErrorInfo, ErrorKind, SqlRows, SqlValue};

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

/// `HostApi::cursor_env`.
pub extern "C" fn cursor_env() -> RResult<u64, ErrorInfo> {
    guard(|| wrap(env::current()))
}

/// `HostApi::cursor_execute`.
pub extern "C" fn cursor_execute(
    cursor: u64,
    sql: RStr<'_>,
    params: RVec<SqlValue>,
) -> RResult<SqlRows, ErrorInfo> {
    guard(|| wrap(env::execute(cursor, sql.as_str(), params)))
}

/// `HostApi::cursor_commit`.
pub extern "C" fn cursor_commit(cursor: u64) -> RResult<(), ErrorInfo> {
    guard(|| wrap(env::commit(cursor)))
}

/// `HostApi::cursor_rollback`.
pub extern "C" fn cursor_rollback(cursor: u64) -> RResult<(), ErrorInfo> {
    guard(|| wrap(env::rollback(cursor)))
}

/// `HostApi::cron_trigger`.
pub extern "C" fn cron_trigger(cursor: u64, job: RStr<'_>) -> RResult<u64, ErrorInfo> {
    guard(|| wrap(env::cron_trigger(cursor, job.as_str())))
}

/// `HostApi::db_list`.
pub extern "C" fn db_list(host: RStr<'_>) -> RResult<RVec<RString>, ErrorInfo> {
    guard(|| {
        let Some(config) = crate::modules::registry::config() else {
            return wrap(Err(DbError::Other("the server is not set up".into())));
        };
        let host = host.as_str().to_owned();
        let list = env::block_on(async move { dblist::db_list(&config, false, &host).await });
        match list {
            Ok(Ok(list)) => RResult::ROk(list.into_iter().map(RString::from).collect()),
            Ok(Err(ListError::AccessDenied)) => RResult::RErr(ErrorInfo {
                kind: ErrorKind::Access,
                name: "inphms.exceptions.AccessDenied".into(),
                message: "Access Denied".into(),
                arguments: "[\"Access Denied\"]".into(),
                debug: RString::new(),
            }),
            Ok(Err(ListError::Db(e))) | Err(e) => wrap(Err(e)),
        }
    })
}
