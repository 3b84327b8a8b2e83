//! RPC methods (Odoo's model methods called through `object.execute_kw`): what
//! [`#[rpc]`](macro@crate::rpc) declares, the [`RpcContext`] such a method gets, and
//! [`dispatch_rpc`] (Odoo's `odoo.http.dispatch_rpc`), by which a route reaches the host's
//! RPC services (`common`, `db`, `object`).
//!
//! A method runs in its own transaction on the caller's database, as a route does: its work
//! through [`RpcContext::cursor`] is committed when it returns `Ok`, rolled back when it
//! returns `Err`. The caller was authenticated before it runs (its uid and password or API
//! key checked by the host).

use crate::abi::{Invocation, Outcome};
use crate::{Cursor, Error, Result};
use abi_stable::std_types::{ROption, RStr, RString};
use serde_json::{Map, Value};

/// What an RPC method gets besides its arguments: the caller and the database.
///
/// ```
/// use inphms_sdk::{rpc, RpcContext, Result};
/// use serde_json::{json, Map, Value};
///
/// /// `execute_kw(db, uid, pw, 'res.partner', 'search_count', [[]])`
/// #[rpc(model = "res.partner", method = "search_count")]
/// fn search_count(ctx: &mut RpcContext, _args: Vec<Value>, _kwargs: Map<String, Value>) -> Result<Value> {
///     let mut cr = ctx.cursor()?;
///     let n: i64 = cr.execute("SELECT count(*) FROM res_partner", &[])?.first().map_or(Ok(0), |r| r.at(0))?;
///     Ok(json!(n))
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Default)]
pub struct RpcContext {
    /// The database called.
    pub db: String,
    /// The caller's user id (checked with its password or API key).
    pub uid: i64,
    /// The `context` keyword argument (Odoo's `env.context`), `{}` when absent.
    pub context: Map<String, Value>,
}

impl RpcContext {
    /// The database cursor of this call: its transaction commits when the method returns
    /// `Ok`, and is rolled back when it returns `Err`.
    pub fn cursor(&self) -> Result<Cursor> {
        Cursor::command(&self.db)
    }
}

/// The signature of an RPC method: the context, the positional and the keyword arguments.
pub type RpcFn = fn(&mut RpcContext, Vec<Value>, Map<String, Value>) -> Result<Value>;

/// An RPC method, declared with [`#[rpc]`](macro@crate::rpc).
#[doc(hidden)]
pub struct RpcMethod {
    pub model: &'static str,
    pub method: &'static str,
    pub run: RpcFn,
}
inventory::collect!(RpcMethod);

/// Calls `method` (`ItemKind::Rpc`): the uid in `args[0]`, `{"args", "kwargs"}` in the
/// request's params.
pub(crate) fn invoke(m: &RpcMethod, inv: Invocation<'_>) -> Outcome {
    let ROption::RSome(req) = inv.request else {
        return crate::registry::error_outcome(Error::internal("an RPC call without its request"));
    };
    let uid = inv.args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut call: Map<String, Value> = match serde_json::from_str(req.params.as_str()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let args = match call.remove("args") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut kwargs = match call.remove("kwargs") {
        Some(Value::Object(k)) => k,
        _ => Map::new(),
    };
    // Odoo's `call_kw`: the `context` keyword becomes the environment's context.
    let context = match kwargs.remove("context") {
        Some(Value::Object(c)) => c,
        _ => Map::new(),
    };
    let mut ctx = RpcContext {
        db: req
            .db
            .into_option()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        uid,
        context,
    };
    match (m.run)(&mut ctx, args, kwargs) {
        Ok(v) => Outcome {
            value: ROption::RSome(RString::from(v.to_string())),
            ..Outcome::default()
        },
        Err(e) => crate::registry::error_outcome(e),
    }
}

/// Odoo's `dispatch_rpc(service, method, params)`: calls `method` of the host's RPC service
/// `service` (`common`, `db` or `object`) with the positional `params`, and returns its
/// result, or the error it raised (named as Odoo's exceptions: `odoo.exceptions.AccessDenied`
/// for wrong credentials, `odoo.exceptions.UserError`...).
///
/// ```no_run
/// let version = inphms_sdk::rpc::dispatch_rpc("common", "version", &[]).unwrap();
/// assert_eq!(version["protocol_version"], 1);
/// ```
pub fn dispatch_rpc(service: &str, method: &str, params: &[Value]) -> Result<Value> {
    let api = crate::host::api()?;
    let f = api.dispatch_rpc().ok_or_else(|| {
        Error::internal("this host offers no RPC services (HostApi without dispatch_rpc)")
    })?;
    let params = Value::Array(params.to_vec()).to_string();
    let text = f(
        api.ctx(),
        RStr::from_str(service),
        RStr::from_str(method),
        RStr::from_str(&params),
    )
    .into_result()
    .map_err(|e| Error::from_info(&e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::internal(format!("the host's RPC answer is not JSON: {e}")))
}
