//! What is running right now, for the lifecycle: the requests in flight (method, path,
//! database, start) that SIGQUIT dumps, and the handlers still stuck in addon code after
//! their request was answered 504 (with their request's method, path and database, for the
//! same dump), which past a threshold make the server re-exec itself; and, for a worker
//! process, the count of requests it received, which at `limit_request` recycles it, and
//! a [`Mirror`] of its requests in flight that its master reads if it dies, and the CPU
//! time of the handlers running (`limit_time_cpu`, [`InFlight::watch_cpu`]).

use slab::Slab;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One request in flight.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The method.
    pub method: hyper::Method,
    /// The request target (path and query); a clone of hyper's, which shares its bytes.
    pub path: hyper::Uri,
    /// The database, when one is selected.
    pub db: Option<String>,
    /// When it started.
    pub started: Instant,
}

/// What one host runs right now: its requests in flight and its stuck handlers. Owned by
/// the composition root (through [`Services`](super::Services)).
#[derive(Debug, Default)]
pub struct InFlight {
    /// Handlers still running past their time limit.
    stuck: AtomicUsize,
    /// The requests of the stuck handlers: taken only when a handler passes its time limit.
    stuck_table: Mutex<Slab<RequestInfo>>,
    /// The requests in flight, in a slab: entering and leaving cost no hashing (this runs
    /// for every request); a key is reused once its request left.
    table: Mutex<Slab<RequestInfo>>,
    /// Requests received (entered) since a request limit was set.
    entered: AtomicU64,
    /// The count of requests at which [`InFlight::request_limit_reached`] is notified
    /// (0: never).
    request_limit: AtomicU64,
    /// Notified once when `entered` reaches `request_limit`.
    limit_reached: tokio::sync::Notify,
    /// Where the requests in flight are mirrored, if anywhere.
    mirror: OnceLock<Arc<dyn Mirror>>,
    /// Whether the CPU time of handlers is measured.
    cpu_watch: AtomicBool,
    /// The handlers running: their thread's CPU clock and its reading when they began.
    cpu_table: Mutex<Slab<(libc::clockid_t, Duration)>>,
}

/// The CPU time `clock` has counted (a thread's CPU clock).
fn cpu_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: reading a clock into a local timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// A handler whose CPU time is measured ([`InFlight::handler_cpu`]), until dropped.
#[derive(Debug)]
pub struct CpuGuard(Arc<InFlight>, usize);

impl Drop for CpuGuard {
    fn drop(&mut self) {
        let mut table = self.0.cpu_table.lock().unwrap_or_else(|e| e.into_inner());
        table.try_remove(self.1);
    }
}

/// A copy of the requests in flight outside the process (a worker's shared memory, which
/// its master reads when the worker dies, to log what it was serving). Called on every
/// request: no allocation, no system call, no lock.
pub trait Mirror: Send + Sync + std::fmt::Debug {
    /// The request `key` (unique while in flight) began: `method` and `target`.
    fn enter(&self, key: usize, method: &str, target: &str);
    /// The request `key` ended.
    fn leave(&self, key: usize);
}

impl InFlight {
    fn table(&self) -> std::sync::MutexGuard<'_, Slab<RequestInfo>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stuck_table(&self) -> std::sync::MutexGuard<'_, Slab<RequestInfo>> {
        self.stuck_table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a request, received at `started`, until the guard is dropped.
    pub fn enter(
        self: &Arc<Self>,
        method: &hyper::Method,
        path: &hyper::Uri,
        started: Instant,
    ) -> Guard {
        let info = RequestInfo {
            method: method.clone(),
            path: path.clone(),
            db: None,
            started,
        };
        let key = self.table().insert(info);
        if let Some(m) = self.mirror.get() {
            m.enter(
                key,
                method.as_str(),
                path.path_and_query().map_or("/", |p| p.as_str()),
            );
        }
        // Counted only under a limit (a worker): the threaded server shares no counter
        // between its threads per request.
        let limit = self.request_limit.load(Ordering::Relaxed);
        if limit > 0 && self.entered.fetch_add(1, Ordering::Relaxed) + 1 == limit {
            self.limit_reached.notify_one();
        }
        Guard(Arc::clone(self), key)
    }

    /// The number of requests in flight now.
    pub fn count(&self) -> usize {
        self.table().len()
    }

    /// Measures the CPU time of each handler from now on (a worker's `limit_time_cpu`): two
    /// clock reads per handler.
    pub fn watch_cpu(&self) {
        self.cpu_watch.store(true, Ordering::Relaxed);
    }

    /// Starts measuring the CPU time of the handler about to run on this thread, until
    /// the guard is dropped; `None` unless [`InFlight::watch_cpu`] was called.
    pub fn handler_cpu(self: &Arc<Self>) -> Option<CpuGuard> {
        if !self.cpu_watch.load(Ordering::Relaxed) {
            return None;
        }
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the CPU clock of the calling thread, into a local.
        if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) } != 0 {
            return None;
        }
        let start = cpu_time(clock)?;
        let key = self
            .cpu_table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((clock, start));
        Some(CpuGuard(Arc::clone(self), key))
    }

    /// The most CPU time used so far by one of the handlers running now (`None` if the
    /// watch is off or none runs).
    pub fn max_handler_cpu(&self) -> Option<Duration> {
        let table = self.cpu_table.lock().unwrap_or_else(|e| e.into_inner());
        table
            .iter()
            .filter_map(|(_, (clock, start))| Some(cpu_time(*clock)?.saturating_sub(*start)))
            .max()
    }

    /// Mirrors the requests in flight from now on (once; a second mirror is ignored).
    pub fn set_mirror(&self, mirror: Arc<dyn Mirror>) {
        let _ = self.mirror.set(mirror);
    }

    /// Asks for a notification ([`InFlight::request_limit_reached`]) when the `limit`-th
    /// request arrives (a worker's `limit_request`; 0: none).
    pub fn set_request_limit(&self, limit: u64) {
        self.request_limit.store(limit, Ordering::Relaxed);
        if limit > 0 && self.entered.load(Ordering::Relaxed) >= limit {
            self.limit_reached.notify_one();
        }
    }

    /// Completes once the request limit set by [`InFlight::set_request_limit`] is reached.
    pub async fn request_limit_reached(&self) {
        self.limit_reached.notified().await;
    }

    /// The requests received since a request limit was set.
    pub fn entered(&self) -> u64 {
        self.entered.load(Ordering::Relaxed)
    }

    /// The requests in flight, oldest first, with their elapsed time.
    pub fn snapshot(&self) -> Vec<(RequestInfo, Duration)> {
        sorted(&self.table())
    }

    /// The requests of the stuck handlers, oldest first, with their time since the request
    /// arrived.
    pub fn stuck_snapshot(&self) -> Vec<(RequestInfo, Duration)> {
        sorted(&self.stuck_table())
    }

    /// Handlers still running past their time limit.
    pub fn stuck(&self) -> usize {
        self.stuck.load(Ordering::Acquire)
    }
}

/// Removes its request from the table when dropped.
#[derive(Debug)]
pub struct Guard(Arc<InFlight>, usize);

impl Guard {
    /// Records the database the request was bound to.
    pub fn set_db(&self, db: &str) {
        if let Some(info) = self.0.table().get_mut(self.1) {
            info.db = Some(db.to_owned());
        }
    }

    /// The request's handler outlived its time limit and is still running (its request
    /// is answered 504): it counts as stuck, listed with this request's method, path,
    /// database and start, until the returned guard is dropped (when the handler returns).
    pub fn stuck(&self) -> Stuck {
        let info = self.0.table().get(self.1).cloned();
        self.0.stuck.fetch_add(1, Ordering::AcqRel);
        Stuck(
            Arc::clone(&self.0),
            info.map(|info| self.0.stuck_table().insert(info)),
        )
    }
}

/// A stuck handler (see [`Guard::stuck`]), until dropped.
#[derive(Debug)]
pub struct Stuck(Arc<InFlight>, Option<usize>);

impl Drop for Stuck {
    fn drop(&mut self) {
        let removed = self.1.and_then(|key| self.0.stuck_table().try_remove(key));
        drop(removed);
        self.0.stuck.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(m) = self.0.mirror.get() {
            m.leave(self.1);
        }
        let removed = self.0.table().try_remove(self.1);
        // Dropped outside the lock: the Uri's bytes are released without holding it.
        drop(removed);
    }
}

fn sorted(table: &Slab<RequestInfo>) -> Vec<(RequestInfo, Duration)> {
    let mut all: Vec<(RequestInfo, Duration)> = table
        .iter()
        .map(|(_, i)| (i.clone(), i.started.elapsed()))
        .collect();
    all.sort_by_key(|(_, elapsed)| std::cmp::Reverse(*elapsed));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_limit_notifies_at_its_count_and_the_mirror_sees_each_request() {
        #[derive(Debug, Default)]
        struct Seen(Mutex<Vec<String>>);
        impl Mirror for Seen {
            fn enter(&self, key: usize, method: &str, target: &str) {
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("+{key} {method} {target}"));
            }
            fn leave(&self, key: usize) {
                self.0.lock().unwrap().push(format!("-{key}"));
            }
        }
        let uri: hyper::Uri = "/a?b=1".parse().unwrap();
        let inflight = Arc::new(InFlight::default());
        let seen = Arc::new(Seen::default());
        inflight.set_mirror(seen.clone());
        inflight.set_request_limit(3);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let reached = |inflight: &InFlight| {
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), inflight.request_limit_reached())
                    .await
                    .is_ok()
            })
        };
        drop(inflight.enter(&hyper::Method::GET, &uri, Instant::now()));
        drop(inflight.enter(&hyper::Method::GET, &uri, Instant::now()));
        assert!(!reached(&inflight), "2 of 3");
        drop(inflight.enter(&hyper::Method::POST, &uri, Instant::now()));
        assert!(reached(&inflight), "3 of 3");
        assert_eq!(inflight.entered(), 3);
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                "+0 GET /a?b=1",
                "-0",
                "+0 GET /a?b=1",
                "-0",
                "+0 POST /a?b=1",
                "-0"
            ]
        );
    }

    #[test]
    fn a_stuck_handler_keeps_its_request_until_it_returns() {
        let uri: hyper::Uri = "/slow/path?x=1".parse().unwrap();
        let started = Instant::now();
        let inflight = Arc::new(InFlight::default());
        let guard = inflight.enter(&hyper::Method::POST, &uri, started);
        guard.set_db("db1");
        let stuck = guard.stuck();
        // The request is answered (its guard goes); the handler still runs.
        drop(guard);
        let listed = inflight.stuck_snapshot();
        let mine = listed
            .iter()
            .find(|(i, _)| i.path == uri && i.started == started)
            .expect("the stuck handler is listed");
        assert_eq!(mine.0.method, hyper::Method::POST);
        assert_eq!(mine.0.db.as_deref(), Some("db1"));
        assert_eq!(inflight.stuck(), 1);
        drop(stuck);
        assert!(!inflight
            .stuck_snapshot()
            .iter()
            .any(|(i, _)| i.path == uri && i.started == started));
    }
}
