//! Dispatch of a routed request to its addon: the route's head checks
//! ([`Application::dispatch_head`]) and the steps up to the handler ([`Application::call`]:
//! content type, `auth`, parameters and CSRF, the websocket), the handler called inline or
//! the request copied for the blocking pool. The handler's run is in `handler`, the answer
//! in `answer`.

pub(super) use super::answer::{route_finish, session_unavailable};
use super::params::{form_params, rpc_params, Params};
use super::*;

impl Application {
    /// A routed request's checks before its body is read: the CORS preflight (answered),
    /// the websocket handshake; and the body's size limit.
    pub(super) fn dispatch_head(
        &self,
        ctx: &Ctx,
        entry: &RouteEntry,
    ) -> Result<Head, Box<HttpResult>> {
        let route = &entry.route;
        if ctx.method == Method::OPTIONS && route.cors.is_some() {
            let mut r = hyper::Response::new(response::Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            if let Some(origin) = route.cors.as_ref().into_option() {
                add_cors(&mut r, origin, route, true);
            }
            return Err(Box::new(r));
        }
        let ws_accept = if route.websocket {
            let reservation = match websocket::reserve(&self.services.websockets, self.ws.max_open)
            {
                Ok(r) => r,
                Err(why) => {
                    tracing::warn!(target: "inphms.http", "websocket upgrade to {} refused (503): {why}", ctx.path());
                    return Err(Box::new(response::html_error(503, None)));
                }
            };
            match websocket::check_handshake(
                &ctx.method,
                ctx.http_version,
                &ctx.headers,
                route.require_origin,
            ) {
                Ok(accept) => Some((accept, reservation)),
                Err(refused) => {
                    tracing::warn!(target: "inphms.http", "websocket upgrade to {} refused ({}): {}", ctx.path(), refused.status().as_u16(), websocket::refusal_reason(&refused));
                    return Err(refused);
                }
            }
        } else {
            None
        };
        let limit = route
            .max_content_length
            .into_option()
            .unwrap_or(self.config.max_content_length);
        Ok(Head { ws_accept, limit })
    }

    /// The request, its body read, up to its handler: the json dispatcher's content type
    /// ([`content_type`]), `auth` ([`Application::check_auth`]), the parameters and CSRF
    /// ([`Application::params`]), the session's id, the websocket
    /// ([`Application::open_websocket`]); then the handler, called inline
    /// ([`Application::runs_inline`]) or left for the blocking pool
    /// ([`Application::prepare`]).
    pub(super) fn call(
        self: &Arc<Self>,
        ctx: &Ctx,
        entry: &RouteEntry,
        head: Head,
        args: Map<String, Value>,
        body: RequestBody,
        mut session: LoadedSession,
    ) -> Dispatched {
        let route = &entry.route;
        let Head { ws_accept, .. } = head;
        let content_type = match content_type(ctx, route, &body) {
            Ok(c) => c,
            Err(resp) => return Dispatched::Answered(resp),
        };
        if let Err(resp) = self.check_auth(ctx, route, &session) {
            return Dispatched::Answered(resp);
        }
        let params = match self.params(ctx, route, content_type, &body, args, &session) {
            Ok(p) => p,
            Err(resp) => return Dispatched::Answered(resp),
        };
        // A route that can save the session needs its id now (a CSRF token, a login);
        // one that cannot sees an empty id for a new session.
        if route.save_session {
            session.sid(&*self.sessions);
        }
        let socket = match self.open_websocket(ctx, entry, ws_accept) {
            Ok(s) => s,
            Err(resp) => return Dispatched::Answered(resp),
        };
        let Params {
            jsonrpc_id,
            raw,
            parsed,
        } = params;
        let prepared = self.prepare(
            ctx,
            entry,
            &body,
            &session,
            raw,
            parsed,
            socket.as_ref().map(|(_, opened)| opened.id),
        );
        // Moved, not copied: a handler on the pool holds the body (and its charge to the
        // memory budget) until it returns.
        let prepared = match prepared {
            Prepared::ForPool(owned) => {
                Prepared::ForPool(owned.with_body(body).with_session_user(session.user()))
            }
            called => called,
        };
        let rest = Rest {
            jsonrpc_id,
            session,
        };
        match prepared {
            Prepared::Called(outcome) => {
                Dispatched::Answered(self.answer(ctx, entry, rest, Ok(outcome)))
            }
            Prepared::ForPool(owned) => {
                if let Some((accept, opened)) = socket {
                    self.run_websocket(entry, owned, rest.session, opened);
                    return Dispatched::Answered(websocket::switching_protocols(&accept));
                }
                Dispatched::Pool(Box::new((owned, rest)))
            }
        }
    }

    /// A route with `auth = "user"` needs a logged-in session (of the database served, when
    /// the session names one): else "Session expired" (a 303 to the login page, or the
    /// JSON-RPC error).
    #[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
    fn check_auth(
        &self,
        ctx: &Ctx,
        route: &RouteDescriptor,
        session: &LoadedSession,
    ) -> Result<(), HttpResult> {
        // A session of a database served without it (its registry failed to load) has
        // no token that can be checked: nobody is logged in.
        let of_a_database = session.get("db").is_some_and(|d| !d.is_null());
        let authenticated = (self.db.is_some() || !of_a_database)
            && session.get("uid").is_some_and(|u| !u.is_null());
        if route.auth.as_str() == "bearer" && self.db.is_none() {
            // API keys live in a database: without one, nothing can be checked.
            let mut r = response::html_error(401, Some("Invalid apikey"));
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return Err(r);
        }
        if route.auth.as_str() == "bearer" && route.websocket {
            // An API key is checked per request, in its transaction; a websocket's calls
            // come after the upgrade, without the request's headers re-checked: refused.
            tracing::warn!(target: "inphms.http", "websocket upgrade to {} refused (403): auth = \"bearer\" is not supported on websocket routes", ctx.path());
            return Err(response::html_error(
                403,
                Some("auth = \"bearer\" is not supported on websocket routes"),
            ));
        }
        if route.auth.as_str() != "user" || authenticated {
            return Ok(());
        }
        let expired = disp_error(
            inphms_sdk::abi::ErrorKind::SessionExpired,
            "Session expired",
        );
        Err(match route.routing_type.as_str() {
            "json" => disp::jsonrpc_error(&Value::Null, &expired, self.dev()),
            _ => disp::http_error(&expired, &ctx.werkzeug_full_path()),
        })
    }

    /// The handler's parameters: a json route's JSON-RPC `params` ([`rpc_params`]), or the
    /// http ones ([`form_params`]) with the CSRF check ([`Application::check_csrf`]).
    #[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
    fn params<'b>(
        &self,
        ctx: &Ctx,
        route: &RouteDescriptor,
        content_type: Option<&str>,
        body: &'b [u8],
        args: Map<String, Value>,
        session: &LoadedSession,
    ) -> Result<Params<'b>, HttpResult> {
        if route.routing_type.as_str() == "json" {
            return rpc_params(body, args, self.dev());
        }
        let (parsed, token) = form_params(ctx.query(), content_type, body, args)?;
        self.check_csrf(ctx, route, token.as_ref(), session)?;
        Ok(Params {
            jsonrpc_id: Value::Null,
            raw: None,
            parsed,
        })
    }

    /// Odoo's CSRF check: an http route with `csrf`, on a method that needs it, needs a
    /// valid `csrf_token` parameter for the session's id (else 400).
    #[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
    fn check_csrf(
        &self,
        ctx: &Ctx,
        route: &RouteDescriptor,
        token: Option<&Value>,
        session: &LoadedSession,
    ) -> Result<(), HttpResult> {
        if route.routing_type.as_str() != "http"
            || !route.csrf
            || CSRF_FREE_METHODS.contains(&ctx.method.as_str())
        {
            return Ok(());
        }
        let valid = token.and_then(Value::as_str).is_some_and(|t| {
            let sid = session.sid.as_deref().unwrap_or("");
            csrf::validate(&self.csrf_secret, sid, t, now())
        });
        if valid {
            return Ok(());
        }
        tracing::warn!(target: "inphms.http", "CSRF validation failed on path '{}'", ctx.path());
        Err(response::html_error(
            400,
            Some("Session expired (invalid CSRF token)"),
        ))
    }

    /// A websocket route opens its socket before its handler runs (the request carries its
    /// id): the accept key and the opened socket; 400 when the connection cannot upgrade.
    #[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
    fn open_websocket(
        &self,
        ctx: &Ctx,
        entry: &RouteEntry,
        ws_accept: Option<(String, websocket::Reservation)>,
    ) -> Result<Option<(String, websocket::Opened)>, HttpResult> {
        let Some((accept, reservation)) = ws_accept else {
            return Ok(None);
        };
        let on_upgrade = ctx.upgrade.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(on_upgrade) = on_upgrade else {
            return Err(response::html_error(
                400,
                Some("The connection cannot be upgraded"),
            ));
        };
        let addon = self
            .addons
            .get(entry.addon as usize)
            .map(|a| a.name.as_str())
            .unwrap_or("");
        // A message is at most the route's `max_content_length` when it sets one, else
        // Odoo's bus limit (1 MiB), not the server's body limit: a socket is long-lived and
        // there may be thousands.
        let max_message = entry
            .route
            .max_content_length
            .into_option()
            .unwrap_or(websocket::MESSAGE_MAX_SIZE);
        let opened = websocket::open(
            reservation,
            on_upgrade,
            ctx.peer,
            ctx.path(),
            addon,
            max_message,
            self.ws,
        );
        Ok(Some((accept, opened)))
    }

    /// The request as the addon reads it, and its handler called inline
    /// ([`Application::runs_inline`]), or the request copied for the blocking pool (but for
    /// its body, which the caller moves into it).
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        self: &Arc<Self>,
        ctx: &Ctx,
        entry: &RouteEntry,
        body: &RequestBody,
        session: &LoadedSession,
        raw_params: Option<&str>,
        params: Map<String, Value>,
        socket: Option<u64>,
    ) -> Prepared {
        let inline = socket.is_none() && self.runs_inline(entry);
        // The addon reads views of these values (nothing is copied to cross), made in this
        // block and used before any await: by the inline call, or copied for the blocking
        // pool. So none of them is held by (and copied with) the request's future.
        {
            let session_json = session.json();
            let params = if let Some(raw) = raw_params {
                std::borrow::Cow::Borrowed(raw)
            } else if params.is_empty() {
                std::borrow::Cow::Borrowed("{}")
            } else {
                std::borrow::Cow::Owned(
                    serde_json::to_string(&params).unwrap_or_else(|_| "{}".to_owned()),
                )
            };
            with_header_views(&ctx.headers, |headers| {
                let request = HttpRequest {
                    method: ctx.method.as_str().into(),
                    path: ctx.path().into(),
                    query_string: ctx.query().into(),
                    headers: RSlice::from_slice(headers),
                    body: RSlice::from_slice(body),
                    remote_addr: (*ctx.remote_addr).into(),
                    scheme: ctx.client.scheme.as_str().into(),
                    host: ctx.client.host.as_deref().unwrap_or("").into(),
                    db: self.db.as_deref().map(RStr::from).into(),
                    session_id: session.sid.as_deref().unwrap_or("").into(),
                    session: session_json.as_ref().into(),
                    params: params.as_ref().into(),
                    dev_mode: self.dev(),
                    websocket: socket.into(),
                    body_file: body.spool_fd().into(),
                };
                if inline {
                    Prepared::Called(self.run_inline(entry, request))
                } else {
                    // Raw `params` are the body's own text: viewed there, not copied.
                    let params_in_body = raw_params.and_then(|raw| {
                        let start = (raw.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
                        let end = start.checked_add(raw.len())?;
                        (end <= body.len()).then_some(start..end)
                    });
                    Prepared::ForPool(OwnedRequest::capture(&request, params_in_body))
                }
            })
        }
    }
}

/// A request ready for its handler: already answered by an inline handler, or copied for
/// the blocking pool.
pub(super) enum Prepared {
    Called(Outcome),
    ForPool(OwnedRequest),
}

/// What [`Application::dispatch_head`] found: the websocket accept key of a websocket
/// route, and the body's size limit.
pub(super) struct Head {
    /// The accept key, and the slots reserved for the socket.
    pub(super) ws_accept: Option<(String, websocket::Reservation)>,
    pub(super) limit: u64,
}

/// Where [`Application::call`] left a request: answered, or its handler to run on the
/// blocking pool (with what [`Application::answer`] needs after it).
pub(super) enum Dispatched {
    Answered(HttpResult),
    Pool(Box<(OwnedRequest, Rest)>),
}

/// What the answer needs once the handler returned: the JSON-RPC id and the session.
pub(super) struct Rest {
    pub(super) jsonrpc_id: Value,
    pub(super) session: LoadedSession,
}

/// Calls `f` with views of `headers` as the addon reads them, on the stack for up to 32
/// headers (no allocation per request). A value that is not plain ASCII text crosses as a
/// lossy UTF-8 copy (rare), put in place once they are all made.
pub(super) fn with_header_views<R>(
    headers: &HeaderMap,
    f: impl FnOnce(&[HeaderRef<'_>]) -> R,
) -> R {
    let mut lossy: Vec<(usize, String)> = Vec::new();
    let mut views: smallvec::SmallVec<[HeaderRef<'_>; 32]> =
        smallvec::SmallVec::with_capacity(headers.len());
    for (k, v) in headers.iter() {
        let text = v.to_str().unwrap_or_else(|_| {
            lossy.push((
                views.len(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
            ""
        });
        views.push(Tuple2(RStr::from(k.as_str()), RStr::from(text)));
    }
    for (i, text) in &lossy {
        views[*i].1 = RStr::from(text.as_str());
    }
    f(&views)
}

/// The request's content type, read only where it matters (a json route, or a body to
/// parse); a json route needs a JSON one (else 400, as Odoo's dispatcher inference says).
#[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
fn content_type<'c>(
    ctx: &'c Ctx,
    route: &RouteDescriptor,
    body: &[u8],
) -> Result<Option<&'c str>, HttpResult> {
    let routing_type = route.routing_type.as_str();
    let content_type = if routing_type == "json" || !body.is_empty() {
        ctx.header(CONTENT_TYPE)
    } else {
        None
    };
    if routing_type == "json" && !disp::is_json_mimetype(content_type) {
        let pattern = route
            .paths
            .first()
            .map(RString::as_str)
            .unwrap_or(ctx.path());
        return Err(response::html_error(
            400,
            Some(&format!(
                "Request inferred type is compatible with ['http'] but '{pattern}' is type='json'."
            )),
        ));
    }
    Ok(content_type)
}
