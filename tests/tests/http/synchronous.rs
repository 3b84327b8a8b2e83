//! The synchronous path.
//!
//! A request without a body to a `blocking = false` route, when no database is chosen, is
//! answered by the host's synchronous path (`Application::serve_now`); any other goes through
//! the asynchronous one (`Application::serve`). `test_http` has inline copies of its session,
//! auth, CSRF and CORS routes under `/test_http/inline/`: each answer of an inline copy must
//! be the blocking original's (always the asynchronous path), and a wrong method or path
//! answered without a body (synchronous) the same as with one (asynchronous).

use crate::support::*;
use inphms_tests::{http_get, Response, Server, TestDir};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long [`start_no_db`]'s server keeps the list of databases (`--db-list-cache-ttl`).
const NO_DB_LIST_TTL: Duration = Duration::from_secs(10);

/// A server whose requests choose no database, whatever databases the machine has: the
/// filter matches no name (the list is still read, and cached for [`NO_DB_LIST_TTL`]).
fn start_no_db() -> (TestDir, Server) {
    start(&[
        "--db-filter",
        "^inphms_test_no_such_database$",
        "--db-list-cache-ttl",
        "10000",
    ])
}

/// Runs `f` (requests to one server of [`start_no_db`]) twice, back to back, and returns
/// both results; again while the two runs took [`NO_DB_LIST_TTL`] or more. The synchronous
/// path is skipped only by a request that finds no fresh database list and reads it (see
/// `select_db_now`), which keeps it fresh for `NO_DB_LIST_TTL` from then: of the inline
/// requests made within that time, only the one that read it (if any) is not served
/// synchronously. So of two runs, at least one took the synchronous path all through,
/// whichever it is: each must give the blocking answer.
fn twice<T>(mut f: impl FnMut() -> T) -> [T; 2] {
    for _ in 0..10 {
        let t = Instant::now();
        let first = f();
        let second = f();
        if t.elapsed() < NO_DB_LIST_TTL {
            return [first, second];
        }
    }
    panic!("two runs never took less than {NO_DB_LIST_TTL:?}");
}

/// A response as comparable between the two copies of a route and between requests: the
/// status, the headers but `Date` (names in lower case, sorted by name), and the body, with
/// `/test_http/inline/` read as `/test_http/` (plain or percent-encoded), a session id as
/// `<sid>` and `Content-Length` as the length of the body so rewritten.
fn normalized(r: &Response) -> (u16, Vec<(String, String)>, String) {
    let unprefix = |s: &str| {
        s.replace("/test_http/inline/", "/test_http/")
            .replace("%2Ftest_http%2Finline%2F", "%2Ftest_http%2F")
    };
    let body = unprefix(&r.text());
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .map(|(n, v)| {
            let n = n.to_ascii_lowercase();
            let v = match n.as_str() {
                // The body's length once rewritten (a HEAD answer's is left as sent).
                "content-length" if v.parse() == Ok(r.body.len()) => body.len().to_string(),
                "set-cookie" => match v.strip_prefix("session_id=") {
                    Some(rest) => {
                        let (sid, attrs) = rest.split_once(';').unwrap_or((rest, ""));
                        assert_eq!(sid.len(), 84, "{v}");
                        format!("session_id=<sid>;{attrs}")
                    }
                    None => v.clone(),
                },
                _ => unprefix(v),
            };
            (n, v)
        })
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    (r.status, headers, body)
}

/// Asserts that `got` (an inline copy's answer, or one without a body) is `expected` (the
/// blocking original's, or one with a body), as [`normalized`].
#[track_caller]
fn assert_same(got: &Response, expected: &Response, what: &str) {
    assert_eq!(
        normalized(got),
        normalized(expected),
        "{what}: the synchronous path's answer (left) differs from the asynchronous one's (right)"
    );
}

/// `GET path`, with the session cookie `sid` if given.
fn get_as(port: u16, path: &str, sid: Option<&str>) -> Response {
    let cookie = sid.map(cookie);
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
    http_get(port, path, &headers)
}

/// The session stored under `sid`.
fn stored_session(td: &TestDir, sid: &str) -> Value {
    let file = session_file(td, sid);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_synchronous_path_saves_and_reads_sessions_as_the_asynchronous_one() {
    let (td, server) = start_no_db();
    let port = server.port();

    // A new session: saved, its cookie set, the same content stored.
    let expected = get_as(port, "/test_http/set/a/1", None);
    let blocking_sid = set_sid(&expected).expect("the blocking copy sets the cookie");
    assert_eq!((expected.status, expected.text().as_str()), (200, "ok"));
    let stored = stored_session(&td, &blocking_sid);
    let mut inline_sids = Vec::new();
    for r in twice(|| get_as(port, "/test_http/inline/set/a/1", None)) {
        assert_same(&r, &expected, "GET /test_http/inline/set/a/1");
        let sid = set_sid(&r).unwrap();
        assert_ne!(sid, blocking_sid);
        assert_eq!(stored_session(&td, &sid), stored, "the stored session");
        inline_sids.push(sid);
    }
    assert_ne!(inline_sids[0], inline_sids[1]);

    // Read back on the next request, whichever copy saved it: no cookie.
    for sid in [&blocking_sid, &inline_sids[0]] {
        let expected = get_as(port, "/test_http/get/a", Some(sid));
        assert_eq!((expected.text().as_str(), set_sid(&expected)), ("1", None));
        for r in twice(|| get_as(port, "/test_http/inline/get/a", Some(sid))) {
            assert_same(&r, &expected, "GET /test_http/inline/get/a with a cookie");
        }
    }

    // A change to a known session: saved under the same id, the cookie set again. The
    // same value again is no change: nothing saved, no cookie.
    let n = std::cell::Cell::new(1);
    let change = |prefix: &str, sid: &str| {
        n.set(n.get() + 1);
        let value = n.get();
        let r = get_as(port, &format!("{prefix}/set/a/{value}"), Some(sid));
        (value, r, stored_session(&td, sid)["a"].clone())
    };
    let (value, expected, stored) = change("/test_http", &blocking_sid);
    assert_eq!(set_sid(&expected).as_deref(), Some(blocking_sid.as_str()));
    assert_eq!(stored, json!(value.to_string()));
    let sid = &inline_sids[0];
    for (value, r, stored) in twice(|| change("/test_http/inline", sid)) {
        assert_same(&r, &expected, "GET /test_http/inline/set/a/N with a cookie");
        assert_eq!(set_sid(&r).as_deref(), Some(sid.as_str()));
        assert_eq!(stored, json!(value.to_string()));
    }
    let unchanged = |prefix: &str, sid: &str| {
        let value = get_as(port, &format!("{prefix}/get/a"), Some(sid)).text();
        get_as(port, &format!("{prefix}/set/a/{value}"), Some(sid))
    };
    let expected = unchanged("/test_http", &blocking_sid);
    assert_eq!(set_sid(&expected), None);
    for r in twice(|| unchanged("/test_http/inline", sid)) {
        assert_same(&r, &expected, "GET /test_http/inline/set/a/N unchanged");
    }

    // An unknown id is not adopted: a new one is set.
    let unknown = format!("{}Zz", "q".repeat(82));
    let expected = get_as(port, "/test_http/set/a/3", Some(&unknown));
    for r in twice(|| get_as(port, "/test_http/inline/set/a/3", Some(&unknown))) {
        assert_same(
            &r,
            &expected,
            "GET /test_http/inline/set/a/3 with an unknown id",
        );
        assert_ne!(set_sid(&r).as_deref(), Some(unknown.as_str()));
    }
    assert!(!session_file(&td, &unknown).exists());

    // A login rotates the id: the old file is removed, the new id is logged in.
    let login = |path: &str| {
        let old = set_sid(&get_as(port, "/test_http/set/b/1", None)).unwrap();
        let r = get_as(port, path, Some(&old));
        (old, r)
    };
    let (old, expected) = login("/test_http/login/alice");
    let blocking_sid = set_sid(&expected).expect("login sets a new cookie");
    assert!(!session_file(&td, &old).exists());
    for (old, r) in twice(|| login("/test_http/inline/login/alice")) {
        assert_same(&r, &expected, "GET /test_http/inline/login/alice");
        let sid = set_sid(&r).unwrap();
        assert_ne!(sid, old);
        assert!(!session_file(&td, &old).exists(), "the old session file");
        assert_eq!(
            stored_session(&td, &sid),
            stored_session(&td, &blocking_sid)
        );
        // The next request is logged in.
        let expected = get_as(port, "/test_http/whoami", Some(&sid));
        assert_eq!((expected.status, expected.text().as_str()), (200, "alice"));
        for r in twice(|| get_as(port, "/test_http/inline/whoami", Some(&sid))) {
            assert_same(&r, &expected, "GET /test_http/inline/whoami logged in");
        }
    }

    // HEAD: the GET's headers, no body; a change is saved as for a GET.
    let head = |path: &str, sid: Option<&str>| {
        let cookie = sid.map(cookie);
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        send(port, "HEAD", path, &headers, b"")
    };
    let expected = head("/test_http/get/a", Some(&inline_sids[1]));
    assert_eq!(
        (expected.status, expected.header("content-length")),
        (200, Some("1"))
    );
    for r in twice(|| head("/test_http/inline/get/a", Some(&inline_sids[1]))) {
        assert_same(&r, &expected, "HEAD /test_http/inline/get/a");
    }
    let expected = head("/test_http/set/h/1", None);
    let saved = set_sid(&expected).map(|sid| stored_session(&td, &sid));
    for r in twice(|| head("/test_http/inline/set/h/1", None)) {
        assert_same(&r, &expected, "HEAD /test_http/inline/set/h/1");
        assert_eq!(set_sid(&r).map(|sid| stored_session(&td, &sid)), saved);
    }
}

#[test]
fn the_synchronous_path_refuses_as_the_asynchronous_one() {
    let (_td, server) = start_no_db();
    let port = server.port();

    // auth = "user" without a login: the redirect to the login page, no cookie.
    let unknown = format!("{}Zz", "q".repeat(82));
    for (path, sid) in [
        ("whoami", None),
        ("whoami?x=1&y=%C3%A9", None),
        ("whoami", Some(unknown.as_str())),
    ] {
        let expected = get_as(port, &format!("/test_http/{path}"), sid);
        assert_eq!(expected.status, 303);
        assert!(
            expected
                .header("location")
                .is_some_and(|l| l.starts_with("/web/login?redirect=")),
            "{:?}",
            expected.headers
        );
        for r in twice(|| get_as(port, &format!("/test_http/inline/{path}"), sid)) {
            assert_same(&r, &expected, &format!("GET /test_http/inline/{path}"));
        }
    }
    // A logged-out session too.
    let sid = set_sid(&get_as(port, "/test_http/login/bob", None)).unwrap();
    let sid = set_sid(&get_as(port, "/test_http/logout", Some(&sid))).unwrap();
    let expected = get_as(port, "/test_http/whoami", Some(&sid));
    assert_eq!(expected.status, 303);
    for r in twice(|| get_as(port, "/test_http/inline/whoami", Some(&sid))) {
        assert_same(&r, &expected, "GET /test_http/inline/whoami logged out");
    }

    // CSRF: a POST without a body is served synchronously; its token can only come from the
    // query string. With a body (the asynchronous path), the inline copy answers the same.
    let r = http_get(port, "/test_http/csrf_token", &[]);
    let sid = set_sid(&r).unwrap();
    let token = r.text();
    let post = |path: &str, sid: Option<&str>, body: &str| {
        let cookie = sid.map(cookie);
        let mut headers: Vec<(&str, &str)> =
            vec![("Content-Type", "application/x-www-form-urlencoded")];
        headers.extend(cookie.iter().map(|c| ("Cookie", c.as_str())));
        send(port, "POST", path, &headers, body.as_bytes())
    };
    let refused = error_page(400, "Bad Request", "Session expired (invalid CSRF token)");
    let ok = format!("?csrf_token={token}&x=1");
    for (query, sid, status) in [
        ("", Some(sid.as_str()), 400),
        ("?x=1", Some(sid.as_str()), 400),
        ("?csrf_token=garbage&x=1", Some(sid.as_str()), 400),
        (ok.as_str(), None, 400),
        (ok.as_str(), Some(sid.as_str()), 200),
    ] {
        let expected = post(&format!("/test_http/form{query}"), sid, "");
        assert_eq!(expected.status, status, "{query}: {}", expected.text());
        if status == 400 {
            assert_eq!(expected.text(), refused);
        } else {
            assert_eq!(
                serde_json::from_slice::<Value>(&expected.body).unwrap(),
                json!({"x": "1"})
            );
        }
        let path = format!("/test_http/inline/form{query}");
        for r in twice(|| post(&path, sid, "")) {
            assert_same(&r, &expected, &format!("POST {path} without a body"));
        }
        // The same fields in the body (one field when none): the asynchronous path, the
        // same answer.
        let fields = query.strip_prefix('?').unwrap_or("z=1");
        let expected = post("/test_http/form", sid, fields);
        assert_eq!(expected.status, status);
        let r = post("/test_http/inline/form", sid, fields);
        assert_same(&r, &expected, "POST /test_http/inline/form with a body");
    }

    // A wrong method: 405 with `Allow`; a wrong path: 404. The route table answers before
    // the route's copy matters: without a body (synchronous), as with one (asynchronous).
    for (method, path, allow) in [
        ("GET", "/test_http/inline/form", Some("POST")),
        ("GET", "/test_http/form", Some("POST")),
        ("OPTIONS", "/test_http/inline/form", Some("POST")),
        (
            "DELETE",
            "/test_http/inline/cors",
            Some("GET, HEAD, OPTIONS, POST"),
        ),
        ("GET", "/test_http/inline/nowhere", None),
    ] {
        let expected = send(port, method, path, &[], b"x");
        if let Some(allow) = allow {
            assert_eq!(
                (expected.status, expected.header("allow")),
                (405, Some(allow)),
                "{method} {path}"
            );
        } else {
            assert_eq!(expected.status, 404, "{method} {path}");
        }
        for r in twice(|| send(port, method, path, &[], b"")) {
            assert_same(&r, &expected, &format!("{method} {path}"));
        }
    }
}

#[test]
fn the_synchronous_path_answers_cors_as_the_asynchronous_one() {
    let (_td, server) = start_no_db();
    let port = server.port();
    let origin = [("Origin", "https://elsewhere.example")];
    let preflight = [
        ("Origin", "https://elsewhere.example"),
        ("Access-Control-Request-Method", "POST"),
    ];
    for (method, headers, status) in [
        ("OPTIONS", &preflight[..], 204),
        ("GET", &origin[..], 200),
        ("POST", &origin[..], 200),
        ("HEAD", &origin[..], 200),
        ("GET", &[][..], 200),
    ] {
        let expected = send(port, method, "/test_http/cors", headers, b"");
        assert_eq!(expected.status, status, "{method}");
        assert_eq!(
            expected.header("access-control-allow-origin"),
            Some("*"),
            "{method}"
        );
        assert_eq!(
            expected.header("access-control-max-age").is_some(),
            method == "OPTIONS"
        );
        for r in twice(|| send(port, method, "/test_http/inline/cors", headers, b"")) {
            assert_same(&r, &expected, &format!("{method} /test_http/inline/cors"));
        }
    }
}

#[test]
fn an_inline_route_answers_the_same_on_either_path() {
    // The list of databases is kept `TTL` here (`--db-list-cache-ttl`). A request made
    // once the list is older than that reads it again, on the asynchronous path; the next
    // one, made within `TTL` of that read, finds it fresh: the synchronous path. The list
    // is read only by the requests of this test (and the harness's readiness check before
    // it), so it is stale once `TTL` has passed since the last answer.
    const TTL: Duration = Duration::from_millis(300);
    let (_td, server) = start(&[
        "--db-filter",
        "^inphms_test_no_such_database$",
        "--db-list-cache-ttl",
        "300",
    ]);
    let port = server.port();
    let preflight = [
        ("Origin", "https://elsewhere.example"),
        ("Access-Control-Request-Method", "POST"),
    ];
    let mut last_answer = Instant::now();
    for (method, path, headers) in [
        ("GET", "/test_http/inline/set/a/1", &[][..]),
        ("GET", "/test_http/inline/whoami?x=1", &[][..]),
        ("POST", "/test_http/inline/form?x=1", &[][..]),
        ("OPTIONS", "/test_http/inline/cors", &preflight[..]),
    ] {
        let mut tries = 0;
        let [asynchronous, synchronous] = loop {
            tries += 1;
            assert!(
                tries <= 10,
                "{method} {path}: two requests never took less than {TTL:?}"
            );
            // The list expires `TTL` after it was last read, at the latest by the last answer.
            std::thread::sleep((last_answer + TTL).saturating_duration_since(Instant::now()));
            let t = Instant::now();
            let pair = [0, 1].map(|_| send(port, method, path, headers, b""));
            last_answer = Instant::now();
            if t.elapsed() < TTL {
                break pair;
            }
        };
        assert_same(&synchronous, &asynchronous, &format!("{method} {path}"));
    }
}
