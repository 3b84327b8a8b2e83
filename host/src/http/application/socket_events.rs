//! A websocket route's handler and, when it registered event callbacks, the delivery of
//! its socket's events ([`Application::run_websocket`]).
//!
//! The route's handler runs first (on the blocking pool, or inline for a `blocking = false`
//! route outside a database), counted as holding a thread while it runs
//! ([`websocket::handler_running`]). A loop handler returns when its socket is done: the
//! socket is then closed (1000, or 1011 after a failure). A handler that handed the socket
//! to a `WsHandler` returns at once with `Outcome::socket_events`: then one tokio task per
//! socket (no thread) waits for the socket's next event and calls the addon with it
//! ([`ItemKind::SocketEvent`]: `Open`, each `Message`, `Closed` last), one call at a time
//! and in order, each like a handler (the generation as the thread's context, a
//! transaction with a database). After each call that changed the session, and after the
//! route's handler, the session is saved (never rotated: a websocket cannot set a cookie)
//! and the next call sees it. A failed callback closes the socket with 1011; its later
//! messages are dropped, and `Closed` is still delivered.
//!
//! Identity (issue 19) governs each call on a database as a request's: an `auth = "user"`
//! route's session token is checked in the call's transaction
//! ([`Application::check_session_token`]); a mismatch saves the session logged out and
//! closes the socket with Odoo's bus code 4001 (session expired). An `auth = "public"`
//! route's calls see the public user when nobody is logged in (never saved). A call that
//! logs a user in gets that user's session token for the socket's session id (the id is
//! not rotated). `auth = "bearer"` websockets are refused at the upgrade (403).

use super::*;
use inphms_sdk::abi::{ErrorKind, SocketEvent, WsEvent};

impl Application {
    /// Runs a websocket route's handler with its socket `socket`, then serves the socket's
    /// events when the handler registered callbacks, else closes it.
    pub(super) fn run_websocket(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: OwnedRequest,
        session: LoadedSession,
        socket: u64,
        secure: bool,
    ) {
        let app = Arc::clone(self);
        let entry = entry.clone();
        tokio::spawn(async move {
            let running = websocket::handler_running(&app.services.websockets);
            let (mut request, mut outcome) = app.call_socket(&entry, request, None, socket).await;
            drop(running);
            let code = match disp::outcome_error(&outcome) {
                None => {
                    app.save_socket_session(&entry, &session, &mut request, &mut outcome, secure);
                    if outcome.socket_events {
                        app.deliver_events(&entry, request, session, socket, secure)
                            .await;
                        return;
                    }
                    websocket::code::NORMAL
                }
                Some(e) if e.kind == ErrorKind::SessionExpired => {
                    app.save_socket_session(&entry, &session, &mut request, &mut outcome, secure);
                    websocket::code::SESSION_EXPIRED
                }
                Some(e) => {
                    tracing::error!(target: "inphms.http", "websocket handler {} failed: {}", entry.route.endpoint, if e.debug.is_empty() { e.message.as_str() } else { e.debug.as_str() });
                    websocket::code::INTERNAL_ERROR
                }
            };
            websocket::release(&app.services.websockets, socket, code);
        });
    }

    /// Delivers socket `socket`'s events to its callbacks until it closes, then forgets it.
    async fn deliver_events(
        self: &Arc<Self>,
        entry: &RouteEntry,
        mut request: OwnedRequest,
        session: LoadedSession,
        socket: u64,
        secure: bool,
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
            let (r, mut outcome) = self.call_socket(entry, request, Some(event), socket).await;
            request = r;
            match disp::outcome_error(&outcome) {
                Some(e) if e.kind == ErrorKind::SessionExpired => {
                    self.save_socket_session(entry, &session, &mut request, &mut outcome, secure);
                    if !closing {
                        failed = true;
                        websocket::shut(
                            &self.services.websockets,
                            socket,
                            websocket::code::SESSION_EXPIRED,
                            "Session expired",
                        );
                    }
                }
                Some(e) => {
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
                None => {
                    self.save_socket_session(entry, &session, &mut request, &mut outcome, secure)
                }
            }
            if closing {
                break;
            }
        }
        websocket::release(&self.services.websockets, socket, websocket::code::NORMAL);
    }

    /// Calls the route's handler (`event` `None`) or its socket callback with `event`:
    /// inline for a `blocking = false` route outside a database, else on the blocking pool.
    /// The request comes back with the outcome, for the next call.
    async fn call_socket(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: OwnedRequest,
        event: Option<SocketEvent>,
        socket: u64,
    ) -> (OwnedRequest, Outcome) {
        if !entry.route.blocking && self.db.is_none() {
            let outcome = self.socket_call_now(entry, &request, event, socket);
            return (request, outcome);
        }
        let app = Arc::clone(self);
        let entry = entry.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let outcome = app.socket_call_now(&entry, &request, event, socket);
            (request, outcome)
        })
        .await;
        match joined {
            Ok(done) => done,
            // The task itself panicked (the addon's panics are caught in the addon): the
            // request went with it; the socket is closed by the caller (an error outcome).
            Err(e) => (
                OwnedRequest::capture(&HttpRequest::default(), None),
                error_outcome(&format!("websocket task failed: {e}")),
            ),
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
            None => self.invoke(addon, item, routing_type, r),
            Some(e) => self.invoke_socket_event(addon, item, socket, e.clone(), r),
        };
        let call = || {
            request.with_view(|r| {
                // Identity, as `run_handler`'s (bearer never gets here: refused at the
                // upgrade).
                // A stale session closes the socket whatever the route's auth (4001, as
                // Odoo's bus), instead of going on as anonymous as an HTTP request does.
                match self.check_session_token(auth, &r) {
                    super::auth::TokenCheck::Fine => {}
                    super::auth::TokenCheck::Refused(refused) => return refused,
                    super::auth::TokenCheck::Stale(session) => {
                        return super::auth::expired_json(&session)
                    }
                }
                if let Some(public) = self.public_user(auth, &r) {
                    let session = super::auth::session_as(r.session.as_str(), public);
                    let as_public = HttpRequest {
                        session: session.as_str().into(),
                        ..r
                    };
                    let mut o = invoke(as_public);
                    Application::forget_public_user(&mut o, public);
                    return o;
                }
                let before = super::auth::session_uid(r.session.as_str());
                let sid = r.session_id.as_str().to_owned();
                let mut o = invoke(r);
                self.socket_login_token(&mut o, before, &sid);
                o
            })
        };
        let _running = Running::enter(Arc::clone(self));
        match self.db.clone() {
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
        }
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

    /// Saves the session a websocket call changed (when the route may), under the same id,
    /// and hands the new content to the next call.
    fn save_socket_session(
        &self,
        entry: &RouteEntry,
        session: &LoadedSession,
        request: &mut OwnedRequest,
        outcome: &mut Outcome,
        secure: bool,
    ) {
        if !entry.route.save_session {
            return;
        }
        let Some(json) = outcome
            .session
            .as_ref()
            .into_option()
            .map(|j| j.to_string())
        else {
            return;
        };
        outcome.rotate_session = false;
        if session.save(&*self.sessions, outcome, secure).is_some() {
            request.set_session(json);
        }
    }
}
