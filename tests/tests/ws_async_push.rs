//! A push stream opened inside a websocket callback outlives the callback, async as sync:
//! `test_http`'s `/test_http/ws_push_async` and `/test_http/ws_push` open one (a first
//! event pushed inside), keep it and name it; after the callback returned, a plain request
//! pushes into it and another answers with it: its body has both events. (A stream
//! dropped when the callback ends refuses the push and has no body to answer with.)

use inphms_tests::ws::{ws_open_greeted, ws_text};
use inphms_tests::{http_get, TestDir};
use tungstenite::Message;

/// Opens the socket at `path`, has its callback open a push stream, then feeds and answers
/// the stream from plain requests: the answer's body.
fn stream_after_its_callback(port: u16, path: &str) -> String {
    let (mut ws, _) = ws_open_greeted(port, path, None);
    ws.send(Message::text("stream")).expect("send");
    // The callback's sends are held until it returns: it has returned.
    let reply = ws_text(&mut ws);
    let id: u64 = reply
        .strip_prefix("stream ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{path}: a stream id: {reply:?}"));
    let pushed = http_get(port, &format!("/test_http/sse_push/{id}?data=after"), &[]);
    assert_eq!(
        (pushed.status, pushed.text()),
        (200, "pushed".to_owned()),
        "{path}: a push after the callback"
    );
    let answered = http_get(port, &format!("/test_http/ws_push/answer/{id}"), &[]);
    assert_eq!(answered.status, 200, "{path}: {}", answered.text());
    assert_eq!(answered.header("content-type"), Some("text/event-stream"));
    // The socket still serves its callbacks.
    ws.send(Message::text("still")).expect("send");
    assert_eq!(ws_text(&mut ws), "still");
    answered.text()
}

#[test]
fn a_push_stream_opened_in_an_async_callback_outlives_it_as_a_sync_ones() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let expected = "event: hello\ndata: inside\n\nevent: tick\ndata: after\n\n";
    assert_eq!(
        stream_after_its_callback(port, "/test_http/ws_push"),
        expected
    );
    assert_eq!(
        stream_after_its_callback(port, "/test_http/ws_push_async"),
        expected
    );
}
