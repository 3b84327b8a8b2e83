//! The addon's own registry of items (routes, dispatchers, commands, cron handlers, RPC
//! methods, `post_load` hooks), filled by the attribute macros through `inventory`, turned into
//! ABI-stable descriptors for the host, and called back by id through one guarded entry
//! point.
//!
//! Each addon image has its own `inventory` registry: the host never sees these statics,
//! only the descriptors built by [`describe`].

use crate::abi::{
    AddonItems, CommandDescriptor, CronDescriptor, DispatcherDescriptor, HeaderBlock,
    HookDescriptor, HostApiRef, Invocation, ItemKind, Outcome, RouteDescriptor, RpcDescriptor,
};
use crate::dispatcher::{Endpoint, EndpointResult};
use crate::ir_http::Hook;
use crate::rpc::RpcMethod;
use crate::{host, Error, Host, Request, Response, Result};
use abi_stable::std_types::{ROption, RString};
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// What a route's handler produced, before it crosses the boundary.
#[doc(hidden)]
pub enum Reply {
    /// A http response.
    Response(Response),
    /// A json result (`None`: omitted).
    Value(Option<Value>),
}

/// A route's handler, as the macros generate it.
#[doc(hidden)]
pub type Handler = fn(&mut Request) -> Result<Reply>;

/// A route, declared with [`#[route]`](crate::route).
#[doc(hidden)]
pub struct Route {
    pub paths: &'static [&'static str],
    pub routing_type: &'static str,
    pub auth: &'static str,
    pub methods: &'static [&'static str],
    pub cors: Option<&'static str>,
    pub csrf: bool,
    pub save_session: bool,
    pub readonly: Option<bool>,
    pub websocket: bool,
    pub blocking: bool,
    pub max_content_length: Option<u64>,
    pub endpoint: &'static str,
    pub handler: Handler,
    /// The addon whose route this one overrides (`""`: none).
    pub overrides: &'static str,
    /// A websocket route whose handshake must carry an `Origin`.
    pub require_origin: bool,
    /// An `async fn` handler's wrapper (then `handler` is never called).
    pub async_handler: Option<crate::async_route::AsyncHandler>,
}
inventory::collect!(Route);

/// A command, declared with [`#[command]`](crate::command).
#[doc(hidden)]
pub struct Command {
    pub name: &'static str,
    pub help: &'static str,
    pub run: fn(&[String]) -> i32,
}
inventory::collect!(Command);

/// A cron handler, declared with [`#[cron]`](crate::cron).
#[doc(hidden)]
pub struct Cron {
    pub name: &'static str,
    pub run: fn(&mut crate::CronContext) -> Result<()>,
}
inventory::collect!(Cron);

/// A `post_load` hook, declared with [`#[post_load]`](crate::post_load).
#[doc(hidden)]
pub struct PostLoad {
    pub name: &'static str,
    pub run: fn(&Host) -> Result<()>,
}
inventory::collect!(PostLoad);

/// A dispatcher, registered with [`register_dispatcher!`](crate::register_dispatcher).
#[doc(hidden)]
pub struct DispatcherEntry {
    pub routing_type: &'static str,
    pub is_compatible: fn(&Request) -> bool,
    pub dispatch: fn(&mut Request, Endpoint) -> Result<Response>,
}
inventory::collect!(DispatcherEntry);

struct Items {
    routes: Vec<&'static Route>,
    commands: Vec<&'static Command>,
    crons: Vec<&'static Cron>,
    dispatchers: Vec<&'static DispatcherEntry>,
    rpcs: Vec<&'static RpcMethod>,
    hooks: Vec<&'static Hook>,
}

/// The items, sorted once so that ids do not depend on link order.
fn items() -> &'static Items {
    static ITEMS: OnceLock<Items> = OnceLock::new();
    ITEMS.get_or_init(|| Items {
        routes: sorted(|r: &Route| (r.paths.first().copied().unwrap_or(""), r.endpoint)),
        commands: sorted(|c: &Command| c.name),
        crons: sorted(|c: &Cron| c.name),
        dispatchers: sorted(|d: &DispatcherEntry| d.routing_type),
        rpcs: sorted(|m: &RpcMethod| (m.model, m.method)),
        hooks: sorted(|h: &Hook| (h.run.kind() as u8, h.name)),
    })
}

/// Every submitted item of type `T`, sorted by `key`.
fn sorted<T: inventory::Collect, K: Ord>(mut key: impl FnMut(&T) -> K) -> Vec<&'static T> {
    let mut all: Vec<&'static T> = inventory::iter::<T>.into_iter().collect();
    all.sort_by_key(|t| key(t));
    all
}

fn strings(list: &[&str]) -> abi_stable::std_types::RVec<RString> {
    list.iter().map(|s| RString::from(*s)).collect()
}

/// Builds the descriptors handed to the host.
pub(crate) fn describe() -> AddonItems {
    let items = items();
    AddonItems {
        routes: items
            .routes
            .iter()
            .enumerate()
            .map(|(id, r)| RouteDescriptor {
                id: id as u32,
                endpoint: r.endpoint.into(),
                paths: strings(r.paths),
                routing_type: r.routing_type.into(),
                auth: r.auth.into(),
                methods: strings(r.methods),
                cors: r.cors.map(RString::from).into(),
                csrf: r.csrf,
                save_session: r.save_session,
                // Odoo: `readonly` defaults to `auth == 'none'`.
                readonly: r.readonly.unwrap_or(r.auth == "none"),
                websocket: r.websocket,
                blocking: r.blocking,
                max_content_length: r.max_content_length.into(),
                overrides: r.overrides.into(),
                require_origin: r.require_origin,
                asynchronous: r.async_handler.is_some(),
            })
            .collect(),
        dispatchers: items
            .dispatchers
            .iter()
            .enumerate()
            .map(|(id, d)| DispatcherDescriptor {
                id: id as u32,
                routing_type: d.routing_type.into(),
            })
            .collect(),
        commands: items
            .commands
            .iter()
            .enumerate()
            .map(|(id, c)| CommandDescriptor {
                id: id as u32,
                name: c.name.into(),
                help: c.help.into(),
            })
            .collect(),
        crons: items
            .crons
            .iter()
            .enumerate()
            .map(|(id, c)| CronDescriptor {
                id: id as u32,
                name: c.name.into(),
            })
            .collect(),
        rpcs: items
            .rpcs
            .iter()
            .enumerate()
            .map(|(id, m)| RpcDescriptor {
                id: id as u32,
                model: m.model.into(),
                method: m.method.into(),
            })
            .collect(),
        hooks: items
            .hooks
            .iter()
            .enumerate()
            .map(|(id, h)| HookDescriptor {
                id: id as u32,
                kind: h.run.kind(),
                name: h.name.into(),
            })
            .collect(),
    }
}

/// Runs `f`, turning a panic into an error outcome: no panic ever leaves the addon.
fn guarded(f: impl FnOnce() -> Outcome) -> Outcome {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned());
            error_outcome(Error::panic(message))
        }
    }
}

pub(crate) fn error_outcome(error: Error) -> Outcome {
    Outcome {
        error: ROption::RSome(error.into_info()),
        ..Outcome::default()
    }
}

/// The wrapper of the async route `id`, if it is one.
pub(crate) fn async_handler(id: u32) -> Option<crate::async_route::AsyncHandler> {
    items().routes.get(id as usize)?.async_handler
}

/// Whether this image's `post_load` hooks all ran and succeeded: a second `init` of the
/// same image (a host loading it again) does not run them again.
// global: one flag per addon image, as the hooks it guards are once per image (process).
static POST_LOAD_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `AddonModule::init`: keeps the host's services, installs logging, runs `post_load`
/// (once per image: the host loads an addon's library once per process, reuses it for
/// every database and across swaps that leave it unchanged, and a second `init` skips the
/// hooks that already succeeded).
pub(crate) extern "C" fn init(api: HostApiRef) -> Outcome {
    use std::sync::atomic::Ordering;
    guarded(|| {
        host::install(api);
        if POST_LOAD_DONE.load(Ordering::Acquire) {
            return Outcome::default();
        }
        let mut hooks: Vec<_> = inventory::iter::<PostLoad>.into_iter().collect();
        hooks.sort_by_key(|h| h.name);
        for hook in hooks {
            if let Err(e) = (hook.run)(&Host) {
                return error_outcome(e);
            }
        }
        POST_LOAD_DONE.store(true, Ordering::Release);
        Outcome::default()
    })
}

/// `AddonModule::items`.
pub(crate) extern "C" fn describe_items() -> AddonItems {
    catch_unwind(describe).unwrap_or_default()
}

/// `AddonModule::call`: the one entry point, by item id.
pub(crate) extern "C" fn call(inv: Invocation<'_>) -> Outcome {
    guarded(move || invoke(inv))
}

fn invoke(inv: Invocation<'_>) -> Outcome {
    if let Some(outcome) = crate::stream::invoke(&inv) {
        return outcome;
    }
    if inv.kind == ItemKind::SocketEvent {
        return crate::socket_events::invoke(inv).unwrap_or_default();
    }
    let items = items();
    let idx = inv.item as usize;
    let missing = || error_outcome(Error::internal(format!("no {:?} item {idx}", inv.kind)));
    match inv.kind {
        ItemKind::Route => {
            let (Some(route), ROption::RSome(req)) = (items.routes.get(idx), inv.request) else {
                return missing();
            };
            if let Some(handler) = route.async_handler {
                return crate::async_route::run_blocking(handler, req, inv.endpoint.into_option());
            }
            let socket = req.websocket.into_option();
            let mut req = Request::from_abi(req);
            req.super_endpoint = inv.endpoint.into_option();
            let result = (route.handler)(&mut req);
            let mut outcome = reply_outcome(result, &req);
            if let Some(id) = socket {
                (outcome.socket_events, outcome.socket_events_async) =
                    crate::socket_events::registered(id, outcome.error.is_none());
            }
            outcome
        }
        ItemKind::DispatcherCompatible => {
            let (Some(d), ROption::RSome(req)) = (items.dispatchers.get(idx), inv.request) else {
                return missing();
            };
            let req = Request::from_abi(req);
            Outcome {
                exit_code: (d.is_compatible)(&req) as i32,
                ..Outcome::default()
            }
        }
        ItemKind::DispatcherDispatch => {
            let (Some(d), ROption::RSome(req), ROption::RSome(endpoint)) =
                (items.dispatchers.get(idx), inv.request, inv.endpoint)
            else {
                return missing();
            };
            let mut req = Request::from_abi(req);
            let result = (d.dispatch)(&mut req, Endpoint::new(endpoint)).map(Reply::Response);
            reply_outcome(result, &req)
        }
        ItemKind::Command => {
            let Some(c) = items.commands.get(idx) else {
                return missing();
            };
            let args: Vec<String> = inv.args.into_iter().map(|a| a.into_string()).collect();
            Outcome {
                exit_code: (c.run)(&args),
                ..Outcome::default()
            }
        }
        ItemKind::SocketEvent
        | ItemKind::StreamPoll
        | ItemKind::StreamDrop
        | ItemKind::AsyncSocketEvent => missing(),
        ItemKind::AsyncRoute => {
            // Through the sync entry point: run to its end here.
            let (Some(handler), ROption::RSome(req)) = (async_handler(inv.item), inv.request)
            else {
                return missing();
            };
            crate::async_route::run_blocking(handler, req, inv.endpoint.into_option())
        }
        ItemKind::Rpc => match items.rpcs.get(idx) {
            Some(m) => crate::rpc::invoke(m, inv),
            None => missing(),
        },
        ItemKind::Hook => match items.hooks.get(idx) {
            Some(hook) => crate::ir_http::invoke(hook, inv),
            None => missing(),
        },
        ItemKind::Cron => {
            let (Some(c), ROption::RSome(req)) = (items.crons.get(idx), inv.request) else {
                return missing();
            };
            // The host passes the job's id and name as the arguments.
            let mut ctx = crate::CronContext {
                db: req
                    .db
                    .into_option()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                job_id: inv.args.first().and_then(|a| a.parse().ok()).unwrap_or(0),
                job_name: inv.args.get(1).map(|a| a.to_string()).unwrap_or_default(),
            };
            match (c.run)(&mut ctx) {
                Ok(()) => Outcome::default(),
                Err(e) => error_outcome(e),
            }
        }
    }
}

pub(crate) fn reply_outcome(result: Result<Reply>, req: &Request) -> Outcome {
    let mut outcome = match result {
        Ok(Reply::Response(r)) => Outcome {
            response: ROption::RSome(r.into_abi()),
            ..Outcome::default()
        },
        Ok(Reply::Value(v)) => Outcome {
            // As the host answers it (json.dumps), so that it crosses into the answer as is.
            value: v.map(|v| RString::from(crate::json::dumps(&v))).into(),
            ..Outcome::default()
        },
        Err(e) => error_outcome(e),
    };
    if req.session.is_dirty() || req.session.should_rotate() {
        outcome.session = ROption::RSome(RString::from(&*req.session.to_json()));
    }
    outcome.rotate_session = req.session.should_rotate();
    if !req.response_headers.is_empty() {
        outcome.headers = HeaderBlock(req.response_headers.clone().into());
    }
    outcome
}

/// The outcome of a call that answers nothing but its session's changes (a websocket
/// event's callback).
pub(crate) fn session_outcome(result: Result<()>, req: &Request) -> Outcome {
    let mut outcome = match result {
        Ok(()) => Outcome::default(),
        Err(e) => error_outcome(e),
    };
    if req.session.is_dirty() || req.session.should_rotate() {
        outcome.session = ROption::RSome(RString::from(&*req.session.to_json()));
    }
    outcome
}

impl Reply {
    /// Converts a http handler's return value.
    pub fn http(value: impl crate::IntoResponse) -> Result<Reply> {
        value.into_response().map(Reply::Response)
    }

    /// Converts a json handler's return value.
    pub fn json(value: impl crate::IntoJsonResult) -> Result<Reply> {
        value.into_json_result().map(Reply::Value)
    }
}

impl From<EndpointResult> for Reply {
    fn from(r: EndpointResult) -> Self {
        match r {
            EndpointResult::Response(r) => Reply::Response(r),
            EndpointResult::Value(v) => Reply::Value(v),
        }
    }
}
