//! [`Application`] (Odoo's `odoo.http.Application`): one generation of the request path.
//! It holds the route table, dispatchers and static folders built from the loaded addons,
//! and serves each request: proxy mode, static files, routing, session loading, dispatch
//! to the addon (guarded, time-limited), session saving, and one access-log line.
//!
//! The order for a routed request: CORS preflight (204), websocket handshake check (for a
//! `websocket` route), the body (received by [`super::body`]: 413 past the size limit, 408
//! when it stalls, 503 when the memory for bodies is exhausted), the json dispatcher's
//! content type, the session (a valid, known id is loaded; anything else gets a fresh id
//! that is not adopted), `auth = "user"` (303 to `/web/login?redirect=...` or JSON-RPC code
//! 100), parameters (query, urlencoded or multipart form, files; or JSON-RPC `params`) and
//! CSRF, then the handler on the blocking pool (under `limit_time_real`; a request answered
//! 504 before a thread of the pool took its handler never runs it). The session is saved,
//! and its cookie set, only when the handler changed it and the route allows it; error
//! responses never save it (Odoo skips `post_dispatch` for them).
//!
//! A `websocket` route answers 101 once the handshake and the steps above passed; its
//! handler then runs with the upgraded connection (see [`super::websocket`]). Its session
//! changes are not saved (the answer went out before it ran).
//!
//! A generation never changes once built; a swap builds a new one (see `service`).

use super::addon_request::OwnedRequest;
use super::body::{self, RequestBody};
use super::db_apps::DatabaseApps;
use super::dispatcher::{self as disp, CSRF_FREE_METHODS};
use super::request_session::LoadedSession;
use super::response::{self, HttpResult};
use super::routing::{Match, RouteTable, Rule};
use super::session::SessionStore;
use super::{access_log, csrf, proxy, static_files, websocket};
use crate::config::Config;
use crate::modules::LoadedAddon;
use abi_stable::std_types::{ROption, RSlice, RStr, RString, RVec, Tuple2};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, StatusCode, Version};
use inphms_sdk::abi::{
    EndpointRef, HeaderRef, HttpRequest, Invocation, ItemKind, Outcome, RouteDescriptor,
};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Odoo's `CORS_MAX_AGE`.
const CORS_MAX_AGE: &str = "86400";

/// A route as the table holds it: which addon serves it, and its descriptor.
#[derive(Debug, Clone)]
struct RouteEntry {
    addon: u32,
    route: RouteDescriptor,
}

/// One generation of the application.
pub struct Application {
    /// The generation number (1 at start, +1 per swap).
    pub generation: u64,
    /// The configuration this generation was built with.
    pub config: Arc<Config>,
    /// The loaded addons; an [`EndpointRef::addon`] is an index here.
    pub addons: Vec<Arc<LoadedAddon>>,
    routes: RouteTable<RouteEntry>,
    /// Routing type → (addon, dispatcher id); looked up per request (foldhash).
    dispatchers: HashMap<String, (u32, u32), foldhash::fast::RandomState>,
    statics: static_files::StaticRoots,
    sessions: Arc<dyn SessionStore>,
    csrf_secret: Vec<u8>,
    trusted_proxies: Vec<proxy::Cidr>,
    /// The database this application serves (see [`Application::derive`]); `None` for the
    /// generation itself, which picks the database of each request.
    db: Option<String>,
    /// The applications of the databases this generation serves (see [`DatabaseApps`]).
    databases: DatabaseApps,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("generation", &self.generation)
            .field("addons", &self.addons.len())
            .finish()
    }
}

thread_local! {
    /// The generation whose addon code runs on this thread (for endpoint calls from
    /// dispatchers, which come back through the host API on the same thread).
    static CURRENT: RefCell<Option<Arc<Application>>> = const { RefCell::new(None) };
}

/// Calls a route's endpoint for a dispatcher, in the generation running on this thread.
pub fn call_endpoint(endpoint: EndpointRef, request: HttpRequest<'_>) -> Outcome {
    let app = CURRENT.with(|c| c.borrow().clone());
    let Some(app) = app else {
        return error_outcome("endpoint called outside of a request");
    };
    let Some(addon) = app.addons.get(endpoint.addon as usize) else {
        return error_outcome("endpoint of an unknown addon");
    };
    (addon.library.module.call())(Invocation {
        kind: ItemKind::Route,
        item: endpoint.route,
        request: ROption::RSome(request),
        endpoint: ROption::RNone,
        args: RVec::new(),
    })
}

fn error_outcome(message: &str) -> Outcome {
    Outcome {
        error: ROption::RSome(disp::internal_error(message)),
        ..Outcome::default()
    }
}

/// What the request path needs to know about one request, gathered once.
struct Ctx {
    started: Instant,
    /// The request waited for the concurrency cap before [`Application::handle`]: `started`
    /// is then too old to judge the cached database list's freshness by.
    waited: bool,
    method: Method,
    /// The request target as received (path and query, percent-encoded).
    uri: hyper::Uri,
    /// The path, percent-decoded (see [`Ctx::path`]): only when decoding changed it.
    decoded_path: Option<String>,
    headers: HeaderMap,
    client: proxy::ClientInfo,
    /// The client address as text.
    remote_addr: Arc<str>,
    version: &'static str,
    http_version: Version,
    /// The direct peer (before proxy mode).
    peer: SocketAddr,
    /// hyper's handle on the connection, taken by a websocket route.
    upgrade: Mutex<Option<OnUpgrade>>,
    /// The request's entry in the in-flight table (SIGQUIT's dump), left when dropped.
    tracked: super::inflight::Guard,
    /// The database the request is served in, once chosen: the access log's and the
    /// in-flight table's (Odoo's `threading.current_thread().dbname`).
    db: std::sync::OnceLock<String>,
}

impl Ctx {
    /// The path, percent-encoded as received.
    fn raw_path(&self) -> &str {
        self.uri.path()
    }

    /// The path, percent-decoded.
    fn path(&self) -> &str {
        self.decoded_path.as_deref().unwrap_or(self.uri.path())
    }

    /// Path and query as received, for redirects and the access log.
    fn full_path(&self) -> &str {
        self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    }

    /// The query string as received (empty without one).
    fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// A header's value as text; `name` is best one of hyper's constants (a `&str` is
    /// parsed into a header name on every call).
    fn header(&self, name: impl hyper::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `db` field of the query string (Odoo's `?db=`).
    fn query_db(&self) -> Option<String> {
        form_urlencoded::parse(self.query().as_bytes())
            .find(|(k, _)| k == "db")
            .map(|(_, v)| v.into_owned())
    }

    /// The host that `dbfilter`'s `%h` and `%d` stand for: the client's (proxy mode), else
    /// the `Host` header.
    fn db_host(&self) -> &str {
        self.client
            .host
            .as_deref()
            .or_else(|| self.header(HOST))
            .unwrap_or_default()
    }

    /// werkzeug's `request.full_path`: the decoded path, `?`, the query (always the `?`).
    fn werkzeug_full_path(&self) -> String {
        format!("{}?{}", self.path(), self.query())
    }
}

impl Application {
    /// Builds a generation from loaded addons. Routes that cannot be parsed, or whose
    /// routing type has no dispatcher, are logged and left out.
    pub fn new(
        config: Arc<Config>,
        addons: Vec<Arc<LoadedAddon>>,
        generation: u64,
        sessions: Arc<dyn SessionStore>,
    ) -> Result<Application, crate::Error> {
        let csrf_secret = csrf::secret_from_data_dir(&config.data_dir).map_err(|e| {
            crate::Error::io(
                "cannot read or create the CSRF secret in",
                &config.data_dir,
                e,
            )
        })?;
        let trusted_proxies = config.proxy_trusted.clone();
        let mut dispatchers = HashMap::default();
        dispatchers.insert("http".to_owned(), (u32::MAX, 0));
        dispatchers.insert("json".to_owned(), (u32::MAX, 1));
        let mut statics = Vec::new();
        for (i, addon) in addons.iter().enumerate() {
            for d in addon.items.dispatchers.iter() {
                if let Some(prev) = dispatchers.insert(d.routing_type.to_string(), (i as u32, d.id))
                {
                    let by = if prev.0 == u32::MAX {
                        "the host".to_owned()
                    } else {
                        addons[prev.0 as usize].name.clone()
                    };
                    tracing::warn!(target: "inphms.http", "addon {} replaces the '{}' dispatcher of {by}", addon.name, d.routing_type);
                }
            }
            statics.push((addon.name.clone(), addon.dir.join("static")));
        }
        let mut routes = RouteTable::new();
        for (i, addon) in addons.iter().enumerate() {
            for r in addon.items.routes.iter() {
                if !dispatchers.contains_key(r.routing_type.as_str()) {
                    tracing::error!(target: "inphms.http", "route {} of addon {}: no dispatcher for type '{}'; route left out", r.endpoint, addon.name, r.routing_type);
                    continue;
                }
                let methods: Vec<String> =
                    r.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
                for path in r.paths.iter() {
                    match Rule::parse(path) {
                        Ok(rule) => routes.add(
                            rule,
                            methods.clone(),
                            r.cors.is_some(),
                            RouteEntry {
                                addon: i as u32,
                                route: r.clone(),
                            },
                        ),
                        Err(e) => {
                            tracing::error!(target: "inphms.http", "route {} of addon {}: invalid path '{path}': {e}; left out", r.endpoint, addon.name)
                        }
                    }
                }
            }
        }
        Ok(Application {
            generation,
            config,
            addons,
            routes,
            dispatchers,
            statics: static_files::StaticRoots::new(statics),
            sessions,
            csrf_secret,
            trusted_proxies,
            db: None,
            databases: DatabaseApps::default(),
        })
    }

    /// The number of routes, for the start-up log.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// The application of one database for this generation: the same configuration,
    /// sessions and generation, with the routes of `addons` (the server-wide addons and the
    /// addons installed in that database; see `modules::registry` and [`DatabaseApps`]).
    pub fn derive(
        &self,
        db: &str,
        addons: Vec<Arc<LoadedAddon>>,
    ) -> Result<Application, crate::Error> {
        let mut app = Application::new(
            Arc::clone(&self.config),
            addons,
            self.generation,
            Arc::clone(&self.sessions),
        )?;
        app.db = Some(db.to_owned());
        Ok(app)
    }

    /// The application of the request's database (Odoo's `_get_session_and_dbname` then
    /// `Registry(db)`): the session's database when the filter accepts it, else `?db=`, else
    /// the only visible database. A registry that fails to load is served as no database.
    ///
    /// The session follows Odoo's rules: a session whose database the filter rejects is
    /// logged out (and its id rotated); the chosen database is recorded in it (saved with
    /// the session's next change). A registry that fails to load does not log the session
    /// out (Odoo does; a database outage would log every user out).
    async fn database_app(
        &self,
        ctx: &Ctx,
        session: &mut LoadedSession,
    ) -> Option<Arc<Application>> {
        let session_db = session.get("db").and_then(Value::as_str).map(str::to_owned);
        let (db, rejected) = crate::sql_db::dblist::select_db(
            &self.config,
            session_db.as_deref(),
            || ctx.query_db(),
            ctx.db_host(),
        )
        .await;
        if rejected {
            tracing::warn!(target: "inphms.http", "Logged into database {:?}, but dbfilter rejects it; logging session out.", session_db.unwrap_or_default());
            session.logout();
        }
        record_db(session, db.as_deref());
        let db = db?;
        // Boxed: loading a registry is a large future, awaited only with a database; it
        // would otherwise size (and be copied with) the future of every request.
        let registry = match Box::pin(crate::modules::registry::Registry::get(&db)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "inphms.http", "Database or registry unusable, trying without: {e}");
                return None;
            }
        };
        match self.databases.get(self, &registry) {
            Ok(app) => Some(app),
            Err(e) => {
                tracing::warn!(target: "inphms.http", "Database {db}: {e}; trying without");
                None
            }
        }
    }

    /// The session store (for the background sweep).
    pub fn sessions(&self) -> Arc<dyn SessionStore> {
        Arc::clone(&self.sessions)
    }

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
        tracked: super::inflight::Guard,
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
        };
        match self.serve_now(&ctx, &body) {
            Ok(resp) => {
                self.log_access(&ctx, &resp);
                Handled::Ready(resp)
            }
            Err(session) => Handled::Pending(Box::new(Pending {
                app: self,
                ctx,
                body: Some(body),
                session,
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
    /// loaded (loaded once per request: its warnings are logged once). Nothing was done by
    /// then that `serve` does again but reads (the database list, the route table) and
    /// [`record_db`], which gives the same session when it runs again.
    fn serve_now(
        self: &Arc<Self>,
        ctx: &Ctx,
        body: &Incoming,
    ) -> Result<HttpResult, Option<LoadedSession>> {
        if !hyper::body::Body::is_end_stream(body) || self.static_candidate(ctx) {
            return Err(None);
        }
        let mut session = LoadedSession::load(&*self.sessions, ctx.header(COOKIE));
        if self.db.is_none() {
            let session_db = session.get("db").and_then(Value::as_str);
            // The request's arrival, unless it waited: no clock read in the common case.
            let now = if ctx.waited {
                Instant::now()
            } else {
                ctx.started
            };
            let Some((db, rejected)) = crate::sql_db::dblist::select_db_now(
                &self.config,
                session_db,
                || ctx.query_db(),
                ctx.db_host(),
                now,
            ) else {
                return Err(Some(session));
            };
            if db.is_some() || rejected {
                return Err(Some(session));
            }
            record_db(&mut session, None);
        }
        let (entry, args) = match self.route_match(ctx) {
            Ok(found) => found,
            Err(resp) => return Ok(*resp),
        };
        if !self.runs_inline(entry) {
            return Err(Some(session));
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
    async fn serve(
        self: &Arc<Self>,
        ctx: &Ctx,
        body: Incoming,
        session: Option<LoadedSession>,
    ) -> HttpResult {
        if session.is_none() && self.static_candidate(ctx) {
            if let Some(resp) = self.serve_static(ctx).await {
                return resp;
            }
        }
        let mut session =
            session.unwrap_or_else(|| LoadedSession::load(&*self.sessions, ctx.header(COOKIE)));
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
        let (entry, args) = match app.route_match(ctx) {
            Ok(found) => found,
            Err(resp) => return *resp,
        };
        let head = match app.dispatch_head(ctx, entry) {
            Ok(head) => head,
            Err(resp) => return route_finish(entry, *resp),
        };
        let body = match read_body(ctx, &app.config, body, head.limit).await {
            Ok(body) => body,
            Err(resp) => return route_finish(entry, resp),
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
                let called = Box::pin(app.call_blocking(entry, request, &ctx.tracked)).await;
                app.answer(ctx, entry, rest, called)
            }
        };
        route_finish(entry, resp)
    }

    /// The request's route and the arguments its path gave, or the 404 or 405 answer.
    fn route_match(&self, ctx: &Ctx) -> Result<(&RouteEntry, Map<String, Value>), Box<HttpResult>> {
        let (entry, args) = match self.routes.matches(ctx.method.as_str(), ctx.raw_path()) {
            Match::Found { payload, args } => (payload, args),
            Match::MethodNotAllowed { allowed } => {
                let mut r = response::html_error(405, None);
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    r.headers_mut().insert(ALLOW, v);
                }
                return Err(Box::new(r));
            }
            Match::NotFound => return Err(Box::new(response::html_error(404, None))),
        };
        let args: Map<String, Value> = if args.is_empty() {
            Map::new()
        } else {
            args.into_iter().map(|(k, v)| (k, v.to_json())).collect()
        };
        Ok((entry, args))
    }

    /// Whether the request may be for a static file (a `GET` or `HEAD` of
    /// `/<loaded addon>/static/...`; see [`Application::may_be_static`]).
    fn static_candidate(&self, ctx: &Ctx) -> bool {
        (ctx.method == Method::GET || ctx.method == Method::HEAD)
            && self.may_be_static(ctx.raw_path())
    }

    /// Whether `raw_path` is `/<loaded addon>/static/...` (cheap, no file access).
    fn may_be_static(&self, raw_path: &str) -> bool {
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
    async fn serve_static(self: &Arc<Self>, ctx: &Ctx) -> Option<HttpResult> {
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
        let mut resp = hyper::Response::new(found.body);
        *resp.status_mut() = found.status;
        *resp.headers_mut() = found.headers;
        Some(resp)
    }

    /// A routed request's checks before its body is read: the CORS preflight (answered),
    /// the websocket handshake; and the body's size limit.
    fn dispatch_head(&self, ctx: &Ctx, entry: &RouteEntry) -> Result<Head, Box<HttpResult>> {
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
            if websocket::refuses_upgrades() {
                return Err(Box::new(response::html_error(503, None)));
            }
            match websocket::check_handshake(&ctx.method, ctx.http_version, &ctx.headers) {
                Ok(accept) => Some(accept),
                Err(refused) => return Err(refused),
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

    /// The request, its body read, up to its handler: the json dispatcher's content type,
    /// `auth`, the parameters and CSRF, the session's id, the websocket; then the handler,
    /// called inline ([`Application::runs_inline`]) or left for the blocking pool.
    fn call(
        self: &Arc<Self>,
        ctx: &Ctx,
        entry: &RouteEntry,
        head: Head,
        args: Map<String, Value>,
        body: RequestBody,
        mut session: LoadedSession,
    ) -> Dispatched {
        let route = &entry.route;
        let Head { ws_accept, limit } = head;
        let routing_type = route.routing_type.as_str();
        // Read only where it matters: a json route, or a body to parse.
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
            return Dispatched::Answered(response::html_error(
                400,
                Some(&format!(
                    "Request inferred type is compatible with ['http'] but '{pattern}' is type='json'."
                )),
            ));
        }

        let authenticated = session.get("uid").is_some_and(|u| !u.is_null());
        if route.auth.as_str() == "user" && !authenticated {
            let expired = disp_error(
                inphms_sdk::abi::ErrorKind::SessionExpired,
                "Session expired",
            );
            return Dispatched::Answered(match routing_type {
                "json" => disp::jsonrpc_error(&Value::Null, &expired, self.dev()),
                _ => disp::http_error(&expired, &ctx.werkzeug_full_path()),
            });
        }

        let mut jsonrpc_id = Value::Null;
        // A json route's `params` as the body has them, when nothing is merged into them.
        let mut raw_params: Option<&str> = None;
        let params = match routing_type {
            "json" => {
                let rpc = match disp::parse_jsonrpc_view(&body) {
                    Ok(r) => r,
                    Err(resp) => return Dispatched::Answered(*resp),
                };
                jsonrpc_id = rpc.id;
                match rpc.params {
                    Ok(disp::RpcParams::Raw(raw)) if args.is_empty() => {
                        raw_params = Some(raw.get());
                        Map::new()
                    }
                    Ok(disp::RpcParams::Raw(raw)) => {
                        // Checked by the view: this parse succeeds, never a silent `{}`.
                        let mut p: Map<String, Value> = match serde_json::from_str(raw.get()) {
                            Ok(p) => p,
                            Err(_) => {
                                return Dispatched::Answered(response::plain(
                                    400,
                                    "Invalid JSON data",
                                ))
                            }
                        };
                        p.extend(args);
                        p
                    }
                    Ok(disp::RpcParams::Parsed(mut p)) => {
                        p.extend(args);
                        p
                    }
                    Err(message) => {
                        let e = disp_error(inphms_sdk::abi::ErrorKind::Internal, &message);
                        return Dispatched::Answered(disp::jsonrpc_error(
                            &jsonrpc_id,
                            &e,
                            self.dev(),
                        ));
                    }
                }
            }
            _ => {
                let mut p = match http_params(ctx.query(), content_type, &body) {
                    Ok(p) => p,
                    Err(resp) => return Dispatched::Answered(*resp),
                };
                let token = if p.is_empty() {
                    None
                } else {
                    p.remove("csrf_token")
                };
                if routing_type == "http"
                    && route.csrf
                    && !CSRF_FREE_METHODS.contains(&ctx.method.as_str())
                {
                    let valid = token.as_ref().and_then(Value::as_str).is_some_and(|t| {
                        let sid = session.sid.as_deref().unwrap_or("");
                        csrf::validate(&self.csrf_secret, sid, t, now())
                    });
                    if !valid {
                        tracing::warn!(target: "inphms.http", "CSRF validation failed on path '{}'", ctx.path());
                        return Dispatched::Answered(response::html_error(
                            400,
                            Some("Session expired (invalid CSRF token)"),
                        ));
                    }
                }
                if !args.is_empty() {
                    p.extend(args);
                }
                p
            }
        };

        // A route that can save the session needs its id now (a CSRF token, a login);
        // one that cannot sees an empty id for a new session.
        if route.save_session {
            session.sid(&*self.sessions);
        }
        // A websocket route opens its socket first: the request carries its id.
        let socket = match ws_accept {
            None => None,
            Some(accept) => {
                let on_upgrade = ctx.upgrade.lock().unwrap_or_else(|e| e.into_inner()).take();
                let Some(on_upgrade) = on_upgrade else {
                    return Dispatched::Answered(response::html_error(
                        400,
                        Some("The connection cannot be upgraded"),
                    ));
                };
                let addon = self
                    .addons
                    .get(entry.addon as usize)
                    .map(|a| a.name.as_str())
                    .unwrap_or("");
                let opened = websocket::open(on_upgrade, ctx.peer, ctx.path(), addon, limit);
                Some((accept, opened))
            }
        };
        let inline = socket.is_none() && self.runs_inline(entry);
        // The addon reads views of these values (nothing is copied to cross), made in this
        // block and used before any await: by the inline call, or copied for the blocking
        // pool. So none of them is held by (and copied with) the request's future.
        let prepared = {
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
                    body: RSlice::from_slice(&body),
                    remote_addr: (*ctx.remote_addr).into(),
                    scheme: ctx.client.scheme.as_str().into(),
                    host: ctx.client.host.as_deref().unwrap_or("").into(),
                    db: self.db.as_deref().map(RStr::from).into(),
                    session_id: session.sid.as_deref().unwrap_or("").into(),
                    session: session_json.as_ref().into(),
                    params: params.as_ref().into(),
                    dev_mode: self.dev(),
                    websocket: socket.as_ref().map(|(_, opened)| opened.id).into(),
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
        };
        // Moved, not copied: a handler on the pool holds the body (and its charge to the
        // memory budget) until it returns.
        let prepared = match prepared {
            Prepared::ForPool(owned) => Prepared::ForPool(owned.with_body(body)),
            called => called,
        };
        match prepared {
            Prepared::Called(outcome) => Dispatched::Answered(self.answer(
                ctx,
                entry,
                Rest {
                    jsonrpc_id,
                    session,
                },
                Ok(outcome),
            )),
            Prepared::ForPool(owned) => {
                if let Some((accept, opened)) = socket {
                    self.run_websocket(entry, owned, opened.id);
                    return Dispatched::Answered(websocket::switching_protocols(&accept));
                }
                Dispatched::Pool(Box::new((
                    owned,
                    Rest {
                        jsonrpc_id,
                        session,
                    },
                )))
            }
        }
    }

    /// The answer from the handler's outcome (or its timeout), the session saved when the
    /// route allows it.
    fn answer(
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
            ("json", None) => disp::jsonrpc_result(
                &jsonrpc_id,
                outcome.value.as_ref().into_option().map(RString::as_str),
            ),
            (_, None) => match std::mem::take(&mut outcome.response).into_option() {
                Some(r) => response::from_addon(r),
                None => match outcome.value.as_ref().into_option() {
                    Some(v) => response::json(200, &serde_json::from_str(v).unwrap_or(Value::Null)),
                    None => response::html_error(500, None),
                },
            },
        };
        // Error responses do not save the session (Odoo: they skip post_dispatch).
        if disp::outcome_error(&outcome).is_none() && route.save_session {
            let secure = ctx.client.scheme == proxy::Scheme::Https;
            if let Some(cookie) = session.save(&*self.sessions, &outcome, secure) {
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    resp.headers_mut().append(SET_COOKIE, v);
                }
            }
        }
        resp
    }

    /// Runs a websocket route's handler on the blocking pool with its socket `socket`, and
    /// closes the socket when the handler returns (1011 if it failed).
    fn run_websocket(self: &Arc<Self>, entry: &RouteEntry, request: OwnedRequest, socket: u64) {
        let task = self.run_handler(entry, Handed::Now(request));
        let endpoint = entry.route.endpoint.clone();
        tokio::spawn(async move {
            let code = match task.await {
                Ok(None) => websocket::code::INTERNAL_ERROR,
                Ok(Some(outcome)) => match disp::outcome_error(&outcome) {
                    None => websocket::code::NORMAL,
                    Some(e) => {
                        tracing::error!(target: "inphms.http", "websocket handler {endpoint} failed: {}", if e.debug.is_empty() { e.message.as_str() } else { e.debug.as_str() });
                        websocket::code::INTERNAL_ERROR
                    }
                },
                Err(e) => {
                    tracing::error!(target: "inphms.http", "websocket handler {endpoint} failed: {e}");
                    websocket::code::INTERNAL_ERROR
                }
            };
            websocket::release(socket, code);
        });
    }

    /// Starts the route's handler on the blocking pool, with this generation as the
    /// thread's request context for the call (and none left behind after it). A
    /// [`Handed::Gated`] request runs only if it was not given up while the task waited for a
    /// thread of the pool (`None` then).
    fn run_handler(
        self: &Arc<Self>,
        entry: &RouteEntry,
        handed: Handed,
    ) -> tokio::task::JoinHandle<Option<Outcome>> {
        let app = Arc::clone(self);
        let (addon, item) = (entry.addon, entry.route.id);
        let routing_type = entry.route.routing_type.clone();
        let readonly = entry.route.readonly;
        tokio::task::spawn_blocking(move || {
            let request = match handed {
                Handed::Now(request) => request,
                // Answered 504 while queued: the request (and its body) went with its gate.
                Handed::Gated(gate) => gate.start()?,
            };
            CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(&app)));
            // With a database: in a transaction, retried as Odoo's `retrying`.
            let outcome = match app.db.clone() {
                Some(db) => crate::sql_db::env::transaction(
                    &db,
                    readonly,
                    crate::sql_db::env::MAX_TRIES,
                    Some(Duration::from_secs(app.config.limit_time_real)),
                    || request.with_view(|r| app.invoke(addon, item, routing_type.as_str(), r)),
                )
                .unwrap_or_else(|e| Outcome {
                    error: ROption::RSome(crate::sql_db::env::error_info(&e)),
                    ..Outcome::default()
                }),
                None => request.with_view(|r| app.invoke(addon, item, routing_type.as_str(), r)),
            };
            CURRENT.with(|c| *c.borrow_mut() = None);
            Some(outcome)
        })
    }

    /// Runs a `blocking = false` route inline, on this runtime worker: no thread hand-off
    /// (see ARCHITECTURE.md, "How handlers run").
    fn run_inline(self: &Arc<Self>, entry: &RouteEntry, request: HttpRequest<'_>) -> Outcome {
        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(self)));
        let outcome = self.invoke(
            entry.addon,
            entry.route.id,
            entry.route.routing_type.as_str(),
            request,
        );
        CURRENT.with(|c| *c.borrow_mut() = None);
        outcome
    }

    /// Whether the route's addon is called inline, on the runtime's thread: a `blocking =
    /// false` route outside a database; else on the blocking pool under `limit_time_real`
    /// ([`Application::call_blocking`]).
    fn runs_inline(&self, entry: &RouteEntry) -> bool {
        !entry.route.blocking && !entry.route.websocket && self.db.is_none()
    }

    /// Calls a handler on the blocking pool, under `limit_time_real`.
    async fn call_blocking(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: OwnedRequest,
        tracked: &super::inflight::Guard,
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
                    tokio::spawn(async move {
                        let _ = task.await;
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
    fn invoke(
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
                })
            }
            _ => call_endpoint(endpoint, request),
        }
    }

    fn dev(&self) -> bool {
        !self.config.dev_mode.is_empty()
    }

    /// One access-log line (`log_batched` checks that the access log is on; the entry
    /// costs nothing until written).
    fn log_access(&self, ctx: &Ctx, resp: &HttpResult) {
        // The body's size; the header's for an empty body (a `HEAD`, a `304`).
        let size = match hyper::body::Body::size_hint(resp.body()).exact() {
            Some(n) if n > 0 => Some(n),
            exact => resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .or(exact),
        };
        let entry = access_log::entry(
            &ctx.remote_addr,
            ctx.method.as_str(),
            ctx.full_path(),
            ctx.version,
            resp.status().as_u16(),
            size,
            ctx.started.elapsed(),
        );
        // Straight to the log writer: a tracing event would format the line once more.
        crate::netsvc::log_batched(
            tracing::Level::INFO,
            &access_log::ACCESS_LOG_TARGET,
            ctx.db.get().map(String::as_str),
            entry.time,
            |line| entry.write_to(line),
        );
    }
}

/// A request handed to the blocking pool: to run as soon as a thread takes it, or through a
/// [`StartGate`] that its time limit may close first. Unboxed: it moves once, into the
/// task that would hold the request anyway.
#[allow(clippy::large_enum_variant)]
enum Handed {
    Now(OwnedRequest),
    Gated(Arc<StartGate>),
}

/// A request queued for the blocking pool, until its handler starts or its time limit gives
/// it up (they race for it), so that a request answered 504 while queued never runs, and
/// its body (a mapping, charged to the budgets) is dropped with the 504, not when a thread
/// of the pool frees, seconds or minutes later.
#[derive(Debug)]
struct StartGate(std::sync::Mutex<Gate>);

/// Unboxed: it lives once, in the gate's `Arc`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Gate {
    Queued(OwnedRequest),
    Started,
    GivenUp,
}

impl StartGate {
    fn new(request: OwnedRequest) -> StartGate {
        StartGate(std::sync::Mutex::new(Gate::Queued(request)))
    }

    /// The handler's thread: the request to run, unless it was given up.
    fn start(&self) -> Option<OwnedRequest> {
        self.take(Gate::Started)
    }

    /// The time limit: whether the handler had not started (and now never will); the
    /// request is dropped here.
    fn give_up(&self) -> bool {
        self.take(Gate::GivenUp).is_some()
    }

    /// The queued request, leaving `to` in its place; `None` (and no change) once it was
    /// taken.
    fn take(&self, to: Gate) -> Option<OwnedRequest> {
        let mut gate = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *gate, to) {
            Gate::Queued(request) => Some(request),
            taken => {
                *gate = taken;
                None
            }
        }
    }
}

/// A request ready for its handler: already answered by an inline handler, or copied for
/// the blocking pool.
enum Prepared {
    Called(Outcome),
    ForPool(OwnedRequest),
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
        let resp = self.app.serve(&self.ctx, body, session).await;
        self.app.log_access(&self.ctx, &resp);
        resp
    }
}

/// What [`Application::dispatch_head`] found: the websocket accept key of a websocket
/// route, and the body's size limit.
struct Head {
    ws_accept: Option<String>,
    limit: u64,
}

/// Where [`Application::call`] left a request: answered, or its handler to run on the
/// blocking pool (with what [`Application::answer`] needs after it).
enum Dispatched {
    Answered(HttpResult),
    Pool(Box<(OwnedRequest, Rest)>),
}

/// What the answer needs once the handler returned: the JSON-RPC id and the session.
struct Rest {
    jsonrpc_id: Value,
    session: LoadedSession,
}

/// The headers every routed answer gets: CORS for a route that allows it, and
/// `X-Content-Type-Options: nosniff`.
fn route_finish(entry: &RouteEntry, mut resp: HttpResult) -> HttpResult {
    if let Some(origin) = entry.route.cors.as_ref().into_option() {
        add_cors(&mut resp, origin, &entry.route, false);
    }
    resp.headers_mut().insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The request's body, at most `limit` bytes, received in bounded memory and time (see
/// [`body`]): 413 when it declares or sends more, 408 when it stalls or drips, 503 when the
/// memory or disk for bodies is exhausted, 400 when it cannot be read.
async fn read_body(
    ctx: &Ctx,
    config: &Config,
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
    };
    body::receive(body, declared, &limits)
        .await
        .map_err(|e| e.response())
}

/// Records the request's database in its session (Odoo's `session.db`), when it is not
/// already there: saved with the session's next change.
fn record_db(session: &mut LoadedSession, db: Option<&str>) {
    let recorded = match (db, session.get("db")) {
        (Some(db), Some(Value::String(s))) => s == db,
        (None, Some(Value::Null)) => true,
        (None, None) => session.data.is_none(),
        _ => false,
    };
    if !recorded {
        session.data_mut().insert(
            "db".to_owned(),
            db.map_or(Value::Null, |d| Value::String(d.to_owned())),
        );
    }
}

/// Calls `f` with views of `headers` as the addon reads them, on the stack for up to 32
/// headers (no allocation per request). A value that is not plain ASCII text crosses as a
/// lossy UTF-8 copy (rare), put in place once they are all made.
fn with_header_views<R>(headers: &HeaderMap, f: impl FnOnce(&[HeaderRef<'_>]) -> R) -> R {
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

fn disp_error(kind: inphms_sdk::abi::ErrorKind, message: &str) -> inphms_sdk::abi::ErrorInfo {
    let mut e = disp::internal_error(message);
    e.kind = kind;
    e.name = match kind {
        inphms_sdk::abi::ErrorKind::SessionExpired => "inphms.http.SessionExpiredException",
        inphms_sdk::abi::ErrorKind::BadRequest => "werkzeug.exceptions.BadRequest",
        _ => "builtins.Exception",
    }
    .into();
    e
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Odoo's `max_form_memory_size` (18.0): the form fields of a body (an urlencoded body, or
/// the names and text of a multipart one's fields and the names and file names of its
/// files, in all) copied into the parameters; more is a 413. Files' bytes are not copied
/// (they stay in the body), whatever their size.
const MAX_FORM_MEMORY_SIZE: usize = 10 * 1024 * 1024;

/// Werkzeug's `max_form_parts` (its default): the pairs of an urlencoded body, or the parts
/// of a multipart one, counted before they are parsed into anything; more is a 413. Without
/// it, 10 MiB of `a&a&a...` would make five million pairs.
const MAX_FORM_PARTS: usize = 1000;

/// Odoo's http params: query string, then form fields, then files (first value of each key
/// wins within a source; form overrides query, files override form). A file is described as
/// `{"filename", "content_type", "size"}`; its bytes stay in the body (`Request::files`).
/// A malformed multipart body is an error (400); form fields past
/// [`MAX_FORM_MEMORY_SIZE`] or [`MAX_FORM_PARTS`], 413.
fn http_params(
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, Box<HttpResult>> {
    let mut params = Map::new();
    if query.is_empty() && body.is_empty() {
        return Ok(params);
    }
    let mut add = |pairs: Vec<(String, Value)>| {
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if seen.insert(k.clone()) {
                params.insert(k, v);
            }
        }
    };
    let text = |pairs: Vec<(String, String)>| {
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    };
    add(text(
        parse_urlencoded(query.as_bytes(), usize::MAX).unwrap_or_default(),
    ));
    let content_type = content_type.unwrap_or("");
    let too_large = || Box::new(response::html_error(413, None));
    if content_type.starts_with("application/x-www-form-urlencoded") {
        if body.len() > MAX_FORM_MEMORY_SIZE {
            return Err(too_large());
        }
        add(text(
            parse_urlencoded(body, MAX_FORM_PARTS).ok_or_else(too_large)?,
        ));
    } else if inphms_sdk::multipart::is_multipart(content_type) {
        if multipart_parts_past(content_type, body, MAX_FORM_PARTS) {
            return Err(too_large());
        }
        // Borrowed: a file part's bytes (a large upload) are never copied here.
        let parts = inphms_sdk::multipart::parse_ref(content_type, body)
            .map_err(|e| Box::new(response::html_error(400, Some(&e.to_string()))))?;
        let (files, fields): (Vec<_>, Vec<_>) = parts.into_iter().partition(|p| p.is_file());
        let copied = fields
            .iter()
            .map(|p| p.name.len() + p.data.len())
            .chain(
                files
                    .iter()
                    .map(|p| p.name.len() + p.filename.as_ref().map_or(0, String::len)),
            )
            .sum::<usize>();
        if copied > MAX_FORM_MEMORY_SIZE {
            return Err(too_large());
        }
        add(fields
            .into_iter()
            .map(|p| {
                let text = String::from_utf8_lossy(p.data).into_owned();
                (p.name, Value::String(text))
            })
            .collect());
        add(files
            .into_iter()
            .map(|p| {
                let described = serde_json::json!({
                    "filename": p.filename,
                    "content_type": p.content_type,
                    "size": p.data.len(),
                });
                (p.name, described)
            })
            .collect());
    }
    Ok(params)
}

/// `a=1&b=x%20y` as pairs (`+` is a space); `None` past `most` pairs (nothing more is made).
fn parse_urlencoded(s: &[u8], most: usize) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (k, v) in form_urlencoded::parse(s) {
        if pairs.len() == most {
            return None;
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Some(pairs)
}

/// Whether the multipart `body` has more than `most` parts, by counting its delimiter
/// lines (without parsing anything): a part ends at each delimiter but the first. A body
/// without a valid boundary is left to the parser (a 400).
fn multipart_parts_past(content_type: &str, body: &[u8], most: usize) -> bool {
    let Some(boundary) = inphms_sdk::multipart::boundary(content_type) else {
        return false;
    };
    let delimiter = format!("\r\n--{boundary}");
    let delimiter = delimiter.as_bytes();
    let opening = usize::from(body.starts_with(&delimiter[2..]));
    let delimiters = opening
        + memchr::memmem::find_iter(body, delimiter)
            .take(most.saturating_add(2))
            .count();
    delimiters.saturating_sub(1) > most
}

/// Odoo's CORS headers; the preflight also gets the max age and allowed headers.
fn add_cors(resp: &mut HttpResult, origin: &RString, route: &RouteDescriptor, preflight: bool) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin.as_str()) {
        h.insert("access-control-allow-origin", v);
    }
    let methods = if route.routing_type.as_str() == "json" {
        "POST".to_owned()
    } else if route.methods.is_empty() {
        "GET, POST".to_owned()
    } else {
        route
            .methods
            .iter()
            .map(RString::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert("access-control-allow-methods", v);
    }
    if preflight {
        h.insert(
            "access-control-max-age",
            HeaderValue::from_static(CORS_MAX_AGE),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(
                "Origin, X-Requested-With, Content-Type, Accept, Authorization",
            ),
        );
    }
}

/// A CSRF token for `sid` with the secret of the generation serving this thread's request
/// (Odoo's `request.csrf_token()`); `lifetime` 0 means one year.
pub fn csrf_token(sid: &str, lifetime: u64) -> String {
    let app = CURRENT.with(|c| c.borrow().clone());
    let Some(app) = app else {
        return String::new();
    };
    let lifetime = if lifetime == 0 {
        csrf::CSRF_TOKEN_LIFETIME
    } else {
        lifetime
    };
    csrf::token(&app.csrf_secret, sid, now(), lifetime)
}
