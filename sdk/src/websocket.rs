//! Websockets: [`WebSocket`], the connection a route declared `websocket = true` receives
//! through [`Request::websocket`](crate::Request::websocket), and [`Message`].
//!
//! The host performs the upgrade (HTTP/1.1, version 13) before the handler runs, and owns
//! the connection: framing, pings, the closing handshake, and Close 1001 (Going Away) for
//! every open socket when the server stops.
//!
//! Two ways to serve a socket:
//!
//! * **Events** (recommended): the handler hands the socket a
//!   [`WsHandler`](crate::WsHandler) with [`WebSocket::serve`] and returns; the host calls
//!   its `on_open`/`on_message`/`on_close` as things happen. An idle socket then costs no
//!   thread, so a host holds as many as its memory and descriptors allow
//!   (`websocket_max_connections`). See [`crate::socket_events`]; callbacks that wait
//!   (PostgreSQL, a timer) are async with an [`AsyncWsHandler`](crate::AsyncWsHandler)
//!   ([`WebSocket::serve_async`]), holding no thread while they await.
//! * **A loop**: the handler, a plain synchronous function on the host's blocking pool,
//!   exchanges messages with [`recv`](WebSocket::recv) until the socket closes. It holds a
//!   thread of the pool for the socket's whole life, so at most 256 such handlers run at
//!   once (an upgrade past that gets 503): fine for a few long exchanges, not for many
//!   idle clients.
//!
//! ```no_run
//! use inphms_sdk::{route, Request, Result};
//!
//! /// Echoes every message until the client closes.
//! #[route("/echo", auth = "public", websocket = true)]
//! fn echo(req: &mut Request) -> Result<()> {
//!     let ws = req.websocket()?;
//!     ws.send("hello")?;
//!     while let Some(message) = ws.recv() {
//!         ws.send(message)?;
//!     }
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! When a loop handler returns, the host closes a socket still open with 1000 (or 1011 when
//! the handler failed). The response the handler returns is not sent (the 101 went out
//! before it ran); its session changes are saved (as those of each event callback).
//!
//! [`send`](WebSocket::send) never waits for the client: the message is queued (a queue per
//! socket bounded in bytes, `websocket_send_buffer`, and in messages; a client that does
//! not read its messages is closed with 1013 once it is full, and the send is an error), so
//! it can be called from anywhere, with a handle rebuilt from an id
//! ([`WebSocket::from_id`]). A loop handler sending on its own socket waits for room
//! instead (at most `limit_time_real`): its client's pace sets its pace. Ids are random,
//! not guessable.

use crate::abi::{WsEvent, WsMessage};
use crate::{host, Error, Result};
use std::fmt;
use std::time::Duration;

/// A websocket data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t),
            Message::Binary(_) => None,
        }
    }

    /// The payload's bytes (a text message's UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    pub(crate) fn into_abi(self) -> WsMessage {
        match self {
            Message::Text(t) => WsMessage::Text(t.into()),
            Message::Binary(b) => WsMessage::Binary(b.into()),
        }
    }

    pub(crate) fn from_abi(m: WsMessage) -> Self {
        match m {
            WsMessage::Text(t) => Message::Text(t.into_string()),
            WsMessage::Binary(b) => Message::Binary(b.into_vec()),
        }
    }
}

impl From<String> for Message {
    fn from(t: String) -> Self {
        Message::Text(t)
    }
}

impl From<&str> for Message {
    fn from(t: &str) -> Self {
        Message::Text(t.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b)
    }
}

impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Self {
        Message::Binary(b.to_vec())
    }
}

/// Why [`WebSocket::recv_timeout`] returned no message (as `std::sync::mpsc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The timeout passed; the socket is still open.
    Timeout,
    /// The socket is closed and every message received before was delivered.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvError::Timeout => "timed out waiting for a websocket message",
            RecvError::Closed => "the websocket is closed",
        })
    }
}

impl std::error::Error for RecvError {}

/// An open websocket, handed to a `websocket` route's handler by
/// [`Request::websocket`](crate::Request::websocket). A cheap handle: clone it to send from
/// another thread. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocket {
    id: u64,
}

impl WebSocket {
    pub(crate) fn new(id: u64) -> Self {
        WebSocket { id }
    }

    /// The handle of the open socket `id` (from [`id`](Self::id), kept by the addon), to
    /// send to it from another request, a cron job or a thread. Sending to a socket that
    /// closed since is an error.
    pub fn from_id(id: u64) -> Self {
        WebSocket { id }
    }

    /// The host's handle of this socket (for logs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the next message; `None` once the socket is closed (by the client, by
    /// [`close`](Self::close), or by the server stopping) and every message received before
    /// was delivered.
    pub fn recv(&self) -> Option<Message> {
        match host::ws_recv(self.id, None) {
            Ok(WsEvent::Message(m)) => Some(Message::from_abi(m)),
            _ => None,
        }
    }

    /// Like [`recv`](Self::recv), waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<Message, RecvError> {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        match host::ws_recv(self.id, Some(ms)) {
            Ok(WsEvent::Message(m)) => Ok(Message::from_abi(m)),
            Ok(WsEvent::Timeout) => Err(RecvError::Timeout),
            Ok(WsEvent::Closed(..)) | Err(_) => Err(RecvError::Closed),
        }
    }

    /// Sends a message (`&str`/`String` as text, `Vec<u8>`/`&[u8]` as binary): queued,
    /// written as soon as the client can take it; never waits (but in the socket's own loop
    /// handler, which waits for room in the queue, up to `limit_time_real`). An error when
    /// the socket is closed, or its queue is full (the socket is then closed with 1013).
    /// Sent from an event callback, the message is held until the callback returns and its
    /// transaction commits.
    pub fn send(&self, message: impl Into<Message>) -> Result<()> {
        host::ws_send_queued(self.id, message.into().into_abi())
    }

    /// Starts the closing handshake with `code` (1000 normal, 1001 going away, 1008 policy
    /// violation, 1011 internal error, 3000 to 4999 application codes...) and a `reason` of
    /// at most 123 bytes. [`recv`](Self::recv) then returns `None` once the client answers.
    pub fn close(&self, code: u16, reason: &str) -> Result<()> {
        if reason.len() > 123 {
            return Err(Error::bad_request(
                "a websocket close reason is at most 123 bytes",
            ));
        }
        host::ws_close(self.id, code, reason)
    }
}
