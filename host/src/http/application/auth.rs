//! The session token (Odoo's `security.check_session`), checked on the handler's thread in
//! the request's transaction, on every route of a database whose session has a user (as
//! Odoo's request set-up does before the route's auth): a session whose token no longer
//! matches its user's credentials (password, login or `active` changed, user gone,
//! database secret changed), or whose `uid` is not an integer, is logged out and saved
//! under a new id; the request goes on as anonymous, except on `auth = "user"` (and
//! `auth = "bearer"` without a key), answered "Session expired". A session rotated with a
//! user in it gets its token for the new id there ([`Application::after_handler`]).
//! Websocket messages after the handshake are not re-checked yet.
//!
//! The token's key is the row of the statement an addon declares in its manifest
//! (`session_token_query`, `base`'s over `res_users`), so the host knows no table of
//! `base`'s; the token itself is `inphms_sdk::session::session_token`, shared with `base`.
//!
//! `auth = "bearer"` (Odoo 18's `_auth_method_bearer`): an API key in `Authorization:
//! Bearer KEY`, found with the manifest's `apikey_query` and verified with `base`'s hashes
//! (`base_identity::crypt`); the handler sees the key's user as the session's `uid`, and
//! that session is not saved. Without a key, a logged-in session from a browser navigation
//! (the `Sec-Fetch-*` headers) is accepted as for `auth = "user"`.
//!
//! The decisions are written once, as futures over a [`Lookup`] that runs their statements:
//! [`Blocking`] on the thread's cursor for sync routes and sync websocket calls (ready at
//! once), [`Awaited`] on an async route's or async socket callback's cursor, so that an
//! async request waiting for PostgreSQL there holds no thread. A login's token is one of
//! them ([`Application::after_handler`], [`Application::socket_login_token`]): awaited in
//! the handler's transaction, before its commit; so are the session token and the public
//! user before an async socket callback ([`Application::session_token_of`],
//! [`Application::public_user`]). They read the session's `uid` and token as loaded
//! ([`SessionUser`]); its JSON is parsed only to log a stale session out.

use super::*;
use crate::http::request_session::SessionUser;
use crate::http::request_session::NEW_SID_KEY;
use crate::sql_db::env as db_env;
use inphms_sdk::abi::{ErrorKind, HeaderBlock, HttpResponse, SqlRows, SqlValue as AbiValue};

impl Application {
    /// The session token of a logged-in session, on a database, for every route (Odoo's
    /// `Request._post_init` check before the route's auth): [`TokenCheck::Fine`] without
    /// a user or with a matching token; a session whose token no longer matches (or whose
    /// `uid` is not an integer) is [`TokenCheck::Stale`], logged out, for the handler to
    /// run as anonymous, except for `auth = "user"` (and `auth = "bearer"` without a key),
    /// answered "Session expired" ([`TokenCheck::Refused`], also a failed query). Runs
    /// inside the request's transaction, on the thread's cursor ([`Blocking`]).
    ///
    /// `cached`: the token is first checked against the row cached for the user
    /// ([`TokenCache`]), and the query runs only on a miss or a mismatch (a row cached
    /// before a login rehashed the password must not refuse the new session); an HTTP
    /// request whose token matches the cache touches no database. Websocket calls pass
    /// `false`: a socket keeps its application (and its cache) for its life, past the
    /// registry's renewal that empties the cache of a new one.
    pub(super) fn check_session_token(
        &self,
        auth: &str,
        r: &HttpRequest<'_>,
        cached: bool,
    ) -> TokenCheck {
        let lookup = Blocking(self.services.databases());
        ready(self.session_token_of(auth, r, cached, &lookup))
            .unwrap_or_else(|| TokenCheck::Refused(not_ready()))
    }

    /// [`Application::check_session_token`] with its statement run by `lookup`: on the
    /// thread's cursor for a sync websocket call, awaited on an async socket callback's
    /// cursor (in its transaction), so that a callback waiting for PostgreSQL there holds
    /// no thread.
    pub(super) async fn session_token_of<L: Lookup>(
        &self,
        auth: &str,
        r: &HttpRequest<'_>,
        cached: bool,
        lookup: &L,
    ) -> TokenCheck {
        if self.session_token_query.is_none() || self.db.is_none() {
            return TokenCheck::Fine;
        }
        let Some(user) = SessionUser::of_json(r.session.as_str()) else {
            return TokenCheck::Refused(expired(Map::new()));
        };
        self.session_token_checked(auth, r, &user, cached, lookup)
            .await
    }

    /// [`Application::check_session_token`] of the session's `user` (its `uid` and token,
    /// as loaded), its query run by `lookup`: the one decision of sync and async routes.
    pub(super) async fn session_token_checked<L: Lookup>(
        &self,
        auth: &str,
        r: &HttpRequest<'_>,
        user: &SessionUser,
        cached: bool,
        lookup: &L,
    ) -> TokenCheck {
        let Some(query) = self.session_token_query.as_deref() else {
            return TokenCheck::Fine;
        };
        if self.db.is_none() {
            return TokenCheck::Fine;
        }
        let Some(uid) = user.uid else {
            return TokenCheck::Fine;
        };
        let must_refuse = auth == "user" || (auth == "bearer" && bearer_key(r).is_none());
        let matches = match uid {
            Some(uid) => {
                let stored = user.token.as_deref();
                let sid = r.session_id.as_str();
                if cached {
                    if let Some(expected) = self.session_tokens.expected(uid, sid) {
                        if stored.is_some_and(|t| consteq(t, &expected)) {
                            return TokenCheck::Fine;
                        }
                    }
                }
                let expected = token_row(lookup, query, uid).await.map(|row| match row {
                    Some(row) => {
                        let token = inphms_sdk::session::session_token(&row, sid);
                        self.session_tokens.put(uid, row);
                        Some(token)
                    }
                    None => {
                        self.session_tokens.forget(uid);
                        None
                    }
                });
                match expected {
                    Ok(Some(expected)) => stored.is_some_and(|t| consteq(t, &expected)),
                    Ok(None) => false,
                    Err(e) => {
                        return TokenCheck::Refused(Outcome {
                            error: ROption::RSome(e),
                            ..Outcome::default()
                        })
                    }
                }
            }
            None => false,
        };
        if matches {
            return TokenCheck::Fine;
        }
        // The rare paths: the session's JSON read whole, to log it out.
        let session = match serde_json::from_str(r.session.as_str()) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        tracing::info!(target: "inphms.http", "session of user {} expired on {} (its session token no longer matches): logged out", session.get("uid").map(|v| v.to_string()).unwrap_or_default(), self.db.as_deref().unwrap_or(""));
        if must_refuse {
            TokenCheck::Refused(expired(session))
        } else {
            TokenCheck::Stale(Value::Object(logged_out(session)).to_string())
        }
    }

    /// After a handler on a database: a session it asked to rotate with a user in it
    /// (a login) gets its new id drawn here and its token computed for that id in the
    /// request's transaction (Odoo's `FilesystemSessionStore.rotate`), the id handed to the
    /// session's save under [`NEW_SID_KEY`]. The token's statement is run by `lookup`
    /// (awaited on an async route's cursor: a login waiting for PostgreSQL holds no thread).
    pub(super) async fn after_handler<L: Lookup>(&self, outcome: &mut Outcome, lookup: &L) {
        if !outcome.rotate_session || outcome.error.is_some() {
            return;
        }
        let Some((query, mut session, uid)) = self.login_session(outcome) else {
            return;
        };
        let sid = self.sessions.new_sid();
        match self.login_token(query, uid, &sid, lookup).await {
            Ok(token) => {
                session.insert("session_token".into(), token);
                session.insert(NEW_SID_KEY.into(), Value::String(sid));
                outcome.session = ROption::RSome(Value::Object(session).to_string().into());
            }
            Err(e) => {
                outcome.error = ROption::RSome(e);
            }
        }
    }

    /// After a websocket call on a database: a session the call changed to another user
    /// (a login over the socket) gets that user's session token for the socket's session
    /// id `sid` (a websocket cannot rotate its id), its statement run by `lookup`.
    /// `before`: the session's `uid` before the call.
    pub(super) async fn socket_login_token<L: Lookup>(
        &self,
        outcome: &mut Outcome,
        before: Option<i64>,
        sid: &str,
        lookup: &L,
    ) {
        if outcome.error.is_some() || sid.is_empty() {
            return;
        }
        let Some((query, mut session, uid)) = self.login_session(outcome) else {
            return;
        };
        if before == Some(uid) {
            return;
        }
        match self.login_token(query, uid, sid, lookup).await {
            Ok(token) => {
                session.insert("session_token".into(), token);
                outcome.session = ROption::RSome(Value::Object(session).to_string().into());
            }
            Err(e) => outcome.error = ROption::RSome(e),
        }
    }

    /// The token's statement, the session a handler or a websocket call left and its
    /// user's id, on a database that declares the statement, for a session with a user.
    fn login_session(&self, outcome: &Outcome) -> Option<(&str, Map<String, Value>, i64)> {
        let query = self.session_token_query.as_deref()?;
        self.db.as_ref()?;
        let text = outcome.session.as_ref().into_option()?;
        let Ok(Value::Object(session)) = serde_json::from_str::<Value>(text) else {
            return None;
        };
        let uid = session.get("uid").and_then(Value::as_i64)?;
        Some((query, session, uid))
    }

    /// The session token of `uid`, just logged in, for `sid` (`null` when the user is
    /// gone), from the row of `query` run by `lookup` in the request's transaction. A login may have
    /// rehashed the password in this transaction: the cached row goes (filled again by the
    /// next check, after the commit).
    #[allow(clippy::result_large_err)] // The error becomes the outcome's, moved once: unboxed.
    async fn login_token<L: Lookup>(
        &self,
        query: &str,
        uid: i64,
        sid: &str,
        lookup: &L,
    ) -> Result<Value, inphms_sdk::abi::ErrorInfo> {
        self.session_tokens.forget(uid);
        let row = token_row(lookup, query, uid).await?;
        Ok(row
            .map(|row| Value::String(inphms_sdk::session::session_token(&row, sid)))
            .unwrap_or(Value::Null))
    }
}

impl Application {
    /// For an `auth = "bearer"` route: `Ok(Some(uid))`, the API key's user;
    /// `Ok(None)` for another route, or a logged-in browser navigation without a key (then
    /// checked as `auth = "user"`); `Err(answer)` when refused (401 or 403, Odoo's messages).
    /// `session_uid`: the session's logged-in user. The key's query is run by `lookup`,
    /// inside the request's transaction.
    #[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
    pub(super) async fn check_bearer<L: Lookup>(
        &self,
        auth: &str,
        routing_type: &str,
        r: &HttpRequest<'_>,
        session_uid: Option<i64>,
        lookup: &L,
    ) -> Result<Option<i64>, Outcome> {
        if auth != "bearer" {
            return Ok(None);
        }
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|h| h.0.as_str() == name)
                .map(|h| h.1.as_str())
        };
        let token = bearer_key(r);
        let Some(key) = token else {
            if session_uid.is_none() {
                return Err(refuse(
                    routing_type,
                    401,
                    "User not authenticated, use the \"Authorization\" header",
                ));
            }
            let interactive = header("sec-fetch-dest") == Some("document")
                && header("sec-fetch-mode") == Some("navigate")
                && matches!(header("sec-fetch-site"), Some("none" | "same-origin"))
                && header("sec-fetch-user") == Some("?1");
            if !interactive {
                return Err(refuse(
                    routing_type,
                    403,
                    "Missing \"Authorization\" or Sec-headers for interactive usage",
                ));
            }
            return Ok(None);
        };
        let uid = match self.apikey_user(key, lookup).await {
            Ok(Some(uid)) => uid,
            Ok(None) => {
                tracing::info!(target: "inphms.http", "bearer request refused on {}: invalid API key", self.db.as_deref().unwrap_or(""));
                return Err(refuse(routing_type, 401, "Invalid apikey"));
            }
            Err(e) => {
                return Err(Outcome {
                    error: ROption::RSome(e),
                    ..Outcome::default()
                })
            }
        };
        if session_uid.is_some_and(|s| s != uid) {
            return Err(refuse(
                routing_type,
                403,
                "Session user does not match the used apikey",
            ));
        }
        Ok(Some(uid))
    }

    /// The user of the API key `key` (scope `rpc`, as Odoo's bearer check asks): a key
    /// that is not 40 hexadecimal characters is refused without a query.
    #[allow(clippy::result_large_err)] // The error becomes the outcome's, moved once.
    async fn apikey_user<L: Lookup>(
        &self,
        key: &str,
        lookup: &L,
    ) -> Result<Option<i64>, inphms_sdk::abi::ErrorInfo> {
        let Some(query) = self.apikey_query.as_deref() else {
            return Ok(None);
        };
        if self.db.is_none() || key.len() != 40 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let params = vec![
            AbiValue::Text(key[..8].into()),
            AbiValue::Text("rpc".into()),
        ];
        let rows = lookup.query(query, params).await?;
        for row in rows.rows.iter() {
            if let (Some(AbiValue::Int(uid)), Some(AbiValue::Text(hashed))) =
                (row.first(), row.get(1))
            {
                if base_identity::crypt::verify(key, hashed, base_identity::apikeys::KEY_ROUNDS)
                    .valid
                {
                    return Ok(Some(*uid));
                }
            }
        }
        Ok(None)
    }
}

impl Application {
    /// For an `auth = "public"` route on a database with nobody logged in: the public
    /// user's id (read once per database application), which the handler sees as the
    /// session's `uid`; never saved in the session ([`Application::forget_public_user`]).
    /// Its query run by `lookup` (awaited on an async socket callback's cursor).
    pub(super) async fn public_user<L: Lookup>(
        &self,
        auth: &str,
        r: &HttpRequest<'_>,
        lookup: &L,
    ) -> Option<i64> {
        if auth != "public" || self.db.is_none() || self.public_user_query.is_none() {
            return None;
        }
        let logged_in = session_uid(r.session.as_str()).is_some();
        self.public_user_of(auth, logged_in, lookup).await
    }

    /// [`Application::public_user`] for a session with a user or not (`logged_in`), its
    /// one query run by `lookup`.
    pub(super) async fn public_user_of<L: Lookup>(
        &self,
        auth: &str,
        logged_in: bool,
        lookup: &L,
    ) -> Option<i64> {
        if auth != "public" || self.db.is_none() || logged_in {
            return None;
        }
        let query = self.public_user_query.as_deref()?;
        if let Some(uid) = self.public_uid.get() {
            return *uid;
        }
        let uid = match lookup.query(query, Vec::new()).await {
            Ok(rows) => match rows.rows.first().and_then(|r| r.first()) {
                Some(AbiValue::Int(id)) => Some(*id),
                _ => None,
            },
            Err(e) => {
                tracing::warn!(target: "inphms.http", "the public user of {} cannot be read: {}", self.db.as_deref().unwrap_or(""), e.message);
                return None;
            }
        };
        *self.public_uid.get_or_init(|| uid)
    }

    /// The public user is never stored in a session (Odoo's `auth = "public"` sets the
    /// request's user only): a session the handler changed keeps `uid` null.
    pub(super) fn forget_public_user(outcome: &mut Outcome, public_uid: i64) {
        let Some(text) = outcome.session.as_ref().into_option() else {
            return;
        };
        if let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(text) {
            if map.get("uid").and_then(Value::as_i64) == Some(public_uid) {
                map.insert("uid".into(), Value::Null);
                outcome.session = ROption::RSome(Value::Object(map).to_string().into());
            }
        }
    }
}

/// The `uid` of session JSON `session`, when a user is logged in.
pub(super) fn session_uid(session: &str) -> Option<i64> {
    serde_json::from_str::<Value>(session)
        .ok()
        .and_then(|s| s.get("uid").and_then(Value::as_i64))
}

/// The key of an `Authorization: Bearer KEY` header, if any.
fn bearer_key<'r>(r: &HttpRequest<'r>) -> Option<&'r str> {
    let v = r
        .headers
        .iter()
        .find(|h| h.0.as_str() == "authorization")?
        .1
        .as_str();
    let (scheme, rest) = v.trim().split_once(char::is_whitespace)?;
    let key = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// The session a bearer request's handler sees: the request's, with the key's user as
/// `uid` (never saved).
pub(super) fn session_as(session: &str, uid: i64) -> String {
    let mut map = match serde_json::from_str::<Value>(session) {
        Ok(Value::Object(m)) => m,
        _ => crate::http::session::SessionData::default_session().into_map(),
    };
    map.insert("uid".into(), Value::from(uid));
    Value::Object(map).to_string()
}

/// A refusal of `auth = "bearer"`: for an http route, the status with a plain page (and
/// `WWW-Authenticate: Bearer` on 401); for a json route, the JSON-RPC error of Odoo's
/// werkzeug exception.
fn refuse(routing_type: &str, status: u16, message: &str) -> Outcome {
    if routing_type == "json" {
        let mut e = disp_error(ErrorKind::Access, message);
        e.name = if status == 401 {
            "werkzeug.exceptions.Unauthorized"
        } else {
            inphms_sdk::exceptions::ACCESS_DENIED
        }
        .into();
        return Outcome {
            error: ROption::RSome(e),
            ..Outcome::default()
        };
    }
    let mut headers = HeaderBlock::default();
    headers.push("Content-Type", "text/plain; charset=utf-8");
    if status == 401 {
        headers.push("WWW-Authenticate", "Bearer");
    }
    Outcome {
        response: ROption::RSome(HttpResponse {
            status,
            headers,
            body: RVec::from(message.as_bytes().to_vec()),
            stream: Default::default(),
        }),
        ..Outcome::default()
    }
}

/// The token of `uid` for `sid`, from the declared statement's row (run on the request's
/// cursor among `dbs'`, from a blocking thread); `None` when there is not exactly one row
/// (the user is gone).
#[allow(clippy::result_large_err)] // The error becomes the outcome's, moved once: unboxed.
pub(super) fn expected_token(
    dbs: &crate::sql_db::Databases,
    query: &str,
    uid: i64,
    sid: &str,
) -> Result<Option<String>, inphms_sdk::abi::ErrorInfo> {
    ready(expected_token_by(&Blocking(dbs), query, uid, sid))
        .unwrap_or_else(|| Err(not_ready_error()))
}

/// [`expected_token`] with the statement run by `lookup` (awaited on a runtime worker).
#[allow(clippy::result_large_err)] // The error becomes the outcome's, moved once: unboxed.
pub(super) async fn expected_token_by<L: Lookup>(
    lookup: &L,
    query: &str,
    uid: i64,
    sid: &str,
) -> Result<Option<String>, inphms_sdk::abi::ErrorInfo> {
    let row = token_row(lookup, query, uid).await?;
    Ok(row.map(|row| inphms_sdk::session::session_token(&row, sid)))
}

/// The row of the declared statement keying `uid`'s tokens (run by `lookup`); `None` when
/// there is not exactly one row (the user is gone).
#[allow(clippy::result_large_err)] // The error becomes the outcome's, moved once: unboxed.
async fn token_row<L: Lookup>(
    lookup: &L,
    query: &str,
    uid: i64,
) -> Result<Option<Vec<inphms_sdk::SqlValue>>, inphms_sdk::abi::ErrorInfo> {
    let rows = lookup.query(query, vec![AbiValue::Int(uid)]).await?;
    let [row] = rows.rows.as_slice() else {
        return Ok(None);
    };
    Ok(Some(row.iter().cloned().map(Into::into).collect()))
}

/// How the checks before a handler run their statements, in the request's transaction:
/// [`Blocking`] on the thread's cursor (a sync route's handler thread, a websocket call),
/// [`Awaited`] on an async route's cursor, so that no runtime worker waits for PostgreSQL.
/// The decisions are written once, over this.
pub(super) trait Lookup {
    /// Runs `sql` with `params`.
    fn query(
        &self,
        sql: &str,
        params: Vec<AbiValue>,
    ) -> impl std::future::Future<Output = Result<SqlRows, inphms_sdk::abi::ErrorInfo>> + Send;
}

/// The statements on the thread's current cursor (`sql_db::env::current`), waited for on
/// this thread: the future is ready when made.
pub(super) struct Blocking<'a>(pub(super) &'a crate::sql_db::Databases);

impl Lookup for Blocking<'_> {
    fn query(
        &self,
        sql: &str,
        params: Vec<AbiValue>,
    ) -> impl std::future::Future<Output = Result<SqlRows, inphms_sdk::abi::ErrorInfo>> + Send {
        let rows = db_env::current()
            .and_then(|cursor| self.0.cursors().execute(cursor, sql, RVec::from(params)))
            .map_err(|e| db_env::error_info(&e));
        std::future::ready(rows)
    }
}

/// The statements awaited on the lent cursor `cursor` of an async route
/// (`sql_db::env_async::execute`).
pub(super) struct Awaited<'a> {
    pub(super) dbs: &'a crate::sql_db::Databases,
    pub(super) cursor: u64,
}

impl Lookup for Awaited<'_> {
    fn query(
        &self,
        sql: &str,
        params: Vec<AbiValue>,
    ) -> impl std::future::Future<Output = Result<SqlRows, inphms_sdk::abi::ErrorInfo>> + Send {
        let rows = crate::sql_db::env_async::execute(
            self.dbs.cursors(),
            self.cursor,
            sql.to_owned(),
            params,
        );
        // Boxed: made only when a statement runs (rarely), it would otherwise size the
        // future of every async request (moved whole several times per request).
        Box::pin(async move { rows.await.map_err(|e| db_env::error_info(&e)) })
    }
}

/// The output of a future over [`Blocking`] (ready at its first poll); `None` would be a
/// future that waits, which [`Blocking`] never makes.
pub(super) fn ready<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
    futures_util::FutureExt::now_or_never(f)
}

/// The error of a [`ready`] future that was not (never expected).
fn not_ready_error() -> inphms_sdk::abi::ErrorInfo {
    disp::internal_error("a blocking check did not complete")
}

/// [`not_ready_error`] as the request's answer.
fn not_ready() -> Outcome {
    Outcome {
        error: ROption::RSome(not_ready_error()),
        ..Outcome::default()
    }
}

/// How many users' rows a database application keeps ([`TokenCache`]).
pub(super) const TOKEN_CACHE_SIZE: usize = 4096;

/// The rows of `session_token_query` by user id, as read (Odoo's
/// `@tools.ormcache('sid')` on `res.users._compute_session_token`), bounded (LRU,
/// [`TOKEN_CACHE_SIZE`]). Owned by a database's application, derived per registry: it is
/// emptied with the registry, which signaling renews when `base_cache_signaling_default`
/// (or any cache sequence) moved, as Odoo's `registry.clear_cache()` on a write of a token
/// field (`_get_invalidation_fields`) reaches every process. Writers of `res_users`' token
/// fields bump it after their commit (`inphms-host users`, as every committed addon
/// command on a database: `modules::run_addon_command`).
pub(super) struct TokenCache(std::sync::Mutex<lru::LruCache<i64, Arc<Vec<inphms_sdk::SqlValue>>>>);

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache(std::sync::Mutex::new(lru::LruCache::new(
            std::num::NonZeroUsize::new(TOKEN_CACHE_SIZE).expect("nonzero"),
        )))
    }
}

impl TokenCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, lru::LruCache<i64, Arc<Vec<inphms_sdk::SqlValue>>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token `uid`'s cached row gives `sid`, if a row is cached.
    fn expected(&self, uid: i64, sid: &str) -> Option<String> {
        let row = self.lock().get(&uid).cloned()?;
        Some(inphms_sdk::session::session_token(&row, sid))
    }

    fn put(&self, uid: i64, row: Vec<inphms_sdk::SqlValue>) {
        self.lock().put(uid, Arc::new(row));
    }

    fn forget(&self, uid: i64) {
        self.lock().pop(&uid);
    }
}

/// Odoo's `consteq`: equal strings, in time that depends only on their lengths.
pub(super) fn consteq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The result of [`Application::check_session_token`].
#[allow(clippy::large_enum_variant)] // The answer is moved once, as `check_bearer`'s: unboxed.
pub(super) enum TokenCheck {
    /// No user, or a matching token: the request goes on as it is.
    Fine,
    /// The session's token no longer matches: the handler runs with this session (logged
    /// out, its id to rotate), saved even if the handler leaves it unchanged.
    Stale(String),
    /// The answer ("Session expired", or the failed query's error).
    Refused(Outcome),
}

/// A session logged out (`keep_db`, as Odoo's `session.logout(keep_db=True)`): its `db` and
/// `debug` kept, the rest fresh.
fn logged_out(mut session: Map<String, Value>) -> Map<String, Value> {
    let db = session.remove("db").unwrap_or(Value::Null);
    let debug = session.remove("debug");
    let mut fresh = crate::http::session::SessionData::default_session().into_map();
    fresh.insert("db".into(), db);
    if let Some(debug) = debug {
        fresh.insert("debug".into(), debug);
    }
    fresh
}

/// "Session expired" for the logged-out session JSON `session` of a [`TokenCheck::Stale`]
/// check: what a websocket call answers whatever its route's auth, as Odoo's bus closes a
/// socket whose session no longer checks out (`SessionExpiredException`, close 4001).
pub(super) fn expired_json(session: &str) -> Outcome {
    match serde_json::from_str::<Value>(session) {
        Ok(Value::Object(m)) => expired(m),
        _ => expired(Map::new()),
    }
}

/// "Session expired", with the session logged out (`keep_db`, as Odoo's
/// `_authenticate_explicit` does) and its id rotated.
fn expired(session: Map<String, Value>) -> Outcome {
    Outcome {
        error: ROption::RSome(disp_error(ErrorKind::SessionExpired, "Session expired")),
        session: ROption::RSome(Value::Object(logged_out(session)).to_string().into()),
        rotate_session: true,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consteq_compares_whole_strings() {
        assert!(consteq("abc", "abc"));
        assert!(!consteq("abc", "abd"));
        assert!(!consteq("abc", "abcd"));
        assert!(consteq("", ""));
    }

    #[test]
    fn an_expired_session_keeps_db_and_debug_only() {
        let session: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "db": "d1", "debug": "1", "uid": 2, "login": "admin", "session_token": "x", "k": 1
        }))
        .unwrap();
        let out = expired(session);
        assert!(out.rotate_session);
        let e = out.error.as_ref().into_option().unwrap();
        assert_eq!(e.kind, ErrorKind::SessionExpired);
        let saved: Value =
            serde_json::from_str(out.session.as_ref().into_option().unwrap()).unwrap();
        assert_eq!(saved["db"], "d1");
        assert_eq!(saved["debug"], "1");
        assert_eq!(saved["uid"], Value::Null);
        assert_eq!(saved["session_token"], Value::Null);
        assert!(saved.get("k").is_none(), "{saved}");
    }

    #[test]
    fn a_bearer_session_view_carries_the_key_user() {
        let v: Value = serde_json::from_str(&session_as(r#"{"uid": null, "db": "d"}"#, 7)).unwrap();
        assert_eq!(
            (v["uid"].clone(), v["db"].clone()),
            (Value::from(7), Value::from("d"))
        );
        let v: Value = serde_json::from_str(&session_as("not json", 3)).unwrap();
        assert_eq!(v["uid"], 3);
    }

    #[test]
    fn refusals_have_odoo_shapes() {
        let http = refuse("http", 401, "Invalid apikey");
        let r = http.response.as_ref().into_option().unwrap();
        assert_eq!(r.status, 401);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == b"WWW-Authenticate" && v == b"Bearer"));
        let json = refuse("json", 403, "Session user does not match the used apikey");
        let e = json.error.as_ref().into_option().unwrap();
        assert_eq!(e.name.as_str(), inphms_sdk::exceptions::ACCESS_DENIED);
    }
}
