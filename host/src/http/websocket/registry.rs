//! The open sockets of one host ([`Sockets`]): the slots an upgrade reserves, each
//! socket's channels to its connection task, and the close of every socket at stop or
//! swap.

use super::budget::{Budget, Charge, Over};
use super::connection::run_connection;
use super::link::{Link, Refused};
use super::{Settings, MAX_LOOP_HANDLERS, MAX_MESSAGE, SEND_QUEUE, TARGET};
use hyper::upgrade::OnUpgrade;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub(super) enum Command {
    /// A message to write, its bytes charged to the socket's budget until written or
    /// dropped; the reply (a loop handler's blocking `send`) once written.
    Send(Queued, Option<oneshot::Sender<Result<(), SocketError>>>),
    /// Start the closing handshake (after the messages queued before).
    Close(CloseFrame),
}

/// A message waiting to be written, and its charge to the byte budgets.
pub(super) struct Queued {
    pub(super) message: Message,
    pub(super) _charge: Charge,
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
    /// The message would take the socket's (or the host's) queued bytes past the budget:
    /// its client reads too slowly. The socket is closed with 1013.
    #[error(
        "the websocket's send queue is full: it would go over {0}; its client reads too slowly; closed with 1013"
    )]
    OverBudget(Over),
    /// Writing the message failed.
    #[error("websocket send failed: {0}")]
    Send(#[source] WsError),
    /// A close code that an endpoint may not send (RFC 6455 section 7.4).
    #[error("{0} is not a close code an endpoint may send")]
    CloseCode(u16),
    /// A close reason longer than a control frame allows.
    #[error("a websocket close reason is at most 123 bytes")]
    ReasonTooLong,
    /// A push refused by the socket's [`PushGate`]: its session expired (logged out, its
    /// token changed); the socket is closed with 4001.
    #[error("the websocket's session expired (logged out): push refused, closed with 4001")]
    Refused,
}

/// One open socket, as the handler's callbacks reach it.
pub(super) struct Socket {
    /// The addon whose route serves the socket (a swap of that addon closes it).
    pub(super) addon: String,
    pub(super) runtime: tokio::runtime::Handle,
    /// Its queues to and from the connection task, and its close status.
    pub(super) link: Link,
    /// The bytes of its messages waiting to be written.
    pub(super) budget: Arc<Budget>,
    /// How long a loop handler's send waits for room in the queue (`limit_time_real`).
    pub(super) send_wait: Option<Duration>,
    /// What a push from outside the socket's own calls must pass ([`set_push_gate`]).
    pub(super) gate: Mutex<Option<Arc<dyn PushGate>>>,
}

/// Checked before a message pushed to a socket from outside its own calls (another thread,
/// another request: Odoo's `Websocket._dispatch_bus_notifications`) is queued: the
/// application's check that the socket's session still holds.
pub trait PushGate: Send + Sync {
    /// Whether the push may go; `false` refuses it (the gate closes the socket when it
    /// must).
    fn allows(&self, socket: u64) -> bool;

    /// [`PushGate::allows`], awaited on the runtime: what a committed async callback's
    /// sends pass ([`super::send::flush_async`]), so that a check waiting on the database
    /// holds no runtime worker. By default, [`PushGate::allows`] on this thread.
    fn allows_async(
        &self,
        socket: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(std::future::ready(self.allows(socket)))
    }
}

/// Sets socket `id`'s [`PushGate`].
pub fn set_push_gate(sockets: &Sockets, id: u64, gate: Arc<dyn PushGate>) {
    if let Some(socket) = get(sockets, id) {
        *lock(&socket.gate) = Some(gate);
    }
}

impl Socket {
    /// Asks the connection task to close with `code` at once, ahead of the messages queued
    /// (never refused for a full queue).
    pub(super) fn shut(&self, code: u16, reason: &str) {
        self.link.shut(code, reason);
    }

    /// Asks the connection task to close with `code` once the messages queued before are
    /// written (at once when the queue is full).
    pub(super) fn close_after_queued(&self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        if let Err(Refused::Full(_)) = self.link.push(Command::Close(frame)) {
            self.shut(code, reason);
        }
    }
}

/// The open sockets of one host, and its connection tasks: owned by the composition root
/// (through [`Services`](super::Services)) and passed to each function here.
pub struct Sockets {
    table: Mutex<HashMap<u64, Arc<Socket>>>,
    /// Bytes queued to write, all sockets together ([`Budget`]).
    queued_total: Arc<AtomicUsize>,
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
            queued_total: Arc::new(AtomicUsize::new(0)),
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
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn get(sockets: &Sockets, id: u64) -> Option<Arc<Socket>> {
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
    let budget = Arc::new(Budget::new(
        settings.send_buffer,
        Arc::clone(&sockets.queued_total),
        settings.send_buffer_total,
    ));
    let socket = Arc::new(Socket {
        addon: addon.to_owned(),
        runtime: tokio::runtime::Handle::current(),
        link: Link::default(),
        budget,
        send_wait: settings.send_wait,
        gate: Mutex::new(None),
    });
    let id = insert_unguessable(sockets, &socket);
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
        let closed = run_connection(on_upgrade, max_message, settings, &socket.link).await;
        tracing::debug!(target: TARGET, "websocket {id} from {peer} closed: {} {}", closed.0, closed.1);
        // The handler sees the close once it has taken the messages received before.
        socket.link.end(closed);
        drop(socket);
        sockets.running.fetch_sub(1, Ordering::AcqRel);
        sockets.ended.notify_waiters();
    });
    Opened { id, handler }
}

/// Registers `socket` under a random id: 63 bits from the operating system's generator
/// (never 0, never one in use), so that an addon cannot reach another addon's socket by
/// guessing (or counting) ids.
fn insert_unguessable(sockets: &Sockets, socket: &Arc<Socket>) -> u64 {
    let mut table = lock(&sockets.table);
    loop {
        let id = rand::random::<u64>() >> 1;
        if id != 0 && !table.contains_key(&id) {
            table.insert(id, Arc::clone(socket));
            return id;
        }
    }
}

/// Bytes queued on socket `id` (`None`: no such socket).
pub fn queued_bytes(sockets: &Sockets, id: u64) -> Option<usize> {
    get(sockets, id).map(|s| s.budget.queued())
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
