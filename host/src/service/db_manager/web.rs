//! The database manager as addons reach it (`HostApi::db_service`, for the `web` addon's
//! `/web/database/*` pages): the `db` service's calls, plus five that only addons get,
//! since they pass files and sessions rather than base64 (never offered over RPC):
//!
//! - `backup_file(master_pwd, name, format)`: `{"path"}` of a new backup file the caller
//!   streams and removes;
//! - `restore_file(master_pwd, name, path, copy)`: restores the backup at `path`;
//! - `check_master(master_pwd)`: `true`, else `AccessDenied` (checked before an upload is
//!   written anywhere);
//! - `authenticate(db, login, password)`: `{"uid"}` of the user of `db` whose password it
//!   is (the page logs the new admin in), else `AccessDenied`;
//! - `countries()`: what `list_countries` gives, without its master password (the create
//!   form lists them before any password is typed).

use super::{dump, user_error, Manager, Result};
use crate::host_api::HostServices;
use crate::service::rpc::fault::RpcFault;
use inphms_sdk::abi::{ErrorInfo, ErrorKind, HostApiRef, SqlValue};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// Hands `manager` to the host API `api` (its `db_service` callback).
pub fn install(api: HostApiRef, manager: &Arc<Manager>) {
    let manager = Arc::clone(manager);
    HostServices::set_db_service(
        api,
        Box::new(move |method, params| {
            let m = Arc::clone(&manager);
            Box::pin(async move {
                m.web_call(&method, &params)
                    .await
                    .map_err(|f| error_info(&f))
            })
        }),
    );
}

/// A fault as the SDK's error: `AccessDenied`/`AccessError` are access errors, `UserError`
/// a user error, others keep their Python class name.
pub fn error_info(f: &RpcFault) -> ErrorInfo {
    let (kind, name, message) = match f {
        RpcFault::AccessDenied(m) => (
            ErrorKind::Access,
            inphms_sdk::exceptions::ACCESS_DENIED,
            m.as_str(),
        ),
        RpcFault::AccessError(m) => (
            ErrorKind::Access,
            inphms_sdk::exceptions::ACCESS_ERROR,
            m.as_str(),
        ),
        RpcFault::UserError(m) => (
            ErrorKind::User,
            inphms_sdk::exceptions::USER_ERROR,
            m.as_str(),
        ),
        RpcFault::Application { name, message } => {
            (ErrorKind::User, name.as_str(), message.as_str())
        }
    };
    ErrorInfo {
        kind,
        name: name.into(),
        message: message.into(),
        arguments: json!([message]).to_string().into(),
        debug: Default::default(),
    }
}

fn text(params: &[Value], i: usize) -> String {
    params
        .get(i)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

impl Manager {
    /// The call `method` from an addon: the `db` service's, or one of the module's own.
    pub async fn web_call(&self, method: &str, params: &[Value]) -> Result<Value> {
        match method {
            "backup_file" => {
                self.check_super(&text(params, 0))?;
                self.check_enabled()?;
                let format = dump::Format::parse(&text(params, 2))?;
                let file = self.dump_to_file(&text(params, 1), format).await?;
                let path = file
                    .into_temp_path()
                    .keep()
                    .map_err(|e| super::exception(format!("cannot keep the backup file: {e}")))?;
                Ok(json!({"path": path.to_string_lossy()}))
            }
            "restore_file" => {
                self.check_super(&text(params, 0))?;
                self.check_enabled()?;
                let path = PathBuf::from(text(params, 2));
                let copy = params.get(3).and_then(Value::as_bool).unwrap_or(false);
                self.restore_file(&text(params, 1), &path, copy).await?;
                Ok(json!(true))
            }
            "check_master" => {
                self.check_super(&text(params, 0))?;
                self.check_enabled()?;
                Ok(json!(true))
            }
            "is_default_master" => Ok(json!(self.master.is_default())),
            "countries" => Ok(json!(super::COUNTRIES)),
            "authenticate" => {
                let uid = self
                    .authenticate(&text(params, 0), &text(params, 1), &text(params, 2))
                    .await?;
                Ok(json!({"uid": uid}))
            }
            _ => self.dispatch(method, params).await,
        }
    }

    /// The id of the active user `login` of `db` whose password is `password`.
    async fn authenticate(&self, db: &str, login: &str, password: &str) -> Result<i64> {
        let denied = || RpcFault::AccessDenied("Access Denied".into());
        if login.is_empty() || password.is_empty() {
            return Err(denied());
        }
        let mut cr = self.databases.cursor(db, true);
        let rows = cr
            .execute(
                "SELECT id, coalesce(password, '') FROM res_users WHERE login = $1 AND active",
                &[SqlValue::Text(login.into())],
            )
            .await;
        let _ = cr.rollback().await;
        drop(cr);
        let rows = rows.map_err(|e| user_error(e.to_string()))?;
        let Some(row) = rows.rows.first() else {
            return Err(denied());
        };
        match (row.first(), row.get(1)) {
            (Some(SqlValue::Int(id)), Some(SqlValue::Text(hash)))
                if base_identity::crypt::verify(
                    password,
                    hash,
                    base_identity::crypt::DEFAULT_ROUNDS,
                )
                .valid =>
            {
                Ok(*id)
            }
            _ => Err(denied()),
        }
    }
}
