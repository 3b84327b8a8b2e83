//! The HTTP/1.1 client of the tests: the shared one ([`inphms_test_support::http`]: the
//! [`Response`], [`HttpConn`], [`try_request`]) and the panicking shorthands the tests use:
//! [`request`] (raw bytes), [`http_get`], [`send`] (a whole request), [`post`] and [`rpc`] (a
//! JSON-RPC call).

pub use inphms_test_support::http::{build_request, try_request, HttpConn, Response};

/// [`try_request`], panicking on an I/O error.
pub fn request(port: u16, raw: &[u8]) -> Response {
    try_request(port, raw).unwrap_or_else(|e| panic!("HTTP request to port {port}: {e}"))
}

/// `GET path` with `headers` (plus `Host` and `Connection: close`) on 127.0.0.1:`port`.
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        raw.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        raw.push_str("Connection: close\r\n");
    }
    raw.push_str("\r\n");
    request(port, raw.as_bytes())
}

/// A whole request ([`build_request`]: `method path`, `headers`, `body` with its
/// Content-Length, `Connection: close`) and its response; panics on an I/O error.
pub fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    request(port, &build_request(port, method, path, headers, body))
}

/// `POST path` with `body` as `content_type` ([`send`]).
pub fn post(port: u16, path: &str, content_type: &str, body: &[u8]) -> Response {
    send(port, "POST", path, &[("Content-Type", content_type)], body)
}

/// A JSON-RPC call: `body` posted to `path` as `application/json` ([`post`]).
pub fn rpc(port: u16, path: &str, body: impl AsRef<[u8]>) -> Response {
    post(port, path, "application/json", body.as_ref())
}

/// A JSON-RPC `call` of `path` with `params`: the status and the answer's body as JSON
/// (`Null` when the body is not JSON).
pub fn rpc_call(port: u16, path: &str, params: serde_json::Value) -> (u16, serde_json::Value) {
    let body = serde_json::json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params});
    let resp = rpc(port, path, body.to_string());
    let v = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
    (resp.status, v)
}

/// Whether the server closes the connection after `response` (`Connection: close`).
pub fn closes(response: &Response) -> bool {
    response
        .header("connection")
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
}
