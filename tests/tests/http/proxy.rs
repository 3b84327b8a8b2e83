//! Proxy mode: forwarded headers ignored when off, honoured only with `X-Forwarded-Host`
//! and only from the trusted peers (`--proxy-trusted`).

use crate::support::*;
use inphms_tests::http_get;
use serde_json::{json, Value};

fn client_seen(port: u16, headers: &[(&str, &str)]) -> Value {
    let r = http_get(port, "/test_http/client", headers);
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

/// What `client_seen` answers when the forwarded headers are not honoured.
fn unproxied(port: u16) -> Value {
    json!({"remote_addr": "127.0.0.1", "scheme": "http", "host": format!("127.0.0.1:{port}")})
}

const FORWARDED: [(&str, &str); 3] = [
    ("X-Forwarded-For", "198.51.100.7, 10.1.2.3"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "shop.example.com"),
];

#[test]
fn proxy_mode_off_ignores_forwarded_headers() {
    let (_td, server) = start(&[]);
    let port = server.port();
    assert_eq!(client_seen(port, &FORWARDED), unproxied(port));
}

#[test]
fn proxy_mode_on_needs_x_forwarded_host() {
    let (_td, server) = start(&["--proxy-mode"]);
    let port = server.port();
    // Without X-Forwarded-Host nothing is rewritten, not even the client address.
    assert_eq!(client_seen(port, &FORWARDED[..2]), unproxied(port));
    // With it: the last X-Forwarded-For, the scheme and the host.
    assert_eq!(
        client_seen(port, &FORWARDED),
        json!({"remote_addr": "10.1.2.3", "scheme": "https", "host": "shop.example.com"})
    );
    // X-Forwarded-Port is honoured (omitted when it is the scheme's default).
    for (forwarded_port, host) in [
        ("8443", "shop.example.com:8443"),
        ("443", "shop.example.com"),
    ] {
        let mut with_port = FORWARDED.to_vec();
        with_port.push(("X-Forwarded-Port", forwarded_port));
        assert_eq!(client_seen(port, &with_port)["host"], json!(host));
    }
    // An https request gets a Secure session cookie.
    let r = http_get(port, "/test_http/set/a/1", &FORWARDED);
    let c = r.header("set-cookie").unwrap();
    assert!(c.contains("; Secure;"), "{c}");
}

#[test]
fn proxy_mode_trusts_only_listed_peers() {
    let (_td, trusted) = start(&["--proxy-mode", "--proxy-trusted", "127.0.0.0/8,::1/128"]);
    assert_eq!(
        client_seen(trusted.port(), &FORWARDED)["remote_addr"],
        json!("10.1.2.3")
    );
    let (_td, untrusted) = start(&["--proxy-mode", "--proxy-trusted", "10.0.0.0/8"]);
    let port = untrusted.port();
    assert_eq!(client_seen(port, &FORWARDED), unproxied(port));
}
