//! The json dispatcher: results, `null` results, every JSON-RPC error shape (Odoo's codes and
//! names, panics, authentication before the body, bad `params`, the plain 400s) and `debug`
//! only in dev mode.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn json_results_and_none() {
    let (_td, server) = start(&[]);
    let port = server.port();
    // (Content-Type, path, request body, answer); `application/json-rpc` is accepted too, and
    // a missing id answers null.
    for (content_type, path, body, answer) in [
        (
            "application/json",
            "/test_http/add",
            r#"{"jsonrpc": "2.0", "id": 1, "method": "call", "params": {"a": 2, "b": 3}}"#,
            r#"{"jsonrpc": "2.0", "id": 1, "result": 5}"#,
        ),
        (
            "application/json",
            "/test_http/json_echo",
            r#"{"id": "x", "params": {"k": [1, {"é": null}]}}"#,
            r#"{"jsonrpc": "2.0", "id": "x", "result": {"k": [1, {"é": null}]}}"#,
        ),
        (
            "application/json",
            "/test_http/none",
            r#"{"jsonrpc": "2.0", "id": 2, "params": {}}"#,
            r#"{"jsonrpc": "2.0", "id": 2}"#,
        ),
        (
            "application/json-rpc",
            "/test_http/none",
            "{}",
            r#"{"jsonrpc": "2.0", "id": null}"#,
        ),
    ] {
        let r = send(
            port,
            "POST",
            path,
            &[("Content-Type", content_type)],
            body.as_bytes(),
        );
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, answer),
            "{path} {body}"
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8"),
            "{path} {body}"
        );
    }
}

/// The JSON-RPC error object of `kind` with id 3, as Odoo writes it (no `debug`).
fn rpc_error_body(code: u16, message: &str, name: &str, text: &str) -> String {
    format!(
        r#"{{"jsonrpc": "2.0", "id": 3, "error": {{"code": {code}, "message": "{message}", "data": {{"name": "{name}", "message": "{text}", "arguments": ["{text}"], "context": {{}}}}}}}}"#
    )
}

#[test]
fn json_error_shapes() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let call = |path: &str| rpc(port, path, r#"{"jsonrpc": "2.0", "id": 3, "params": {}}"#);
    for (kind, code, message, name, text) in [
        (
            "user",
            200,
            "Odoo Server Error",
            "odoo.exceptions.UserError",
            "Nope, you can't",
        ),
        (
            "access",
            200,
            "Odoo Server Error",
            "odoo.exceptions.AccessError",
            "Forbidden thing",
        ),
        (
            "missing",
            404,
            "404: Not Found",
            "werkzeug.exceptions.NotFound",
            "No such thing",
        ),
        (
            "expired",
            100,
            "Odoo Session Expired",
            "odoo.http.SessionExpiredException",
            "Session expired",
        ),
        (
            "internal",
            200,
            "Odoo Server Error",
            "builtins.Exception",
            "secret internal detail",
        ),
    ] {
        let r = call(&format!("/test_http/rpc_error/{kind}"));
        assert_eq!(r.status, 200, "{kind}");
        assert_eq!(
            r.text(),
            rpc_error_body(code, message, name, text),
            "{kind}"
        );
    }
    // A panic: the server's generic error, details only in the log.
    let r = call("/test_http/json_panic");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        rpc_error_body(
            200,
            "Odoo Server Error",
            "builtins.Exception",
            "Internal Server Error"
        )
    );
    assert!(
        server.wait_for_log("secret panic detail", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    // `auth = "user"` without a login: code 100, id null (authentication runs before the body).
    let r = call("/test_http/json_whoami");
    assert_eq!(
        r.text(),
        rpc_error_body(
            100,
            "Odoo Session Expired",
            "odoo.http.SessionExpiredException",
            "Session expired"
        )
        .replace(r#""id": 3"#, r#""id": null"#)
    );
    // `params` that is not an object.
    let r = rpc(port, "/test_http/json_echo", r#"{"id": 3, "params": [1]}"#);
    assert_eq!(
        r.text(),
        rpc_error_body(
            200,
            "Odoo Server Error",
            "builtins.Exception",
            "'params' must be an object, found an array"
        )
    );
    // The plain 400s: unparsable JSON, not an object, not JSON at all.
    let r = rpc(port, "/test_http/add", "{oops");
    assert_eq!((r.status, r.text().as_str()), (400, "Invalid JSON data"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = rpc(port, "/test_http/add", "[1, 2]");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Invalid JSON-RPC data")
    );
    let r = send(
        port,
        "POST",
        "/test_http/add",
        &[("Content-Type", "text/plain")],
        b"{}",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        error_page(400, "Bad Request", "Request inferred type is compatible with ['http'] but '/test_http/add' is type='json'.")
    );
    // A JSON POST to an unknown URL gets the http dispatcher's 404.
    let r = rpc(port, "/test_http/nowhere", "{}");
    assert_eq!(
        (r.status, r.text()),
        (404, error_page(404, "Not Found", NOT_FOUND))
    );
}

#[test]
fn json_errors_carry_debug_only_in_dev_mode() {
    let (_td, server) = start(&["--dev=xml"]);
    let r = rpc(
        server.port(),
        "/test_http/rpc_error/internal",
        r#"{"id": 3, "params": {}}"#,
    );
    assert_eq!(
        r.text(),
        r#"{"jsonrpc": "2.0", "id": 3, "error": {"code": 200, "message": "Odoo Server Error", "data": {"name": "builtins.Exception", "debug": "Traceback: secret", "message": "secret internal detail", "arguments": ["secret internal detail"], "context": {}}}}"#
    );
    let r = rpc(
        server.port(),
        "/test_http/json_panic",
        r#"{"id": 3, "params": {}}"#,
    );
    let v: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(
        v["error"]["data"]["debug"],
        json!("panicked: secret panic detail")
    );
}
