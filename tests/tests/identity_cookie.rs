//! The session cookie on first contact, as Odoo's `Request._save_session` (Odoo 17/18):
//! a request that names no valid session id gets its new session's cookie on a route that
//! may save the session, even when nothing was stored, and no session file is written for
//! it; a route with `save_session = false` (`/web/health`), a static file, an error answer
//! and an `auth = "bearer"` request get none; a cookie the client sends back is not
//! replaced while nothing is saved. Real binary, real HTTP on loopback.

use inphms_tests::{http_get, rpc, Response, TestDir};
use std::path::Path;

fn set_sid(r: &Response) -> Option<String> {
    r.cookie("session_id")
}

/// Every session file under `data/sessions`.
fn session_files(td: &TestDir) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&td.join("data/sessions"), &mut out);
    out
}

fn call(params: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}).to_string()
}

#[test]
fn first_contact_gets_the_cookie_without_a_session_file() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();

    // A read on a route that may save the session: the cookie, with the attributes chosen,
    // and nothing stored.
    let r = http_get(port, "/test_http/get/a", &[]);
    assert_eq!(r.status, 200);
    let sid = set_sid(&r).expect("the cookie on first contact");
    assert_eq!(sid.len(), 84, "{sid}");
    assert_eq!(
        r.header("set-cookie"),
        Some(format!("session_id={sid}; Max-Age=604800; HttpOnly; Path=/; SameSite=Lax").as_str())
    );
    assert_eq!(session_files(&td), Vec::<String>::new(), "nothing stored");

    // A JSON-RPC client (as odoorpc's first call) gets it too.
    let r = rpc(
        port,
        "/web/webclient/version_info",
        call(serde_json::json!({})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(set_sid(&r).is_some(), "{:?}", r.headers);

    // Sent back, it is not replaced while nothing is saved (Odoo keeps the id it named).
    let r = http_get(
        port,
        "/test_http/get/a",
        &[("Cookie", &format!("session_id={sid}"))],
    );
    assert_eq!((r.status, set_sid(&r)), (200, None));
    // A malformed id is no id: a new cookie.
    let r = http_get(port, "/test_http/get/a", &[("Cookie", "session_id=short")]);
    let fresh = set_sid(&r).expect("a cookie for a malformed id");
    assert_ne!(fresh, "short");
    assert_eq!(
        session_files(&td),
        Vec::<String>::new(),
        "still nothing stored"
    );

    // Once something is saved: stored, under an id of the host's (an id it did not store
    // is not adopted), and read back without a new cookie.
    let r = http_get(
        port,
        "/test_http/set/a/1",
        &[("Cookie", &format!("session_id={sid}"))],
    );
    let saved = set_sid(&r).expect("a saved session sets the cookie");
    assert_eq!(session_files(&td), vec![saved.clone()]);
    let r = http_get(
        port,
        "/test_http/get/a",
        &[("Cookie", &format!("session_id={saved}"))],
    );
    assert_eq!((r.text().as_str(), set_sid(&r)), ("1", None));

    // No cookie: a route that never saves the session, a static file, a 404, an error.
    for path in [
        "/web/health",
        "/test_http/sleep/0",
        "/web/static/src/main.css",
        "/no/such/page",
        "/test_http/error/user",
    ] {
        let r = http_get(port, path, &[]);
        assert_eq!(set_sid(&r), None, "{path}: {} {:?}", r.status, r.headers);
    }
    let r = rpc(
        port,
        "/test_http/rpc_error/user",
        call(serde_json::json!({})),
    );
    assert!(r.text().contains("\"error\""), "{}", r.text());
    assert_eq!(set_sid(&r), None, "a JSON-RPC error");
    assert_eq!(session_files(&td).len(), 1, "{:?}", session_files(&td));
}

#[test]
fn the_first_contact_cookie_is_secure_over_https() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--proxy-mode", "--proxy-trusted", "127.0.0.0/8"])
        .start_healthy();
    let r = http_get(
        server.port(),
        "/test_http/get/a",
        &[
            ("X-Forwarded-For", "10.9.0.1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "shop.example.com"),
        ],
    );
    let sid = set_sid(&r).expect("the cookie on first contact");
    assert_eq!(
        r.header("set-cookie"),
        Some(
            format!("session_id={sid}; Max-Age=604800; Secure; HttpOnly; Path=/; SameSite=Lax")
                .as_str()
        )
    );
}
