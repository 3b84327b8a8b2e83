//! The bus's websocket (Odoo's `controllers/websocket.py` and `ir.websocket`): `/websocket`
//! served by events ([`BusSocket`]). Each client message is JSON `{"event_name", "data"}`:
//! `subscribe` (`{"channels": [str...], "last": id}`, replacing the subscription before) and
//! `update_presence` (`{"inactivity_period": ms}`); any other event is ignored, as Odoo's.
//! A message that is not such JSON, or a subscription of the wrong shape, is logged and
//! the socket stays open (Odoo's `InvalidWebsocketRequest`); a subscription past the limits
//! ([`MAX_CHANNELS`](crate::channels::MAX_CHANNELS) channels of
//! [`MAX_CHANNEL_LEN`](crate::channels::MAX_CHANNEL_LEN) bytes) closes it with 1008 and
//! says why.

use crate::channels::{self, Refused};
use crate::{dispatch, poll, presence};
use inphms_sdk::{Error, Message, Request, Result, WebSocket, WsHandler};
use serde_json::Value;

const TARGET: &str = "inphms.addons.bus.websocket";

/// Close code: policy violation (a subscription past the limits).
pub const POLICY_VIOLATION: u16 = 1008;

/// One bus socket.
pub struct BusSocket {
    /// Served as anonymous (`ODOO_BUS_PUBLIC_SAMESITE_WS` and a cross-site `Origin`): no
    /// user channel, no presence.
    pub anonymous: bool,
}

impl BusSocket {
    fn uid(&self, req: &Request) -> Option<i64> {
        if self.anonymous || req.session.login().is_none() {
            return None;
        }
        req.session.uid()
    }
}

impl WsHandler for BusSocket {
    fn on_message(&mut self, ws: &WebSocket, req: &mut Request, message: Message) -> Result<()> {
        let request: Value = match serde_json::from_slice(message.as_bytes()) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(target: TARGET, "socket {}: Invalid JSON data, {e}", ws.id());
                return Ok(());
            }
        };
        let Some(event) = request.get("event_name").and_then(Value::as_str) else {
            tracing::warn!(target: TARGET, "socket {}: Key 'event_name' is missing from request", ws.id());
            return Ok(());
        };
        let data = request.get("data");
        match event {
            "subscribe" => self.subscribe(ws, req, data),
            "update_presence" => {
                let period = data
                    .and_then(|d| d.get("inactivity_period"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                match self.uid(req) {
                    Some(uid) => presence::update(&mut req.cursor()?, uid, period),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn on_close(&mut self, ws: &WebSocket, req: &mut Request, _code: u16, _reason: &str) {
        dispatch::unsubscribe(ws.id());
        if let Some(uid) = self.uid(req) {
            if let Err(e) = req
                .cursor()
                .and_then(|mut cr| presence::offline(&mut cr, uid))
            {
                tracing::debug!(target: TARGET, "socket {}: presence: {e}", ws.id());
            }
        }
    }
}

impl BusSocket {
    fn subscribe(&self, ws: &WebSocket, req: &mut Request, data: Option<&Value>) -> Result<()> {
        let names = match channels::client_channels(data.and_then(|d| d.get("channels"))) {
            Ok(n) => n,
            Err(Refused::Invalid(why)) => {
                tracing::warn!(target: TARGET, "socket {}: {why}", ws.id());
                return Ok(());
            }
            Err(Refused::TooLarge(why)) => {
                tracing::warn!(target: TARGET, "socket {}: {why}; closing", ws.id());
                return ws.close(POLICY_VIOLATION, &why);
            }
        };
        let last = match data.and_then(|d| d.get("last")) {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => n,
                _ => {
                    tracing::warn!(target: TARGET, "socket {}: 'last' is a notification id (an integer), not {v}", ws.id());
                    return Ok(());
                }
            },
        };
        let db = req
            .db()
            .ok_or_else(|| Error::not_found("the bus needs a database"))?
            .to_owned();
        let channels = channels::build(&db, &names, self.uid(req));
        let mut cr = req.cursor()?;
        let max_id: i64 = cr
            .execute("SELECT coalesce(max(id), 0) AS m FROM bus_bus", &[])?
            .first()
            .map(|r| r.get("m"))
            .transpose()?
            .unwrap_or(0);
        // Odoo: a `last` past the newest message (another database's, a reset table) is 0.
        let last = if last > max_id { 0 } else { last };
        dispatch::begin(ws.id(), &db, channels.clone(), max_id);
        match poll::poll(&mut cr, &channels, last) {
            Ok(backlog) => {
                dispatch::go_live(ws.id(), backlog);
                Ok(())
            }
            Err(e) => {
                dispatch::unsubscribe(ws.id());
                Err(e)
            }
        }
    }
}

/// The network location of an `Origin` (`scheme://host[:port]`), without its scheme.
pub fn origin_netloc(origin: &str) -> (&str, &str) {
    match origin.split_once("://") {
        Some((scheme, rest)) => (scheme, rest.split('/').next().unwrap_or(rest)),
        None => ("", origin),
    }
}
