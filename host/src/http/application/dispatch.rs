//! Dispatch of a routed request to its addon: the route's head checks
//! ([`Application::dispatch_head`]), the steps up to the handler ([`Application::call`]),
//! the handler inline or on the blocking pool (with its [`StartGate`] and time limit), and
//! the answer with the session saved ([`Application::answer`]).

use super::params::{form_params, rpc_params, Params};
use super::start_gate::{Handed, StartGate};
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
            Prepared::ForPool(owned) => Prepared::ForPool(owned.with_body(body)),
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
                std::borrow::Cow::Owned(Value::Object(params).to_string())
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

    /// Starts the route's handler on the blocking pool, with this generation as the
    /// thread's request context for the call (and none left behind after it). A
    /// [`Handed::Gated`] request runs only if it was not given up while the task waited for a
    /// thread of the pool (`None` then).
    pub(super) fn run_handler(
        self: &Arc<Self>,
        entry: &RouteEntry,
        handed: Handed,
    ) -> tokio::task::JoinHandle<Option<Outcome>> {
        let app = Arc::clone(self);
        let (addon, item) = (entry.addon, entry.route.id);
        let routing_type = entry.route.routing_type.clone();
        let readonly = entry.route.readonly;
        let auth = entry.route.auth.clone();
        tokio::task::spawn_blocking(move || {
            let request = match handed {
                Handed::Now(request) => request,
                // Answered 504 while queued: the request (and its body) went with its gate.
                Handed::Gated(gate) => gate.start()?,
            };
            let _running = Running::enter(Arc::clone(&app));
            // The push streams the handler opens, and the streams of answers thrown away
            // (a retried attempt's; one the answer does not send), are dropped.
            let mut opening = super::super::stream_body::Opening::begin(
                &app.services.streams,
                app.addons.get(addon as usize),
            );
            // With a database: in a transaction, retried as Odoo's `retrying`.
            let outcome = match app.db.clone() {
                Some(db) => crate::sql_db::env::transaction(
                    app.services.databases(),
                    &db,
                    readonly,
                    crate::sql_db::env::MAX_TRIES,
                    Some(Duration::from_secs(app.config.limit_time_real)),
                    || {
                        opening.retry();
                        let outcome = request.with_view(|r| {
                            // Every route's session with a user has its token checked first;
                            // a stale one is logged out and the request goes on anonymous.
                            let stale = match app.check_session_token(auth.as_str(), &r) {
                                super::auth::TokenCheck::Fine => None,
                                super::auth::TokenCheck::Stale(fresh) => Some(fresh),
                                super::auth::TokenCheck::Refused(refused) => return refused,
                            };
                            let r = match &stale {
                                Some(fresh) => HttpRequest {
                                    session: fresh.as_str().into(),
                                    ..r
                                },
                                None => r,
                            };
                            let mut outcome = app.run_authenticated(
                                addon,
                                item,
                                auth.as_str(),
                                routing_type.as_str(),
                                r,
                            );
                            if let Some(fresh) = stale {
                                // The logged-out session is saved under a new id even when
                                // the handler left it unchanged.
                                if outcome.session.is_none() {
                                    outcome.session = ROption::RSome(fresh.into());
                                }
                                outcome.rotate_session = true;
                            }
                            outcome
                        });
                        opening.answered(&outcome);
                        outcome
                    },
                )
                .unwrap_or_else(|e| Outcome {
                    error: ROption::RSome(crate::sql_db::env::error_info(&e)),
                    ..Outcome::default()
                }),
                None => request.with_view(|r| {
                    app.dispatch_route(addon, item, auth.as_str(), routing_type.as_str(), r)
                }),
            };
            opening.finish(Some(&outcome));
            Some(outcome)
        })
    }

    /// A handler on a database, after the session token's check: the route's `auth`
    /// (`bearer`'s key, `public`'s user), the handler, then [`Application::after_handler`].
    fn run_authenticated(
        &self,
        addon: u32,
        item: u32,
        auth: &str,
        routing_type: &str,
        r: HttpRequest<'_>,
    ) -> Outcome {
        let bearer = match self.check_bearer(auth, routing_type, &r) {
            Ok(uid) => uid,
            Err(refused) => return refused,
        };
        if let Some(public) = self.public_user(auth, &r) {
            let session = super::auth::session_as(r.session.as_str(), public);
            let as_public = HttpRequest {
                session: session.as_str().into(),
                ..r
            };
            let mut o = self.dispatch_route(addon, item, auth, routing_type, as_public);
            Application::forget_public_user(&mut o, public);
            return o;
        }
        let mut outcome = match bearer {
            Some(uid) => {
                let session = super::auth::session_as(r.session.as_str(), uid);
                let as_key_user = HttpRequest {
                    session: session.as_str().into(),
                    ..r
                };
                let mut o = self.dispatch_route(addon, item, auth, routing_type, as_key_user);
                // A bearer request's session is never saved.
                o.session = ROption::RNone;
                o.rotate_session = false;
                o
            }
            None => self.dispatch_route(addon, item, auth, routing_type, r),
        };
        self.after_handler(&mut outcome);
        outcome
    }

    /// Runs a `blocking = false` route inline, on this runtime worker: no thread hand-off
    /// (see ARCHITECTURE.md, "How handlers run").
    pub(super) fn run_inline(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: HttpRequest<'_>,
    ) -> Outcome {
        let _running = Running::enter(Arc::clone(self));
        let opening = super::super::stream_body::Opening::begin(
            &self.services.streams,
            self.addons.get(entry.addon as usize),
        );
        let outcome = self.dispatch_route(
            entry.addon,
            entry.route.id,
            entry.route.auth.as_str(),
            entry.route.routing_type.as_str(),
            request,
        );
        opening.finish(Some(&outcome));
        outcome
    }

    /// Whether the route's addon is called inline, on the runtime's thread: a `blocking =
    /// false` route outside a database, when no addon registers an `ir.http` hook; else on the blocking pool under `limit_time_real`
    /// ([`Application::call_blocking`]).
    pub(super) fn runs_inline(&self, entry: &RouteEntry) -> bool {
        // Addons' hooks make no promise not to block: with any, every route runs on the pool.
        !entry.route.blocking && !entry.route.websocket && self.db.is_none() && !self.hooked
    }

    /// Calls a handler on the blocking pool, under `limit_time_real`.
    pub(super) async fn call_blocking(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: OwnedRequest,
        tracked: &super::super::inflight::Guard,
    ) -> Result<Outcome, inphms_sdk::abi::ErrorInfo> {
        let limit = self.config.limit_time_real;
        if limit == 0 {
            let joined = self.run_handler(entry, Handed::Now(request)).await;
            return Ok(match joined {
                Ok(Some(outcome)) => outcome,
                Ok(None) => error_outcome("handler not started"),
                Err(e) => error_outcome(&format!("handler task failed: {e}")),
            });
        }
        let gate = Arc::new(StartGate::new(request));
        let mut task = self.run_handler(entry, Handed::Gated(Arc::clone(&gate)));
        let joined = match tokio::time::timeout(Duration::from_secs(limit), &mut task).await {
            Ok(j) => j,
            Err(_) => {
                if gate.give_up() {
                    // Still queued for a thread of the pool: it will never start (its task
                    // returns at once when it gets one), and its request, with its body and
                    // their charges to the budgets, is already dropped.
                    tracing::warn!(target: "inphms.http", "request to {} waited past limit_time_real ({limit}s) for a worker thread; answered 504, its handler not run", entry.route.endpoint);
                } else {
                    // The handler keeps running in addon code: count it as stuck until it
                    // returns (past a threshold, the service re-execs the process).
                    let stuck = tracked.stuck();
                    let streams = Arc::clone(&self.services.streams);
                    let addon = self.addons.get(entry.addon as usize).cloned();
                    tokio::spawn(async move {
                        // Its answer, when it comes, is not sent: its stream is dropped.
                        if let Ok(Some(outcome)) = task.await {
                            super::super::stream_body::discard_outcome(
                                &streams,
                                addon.as_ref(),
                                &outcome,
                            );
                        }
                        drop(stuck);
                    });
                    tracing::warn!(target: "inphms.http", "request to {} exceeded limit_time_real ({limit}s); answered 504", entry.route.endpoint);
                }
                let mut e = disp::internal_error("Request timed out (limit_time_real)");
                e.name = "inphms.exceptions.TimeoutError".into();
                return Err(e);
            }
        };
        Ok(match joined {
            Ok(Some(outcome)) => outcome,
            Ok(None) => error_outcome("handler not started"),
            Err(e) => error_outcome(&format!("handler task failed: {e}")),
        })
    }

    /// Runs a route: through the addon dispatcher of its type, or straight to the handler
    /// for the built-in `http` and `json` types.
    pub(super) fn invoke(
        &self,
        addon: u32,
        item: u32,
        routing_type: &str,
        request: HttpRequest<'_>,
    ) -> Outcome {
        let endpoint = EndpointRef { addon, route: item };
        match self.dispatchers.get(routing_type) {
            Some((d_addon, d_id)) if *d_addon != u32::MAX => {
                let Some(d) = self.addons.get(*d_addon as usize) else {
                    return error_outcome("dispatcher addon missing");
                };
                let call = d.library.module.call();
                let compatible = call(Invocation {
                    kind: ItemKind::DispatcherCompatible,
                    item: *d_id,
                    request: ROption::RSome(request),
                    endpoint: ROption::RNone,
                    args: RVec::new(),
                    handle: 0,
                    socket_event: abi_stable::std_types::ROption::RNone,
                    outcome: abi_stable::std_types::ROption::RNone,
                });
                if compatible.exit_code != 1 {
                    return Outcome {
                        error: ROption::RSome(disp_error(
                            inphms_sdk::abi::ErrorKind::BadRequest,
                            &format!(
                                "Request is not compatible with the '{routing_type}' dispatcher."
                            ),
                        )),
                        ..Outcome::default()
                    };
                }
                call(Invocation {
                    kind: ItemKind::DispatcherDispatch,
                    item: *d_id,
                    request: ROption::RSome(request),
                    endpoint: ROption::RSome(endpoint),
                    args: RVec::new(),
                    handle: 0,
                    socket_event: abi_stable::std_types::ROption::RNone,
                    outcome: abi_stable::std_types::ROption::RNone,
                })
            }
            _ => call_endpoint(endpoint, request),
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
    jsonrpc_id: Value,
    session: LoadedSession,
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
