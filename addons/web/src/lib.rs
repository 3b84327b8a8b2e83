//! The `web` addon: the server side of the web client. `GET /web/health` for load balancers
//! and `POST /web/webclient/version_info` (JSON-RPC) for clients.

use inphms_sdk::{post_load, route, Host, Request, Response, Result};
use serde_json::{json, Value};

/// Health check for load balancers: `{"status": "pass"}`, never cached, never a session.
#[route("/web/health", type = "http", auth = "none", save_session = false)]
fn health(_req: &mut Request) -> Response {
    Response::json(&json!({"status": "pass"})).header("Cache-Control", "no-store")
}

/// The server's version, as Odoo's `version_info` answers it.
#[route(
    "/web/webclient/version_info",
    type = "json",
    auth = "none",
    methods = ["POST"]
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
        assert_eq!(v["server_version_info"], serde_json::json!([1, 2, 3, "final", 0, ""]));
        assert_eq!(v["server_serie"], "1.2");
    }
}
