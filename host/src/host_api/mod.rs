//! The host's side of [`HostApi`]: the services handed to every addon at load (logging into
//! the host's log, configuration sections, endpoint calls for dispatchers, websockets, and
//! the database services of [`db`]).
//!
//! This layer sits above `http` and below `service`: it alone sees every layer the
//! services come from (`netsvc`, `sql_db`, `modules`, `http`). The loader does not call it:
//! the composition root (`service`, `cli`) hands [`host_api`] to `modules` for each load.

pub mod db;

use crate::config::Config;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use inphms_sdk::abi::{EndpointRef, HostApi, HostApiRef, HttpRequest, Outcome, WsEvent, WsMessage};
use std::sync::{Arc, OnceLock};
use tracing::Level;

static CONFIG: OnceLock<Arc<Config>> = OnceLock::new();

/// Makes the configuration readable by addons (`Host::config`). Called once at start-up.
pub fn set_config(config: Arc<Config>) {
    let _ = CONFIG.set(config);
}

/// The host API handed to addons.
pub fn host_api() -> HostApiRef {
    static API: OnceLock<HostApiRef> = OnceLock::new();
    *API.get_or_init(|| {
        HostApi {
            host_version: RStr::from_str(crate::release::HOST_VERSION),
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
        }
        .leak_into_prefix()
    })
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

extern "C" fn log(lvl: u8, target: RStr<'_>, message: RStr<'_>) {
    guard((), || {
        crate::netsvc::log_record(level(lvl), target.as_str(), message.as_str())
    })
}

extern "C" fn log_enabled(lvl: u8, target: RStr<'_>) -> bool {
    guard(false, || {
        crate::netsvc::enabled(level(lvl), target.as_str())
    })
}

extern "C" fn config_get(section: RStr<'_>, key: RStr<'_>) -> ROption<RString> {
    guard(ROption::RNone, || {
        let value = CONFIG
            .get()
            .and_then(|c| c.misc(section.as_str(), key.as_str()))
            .and_then(|v| serde_json::to_string(v).ok());
        value.map(RString::from).into()
    })
}

extern "C" fn csrf_token(sid: RStr<'_>, lifetime: u64) -> RString {
    guard(RString::new(), || {
        crate::http::csrf_token(sid.as_str(), lifetime).into()
    })
}

extern "C" fn call_endpoint(endpoint: EndpointRef, request: HttpRequest<'_>) -> Outcome {
    guard(Outcome::default(), || {
        crate::http::call_endpoint(endpoint, request)
    })
}

extern "C" fn ws_recv(socket: u64, timeout_ms: ROption<u64>) -> WsEvent {
    guard(WsEvent::Closed(1011, "host error".into()), || {
        let timeout = timeout_ms
            .into_option()
            .map(std::time::Duration::from_millis);
        crate::http::websocket::recv(socket, timeout)
    })
}

extern "C" fn ws_send(socket: u64, message: WsMessage) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        crate::http::websocket::send(socket, message)
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn ws_close(socket: u64, code: u16, reason: RStr<'_>) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        crate::http::websocket::close(socket, code, reason.as_str())
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn ws_send_queued(socket: u64, message: WsMessage) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        crate::http::websocket::send_queued(socket, message)
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn stream_open(capacity: u32) -> u64 {
    guard(0, || crate::http::stream_body::open(capacity))
}

extern "C" fn stream_push(stream: u64, chunk: RVec<u8>) -> RResult<(), RString> {
    guard(RResult::RErr("host error".into()), || {
        // The chunk stays in the addon's allocation (freed through its vtable): no copy.
        crate::http::stream_body::push(stream, bytes::Bytes::from_owner(chunk))
            .map_err(|e| RString::from(e.to_string()))
            .into()
    })
}

extern "C" fn stream_close(stream: u64) {
    guard((), || crate::http::stream_body::close(stream))
}
