//! The bus (Odoo's `bus.bus`): notifications sent to channels, stored in the `bus_bus` table
//! in the sender's transaction and announced after its commit with a NOTIFY on `imbus` in the
//! database every host LISTENs to (`cron_db`, `postgres` by default), so that the `bus`
//! addon of every host pushes them to the websockets subscribed to those channels.
//!
//! [`send`] and [`sendmany`] run on the cursor of the running invocation (a route's handler,
//! a websocket event callback, a cron job): nothing is sent if that transaction rolls back.
//! The database must have the `bus` addon installed (it owns the table).
//!
//! A channel is named as Odoo's `channel_with_db`: a string `"x"` is `["mydb","x"]`, a record
//! `("res.partner", 3)` is `["mydb","res.partner",3]`, a record and a sub-channel
//! `("res.partner", 3, "presence")` is `["mydb","res.partner",3,"presence"]`;
//! [`Channel::Full`] is kept as given.
//!
//! ```no_run
//! use inphms_sdk::{bus, cron, route, CronContext, Request, Result};
//! use serde_json::json;
//!
//! /// Tells the subscribers of `["mydb","orders"]` that an order was placed.
//! #[route("/shop/order", auth = "user", methods = ["POST"])]
//! fn order(req: &mut Request) -> Result<&'static str> {
//!     bus::send("orders", "shop/order_placed", &json!({"id": 7}))?;
//!     Ok("placed")
//! }
//!
//! /// Every hour, tells user 2 (through `["mydb","res.users",2]`) and everybody.
//! #[cron("shop.hourly")]
//! fn hourly(_ctx: &mut CronContext) -> Result<()> {
//!     bus::sendmany(&[
//!         (("res.users", 2).into(), "shop/report".into(), json!({"orders": 3})),
//!         ("broadcast".into(), "shop/tick".into(), json!(null)),
//!     ])
//! }
//! # fn main() {}
//! ```

use crate::cursor::Rows;
use crate::{params, Cursor, Error, Result, SqlValue};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// The NOTIFY channel of the bus (Odoo's).
pub const NOTIFY_CHANNEL: &str = "imbus";

/// PostgreSQL's limit on a NOTIFY payload (Odoo 18's `NOTIFY_PAYLOAD_MAX_LENGTH`): longer
/// lists of channels are split.
pub const NOTIFY_PAYLOAD_MAX_LENGTH: usize = 8000;

/// The longest channel, as compact JSON: a longer one is refused.
pub const CHANNEL_MAX_LENGTH: usize = 1000;

/// A bus channel, before its database is added (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    /// `"x"`: `[db, "x"]`.
    Name(String),
    /// A record: `[db, model, id]`.
    Record(String, i64),
    /// A record's sub-channel: `[db, model, id, sub]`.
    SubRecord(String, i64, String),
    /// A channel already complete (a JSON array, its database first), kept as it is.
    Full(Value),
}

impl From<&str> for Channel {
    fn from(name: &str) -> Self {
        Channel::Name(name.to_owned())
    }
}

impl From<String> for Channel {
    fn from(name: String) -> Self {
        Channel::Name(name)
    }
}

impl From<(&str, i64)> for Channel {
    fn from((model, id): (&str, i64)) -> Self {
        Channel::Record(model.to_owned(), id)
    }
}

impl From<(&str, i64, &str)> for Channel {
    fn from((model, id, sub): (&str, i64, &str)) -> Self {
        Channel::SubRecord(model.to_owned(), id, sub.to_owned())
    }
}

impl Channel {
    /// The channel as stored (compact JSON) for the database `db`: Odoo's
    /// `json_dump(channel_with_db(db, channel))`.
    pub fn with_db(&self, db: &str) -> String {
        let value = match self {
            Channel::Name(n) => serde_json::json!([db, n]),
            Channel::Record(m, id) => serde_json::json!([db, m, id]),
            Channel::SubRecord(m, id, sub) => serde_json::json!([db, m, id, sub]),
            Channel::Full(v) => v.clone(),
        };
        value.to_string()
    }

    /// What follows the database in the stored JSON (`"x"`, `"res.users",2`), or the whole
    /// channel for [`Channel::Full`]; with whether it is whole.
    fn tail(&self) -> Result<(String, bool)> {
        let (text, full) = match self {
            Channel::Full(v) => {
                if !v.is_array() {
                    return Err(Error::bad_request(format!(
                        "a full bus channel is a JSON array, not {v}"
                    )));
                }
                (v.to_string(), true)
            }
            other => {
                let whole = other.with_db("");
                // `["",` then the rest, without the closing bracket.
                (whole[4..whole.len() - 1].to_owned(), false)
            }
        };
        if text.len() > CHANNEL_MAX_LENGTH {
            return Err(Error::bad_request(format!(
                "a bus channel is at most {CHANNEL_MAX_LENGTH} bytes of JSON, this one has {}",
                text.len()
            )));
        }
        Ok((text, full))
    }
}

/// Sends one notification of `notification_type` with `payload` to `channel` (Odoo's
/// `bus.bus._sendone`): a `bus_bus` row in the running invocation's transaction, announced
/// after its commit. See the [module docs](self).
pub fn send(
    channel: impl Into<Channel>,
    notification_type: &str,
    payload: &impl Serialize,
) -> Result<()> {
    let payload = serde_json::to_value(payload)
        .map_err(|e| Error::internal(format!("cannot serialize a bus payload: {e}")))?;
    sendmany(&[(channel.into(), notification_type.to_owned(), payload)])
}

/// Sends several notifications `(channel, type, payload)` at once (Odoo 17's
/// `bus.bus._sendmany`): one statement, their ids in this order, and one NOTIFY of their
/// channels after the commit (split when longer than [`NOTIFY_PAYLOAD_MAX_LENGTH`]).
pub fn sendmany(notifications: &[(Channel, String, Value)]) -> Result<()> {
    if notifications.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(notifications.len());
    for (channel, kind, payload) in notifications {
        let (tail, full) = channel.tail()?;
        let message = serde_json::json!({"type": kind, "payload": payload}).to_string();
        rows.push(serde_json::json!([tail, full, message]));
    }
    let mut cr = Cursor::current()?;
    let inserted = insert(&mut cr, Value::Array(rows))?;
    let mut channels: Vec<String> = Vec::new();
    for row in inserted.iter() {
        let channel: String = row.get("channel")?;
        if !channels.contains(&channel) {
            channels.push(channel);
        }
    }
    for payload in notify_payloads(&channels) {
        crate::host::cursor_notify(cr.handle(), NOTIFY_CHANNEL, &payload)?;
    }
    Ok(())
}

fn insert(cr: &mut Cursor, rows: Value) -> Result<Rows> {
    cr.execute(
        "INSERT INTO bus_bus (channel, message, create_date) \
         SELECT CASE WHEN (r->>1)::boolean THEN r->>0 \
                ELSE '[' || to_json(current_database()::text)::text || ',' || (r->>0) || ']' END, \
                r->>2, now() AT TIME ZONE 'UTC' \
         FROM json_array_elements($1::json) WITH ORDINALITY AS t(r, n) ORDER BY n \
         RETURNING id, channel",
        params![SqlValue::Json(rows)],
    )
}

/// The NOTIFY payloads announcing `channels` (each a channel's compact JSON): their JSON
/// list, split in halves while longer than [`NOTIFY_PAYLOAD_MAX_LENGTH`] (Odoo 18's
/// `get_notify_payloads`).
pub fn notify_payloads(channels: &[String]) -> Vec<String> {
    let payload = format!("[{}]", channels.join(","));
    if payload.len() < NOTIFY_PAYLOAD_MAX_LENGTH || channels.len() <= 1 {
        return vec![payload];
    }
    let half = channels.len().div_ceil(2);
    let mut out = notify_payloads(&channels[..half]);
    out.extend(notify_payloads(&channels[half..]));
    out
}

/// What [`listen`] heard.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The payloads received, in order.
    pub payloads: Vec<String>,
    /// The host's LISTEN connection was (re)made since the last wait: what was sent
    /// meanwhile was not heard, so look for it.
    pub resync: bool,
}

/// Waits at most `timeout` for the notifications on `channel` (an identifier) that the
/// host's LISTEN connection receives: for an addon's own thread (the `bus` addon's
/// dispatcher), never during a request.
///
/// ```no_run
/// use std::time::Duration;
/// let heard = inphms_sdk::bus::listen(inphms_sdk::bus::NOTIFY_CHANNEL, Duration::from_secs(50))?;
/// for payload in heard.payloads {
///     println!("channels: {payload}");
/// }
/// # Ok::<(), inphms_sdk::Error>(())
/// ```
pub fn listen(channel: &str, timeout: Duration) -> Result<Heard> {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let heard = crate::host::listen_wait(channel, ms)?;
    Ok(Heard {
        payloads: heard
            .payloads
            .into_iter()
            .map(|p| p.into_string())
            .collect(),
        resync: heard.resync,
    })
}

/// Runs one statement on the database `db` in a transaction of its own, committed: for an
/// addon's own thread, outside any invocation (inside one, use its [`Cursor`]).
///
/// ```no_run
/// use inphms_sdk::params;
/// let rows = inphms_sdk::bus::execute_on("mydb", "SELECT max(id) FROM bus_bus WHERE id > $1", params![0])?;
/// # Ok::<(), inphms_sdk::Error>(())
/// ```
pub fn execute_on(db: &str, sql: &str, params: &[SqlValue]) -> Result<Rows> {
    crate::host::db_execute(db, sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_with_their_database() {
        assert_eq!(
            Channel::from("broadcast").with_db("db"),
            r#"["db","broadcast"]"#
        );
        assert_eq!(
            Channel::from(("res.partner", 3)).with_db("db"),
            r#"["db","res.partner",3]"#
        );
        assert_eq!(
            Channel::from(("res.partner", 3, "presence")).with_db("db"),
            r#"["db","res.partner",3,"presence"]"#
        );
        assert_eq!(
            Channel::from("a\"b").tail().unwrap(),
            (r#""a\"b""#.to_owned(), false)
        );
        assert_eq!(
            Channel::from(("m", 1)).tail().unwrap(),
            (r#""m",1"#.to_owned(), false)
        );
        assert!(Channel::Full(serde_json::json!("x")).tail().is_err());
    }

    #[test]
    fn long_channel_lists_are_split_under_the_limit() {
        let channels: Vec<String> = (0..2000).map(|i| format!("[\"db\",\"c{i}\"]")).collect();
        let payloads = notify_payloads(&channels);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() < NOTIFY_PAYLOAD_MAX_LENGTH));
        let back: Vec<String> = payloads
            .iter()
            .flat_map(|p| serde_json::from_str::<Vec<Value>>(p).unwrap())
            .map(|v| v.to_string())
            .collect();
        assert_eq!(back, channels);
    }
}
