//! Memory limits of the process (Odoo's `set_limit_memory_hard` and `process_limit`, made
//! better): `limit_memory_hard` as RLIMIT_AS, `limit_memory_soft` checked on RSS (not virtual
//! size) every few seconds, and glibc's malloc arenas capped as Odoo caps them so that the
//! address-space limit does not trip on reserved-but-unused arenas.

use std::path::Path;

/// How often the soft limit is checked.
pub const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

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

#[cfg(test)]
mod tests {
    #[test]
    fn rss_is_read() {
        let rss = super::rss_bytes().unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert_eq!(super::over_soft_limit(0), None);
        assert!(super::over_soft_limit(1).is_some());
    }
}
