//! Odoo's external API endpoints (Odoo's `odoo/addons/base/controllers/rpc.py`):
//! `POST /xmlrpc/2/<service>` (integer fault codes), `POST /xmlrpc/<service>` (string fault
//! codes) and `POST /jsonrpc` (JSON-RPC, `{"service", "method", "args"}`), all `auth =
//! "none"`, CSRF off, no session saved. The call itself goes to the host's RPC services
//! ([`inphms_sdk::rpc::dispatch_rpc`]); the XML-RPC encoding is [`xmlrpc`]'s, and the
//! `res.users` methods `base` answers are [`res_users`]'s.

pub mod res_users;
pub mod xmlrpc;

use inphms_sdk::abi::ErrorKind;
use inphms_sdk::{route, Error, Request, Response, Result};
use serde_json::Value;
use xmlrpc::FaultCode;

/// The largest body the RPC routes take (in place of the server's `max_content_length`,
/// 128 MiB by default): a call is parsed before its password is checked, and
/// parsing takes a few times the body's size in memory, so anyone could make the server
/// hold that much. 32 MiB keeps room for files sent as base64.
const MAX_RPC_BODY: u64 = 32 << 20;

/// Odoo's fault codes (`RPC_FAULT_CODE_*`).
const APPLICATION_ERROR: i32 = 1;
const WARNING: i32 = 2;
const ACCESS_DENIED: i32 = 3;
const ACCESS_ERROR: i32 = 4;

/// XML-RPC with integer fault codes.
#[route("/xmlrpc/2/<service>", auth = "none", methods = ["POST"], csrf = false, save_session = false, max_content_length = MAX_RPC_BODY)]
fn xmlrpc_2(req: &mut Request, service: String) -> Response {
    xml_response(answer(req.body(), &service, Variant::Int))
}

/// XML-RPC with string fault codes (historical, kept for compatibility as in Odoo).
#[route("/xmlrpc/<service>", auth = "none", methods = ["POST"], csrf = false, save_session = false, max_content_length = MAX_RPC_BODY)]
fn xmlrpc_1(req: &mut Request, service: String) -> Response {
    xml_response(answer(req.body(), &service, Variant::Str))
}

/// JSON-RPC: `{"params": {"service": ..., "method": ..., "args": [...]}}`.
#[route("/jsonrpc", type = "json", auth = "none", save_session = false, max_content_length = MAX_RPC_BODY)]
fn jsonrpc(_req: &mut Request, service: String, method: String, args: Vec<Value>) -> Result<Value> {
    inphms_sdk::rpc::dispatch_rpc(&service, &method, &args)
}

fn xml_response(body: String) -> Response {
    Response::new(200)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body)
}

/// Which endpoint answers: the fault codes differ.
#[derive(Clone, Copy)]
enum Variant {
    Int,
    Str,
}

/// The XML-RPC answer to `body` for `service`: the result, or the fault of what failed
/// (reading the call, the call itself, or writing its result).
fn answer(body: &[u8], service: &str, variant: Variant) -> String {
    let result = xmlrpc::parse_call(body)
        .map_err(|e| {
            (
                ("xml.parsers.expat.ExpatError".to_owned(), e),
                ErrorKind::BadRequest,
            )
        })
        .and_then(|(method, params)| {
            inphms_sdk::rpc::dispatch_rpc(service, &method, &params).map_err(|e| {
                let kind = e.kind();
                ((class_of(&e), e.message().to_owned()), kind)
            })
        })
        .and_then(|value| {
            xmlrpc::dumps_result(&value)
                .map_err(|(name, message)| ((name.to_owned(), message), ErrorKind::Internal))
        });
    match result {
        Ok(xml) => xml,
        Err(((name, message), kind)) => fault(&name, &message, kind, variant),
    }
}

/// The class of an error from the host's services or an addon.
fn class_of(e: &Error) -> String {
    e.name().to_owned()
}

/// Odoo's `xmlrpc_handle_exception_int` / `_string` for an exception of class `name`.
fn fault(name: &str, message: &str, kind: ErrorKind, variant: Variant) -> String {
    let class = name.rsplit('.').next().unwrap_or(name);
    let traceback = || {
        let shown = name.strip_prefix("builtins.").unwrap_or(name);
        format!("Traceback (most recent call last):\n{shown}: {message}\n")
    };
    let (code, string): (i32, String) = match (class, kind) {
        ("AccessError", _) => (ACCESS_ERROR, message.to_owned()),
        ("AccessDenied", _) => (ACCESS_DENIED, message.to_owned()),
        ("UserError" | "ValidationError" | "MissingError", _) | (_, ErrorKind::User) => {
            (WARNING, message.to_owned())
        }
        (_, ErrorKind::Access) => (ACCESS_ERROR, message.to_owned()),
        _ => (APPLICATION_ERROR, traceback()),
    };
    match variant {
        Variant::Int => xmlrpc::dumps_fault(FaultCode::Int(code), &string),
        Variant::Str => {
            let (code, string) = match (code, class) {
                (ACCESS_DENIED, _) => ("AccessDenied".to_owned(), message.to_owned()),
                (ACCESS_ERROR, _) => (
                    format!("warning -- AccessError\n\n{message}"),
                    String::new(),
                ),
                (WARNING, "MissingError") => (
                    format!("warning -- MissingError\n\n{message}"),
                    String::new(),
                ),
                (WARNING, _) => (format!("warning -- UserError\n\n{message}"), String::new()),
                _ => (message.to_owned(), traceback()),
            };
            xmlrpc::dumps_fault(FaultCode::Str(&code), &string)
        }
    }
}
