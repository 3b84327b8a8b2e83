//! A websocket route's handler and, when it registered event callbacks, the delivery of
//! its socket's events ([`Application::run_websocket`]).
//!
//! The route's handler runs first (on the blocking pool, or inline for a `blocking = false`
//! route outside a database), counted as holding a thread while it runs
//! (the handler slot [`websocket::reserve`] took). A loop handler returns when its socket is done: the
//! socket is then closed (1000, or 1011 after a failure). A handler that handed the socket
//! to a `WsHandler` returns at once with `Outcome::socket_events`: then one tokio task per
//! socket (no thread) waits for the socket's next event and calls the addon with it
//! ([`ItemKind::SocketEvent`]: `Open`, each `Message`, `Closed` last), one call at a time
//! and in order, each like a handler (the generation as the thread's context, a
//! transaction with a database). Async callbacks (`Outcome::socket_events_async`) are
//! polled on the runtime instead ([`super::socket_events_async`]).
//!
//! The session follows Odoo's `WebsocketRequest`: before each callback it is reloaded from
//! the store by the id the socket was opened with, so a callback sees what HTTP requests
//! changed meanwhile; when it is gone (logged out over HTTP, vacuumed) the socket is closed
//! with 4001 (`SESSION_EXPIRED`) and only `Closed` is delivered still. After a call that
//! changed it, the session is saved under the same id, and only while the store still has
//! that id: a logged-out id is never written again, and no id is ever rotated or drawn on
//! this path (a websocket cannot set a cookie; a socket opened without a session keeps the
//! default session, unsaved). Loading and saving touch files: they run on the blocking pool
//! with the call (a `blocking = false` route outside a database is called inline only when
//! its socket has no session to load). A failed callback closes the socket with 1011; its
//! later messages are dropped, and `Closed` is still delivered.
//!
//! A push to the socket from outside its calls (the bus's dispatcher) goes only while that
//! session holds ([`super::push_gate`]), else the socket is closed with 4001.
//!
//! Identity (issue 19) governs each call on a database as a request's: the session token of
//! a session with a user is checked in the call's transaction
//! ([`Application::check_session_token`]); a mismatch, whatever the route's auth, saves the
//! session logged out (under the same id) and closes the socket with Odoo's bus code 4001
//! (session expired). An `auth = "public"`
//! route's calls see the public user when nobody is logged in (never saved). A call that
//! logs a user in gets that user's session token for the socket's session id (the id is
//! not rotated). `auth = "bearer"` websockets are refused at the upgrade (403).

use super::*;
use inphms_sdk::abi::{ErrorKind, SocketEvent, WsEvent, WsMessage};

impl Application {
    /// Runs a websocket route's handler with its socket `socket`, then serves the socket's
    /// events when the handler registered callbacks, else closes it.
    pub(super) fn run_websocket(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: OwnedRequest,
        session: LoadedSession,
        opened: websocket::Opened,
    ) {
        let websocket::Opened {
            id: socket,
            handler: running,
        } = opened;
        let app = Arc::clone(self);
        let entry = entry.clone();
        // Only a known session is reloaded and saved: a new one has no cookie to go by.
        let sid: Option<Arc<str>> = session
            .sid
            .as_deref()
            .filter(|_| !session.is_new)
            .map(Arc::from);
        if let Some(sid) = &sid {
            let gate = super::push_gate::SessionGate::new(Arc::clone(self), Arc::clone(sid));
            websocket::set_push_gate(&self.services.websockets, socket, Arc::new(gate));
        }
        tokio::spawn(async move {
            // Boxed (here and below): a call's future lives only while it runs, not in the
            // task of every idle socket.
            let called =
                Box::pin(app.call_socket(&entry, request, None, socket, sid.clone())).await;
            drop(running);
            let (request, outcome) = (called.request, called.outcome);
            let code = match disp::outcome_error(&outcome) {
                None => {
                    if outcome.socket_events {
                        let asynchronous = app.serves_async(&entry, &outcome);
                        app.deliver_events(&entry, request, sid, socket, asynchronous)
                            .await;
                        return;
                    }
                    websocket::code::NORMAL
                }
                Some(e) if e.kind == ErrorKind::SessionExpired => websocket::code::SESSION_EXPIRED,
                Some(e) => {
                    tracing::error!(target: "inphms.http", "websocket handler {} failed: {}", entry.route.endpoint, if e.debug.is_empty() { e.message.as_str() } else { e.debug.as_str() });
                    websocket::code::INTERNAL_ERROR
                }
            };
            websocket::release(&app.services.websockets, socket, code);
        });
    }

    /// Delivers socket `socket`'s events to its callbacks (`asynchronous`: their futures
    /// polled here, [`Application::call_socket_async`]) until it closes, then forgets it.
    async fn deliver_events(
        self: &Arc<Self>,
        entry: &RouteEntry,
        mut request: OwnedRequest,
        sid: Option<Arc<str>>,
        socket: u64,
        asynchronous: bool,
    ) {
        let mut failed = false;
        let mut first = Some(SocketEvent::Open);
        loop {
            let event = match first.take() {
                Some(e) => e,
                None => match websocket::next(&self.services.websockets, socket).await {
                    WsEvent::Message(m) => SocketEvent::Message(m),
                    WsEvent::Closed(code, reason) => SocketEvent::Closed(code, reason),
                    WsEvent::Timeout => continue,
                },
            };
            let closing = matches!(event, SocketEvent::Closed(..));
            if failed && !closing {
                continue;
            }
            let called = if asynchronous {
                Box::pin(self.call_socket_async(entry, request, event, socket, sid.clone())).await
            } else {
                Box::pin(self.call_socket(entry, request, Some(event), socket, sid.clone())).await
            };
            request = called.request;
            if called.expired && !closing {
                tracing::info!(target: "inphms.http", "websocket of {}: session expired (logged out), closed with 4001", entry.route.endpoint);
                failed = true;
                websocket::shut(
                    &self.services.websockets,
                    socket,
                    websocket::code::SESSION_EXPIRED,
                    "Session expired",
                );
                continue;
            }
            if let Some(e) = disp::outcome_error(&called.outcome) {
                tracing::error!(target: "inphms.http", "websocket callback of {} failed: {}", entry.route.endpoint, if e.debug.is_empty() { e.message.as_str() } else { e.debug.as_str() });
                if !closing {
                    failed = true;
                    websocket::shut(
                        &self.services.websockets,
                        socket,
                        websocket::code::INTERNAL_ERROR,
                        "",
                    );
                }
            }
            if closing {
                break;
            }
        }
        websocket::release(&self.services.websockets, socket, websocket::code::NORMAL);
    }

    /// Calls the route's handler (`event` `None`) or its socket callback with `event`,
    /// with the session of `sid` reloaded before a callback and saved after a call that
    /// changed it ([`Application::call_with_session`]): inline for a `blocking = false`
    /// route outside a database whose socket has no session, else on the blocking pool.
    /// The request comes back with the outcome, for the next call.
    async fn call_socket(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: OwnedRequest,
        event: Option<SocketEvent>,
        socket: u64,
        sid: Option<Arc<str>>,
    ) -> SocketCall {
        if !entry.route.blocking && self.db.is_none() && sid.is_none() {
            return self.call_with_session(entry, request, event, socket, None);
        }
        let app = Arc::clone(self);
        let entry = entry.clone();
        let joined = tokio::task::spawn_blocking(move || {
            // The route's handler, on a thread of its own: its sends on its socket wait for
            // room (a loop handler's backpressure).
            let _loop = event
                .is_none()
                .then(|| websocket::LoopHandlerCall::enter(socket));
            app.call_with_session(&entry, request, event, socket, sid.as_deref())
        })
        .await;
        // The task itself panicked: the addon's panics are caught in the addon.
        joined.unwrap_or_else(|e| SocketCall::failed("websocket task failed", e))
    }

    /// On this thread: reloads the session of `sid` before a callback (`event` not `None`;
    /// the handler runs right after the upgrade loaded it), calls, and saves the session
    /// when the call changed it. A session gone from the store skips the call (`expired`),
    /// but for `Closed`, which is still delivered with the last session seen, unsaved.
    fn call_with_session(
        self: &Arc<Self>,
        entry: &RouteEntry,
        mut request: OwnedRequest,
        event: Option<SocketEvent>,
        socket: u64,
        sid: Option<&str>,
    ) -> SocketCall {
        let stored = match (sid, &event) {
            (Some(sid), Some(_)) => Some(self.stored_socket_session(sid)),
            _ => None,
        };
        let session = SocketSession::reloaded(&mut request, stored);
        if session.skips(event.as_ref()) {
            return SocketCall::skipped(request);
        }
        // A callback's sends are held until its transaction commits and its session is
        // saved (`websocket::deferred`); the route's handler (a loop) sends as it goes.
        let held = event.is_some().then(websocket::Held::begin);
        let outcome = self.socket_call_now(entry, &request, event, socket);
        if session.saves(&outcome) {
            self.save_socket_session(entry, sid, &mut request, &outcome, &session.before);
        }
        session.end(self, entry, request, outcome, held)
    }

    /// The stored session of id `sid`, as JSON: `None` when it is gone (logged out over
    /// HTTP, vacuumed) or unreadable. Reads a file: on the blocking pool.
    pub(super) fn stored_socket_session(&self, sid: &str) -> Option<String> {
        match self.sessions.get(sid) {
            Ok(Some(stored)) => Some(stored.json.to_string()),
            _ => None,
        }
    }

    /// The call itself, on this thread: with this generation as the thread's context, in a
    /// transaction when the application has a database.
    fn socket_call_now(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: &OwnedRequest,
        event: Option<SocketEvent>,
        socket: u64,
    ) -> Outcome {
        let (addon, item) = (entry.addon, entry.route.id);
        let routing_type = entry.route.routing_type.as_str();
        let auth = entry.route.auth.as_str();
        let invoke = |r: HttpRequest<'_>| match &event {
            None => self.dispatch_route(addon, item, auth, routing_type, r),
            Some(e) => self.invoke_socket_event(addon, item, socket, e.clone(), r),
        };
        let call = || {
            websocket::Held::restart();
            request.with_view(|r| {
                // Identity, as `run_handler`'s (bearer never gets here: refused at the
                // upgrade). A stale session token: the route's handler (the handshake, an
                // HTTP request) goes on as anonymous with the session logged out, as
                // `run_handler` does, but the stale session is not written back (the next
                // HTTP request logs it out under a new id: a websocket cannot set a cookie);
                // a later callback closes the socket (4001, as Odoo's bus), whatever the
                // route's auth.
                let stale = match self.check_session_token(auth, &r, false) {
                    super::auth::TokenCheck::Fine => None,
                    super::auth::TokenCheck::Refused(refused) => return refused,
                    super::auth::TokenCheck::Stale(session) if event.is_some() => {
                        return super::auth::expired_json(&session)
                    }
                    super::auth::TokenCheck::Stale(session) => Some(session),
                };
                let r = match &stale {
                    Some(session) => HttpRequest {
                        session: session.as_str().into(),
                        ..r
                    },
                    None => r,
                };
                let lookup = super::auth::Blocking(self.services.databases());
                let Some(call_as) = super::auth::ready(self.socket_call_as(auth, &r, &lookup))
                else {
                    return error_outcome("the checks did not complete");
                };
                let mut o = invoke(call_as.request(r));
                if super::auth::ready(self.socket_call_done(call_as, &mut o, &lookup)).is_none() {
                    return error_outcome("the checks did not complete");
                }
                o
            })
        };
        let _running = Running::enter(Arc::clone(self));
        let outcome = match self.db.clone() {
            Some(db) => crate::sql_db::env::transaction(
                self.services.databases(),
                &db,
                entry.route.readonly,
                crate::sql_db::env::MAX_TRIES,
                Some(Duration::from_secs(self.config.limit_time_real)),
                call,
            )
            .unwrap_or_else(|e| Outcome {
                error: ROption::RSome(crate::sql_db::env::error_info(&e)),
                ..Outcome::default()
            }),
            None => call(),
        };
        outcome
    }

    /// Calls the socket callbacks of route `item` of `addon` with `event`.
    fn invoke_socket_event(
        &self,
        addon: u32,
        item: u32,
        socket: u64,
        event: SocketEvent,
        request: HttpRequest<'_>,
    ) -> Outcome {
        let Some(a) = self.addons.get(addon as usize) else {
            return error_outcome("websocket addon missing");
        };
        let mut inv = Invocation::new(ItemKind::SocketEvent, item);
        inv.request = ROption::RSome(request);
        inv.handle = socket;
        inv.socket_event = ROption::RSome(event);
        (a.library.module.call())(inv)
    }

    /// Saves the session a websocket call changed (when the route may) under its id `sid`,
    /// only while the store still has that id (an HTTP logout deleted it: never written
    /// again), and hands the new content to the next call. Never rotates nor draws an id.
    pub(super) fn save_socket_session(
        &self,
        entry: &RouteEntry,
        sid: Option<&str>,
        request: &mut OwnedRequest,
        outcome: &Outcome,
        before: &str,
    ) {
        if !entry.route.save_session {
            return;
        }
        let Some(json) = outcome.session.as_ref().into_option() else {
            return;
        };
        let Some(sid) = sid else {
            tracing::debug!(target: "inphms.http", "websocket of {}: no session cookie, session change not saved", entry.route.endpoint);
            return;
        };
        let after = match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                tracing::warn!(target: "inphms.http", "websocket callback of {} returned a session that is not a JSON object; not saved", entry.route.endpoint);
                return;
            }
        };
        let before = match serde_json::from_str::<serde_json::Value>(before) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        // Read, merged and written under the id's lock: a change saved meanwhile by a
        // request or another socket is kept (`session_merge`).
        let _locked = self.services.session_saves.lock(sid);
        let current = match self.sessions.get(sid) {
            Ok(Some(current)) => current.data.0.clone(),
            // Logged out (or vacuumed) during the call: not resurrected.
            _ => return,
        };
        let merged = crate::http::session_merge::merge(&before, &after, current);
        let data = crate::http::session::SessionData::from_map(merged);
        match self.sessions.update(sid, &data) {
            Ok(true) => request.set_session(serde_json::Value::Object(data.0).to_string()),
            Ok(false) => {}
            Err(e) => tracing::error!(target: "inphms.http", "websocket session not saved: {e}"),
        }
    }
}

/// Who a websocket call runs as, decided before it (after the session token's check).
pub(super) enum CallAs {
    /// The public user of an `auth = "public"` route, in this session (never saved).
    Public(String, i64),
    /// The session's own user (`None`: nobody), and the session's id, for a login's token.
    Session(Option<i64>, String),
}

impl CallAs {
    /// The request `r` as the call sees it (the public user's session, for one).
    pub(super) fn request<'a>(&'a self, r: HttpRequest<'a>) -> HttpRequest<'a> {
        match self {
            CallAs::Public(session, _) => HttpRequest {
                session: session.as_str().into(),
                ..r
            },
            CallAs::Session(..) => r,
        }
    }
}

impl Application {
    /// Who a websocket call of an `auth` route with request `r` runs as: the public user
    /// when nobody is logged in on an `auth = "public"` route, else the session's user.
    /// The public user's statement is run by `lookup` ([`super::auth::Blocking`] for a sync
    /// call, awaited on an async callback's cursor).
    pub(super) async fn socket_call_as<L: super::auth::Lookup>(
        &self,
        auth: &str,
        r: &HttpRequest<'_>,
        lookup: &L,
    ) -> CallAs {
        match self.public_user(auth, r, lookup).await {
            Some(public) => {
                CallAs::Public(super::auth::session_as(r.session.as_str(), public), public)
            }
            None => CallAs::Session(
                super::auth::session_uid(r.session.as_str()),
                r.session_id.as_str().to_owned(),
            ),
        }
    }

    /// After a websocket call run as `call_as`: the public user forgotten (never saved),
    /// or a login's session token recorded for the socket's session id, its statement run
    /// by `lookup` ([`super::auth::Blocking`] for a sync callback, awaited for an async one).
    pub(super) async fn socket_call_done<L: super::auth::Lookup>(
        &self,
        call_as: CallAs,
        outcome: &mut Outcome,
        lookup: &L,
    ) {
        match call_as {
            CallAs::Public(_, public) => Application::forget_public_user(outcome, public),
            CallAs::Session(before, sid) => {
                self.socket_login_token(outcome, before, &sid, lookup).await
            }
        }
    }
}

/// A socket call's session, reloaded before it and saved after it: the steps the sync
/// callbacks ([`Application::call_with_session`], on a thread of their own) and the async
/// ones ([`Application::call_socket_async`], the store's calls on the blocking pool) share.
pub(super) struct SocketSession {
    /// The session was gone from the store (the call is then skipped, but for `Closed`).
    expired: bool,
    /// The session as the call got it: what its changes are merged against.
    pub(super) before: String,
}

impl SocketSession {
    /// Before a call: `stored`, the store's session of the socket's id (`Some(None)`: gone;
    /// `None`: not reloaded, for the route's handler or a socket without a session), put
    /// in `request`.
    pub(super) fn reloaded(request: &mut OwnedRequest, stored: Option<Option<String>>) -> Self {
        let expired = matches!(stored, Some(None));
        if let Some(Some(json)) = stored {
            request.set_session(json);
        }
        SocketSession {
            expired,
            before: request.session().to_owned(),
        }
    }

    /// Whether the call of `event` is skipped: the session is gone and `event` is not
    /// `Closed` (delivered still, with the last session seen, unsaved).
    pub(super) fn skips(&self, event: Option<&SocketEvent>) -> bool {
        self.expired && !matches!(event, Some(SocketEvent::Closed(..)))
    }

    /// Whether the session the call answered `outcome` with is saved (merged; then only
    /// while the store has its id, [`Application::save_socket_session`]): after a call
    /// that succeeded or found the session token stale (the session logged out), unless
    /// the session was gone before the call.
    pub(super) fn saves(&self, outcome: &Outcome) -> bool {
        !self.expired && (token_expired(outcome) || disp::outcome_error(outcome).is_none())
    }

    /// The call's result: its `held` sends sent when it succeeded (its transaction
    /// committed, its session saved), else dropped.
    pub(super) fn end(
        self,
        app: &Application,
        entry: &RouteEntry,
        request: OwnedRequest,
        outcome: Outcome,
        held: Option<websocket::Held>,
    ) -> SocketCall {
        if let Some(held) = held {
            if disp::outcome_error(&outcome).is_none() {
                held.flush(&app.services.websockets);
            } else {
                dropped_sends(entry, held.discard());
            }
        }
        self.call(request, outcome)
    }

    /// [`SocketSession::end`] for an async callback: its `held` sends (taken back from
    /// its polls) sent when it succeeded, each socket's push gate awaited
    /// ([`websocket::flush_async`]: a gate's check holds no runtime worker), else dropped.
    pub(super) async fn end_async(
        self,
        app: &Application,
        entry: &RouteEntry,
        request: OwnedRequest,
        outcome: Outcome,
        held: Vec<(u64, WsMessage)>,
    ) -> SocketCall {
        if disp::outcome_error(&outcome).is_none() {
            websocket::flush_async(&app.services.websockets, held).await;
        } else {
            dropped_sends(entry, held.len());
        }
        self.call(request, outcome)
    }

    /// The call's result, once its sends are dealt with.
    fn call(self, request: OwnedRequest, outcome: Outcome) -> SocketCall {
        let expired = self.expired || token_expired(&outcome);
        SocketCall {
            request,
            outcome,
            expired,
        }
    }
}

/// Logs the `dropped` sends of a failed callback of `entry`.
fn dropped_sends(entry: &RouteEntry, dropped: usize) {
    if dropped > 0 {
        tracing::debug!(target: "inphms.http", "websocket callback of {} failed: its {dropped} sends dropped", entry.route.endpoint);
    }
}

/// Whether `outcome` answers a stale session token (identity): "Session expired" with the
/// session logged out, saved (under the same id) as a successful call's, then 4001.
fn token_expired(outcome: &Outcome) -> bool {
    matches!(
        disp::outcome_error(outcome),
        Some(e) if e.kind == ErrorKind::SessionExpired
    )
}

/// A websocket call's result: the request back (for the next call), the outcome, and
/// whether the session was gone (the call then did not run, but for `Closed`).
pub(super) struct SocketCall {
    pub(super) request: OwnedRequest,
    pub(super) outcome: Outcome,
    pub(super) expired: bool,
}

impl SocketCall {
    /// A call skipped: its session was gone.
    pub(super) fn skipped(request: OwnedRequest) -> Self {
        SocketCall {
            request,
            outcome: Outcome::default(),
            expired: true,
        }
    }

    /// A call whose task failed (panicked on the blocking pool): the request went with
    /// it; the socket is closed by the caller (an error outcome).
    pub(super) fn failed(what: &str, e: tokio::task::JoinError) -> Self {
        SocketCall {
            request: OwnedRequest::capture(&HttpRequest::default(), None),
            outcome: error_outcome(&format!("{what}: {e}")),
            expired: false,
        }
    }
}
