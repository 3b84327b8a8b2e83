//! [`Host`]: the services the host lends to addons through the ABI (logging, configuration,
//! endpoint calls, websockets), and the forwarding of the addon's own `tracing` events and panic messages
//! to the host's log.

use crate::abi::{EndpointRef, HostApiRef, HttpRequest, Outcome, WsEvent, WsMessage};
use crate::{Error, Result};
use abi_stable::std_types::RStr;
use std::sync::OnceLock;
use tracing::{span, Event, Level, Metadata, Subscriber};

static API: OnceLock<HostApiRef> = OnceLock::new();

/// The addon's name and its crate's name (`addon!` sets them): its events whose target is
/// one of its own modules are logged as `inphms.addons.<name>[.module...]`.
static NAMES: OnceLock<(&'static str, &'static str)> = OnceLock::new();

/// Records the addon's name and its crate's name (called by `addon!`'s root module).
pub(crate) fn set_names(addon: &'static str, krate: &'static str) {
    let _ = NAMES.set((addon, krate));
}

/// The log target of an event of target `target`: a module path of the addon's crate
/// (`my_addon::controllers`) becomes `inphms.addons.my_addon.controllers`, as Odoo names
/// an addon's loggers; any other target is kept.
pub(crate) fn addon_target(target: &str) -> std::borrow::Cow<'_, str> {
    let Some((addon, krate)) = NAMES.get() else {
        return target.into();
    };
    let Some(rest) = target.strip_prefix(krate) else {
        return target.into();
    };
    if rest.is_empty() {
        format!("inphms.addons.{addon}").into()
    } else if let Some(modules) = rest.strip_prefix("::") {
        format!("inphms.addons.{addon}.{}", modules.replace("::", ".")).into()
    } else {
        target.into()
    }
}

/// The host, as seen from an addon: handed to `post_load` hooks, and reachable anywhere
/// through its associated functions.
///
/// ```no_run
/// use inphms_sdk::Host;
/// // Reads `greeting` in the `[web]` section of the configuration file, if any.
/// let greeting: Option<String> = Host.config("web", "greeting");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Host;

impl Host {
    /// The host's version, once the addon is loaded.
    pub fn version(&self) -> Option<&'static str> {
        API.get().map(|api| api.host_version().as_str())
    }

    /// A value from a section of the configuration file other than `[options]`, converted
    /// from TOML. `None` when missing, of another type, or outside a host.
    pub fn config<T: serde::de::DeserializeOwned>(&self, section: &str, key: &str) -> Option<T> {
        let api = API.get()?;
        let text = (api.config_get())(api.ctx(), section.into(), key.into()).into_option()?;
        serde_json::from_str(&text).ok()
    }
}

pub(crate) fn install(api: HostApiRef) {
    if API.set(api).is_ok() {
        // Each image has its own `tracing` and panic hook: forward both to the host.
        let _ = tracing::subscriber::set_global_default(Forward);
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let target = match NAMES.get() {
                Some((addon, _)) => format!("inphms.addons.{addon}"),
                None => "inphms.addons".to_owned(),
            };
            log(1, &target, &format!("panic{location}: {payload}"));
        }));
    }
}

/// Writes to the host's log. `level`: 1 error ... 5 trace.
pub(crate) fn log(level: u8, target: &str, message: &str) {
    if let Some(api) = API.get() {
        (api.log())(
            api.ctx(),
            level,
            RStr::from_str(target),
            RStr::from_str(message),
        );
    }
}

pub(crate) fn csrf_token(sid: &str, lifetime: u64) -> Option<String> {
    API.get()
        .map(|api| (api.csrf_token())(api.ctx(), RStr::from_str(sid), lifetime).into_string())
}

pub(crate) fn call_endpoint(endpoint: EndpointRef, request: HttpRequest<'_>) -> Result<Outcome> {
    let api = api()?;
    Ok((api.call_endpoint())(api.ctx(), endpoint, request))
}

pub(crate) fn api() -> Result<&'static HostApiRef> {
    API.get()
        .ok_or_else(|| Error::internal("the addon is not loaded by a host"))
}

fn no_websockets() -> Error {
    Error::internal("this host does not support websockets (HostApi without ws_* callbacks)")
}

pub(crate) fn ws_recv(socket: u64, timeout_ms: Option<u64>) -> Result<WsEvent> {
    let api = api()?;
    let f = api.ws_recv().ok_or_else(no_websockets)?;
    Ok(f(api.ctx(), socket, timeout_ms.into()))
}

/// Queues `message` on `socket` without waiting (the host's `ws_send_queued`), or, from a
/// host without it, sends it and waits for the write (`ws_send`).
pub(crate) fn ws_send_queued(socket: u64, message: WsMessage) -> Result<()> {
    let api = api()?;
    let result = match api.ws_send_queued() {
        Some(f) => f(api.ctx(), socket, message),
        None => (api.ws_send().ok_or_else(no_websockets)?)(api.ctx(), socket, message),
    };
    result
        .into_result()
        .map_err(|e| Error::internal(e.into_string()))
}

fn no_streams() -> Error {
    Error::internal("this host does not support push streams (HostApi without stream_* callbacks)")
}

pub(crate) fn stream_open(capacity: u32) -> Result<u64> {
    let api = api()?;
    let f = api.stream_open().ok_or_else(no_streams)?;
    Ok(f(api.ctx(), capacity))
}

pub(crate) fn stream_push(stream: u64, chunk: Vec<u8>) -> Result<()> {
    let api = api()?;
    let f = api.stream_push().ok_or_else(no_streams)?;
    f(api.ctx(), stream, chunk.into())
        .into_result()
        .map_err(|e| Error::internal(e.into_string()))
}

pub(crate) fn stream_close(stream: u64) {
    if let Ok(api) = api() {
        if let Some(f) = api.stream_close() {
            f(api.ctx(), stream);
        }
    }
}

pub(crate) fn ws_close(socket: u64, code: u16, reason: &str) -> Result<()> {
    let api = api()?;
    let f = api.ws_close().ok_or_else(no_websockets)?;
    f(api.ctx(), socket, code, RStr::from_str(reason))
        .into_result()
        .map_err(|e| Error::bad_request(e.into_string()))
}

fn no_bus_support() -> Error {
    Error::internal(
        "this host offers no bus services (HostApi without cursor_notify, db_execute, listen_wait)",
    )
}

/// Queues a NOTIFY on `channel` for after the commit of `cursor`'s transaction.
pub(crate) fn cursor_notify(cursor: u64, channel: &str, payload: &str) -> Result<()> {
    let api = api()?;
    let f = api.cursor_notify().ok_or_else(no_bus_support)?;
    f(
        api.ctx(),
        cursor,
        RStr::from_str(channel),
        RStr::from_str(payload),
    )
    .into_result()
    .map_err(|e| Error::from_info(&e))
}

/// One statement on `db` in a transaction of its own (an addon's own thread).
pub(crate) fn db_execute(
    db: &str,
    sql: &str,
    params: &[crate::SqlValue],
) -> Result<crate::cursor::Rows> {
    let api = api()?;
    let f = api.db_execute().ok_or_else(no_bus_support)?;
    let params = params
        .iter()
        .cloned()
        .map(crate::SqlValue::into_abi)
        .collect();
    f(api.ctx(), RStr::from_str(db), RStr::from_str(sql), params)
        .into_result()
        .map(crate::cursor::Rows::from_abi)
        .map_err(|e| Error::from_info(&e))
}

/// Waits for the notifications of `channel` (see `HostApi::listen_wait`).
pub(crate) fn listen_wait(channel: &str, timeout_ms: u64) -> Result<crate::abi::Heard> {
    let api = api()?;
    let f = api.listen_wait().ok_or_else(no_bus_support)?;
    f(api.ctx(), RStr::from_str(channel), timeout_ms)
        .into_result()
        .map_err(|e| Error::internal(e.into_string()))
}

fn level_number(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// A `tracing` subscriber that sends every event to the host's log (spans are not kept).
struct Forward;

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        API.get().is_some_and(|api| {
            (api.log_enabled())(
                api.ctx(),
                level_number(metadata.level()),
                RStr::from_str(&addon_target(metadata.target())),
            )
        })
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let meta = event.metadata();
        log(
            level_number(meta.level()),
            &addon_target(meta.target()),
            &visitor.0,
        );
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}
