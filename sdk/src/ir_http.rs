//! `ir.http` hooks (Odoo's `ir.http` model, which addons extend): authentication methods
//! by name, pre- and post-dispatch, error handlers and fallbacks, declared with the
//! attribute macros [`auth_method`](crate::auth_method), [`pre_dispatch`](crate::pre_dispatch),
//! [`post_dispatch`](crate::post_dispatch), [`handle_error`](crate::handle_error) and
//! [`fallback`](crate::fallback), and called by the host through its hook entry point (`abi::ItemKind::Hook`).
//!
//! # When each runs
//! For a routed request, in this order, with the request's database (its transaction) and
//! session:
//! 1. the route's auth method, when its `auth` names one an addon registered
//!    (`auth = "my_token"`; the host's own are `none`, `public`, `user`, `bearer`). An
//!    error refuses the request (answered as the handler's error would be: an
//!    [`Error::access`](crate::Error::access) is a 403 on http routes).
//! 2. the pre-dispatch hooks, in dependency order (`base`'s before `web`'s before yours):
//!    one returning `Some(response)` answers early (the handler and the hooks after it are
//!    not run).
//! 3. the handler (the route's most derived override).
//! 4. the post-dispatch hooks, in dependency order, each able to change the handler's
//!    result (a [`Response`] for an http handler, a JSON value for a json one). Not run
//!    when the handler failed (Odoo skips `_post_dispatch` on errors).
//! 5. on an error in any step above, the error handlers, the most derived addon first:
//!    the first returning `Some(response)` answers; none does, the host's answer stands.
//!
//! A request that no route matches is offered to the fallbacks (Odoo's
//! `_serve_fallback`), in dependency order, before the 404: the first returning
//! `Some(response)` answers it. A fallback runs as a `public` route would.
//!
//! Every hook may add headers to the final answer with
//! [`Request::add_response_header`]. With no hook registered, the host's request path
//! takes none of these steps (their cost is one test per request).
//!
//! ```
//! use inphms_sdk::{
//!     auth_method, fallback, handle_error, post_dispatch, pre_dispatch, route, EndpointResult,
//!     Error, Request, Response, Result,
//! };
//!
//! /// `auth = "api_token"`: a header token.
//! #[auth_method("api_token")]
//! fn api_token(req: &mut Request) -> Result<()> {
//!     match req.header("x-api-token") {
//!         Some("s3cret") => Ok(()),
//!         _ => Err(Error::access("a valid X-Api-Token is needed")),
//!     }
//! }
//!
//! #[route("/api/ping", auth = "api_token")]
//! fn ping() -> &'static str {
//!     "pong"
//! }
//!
//! /// A header on every answer; maintenance mode answers early.
//! #[pre_dispatch]
//! fn served_by(req: &mut Request) -> Result<Option<Response>> {
//!     req.add_response_header("X-Served-By", "my_addon");
//!     Ok(None)
//! }
//!
//! /// Responses are never cached.
//! #[post_dispatch]
//! fn no_cache(_req: &mut Request, result: &mut EndpointResult) -> Result<()> {
//!     if let EndpointResult::Response(r) = result {
//!         *r = std::mem::take(r).header("Cache-Control", "no-store");
//!     }
//!     Ok(())
//! }
//!
//! /// Access errors under `/api/` as a short text.
//! #[handle_error]
//! fn api_errors(req: &mut Request, error: &Error) -> Result<Option<Response>> {
//!     let api = req.path().starts_with("/api/");
//!     Ok(api.then(|| Response::text(error.message().to_owned()).with_status(403)))
//! }
//!
//! /// Pages stored elsewhere, for paths no route serves.
//! #[fallback]
//! fn pages(req: &mut Request) -> Result<Option<Response>> {
//!     let page = req.path().strip_prefix("/pages/");
//!     Ok(page.map(|p| Response::html(format!("<h1>{}</h1>", inphms_sdk::escape_html(p)))))
//! }
//! # fn main() {}
//! ```

use crate::abi::{HookKind, Invocation, Outcome};
use crate::dispatcher::EndpointResult;
use crate::registry::{error_outcome, reply_outcome, Reply};
use crate::{Error, Request, Response, Result};
use abi_stable::std_types::ROption;

/// A hook's function, by kind.
#[doc(hidden)]
pub enum HookFn {
    Auth(fn(&mut Request) -> Result<()>),
    PreDispatch(fn(&mut Request) -> Result<Option<Response>>),
    PostDispatch(fn(&mut Request, &mut EndpointResult) -> Result<()>),
    HandleError(fn(&mut Request, &Error) -> Result<Option<Response>>),
    Fallback(fn(&mut Request) -> Result<Option<Response>>),
}

impl HookFn {
    pub(crate) fn kind(&self) -> HookKind {
        match self {
            HookFn::Auth(_) => HookKind::Auth,
            HookFn::PreDispatch(_) => HookKind::PreDispatch,
            HookFn::PostDispatch(_) => HookKind::PostDispatch,
            HookFn::HandleError(_) => HookKind::HandleError,
            HookFn::Fallback(_) => HookKind::Fallback,
        }
    }
}

/// A hook, declared with one of the hook macros.
#[doc(hidden)]
pub struct Hook {
    /// The auth method's name, or the function's path.
    pub name: &'static str,
    pub run: HookFn,
}
inventory::collect!(Hook);

/// Runs `hook` for the invocation `inv` (an [`ItemKind::Hook`](crate::abi::ItemKind::Hook)).
pub(crate) fn invoke(hook: &Hook, inv: Invocation<'_>) -> Outcome {
    let ROption::RSome(raw) = inv.request else {
        return error_outcome(Error::internal("a hook called without its request"));
    };
    let mut req = Request::from_abi(raw);
    let answer = |r: Result<Option<Response>>| r.map(|r| r.map(Reply::Response));
    let result: Result<Option<Reply>> = match &hook.run {
        HookFn::Auth(f) => f(&mut req).map(|()| None),
        HookFn::PreDispatch(f) | HookFn::Fallback(f) => answer(f(&mut req)),
        HookFn::HandleError(f) => {
            let error = match inv.outcome.as_ref().into_option() {
                Some(Outcome {
                    error: ROption::RSome(e),
                    ..
                }) => Error::from_info(e),
                _ => Error::internal("an error handler called without an error"),
            };
            answer(f(&mut req, &error))
        }
        HookFn::PostDispatch(f) => match inv.outcome.into_option() {
            None => Err(Error::internal(
                "a post-dispatch hook called without a result",
            )),
            Some(outcome) => match result_of(outcome) {
                Ok(mut result) => f(&mut req, &mut result).map(|()| Some(result.into())),
                Err(e) => Err(e),
            },
        },
    };
    match result {
        Ok(Some(reply)) => reply_outcome(Ok(reply), &req),
        // Nothing to answer: the session's and headers' changes only.
        Ok(None) => {
            let mut outcome = reply_outcome(Ok(Reply::Value(None)), &req);
            outcome.value = ROption::RNone;
            outcome
        }
        Err(e) => reply_outcome(Err(e), &req),
    }
}

/// A handler's outcome as its result.
fn result_of(outcome: Outcome) -> Result<EndpointResult> {
    if let Some(r) = outcome.response.into_option() {
        return Ok(EndpointResult::Response(Response::from_abi(r)));
    }
    match outcome.value.into_option() {
        None => Ok(EndpointResult::Value(None)),
        Some(text) => serde_json::from_str(&text)
            .map(|v| EndpointResult::Value(Some(v)))
            .map_err(|e| Error::internal(format!("a handler returned bad JSON: {e}"))),
    }
}
