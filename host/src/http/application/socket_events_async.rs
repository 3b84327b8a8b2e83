//! Websocket event callbacks that are async (the SDK's `AsyncWsHandler`, a route's handler
//! answering with `Outcome::socket_events_async`): each callback's future, handed over by
//! the addon through its async entry point ([`ItemKind::AsyncSocketEvent`]), is polled on
//! the runtime, as an async route's ([`super::async_handler`]): no thread is held while it
//! awaits a host service (a timer, a statement).
//!
//! The rest is the sync callbacks' ([`super::socket_events`]): the socket's task delivers
//! the events one at a time and in order; before a callback the session is reloaded by the
//! socket's id, after it saved and merged (the store's calls run on the blocking pool, as
//! the sync callbacks'); identity is checked as for them, its statements (the session
//! token, never cached on a socket; the public user; a login's token) awaited on the
//! callback's cursor in its transaction: a check waiting for PostgreSQL holds no thread,
//! and a stale token still closes the socket with 4001. Each callback
//! runs in a transaction of its own on a database
//! ([`crate::sql_db::env_async::transaction`]: committed on `Ok`, rolled back on an error,
//! run again after a serialization failure), each poll with the generation and the cursor
//! as the thread's context ([`InContext`]: a swap leaves a running callback on its
//! generation) and with the callback's sends held ([`websocket::Held`], taken back after
//! each poll since the next may run on another worker): they go once it returns `Ok` and
//! commits, each socket's push gate awaited ([`websocket::flush_async`]). Past
//! `limit_time_real` the callback's future is dropped (its transaction rolled back, its
//! sends dropped) and the socket closed with 1011, as after a failure or a panic;
//! `on_close` still runs, once. A push stream a callback opens is not tracked as an async
//! route's (dropped at its end unless its answer sends it): a callback has no answer, so
//! the stream is the addon's, kept until closed and answered by a later response, as a
//! sync callback's (test `ws_async_push.rs`).

use super::async_handler::InContext;
use super::auth::TokenCheck;
use super::socket_events::{CallAs, SocketCall, SocketSession};
use super::*;
use inphms_sdk::abi::{SocketEvent, WsMessage};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// A callback's held sends, between its polls.
type HeldSends = Mutex<Vec<(u64, WsMessage)>>;

fn lock(held: &HeldSends) -> std::sync::MutexGuard<'_, Vec<(u64, WsMessage)>> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}

impl Application {
    /// Whether the socket's callbacks are async and polled here: the route's handler said
    /// so, and its addon has the async entry point (else the SDK runs each callback's
    /// future to its end on the thread of a sync call).
    pub(super) fn serves_async(&self, entry: &RouteEntry, outcome: &Outcome) -> bool {
        outcome.socket_events_async && self.has_async_entry(entry.addon)
    }

    /// [`Application::call_socket`] for an async callback: the session of `sid` reloaded,
    /// the callback polled here under `limit_time_real`, the session saved when it changed,
    /// then its held sends sent (or dropped after a failure).
    pub(super) async fn call_socket_async(
        self: &Arc<Self>,
        entry: &RouteEntry,
        mut request: OwnedRequest,
        event: SocketEvent,
        socket: u64,
        sid: Option<Arc<str>>,
    ) -> SocketCall {
        let stored = match &sid {
            Some(sid) => {
                let (app, sid) = (Arc::clone(self), Arc::clone(sid));
                let read = tokio::task::spawn_blocking(move || app.stored_socket_session(&sid));
                Some(read.await.unwrap_or(None))
            }
            None => None,
        };
        let session = SocketSession::reloaded(&mut request, stored);
        if session.skips(Some(&event)) {
            return SocketCall::skipped(request);
        }
        let held = HeldSends::default();
        let outcome = self
            .callback_limited(entry, &request, event, socket, &held)
            .await;
        // Saved on the blocking pool (a file), and only when there is something to save
        // (as `save_socket_session` decides first).
        let save = session.saves(&outcome)
            && sid.is_some()
            && entry.route.save_session
            && outcome.session.is_some();
        let (request, outcome, session) = if save {
            let (app, entry) = (Arc::clone(self), entry.clone());
            let saved = tokio::task::spawn_blocking(move || {
                let (mut request, outcome) = (request, outcome);
                let before = session.before.as_str();
                app.save_socket_session(&entry, sid.as_deref(), &mut request, &outcome, before);
                (request, outcome, session)
            })
            .await;
            match saved {
                Ok(done) => done,
                Err(e) => return SocketCall::failed("websocket session save failed", e),
            }
        } else {
            (request, outcome, session)
        };
        // Their sockets' push gates awaited: a gate's check holds no worker.
        let sends = std::mem::take(&mut *lock(&held));
        session
            .end_async(self, entry, request, outcome, sends)
            .await
    }

    /// The callback under `limit_time_real`: past it, its future is dropped (cancelled)
    /// and the outcome an error (the socket closed with 1011).
    async fn callback_limited(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: &OwnedRequest,
        event: SocketEvent,
        socket: u64,
        held: &HeldSends,
    ) -> Outcome {
        let limit = self.config.limit_time_real;
        let run = self.callback_in_transaction(entry, request, event, socket, held);
        if limit == 0 {
            return run.await;
        }
        match tokio::time::timeout(Duration::from_secs(limit), run).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!(target: "inphms.http", "websocket callback of {} exceeded limit_time_real ({limit}s); cancelled", entry.route.endpoint);
                lock(held).clear();
                error_outcome("Websocket callback timed out (limit_time_real)")
            }
        }
    }

    /// The callback in a transaction of its own when the generation has a database.
    async fn callback_in_transaction(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: &OwnedRequest,
        event: SocketEvent,
        socket: u64,
        held: &HeldSends,
    ) -> Outcome {
        let attempt = |cursor: Option<u64>| {
            let event = event.clone();
            async move {
                // A retried attempt sends only its own messages.
                lock(held).clear();
                self.poll_callback(entry, request, event, socket, cursor, held)
                    .await
            }
        };
        let Some(db) = self.db.clone() else {
            return attempt(None).await;
        };
        self.async_transaction(&db, entry.route.readonly, |cursor| attempt(Some(cursor)))
            .await
            .unwrap_or_else(|e| Outcome {
                error: ROption::RSome(crate::sql_db::env::error_info(&e)),
                ..Outcome::default()
            })
    }

    /// One attempt: identity checked (as `socket_call_now`'s for a callback), the addon's
    /// future polled to its end in the request's context, a login's token recorded.
    async fn poll_callback(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: &OwnedRequest,
        event: SocketEvent,
        socket: u64,
        cursor: Option<u64>,
        held: &HeldSends,
    ) -> Outcome {
        let Some(call_async) = self
            .addons
            .get(entry.addon as usize)
            .and_then(|a| a.library.module.call_async())
        else {
            return error_outcome("async entry point missing");
        };
        let auth = entry.route.auth.as_str();
        // Identity awaited on the callback's cursor, in its transaction: a check waiting
        // for PostgreSQL holds no thread. Without a database there is no statement to run.
        let identity = match cursor {
            Some(cursor) => {
                let lookup = super::auth::Awaited {
                    dbs: self.services.databases(),
                    cursor,
                };
                self.callback_identity(auth, request, &lookup).await
            }
            None => {
                let lookup = super::auth::Blocking(self.services.databases());
                InContext::sync(self, None, || {
                    super::auth::ready(self.callback_identity(auth, request, &lookup))
                })
                .unwrap_or_else(|| Err(Box::new(error_outcome("the checks did not complete"))))
            }
        };
        let call_as = match identity {
            Ok(call_as) => call_as,
            Err(refused) => return *refused,
        };
        // The views the future reads: declared before it, so dropped after it (also when
        // this future is dropped at `limit_time_real`), as `call_async` requires.
        let headers = request.header_views();
        let view = request.view(&headers);
        let view = call_as.request(view);
        let mut inv = Invocation::new(ItemKind::AsyncSocketEvent, entry.route.id);
        inv.request = ROption::RSome(view);
        inv.handle = socket;
        inv.socket_event = ROption::RSome(event);
        let future = InContext::sync(self, cursor, || call_async(inv));
        let mut outcome = InContext {
            app: self,
            cursor,
            endpoint: entry.route.endpoint.as_str(),
            future: std::mem::ManuallyDrop::new(HeldPolls { future, held }),
            // A callback has no answer to send a push stream with: those it opens are the
            // addon's (kept until closed and answered), as a sync callback's.
            opened: None,
        }
        .await;
        // A login's token awaited on the callback's cursor, before the commit; without a
        // database there is no statement to run.
        match cursor {
            Some(cursor) => {
                let lookup = super::auth::Awaited {
                    dbs: self.services.databases(),
                    cursor,
                };
                self.socket_call_done(call_as, &mut outcome, &lookup).await;
            }
            None => {
                let lookup = super::auth::Blocking(self.services.databases());
                if super::auth::ready(self.socket_call_done(call_as, &mut outcome, &lookup))
                    .is_none()
                {
                    return error_outcome("the checks did not complete");
                }
            }
        }
        outcome
    }
}

impl Application {
    /// Who a callback runs as (as `socket_call_now`'s for a callback): the session token
    /// checked (a stale one answers "Session expired", the socket then closed with 4001),
    /// then the public user of an `auth = "public"` route; their statements run by `lookup`.
    async fn callback_identity<L: super::auth::Lookup>(
        &self,
        auth: &str,
        request: &OwnedRequest,
        lookup: &L,
    ) -> Result<CallAs, Box<Outcome>> {
        let headers = request.header_views();
        let r = request.view(&headers);
        match self.session_token_of(auth, &r, false, lookup).await {
            TokenCheck::Fine => {}
            TokenCheck::Refused(refused) => return Err(Box::new(refused)),
            TokenCheck::Stale(session) => {
                return Err(Box::new(super::auth::expired_json(&session)))
            }
        }
        Ok(self.socket_call_as(auth, &r, lookup).await)
    }
}

/// A callback's future whose sends, during each poll, are held ([`websocket::Held`]) in
/// `held`: resumed on the polling thread before the poll, taken back after it.
struct HeldPolls<'h, F> {
    future: F,
    held: &'h HeldSends,
}

impl<F: Future<Output = Outcome> + Unpin> Future for HeldPolls<'_, F> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        let mut held = lock(this.held);
        let holding = websocket::Held::resume(std::mem::take(&mut *held));
        let polled = Pin::new(&mut this.future).poll(cx);
        *held = holding.take();
        polled
    }
}
