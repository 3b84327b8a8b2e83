//! The route's handler run: inline on the runtime's thread (`blocking = false`), or on the
//! blocking pool under `limit_time_real` with its [`StartGate`], and the call through the
//! addon's dispatcher or straight to the handler.

use super::start_gate::{Handed, StartGate};
use super::*;
use crate::http::request_session::SessionUser;

impl Application {
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
                            let lookup = super::auth::Blocking(app.services.databases());
                            let checked = super::auth::ready(app.before_db_handler(
                                auth.as_str(),
                                routing_type.as_str(),
                                &r,
                                request.session_user(),
                                &lookup,
                            ));
                            let auth_as = match checked {
                                Some(Ok(a)) => a,
                                Some(Err(refused)) => return *refused,
                                None => return error_outcome("the checks did not complete"),
                            };
                            let mut outcome = app.dispatch_route(
                                addon,
                                item,
                                auth.as_str(),
                                routing_type.as_str(),
                                auth_as.request(r),
                            );
                            let after = app.after_db_handler(auth_as, &mut outcome, &lookup);
                            if super::auth::ready(after).is_none() {
                                return error_outcome("the checks did not complete");
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

    /// Before a handler on a database: the session token's check (a stale session is
    /// logged out, the request going on anonymous, or refused), then the route's `auth`
    /// (`bearer`'s key, `public`'s user). The refusal (boxed: it is large) is the request's
    /// answer. `user`: the session's `uid` and token (`None`: its JSON is no object). Sync
    /// routes run the statements on their thread ([`super::auth::Blocking`]), async ones
    /// await them ([`super::auth::Awaited`]): the same decisions, and
    /// [`Application::after_db_handler`] after both.
    pub(super) async fn before_db_handler<L: super::auth::Lookup>(
        &self,
        auth: &str,
        routing_type: &str,
        r: &HttpRequest<'_>,
        user: Option<SessionUser>,
        lookup: &L,
    ) -> Result<DbAuth, Box<Outcome>> {
        use super::auth::TokenCheck;
        // Every route's session with a user has its token checked first; a stale one is
        // logged out and the request goes on anonymous.
        let checked = match &user {
            Some(user) => {
                self.session_token_checked(auth, r, user, true, lookup)
                    .await
            }
            None if self.session_token_query.is_some() && self.db.is_some() => {
                TokenCheck::Refused(super::auth::expired_json(""))
            }
            None => TokenCheck::Fine,
        };
        let (stale, user) = match checked {
            TokenCheck::Fine => (None, user.unwrap_or_default()),
            // Logged out: nobody.
            TokenCheck::Stale(fresh) => (Some(fresh), SessionUser::default()),
            TokenCheck::Refused(refused) => return Err(Box::new(refused)),
        };
        let r = match &stale {
            Some(fresh) => HttpRequest {
                session: fresh.as_str().into(),
                ..*r
            },
            None => *r,
        };
        let session_uid = user.logged_in();
        let bearer = self
            .check_bearer(auth, routing_type, &r, session_uid, lookup)
            .await
            .map_err(Box::new)?;
        let public = self
            .public_user_of(auth, session_uid.is_some(), lookup)
            .await;
        let (user, session) = if let Some(public) = public {
            (
                AuthUser::Public(public),
                Some(super::auth::session_as(r.session.as_str(), public)),
            )
        } else if let Some(uid) = bearer {
            (
                AuthUser::Bearer,
                Some(super::auth::session_as(r.session.as_str(), uid)),
            )
        } else {
            (AuthUser::Session, None)
        };
        Ok(DbAuth {
            stale,
            user,
            session,
        })
    }

    /// After a handler on a database (see [`Application::before_db_handler`]): the
    /// public user forgotten, a bearer request's session not saved, a login's token
    /// computed ([`Application::after_handler`], its statement run by `lookup` as the
    /// checks' before the handler), a stale session saved logged out under a new id.
    pub(super) async fn after_db_handler<L: super::auth::Lookup>(
        &self,
        auth_as: DbAuth,
        outcome: &mut Outcome,
        lookup: &L,
    ) {
        match auth_as.user {
            AuthUser::Public(public) => Application::forget_public_user(outcome, public),
            AuthUser::Bearer => {
                // A bearer request's session is never saved.
                outcome.session = ROption::RNone;
                outcome.rotate_session = false;
                self.after_handler(outcome, lookup).await;
            }
            AuthUser::Session => self.after_handler(outcome, lookup).await,
        }
        if let Some(fresh) = auth_as.stale {
            // The logged-out session is saved under a new id even when the handler left
            // it unchanged.
            if outcome.session.is_none() {
                outcome.session = ROption::RSome(fresh.into());
            }
            outcome.rotate_session = true;
        }
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
        !entry.route.blocking
            && !entry.route.asynchronous
            && !entry.route.websocket
            && self.db.is_none()
            && !self.hooked
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
                // A json route answers the JSON-RPC error (HTTP 200, as every Odoo json error).
                let answered = if entry.route.routing_type.as_str() == "json" {
                    "a JSON-RPC error"
                } else {
                    "504"
                };
                if gate.give_up() {
                    // Still queued for a thread of the pool: it will never start (its task
                    // returns at once when it gets one), and its request, with its body and
                    // their charges to the budgets, is already dropped.
                    tracing::warn!(target: "inphms.http", "request to {} waited past limit_time_real ({limit}s) for a worker thread; answered {answered}, its handler not run", entry.route.endpoint);
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
                    tracing::warn!(target: "inphms.http", "request to {} exceeded limit_time_real ({limit}s); answered {answered}", entry.route.endpoint);
                }
                // Odoo's name for a time limit's exception (`inphms_sdk::exceptions`).
                let mut e = disp::internal_error("Request timed out (limit_time_real)");
                e.name = inphms_sdk::exceptions::INTERNAL_ERROR.into();
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

/// Who a handler on a database runs as, and the session it sees (see
/// [`Application::before_db_handler`]).
pub(super) struct DbAuth {
    /// The session logged out because its token no longer matched.
    stale: Option<String>,
    user: AuthUser,
    /// The session the handler sees, when not the request's (or the stale one's).
    session: Option<String>,
}

enum AuthUser {
    /// The session's own user (or nobody).
    Session,
    /// `auth = "public"` with nobody logged in: the public user (forgotten after).
    Public(i64),
    /// `auth = "bearer"` with a key: the key's user.
    Bearer,
}

impl DbAuth {
    /// The request as the handler sees it.
    pub(super) fn request<'r>(&'r self, r: HttpRequest<'r>) -> HttpRequest<'r> {
        match self.session.as_deref().or(self.stale.as_deref()) {
            Some(session) => HttpRequest {
                session: session.into(),
                ..r
            },
            None => r,
        }
    }
}
