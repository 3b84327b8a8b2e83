//! Static files: revalidation (`ETag`, 304), ranges (206, 416), the fall-through to routing,
//! and every traversal attempt (dot segments, encoded separators, symlinks out) a 404.

use crate::support::*;
use inphms_tests::{http_get, test_addon_src, TestDir};

#[test]
fn static_files_revalidation_and_ranges() {
    let (_td, server) = start(&[]);
    let port = server.port();
    let r = http_get(port, "/test_http/static/hello.txt", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "hello static\n"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=604800"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(set_sid(&r), None);
    let etag = r.header("etag").unwrap().to_owned();
    let r = http_get(
        port,
        "/test_http/static/hello.txt",
        &[("If-None-Match", &etag)],
    );
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = http_get(
        port,
        "/test_http/static/hello.txt",
        &[("If-None-Match", "\"other\"")],
    );
    assert_eq!(r.status, 200);

    // (Range, status, body, Content-Range).
    for (range, status, body, content_range) in [
        ("bytes=2-5", 206, Some("2345"), Some("bytes 2-5/20")),
        ("bytes=-3", 206, Some("hij"), None),
        ("bytes=30-", 416, None, None),
    ] {
        let r = http_get(port, "/test_http/static/range.txt", &[("Range", range)]);
        assert_eq!(r.status, status, "{range}");
        if let Some(body) = body {
            assert_eq!(r.text(), body, "{range}");
        }
        if let Some(content_range) = content_range {
            assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        }
    }
    // A missing file falls through to routing: 404.
    let r = http_get(port, "/test_http/static/missing.txt", &[]);
    assert_eq!(r.status, 404);
}

#[test]
fn static_traversal_attempts_all_404() {
    let td = TestDir::new();
    let copy = td.copy_addon(&test_addon_src("test_http"), "addons");
    std::fs::copy(
        inphms_tests::built_lib("test_http"),
        copy.join("libtest_http.so"),
    )
    .unwrap();
    let static_dir = copy.join("static");
    std::os::unix::fs::symlink("../__manifest__.toml", static_dir.join("manifest.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", static_dir.join("passwd.txt")).unwrap();
    std::os::unix::fs::symlink("..", static_dir.join("up")).unwrap();
    std::os::unix::fs::symlink("hello.txt", static_dir.join("inside.txt")).unwrap();
    let addons = td.join("addons");
    let server = start_with(&td, &["--addons-path", addons.to_str().unwrap()], &[]);
    let port = server.port();
    // The copy is the one served, and a symlink staying inside is followed.
    let r = http_get(port, "/test_http/static/inside.txt", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "hello static\n"));
    for path in [
        "/test_http/static/../__manifest__.toml",
        "/test_http/static/img/../../__manifest__.toml",
        "/test_http/static/%2e%2e/__manifest__.toml",
        "/test_http/static/%2E%2E/__manifest__.toml",
        "/test_http/static/..%2f__manifest__.toml",
        "/test_http/static/img%2f..%2f..%2f__manifest__.toml",
        "/test_http/static/%2e%2e%2f__manifest__.toml",
        "/test_http/static/..%5c__manifest__.toml",
        "/test_http/static//etc/passwd",
        "/test_http/static/%2fetc%2fpasswd",
        "/test_http/static/manifest.txt",
        "/test_http/static/passwd.txt",
        "/test_http/static/up/__manifest__.toml",
        "/test_http/static/up/src/lib.rs",
    ] {
        let r = http_get(port, path, &[]);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(
            !r.text().contains("Test HTTP") && !r.text().contains("root:"),
            "{path}"
        );
    }
}
