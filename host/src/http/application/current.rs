//! The generation whose addon code runs on this thread ([`CURRENT`]), for what addon code
//! asks back through the host API during a request: a route's endpoint called by a
//! dispatcher or an override's `call_super` ([`call_endpoint`]) and a CSRF token ([`csrf_token`]). It is set only through
//! the [`Running`] guard, which puts the previous one back when dropped (also when the
//! handler's call unwinds), never by hand.

use super::*;

thread_local! {
    /// The generation whose addon code runs on this thread (for endpoint calls from
    /// dispatchers, which come back through the host API on the same thread).
    // global: the running invocation's thread-local context, as Odoo's `request`
    static CURRENT: RefCell<Option<Arc<Application>>> = const { RefCell::new(None) };
}

/// Makes a generation the one running on this thread until dropped; the previous one (none,
/// unless calls nest) is then back.
/// In a worker of workers mode, it also measures the handler's CPU time (`limit_time_cpu`).
pub(super) struct Running(
    Option<Arc<Application>>,
    #[allow(dead_code)] Option<crate::http::inflight::CpuGuard>,
);

impl Running {
    /// `app` runs on this thread until the guard is dropped.
    pub(super) fn enter(app: Arc<Application>) -> Running {
        let cpu = app.services.inflight.handler_cpu();
        Running(CURRENT.with(|c| c.replace(Some(app))), cpu)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let previous = self.0.take();
        // The generation left is dropped outside the borrow.
        let left = CURRENT.with(|c| c.replace(previous));
        drop(left);
    }
}

/// Calls a route's endpoint for a dispatcher, in the generation running on this thread.
pub fn call_endpoint(endpoint: EndpointRef, request: HttpRequest<'_>) -> Outcome {
    let app = CURRENT.with(|c| c.borrow().clone());
    let Some(app) = app else {
        return error_outcome("endpoint called outside of a request");
    };
    let Some(addon) = app.addons.get(endpoint.addon as usize) else {
        return error_outcome("endpoint of an unknown addon");
    };
    // An overriding route is called with the route it overrides (its `call_super`).
    let overridden = if app.supers.is_empty() {
        None
    } else {
        app.supers.get(&(endpoint.addon, endpoint.route)).copied()
    };
    (addon.library.module.call())(Invocation {
        kind: ItemKind::Route,
        item: endpoint.route,
        request: ROption::RSome(request),
        endpoint: overridden.into(),
        args: RVec::new(),
        handle: 0,
        socket_event: abi_stable::std_types::ROption::RNone,
        outcome: abi_stable::std_types::ROption::RNone,
    })
}

pub(super) fn error_outcome(message: &str) -> Outcome {
    Outcome {
        error: ROption::RSome(disp::internal_error(message)),
        ..Outcome::default()
    }
}

/// A CSRF token for `sid` with the secret of the generation serving this thread's request
/// (Odoo's `request.csrf_token()`); `lifetime` 0 means one year.
pub fn csrf_token(sid: &str, lifetime: u64) -> String {
    let app = CURRENT.with(|c| c.borrow().clone());
    let Some(app) = app else {
        return String::new();
    };
    let lifetime = if lifetime == 0 {
        csrf::CSRF_TOKEN_LIFETIME
    } else {
        lifetime
    };
    csrf::token(&app.csrf_secret, sid, now(), lifetime)
}
