//! High-volume records (the access log, a line per request): a logger whose threshold is
//! kept from one line to the next, and lines that may wait in the output's buffer.

use super::level::severity_of;
use super::logger::LOGGER;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;
use tracing::Level;

/// Writes a high-volume record (the access log, a line per request) whose message `fill`
/// appends to the line: below WARNING it may wait up to [`super::output::FLUSH_DELAY`] in
/// the buffer and be written with the lines logged meanwhile, in one system call. The
/// caller gives the line's database (`None`: `?`) and time (it has read the clock already).
pub fn log_batched(
    level: Level,
    target: &BatchedTarget,
    db: Option<&str>,
    at: SystemTime,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    let sev = severity_of(&level);
    if sev >= target.threshold() {
        LOGGER.write(sev, db, target.name, true, at, fill);
    }
}

/// The logger of a high-volume record ([`log_batched`]), with its threshold kept from one
/// line to the next until the filter changes: the filter is not searched per request.
///
/// ```
/// static ACCESS: inphms_host::netsvc::BatchedTarget =
///     inphms_host::netsvc::BatchedTarget::new("werkzeug");
/// assert_eq!(ACCESS.name(), "werkzeug");
/// ```
pub struct BatchedTarget {
    name: &'static str,
    /// `generation << 8 | threshold`, 0 before the first line.
    cached: AtomicU32,
}

impl BatchedTarget {
    /// The logger `name`.
    pub const fn new(name: &'static str) -> BatchedTarget {
        BatchedTarget {
            name,
            cached: AtomicU32::new(0),
        }
    }

    /// The logger's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The severity from which a line is written, as the current filter says.
    fn threshold(&self) -> u8 {
        // The generation is read before the filter (and bumped after it is replaced): a
        // threshold is never kept under a generation newer than its filter.
        let generation = LOGGER.generation.load(Ordering::Acquire);
        let cached = self.cached.load(Ordering::Relaxed);
        if cached >> 8 == generation {
            return cached as u8;
        }
        let threshold = LOGGER.filter.load().threshold(self.name);
        self.cached
            .store(generation << 8 | u32::from(threshold), Ordering::Relaxed);
        threshold
    }
}
