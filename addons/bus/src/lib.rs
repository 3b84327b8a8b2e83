//! The `bus` addon (Odoo's `addons/bus`): notifications pushed to websocket clients on
//! every host sharing the database.
//!
//! - Senders (any addon, any host) call `inphms_sdk::bus::send`: a `bus_bus` row in their
//!   transaction, and after its commit a NOTIFY on `imbus` naming its channels, in the
//!   database where every host LISTENs.
//! - `/websocket` (here; `websocket`): clients subscribe to channels (`subscribe`, with
//!   `last`, the last id they received) and report presence (`update_presence`).
//! - `dispatch`: per host, one thread waits for `imbus`, reads the new rows once per
//!   database and queues them on the subscribed sockets, in id order.
//! - `/websocket/peek_notifications` for clients that poll, `/websocket/update_bus_presence`,
//!   `/websocket/health`.
//! - `gc`: the `bus.gc` cron job deletes messages older than `bus_retention`.

pub mod channels;
pub mod dispatch;
pub mod gc;
pub mod poll;
pub mod presence;
pub mod websocket;

use inphms_sdk::{route, Error, Request, Response, Result};
use serde_json::{json, Value};
use websocket::{origin_netloc, BusSocket};

/// `/websocket` (Odoo's `WebsocketController.websocket`): the upgrade is the host's, and
/// so is the refusal of a handshake without `Origin` (`require_origin`: 400 `Empty or
/// missing header(s): origin` before the 101, as Odoo's `_assert_handshake_validity`);
/// with `ODOO_BUS_PUBLIC_SAMESITE_WS` set a cross-site one is served as anonymous.
#[route(
    "/websocket",
    auth = "public",
    cors = "*",
    websocket = true,
    require_origin = true
)]
fn websocket(req: &mut Request) -> Result<()> {
    let ws = req.websocket()?;
    let origin = req.header("origin").unwrap_or_default();
    let (scheme, netloc) = origin_netloc(origin);
    let cross_site = netloc != req.host() || scheme != req.scheme();
    let anonymous = std::env::var_os("ODOO_BUS_PUBLIC_SAMESITE_WS").is_some() && cross_site;
    if anonymous {
        tracing::warn!(target: "inphms.addons.bus.websocket", "Downgrading websocket session. Host={}, Origin={origin}", req.host());
    }
    ws.serve(BusSocket { anonymous })
}

/// `/websocket/health`: `{"status": "pass"}`, never cached, no session.
#[route(
    "/websocket/health",
    auth = "none",
    save_session = false,
    blocking = false
)]
fn health(_req: &mut Request) -> Response {
    Response::new(200)
        .header("Content-Type", "application/json")
        .header("Cache-Control", "no-store")
        .body(&br#"{"status": "pass"}"#[..])
}

/// The session key that marks a polling client (Odoo's `is_websocket_session`).
const WEBSOCKET_SESSION: &str = "is_websocket_session";

fn check_polling_session(req: &mut Request, first: bool) -> Result<()> {
    if first {
        req.session.set(WEBSOCKET_SESSION, true);
        return Ok(());
    }
    if req.session.get::<bool>(WEBSOCKET_SESSION) != Some(true) {
        return Err(Error::session_expired("Session expired"));
    }
    Ok(())
}

/// `/websocket/peek_notifications` (Odoo 17): the notifications of `channels` after `last`,
/// for clients that poll: `{"channels": [...], "notifications": [...]}`.
#[route(
    "/websocket/peek_notifications",
    type = "json",
    auth = "public",
    cors = "*"
)]
fn peek_notifications(req: &mut Request) -> Result<Value> {
    let first = req.params().get("is_first_poll").and_then(Value::as_bool) == Some(true);
    check_polling_session(req, first)?;
    let params = req.params().clone();
    let names = match channels::client_channels(params.get("channels")) {
        Ok(n) => n,
        Err(channels::Refused::Invalid(why) | channels::Refused::TooLarge(why)) => {
            return Err(Error::bad_request(why))
        }
    };
    let last = match params.get("last") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            Error::bad_request(format!("'last' is a notification id (an integer), not {v}"))
        })?,
    };
    let db = req
        .db()
        .ok_or_else(|| Error::not_found("the bus needs a database"))?
        .to_owned();
    let uid = req.session.login().and(req.session.uid());
    let channels = channels::build(&db, &names, uid);
    let mut cr = req.cursor()?;
    let notifications = poll::poll(&mut cr, &channels, last)?;
    let channels: Vec<Value> = channels
        .iter()
        .filter_map(|c| serde_json::from_str(c).ok())
        .collect();
    Ok(json!({
        "channels": channels,
        "notifications": notifications.iter().map(poll::item).collect::<Vec<_>>(),
    }))
}

/// `/websocket/update_bus_presence`: presence for clients that poll; `{}`.
#[route(
    "/websocket/update_bus_presence",
    type = "json",
    auth = "public",
    cors = "*"
)]
fn update_bus_presence(req: &mut Request) -> Result<Value> {
    check_polling_session(req, false)?;
    let period = req
        .params()
        .get("inactivity_period")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if let (Some(_), Some(uid)) = (req.session.login(), req.session.uid()) {
        presence::update(&mut req.cursor()?, uid, period)?;
    }
    Ok(json!({}))
}

inphms_sdk::addon!();
