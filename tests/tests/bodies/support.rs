//! Helpers shared by the body tests: the server, its spool folder, a body of a pattern,
//! the answer of `body_digest` (at once or held) and of `upload`, and a log's tail.

use inphms_tests::{post, Response, Server, TestDir};
use serde_json::{json, Value};
use std::path::PathBuf;

pub(crate) const MIB: u64 = 1024 * 1024;

/// A server with `base,web,test_http` loaded, its data folder `<td>/data`, and `args`,
/// answering `/web/health`.
pub(crate) fn start(td: &TestDir, args: &[&str]) -> Server {
    td.test_http_server(args).start_healthy()
}

/// The spool folder of the server of `td`.
pub(crate) fn spool_dir(td: &TestDir) -> PathBuf {
    td.join("data").join("tmp")
}

pub(crate) fn json_of(resp: &Response) -> Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", resp.status, resp.text()))
}

/// `n` bytes of a pattern that a shifted or dropped byte changes.
pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// `POST /test_http/body_digest` of `body` (octet stream): its length, FNV hash and
/// whether it was mapped, as JSON.
pub(crate) fn digest(port: u16, body: &[u8]) -> Response {
    post(
        port,
        "/test_http/body_digest",
        "application/octet-stream",
        body,
    )
}

/// [`digest`] of `body` from another thread, its handler sleeping `sleep_ms` before it
/// answers: the body is held meanwhile.
pub(crate) fn hold(port: u16, body: Vec<u8>, sleep_ms: u64) -> std::thread::JoinHandle<Response> {
    std::thread::spawn(move || {
        post(
            port,
            &format!("/test_http/body_digest?sleep_ms={sleep_ms}"),
            "application/octet-stream",
            &body,
        )
    })
}

/// `POST /test_http/upload` of `body` as `content_type`: the form fields and files parsed,
/// as JSON.
pub(crate) fn upload(port: u16, content_type: &str, body: &[u8]) -> Response {
    post(port, "/test_http/upload", content_type, body)
}

/// Checks an answer of [`upload`]: a 200 whose first file is `filename`, come back intact
/// as `text`, and whose form fields are the pairs `form`.
pub(crate) fn assert_uploaded(resp: &Response, filename: &str, text: &str, form: &[[&str; 2]]) {
    assert_eq!(resp.status, 200, "{}", resp.text());
    let got = json_of(resp);
    assert_eq!(got["files"][0]["filename"], json!(filename));
    assert!(
        got["files"][0]["text"].as_str() == Some(text),
        "the file came back changed"
    );
    assert_eq!(got["form"], json!(form));
}

/// The last lines of a log, for an assertion's message.
pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
