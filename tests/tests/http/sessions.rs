//! Sessions: the cookie when a session is saved or on first contact (nothing stored), the
//! file layout and modes, rotation on login and logout, hostile ids that never touch the
//! filesystem, unknown ids not adopted, and corrupt files survived.

use crate::support::*;
use inphms_tests::{http_get, wait_until, Response};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn session_cookie_when_saved_or_new_and_file_layout() {
    let (td, server) = start(&[]);
    let port = server.port();
    // First contact, as Odoo's `_save_session`: the cookie of the new session, though
    // nothing is stored (no file).
    let r = http_get(port, "/test_http/get/a", &[]);
    let first = set_sid(&r).expect("the cookie on first contact");
    assert_eq!(r.status, 200);
    assert!(!session_file(&td, &first).exists());
    assert!(!td.join("data/sessions").join(&first[..2]).exists());
    let r = http_get(port, "/test_http/set/a/1", &[]);
    let sid = set_sid(&r).expect("a changed session sets the cookie");
    assert_eq!(sid.len(), 84);
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{sid}"
    );
    assert_eq!(
        r.header("set-cookie"),
        Some(format!("session_id={sid}; Max-Age=604800; HttpOnly; Path=/; SameSite=Lax").as_str())
    );
    let file = session_file(&td, &sid);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["a"], json!("1"));
    assert_eq!(mode(&td.join("data/sessions")), 0o700);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert_eq!(mode(&file), 0o600);
    // Read back with the cookie: no new cookie.
    let r = http_get(port, "/test_http/get/a", &[("Cookie", &cookie(&sid))]);
    assert_eq!((r.text().as_str(), set_sid(&r)), ("1", None));
    // A route with save_session = false never sets it.
    let r = http_get(port, "/test_http/sleep/0", &[]);
    assert_eq!(set_sid(&r), None);
}

#[test]
fn session_rotates_on_login_and_logout() {
    let (td, server) = start(&[]);
    let port = server.port();
    let sid1 = set_sid(&http_get(port, "/test_http/set/a/1", &[])).unwrap();
    let r = http_get(
        port,
        "/test_http/login/alice",
        &[("Cookie", &cookie(&sid1))],
    );
    assert_eq!(r.text(), "logged in as alice");
    let sid2 = set_sid(&r).expect("login sets a new cookie");
    assert_ne!(sid1, sid2);
    assert!(
        !session_file(&td, &sid1).exists(),
        "the old session file is removed"
    );
    assert!(session_file(&td, &sid2).exists());
    let r = http_get(port, "/test_http/whoami", &[("Cookie", &cookie(&sid2))]);
    assert_eq!((r.status, r.text().as_str()), (200, "alice"));
    let r = rpc_with_cookie(port, "/test_http/json_whoami", &sid2);
    assert_eq!(
        r.text(),
        r#"{"jsonrpc": "2.0", "id": 1, "result": "alice"}"#
    );
    // The old id no longer logs in.
    assert_eq!(
        http_get(port, "/test_http/whoami", &[("Cookie", &cookie(&sid1))]).status,
        303
    );
    let r = http_get(port, "/test_http/logout", &[("Cookie", &cookie(&sid2))]);
    let sid3 = set_sid(&r).expect("logout sets a new cookie");
    assert!(sid3 != sid2 && sid3 != sid1);
    assert!(!session_file(&td, &sid2).exists());
    assert_eq!(
        http_get(port, "/test_http/whoami", &[("Cookie", &cookie(&sid3))]).status,
        303
    );
}

fn rpc_with_cookie(port: u16, path: &str, sid: &str) -> Response {
    send(
        port,
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Cookie", &cookie(sid)),
        ],
        br#"{"id": 1, "params": {}}"#,
    )
}

#[test]
fn hostile_session_ids_never_touch_the_filesystem() {
    let (td, server) = start(&[]);
    let port = server.port();
    // The whole test folder: `../..` from the sessions folder stays inside it.
    let data = td.path().to_owned();
    let valid = "A".repeat(84);
    for bad in [
        "../../etc/passwd".to_owned(),
        format!("../../{}", "a".repeat(78)),
        "A".repeat(83),
        "A".repeat(85),
        format!("{}.", "A".repeat(83)),
        format!("{}/", "A".repeat(83)),
        format!("{}+", "A".repeat(83)),
        format!("..{}", "A".repeat(82)),
    ] {
        let before = tree(&data);
        let r = http_get(port, "/test_http/get/a", &[("Cookie", &cookie(&bad))]);
        assert_eq!((r.status, r.text().as_str()), (200, ""), "{bad}");
        // A malformed id is no id (Odoo's `is_valid_key`): the cookie of a new session,
        // nothing stored.
        let issued = set_sid(&r).unwrap_or_else(|| panic!("{bad}: no new cookie"));
        assert!(issued != bad && issued.len() == 84, "{bad}: {issued}");
        assert_eq!(tree(&data), before, "a read with {bad:?} created something");
        // Saving gives a fresh, valid id and creates only that session's file.
        let r = http_get(port, "/test_http/set/a/1", &[("Cookie", &cookie(&bad))]);
        assert_eq!(r.status, 200, "{bad}");
        let fresh = set_sid(&r).unwrap();
        assert_ne!(fresh, bad);
        assert_eq!(fresh.len(), 84);
        let added: Vec<PathBuf> = tree(&data).difference(&before).cloned().collect();
        let shard = PathBuf::from("data/sessions").join(&fresh[..2]);
        for path in &added {
            assert!(
                *path == shard || *path == shard.join(&fresh),
                "{bad:?} created {}",
                path.display()
            );
        }
    }
    // The server still answers normally.
    assert_eq!(
        http_get(port, "/test_http/item/1", &[("Cookie", &cookie(&valid))]).status,
        200
    );
}

#[test]
fn an_unknown_session_id_is_not_adopted() {
    let (td, server) = start(&[]);
    let unknown = format!("{}Zz", "k".repeat(82));
    let r = http_get(
        server.port(),
        "/test_http/set/a/1",
        &[("Cookie", &cookie(&unknown))],
    );
    let issued = set_sid(&r).expect("a cookie");
    assert_ne!(issued, unknown);
    assert!(!session_file(&td, &unknown).exists());
    assert!(session_file(&td, &issued).exists());
}

#[test]
fn a_corrupt_session_file_is_survived() {
    let (td, server) = start(&[]);
    let port = server.port();
    let sid = set_sid(&http_get(port, "/test_http/set/a/1", &[])).unwrap();
    std::fs::write(session_file(&td, &sid), b"{not json").unwrap();
    let r = http_get(port, "/test_http/get/a", &[("Cookie", &cookie(&sid))]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, ""),
        "no session, no 500"
    );
    // Read once per request (a request the host could not answer at once, as this one on
    // the blocking pool, used to read it a second time), so warned about once.
    let warnings = || server.stderr().matches("corrupt session file").count();
    assert!(
        server.wait_for_log("corrupt session file", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    // A warning is written at once, the request's access-log line only after its answer
    // (batched): once that line is in, every warning of the request is.
    assert!(
        server.wait_for_log(
            "\"GET /test_http/get/a HTTP/1.1\" 200",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    assert_eq!(warnings(), 1, "{}", server.stderr());
    let r = http_get(port, "/test_http/set/b/2", &[("Cookie", &cookie(&sid))]);
    assert_eq!(r.status, 200);
    assert_ne!(set_sid(&r).unwrap(), sid, "a new session");
    assert!(
        wait_until(Duration::from_secs(10), || warnings() == 2),
        "{}",
        server.stderr()
    );
    assert!(
        server.wait_for_log(
            "\"GET /test_http/set/b/2 HTTP/1.1\" 200",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    assert_eq!(warnings(), 2, "{}", server.stderr());
}
