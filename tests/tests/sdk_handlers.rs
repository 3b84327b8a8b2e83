//! The SDK's handler side through the real binary (issue 18): the `test_sdk` addon's routes
//! read their arguments by name and by type (a repeated key, an optional parameter, a
//! default, the request in last position, whole-struct `Params`, `Form` and `Json`, the
//! session by reference) and answer with the return types the macro accepts (`(status,
//! body)`, bytes, a plain `Serialize` struct from a json route, `?` on I/O and boxed
//! errors), serialization failures as 500s; cookies carry their attributes and a redirect
//! escapes its location.

use inphms_tests::{http_get, post, rpc, test_addons_dir, Response, TestDir};
use serde_json::{json, Value};
use std::time::Duration;

/// `inphms-host server --load base,web,test_sdk`, healthy.
fn server(td: &TestDir) -> inphms_tests::Server {
    let data = td.join("data");
    let tests = test_addons_dir();
    td.server([
        "--load",
        "base,web,test_sdk",
        "-D",
        data.to_str().expect("a UTF-8 path"),
        "--addons-path",
        tests.to_str().expect("a UTF-8 path"),
    ])
    .start_healthy()
}

fn body_json(r: &Response) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
}

/// A JSON-RPC call's body with `params`.
fn call(params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": params})
        .to_string()
        .into_bytes()
}

#[test]
fn arguments_by_name_and_by_type() {
    let td = TestDir::new();
    let server = server(&td);
    let port = server.port();

    // A repeated key keeps every value (query then form), an absent optional is null, the
    // default applies, and the request is reachable in last position.
    let r = http_get(port, "/test_sdk/extract/7?tag=a&tag=b&tag=c", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        body_json(&r),
        json!({"id": 7, "tag": ["a", "b", "c"], "page": null, "limit": 10, "method": "GET"})
    );
    let r = http_get(port, "/test_sdk/extract/-3?page=2&limit=50", &[]);
    assert_eq!(
        body_json(&r),
        json!({"id": -3, "tag": [], "page": 2, "limit": 50, "method": "GET"})
    );
    let r = post(
        port,
        "/test_sdk/extract/1?tag=q",
        "application/x-www-form-urlencoded",
        b"tag=f1&tag=f2",
    );
    assert_eq!(body_json(&r)["tag"], json!(["q", "f1", "f2"]));
    // A present optional that does not convert is a 400 naming it.
    let r = http_get(port, "/test_sdk/extract/1?page=x", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("page"), "{}", r.text());

    // Whole structs: the parameters (path argument included, text read as numbers).
    let r = http_get(port, "/test_sdk/params/5?name=pen&qty=3", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(body_json(&r), json!({"id": 5, "name": "pen", "qty": 3}));
    let r = http_get(port, "/test_sdk/params/5", &[]);
    assert_eq!(r.status, 400, "a missing field: {}", r.text());
    assert!(r.text().contains("name"), "{}", r.text());

    let r = post(
        port,
        "/test_sdk/form",
        "application/x-www-form-urlencoded",
        b"id=9&name=ink",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(body_json(&r), json!({"id": 9, "name": "ink", "qty": null}));

    let r = post(
        port,
        "/test_sdk/json_body",
        "application/json",
        br#"{"id": 1, "name": "cup", "qty": 2}"#,
    );
    assert_eq!((r.status, r.text().as_str()), (202, "cup x2"));
    let r = post(port, "/test_sdk/json_body", "application/json", b"{");
    assert_eq!(r.status, 400, "{}", r.text());

    // The session by reference: its change is saved.
    let first = rpc(port, "/test_sdk/session", call(json!({})));
    assert_eq!(body_json(&first)["result"], json!(1), "{}", first.text());
    let cookie = first
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let second = inphms_tests::send(
        port,
        "POST",
        "/test_sdk/session",
        &[("Content-Type", "application/json"), ("Cookie", &cookie)],
        &call(json!({})),
    );
    assert_eq!(body_json(&second)["result"], json!(2), "{}", second.text());
}

#[test]
fn return_types_and_errors() {
    let td = TestDir::new();
    let server = server(&td);
    let port = server.port();

    let r = http_get(port, "/test_sdk/bytes", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, [0, 1, 2, 255]);

    let r = http_get(port, "/test_sdk/io_error", &[]);
    assert_eq!(r.status, 500, "an I/O error is the server's: {}", r.text());
    let r = http_get(port, "/test_sdk/unserializable", &[]);
    assert_eq!(
        r.status,
        500,
        "a serialization failure is not a 400: {}",
        r.text()
    );

    // A json route returns a plain struct (through `?`), with a default argument.
    let r = rpc(port, "/test_sdk/rpc/item", call(json!({"name": "pen"})));
    assert_eq!(
        body_json(&r)["result"],
        json!({"id": 42, "name": "pen", "qty": 3}),
        "{}",
        r.text()
    );
    // Unserializable: an internal error (JSON-RPC code 200), not a bad request.
    let r = rpc(port, "/test_sdk/rpc/unserializable", call(json!({})));
    let error = &body_json(&r)["error"];
    assert_eq!(error["code"], json!(200), "{}", r.text());
    assert_eq!(
        error["data"]["name"],
        json!("builtins.Exception"),
        "{}",
        r.text()
    );
    // A boxed error through `?`.
    let r = rpc(port, "/test_sdk/rpc/boxed", call(json!({"n": "12"})));
    assert_eq!(body_json(&r)["result"], json!(12), "{}", r.text());
    let r = rpc(port, "/test_sdk/rpc/boxed", call(json!({"n": "x"})));
    assert_eq!(body_json(&r)["error"]["code"], json!(200), "{}", r.text());

    let r = http_get(port, "/test_sdk/cookie", &[]);
    assert_eq!(
        r.header("set-cookie"),
        Some(
            "pref=a%20b%3Bc; Path=/test_sdk; Domain=example.com; Max-Age=60; Secure; \
             HttpOnly; SameSite=Strict"
        )
    );

    let r = http_get(
        port,
        "/test_sdk/redirect?to=%2Fx%3Fa%3D%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &[],
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/x?a=\"><script>alert(1)</script>")
    );
    let text = r.text();
    assert!(!text.contains("<script>"), "{text}");
    assert!(
        text.contains("/x?a=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{text}"
    );
}

/// The addon's events and panics are logged under `inphms.addons.test_sdk`, and a panic in
/// `post_load` is refused with the panic's text.
#[test]
fn addon_logs_carry_the_addon_target() {
    let td = TestDir::new();
    let server = server(&td);
    let port = server.port();
    assert_eq!(http_get(port, "/test_sdk/log", &[]).status, 200);
    assert!(
        server.wait_for_log(
            "inphms.addons.test_sdk: test_sdk logs with its default target",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    assert_eq!(http_get(port, "/test_sdk/panic", &[]).status, 500);
    assert!(
        server.wait_for_log("inphms.addons.test_sdk: panic at ", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains("test_sdk panics on purpose"));

    let td = TestDir::new();
    let data = td.join("data");
    let tests = test_addons_dir();
    let server = td
        .server([
            "--load",
            "base,web,test_sdk",
            "-D",
            data.to_str().expect("a UTF-8 path"),
            "--addons-path",
            tests.to_str().expect("a UTF-8 path"),
        ])
        .env("TEST_SDK_PANIC_IN_POST_LOAD", "1")
        .start_healthy();
    assert!(
        server.wait_for_log(
            "post_load of 'test_sdk' panicked: test_sdk refuses to load",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
}
