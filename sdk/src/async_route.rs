//! Async routes: a `#[route]` on an `async fn` (see [`route`](crate::route)). The host polls
//! the handler's future on its runtime ([`ItemKind::AsyncRoute`](crate::abi::ItemKind::AsyncRoute),
//! through [`AddonModule::call_async`](crate::abi::AddonModule::call_async)), so a handler
//! waiting on a host service ([`time::sleep`](crate::time::sleep), an
//! [`AsyncCursor`](crate::AsyncCursor)) holds no thread. The future crosses the boundary as
//! async-ffi's `FfiFuture`; the waker crosses back the same way.
//!
//! The request the host hands over stays valid until the future is dropped (the host keeps
//! it), which is what lets the handler borrow it for the future's whole life. A panic in the
//! handler is caught here and answered as a sync handler's panic is. Called through the
//! sync entry point instead (a dispatcher, `call_super`, an `ir.http` hook chain, a host
//! without `call_async`), the future is run to its end on the calling thread
//! ([`block_on`]).

use crate::abi::{HttpRequest, Invocation, Outcome};
use crate::registry::{error_outcome, reply_outcome, Reply};
use crate::{Error, Request, Result};
use async_ffi::{FfiFuture, FutureExt};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// An async route's future, as the macro builds it: the handler's result, and the request
/// it ran with (its session changes are read from it).
#[doc(hidden)]
pub type AsyncReply = Pin<Box<dyn Future<Output = (Result<Reply>, Request<'static>)> + Send>>;

/// An async route's wrapper, as the macro generates it.
#[doc(hidden)]
pub type AsyncHandler = fn(Request<'static>) -> AsyncReply;

/// The sync handler of an async route (never called: the registry runs `async_handler`).
#[doc(hidden)]
pub fn async_only(_: &mut Request) -> Result<Reply> {
    Err(Error::internal("an async route was called as a sync one"))
}

/// The future of `handler` for the host's request `req`, with `inv`'s endpoint: the outcome
/// as a sync route's (session changes, headers, an error), a panic included.
///
/// # Safety
/// `req`'s views must stay valid until the returned future is dropped.
pub(crate) unsafe fn outcome_future(
    handler: AsyncHandler,
    req: HttpRequest<'_>,
    endpoint: Option<crate::abi::EndpointRef>,
) -> impl Future<Output = Outcome> + Send + 'static {
    // SAFETY: the caller keeps the views alive for the future's life (the host's contract
    // of `call_async`; `block_on` below finishes the future within the call).
    let req: HttpRequest<'static> = unsafe { std::mem::transmute(req) };
    let mut req = Request::from_abi(req);
    req.super_endpoint = endpoint;
    let started = catch_unwind(AssertUnwindSafe(|| handler(req)));
    async move {
        let fut = match started {
            Ok(fut) => fut,
            Err(payload) => return error_outcome(Error::panic(panic_message(&*payload))),
        };
        match (CatchUnwind { fut }).await {
            Ok((result, req)) => reply_outcome(result, &req),
            Err(message) => error_outcome(Error::panic(message)),
        }
    }
}

/// `AddonModule::call_async`: the future of the async route `inv.item` (or of an async
/// websocket callback: [`crate::async_socket_events`]).
pub(crate) extern "C" fn call_async(inv: Invocation<'_>) -> FfiFuture<Outcome> {
    let item = inv.item;
    let started = catch_unwind(AssertUnwindSafe(|| {
        if inv.kind == crate::abi::ItemKind::AsyncSocketEvent {
            return Some(crate::async_socket_events::call_async(inv));
        }
        let handler = crate::registry::async_handler(inv.item)?;
        let abi_stable::std_types::ROption::RSome(req) = inv.request else {
            return None;
        };
        // SAFETY: the host keeps the request's views until it drops the future.
        let fut = unsafe { outcome_future(handler, req, inv.endpoint.into_option()) };
        Some(DropContained::new(fut).into_ffi())
    }));
    match started {
        Ok(Some(fut)) => fut,
        Ok(None) => {
            let missing = error_outcome(Error::internal(format!("no async route item {item}")));
            std::future::ready(missing).into_ffi()
        }
        Err(payload) => {
            let panicked = error_outcome(Error::panic(panic_message(&*payload)));
            std::future::ready(panicked).into_ffi()
        }
    }
}

/// Runs an async route called through the sync entry point: its future polled to the end
/// on this thread, which sleeps between polls until woken.
pub(crate) fn run_blocking(
    handler: AsyncHandler,
    req: HttpRequest<'_>,
    endpoint: Option<crate::abi::EndpointRef>,
) -> Outcome {
    // SAFETY: `block_on` drives the future to its end before `req`'s call returns.
    block_on(unsafe { outcome_future(handler, req, endpoint) })
}

/// Polls `fut` to its end on this thread.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// A future whose drop cannot panic out: the host drops an async route's future before
/// its end when it cancels the request (`limit_time_real`, a stop), and async-ffi drops it
/// in an `extern "C"` function that aborts the process on a panic. A panic of the handler's
/// state while dropped (a value's `Drop`) is logged and contained instead; what it did not
/// free is leaked.
pub(crate) struct DropContained<F> {
    fut: std::mem::ManuallyDrop<F>,
}

impl<F> DropContained<F> {
    pub(crate) fn new(fut: F) -> Self {
        DropContained {
            fut: std::mem::ManuallyDrop::new(fut),
        }
    }
}

impl<F: Future> Future for DropContained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is pinned with `self` (structural: it is never moved out; its
        // drop, below, is in place).
        unsafe { self.map_unchecked_mut(|s| &mut *s.fut) }.poll(cx)
    }
}

impl<F> Drop for DropContained<F> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, in place; never used after.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
            std::mem::ManuallyDrop::drop(&mut self.fut)
        }));
        if let Err(payload) = dropped {
            tracing::error!(target: "inphms.sdk", "an async route's future panicked while dropped (its request cancelled): {}", panic_message(&*payload));
            // A payload may panic when dropped too: leaked.
            std::mem::forget(payload);
        }
    }
}

/// A future whose panic while polled is its output's error (the panic's message).
pub(crate) struct CatchUnwind<F> {
    pub(crate) fut: F,
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.fut;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}
