//! The `ir.http` hooks around a handler ([`Application::dispatch_route`]): the route's
//! auth method, the pre-dispatch hooks, the handler, the post-dispatch hooks, and the
//! error handlers on a failure; and the fallbacks of a request no route matched (served
//! through [`fallback_entry`], a route of its own). See `inphms_sdk::ir_http` for what
//! each hook may do, and [`super::super::ir_http`] for their order.
//!
//! Each step gets the request with the session as the steps before it left it; the
//! answer carries the headers every step added, in order. Without any hook
//! (`Application::hooked`), a request takes none of these steps.

use super::super::ir_http::HookRef;
use super::*;

/// The addon index marking the fallback route.
const FALLBACK: u32 = u32::MAX;

/// The route a request no route matched is served through when addons declare fallbacks:
/// an http route, `auth = "public"`, without CSRF (Odoo's `_serve_fallback` runs after
/// `_auth_method_public`).
pub(super) fn fallback_entry() -> RouteEntry {
    RouteEntry {
        addon: FALLBACK,
        route: RouteDescriptor {
            id: 0,
            endpoint: "ir.http._serve_fallback".into(),
            paths: RVec::new(),
            routing_type: "http".into(),
            auth: "public".into(),
            methods: RVec::new(),
            cors: ROption::RNone,
            csrf: false,
            save_session: true,
            readonly: false,
            websocket: false,
            blocking: true,
            max_content_length: ROption::RNone,
            overrides: RString::new(),
            require_origin: false,
            asynchronous: false,
        },
        // Counted with the requests no route matched (`route="none"`).
        metrics: None,
    }
}

impl Application {
    /// The fallback route, when a request no route matched goes to the fallbacks.
    pub(super) fn fallback_route(&self) -> Option<&RouteEntry> {
        (!self.hooks.fallback.is_empty()).then_some(&self.fallback)
    }

    /// Runs a routed request's handler with the hooks around it (or the fallbacks, for the
    /// fallback route); just [`Application::invoke`] when no hook is registered.
    pub(super) fn dispatch_route(
        &self,
        addon: u32,
        item: u32,
        auth: &str,
        routing_type: &str,
        request: HttpRequest<'_>,
    ) -> Outcome {
        if !self.hooked {
            return self.invoke(addon, item, routing_type, request);
        }
        let mut steps = Steps::default();
        if addon == FALLBACK {
            return self.run_fallbacks(request, steps);
        }
        let mut outcome = 'run: {
            if let Some(&auth_hook) = self.hooks.auth.get(auth) {
                let o = self.call_hook(auth_hook, steps.request(request), None);
                if let Some(o) = steps.absorb(o) {
                    break 'run o;
                }
            }
            for &h in &self.hooks.pre_dispatch {
                let o = self.call_hook(h, steps.request(request), None);
                if let Some(o) = steps.absorb(o) {
                    break 'run o;
                }
            }
            let mut outcome = self.invoke(addon, item, routing_type, steps.request(request));
            steps.carry_session(&mut outcome);
            for &h in &self.hooks.post_dispatch {
                if outcome.error.is_some() {
                    break;
                }
                let mut handler = std::mem::take(&mut outcome);
                steps
                    .headers
                    .extend_from_slice(&std::mem::take(&mut handler.headers).0);
                let (session, rotate, socket_events, socket_events_async) = (
                    handler.session.clone(),
                    handler.rotate_session,
                    handler.socket_events,
                    handler.socket_events_async,
                );
                let r = match session.as_ref().into_option() {
                    Some(s) => HttpRequest {
                        session: s.as_str().into(),
                        ..steps.request(request)
                    },
                    None => steps.request(request),
                };
                outcome = self.call_hook(h, r, Some(handler));
                if outcome.error.is_none() {
                    // The session as the handler (then the hook) left it.
                    if outcome.session.is_none() {
                        outcome.session = session;
                    }
                    outcome.rotate_session |= rotate;
                    outcome.socket_events = socket_events;
                    outcome.socket_events_async = socket_events_async;
                }
            }
            outcome
        };
        if outcome.error.is_some() {
            outcome = self.handle_error(request, &steps, outcome);
        }
        steps.finish(outcome)
    }

    /// The error handlers, the most derived first: the first answering replaces the
    /// outcome (without its session's changes, as any error's answer).
    fn handle_error(&self, request: HttpRequest<'_>, steps: &Steps, outcome: Outcome) -> Outcome {
        for &h in &self.hooks.handle_error {
            let o = self.call_hook(h, steps.request(request), Some(outcome.clone()));
            if o.response.is_some() {
                return Outcome {
                    response: o.response,
                    headers: concat(&outcome.headers, &o.headers),
                    ..Outcome::default()
                };
            }
            if let Some(e) = o.error.as_ref().into_option() {
                tracing::error!(target: "inphms.http", "an error handler failed: {}", e.message);
            }
        }
        outcome
    }

    /// The fallbacks, in dependency order: the first that answers (or fails) is the
    /// outcome; none does, a 404.
    fn run_fallbacks(&self, request: HttpRequest<'_>, mut steps: Steps) -> Outcome {
        for &h in &self.hooks.fallback {
            let o = self.call_hook(h, steps.request(request), None);
            if let Some(o) = steps.absorb(o) {
                let o = if o.error.is_some() {
                    self.handle_error(request, &steps, o)
                } else {
                    o
                };
                return steps.finish(o);
            }
        }
        let mut e = disp::internal_error("Not Found");
        e.kind = inphms_sdk::abi::ErrorKind::NotFound;
        e.name = "werkzeug.exceptions.NotFound".into();
        steps.finish(Outcome {
            error: ROption::RSome(e),
            ..Outcome::default()
        })
    }

    /// Calls the hook `h` with `request` (and a handler's `outcome`).
    fn call_hook(
        &self,
        (a, id): HookRef,
        request: HttpRequest<'_>,
        outcome: Option<Outcome>,
    ) -> Outcome {
        let Some(addon) = self.addons.get(a as usize) else {
            return error_outcome("the addon of a hook is missing");
        };
        (addon.library.module.call())(Invocation {
            request: ROption::RSome(request),
            outcome: outcome.into(),
            ..Invocation::new(ItemKind::Hook, id)
        })
    }
}

/// What the steps before the current one left: the session they changed, the headers
/// they added, whether one asked to rotate the session's id.
#[derive(Default)]
struct Steps {
    session: Option<RString>,
    rotate: bool,
    headers: Vec<u8>,
}

impl Steps {
    /// The request with the session as the steps so far left it.
    fn request<'a>(&'a self, request: HttpRequest<'a>) -> HttpRequest<'a> {
        match &self.session {
            Some(s) => HttpRequest {
                session: s.as_str().into(),
                ..request
            },
            None => request,
        }
    }

    /// Takes in a hook's outcome before the handler: its session and headers; the outcome
    /// itself when it answers (a response) or fails.
    fn absorb(&mut self, mut o: Outcome) -> Option<Outcome> {
        if o.error.is_some() || o.response.is_some() {
            self.carry_session(&mut o);
            return Some(o);
        }
        if let Some(s) = o.session.into_option() {
            self.session = Some(s);
        }
        self.rotate |= o.rotate_session;
        self.headers.extend_from_slice(&o.headers.0);
        None
    }

    /// A later outcome that left the session alone keeps the earlier steps' changes.
    fn carry_session(&self, o: &mut Outcome) {
        if o.session.is_none() {
            o.session = self.session.clone().into();
        }
        o.rotate_session |= self.rotate;
    }

    /// The final outcome, with every step's headers before its own.
    fn finish(self, mut o: Outcome) -> Outcome {
        if !self.headers.is_empty() {
            let mut all = self.headers;
            all.extend_from_slice(&o.headers.0);
            o.headers = inphms_sdk::abi::HeaderBlock(all.into());
        }
        o
    }
}

fn concat(
    a: &inphms_sdk::abi::HeaderBlock,
    b: &inphms_sdk::abi::HeaderBlock,
) -> inphms_sdk::abi::HeaderBlock {
    let mut all = a.0.to_vec();
    all.extend_from_slice(&b.0);
    inphms_sdk::abi::HeaderBlock(all.into())
}
