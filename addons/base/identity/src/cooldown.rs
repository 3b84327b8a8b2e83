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

/// Per (database, address key): failures since the last success, the last failure, and
/// the attempts being checked now (counted before their hash is computed).
#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    inflight: u32,
}

type Failures = HashMap<(String, String), Entry>;

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
/// Odoo's message without calling it. The attempt is counted under the lock before `check`
/// runs, so concurrent attempts cannot pass the threshold together: refused once the
/// failures plus the attempts in flight reach `after`. A failure (`AccessDenied`) is
/// counted, a success forgets the address's failures; other errors change nothing. IPv6
/// addresses count by their /64 ([`address_key`]).
pub fn assert_can_auth<T>(
    settings: Settings,
    db: &str,
    addr: &str,
    login: &str,
    check: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let key = (db.to_owned(), address_key(addr));
    let now = Instant::now();
    {
        let mut map = failures().lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
            forget_oldest(&mut map);
        }
        let entry = map.entry(key.clone()).or_insert(Entry {
            failures: 0,
            last: now,
            inflight: 0,
        });
        let recent = entry.failures > 0 && now.duration_since(entry.last) < settings.duration;
        if settings.after > 0
            && entry.failures.saturating_add(entry.inflight) >= settings.after
            && (recent || entry.inflight > 0)
        {
            let (count, ago) = (entry.failures, now.duration_since(entry.last).as_secs());
            tracing::warn!(target: TARGET, "Login attempt ignored for {addr} (user {:?}) on {db}: {count} failures since last success, last failure {ago}s ago. You can configure the number of login failures before a user is put on cooldown as well as the duration in the System Parameters. Disable this feature by setting \"base.login_cooldown_after\" to 0.", crate::users::loggable(login));
            return Err(access_denied(COOLDOWN_MESSAGE));
        }
        entry.inflight = entry.inflight.saturating_add(1);
    }
    let result = check();
    let mut map = failures().lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let entry = map.entry(key.clone()).or_insert(Entry {
        failures: 0,
        last: now,
        inflight: 1,
    });
    entry.inflight = entry.inflight.saturating_sub(1);
    match &result {
        Ok(_) => entry.failures = 0,
        Err(e) if is_access_denied(e) => {
            entry.failures = entry.failures.saturating_add(1);
            entry.last = now;
        }
        Err(_) => {}
    }
    if entry.failures == 0 && entry.inflight == 0 {
        map.remove(&key);
    }
    result
}

/// The key an address counts under: an IPv6 address by its /64 (one host's usual
/// allocation, whose addresses a client rotates freely), any other address as it is.
pub fn address_key(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => addr.to_owned(),
    }
}

fn is_access_denied(e: &Error) -> bool {
    e.name() == inphms_sdk::exceptions::ACCESS_DENIED
}

/// Drops the older half of the entries (by last failure), keeping those being checked.
fn forget_oldest(map: &mut Failures) {
    let mut times: Vec<Instant> = map.values().map(|e| e.last).collect();
    times.sort_unstable();
    if let Some(&cut) = times.get(times.len() / 2) {
        map.retain(|_, e| e.last > cut || e.inflight > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::7"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1"), "10.0.0.1");
        assert_eq!(address_key("unix"), "unix");
    }
}
