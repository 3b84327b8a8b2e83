//! Serving one client connection (the listener's [`super::server`] accepts it): a hyper
//! connection (HTTP/1.1 keep-alive, HTTP/2, upgrades) on the current [`Application`]
//! generation, under the concurrency cap; when its hyper state is shed
//! ([`super::idle`]), the socket parked until its client sends again, then served again.
//!
//! * A connection of a worker of workers mode holds its place under `worker_connections`
//!   ([`HeldConnection`]) from its accept until it closes or is upgraded, parked or not:
//!   a parked connection is still a client's connection the worker owns, and its client
//!   may send its next request at any time.
//! * With `worker_connections` 1 (`one_shot`), every response but a 101 carries
//!   `Connection: close`: the connection closes after its response, so nothing is parked.

use super::application::{Application, Handled};
use super::connections::HeldConnection;
use super::idle::{self, ParkedSocket, ShedSocket};
use super::response::HttpResult;
use super::timeouts::{ConnActivity, TimedStream, Timeouts};
use super::Services;
use arc_swap::ArcSwap;
use futures_util::FutureExt as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::Semaphore;

/// What serving a connection needs, shared by its tasks: the one serving it with hyper and,
/// once its hyper state is shed ([`super::idle`]), the one parking it.
pub(super) struct Shared {
    pub(super) app: Arc<ArcSwap<Application>>,
    pub(super) builder: Builder<TokioExecutor>,
    pub(super) graceful: std::sync::Weak<GracefulShutdown>,
    /// Set when the drain begins: parked connections close.
    pub(super) stopping: AtomicBool,
    pub(super) in_flight: Arc<AtomicUsize>,
    pub(super) cap: Option<Arc<Semaphore>>,
    /// One request per connection (a worker holding one): each response but an upgrade's
    /// carries `Connection: close`, which makes hyper close the connection after it (its
    /// own keep-alive switch would add `close` to a 101's `Connection: upgrade` too); its
    /// hyper state is never shed.
    pub(super) one_shot: bool,
    pub(super) timeouts: Timeouts,
    pub(super) services: Arc<Services>,
}

/// A connection's own state, kept while it is parked.
pub(super) struct Conn {
    pub(super) activity: Arc<ConnActivity>,
    pub(super) peer: SocketAddr,
    pub(super) peer_text: Arc<str>,
    /// Its place under a worker's `worker_connections`, until it closes or is upgraded.
    pub(super) held: Option<HeldConnection>,
}

/// Serves `socket` with a new hyper connection on its own task (accepted now, or woken
/// from [`idle::park`]); parks it when its hyper state is shed.
pub(super) fn serve_connection(
    shared: &Arc<Shared>,
    graceful: &GracefulShutdown,
    socket: ParkedSocket,
    conn: Conn,
) {
    let ParkedSocket { stream, slot } = socket;
    let Conn {
        activity,
        peer,
        peer_text,
        held,
    } = conn;
    let mut stream = TimedStream::new(stream, Arc::clone(&activity), shared.timeouts);
    // A one-shot connection closes after its response: nothing to shed.
    if !shared.one_shot {
        stream = stream.with_shedding(idle::home);
    }
    if let Some(slot) = slot {
        stream = stream.with_slot(slot);
    }
    let app = Arc::clone(&shared.app);
    let in_flight = Arc::clone(&shared.in_flight);
    let inflight = Arc::clone(&shared.services.inflight);
    let cap = shared.cap.clone();
    let one_shot = shared.one_shot;
    let conn_activity = Arc::clone(&activity);
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.load_full();
        if req.version() == hyper::Version::HTTP_2 {
            activity.multiplexed();
        }
        // (HTTP/2 has no `Connection` header: its connection counts as one.)
        let one_shot = one_shot && req.version() < hyper::Version::HTTP_2;
        // One clock read for the in-flight table and the access log.
        let started = std::time::Instant::now();
        let tracked = inflight.enter(req.method(), req.uri(), started);
        // Under the cap, a request starts at once when a permit is free.
        let permit = match &cap {
            None => Ok(None),
            Some(s) => Arc::clone(s).try_acquire_owned().map(Some),
        };
        let (running, permit) = match permit {
            Ok(permit) => {
                let counted = Counted::enter(&in_flight);
                match app.handle(req, peer, &peer_text, started, false, tracked) {
                    Handled::Ready(mut resp) => {
                        activity.request_answered();
                        drop(counted);
                        if one_shot {
                            close_after(&mut resp);
                        }
                        return Served::Ready(Some(resp));
                    }
                    Handled::Pending(pending) => (Ok((pending, counted)), permit),
                }
            }
            // Boxed: the rare case should not size the future of the others.
            Err(_) => (Err(Box::new((app, req, tracked))), None),
        };
        let serving = activity.request_started();
        let activity = Arc::clone(&activity);
        let in_flight = Arc::clone(&in_flight);
        let cap = cap.clone();
        let peer_text = Arc::clone(&peer_text);
        Served::Pending(Box::pin(async move {
            let (pending, _counted, _permit) = match running {
                Ok((pending, counted)) => (pending, counted, permit),
                Err(queued) => {
                    let (app, req, tracked) = *queued;
                    let permit = match cap {
                        Some(s) => Some(s.acquire_owned().await.expect("never closed")),
                        None => None,
                    };
                    let counted = Counted::enter(&in_flight);
                    match app.handle(req, peer, &peer_text, started, true, tracked) {
                        Handled::Ready(mut resp) => {
                            if one_shot {
                                close_after(&mut resp);
                            }
                            return resp;
                        }
                        Handled::Pending(pending) => (pending, counted, permit),
                    }
                }
            };
            let mut resp = pending.run().await;
            if resp.status() == hyper::StatusCode::SWITCHING_PROTOCOLS {
                activity.upgraded();
            } else if one_shot {
                close_after(&mut resp);
            }
            drop(serving);
            resp
        }))
    });
    let hyper_conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service);
    let hyper_conn = graceful.watch(hyper_conn.into_owned());
    let shared = Arc::clone(shared);
    // `map`, not an `async` block awaiting it: the block would hold the connection
    // twice (as captured and as awaited), a task twice as large to allocate and copy.
    // `Map` drops the connection (and so the stream, which leaves a shed socket with the
    // activity) before calling the closure.
    tokio::spawn(hyper_conn.map(move |done| {
        // Taken in every case: the activity must not keep a socket (nor its slot).
        let shed = conn_activity.take_shed();
        match (done, shed) {
            (Ok(()), Some(socket)) => {
                tracing::debug!(target: "inphms.http.idle", "connection from {peer}: idle, parked");
                // Still the worker's connection while parked: `held` goes with it.
                tokio::spawn(park_then_serve(shared, socket, conn_activity, peer, held));
            }
            // Otherwise the connection closed or was upgraded: either releases its place
            // under `worker_connections` (`held`, dropped here).
            (Err(e), _) => {
                tracing::debug!(target: "inphms.http", "connection from {peer}: {e}");
            }
            (Ok(()), None) => {}
        }
    }));
}

/// Parks a connection whose hyper state was shed until its client's next request, then
/// serves it again; or closes it (see [`idle::park`]).
///
/// What the connection keeps while parked is allocated now, not at its accept: next to the
/// other parked connections', rather than each among the blocks its hyper connection freed
/// (which would keep those pages resident, see [`super::idle`]).
async fn park_then_serve(
    shared: Arc<Shared>,
    socket: ShedSocket,
    activity: Arc<ConnActivity>,
    peer: SocketAddr,
    held: Option<HeldConnection>,
) {
    // Registered with the runtime again (its registration was released by `idle::home`).
    let Ok(stream) = tokio::net::TcpStream::from_std(socket.stream) else {
        return;
    };
    let socket = ParkedSocket {
        stream,
        slot: socket.slot,
    };
    let woken = idle::park(
        &socket.stream,
        &activity,
        &shared.timeouts,
        &shared.stopping,
    )
    .await;
    // Gone once the drain began: the connection closes, as hyper closes an idle one.
    let graceful = match woken {
        idle::Woken::Request if !shared.stopping.load(Ordering::SeqCst) => {
            shared.graceful.upgrade()
        }
        _ => None,
    };
    match graceful {
        Some(graceful) => {
            tracing::debug!(target: "inphms.http.idle", "connection from {peer}: served again");
            let conn = Conn {
                activity,
                peer,
                peer_text: peer.ip().to_canonical().to_string().into(),
                held,
            };
            serve_connection(&shared, &graceful, socket, conn);
        }
        None => {
            tracing::debug!(target: "inphms.http.idle", "connection from {peer}: parked connection closed: {}", match woken {
                idle::Woken::Closed(why) => why,
                idle::Woken::Request => idle::STOPPING,
            });
        }
    }
}

/// Marks `resp` as the connection's last (`Connection: close`; hyper then closes the
/// connection once it is written), unless it is an upgrade's.
fn close_after(resp: &mut HttpResult) {
    if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
}

/// A request counted in flight (for the drain's report) until dropped.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn enter(in_flight: &Arc<AtomicUsize>) -> Counted {
        in_flight.fetch_add(1, Ordering::AcqRel);
        Counted(Arc::clone(in_flight))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The future hyper holds for a request: its answer, when [`Application::handle`] gave it
/// at once, or the rest of its path, boxed (so the common case has no request future to
/// move; see BENCHMARKS.md).
enum Served {
    Ready(Option<HttpResult>),
    Pending(Pin<Box<dyn Future<Output = HttpResult> + Send>>),
}

impl Future for Served {
    type Output = Result<HttpResult, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Polled again after its answer (hyper does not): a 500 rather than a panic.
            Served::Ready(resp) => Poll::Ready(Ok(resp
                .take()
                .unwrap_or_else(|| super::response::html_error(500, None)))),
            Served::Pending(rest) => rest.as_mut().poll(cx).map(Ok),
        }
    }
}
