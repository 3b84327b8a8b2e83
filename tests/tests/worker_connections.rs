//! `worker_connections` in workers mode, against the real binary: an HTTP worker holds at
//! most that many client connections and accepts no more until one closes (the next
//! connection waits for a worker instead); with the default 1 each response carries
//! `Connection: close` (Odoo's prefork: one request per connection), and an upgraded
//! connection (a websocket) no longer counts; with more, keep-alive is honoured. Without
//! workers the option is named in the start-up warning; it is listed with the workers
//! options in `--help`; 0 is refused.

use inphms_tests::ws::{ws_connect, ws_next};
use inphms_tests::{closes, wait_until, HttpConn, Server, TestDir};
use std::time::Duration;

/// A keep-alive `GET path` (no `Connection` header).
fn keep_alive_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn one_worker(td: &TestDir, extra: &[&str]) -> Server {
    let mut args = vec!["--workers", "1", "--max-cron-threads", "0"];
    args.extend_from_slice(extra);
    let server = td.test_http_server(&args).start_healthy();
    assert!(
        wait_until(Duration::from_secs(30), || server
            .stderr()
            .contains("(http) ready after")),
        "{}",
        server.stderr()
    );
    server
}

/// Sends `GET /test_http/pid` on a new connection and asserts that no answer comes within
/// `wait` (the worker is at its limit: the connection waits in the listen queue); returns
/// the connection, its request sent.
fn unanswered(port: u16, wait: Duration) -> HttpConn {
    let mut conn = HttpConn::connect(port).unwrap();
    conn.send(&keep_alive_get("/test_http/pid")).unwrap();
    conn.stream().set_read_timeout(Some(wait)).unwrap();
    let early = conn.read_response(false);
    assert!(
        early.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "answered while the worker was at its limit: {early:?}"
    );
    conn.stream()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn
}

#[test]
fn worker_connections_4_lets_one_worker_hold_four_keep_alive_connections_and_no_fifth() {
    let td = TestDir::new();
    let server = one_worker(&td, &["--worker-connections", "4"]);
    let port = server.port();
    let mut conns: Vec<HttpConn> = (0..4).map(|_| HttpConn::connect(port).unwrap()).collect();
    let mut pids = Vec::new();
    // Two requests on each connection: keep-alive is honoured, by the one worker.
    for round in 0..2 {
        for c in conns.iter_mut() {
            c.send(&keep_alive_get("/test_http/pid")).unwrap();
            let r = c.read_response(false).unwrap();
            assert_eq!(r.status, 200, "round {round}: {r:?}");
            assert!(!closes(&r), "round {round}: {r:?}");
            pids.push(r.text());
        }
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one worker served them all: {pids:?}");
    // A fifth connection waits while the four are open...
    let mut fifth = unanswered(port, Duration::from_millis(500));
    // ...and is served once one of them closes.
    drop(conns.pop());
    let r = fifth.read_response(false).unwrap();
    assert_eq!((r.status, r.text()), (200, pids[0].clone()), "{r:?}");
    assert!(!closes(&r), "{r:?}");
    // The three others still serve.
    for c in conns.iter_mut() {
        c.send(&keep_alive_get("/test_http/pid")).unwrap();
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
}

#[test]
fn by_default_a_worker_answers_connection_close_and_an_upgraded_connection_does_not_count() {
    let td = TestDir::new();
    let server = one_worker(&td, &[]);
    let port = server.port();
    // One request per connection: a keep-alive request is answered `Connection: close`,
    // and the connection is closed after it.
    let mut conn = HttpConn::connect(port).unwrap();
    conn.send(&keep_alive_get("/test_http/pid")).unwrap();
    let r = conn.read_response(false).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(closes(&r), "{r:?}");
    let after = conn.read_response(false);
    assert!(after.is_err(), "the connection stays open: {after:?}");
    // A connection being served holds the worker: the next one waits until it is done.
    let mut slow = HttpConn::connect(port).unwrap();
    slow.send(&keep_alive_get("/test_http/sleep/3000")).unwrap();
    assert!(
        server.wait_for_log("sleep 3000 ms: started", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    let mut waiting = unanswered(port, Duration::from_millis(500));
    let r = slow.read_response(false).unwrap();
    assert_eq!(
        (r.status, r.text()),
        (200, "slept 3000".to_owned()),
        "{r:?}"
    );
    assert!(closes(&r), "{r:?}");
    let r = waiting.read_response(false).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(closes(&r), "{r:?}");
    // A websocket stops counting once upgraded: plain requests are served while it is
    // open, and it serves on.
    let mut ws = ws_connect(port, "/test_http/ws_events", None);
    let hello = ws_next(&mut ws);
    assert!(
        hello.to_text().unwrap_or("").starts_with("open "),
        "{hello:?}"
    );
    for _ in 0..3 {
        let r = inphms_tests::http_get(port, "/test_http/pid", &[]);
        assert_eq!(r.status, 200, "{r:?}");
    }
    ws.send(tungstenite::Message::text("echo me")).unwrap();
    assert_eq!(ws_next(&mut ws).to_text().unwrap(), "echo me");
}

#[test]
fn without_workers_worker_connections_is_named_in_the_warning_and_0_is_refused() {
    let td = TestDir::new();
    let server = td
        .test_http_server(&["--worker-connections", "4"])
        .start_healthy();
    let log = server.stderr();
    assert!(
        log.contains(
            "options that apply only with --workers (workers = 0 here): worker_connections"
        ),
        "{log}"
    );
    // The threaded server keeps its keep-alive connections.
    let mut conn = HttpConn::connect(server.port()).unwrap();
    for _ in 0..2 {
        conn.send(&keep_alive_get("/web/health")).unwrap();
        let r = conn.read_response(false).unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert!(!closes(&r), "{r:?}");
    }
    // Listed with the workers options in `--help`.
    let help = td.cmd(["server", "--help"]).run();
    assert_eq!(help.code, Some(0), "{help}");
    let group = help
        .stdout
        .find("Multiprocessing options:")
        .expect("the group");
    let listed = help
        .stdout
        .find("--worker-connections <COUNT>")
        .expect("listed");
    let next = help
        .stdout
        .find("Developers Options:")
        .expect("the next group");
    assert!(group < listed && listed < next, "{help}");
    let out = td
        .cmd(["server", "--workers", "2", "--worker-connections", "0"])
        .run();
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains("worker_connections")
            && out
                .stderr
                .contains("expected an integer from 1 to 4294967295"),
        "{out}"
    );
}
