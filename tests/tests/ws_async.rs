//! Websockets served by async event callbacks (`AsyncWsHandler`, `serve_async`), through
//! the real binary: `test_http`'s `/test_http/ws_async` (1,000 sockets whose callbacks
//! await a host timer for a second hold no thread; a session change saved; a failure, a
//! panic and `limit_time_real` close with 1011 and `on_close` runs once; Close 1001 at
//! shutdown) and `test_db`'s `/test_db/ws_async` (a write through the async cursor
//! commits, an error rolls it back and drops the callback's sends; a callback retried
//! after a serialization failure sends once); a swap while a callback awaits leaves it on
//! its generation, and a swap replacing the socket's addon lets an awaiting callback finish
//! on its build, then closes with 1001 (`on_close` run).

use inphms_tests::bodies::status_kib;
use inphms_tests::cron::{install_test_db, server_args};
use inphms_tests::pg::TestDb;
use inphms_tests::swap::{install_swap_lib, swap_build, swap_server};
use inphms_tests::ws::{
    close_code, shutdown_closes_event_sockets_with_1001, ws_connect, ws_next, ws_open_greeted,
    ws_text as text,
};
use inphms_tests::{http_get, wait_until, Server, TestDir};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

const PATH: &str = "/test_http/ws_async";

fn start(args: &[&str]) -> (TestDir, Server) {
    let td = TestDir::new();
    let server = td.test_http_server(args).start_healthy();
    (td, server)
}

/// Opens an async event socket and reads its greeting; the socket's id.
fn open(port: u16, sid: Option<&str>) -> (WebSocket<TcpStream>, u64) {
    ws_open_greeted(port, PATH, sid)
}

fn threads(pid: u32) -> u64 {
    status_kib(pid, "Threads").expect("Threads in /proc/PID/status")
}

#[test]
fn a_thousand_sockets_awaiting_a_second_each_echo_without_a_thread_each() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let pid = server.pid();
    // One round first, so that the runtime and the blocking pool have started the threads
    // a socket's life uses.
    let (mut first, _) = open(port, None);
    first.send(Message::text("warm")).unwrap();
    assert_eq!(text(&mut first), "warm");
    let mut sockets: Vec<_> = (0..1000).map(|_| open(port, None).0).collect();
    let idle = threads(pid);
    let sent = Instant::now();
    for (i, ws) in sockets.iter_mut().enumerate() {
        ws.send(Message::text(format!("m{i}"))).unwrap();
    }
    // Every callback is now awaiting its second (the first echo comes after it).
    let awaiting = threads(pid);
    let mut most = awaiting;
    for (i, ws) in sockets.iter_mut().enumerate() {
        assert_eq!(text(ws), format!("m{i}"));
        if i % 100 == 0 {
            most = most.max(threads(pid));
        }
    }
    let took = sent.elapsed();
    eprintln!(
        "1,000 async callbacks awaiting 1 s each: all echoed in {took:?}; host threads {idle} idle, {awaiting} while they awaited, at most {most}"
    );
    // Sync callbacks would each hold a blocking thread for their second (hundreds of
    // threads, and rounds of the pool's 512); async ones hold none.
    assert!(
        most <= idle + 16,
        "threads grew from {idle} to {most} while 1,000 callbacks awaited"
    );
    assert!(
        took < Duration::from_secs(10),
        "1,000 echoes after 1 s each took {took:?}"
    );
    // A second round on the same sockets, in order per socket.
    for ws in sockets.iter_mut().step_by(10) {
        ws.send(Message::text("a")).unwrap();
        ws.send(Message::text("b")).unwrap();
    }
    for ws in sockets.iter_mut().step_by(10) {
        assert_eq!(text(ws), "a");
        assert_eq!(text(ws), "b");
    }
    drop(server);
}

#[test]
fn an_async_callback_saves_its_session_change() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let r = http_get(port, "/test_http/login/bob", &[]);
    let sid = r.cookie("session_id").expect("a session cookie");
    let (mut ws, id) = open(port, Some(&sid));
    ws.send(Message::text("count")).unwrap();
    assert_eq!(text(&mut ws), "count 1");
    ws.send(Message::text("count")).unwrap();
    assert_eq!(text(&mut ws), "count 2");
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    assert!(
        server.wait_for_log(
            &format!("test_http: ws_async closed with 1005 (socket {id})"),
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    // Saved in the session store: a new socket sees it.
    let (mut again, _) = open(port, Some(&sid));
    again.send(Message::text("count")).unwrap();
    assert_eq!(text(&mut again), "count 3");
    // The login survived (merged into the stored session, not replaced by a fresh one).
    let who = http_get(
        port,
        "/test_http/whoami",
        &[("Cookie", &format!("session_id={sid}"))],
    );
    assert!(who.text().contains("bob"), "{}", who.text());
    drop(server);
}

/// Sends `what` on a fresh socket: the socket is closed with 1011 (the callback's held send
/// never goes out) and `on_close` runs once, with 1011.
fn closes_with_1011(server: &Server, what: &str, within: Duration) {
    let port = server.port();
    let (mut ws, id) = open(port, None);
    let started = Instant::now();
    ws.send(Message::text(what)).unwrap();
    let close = ws_next(&mut ws);
    assert_eq!(close_code(&close), Some(1011), "{what}: {close:?}");
    assert!(
        started.elapsed() < within,
        "{what}: {:?}",
        started.elapsed()
    );
    let closed = format!("test_http: ws_async closed with 1011 (socket {id})");
    assert!(
        server.wait_for_log(&closed, Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    while ws.read().is_ok() {}
    // Once: after a moment for a second call to show.
    let (mut other, _) = open(port, None);
    other.send(Message::text("still")).unwrap();
    assert_eq!(text(&mut other), "still");
    assert_eq!(server.stderr().matches(&closed).count(), 1);
}

#[test]
fn a_failing_or_panicking_async_callback_closes_with_1011_and_on_close_runs_once() {
    let (_td, server) = start(&[]);
    closes_with_1011(&server, "fail", Duration::from_secs(5));
    closes_with_1011(&server, "panic", Duration::from_secs(5));
    let log = server.stderr();
    assert!(log.contains("async websocket callback failure"), "{log}");
    assert!(
        log.contains("secret async websocket callback panic"),
        "{log}"
    );
    drop(server);
}

#[test]
fn an_async_callback_past_limit_time_real_is_cancelled_and_closes_with_1011() {
    let (_td, server) = start(&["--limit-time-real=1"]);
    closes_with_1011(&server, "forever", Duration::from_secs(5));
    let log = server.stderr();
    assert!(
        log.contains("websocket callback of test_http::ws_async::ws_async exceeded limit_time_real (1s); cancelled"),
        "{log}"
    );
    drop(server);
}

#[test]
fn async_event_websockets_get_close_1001_at_shutdown_and_on_close_runs() {
    let (_td, mut server) = start(&[]);
    shutdown_closes_event_sockets_with_1001(&mut server, PATH, "test_http: ws_async");
}

#[test]
fn an_async_callback_writing_through_the_async_cursor_commits_or_rolls_back() {
    let td = TestDir::new();
    let db = TestDb::new("ws_async");
    install_test_db(&td, &db);
    let mut args = server_args();
    args.extend(["-d".to_owned(), db.name.clone()]);
    let server = td.server(args).start_healthy();
    let port = server.port();
    let before: i64 = db.sql("SELECT count(*) FROM test_db_note").parse().unwrap();
    let mut ws = ws_connect(port, "/test_db/ws_async", None);
    // Committed when the callback returns Ok (its answer sent after the commit).
    ws.send(Message::text("add wsa")).unwrap();
    assert_eq!(text(&mut ws), format!("added wsa ({} notes)", before + 1));
    assert_eq!(
        db.sql("SELECT count(*) FROM test_db_note WHERE name = 'wsa'"),
        "1"
    );
    ws.send(Message::text("add wsa2")).unwrap();
    assert_eq!(text(&mut ws), format!("added wsa2 ({} notes)", before + 2));
    // An error after the insert: rolled back, its send dropped, the socket closed (1011).
    ws.send(Message::text("add_fail wsb")).unwrap();
    let close = ws_next(&mut ws);
    assert_eq!(close_code(&close), Some(1011), "{close:?}");
    while ws.read().is_ok() {}
    assert_eq!(
        db.sql("SELECT count(*) FROM test_db_note WHERE name = 'wsb'"),
        "0"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM test_db_note")
            .parse::<i64>()
            .unwrap(),
        before + 2
    );
    // The connections went back to the pool out of their transactions.
    assert!(
        wait_until(Duration::from_secs(5), || db.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state LIKE 'idle in transaction%'"
        ) == "0"),
        "a connection was left in a transaction"
    );
    // The host serves on.
    let mut again = ws_connect(port, "/test_db/ws_async", None);
    again.send(Message::text("add wsc")).unwrap();
    assert_eq!(
        text(&mut again),
        format!("added wsc ({} notes)", before + 3)
    );
    drop(server);
}

#[test]
fn an_async_callback_retried_after_a_serialization_failure_sends_once() {
    let td = TestDir::new();
    let db = TestDb::new("ws_async_retry");
    install_test_db(&td, &db);
    let mut args = server_args();
    args.extend(["-d".to_owned(), db.name.clone()]);
    let server = td.server(args).start_healthy();
    let mut ws = ws_connect(server.port(), "/test_db/ws_async", None);
    ws.send(Message::text("retry")).unwrap();
    ws.send(Message::text("end")).unwrap();
    let mut got = Vec::new();
    loop {
        let m = text(&mut ws);
        let end = m == "end";
        got.push(m);
        if end {
            break;
        }
    }
    // The first attempt's send was dropped with its rollback; the retry's went once.
    assert_eq!(got, ["attempt 2", "end"], "{}", server.stderr());
    drop(server);
}

#[test]
fn a_swap_while_an_async_callback_awaits_leaves_it_on_its_generation() {
    let td = TestDir::new();
    let server = swap_server(&td, "base,web,test_http,test_swap", &[]);
    let port = server.port();
    let (mut ws, _) = open(port, None);
    let sent = Instant::now();
    ws.send(Message::text("sleep 8000")).unwrap();
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(
        server.wait_for_log("generation 2 serving after", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    let swapped = sent.elapsed();
    // The callback was still awaiting when generation 2 took over.
    assert!(
        swapped < Duration::from_secs(7),
        "the swap took {swapped:?}"
    );
    assert_eq!(text(&mut ws), "slept 8000");
    // The socket (of an addon the swap did not replace) goes on.
    ws.send(Message::text("sleep 10")).unwrap();
    assert_eq!(text(&mut ws), "slept 10");
    assert_eq!(
        http_get(port, "/test_swap/version", &[]).text(),
        "v2".to_owned()
    );
    drop(server);
}

#[test]
fn a_swap_of_the_sockets_addon_lets_its_awaiting_callback_finish_then_closes_with_1001() {
    let td = TestDir::new();
    let server = swap_server(&td, "base,web,test_http,test_swap", &[]);
    let port = server.port();
    let mut v1 = ws_connect(port, "/test_swap/ws_async", None);
    assert_eq!(text(&mut v1), "v1");
    // Within the grace (2 s after the swap) the socket is kept: a callback awaiting across
    // the swap finishes on v1's build...
    let sent = Instant::now();
    v1.send(Message::text("sleep 1800")).unwrap();
    install_swap_lib(&td.join("addons"), &swap_build("v2"));
    server.signal("HUP");
    assert!(
        server.wait_for_log("generation 2 serving after", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    let swapped = sent.elapsed();
    eprintln!("generation 2 serving {swapped:?} after the callback started");
    assert!(
        swapped < Duration::from_millis(1800),
        "the swap took {swapped:?}"
    );
    assert_eq!(text(&mut v1), "v1 slept 1800");
    // ...then the socket is closed with 1001 and v1's on_close runs, once.
    let close = ws_next(&mut v1);
    assert_eq!(close_code(&close), Some(1001), "{close:?}");
    assert!(
        server.wait_for_log(
            "test_swap: v1 ws_async closed with 1001",
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    let mut v2 = ws_connect(port, "/test_swap/ws_async", None);
    assert_eq!(text(&mut v2), "v2");
    assert_eq!(
        server
            .stderr()
            .matches("test_swap: v1 ws_async closed with")
            .count(),
        1
    );
    drop(server);
}

#[test]
fn a_session_logged_out_over_http_closes_the_async_socket_with_4001() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let r = http_get(port, "/test_http/login/bob", &[]);
    let sid = r.cookie("session_id").expect("a session cookie");
    let cookie = format!("session_id={sid}");
    let (mut ws, id) = open(port, Some(&sid));
    ws.send(Message::text("count")).unwrap();
    assert_eq!(text(&mut ws), "count 1");
    // A callback's sends go after its session is saved: once `count 2` arrived, the
    // session was saved (and the logout below cannot be undone by a late save).
    ws.send(Message::text("count")).unwrap();
    assert_eq!(text(&mut ws), "count 2");
    let out = http_get(port, "/test_http/logout", &[("Cookie", &cookie)]);
    assert_eq!(out.status, 200);
    // The next message finds the session gone: Close 4001, no reply; on_close runs.
    ws.send(Message::text("count")).unwrap();
    let m = ws_next(&mut ws);
    assert_eq!(close_code(&m), Some(4001), "{m:?}");
    while ws.read().is_ok() {}
    assert!(
        server.wait_for_log(
            &format!("test_http: ws_async closed with 4001 (socket {id})"),
            Duration::from_secs(10)
        ),
        "{}",
        server.stderr()
    );
    // The logged-out id was not written again.
    let who = http_get(port, "/test_http/whoami", &[("Cookie", &cookie)]);
    assert!(!who.text().contains("bob"), "{}", who.text());
    drop(server);
}
