//! Identity on an async event websocket (`AsyncWsHandler`) on a database: an
//! `auth = "user"` socket whose session token no longer matches (the password changed in
//! PostgreSQL by the `users` command) is closed as the sync socket is (Close 4001
//! "Session expired", the session saved logged out), and no callback runs for the message
//! that found it stale.

use super::websocket::site;
use crate::support::{Client, Site};
use inphms_tests::ws::{ws_connect, ws_next};
use std::time::Duration;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// Logs admin in with `password` (from its own address), opens the `auth = "user"` socket
/// at `path`, checks it answers `user admin`, sets admin's password to `new_password`, then
/// sends `tag`: the Close frame that answers it (a panic for anything else), the client
/// and its session id.
fn stale_after_password_change(
    site: &Site,
    addr: &str,
    path: &str,
    password: &str,
    new_password: &str,
    tag: &str,
) -> (CloseFrame, Client, String) {
    let mut c = site.client(addr);
    let logged = c.authenticate(&site.db.name, "admin", password);
    assert!(logged["result"]["uid"].is_i64(), "{logged}");
    let sid = c.cookie.clone().expect("the login's session");
    let mut ws = ws_connect(site.port(), path, Some(&sid));
    ws.send(Message::text("who")).expect("send");
    assert_eq!(ws_next(&mut ws), Message::text("user admin"));
    // A new password changes the user's session token: the next call is refused.
    let out = site.users(&["passwd", "admin"], Some(new_password));
    assert_eq!(out.code, Some(0), "{out}");
    ws.send(Message::text(tag)).expect("send");
    let frame = match ws_next(&mut ws) {
        Message::Close(Some(frame)) => frame,
        other => panic!("{path}: expected a Close after the password change, got {other:?}"),
    };
    while ws.read().is_ok() {}
    (frame, c, sid)
}

#[test]
fn an_async_user_websocket_closes_as_the_sync_one_once_its_session_token_changes() {
    let site = site("idwsasync");
    let (sync_frame, _, _) = stale_after_password_change(
        &site,
        "10.3.1.1",
        "/test_http/ws_user",
        "admin-pw",
        "other-pw",
        "sync stale",
    );
    assert_eq!(u16::from(sync_frame.code), 4001, "{sync_frame:?}");
    let (frame, mut c, sid) = stale_after_password_change(
        &site,
        "10.3.1.2",
        "/test_http/ws_user_async",
        "other-pw",
        "third-pw",
        "async stale",
    );
    // The same close as the sync socket's: code and reason.
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (u16::from(sync_frame.code), sync_frame.reason.as_str()),
        "async {frame:?} vs sync {sync_frame:?}"
    );
    assert_eq!(frame.reason.as_str(), "Session expired");
    // on_close runs (with 4001), and no callback ran for the stale message.
    assert!(
        site.server.wait_for_log(
            "test_http: ws_user_async closed with 4001",
            Duration::from_secs(10)
        ),
        "{}",
        site.server.stderr()
    );
    let log = site.server.stderr();
    assert!(log.contains("test_http: ws_user_async got who"), "{log}");
    assert!(!log.contains("ws_user_async got async stale"), "{log}");
    // The session is saved logged out, as the sync socket's and an HTTP request's.
    let stored = site.td.read(format!("data/sessions/{}/{sid}", &sid[..2]));
    assert!(stored.contains("\"uid\":null"), "{stored}");
    let again = c.get("/test_http/whoami");
    assert_eq!(again.status, 303, "{again:?}");
}
