//! Test addon: extends `web` and `test_http` as an Odoo addon extends the addons it depends
//! on (issue 18). It overrides `web`'s `/web/webclient/version_info` (calls it, adds a key)
//! and `test_http`'s `/test_http/item/<int:id>` (calls it, changes its response), registers
//! the auth method `test_token` (a header token), a pre-dispatch hook (a header on every
//! answer, an early answer for one path), a post-dispatch hook (changes one route's
//! result), an error handler (its own page for its routes' errors) and a fallback (pages
//! under `/test_override_cms/`). Used by `tests/tests/sdk_override.rs`.

use inphms_sdk::{
    auth_method, fallback, handle_error, post_dispatch, pre_dispatch, route, EndpointResult, Error,
    Request, Response, Result,
};
use serde_json::{json, Value};

/// `web`'s version info, with the key `test_override`.
#[route(
    "/web/webclient/version_info",
    type = "json",
    auth = "none",
    methods = ["POST"],
    overrides = "web"
)]
fn version_info(req: &mut Request) -> Result<Value> {
    let EndpointResult::Value(Some(mut info)) = req.call_super()? else {
        return Err(Error::internal("web's version_info returned no value"));
    };
    info["test_override"] = json!(true);
    Ok(info)
}

/// `test_http`'s item page, changed: its text, a header and the status 203.
#[route("/test_http/item/<int:id>", auth = "none", overrides = "test_http")]
fn item(req: &mut Request, id: i64) -> Result<Response> {
    let EndpointResult::Response(original) = req.call_super()? else {
        return Err(Error::internal("test_http's item returned no response"));
    };
    let text = String::from_utf8_lossy(original.body_bytes()).into_owned();
    Ok(
        Response::text(format!("{text} (id {id}, overridden by test_override)"))
            .with_status(203)
            .header("X-Overridden", "test_override"),
    )
}

/// `auth = "test_token"`: the header `X-Test-Token` must be `s3cret`; the session then
/// records who it is for the handler.
#[auth_method("test_token")]
fn token_auth(req: &mut Request) -> Result<()> {
    match req.header("x-test-token") {
        Some("s3cret") => {
            req.session.set("token_user", "alice");
            Ok(())
        }
        Some(_) => Err(Error::access("wrong token")),
        None => Err(Error::access("no token")),
    }
}

/// A route behind the `test_token` auth method: who the auth method said it is, and the
/// database.
#[route("/test_override/token", auth = "test_token", save_session = false)]
fn token(req: &mut Request) -> String {
    format!(
        "token ok: {} db={}",
        req.session.get::<String>("token_user").unwrap_or_default(),
        req.db().unwrap_or("-")
    )
}

/// Every answer gets `X-Test-Override: pre`; `/test_override/early` is answered here.
#[pre_dispatch]
fn pre(req: &mut Request) -> Result<Option<Response>> {
    req.add_response_header("X-Test-Override", "pre");
    if req.path() == "/test_override/early" {
        return Ok(Some(
            Response::text("answered by pre_dispatch").with_status(202),
        ));
    }
    Ok(None)
}

/// Never runs: the pre-dispatch hook answers first.
#[route("/test_override/early", auth = "none")]
fn early() -> &'static str {
    "the handler ran"
}

/// A json route whose result the post-dispatch hook changes.
#[route("/test_override/post", type = "json", auth = "none")]
fn post_route() -> Value {
    json!({"handler": true})
}

/// Adds `post_dispatch: true` to `/test_override/post`'s result, and the header
/// `X-Post-Dispatch` to every http response.
#[post_dispatch]
fn post(req: &mut Request, result: &mut EndpointResult) -> Result<()> {
    match result {
        EndpointResult::Value(Some(v)) if req.path() == "/test_override/post" => {
            v["post_dispatch"] = json!(true);
        }
        EndpointResult::Response(r) => {
            *r = std::mem::take(r).header("X-Post-Dispatch", "1");
        }
        _ => {}
    }
    Ok(())
}

/// Fails with a user error, which the error handler renders.
#[route("/test_override/fail", auth = "none")]
fn fail() -> Result<String> {
    Err(Error::user("it broke"))
}

/// Errors of `/test_override/fail` get this addon's page (418); others are left to
/// the host.
#[handle_error]
fn errors(req: &mut Request, error: &Error) -> Result<Option<Response>> {
    if !req.path().starts_with("/test_override/fail") {
        return Ok(None);
    }
    Ok(Some(
        Response::text(format!("test_override handled: {}", error.message())).with_status(418),
    ))
}

/// Serves `/test_override_cms/<page>`; anything else stays a 404.
#[fallback]
fn cms(req: &mut Request) -> Result<Option<Response>> {
    Ok(req
        .path()
        .strip_prefix("/test_override_cms/")
        .map(|page| Response::text(format!("cms page {page}"))))
}

inphms_sdk::addon!();
