//! Helpers shared by the HTTP tests: a server with `base,web,test_http`, the harness's
//! whole requests and JSON-RPC calls, the session cookie, werkzeug's error page, and the
//! session files.

pub(crate) use inphms_tests::{rpc, send};
use inphms_tests::{Response, Server, TestDir};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A server with `base,web,test_http` loaded, its data folder `<td>/data`, `args` and the
/// environment changes `env`, answering `/web/health`.
pub(crate) fn start_with(td: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Server {
    env.iter()
        .fold(td.test_http_server(args), |b, (k, v)| b.env(k, v))
        .start_healthy()
}

pub(crate) fn start(args: &[&str]) -> (TestDir, Server) {
    let td = TestDir::new();
    let server = start_with(&td, args, &[]);
    (td, server)
}

pub(crate) fn cookie(sid: &str) -> String {
    format!("session_id={sid}")
}

/// The session id set by a response, if any.
pub(crate) fn set_sid(r: &Response) -> Option<String> {
    r.cookie("session_id")
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
