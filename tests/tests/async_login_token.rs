//! A login on an async route or an async websocket callback gets its session token
//! awaited on its own cursor, in its transaction (before the commit): a login waiting for
//! PostgreSQL there holds no thread. Through the real binary, `base`, `web` and
//! `test_http`, and the real PostgreSQL: logins to `/test_async/login/admin` (the user's
//! id read on the async cursor, then `finalize_login`: the id rotated) while another
//! connection holds `ir_config_parameter` locked, which only the token's statement reads
//! (the database secret): each one waits there, the host's thread count does not grow with
//! them (the blocking cursor's `block_in_place` took a thread each), and once the lock
//! goes each client has a new session id whose token the next `auth = "user"` request
//! accepts, the old id carrying no user. The same for `login admin` sent on async sockets
//! of `test_http` (`/test_http/ws_async`): the socket's session then passes `auth = "user"`
//! over HTTP.

mod lock_wait;
#[allow(dead_code)]
#[path = "identity/support.rs"]
mod support;

use inphms_tests::ws::{ws_open_greeted, ws_text};
use inphms_tests::{http_get, wait_until, Response};
use lock_wait::{test_http_site as site, threads, waiting_for_locks, Locker, TOKEN_QUERY};
use std::time::Duration;
use tungstenite::Message;

/// How many logins wait for the lock at once.
const WAITING: usize = 16;

/// A new anonymous session with a value in it (`k` = `v`): its id.
fn anonymous_session(port: u16) -> String {
    let r = http_get(port, "/test_async/set/k/v", &[]);
    assert_eq!((r.status, r.text()), (200, "ok".to_owned()));
    r.cookie("session_id").expect("a session cookie")
}

fn get(port: u16, path: &str, sid: &str) -> Response {
    http_get(port, path, &[("Cookie", &format!("session_id={sid}"))])
}

/// `sid`'s session passes `auth = "user"` as admin.
fn logged_in_as_admin(port: u16, sid: &str) {
    let who = get(port, "/test_http/whoami", sid);
    assert_eq!((who.status, who.text()), (200, "admin".to_owned()), "{sid}");
}

/// Waits until `n` statements of the token wait for the lock, then checks that the host
/// (`pid`, `idle` threads before) took no thread for them.
fn no_thread_for_waiting(site: &support::Site, n: usize, idle: u64) {
    assert!(
        wait_until(Duration::from_secs(60), || waiting_for_locks(
            &site.db,
            TOKEN_QUERY
        ) >= n),
        "{} of {n} logins' token statements waited for the lock\n{}",
        waiting_for_locks(&site.db, TOKEN_QUERY),
        site.server.stderr()
    );
    let most = threads(site.server.pid());
    eprintln!("{n} async logins waiting for their token: host threads {idle} idle, {most} while they waited");
    // A thread each would be `block_in_place` (the blocking cursor) under them.
    assert!(
        most <= idle + 4,
        "the host went from {idle} to {most} threads for {n} async logins waiting for PostgreSQL"
    );
}

#[test]
fn async_logins_waiting_for_their_token_hold_no_thread_and_get_a_valid_token() {
    let site = site("asynclogin");
    let port = site.port();
    // Warm up: the runtime, the pool's connections, a login's whole path.
    for _ in 0..4 {
        let old = anonymous_session(port);
        let r = get(port, "/test_async/login/admin", &old);
        assert_eq!(r.status, 200, "{}\n{}", r.text(), site.server.stderr());
        let new = r.cookie("session_id").expect("a rotated session cookie");
        logged_in_as_admin(port, &new);
    }
    let olds: Vec<String> = (0..WAITING).map(|_| anonymous_session(port)).collect();
    let idle = threads(site.server.pid());

    let locker = Locker::hold(&site.db.name, "ir_config_parameter");
    let clients: Vec<_> = olds
        .iter()
        .cloned()
        .map(|old| std::thread::spawn(move || get(port, "/test_async/login/admin", &old)))
        .collect();
    no_thread_for_waiting(&site, WAITING, idle);
    locker.release();

    for (old, client) in olds.iter().zip(clients) {
        let r = client.join().expect("a client");
        assert_eq!(
            (r.status, r.text()),
            (200, "2".to_owned()),
            "{}",
            site.server.stderr()
        );
        let new = r.cookie("session_id").expect("a rotated session cookie");
        assert_ne!(&new, old, "the login did not rotate the session id");
        // The new id's token is the one `auth = "user"` checks; the session's content
        // went with it.
        logged_in_as_admin(port, &new);
        let kept = get(port, "/test_async/get/k", &new);
        assert_eq!((kept.status, kept.text()), (200, "v".to_owned()));
        // The old id carries no user.
        let who = get(port, "/test_http/whoami", old);
        assert!(
            who.status != 200 && !who.text().contains("admin"),
            "the old session id still logged in: {} {}",
            who.status,
            who.text()
        );
    }
}

#[test]
fn async_socket_logins_waiting_for_their_token_hold_no_thread_and_pass_auth_user() {
    let site = site("asyncwslogin");
    let port = site.port();
    let login = |sid: &str| {
        let (mut ws, _) = ws_open_greeted(port, "/test_http/ws_async", Some(sid));
        ws.send(Message::text("login admin")).expect("send");
        ws
    };
    // Warm up: a socket's login, accepted by the next HTTP request of its session.
    let sid = anonymous_session(port);
    let mut ws = login(&sid);
    assert_eq!(ws_text(&mut ws), "logged in 2", "{}", site.server.stderr());
    logged_in_as_admin(port, &sid);
    ws.close(None).expect("close");
    while ws.read().is_ok() {}
    let sids: Vec<String> = (0..WAITING).map(|_| anonymous_session(port)).collect();
    let idle = threads(site.server.pid());

    // One login at a time starts waiting (a socket's session is read on the blocking
    // pool before its callback: one thread of it at a time, reused).
    let locker = Locker::hold(&site.db.name, "ir_config_parameter");
    let sockets: Vec<_> = sids
        .iter()
        .enumerate()
        .map(|(i, sid)| {
            let ws = login(sid);
            no_thread_for_waiting(&site, i + 1, idle);
            ws
        })
        .collect();
    locker.release();

    for (sid, mut ws) in sids.iter().zip(sockets) {
        assert_eq!(ws_text(&mut ws), "logged in 2", "{}", site.server.stderr());
        logged_in_as_admin(port, sid);
    }
}
