//! The checks before an async websocket callback (the session token, which a socket never
//! takes from the token cache, and the public user) are awaited on the callback's own
//! cursor, in its transaction: a callback whose check waits for PostgreSQL holds no
//! thread. Through the real binary, `base`, `web` and `test_http`, and the real
//! PostgreSQL: logged-in async sockets of an `auth = "user"` route
//! (`/test_http/ws_async_user`) each send a message while another connection holds
//! `ir_config_parameter` locked, which only the token's statement reads (the database
//! secret): each callback waits there, the host's thread count does not grow with them
//! (the blocking cursor's `block_in_place` took a thread each), and once the lock goes
//! every socket gets its answer. The same for the push gates a committed async callback's
//! sends pass (`to <id> <text>` from anonymous async sockets to logged-in ones, whose gate
//! checks the token again once its verdict is a second old): awaited, no thread each. A
//! token made stale still closes the socket with 4001, its session saved logged out, and
//! a gate awaited on a stale session closes its socket with 4001; an `auth = "public"`
//! async socket's callback runs as the public user, never saved in the session.

mod lock_wait;
#[allow(dead_code)]
#[path = "identity/support.rs"]
mod support;

use inphms_tests::pg;
use inphms_tests::ws::{close_code, ws_next, ws_open_greeted, ws_text};
use inphms_tests::{http_get, wait_until};
use lock_wait::{test_http_site as site, threads, waiting_for_locks, Locker, TOKEN_QUERY};
use std::time::Duration;
use tungstenite::Message;

/// How many callbacks wait for the lock at once.
const WAITING: usize = 16;

/// A new session logged in as admin (the host computed its token): its id.
fn logged_in_session(port: u16) -> String {
    let anonymous = http_get(port, "/test_http/set/k/v", &[]);
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());
    let old = anonymous.cookie("session_id").expect("a session cookie");
    let cookie = format!("session_id={old}");
    let r = http_get(port, "/test_http/login/admin", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.cookie("session_id").expect("a rotated session cookie")
}

#[test]
fn async_socket_callbacks_waiting_for_their_token_check_hold_no_thread() {
    let site = site("asyncwscheck");
    let port = site.port();
    let sids: Vec<String> = (0..WAITING).map(|_| logged_in_session(port)).collect();
    // Opened (and greeted: the open callback's check passed) before the lock.
    let mut sockets: Vec<_> = sids
        .iter()
        .map(|sid| ws_open_greeted(port, "/test_http/ws_async_user", Some(sid)).0)
        .collect();
    // Warm up: a message's whole path on each socket.
    for ws in &mut sockets {
        ws.send(Message::text("sleep 0")).expect("send");
        assert_eq!(ws_text(ws), "slept 0", "{}", site.server.stderr());
    }
    let idle = threads(site.server.pid());

    // One message at a time starts waiting (a socket's session is read on the blocking
    // pool before its callback: one thread of it at a time, reused).
    let locker = Locker::hold(&site.db.name, "ir_config_parameter");
    for (i, ws) in sockets.iter_mut().enumerate() {
        ws.send(Message::text("sleep 0")).expect("send");
        let n = i + 1;
        assert!(
            wait_until(Duration::from_secs(60), || waiting_for_locks(
                &site.db,
                TOKEN_QUERY
            ) >= n),
            "{} of {n} callbacks' token checks waited for the lock\n{}",
            waiting_for_locks(&site.db, TOKEN_QUERY),
            site.server.stderr()
        );
    }
    let most = threads(site.server.pid());
    eprintln!("{WAITING} async callbacks waiting for their token check: host threads {idle} idle, {most} while they waited");
    // A thread each would be `block_in_place` (the blocking cursor) under them.
    assert!(
        most <= idle + 4,
        "the host went from {idle} to {most} threads for {WAITING} async callbacks waiting for PostgreSQL"
    );
    locker.release();

    for ws in &mut sockets {
        assert_eq!(ws_text(ws), "slept 0", "{}", site.server.stderr());
        ws.send(Message::text("uid")).expect("send");
        assert_eq!(ws_text(ws), "uid 2");
    }
}

#[test]
fn a_stale_token_closes_an_async_socket_with_4001_and_logs_its_session_out() {
    let site = site("asyncwsstale");
    let port = site.port();
    let sid = logged_in_session(port);
    let (mut ws, _) = ws_open_greeted(port, "/test_http/ws_async_user", Some(&sid));
    ws.send(Message::text("uid")).expect("send");
    assert_eq!(ws_text(&mut ws), "uid 2", "{}", site.server.stderr());
    // Another logged-in socket, and an anonymous one to push to it.
    let (mut target, target_id) = ws_open_greeted(
        port,
        "/test_http/ws_async_user",
        Some(&logged_in_session(port)),
    );
    let anonymous = http_get(port, "/test_http/set/k/v", &[]);
    let pusher_sid = anonymous.cookie("session_id").expect("a session cookie");
    let (mut pusher, _) = ws_open_greeted(port, "/test_http/ws_async", Some(&pusher_sid));
    // A new password changes the user's session token: the next callback is refused.
    site.db
        .sql("UPDATE res_users SET password = password || 'x' WHERE id = 2");
    ws.send(Message::text("uid")).expect("send");
    let closed = ws_next(&mut ws);
    assert_eq!(close_code(&closed), Some(4001), "{closed:?}");
    // A push to the other socket, its gate's verdict no longer trusted, is refused by its
    // awaited check: that socket closed with 4001 too, the pusher's callback done.
    std::thread::sleep(PAST_RECHECK);
    pusher
        .send(Message::text(format!("to {target_id} never")))
        .expect("send");
    assert_eq!(ws_text(&mut pusher), format!("sent to {target_id}"));
    let closed = ws_next(&mut target);
    assert_eq!(close_code(&closed), Some(4001), "{closed:?}");
    assert!(
        site.server
            .stderr()
            .contains("its session token no longer matches"),
        "{}",
        site.server.stderr()
    );
    // The session is saved logged out (under the same id), as a sync socket's.
    let stored = site.td.read(format!("data/sessions/{}/{sid}", &sid[..2]));
    assert!(stored.contains("\"uid\":null"), "{stored}");
    let cookie = format!("session_id={sid}");
    let again = http_get(port, "/test_http/whoami", &[("Cookie", &cookie)]);
    assert_eq!(again.status, 303, "{}", again.text());
}

#[test]
fn an_async_public_socket_callback_runs_as_the_public_user() {
    let site = site("asyncwspublic");
    let port = site.port();
    let public = pg::psql(
        &site.db.name,
        "SELECT id FROM res_users WHERE login = 'public' AND NOT active",
    );
    assert!(public.parse::<i64>().is_ok(), "{public}");
    // Anonymous: the public user, never saved in the session.
    let anonymous = http_get(port, "/test_http/set/k/v", &[]);
    let sid = anonymous.cookie("session_id").expect("a session cookie");
    let (mut ws, _) = ws_open_greeted(port, "/test_http/ws_async_public", Some(&sid));
    ws.send(Message::text("uid")).expect("send");
    assert_eq!(ws_text(&mut ws), format!("uid {public}"));
    ws.send(Message::text("count")).expect("send");
    assert_eq!(ws_text(&mut ws), "count 1");
    let stored = site.td.read(format!("data/sessions/{}/{sid}", &sid[..2]));
    assert!(
        stored.contains("\"uid\":null") && stored.contains("\"ws_async_count\":1"),
        "{stored}"
    );
    // Logged in: the session's own user.
    let sid = logged_in_session(port);
    let (mut ws, _) = ws_open_greeted(port, "/test_http/ws_async_public", Some(&sid));
    ws.send(Message::text("uid")).expect("send");
    assert_eq!(ws_text(&mut ws), "uid 2");
}

/// How long the host trusts a push gate's verdict (`push_gate::RECHECK`), and a margin.
const PAST_RECHECK: Duration = Duration::from_millis(1200);

/// How many pushes wait for their socket's gate at once.
const PUSHES: usize = 12;

#[test]
fn an_async_callbacks_pushes_waiting_for_their_sockets_gate_hold_no_thread() {
    let site = site("asyncwsgate");
    let port = site.port();
    // The targets: logged-in sockets, whose gate checks their session token.
    let mut targets: Vec<_> = (0..PUSHES)
        .map(|_| {
            let sid = logged_in_session(port);
            ws_open_greeted(port, "/test_http/ws_async_user", Some(&sid))
        })
        .collect();
    // The pushers: sockets of anonymous sessions (their callbacks run no token statement).
    let mut pushers: Vec<_> = (0..PUSHES)
        .map(|_| {
            let r = http_get(port, "/test_http/set/k/v", &[]);
            let sid = r.cookie("session_id").expect("a session cookie");
            ws_open_greeted(port, "/test_http/ws_async", Some(&sid)).0
        })
        .collect();
    let push = |ws: &mut tungstenite::WebSocket<std::net::TcpStream>, to: u64, text: &str| {
        ws.send(Message::text(format!("to {to} {text}")))
            .expect("send");
    };
    // Warm up: each push's whole path (the target's gate checked, its verdict kept).
    for (pusher, (target, id)) in pushers.iter_mut().zip(targets.iter_mut()) {
        push(pusher, *id, "warm");
        assert_eq!(ws_text(target), "warm", "{}", site.server.stderr());
        assert_eq!(ws_text(pusher), format!("sent to {id}"));
    }
    // The gates' verdicts no longer trusted: the next pushes check the token again.
    std::thread::sleep(PAST_RECHECK);
    let idle = threads(site.server.pid());

    // One push at a time starts waiting (the pusher's and the target's sessions are read
    // on the blocking pool: one thread of it at a time, reused).
    let locker = Locker::hold(&site.db.name, "ir_config_parameter");
    let started = std::time::Instant::now();
    for (i, (pusher, (_, id))) in pushers.iter_mut().zip(targets.iter()).enumerate() {
        push(pusher, *id, "hello");
        let n = i + 1;
        assert!(
            wait_until(Duration::from_secs(4), || waiting_for_locks(
                &site.db,
                TOKEN_QUERY
            ) >= n),
            "{} of {n} pushes' gate checks waited for the lock\n{}",
            waiting_for_locks(&site.db, TOKEN_QUERY),
            site.server.stderr()
        );
    }
    let most = threads(site.server.pid());
    eprintln!(
        "{PUSHES} pushes waiting for their socket's gate: host threads {idle} idle, {most} while they waited ({:?})",
        started.elapsed()
    );
    // A thread each would be `block_in_place` (the gate's blocking check) under them.
    assert!(
        most <= idle + 4,
        "the host went from {idle} to {most} threads for {PUSHES} pushes waiting for PostgreSQL"
    );
    locker.release();

    for (pusher, (target, id)) in pushers.iter_mut().zip(targets.iter_mut()) {
        assert_eq!(ws_text(target), "hello", "{}", site.server.stderr());
        assert_eq!(ws_text(pusher), format!("sent to {id}"));
    }
}
