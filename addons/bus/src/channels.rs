//! The channels a client is subscribed to (Odoo's `ir.websocket._build_bus_channel_list`):
//! every string it named, as `[db, name]`, `broadcast`, and, for a logged-in user, the
//! user's own channel. Odoo adds the user's partner (`["db","res.partner",id]`); this
//! server has no partners yet, so the user's channel is `["db","res.users",uid]`
//! (`bus::send(("res.users", uid), ...)` reaches it).

use inphms_sdk::bus::Channel;
use serde_json::Value;

/// The most channels one subscription may name.
pub const MAX_CHANNELS: usize = 2_000;
/// The longest channel name a client may send, in bytes.
pub const MAX_CHANNEL_LEN: usize = 256;

/// Why a subscription is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// A value that is not a list of strings (Odoo logs it and keeps the socket).
    Invalid(String),
    /// Past a limit: the socket is closed (1008).
    TooLarge(String),
}

/// The client's `channels` value, checked: a list of at most [`MAX_CHANNELS`] strings of at
/// most [`MAX_CHANNEL_LEN`] bytes.
pub fn client_channels(value: Option<&Value>) -> Result<Vec<String>, Refused> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(Refused::Invalid(format!(
                "'channels' is a list of strings, not {}",
                kind(other)
            )))
        }
    };
    if list.len() > MAX_CHANNELS {
        return Err(Refused::TooLarge(format!(
            "subscribe: at most {MAX_CHANNELS} channels, got {}",
            list.len()
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let Value::String(name) = item else {
            return Err(Refused::Invalid(
                "bus.Bus only string channels are allowed.".into(),
            ));
        };
        if name.len() > MAX_CHANNEL_LEN {
            return Err(Refused::TooLarge(format!(
                "subscribe: a channel name is at most {MAX_CHANNEL_LEN} bytes, got {}",
                name.len()
            )));
        }
        out.push(name.clone());
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The channels (compact JSON, as stored) for `names` on `db`, with `broadcast` and the
/// user's own channel when `uid` is a logged-in user; sorted, without duplicates.
pub fn build(db: &str, names: &[String], uid: Option<i64>) -> Vec<String> {
    let mut out: Vec<String> = names
        .iter()
        .map(|n| Channel::from(n.as_str()).with_db(db))
        .collect();
    out.push(Channel::from("broadcast").with_db(db));
    if let Some(uid) = uid {
        out.push(Channel::from(("res.users", uid)).with_db(db));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn channels_are_checked_and_named_with_the_database() {
        let names = client_channels(Some(&json!(["a", "b"]))).unwrap();
        assert_eq!(
            build("db", &names, Some(2)),
            [
                r#"["db","a"]"#,
                r#"["db","b"]"#,
                r#"["db","broadcast"]"#,
                r#"["db","res.users",2]"#
            ]
        );
        assert!(matches!(
            client_channels(Some(&json!([1]))),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            client_channels(Some(&json!("a"))),
            Err(Refused::Invalid(_))
        ));
        let many: Vec<Value> = (0..MAX_CHANNELS + 1)
            .map(|i| json!(i.to_string()))
            .collect();
        assert!(matches!(
            client_channels(Some(&Value::Array(many))),
            Err(Refused::TooLarge(_))
        ));
    }
}
