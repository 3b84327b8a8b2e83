//! The http dispatcher: results and werkzeug's error pages, redirects of expired sessions,
//! routing (404, 405 with `Allow`, converters), one `Date` and `Server`, a dispatcher
//! registered by an addon, and multipart forms with files.

use crate::support::*;
use inphms_tests::http_get;
use serde_json::{json, Value};

#[test]
fn http_results_and_error_pages() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let r = http_get(port, "/test_http/item/42", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "item 42"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let r = http_get(port, "/test_http/echo?a=1&b=x%20y&a=2", &[]);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"a": "1", "b": "x y"})
    );

    for (kind, status, reason, text) in [
        ("user", 400, "Bad Request", "Nope, you can't"),
        ("access", 403, "Forbidden", "Forbidden thing"),
        ("missing", 404, "Not Found", NOT_FOUND),
        ("internal", 500, "Internal Server Error", INTERNAL),
    ] {
        let r = http_get(port, &format!("/test_http/error/{kind}"), &[]);
        assert_eq!(
            (r.status, r.text()),
            (status, error_page(status, reason, text)),
            "{kind}"
        );
    }
    let r = http_get(port, "/test_http/panic", &[]);
    assert_eq!(
        (r.status, r.text()),
        (500, error_page(500, "Internal Server Error", INTERNAL))
    );
    assert!(!r.text().contains("secret"));
    // An expired session: 303 to the login page with werkzeug's full path, url-encoded.
    for (path, location) in [
        (
            "/test_http/error/expired",
            "/web/login?redirect=%2Ftest_http%2Ferror%2Fexpired%3F",
        ),
        (
            "/test_http/whoami?next=a+b&x=1",
            "/web/login?redirect=%2Ftest_http%2Fwhoami%3Fnext%3Da%2Bb%26x%3D1",
        ),
    ] {
        let r = http_get(port, path, &[]);
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some(location)),
            "{path}"
        );
    }
    // Routing: unknown path, wrong method (with Allow), a converter that does not match.
    let r = http_get(port, "/test_http/unknown", &[]);
    assert_eq!(
        (r.status, r.text()),
        (404, error_page(404, "Not Found", NOT_FOUND))
    );
    let r = http_get(port, "/test_http/item/abc", &[]);
    assert_eq!(r.status, 404);
    let r = http_get(port, "/test_http/form", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // One Date and one Server, even when the addon sets its own.
    let r = http_get(port, "/test_http/headers", &[]);
    assert_eq!(r.header_all("date").len(), 1);
    assert_eq!(r.header_all("server"), ["test_http"]);
    // The server survived the panics.
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}

#[test]
fn a_dispatcher_registered_by_an_addon_serves_its_routing_type() {
    let (_td, server) = start(&[]);
    let r = http_get(server.port(), "/test_http/plain/21", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "plain:42"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    // Its is_compatible refuses anything but GET.
    let r = send(server.port(), "POST", "/test_http/plain/21", &[], b"");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        error_page(
            400,
            "Bad Request",
            "Request is not compatible with the 'plain' dispatcher."
        )
    );
}

#[test]
fn multipart_forms_and_files() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n\
--XyZ--\r\n";
    let ct = [("Content-Type", "multipart/form-data; boundary=XyZ")];
    let r = send(port, "POST", "/test_http/upload", &ct, body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({
            "files": [{"name": "doc", "filename": "a.txt", "content_type": "text/plain", "text": "file body"}],
            "form": [["title", "Hello"]],
        })
    );
    let r = send(
        port,
        "POST",
        "/test_http/upload",
        &[("Content-Type", "multipart/form-data; boundary=XyZ")],
        b"--XyZ\r\nbroken",
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("invalid multipart/form-data body"),
        "{}",
        r.text()
    );
}
