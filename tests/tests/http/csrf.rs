//! CSRF: tokens accepted in url-encoded and multipart forms, refused when missing, altered,
//! foreign or given as a header only.

use crate::support::*;
use inphms_tests::{http_get, Response};
use regex::Regex;
use serde_json::{json, Value};

fn form_post(port: u16, sid: &str, body: &str) -> Response {
    send(
        port,
        "POST",
        "/test_http/form",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie(sid)),
        ],
        body.as_bytes(),
    )
}

#[test]
fn csrf_accepted_and_refused() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let r = http_get(port, "/test_http/csrf_token", &[]);
    let sid = set_sid(&r).unwrap();
    let token = r.text();
    assert!(
        Regex::new(r"^[0-9a-f]{40}o[0-9]+$")
            .unwrap()
            .is_match(&token),
        "{token}"
    );

    let r = form_post(port, &sid, &format!("csrf_token={token}&x=1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"x": "1"})
    );
    // In a multipart form too.
    let body = format!("--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--b\r\nContent-Disposition: form-data; name=\"y\"\r\n\r\n2\r\n--b--\r\n");
    let r = send(
        port,
        "POST",
        "/test_http/form",
        &[
            ("Content-Type", "multipart/form-data; boundary=b"),
            ("Cookie", &cookie(&sid)),
        ],
        body.as_bytes(),
    );
    assert_eq!(
        (r.status, serde_json::from_slice::<Value>(&r.body).ok()),
        (200, Some(json!({"y": "2"})))
    );

    let refused = error_page(400, "Bad Request", "Session expired (invalid CSRF token)");
    for body in [
        "x=1".to_owned(),
        format!(
            "csrf_token={}&x=1",
            token.replacen(&token[..1], if &token[..1] == "0" { "1" } else { "0" }, 1)
        ),
        "csrf_token=0000000000000000000000000000000000000000o99999999999&x=1".to_owned(),
        "csrf_token=garbage".to_owned(),
    ] {
        let r = form_post(port, &sid, &body);
        assert_eq!((r.status, r.text()), (400, refused.clone()), "{body}");
    }
    // A header is not a token (Odoo reads the form field only).
    let r = send(
        port,
        "POST",
        "/test_http/form",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie(&sid)),
            ("X-CSRF-Token", &token),
        ],
        b"x=1",
    );
    assert_eq!(r.status, 400);
    // The token is bound to the session.
    let other = set_sid(&http_get(port, "/test_http/set/a/1", &[])).unwrap();
    let r = form_post(port, &other, &format!("csrf_token={token}&x=1"));
    assert_eq!(r.status, 400);
}
