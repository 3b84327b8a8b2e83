//! The `dispatch_rpc` callback of the host API (Odoo's `odoo.http.dispatch_rpc`): the
//! `base` addon's `/xmlrpc` and `/jsonrpc` routes hand a call to the host's RPC services.
//! The services live above this layer (`service::rpc`), so the composition root hands them
//! down as an [`RpcDispatch`] when it builds the host API.

use super::HostServices;
use abi_stable::std_types::{RResult, RStr, RString};
use inphms_sdk::abi::{ErrorInfo, ErrorKind, HostCtx};
use serde_json::Value;

/// The host's RPC services, as the callback sees them: `service`'s `method` with the
/// positional `params`, answered on the calling (blocking) thread.
pub trait RpcDispatch: Send + Sync + std::fmt::Debug {
    /// Runs one call: its JSON result, or the error as the addon receives it.
    fn dispatch(
        &self,
        service: &str,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Value, Box<ErrorInfo>>;
}

/// An [`ErrorInfo`] of Odoo's class `name` (e.g. `builtins.Exception`).
pub fn error_info(kind: ErrorKind, name: &str, message: &str) -> ErrorInfo {
    ErrorInfo {
        kind,
        name: name.into(),
        message: message.into(),
        arguments: Value::Array(vec![Value::String(message.to_owned())])
            .to_string()
            .into(),
        debug: RString::new(),
    }
}

/// `HostApi::dispatch_rpc`.
pub extern "C" fn dispatch_rpc(
    ctx: HostCtx,
    service: RStr<'_>,
    method: RStr<'_>,
    params: RStr<'_>,
) -> RResult<RString, ErrorInfo> {
    let internal = || {
        error_info(
            ErrorKind::Internal,
            "builtins.Exception",
            "the host failed to run the RPC call",
        )
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Some(host) = HostServices::of(ctx) else {
            return RResult::RErr(internal());
        };
        let params = match serde_json::from_str::<Value>(params.as_str()) {
            Ok(Value::Array(p)) => p,
            _ => {
                return RResult::RErr(error_info(
                    ErrorKind::BadRequest,
                    "builtins.TypeError",
                    "the parameters of an RPC call must be a JSON array",
                ))
            }
        };
        match host.rpc.dispatch(service.as_str(), method.as_str(), params) {
            Ok(v) => RResult::ROk(RString::from(v.to_string())),
            Err(e) => RResult::RErr(*e),
        }
    }))
    .unwrap_or_else(|_| RResult::RErr(internal()))
}
