//! Websockets served by async event callbacks ([`AsyncWsHandler`]): the event model of
//! [`socket_events`](crate::socket_events), with callbacks that await. A callback waiting
//! on a host service ([`time::sleep`](crate::time::sleep), an
//! [`AsyncCursor`](crate::AsyncCursor)) holds no thread: the host polls its future on its
//! runtime, as an async route's.
//!
//! The guarantees are the sync callbacks': one callback at a time per socket and in order
//! (`on_open`, each `on_message`, `on_close` last); each with the request of the upgrade
//! and its session as saved by the call before (its changes saved, merged, after it);
//! with a database, a transaction of its own ([`Request::async_cursor`]), committed when
//! the callback returns `Ok`, rolled back on `Err`, the callback run again after a
//! serialization failure; the messages it sends held until it returns and commits. A
//! callback that fails, panics or runs past `limit_time_real` (it is then cancelled:
//! dropped at its current `.await`) closes the socket with 1011, and `on_close` still
//! runs, once. What a callback obtains outlives it as a sync callback's: a
//! [`PushStream`](crate::PushStream) it opens is kept when it returns, to be answered by a
//! later request ([`socket_events`](crate::socket_events)).
//!
//! Write the callbacks as `async fn`s (the trait spells them as functions returning a
//! `Send` future, which an `async fn` in the `impl` satisfies when what it holds across an
//! `.await` is `Send`):
//!
//! ```no_run
//! use inphms_sdk::{route, time, AsyncWsHandler, Message, Request, Result, WebSocket};
//! use std::time::Duration;
//!
//! /// Echoes each message after a second, and counts them in its database table.
//! struct SlowEcho;
//!
//! impl AsyncWsHandler for SlowEcho {
//!     async fn on_message(
//!         &mut self,
//!         ws: &WebSocket,
//!         req: &mut Request<'_>,
//!         message: Message,
//!     ) -> Result<()> {
//!         time::sleep(Duration::from_secs(1)).await; // no thread waits
//!         let mut cr = req.async_cursor()?;
//!         cr.execute("UPDATE echo_count SET n = n + 1", &[]).await?;
//!         ws.send(message) // sent once the transaction commits
//!     }
//! }
//!
//! #[route("/slow_echo", auth = "none", websocket = true)]
//! fn slow_echo(req: &mut Request) -> Result<()> {
//!     req.websocket()?.serve_async(SlowEcho)
//! }
//! # fn main() {}
//! ```
//!
//! The route's handler itself stays a plain `fn` (it hands the socket over and returns).

use crate::abi::{HttpRequest, Invocation, ItemKind, Outcome, SocketEvent};
use crate::async_route::{panic_message, CatchUnwind, DropContained};
use crate::registry::{error_outcome, session_outcome};
use crate::socket_events::{handlers, Served};
use crate::websocket::{Message, WebSocket};
use crate::{Error, Request, Result};
use async_ffi::{FfiFuture, FutureExt};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;

/// The async callbacks of a websocket served by events; see the [module docs](self). Only
/// [`on_message`](Self::on_message) is required.
pub trait AsyncWsHandler: Send + 'static {
    /// The socket is open (the 101 is sent).
    fn on_open(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (ws, req);
        async { Ok(()) }
    }

    /// A message arrived.
    fn on_message(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
        message: Message,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The socket is closed: `code` and `reason` as the peer or the server sent them (1005
    /// when none, 1006 when the connection was lost). The last call; the handler is then
    /// dropped.
    fn on_close(
        &mut self,
        ws: &WebSocket,
        req: &mut Request<'_>,
        code: u16,
        reason: &str,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ws, req, code, reason);
        async {}
    }
}

/// A callback's future, boxed.
type EventFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// [`AsyncWsHandler`] as an object (its methods return boxed futures), for the table of
/// handlers.
pub(crate) trait ErasedAsyncWs: Send {
    fn call<'a>(
        &'a mut self,
        ws: &'a WebSocket,
        req: &'a mut Request<'static>,
        event: SocketEvent,
    ) -> EventFuture<'a>;
}

impl<T: AsyncWsHandler> ErasedAsyncWs for T {
    fn call<'a>(
        &'a mut self,
        ws: &'a WebSocket,
        req: &'a mut Request<'static>,
        event: SocketEvent,
    ) -> EventFuture<'a> {
        match event {
            SocketEvent::Open => Box::pin(self.on_open(ws, req)),
            SocketEvent::Message(m) => Box::pin(self.on_message(ws, req, Message::from_abi(m))),
            SocketEvent::Closed(code, reason) => Box::pin(async move {
                self.on_close(ws, req, code, reason.as_str()).await;
                Ok(())
            }),
        }
    }
}

impl WebSocket {
    /// Serves this socket with `handler`'s async callbacks once the route's handler returns
    /// (which it should do at once): see [`AsyncWsHandler`].
    pub fn serve_async(&self, handler: impl AsyncWsHandler) -> Result<()> {
        handlers().insert(self.id(), Served::Async(Box::new(handler)));
        Ok(())
    }
}

/// The handler of socket `id` during its callback: put back in the table when the callback
/// ends, also when its future is dropped before (the host cancelled it at
/// `limit_time_real`), so that `on_close` still runs; dropped after `on_close`.
struct Slot {
    id: u64,
    handler: Option<Box<dyn ErasedAsyncWs>>,
    keep: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let (true, Some(handler)) = (self.keep, self.handler.take()) {
            handlers().insert(self.id, Served::Async(handler));
        }
    }
}

/// The future of `handler`'s callback for `event` on socket `id`: the outcome carries the
/// session's changes, a panic is an error.
///
/// # Safety
/// `request`'s views must stay valid until the returned future is dropped.
pub(crate) unsafe fn event_future(
    id: u64,
    handler: Box<dyn ErasedAsyncWs>,
    request: HttpRequest<'_>,
    event: SocketEvent,
) -> impl Future<Output = Outcome> + Send + 'static {
    // SAFETY: the caller keeps the views alive for the future's life (the host's contract
    // of `call_async`; the sync entry point finishes the future within the call).
    let request: HttpRequest<'static> = unsafe { std::mem::transmute(request) };
    let keep = !matches!(event, SocketEvent::Closed(..));
    async move {
        let mut slot = Slot {
            id,
            handler: Some(handler),
            keep,
        };
        let ws = WebSocket::from_id(id);
        let mut req = Request::from_abi(request);
        let Some(handler) = slot.handler.as_deref_mut() else {
            return error_outcome(Error::internal("a websocket handler vanished"));
        };
        let (w, r) = (&ws, &mut req);
        let result = match catch_unwind(AssertUnwindSafe(move || handler.call(w, r, event))) {
            Ok(fut) => match (CatchUnwind { fut }).await {
                Ok(result) => result,
                Err(message) => Err(Error::panic(message)),
            },
            Err(payload) => Err(Error::panic(panic_message(&*payload))),
        };
        session_outcome(result, &req)
    }
}

/// `AddonModule::call_async` for [`ItemKind::AsyncSocketEvent`]: the callback's future. A
/// socket served by sync callbacks is answered at once (its callback run on this thread).
pub(crate) fn call_async(mut inv: Invocation<'_>) -> FfiFuture<Outcome> {
    let id = inv.handle;
    let is_async = matches!(handlers().get(&id), Some(Served::Async(_)));
    if !is_async {
        inv.kind = ItemKind::SocketEvent;
        let outcome = crate::socket_events::invoke(inv).unwrap_or_default();
        return std::future::ready(outcome).into_ffi();
    }
    let (Some(request), Some(event)) = (inv.request.into_option(), inv.socket_event.into_option())
    else {
        let e = Error::internal("a websocket event without its request");
        return std::future::ready(error_outcome(e)).into_ffi();
    };
    let Some(Served::Async(handler)) = handlers().remove(&id) else {
        let e = Error::internal(format!("no handler for websocket {id}"));
        return std::future::ready(error_outcome(e)).into_ffi();
    };
    // SAFETY: the host keeps the request's views until it drops the future.
    DropContained::new(unsafe { event_future(id, handler, request, event) }).into_ffi()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::WsMessage;
    use std::task::{Context, Waker};

    /// Never ends its `on_message`; counts its `on_close`s.
    struct Stuck(std::sync::Arc<std::sync::atomic::AtomicU32>);

    impl AsyncWsHandler for Stuck {
        async fn on_message(
            &mut self,
            _: &WebSocket,
            _: &mut Request<'_>,
            _: Message,
        ) -> Result<()> {
            std::future::pending::<()>().await;
            Ok(())
        }

        async fn on_close(&mut self, _: &WebSocket, _: &mut Request<'_>, _: u16, _: &str) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    fn take(id: u64) -> Box<dyn ErasedAsyncWs> {
        match handlers().remove(&id) {
            Some(Served::Async(h)) => h,
            _ => panic!("no async handler for {id}"),
        }
    }

    #[test]
    fn a_cancelled_callback_gives_its_handler_back_for_on_close() {
        let id = 0xA5C_0001;
        let closes = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        WebSocket::from_id(id)
            .serve_async(Stuck(closes.clone()))
            .unwrap();
        let message = SocketEvent::Message(WsMessage::Text("x".into()));
        // SAFETY: the request's views are 'static.
        let fut = unsafe { event_future(id, take(id), HttpRequest::default(), message) };
        let mut fut = Box::pin(fut);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert!(
            !handlers().contains_key(&id),
            "out of the table while it runs"
        );
        drop(fut); // cancelled (limit_time_real)
        let closed = SocketEvent::Closed(1011, "".into());
        // SAFETY: as above.
        let fut = unsafe { event_future(id, take(id), HttpRequest::default(), closed) };
        let outcome = crate::async_route::block_on(fut);
        assert!(outcome.error.is_none());
        assert_eq!(closes.load(std::sync::atomic::Ordering::Acquire), 1);
        assert!(!handlers().contains_key(&id), "dropped after on_close");
    }
}
