//! The cap on open connections (`http_max_connections`), so that `accept` never fails for
//! lack of file descriptors, and the bursts of its log.
//!
//! Every accepted connection holds a [`Slot`] for as long as its socket is open. Past the
//! cap, the listener closes the connection that has waited longest for its client's bytes
//! (an idle keep-alive connection, a slow request head or a stalled body; never one whose
//! handler runs, whose response is being written, nor a websocket) to make room, as nginx
//! reuses idle connections: a new client is answered at once instead of waiting in the
//! backlog behind slow ones (see [`super::timeouts::ConnActivity::try_evict`]). The
//! connection accepted past the cap is served while its victim closes on its own task, and
//! the listener goes on accepting meanwhile, so the descriptors in use may exceed the cap
//! by the closes under way (at most 32, from the files' headroom) and one. When every
//! connection is busy, the listener stops accepting until one closes.
//!
//! The default cap comes from the soft limit of open files (RLIMIT_NOFILE), see
//! [`default_cap`].

use super::timeouts::ConnActivity;
use slab::Slab;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Descriptors kept apart from connections and PostgreSQL: the standard streams, the log
/// file, the listener, the runtime's epoll and wake-up descriptors, the signal pipe, addon
/// libraries while they are opened, session files being written, the sweeps.
pub const RESERVED_FDS: u64 = 64;

/// The smallest cap computed.
pub const MIN_CAP: usize = 16;

/// The default cap for a soft RLIMIT_NOFILE of `nofile`: `(nofile − RESERVED_FDS −
/// db_maxconn) × 3/4` (the rest, a quarter, for the files requests open: spooled bodies,
/// streamed static files), at least [`MIN_CAP`].
pub fn default_cap(nofile: u64, db_maxconn: u64) -> usize {
    let spare = nofile.saturating_sub(RESERVED_FDS + db_maxconn);
    usize::try_from(spare / 4 * 3 + spare % 4 * 3 / 4)
        .unwrap_or(usize::MAX)
        .max(MIN_CAP)
}

/// The soft limit of open files of this process (`None` when unlimited or unknown).
pub fn nofile_soft_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => Some(soft),
        _ => None,
    }
}

/// The cap: `configured` when not 0, else [`default_cap`] of the soft RLIMIT_NOFILE
/// (none when that is unlimited).
pub fn cap(configured: u64, db_maxconn: u64) -> Option<usize> {
    if configured > 0 {
        return Some(usize::try_from(configured).unwrap_or(usize::MAX));
    }
    nofile_soft_limit().map(|n| default_cap(n, db_maxconn))
}

/// The open connections of a listener.
#[derive(Debug)]
pub struct Connections {
    cap: usize,
    open: AtomicUsize,
    /// Evicted connections not closed yet.
    evicting: AtomicUsize,
    slots: Mutex<Slab<Arc<ConnActivity>>>,
    closed: Notify,
}

impl Connections {
    /// No connection yet; at most `cap` open (`usize::MAX`: no cap).
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap,
            open: AtomicUsize::new(0),
            evicting: AtomicUsize::new(0),
            slots: Mutex::new(Slab::new()),
            closed: Notify::new(),
        })
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Whether more connections are open than the cap and the evicted ones still closing
    /// allow: one must be evicted (or close) before the next is accepted.
    pub fn over_cap(&self) -> bool {
        let open = self.open.load(Ordering::Acquire);
        open > self
            .cap
            .saturating_add(self.evicting.load(Ordering::Acquire))
    }

    /// Evicted connections not closed yet.
    pub fn evicting(&self) -> usize {
        self.evicting.load(Ordering::Acquire)
    }

    /// Counts a connection accepted now until the slot is dropped (with its socket).
    pub fn register(self: &Arc<Self>, activity: &Arc<ConnActivity>) -> Slot {
        self.open.fetch_add(1, Ordering::AcqRel);
        let key = match self.slots.lock() {
            Ok(mut slots) => Some(slots.insert(Arc::clone(activity))),
            // A panic while holding the lock (none is possible): counted, never evicted.
            Err(_) => None,
        };
        Slot {
            connections: Arc::clone(self),
            activity: Arc::clone(activity),
            key,
        }
    }

    /// Evicts the connection waiting longest for its client, but `except`; whether one was.
    pub fn evict_oldest(&self, except: Option<&Arc<ConnActivity>>) -> bool {
        let Ok(slots) = self.slots.lock() else {
            return false;
        };
        let waiting = |a: &&Arc<ConnActivity>| {
            let candidate = !except.is_some_and(|e| Arc::ptr_eq(a, e));
            candidate.then(|| a.waiting_since()).flatten()
        };
        // The oldest first; should it get its bytes (or be evicted) meanwhile, the others
        // oldest first.
        let Some(oldest) = slots
            .iter()
            .map(|(_, a)| a)
            .min_by_key(|a| waiting(a).unwrap_or(u64::MAX))
        else {
            return false;
        };
        if waiting(&oldest).is_some() && self.try_evict(oldest) {
            return true;
        }
        let mut others: Vec<(u64, &Arc<ConnActivity>)> = slots
            .iter()
            .filter_map(|(_, a)| waiting(&a).map(|t| (t, a)))
            .collect();
        others.sort_unstable_by_key(|(t, _)| *t);
        others.into_iter().any(|(_, a)| self.try_evict(a))
    }

    /// Evicts `activity` if it still waits, counted in `evicting` until its slot is freed.
    fn try_evict(&self, activity: &ConnActivity) -> bool {
        // Counted before the eviction can close it.
        self.evicting.fetch_add(1, Ordering::AcqRel);
        if activity.try_evict() {
            return true;
        }
        self.evicting.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// Wakes every parked connection (at the drain, see [`super::idle::park`]).
    pub fn wake_parked(&self) {
        if let Ok(slots) = self.slots.lock() {
            for (_, activity) in slots.iter() {
                activity.wake_parked();
            }
        }
    }

    /// Waits until a connection closes (or returns at once if one closed since the last
    /// call).
    pub async fn closed(&self) {
        self.closed.notified().await;
    }
}

/// An open connection, counted until dropped (by the stream that owns its socket).
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
    activity: Arc<ConnActivity>,
    key: Option<usize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            if let Ok(mut slots) = self.connections.slots.lock() {
                slots.try_remove(key);
            }
        }
        if self.activity.is_evicted() {
            self.connections.evicting.fetch_sub(1, Ordering::AcqRel);
        }
        self.connections.open.fetch_sub(1, Ordering::AcqRel);
        self.connections.closed.notify_one();
    }
}

/// The client connections a worker of workers mode holds (`worker_connections`), from
/// its `accept` until it closes or is upgraded (a websocket, event-driven and cheap, is not
/// counted once upgraded). At the limit the accept loop stops polling the listener the
/// workers share, so that the kernel hands the next connection to another worker (never
/// accept-then-refuse).
#[derive(Debug)]
pub struct Held {
    limit: usize,
    held: AtomicUsize,
    released: Notify,
}

impl Held {
    /// None held yet; at most `limit` (at least 1).
    pub fn new(limit: usize) -> Arc<Held> {
        Arc::new(Held {
            limit: limit.max(1),
            held: AtomicUsize::new(0),
            released: Notify::new(),
        })
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether the limit is reached: accept nothing until one is released.
    pub fn full(&self) -> bool {
        self.held.load(Ordering::Acquire) >= self.limit
    }

    /// Counts a connection accepted now until the guard is dropped.
    pub fn hold(self: &Arc<Self>) -> HeldConnection {
        self.held.fetch_add(1, Ordering::AcqRel);
        HeldConnection(Arc::clone(self))
    }

    /// Waits until a connection is released (or returns at once if one was since the
    /// last call).
    pub async fn released(&self) {
        self.released.notified().await;
    }
}

/// A connection counted by [`Held`] until dropped (when its connection task ends: the
/// connection closed, or was handed over to an upgrade).
#[derive(Debug)]
pub struct HeldConnection(Arc<Held>);

impl Drop for HeldConnection {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
        self.0.released.notify_one();
    }
}

/// A log that says the first event of a burst in full and then, at most once per `window`,
/// how many more there were, never a line per event.
#[derive(Debug)]
pub struct BurstLog {
    window: Duration,
    /// When the burst's last line was written; `None` outside a burst.
    logged: Option<Instant>,
    /// Events since then.
    count: u64,
}

/// What [`BurstLog::event`] asks the caller to log.
#[derive(Debug, PartialEq, Eq)]
pub enum Burst {
    /// The first event of a burst: log it in full.
    First,
    /// Counted, for the next summary.
    Counted,
}

impl BurstLog {
    /// No burst yet.
    pub fn new(window: Duration) -> BurstLog {
        BurstLog {
            window,
            logged: None,
            count: 0,
        }
    }

    /// One event at `now`.
    pub fn event(&mut self, now: Instant) -> Burst {
        if self.logged.is_none() {
            self.logged = Some(now);
            return Burst::First;
        }
        self.count += 1;
        Burst::Counted
    }

    /// When [`BurstLog::summary`] is next due, if in a burst.
    pub fn due(&self) -> Option<Instant> {
        self.logged.map(|t| t + self.window)
    }

    /// At the end of a window: the events counted in it (`Some`, to log, if any); a
    /// window without any ends the burst.
    pub fn summary(&mut self, now: Instant) -> Option<u64> {
        let due = self.due()?;
        if now < due {
            return None;
        }
        let count = std::mem::take(&mut self.count);
        if count == 0 {
            self.logged = None;
            None
        } else {
            self.logged = Some(now);
            Some(count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_room_for_files_and_postgresql() {
        assert_eq!(default_cap(1024, 64), 672);
        assert_eq!(default_cap(512, 64), 288);
        assert_eq!(default_cap(513, 64), 288);
        assert_eq!(default_cap(515, 64), 290);
        assert_eq!(default_cap(100, 64), MIN_CAP);
        assert_eq!(default_cap(0, 0), MIN_CAP);
    }

    #[test]
    fn a_burst_is_one_line_then_a_count_per_window() {
        let w = Duration::from_secs(10);
        let mut log = BurstLog::new(w);
        let t0 = Instant::now();
        assert_eq!(log.due(), None);
        assert_eq!(log.event(t0), Burst::First);
        for _ in 0..500 {
            assert_eq!(log.event(t0), Burst::Counted);
        }
        assert_eq!(log.summary(t0 + w / 2), None, "not yet due");
        assert_eq!(log.summary(t0 + w), Some(500));
        assert_eq!(log.event(t0 + w), Burst::Counted, "still in the burst");
        assert_eq!(log.summary(t0 + w * 2), Some(1));
        assert_eq!(log.summary(t0 + w * 3), None, "a quiet window ends it");
        assert_eq!(log.due(), None);
        assert_eq!(log.event(t0 + w * 4), Burst::First);
    }

    #[tokio::test]
    async fn held_connections_fill_the_limit_and_a_release_wakes_the_accept_loop() {
        let held = Held::new(2);
        let a = held.hold();
        assert!(!held.full());
        let b = held.hold();
        assert!(held.full());
        let waiter = {
            let held = Arc::clone(&held);
            tokio::spawn(async move {
                held.released().await;
                held.full()
            })
        };
        tokio::task::yield_now().await;
        drop(a);
        let full = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the release")
            .unwrap();
        assert!(!full);
        drop(b);
        assert_eq!(held.held.load(Ordering::Acquire), 0);
        assert_eq!(Held::new(0).limit(), 1, "at least one");
    }

    #[tokio::test]
    async fn the_oldest_waiting_connection_is_evicted_and_its_slot_freed() {
        use super::super::timeouts::{TimedStream, Timeouts};
        use tokio::io::AsyncReadExt as _;
        let long = Timeouts {
            header: Duration::from_secs(60),
            keepalive: Duration::from_secs(60),
        };
        let conns = Connections::new(1);
        // A connection whose read waits for its client, from `earlier` ago.
        let waiting = |conns: &Arc<Connections>| {
            let (a, b) = tokio::io::duplex(64);
            let activity = ConnActivity::new();
            let mut s = TimedStream::new(a, Arc::clone(&activity), long)
                .with_slot(conns.register(&activity));
            let task = tokio::spawn(async move {
                let mut buf = [0u8; 8];
                let r = s.read(&mut buf).await.map_err(|e| e.kind());
                drop(s);
                r
            });
            (activity, task, b)
        };
        let (old, old_task, _old_peer) = waiting(&conns);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (new, new_task, _new_peer) = waiting(&conns);
        for _ in 0..500 {
            if old.waiting_since().is_some() && new.waiting_since().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(old.waiting_since() < new.waiting_since());
        assert_eq!(conns.open(), 2);
        assert!(conns.over_cap());
        assert!(conns.evict_oldest(Some(&old)));
        assert!(
            !old.is_evicted() && new.is_evicted(),
            "`except` kept the oldest"
        );
        assert!(conns.evict_oldest(None));
        assert!(old.is_evicted());
        assert_eq!(conns.evicting(), 2);
        assert_eq!(
            old_task.await.unwrap(),
            Err(std::io::ErrorKind::ConnectionAborted)
        );
        assert_eq!(
            new_task.await.unwrap(),
            Err(std::io::ErrorKind::ConnectionAborted)
        );
        // The slots went with the streams.
        assert_eq!((conns.open(), conns.evicting()), (0, 0));
        assert!(!conns.evict_oldest(None), "nothing left");
        conns.closed().await;
    }
}
