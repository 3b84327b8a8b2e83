//! The stable ABI between the host and an addon: every type that crosses the `cdylib`
//! boundary, and nothing else.
//!
//! The host loads an addon's library, checks the layout of [`AddonModule`] (abi_stable does
//! that), then reads [`AddonModule::sdk_version`], [`AddonModule::name`] and
//! [`AddonModule::panic_unwind`] before it calls anything. Every call into the addon goes
//! through one guarded entry point, [`AddonModule::call`], with an [`Invocation`] naming the
//! item by its index; every call back into the host goes through [`HostApi`].
//!
//! Addon authors never touch these types: the rest of the SDK wraps them. They are public
//! because the host uses them too.
//!
//! # Evolution
//! [`AddonModule`] and [`HostApi`] are abi_stable prefix types: fields are only ever appended
//! after the `last_prefix_field`, never reordered or renamed. The other types are plain
//! `#[repr(C)]` data; changing one is a breaking change of the SDK (a new minor version while
//! the SDK is 0.x), which the host detects through the layout check and the version check.
//! The websocket callbacks of [`HostApi`] (`ws_recv`, `ws_send`, `ws_close`) were appended
//! after the first version; they are read as optional fields, so an addon loaded by a host
//! without them gets an error from [`WebSocket`](crate::WebSocket), not a crash.
//!
//! SDK 0.3 changed plain types and the host interface, hence the minor version (a breaking
//! change: the host refuses an addon built with inphms-sdk 0.2, "SDK version mismatch: built
//! with inphms-sdk 0.2.0, the host's is 0.3.0"):
//! - [`HostApi`] carries its [`HostCtx`] and every callback takes a `ctx` first argument
//!   (the host's state is found through it, not through statics; issue 16);
//! - the handler model (issue 17): [`ItemKind`] gained `SocketEvent`, `StreamPoll` and
//!   `StreamDrop`, [`Invocation`] the `handle` and `socket_event` fields, [`Outcome`]
//!   `socket_events`, [`HttpRequest`] `body_file`, and [`HttpResponse`] `stream` (a body
//!   produced later: pulled, pushed, or a file); [`HostApi`] gained the optional
//!   `stream_open`, `stream_push`, `stream_close` and `ws_send_queued` callbacks.
//!
//! SDK 0.4 (issue 20, RPC): [`AddonItems`] gained `rpcs` ([`RpcDescriptor`]), [`ItemKind`]
//! `Rpc`, and [`HostApi`] the optional `dispatch_rpc` callback; then, optional too,
//! `db_service` (the `web` addon's `/web/database/*` pages) and `db_server_status` (issue
//! 21: Odoo's `/web/health?db_server_status=1`).
//!
//! SDK 0.4 (issue 21, the bus across hosts): [`HostApi`] gained the optional
//! `cursor_notify`, `db_execute` and `listen_wait` callbacks and the [`Heard`] type.
//!
//! SDK 0.4 (issue 18, addons extending each other) appended to plain types, hence the
//! minor version: [`RouteDescriptor::overrides`], [`AddonItems::hooks`] (with
//! [`HookDescriptor`] and [`HookKind`]), [`ItemKind::Hook`], [`Invocation::outcome`] and
//! [`Outcome::headers`].
//!
//! SDK 0.4 (issue 17, async routes) appended [`ItemKind::AsyncRoute`],
//! [`RouteDescriptor::asynchronous`], the optional [`AddonModule::call_async`] and the
//! optional `sleep` and `cursor_execute_async` callbacks of [`HostApi`] (futures crossing
//! as async-ffi's `FfiFuture`). Then, for async websocket callbacks,
//! [`ItemKind::AsyncSocketEvent`] and [`Outcome::socket_events_async`].

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec, Tuple2},
    StableAbi,
};

/// A request header as it crosses the boundary: name (lower case) and value, borrowed from
/// the host for the duration of the call.
pub type HeaderRef<'a> = Tuple2<RStr<'a>, RStr<'a>>;

/// The root module an addon exports; see the [module docs](self).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = AddonModuleRef)))]
#[sabi(missing_field(panic))]
pub struct AddonModule {
    /// The version of `inphms-sdk` the addon was compiled against.
    pub sdk_version: RStr<'static>,
    /// The addon's technical name, as declared by the addon (checked against its folder).
    pub name: RStr<'static>,
    /// `cfg!(panic = "unwind")` in the addon: the host refuses `panic = "abort"` builds,
    /// since a guarded call could not stop a panic there.
    #[cfg(not(feature = "abi-break-test"))]
    pub panic_unwind: bool,
    /// Test-only variant of the field above (see the `abi-break-test` feature).
    #[cfg(feature = "abi-break-test")]
    pub panic_unwind: u64,
    /// The items the addon declares: routes, dispatchers, commands, cron handlers.
    pub items: extern "C" fn() -> AddonItems,
    /// Called once, after the checks, with the host's services; runs the addon's
    /// `post_load` hooks. A failure refuses the addon.
    pub init: extern "C" fn(host: HostApiRef) -> Outcome,
    /// The one entry point for every later call, guarded by `catch_unwind`.
    #[sabi(last_prefix_field)]
    pub call: extern "C" fn(invocation: Invocation<'_>) -> Outcome,
    /// An async route's entry point ([`ItemKind::AsyncRoute`]): its handler's future, polled
    /// by the host; the request's views stay valid until it is dropped. A handler's panic is
    /// an error outcome (as for `call`); async-ffi reports any other panic of a poll.
    #[sabi(missing_field(option))]
    pub call_async: extern "C" fn(invocation: Invocation<'_>) -> async_ffi::FfiFuture<Outcome>,
}

impl RootModule for AddonModuleRef {
    declare_root_module_statics! {AddonModuleRef}
    const BASE_NAME: &'static str = "inphms_addon";
    const NAME: &'static str = "inphms_addon";
    #[cfg(not(feature = "old-sdk-version-test"))]
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
    /// Test-only (see the `old-sdk-version-test` feature): an addon built with the 0.2 SDK.
    #[cfg(feature = "old-sdk-version-test")]
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.2.0");
}

/// The host's opaque handle, given in [`HostApi::ctx`] and handed back as the first
/// argument of every callback, so that the host finds its state through it rather than
/// through process-wide statics (as abi_stable's plugin examples pass their application
/// handle). Addons never look inside; it lives as long as the addon's image.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCtx(pub *const core::ffi::c_void);

// SAFETY: the pointer is an opaque token for the host; the host's state behind it is
// `Send + Sync`, and addons never dereference it.
unsafe impl Send for HostCtx {}
// SAFETY: as above.
unsafe impl Sync for HostCtx {}

/// Services the host offers to addons; handed to [`AddonModule::init`]. Every callback
/// takes [`HostApi::ctx`] first.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostApiRef)))]
#[sabi(missing_field(panic))]
pub struct HostApi {
    /// The host's version (`CARGO_PKG_VERSION` of `inphms-host`).
    pub host_version: RStr<'static>,
    /// The host's handle, passed back as the first argument of every callback below.
    pub ctx: HostCtx,
    /// Writes one record to the host's log. `level`: 1 error, 2 warn, 3 info, 4 debug, 5 trace.
    pub log: extern "C" fn(ctx: HostCtx, level: u8, target: RStr<'_>, message: RStr<'_>),
    /// Whether a record of `level` for `target` would be written (same levels as `log`).
    pub log_enabled: extern "C" fn(ctx: HostCtx, level: u8, target: RStr<'_>) -> bool,
    /// Reads `key` of `section` in the configuration file (sections other than `[options]`
    /// are kept for addons), as TOML text.
    pub config_get:
        extern "C" fn(ctx: HostCtx, section: RStr<'_>, key: RStr<'_>) -> ROption<RString>,
    /// A CSRF token for the session `sid` (Odoo's `request.csrf_token()`), valid for
    /// `lifetime` seconds (0: one year).
    pub csrf_token: extern "C" fn(ctx: HostCtx, sid: RStr<'_>, lifetime: u64) -> RString,
    /// Calls the endpoint of a route (used by dispatchers to reach the route's handler,
    /// which may live in another addon).
    #[sabi(last_prefix_field)]
    pub call_endpoint:
        extern "C" fn(ctx: HostCtx, endpoint: EndpointRef, request: HttpRequest<'_>) -> Outcome,
    /// Waits for the next message of the websocket `socket` ([`HttpRequest::websocket`]):
    /// at most `timeout_ms` milliseconds, or until one arrives or the socket closes when
    /// `RNone`. Messages received before the close are delivered first.
    #[sabi(missing_field(option))]
    pub ws_recv: extern "C" fn(ctx: HostCtx, socket: u64, timeout_ms: ROption<u64>) -> WsEvent,
    /// Sends a message on the websocket `socket`; returns once the frame is written.
    #[sabi(missing_field(option))]
    pub ws_send:
        extern "C" fn(ctx: HostCtx, socket: u64, message: WsMessage) -> RResult<(), RString>,
    /// Starts the closing handshake of the websocket `socket` with `code` and `reason`
    /// (at most 123 bytes).
    #[sabi(missing_field(option))]
    pub ws_close: extern "C" fn(
        ctx: HostCtx,
        socket: u64,
        code: u16,
        reason: RStr<'_>,
    ) -> RResult<(), RString>,
    /// The handle of the database cursor of the running invocation (the request's or the
    /// cron job's), for the `cursor_*` callbacks; an error when it has no database.
    #[sabi(missing_field(option))]
    pub cursor_env: extern "C" fn(ctx: HostCtx) -> RResult<u64, ErrorInfo>,
    /// Runs one SQL statement with `$1`-style parameters on the cursor `cursor`, inside its
    /// transaction. A SQL error comes back as an [`ErrorInfo`] named `inphms.sql_db.*`.
    #[sabi(missing_field(option))]
    pub cursor_execute: extern "C" fn(
        ctx: HostCtx,
        cursor: u64,
        sql: RStr<'_>,
        params: RVec<SqlValue>,
    ) -> RResult<SqlRows, ErrorInfo>,
    /// Commits the cursor's transaction (the next statement starts a new one).
    #[sabi(missing_field(option))]
    pub cursor_commit: extern "C" fn(ctx: HostCtx, cursor: u64) -> RResult<(), ErrorInfo>,
    /// Rolls back the cursor's transaction.
    #[sabi(missing_field(option))]
    pub cursor_rollback: extern "C" fn(ctx: HostCtx, cursor: u64) -> RResult<(), ErrorInfo>,
    /// Triggers the cron jobs whose name or handler is `job` now: a trigger row in the
    /// cursor's transaction, and a wake-up of the cron workers once it commits. Returns the
    /// number of jobs triggered.
    #[sabi(missing_field(option))]
    pub cron_trigger:
        extern "C" fn(ctx: HostCtx, cursor: u64, job: RStr<'_>) -> RResult<u64, ErrorInfo>,
    /// The databases visible from the host name `host` (Odoo's `db_list`); an access error
    /// when the listing is disabled (`list_db = false`).
    #[sabi(missing_field(option))]
    pub db_list: extern "C" fn(ctx: HostCtx, host: RStr<'_>) -> RResult<RVec<RString>, ErrorInfo>,
    /// Opens a push stream (a response body fed later by [`HostApi::stream_push`], from any
    /// thread): its handle, for [`BodyStream::Push`]. `capacity` is the most chunks waiting
    /// to be written; past it a push is refused (the client reads too slowly).
    #[sabi(missing_field(option))]
    pub stream_open: extern "C" fn(ctx: HostCtx, capacity: u32) -> u64,
    /// Appends a chunk to the push stream `stream`, never blocking: an error when the
    /// stream is closed, its client gone, or `capacity` chunks already wait.
    #[sabi(missing_field(option))]
    pub stream_push:
        extern "C" fn(ctx: HostCtx, stream: u64, chunk: RVec<u8>) -> RResult<(), RString>,
    /// Ends the push stream `stream` (the response then ends); idempotent.
    #[sabi(missing_field(option))]
    pub stream_close: extern "C" fn(ctx: HostCtx, stream: u64),
    /// Queues a message on the websocket `socket` and returns at once (never blocks,
    /// callable from any thread, a runtime worker included). A socket whose queue is full
    /// (its client reads too slowly) is closed with 1013 (Try Again Later) and the message
    /// refused.
    #[sabi(missing_field(option))]
    pub ws_send_queued:
        extern "C" fn(ctx: HostCtx, socket: u64, message: WsMessage) -> RResult<(), RString>,
    /// Odoo's `odoo.http.dispatch_rpc(service, method, params)`: runs `method` of the RPC
    /// service `service` (`common`, `db`, `object`) with `params` (a JSON array) and returns
    /// its result as JSON text, or the error it raised (an `odoo.exceptions.*` name and kind).
    /// The `base` addon's `/xmlrpc` and `/jsonrpc` routes call it.
    #[sabi(missing_field(option))]
    pub dispatch_rpc: extern "C" fn(
        ctx: HostCtx,
        service: RStr<'_>,
        method: RStr<'_>,
        params: RStr<'_>,
    ) -> RResult<RString, ErrorInfo>,
    /// Calls the host's database manager (Odoo's `db` service): `method` with `params`, a
    /// JSON array in Odoo's argument order (`create_database`, `drop`, `dump`...); the
    /// result as JSON, or the fault (`AccessDenied` for a wrong master password). Also
    /// `backup_file` and `restore_file`, which pass the backup as a file path.
    #[sabi(missing_field(option))]
    pub db_service: extern "C" fn(
        ctx: HostCtx,
        method: RStr<'_>,
        params_json: RStr<'_>,
    ) -> RResult<RString, ErrorInfo>,
    /// Checks that the PostgreSQL server answers (Odoo's `db_connect('postgres').cursor()`
    /// of `/web/health?db_server_status=1`): a connection to its `postgres` database runs
    /// `SELECT 1`. An error when it cannot be reached or does not answer.
    #[sabi(missing_field(option))]
    pub db_server_status: extern "C" fn(ctx: HostCtx) -> RResult<(), ErrorInfo>,
    /// Queues a NOTIFY on `channel` (an identifier) with `payload` (under 8000 bytes) in the
    /// database where every host LISTENs (`cron_db`, `postgres` by default), sent once the
    /// cursor's transaction commits and dropped if it rolls back (Odoo's post-commit
    /// `pg_notify('imbus', …)` on `postgres`).
    #[sabi(missing_field(option))]
    pub cursor_notify: extern "C" fn(
        ctx: HostCtx,
        cursor: u64,
        channel: RStr<'_>,
        payload: RStr<'_>,
    ) -> RResult<(), ErrorInfo>,
    /// Runs one statement on `db` in a transaction of its own, committed: for an addon's
    /// own thread, outside any invocation (a dispatcher reading what to fan out).
    #[sabi(missing_field(option))]
    pub db_execute: extern "C" fn(
        ctx: HostCtx,
        db: RStr<'_>,
        sql: RStr<'_>,
        params: RVec<SqlValue>,
    ) -> RResult<SqlRows, ErrorInfo>,
    /// Waits at most `timeout_ms` for the notifications on `channel` that the host's one
    /// LISTEN connection (to `cron_db`) receives, from a thread that may block (not during
    /// an invocation). The first call on a channel LISTENs to it.
    #[sabi(missing_field(option))]
    pub listen_wait:
        extern "C" fn(ctx: HostCtx, channel: RStr<'_>, timeout_ms: u64) -> RResult<Heard, RString>,
    /// A timer of the host's runtime: the future is ready `ms` milliseconds after its
    /// first poll (for an async route: [`crate::time::sleep`]). No thread waits on it.
    #[sabi(missing_field(option))]
    pub sleep: extern "C" fn(ctx: HostCtx, ms: u64) -> async_ffi::FfiFuture<()>,
    /// [`HostApi::cursor_execute`] as a future the host's runtime drives: no thread waits
    /// for PostgreSQL (an async route's [`AsyncCursor`](crate::AsyncCursor)). The first
    /// statement of a transaction is sent with its `BEGIN`, in one round trip.
    #[sabi(missing_field(option))]
    pub cursor_execute_async: extern "C" fn(
        ctx: HostCtx,
        cursor: u64,
        sql: RStr<'_>,
        params: RVec<SqlValue>,
    )
        -> async_ffi::FfiFuture<RResult<SqlRows, ErrorInfo>>,
}

/// What [`HostApi::listen_wait`] heard.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct Heard {
    /// The payloads received on the channel since the last wait, in order.
    pub payloads: RVec<RString>,
    /// The connection was (re)made (or payloads dropped for a late waiter) since the last
    /// wait: what was sent meanwhile was not heard, so the waiter should look for itself.
    pub resync: bool,
}

/// What happened on a websocket served by event callbacks ([`ItemKind::SocketEvent`]).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// The socket is open (the 101 was sent): the first event.
    Open,
    /// A message arrived.
    Message(WsMessage),
    /// The socket closed (code and reason as [`WsEvent::Closed`]): the last event.
    Closed(u16, RString),
}

/// How a response's body is produced, past [`HttpResponse::body`].
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub enum BodyStream {
    /// The body is [`HttpResponse::body`], whole.
    #[default]
    Full,
    /// Pulled from the addon: the host asks for the next chunk ([`ItemKind::StreamPoll`]
    /// with this handle) only once the client took the one before. `length`: the total,
    /// when known (`Content-Length`), else chunked.
    Pull {
        /// The addon's handle of the producer.
        handle: u64,
        /// The body's length, when known.
        length: ROption<u64>,
    },
    /// Pushed: the handle of a stream from [`HostApi::stream_open`]; the response ends
    /// when it is closed.
    Push(u64),
    /// A file sent from disk: its path, read by the host as the client takes it.
    File(RString),
}

/// A websocket data message, as it crosses the boundary.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message (UTF-8).
    Text(RString),
    /// A binary message.
    Binary(RVec<u8>),
}

/// What [`HostApi::ws_recv`] observed.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A message arrived.
    Message(WsMessage),
    /// The timeout passed first.
    Timeout,
    /// The socket is closed (by the peer, the handler, or the server) and no message is
    /// left: the close code (1005 when the peer sent none, 1006 when the connection was
    /// lost without a close frame) and reason.
    Closed(u16, RString),
}

/// What an addon declares, as ABI-stable descriptors. Each item's `id` is its index in its
/// list; the lists are sorted (by path, name...) so that ids do not depend on link order.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default)]
pub struct AddonItems {
    /// Routes.
    pub routes: RVec<RouteDescriptor>,
    /// Dispatchers (routing types).
    pub dispatchers: RVec<DispatcherDescriptor>,
    /// Command-line commands.
    pub commands: RVec<CommandDescriptor>,
    /// Cron handlers.
    pub crons: RVec<CronDescriptor>,
    /// RPC methods (`#[rpc]`): what `object.execute_kw` calls.
    pub rpcs: RVec<RpcDescriptor>,
    /// `ir.http` hooks: auth methods, pre/post-dispatch, error handlers, fallbacks.
    pub hooks: RVec<HookDescriptor>,
}

/// One route: what Odoo's `@route` decorator records.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct RouteDescriptor {
    /// Index of the route in [`AddonItems::routes`].
    pub id: u32,
    /// The handler's name, for logs (`module::function`).
    pub endpoint: RString,
    /// Path patterns, e.g. `/web/content/<int:id>`.
    pub paths: RVec<RString>,
    /// The routing type: `http`, `json`, or one registered by an addon.
    pub routing_type: RString,
    /// `none`, `public`, `user` or `bearer` (an API key in `Authorization: Bearer KEY`).
    pub auth: RString,
    /// Allowed methods; empty means any.
    pub methods: RVec<RString>,
    /// The `Access-Control-Allow-Origin` value, if CORS is on.
    pub cors: ROption<RString>,
    /// Whether CSRF is checked on unsafe methods (http routes).
    pub csrf: bool,
    /// Whether the session may be saved after the handler.
    pub save_session: bool,
    /// Whether the route only reads the database.
    pub readonly: bool,
    /// Whether the route is a websocket endpoint.
    pub websocket: bool,
    /// Whether the handler may block (database, sleep, I/O). `false` declares a quick,
    /// non-blocking handler, which the host runs inline on its event loop instead of
    /// handing it to a thread (see ARCHITECTURE.md, "How handlers run").
    pub blocking: bool,
    /// Body size limit for this route, if it overrides the server's.
    pub max_content_length: ROption<u64>,
    /// The addon whose route (same path) this one overrides (`overrides = "web"`); empty
    /// when it declares no override.
    pub overrides: RString,
    /// A websocket route whose handshake must carry an `Origin` header (`require_origin =
    /// true`, Odoo's bus: `origin` among its required handshake headers): the host refuses
    /// one without it with 400 `Empty or missing header(s): origin`, before the 101.
    pub require_origin: bool,
    /// The handler is an `async fn`: the host polls its future ([`AddonModule::call_async`],
    /// [`ItemKind::AsyncRoute`]) on its runtime, without a thread of its own.
    pub asynchronous: bool,
}

/// A dispatcher: a routing type handled by addon code.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct DispatcherDescriptor {
    /// Index in [`AddonItems::dispatchers`].
    pub id: u32,
    /// The routing type it serves (the `type` of the routes it dispatches).
    pub routing_type: RString,
}

/// A command of the `inphms-host` command line.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CommandDescriptor {
    /// Index in [`AddonItems::commands`].
    pub id: u32,
    /// The command name (`inphms-host NAME`).
    pub name: RString,
    /// One line of help, shown by `inphms-host help`.
    pub help: RString,
}

/// A cron handler: a name that database jobs point to.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct CronDescriptor {
    /// Index in [`AddonItems::crons`].
    pub id: u32,
    /// The handler name, e.g. `base.autovacuum`.
    pub name: RString,
}

/// An RPC method: the `method` of the model `model` that `object.execute_kw` calls.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct RpcDescriptor {
    /// Index in [`AddonItems::rpcs`].
    pub id: u32,
    /// The model, e.g. `res.users`.
    pub model: RString,
    /// The method, e.g. `search_read`.
    pub method: RString,
}

/// Which kind of item an [`Invocation`] calls.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A route's handler, with [`Invocation::request`].
    Route,
    /// A dispatcher's `is_compatible` check; the answer is in [`Outcome::exit_code`] (1 yes).
    DispatcherCompatible,
    /// A dispatcher's `dispatch`, with the request and [`Invocation::endpoint`].
    DispatcherDispatch,
    /// A command, with [`Invocation::args`]; the answer is [`Outcome::exit_code`].
    Command,
    /// A cron handler.
    Cron,
    /// An event of a websocket served by callbacks: the route `item`'s handler object for
    /// socket [`Invocation::handle`], with the request and [`Invocation::socket_event`].
    SocketEvent,
    /// The next chunk of the pull stream [`Invocation::handle`]: in
    /// [`Outcome::response`]'s body; `RNone` (or an error) ends the stream.
    StreamPoll,
    /// The pull stream [`Invocation::handle`] is no longer wanted (finished, or its client
    /// gone): the addon drops its producer.
    StreamDrop,
    /// An RPC method: the caller's uid in [`Invocation::args`] (first), the database in
    /// the request's `db` and `{"args": [...], "kwargs": {...}}` in its `params`; the
    /// result in [`Outcome::value`] (JSON text). Runs in its own transaction, as the
    /// invocation cursor.
    Rpc,
    /// An `ir.http` hook ([`AddonItems::hooks`]), with the request; for a post-dispatch
    /// hook or an error handler, the handler's outcome in [`Invocation::outcome`].
    Hook,
    /// An async route's handler ([`RouteDescriptor::asynchronous`]), through
    /// [`AddonModule::call_async`], with [`Invocation::request`]. (Called with
    /// [`ItemKind::Route`] through [`AddonModule::call`], the SDK runs its future to the
    /// end on the calling thread.)
    AsyncRoute,
    /// An event of a websocket served by async callbacks ([`Outcome::socket_events_async`]),
    /// as [`ItemKind::SocketEvent`] but through [`AddonModule::call_async`].
    AsyncSocketEvent,
}

/// A reference to a route's endpoint, opaque to addons.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointRef {
    /// The host's index of the addon.
    pub addon: u32,
    /// The route id within that addon.
    pub route: u32,
}

/// One call into an addon.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct Invocation<'a> {
    /// The kind of item called.
    pub kind: ItemKind,
    /// The item's id within its kind.
    pub item: u32,
    /// The request, for routes and dispatchers.
    pub request: ROption<HttpRequest<'a>>,
    /// The endpoint a dispatcher should call.
    pub endpoint: ROption<EndpointRef>,
    /// Command-line arguments, for commands.
    pub args: RVec<RString>,
    /// The socket ([`ItemKind::SocketEvent`]) or stream ([`ItemKind::StreamPoll`],
    /// [`ItemKind::StreamDrop`]) the call is about; 0 otherwise.
    pub handle: u64,
    /// The websocket event of an [`ItemKind::SocketEvent`].
    pub socket_event: ROption<SocketEvent>,
    /// The handler's outcome, for an [`ItemKind::Hook`] of kind [`HookKind::PostDispatch`]
    /// or [`HookKind::HandleError`].
    pub outcome: ROption<Outcome>,
}

impl<'a> Invocation<'a> {
    /// A call of `kind` on item `item`, with nothing else.
    pub fn new(kind: ItemKind, item: u32) -> Self {
        Invocation {
            kind,
            item,
            request: ROption::RNone,
            endpoint: ROption::RNone,
            args: RVec::new(),
            handle: 0,
            socket_event: ROption::RNone,
            outcome: ROption::RNone,
        }
    }
}

/// A request as it crosses the boundary: already parsed and proxy-fixed by the host, and
/// borrowed from it for the duration of the call (nothing is copied to cross; the SDK's
/// [`Request`](crate::Request) reads these views and copies only what a handler keeps).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, Default)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`...
    pub method: RStr<'a>,
    /// The path, percent-decoded.
    pub path: RStr<'a>,
    /// The raw query string (without `?`).
    pub query_string: RStr<'a>,
    /// Headers in arrival order, names lower-cased.
    pub headers: RSlice<'a, HeaderRef<'a>>,
    /// The body.
    pub body: RSlice<'a, u8>,
    /// The client address (after proxy handling).
    pub remote_addr: RStr<'a>,
    /// `http` or `https` (after proxy handling).
    pub scheme: RStr<'a>,
    /// The `Host` (after proxy handling).
    pub host: RStr<'a>,
    /// The database selected for this request.
    pub db: ROption<RStr<'a>>,
    /// The session id.
    pub session_id: RStr<'a>,
    /// The session's content: a JSON object.
    pub session: RStr<'a>,
    /// The parameters for the handler: a JSON object (URL arguments merged with query and
    /// form fields for http routes, with JSON-RPC `params` for json routes).
    pub params: RStr<'a>,
    /// Whether the server runs with `--dev` (json errors then carry `debug`).
    pub dev_mode: bool,
    /// The websocket of an upgraded request (a route declared `websocket`): the handle
    /// the `ws_*` callbacks of [`HostApi`] take. `RNone` for any other request.
    pub websocket: ROption<u64>,
    /// The descriptor of the file a large body was spooled to (an unnamed file, `body`
    /// being its mapping), valid for the call: [`Request::body_file`](crate::Request::body_file)
    /// opens it again, read-only. `RNone` for a body in memory.
    pub body_file: ROption<i32>,
}

/// A response as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, in order (`Set-Cookie` may repeat), packed in one buffer by
    /// [`HeaderBlock::push`]: one allocation for all of them, not two per header.
    pub headers: HeaderBlock,
    /// The body (when [`HttpResponse::stream`] is [`BodyStream::Full`]).
    pub body: RVec<u8>,
    /// How the body is produced: whole in `body`, or streamed.
    pub stream: BodyStream,
}

/// Headers packed in one buffer: for each, the name's length (`u32`, little-endian), the
/// name, the value's length, the value. Lengths, not separators, delimit them, so no
/// byte of a name or value can start another header.
///
/// ```
/// # use inphms_sdk::abi::HeaderBlock;
/// let mut block = HeaderBlock::default();
/// block.push("Content-Type", "text/plain");
/// block.push("X-Odd", "a\r\nb: c");
/// let all: Vec<_> = block.iter().collect();
/// assert_eq!(all, [(&b"Content-Type"[..], &b"text/plain"[..]), (b"X-Odd", b"a\r\nb: c")]);
/// // A truncated block yields the complete headers only.
/// block.0.truncate(block.0.len() - 1);
/// assert_eq!(block.iter().count(), 1);
/// ```
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderBlock(pub RVec<u8>);

impl HeaderBlock {
    /// Appends one header.
    pub fn push(&mut self, name: &str, value: &str) {
        // RVec grows by exact reallocation: build in a Vec (amortized), then move back.
        let mut buf = std::mem::take(&mut self.0).into_vec();
        Self::encode(&mut buf, name, value);
        self.0 = buf.into();
    }

    /// Appends one header to a block being built in `buf` (`HeaderBlock(buf.into())` then
    /// takes it without a copy).
    pub fn encode(buf: &mut Vec<u8>, name: &str, value: &str) {
        if buf.capacity() == 0 {
            buf.reserve(128);
        }
        for part in [name.as_bytes(), value.as_bytes()] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&part[..(len as usize).min(part.len())]);
        }
    }

    /// The headers, in order, as `(name, value)` bytes; a truncated block ends early.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        Self::decode(&self.0)
    }

    /// The headers of a block held as bytes (see [`HeaderBlock::encode`]).
    pub fn decode(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut rest: &[u8] = block;
        std::iter::from_fn(move || {
            let mut take = || {
                let (len, tail) = rest.split_first_chunk::<4>()?;
                let len = u32::from_le_bytes(*len) as usize;
                let (part, tail) = (tail.get(..len)?, tail.get(len..)?);
                rest = tail;
                Some(part)
            };
            let name = take()?;
            let value = take()?;
            Some((name, value))
        })
    }
}

/// The class of an error, which decides how a dispatcher answers it (Odoo's exceptions).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything unexpected: 500, details hidden (http); code 200 (json).
    Internal,
    /// A user-facing error (`UserError`): 400 (http).
    User,
    /// Access refused (`AccessError`, `AccessDenied`): 403 (http).
    Access,
    /// Nothing there: 404 (http), code 404 (json).
    NotFound,
    /// The session is not logged in or expired: redirect to login (http), code 100 (json).
    SessionExpired,
    /// The request is malformed: 400.
    BadRequest,
    /// The handler panicked; the panic was caught in the addon.
    Panic,
}

/// An error raised by addon code.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ErrorInfo {
    /// Its class.
    pub kind: ErrorKind,
    /// Its name, e.g. `odoo.exceptions.UserError`.
    pub name: RString,
    /// Its message.
    pub message: RString,
    /// Its arguments, as a JSON array.
    pub arguments: RString,
    /// Details for developers (shown only with `--dev`).
    pub debug: RString,
}

/// The result of an [`Invocation`] or of [`AddonModule::init`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default)]
pub struct Outcome {
    /// The response, when the handler produced one (http routes, dispatchers).
    pub response: ROption<HttpResponse>,
    /// The JSON result of a json handler, or `None` when it returned nothing.
    pub value: ROption<RString>,
    /// A command's exit code, or a boolean answer.
    pub exit_code: i32,
    /// The error, when the call failed.
    pub error: ROption<ErrorInfo>,
    /// The session's new content (a JSON object) when the handler changed it.
    pub session: ROption<RString>,
    /// Whether the session id must be rotated (login, logout).
    pub rotate_session: bool,
    /// A websocket route's handler registered event callbacks for its socket: the host
    /// keeps the socket open and calls them ([`ItemKind::SocketEvent`]).
    pub socket_events: bool,
    /// Headers to add to the final answer, whatever produces it (Odoo's
    /// `request.future_response.headers`): set by hooks and handlers alike.
    pub headers: HeaderBlock,
    /// With `socket_events`: the callbacks are async ([`ItemKind::AsyncSocketEvent`]).
    pub socket_events_async: bool,
}

/// A SQL value as it crosses the boundary (parameters and result cells).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`, `integer`, `bigint`, `oid`.
    Int(i64),
    /// `real`, `double precision`.
    Float(f64),
    /// `numeric`, as its exact decimal text (`-12.50`, `NaN`).
    Numeric(RString),
    /// `text`, `varchar`, `char`, `name`, and any type without a better mapping.
    Text(RString),
    /// `bytea`.
    Bytes(RVec<u8>),
    /// `json`, `jsonb`, as JSON text.
    Json(RString),
    /// `timestamp` (and `timestamptz`, in UTC): microseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
    /// `date`: days since 1970-01-01.
    Date(i32),
}

/// The result of a statement: its columns and rows, and the number of rows affected.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq)]
pub struct SqlRows {
    /// The column names, in order.
    pub columns: RVec<RString>,
    /// The rows, each with one value per column.
    pub rows: RVec<RVec<SqlValue>>,
    /// Rows returned (a query) or affected (`INSERT`, `UPDATE`, `DELETE`...).
    pub rowcount: u64,
}

/// The kind of an `ir.http` hook ([`HookDescriptor`]).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// An authentication method, used by routes with `auth = "<name>"`.
    Auth,
    /// Runs before the handler; may answer early.
    PreDispatch,
    /// Runs after the handler; may change its result.
    PostDispatch,
    /// Maps an error to a response.
    HandleError,
    /// Serves a path no route matched, before the 404.
    Fallback,
}

/// An `ir.http` hook an addon declares.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct HookDescriptor {
    /// Index in [`AddonItems::hooks`].
    pub id: u32,
    /// Its kind.
    pub kind: HookKind,
    /// The auth method's name for [`HookKind::Auth`]; the function's path otherwise.
    pub name: RString,
}
