//! Test addon: extends `test_override` (issue 18). It overrides `web`'s
//! `/web/webclient/version_info` once more (a chain: this one, then `test_override`'s,
//! then `web`'s), and declares routes the host refuses at load: an override of a route
//! that does not exist, a route with an unknown auth method, and a path `test_sdk` serves
//! (neither depends on the other). Used by `tests/tests/sdk_override.rs`.

use inphms_sdk::{route, EndpointResult, Error, Request, Result};
use serde_json::{json, Value};

/// The version info as `test_override` leaves it, with the key `test_override_more`.
#[route(
    "/web/webclient/version_info",
    type = "json",
    auth = "none",
    methods = ["POST"],
    overrides = "web"
)]
fn version_info(req: &mut Request) -> Result<Value> {
    let EndpointResult::Value(Some(mut info)) = req.call_super()? else {
        return Err(Error::internal("no version info to extend"));
    };
    info["test_override_more"] = json!(true);
    Ok(info)
}

/// Refused: `test_http` has no such route.
#[route("/test_http/no_such_route", auth = "none", overrides = "test_http")]
fn no_such_route() -> &'static str {
    "never served"
}

/// Refused: no addon registers the auth method `nope`.
#[route("/test_override_more/unknown_auth", auth = "nope")]
fn unknown_auth() -> &'static str {
    "never served"
}

/// A path of `test_sdk`, which this addon does not depend on: refused when both load.
#[route("/test_sdk/bytes", auth = "none")]
fn conflict() -> &'static str {
    "test_override_more's bytes"
}

inphms_sdk::addon!();
