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

/// A JSON-RPC request's `params` as [`parse_jsonrpc_view`] gives them.
#[derive(Debug)]
pub enum RpcParams<'a> {
    /// The object as it is in the body: passed to the addon without being parsed here.
    Raw(&'a serde_json::value::RawValue),
    /// Parsed (the body took the full parse).
    Parsed(Map<String, Value>),
}

/// A JSON-RPC request, its `params` borrowed from the body when possible.
#[derive(Debug)]
pub struct JsonRpcView<'a> {
    /// The request id (echoed back).
    pub id: Value,
    /// `params`, which must be an object.
    pub params: Result<RpcParams<'a>, String>,
}

/// A JSON value walked through serde_json's full parser without being built: every check
/// of a parse into a `Value` applies (nesting at most 128 deep, numbers within `f64`'s
/// range, strings valid UTF-8 without lone surrogates, no trailing data), none of the
/// allocations. serde_json's `IgnoredAny` and `RawValue` skip values with none of these
/// checks, so a body is walked with this before its `params` cross as text.
struct Strict;

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        while map.next_entry::<Strict, Strict>()?.is_some() {}
        Ok(Strict)
    }
}

/// Checks that `body` is JSON as [`parse_jsonrpc`]'s full parse accepts it (see
/// [`Strict`]); the parser's message (what and where) when it is not.
pub fn check_json(body: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<Strict>(body).map(|_| ())
}

/// Odoo's answer to a body it cannot parse: a plain 400 `Invalid JSON data`. The reason
/// (the parser's, with line and column) is logged, as the client gets Odoo's fixed text.
fn invalid_json(reason: &str) -> Box<HttpResult> {
    tracing::info!(target: "inphms.http", "invalid JSON-RPC body: {reason}");
    Box::new(response::plain(400, "Invalid JSON data"))
}

/// [`parse_jsonrpc`] without building what is not needed: for the usual body (an object
/// with an object `params`), only the `id` is parsed into a value and `params` stays the
/// body's text. Anything else (no `params`, `params` of another type, duplicate keys, not
/// an object) takes [`parse_jsonrpc`], which decides as before.
///
/// The whole body is first checked as strictly as the full parse checks it ([`check_json`]):
/// `params` that cross as text are valid JSON that the SDK parses as the host did (no
/// nesting past 128, no number out of range, no lone surrogate), and a body that is not
/// is Odoo's 400 `Invalid JSON data`, never a handler run with empty params.
pub fn parse_jsonrpc_view(body: &[u8]) -> Result<JsonRpcView<'_>, Box<HttpResult>> {
    check_json(body).map_err(|e| invalid_json(&e.to_string()))?;
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(default)]
        id: Value,
        #[serde(borrow, default)]
        params: Option<&'a serde_json::value::RawValue>,
    }
    if let Ok(Envelope {
        id,
        params: Some(raw),
    }) = serde_json::from_slice::<Envelope<'_>>(body)
    {
        if raw.get().starts_with('{') {
            return Ok(JsonRpcView {
                id,
                params: Ok(RpcParams::Raw(raw)),
            });
        }
    }
    let full = parse_jsonrpc(body)?;
    Ok(JsonRpcView {
        id: full.id,
        params: full.params.map(RpcParams::Parsed),
    })
}

/// Parses a JSON-RPC body, or answers Odoo's plain 400s.
pub fn parse_jsonrpc(body: &[u8]) -> Result<JsonRpcRequest, Box<HttpResult>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| invalid_json(&e.to_string()))?;
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

fn jsonrpc_response(body: &Value) -> HttpResult {
    json_body(inphms_sdk::json::dumps(body))
}

fn json_body(text: String) -> HttpResult {
    let mut r = hyper::Response::new(response::Body::full(text));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// The JSON-RPC success answer; `result` (JSON text from the addon) is omitted when the
/// endpoint returned nothing.
///
/// The SDK writes a result as `json.dumps` does, so it is placed in the answer as it is:
/// checked to be JSON (a pass without allocation), neither parsed into a `Value` nor
/// written again. Text that is not JSON is logged and answered `null`.
pub fn jsonrpc_result(id: &Value, result: Option<&str>) -> HttpResult {
    let mut text = String::with_capacity(48 + result.map_or(0, str::len));
    text.push_str(r#"{"jsonrpc": "2.0", "id": "#);
    text.push_str(&inphms_sdk::json::dumps(id));
    if let Some(r) = result {
        text.push_str(r#", "result": "#);
        match serde_json::from_str::<serde::de::IgnoredAny>(r) {
            Ok(_) => text.push_str(r.trim()),
            Err(e) => {
                tracing::error!(target: "inphms.http", "a json handler returned invalid JSON ({e}); answered null");
                text.push_str("null");
            }
        }
    }
    text.push('}');
    json_body(text)
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
    fn jsonrpc_view_keeps_object_params_as_text_and_defers_the_rest() {
        let body = br#"{"jsonrpc": "2.0", "id": 3, "params": {"a": [1, {"b": "\u00e9"}]}}"#;
        let view = parse_jsonrpc_view(body).unwrap();
        assert_eq!(view.id, json!(3));
        match view.params {
            Ok(RpcParams::Raw(raw)) => assert_eq!(raw.get(), r#"{"a": [1, {"b": "\u00e9"}]}"#),
            other => panic!("{other:?}"),
        }
        // What the full parse decides, it still decides.
        for (body, expected) in [
            (
                &br#"{"id": 1, "params": null}"#[..],
                Err("'params' must be an object, found null"),
            ),
            (
                br#"{"id": 1, "params": [1]}"#,
                Err("'params' must be an object, found an array"),
            ),
            (br#"{"id": 1}"#, Ok(0)),
            (
                br#"{"id": 1, "params": {"x": 1}, "params": {"y": 2, "z": 3}}"#,
                Ok(2),
            ),
        ] {
            let view = parse_jsonrpc_view(body).unwrap();
            let got = match view.params {
                Ok(RpcParams::Parsed(map)) => Ok(map.len()),
                Ok(RpcParams::Raw(raw)) => panic!("raw {raw}"),
                Err(message) => Err(message),
            };
            assert_eq!(
                got,
                expected.map_err(str::to_owned),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(parse_jsonrpc_view(b"[1]").unwrap_err().status(), 400);
        assert_eq!(parse_jsonrpc_view(b"{oops").unwrap_err().status(), 400);
    }

    /// What serde_json's full parse refuses, the view refuses too, wherever it is in the
    /// body (issue 15: such `params` used to reach the handler as `{}`).
    #[test]
    fn malformed_params_are_invalid_json_data() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let long_number = format!("1{}", "0".repeat(10_000));
        let wrapped = |v: &str| format!(r#"{{"jsonrpc": "2.0", "id": 1, "params": {{"a": {v}}}}}"#);
        for bad in [
            wrapped(&deep(100_000)),
            wrapped(&deep(126)),
            wrapped("1e999999"),
            wrapped("-1e400"),
            wrapped(&long_number),
            wrapped(r#""\ud800""#),
            wrapped(r#""\udc00x""#),
            wrapped(r#""\ud800\u0041""#),
            // Outside `params` too: the envelope's other keys are checked as well.
            format!(r#"{{"id": 1, "method": {}, "params": {{}}}}"#, deep(1000)),
            r#"{"id": 1, "x": 1e999, "params": {}}"#.to_string(),
        ] {
            let err = parse_jsonrpc_view(bad.as_bytes()).unwrap_err();
            assert_eq!(err.status(), 400, "{}", &bad[..bad.len().min(80)]);
            assert_eq!(body_bytes(*err), b"Invalid JSON data");
            assert!(check_json(bad.as_bytes()).is_err());
            assert!(serde_json::from_str::<Value>(&bad).is_err());
        }
        let mut invalid_utf8 = wrapped(r#""ab""#).into_bytes();
        let at = invalid_utf8.iter().position(|&b| b == b'b').unwrap();
        invalid_utf8[at] = 0xff;
        assert_eq!(parse_jsonrpc_view(&invalid_utf8).unwrap_err().status(), 400);
        // Within bounds, all is as it was: 127 levels in all (serde_json's limit), a
        // surrogate pair, a long number that is still a float, a tiny one that is 0.
        for good in [
            wrapped(&deep(125)),
            wrapped(r#""\ud83d\ude00""#),
            wrapped(&format!("1{}", "0".repeat(300))),
            wrapped("1e-999999"),
        ] {
            assert!(
                check_json(good.as_bytes()).is_ok(),
                "{}",
                &good[..good.len().min(80)]
            );
            serde_json::from_str::<Value>(&good).unwrap();
            let view = parse_jsonrpc_view(good.as_bytes()).unwrap();
            let Ok(RpcParams::Raw(raw)) = view.params else {
                panic!("{good}")
            };
            serde_json::from_str::<Map<String, Value>>(raw.get()).unwrap();
        }
    }

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
            inphms_sdk::json::dumps(&json!({"a": [1, "é", {"b": null}], "c": 1.5})),
            r#"{"a": [1, "é", {"b": null}], "c": 1.5}"#
        );
        assert_eq!(quote_plus("/a_b?c=d e&f~é"), "%2Fa_b%3Fc%3Dd+e%26f~%C3%A9");
        let body = |r: HttpResult| {
            let bytes = body_bytes(r);
            String::from_utf8(bytes).unwrap()
        };
        // The result is placed as the SDK wrote it (json.dumps, see inphms_sdk::json)...
        let result = inphms_sdk::json::dumps(&json!({"x": [1, 2]}));
        assert_eq!(
            body(jsonrpc_result(&json!(7), Some(&result))),
            r#"{"jsonrpc": "2.0", "id": 7, "result": {"x": [1, 2]}}"#
        );
        // ...checked to be JSON, never trusted blindly.
        assert_eq!(
            body(jsonrpc_result(&json!("a"), Some("{\"x\": "))),
            r#"{"jsonrpc": "2.0", "id": "a", "result": null}"#
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
