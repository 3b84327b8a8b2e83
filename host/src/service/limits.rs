//! Memory limits of the process (Odoo's `set_limit_memory_hard` and `process_limit`, made
//! better): `limit_memory_hard` as RLIMIT_AS, `limit_memory_soft` checked on RSS (not virtual
//! size) every few seconds (never recycling an image that starts over it, nor one that
//! served less than [`MIN_RECYCLE_UPTIME`]), and glibc's malloc arenas capped as Odoo caps them so that the
//! address-space limit does not trip on reserved-but-unused arenas.

use std::path::Path;
use std::time::{Duration, Instant};

/// How often the soft limit is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Sets RLIMIT_AS's soft limit to `bytes` (0 leaves it alone), keeping the hard limit.
pub fn set_memory_hard(bytes: u64) -> nix::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if bytes == 0 {
        return Ok(());
    }
    let (_, hard) = getrlimit(Resource::RLIMIT_AS)?;
    setrlimit(Resource::RLIMIT_AS, bytes.min(hard), hard)
}

/// Caps glibc's malloc arenas at 2, as Odoo does, unless `MALLOC_ARENA_MAX` is set.
pub fn cap_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX is a valid parameter.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        if ok != 1 {
            tracing::warn!(target: "inphms.service.server", "Could not set ARENA_MAX through mallopt()");
        }
    }
}

/// Hands the free memory held in glibc's malloc arenas back to the system
/// (`malloc_trim(0)`), before the soft limit is checked. Blocks freed by requests otherwise
/// stay resident: under keep-alive load RSS grew by ≈ 1.5 MiB of such free memory over the
/// first half-million requests (BENCHMARKS.md, item 6), which `limit_memory_soft` would
/// count as use. It walks two arenas (see [`cap_malloc_arenas`]): well under a millisecond.
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The resident set size of this process, in bytes.
pub fn rss_bytes() -> Option<u64> {
    rss_of(Path::new("/proc/self/statm"))
}

fn rss_of(statm: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(statm).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Whether RSS is over `limit` bytes (0 disables the check).
pub fn over_soft_limit(limit: u64) -> Option<u64> {
    if limit == 0 {
        return None;
    }
    rss_bytes().filter(|rss| *rss > limit)
}

/// The least time an image serves before the soft limit may recycle it: at most one
/// re-exec for memory per this interval, whatever RSS does. (`tests/tests/small_hardening.rs`
/// watches past it, and [`CHECK_INTERVAL`], to see no re-exec: keep its copies in step.)
pub const MIN_RECYCLE_UPTIME: Duration = Duration::from_secs(10);

/// `limit_memory_soft` as the lifecycle applies it, once per process image.
///
/// The first check (when serving starts) is the baseline: if RSS is already over the limit
/// then, a re-exec would start over it again (issue 15: 737 re-execs in 12 s, silently), so
/// one warning names both figures and the soft limit is not enforced in this image
/// (`limit_memory_hard` still is). Later, RSS over the limit recycles the image, but never
/// before it has served [`MIN_RECYCLE_UPTIME`].
/// A limit changed by a SIGHUP (the configuration read again) takes a new baseline.
#[derive(Debug)]
pub struct SoftLimit {
    limit: u64,
    enforced: bool,
    started: Instant,
    baseline_taken: bool,
}

impl SoftLimit {
    /// The soft limit of an image that started serving at `started`.
    pub fn new(started: Instant) -> SoftLimit {
        SoftLimit {
            limit: 0,
            enforced: true,
            started,
            baseline_taken: false,
        }
    }

    /// Checks `rss` (bytes, `None` if unknown) at `now` against `limit` (bytes, 0: none);
    /// the reason to recycle the image, if it must.
    pub fn check(&mut self, limit: u64, rss: Option<u64>, now: Instant) -> Option<String> {
        if limit != self.limit {
            (self.limit, self.enforced, self.baseline_taken) = (limit, true, false);
        }
        let rss = rss?;
        if self.limit == 0 || !self.enforced {
            return None;
        }
        if !std::mem::replace(&mut self.baseline_taken, true) && rss > self.limit {
            tracing::warn!(
                target: "inphms.service.server",
                "limit_memory_soft ({} bytes) is below the memory the server uses after start-up (RSS {rss} bytes): \
                 it is not enforced, as a re-exec would start over it again; set it above {rss}",
                self.limit
            );
            self.enforced = false;
            return None;
        }
        (rss > self.limit && now.saturating_duration_since(self.started) >= MIN_RECYCLE_UPTIME)
            .then(|| format!("Server memory limit ({}) reached: RSS {rss}", self.limit))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_is_read() {
        let rss = super::rss_bytes().unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert_eq!(super::over_soft_limit(0), None);
        assert!(super::over_soft_limit(1).is_some());
    }

    #[test]
    fn soft_limit_warns_once_below_the_baseline_and_waits_between_recycles() {
        use super::{SoftLimit, MIN_RECYCLE_UPTIME};
        use std::time::{Duration, Instant};
        const LIMIT: u64 = 1000;
        let t0 = Instant::now();
        let later = t0 + MIN_RECYCLE_UPTIME + Duration::from_secs(1);
        // Over the limit from the start: never a recycle.
        let mut soft = SoftLimit::new(t0);
        assert_eq!(soft.check(LIMIT, Some(5000), t0), None);
        assert_eq!(soft.check(LIMIT, Some(9000), later), None);
        // Under it at first, over it later: a recycle, once the image has served a while.
        let mut soft = SoftLimit::new(t0);
        assert_eq!(soft.check(LIMIT, Some(500), t0), None);
        assert_eq!(
            soft.check(LIMIT, Some(2000), t0 + Duration::from_secs(2)),
            None
        );
        assert_eq!(
            soft.check(LIMIT, Some(2000), later).as_deref(),
            Some("Server memory limit (1000) reached: RSS 2000")
        );
        assert_eq!(soft.check(LIMIT, Some(900), later), None);
        // Unknown RSS is no baseline; a zero limit is none.
        let mut soft = SoftLimit::new(t0);
        assert_eq!(soft.check(LIMIT, None, t0), None);
        assert_eq!(soft.check(LIMIT, Some(5000), later), None);
        assert_eq!(SoftLimit::new(t0).check(0, Some(5000), later), None);
        // A new limit (SIGHUP) takes a new baseline.
        let mut soft = SoftLimit::new(t0);
        assert_eq!(soft.check(LIMIT, Some(5000), t0), None);
        assert!(soft.check(4000, Some(3000), later).is_none());
        assert!(soft.check(4000, Some(5000), later).is_some());
    }
}
