//! Connection timeouts hyper does not separate: a client that sends its request headers
//! too slowly (`http_header_timeout`), and a keep-alive connection left idle
//! (`http_keepalive_timeout`).
//!
//! hyper 1's `header_read_timeout` starts when the connection begins waiting for a request
//! head, so on a keep-alive connection it bounds the idle time and the header time with one
//! value. [`TimedStream`] wraps the TCP stream instead and keeps the two apart, from what the
//! service reports through [`ConnActivity`]:
//!
//! * while no request is being served: the connection is cut when no byte arrives for
//!   `keepalive` after the last traffic (for the first request of a connection, `header`
//!   after the accept); once the first byte of a request head arrives, the head must be
//!   complete (the service called) within `header`;
//! * while a request is served (its body read, its handler running, a request waiting for
//!   the concurrency cap), there is no deadline here (`limit_time_real` bounds the handler);
//! * after a websocket upgrade, never (the websocket owns the connection).
//!
//! The deadline is checked when a read is pending, so a cut shows as a read error
//! (`TimedOut`) that ends the connection; nothing is answered, as hyper does for its own
//! header timeout. Any traffic, written responses included, counts as activity, so a slow
//! download is not cut by the idle deadline.
//!
//! The stream also says when it waits for the client's bytes (a read pending: an idle
//! keep-alive connection, a head or a body on its way), so that the connection cap
//! ([`super::connections`]) can close the one waiting longest to make room
//! ([`ConnActivity::try_evict`]): its pending read and its writes then fail. With hyper's
//! `half_close` on, an HTTP/1 connection reads only when it wants a head or a body, never
//! while a handler runs or a response is written, so those are never evicted.

use futures_util::task::AtomicWaker;
use std::future::Future as _;
use std::io;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The two limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request head (or the accept) to the complete head.
    pub header: Duration,
    /// Idle time allowed between requests on a keep-alive connection.
    pub keepalive: Duration,
}

/// What the service tells the stream about its connection.
#[derive(Debug)]
pub struct ConnActivity {
    base: Instant,
    /// [`coarse_ms`] at `base`.
    base_ms: u64,
    /// Requests being served on the connection.
    active: AtomicUsize,
    /// Requests started so far.
    served: AtomicU64,
    /// Milliseconds since `base` of the last traffic or request end.
    last: AtomicU64,
    /// Milliseconds since `base` + 1 of the first byte of the pending head; 0 for none.
    head_started: AtomicU64,
    upgraded: AtomicBool,
    /// The reader parked without a deadline (a request was being served): woken when the
    /// last request ends, so that it arms the idle deadline (hyper does not read again by
    /// itself after a response: it waits for the stream's wake-up).
    parked: Mutex<Option<Waker>>,
    /// The server's count of connections still waiting for their first request (see
    /// [`ConnActivity::accepted`]): this one leaves it at its first request or its end.
    awaiting_first: Option<Arc<AtomicUsize>>,
    /// [`NOT_WAITING`], [`WAITING`] (a read is pending: the client owes bytes) or
    /// [`EVICTED`] (closed to make room: every read and write fails).
    waiting: AtomicU8,
    /// The waker of the pending read, woken by an eviction.
    reader: AtomicWaker,
    /// The connection carries HTTP/2: its reads wait even while its streams are served.
    multiplexed: AtomicBool,
    /// The socket of a connection whose hyper state was shed ([`super::idle`]), left by the
    /// stream when hyper dropped it, for the server to park.
    shed: Mutex<Option<super::idle::ShedSocket>>,
    /// The connection is parked ([`super::idle::park`]): the drain wakes it.
    idle_parked: AtomicBool,
}

/// [`ConnActivity::waiting`]: no read pending.
const NOT_WAITING: u8 = 0;
/// [`ConnActivity::waiting`]: a read is pending.
const WAITING: u8 = 1;
/// [`ConnActivity::waiting`]: evicted (final).
const EVICTED: u8 = 2;

impl ConnActivity {
    /// A connection accepted now.
    pub fn new() -> Arc<ConnActivity> {
        ConnActivity::counted_in(None)
    }

    fn counted_in(awaiting_first: Option<Arc<AtomicUsize>>) -> Arc<ConnActivity> {
        Arc::new(ConnActivity {
            base: Instant::now(),
            base_ms: coarse_ms(),
            active: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            last: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            parked: Mutex::new(None),
            awaiting_first,
            waiting: AtomicU8::new(NOT_WAITING),
            reader: AtomicWaker::new(),
            multiplexed: AtomicBool::new(false),
            shed: Mutex::new(None),
            idle_parked: AtomicBool::new(false),
        })
    }

    /// A connection accepted now, counted in `awaiting_first` until its first request head
    /// is complete or it ends: a graceful stop waits for that count to fall to zero (for a
    /// moment at most) before it closes idle connections, so that a connection accepted
    /// just before the stop is served rather than closed unanswered.
    pub fn accepted(awaiting_first: &Arc<AtomicUsize>) -> Arc<ConnActivity> {
        awaiting_first.fetch_add(1, Ordering::AcqRel);
        ConnActivity::counted_in(Some(Arc::clone(awaiting_first)))
    }

    /// Called with the count of requests started before this one.
    fn first_request(&self, before: u64) {
        if before == 0 {
            if let Some(count) = &self.awaiting_first {
                count.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Milliseconds since `base`, never less than the real time elapsed (so a deadline is
    /// never early; it may be a few milliseconds late, see [`coarse_ms`]).
    fn now_ms(&self) -> u64 {
        coarse_ms()
            .saturating_sub(self.base_ms)
            .saturating_add(*COARSE_SLACK_MS)
    }

    fn touch(&self) {
        self.last.store(self.now_ms(), Ordering::Release);
    }

    /// A request's head is complete: no deadline until [`RequestGuard`] is dropped.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.first_request(self.served.fetch_add(1, Ordering::AcqRel));
        self.head_started.store(0, Ordering::Release);
        RequestGuard(Arc::clone(self))
    }

    /// A request's head is complete and its answer ready at once (nothing runs between
    /// the two, so no deadline to lift): [`ConnActivity::request_started`] without a guard.
    pub fn request_answered(&self) {
        self.first_request(self.served.fetch_add(1, Ordering::AcqRel));
        self.head_started.store(0, Ordering::Release);
    }

    /// The connection was upgraded (websocket): no deadline any more.
    pub fn upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    /// The connection carries HTTP/2 (called by the service for each HTTP/2 request): it
    /// is not evicted while one of its streams is served.
    pub fn multiplexed(&self) {
        if !self.multiplexed.load(Ordering::Relaxed) {
            self.multiplexed.store(true, Ordering::Release);
        }
    }

    /// When the connection began waiting for its client (the last traffic on it), in
    /// [`coarse_ms`] milliseconds, if it waits for the client's bytes and may be evicted: a
    /// read is pending, it is not a websocket, and no stream of an HTTP/2 connection is
    /// being served.
    pub fn waiting_since(&self) -> Option<u64> {
        if self.waiting.load(Ordering::Acquire) != WAITING
            || self.upgraded.load(Ordering::Acquire)
            || self.multiplexed.load(Ordering::Acquire) && self.active.load(Ordering::Acquire) > 0
        {
            return None;
        }
        Some(self.base_ms + self.last.load(Ordering::Acquire))
    }

    /// Closes the connection to make room if it still waits for its client (see
    /// [`ConnActivity::waiting_since`]): its pending read is woken and fails, and so do its
    /// writes. Returns whether it was evicted. Atomic with the read: if the client's bytes
    /// arrive first, the connection goes on and this returns false.
    pub fn try_evict(&self) -> bool {
        if self.waiting_since().is_none() {
            return false;
        }
        let evicted = self
            .waiting
            .compare_exchange(WAITING, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if evicted {
            self.reader.wake();
        }
        evicted
    }

    /// Whether the connection was evicted.
    pub fn is_evicted(&self) -> bool {
        self.waiting.load(Ordering::Acquire) == EVICTED
    }

    /// A read is pending: registers its waker for an eviction. False if evicted.
    fn start_waiting(&self, waker: &Waker) -> bool {
        // The waker first: an eviction after it wakes this read.
        self.reader.register(waker);
        match self.waiting.load(Ordering::Acquire) {
            WAITING => true,
            // Only this stream leaves NOT_WAITING, so no eviction races this store.
            NOT_WAITING => {
                self.waiting.store(WAITING, Ordering::Release);
                true
            }
            _ => false,
        }
    }

    /// A read completed: no longer waiting. False if evicted (first).
    fn stop_waiting(&self) -> bool {
        match self.waiting.load(Ordering::Acquire) {
            NOT_WAITING => true,
            _ => self
                .waiting
                .compare_exchange(WAITING, NOT_WAITING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
        }
    }

    /// When an idle keep-alive connection sheds its hyper state ([`super::idle`]), if it
    /// may: HTTP/1, a request served, none being served, no head begun, not upgraded (the
    /// last two are implied when [`ConnActivity::deadline`] is some).
    fn shed_at(&self) -> Option<Instant> {
        if self.served.load(Ordering::Acquire) == 0
            || self.head_started.load(Ordering::Acquire) != 0
            || self.multiplexed.load(Ordering::Acquire)
        {
            return None;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Acquire));
        Some(self.base + last + super::idle::SHED_AFTER)
    }

    pub(super) fn put_shed(&self, socket: super::idle::ShedSocket) {
        if let Ok(mut shed) = self.shed.lock() {
            *shed = Some(socket);
        }
    }

    /// The socket the stream left when its hyper state was shed, if any.
    pub fn take_shed(&self) -> Option<super::idle::ShedSocket> {
        self.shed.lock().ok().and_then(|mut s| s.take())
    }

    /// Ready once the connection is evicted; until then, the task is woken by an eviction
    /// (for a parked connection, which has no pending read: it stays evictable).
    pub fn poll_evicted(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.start_waiting(cx.waker()) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Marks the connection parked, or no longer.
    pub fn set_parked(&self, parked: bool) {
        self.idle_parked.store(parked, Ordering::SeqCst);
    }

    /// Wakes the connection if parked (its task then reads the drain's flag).
    pub fn wake_parked(&self) {
        if self.idle_parked.load(Ordering::SeqCst) {
            self.reader.wake();
        }
    }

    /// The idle deadline of a parked connection (see [`super::idle`]).
    pub fn idle_deadline(&self, t: &Timeouts) -> Option<Instant> {
        self.deadline(t)
    }

    /// The deadline now, if any.
    fn deadline(&self, t: &Timeouts) -> Option<Instant> {
        if self.upgraded.load(Ordering::Acquire) || self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ms = Duration::from_millis;
        match self.head_started.load(Ordering::Acquire) {
            0 => {
                let idle = if self.served.load(Ordering::Acquire) == 0 {
                    t.header
                } else {
                    t.keepalive
                };
                Some(self.base + ms(self.last.load(Ordering::Acquire)) + idle)
            }
            started => Some(self.base + ms(started - 1) + t.header),
        }
    }

    fn bytes_read(&self) {
        let now = self.now_ms();
        self.last.store(now, Ordering::Release);
        if self.active.load(Ordering::Acquire) == 0 {
            let _ = self.head_started.compare_exchange(
                0,
                now.saturating_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

impl Drop for ConnActivity {
    fn drop(&mut self) {
        // Ended before its first request (closed by the client, timed out).
        let served = *self.served.get_mut();
        self.first_request(served);
    }
}

/// The coarse clock's resolution (its tick) plus one millisecond of truncation, rounded
/// up: added to every stamp, so that a deadline is never early.
// global: a constant of the machine's clock, read once
static COARSE_SLACK_MS: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    use nix::time::{clock_getres, ClockId};
    let tick_ns = clock_getres(ClockId::CLOCK_MONOTONIC_COARSE)
        .map(|r| r.tv_sec() as u64 * 1_000_000_000 + r.tv_nsec() as u64)
        // Unknown: assume the coarsest kernel tick (HZ = 100).
        .unwrap_or(10_000_000);
    tick_ns.div_ceil(1_000_000) + 1
});

/// Milliseconds of the monotonic clock, read coarsely (`CLOCK_MONOTONIC_COARSE`: the
/// kernel's last tick, a few milliseconds old at most): the connection's activity is
/// stamped several times per request, and its deadlines are seconds long, so the cheapest
/// clock is precise enough. Same origin as `Instant` (`CLOCK_MONOTONIC`).
///
/// Both ends of an interval are read this way, each up to one tick behind the real clock,
/// so an interval is off by up to one tick either way, and the milliseconds are truncated:
/// [`COARSE_SLACK_MS`] makes up for both.
fn coarse_ms() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    // Cannot fail for this clock on Linux (since 2.6.32); a zero only makes a deadline earlier.
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE)
        .unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    (ts.tv_sec() as u64)
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec() as u64 / 1_000_000)
}

/// Marks a request as served until dropped (also when hyper drops the service future).
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnActivity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.touch();
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            let parked = self.0.parked.lock().ok().and_then(|mut w| w.take());
            if let Some(waker) = parked {
                waker.wake();
            }
        }
    }
}

/// A stream whose reads fail with `TimedOut` past the deadline of [`ConnActivity`].
#[derive(Debug)]
pub struct TimedStream<S> {
    /// Taken only by `drop` (to give it back when shed).
    inner: ManuallyDrop<S>,
    /// The connection's place under the cap, freed with the socket (after `inner`).
    _slot: Option<super::connections::Slot>,
    activity: Arc<ConnActivity>,
    timeouts: Timeouts,
    sleep: Pin<Box<Sleep>>,
    /// Where a shed connection's socket goes when hyper drops the stream: set by
    /// [`TimedStream::with_shedding`]; without it, the connection is never shed.
    home: Option<fn(S, Option<super::connections::Slot>, &ConnActivity)>,
    /// The sleep runs to the shed time, not to a deadline.
    shed_timer: bool,
    /// hyper's connection was ended to shed it: the socket is not shut down, and goes home.
    shed: bool,
}

impl<S> TimedStream<S> {
    /// Wraps `inner`, accepted now.
    pub fn new(inner: S, activity: Arc<ConnActivity>, timeouts: Timeouts) -> Self {
        let first = Instant::now() + timeouts.header;
        TimedStream {
            inner: ManuallyDrop::new(inner),
            _slot: None,
            activity,
            timeouts,
            sleep: Box::pin(tokio::time::sleep_until(first)),
            home: None,
            shed_timer: false,
            shed: false,
        }
    }
}

impl<S> TimedStream<S> {
    /// Holds `slot` (the connection counted under the cap) until the stream is dropped.
    pub fn with_slot(mut self, slot: super::connections::Slot) -> Self {
        self._slot = Some(slot);
        self
    }

    /// Sheds the connection's hyper state once idle for [`super::idle::SHED_AFTER`]
    /// between requests: its pending read ends (as if the client had closed), and when
    /// hyper drops the stream, `home` gets the socket and the slot.
    pub fn with_shedding(
        mut self,
        home: fn(S, Option<super::connections::Slot>, &ConnActivity),
    ) -> Self {
        self.home = Some(home);
        self
    }
}

impl<S> Drop for TimedStream<S> {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken once, here, and never used again.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        match self.home {
            Some(home) if self.shed => home(inner, self._slot.take(), &self.activity),
            _ => drop(inner),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut *this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if !this.activity.stop_waiting() {
                    return Poll::Ready(Err(evicted()));
                }
                if buf.filled().len() > before {
                    this.activity.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if !this.activity.start_waiting(cx.waker()) {
                    return Poll::Ready(Err(evicted()));
                }
                let Some(deadline) = this.activity.deadline(&this.timeouts) else {
                    if let Ok(mut parked) = this.activity.parked.lock() {
                        if !parked.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                            *parked = Some(cx.waker().clone());
                        }
                    }
                    return Poll::Pending;
                };
                // An idle HTTP/1 keep-alive connection: shed its hyper state at the shed
                // time (see `super::idle`), before its deadline.
                let shed_at = match this.home {
                    Some(_) => this.activity.shed_at().filter(|at| *at < deadline),
                    None => None,
                };
                this.shed_timer = shed_at.is_some();
                let wake = shed_at.unwrap_or(deadline);
                if this.sleep.deadline() != wake {
                    this.sleep.as_mut().reset(wake);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) if this.shed_timer => {
                        // The end of input for hyper; the read stays pending for the
                        // connection cap (the parked socket may still be evicted).
                        this.shed = true;
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client too slow sending its request head, or idle too long",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            Poll::Ready(Err(e)) => {
                this.activity.stop_waiting();
                Poll::Ready(Err(e))
            }
        }
    }
}

/// The error of an evicted connection's reads and writes.
fn evicted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to make room for a new connection (http_max_connections)",
    )
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.activity.is_evicted() {
            return Poll::Ready(Err(evicted()));
        }
        let r = Pin::new(&mut *this.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.activity.is_evicted() {
            return Poll::Ready(Err(evicted()));
        }
        let r = Pin::new(&mut *this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shed {
            // hyper ends a shed connection as closed by its client: the socket stays open.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut *this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const T: Timeouts = Timeouts {
        header: Duration::from_millis(200),
        keepalive: Duration::from_millis(600),
    };

    async fn read_outcome(s: &mut TimedStream<tokio::io::DuplexStream>) -> io::ErrorKind {
        let mut buf = [0u8; 16];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return io::ErrorKind::UnexpectedEof,
                Ok(_) => continue,
                Err(e) => return e.kind(),
            }
        }
    }

    #[tokio::test]
    async fn silent_new_connection_gets_the_header_timeout() {
        let (a, _b) = tokio::io::duplex(64);
        let mut s = TimedStream::new(a, ConnActivity::new(), T);
        let t0 = Instant::now();
        assert_eq!(read_outcome(&mut s).await, io::ErrorKind::TimedOut);
        assert_near(t0.elapsed(), T.header);
    }

    #[test]
    fn a_connection_awaits_its_first_request_until_it_comes_or_the_connection_ends() {
        let awaiting = Arc::new(AtomicUsize::new(0));
        let served = ConnActivity::accepted(&awaiting);
        let other = ConnActivity::accepted(&awaiting);
        let closed = ConnActivity::accepted(&awaiting);
        assert_eq!(awaiting.load(Ordering::Acquire), 3);
        served.request_answered();
        served.request_answered();
        assert_eq!(awaiting.load(Ordering::Acquire), 2);
        drop(other.request_started());
        drop(other.request_started());
        assert_eq!(awaiting.load(Ordering::Acquire), 1);
        drop(closed);
        assert_eq!(awaiting.load(Ordering::Acquire), 0);
        // Served connections leave nothing behind when they end.
        drop((served, other));
        assert_eq!(awaiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn only_a_pending_read_is_evicted_and_its_reads_and_writes_then_fail() {
        let long = Timeouts {
            header: Duration::from_secs(60),
            keepalive: Duration::from_secs(60),
        };
        let (a, mut b) = tokio::io::duplex(64);
        let activity = ConnActivity::new();
        let mut s = TimedStream::new(a, Arc::clone(&activity), long);
        assert!(!activity.try_evict(), "no read pending yet");
        let reading = tokio::spawn(async move {
            let outcome = read_outcome(&mut s).await;
            (outcome, s.write_all(b"x").await.map_err(|e| e.kind()))
        });
        assert!(
            wait_for(|| activity.waiting_since().is_some()).await,
            "the pending read waits for its client"
        );
        assert!(activity.try_evict());
        assert!(!activity.try_evict(), "once");
        let (outcome, write) = reading.await.unwrap();
        assert_eq!(outcome, io::ErrorKind::ConnectionAborted);
        assert_eq!(write, Err(io::ErrorKind::ConnectionAborted));
        b.write_all(b"late").await.unwrap_or(());

        // Bytes that arrived first win: the connection goes on.
        let (a, mut b) = tokio::io::duplex(64);
        let activity = ConnActivity::new();
        let mut s = TimedStream::new(a, Arc::clone(&activity), long);
        let mut buf = [0u8; 4];
        let read = tokio::spawn(async move { s.read(&mut buf).await.map_err(|e| e.kind()) });
        assert!(wait_for(|| activity.waiting_since().is_some()).await);
        b.write_all(b"GET ").await.unwrap();
        assert_eq!(read.await.unwrap(), Ok(4));
        assert!(activity.waiting_since().is_none());
        assert!(!activity.try_evict(), "no read pending after the bytes");
        // A websocket is never evicted.
        activity.upgraded();
        assert!(!activity.try_evict());
    }

    /// Polls `f` for up to 5 s.
    async fn wait_for(f: impl Fn() -> bool) -> bool {
        for _ in 0..500 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Real time on a busy machine: not early, and not much late.
    #[track_caller]
    fn assert_near(elapsed: Duration, expected: Duration) {
        assert!(
            elapsed >= expected && elapsed < expected + Duration::from_millis(400),
            "{elapsed:?} vs {expected:?}"
        );
    }

    #[tokio::test]
    async fn a_reader_parked_during_a_request_is_timed_after_it() {
        let (a, _b) = tokio::io::duplex(64);
        let activity = ConnActivity::new();
        let mut s = TimedStream::new(a, Arc::clone(&activity), T);
        let guard = activity.request_started();
        let ending = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(guard);
        });
        let t0 = Instant::now();
        assert_eq!(read_outcome(&mut s).await, io::ErrorKind::TimedOut);
        assert_near(t0.elapsed(), T.keepalive + Duration::from_millis(100));
        ending.await.unwrap();
    }

    #[tokio::test]
    async fn idle_between_requests_gets_the_keepalive_timeout() {
        let (a, _b) = tokio::io::duplex(64);
        let activity = ConnActivity::new();
        let mut s = TimedStream::new(a, Arc::clone(&activity), T);
        drop(activity.request_started());
        let t0 = Instant::now();
        assert_eq!(read_outcome(&mut s).await, io::ErrorKind::TimedOut);
        assert_near(t0.elapsed(), T.keepalive);
    }

    #[tokio::test]
    async fn a_started_head_gets_the_header_timeout_and_requests_none() {
        let (a, mut b) = tokio::io::duplex(64);
        let activity = ConnActivity::new();
        let mut s = TimedStream::new(a, Arc::clone(&activity), T);
        drop(activity.request_started());
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.write_all(b"GET").await.unwrap();
        let t0 = Instant::now();
        assert_eq!(read_outcome(&mut s).await, io::ErrorKind::TimedOut);
        assert_near(t0.elapsed(), T.header);

        let (a, _b) = tokio::io::duplex(64);
        let activity = ConnActivity::new();
        let mut s = TimedStream::new(a, Arc::clone(&activity), T);
        let guard = activity.request_started();
        let mut buf = [0u8; 4];
        let r = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await;
        assert!(r.is_err(), "no deadline while a request is served");
        drop(guard);
        activity.upgraded();
        let r = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await;
        assert!(r.is_err(), "no deadline once upgraded");
    }
}
