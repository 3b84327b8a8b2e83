//! The `web` addon: the server side of the web client. `GET /web/health` for load balancers,
//! `POST /web/webclient/version_info` (JSON-RPC) for clients, `/websocket/echo`, a
//! websocket that greets with the session's login and echoes what it receives; the web
//! session API (`session`), the login page and the page it lands on (`login`); the database manager pages
//! (`database`).

pub mod database;
pub mod login;
pub mod redirect;
pub mod session;

use inphms_sdk::{post_load, route, Host, Request, Response, Result};
use serde_json::{json, Value};

/// Health check for load balancers: `{"status":"pass"}`, never cached, never a session.
/// With `?db_server_status=<anything non-empty>` (Odoo 18), the PostgreSQL server is checked
/// too: `{"status":"pass","db_server_status":true}`, or 500 with
/// `{"status":"fail","db_server_status":false}` when it does not answer.
#[route(
    "/web/health",
    type = "http",
    auth = "none",
    save_session = false,
    blocking = false
)]
fn health(req: &mut Request) -> Response {
    // A constant body: this route is polled by load balancers, keep it cheap.
    let (status, body): (u16, &'static [u8]) =
        if req.query("db_server_status").is_some_and(|v| !v.is_empty()) {
            match inphms_sdk::cursor::db_server_status() {
                Ok(()) => (200, br#"{"status":"pass","db_server_status":true}"#),
                Err(e) => {
                    // Debug only: load balancers poll this; the pool warns once per outage.
                    tracing::debug!("health check: the database server does not answer: {e}");
                    (500, br#"{"status":"fail","db_server_status":false}"#)
                }
            }
        } else {
            (200, br#"{"status":"pass"}"#)
        };
    Response::new(status)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store")
        .body(body)
}

/// The databases visible from the request's host (Odoo's `/web/database/list`): an
/// `AccessDenied` error when the server hides the list (`list_db = false`).
#[route("/web/database/list", type = "json", auth = "none")]
fn database_list(req: &mut Request) -> Result<inphms_sdk::Json<Vec<String>>> {
    inphms_sdk::cursor::db_list(req.host()).map(inphms_sdk::Json)
}

/// The server's version, as Odoo's `version_info` answers it.
#[route(
    "/web/webclient/version_info",
    type = "json",
    auth = "none",
    methods = ["POST"],
    blocking = false
)]
fn version_info(_req: &mut Request) -> Value {
    version_payload(Host.version().unwrap_or("0.0.0"))
}

/// `{server_version, server_version_info, server_serie, protocol_version}` for a host
/// version `major.minor.patch`.
fn version_payload(host_version: &str) -> Value {
    let mut parts = host_version
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, micro) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    let serie = format!("{major}.{minor}");
    json!({
        "server_version": serie,
        "server_version_info": [major, minor, micro, "final", 0, ""],
        "server_serie": serie,
        "protocol_version": 1,
    })
}

/// A websocket proving the upgrade end to end: greets with `hello <login>` (`hello anonymous`
/// without a logged-in session), then echoes each text or binary message until the client
/// closes.
#[route("/websocket/echo", auth = "public", websocket = true)]
fn websocket_echo(req: &mut Request) -> Result<()> {
    let ws = req.websocket()?;
    let who = req.session.login().unwrap_or("anonymous").to_owned();
    ws.send(format!("hello {who}"))?;
    while let Some(message) = ws.recv() {
        // A client may close right after its last message: the echo then has nowhere to go.
        if ws.send(message).is_err() {
            break;
        }
    }
    Ok(())
}

#[post_load]
fn post_load(_host: &Host) -> Result<()> {
    tracing::info!(target: "inphms.addons.web", "web: post_load");
    Ok(())
}

inphms_sdk::addon!();

#[cfg(test)]
mod tests {
    #[test]
    fn version_payload() {
        let v = super::version_payload("1.2.3");
        assert_eq!(
            v["server_version_info"],
            serde_json::json!([1, 2, 3, "final", 0, ""])
        );
        assert_eq!(v["server_serie"], "1.2");
    }
}
