//! Test addon `test_sdk`: one route per extractor and return type of the SDK (issue 18),
//! served by the real host in `tests/tests/sdk_handlers.rs`.

mod commands;

use inphms_sdk::{
    route, status, Cookie, Form, Json, Params, Request, Response, Result, SameSite, Session,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Arguments by name and by type: the path's `id`, every `tag`, an optional `page`, a
/// `limit` with a default, and the request last.
#[route("/test_sdk/extract/<int:id>", auth = "none", csrf = false)]
fn extract(
    id: i64,
    tag: Vec<String>,
    page: Option<u32>,
    #[param(default = 10)] limit: u32,
    req: &mut Request,
) -> Json<Value> {
    Json(json!({
        "id": id, "tag": tag, "page": page, "limit": limit, "method": req.method(),
    }))
}

#[derive(Deserialize, Serialize)]
struct Item {
    id: i64,
    name: String,
    qty: Option<u32>,
}

/// All parameters (the path's `id` among them) as one struct.
#[route("/test_sdk/params/<int:id>", auth = "none")]
fn params(p: Params<Item>) -> Json<Item> {
    Json(p.0)
}

/// The posted form as one struct, with the status of the answer.
#[route("/test_sdk/form", methods = ["POST"], auth = "none", csrf = false)]
fn form(Form(item): Form<Item>) -> (u16, Json<Item>) {
    (status::CREATED, Json(item))
}

/// A JSON body as one struct.
#[route("/test_sdk/json_body", methods = ["POST"], auth = "none", csrf = false)]
fn json_body(Json(item): Json<Item>) -> (u16, String) {
    (
        status::ACCEPTED,
        format!("{} x{}", item.name, item.qty.unwrap_or(1)),
    )
}

/// Bytes.
#[route("/test_sdk/bytes", auth = "none")]
fn bytes() -> Vec<u8> {
    vec![0, 1, 2, 255]
}

/// An I/O error through `?`: a 500.
#[route("/test_sdk/io_error", auth = "none")]
fn io_error() -> std::io::Result<String> {
    std::fs::read_to_string("/nonexistent/test_sdk")
}

/// A value that cannot be serialized (non-string keys): a 500, not a 400.
#[route("/test_sdk/unserializable", auth = "none")]
fn unserializable() -> Json<HashMap<Vec<u8>, i32>> {
    Json(HashMap::from([(vec![1], 1)]))
}

/// A json route returning a plain struct, through `?`.
#[route("/test_sdk/rpc/item", type = "json", auth = "none")]
fn rpc_item(name: String, #[param(default = 3)] qty: u32) -> Result<Item> {
    let id: i64 = "42"
        .parse()
        .map_err(|e| inphms_sdk::Error::internal(format!("{e}")))?;
    Ok(Item {
        id,
        name,
        qty: Some(qty),
    })
}

/// A json route whose value cannot be serialized: an internal error.
#[route("/test_sdk/rpc/unserializable", type = "json", auth = "none")]
fn rpc_unserializable() -> HashMap<Vec<u8>, i32> {
    HashMap::from([(vec![1], 1)])
}

/// A json route failing with a boxed error through `?`.
#[route("/test_sdk/rpc/boxed", type = "json", auth = "none")]
fn rpc_boxed(n: String) -> std::result::Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    Ok(n.parse::<i64>()?)
}

/// The session by type: counts the calls.
#[route("/test_sdk/session", type = "json", auth = "none")]
fn session(session: &mut Session) -> Value {
    let n = session.get::<i64>("test_sdk_count").unwrap_or(0) + 1;
    session.set("test_sdk_count", n);
    json!(n)
}

/// A cookie with every attribute.
#[route("/test_sdk/cookie", auth = "none")]
fn cookie() -> Response {
    Response::text("ok").set_cookie(
        Cookie::new("pref", "a b;c")
            .path("/test_sdk")
            .domain("example.com")
            .max_age(60)
            .secure(true)
            .same_site(SameSite::Strict),
    )
}

/// A redirect to the `to` parameter.
#[route("/test_sdk/redirect", auth = "none")]
fn redirect(to: String) -> Response {
    Response::redirect(&to, status::SEE_OTHER)
}

/// Logs with the default target (the module path): the host shows
/// `inphms.addons.test_sdk`.
#[route("/test_sdk/log", auth = "none")]
fn log() -> &'static str {
    inphms_sdk::tracing::warn!("test_sdk logs with its default target");
    "logged"
}

/// Panics: a 500, and a panic line under the addon's target.
#[route("/test_sdk/panic", auth = "none")]
fn panic_route() -> &'static str {
    panic!("test_sdk panics on purpose")
}

/// Panics when `TEST_SDK_PANIC_IN_POST_LOAD` is set: the refusal line says why.
#[inphms_sdk::post_load]
fn maybe_panic(_host: &inphms_sdk::Host) -> Result<()> {
    if std::env::var_os("TEST_SDK_PANIC_IN_POST_LOAD").is_some() {
        panic!("test_sdk refuses to load (TEST_SDK_PANIC_IN_POST_LOAD)");
    }
    // Counted in this image: `tests/tests/sdk_post_load.rs` checks it is run once.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    inphms_sdk::tracing::info!("test_sdk post_load run {n}");
    Ok(())
}

inphms_sdk::addon!();
