//! Idle keep-alive connections shed hyper's state (issue 23): an HTTP/1 connection idle
//! between requests for [`SHED_AFTER`] ends its hyper connection and keeps only its socket,
//! parked, as nginx frees an idle connection's buffers.
//!
//! A hyper connection holds its read buffer (8 KiB), its write buffer and its state for as
//! long as it lives, ≈ 17 KiB per idle connection. Once the connection has waited
//! [`SHED_AFTER`] for its client's next request (and nothing of it arrived),
//! [`super::timeouts::TimedStream`] ends hyper's pending read as if the client had closed:
//! hyper ends the connection cleanly without shutting the socket down, and when it drops
//! the stream, the socket (and its place under the connection cap) goes to
//! [`ConnActivity`], from which the server takes it and [`park`]s it: a small task waits for
//! the client's next bytes with no buffer, then the server serves the connection again with
//! a new hyper connection, as if just accepted (the request counts, the keep-alive deadline
//! and the peer's address carry over).
//!
//! A parked connection keeps what the connection had: it is closed at the keep-alive
//! deadline, when the client closes it, when the connection cap evicts it (it waits for its
//! client) and at a graceful stop (as hyper closes an idle connection). Only connections
//! that ended cleanly are parked: hyper ending the connection with an error (a pipelined
//! request head left incomplete in its buffer for [`SHED_AFTER`]) closes it. HTTP/2
//! connections, websockets and connections that have not served a request are never shed.

use super::connections::Slot;
use super::timeouts::{ConnActivity, Timeouts};
use std::future::{poll_fn, Future as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// How long an HTTP/1 keep-alive connection waits for its next request before its hyper
/// state is shed. Short, since a parked connection costs little to serve again (a hyper
/// connection set up, as for a new connection without the accept), and long enough that a
/// client sending requests back to back never pays it.
///
/// A quarter of a second: the memory comes back soon (at the next heap trim, every 2 s),
/// while requests a page sends in a burst still share one hyper connection.
pub const SHED_AFTER: Duration = Duration::from_millis(250);

/// The socket of a connection whose hyper state was shed, with its place under the cap:
/// released from the runtime (registered again when parked).
#[derive(Debug)]
pub struct ShedSocket {
    /// The connection's socket, open.
    pub stream: std::net::TcpStream,
    /// Its place under `http_max_connections`, freed when it closes.
    pub slot: Option<Slot>,
}

/// A connection's socket registered with the runtime, with its place under the cap.
#[derive(Debug)]
pub struct ParkedSocket {
    /// The connection's socket, open.
    pub stream: TcpStream,
    /// Its place under `http_max_connections`, freed when it closes.
    pub slot: Option<Slot>,
}

/// Where [`super::timeouts::TimedStream`] leaves a shed socket: with its activity, for the
/// server to take once hyper's connection has ended. Its registration with the runtime is
/// released (it was allocated at the accept, among hyper's blocks).
pub fn home(stream: TcpStream, slot: Option<Slot>, activity: &ConnActivity) {
    // Fails only if the runtime is gone (a stop): the socket closes.
    if let Ok(stream) = stream.into_std() {
        activity.put_shed(ShedSocket { stream, slot });
    }
}

/// What ends a parked connection's wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// The client sent bytes: serve the connection again.
    Request,
    /// To close, and why: idle past the keep-alive deadline, closed by the client,
    /// evicted, or the server stops.
    Closed(&'static str),
}

/// Waits, without buffers, until the parked connection's client sends its next bytes
/// ([`Woken::Request`]), or the connection is to close ([`Woken::Closed`]): a future of a
/// few words and a timer (no stored sub-futures), since every parked connection holds one.
/// `stopping` is set by the drain, which then wakes every parked connection
/// ([`super::connections::Connections::wake_parked`]).
pub async fn park(
    stream: &TcpStream,
    activity: &ConnActivity,
    timeouts: &Timeouts,
    stopping: &AtomicBool,
) -> Woken {
    let Some(deadline) = activity.idle_deadline(timeouts) else {
        // Not idle (cannot happen: only idle connections are shed): served at once.
        return Woken::Request;
    };
    // Marked before `stopping` is read: the drain sets it, then wakes the marked ones.
    activity.set_parked(true);
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    let woken = poll_fn(|cx| {
        // The waker first (an eviction or the drain wakes it), then the checks.
        if activity.poll_evicted(cx).is_ready() {
            return Poll::Ready(Woken::Closed("evicted (http_max_connections)"));
        }
        if stopping.load(Ordering::SeqCst) {
            return Poll::Ready(Woken::Closed(STOPPING));
        }
        let mut byte = [0u8; 1];
        match stream.poll_peek(cx, &mut ReadBuf::new(&mut byte)) {
            Poll::Ready(Ok(n)) if n > 0 => return Poll::Ready(Woken::Request),
            Poll::Ready(Ok(_)) => return Poll::Ready(Woken::Closed("closed by the client")),
            Poll::Ready(Err(_)) => return Poll::Ready(Woken::Closed("socket error")),
            Poll::Pending => {}
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Woken::Closed("idle past http_keepalive_timeout")),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    activity.set_parked(false);
    woken
}

/// Why a parked connection closes at a graceful stop.
pub const STOPPING: &str = "the server stops";
