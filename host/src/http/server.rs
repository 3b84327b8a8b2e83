//! The HTTP listener (Odoo's `ThreadedWSGIServerReloadable`): binds `http_interface:http_port`
//! or takes a socket-activated listener, accepts connections, serves them with hyper
//! (HTTP/1.1 keep-alive, HTTP/2, upgrades) on the current [`Application`] generation, caps
//! concurrent requests, drops slow or idle clients, and drains gracefully.
//!
//! * Slow clients: `header_timeout` bounds the time to send a request head, and the
//!   current generation's `http_keepalive_timeout` the idle time between requests on a
//!   keep-alive connection, apart ([`super::timeouts`]; hyper's own header timeout would
//!   bound both with one value).
//! * The concurrency cap counts requests being served (a request over it waits for a
//!   permit; it never fails). Websockets are not counted.
//! * Open connections are capped ([`super::connections`]): past the cap, the connection
//!   waiting longest for its client is closed to make room; a failed `accept` (out of
//!   descriptors) backs off and evicts one too; each burst is logged once, then counted.
//! * Each connection is served on its own task (the `connection` module). An idle HTTP/1
//!   keep-alive connection sheds its hyper state and is parked until its client sends
//!   again ([`super::idle`]); parked connections close at the stop.
//! * At the stop: stop accepting (on a plain stop, close the listening socket so that new
//!   connections are refused; keep it for a re-exec), send Close 1001 (Going Away) to
//!   every websocket ([`super::websocket::close_all`]), let in-flight requests finish (at
//!   most `drain_timeout`) and websockets complete their close, and report.
//! * In workers mode, a worker holds at most `worker_connections` client connections
//!   ([`super::connections::Held`]; a parked connection is still held): at the limit it
//!   stops accepting (another worker takes the next connection); with 1, each response
//!   carries `Connection: close` (Odoo's prefork serves one request per connection), so a
//!   crash loses only the request served, and nothing is parked.
//! * Expired sessions are swept in the background: a minute after start, then every
//!   [`session::SWEEP_INTERVAL`].

use super::application::Application;
use super::connection::{serve_connection, Conn, Shared};
use super::connections::{Burst, BurstLog, Connections, Held};
use super::idle::ParkedSocket;
use super::session;
use super::timeouts::{ConnActivity, Timeouts};
use super::websocket;
use super::Services;
use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// How long connections accepted just before a stop have, at most, to send their first
/// request before the drain closes idle connections (the drain goes on as soon as every
/// accepted connection has sent it or closed).
const ACCEPTED_GRACE: Duration = Duration::from_millis(100);

/// How the listener was obtained, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerSource {
    /// Bound by this process.
    Bound,
    /// Inherited through `LISTEN_FDS` (systemd socket activation or a re-exec).
    Activated,
}

/// Takes the socket-activated listener when `LISTEN_FDS`/`LISTEN_PID` name this process,
/// else binds `interface:port` (an empty interface means `0.0.0.0`). Call before starting
/// the runtime's threads.
pub fn listen(interface: &str, port: u16) -> std::io::Result<(TcpListener, ListenerSource)> {
    let mut fds = listenfd::ListenFd::from_env();
    if let Ok(Some(listener)) = fds.take_tcp_listener(0) {
        return Ok((listener, ListenerSource::Activated));
    }
    let host = if interface.is_empty() {
        "0.0.0.0"
    } else {
        interface
    };
    let addr: SocketAddr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
    .parse()
    .map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("http_interface '{interface}': {e}"),
        )
    })?;
    let listener = TcpListener::bind(addr)?;
    // std listens with a backlog of 128: a burst of connections (600 at once) past it has
    // its SYNs dropped, and the clients retry only a second later. Listening again on
    // Linux sets the backlog (capped by net.core.somaxconn).
    // SAFETY: `listen` on a descriptor this function owns; it only changes the backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(target: "inphms.service.server", "cannot set the listen backlog to {LISTEN_BACKLOG}: {e}");
    }
    Ok((listener, ListenerSource::Bound))
}

/// The backlog of the listening socket bound by the host (nginx's default is 511).
const LISTEN_BACKLOG: libc::c_int = 1024;

/// The concurrency cap from `INPHMS_MAX_HTTP_THREADS`, with Odoo's meaning: unset, empty or
/// 0 means none; an integer caps requests in flight; anything else means
/// `max((db_maxconn - max_cron_threads) / 2, 1)`.
pub fn concurrency_cap(
    value: Option<&str>,
    db_maxconn: i64,
    max_cron_threads: i64,
) -> Option<usize> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    match value.parse::<i64>() {
        Ok(0) => None,
        Ok(n) if n > 0 => Some(n as usize),
        _ => Some(((db_maxconn - max_cron_threads) / 2).max(1) as usize),
    }
}

/// Settings of the listener.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Requests in flight at most (others wait).
    pub max_in_flight: Option<usize>,
    /// Connections open at most (`http_max_connections`; see [`super::connections`]).
    pub max_connections: Option<usize>,
    /// A client must send its request head within this time (the idle time between
    /// requests is the generation's `http_keepalive_timeout`).
    pub header_timeout: Duration,
    /// How long a graceful stop waits for in-flight requests.
    pub drain_timeout: Duration,
    /// In a worker of workers mode, the client connections it holds at most
    /// (`worker_connections`; upgraded ones are not counted, parked ones are); with 1, one
    /// request per connection. `None`: no limit (the threaded server).
    pub worker_connections: Option<usize>,
}

/// How serving stops (sent through the `stop` channel of [`serve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The process ends: the listening socket closes when the drain begins, so that new
    /// connections are refused at once (a load balancer moves on) instead of waiting in
    /// the backlog to be reset at the exit.
    Close,
    /// A re-exec takes the socket over: it stays open (connections wait in the backlog for
    /// the new image) and is given back in [`DrainReport::listener`].
    Handover,
}

/// What a graceful stop observed.
#[derive(Debug, Default)]
pub struct DrainReport {
    /// Requests in flight when the stop began.
    pub in_flight: usize,
    /// Whether they all finished within the drain timeout.
    pub drained: bool,
    /// The listening socket, still open, on a [`Stop::Handover`] (connections arriving
    /// during and after the drain wait in the kernel's backlog); `None` on a
    /// [`Stop::Close`]. Dropping it closes it.
    pub listener: Option<TcpListener>,
}

/// Over the connection cap with nothing to evict, the accept loop looks again this often
/// (a busy connection may have become idle) besides waking when one closes.
const FULL_RECHECK: Duration = Duration::from_millis(100);
/// Evicted connections closing at once, at most: past the cap, the listener goes on
/// accepting while they close (a client is not kept waiting behind each close), using at
/// most this many descriptors more than the cap (taken from the files' headroom).
const MAX_EVICTING: usize = 32;
/// The first and longest waits after a failed `accept` (doubling in between).
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// A burst of evictions or accept errors is logged once, then summed up at most this often.
const SUMMARY_WINDOW: Duration = Duration::from_secs(10);

/// Serves `listener` until `stop` says how to stop, then drains and gives the listener
/// back on a [`Stop::Handover`].
pub async fn serve(
    listener: TcpListener,
    app: Arc<ArcSwap<Application>>,
    options: ServeOptions,
    mut stop: watch::Receiver<Option<Stop>>,
) -> std::io::Result<DrainReport> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let serving = Serving::new(app, &options);
    let sweeper = tokio::spawn(sweep_sessions(Arc::clone(&serving.shared.app)));
    websocket::set_accepting(&serving.services.websockets, true);
    let mode = accept_until_stop(&listener, &serving, &mut stop).await;
    let listener = close_or_keep(listener.into_std()?, mode, &serving);
    let report_in_flight = serving.shared.in_flight.load(Ordering::Acquire);
    sweeper.abort();
    tracing::info!(
        target: "inphms.service.server",
        "stopped accepting{}; {report_in_flight} request(s) in flight",
        if listener.is_none() { " (listening socket closed)" } else { "" }
    );
    let drained = drain(serving, options.drain_timeout).await;
    Ok(DrainReport {
        in_flight: report_in_flight,
        drained,
        listener,
    })
}

/// Accepts connections until `stop` says how to stop: past the connection cap, each
/// connection accepted evicts one; a failed `accept` backs off. Bursts of evictions and
/// accept errors are summed up.
async fn accept_until_stop(
    listener: &tokio::net::TcpListener,
    serving: &Serving,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Stop {
    let connections = &serving.connections;
    let mut bursts = Bursts::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    let mode = loop {
        let due = bursts.due();
        let summaries = async move {
            match due {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        // A worker at its `worker_connections`: accept nothing (another worker takes the
        // next connection) until one of its connections closes or is upgraded.
        if let Some(held) = serving.held.as_ref().filter(|h| h.full()) {
            tokio::select! {
                mode = stop.wait_for(Option::is_some) => break stopped(mode),
                _ = held.released() => {}
                _ = summaries => bursts.summarize(connections),
            }
            continue;
        }
        // Past the cap, each connection accepted evicts one (its victim closes on its own
        // task, so accepting goes on meanwhile, up to MAX_EVICTING closes under way). With
        // none to evict, or too many closes under way: accept nothing until one closes.
        if connections.over_cap() {
            if connections.evicting() < MAX_EVICTING && connections.evict_oldest(None) {
                bursts.at_cap(true, connections);
                continue;
            }
            tokio::select! {
                mode = stop.wait_for(Option::is_some) => break stopped(mode),
                _ = connections.closed() => {}
                _ = tokio::time::sleep(FULL_RECHECK) => {}
                _ = summaries => bursts.summarize(connections),
            }
            continue;
        }
        let accepted = tokio::select! {
            mode = stop.wait_for(Option::is_some) => break stopped(mode),
            accepted = listener.accept() => accepted,
            _ = summaries => {
                bursts.summarize(connections);
                continue;
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF.0;
                let activity = serving.spawn(stream, peer);
                if connections.over_cap() {
                    let evicted = connections.evicting() < MAX_EVICTING
                        && connections.evict_oldest(Some(&activity));
                    bursts.at_cap(evicted, connections);
                }
            }
            Err(e) => {
                // Out of descriptors (the cap is above what the limit allows, or other
                // files hold them): free one if a connection waits for its client.
                let exhausted = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                if exhausted && connections.evicting() < MAX_EVICTING {
                    connections.evict_oldest(None);
                }
                bursts.accept_failed(&e, backoff);
                tokio::select! {
                    mode = stop.wait_for(Option::is_some) => break stopped(mode),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
            }
        }
    };
    bursts.summarize_now(connections);
    mode
}

/// Keeps the listening socket on a [`Stop::Handover`]; on a [`Stop::Close`], serves the
/// connections already in its backlog and closes it (a worker of workers mode takes them
/// while under its `worker_connections` only: the backlog is shared with the other workers).
fn close_or_keep(listener: TcpListener, mode: Stop, serving: &Serving) -> Option<TcpListener> {
    match mode {
        Stop::Handover => Some(listener),
        Stop::Close => {
            // Connections that completed their handshake before the close are served;
            // any later is refused.
            let mut backlog = 0usize;
            while !serving.held.as_ref().is_some_and(|h| h.full()) {
                let Ok((stream, peer)) = listener.accept() else {
                    break;
                };
                let Ok(stream) = stream
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::TcpStream::from_std(stream))
                else {
                    continue;
                };
                serving.spawn(stream, peer);
                backlog += 1;
            }
            drop(listener);
            tracing::debug!(target: "inphms.service.server", "listening socket closed; {backlog} connection(s) taken from its backlog");
            None
        }
    }
}

/// Closes the websockets (1001) and waits, up to `drain_timeout`, for the requests in
/// flight to finish; whether they all did.
async fn drain(serving: Serving, drain_timeout: Duration) -> bool {
    let websockets = &serving.services.websockets;
    websocket::set_accepting(websockets, false);
    let sockets = websocket::close_all(
        websockets,
        websocket::code::GOING_AWAY,
        "server shutting down",
    );
    if sockets > 0 {
        tracing::info!(target: "inphms.service.server", "closing {sockets} websocket(s) (1001 Going Away)");
    }
    // A connection accepted just before the stop may not have had its request read yet,
    // and hyper would close it as idle: give its request a moment to arrive first, no
    // longer than it takes (a fixed wait made every re-exec 100 ms longer, BENCHMARKS.md
    // item 8).
    let awaiting_first = &serving.awaiting_first;
    let grace_end = tokio::time::Instant::now() + ACCEPTED_GRACE;
    let waiting = awaiting_first.load(Ordering::Acquire);
    while awaiting_first.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < grace_end {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tracing::debug!(
        target: "inphms.service.server",
        "{waiting} connection(s) awaited their first request; {} still waiting",
        awaiting_first.load(Ordering::Acquire)
    );
    // Parked connections close; those being served again hold the graceful shutdown only
    // while they start their hyper connection (watched, so shut down with the others).
    serving.shared.stopping.store(true, Ordering::SeqCst);
    serving.connections.wake_parked();
    let mut graceful = serving.graceful;
    let graceful = loop {
        match Arc::try_unwrap(graceful) {
            Ok(g) => break g,
            Err(shared) => {
                graceful = shared;
                tokio::task::yield_now().await;
            }
        }
    };
    let (drained, sockets_closed) = tokio::join!(
        tokio::time::timeout(drain_timeout, graceful.shutdown()),
        websocket::wait_closed(
            websockets,
            websocket::CLOSE_TIMEOUT + Duration::from_secs(1)
        ),
    );
    if !sockets_closed {
        tracing::warn!(target: "inphms.service.server", "some websockets did not complete their close in time");
    }
    drained.is_ok()
}

/// The stop's mode from `wait_for` (a closed channel stops as a plain stop).
fn stopped(mode: Result<watch::Ref<'_, Option<Stop>>, watch::error::RecvError>) -> Stop {
    mode.ok().and_then(|m| *m).unwrap_or(Stop::Close)
}

/// What every connection of a listener shares.
struct Serving {
    /// What serving a connection (again, once parked) needs.
    shared: Arc<Shared>,
    /// Unique once the parked connections stop (see [`drain`]); connections hold a `Weak`.
    graceful: Arc<GracefulShutdown>,
    awaiting_first: Arc<AtomicUsize>,
    connections: Arc<Connections>,
    /// A worker's `worker_connections` (none in the threaded server).
    held: Option<Arc<Held>>,
    /// The host's request path state (the same for every generation).
    services: Arc<Services>,
}

impl Serving {
    /// The state every connection shares: the connection builder (hyper, HTTP/1.1), the
    /// timeouts, the in-flight cap and the connection cap.
    fn new(app: Arc<ArcSwap<Application>>, options: &ServeOptions) -> Self {
        let mut builder = Builder::new(TokioExecutor::new());
        // The header and keep-alive timeouts are `TimedStream`'s, not hyper's. Half-closed
        // connections (the client shut its writing side after its request) get their answer:
        // without `half_close`, hyper reads on while a handler runs and ends the connection at
        // the end of input, unanswered; with it, it reads only when it wants a request head
        // or body, which also tells the connection cap which connections wait for their client.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .half_close(true)
            .keep_alive(true);
        let timeouts = Timeouts {
            header: options.header_timeout,
            keepalive: Duration::from_secs(app.load().config.http_keepalive_timeout.max(1)),
        };
        let graceful = Arc::new(GracefulShutdown::new());
        let services = Arc::clone(app.load().services());
        Serving {
            shared: Arc::new(Shared {
                app,
                builder,
                graceful: Arc::downgrade(&graceful),
                stopping: AtomicBool::new(false),
                in_flight: Arc::new(AtomicUsize::new(0)),
                cap: options.max_in_flight.map(|n| Arc::new(Semaphore::new(n))),
                one_shot: options.worker_connections == Some(1),
                timeouts,
                services: Arc::clone(&services),
            }),
            graceful,
            awaiting_first: Arc::new(AtomicUsize::new(0)),
            connections: Connections::new(options.max_connections.unwrap_or(usize::MAX)),
            held: options.worker_connections.map(Held::new),
            services,
        }
    }

    /// Serves a connection accepted now on its own task; its activity, for the cap.
    fn spawn(&self, stream: tokio::net::TcpStream, peer: SocketAddr) -> Arc<ConnActivity> {
        let _ = stream.set_nodelay(true);
        let held = self.held.as_ref().map(Held::hold);
        let activity = ConnActivity::accepted(&self.awaiting_first);
        let slot = self.connections.register(&activity);
        // The peer's address as the access log and addons see it, made once per connection.
        let peer_text: Arc<str> = peer.ip().to_canonical().to_string().into();
        let socket = ParkedSocket {
            stream,
            slot: Some(slot),
        };
        let conn = Conn {
            activity: Arc::clone(&activity),
            peer,
            peer_text,
            held,
        };
        serve_connection(&self.shared, &self.graceful, socket, conn);
        activity
    }
}

/// The accept loop's logs, one line per burst and then a count per [`SUMMARY_WINDOW`]:
/// connections evicted at the cap, the cap reached with none to evict, failed accepts.
struct Bursts {
    evicted: BurstLog,
    full: BurstLog,
    accept: BurstLog,
}

impl Bursts {
    fn new() -> Bursts {
        Bursts {
            evicted: BurstLog::new(SUMMARY_WINDOW),
            full: BurstLog::new(SUMMARY_WINDOW),
            accept: BurstLog::new(SUMMARY_WINDOW),
        }
    }

    /// When the next summary is due.
    fn due(&self) -> Option<tokio::time::Instant> {
        [self.evicted.due(), self.full.due(), self.accept.due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Past the cap: a connection was evicted to make room, or none could be.
    fn at_cap(&mut self, evicted: bool, connections: &Connections) {
        let now = tokio::time::Instant::now();
        let cap = connections.cap();
        if evicted {
            if self.evicted.event(now) == Burst::First {
                tracing::warn!(
                    target: "inphms.service.server",
                    "{cap} connections open (http_max_connections): closing the one waiting longest for its client to make room for a new one; further closes are counted every {}s",
                    SUMMARY_WINDOW.as_secs()
                );
            }
        } else if self.full.event(now) == Burst::First {
            tracing::warn!(
                target: "inphms.service.server",
                "{cap} connections open (http_max_connections), none waiting for its client: new connections wait until one closes; counted every {}s",
                SUMMARY_WINDOW.as_secs()
            );
        }
    }

    fn accept_failed(&mut self, e: &std::io::Error, backoff: Duration) {
        if self.accept.event(tokio::time::Instant::now()) == Burst::First {
            tracing::error!(
                target: "inphms.service.server",
                "accept failed: {e}; retrying after {}ms (and backing off); further failures are counted every {}s",
                backoff.as_millis(),
                SUMMARY_WINDOW.as_secs()
            );
        }
    }

    /// Logs the counts of the windows that ended.
    fn summarize(&mut self, connections: &Connections) {
        self.summarize_at(tokio::time::Instant::now(), connections);
    }

    /// Logs the counts so far (at the stop).
    fn summarize_now(&mut self, connections: &Connections) {
        self.summarize_at(tokio::time::Instant::now() + SUMMARY_WINDOW, connections);
    }

    fn summarize_at(&mut self, now: tokio::time::Instant, connections: &Connections) {
        let (cap, open) = (connections.cap(), connections.open());
        let window = SUMMARY_WINDOW.as_secs();
        if let Some(n) = self.evicted.summary(now) {
            tracing::warn!(target: "inphms.service.server", "{n} more connection(s) closed to make room at the cap of {cap} in the last {window}s ({open} open)");
        }
        if let Some(n) = self.full.summary(now) {
            tracing::warn!(target: "inphms.service.server", "the cap of {cap} connections was reached {n} more time(s) with none waiting for its client in the last {window}s ({open} open)");
        }
        if let Some(n) = self.accept.summary(now) {
            tracing::error!(target: "inphms.service.server", "accept failed {n} more time(s) in the last {window}s ({open} connections open)");
        }
    }
}

/// Removes expired session files: a minute after start (never on the start-up path), then
/// every [`session::SWEEP_INTERVAL`], on the blocking pool.
async fn sweep_sessions(app: Arc<ArcSwap<Application>>) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    loop {
        let store = app.load().sessions();
        let swept = tokio::task::spawn_blocking(move || {
            session::sweep(store.as_ref(), session::SESSION_LIFETIME)
        })
        .await;
        if let Ok(n) = swept {
            if n > 0 {
                tracing::info!(target: "inphms.http", "session sweep removed {n} expired session(s)");
            }
        }
        tokio::time::sleep(session::SWEEP_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::concurrency_cap;

    #[test]
    fn cap_follows_odoo() {
        assert_eq!(concurrency_cap(None, 64, 2), None);
        assert_eq!(concurrency_cap(Some(""), 64, 2), None);
        assert_eq!(concurrency_cap(Some("0"), 64, 2), None);
        assert_eq!(concurrency_cap(Some("3"), 64, 2), Some(3));
        assert_eq!(concurrency_cap(Some("yes"), 64, 2), Some(31));
        assert_eq!(concurrency_cap(Some("x"), 2, 2), Some(1));
    }
}
