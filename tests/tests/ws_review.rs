//! Regression tests of the review of issue 17's websockets (review R1), through the real
//! binary and `test_http`'s `/test_http/ws_events`: websockets never take every HTTP
//! connection slot (`websocket_max_connections` defaults to half of
//! `http_max_connections`, a value at or above it stops the start with an error naming
//! the option), and websocket options out of range are refused at start.

use inphms_tests::{try_request, TestDir};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;

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
