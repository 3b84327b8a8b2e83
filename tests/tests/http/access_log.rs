//! The access log: werkzeug's format, one line per request, and no batched line lost at a
//! graceful stop.

use crate::support::*;
use inphms_tests::{http_get, wait_until};
use regex::Regex;
use std::time::Duration;

/// Access-log lines are written in batches (within 20 ms), yet none is lost: a graceful
/// stop right after a burst of requests writes every line before the process exits.
#[test]
fn a_graceful_stop_writes_every_batched_access_log_line() {
    let (_td, mut server) = start(&[]);
    let port = server.port();
    for i in 0..40 {
        let r = http_get(port, &format!("/web/health?n={i}"), &[]);
        assert_eq!(r.status, 200);
    }
    assert!(
        server.stop(Duration::from_secs(10)).is_some(),
        "no graceful exit:\n{}",
        server.stderr()
    );
    let log = server.stderr();
    for i in 0..40 {
        assert!(
            log.contains(&format!("\"GET /web/health?n={i} HTTP/1.1\" 200")),
            "access line {i} missing after the stop:\n{log}"
        );
    }
}

#[test]
fn one_access_log_line_per_request_in_werkzeugs_format() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let r = http_get(port, "/test_http/item/7?x=1", &[]);
    assert_eq!(r.status, 200);
    let line = Regex::new(
        r#"(?m)^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} \d+ INFO \? werkzeug: 127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4} \d{2}:\d{2}:\d{2}\] "GET /test_http/item/7\?x=1 HTTP/1\.1" 200 6 0 0\.000 \d+\.\d{3}$"#,
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || line.is_match(&server.stderr())),
        "{}",
        server.stderr()
    );
    assert_eq!(
        server
            .stderr()
            .matches("\"GET /test_http/item/7?x=1 HTTP/1.1\"")
            .count(),
        1
    );
    // Errors are logged too, with their status.
    http_get(port, "/test_http/nowhere", &[]);
    assert!(server.wait_for_log(
        "\"GET /test_http/nowhere HTTP/1.1\" 404",
        Duration::from_secs(10)
    ));
}
