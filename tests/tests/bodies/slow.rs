//! `http_body_timeout` and `http_body_min_rate`: a stalled body answered 408 and its
//! connection closed, a slow but steady one served, dripping bodies neither holding the
//! budget from a small POST nor outliving the minimum rate.

use crate::support::{digest, json_of, pattern, start, tail};
use inphms_tests::bodies::{drip, fnv_hex, post_chunked, Upload};
use inphms_tests::{http_get, HttpConn, TestDir};
use serde_json::json;
use std::io::Read;
use std::time::{Duration, Instant};

#[test]
fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let td = TestDir::new();
    // 2 bytes per second past the first second: the steady body below keeps above it.
    let server = start(
        &td,
        &["--http-body-timeout", "1", "--http-body-min-rate", "2"],
    );
    let port = server.port();
    let mut conn = HttpConn::connect(port).expect("connect");
    conn.send(
        format!(
            "POST /test_http/body_digest HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        .as_bytes(),
    )
    .expect("send the head and 10 bytes");
    let sent = Instant::now();
    conn.stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let resp = conn
        .read_response(false)
        .expect("an answer to the stalled body");
    let waited = sent.elapsed();
    assert_eq!(resp.status, 408, "{}", resp.text());
    assert!(
        resp.text().contains("didn't finish the request"),
        "{}",
        resp.text()
    );
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "answered after {waited:?}, the timeout is 1 s"
    );
    // The server closes its side: end of input, not a wait.
    let mut rest = Vec::new();
    let closed = conn.stream().try_clone().unwrap().read_to_end(&mut rest);
    assert!(closed.is_ok() && rest.is_empty(), "{closed:?} {rest:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        sent.elapsed()
    );

    // A slow but steady body is not a stalled one: 10 bytes, one every 300 ms (3 s in all).
    let steady = post_chunked(
        port,
        "/test_http/body_digest",
        &[],
        &Upload {
            chunk: 1,
            pace: Some(Duration::from_millis(300)),
            ..Upload::filled(b's', 10)
        },
    )
    .expect("steady upload");
    assert_eq!(steady.status, 200, "{}", steady.text());
    assert_eq!(json_of(&steady)["len"], json!(10));
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}

#[test]
fn slow_dripping_bodies_cannot_starve_a_small_post_and_are_answered_408_below_the_minimum_rate() {
    // 1 MiB for all bodies in memory; a body averages 100 bytes/s past its first 2 s.
    let td = TestDir::new();
    let server = start(
        &td,
        &[
            "--limit-memory-bodies",
            "1048576",
            "--http-body-timeout",
            "2",
            "--http-body-min-rate",
            "100",
        ],
    );
    let port = server.port();
    // 8 clients announce 128 KiB less a byte each (the whole 1 MiB, were announcements
    // charged with the byte they sent first), send a byte, then a byte every 300 ms: never
    // silent for the 2 s of `http_body_timeout`.
    let drippers: Vec<_> = (0..8)
        .map(|_| {
            drip(
                port,
                "/test_http/body_digest",
                128 * 1024 - 1,
                Duration::from_millis(300),
                Duration::from_secs(15),
            )
        })
        .collect();
    // Meanwhile a login-sized POST is served, again and again (each one charged 200 bytes
    // of the budget the drippers would hold).
    let small = pattern(200);
    let t = Instant::now();
    let mut probes = 0;
    while t.elapsed() < Duration::from_millis(1500) && probes < 20 {
        let resp = digest(port, &small);
        assert_eq!(resp.status, 200, "probe {probes}: {}", resp.text());
        assert_eq!(json_of(&resp)["fnv"], json!(fnv_hex(&small)));
        probes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each dripper is behind the rate 2 s after its head (it owed nothing before), far
    // from its 128 KiB: 408, though it never waited 2 s between two bytes.
    for d in drippers {
        let (answer, took) = d.join().expect("a dripper");
        let resp = answer.expect("an answer to the dripping body");
        assert_eq!(resp.status, 408, "{}", resp.text());
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
            "answered after {took:?}: the grace is 2 s"
        );
    }
    assert!(
        server.wait_for_log(
            "request body below the minimum rate",
            Duration::from_secs(5)
        ),
        "{}",
        tail(&server.stderr())
    );
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}
