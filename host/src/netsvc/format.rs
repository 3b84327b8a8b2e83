//! The formatter: one line in Odoo's format, `2026-11-26 12:00:00,123 4242 INFO dbname
//! target: message` (UTC time with milliseconds, pid, level name, database or `?`, target),
//! with the date text cached once per second and thread.

use super::level::level_name;

/// The process id, read once (`getpid` is a system call, and every line carries it).
// global: the process id never changes; read once for every line of every thread.
pub(super) static PID: std::sync::LazyLock<u32> = std::sync::LazyLock::new(std::process::id);
/// [`PID`] as text, written on every line.
// global: the pid as text, formatted once rather than on every line.
static PID_TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| PID.to_string());

/// One log line, without the newline (tests; the logger writes into its buffer).
#[cfg(test)]
fn format_line(
    now: std::time::SystemTime,
    pid: u32,
    sev: u8,
    db: Option<&str>,
    target: &str,
    message: &str,
) -> String {
    let mut line = Vec::new();
    push_line(&mut line, now, pid, sev, db, target, |l| {
        l.extend_from_slice(message.as_bytes())
    });
    String::from_utf8(line).unwrap_or_default()
}

/// Appends one line, without the newline, to `line`.
pub(super) fn push_line(
    line: &mut Vec<u8>,
    now: std::time::SystemTime,
    pid: u32,
    sev: u8,
    db: Option<&str>,
    target: &str,
    message: impl FnOnce(&mut Vec<u8>),
) {
    push_timestamp(line, now);
    line.push(b' ');
    if pid == *PID {
        line.extend_from_slice(PID_TEXT.as_bytes());
    } else {
        line.extend_from_slice(itoa::Buffer::new().format(pid).as_bytes());
    }
    line.push(b' ');
    line.extend_from_slice(level_name(sev).as_bytes());
    line.push(b' ');
    line.extend_from_slice(db.unwrap_or("?").as_bytes());
    line.push(b' ');
    line.extend_from_slice(target.as_bytes());
    line.extend_from_slice(b": ");
    message(line);
}

/// Appends `YYYY-MM-DD HH:MM:SS,mmm`; the part up to the second is formatted once per
/// second and thread (a log line per request makes this a hot path).
fn push_timestamp(line: &mut Vec<u8>, at: std::time::SystemTime) {
    use chrono::{Datelike as _, Timelike as _};
    let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    thread_local! {
        // global: a per-thread cache of the current second's text (a cache, no host state).
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    push_cached_second(line, &SECOND, since_epoch.as_secs(), || {
        let now: chrono::DateTime<chrono::Utc> = at.into();
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            now.year(),
            now.month(),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        )
    });
    push_millis(line, since_epoch);
}

/// Appends the text of the second `secs` (since the epoch) kept in `cache`, made by
/// `format` once per second and thread: the dates of the log lines and of the access log.
/// The cache is `Copy` (a thread-local without a destructor costs no registration check
/// per access); a text of another length than `N` (a year past 9999) is written, not kept.
#[inline]
pub(crate) fn push_cached_second<const N: usize>(
    out: &mut Vec<u8>,
    cache: &'static std::thread::LocalKey<std::cell::Cell<(u64, [u8; N])>>,
    secs: u64,
    format: impl FnOnce() -> String,
) {
    let (cached, text) = cache.get();
    if cached == secs {
        out.extend_from_slice(&text);
        return;
    }
    let formatted = format();
    if let Ok(fixed) = <[u8; N]>::try_from(formatted.as_bytes()) {
        cache.set((secs, fixed));
    }
    out.extend_from_slice(formatted.as_bytes());
}

fn push_millis(line: &mut Vec<u8>, since_epoch: std::time::Duration) {
    let ms = since_epoch.subsec_millis().min(999);
    line.extend_from_slice(&[
        b',',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
}

#[cfg(test)]
mod tests {
    use super::super::level::severity;
    use super::*;

    #[test]
    fn line_format() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-26T12:00:00.123Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
            .into();
        assert_eq!(
            format_line(t, 4242, severity::INFO, None, "inphms.service.server", "hi"),
            "2026-11-26 12:00:00,123 4242 INFO ? inphms.service.server: hi"
        );
        assert_eq!(
            format_line(t, 1, severity::WARNING, Some("db1"), "werkzeug", "x"),
            "2026-11-26 12:00:00,123 1 WARNING db1 werkzeug: x"
        );
    }
}
