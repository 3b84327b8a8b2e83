//! The answer of a routed request once its handler returned (Odoo's `post_dispatch`): the
//! outcome or its error made a response, the session saved (and its cookie set) when the
//! route allows it, and the headers every routed answer gets.

use super::dispatch::Rest;
use super::*;

impl Application {
    /// The answer from the handler's outcome (or its timeout), the session saved when the
    /// route allows it.
    pub(super) fn answer(
        &self,
        ctx: &Ctx,
        entry: &RouteEntry,
        rest: Rest,
        called: Result<Outcome, inphms_sdk::abi::ErrorInfo>,
    ) -> HttpResult {
        let route = &entry.route;
        let routing_type = route.routing_type.as_str();
        let Rest {
            jsonrpc_id,
            session,
        } = rest;
        let mut outcome = match called {
            Ok(o) => o,
            Err(timeout) => {
                return match routing_type {
                    "json" => disp::jsonrpc_error(&jsonrpc_id, &timeout, self.dev()),
                    _ => response::html_error(504, None),
                }
            }
        };
        let mut resp = match (routing_type, disp::outcome_error(&outcome)) {
            (_, Some(e))
                if e.kind == inphms_sdk::abi::ErrorKind::Panic
                    || e.kind == inphms_sdk::abi::ErrorKind::Internal =>
            {
                tracing::error!(target: "inphms.http", "Exception during request handling: {} {}: {}", ctx.method, ctx.path(), if e.debug.is_empty() { e.message.as_str() } else { e.debug.as_str() });
                match routing_type {
                    "json" => disp::jsonrpc_error(&jsonrpc_id, e, self.dev()),
                    _ => disp::http_error(e, &ctx.werkzeug_full_path()),
                }
            }
            ("json", Some(e)) => disp::jsonrpc_error(&jsonrpc_id, e, self.dev()),
            (_, Some(e)) => disp::http_error(e, &ctx.werkzeug_full_path()),
            // An answer a hook made (an early answer, an error page) stands as it is.
            ("json", None) if outcome.response.is_some() => {
                match std::mem::take(&mut outcome.response).into_option() {
                    Some(r) => response::from_addon_of(
                        r,
                        self.addons.get(entry.addon as usize),
                        Some(&self.services.streams),
                        (self.config.limit_time_real > 0)
                            .then(|| Duration::from_secs(self.config.limit_time_real)),
                    ),
                    None => response::html_error(500, None),
                }
            }
            ("json", None) => disp::jsonrpc_result(
                &jsonrpc_id,
                outcome.value.as_ref().into_option().map(RString::as_str),
            ),
            (_, None) => match std::mem::take(&mut outcome.response).into_option() {
                Some(r) => response::from_addon_of(
                    r,
                    self.addons.get(entry.addon as usize),
                    Some(&self.services.streams),
                    (self.config.limit_time_real > 0)
                        .then(|| Duration::from_secs(self.config.limit_time_real)),
                ),
                None => match outcome.value.as_ref().into_option() {
                    Some(v) => response::json(200, &serde_json::from_str(v).unwrap_or(Value::Null)),
                    None => response::html_error(500, None),
                },
            },
        };
        // An answer not sent (an error, a json route's) drops its stream.
        super::super::stream_body::discard_outcome(
            &self.services.streams,
            self.addons.get(entry.addon as usize),
            &outcome,
        );
        // Error responses do not save the session (Odoo: they skip post_dispatch), but
        // for an expired session, logged out (the token check; a handler's logout).
        let saves = match disp::outcome_error(&outcome) {
            None => true,
            Some(e) => {
                e.kind == inphms_sdk::abi::ErrorKind::SessionExpired && outcome.session.is_some()
            }
        };
        for (name, value) in outcome.headers.iter() {
            if let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(name),
                HeaderValue::from_bytes(value),
            ) {
                resp.headers_mut().append(n, v);
            }
        }
        if saves && route.save_session {
            let secure = ctx.client.scheme == proxy::Scheme::Https;
            match session.save(
                &*self.sessions,
                &self.services.session_saves,
                &outcome,
                secure,
                route.auth.as_str() == "bearer",
            ) {
                Ok(Some(cookie)) => {
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        resp.headers_mut().append(SET_COOKIE, v);
                    }
                }
                Ok(None) => {}
                Err(why) => return session_unavailable(ctx, &why),
            }
        }
        resp
    }
}

/// The headers every routed answer gets: CORS for a route that allows it, and
/// `X-Content-Type-Options: nosniff`.
pub(super) fn route_finish(entry: &RouteEntry, mut resp: HttpResult) -> HttpResult {
    if let Some(origin) = entry.route.cors.as_ref().into_option() {
        add_cors(&mut resp, origin, &entry.route, false);
    }
    resp.headers_mut().insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The answer when the session store cannot be reached (the PostgreSQL store): 503 with
/// `Retry-After`, logged with the reason, never a session lost silently.
pub(super) fn session_unavailable(ctx: &Ctx, why: &str) -> HttpResult {
    tracing::error!(target: "inphms.http", "{} {}: 503, {why}", ctx.method, ctx.path());
    let mut resp = response::html_error(
        503,
        Some("The session store is unavailable; try again shortly."),
    );
    resp.headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}
