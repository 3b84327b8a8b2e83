//! What is running right now, for the lifecycle: the requests in flight (method, path,
//! database, start) that SIGQUIT dumps, and the handlers still stuck in addon code after
//! their request was answered 504, which past a threshold make the server re-exec itself.

use slab::Slab;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
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

static STUCK: AtomicUsize = AtomicUsize::new(0);

/// The requests in flight, in a slab: entering and leaving cost no hashing (this runs for
/// every request); a key is reused once its request left.
static TABLE: Mutex<Slab<RequestInfo>> = Mutex::new(Slab::new());

fn table() -> std::sync::MutexGuard<'static, Slab<RequestInfo>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers a request, received at `started`, until the guard is dropped.
pub fn enter(method: &hyper::Method, path: &hyper::Uri, started: Instant) -> Guard {
    let info = RequestInfo {
        method: method.clone(),
        path: path.clone(),
        db: None,
        started,
    };
    Guard(table().insert(info))
}

/// Removes its request from the table when dropped.
#[derive(Debug)]
pub struct Guard(usize);

impl Guard {
    /// Records the database the request was bound to.
    pub fn set_db(&self, db: &str) {
        if let Some(info) = table().get_mut(self.0) {
            info.db = Some(db.to_owned());
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let removed = table().try_remove(self.0);
        // Dropped outside the lock: the Uri's bytes are released without holding it.
        drop(removed);
    }
}

/// The requests in flight, oldest first, with their elapsed time.
pub fn snapshot() -> Vec<(RequestInfo, Duration)> {
    let mut all: Vec<(RequestInfo, Duration)> = table()
        .iter()
        .map(|(_, i)| (i.clone(), i.started.elapsed()))
        .collect();
    all.sort_by_key(|(_, elapsed)| std::cmp::Reverse(*elapsed));
    all
}

/// A handler outlived its request's time limit and is still running.
pub fn stuck_started() {
    STUCK.fetch_add(1, Ordering::AcqRel);
}

/// A stuck handler finally returned.
pub fn stuck_finished() {
    STUCK.fetch_sub(1, Ordering::AcqRel);
}

/// Handlers still running past their time limit.
pub fn stuck() -> usize {
    STUCK.load(Ordering::Acquire)
}
