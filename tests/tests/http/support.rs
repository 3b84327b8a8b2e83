//! Helpers shared by the HTTP tests: a server with `base,web,test_http`, whole requests
//! and JSON-RPC calls, the session cookie, werkzeug's error page, and the session files.

use inphms_tests::{request, wait_until, Response, Server, TestDir};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A server with `base,web,test_http` loaded, its data folder `<td>/data`, and `args`.
pub(crate) fn start_with(td: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Server {
    let data = td.join("data");
    // The test addons folder comes last in `--addons-path` (the occurrences add up), so a
    // folder given in `args` is searched first.
    let tests = inphms_tests::test_addons_dir();
    let mut all = vec!["--load", "base,web,test_http", "-D", data.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend(["--addons-path", tests.to_str().unwrap()]);
    let server = env
        .iter()
        .fold(td.server(all), |b, (k, v)| b.env(k, v))
        .start();
    // The harness waited for an answer; wait for a healthy one.
    let port = server.port();
    let ready = wait_until(Duration::from_secs(60), || {
        inphms_tests::try_request(
            port,
            b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .is_ok_and(|r| r.status == 200)
    });
    assert!(
        ready,
        "the server never answered /web/health\n{}",
        server.stderr()
    );
    server
}

pub(crate) fn start(args: &[&str]) -> (TestDir, Server) {
    let td = TestDir::new();
    let server = start_with(&td, args, &[]);
    (td, server)
}

/// A whole request: `method path`, `headers`, and a body with its Content-Length.
pub(crate) fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    request(port, &raw)
}

/// A JSON-RPC call: `body` posted as `application/json`.
pub(crate) fn rpc(port: u16, path: &str, body: &str) -> Response {
    send(
        port,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

pub(crate) fn cookie(sid: &str) -> String {
    format!("session_id={sid}")
}

/// The session id set by a response, if any.
pub(crate) fn set_sid(r: &Response) -> Option<String> {
    r.header_all("set-cookie").into_iter().find_map(|c| {
        c.strip_prefix("session_id=")
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

/// werkzeug's HTML error page.
pub(crate) fn error_page(status: u16, reason: &str, text: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=en>\n<title>{status} {reason}</title>\n<h1>{reason}</h1>\n<p>{text}</p>\n"
    )
}

pub(crate) const NOT_FOUND: &str = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.";
pub(crate) const INTERNAL: &str = "The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.";

/// Every path under `dir` (relative), symlinks not followed.
pub(crate) fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            out.insert(path.strip_prefix(root).unwrap().to_owned());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

pub(crate) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

pub(crate) fn session_file(td: &TestDir, sid: &str) -> PathBuf {
    td.join("data/sessions").join(&sid[..2]).join(sid)
}
