//! Idle keep-alive connections shed hyper's state (issue 23, `host/src/http/idle.rs`),
//! through the real binary and real sockets on loopback: a connection idle past the shed
//! time is parked (the debug log of `inphms.http.idle` says so) and answers its next
//! requests, pipelined ones too, again and again; requests sent around the shed time are
//! all answered; the keep-alive timeout still closes a parked connection; the connection
//! cap still evicts one; SIGTERM with parked connections exits at once.
//!
//! Build first: `cargo build --workspace`, then `cargo test -p inphms-tests --test idle_shed`.

use inphms_tests::{try_request, wait_until, HttpConn, Server, TestDir};
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

/// The host's shed time (`idle::SHED_AFTER`).
const SHED_AFTER: Duration = Duration::from_millis(250);

/// The log line of a connection parked.
const PARKED: &str = "idle, parked";

fn start(td: &TestDir, args: &[&str]) -> Server {
    let mut all = vec!["--log-handler=inphms.http.idle:DEBUG"];
    all.extend_from_slice(args);
    td.test_http_server(&all).start_healthy()
}

/// Waits until the log has `n` lines containing `needle`; panics with the log otherwise.
#[track_caller]
fn wait_count(server: &Server, needle: &str, n: usize) {
    let reached = wait_until(Duration::from_secs(20), || {
        server.stderr().matches(needle).count() >= n
    });
    assert!(reached, "never {n} x {needle:?}\n{}", server.stderr());
}

/// `GET /test_http/item/N` on `conn`, expecting its answer.
#[track_caller]
fn item(conn: &mut HttpConn, n: u32) {
    conn.send(format!("GET /test_http/item/{n} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let r = conn.read_response(false).unwrap();
    assert_eq!((r.status, r.text()), (200, format!("item {n}")));
}

/// How long until the host closes `conn` (end of input or reset), at most 20 s.
fn time_to_close(conn: &HttpConn) -> Duration {
    let t0 = Instant::now();
    let mut s = conn.stream();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return t0.elapsed(),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("not closed after {:?}", t0.elapsed())
            }
            Err(_) => return t0.elapsed(),
        }
    }
}

#[test]
fn a_parked_connection_answers_again_and_again_pipelined_requests_too() {
    let td = TestDir::new();
    let server = start(&td, &[]);
    let mut conn = HttpConn::connect(server.port()).unwrap();
    // The answered-at-once path (`/web/health`) and the handler path (`item`).
    conn.send(b"GET /web/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    wait_count(&server, PARKED, 1);
    item(&mut conn, 1);
    assert!(server.stderr().contains("served again"));
    wait_count(&server, PARKED, 2);
    // Two pipelined requests in one write, to a parked connection.
    conn.send(
        b"GET /test_http/item/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /test_http/item/3 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    for n in [2, 3] {
        let r = conn.read_response(false).unwrap();
        assert_eq!((r.status, r.text()), (200, format!("item {n}")));
    }
    wait_count(&server, PARKED, 3);
    item(&mut conn, 4);
    // Back to back (a loaded machine may still pause past the shed time between two).
    for n in 5..50 {
        item(&mut conn, n);
    }
    wait_count(&server, PARKED, 4);
    item(&mut conn, 50);
    // The access log still has the peer's address on the connection served again.
    wait_count(&server, "\"GET /test_http/item/50 HTTP/1.1\" 200", 1);
    let log = server.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("\"GET /test_http/item/50 HTTP/1.1\" 200"))
        .unwrap_or_else(|| panic!("no access log line\n{log}"));
    assert!(line.contains("127.0.0.1"), "{line}");
    assert!(log.matches(PARKED).count() >= 4, "{log}");
}

#[test]
fn requests_sent_around_the_shed_time_are_all_answered() {
    let td = TestDir::new();
    let server = start(&td, &[]);
    let port = server.port();
    // 120 connections, each answered once, then each sends its next request at its own
    // moment, from 60 ms before the shed time to 60 ms after it, 1 ms apart: some land
    // before the shed, some while it happens, some on the parked socket.
    let mut conns: Vec<(HttpConn, Instant)> = (0..120)
        .map(|_| {
            let mut c = HttpConn::connect_timeout(port, Duration::from_secs(10)).unwrap();
            item(&mut c, 0);
            (c, Instant::now())
        })
        .collect();
    let first = conns[0].1;
    for (i, (conn, answered)) in conns.iter_mut().enumerate() {
        // Scheduling each send at its moment (not waiting for a state).
        let at = (*answered).max(first) + SHED_AFTER - Duration::from_millis(60)
            + Duration::from_millis(i as u64);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        conn.send(format!("GET /test_http/item/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
    }
    for (i, (conn, _)) in conns.iter_mut().enumerate() {
        let r = conn
            .read_response(false)
            .unwrap_or_else(|e| panic!("connection {i}: {e}\n{}", server.stderr()));
        assert_eq!((r.status, r.text()), (200, format!("item {i}")));
    }
    // Some were parked before their request came.
    let log = server.stderr();
    assert!(
        log.contains(PARKED) && log.contains("served again"),
        "{log}"
    );
    // And they all go on.
    for (i, (conn, _)) in conns.iter_mut().enumerate() {
        item(conn, 1000 + i as u32);
    }
}

#[test]
fn the_keepalive_timeout_still_closes_a_parked_connection() {
    let td = TestDir::new();
    let server = start(
        &td,
        &[
            "--http-keepalive-timeout",
            "3",
            "--http-header-timeout",
            "30",
        ],
    );
    let mut conn = HttpConn::connect(server.port()).unwrap();
    item(&mut conn, 1);
    let answered = Instant::now();
    wait_count(&server, PARKED, 1);
    let closed_after = answered.elapsed() + time_to_close(&conn);
    assert!(
        closed_after >= Duration::from_millis(2800) && closed_after < Duration::from_secs(6),
        "{closed_after:?}"
    );
    wait_count(
        &server,
        "parked connection closed: idle past http_keepalive_timeout",
        1,
    );
}

#[test]
fn the_connection_cap_evicts_a_parked_connection() {
    let td = TestDir::new();
    let server = start(&td, &["--http-max-connections", "3"]);
    let port = server.port();
    // One at a time, each parked before the next (so that the start's probe, closing, is
    // not counted with them: at the cap, the oldest would be evicted before it parks).
    let mut parked: Vec<HttpConn> = (0..3)
        .map(|n| {
            let mut c = HttpConn::connect(port).unwrap();
            item(&mut c, n);
            wait_count(&server, PARKED, n as usize + 1);
            c
        })
        .collect();
    // A fourth client is answered; the oldest parked one is closed to make room.
    let r = try_request(
        port,
        b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    wait_count(&server, "parked connection closed: evicted", 1);
    assert!(time_to_close(&parked[0]) < Duration::from_secs(5));
    for (n, c) in parked.iter_mut().enumerate().skip(1) {
        item(c, n as u32);
    }
}

#[test]
fn sigterm_with_parked_connections_exits_at_once() {
    let td = TestDir::new();
    let mut server = start(&td, &[]);
    let port = server.port();
    let conns: Vec<HttpConn> = (0..50)
        .map(|n| {
            let mut c = HttpConn::connect(port).unwrap();
            item(&mut c, n);
            c
        })
        .collect();
    wait_count(&server, PARKED, 50);
    let t0 = Instant::now();
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        server.stderr()
    );
    // Promptly: long before the keep-alive timeout (60 s).
    assert!(
        took < Duration::from_secs(5),
        "{took:?}\n{}",
        server.stderr()
    );
    for c in &conns {
        assert!(time_to_close(c) < Duration::from_secs(1));
    }
}
