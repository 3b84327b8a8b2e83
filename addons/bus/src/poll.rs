//! Reading the stored notifications (Odoo's `bus.bus._poll`) and the shape they are pushed
//! in: `[{"id": 1, "message": {"type": ..., "payload": ...}}, ...]`.

use inphms_sdk::{params, Cursor, Result, SqlValue};
use serde_json::{json, Value};

/// Odoo's `TIMEOUT` (s): a first poll (`last` 0) looks this far back.
pub const TIMEOUT_SECS: i64 = 50;
/// The most notifications one poll returns.
pub const POLL_LIMIT: i64 = 10_000;

/// A stored notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `bus_bus.id`.
    pub id: i64,
    /// Its channel, compact JSON.
    pub channel: String,
    /// Its message, `{"type", "payload"}` as stored.
    pub message: String,
}

/// The notifications of `channels` after `last` (the last `TIMEOUT_SECS` seconds' when
/// `last` is 0), by id.
pub fn poll(cr: &mut Cursor, channels: &[String], last: i64) -> Result<Vec<Notification>> {
    let channels = SqlValue::Json(Value::from(channels.to_vec()));
    let rows = if last > 0 {
        cr.execute(
            "SELECT id, channel, message FROM bus_bus \
             WHERE id > $1 AND channel IN (SELECT json_array_elements_text($2::json)) \
             ORDER BY id LIMIT $3",
            params![last, channels, POLL_LIMIT],
        )?
    } else {
        cr.execute(
            "SELECT id, channel, message FROM bus_bus \
             WHERE create_date > now() AT TIME ZONE 'UTC' - $1::bigint * interval '1 second' \
             AND channel IN (SELECT json_array_elements_text($2::json)) \
             ORDER BY id LIMIT $3",
            params![TIMEOUT_SECS, channels, POLL_LIMIT],
        )?
    };
    rows.iter().map(from_row).collect()
}

/// A row `(id, channel, message)` read from `bus_bus`.
pub fn from_row(row: &inphms_sdk::Row) -> Result<Notification> {
    Ok(Notification {
        id: row.get("id")?,
        channel: row.get("channel")?,
        message: row.get("message")?,
    })
}

/// A notification as pushed and returned by `peek_notifications`.
pub fn item(n: &Notification) -> Value {
    let message: Value = serde_json::from_str(&n.message).unwrap_or(Value::Null);
    json!({"id": n.id, "message": message})
}

/// One push: the JSON list of `notifications`, as Python's `json.dumps` writes it.
pub fn frame<'a>(notifications: impl IntoIterator<Item = &'a Notification>) -> String {
    let items: Vec<Value> = notifications.into_iter().map(item).collect();
    inphms_sdk::json::dumps(&items)
}
