//! The handler's side of a socket (called from the host API, on the handler's thread, or
//! from the task delivering a socket's events): [`next`], [`recv`], [`send`],
//! [`send_queued`] and [`close`].

use super::registry::{get, Command, Socket, SocketError, Sockets};
use super::{code, SEND_QUEUE, TARGET};
use bytes::Bytes;
use inphms_sdk::abi::{WsEvent, WsMessage};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
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
