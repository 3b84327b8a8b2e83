//! Websockets served by event callbacks ([`WsHandler`]): the event model, in which an open
//! socket costs no thread.
//!
//! A `websocket` route's handler hands the socket a [`WsHandler`] with
//! [`WebSocket::serve`] and returns at once. The host then owns the connection as a task
//! (framing, pings, the closing handshake, Close 1001 at shutdown or swap) and calls the
//! handler's methods, briefly, one at a time per socket and in order: `on_open` first, then
//! `on_message` for each message, `on_close` last. Each call gets the request of the
//! upgrade, its session as saved by the call before (changes are saved after each call, as
//! after a request), and, with a database, a cursor in a transaction of its own. A
//! callback that fails (or panics) closes the socket with 1011, and `on_close` still runs,
//! once. The messages a callback
//! sends (to any socket) are held until it returns and its transaction commits: a callback
//! retried after a serialization failure sends them once, and a failed callback sends
//! none. Its session changes are merged into the stored session when it returns (a change
//! made meanwhile by a request or another socket's callback, to another key, is kept).
//!
//! Messages are sent from anywhere through a [`WebSocket`] handle (cloned, or rebuilt from
//! its [`id`](WebSocket::id) with [`WebSocket::from_id`]): another request's handler, a cron
//! job, a thread. [`WebSocket::send`] queues the message and returns at once.
//!
//! What a callback obtains outlives it. A [`WebSocket`] handle kept past the callback sends
//! as any other (at once: only the sends made during the callback are held). A
//! [`PushStream`](crate::PushStream) opened in a callback is not dropped when the callback
//! returns (a route's handler has its unsent streams dropped with its answer; a callback
//! has no answer): keep a clone, push into it from anywhere, and answer a later request
//! with it ([`Response::push`](crate::Response::push)); until then its chunks wait in its
//! queue. The same holds for async callbacks.
//!
//! Callbacks that wait (PostgreSQL, a timer) are better written async: an
//! [`AsyncWsHandler`](crate::AsyncWsHandler), served with [`WebSocket::serve_async`], holds
//! no thread while it awaits ([`async_socket_events`](crate::async_socket_events)).
//!
//! ```no_run
//! use inphms_sdk::{route, Message, Request, Result, WebSocket, WsHandler};
//!
//! /// Echoes each message, counting them in the session.
//! struct Echo;
//!
//! impl WsHandler for Echo {
//!     fn on_message(&mut self, ws: &WebSocket, req: &mut Request, message: Message) -> Result<()> {
//!         let seen: u64 = req.session.get("echoed").unwrap_or(0);
//!         req.session.set("echoed", seen + 1);
//!         ws.send(message)
//!     }
//! }
//!
//! #[route("/echo", auth = "public", websocket = true)]
//! fn echo(req: &mut Request) -> Result<()> {
//!     req.websocket()?.serve(Echo)
//! }
//! # fn main() {}
//! ```

use crate::abi::{Invocation, ItemKind, Outcome, SocketEvent};
use crate::websocket::{Message, WebSocket};
use crate::{Error, Request, Result};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// The callbacks of a websocket served by events. Only
/// [`on_message`](Self::on_message) is required. Each runs briefly on the host's blocking
/// pool (or inline on its event loop when the route is declared `blocking = false`): a
/// callback that waits holds a thread for that wait, like any handler. Callbacks that
/// await instead: [`AsyncWsHandler`](crate::AsyncWsHandler).
pub trait WsHandler: Send + 'static {
    /// The socket is open (the 101 is sent).
    fn on_open(&mut self, ws: &WebSocket, req: &mut Request) -> Result<()> {
        let _ = (ws, req);
        Ok(())
    }

    /// A message arrived.
    fn on_message(&mut self, ws: &WebSocket, req: &mut Request, message: Message) -> Result<()>;

    /// The socket is closed: `code` and `reason` as the peer or the server sent them (1005
    /// when none, 1006 when the connection was lost). The last call; the handler is then
    /// dropped.
    fn on_close(&mut self, ws: &WebSocket, req: &mut Request, code: u16, reason: &str) {
        let _ = (ws, req, code, reason);
    }
}

/// A socket's handler: sync callbacks ([`WebSocket::serve`]) or async ones
/// ([`WebSocket::serve_async`]).
pub(crate) enum Served {
    Sync(Box<dyn WsHandler>),
    Async(Box<dyn crate::async_socket_events::ErasedAsyncWs>),
}

/// The handlers of the sockets served by events in this addon, by socket id.
// global: addon-side, one table per addon image (as `host::API`); not host state
static HANDLERS: LazyLock<Mutex<HashMap<u64, Served>>> = LazyLock::new(Default::default);

pub(crate) fn handlers() -> std::sync::MutexGuard<'static, HashMap<u64, Served>> {
    HANDLERS.lock().unwrap_or_else(|e| e.into_inner())
}

impl WebSocket {
    /// Serves this socket with `handler`'s callbacks once the route's handler returns
    /// (which it should do at once): see the [module documentation](self).
    pub fn serve(&self, handler: impl WsHandler) -> Result<()> {
        handlers().insert(self.id(), Served::Sync(Box::new(handler)));
        Ok(())
    }
}

/// Whether the route's handler handed socket `id` to a [`WsHandler`] (it then stays open),
/// and whether to an async one; after a failed handler, the handler is forgotten.
pub(crate) fn registered(id: u64, handler_ok: bool) -> (bool, bool) {
    let mut all = handlers();
    if handler_ok {
        match all.get(&id) {
            Some(Served::Sync(_)) => (true, false),
            Some(Served::Async(_)) => (true, true),
            None => (false, false),
        }
    } else {
        all.remove(&id);
        (false, false)
    }
}

/// [`ItemKind::SocketEvent`]: the event of the invocation, given to the socket's handler;
/// the outcome carries the session's changes.
pub(crate) fn invoke(inv: Invocation<'_>) -> Option<Outcome> {
    if inv.kind != ItemKind::SocketEvent {
        return None;
    }
    let id = inv.handle;
    let (Some(request), Some(event)) = (inv.request.into_option(), inv.socket_event.into_option())
    else {
        return Some(crate::registry::error_outcome(Error::internal(
            "a websocket event without its request",
        )));
    };
    // Out of the table during the call (events of one socket never overlap): a slow callback
    // holds no lock over the other sockets.
    let mut handler = match handlers().remove(&id) {
        Some(Served::Sync(handler)) => handler,
        Some(Served::Async(handler)) => {
            // Called through the sync entry point: the callback's future run to its end
            // on this thread.
            // SAFETY: `block_on` finishes the future before the call returns.
            let fut =
                unsafe { crate::async_socket_events::event_future(id, handler, request, event) };
            return Some(crate::async_route::block_on(fut));
        }
        None => {
            return Some(crate::registry::error_outcome(Error::internal(format!(
                "no handler for websocket {id}"
            ))))
        }
    };
    let ws = WebSocket::from_id(id);
    let mut req = Request::from_abi(request);
    let closing = matches!(event, SocketEvent::Closed(..));
    // A panic in a callback is caught here, not in the addon's entry point, so that the
    // handler is kept for its `on_close` (the host closes the socket with 1011 first).
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match event {
        SocketEvent::Open => handler.on_open(&ws, &mut req),
        SocketEvent::Message(m) => handler.on_message(&ws, &mut req, Message::from_abi(m)),
        SocketEvent::Closed(code, reason) => {
            handler.on_close(&ws, &mut req, code, reason.as_str());
            Ok(())
        }
    }));
    let result = match called {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned());
            Err(Error::panic(message))
        }
    };
    if closing {
        // The last call: the handler is dropped.
        return Some(crate::registry::session_outcome(result, &req));
    }
    // Kept after a failure or a panic too: the host closes the socket (1011), then calls
    // `on_close` once.
    handlers().insert(id, Served::Sync(handler));
    Some(crate::registry::session_outcome(result, &req))
}
