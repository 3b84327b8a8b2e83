//! The route's handler run: inline on the runtime's thread (`blocking = false`), or on the
//! blocking pool under `limit_time_real` with its [`StartGate`], and the call through the
//! addon's dispatcher or straight to the handler.

use super::start_gate::{Handed, StartGate};
use super::*;

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
                            // Every route's session with a user has its token checked first;
                            // a stale one is logged out and the request goes on anonymous.
                            let stale = match app.check_session_token(auth.as_str(), &r, true) {
                                super::auth::TokenCheck::Fine => None,
                                super::auth::TokenCheck::Stale(fresh) => Some(fresh),
                                super::auth::TokenCheck::Refused(refused) => return refused,
                            };
                            let r = match &stale {
                                Some(fresh) => HttpRequest {
                                    session: fresh.as_str().into(),
                                    ..r
                                },
                                None => r,
                            };
                            let mut outcome = app.run_authenticated(
                                addon,
                                item,
                                auth.as_str(),
                                routing_type.as_str(),
                                r,
                            );
                            if let Some(fresh) = stale {
                                // The logged-out session is saved under a new id even when
                                // the handler left it unchanged.
                                if outcome.session.is_none() {
                                    outcome.session = ROption::RSome(fresh.into());
                                }
                                outcome.rotate_session = true;
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

    /// A handler on a database, after the session token's check: the route's `auth`
    /// (`bearer`'s key, `public`'s user), the handler, then [`Application::after_handler`].
    fn run_authenticated(
        &self,
        addon: u32,
        item: u32,
        auth: &str,
        routing_type: &str,
        r: HttpRequest<'_>,
    ) -> Outcome {
        let bearer = match self.check_bearer(auth, routing_type, &r) {
            Ok(uid) => uid,
            Err(refused) => return refused,
        };
        if let Some(public) = self.public_user(auth, &r) {
            let session = super::auth::session_as(r.session.as_str(), public);
            let as_public = HttpRequest {
                session: session.as_str().into(),
                ..r
            };
            let mut o = self.dispatch_route(addon, item, auth, routing_type, as_public);
            Application::forget_public_user(&mut o, public);
            return o;
        }
        let mut outcome = match bearer {
            Some(uid) => {
                let session = super::auth::session_as(r.session.as_str(), uid);
                let as_key_user = HttpRequest {
                    session: session.as_str().into(),
                    ..r
                };
                let mut o = self.dispatch_route(addon, item, auth, routing_type, as_key_user);
                // A bearer request's session is never saved.
                o.session = ROption::RNone;
                o.rotate_session = false;
                o
            }
            None => self.dispatch_route(addon, item, auth, routing_type, r),
        };
        self.after_handler(&mut outcome);
        outcome
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
        !entry.route.blocking && !entry.route.websocket && self.db.is_none() && !self.hooked
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
