//! The host's side of [`HostApi`]: the services handed to every addon at load (logging into
//! the host's log, configuration sections, endpoint calls for dispatchers, websockets, the
//! database services of [`db`], and the RPC services of [`rpc`]).
//!
//! This layer sits above `http` and below `service`: it alone sees every layer the
//! services come from (`netsvc`, `sql_db`, `modules`, `http`). The loader does not call it:
//! the composition root (`service`, `cli`) builds one [`HostServices`] per host and hands
//! its [`HostApiRef`] to `modules` for each load.
//!
//! Each callback receives the [`HostCtx`] the host put in its [`HostApi`]: a pointer to that
//! host's [`HostServices`], through which it finds the configuration, the databases, the
//! websockets and the push streams, rather than through process-wide statics. A `HostServices` and its `HostApi`
//! are leaked on purpose: addon images are never unloaded and keep the pointer for good
//! (one allocation of each per host built, not per call).

pub mod db;
pub mod rpc;

use crate::config::Config;
use crate::http::Services;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use inphms_sdk::abi::{
    EndpointRef, ErrorInfo, ErrorKind, HostApi, HostApiRef, HostCtx, HttpRequest, Outcome, WsEvent,
    WsMessage,
};
use std::sync::Arc;
use tracing::Level;

/// The database manager as the `service` layer hands it down (this layer cannot call
/// it): `(method, params)` to the JSON result or the error for the addon.
pub type DbServiceFn = Box<
    dyn Fn(
            String,
            Vec<serde_json::Value>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<serde_json::Value, ErrorInfo>> + Send>,
        > + Send
        + Sync,
>;

/// What the callbacks of one host's [`HostApi`] reach through their `ctx`.
pub struct HostServices {
    /// The configuration (`Host::config` reads its other sections).
    pub config: Arc<Config>,
    /// The host's request path state: websockets, registries, databases.
    pub http: Arc<Services>,
    /// The RPC services (`dispatch_rpc`), handed down by the composition root.
    pub rpc: Arc<dyn rpc::RpcDispatch>,
    /// The database manager, set once by the composition root (`HostApi::db_service`).
    db_service: std::sync::OnceLock<DbServiceFn>,
}

impl std::fmt::Debug for HostServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostServices")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl HostServices {
    /// Hands the database manager to the `db_service` callback of the host API `api`
    /// (once; later calls are ignored).
    pub fn set_db_service(api: HostApiRef, f: DbServiceFn) {
        if let Some(services) = Self::of(api.ctx()) {
            let _ = services.db_service.set(f);
        }
    }

    /// The host API handed to addons for a host with `config` and `http`: its `ctx` points
    /// to them for as long as the process lives (see the [module docs](self)).
    pub fn api(
        config: Arc<Config>,
        http: Arc<Services>,
        rpc: Arc<dyn rpc::RpcDispatch>,
    ) -> HostApiRef {
        let services: &'static HostServices = Box::leak(Box::new(HostServices {
            config,
            http,
            rpc,
            db_service: std::sync::OnceLock::new(),
        }));
        HostApi {
            host_version: RStr::from_str(crate::release::HOST_VERSION),
            ctx: HostCtx(std::ptr::from_ref(services).cast()),
            log,
            log_enabled,
            config_get,
            csrf_token,
            call_endpoint,
            ws_recv,
            ws_send,
            ws_close,
            cursor_env: db::cursor_env,
            cursor_execute: db::cursor_execute,
            cursor_commit: db::cursor_commit,
            cursor_rollback: db::cursor_rollback,
            cron_trigger: db::cron_trigger,
            db_list: db::db_list,
            stream_open,
            stream_push,
            stream_close,
            ws_send_queued,
            dispatch_rpc: rpc::dispatch_rpc,
            db_service,
            db_server_status: db::db_server_status,
            cursor_notify: db::cursor_notify,
            db_execute: db::db_execute,
            listen_wait: db::listen_wait,
            sleep,
            cursor_execute_async: db::cursor_execute_async,
        }
        .leak_into_prefix()
    }

    /// The services `ctx` points to (`None` for a null handle: an addon that made one up).
    fn of(ctx: HostCtx) -> Option<&'static HostServices> {
        // SAFETY: every `HostCtx` the host gives out is made in `api` from a leaked
        // `HostServices`, which lives until the process ends; addons only hand it back.
        unsafe { ctx.0.cast::<HostServices>().as_ref() }
    }
}

fn level(n: u8) -> Level {
    match n {
        0 | 1 => Level::ERROR,
        2 => Level::WARN,
        3 => Level::INFO,
        4 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Runs a host callback so that no panic unwinds into addon code (it would abort).
fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}

extern "C" fn log(_: HostCtx, lvl: u8, target: RStr<'_>, message: RStr<'_>) {
    guard((), || {
        crate::netsvc::log_record(level(lvl), target.as_str(), message.as_str())
    })
}

extern "C" fn log_enabled(_: HostCtx, lvl: u8, target: RStr<'_>) -> bool {
    guard(false, || {
        crate::netsvc::enabled(level(lvl), target.as_str())
    })
}

extern "C" fn config_get(ctx: HostCtx, section: RStr<'_>, key: RStr<'_>) -> ROption<RString> {
    guard(ROption::RNone, || {
        let value = HostServices::of(ctx)
            .and_then(|h| h.config.misc(section.as_str(), key.as_str()))
            .and_then(|v| serde_json::to_string(v).ok());
        value.map(RString::from).into()
    })
}

extern "C" fn csrf_token(_: HostCtx, sid: RStr<'_>, lifetime: u64) -> RString {
    guard(RString::new(), || {
        crate::http::csrf_token(sid.as_str(), lifetime).into()
    })
}

extern "C" fn call_endpoint(
    _: HostCtx,
    endpoint: EndpointRef,
    request: HttpRequest<'_>,
) -> Outcome {
    guard(Outcome::default(), || {
        crate::http::call_endpoint(endpoint, request)
    })
}

extern "C" fn ws_recv(ctx: HostCtx, socket: u64, timeout_ms: ROption<u64>) -> WsEvent {
    guard(WsEvent::Closed(1011, "host error".into()), || {
        let Some(host) = HostServices::of(ctx) else {
            return WsEvent::Closed(1011, "no host".into());
        };
        let timeout = timeout_ms
            .into_option()
            .map(std::time::Duration::from_millis);
        crate::http::websocket::recv(&host.http.websockets, socket, timeout)
    })
}

extern "C" fn ws_send(ctx: HostCtx, socket: u64, message: WsMessage) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        let Some(host) = HostServices::of(ctx) else {
            return RResult::RErr("no host".into());
        };
        crate::http::websocket::send(&host.http.websockets, socket, message)
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn ws_close(
    ctx: HostCtx,
    socket: u64,
    code: u16,
    reason: RStr<'_>,
) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        let Some(host) = HostServices::of(ctx) else {
            return RResult::RErr("no host".into());
        };
        crate::http::websocket::close(&host.http.websockets, socket, code, reason.as_str())
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn ws_send_queued(
    ctx: HostCtx,
    socket: u64,
    message: WsMessage,
) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        let Some(host) = HostServices::of(ctx) else {
            return RResult::RErr("no host".into());
        };
        crate::http::websocket::send_queued(&host.http.websockets, socket, message)
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn stream_open(ctx: HostCtx, capacity: u32) -> u64 {
    guard(0, || match HostServices::of(ctx) {
        Some(host) => crate::http::stream_body::open(&host.http.streams, capacity),
        None => 0,
    })
}

extern "C" fn stream_push(ctx: HostCtx, stream: u64, chunk: RVec<u8>) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        let Some(host) = HostServices::of(ctx) else {
            return RResult::RErr("no host".into());
        };
        // The chunk stays in the addon's allocation (freed through its vtable): no copy.
        crate::http::stream_body::push(&host.http.streams, stream, bytes::Bytes::from_owner(chunk))
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn stream_close(ctx: HostCtx, stream: u64) {
    guard((), || {
        if let Some(host) = HostServices::of(ctx) {
            crate::http::stream_body::close(&host.http.streams, stream);
        }
    })
}

extern "C" fn db_service(
    ctx: HostCtx,
    method: RStr<'_>,
    params_json: RStr<'_>,
) -> RResult<RString, ErrorInfo> {
    let fail = |message: String| ErrorInfo {
        kind: ErrorKind::Internal,
        name: "builtins.Exception".into(),
        arguments: serde_json::json!([message]).to_string().into(),
        message: message.into(),
        debug: RString::new(),
    };
    let panicked = fail("the database manager failed (a panic in the host)".into());
    guard(RResult::RErr(panicked), || {
        let Some(host) = HostServices::of(ctx) else {
            return RResult::RErr(fail("no host behind this handle".into()));
        };
        let Some(f) = host.db_service.get() else {
            return RResult::RErr(fail("this host has no database manager".into()));
        };
        let params: Vec<serde_json::Value> = match serde_json::from_str(params_json.as_str()) {
            Ok(serde_json::Value::Array(a)) => a,
            _ => return RResult::RErr(fail("db_service params must be a JSON array".into())),
        };
        let future = f(method.as_str().to_owned(), params);
        match host.http.databases().cursors().block_on(future) {
            Ok(Ok(v)) => RResult::ROk(v.to_string().into()),
            Ok(Err(e)) => RResult::RErr(e),
            Err(e) => RResult::RErr(fail(e.to_string())),
        }
    })
}

/// `HostApi::sleep`: a timer of the host's runtime (the calling thread's, else the one the
/// host's queries run on), as a future; no thread waits on it.
extern "C" fn sleep(ctx: HostCtx, ms: u64) -> async_ffi::FfiFuture<()> {
    use async_ffi::FutureExt;
    let runtime = tokio::runtime::Handle::try_current().ok().or_else(|| {
        HostServices::of(ctx).and_then(|h| h.http.databases().cursors().runtime().ok())
    });
    let duration = std::time::Duration::from_millis(ms);
    match runtime {
        Some(rt) => {
            // The timer is made in the runtime's context: the future may be polled from
            // a thread outside it (an addon's own, through the SDK's sync entry point).
            let timer = {
                let _entered = rt.enter();
                tokio::time::sleep(duration)
            };
            timer.into_ffi()
        }
        // No runtime at all (never in a serving host): the polling thread sleeps.
        None => async move { std::thread::sleep(duration) }.into_ffi(),
    }
}
