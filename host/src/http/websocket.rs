//! Websockets on the HTTP port: the handshake check, the registry of open sockets, the task
//! that owns each connection, and the host side of the `ws_*` callbacks of the host API.
//!
//! * **Handshake** ([`check_handshake`], Odoo's bus rules, reference §6): missing
//!   `Connection`, `Upgrade` or `Sec-WebSocket-Key`/`-Version` headers, an `Upgrade` other
//!   than `websocket`, a `Connection` without `upgrade`, or a key that is not 16 bytes of
//!   base64 give 400; a version other than 13 gives 426 with `Sec-WebSocket-Version: 13`.
//!   The answer is a 101 with `Sec-WebSocket-Accept` (tungstenite's `derive_accept_key`).
//! * **Connection** ([`open`]): hyper hands the upgraded connection over
//!   ([`hyper::upgrade::OnUpgrade`]); one tokio task per socket runs it with
//!   tokio-tungstenite (frames, pings answered, the closing handshake) and exchanges whole
//!   messages through two bounded channels: incoming messages (64 at most waiting; past
//!   that the socket is not read, so TCP pushes back) and commands (send, close; at most
//!   [`SEND_QUEUE`] waiting, past which the socket is closed with 1013: a client that does
//!   not read its messages never holds unbounded memory; a write the client does not take
//!   in [`SEND_TIMEOUT`] cuts it). The task also enforces the keep-alive (a ping after
//!   [`PING_AFTER`] of silence, the connection cut when it is not answered in
//!   [`PONG_TIMEOUT`]; Close 4002 "Keep alive timeout" after `websocket_keep_alive_timeout`,
//!   as Odoo's bus, whose client then reconnects) and Odoo's rate limit
//!   (`websocket_rate_limit_burst` messages within that many `websocket_rate_limit_delay`s,
//!   else Close 1013). An idle socket costs this task, its buffers (4 KiB to read) and a
//!   descriptor: no thread.
//! * **Who reads the messages**: either the route's handler itself, a loop on the blocking
//!   pool ([`recv`], blocking its thread on the runtime), or, for a handler that registered
//!   event callbacks, a task of the application delivering each message ([`next`]) to a
//!   callback (`http::application::socket_events`). [`send_queued`] and [`close`] never
//!   wait, so they are callable from anywhere (another request, a cron job, an event loop
//!   worker); [`send`] (SDKs before 0.3) waits for the write.
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

use super::response::{self, HttpResult};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, StatusCode, Version};
use hyper_util::rt::TokioIo;
use inphms_sdk::abi::{WsEvent, WsMessage};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

const TARGET: &str = "inphms.http.websocket";

/// Websocket route handlers running at once, at most (a loop handler holds its thread).
pub const MAX_LOOP_HANDLERS: usize = 256;
/// Messages queued to send on a socket, at most.
pub const SEND_QUEUE: usize = 256;
/// How long a write may wait for the client to take data before the connection is cut.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Silence from the peer after which it is pinged.
pub const PING_AFTER: Duration = Duration::from_secs(30);
/// How long a pinged peer has to send anything back before the connection is cut.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(30);
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

// ---------------------------------------------------------------------------------------------
// Handshake

/// Whether a request asks for a websocket upgrade (`Upgrade: websocket`).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Checks an upgrade request; the `Sec-WebSocket-Accept` value, or the error response.
pub fn check_handshake(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<String, Box<HttpResult>> {
    let required = [
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "upgrade",
    ];
    let missing: Vec<&str> = required
        .into_iter()
        .filter(|h| header(headers, h).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(bad_request(&format!(
            "Empty or missing header(s): {}",
            missing.join(", ")
        )));
    }
    if method != Method::GET || version != Version::HTTP_11 {
        return Err(bad_request(
            "A websocket upgrade is a GET request over HTTP/1.1",
        ));
    }
    if !is_upgrade_request(headers) {
        return Err(bad_request("Invalid upgrade header"));
    }
    let connection_upgrade = header(headers, "connection").is_some_and(|c| {
        c.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err(bad_request("Invalid connection header"));
    }
    if header(headers, "sec-websocket-version") != Some(VERSION) {
        let mut r = response::html_error(
            426,
            Some("Wrong websocket version was given during the handshake"),
        );
        r.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static(VERSION));
        return Err(Box::new(r));
    }
    let key = header(headers, "sec-websocket-key").unwrap_or_default();
    match STANDARD.decode(key) {
        Ok(k) if k.len() == 16 => Ok(derive_accept_key(key.as_bytes())),
        Ok(_) => Err(bad_request(
            "Sec-WebSocket-Key should be of length 16 once decoded",
        )),
        Err(_) => Err(bad_request("Sec-WebSocket-Key should be b64 encoded")),
    }
}

fn bad_request(message: &str) -> Box<HttpResult> {
    Box::new(response::html_error(400, Some(message)))
}

/// The 101 answer to an accepted handshake.
pub fn switching_protocols(accept: &str) -> HttpResult {
    let mut r = hyper::Response::new(response::Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert("sec-websocket-accept", v);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Registry

enum Command {
    /// A message to write; the reply (a loop handler's blocking `send`) once written.
    Send(Message, Option<oneshot::Sender<Result<(), SocketError>>>),
    /// Start the closing handshake (after the messages queued before).
    Close(CloseFrame),
}

/// Why a handler's send or close on a websocket was refused; the text crosses the host API
/// to the addon.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// No open socket has this id.
    #[error("no such websocket")]
    NoSuchSocket,
    /// The connection is closed (or closing).
    #[error("the websocket is closed")]
    Closed,
    /// The socket's queue of messages to send is full: its client does not read them.
    #[error("the websocket's send queue is full ({SEND_QUEUE} messages): its client reads too slowly; closed with 1013")]
    QueueFull,
    /// Writing the message failed.
    #[error("websocket send failed: {0}")]
    Send(#[source] WsError),
    /// A close code that an endpoint may not send (RFC 6455 section 7.4).
    #[error("{0} is not a close code an endpoint may send")]
    CloseCode(u16),
    /// A close reason longer than a control frame allows.
    #[error("a websocket close reason is at most 123 bytes")]
    ReasonTooLong,
}

/// One open socket, as the handler's callbacks reach it.
struct Socket {
    /// The addon whose route serves the socket (a swap of that addon closes it).
    addon: String,
    runtime: tokio::runtime::Handle,
    incoming: tokio::sync::Mutex<mpsc::Receiver<WsMessage>>,
    commands: mpsc::Sender<Command>,
    shutdown: watch::Sender<Option<(u16, String)>>,
    /// The close code and reason, once known.
    closed: Mutex<Option<(u16, String)>>,
}

impl Socket {
    fn close_status(&self) -> (u16, String) {
        lock(&self.closed)
            .clone()
            .unwrap_or((code::ABNORMAL, String::new()))
    }

    /// Asks the connection task to close with `code` at once, ahead of the messages queued
    /// (through the watch, which never fills up).
    fn shut(&self, code: u16, reason: &str) {
        self.shutdown.send_replace(Some((code, reason.to_owned())));
    }

    /// Asks the connection task to close with `code` once the messages queued before are
    /// written (at once when the queue is full).
    fn close_after_queued(&self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.commands.try_send(Command::Close(frame))
        {
            self.shut(code, reason);
        }
    }
}

/// The open sockets of one host, and its connection tasks: owned by the composition root
/// (through [`Services`](super::Services)) and passed to each function here.
pub struct Sockets {
    table: Mutex<HashMap<u64, Arc<Socket>>>,
    next_id: AtomicU64,
    /// Connection tasks still running.
    running: AtomicUsize,
    /// Loop handlers running (each holds a thread of the blocking pool), or reserved for
    /// an upgrade under way ([`reserve`]).
    loop_handlers: AtomicUsize,
    /// Sockets open or reserved for an upgrade under way ([`reserve`]): what
    /// `websocket_max_connections` bounds.
    slots: AtomicUsize,
    ended: Notify,
    shutting_down: AtomicBool,
}

impl Default for Sockets {
    fn default() -> Sockets {
        Sockets {
            table: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            running: AtomicUsize::new(0),
            loop_handlers: AtomicUsize::new(0),
            slots: AtomicUsize::new(0),
            ended: Notify::new(),
            shutting_down: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for Sockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sockets")
            .field("open", &open_count(self))
            .finish()
    }
}

/// A poisoned lock only means a panic elsewhere; the data (a map, an option) stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn get(sockets: &Sockets, id: u64) -> Option<Arc<Socket>> {
    lock(&sockets.table).get(&id).cloned()
}

/// The number of sockets open (registered and not yet released).
pub fn open_count(sockets: &Sockets) -> usize {
    lock(&sockets.table).len()
}

/// Takes one unit of `counter` when it is below `max`, atomically (a burst of upgrades
/// cannot overshoot the bound); whether it did.
fn take_slot(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then(|| n + 1)
        })
        .is_ok()
}

/// Reserves, atomically, what an upgrade needs: a socket slot (at most `max_open` sockets
/// open or reserved, `websocket_max_connections`) and a handler slot (at most
/// [`MAX_LOOP_HANDLERS`] handlers running or reserved; a loop handler holds a thread of
/// the blocking pool). Refused, with why, when the server is stopping or either bound is
/// reached: the upgrade gets 503. The reservation is carried to [`open`]; dropped before,
/// it frees both slots.
pub fn reserve(sockets: &Arc<Sockets>, max_open: usize) -> Result<Reservation, &'static str> {
    if sockets.shutting_down.load(Ordering::Acquire) {
        return Err("the server is stopping");
    }
    if !take_slot(&sockets.slots, max_open) {
        return Err("websocket_max_connections reached");
    }
    if !take_slot(&sockets.loop_handlers, MAX_LOOP_HANDLERS) {
        sockets.slots.fetch_sub(1, Ordering::AcqRel);
        return Err("too many websocket handlers hold a thread");
    }
    Ok(Reservation {
        sockets: Arc::clone(sockets),
        slot: true,
        handler: Some(LoopGuard(Arc::clone(sockets))),
    })
}

/// The slots [`reserve`] took for an upgrade under way; see there.
pub struct Reservation {
    sockets: Arc<Sockets>,
    /// The socket slot, until [`open`] hands it to the open socket ([`release`] frees it).
    slot: bool,
    /// The handler slot, until [`open`] hands it to [`Opened`].
    handler: Option<LoopGuard>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.slot {
            self.sockets.slots.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A handler slot taken by [`reserve`]: the route's handler counts as running (a loop
/// handler holds its thread until the socket closes) until this is dropped.
pub struct LoopGuard(Arc<Sockets>);

impl Drop for LoopGuard {
    fn drop(&mut self) {
        self.0.loop_handlers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts new upgrades (`true`, when serving starts) or refuses them (`false`, when the
/// server stops).
pub fn set_accepting(sockets: &Sockets, accepting: bool) {
    sockets.shutting_down.store(!accepting, Ordering::Release);
}

/// Sends Close `code` (1001 Going Away at shutdown or swap) with `reason` (at most 123
/// bytes) to every open socket; returns how many were told. Never blocks: the connection
/// tasks complete the closing handshake ([`wait_closed`]).
pub fn close_all(sockets: &Sockets, code: u16, reason: &str) -> usize {
    let sockets: Vec<Arc<Socket>> = lock(&sockets.table).values().cloned().collect();
    for s in &sockets {
        s.shut(code, reason);
    }
    sockets.len()
}

/// Sends Close `code` with `reason` to the open sockets served by one of `addons` (after
/// a swap replaced them); returns how many were told.
pub fn close_for_addons(sockets: &Sockets, addons: &[String], code: u16, reason: &str) -> usize {
    let sockets: Vec<Arc<Socket>> = lock(&sockets.table)
        .values()
        .filter(|s| addons.contains(&s.addon))
        .cloned()
        .collect();
    for s in &sockets {
        s.shut(code, reason);
    }
    sockets.len()
}

/// Waits until every connection task has ended (their Close sent and answered, or cut)
/// and every socket was released (its handler returned, or its `on_close` ran), at most
/// `timeout`; whether they all did.
pub async fn wait_closed(sockets: &Sockets, timeout: Duration) -> bool {
    let all_ended = async {
        loop {
            let notified = sockets.ended.notified();
            if sockets.running.load(Ordering::Acquire) == 0 && open_count(sockets) == 0 {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(timeout, all_ended).await.is_ok()
}

/// The limits of a socket's connection (from the configuration, see [`Settings::new`]).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Sockets open at most (`websocket_max_connections`).
    pub max_open: usize,
    /// How long a socket stays open (`websocket_keep_alive_timeout`); `None`: for ever.
    pub keep_alive: Option<Duration>,
    /// Messages a client may send in excess of one per `rate_delay`; 0: no limit.
    pub rate_burst: usize,
    /// Odoo's `websocket_rate_limit_delay`.
    pub rate_delay: Duration,
}

/// The longest `websocket_keep_alive_timeout` accepted (ten years): a larger one would
/// overflow the clock's instants.
pub const MAX_KEEP_ALIVE_SECS: u64 = 10 * 365 * 24 * 3600;

/// The longest `websocket_rate_limit_delay` accepted (one day).
pub const MAX_RATE_DELAY_SECS: f64 = 86_400.0;

impl Settings {
    /// The settings of `config`; `http_cap` the cap on open HTTP connections
    /// (`http_max_connections`, computed or configured; `None`: not capped).
    ///
    /// An upgraded connection keeps its HTTP connection slot and is never evicted, so the
    /// websockets must leave HTTP slots free: `websocket_max_connections` defaults to half
    /// the HTTP cap, and a configured value at or above it is refused. A keep-alive or a
    /// rate-limit delay out of range is refused too (rather than overflowing, or turning
    /// the limit off).
    pub fn new(
        config: &crate::config::Config,
        http_cap: Option<usize>,
    ) -> Result<Settings, crate::Error> {
        let configured = usize::try_from(config.websocket_max_connections).unwrap_or(usize::MAX);
        let max_open = match (configured, http_cap) {
            (0, Some(cap)) => (cap / 2).max(1),
            (0, None) => usize::MAX,
            (n, Some(cap)) if n >= cap => {
                return Err(crate::Error::Invalid {
                    value: format!("websocket_max_connections {n}"),
                    expected: format!(
                        "fewer than the {cap} connections of http_max_connections (a websocket keeps its HTTP connection: at or above that cap websockets could take every HTTP slot); leave it 0 for half of it ({})",
                        (cap / 2).max(1)
                    ),
                });
            }
            (n, _) => n,
        };
        if config.websocket_keep_alive_timeout > MAX_KEEP_ALIVE_SECS {
            return Err(crate::Error::Invalid {
                value: format!(
                    "websocket_keep_alive_timeout {}",
                    config.websocket_keep_alive_timeout
                ),
                expected: format!("at most {MAX_KEEP_ALIVE_SECS} seconds (0: never)"),
            });
        }
        let delay = config.websocket_rate_limit_delay;
        let rate_delay = match Duration::try_from_secs_f64(delay) {
            Ok(d) if delay <= MAX_RATE_DELAY_SECS => d,
            _ => {
                return Err(crate::Error::Invalid {
                    value: format!("websocket_rate_limit_delay {delay}"),
                    expected: format!(
                        "seconds between 0 and {MAX_RATE_DELAY_SECS} (websocket_rate_limit_burst 0 turns the limit off)"
                    ),
                });
            }
        };
        Ok(Settings {
            max_open,
            keep_alive: (config.websocket_keep_alive_timeout > 0)
                .then(|| Duration::from_secs(config.websocket_keep_alive_timeout)),
            rate_burst: usize::try_from(config.websocket_rate_limit_burst).unwrap_or(usize::MAX),
            rate_delay,
        })
    }
}

/// What the application needs to run a socket's handler.
pub struct Opened {
    /// The id handed to the handler ([`inphms_sdk::abi::HttpRequest::websocket`]).
    pub id: u64,
    /// The handler slot reserved for it: held while the route's handler runs.
    pub handler: LoopGuard,
}

/// Registers a socket for an accepted upgrade and starts its connection task (which
/// waits for hyper to hand the connection over after the 101). Call [`release`] once the
/// handler (or the last event callback) has returned. Must run inside the tokio runtime.
/// The socket takes the slots of `reservation` ([`reserve`]).
pub fn open(
    mut reservation: Reservation,
    on_upgrade: OnUpgrade,
    peer: SocketAddr,
    path: &str,
    addon: &str,
    max_message: u64,
    settings: Settings,
) -> Opened {
    let sockets = &Arc::clone(&reservation.sockets);
    let id = sockets.next_id.fetch_add(1, Ordering::Relaxed);
    let (in_tx, in_rx) = mpsc::channel(INCOMING_QUEUE);
    let (cmd_tx, cmd_rx) = mpsc::channel(SEND_QUEUE);
    let (shutdown_tx, shutdown_rx) = watch::channel(None);
    let socket = Arc::new(Socket {
        addon: addon.to_owned(),
        runtime: tokio::runtime::Handle::current(),
        incoming: tokio::sync::Mutex::new(in_rx),
        commands: cmd_tx,
        shutdown: shutdown_tx,
        closed: Mutex::new(None),
    });
    lock(&sockets.table).insert(id, Arc::clone(&socket));
    // The slot now belongs to the open socket: `release` frees it.
    reservation.slot = false;
    let handler = match reservation.handler.take() {
        Some(h) => h,
        None => {
            // Never: a reservation holds its handler slot until here.
            sockets.loop_handlers.fetch_add(1, Ordering::AcqRel);
            LoopGuard(Arc::clone(sockets))
        }
    };
    sockets.running.fetch_add(1, Ordering::AcqRel);
    let sockets = Arc::clone(sockets);
    let max_message = usize::try_from(max_message)
        .unwrap_or(usize::MAX)
        .min(MAX_MESSAGE);
    let path = path.to_owned();
    tokio::spawn(async move {
        tracing::debug!(target: TARGET, "websocket {id} from {peer} on {path}: upgrading");
        // The handler sees the end of its messages once every sender is gone: record the
        // close status before the last one goes.
        let last_sender = in_tx.clone();
        let link = Link {
            incoming: in_tx,
            commands: cmd_rx,
            shutdown: shutdown_rx,
        };
        let closed = run_connection(on_upgrade, max_message, settings, link).await;
        tracing::debug!(target: TARGET, "websocket {id} from {peer} closed: {} {}", closed.0, closed.1);
        *lock(&socket.closed) = Some(closed);
        drop(last_sender);
        drop(socket);
        sockets.running.fetch_sub(1, Ordering::AcqRel);
        sockets.ended.notify_waiters();
    });
    Opened { id, handler }
}

/// Forgets a socket once its handler has returned; a socket still open is closed with
/// `close_code` (1000, or 1011 after a failure). A close already under way is kept.
pub fn release(sockets: &Sockets, id: u64, close_code: u16) {
    let Some(socket) = lock(&sockets.table).remove(&id) else {
        return;
    };
    sockets.slots.fetch_sub(1, Ordering::AcqRel);
    // After what the handler sent (a loop handler's last `send` is queued, not written).
    socket.close_after_queued(close_code, "");
    sockets.ended.notify_waiters();
}

/// Closes socket `id` with `code` (a failed event callback: 1011) once what was sent
/// before is written, without forgetting it: its remaining events (the close) are still
/// delivered.
pub fn shut(sockets: &Sockets, id: u64, code: u16, reason: &str) {
    if let Some(socket) = get(sockets, id) {
        socket.close_after_queued(code, reason);
    }
}

/// The connection task's ends of the socket's channels.
struct Link {
    incoming: mpsc::Sender<WsMessage>,
    commands: mpsc::Receiver<Command>,
    shutdown: watch::Receiver<Option<(u16, String)>>,
}

/// Odoo's rate limit: at most `burst` messages within `burst` × `delay` (the times of
/// the last `burst` kept).
struct RateLimit {
    burst: usize,
    window: Duration,
    recent: std::collections::VecDeque<tokio::time::Instant>,
}

impl RateLimit {
    fn new(settings: &Settings) -> RateLimit {
        RateLimit {
            burst: settings.rate_burst,
            window: settings
                .rate_delay
                .saturating_mul(u32::try_from(settings.rate_burst).unwrap_or(u32::MAX)),
            recent: std::collections::VecDeque::new(),
        }
    }

    /// Records a message arriving `now`; whether it is one too many.
    fn exceeded(&mut self, now: tokio::time::Instant) -> bool {
        if self.burst == 0 {
            return false;
        }
        if self.recent.len() >= self.burst {
            if let Some(oldest) = self.recent.front() {
                if now.duration_since(*oldest) < self.window {
                    return true;
                }
            }
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        false
    }
}

/// The connection task: returns the close code and reason.
async fn run_connection(
    on_upgrade: OnUpgrade,
    max_message: usize,
    settings: Settings,
    link: Link,
) -> (u16, String) {
    let Link {
        incoming: in_tx,
        mut commands,
        mut shutdown,
    } = link;
    // hyper hands the connection over right after writing the 101; a close asked for
    // meanwhile is seen by the loop below, which then sends it properly.
    let upgraded = match tokio::time::timeout(Duration::from_secs(10), on_upgrade).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            tracing::debug!(target: TARGET, "upgrade failed: {e}");
            return (code::ABNORMAL, String::new());
        }
        Err(_) => {
            tracing::debug!(target: TARGET, "upgrade not completed in time");
            return (code::ABNORMAL, String::new());
        }
    };
    // Small buffers: an idle socket holds little memory (tungstenite's defaults are
    // 128 KiB each); a large message grows them as needed.
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let mut permit: Option<mpsc::OwnedPermit<WsMessage>> = None;
    let mut status: Option<(u16, String)> = None;
    // Set once we sent a Close: the peer then has CLOSE_TIMEOUT to answer.
    let mut close_deadline: Option<tokio::time::Instant> = None;
    let mut commands_open = true;
    let mut shutdown_open = true;
    let mut rate = RateLimit::new(&settings);
    let opened = tokio::time::Instant::now();
    let keep_alive_end = settings.keep_alive.and_then(|k| opened.checked_add(k));
    // The next ping, when the peer stays silent; then the deadline for its answer.
    let mut ping_at = opened + PING_AFTER;
    let mut pong_deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            p = in_tx.clone().reserve_owned(), if permit.is_none() && close_deadline.is_none() => {
                match p {
                    Ok(p) => permit = Some(p),
                    // The receiver lives in the registry; gone means released: close.
                    Err(_) => close_deadline = Some(start_close(&mut ws, code::NORMAL, "").await),
                }
            }
            frame = ws.next(), if permit.is_some() || close_deadline.is_some() => {
                let now = tokio::time::Instant::now();
                ping_at = now + PING_AFTER;
                pong_deadline = None;
                if matches!(frame, Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_)))) && close_deadline.is_none() && rate.exceeded(now) {
                    tracing::info!(target: TARGET, "websocket client sends faster than websocket_rate_limit_burst/delay allow; closed with 1013");
                    status.get_or_insert((code::TRY_AGAIN_LATER, "rate limit exceeded".to_owned()));
                    close_deadline = Some(start_close(&mut ws, code::TRY_AGAIN_LATER, "rate limit exceeded").await);
                    continue;
                }
                match frame {
                    None => break,
                    Some(Ok(Message::Text(t))) => deliver(&mut permit, WsMessage::Text(t.as_str().into())),
                    Some(Ok(Message::Binary(b))) => deliver(&mut permit, WsMessage::Binary(b.to_vec().into())),
                    Some(Ok(Message::Close(frame))) => {
                        if status.is_none() {
                            status = Some(frame.map_or((code::NO_STATUS, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned())));
                        }
                        // Sends tungstenite's queued Close reply; the next read ends the stream.
                        let _ = ws.flush().await;
                        close_deadline.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_TIMEOUT);
                    }
                    // Pings are answered by tungstenite; write the Pong now.
                    Some(Ok(_)) => { let _ = ws.flush().await; }
                    Some(Err(e)) => {
                        tracing::debug!(target: TARGET, "websocket read error: {e}");
                        let code = match e {
                            WsError::Capacity(_) => code::TOO_BIG,
                            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => code::ABNORMAL,
                            WsError::Protocol(_) => 1002,
                            WsError::Utf8(_) => 1007,
                            _ => code::ABNORMAL,
                        };
                        if code != code::ABNORMAL {
                            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(CloseFrame { code: code.into(), reason: "".into() }))).await;
                        }
                        status.get_or_insert((code, e.to_string()));
                        break;
                    }
                }
            }
            cmd = commands.recv(), if commands_open && close_deadline.is_none() => match cmd {
                Some(Command::Send(message, reply)) => {
                    // A client that does not read lets the write wait: at most SEND_TIMEOUT.
                    let r = match tokio::time::timeout(SEND_TIMEOUT, ws.send(message)).await {
                        Ok(r) => r.map_err(|e| match e {
                            WsError::AlreadyClosed | WsError::ConnectionClosed | WsError::Protocol(_) => SocketError::Closed,
                            e => SocketError::Send(e),
                        }),
                        Err(_) => {
                            tracing::info!(target: TARGET, "websocket client took no data for {}s; cut", SEND_TIMEOUT.as_secs());
                            status.get_or_insert((code::ABNORMAL, "send timed out".to_owned()));
                            break;
                        }
                    };
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                }
                Some(Command::Close(frame)) => {
                    status.get_or_insert((u16::from(frame.code), frame.reason.as_str().to_owned()));
                    close_deadline = Some(start_close(&mut ws, u16::from(frame.code), frame.reason.as_str()).await);
                }
                None => {
                    commands_open = false;
                    close_deadline = Some(start_close(&mut ws, code::NORMAL, "").await);
                }
            },
            changed = shutdown.changed(), if shutdown_open => {
                let requested = shutdown.borrow_and_update().clone();
                if changed.is_err() {
                    shutdown_open = false;
                } else if let Some((code, reason)) = requested {
                    if close_deadline.is_none() {
                        status.get_or_insert((code, reason.clone()));
                        close_deadline = Some(start_close(&mut ws, code, &reason).await);
                    }
                }
            }
            _ = tokio::time::sleep_until(pong_deadline.unwrap_or(ping_at)), if close_deadline.is_none() => {
                if pong_deadline.is_some() {
                    tracing::debug!(target: TARGET, "websocket peer did not answer a ping in {}s; cut", PONG_TIMEOUT.as_secs());
                    status.get_or_insert((code::ABNORMAL, "ping unanswered".to_owned()));
                    break;
                }
                let _ = tokio::time::timeout(PONG_TIMEOUT, ws.send(Message::Ping(Bytes::new()))).await;
                pong_deadline = Some(tokio::time::Instant::now() + PONG_TIMEOUT);
            }
            _ = sleep_until(keep_alive_end), if keep_alive_end.is_some() && close_deadline.is_none() => {
                status.get_or_insert((code::KEEP_ALIVE_TIMEOUT, "Keep alive timeout".to_owned()));
                close_deadline = Some(start_close(&mut ws, code::KEEP_ALIVE_TIMEOUT, "Keep alive timeout").await);
            }
            _ = sleep_until(close_deadline), if close_deadline.is_some() => {
                tracing::debug!(target: TARGET, "websocket peer did not complete the close in time; cut");
                break;
            }
        }
    }
    status.unwrap_or((code::ABNORMAL, String::new()))
}

fn deliver(permit: &mut Option<mpsc::OwnedPermit<WsMessage>>, message: WsMessage) {
    if let Some(p) = permit.take() {
        p.send(message);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Sends a Close frame (best effort); returns the deadline for the peer's answer.
async fn start_close<S>(
    ws: &mut WebSocketStream<S>,
    code: u16,
    reason: &str,
) -> tokio::time::Instant
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout_at(deadline, ws.close(Some(frame))).await;
    deadline
}

// ---------------------------------------------------------------------------------------------
// The handler's side (called from the host API, on the handler's thread, or from the task
// delivering a socket's events)

/// The next event of socket `id`: a message, or its close once every message received
/// before was taken.
pub async fn next(sockets: &Sockets, id: u64) -> WsEvent {
    let Some(socket) = get(sockets, id) else {
        return WsEvent::Closed(code::ABNORMAL, "no such websocket".into());
    };
    next_of(&socket).await
}

async fn next_of(socket: &Socket) -> WsEvent {
    let message = socket.incoming.lock().await.recv().await;
    match message {
        Some(message) => WsEvent::Message(message),
        None => {
            let (code, reason) = socket.close_status();
            WsEvent::Closed(code, reason.into())
        }
    }
}

/// Waits for the next message of socket `id` (at most `timeout`).
pub fn recv(sockets: &Sockets, id: u64, timeout: Option<Duration>) -> WsEvent {
    let Some(socket) = get(sockets, id) else {
        return WsEvent::Closed(code::ABNORMAL, "no such websocket".into());
    };
    let next = async {
        match timeout {
            Some(t) => tokio::time::timeout(t, next_of(&socket))
                .await
                .unwrap_or(WsEvent::Timeout),
            None => next_of(&socket).await,
        }
    };
    block_on(&socket, next)
}

fn frame_of(message: WsMessage) -> Message {
    match message {
        WsMessage::Text(t) => Message::Text(t.as_str().into()),
        WsMessage::Binary(b) => Message::Binary(Bytes::from(b.into_vec())),
    }
}

/// Sends a message on socket `id`; returns once it is written (the blocking `ws_send` of
/// SDKs before 0.3).
pub fn send(sockets: &Sockets, id: u64, message: WsMessage) -> Result<(), SocketError> {
    let socket = get(sockets, id).ok_or(SocketError::NoSuchSocket)?;
    let (reply_tx, reply_rx) = oneshot::channel();
    let cmd = Command::Send(frame_of(message), Some(reply_tx));
    block_on(&socket, async {
        socket
            .commands
            .send(cmd)
            .await
            .map_err(|_| SocketError::Closed)?;
        reply_rx.await.map_err(|_| SocketError::Closed)?
    })
}

/// Queues a message on socket `id` and returns at once (any thread, a runtime worker
/// included). A full queue closes the socket with 1013 (Try Again Later).
pub fn send_queued(sockets: &Sockets, id: u64, message: WsMessage) -> Result<(), SocketError> {
    let socket = get(sockets, id).ok_or(SocketError::NoSuchSocket)?;
    match socket
        .commands
        .try_send(Command::Send(frame_of(message), None))
    {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(SocketError::Closed),
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::info!(target: TARGET, "websocket {id}: {SEND_QUEUE} messages wait for a client that does not read them; closed with 1013");
            socket.shut(code::TRY_AGAIN_LATER, "send queue full");
            Err(SocketError::QueueFull)
        }
    }
}

/// Starts the closing handshake of socket `id` (after the messages queued before it);
/// never waits.
pub fn close(sockets: &Sockets, id: u64, code: u16, reason: &str) -> Result<(), SocketError> {
    if !CloseCode::from(code).is_allowed() || (1016..3000).contains(&code) {
        return Err(SocketError::CloseCode(code));
    }
    if reason.len() > 123 {
        return Err(SocketError::ReasonTooLong);
    }
    let socket = get(sockets, id).ok_or(SocketError::NoSuchSocket)?;
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    match socket.commands.try_send(Command::Close(frame)) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(SocketError::Closed),
        // The queue is full: close at once, ahead of what waits.
        Err(mpsc::error::TrySendError::Full(_)) => {
            socket.shut(code, reason);
            Ok(())
        }
    }
}

/// Runs `f` to completion on the socket's runtime from a handler's thread (a blocking-pool
/// thread or one the addon started; tokio would panic on a runtime worker, which the host
/// API's guard turns into an error; loop handlers never run there).
fn block_on<T>(socket: &Socket, f: impl std::future::Future<Output = T>) -> T {
    socket.runtime.block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn handshake_accepts_rfc_example() {
        let accept = check_handshake(&Method::GET, Version::HTTP_11, &headers(&GOOD)).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn handshake_refusals() {
        let status = |pairs: &[(&'static str, &'static str)], m: Method| {
            check_handshake(&m, Version::HTTP_11, &headers(pairs))
                .unwrap_err()
                .status()
                .as_u16()
        };
        assert_eq!(status(&GOOD[..2], Method::GET), 400);
        assert_eq!(status(&GOOD, Method::POST), 400);
        let mut v = GOOD;
        v[2].1 = "8";
        let r = check_handshake(&Method::GET, Version::HTTP_11, &headers(&v)).unwrap_err();
        assert_eq!(r.status(), 426);
        assert_eq!(r.headers()["sec-websocket-version"], "13");
        let mut k = GOOD;
        k[3].1 = "c2hvcnQ=";
        assert_eq!(status(&k, Method::GET), 400);
        k[3].1 = "!!!";
        assert_eq!(status(&k, Method::GET), 400);
        let mut c = GOOD;
        c[0].1 = "keep-alive";
        assert_eq!(status(&c, Method::GET), 400);
        let mut u = GOOD;
        u[1].1 = "h2c";
        assert_eq!(status(&u, Method::GET), 400);
        assert!(check_handshake(&Method::GET, Version::HTTP_2, &headers(&GOOD)).is_err());
    }

    #[test]
    fn rate_limit_as_odoo() {
        let settings = Settings {
            max_open: 1,
            keep_alive: None,
            rate_burst: 3,
            rate_delay: Duration::from_millis(100),
        };
        let mut rate = RateLimit::new(&settings);
        let t0 = tokio::time::Instant::now();
        // Three at once are the burst; a fourth within 3 x 100 ms of the first is refused.
        for _ in 0..3 {
            assert!(!rate.exceeded(t0));
        }
        assert!(rate.exceeded(t0 + Duration::from_millis(299)));
        // Once the first three are 300 ms old, three more are fine, and the window slides:
        // a fourth within 300 ms of those is refused.
        let t1 = t0 + Duration::from_millis(300);
        for ms in 0..3 {
            assert!(!rate.exceeded(t1 + Duration::from_millis(ms)));
        }
        assert!(rate.exceeded(t1 + Duration::from_millis(3)));
        assert!(!rate.exceeded(t1 + Duration::from_millis(300)));
        // A burst of 0 turns the limit off.
        let mut off = RateLimit::new(&Settings {
            rate_burst: 0,
            ..settings
        });
        assert!((0..1000).all(|_| !off.exceeded(t0)));
    }

    #[test]
    fn settings_from_the_configuration() {
        let mut config = crate::config::Config::defaults();
        let s = Settings::new(&config, Some(672)).unwrap();
        // Half the HTTP cap: websockets never take every HTTP slot.
        assert_eq!(s.max_open, 336);
        assert_eq!(s.keep_alive, Some(Duration::from_secs(3600)));
        assert_eq!(
            (s.rate_burst, s.rate_delay),
            (10, Duration::from_millis(200))
        );
        assert_eq!(Settings::new(&config, Some(1)).unwrap().max_open, 1);
        config.websocket_max_connections = 5;
        config.websocket_keep_alive_timeout = 0;
        let s = Settings::new(&config, Some(20_000)).unwrap();
        assert_eq!((s.max_open, s.keep_alive), (5, None));
        config.websocket_max_connections = 0;
        assert_eq!(Settings::new(&config, None).unwrap().max_open, usize::MAX);
    }

    #[test]
    fn settings_refuse_values_out_of_range() {
        let mut config = crate::config::Config::defaults();
        config.websocket_max_connections = 672;
        let e = Settings::new(&config, Some(672)).unwrap_err().to_string();
        assert!(e.contains("websocket_max_connections 672"), "{e}");
        assert!(e.contains("http_max_connections"), "{e}");
        assert!(Settings::new(&config, Some(673)).is_ok());
        assert!(Settings::new(&config, None).is_ok());
        config.websocket_max_connections = 0;
        config.websocket_keep_alive_timeout = u64::MAX;
        let e = Settings::new(&config, None).unwrap_err().to_string();
        assert!(e.contains("websocket_keep_alive_timeout"), "{e}");
        config.websocket_keep_alive_timeout = MAX_KEEP_ALIVE_SECS;
        assert!(Settings::new(&config, None).is_ok());
        for bad in [1e300, -1.0, f64::NAN, f64::INFINITY] {
            config.websocket_rate_limit_delay = bad;
            let e = Settings::new(&config, None).unwrap_err().to_string();
            assert!(e.contains("websocket_rate_limit_delay"), "{e}");
        }
    }

    #[test]
    fn unknown_sockets_answer_without_blocking() {
        let sockets = Sockets::default();
        assert!(matches!(
            recv(&sockets, u64::MAX, None),
            WsEvent::Closed(1006, _)
        ));
        assert!(matches!(
            send(&sockets, u64::MAX, WsMessage::Text("x".into())),
            Err(SocketError::NoSuchSocket)
        ));
        assert!(matches!(
            close(&sockets, u64::MAX, 1000, ""),
            Err(SocketError::NoSuchSocket)
        ));
        let e = close(&sockets, u64::MAX, 1005, "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "1005 is not a close code an endpoint may send"
        );
        release(&sockets, u64::MAX, 1000);
    }
}
