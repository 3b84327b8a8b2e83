//! Limits and slow clients: 413 for oversized bodies (the route's and the server's limit,
//! chunked too), the header and keep-alive timeouts, and the concurrency cap.

use crate::support::*;
use inphms_tests::{http_get, request, HttpConn, TestDir};
use std::io::Read;
use std::time::{Duration, Instant};

#[test]
fn oversized_bodies_get_413() {
    let (_td, server) = start(&["--max-content-length", "64"]);
    let port = server.port();
    // The route's own limit (16 bytes).
    let r = send(port, "POST", "/test_http/small", &[], &[b'x'; 16]);
    assert_eq!((r.status, r.text().as_str()), (200, "16 bytes"));
    let r = send(port, "POST", "/test_http/small", &[], &[b'x'; 17]);
    assert_eq!(r.status, 413);
    assert_eq!(
        r.text(),
        error_page(
            413,
            "Payload Too Large",
            "The data value transmitted exceeds the capacity limit."
        )
    );
    // The server's limit, from Content-Length and from a chunked body that has none.
    let r = send(port, "POST", "/test_http/error/user", &[], &[b'x'; 64]);
    assert_eq!(r.status, 400, "under the limit: reached the handler");
    let r = send(port, "POST", "/test_http/error/user", &[], &[b'x'; 65]);
    assert_eq!(r.status, 413);
    let mut chunked = b"POST /test_http/error/user HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"20\r\n");
        chunked.extend_from_slice(&[b'y'; 32]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(request(port, &chunked).status, 413);
}

/// Reads until the server closes the connection; how long that took.
fn time_to_close(conn: &HttpConn) -> Duration {
    let t0 = Instant::now();
    let mut stream = conn.stream();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return t0.elapsed(),
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("the connection was still open after {:?}", t0.elapsed())
            }
            Err(_) => return t0.elapsed(),
        }
    }
}

/// Asserts that the server closes `conn` after about a second (a timeout of 1 s).
#[track_caller]
fn assert_closed_in_about_a_second(conn: &HttpConn) {
    let took = time_to_close(conn);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn a_slow_header_client_is_dropped() {
    let (_td, server) = start(&[
        "--http-header-timeout",
        "1",
        "--http-keepalive-timeout",
        "60",
    ]);
    let mut conn = HttpConn::connect(server.port()).unwrap();
    conn.send(b"GET /test_http/item/1 HT").unwrap();
    assert_closed_in_about_a_second(&conn);
}

#[test]
fn an_idle_keepalive_connection_is_dropped_apart_from_the_header_timeout() {
    let one_request = b"GET /test_http/item/1 HTTP/1.1\r\nHost: x\r\n\r\n";
    // Keep-alive 1 s, header 30 s: idle after a response, the connection goes in about 1 s.
    let (_td, server) = start(&[
        "--http-header-timeout",
        "30",
        "--http-keepalive-timeout",
        "1",
    ]);
    let mut conn = HttpConn::connect(server.port()).unwrap();
    conn.send(one_request).unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    assert_closed_in_about_a_second(&conn);
    // Header 1 s, keep-alive 30 s: an idle pause longer than the header timeout is fine.
    let (_td2, server) = start(&[
        "--http-header-timeout",
        "1",
        "--http-keepalive-timeout",
        "30",
    ]);
    let mut conn = HttpConn::connect(server.port()).unwrap();
    conn.send(one_request).unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    // Proving that nothing happens takes the wait itself.
    std::thread::sleep(Duration::from_millis(2500));
    conn.send(one_request).unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
}

/// How long a quick request takes while `/test_http/sleep/1500` runs, with `env`.
fn quick_request_latency_during_a_slow_one(env: &[(&str, &str)]) -> Duration {
    let td = TestDir::new();
    let server = start_with(&td, &[], env);
    let port = server.port();
    let slow = std::thread::spawn(move || http_get(port, "/test_http/sleep/1500", &[]));
    assert!(
        server.wait_for_log("sleep 1500 ms: started", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    let t0 = Instant::now();
    let r = http_get(port, "/test_http/item/7", &[]);
    let latency = t0.elapsed();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "item 7"),
        "the extra request is served"
    );
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "slept 1500"));
    latency
}

#[test]
fn the_concurrency_cap_makes_extra_requests_wait() {
    let capped = quick_request_latency_during_a_slow_one(&[("INPHMS_MAX_HTTP_THREADS", "1")]);
    assert!(
        capped >= Duration::from_millis(1000),
        "{capped:?}: did not wait for the slow request"
    );
    let uncapped = quick_request_latency_during_a_slow_one(&[("INPHMS_MAX_HTTP_THREADS", "0")]);
    assert!(
        uncapped < Duration::from_millis(1000),
        "{uncapped:?}: waited without a cap"
    );
}
