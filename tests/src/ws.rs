//! A blocking websocket client (tungstenite) for the tests.

use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// Opens `ws://127.0.0.1:port/path` (with the session cookie `sid`), asserting the 101;
/// reads time out after 15 s.
pub fn ws_connect(port: u16, path: &str, sid: Option<&str>) -> WebSocket<TcpStream> {
    let mut req = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .expect("a websocket URL");
    if let Some(sid) = sid {
        let cookie = format!("session_id={sid}").parse().expect("a header value");
        req.headers_mut().insert("cookie", cookie);
    }
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("set the read timeout");
    let (ws, resp) = tungstenite::client::client(req, stream).expect("websocket handshake");
    assert_eq!(resp.status(), 101);
    ws
}

/// The next data or close message (pings and pongs skipped; a read interrupted by a
/// signal is retried).
pub fn ws_next(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(m) => return m,
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                continue
            }
            Err(e) => panic!("read a websocket message: {e:?}"),
        }
    }
}

/// The code of a Close message.
pub fn close_code(m: &Message) -> Option<u16> {
    match m {
        Message::Close(Some(frame)) => Some(u16::from(frame.code)),
        _ => None,
    }
}

/// The next data message, as text (a panic for another kind).
pub fn ws_text(ws: &mut WebSocket<TcpStream>) -> String {
    match ws_next(ws) {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Opens an event socket of `test_http` at `path` (with the session `sid`) and reads its
/// greeting (`open <id>`): the socket and its id.
pub fn ws_open_greeted(port: u16, path: &str, sid: Option<&str>) -> (WebSocket<TcpStream>, u64) {
    let mut ws = ws_connect(port, path, sid);
    let greeting = ws_text(&mut ws);
    let id = greeting
        .strip_prefix("open ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a greeting with the socket id: {greeting:?}"));
    (ws, id)
}

/// Stops `server` (SIGTERM) with `sockets` open: each gets Close 1001 (and the connection
/// ends once the client answers), the server exits cleanly and logs that it closed them
/// (1001 Going Away). Its log.
pub fn stop_closes_with_1001(
    server: &mut crate::Server,
    sockets: &mut [WebSocket<TcpStream>],
) -> String {
    server.signal("TERM");
    for ws in sockets.iter_mut() {
        let closing = ws_next(ws);
        assert_eq!(close_code(&closing), Some(1001), "{closing:?}");
        while ws.read().is_ok() {}
    }
    let status = server
        .wait(Duration::from_secs(20))
        .expect("the server exits");
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    let log = server.stderr();
    let closing = format!("closing {} websocket(s) (1001 Going Away)", sockets.len());
    assert!(log.contains(closing.as_str()), "{log}");
    log
}

/// [`stop_closes_with_1001`] with 3 greeted event sockets of `test_http` at `path`: no
/// callback failed, and the handler's `on_close` logged `<handler> closed with 1001` once
/// per socket.
pub fn shutdown_closes_event_sockets_with_1001(
    server: &mut crate::Server,
    path: &str,
    handler: &str,
) {
    let port = server.port();
    let mut sockets: Vec<_> = (0..3)
        .map(|_| ws_open_greeted(port, path, None).0)
        .collect();
    let log = stop_closes_with_1001(server, &mut sockets);
    assert!(!log.contains("websocket callback of"), "{log}");
    let closed = format!("{handler} closed with 1001");
    assert_eq!(log.matches(closed.as_str()).count(), 3, "{log}");
}
