//! Regression tests of the review of issue 17's websockets (review R1), through the real
//! binary and `test_http`'s `/test_http/ws_events`: websockets never take every HTTP
//! connection slot (`websocket_max_connections` defaults to half of
//! `http_max_connections`, a value at or above it stops the start with an error naming
//! the option), websocket options out of range are refused at start, and a socket's
//! callbacks see its session as the store has it (reloaded before each: changes made over
//! HTTP seen and kept, a logout closing the socket with 4001, the logged-out id never
//! written again).

use inphms_tests::ws::{close_code, ws_connect, ws_next};
use inphms_tests::{http_get, try_request, wait_until, TestDir};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

const PATH: &str = "/test_http/ws_events";

/// Tries an upgrade to [`PATH`]: the open socket, or the refusal's status.
fn try_open(port: u16) -> Result<tungstenite::WebSocket<TcpStream>, u16> {
    let req = format!("ws://127.0.0.1:{port}{PATH}")
        .into_client_request()
        .expect("a websocket URL");
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("set the read timeout");
    match tungstenite::client::client(req, stream) {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(resp.status().as_u16())
        }
        Err(e) => panic!("websocket handshake: {e:?}"),
    }
}

#[test]
fn websockets_leave_http_slots_free_by_default() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--http-max-connections=20"])
        .start_healthy();
    let port = server.port();
    // As many sockets as the server takes, up to every HTTP slot.
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match try_open(port) {
            Ok(ws) => open.push(ws),
            Err(status) => {
                assert_eq!(status, 503);
                refused += 1;
            }
        }
    }
    assert_eq!(
        (open.len(), refused),
        (10, 10),
        "websocket_max_connections should default to half of http_max_connections"
    );
    // HTTP still answers (before the fix, the 21st connection waited for ever).
    for _ in 0..5 {
        let r = try_request(
            port,
            b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .expect("/web/health answers while websockets are open");
        assert_eq!(r.status, 200);
    }
    assert!(server
        .stderr()
        .contains("websocket_max_connections reached"));
    drop(open);
}

/// Starts the server with `args`, expecting it to exit 1 at start with an error containing
/// every one of `needles`.
fn refuses_to_start(args: &[&str], needles: &[&str]) {
    let td = TestDir::new();
    let mut server = td.test_http_server(args).no_wait().start();
    let status = server
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the server started with {args:?}: {}", server.stderr()));
    assert_eq!(status.code(), Some(1), "{}", server.stderr());
    let log = server.stderr();
    for needle in needles {
        assert!(log.contains(needle), "{needle:?} not in: {log}");
    }
}

#[test]
fn a_websocket_cap_at_or_above_the_http_cap_stops_the_start() {
    refuses_to_start(
        &[
            "--http-max-connections=20",
            "--websocket-max-connections=20",
        ],
        &["websocket_max_connections 20", "http_max_connections"],
    );
}

#[test]
fn websocket_options_out_of_range_stop_the_start() {
    refuses_to_start(
        &["--websocket-keep-alive-timeout=9223372036854775807"],
        &["websocket_keep_alive_timeout 9223372036854775807"],
    );
    refuses_to_start(
        &["--websocket-rate-limit-delay=1e300"],
        &["websocket_rate_limit_delay"],
    );
}

/// Opens an event socket with the session `sid` and reads its greeting.
fn open_with(port: u16, sid: &str) -> tungstenite::WebSocket<TcpStream> {
    let mut ws = ws_connect(port, PATH, Some(sid));
    let greeting = ws_next(&mut ws).into_text().expect("a text greeting");
    assert!(greeting.starts_with("open "), "{greeting:?}");
    ws
}

fn login(port: u16) -> String {
    let r = http_get(port, "/test_http/login/bob", &[]);
    r.cookie("session_id").expect("a session cookie")
}

#[test]
fn a_session_logged_out_over_http_closes_the_socket_with_4001() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let sid = login(port);
    let cookie = format!("session_id={sid}");
    let mut ws = open_with(port, &sid);
    ws.send(Message::text("count")).unwrap();
    assert_eq!(ws_next(&mut ws).into_text().unwrap().as_str(), "count 1");
    // The reply is queued during the call, the session saved after it: the logout comes
    // once that save is done (the save's "still there?" check is not atomic with it).
    assert!(
        wait_until(Duration::from_secs(5), || session_saved(
            &td,
            &sid,
            "\"ws_count\":1"
        )),
        "the socket's session change was never saved"
    );
    // Logged out over HTTP: the id is deleted (and the cookie rotated).
    let out = http_get(port, "/test_http/logout", &[("Cookie", &cookie)]);
    assert_eq!(out.status, 200);
    assert_ne!(out.cookie("session_id").as_deref(), Some(sid.as_str()));
    // The socket's next message finds the session gone: Close 4001, no reply.
    ws.send(Message::text("count")).unwrap();
    let m = ws_next(&mut ws);
    assert_eq!(close_code(&m), Some(4001), "{m:?}");
    while ws.read().is_ok() {}
    assert!(
        server.wait_for_log("ws_events closed with 4001", Duration::from_secs(10)),
        "on_close runs: {}",
        server.stderr()
    );
    // The logged-out id was not written again: it is not logged in.
    let who = http_get(port, "/test_http/whoami", &[("Cookie", &cookie)]);
    assert!(
        !who.text().contains("bob"),
        "{}: {}",
        who.status,
        who.text()
    );
    assert_eq!(
        http_get(port, "/test_http/get/ws_count", &[("Cookie", &cookie)]).text(),
        ""
    );
}

#[test]
fn a_callback_sees_and_keeps_the_changes_made_over_http() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let sid = login(port);
    let cookie = format!("session_id={sid}");
    let mut ws = open_with(port, &sid);
    ws.send(Message::text("count")).unwrap();
    assert_eq!(ws_next(&mut ws).into_text().unwrap().as_str(), "count 1");
    // The reply is queued during the call, the session saved after it: wait until the
    // store has the socket's change before changing the session over HTTP (the store writes
    // whole sessions, so an HTTP request that loaded it before that save would overwrite it).
    let saved = wait_until(Duration::from_secs(5), || {
        session_saved(&td, &sid, "\"ws_count\":1")
    });
    assert!(saved, "the socket's session change was never saved");
    // Changed over HTTP while the socket is open.
    let set = http_get(port, "/test_http/set/color/blue", &[("Cookie", &cookie)]);
    assert_eq!(set.status, 200);
    let rotated = set.cookie("session_id");
    assert!(rotated.is_none() || rotated.as_deref() == Some(sid.as_str()));
    // The socket's callback changes the session again: it saves the HTTP change too.
    ws.send(Message::text("count")).unwrap();
    assert_eq!(ws_next(&mut ws).into_text().unwrap().as_str(), "count 2");
    assert_eq!(
        http_get(port, "/test_http/get/color", &[("Cookie", &cookie)]).text(),
        "blue"
    );
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    drop(server);
    // One session file: no id drawn on the socket's path.
    let sessions: Vec<_> = walk(&td.join("data"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == sid))
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
}

/// Whether the stored session `sid` holds `text`.
fn session_saved(td: &TestDir, sid: &str, text: &str) -> bool {
    walk(&td.join("data")).iter().any(|p| {
        p.file_name().is_some_and(|n| n.to_string_lossy() == sid)
            && std::fs::read_to_string(p).is_ok_and(|t| t.contains(text))
    })
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `clients` upgrades to `path` sent at once (each from its own thread, released together
/// by a barrier); the statuses, with the connections kept open until they are counted.
fn burst_of_upgrades(port: u16, path: &str, clients: usize) -> Vec<u16> {
    use std::io::{Read, Write};
    use std::sync::{Arc, Barrier};
    let barrier = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let path = path.to_owned();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let raw = format!(
                    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                );
                barrier.wait();
                stream.write_all(raw.as_bytes()).unwrap();
                let mut head = [0u8; 12];
                stream.read_exact(&mut head).unwrap();
                let status: u16 = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
                (status, stream)
            })
        })
        .collect();
    let done: Vec<(u16, TcpStream)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    done.iter().map(|(s, _)| *s).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn a_burst_of_upgrades_never_overshoots_websocket_max_connections() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--websocket-max-connections=20"])
        .start_healthy();
    let statuses = burst_of_upgrades(server.port(), PATH, 120);
    assert_eq!(
        (count(&statuses, 101), count(&statuses, 503)),
        (20, 100),
        "{statuses:?}"
    );
}

#[test]
fn a_burst_of_upgrades_never_overshoots_the_loop_handler_bound() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    // `web`'s `/websocket/echo` loops on `recv()`: each socket holds a thread.
    let statuses = burst_of_upgrades(server.port(), "/websocket/echo", 400);
    assert_eq!(
        (count(&statuses, 101), count(&statuses, 503)),
        (256, 144),
        "{statuses:?}"
    );
}
