//! A json route past `limit_time_real`: the JSON-RPC error carries the name Odoo's clients
//! know for a request stopped by a time limit (`builtins.Exception`, as Odoo's
//! `Exception('CPU time limit exceeded.')`; `inphms_sdk::exceptions::INTERNAL_ERROR`),
//! answered at the limit, and the server goes on. Real binary, real HTTP on loopback.

use inphms_tests::{http_get, rpc, TestDir};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn a_json_route_past_limit_time_real_answers_odoos_exception_name() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--limit-time-real", "1"])
        .start_healthy();
    let port = server.port();
    let started = Instant::now();
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 9, "params": {}}).to_string();
    let r = rpc(port, "/test_http/json_sleep/6000", body);
    let elapsed = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["id"], 9, "{v}");
    assert_eq!(v["error"]["code"], 200, "{v}");
    assert_eq!(v["error"]["message"], "Odoo Server Error", "{v}");
    assert_eq!(v["error"]["data"]["name"], "builtins.Exception", "{v}");
    assert_eq!(
        v["error"]["data"]["message"], "Request timed out (limit_time_real)",
        "{v}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "answered at the limit, not after the handler: {elapsed:?}"
    );
    assert!(
        server.wait_for_log(
            "exceeded limit_time_real (1s); answered a JSON-RPC error",
            Duration::from_secs(5)
        ),
        "{}",
        server.stderr()
    );
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}
