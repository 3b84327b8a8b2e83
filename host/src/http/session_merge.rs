//! Saving a session without losing what another request or socket callback saved
//! meanwhile: a save is a three-way merge, not an overwrite. The request (or callback)
//! loaded the session (`before`) and changed it (`after`); at save, the stored session
//! (`current`, maybe saved by another since) is read again, the keys this call changed
//! (added, changed or removed, at the top level) are applied to it, and the result is
//! written, all under a lock of the session id ([`SaveLocks`]), so two saves of one session
//! in this process never interleave. Two calls changing the same key: the last save wins
//! for that key (as Odoo's store, whole-session); a key only one of them changed is kept.
//! A save that rotates the id (login, logout) writes its session whole under the new id.
//!
//! A save may run on a runtime worker (a request's answer) while the holder of its lock
//! waits for the session store (PostgreSQL: a query whose connection is driven by the
//! runtime's workers). Waiting for a held lock on a worker would take that worker's core
//! from the runtime: with every core waiting so, nothing drives the holder's query and the
//! host hangs (seen with 32 requests on one logged-in session, sessions in PostgreSQL,
//! bench item 14). So a contended lock is waited for off the event loop
//! ([`tokio::task::block_in_place`]), as the stores wait for their own I/O.

use serde_json::{Map, Value};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Locks striped by session id: a save holds its id's for its read-merge-write.
#[derive(Debug)]
pub struct SaveLocks(Vec<Mutex<()>>);

impl Default for SaveLocks {
    fn default() -> SaveLocks {
        SaveLocks((0..64).map(|_| Mutex::new(())).collect())
    }
}

impl SaveLocks {
    /// The lock of session `sid` (shared with the ids of the same stripe).
    pub fn lock(&self, sid: &str) -> MutexGuard<'_, ()> {
        let hash = sid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let stripe = usize::try_from(hash % self.0.len() as u64).unwrap_or(0);
        let lock = &self.0[stripe];
        match lock.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                off_event_loop(|| lock.lock().unwrap_or_else(|e| e.into_inner()))
            }
        }
    }
}

/// Runs `wait` with the current runtime worker's core handed to another thread
/// (`block_in_place`) when called on a multi-threaded runtime's worker; as is elsewhere (a
/// blocking-pool thread, a plain thread: `block_in_place` does nothing there).
fn off_event_loop<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}

/// `current` with the top-level keys that differ between `before` and `after` set as in
/// `after` (removed when `after` has none).
pub fn merge(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    current: Map<String, Value>,
) -> Map<String, Value> {
    let mut merged = current;
    for key in before.keys().chain(after.keys()) {
        let (was, now) = (before.get(key), after.get(key));
        if was == now {
            continue;
        }
        match now {
            Some(v) => {
                merged.insert(key.clone(), v.clone());
            }
            None => {
                merged.remove(key);
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_save_keeps_what_another_saved_meanwhile() {
        let before = map(json!({"a": 1, "b": 1, "gone": true}));
        let after = map(json!({"a": 2, "b": 1, "new": "x"}));
        // Another save meanwhile changed `b` and added `c`.
        let current = map(json!({"a": 1, "b": 5, "c": 3, "gone": true}));
        assert_eq!(
            Value::Object(merge(&before, &after, current)),
            json!({"a": 2, "b": 5, "c": 3, "new": "x"})
        );
    }
}
