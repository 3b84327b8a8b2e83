//! Serving one request: the sync-first [`Application::handle`] (a request answered without
//! awaiting, e.g. `/web/health`, never builds a future), [`Application::serve`] for the rest
//! (static files, the body, the blocking pool) and [`Pending`], the request left to await.

use super::*;

impl Application {
    /// Serves one request from `peer` (`peer_text`: its address as text, made once per
    /// connection), received at `started` and registered as in flight by `tracked`.
    ///
    /// A request that needs no wait (see [`Application::serve_now`]) is answered before
    /// this returns, without a future; any other is [`Handled::Pending`], whose
    /// [`Pending::run`] serves it.
    pub fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        peer_text: &Arc<str>,
        started: Instant,
        waited: bool,
        tracked: super::super::inflight::Guard,
    ) -> Handled {
        let (mut parts, body) = req.into_parts();
        // hyper adds `OnUpgrade` only to a request that asks for an upgrade.
        let upgrade = if parts.extensions.get::<OnUpgrade>().is_some()
            && websocket::is_upgrade_request(&parts.headers)
        {
            parts.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
        let client = proxy::resolve(
            self.config.proxy_mode,
            &self.trusted_proxies,
            peer,
            &parts.headers,
        );
        let raw_path = parts.uri.path();
        // Without a `%`, decoding changes nothing (the path is already UTF-8 text).
        let decoded_path = if !raw_path.contains('%') {
            None
        } else {
            match percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy() {
                std::borrow::Cow::Borrowed(_) => None,
                std::borrow::Cow::Owned(decoded) => Some(decoded),
            }
        };
        let ctx = Ctx {
            started,
            waited,
            uri: parts.uri,
            decoded_path,
            remote_addr: if client.forwarded {
                client.remote_addr.to_string().into()
            } else {
                Arc::clone(peer_text)
            },
            client,
            version: access_log::version_str(parts.version),
            http_version: parts.version,
            peer,
            upgrade: Mutex::new(upgrade),
            method: parts.method,
            headers: parts.headers,
            tracked,
            db: std::sync::OnceLock::new(),
            route: std::sync::OnceLock::new(),
            body_bytes: Default::default(),
        };
        if let Some(resp) = self.serve_metrics(&ctx) {
            self.log_access(&ctx, &resp);
            return Handled::Ready(resp);
        }
        match self.serve_now(&ctx, &body) {
            Ok(resp) => {
                self.log_access(&ctx, &resp);
                Handled::Ready(resp)
            }
            Err((session, matched)) => Handled::Pending(Box::new(Pending {
                app: self,
                ctx,
                body: Some(body),
                session,
                matched,
            })),
        }
    }

    /// The answer of a request that needs no wait: no body to read, no static file, no
    /// database chosen (the choice known from the cached list) and a route that runs inline
    /// ([`Application::runs_inline`]), or an answer found on the way (404, 405). This is
    /// [`Application::serve`]'s path, step for step, without its future (which hyper would
    /// move, with the request's whole state, several times per request).
    ///
    /// `Err` leaves the request to [`Application::serve`], with the session when it was
    /// loaded (loaded once per request: its warnings are logged once) and the route when
    /// it was matched ([`Matched`]: not matched again). Nothing was done by then that
    /// `serve` does again but reads (the database list) and [`record_db`], which gives the
    /// same session when it runs again.
    #[allow(clippy::result_large_err)] // Moved once, into the request's `Pending` box.
    pub(super) fn serve_now(
        self: &Arc<Self>,
        ctx: &Ctx,
        body: &Incoming,
    ) -> Result<HttpResult, (Option<LoadedSession>, Option<Matched>)> {
        if !hyper::body::Body::is_end_stream(body) || self.static_candidate(ctx) {
            return Err((None, None));
        }
        let mut session = LoadedSession::load(&*self.sessions, ctx.header(COOKIE));
        if let Some(why) = &session.unavailable {
            return Ok(super::dispatch::session_unavailable(ctx, why));
        }
        if self.db.is_none() {
            let session_db = session.get("db").and_then(Value::as_str);
            // The request's arrival, unless it waited: no clock read in the common case.
            let now = if ctx.waited {
                Instant::now()
            } else {
                ctx.started
            };
            let Some((db, rejected)) = crate::sql_db::dblist::select_db_now(
                self.services.databases(),
                &self.config,
                session_db,
                || ctx.query_db(),
                ctx.db_host(),
                now,
            ) else {
                return Err((Some(session), None));
            };
            if db.is_some() || rejected {
                return Err((Some(session), None));
            }
            record_db(&mut session, None);
        }
        let (entry, args, index) = match self.route_match_at(ctx) {
            Ok(found) => found,
            Err(resp) => return Ok(*resp),
        };
        if !self.runs_inline(entry) {
            // Not matched again by `serve`, which goes on with this application.
            let matched = index.map(|index| Matched { index, args });
            return Err((Some(session), matched));
        }
        let resp = match self.dispatch_head(ctx, entry) {
            Err(resp) => *resp,
            Ok(head) => match self.call(ctx, entry, head, args, RequestBody::empty(), session) {
                Dispatched::Answered(resp) => resp,
                Dispatched::Pool(..) => {
                    // `runs_inline` held: the handler was called inline.
                    tracing::error!(target: "inphms.http", "inline route {} was not called inline", entry.route.endpoint);
                    response::html_error(500, None)
                }
            },
        };
        Ok(route_finish(entry, resp))
    }

    /// Serves a request that [`Application::serve_now`] could not answer at once: the same
    /// steps, with the waits. One `async fn` (the steps between the waits are plain
    /// functions): each nested `async fn` would hold its own copy of the request's state.
    pub(super) async fn serve(
        self: &Arc<Self>,
        ctx: &Ctx,
        body: Incoming,
        session: Option<LoadedSession>,
        matched: Option<Matched>,
    ) -> HttpResult {
        if session.is_none() && self.static_candidate(ctx) {
            if let Some(resp) = self.serve_static(ctx).await {
                return resp;
            }
        }
        let mut session =
            session.unwrap_or_else(|| LoadedSession::load(&*self.sessions, ctx.header(COOKIE)));
        if let Some(why) = &session.unavailable {
            return super::dispatch::session_unavailable(ctx, why);
        }
        // The application of the request's database, or this one.
        let mut app = None;
        if self.db.is_none() {
            app = self.database_app(ctx, &mut session).await;
            if let Some(db) = app.as_ref().and_then(|a| a.db.as_deref()) {
                ctx.tracked.set_db(db);
                let _ = ctx.db.set(db.to_owned());
            }
        }
        let app = app.as_ref().unwrap_or(self);
        // Matched by `serve_now` in this same application: not matched again.
        let earlier = matched
            .filter(|_| std::ptr::eq(&**app, &**self))
            .and_then(|m| Some((app.routes.payload(m.index)?, m.args)));
        let (entry, args) = match earlier {
            Some(found) => found,
            None => match app.route_match(ctx) {
                Ok(found) => found,
                Err(resp) => return *resp,
            },
        };
        let head = match app.dispatch_head(ctx, entry) {
            Ok(head) => head,
            Err(resp) => return route_finish(entry, *resp),
        };
        let body = match read_body(ctx, &app.config, &app.services.bodies, body, head.limit).await {
            Ok(body) => body,
            Err(resp) => return route_finish(entry, resp),
        };
        if !body.is_empty() {
            ctx.body_bytes
                .store(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        // `/web/session/authenticate` logs in to the database its params name (login_db).
        let login_app = self.login_db_app(ctx, app.db.as_deref(), &body).await;
        let (app, entry, args, head) = match &login_app {
            None => (app, entry, args, head),
            Some(other) => {
                if let Some(db) = other.db.as_deref() {
                    ctx.tracked.set_db(db);
                    let _ = ctx.db.set(db.to_owned());
                }
                let (entry, args) = match other.route_match(ctx) {
                    Ok(found) => found,
                    Err(resp) => return *resp,
                };
                match other.dispatch_head(ctx, entry) {
                    Ok(head) => (other, entry, args, head),
                    Err(resp) => return route_finish(entry, *resp),
                }
            }
        };
        // A spooled body is large: parsing it (JSON-RPC, multipart) and an inline handler
        // must not hold the event loop, whose other tasks move to another worker meanwhile.
        let dispatched = if body.is_spooled()
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| app.call(ctx, entry, head, args, body, session))
        } else {
            app.call(ctx, entry, head, args, body, session)
        };
        let resp = match dispatched {
            Dispatched::Answered(resp) => resp,
            Dispatched::Pool(pool) => {
                let (request, rest) = *pool;
                // Boxed: the wait under a timeout is a large future, and an unboxed one
                // would be part of (and copied with) the future of every request.
                let called = if app.runs_async(entry) {
                    // Polled here, on this worker: no thread hand-off.
                    Box::pin(app.call_async(entry, request)).await
                } else {
                    Box::pin(app.call_blocking(entry, request, &ctx.tracked)).await
                };
                app.answer(ctx, entry, rest, called)
            }
        };
        route_finish(entry, resp)
    }

    /// The request's route and the arguments its path gave, or the 404 or 405 answer.
    pub(super) fn route_match(
        &self,
        ctx: &Ctx,
    ) -> Result<(&RouteEntry, Map<String, Value>), Box<HttpResult>> {
        self.route_match_at(ctx)
            .map(|(entry, args, _)| (entry, args))
    }

    /// [`Application::route_match`], with the route's place in the table (`None` for an
    /// addon's fallback).
    #[allow(clippy::type_complexity)]
    fn route_match_at(
        &self,
        ctx: &Ctx,
    ) -> Result<(&RouteEntry, Map<String, Value>, Option<usize>), Box<HttpResult>> {
        let (entry, args, index) = match self.routes.matches(ctx.method.as_str(), ctx.raw_path()) {
            Match::Found {
                payload,
                args,
                index,
            } => {
                if let Some(m) = &payload.metrics {
                    let _ = ctx.route.set(Arc::clone(m));
                }
                (payload, args, index)
            }
            Match::MethodNotAllowed { allowed } => {
                let mut r = response::html_error(405, None);
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    r.headers_mut().insert(ALLOW, v);
                }
                return Err(Box::new(r));
            }
            Match::NotFound => match self.fallback_route() {
                // Offered to the addons' fallbacks before the 404.
                Some(fallback) => return Ok((fallback, Map::new(), None)),
                None => return Err(Box::new(response::html_error(404, None))),
            },
        };
        let args: Map<String, Value> = if args.is_empty() {
            Map::new()
        } else {
            let mut map = Map::with_capacity(args.len());
            for (k, v) in args {
                map.insert(k, v.into_json());
            }
            map
        };
        Ok((entry, args, Some(index)))
    }

    /// Whether the request may be for a static file (a `GET` or `HEAD` of
    /// `/<loaded addon>/static/...`; see [`Application::may_be_static`]).
    pub(super) fn static_candidate(&self, ctx: &Ctx) -> bool {
        (ctx.method == Method::GET || ctx.method == Method::HEAD)
            && self.may_be_static(ctx.raw_path())
    }

    /// Whether `raw_path` is `/<loaded addon>/static/...` (cheap, no file access).
    pub(super) fn may_be_static(&self, raw_path: &str) -> bool {
        // Runs for every GET: the folder is checked (bytes, no string searcher) before the
        // addon's name is decoded.
        let Some(rest) = raw_path.strip_prefix('/') else {
            return false;
        };
        let Some(slash) = rest.bytes().position(|b| b == b'/') else {
            return false;
        };
        let (addon, folder) = (&rest[..slash], &rest.as_bytes()[slash + 1..]);
        folder.starts_with(b"static")
            && folder.get(6).is_none_or(|&b| b == b'/')
            && self
                .statics
                .root(&percent_encoding::percent_decode_str(addon).decode_utf8_lossy())
                .is_some()
    }

    /// A static file's response, read on the blocking pool; `None` falls through to routing.
    pub(super) async fn serve_static(self: &Arc<Self>, ctx: &Ctx) -> Option<HttpResult> {
        let app = Arc::clone(self);
        let (raw_path, method, headers) = (
            ctx.raw_path().to_owned(),
            ctx.method.clone(),
            ctx.headers.clone(),
        );
        let found = tokio::task::spawn_blocking(move || match app.statics.lookup(&raw_path) {
            static_files::StaticLookup::Found(file) => Some(file.respond(&method, &headers)),
            _ => None,
        })
        .await
        .ok()
        .flatten()?;
        if let Some(m) = &self.services.metrics.http.static_files {
            let _ = ctx.route.set(Arc::clone(m));
        }
        let mut resp = hyper::Response::new(found.body);
        *resp.status_mut() = found.status;
        *resp.headers_mut() = found.headers;
        Some(resp)
    }
}

/// What [`Application::handle`] did with a request without waiting.
pub enum Handled {
    /// Answered (and logged).
    Ready(HttpResult),
    /// To be served by awaiting [`Pending::run`] (boxed: it holds the request's context).
    Pending(Box<Pending>),
}

/// A request that waits for something (a static file, a database, its body, the blocking
/// pool): its context, its body and the generation serving it.
pub struct Pending {
    app: Arc<Application>,
    ctx: Ctx,
    /// Taken by [`Pending::run`].
    body: Option<Incoming>,
    /// The session, when [`Application::serve_now`] loaded it before it gave up.
    session: Option<LoadedSession>,
    /// The route [`Application::serve_now`] matched before it gave up.
    matched: Option<Matched>,
}

/// A route matched by [`Application::serve_now`], for [`Application::serve`] in the same
/// application: its place in the route table and the arguments its path gave.
pub(super) struct Matched {
    index: usize,
    args: Map<String, Value>,
}

impl Pending {
    /// Serves the request and writes its access-log line.
    pub async fn run(mut self: Box<Self>) -> HttpResult {
        // The context stays in the box (not moved into this future, which would be that
        // much larger to allocate).
        let Some(body) = self.body.take() else {
            return response::html_error(500, None);
        };
        let session = self.session.take();
        let matched = self.matched.take();
        let resp = self.app.serve(&self.ctx, body, session, matched).await;
        self.app.log_access(&self.ctx, &resp);
        resp
    }
}

/// The request's body, at most `limit` bytes, received in bounded memory and time (see
/// [`body`]): 413 when it declares or sends more, 408 when it stalls or drips, 503 when the
/// memory or disk for bodies is exhausted, 400 when it cannot be read.
pub(super) async fn read_body(
    ctx: &Ctx,
    config: &Config,
    budgets: &body::Budgets,
    body: Incoming,
    limit: u64,
) -> Result<RequestBody, HttpResult> {
    if hyper::body::Body::is_end_stream(&body) {
        // No body (most GETs): nothing to receive.
        return Ok(RequestBody::empty());
    }
    let declared = ctx
        .header(CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    let limits = body::Limits {
        max: limit,
        spool: config.http_body_spool,
        budget: match config.limit_memory_bodies {
            0 => u64::MAX,
            n => n,
        },
        disk: match config.limit_disk_bodies {
            0 => u64::MAX,
            n => n,
        },
        timeout: (config.http_body_timeout > 0)
            .then(|| Duration::from_secs(config.http_body_timeout)),
        min_rate: config.http_body_min_rate,
        data_dir: &config.data_dir,
        budgets,
    };
    body::receive(body, declared, &limits)
        .await
        .map_err(|e| e.response())
}
