//! Idle shedding (`host/src/http/idle.rs`) in a worker of workers mode, against the real
//! binary: a parked keep-alive connection still holds its place under
//! `worker_connections` (the worker accepts no more while its connections are parked),
//! is served again by the same worker, and gives its place back when it closes; with the
//! default `worker_connections` 1 a connection closes after its response, never parked.
//!
//! Build first: `cargo build --workspace`, then
//! `cargo test -p inphms-tests --test idle_shed_workers`.

use inphms_tests::{closes, wait_until, HttpConn, Server, TestDir};
use std::time::Duration;

/// The log line of a connection parked.
const PARKED: &str = "idle, parked";

fn one_worker(td: &TestDir, extra: &[&str]) -> Server {
    let mut args = vec![
        "--workers",
        "1",
        "--max-cron-threads",
        "0",
        "--log-handler=inphms.http.idle:DEBUG",
    ];
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

/// Waits until the log has `n` lines containing `needle`; panics with the log otherwise.
#[track_caller]
fn wait_count(server: &Server, needle: &str, n: usize) {
    let reached = wait_until(Duration::from_secs(20), || {
        server.stderr().matches(needle).count() >= n
    });
    assert!(reached, "never {n} x {needle:?}\n{}", server.stderr());
}

/// A keep-alive `GET /test_http/pid` on `conn`: the serving worker's pid.
#[track_caller]
fn pid(conn: &mut HttpConn) -> String {
    conn.send(b"GET /test_http/pid HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let r = conn.read_response(false).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!closes(&r), "{r:?}");
    r.text()
}

#[test]
fn parked_connections_still_hold_the_worker_and_release_it_when_closed() {
    let td = TestDir::new();
    let server = one_worker(&td, &["--worker-connections", "2"]);
    let port = server.port();
    // Two keep-alive connections, each answered, then parked (one at a time, so that each
    // is parked before the next opens).
    let mut conns: Vec<HttpConn> = (0..2)
        .map(|n| {
            let mut c = HttpConn::connect(port).unwrap();
            pid(&mut c);
            wait_count(&server, PARKED, n + 1);
            c
        })
        .collect();
    // Parked, they still hold the worker: a third connection is not answered.
    let mut third = HttpConn::connect(port).unwrap();
    third
        .send(b"GET /test_http/pid HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    third
        .stream()
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let early = third.read_response(false);
    assert!(
        early.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "answered while the worker's connections were parked: {early:?}\n{}",
        server.stderr()
    );
    third
        .stream()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // A parked connection is served again by the same worker, and parks again.
    let first = pid(&mut conns[0]);
    assert!(
        server.stderr().contains("served again"),
        "{}",
        server.stderr()
    );
    wait_count(&server, PARKED, 3);
    // The client closing a parked connection gives its place back: the third is served.
    drop(conns.pop());
    let r = third.read_response(false).unwrap();
    assert_eq!((r.status, r.text()), (200, first.clone()), "{r:?}");
    wait_count(&server, "parked connection closed: closed by the client", 1);
    // The parked one left serves on.
    assert_eq!(pid(&mut conns[0]), first);
}

#[test]
fn with_one_connection_per_worker_a_connection_closes_after_its_response_unparked() {
    let td = TestDir::new();
    let server = one_worker(&td, &[]);
    let port = server.port();
    for _ in 0..3 {
        let mut conn = HttpConn::connect(port).unwrap();
        conn.send(b"GET /test_http/item/1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = conn.read_response(false).unwrap();
        assert_eq!((r.status, r.text()), (200, "item 1".to_owned()), "{r:?}");
        assert!(closes(&r), "{r:?}");
        // Closed by the worker (end of input), not parked.
        let after = conn.read_response(false);
        assert!(after.is_err(), "the connection stays open: {after:?}");
    }
    // The worker's debug log of `inphms.http.idle` is on (its requests were logged), and
    // no connection was parked.
    wait_count(&server, "\"GET /test_http/item/1 HTTP/1.1\" 200", 3);
    let log = server.stderr();
    assert!(!log.contains(PARKED), "{log}");
}
