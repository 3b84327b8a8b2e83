//! Login throttling (Odoo's `Users._assert_can_auth` and `_on_login_cooldown`): per database
//! and client address, after `base.login_cooldown_after` failures (5) each further attempt
//! within `base.login_cooldown_duration` seconds (60) of the last failure is refused at
//! once, without checking the password (so without computing a hash), with Odoo's message.
//!
//! The bookkeeping is in memory, in the image that checks passwords (as Odoo's is per
//! registry and process), bounded to [`MAX_ENTRIES`] addresses.

use crate::users::{access_denied, get_param};
use inphms_sdk::{Cursor, Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const TARGET: &str = "inphms.addons.base.models.res_users";

/// Odoo's message for an attempt refused during the cooldown.
pub const COOLDOWN_MESSAGE: &str =
    "Too many login failures, please wait a bit before trying again.";

/// The most (database, address) pairs remembered; past it, the oldest failures are forgotten.
pub const MAX_ENTRIES: usize = 100_000;

type Failures = HashMap<(String, String), (u32, Instant)>;

fn failures() -> &'static Mutex<Failures> {
    // global: the addon's own bookkeeping (not host state), one per loaded image of the
    // addon as Odoo's is per process; bounded to MAX_ENTRIES.
    static MAP: OnceLock<Mutex<Failures>> = OnceLock::new();
    MAP.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The cooldown settings of a database.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Failures before the cooldown (0: never).
    pub after: u32,
    /// How long after the last failure attempts are refused.
    pub duration: Duration,
}

impl Settings {
    /// `base.login_cooldown_after` (5) and `base.login_cooldown_duration` (60 s).
    pub fn read(cr: &mut Cursor) -> Result<Settings> {
        let int = |v: Option<String>, default: u64| {
            v.and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let after = int(get_param(cr, "base.login_cooldown_after")?, 5);
        let duration = int(get_param(cr, "base.login_cooldown_duration")?, 60);
        Ok(Settings {
            after: u32::try_from(after).unwrap_or(u32::MAX),
            duration: Duration::from_secs(duration),
        })
    }
}

/// Runs `check` (a password check) unless `addr` is on cooldown for `db`: then refuses with
/// Odoo's message without calling it. A failure (`AccessDenied`) is counted, a success
/// forgets the address's failures; other errors change nothing.
pub fn assert_can_auth<T>(
    settings: Settings,
    db: &str,
    addr: &str,
    login: &str,
    check: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let key = (db.to_owned(), addr.to_owned());
    let now = Instant::now();
    {
        let map = failures().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&(count, last)) = map.get(&key) {
            if settings.after > 0
                && count >= settings.after
                && now.duration_since(last) < settings.duration
            {
                tracing::warn!(target: TARGET, "Login attempt ignored for {addr} (user {login:?}) on {db}: {count} failures since last success, last failure {}s ago. You can configure the number of login failures before a user is put on cooldown as well as the duration in the System Parameters. Disable this feature by setting \"base.login_cooldown_after\" to 0.", now.duration_since(last).as_secs());
                return Err(access_denied(COOLDOWN_MESSAGE));
            }
        }
    }
    let result = check();
    let mut map = failures().lock().unwrap_or_else(|e| e.into_inner());
    match &result {
        Ok(_) => {
            map.remove(&key);
        }
        Err(e) if is_access_denied(e) => {
            if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
                forget_oldest(&mut map);
            }
            let entry = map.entry(key).or_insert((0, now));
            *entry = (entry.0.saturating_add(1), now);
        }
        Err(_) => {}
    }
    result
}

fn is_access_denied(e: &Error) -> bool {
    e.name() == "inphms.exceptions.AccessDenied"
}

/// Drops the older half of the entries (by last failure).
fn forget_oldest(map: &mut Failures) {
    let mut times: Vec<Instant> = map.values().map(|(_, t)| *t).collect();
    times.sort_unstable();
    if let Some(&cut) = times.get(times.len() / 2) {
        map.retain(|_, (_, t)| *t > cut);
    }
}
