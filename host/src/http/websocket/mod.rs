//! Websockets on the HTTP port: the handshake check, the registry of open sockets, the task
//! that owns each connection, and the host side of the `ws_*` callbacks of the host API.
//!
//! * **Handshake** ([`check_handshake`], Odoo's bus rules, reference §6): missing
//!   `Connection`, `Upgrade` or `Sec-WebSocket-Key`/`-Version` headers, an `Upgrade` other
//!   than `websocket`, a `Connection` without `upgrade`, or a key that is not 16 bytes of
//!   base64 give 400; a version other than 13 gives 426 with `Sec-WebSocket-Version: 13`.
//!   A route declared `require_origin` (the bus's `/websocket`) also needs an `Origin`
//!   (Odoo's `_REQUIRED_HANDSHAKE_HEADERS`): 400 `Empty or missing header(s): origin`
//!   before the 101. A foreign `Origin` is not refused, as in Odoo.
//!   The answer is a 101 with `Sec-WebSocket-Accept` (tungstenite's `derive_accept_key`).
//! * **Connection** ([`open`]): hyper hands the upgraded connection over
//!   ([`hyper::upgrade::OnUpgrade`]); one tokio task per socket runs it with
//!   tokio-tungstenite (frames, pings answered, the closing handshake) and exchanges whole
//!   messages through two bounded queues (`link`): incoming messages (64 at most waiting; past
//!   that the socket is not read, so TCP pushes back) and commands (send, close; at most
//!   [`SEND_QUEUE`] waiting and `websocket_send_buffer` bytes ([`budget`]), past which the
//!   message is refused and the socket closed with 1013: a client that does not read its
//!   messages never holds unbounded memory; a write the client does not take in
//!   [`SEND_TIMEOUT`] cuts it). The task also enforces the keep-alive (a ping after
//!   `websocket_ping_interval` of silence, the connection cut when it is not answered in as
//!   long, the clock stopped while the socket is not read; Close 4002 "Keep alive timeout"
//!   after `websocket_keep_alive_timeout`,
//!   as Odoo's bus, whose client then reconnects) and Odoo's rate limit
//!   (`websocket_rate_limit_burst` messages within that many `websocket_rate_limit_delay`s,
//!   else Close 1013). An idle socket costs this task (one timer for all its deadlines),
//!   tungstenite's read buffer (512 bytes: the socket is read in larger chunks, what is not
//!   taken kept until it is, `spill`), its empty queues, the task delivering its events
//!   when it has callbacks, and a descriptor: no thread (≈ 9 KiB, bench item 15).
//! * **Who reads the messages**: either the route's handler itself, a loop on the blocking
//!   pool ([`recv`], blocking its thread on the runtime), or, for a handler that registered
//!   event callbacks, a task of the application delivering each message ([`next`]) to a
//!   callback (`http::application::socket_events`). [`send_queued`] and [`close`] never
//!   wait, so they are callable from anywhere (another request, a cron job, an event loop
//!   worker), but for a loop handler sending on its own socket, which waits for room
//!   ([`LoopHandlerCall`]), and for an event callback, whose sends are held until it
//!   commits ([`deferred`]); [`send`] (SDKs before 0.3) waits for the write.
//! * **Ids** are 63 random bits (never guessed or counted by another addon; they fit an
//!   `i64`, as a route's `<int:id>` or a `bigint` column).
//! * **Registry**: sockets are tracked apart from HTTP connections (hyper's graceful
//!   shutdown no longer sees an upgraded connection). [`close_all`] sends Close with a
//!   code (1001 Going Away at shutdown or swap) to every open socket; [`set_accepting`]
//!   `false` refuses new upgrades (503) while the server stops; [`wait_closed`] waits for
//!   the connection tasks to end. A peer that does not answer a Close within
//!   [`CLOSE_TIMEOUT`] is cut.
//!
//! Websockets do not count against the HTTP concurrency cap and are not bounded by
//! `limit_time_real` (Odoo exempts them too). At most `websocket_max_connections` are open
//! (503 past it; below `http_max_connections`, half of it by default, since an upgraded
//! connection keeps its HTTP slot and is never evicted: see [`Settings::new`]), and at most [`MAX_LOOP_HANDLERS`] handlers run at once (a loop handler
//! holds a thread of the blocking pool for its socket's life; half of tokio's default pool,
//! leaving the rest to HTTP handlers).
//!
//! The module has one file per job: [`handshake`] (the upgrade's checks and the 101),
//! [`settings`] (the limits from the configuration, the rate limit), [`registry`] (the
//! open sockets, their slots, their close at stop or swap), [`connection`] (the task owning
//! each connection), [`budget`] (the byte budgets of the send queues), [`send`] (the
//! handler's side: `recv`, `send`, `close`) and [`deferred`] (a callback's sends held until
//! its transaction commits).

pub mod budget;
pub mod connection;
pub mod deferred;
pub mod handshake;
mod link;
pub mod registry;
pub mod send;
pub mod settings;
mod spill;

pub use deferred::Held;
pub use handshake::{check_handshake, is_upgrade_request, refusal_reason, switching_protocols};
pub use registry::{
    close_all, close_for_addons, open, open_count, queued_bytes, release, reserve, set_accepting,
    set_push_gate, shut, wait_closed, LoopGuard, Opened, PushGate, Reservation, SocketError,
    Sockets,
};
pub use send::{close, flush_async, next, recv, send, send_queued, LoopHandlerCall};
pub use settings::{Settings, MAX_KEEP_ALIVE_SECS, MAX_RATE_DELAY_SECS};

use std::time::Duration;

const TARGET: &str = "inphms.http.websocket";
/// Websocket route handlers running at once, at most (a loop handler holds its thread).
pub const MAX_LOOP_HANDLERS: usize = 256;
/// Messages queued to send on a socket, at most.
pub const SEND_QUEUE: usize = 256;
/// How long a write may wait for the client to take data before the connection is cut
/// (short: the connection task does nothing else of its socket meanwhile).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The only protocol version spoken (RFC 6455).
pub const VERSION: &str = "13";
/// Incoming messages waiting for the handler, at most.
const INCOMING_QUEUE: usize = 64;
/// How long the peer has to answer a Close before the connection is cut.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message accepted from a peer, whatever the route says (tungstenite's
/// default).
const MAX_MESSAGE: usize = 64 << 20;
/// The largest message accepted from a peer on a route that sets no `max_content_length`
/// (Odoo's bus: `Websocket.MESSAGE_MAX_SIZE`); past it, Close 1009.
pub const MESSAGE_MAX_SIZE: u64 = 1 << 20;

/// Close codes (RFC 6455 §7.4.1).
pub mod code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is going away (shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// No status code was present in the peer's Close.
    pub const NO_STATUS: u16 = 1005;
    /// The connection was lost without a Close.
    pub const ABNORMAL: u16 = 1006;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
    /// The handler failed.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Try again later: rate limit exceeded, or a client too slow to take its messages.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Odoo's bus (`CloseCode.SESSION_EXPIRED`): the socket's session is gone (logged out
    /// over HTTP, or vacuumed), or its token no longer matches its user's.
    pub const SESSION_EXPIRED: u16 = 4001;
    /// Odoo's bus: the socket was open `websocket_keep_alive_timeout` seconds.
    pub const KEEP_ALIVE_TIMEOUT: u16 = 4002;
}
