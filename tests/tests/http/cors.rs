//! CORS: the preflight and the headers of a `cors` route; none for a route without.

use crate::support::*;
use inphms_tests::http_get;

#[test]
fn cors_preflight_and_headers() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let r = send(
        port,
        "OPTIONS",
        "/test_http/cors",
        &[
            ("Origin", "https://elsewhere.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(r.header("access-control-max-age"), Some("86400"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Origin, X-Requested-With, Content-Type, Accept, Authorization")
    );
    assert_eq!(set_sid(&r), None);
    let r = http_get(
        port,
        "/test_http/cors",
        &[("Origin", "https://elsewhere.example")],
    );
    assert_eq!((r.status, r.text().as_str()), (200, "cors"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // A route without cors has no preflight.
    let r = send(port, "OPTIONS", "/test_http/form", &[], b"");
    assert_eq!(r.status, 405);
}
