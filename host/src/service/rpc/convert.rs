//! [`RpcFault`] to and from the [`ErrorInfo`] that crosses the addon boundary: the fault a
//! host service raises goes to the `base` addon's endpoints named as Odoo's exception
//! (`odoo.exceptions.AccessDenied`...), and an error an addon's RPC method returns comes
//! back as the fault of its class.

use super::fault::RpcFault;
use crate::host_api::rpc::error_info;
use inphms_sdk::abi::{ErrorInfo, ErrorKind};
use std::fmt;

impl RpcFault {
    /// Odoo's `AccessDenied()`: "Access Denied".
    pub fn access_denied() -> RpcFault {
        RpcFault::AccessDenied("Access Denied".into())
    }

    /// Any other exception of the Python-style class `name` (`builtins.TypeError`...).
    pub fn application(name: &str, message: impl Into<String>) -> RpcFault {
        RpcFault::Application {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    /// The exception's message (`str(e)`).
    pub fn message(&self) -> &str {
        match self {
            RpcFault::AccessDenied(m) | RpcFault::AccessError(m) | RpcFault::UserError(m) => m,
            RpcFault::Application { message, .. } => message,
        }
    }

    /// The exception's class, as JSON-RPC's `data.name` gives it.
    pub fn name(&self) -> &str {
        match self {
            RpcFault::AccessDenied(_) => inphms_sdk::exceptions::ACCESS_DENIED,
            RpcFault::AccessError(_) => inphms_sdk::exceptions::ACCESS_ERROR,
            RpcFault::UserError(_) => inphms_sdk::exceptions::USER_ERROR,
            RpcFault::Application { name, .. } => name,
        }
    }

    /// As the addon receives it (the endpoints map it by `kind` and `name`).
    pub fn to_error_info(&self) -> ErrorInfo {
        let kind = match self {
            RpcFault::AccessDenied(_) | RpcFault::AccessError(_) => ErrorKind::Access,
            RpcFault::UserError(_) => ErrorKind::User,
            RpcFault::Application { .. } => ErrorKind::Internal,
        };
        error_info(kind, self.name(), self.message())
    }

    /// The fault of an error an addon returned: by its name's class (`*.AccessDenied`,
    /// `*.AccessError`, `*.UserError`, `*.ValidationError`, `*.MissingError`), else by its
    /// kind; anything else is an application error of its name.
    pub fn from_error_info(e: &ErrorInfo) -> RpcFault {
        let class = e.name.rsplit('.').next().unwrap_or("");
        let message = e.message.to_string();
        match (class, e.kind) {
            ("AccessDenied", _) => RpcFault::AccessDenied(message),
            ("AccessError", _) | (_, ErrorKind::Access) => RpcFault::AccessError(message),
            ("UserError" | "ValidationError" | "MissingError", _)
            | (_, ErrorKind::User | ErrorKind::BadRequest | ErrorKind::NotFound) => {
                RpcFault::UserError(message)
            }
            _ => RpcFault::Application {
                name: e.name.to_string(),
                message,
            },
        }
    }
}

impl fmt::Display for RpcFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.message())
    }
}

impl std::error::Error for RpcFault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_cross_and_come_back_as_themselves() {
        for f in [
            RpcFault::access_denied(),
            RpcFault::AccessError("no".into()),
            RpcFault::UserError("Object res.foo doesn't exist".into()),
            RpcFault::application("builtins.KeyError", "Method not found: x"),
        ] {
            assert_eq!(RpcFault::from_error_info(&f.to_error_info()), f);
        }
    }

    #[test]
    fn addon_errors_map_by_class_then_kind() {
        let e = error_info(
            ErrorKind::Access,
            inphms_sdk::exceptions::ACCESS_DENIED,
            "Access Denied",
        );
        assert_eq!(RpcFault::from_error_info(&e), RpcFault::access_denied());
        let e = error_info(ErrorKind::User, inphms_sdk::exceptions::USER_ERROR, "bad");
        assert_eq!(
            RpcFault::from_error_info(&e),
            RpcFault::UserError("bad".into())
        );
        let e = error_info(
            ErrorKind::Panic,
            "builtins.Exception",
            "Internal Server Error",
        );
        assert_eq!(
            RpcFault::from_error_info(&e),
            RpcFault::application("builtins.Exception", "Internal Server Error")
        );
    }
}
