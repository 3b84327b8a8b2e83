//! The handler's side of a socket (called from the host API, on the handler's thread, or
//! from the task delivering a socket's events): [`next`], [`recv`], [`send`],
//! [`send_queued`] and [`close`]; [`flush_async`] for a committed async callback's sends.

use super::link::Refused;
use super::registry::{get, lock, Command, Queued, Socket, SocketError, Sockets};
use super::{code, TARGET};
use bytes::Bytes;
use inphms_sdk::abi::{WsEvent, WsMessage};
use std::cell::Cell;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// The next event of socket `id`: a message, or its close once every message received
/// before was taken.
pub async fn next(sockets: &Sockets, id: u64) -> WsEvent {
    let Some(socket) = get(sockets, id) else {
        return WsEvent::Closed(code::ABNORMAL, "no such websocket".into());
    };
    next_of(&socket).await
}

async fn next_of(socket: &Socket) -> WsEvent {
    match socket.link.next().await {
        Ok(message) => WsEvent::Message(message),
        Err(status) => {
            let (code, reason) = status.unwrap_or((code::ABNORMAL, String::new()));
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
/// SDKs before 0.3). Waits for room in the queue as a loop handler's [`send_queued`].
pub fn send(sockets: &Sockets, id: u64, message: WsMessage) -> Result<(), SocketError> {
    let socket = get(sockets, id).ok_or(SocketError::NoSuchSocket)?;
    let frame = frame_of(message);
    let (reply_tx, reply_rx) = oneshot::channel();
    block_on(&socket, async {
        let queued = queue_waiting(&socket, id, frame).await?;
        socket
            .link
            .push_waiting(Command::Send(queued, Some(reply_tx)))
            .await
            .map_err(|_| SocketError::Closed)?;
        reply_rx.await.map_err(|_| SocketError::Closed)?
    })
}

/// Queues a message on socket `id` and returns at once (any thread, a runtime worker
/// included). A queue full, or over its byte budget ([`super::budget`]), closes the socket
/// with 1013 (Try Again Later) and refuses the message.
///
/// Two callers are served differently: during an event callback (in its transaction) the
/// message is held until the callback's transaction commits ([`super::deferred`]); and a
/// loop handler sending on its own socket waits for room in the queue instead (up to
/// `limit_time_real`, then 1013): its client's pace is its pace. Any other send (a push
/// from another thread or request) must first pass the socket's [`PushGate`](super::PushGate)
/// (its session still valid), else it is refused.
pub fn send_queued(sockets: &Sockets, id: u64, message: WsMessage) -> Result<(), SocketError> {
    let message = match super::deferred::hold(id, message) {
        None => return Ok(()),
        Some(message) => message,
    };
    let socket = get(sockets, id).ok_or(SocketError::NoSuchSocket)?;
    let frame = frame_of(message);
    if LOOP_HANDLER.get() == id {
        return block_on(&socket, async {
            let queued = queue_waiting(&socket, id, frame).await?;
            let wait = socket.send_wait.unwrap_or(Duration::MAX);
            match tokio::time::timeout(wait, socket.link.push_waiting(Command::Send(queued, None)))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(SocketError::Closed),
                Err(_) => Err(over_budget_close(&socket, id, SocketError::QueueFull)),
            }
        });
    }
    let gate = lock(&socket.gate).clone();
    if let Some(gate) = gate {
        if !gate.allows(id) {
            return Err(SocketError::Refused);
        }
    }
    queue_now(&socket, id, frame)
}

/// The sends an async callback held ([`super::Held::take`]), its transaction committed:
/// queued in order as by [`send_queued`] from outside a callback, each socket's
/// [`PushGate`](super::PushGate) awaited ([`allows_async`](super::PushGate::allows_async)),
/// so that a gate waiting on the database holds no runtime worker. Returns how many were
/// refused (logged), as [`super::Held::flush`].
pub async fn flush_async(sockets: &Sockets, held: Vec<(u64, WsMessage)>) -> usize {
    let mut refused = 0;
    for (id, message) in held {
        if let Err(e) = send_gated_async(sockets, id, message).await {
            tracing::debug!(target: TARGET, "websocket {id}: a send of a committed callback refused: {e}");
            refused += 1;
        }
    }
    refused
}

/// One send of [`flush_async`].
async fn send_gated_async(
    sockets: &Sockets,
    id: u64,
    message: WsMessage,
) -> Result<(), SocketError> {
    let socket = get(sockets, id).ok_or(SocketError::NoSuchSocket)?;
    let frame = frame_of(message);
    let gate = lock(&socket.gate).clone();
    if let Some(gate) = gate {
        if !gate.allows_async(id).await {
            return Err(SocketError::Refused);
        }
    }
    queue_now(&socket, id, frame)
}

/// Queues `frame` on `socket` (`id`) at once, charged to its byte budget; a queue full or
/// over budget closes the socket with 1013.
fn queue_now(socket: &Socket, id: u64, frame: Message) -> Result<(), SocketError> {
    let charge = socket
        .budget
        .take(frame.len())
        .map_err(|over| over_budget_close(socket, id, SocketError::OverBudget(over)))?;
    let queued = Queued {
        message: frame,
        _charge: charge,
    };
    match socket.link.push(Command::Send(queued, None)) {
        Ok(()) => Ok(()),
        Err(Refused::Closed(_)) => Err(SocketError::Closed),
        Err(Refused::Full(_)) => Err(over_budget_close(socket, id, SocketError::QueueFull)),
    }
}

/// Closes socket `id` at once with 1013 for a client too slow to take its messages; the
/// error to give the sender.
fn over_budget_close(socket: &Socket, id: u64, e: SocketError) -> SocketError {
    tracing::info!(target: TARGET, "websocket {id}: {e}");
    socket.shut(code::TRY_AGAIN_LATER, "send queue full");
    e
}

/// Charges `frame` to the socket's byte budget, waiting (up to the socket's `send_wait`)
/// while its own queue is over budget: a loop handler's backpressure.
async fn queue_waiting(socket: &Socket, id: u64, frame: Message) -> Result<Queued, SocketError> {
    let deadline = socket
        .send_wait
        .and_then(|w| tokio::time::Instant::now().checked_add(w));
    loop {
        // Registered before the check: a charge given back in between still wakes us.
        let drained = socket.budget.drained.notified();
        match socket.budget.take(frame.len()) {
            Ok(charge) => {
                return Ok(Queued {
                    message: frame,
                    _charge: charge,
                })
            }
            // Only our own queue drains for us; the host's total is not waited for.
            Err(over @ super::budget::Over::Total(_)) => {
                return Err(over_budget_close(socket, id, SocketError::OverBudget(over)))
            }
            Err(over) => {
                if socket.link.is_closed() {
                    return Err(SocketError::Closed);
                }
                let waited = match deadline {
                    Some(d) => tokio::time::timeout_at(d, drained).await.is_ok(),
                    None => {
                        drained.await;
                        true
                    }
                };
                if !waited {
                    return Err(over_budget_close(socket, id, SocketError::OverBudget(over)));
                }
            }
        }
    }
}

thread_local! {
    // The socket whose loop handler runs on this thread (0: none): its sends wait for room.
    // global: thread-local invocation context, as `application::current`
    static LOOP_HANDLER: Cell<u64> = const { Cell::new(0) };
}

/// While alive, this thread runs the route's handler of socket `id` (a loop handler, or
/// the handler that hands the socket to callbacks): its [`send_queued`] on that socket
/// waits for room in the queue.
pub struct LoopHandlerCall(u64);

impl LoopHandlerCall {
    /// Marks this thread as running socket `id`'s handler.
    pub fn enter(id: u64) -> LoopHandlerCall {
        LoopHandlerCall(LOOP_HANDLER.replace(id))
    }
}

impl Drop for LoopHandlerCall {
    fn drop(&mut self) {
        LOOP_HANDLER.set(self.0);
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
    match socket.link.push(Command::Close(frame)) {
        Ok(()) => Ok(()),
        Err(Refused::Closed(_)) => Err(SocketError::Closed),
        // The queue is full: close at once, ahead of what waits.
        Err(Refused::Full(_)) => {
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
    use super::super::registry::release;
    use super::*;
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
