use inphms_sdk::{
    auth_method, fallback, handle_error, post_dispatch, pre_dispatch, route, EndpointResult,
    Error, Request, Response, Result,
};
use serde_json::Value;

#[route("/web/webclient/version_info", type = "json", auth = "none", overrides = "web")]
fn version_info(req: &mut Request) -> Result<Value> {
    match req.call_super()? {
        EndpointResult::Value(v) => Ok(v.unwrap_or_default()),
        EndpointResult::Response(_) => Err(Error::internal("not json")),
    }
}

#[route("/secret", auth = "my_token")]
fn secret() -> &'static str {
    "secret"
}

#[auth_method("my_token")]
fn my_token(req: &mut Request) -> Result<()> {
    match req.header("x-token") {
        Some("t") => Ok(()),
        _ => Err(Error::access("bad token")),
    }
}

#[pre_dispatch]
fn pre(req: &mut Request) -> Result<Option<Response>> {
    req.add_response_header("X-Pre", "1");
    Ok(None)
}

#[post_dispatch]
fn post(_req: &mut Request, _result: &mut EndpointResult) -> Result<()> {
    Ok(())
}

#[handle_error]
fn errors(_req: &mut Request, _error: &Error) -> Result<Option<Response>> {
    Ok(None)
}

#[fallback]
fn pages(_req: &mut Request) -> Result<Option<Response>> {
    Ok(None)
}

fn main() {}
