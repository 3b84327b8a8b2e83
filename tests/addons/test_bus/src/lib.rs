//! Test addon: sends bus notifications from routes (many at once, one by one, or in a
//! transaction that fails) and from a cron job, for `tests/tests/bus.rs`.

use inphms_sdk::bus::{self, Channel};
use inphms_sdk::{cron, route, CronContext, Error, Request, Result};
use serde_json::json;

/// Sends `n` notifications `test_bus/n` (`{"n": i, "tag": tag}`, i from 1) to `channel`
/// (`model,id` for a record's channel): with `many=1` in one `sendmany`, else one `send`
/// each; all in this request's transaction.
#[route("/test_bus/send", auth = "none", save_session = false)]
fn send(req: &mut Request) -> Result<String> {
    let name: String = req.param("channel")?;
    let channel: Channel = match name.split_once(',') {
        Some((model, id)) => {
            let id: i64 = id
                .parse()
                .map_err(|_| Error::bad_request(format!("a record id, not {id:?}")))?;
            (model, id).into()
        }
        None => name.as_str().into(),
    };
    let opt = |name: &str| {
        req.params()
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let n: u32 = opt("n").and_then(|s| s.parse().ok()).unwrap_or(1);
    let tag: String = opt("tag").unwrap_or_default();
    let many = opt("many").as_deref() == Some("1");
    if many {
        let all: Vec<(Channel, String, serde_json::Value)> = (1..=n)
            .map(|i| {
                (
                    channel.clone(),
                    "test_bus/n".to_owned(),
                    json!({"n": i, "tag": tag}),
                )
            })
            .collect();
        bus::sendmany(&all)?;
    } else {
        for i in 1..=n {
            bus::send(channel.clone(), "test_bus/n", &json!({"n": i, "tag": tag}))?;
        }
    }
    Ok(format!("sent {n}"))
}

/// Sends one notification to `channel`, then fails: the transaction rolls back, nothing is
/// sent.
#[route("/test_bus/send_then_fail", auth = "none", save_session = false)]
fn send_then_fail(req: &mut Request) -> Result<String> {
    let channel: String = req.param("channel")?;
    bus::send(channel.as_str(), "test_bus/rolled_back", &json!({}))?;
    Err(Error::user("failing after the send"))
}

/// Sends `test_bus/cron` (`{"job": id}`) to the channel `cron`.
#[cron("test_bus.send")]
fn send_from_cron(ctx: &mut CronContext) -> Result<()> {
    bus::send("cron", "test_bus/cron", &json!({"job": ctx.job_id}))
}

inphms_sdk::addon!();
