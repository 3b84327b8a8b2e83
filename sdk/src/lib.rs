//! # inphms-sdk
//!
//! Everything a third-party author needs to write an Inphms addon: a `cdylib` that the
//! `inphms-host` server loads at run time through a stable ABI.
//!
//! An addon is a folder holding a `__manifest__.toml` and a cargo crate. Its library declares
//! items with attribute macros, and exports its root module with [`addon!`]:
//!
//! ```
//! use inphms_sdk::{route, command, post_load, Host, Request, Response, Result};
//! use serde_json::{json, Value};
//!
//! /// `GET /hello/42` answers `Hello 42`.
//! #[route("/hello/<int:id>", auth = "none")]
//! fn hello(_req: &mut Request, id: i64) -> String {
//!     format!("Hello {id}")
//! }
//!
//! /// A JSON-RPC route: `{"params": {"a": 1, "b": 2}}` answers `{"result": 3}`.
//! #[route("/hello/add", type = "json", auth = "none")]
//! fn add(_req: &mut Request, a: i64, b: i64) -> Value {
//!     json!(a + b)
//! }
//!
//! /// Says hello from the command line (`inphms-host hello`).
//! #[command(name = "hello")]
//! fn hello_cmd(args: &[String]) -> i32 {
//!     println!("hello {}", args.join(" "));
//!     0
//! }
//!
//! #[post_load]
//! fn setup(_host: &Host) -> Result<()> {
//!     tracing::info!("hello addon loaded");
//!     Ok(())
//! }
//!
//! inphms_sdk::addon!();
//! # fn main() {}
//! ```
//!
//! * [`route`]: a request handler, with Odoo's routing keys (`type`, `auth`, `methods`,
//!   `cors`, `csrf`, `save_session`, `readonly`, `websocket`, `blocking`,
//!   `max_content_length`).
//!   Path arguments (`<int:id>`, `<string:name>`, `<float:x>`, `<path:rest>`) and request
//!   parameters are the function's arguments, read by name (Odoo's keyword arguments), or
//!   by type through [`FromRequest`] ([`extract`]: `Option<T>`, `Vec<T>` for a repeated key,
//!   `#[param(default = ...)]`, [`Params`], [`Form`], [`Json`], [`Cursor`]); the
//!   [`Request`] and its [`Session`] by reference, in any position. The macro checks the
//!   path against the arguments when the addon is built (a placeholder without its
//!   argument, an unknown converter, `<int:...>` to a non-integer does not compile).
//!   A http route returns anything [`IntoResponse`] (a [`Response`], text, bytes,
//!   `(status, body)` with [`status`] codes); a json route anything [`IntoJsonResult`] or
//!   any `Serialize` value. Either may return `Result<_, E>` with `E: Into<Error>`
//!   (`std::io::Error`, boxed errors...): `?` just works.
//!   Handlers run on a thread of the host's handler pool, where they may block (database,
//!   sleep, I/O) and are held to `limit_time_real`. A route declared `blocking = false`
//!   promises a quick handler that never blocks: the host then runs it inline on its event
//!   loop, which saves a thread hand-off per request (several microseconds) but cannot stop
//!   it at the time limit. Use it for health checks and pure computations.
//! * Extending another addon (Odoo's controller inheritance): a route of an addon that
//!   depends, directly or not, on the addon serving the same path overrides it, and
//!   [`Request::call_super`] calls the overridden handler (Python's `super()`); declare it
//!   with `overrides = "that_addon"` so that the host checks the route exists (see
//!   [`route`]). `inphms-host routes` prints the route table with its overrides.
//! * `ir.http` hooks ([`ir_http`]): [`auth_method`] (routes' `auth = "name"`),
//!   [`pre_dispatch`], [`post_dispatch`], [`handle_error`], [`fallback`].
//! * [`command`](macro@command): a command of the `inphms-host` command line, its arguments
//!   parsed by [`clap`] (see the [`command`](mod@command) module).
//! * [`cron`]: a handler that database cron jobs point to by name. Its work through the
//!   job's cursor ([`CronContext::cursor`]) commits with the job's bookkeeping, so it is done
//!   exactly once, even through a PostgreSQL outage; effects outside that cursor are
//!   at-least-once (see [`cron`]).
//! * [`rpc`](macro@rpc): a model's method for Odoo's external API (`object.execute_kw` over XML-RPC
//!   and JSON-RPC), with the caller's uid, cursor and context ([`RpcContext`]).
//! * [`post_load`]: a hook run once, when the host loads the addon.
//! * [`Dispatcher`] and [`register_dispatcher!`]: a new routing type.
//! * [`WebSocket`]: a route declared `websocket = true` gets the upgraded connection from
//!   [`Request::websocket`] and exchanges [`Message`]s through the host: served by event
//!   callbacks ([`WsHandler`], [`WebSocket::serve`]: an idle socket costs no thread), or by
//!   a loop on [`WebSocket::recv`] (a thread for the socket's life). [`WebSocket::send`]
//!   works from anywhere (another request, a cron job) through [`WebSocket::from_id`].
//!   `require_origin = true` makes the host refuse a handshake without an `Origin` header
//!   (400 `Empty or missing header(s): origin`, before the 101), as Odoo's bus does:
//!
//!   ```
//!   use inphms_sdk::{route, Request, Result};
//!
//!   #[route("/echo_ws", auth = "public", websocket = true, require_origin = true)]
//!   fn echo_ws(req: &mut Request) -> Result<()> {
//!       let ws = req.websocket()?;
//!       while let Some(message) = ws.recv() {
//!           ws.send(message)?;
//!       }
//!       Ok(())
//!   }
//!   # inphms_sdk::addon!();
//!   # fn main() {}
//!   ```
//! * Streamed bodies ([`stream`]): [`Response::stream`] (chunks pulled as the client takes
//!   them), [`Response::event_stream`] and [`PushStream`] (server-sent events or chunks
//!   pushed later from anywhere), [`Response::file`] (a file sent from disk); and
//!   [`Request::body_reader`] reads a large upload in pieces, [`Request::body_file`] takes
//!   the file it was spooled to.
//!
//! Every entry point is guarded: a panic in addon code becomes an error (a 500 for a
//! route) and the host keeps serving. Build addons with `panic = "unwind"` (cargo's
//! default): the host refuses `panic = "abort"` builds. The addon's own `tracing` events
//! reach the host's log.

#![warn(missing_docs)]

// The stable ABI between the host and addons: public because the host (another crate)
// implements its side, hidden from the docs because an addon author never uses it
// directly (the macros and the types above are the authoring API). abi_stable's
// interface/implementation split would move it to its own crate; hiding keeps one crate.
#[doc(hidden)]
pub mod abi;
mod async_cursor;
mod async_route;
pub mod async_socket_events;
pub mod bus;
pub mod command;
mod cookie;
pub mod cursor;
mod dispatcher;
mod error;
pub mod extract;
mod host;
pub mod ir_http;
pub mod json;
mod json_member;
pub mod multipart;
mod registry;
mod reply;
pub use reply::escape_html;
mod request;
mod response;
pub mod rpc;
pub mod session;
pub mod socket_events;
pub mod status;
pub mod stream;
pub mod time;
pub mod websocket;

pub use async_cursor::AsyncCursor;
pub use cookie::{Cookie, SameSite};
#[allow(deprecated)]
pub use cursor::Value;
pub use cursor::{Cursor, FromValue, Row, Rows, SqlValue};
pub use dispatcher::{Dispatcher, Endpoint, EndpointResult};
pub use error::{exceptions, Error, Result};
pub use extract::{Form, FromRequest, Params};
pub use host::Host;
// Each attribute macro with its page: its keys and a compiling example (doc tests).
#[doc = include_str!("docs/addon.md")]
pub use inphms_sdk_macros::addon;
#[doc = include_str!("docs/auth_method.md")]
pub use inphms_sdk_macros::auth_method;
#[doc = include_str!("docs/command.md")]
pub use inphms_sdk_macros::command;
#[doc = include_str!("docs/cron.md")]
pub use inphms_sdk_macros::cron;
#[doc = include_str!("docs/fallback.md")]
pub use inphms_sdk_macros::fallback;
#[doc = include_str!("docs/handle_error.md")]
pub use inphms_sdk_macros::handle_error;
#[doc = include_str!("docs/post_dispatch.md")]
pub use inphms_sdk_macros::post_dispatch;
#[doc = include_str!("docs/post_load.md")]
pub use inphms_sdk_macros::post_load;
#[doc = include_str!("docs/pre_dispatch.md")]
pub use inphms_sdk_macros::pre_dispatch;
#[doc = include_str!("docs/route.md")]
pub use inphms_sdk_macros::route;
#[doc = include_str!("docs/rpc.md")]
pub use inphms_sdk_macros::rpc;

pub use async_socket_events::AsyncWsHandler;
pub use request::Request;
pub use response::{IntoJsonResult, IntoResponse, Json, Response};
pub use rpc::RpcContext;
pub use session::Session;
pub use socket_events::WsHandler;
pub use stream::PushStream;
pub use websocket::{Message, RecvError, WebSocket};

/// The `clap` crate, to declare the arguments of an addon's [`command`](macro@command) (see
/// the [`command`](mod@command) module).
pub use clap;

/// The `tracing` crate the SDK forwards to the host's log: use its macros (or depend on
/// `tracing = "0.1"`, which cargo unifies with this one) and the events reach the host.
pub use tracing;

/// The version of this SDK; the host refuses addons built with an incompatible one.
#[cfg(not(feature = "old-sdk-version-test"))]
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Test-only (see the `old-sdk-version-test` feature): an addon built with the 0.2 SDK.
#[cfg(feature = "old-sdk-version-test")]
pub const SDK_VERSION: &str = "0.2.0";

/// What a cron handler receives.
///
/// Its [`CronContext::cursor`] is the job's own transaction: the host took the job's lock in
/// it and writes the job's bookkeeping (next call, consumed triggers, failure count, the
/// run's record) in it after the handler returns, then commits once. So the work done
/// through this cursor is **exactly once**: it commits with the record of its run, or
/// neither commits and the job, still due, runs again with nothing of the failed run kept.
/// Two runs of one job never overlap, on any host: the run holds its job until it ends,
/// across its handler's commits (a trigger the handler adds for its job runs it after).
/// What the handler does outside this cursor (another connection, files, mail, HTTP calls)
/// is **at least once**: it is repeated when a run is lost before its commit. See [`cron`].
#[derive(Debug, Clone, Default)]
pub struct CronContext {
    /// The database the job belongs to.
    pub db: String,
    /// The job's id (`ir_cron.id`), 0 when unknown.
    pub job_id: i64,
    /// The job's name (`ir_cron.cron_name`).
    pub job_name: String,
}

/// Implementation details used by the macros. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::async_route::{async_only, AsyncReply};
    pub use crate::extract::{ByName, ByType, Extract};
    pub use crate::ir_http::{Hook, HookFn};
    pub use crate::registry::{Command, Cron, DispatcherEntry, PostLoad, Reply, Route};
    pub use crate::reply::{ReplyHttp, ReplyJson, ReplySerialize, Returned};
    pub use crate::rpc::RpcMethod;
    pub use abi_stable;
    pub use inventory;

    use crate::abi::{AddonModule, AddonModuleRef};
    use abi_stable::{prefix_type::PrefixTypeTrait, std_types::RStr};

    /// Records the addon's name and its crate's name, for its log targets.
    pub fn addon_names(name: &'static str, krate: &'static str) {
        crate::host::set_names(name, krate);
    }

    /// Builds the root module of an addon named `name`.
    pub fn root_module(name: &'static str, panic_unwind: bool) -> AddonModuleRef {
        AddonModule {
            sdk_version: RStr::from_str(crate::SDK_VERSION),
            name: RStr::from_str(name),
            #[cfg(not(feature = "abi-break-test"))]
            panic_unwind,
            #[cfg(feature = "abi-break-test")]
            panic_unwind: panic_unwind as u64,
            items: crate::registry::describe_items,
            init: crate::registry::init,
            call: crate::registry::call,
            call_async: crate::async_route::call_async,
        }
        .leak_into_prefix()
    }
}
