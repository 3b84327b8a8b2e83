//! Identity on websocket routes (issue 19 with issue 17's event websockets): an
//! `auth = "user"` socket's calls check the session token as any `auth = "user"` request,
//! and close with Odoo's bus code 4001 once it no longer matches (the session saved logged
//! out); `auth = "bearer"` websockets are refused at the upgrade.

use crate::support::Site;
use inphms_tests::request;
use inphms_tests::ws::{close_code, ws_connect, ws_next};
use tungstenite::Message;

/// A site with `test_http` (its websockets) beside `base` and `web`.
pub(super) fn site(tag: &str) -> Site {
    let tests = inphms_tests::test_addons_dir();
    Site::start(
        tag,
        &[
            "--load",
            "base,web,test_http",
            "--addons-path",
            tests.to_str().expect("UTF-8"),
        ],
    )
}

#[test]
fn a_user_websocket_closes_with_4001_once_its_session_token_changes() {
    let site = site("idws");
    let mut c = site.client("10.3.0.1");
    let logged = c.authenticate(&site.db.name, "admin", "admin-pw");
    assert!(logged["result"]["uid"].is_i64(), "{logged}");
    let sid = c.cookie.clone().expect("the login's session");
    let mut ws = ws_connect(site.port(), "/test_http/ws_user", Some(&sid));
    ws.send(Message::text("who")).expect("send");
    assert_eq!(ws_next(&mut ws), Message::text("user admin"));
    // A new password changes the user's session token: the next call is refused.
    let out = site.users(&["passwd", "admin"], Some("other-pw"));
    assert_eq!(out.code, Some(0), "{out}");
    ws.send(Message::text("who")).expect("send");
    let closed = ws_next(&mut ws);
    assert_eq!(close_code(&closed), Some(4001), "{closed:?}");
    // The session is saved logged out, as an HTTP request's would be.
    let stored = site.td.read(format!("data/sessions/{}/{sid}", &sid[..2]));
    assert!(stored.contains("\"uid\":null"), "{stored}");
    let again = c.get("/test_http/whoami");
    assert_eq!(again.status, 303, "{again:?}");
}

#[test]
fn a_bearer_websocket_is_refused_at_the_upgrade() {
    let site = site("idwsbearer");
    let raw = format!(
        "GET /test_http/ws_bearer HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer some-key\r\n\r\n",
        site.port()
    );
    let resp = request(site.port(), raw.as_bytes());
    assert_eq!(resp.status, 403, "{resp:?}");
    assert!(
        resp.text().contains("not supported on websocket routes"),
        "{resp:?}"
    );
}
