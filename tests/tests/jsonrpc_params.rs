//! JSON-RPC `params` parsed strictly (issue 15, "Found broken" 6), through the real binary
//! and the `test_http` and `web` addons over loopback: `params` the dispatcher cannot parse
//! (100,000-deep nesting, `1e999999`, a 10,000-digit number, a lone surrogate, invalid
//! UTF-8) are Odoo's 400 `Invalid JSON data` on every kind of json route (no argument, handler
//! arguments, URL arguments merged in, an inline route), never a handler run with `{}` and a
//! 200; a number outside a handler argument's type is a JSON-RPC error naming the parameter.

use inphms_tests::{rpc, TestDir};
use serde_json::Value;
use std::time::Duration;

/// A JSON-RPC body whose `params` are `{"a": <value>, "b": 1}`.
fn with_a(value: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc": "2.0", "id": 9, "method": "call", "params": {{"a": {value}, "b": 1}}}}"#
    )
    .into_bytes()
}

#[test]
fn malformed_params_are_invalid_json_data_on_every_json_route() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let digits = format!("1{}", "0".repeat(10_000));
    let mut invalid_utf8 = with_a(r#""xx""#);
    let at = invalid_utf8.iter().position(|&b| b == b'x').expect("an x");
    invalid_utf8[at] = 0xc3; // a lead byte followed by ASCII
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("100,000-deep nesting", with_a(&deep)),
        ("1e999999", with_a("1e999999")),
        ("a 10,000-digit number", with_a(&digits)),
        ("a lone surrogate", with_a(r#""\ud800""#)),
        ("a lone trailing surrogate", with_a(r#""\udfff!""#)),
        ("invalid UTF-8", invalid_utf8),
    ];
    // No argument (params cross as text), handler arguments, URL arguments merged into
    // the params (the parsed path), and an inline route of `web`.
    let routes = [
        "/test_http/json_echo",
        "/test_http/add",
        "/test_http/rpc_error/user",
        "/web/webclient/version_info",
    ];
    for route in routes {
        for (what, body) in &cases {
            let r = rpc(port, route, body);
            assert_eq!(
                (r.status, r.text().as_str()),
                (400, "Invalid JSON data"),
                "{what} to {route}"
            );
        }
        // The same bodies within bounds are served as before.
        let r = rpc(port, route, with_a(r#"[[1]]"#));
        assert_eq!(r.status, 200, "{route}: {}", r.text());
    }
    // The reason is logged for the operator (the client gets Odoo's fixed text).
    assert!(
        server.wait_for_log(
            "invalid JSON-RPC body: recursion limit exceeded",
            Duration::from_secs(5)
        ),
        "{}",
        server.stderr()
    );
    assert!(server
        .stderr()
        .contains("invalid JSON-RPC body: number out of range"));
    // The handler never ran with `{}`: json_echo would have answered `{}` as its result.
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

#[test]
fn numbers_outside_an_arguments_type_name_the_parameter() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    // `add(a: i64, b: i64)`.
    for (value, expected) in [
        (
            "18446744073709551616",
            "invalid value for parameter 'a': invalid type: floating point `1.8446744073709552e+19`, expected i64",
        ),
        (
            "9223372036854775808",
            "invalid value for parameter 'a': invalid value: integer `9223372036854775808`, expected i64",
        ),
        (
            "1.5",
            "invalid value for parameter 'a': invalid type: floating point `1.5`, expected i64",
        ),
        (
            "-1e300",
            "invalid value for parameter 'a': invalid type: floating point `-1e+300`, expected i64",
        ),
    ] {
        let r = rpc(port, "/test_http/add", with_a(value));
        assert_eq!(r.status, 200, "{value}");
        let body: Value = serde_json::from_slice(&r.body).expect("a JSON-RPC answer");
        assert_eq!(body["id"], 9, "{body}");
        assert_eq!(body["error"]["code"], 200, "{body}");
        assert_eq!(
            body["error"]["data"]["name"], "werkzeug.exceptions.BadRequest",
            "{body}"
        );
        assert_eq!(body["error"]["data"]["message"], expected, "{value}: {body}");
        assert!(body.get("result").is_none(), "{body}");
    }
    let r = rpc(port, "/test_http/add", with_a("-9223372036854775808"));
    assert_eq!(
        r.text(),
        r#"{"jsonrpc": "2.0", "id": 9, "result": -9223372036854775807}"#
    );
}
