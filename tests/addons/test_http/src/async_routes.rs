//! Async routes (`async fn` handlers, polled on the host's runtime): the session read and
//! written, a host timer, a panic, a handler that never finishes (for `limit_time_real`),
//! a json route, an async route of the `plain` dispatcher (run through the sync entry
//! point), and a login (`tests/tests/async_login_token.rs`). Used by
//! `tests/tests/async_handlers.rs`.

use inphms_sdk::{params, route, time, Request, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// Reads a session value without changing the session (no cookie).
#[route("/test_async/get/<string:key>", auth = "none")]
async fn get(req: &mut Request<'_>, key: String) -> String {
    req.session.get::<String>(&key).unwrap_or_default()
}

/// Sets a session value, after an await (the change is saved, a cookie set).
#[route("/test_async/set/<string:key>/<string:value>", auth = "none")]
async fn set(req: &mut Request<'_>, key: String, value: String) -> String {
    time::sleep(Duration::from_millis(1)).await;
    req.session.set(&key, &value);
    "ok".into()
}

/// Logs `login` in, as a login route does once the credentials check out (Odoo's
/// `Session.finalize`): the user's id read on the async cursor, then the session marked
/// logged in, its id to rotate (the host draws the new id and computes its session token
/// in this request's transaction). Answers the id, or `none` for no such active user.
#[route("/test_async/login/<string:login>", auth = "none", readonly = false)]
async fn login(req: &mut Request<'_>, login: String) -> Result<String> {
    let mut cr = req.async_cursor()?;
    let rows = cr
        .execute(
            "SELECT id FROM res_users WHERE login = $1 AND active",
            params![login.as_str()],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok("none".into());
    };
    let uid: i64 = row.get("id")?;
    req.session.finalize_login(&login, uid);
    Ok(uid.to_string())
}

/// The user of an `auth = "bearer"` async request (its API key's), as the handler sees it.
#[route("/test_async/bearer_uid", auth = "bearer", save_session = false)]
async fn bearer_uid(req: &mut Request<'_>) -> String {
    req.session.uid().map(|u| u.to_string()).unwrap_or_default()
}

/// Sleeps `ms` milliseconds on a host timer, holding no thread; answers `slept <ms>`.
#[route("/test_async/sleep/<int:ms>", auth = "none", save_session = false)]
async fn sleep(_req: &mut Request<'_>, ms: u64) -> String {
    time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

/// Panics after an await.
#[route("/test_async/panic", auth = "none")]
async fn panic(_req: &mut Request<'_>) -> String {
    time::sleep(Duration::from_millis(1)).await;
    panic!("async handler panicked on purpose")
}

/// Never finishes: a timer of a day, awaited again and again.
#[route("/test_async/forever", auth = "none", save_session = false)]
async fn forever(_req: &mut Request<'_>) -> String {
    loop {
        time::sleep(Duration::from_secs(86_400)).await;
    }
}

/// A json route: `a + b`, after an await.
#[route("/test_async/add", type = "json", auth = "none")]
async fn add(_req: &mut Request<'_>, a: i64, b: i64) -> Result<Value> {
    time::sleep(Duration::from_millis(1)).await;
    Ok(json!(a + b))
}

/// An async route of the `plain` routing type: the addon's dispatcher calls it through
/// the sync entry point, which runs its future to its end on the pool's thread.
#[route("/test_async/plain/<int:n>", type = "plain", auth = "none")]
async fn plain(_req: &mut Request<'_>, n: i64) -> Value {
    time::sleep(Duration::from_millis(1)).await;
    json!(n * 3)
}

/// A json route that never finishes (for `limit_time_real`: the JSON-RPC error's name).
#[route(
    "/test_async/forever_json",
    type = "json",
    auth = "none",
    save_session = false
)]
async fn forever_json(_req: &mut Request<'_>) -> Result<Value> {
    loop {
        time::sleep(Duration::from_secs(86_400)).await;
    }
}

/// A value that panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("dropped a cancelled handler's state on purpose");
    }
}

/// Never finishes, holding a value that panics when dropped: cancelled at
/// `limit_time_real`, its future's drop panics (the host must serve on).
#[route("/test_async/drop_panic", auth = "none", save_session = false)]
async fn drop_panic(_req: &mut Request<'_>) -> String {
    let _bomb = PanicOnDrop;
    loop {
        time::sleep(Duration::from_secs(86_400)).await;
    }
}

/// The push stream `/test_async/push_then_fail` opened (test only: what the tests read
/// through `/test_async/stashed_push`).
// global: test-only stash of one stream, read by the next request
static STASHED: std::sync::Mutex<Option<inphms_sdk::PushStream>> = std::sync::Mutex::new(None);

/// Opens a push stream, pushes a chunk, keeps a clone, then fails: its answer (an error)
/// does not send the stream, which the host must then drop.
#[route("/test_async/push_then_fail", auth = "none", save_session = false)]
async fn push_then_fail(_req: &mut Request<'_>) -> Result<String> {
    let stream = inphms_sdk::PushStream::open(4)?;
    time::sleep(Duration::from_millis(1)).await;
    stream.push(b"never sent".to_vec())?;
    *STASHED.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
    Err(inphms_sdk::Error::user(
        "failed after opening a push stream",
    ))
}

/// Pushes to the stream kept by `/test_async/push_then_fail`: `refused` once the host
/// dropped it, `accepted` while it lingers, `none` without one.
#[route("/test_async/stashed_push", auth = "none", save_session = false)]
fn stashed_push(_req: &mut Request) -> String {
    match STASHED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(stream) => match stream.push(b"late".to_vec()) {
            Ok(()) => "accepted".into(),
            Err(_) => "refused".into(),
        },
        None => "none".into(),
    }
}
