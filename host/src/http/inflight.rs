//! What is running right now, for the lifecycle: the requests in flight (method, path,
//! database, start) that SIGQUIT dumps, and the handlers still stuck in addon code after
//! their request was answered 504, which past a threshold make the server re-exec itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

static NEXT: AtomicU64 = AtomicU64::new(1);
static STUCK: AtomicUsize = AtomicUsize::new(0);

fn table() -> &'static Mutex<HashMap<u64, RequestInfo>> {
    static TABLE: std::sync::OnceLock<Mutex<HashMap<u64, RequestInfo>>> =
        std::sync::OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers a request until the guard is dropped.
pub fn enter(method: &hyper::Method, path: &hyper::Uri) -> Guard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let info = RequestInfo {
        method: method.clone(),
        path: path.clone(),
        db: None,
        started: Instant::now(),
    };
    if let Ok(mut t) = table().lock() {
        t.insert(id, info);
    }
    Guard(id)
}

/// Removes its request from the table when dropped.
#[derive(Debug)]
pub struct Guard(u64);

impl Guard {
    /// Records the database the request was bound to.
    pub fn set_db(&self, db: &str) {
        if let Ok(mut t) = table().lock() {
            if let Some(info) = t.get_mut(&self.0) {
                info.db = Some(db.to_owned());
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut t) = table().lock() {
            t.remove(&self.0);
        }
    }
}

/// The requests in flight, oldest first, with their elapsed time.
pub fn snapshot() -> Vec<(RequestInfo, Duration)> {
    let mut all: Vec<(RequestInfo, Duration)> = table()
        .lock()
        .map(|t| {
            t.values()
                .map(|i| (i.clone(), i.started.elapsed()))
                .collect()
        })
        .unwrap_or_default();
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
