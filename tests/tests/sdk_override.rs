//! Addons extending each other through the real binary (issue 18): `test_override` overrides
//! `web`'s and `test_http`'s routes and calls them (`call_super`), registers an auth
//! method, pre/post-dispatch hooks, an error handler and a fallback; `test_override_more`
//! overrides once more (a chain) and declares routes the host refuses at load (an override
//! of a missing route, an unknown auth method, a path of an addon it does not depend on).
//! The `routes` command prints the table with its overrides and hooks.

use inphms_tests::pg::{self, TestDb};
use inphms_tests::{http_get, rpc, send, test_addons_dir, Response, Server, TestDir};
use serde_json::{json, Value};
use std::time::Duration;

/// `--load base,web,test_http,<extra>` with the test addons and `args`, healthy.
fn server(td: &TestDir, extra: &str, args: &[&str]) -> Server {
    let data = td.join("data");
    let tests = test_addons_dir();
    let load = format!("base,web,test_http,{extra}");
    let mut all = vec![
        "--load",
        load.as_str(),
        "-D",
        data.to_str().expect("a UTF-8 path"),
        "--addons-path",
        tests.to_str().expect("a UTF-8 path"),
    ];
    all.extend_from_slice(args);
    td.server(all)
        .start_timeout(Duration::from_secs(120))
        .start_healthy()
}

fn body_json(r: &Response) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
}

fn call(params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": params})
        .to_string()
        .into_bytes()
}

/// The result of `web`'s version info as served.
fn version_info(port: u16) -> Value {
    let r = rpc(port, "/web/webclient/version_info", call(json!({})));
    assert_eq!(r.status, 200, "{}", r.text());
    body_json(&r)["result"].clone()
}

#[test]
fn an_override_calls_super_and_changes_its_answer() {
    let td = TestDir::new();
    let server = server(&td, "test_override", &[]);
    let port = server.port();

    // json: web's answer, one key more.
    let info = version_info(port);
    assert!(info["server_version"].is_string(), "{info}");
    assert_eq!(info["protocol_version"], json!(1), "{info}");
    assert_eq!(info["test_override"], json!(true), "{info}");
    assert!(info.get("test_override_more").is_none(), "{info}");

    // http: test_http's text, changed, with another status and a header.
    let r = http_get(port, "/test_http/item/7", &[]);
    assert_eq!(r.status, 203, "{}", r.text());
    assert_eq!(r.text(), "item 7 (id 7, overridden by test_override)");
    assert_eq!(r.header("x-overridden"), Some("test_override"));
    // Routes it does not override are test_http's own.
    let r = http_get(port, "/test_http/echo?a=1", &[]);
    assert_eq!(body_json(&r), json!({"a": "1"}));
}

#[test]
fn overrides_chain_in_dependency_order_and_wrong_ones_are_refused_at_load() {
    let td = TestDir::new();
    let server = server(&td, "test_override,test_override_more,test_sdk", &[]);
    let port = server.port();

    let info = version_info(port);
    assert_eq!(info["test_override"], json!(true), "{info}");
    assert_eq!(info["test_override_more"], json!(true), "{info}");
    assert!(info["server_version"].is_string(), "{info}");

    let log = server.stderr();
    let refused = |needle: &str| {
        log.lines()
            .find(|l| l.contains("ERROR") && l.contains(needle))
            .unwrap_or_else(|| panic!("no refusal with {needle:?} in:\n{log}"))
            .to_owned()
    };
    let missing = refused("no_such_route");
    assert!(
        missing.contains("addon test_override_more")
            && missing.contains("/test_http/no_such_route")
            && missing.contains("test_http declares no route at that path"),
        "{missing}"
    );
    let auth = refused("unknown auth method 'nope'");
    assert!(auth.contains("test_override_more"), "{auth}");
    // Two addons, neither depending on the other, on one path: the later refused, both
    // named; the earlier keeps serving it.
    let conflict = refused("/test_sdk/bytes");
    assert!(
        conflict.contains("test_sdk") && conflict.contains("test_override_more"),
        "{conflict}"
    );
    assert_eq!(http_get(port, "/test_http/no_such_route", &[]).status, 404);
    assert_eq!(
        http_get(port, "/test_override_more/unknown_auth", &[]).status,
        404
    );
    let bytes = http_get(port, "/test_sdk/bytes", &[]);
    assert_ne!(bytes.text(), "test_override_more's bytes");
    assert_eq!(bytes.status, 200, "{}", bytes.text());
}

#[test]
fn an_auth_method_of_an_addon_guards_its_routes() {
    let td = TestDir::new();
    let server = server(&td, "test_override", &[]);
    let port = server.port();

    let r = http_get(port, "/test_override/token", &[]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("no token"), "{}", r.text());
    let r = http_get(port, "/test_override/token", &[("X-Test-Token", "guess")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("wrong token"), "{}", r.text());
    // Accepted: what the auth method put in the session reaches the handler.
    let r = http_get(port, "/test_override/token", &[("X-Test-Token", "s3cret")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "token ok: alice db=-");
}

#[test]
fn dispatch_hooks_run_around_every_routed_request() {
    let td = TestDir::new();
    let server = server(&td, "test_override", &[]);
    let port = server.port();

    // The pre-dispatch header on every answer: web's, test_http's (inline and on the pool),
    // json and http alike, and on error answers.
    for (path, status) in [
        ("/web/health", 200),
        ("/test_http/echo", 200),
        ("/test_http/inline/get/x", 200),
        ("/test_http/error/user", 400),
    ] {
        let r = http_get(port, path, &[]);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.header("x-test-override"), Some("pre"), "{path}");
    }
    let r = rpc(port, "/test_http/add", call(json!({"a": 2, "b": 3})));
    assert_eq!(body_json(&r)["result"], json!(5));
    assert_eq!(r.header("x-test-override"), Some("pre"));

    // Post-dispatch: a header on http responses, not on errors (skipped for them)...
    let r = http_get(port, "/test_http/echo", &[]);
    assert_eq!(r.header("x-post-dispatch"), Some("1"));
    assert_eq!(
        http_get(port, "/test_http/error/user", &[]).header("x-post-dispatch"),
        None
    );
    // ...and a json route's result changed.
    let r = rpc(port, "/test_override/post", call(json!({})));
    assert_eq!(
        body_json(&r)["result"],
        json!({"handler": true, "post_dispatch": true})
    );

    // Pre-dispatch answers early: the handler does not run.
    let r = http_get(port, "/test_override/early", &[]);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.text(), "answered by pre_dispatch");
    assert_eq!(r.header("x-test-override"), Some("pre"));

    // The error handler renders its routes' errors; others keep the host's answer.
    let r = http_get(port, "/test_override/fail", &[]);
    assert_eq!(r.status, 418, "{}", r.text());
    assert_eq!(r.text(), "test_override handled: it broke");
    let r = http_get(port, "/test_http/error/user", &[]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Nope, you can&#x27;t") || r.text().contains("Nope"));
}

#[test]
fn a_fallback_serves_what_no_route_matched() {
    let td = TestDir::new();
    let server = server(&td, "test_override", &[]);
    let port = server.port();

    let r = http_get(port, "/test_override_cms/about-us", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "cms page about-us");
    let r = send(port, "POST", "/test_override_cms/contact", &[], b"x=1");
    assert_eq!(r.text(), "cms page contact");
    // Declined by every fallback: the 404 stands.
    let r = http_get(port, "/nowhere/at/all", &[]);
    assert_eq!(r.status, 404, "{}", r.text());
    // A path whose route refuses the method is still a 405, not a fallback.
    let r = send(port, "DELETE", "/web/login", &[], b"");
    assert_eq!(r.status, 405);
}

#[test]
fn without_hooks_nothing_changes() {
    let td = TestDir::new();
    let server = server(&td, "test_sdk", &[]);
    let port = server.port();
    let r = http_get(port, "/test_http/item/7", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "item 7"));
    assert_eq!(r.header("x-test-override"), None);
    assert_eq!(http_get(port, "/test_override_cms/x", &[]).status, 404);
    assert!(version_info(port).get("test_override").is_none());
}

#[test]
fn the_routes_command_prints_the_table_with_overrides_and_hooks() {
    let td = TestDir::new();
    let tests = test_addons_dir();
    let out = td
        .cmd([
            "--addons-path",
            tests.to_str().expect("a UTF-8 path"),
            "routes",
            "--load",
            "base,web,test_http,test_override,test_override_more",
            "-D",
            td.join("data").to_str().expect("a UTF-8 path"),
        ])
        .timeout(Duration::from_secs(60))
        .run();
    assert_eq!(out.code, Some(0), "{out}");
    let line = |start: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("PATH"),
        ["PATH", "METHODS", "TYPE", "AUTH", "ADDON", "OVERRIDES"]
    );
    assert_eq!(
        line("/web/webclient/version_info "),
        [
            "/web/webclient/version_info",
            "POST",
            "json",
            "none",
            "test_override_more",
            "test_override",
            "<",
            "web"
        ]
    );
    assert_eq!(
        line("/test_http/item/<int:id> "),
        [
            "/test_http/item/<int:id>",
            "*",
            "http",
            "none",
            "test_override",
            "test_http"
        ]
    );
    assert_eq!(
        line("/web/health "),
        ["/web/health", "*", "http", "none", "web", "-"]
    );
    assert_eq!(
        line("/test_override/token "),
        [
            "/test_override/token",
            "*",
            "http",
            "test_token",
            "test_override",
            "-"
        ]
    );
    assert_eq!(line("auth "), ["auth", "test_token", "test_override"]);
    assert_eq!(
        line("fallback "),
        ["fallback", "test_override::cms", "test_override"]
    );
    assert!(
        out.stdout
            .contains("refused: route test_override_more::unknown_auth of addon test_override_more: unknown auth method 'nope'"),
        "{out}"
    );
    assert!(!out.stdout.contains("/test_http/no_such_route "), "{out}");
}

/// With a database: the hooks run in the request's database, and `routes -d` prints the
/// database's table.
#[test]
fn hooks_run_with_the_request_database() {
    pg::require();
    let td = TestDir::new();
    let db = TestDb::new("override");
    let mut args: Vec<String> = pg::server_args();
    args.extend(["-d".to_owned(), db.name.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = server(&td, "test_override", &args);
    let port = server.port();
    let r = http_get(port, "/test_override/token", &[("X-Test-Token", "s3cret")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("token ok: alice db={}", db.name));
    assert_eq!(
        http_get(port, "/test_override/token", &[]).status,
        403,
        "refused on the database too"
    );
    let r = http_get(port, "/test_http/item/3", &[]);
    assert_eq!(r.text(), "item 3 (id 3, overridden by test_override)");
    assert_eq!(r.header("x-test-override"), Some("pre"));
    let r = http_get(port, "/test_override_cms/home", &[]);
    assert_eq!(r.text(), "cms page home");

    let tests = test_addons_dir();
    let mut cmd: Vec<String> = vec![
        "--addons-path".into(),
        tests.to_str().expect("a UTF-8 path").into(),
        "routes".into(),
        "--load".into(),
        "base,web,test_http,test_override".into(),
    ];
    cmd.extend(pg::server_args());
    cmd.extend(["-d".into(), db.name.clone()]);
    let out = td.cmd(cmd).timeout(Duration::from_secs(60)).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("/web/webclient/version_info")
                && l.contains("test_override")
                && l.ends_with("web")),
        "{out}"
    );
}
