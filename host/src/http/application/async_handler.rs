//! Async routes (issue 17): the handler's future, handed over by the addon as async-ffi's
//! `FfiFuture`, polled on the runtime worker that serves the request: no thread hand-off,
//! no thread held while it awaits a host service (a timer, a statement). The guarantees
//! are the sync routes': each poll runs with the request's generation and cursor as the
//! thread's context ([`InContext`]), so a swap during an await leaves the request on its
//! generation; a panic is an error outcome (caught in the SDK, and here too: answered 500
//! and logged); past `limit_time_real` the future is dropped (cancelled: its transaction
//! rolled back) and the request answered 504 as a sync one. On a database, the handler
//! runs in a transaction of its own ([`crate::sql_db::env_async::transaction`]), with the
//! session token and the route's auth checked as for a sync route
//! ([`Application::before_db_handler`]), their statements (a token not cached, an API key,
//! the public user) awaited on the transaction's cursor, as the token of a login's new
//! session id after the handler ([`Application::after_db_handler`]), before the commit.
//!
//! Routes that go through addon code before their handler (an addon's dispatcher of their
//! type, `ir.http` hooks) are run as sync routes, on the blocking pool: the SDK then runs
//! the handler's future to its end on that thread.

use super::*;
use crate::http::stream_body;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

impl Application {
    /// Whether the route's handler future is polled on the runtime
    /// ([`Application::call_async`]): an async route of the built-in `http` or `json`
    /// type, without `ir.http` hooks, of an addon with the async entry point.
    pub(super) fn runs_async(&self, entry: &RouteEntry) -> bool {
        let route = &entry.route;
        route.asynchronous
            && !route.websocket
            && !self.hooked
            && !matches!(
                self.dispatchers.get(route.routing_type.as_str()),
                Some((addon, _)) if *addon != u32::MAX
            )
            && self.has_async_entry(entry.addon)
    }

    /// Whether the addon `addon` exports the async entry point (`call_async`).
    pub(super) fn has_async_entry(&self, addon: u32) -> bool {
        self.addons
            .get(addon as usize)
            .is_some_and(|a| a.library.module.call_async().is_some())
    }

    /// Runs an async route's handler under `limit_time_real`: past it, its future is
    /// dropped and the request answered 504 (the error of a sync route's timeout).
    pub(super) async fn call_async(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: OwnedRequest,
    ) -> Result<Outcome, inphms_sdk::abi::ErrorInfo> {
        let limit = self.config.limit_time_real;
        let run = self.run_async(entry, &request);
        if limit == 0 {
            return Ok(run.await);
        }
        match tokio::time::timeout(Duration::from_secs(limit), run).await {
            Ok(outcome) => Ok(outcome),
            Err(_) => {
                tracing::warn!(target: "inphms.http", "request to {} exceeded limit_time_real ({limit}s); its async handler was cancelled, answered 504", entry.route.endpoint);
                // As a sync route's timeout (`handler.rs`): Odoo's name for a time limit's
                // exception, which a json route's JSON-RPC error carries.
                let mut e = disp::internal_error("Request timed out (limit_time_real)");
                e.name = inphms_sdk::exceptions::INTERNAL_ERROR.into();
                Err(e)
            }
        }
    }

    /// The handler's outcome: its future polled here, in the route's transaction when the
    /// generation has a database.
    async fn run_async(self: &Arc<Self>, entry: &RouteEntry, request: &OwnedRequest) -> Outcome {
        let Some(db) = self.db.clone() else {
            return self.poll_handler(entry, request, None, None).await;
        };
        let auth = entry.route.auth.as_str();
        let routing_type = entry.route.routing_type.as_str();
        // The streamed body of the last attempt's answer: an attempt tried again (a
        // serialization failure, a read-only one that wrote) drops it, as the sync
        // routes' `stream_body::Opening::retry`.
        let last: std::sync::Mutex<Option<inphms_sdk::abi::BodyStream>> = Default::default();
        let streams = &self.services.streams;
        let addon = self.addons.get(entry.addon as usize);
        let take_last = || last.lock().unwrap_or_else(|e| e.into_inner()).take();
        let last = &last;
        let attempt = |cursor: u64| async move {
            if let Some(stream) = take_last() {
                stream_body::discard(streams, addon, &stream);
            }
            // The checks' statements awaited on the attempt's cursor: no worker waits.
            let lookup = super::auth::Awaited {
                dbs: self.services.databases(),
                cursor,
            };
            let checked = {
                let headers = request.header_views();
                let r = request.view(&headers);
                self.before_db_handler(auth, routing_type, &r, request.session_user(), &lookup)
                    .await
            };
            let auth_as = match checked {
                Ok(a) => a,
                Err(refused) => return *refused,
            };
            let mut outcome = self
                .poll_handler(entry, request, Some(&auth_as), Some(cursor))
                .await;
            // A login's token awaited on the cursor too, before the commit.
            self.after_db_handler(auth_as, &mut outcome, &lookup).await;
            *last.lock().unwrap_or_else(|e| e.into_inner()) =
                stream_body::answer_stream(&outcome).cloned();
            outcome
        };
        self.async_transaction(&db, entry.route.readonly, attempt)
            .await
            .unwrap_or_else(|e| {
                // The transaction failed after the handler's answer (its commit): not sent.
                if let Some(stream) = take_last() {
                    stream_body::discard(streams, addon, &stream);
                }
                Outcome {
                    error: ROption::RSome(crate::sql_db::env::error_info(&e)),
                    ..Outcome::default()
                }
            })
    }

    /// [`env_async::transaction`](crate::sql_db::env_async::transaction) on `db` with this
    /// generation's limits (Odoo's tries, `limit_time_real` as the statement timeout): an
    /// async route's and an async socket callback's.
    pub(super) async fn async_transaction<T, F, Fut>(
        &self,
        db: &str,
        readonly: bool,
        attempt: F,
    ) -> Result<T, crate::sql_db::DbError>
    where
        T: crate::sql_db::env::AttemptOutcome,
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = T>,
    {
        let limit = self.config.limit_time_real;
        crate::sql_db::env_async::transaction(
            self.services.databases(),
            db,
            readonly,
            crate::sql_db::env::MAX_TRIES,
            (limit > 0).then(|| Duration::from_secs(limit)),
            attempt,
        )
        .await
    }

    /// Calls the addon's async entry point for the route and polls the future it returns
    /// to its end, in the request's context.
    async fn poll_handler(
        self: &Arc<Self>,
        entry: &RouteEntry,
        request: &OwnedRequest,
        auth_as: Option<&super::handler::DbAuth>,
        cursor: Option<u64>,
    ) -> Outcome {
        let (addon, item) = (entry.addon, entry.route.id);
        let Some(call_async) = self
            .addons
            .get(addon as usize)
            .and_then(|a| a.library.module.call_async())
        else {
            return error_outcome("async entry point missing");
        };
        // An overriding route is called with the route it overrides (its `call_super`).
        let overridden = if self.supers.is_empty() {
            None
        } else {
            self.supers.get(&(addon, item)).copied()
        };
        // The views the future reads: declared before it, so dropped after it (also when
        // this future is dropped at `limit_time_real`), as `call_async` requires.
        let headers = request.header_views();
        let view = request.view(&headers);
        let view = match auth_as {
            Some(a) => a.request(view),
            None => view,
        };
        let future = InContext::sync(self, cursor, || {
            call_async(Invocation {
                request: ROption::RSome(view),
                endpoint: overridden.into(),
                ..Invocation::new(ItemKind::AsyncRoute, item)
            })
        });
        InContext {
            app: self,
            cursor,
            endpoint: entry.route.endpoint.as_str(),
            future: std::mem::ManuallyDrop::new(future),
            opened: Some(Vec::new()),
        }
        .await
    }
}

/// A handler's future polled with its request's context on the polling thread: the
/// generation ([`Running`]) and the cursor (`sql_db::env::with_current`); a panic that
/// escapes the poll (the SDK catches the handler's own) is the request's 500. Dropped
/// before its end (the request cancelled at `limit_time_real`), the future is dropped in
/// that context too: its drop runs the handler's code (its values' `Drop`).
pub(super) struct InContext<'a, F> {
    pub(super) app: &'a Arc<Application>,
    pub(super) cursor: Option<u64>,
    pub(super) endpoint: &'a str,
    pub(super) future: std::mem::ManuallyDrop<F>,
    /// The push streams the handler opened, dropped at its end unless its answer sends
    /// one (the sync routes' `stream_body::Opening`); `None`: not tracked (a websocket
    /// callback has no answer: the streams it opens are the addon's, as a sync one's).
    pub(super) opened: Option<Vec<u64>>,
}

impl<F> Drop for InContext<'_, F> {
    fn drop(&mut self) {
        let (app, cursor, future) = (self.app, self.cursor, &mut self.future);
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: dropped once, here; `future` is not used after.
            InContext::sync(app, cursor, || unsafe {
                std::mem::ManuallyDrop::drop(future)
            })
        }));
        if let Err(payload) = dropped {
            tracing::error!(target: "inphms.http", "the async handler of {} panicked while dropped", self.endpoint);
            std::mem::forget(payload);
        }
        // Cancelled: no answer sends what it opened.
        if let Some(opened) = self.opened.take() {
            stream_body::drop_unsent(&self.app.services.streams, opened, None);
        }
    }
}

impl<'a> InContext<'a, ()> {
    /// Runs `f` with the request's context on this thread.
    pub(super) fn sync<R>(app: &Arc<Application>, cursor: Option<u64>, f: impl FnOnce() -> R) -> R {
        let _running = Running::enter(Arc::clone(app));
        crate::sql_db::env::with_current(cursor, f)
    }
}

impl<F: Future<Output = Outcome> + Unpin> Future for InContext<'_, F> {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = &mut *self;
        let (app, cursor, future, opened) =
            (this.app, this.cursor, &mut *this.future, &mut this.opened);
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let poll = || InContext::sync(app, cursor, || Pin::new(future).poll(cx));
            match opened.as_mut() {
                Some(opened) => stream_body::opened_during(opened, poll),
                None => poll(),
            }
        }));
        let streams = &app.services.streams;
        let mut drop_unsent = |outcome: Option<&Outcome>| {
            if let Some(opened) = opened.take() {
                stream_body::drop_unsent(streams, opened, outcome);
            }
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(outcome)) => {
                drop_unsent(Some(&outcome));
                Poll::Ready(outcome)
            }
            Err(_) => {
                drop_unsent(None);
                tracing::error!(target: "inphms.http", "the async handler of {} panicked outside the SDK's guard (its poll failed); answered 500", this.endpoint);
                let mut e = disp::internal_error("Internal Server Error");
                e.kind = inphms_sdk::abi::ErrorKind::Panic;
                e.debug = "panicked: the handler's future panicked while polled".into();
                Poll::Ready(Outcome {
                    error: ROption::RSome(e),
                    ..Outcome::default()
                })
            }
        }
    }
}
