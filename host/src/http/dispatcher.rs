//! Dispatchers (Odoo's `Dispatcher`, `HttpDispatcher`, `JsonRPCDispatcher`): how a routed
//! request becomes the parameters of an endpoint, and how the endpoint's outcome becomes a
//! response. `http` and `json` are built in; other routing types are served by addons.
//!
//! JSON-RPC bodies are written as Python's `json.dumps` writes them (`", "` and `": "`
//! separators, non-ASCII as is), with Odoo's key order: `jsonrpc`, `id`, then `result` or
//! `error` (`code`, `message`, `data`: `name`, `debug` with `--dev` only, `message`,
//! `arguments`, `context`).

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
pub fn parse_jsonrpc(body: &[u8]) -> Result<JsonRpcRequest, Box<HttpResult>> {
    let value: Value = std::str::from_utf8(body)
        .ok()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| Box::new(response::plain(400, "Invalid JSON data")))?;
    let Value::Object(mut obj) = value else {
        return Err(Box::new(response::plain(400, "Invalid JSON-RPC data")));
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

/// Python's `json.dumps` separators.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// `value` as Python's `json.dumps(value, ensure_ascii=False)` writes it.
pub fn python_json(value: &Value) -> String {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing a `Value` into memory cannot fail.
    let _ = value.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

fn jsonrpc_response(body: &Value) -> HttpResult {
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(python_json(
        body,
    ))));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// The JSON-RPC success answer; `result` (JSON text from the addon) is omitted when the
/// endpoint returned nothing.
pub fn jsonrpc_result(id: &Value, result: Option<&str>) -> HttpResult {
    let mut body = Map::new();
    body.insert("jsonrpc".into(), Value::String("2.0".into()));
    body.insert("id".into(), id.clone());
    if let Some(r) = result {
        let value = serde_json::from_str(r).unwrap_or_else(|e| {
            tracing::error!(target: "inphms.http", "a json handler returned invalid JSON ({e}); answered null");
            Value::Null
        });
        body.insert("result".into(), value);
    }
    jsonrpc_response(&Value::Object(body))
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
    let mut data = Map::new();
    data.insert("name".into(), Value::String(error.name.to_string()));
    if dev_mode {
        data.insert("debug".into(), Value::String(error.debug.to_string()));
    }
    data.insert("message".into(), Value::String(error.message.to_string()));
    data.insert("arguments".into(), arguments);
    data.insert("context".into(), json!({}));
    jsonrpc_response(&json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message, "data": data},
    }))
}

/// werkzeug's `url_quote_plus`: letters, digits and `-._~` as is, space as `+`.
const QUOTE_PLUS: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// werkzeug's `url_quote_plus` of `s` (UTF-8).
pub fn quote_plus(s: &str) -> String {
    s.split(' ')
        .map(|part| percent_encoding::utf8_percent_encode(part, QUOTE_PLUS).to_string())
        .collect::<Vec<_>>()
        .join("+")
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
/// errors and panics are hidden). `full_path` is werkzeug's (`path?query`) for the login
/// redirect of an expired session.
pub fn http_error(error: &ErrorInfo, full_path: &str) -> HttpResult {
    match error.kind {
        ErrorKind::SessionExpired => {
            let location = format!("/web/login?redirect={}", quote_plus(full_path));
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
    fn python_shapes() {
        assert_eq!(
            python_json(&json!({"a": [1, "é", {"b": null}], "c": 1.5})),
            r#"{"a": [1, "é", {"b": null}], "c": 1.5}"#
        );
        assert_eq!(quote_plus("/a_b?c=d e&f~é"), "%2Fa_b%3Fc%3Dd+e%26f~%C3%A9");
        let body = |r: HttpResult| {
            let bytes = body_bytes(r);
            String::from_utf8(bytes).unwrap()
        };
        assert_eq!(
            body(jsonrpc_result(&json!(7), Some("{\"x\":[1,2]}"))),
            r#"{"jsonrpc": "2.0", "id": 7, "result": {"x": [1, 2]}}"#
        );
        assert_eq!(
            body(jsonrpc_result(&Value::Null, None)),
            r#"{"jsonrpc": "2.0", "id": null}"#
        );
        let e = ErrorInfo {
            kind: ErrorKind::NotFound,
            name: "n".into(),
            message: "m".into(),
            arguments: "[\"m\"]".into(),
            debug: "tb".into(),
        };
        assert_eq!(
            body(jsonrpc_error(&json!("x"), &e, false)),
            r#"{"jsonrpc": "2.0", "id": "x", "error": {"code": 404, "message": "404: Not Found", "data": {"name": "n", "message": "m", "arguments": ["m"], "context": {}}}}"#
        );
        assert!(body(jsonrpc_error(&json!("x"), &e, true))
            .contains(r#"{"name": "n", "debug": "tb", "message": "m""#));
    }

    /// The bytes of a `Full` body (always ready).
    fn body_bytes(r: HttpResult) -> Vec<u8> {
        use http_body_util::BodyExt as _;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(r.into_body().collect())
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[test]
    fn mimetypes() {
        assert!(is_json_mimetype(Some("application/json; charset=utf-8")));
        assert!(is_json_mimetype(Some("application/json-rpc")));
        assert!(!is_json_mimetype(Some("text/plain")));
        assert!(!is_json_mimetype(None));
    }
}
