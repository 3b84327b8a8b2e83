//! Odoo's RPC services (`odoo.http.dispatch_rpc`): `common` ([`common`]), `db`
//! (`service::db_manager`) and `object` ([`object`]), reached by the `base` addon's
//! `/xmlrpc/<service>`, `/xmlrpc/2/<service>` and `/jsonrpc` routes through the host API's
//! `dispatch_rpc` callback. The routes (and the XML-RPC encoding) are `base`'s, as in Odoo;
//! what only the host can do is here: find and call the `#[rpc]` methods addons register
//! for a database, and the database service.
//!
//! A call runs on the route handler's thread (a blocking one); an addon's method runs in a
//! transaction of its own ([`call_method`]), committed when it succeeds. Failures are
//! [`RpcFault`]s, Odoo's exception classes.

pub mod common;
mod convert;
pub mod fault;
pub mod object;

pub use fault::RpcFault;

use super::server::Host;
use crate::host_api::rpc::RpcDispatch;
use crate::modules::registry::Registry;
use crate::sql_db::env;
use abi_stable::std_types::{ROption, RString};
use inphms_sdk::abi::{ErrorInfo, HttpRequest, Invocation, ItemKind};
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};

/// The RPC services of one host, handed to its host API (see `host_api::rpc`).
#[derive(Debug, Default)]
pub struct RpcServices {
    /// The host, set once it is built (the host API it holds is built with these services).
    host: OnceLock<Host>,
}

impl RpcServices {
    /// Services for a host still being built ([`RpcServices::set_host`] completes them).
    pub fn new() -> Arc<RpcServices> {
        Arc::new(RpcServices::default())
    }

    /// Gives the services their host.
    pub fn set_host(&self, host: Host) {
        let _ = self.host.set(host);
    }

    /// Runs `method` of `service` (Odoo's `dispatch_rpc`); an unknown service is Odoo's
    /// `KeyError`.
    pub fn call(&self, service: &str, method: &str, params: &[Value]) -> Result<Value, RpcFault> {
        let Some(host) = self.host.get() else {
            return Err(RpcFault::application(
                "builtins.Exception",
                "the server is starting",
            ));
        };
        match service {
            "common" => common::dispatch(host, method, params),
            "object" => object::dispatch(host, method, params),
            "db" => {
                let dbs = Arc::clone(&host.databases);
                dbs.cursors()
                    .block_on(super::db_manager::dispatch(host, method, params))
                    .map_err(|e| RpcFault::application("builtins.Exception", e.to_string()))?
            }
            other => Err(RpcFault::application("builtins.KeyError", other)),
        }
    }
}

impl RpcDispatch for RpcServices {
    fn dispatch(
        &self,
        service: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, Box<ErrorInfo>> {
        self.call(service, method, &params)
            .map_err(|f| Box::new(f.to_error_info()))
    }
}

/// The registry of `db` (loaded if needed); a database that cannot be opened is the
/// application error psycopg2 would raise.
///
/// A name that is no database is refused before anything is loaded or connected (the
/// callers have not checked a password yet): from the cached list or one query on a pooled
/// connection, so random names make no pool, no metrics series and hold no loading lock.
pub fn registry(host: &Host, db: &str) -> Result<Arc<Registry>, RpcFault> {
    let registries = Arc::clone(&host.registries);
    let databases = Arc::clone(&host.databases);
    let config = Arc::clone(&host.config);
    let name = db.to_owned();
    host.databases
        .cursors()
        .block_on(async move {
            if registries.cached(&name).is_none()
                && !crate::sql_db::dblist::exists(&databases, &config, &name).await?
            {
                return Ok(Err(missing_db(&name)));
            }
            Ok(registries
                .get(&name)
                .await
                .map_err(|e| RpcFault::application("psycopg2.OperationalError", e.to_string())))
        })
        .map_err(|e| RpcFault::application("builtins.Exception", e.to_string()))?
        .map_err(|e: crate::sql_db::DbError| {
            RpcFault::application("psycopg2.OperationalError", e.to_string())
        })?
}

/// psycopg2's `OperationalError` for a database that does not exist.
fn missing_db(db: &str) -> RpcFault {
    RpcFault::application(
        "psycopg2.OperationalError",
        format!("connection to server failed: FATAL:  database \"{db}\" does not exist"),
    )
}

/// Calls the `#[rpc]` method `method` of `model` on `db` as `uid` with `args` and `kwargs`,
/// in a transaction of its own (committed on success, rolled back on failure, retried on a
/// serialization failure as Odoo's `retrying`). No access check: the callers check first.
pub fn call_method(
    host: &Host,
    reg: &Registry,
    uid: i64,
    model: &str,
    method: &str,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value, RpcFault> {
    let (addon, item) = match reg.rpc_method(&host.registries.server_wide(), model, method) {
        Ok(found) => found,
        Err(false) => return Err(RpcFault::UserError(format!("Object {model} doesn't exist"))),
        Err(true) => {
            return Err(RpcFault::application(
                "builtins.AttributeError",
                format!("The method '{method}' does not exist on the model '{model}'"),
            ))
        }
    };
    let params = json!({"args": args, "kwargs": kwargs}).to_string();
    let db = reg.db_name.as_str();
    let call = addon.library.module.call();
    let outcome = env::transaction(&host.databases, db, false, 5, None, || {
        call(Invocation {
            kind: ItemKind::Rpc,
            item,
            request: ROption::RSome(HttpRequest {
                db: ROption::RSome(db.into()),
                params: params.as_str().into(),
                ..HttpRequest::default()
            }),
            endpoint: ROption::RNone,
            args: vec![RString::from(uid.to_string())].into(),
            handle: 0,
            socket_event: ROption::RNone,
            outcome: ROption::RNone,
        })
    })
    .map_err(|e| RpcFault::application("psycopg2.OperationalError", e.to_string()))?;
    if let Some(e) = outcome.error.into_option() {
        return Err(RpcFault::from_error_info(&e));
    }
    match outcome.value.into_option() {
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            RpcFault::application(
                "builtins.Exception",
                format!("the method {method} of {model} answered no JSON: {e}"),
            )
        }),
        None => Ok(Value::Null),
    }
}

/// The positional argument `i` of `method` as a string (Python's `TypeError` otherwise).
pub fn str_arg<'a>(
    params: &'a [Value],
    i: usize,
    method: &str,
    name: &str,
) -> Result<&'a str, RpcFault> {
    match params.get(i) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(RpcFault::application(
            "builtins.TypeError",
            format!(
                "{method}(): argument '{name}' must be a string, not {}",
                type_name(other)
            ),
        )),
        None => Err(missing(method, name)),
    }
}

/// Python's `TypeError` of a missing positional argument.
pub fn missing(method: &str, name: &str) -> RpcFault {
    RpcFault::application(
        "builtins.TypeError",
        format!("{method}() missing 1 required positional argument: '{name}'"),
    )
}

/// Python's name of a JSON value's type.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}
