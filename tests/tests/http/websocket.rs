//! Websockets: a round trip with the session's login, timeouts and close codes, handler
//! failures, handshake refusals, and Close 1001 at shutdown.

use crate::support::*;
use inphms_tests::ws::{close_code, stop_closes_with_1001, ws_connect, ws_next};
use inphms_tests::{http_get, request, Response};
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::Message;

#[test]
fn websocket_round_trip_with_the_session_login() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let mut ws = ws_connect(port, "/websocket/echo", None);
    assert_eq!(ws_next(&mut ws), Message::Text("hello anonymous".into()));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}

    let r = http_get(port, "/test_http/login/bob", &[]);
    let sid = set_sid(&r).unwrap();
    let mut ws = ws_connect(port, "/websocket/echo", Some(&sid));
    assert_eq!(ws_next(&mut ws), Message::Text("hello bob".into()));
    ws.send(Message::Text("ping é".into())).unwrap();
    assert_eq!(ws_next(&mut ws), Message::Text("ping é".into()));
    ws.send(Message::Binary(vec![0u8, 1, 2, 255].into()))
        .unwrap();
    assert_eq!(
        ws_next(&mut ws),
        Message::Binary(vec![0u8, 1, 2, 255].into())
    );
    let big = "x".repeat(200_000);
    ws.send(Message::Text(big.clone().into())).unwrap();
    assert_eq!(ws_next(&mut ws), Message::Text(big.into()));
    // The client closes; the server answers the close.
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: 1000.into(),
        reason: "done".into(),
    }))
    .unwrap();
    let answer = ws_next(&mut ws);
    assert_eq!(close_code(&answer), Some(1000), "{answer:?}");
    // The upgrade is in the access log as a 101.
    assert!(
        server.wait_for_log(
            "\"GET /websocket/echo HTTP/1.1\" 101",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    // And HTTP still works on the port.
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}

#[test]
fn websocket_timeouts_close_codes_and_failures() {
    let (_td, server) = start(&[]);
    let port = server.port();
    // (route, a message sent first, the message answered, the close code): a timeout closes
    // with 4000, a handler that returns leaves the close to the host (1000), a panic is 1011.
    for (path, sent, answer, code) in [
        ("/test_http/ws_timeout", None, "timeout", 4000),
        ("/test_http/ws_timeout", Some("x"), "got x", 4000),
        ("/test_http/ws_bye", None, "bye", 1000),
        ("/test_http/ws_panic", None, "about to fail", 1011),
    ] {
        let mut ws = ws_connect(port, path, None);
        if let Some(sent) = sent {
            ws.send(Message::Text(sent.into())).unwrap();
        }
        assert_eq!(ws_next(&mut ws), Message::Text(answer.into()), "{path}");
        let closing = ws_next(&mut ws);
        assert_eq!(close_code(&closing), Some(code), "{path}: {closing:?}");
    }
    assert!(server.wait_for_log("secret websocket panic", Duration::from_secs(10)));

    // A handler asking for a websocket on a plain route.
    let r = http_get(port, "/test_http/not_a_websocket", &[]);
    assert_eq!(
        (r.status, r.text()),
        (
            400,
            error_page(400, "Bad Request", "not a websocket request")
        )
    );
}

fn upgrade_request(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    request(port, raw.as_bytes())
}

#[test]
fn websocket_handshake_refusals() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let good = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let mut v8 = good;
    v8[2].1 = "8";
    let mut short_key = good;
    short_key[3].1 = "c2hvcnQ=";
    // (headers, status, the error page's text, Sec-WebSocket-Version answered).
    for (headers, status, text, version) in [
        (
            &good[..0],
            400,
            Some("Empty or missing header(s): connection, sec-websocket-key, sec-websocket-version, upgrade"),
            None,
        ),
        (&v8[..], 426, None, Some("13")),
        (
            &short_key[..],
            400,
            Some("Sec-WebSocket-Key should be of length 16 once decoded"),
            None,
        ),
    ] {
        let r = upgrade_request(port, "/websocket/echo", headers);
        assert_eq!(r.status, status, "{headers:?}");
        if let Some(text) = text {
            assert_eq!(r.text(), error_page(400, "Bad Request", text), "{headers:?}");
        }
        if let Some(version) = version {
            assert_eq!(r.header("sec-websocket-version"), Some(version));
        }
    }
    // A good handshake: 101 with the RFC's accept value (read by hand: the harness's
    // client skips 1xx answers).
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut raw = format!("GET /websocket/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (n, v) in good {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    std::io::Write::write_all(&mut stream, raw.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed mid-head: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 101 switching protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(
        head.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
}

#[test]
fn websockets_get_close_1001_at_shutdown() {
    let (_td, mut server) = start(&[]);
    let port = server.port();
    let mut sockets = [
        ws_connect(port, "/websocket/echo", None),
        ws_connect(port, "/websocket/echo", None),
    ];
    for ws in sockets.iter_mut() {
        assert_eq!(ws_next(ws), Message::Text("hello anonymous".into()));
    }
    stop_closes_with_1001(&mut server, &mut sockets);
}
