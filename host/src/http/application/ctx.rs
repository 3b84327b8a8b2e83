//! [`Ctx`]: what the request path needs to know about one request, gathered once (its
//! method, target, headers, client, in-flight entry and chosen database).

use super::*;

/// What the request path needs to know about one request, gathered once.
pub(super) struct Ctx {
    pub(super) started: Instant,
    /// The request waited for the concurrency cap before [`Application::handle`]: `started`
    /// is then too old to judge the cached database list's freshness by.
    pub(super) waited: bool,
    pub(super) method: Method,
    /// The request target as received (path and query, percent-encoded).
    pub(super) uri: hyper::Uri,
    /// The path, percent-decoded (see [`Ctx::path`]): only when decoding changed it.
    pub(super) decoded_path: Option<String>,
    pub(super) headers: HeaderMap,
    pub(super) client: proxy::ClientInfo,
    /// The client address as text.
    pub(super) remote_addr: Arc<str>,
    pub(super) version: &'static str,
    pub(super) http_version: Version,
    /// The direct peer (before proxy mode).
    pub(super) peer: SocketAddr,
    /// hyper's handle on the connection, taken by a websocket route.
    pub(super) upgrade: Mutex<Option<OnUpgrade>>,
    /// The request's entry in the in-flight table (SIGQUIT's dump), left when dropped.
    pub(super) tracked: super::super::inflight::Guard,
    /// The database the request is served in, once chosen: the access log's and the
    /// in-flight table's (Odoo's `threading.current_thread().dbname`).
    pub(super) db: std::sync::OnceLock<String>,
    /// The series of the route that answered, once matched (metrics on).
    pub(super) route: std::sync::OnceLock<Arc<crate::metrics::RouteMetrics>>,
    /// The bytes of the request's body, once received (for the metrics).
    pub(super) body_bytes: std::sync::atomic::AtomicU64,
}

impl Ctx {
    /// The path, percent-encoded as received.
    pub(super) fn raw_path(&self) -> &str {
        self.uri.path()
    }

    /// The path, percent-decoded.
    pub(super) fn path(&self) -> &str {
        self.decoded_path.as_deref().unwrap_or(self.uri.path())
    }

    /// Path and query as received, for redirects and the access log.
    pub(super) fn full_path(&self) -> &str {
        self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    }

    /// The query string as received (empty without one).
    pub(super) fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// A header's value as text; `name` is best one of hyper's constants (a `&str` is
    /// parsed into a header name on every call).
    pub(super) fn header(&self, name: impl hyper::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `db` field of the query string (Odoo's `?db=`).
    pub(super) fn query_db(&self) -> Option<String> {
        form_urlencoded::parse(self.query().as_bytes())
            .find(|(k, _)| k == "db")
            .map(|(_, v)| v.into_owned())
    }

    /// The host that `dbfilter`'s `%h` and `%d` stand for: the client's (proxy mode), else
    /// the `Host` header.
    pub(super) fn db_host(&self) -> &str {
        self.client
            .host
            .as_deref()
            .or_else(|| self.header(HOST))
            .unwrap_or_default()
    }

    /// werkzeug's `request.full_path`: the decoded path, `?`, the query (always the `?`).
    pub(super) fn werkzeug_full_path(&self) -> String {
        format!("{}?{}", self.path(), self.query())
    }
}
