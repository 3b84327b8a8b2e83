//! Dispatchers (Odoo's `Dispatcher`, `HttpDispatcher`, `JsonRPCDispatcher`): how a routed
//! request becomes the parameters of an endpoint, and how the endpoint's outcome becomes a
//! response. `http` and `json` are built in; other routing types are served by addons.

use super::response::{self, HttpResult};
use inphms_sdk::abi::{ErrorInfo, ErrorKind, Outcome};
use serde_json::{json, Map, Value};

/// Odoo's `JSON_MIMETYPES`.
pub const JSON_MIMETYPES: [&str; 2] = ["application/json", "application/json-rpc"];

/// Odoo's `CSRF_FREE_METHODS`.
pub const CSRF_FREE_METHODS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "TRACE"];

/// Whether a content type (parameters ignored) is JSON, as the json dispatcher requires.
pub fn is_json_mimetype(content_type: Option<&str>) -> bool {
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    JSON_MIMETYPES.contains(&mime.as_str())
}

/// A parsed JSON-RPC request: its id and params.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRpcRequest {
    /// The request id (echoed back).
    pub id: Value,
    /// `params`, which must be an object (URL arguments are merged into it).
    pub params: Result<Map<String, Value>, String>,
}

/// Parses a JSON-RPC body, or answers Odoo's plain 400s.
pub fn parse_jsonrpc(body: &[u8]) -> Result<JsonRpcRequest, HttpResult> {
    let value: Value = std::str::from_utf8(body)
        .ok()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| response::plain(400, "Invalid JSON data"))?;
    let Value::Object(mut obj) = value else {
        return Err(response::plain(400, "Invalid JSON-RPC data"));
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let params = match obj.remove("params") {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(format!(
            "'params' must be an object, found {}",
            match other {
                Value::Array(_) => "an array",
                Value::Null => "null",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                Value::Object(_) => "an object",
            }
        )),
    };
    Ok(JsonRpcRequest { id, params })
}

/// The JSON-RPC success answer; `result` is omitted when the endpoint returned nothing.
pub fn jsonrpc_result(id: &Value, result: Option<&str>) -> HttpResult {
    // The result is already JSON text from the addon: splice it without re-parsing.
    let id_text = id.to_string();
    let body = match result {
        Some(r) => format!(r#"{{"jsonrpc": "2.0", "id": {id_text}, "result": {r}}}"#),
        None => format!(r#"{{"jsonrpc": "2.0", "id": {id_text}}}"#),
    };
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// Odoo's JSON-RPC error object for an error, as HTTP 200.
pub fn jsonrpc_error(id: &Value, error: &ErrorInfo, dev_mode: bool) -> HttpResult {
    let (code, message) = match error.kind {
        ErrorKind::NotFound => (404, "404: Not Found"),
        ErrorKind::SessionExpired => (100, "Odoo Session Expired"),
        _ => (200, "Odoo Server Error"),
    };
    let arguments: Value =
        serde_json::from_str(&error.arguments).unwrap_or_else(|_| Value::Array(Vec::new()));
    let mut data = json!({
        "name": error.name.as_str(),
        "message": error.message.as_str(),
        "arguments": arguments,
        "context": {},
    });
    if dev_mode {
        data["debug"] = Value::String(error.debug.to_string());
    }
    response::json(
        200,
        &json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": message, "data": data},
        }),
    )
}

/// An internal error (no details for the client).
pub fn internal_error(message: &str) -> ErrorInfo {
    ErrorInfo {
        kind: ErrorKind::Internal,
        name: "builtins.Exception".into(),
        message: message.into(),
        arguments: json!([message]).to_string().into(),
        debug: "".into(),
    }
}

/// The http dispatcher's answer to an error (werkzeug's HTML pages; details of internal
/// errors and panics are hidden).
pub fn http_error(error: &ErrorInfo, full_path: &str) -> HttpResult {
    match error.kind {
        ErrorKind::SessionExpired => {
            let location = format!(
                "/web/login?redirect={}",
                percent_encoding::utf8_percent_encode(full_path, percent_encoding::NON_ALPHANUMERIC)
            );
            response::redirect(&location, 303)
        }
        ErrorKind::Access => response::html_error(403, Some(&error.message)),
        ErrorKind::User | ErrorKind::BadRequest => response::html_error(400, Some(&error.message)),
        ErrorKind::NotFound => response::html_error(404, None),
        ErrorKind::Internal | ErrorKind::Panic => response::html_error(500, None),
    }
}

/// The error of an outcome, if any.
pub fn outcome_error(outcome: &Outcome) -> Option<&ErrorInfo> {
    outcome.error.as_ref().into_option()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonrpc_parsing() {
        assert_eq!(parse_jsonrpc(b"{oops").unwrap_err().status(), 400);
        assert_eq!(parse_jsonrpc(b"[1]").unwrap_err().status(), 400);
        let r = parse_jsonrpc(br#"{"id": 7, "params": {"a": 1}}"#).unwrap();
        assert_eq!(r.id, json!(7));
        assert_eq!(r.params.unwrap()["a"], json!(1));
        let r = parse_jsonrpc(br#"{"id": 7, "params": [1]}"#).unwrap();
        assert!(r.params.is_err());
    }

    #[test]
    fn mimetypes() {
        assert!(is_json_mimetype(Some("application/json; charset=utf-8")));
        assert!(is_json_mimetype(Some("application/json-rpc")));
        assert!(!is_json_mimetype(Some("text/plain")));
        assert!(!is_json_mimetype(None));
    }
}
