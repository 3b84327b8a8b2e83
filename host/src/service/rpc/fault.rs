//! What an RPC call fails with, in Odoo's exception classes (mapped to XML-RPC fault codes and JSON-RPC error data by the endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcFault {
    /// `odoo.exceptions.AccessDenied`: wrong credentials or master password (XML-RPC/2 code 3).
    AccessDenied(String),
    /// `odoo.exceptions.AccessError` (code 4).
    AccessError(String),
    /// `odoo.exceptions.UserError` and its kin (code 2).
    UserError(String),
    /// Anything else (code 1): `name` is the Python-style class, e.g. `builtins.Exception`.
    Application { name: String, message: String },
}
