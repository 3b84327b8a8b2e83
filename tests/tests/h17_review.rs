//! Regression tests of the second review of issue 17's handler model, through the real
//! binary, `test_http` (and `test_db` on the real PostgreSQL for a retried callback), with
//! real websocket and HTTP clients. Each failed before its fix:
//!
//! 1. the stream of an answer not sent is dropped (a failed handler's push stream, a 504's
//!    push stream and pull producer);
//! 2. a websocket's send queue is bounded by bytes (`websocket_send_buffer`), the socket
//!    closed with 1013;
//! 3. a loop handler's sends wait for its slow client instead of failing;
//! 4. the keep-alive's clock stops while the server does not read a socket;
//! 5. a client that takes no data is cut after a short write timeout (not 30 s);
//! 6. a file answer is not opened on the event loop (a FIFO would block it);
//! 7. a stalled stream producer is cut at `limit_time_real`, the host goes on;
//! 8. a panicking callback closes with 1011 and `on_close` still runs once; a callback
//!    retried after a serialization failure sends its messages once;
//! 9. socket and stream ids are not guessable;
//! 10. a callback's session save keeps a change saved meanwhile over HTTP.

use inphms_tests::cron::{install_test_db, server_args};
use inphms_tests::pg::TestDb;
use inphms_tests::ws::{close_code, ws_connect, ws_next};
use inphms_tests::{http_get, try_request, wait_until, Server, TestDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

const EVENTS: &str = "/test_http/ws_events";

fn health(port: u16) -> bool {
    try_request(
        port,
        b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .is_ok_and(|r| r.status == 200)
}

fn text(port: u16, path: &str) -> String {
    http_get(port, path, &[]).text()
}

/// Opens an event socket (with the session `sid`); its id, from its greeting.
fn open_events(port: u16, sid: Option<&str>) -> (tungstenite::WebSocket<TcpStream>, u64) {
    inphms_tests::ws::ws_open_greeted(port, EVENTS, sid)
}

// 1. ------------------------------------------------------------------------------------

#[test]
fn a_failed_handler_drops_the_push_stream_it_opened() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    assert_eq!(http_get(port, "/test_http/h17/push_fail", &[]).status, 500);
    // The handler keeps a clone of the stream; the host forgot it with the failed answer.
    let pushed = text(port, "/test_http/h17/push_last");
    assert!(
        pushed.starts_with("refused: the stream is closed"),
        "a push stream of a failed answer is still open: {pushed}"
    );
}

#[test]
fn a_504_drops_its_answers_push_stream() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--limit-time-real=1"])
        .start_healthy();
    let port = server.port();
    assert_eq!(
        http_get(port, "/test_http/h17/push_sleep/2500", &[]).status,
        504
    );
    // Once the handler returns (its answer thrown away), its stream is dropped: pushing
    // into the clone it kept is refused (the stream has room for 65,536 chunks).
    assert!(
        wait_until(Duration::from_secs(15), || text(
            port,
            "/test_http/h17/push_last"
        )
        .starts_with("refused")),
        "the push stream of a 504 is still open: {}",
        server.stderr()
    );
}

#[test]
fn a_504_drops_its_answers_pull_producer() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--limit-time-real=1"])
        .start_healthy();
    let port = server.port();
    assert_eq!(text(port, "/test_http/producers_alive"), "0");
    assert_eq!(
        http_get(port, "/test_http/h17/pull_sleep/2500", &[]).status,
        504
    );
    assert!(
        wait_until(Duration::from_secs(15), || text(
            port,
            "/test_http/producers_alive"
        ) == "0"),
        "the producer of a 504 is still alive: {}",
        server.stderr()
    );
}

// 2. ------------------------------------------------------------------------------------

#[test]
fn a_slow_readers_send_queue_is_bounded_by_bytes() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--websocket-send-buffer=1048576"])
        .start_healthy();
    let port = server.port();
    // The client does not read: 64 KiB messages pile up.
    let (mut ws, id) = open_events(port, None);
    let flood = text(port, &format!("/test_http/ws_flood/{id}/1000"));
    let queued: usize = flood
        .strip_prefix("queued ")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{flood}"));
    assert!(
        flood.contains("websocket_send_buffer") && flood.contains("1013"),
        "the refusal names the budget and the close: {flood}"
    );
    // 16 messages of 64 KiB make the 1 MiB budget; the rest went into the kernel's socket
    // buffers. Counted in messages (256), the queue took 16 MiB.
    assert!(
        queued < 200,
        "{queued} messages of 64 KiB accepted: {flood}"
    );
    // The client then finds the messages written, and a Close 1013.
    let closed = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break close_code(&Message::Close(frame)),
            Ok(_) => continue,
            Err(e) => panic!("no Close before the end: {e}"),
        }
    };
    assert_eq!(closed, Some(1013));
}

// 3. ------------------------------------------------------------------------------------

#[test]
fn a_loop_handlers_sends_wait_for_its_slow_client() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--websocket-send-buffer=1048576"])
        .start_healthy();
    let port = server.port();
    // 300 messages of 64 KiB (19 MiB) through a 1 MiB queue, to a client that starts
    // reading late and then reads them all.
    let mut ws = ws_connect(port, "/test_http/h17/ws_loop_flood/300", None);
    std::thread::sleep(Duration::from_secs(2)); // a slow client
    for i in 0..300 {
        let m = ws_next(&mut ws);
        assert_eq!(m.len(), 64 * 1024, "message {i}: {m:?}");
    }
    assert_eq!(ws_next(&mut ws).into_text().unwrap().as_str(), "done 300 0");
}

// 4. ------------------------------------------------------------------------------------

#[test]
fn the_keep_alive_clock_stops_while_reads_are_paused() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&[
            "--websocket-ping-interval=1",
            "--websocket-rate-limit-burst=0",
        ])
        .start_healthy();
    let port = server.port();
    // The handler takes the first message, then is busy 4 s: the 100 messages after it
    // fill the server's incoming queue (64), so the server stops reading the socket, and
    // the client's answers to pings wait in it too.
    let mut ws = ws_connect(port, "/test_http/h17/ws_nap/4000", None);
    ws.send(Message::text("first")).unwrap();
    for _ in 0..100 {
        ws.send(Message::text("m")).unwrap();
    }
    ws.send(Message::text("end")).unwrap();
    // Reading answers the server's pings.
    let m = ws_next(&mut ws);
    assert_eq!(
        m.clone().into_text().ok().as_deref(),
        Some("got 100"),
        "{m:?}: {}",
        server.stderr()
    );
    assert!(!server.stderr().contains("did not answer a ping"));
}

// 5. ------------------------------------------------------------------------------------

#[test]
fn a_client_that_takes_no_data_is_cut_after_a_short_write_timeout() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--websocket-send-buffer=67108864"])
        .start_healthy();
    let port = server.port();
    let (ws, id) = open_events(port, None);
    // 256 messages of 64 KiB (16 MiB) for a client that never reads: more than the
    // kernel's buffers take, so a write waits for it.
    let started = Instant::now();
    let flood = text(port, &format!("/test_http/ws_flood/{id}/400"));
    assert!(flood.starts_with("queued"), "{flood}");
    let closed = format!("(socket {id})");
    assert!(
        server.wait_for_log(&closed, Duration::from_secs(25)),
        "the stalled client was not cut: {}",
        server.stderr()
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "cut after {took:?} (the write timeout is 5 s)"
    );
    assert!(server.stderr().contains("took no data for 5s"));
    assert!(health(port));
    drop(ws);
}

// 6. ------------------------------------------------------------------------------------

/// Opens `fifo` for writing without blocking, until no reader waits on it (releasing the
/// requests of a server that opened it on its event loop).
fn release_fifo(fifo: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    for _ in 0..64 {
        // O_NONBLOCK: fails (ENXIO) when no reader has it open.
        if std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000)
            .open(fifo)
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn a_file_answer_is_not_opened_on_the_event_loop() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let fifo = td.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let path = format!("/test_http/send_file?path={}", fifo.display());
    // Many answers naming the FIFO at once: opening it blocks until a writer comes.
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let path = path.clone();
            let sent = sent_tx.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                s.write_all(raw.as_bytes()).unwrap();
                let _ = sent.send(());
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got);
                String::from_utf8_lossy(&got).into_owned()
            })
        })
        .collect();
    // Every request is sent, and handlers have answered (their files are being opened: on
    // the event loop, each would hold one of its two workers) before the health check.
    for _ in 0..16 {
        sent_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    assert!(wait_until(Duration::from_secs(30), || server
        .stderr()
        .matches("send_file: answering")
        .count()
        >= 2));
    let healthy = health(port);
    release_fifo(&fifo);
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(
        healthy,
        "/web/health did not answer while files were being opened"
    );
    for a in &answers {
        assert!(a.starts_with("HTTP/1.1 404"), "a FIFO is not a file: {a}");
    }
}

// 7. ------------------------------------------------------------------------------------

#[test]
fn a_stalled_producer_is_cut_at_limit_time_real() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--limit-time-real=2"])
        .start_healthy();
    let port = server.port();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let started = Instant::now();
    s.write_all(
        b"GET /test_http/h17/stream_stall/20000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let took = started.elapsed();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        took < Duration::from_secs(12),
        "the stalled producer held its response {took:?}"
    );
    assert!(
        !got.ends_with("0\r\n\r\n"),
        "a cut response must not look whole"
    );
    assert!(server.stderr().contains("longer than limit_time_real"));
    assert!(health(port));
}

// 8. ------------------------------------------------------------------------------------

#[test]
fn a_panicking_callback_closes_with_1011_and_on_close_runs_once() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let (mut ws, id) = open_events(port, None);
    ws.send(Message::text("panic")).unwrap();
    let m = ws_next(&mut ws);
    assert_eq!(close_code(&m), Some(1011), "{m:?}");
    while ws.read().is_ok() {}
    let closed = format!("ws_events closed with 1011 (socket {id})");
    assert!(
        server.wait_for_log(&closed, Duration::from_secs(10)),
        "on_close did not run after a panic: {}",
        server.stderr()
    );
    assert!(wait_until(Duration::from_secs(10), || health(port)));
    assert_eq!(
        server.stderr().matches(&format!("(socket {id})")).count(),
        1
    );
}

/// A server on a new database with `test_db` installed.
fn db_server(td: &TestDir, tag: &str) -> (TestDb, Server) {
    let db = TestDb::new(tag);
    install_test_db(td, &db);
    let mut args = server_args();
    args.extend(["-d".to_owned(), db.name.clone()]);
    let server = td.server(args).start_healthy();
    (db, server)
}

#[test]
fn a_callback_retried_after_a_serialization_failure_sends_once() {
    let td = TestDir::new();
    let (_db, server) = db_server(&td, "h17_ws_retry");
    let port = server.port();
    let mut ws = ws_connect(port, "/test_db/ws_retry", None);
    ws.send(Message::text("go")).unwrap();
    ws.send(Message::text("end")).unwrap();
    let mut got = Vec::new();
    loop {
        let m = ws_next(&mut ws).into_text().expect("text").to_string();
        let end = m == "end";
        got.push(m);
        if end {
            break;
        }
    }
    assert_eq!(got, ["attempt 2", "end"], "{}", server.stderr());
    assert!(server.stderr().contains("tries left"), "it was retried");
}

#[test]
fn a_retried_handler_drops_the_push_stream_of_its_first_attempt() {
    let td = TestDir::new();
    let (_db, server) = db_server(&td, "h17_push_retry");
    let port = server.port();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /test_db/push_retry HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The answer (the second attempt's stream) and its first chunk.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("attempt") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    // The first attempt's stream, thrown away with its transaction, is dropped; the
    // second, being sent, takes pushes.
    assert_eq!(
        text(port, "/test_db/push_retry_state"),
        "refused,pushed",
        "{}",
        server.stderr()
    );
}

// 9. ------------------------------------------------------------------------------------

/// The id the first event of `/test_http/sse` names.
fn sse_id(port: u16) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"GET /test_http/sse HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(rest) = text.split("data: ").nth(1) {
            if let Some((id, _)) = rest.split_once('\n') {
                return id.trim().parse().expect("an id");
            }
        }
    }
}

#[test]
fn socket_and_stream_ids_are_not_guessable() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let (_a, a) = open_events(port, None);
    let (_b, b) = open_events(port, None);
    let (c, d) = (sse_id(port), sse_id(port));
    for (x, y, what) in [(a, b, "socket"), (c, d, "stream")] {
        // 63 random bits: neither small nor next to each other (each check fails by chance
        // once in 2^31 runs at most), and an `i64` (a route's `<int:id>`).
        assert!(x > 1 << 32 && y > 1 << 32, "{what} ids {x} and {y}");
        assert!(i64::try_from(x).is_ok() && i64::try_from(y).is_ok());
        assert!(x.abs_diff(y) > 1 << 20, "{what} ids {x} and {y}");
    }
    // The socket next to one in use is not one.
    let sent = text(
        port,
        &format!("/test_http/ws_send/{}?text=x", a.wrapping_add(1)),
    );
    assert!(!sent.contains("sent"), "{sent}");
}

// 10. -----------------------------------------------------------------------------------

#[test]
fn a_callbacks_session_save_keeps_a_change_saved_meanwhile() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    let login = http_get(port, "/test_http/login/bob", &[]);
    let sid = login.cookie("session_id").expect("a session cookie");
    let cookie = format!("session_id={sid}");
    let (mut ws, _) = open_events(port, Some(&sid));
    // The callback sets `ws_key`, then takes 1.5 s; meanwhile a request sets `http_key`.
    ws.send(Message::text("slow_set")).unwrap();
    assert!(server.wait_for_log("slow_set started", Duration::from_secs(10)));
    let set = http_get(port, "/test_http/set/http_key/http", &[("Cookie", &cookie)]);
    assert_eq!(set.status, 200);
    // The callback's reply is sent once its session is saved.
    assert_eq!(
        ws_next(&mut ws).into_text().unwrap().as_str(),
        "slow_set done"
    );
    let get = |key: &str| {
        http_get(
            port,
            &format!("/test_http/get/{key}"),
            &[("Cookie", &cookie)],
        )
        .text()
    };
    assert_eq!(get("ws_key"), "ws");
    assert_eq!(get("http_key"), "http", "the request's change was lost");
}
