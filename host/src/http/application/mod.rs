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
//! 100; with a database, the session token is checked on the handler's thread: `auth`),
//! parameters (query, urlencoded or multipart form, files; or JSON-RPC `params`) and
//! CSRF, then the handler on the blocking pool (under `limit_time_real`; a request answered
//! 504 before a thread of the pool took its handler never runs it). The session is saved,
//! and its cookie set, only when the handler changed it and the route allows it; error
//! responses never save it (Odoo skips `post_dispatch` for them), but for "Session expired",
//! which saves the logged-out session under a new id.
//!
//! A `websocket` route answers 101 once the handshake and the steps above passed; its
//! handler then runs with the upgraded connection (see [`super::websocket`]). Its session
//! changes are not saved (the answer went out before it ran).
//!
//! A generation never changes once built; a swap builds a new one (see `service`).
//!
//! This module holds [`Application`], its construction, the choice of the database's
//! application and the access log; the rest is split by job: `ctx` (the request context),
//! `serve` (the sync-first `handle` and the async `serve`), `dispatch` (the route's checks
//! up to the handler), `handler` (the handler's run, inline or on the pool), `answer` (the
//! answer, the session saved), `params` (Odoo's http parameters), `cors` (the CORS
//! headers) and `current` (the generation running on this thread).

mod answer;
mod async_handler;
mod auth;
mod cors;
mod ctx;
mod current;
mod dispatch;
mod handler;
mod hooks;
mod login_db;
mod metrics;
mod params;
mod push_gate;
mod serve;
mod socket_events;
mod socket_events_async;
mod start_gate;

use cors::add_cors;
use ctx::Ctx;
pub use current::{call_endpoint, csrf_token};
use current::{error_outcome, Running};
use dispatch::{route_finish, Dispatched};
pub use serve::{Handled, Pending};

use super::addon_request::OwnedRequest;
use super::body::{self, RequestBody};
use super::db_apps::DatabaseApps;
use super::dispatcher::{self as disp, CSRF_FREE_METHODS};
use super::request_session::LoadedSession;
use super::response::{self, HttpResult};
use super::routing::{Match, RouteTable, Rule};
use super::session::SessionStore;
use super::{access_log, csrf, proxy, static_files, websocket, Services};
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

/// A route as the table holds it: which addon serves it, and its descriptor.
#[derive(Debug, Clone)]
struct RouteEntry {
    addon: u32,
    route: RouteDescriptor,
    /// The route's series, labelled with this path pattern (`None`: metrics are off).
    metrics: Option<Arc<crate::metrics::RouteMetrics>>,
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
    /// The `ir.http` hooks of the addons (see [`super::ir_http`]).
    hooks: super::ir_http::Hooks,
    /// Whether any hook is registered: without, a request takes none of their steps.
    hooked: bool,
    /// The route each overriding route overrides (its `call_super`), by `(addon, route)`.
    supers: HashMap<(u32, u32), EndpointRef, foldhash::fast::RandomState>,
    /// The route a request no route matched is served by when addons declare fallbacks.
    fallback: RouteEntry,
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
    /// The statement keying session tokens, from the first addon declaring
    /// `session_token_query` (see `auth`); `None`: tokens are not checked.
    session_token_query: Option<String>,
    /// The statement finding API keys, from the first addon declaring `apikey_query`
    /// (see `auth`); `None`: `auth = "bearer"` routes refuse every request.
    apikey_query: Option<String>,
    /// The statement giving the public user's id (`public_user_query`), and that id once
    /// read (per database application).
    public_user_query: Option<String>,
    public_uid: std::sync::OnceLock<Option<i64>>,
    /// The rows keying session tokens, by user (Odoo's ormcache of
    /// `_compute_session_token`; see `auth`): one per database application, so per
    /// registry, emptied with it when signaling renews the registry.
    session_tokens: auth::TokenCache,
    /// The default session with each database recorded, shared by new sessions
    /// ([`record_db`]).
    default_sessions: crate::http::request_session::DefaultSessions,
    /// The websockets' limits (from the configuration).
    ws: websocket::Settings,
    /// The host's request path state, shared by its generations.
    services: Arc<Services>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("generation", &self.generation)
            .field("addons", &self.addons.len())
            .finish()
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
        services: Arc<Services>,
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
        let session_token_query = addons
            .iter()
            .find_map(|a| a.manifest.session_token_query.clone());
        let apikey_query = addons.iter().find_map(|a| a.manifest.apikey_query.clone());
        let public_user_query = addons
            .iter()
            .find_map(|a| a.manifest.public_user_query.clone());
        let hooks = super::ir_http::Hooks::of(&addons);
        let map = super::ir_http::RouteMap::build(&addons, |t| dispatchers.contains_key(t), &hooks);
        let mut routes = RouteTable::new();
        for m in &map.routes {
            match Rule::parse(&m.path) {
                Ok(rule) => routes.add(
                    rule,
                    m.methods.clone(),
                    m.route.cors.is_some(),
                    RouteEntry {
                        addon: m.addon,
                        route: m.route.clone(),
                        metrics: services.metrics.http.route(&m.path),
                    },
                ),
                Err(e) => {
                    tracing::error!(target: "inphms.http", "route {} of addon {}: invalid path '{}': {e}; left out", m.route.endpoint, addons[m.addon as usize].name, m.path)
                }
            }
        }
        let supers = map.supers.into_iter().collect();
        let hooked =
            !hooks.auth.is_empty() || hooks.around_dispatch() || !hooks.fallback.is_empty();
        let ws = websocket::Settings::new(
            &config,
            super::connections::cap(config.http_max_connections, u64::from(config.db_maxconn)),
        )?;
        Ok(Application {
            generation,
            config,
            addons,
            routes,
            hooks,
            hooked,
            supers,
            fallback: hooks::fallback_entry(),
            dispatchers,
            statics: static_files::StaticRoots::new(statics),
            sessions,
            csrf_secret,
            trusted_proxies,
            db: None,
            databases: DatabaseApps::default(),
            session_token_query,
            apikey_query,
            public_user_query,
            public_uid: std::sync::OnceLock::new(),
            session_tokens: auth::TokenCache::default(),
            default_sessions: Default::default(),
            ws,
            services,
        })
    }

    /// The number of routes, for the start-up log.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// The application of one database for this generation: the same configuration,
    /// sessions and generation, with the routes of `addons` (the server-wide addons and the
    /// addons installed in that database; see `modules::registry` and [`DatabaseApps`]).
    /// Its CSRF tokens are keyed by the database's `secret` (`database.secret`, as Odoo),
    /// the data dir's secret only when the database has none.
    pub fn derive(
        &self,
        db: &str,
        addons: Vec<Arc<LoadedAddon>>,
        secret: Option<&str>,
    ) -> Result<Application, crate::Error> {
        let mut app = Application::new(
            Arc::clone(&self.config),
            addons,
            self.generation,
            Arc::clone(&self.sessions),
            Arc::clone(&self.services),
        )?;
        app.db = Some(db.to_owned());
        if let Some(secret) = secret {
            app.csrf_secret = secret.as_bytes().to_vec();
        }
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
            self.services.databases(),
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
        record_db_shared(session, db.as_deref(), Some(&self.default_sessions));
        let db = db?;
        // Boxed: loading a registry is a large future, awaited only with a database; it
        // would otherwise size (and be copied with) the future of every request.
        let registry = match Box::pin(self.services.registries.get(&db)).await {
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

    /// The host's request path state (the same for every generation).
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// The session store (for the background sweep).
    pub fn sessions(&self) -> Arc<dyn SessionStore> {
        Arc::clone(&self.sessions)
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
        let elapsed = ctx.started.elapsed();
        let status = resp.status().as_u16();
        let http_metrics = &self.services.metrics.http;
        if let Some(route) = ctx.route.get().or(http_metrics.unmatched.as_ref()) {
            route.record(
                &ctx.method,
                status,
                elapsed,
                ctx.body_bytes.load(std::sync::atomic::Ordering::Relaxed),
                size.unwrap_or(0),
            );
        }
        let entry = access_log::entry(
            &ctx.remote_addr,
            ctx.method.as_str(),
            ctx.full_path(),
            ctx.version,
            status,
            size,
            elapsed,
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

/// Records the request's database in its session (Odoo's `session.db`), when it is not
/// already there: saved with the session's next change.
fn record_db(session: &mut LoadedSession, db: Option<&str>) {
    record_db_shared(session, db, None);
}

/// [`record_db`], where a new session gets the shared default session of that database
/// (from `defaults`, the generation's: built and serialised once).
fn record_db_shared(
    session: &mut LoadedSession,
    db: Option<&str>,
    defaults: Option<&crate::http::request_session::DefaultSessions>,
) {
    let recorded = match (db, session.get("db")) {
        (Some(db), Some(Value::String(s))) => s == db,
        (None, Some(Value::Null)) => true,
        (None, None) => session.data.is_none(),
        _ => false,
    };
    if let (false, Some(db), None, Some(defaults)) = (recorded, db, &session.data, defaults) {
        let (data, json) = defaults.get(db);
        session.share(data, json);
        return;
    }
    if !recorded {
        session.data_mut().insert(
            "db".to_owned(),
            db.map_or(Value::Null, |d| Value::String(d.to_owned())),
        );
    }
}

fn disp_error(kind: inphms_sdk::abi::ErrorKind, message: &str) -> inphms_sdk::abi::ErrorInfo {
    let mut e = disp::internal_error(message);
    e.kind = kind;
    e.name = match kind {
        inphms_sdk::abi::ErrorKind::SessionExpired => inphms_sdk::exceptions::SESSION_EXPIRED,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_db_records_the_database_once_and_leaves_a_default_session_alone() {
        // A new session without a database stays the default one (nothing to save).
        let defaults = crate::http::request_session::DefaultSessions::default();
        let record_db = |s: &mut LoadedSession, db| record_db_shared(s, db, Some(&defaults));
        let mut s = LoadedSession::new();
        record_db(&mut s, None);
        assert!(s.data.is_none());
        // The database goes in, as Odoo's `session.db`.
        record_db(&mut s, Some("db1"));
        assert_eq!(s.get("db"), Some(&Value::String("db1".into())));
        // The same shared default session (and its JSON) for the next new session.
        let mut t = LoadedSession::new();
        record_db(&mut t, Some("db1"));
        assert!(Arc::ptr_eq(
            s.data.as_ref().expect("data"),
            t.data.as_ref().expect("data")
        ));
        assert_eq!(
            t.json(),
            serde_json::to_string(&t.data.as_ref().expect("data").0).unwrap()
        );
        assert_eq!(t.get("uid"), Some(&Value::Null));
        // Already there: the session is not touched (its data stays shared).
        let before = s.data.clone().expect("data after recording");
        record_db(&mut s, Some("db1"));
        let after = s.data.clone().expect("data kept");
        assert!(Arc::ptr_eq(&before, &after));
        // Another database replaces it; none is recorded as null.
        record_db(&mut s, Some("db2"));
        assert_eq!(s.get("db"), Some(&Value::String("db2".into())));
        record_db(&mut s, None);
        assert_eq!(s.get("db"), Some(&Value::Null));
        let before = s.data.clone().expect("data");
        record_db(&mut s, None);
        assert!(Arc::ptr_eq(&before, s.data.as_ref().expect("data")));
    }
}
