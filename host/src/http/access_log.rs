//! The per-request access-log line, in werkzeug's format plus Odoo's perf info.
//!
//! werkzeug logs `'%s - - [%s] "%s" %s %s'` (client address, date `%d/%b/%Y %H:%M:%S`,
//! request line, status, size or `-`; werkzeug itself always writes `-`) under the logger
//! `werkzeug`, and Odoo's `PerfFilter` appends `query_count query_time remaining_time`
//! (`%d %.3f %.3f`):
//!
//! ```text
//! 127.0.0.1 - - [26/Nov/2026 12:00:00] "GET /web/health HTTP/1.1" 200 - 0 0.000 0.001
//! ```
//!
//! The date is UTC (Odoo forces `TZ=UTC`). The request target is written as received,
//! except that `"`, `\`, control and non-ASCII characters are percent-escaped, so that a
//! line can always be split back into its fields (werkzeug would decode it for display).
//!
//! [`AccessLogEntry`] implements `Display`, so the caller can log it without building a
//! string (`tracing::info!(target: "werkzeug", "{entry}")`); [`AccessLogEntry::to_line`]
//! makes the line in one allocation.

use std::fmt;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

/// The logger of the access log, werkzeug's.
// global: logging is process-wide (one subscriber, one filter: `netsvc`)
pub static ACCESS_LOG_TARGET: crate::netsvc::BatchedTarget =
    crate::netsvc::BatchedTarget::new("werkzeug");

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One request, as plain values.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogEntry<'a> {
    /// The client address (after proxy mode), as text.
    pub remote_addr: &'a str,
    /// When the request was received (or answered: werkzeug logs when the status is sent).
    pub time: SystemTime,
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The request target as received: path and query string.
    pub target: &'a str,
    /// `HTTP/1.1`, … (see [`version_str`]).
    pub version: &'a str,
    /// The response status code.
    pub status: u16,
    /// The body size, or `None` for `-` (what werkzeug always writes).
    pub size: Option<u64>,
    /// Database queries made by the request.
    pub query_count: u64,
    /// Seconds spent in those queries.
    pub query_time: f64,
    /// The rest of the request's time, in seconds.
    pub remaining_time: f64,
}

impl AccessLogEntry<'_> {
    /// The line, in one allocation.
    pub fn to_line(&self) -> String {
        let mut line = Vec::with_capacity(96 + self.target.len());
        self.write_to(&mut line);
        // Only ASCII and the (UTF-8) address and method are written.
        String::from_utf8(line).unwrap_or_default()
    }

    /// Appends the line to `out`, without `fmt` (this runs once per request: numbers are
    /// written with `itoa`, the date comes from a per-second cache).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(self.remote_addr.as_bytes());
        out.extend_from_slice(b" - - [");
        write_date(out, self.time);
        out.extend_from_slice(b"] \"");
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        write_target(out, self.target);
        out.push(b' ');
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(b"\" ");
        out.extend_from_slice(num.format(self.status).as_bytes());
        out.push(b' ');
        match self.size {
            Some(size) => out.extend_from_slice(num.format(size).as_bytes()),
            None => out.push(b'-'),
        }
        out.push(b' ');
        out.extend_from_slice(num.format(self.query_count).as_bytes());
        out.push(b' ');
        write_seconds(out, self.query_time);
        out.push(b' ');
        write_seconds(out, self.remaining_time);
    }
}

impl fmt::Display for AccessLogEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// Writes seconds with three decimals (`%.3f`) by integer formatting: a float formatted
/// with a precision costs several times more, twice per request.
fn write_seconds(out: &mut Vec<u8>, seconds: f64) {
    if seconds == 0.0 {
        // No query: the common case.
        out.extend_from_slice(b"0.000");
        return;
    }
    if !(0.0..1e12).contains(&seconds) {
        out.extend_from_slice(format!("{seconds:.3}").as_bytes());
        return;
    }
    // Rounded half up, as `f64::round` would for these values, without its libm call.
    let millis = (seconds * 1000.0 + 0.5) as u64;
    out.extend_from_slice(itoa::Buffer::new().format(millis / 1000).as_bytes());
    let frac = millis % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// Writes werkzeug's `26/Nov/2026 12:00:00`, formatted once per second and thread (a line
/// per request makes this a hot path).
fn write_date(out: &mut Vec<u8>, time: SystemTime) {
    thread_local! {
        // global: a per-thread cache of the formatted second (a pure function of the time)
        static SECOND: std::cell::Cell<(u64, [u8; 20])> = const { std::cell::Cell::new((u64::MAX, [0; 20])) };
    }
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::netsvc::push_cached_second(out, &SECOND, secs, || {
        let t: DateTime<Utc> = time.into();
        format!(
            "{:02}/{}/{:04} {:02}:{:02}:{:02}",
            t.day(),
            MONTHS[t.month0() as usize],
            t.year(),
            t.hour(),
            t.minute(),
            t.second(),
        )
    });
}

fn write_target(out: &mut Vec<u8>, target: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let needs_escape = |b: u8| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b);
    if !target.bytes().any(needs_escape) {
        out.extend_from_slice(target.as_bytes());
        return;
    }
    for b in target.bytes() {
        if needs_escape(b) {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}

/// The entry of a request that made no database query, stamped now: `elapsed` is the
/// whole request time (Odoo's `remaining_time` when `query_time` is 0).
pub fn entry<'a>(
    remote_addr: &'a str,
    method: &'a str,
    target: &'a str,
    version: &'a str,
    status: u16,
    size: Option<u64>,
    elapsed: Duration,
) -> AccessLogEntry<'a> {
    AccessLogEntry {
        remote_addr,
        time: SystemTime::now(),
        method,
        target,
        version,
        status,
        size,
        query_count: 0,
        query_time: 0.0,
        remaining_time: elapsed.as_secs_f64(),
    }
}

/// The protocol as werkzeug writes it in the request line.
pub fn version_str(version: hyper::Version) -> &'static str {
    match version {
        hyper::Version::HTTP_09 => "HTTP/0.9",
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_11 => "HTTP/1.1",
        hyper::Version::HTTP_2 => "HTTP/2.0",
        hyper::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 26 Nov 2026 12:00:00 UTC.
    fn noon() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_694_400)
    }

    fn entry(target: &str) -> AccessLogEntry<'_> {
        // The fixture (the module's `entry` is the request path's constructor).
        AccessLogEntry {
            remote_addr: "127.0.0.1",
            time: noon(),
            method: "GET",
            target,
            version: "HTTP/1.1",
            status: 200,
            size: None,
            query_count: 0,
            query_time: 0.0,
            remaining_time: 0.001,
        }
    }

    #[test]
    fn the_reference_line() {
        assert_eq!(
            entry("/web/health").to_line(),
            "127.0.0.1 - - [26/Nov/2026 12:00:00] \"GET /web/health HTTP/1.1\" 200 - 0 0.000 0.001"
        );
    }

    #[test]
    fn fields() {
        let mut e = entry("/web/dataset/call_kw?x=1&y=%20");
        e.remote_addr = "2001:db8::1";
        e.time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_199); // 31 Dec 2023 23:59:59
        e.method = "POST";
        e.version = version_str(hyper::Version::HTTP_10);
        e.status = 404;
        e.size = Some(1234);
        e.query_count = 12;
        e.query_time = 0.0456;
        e.remaining_time = 1.23449;
        assert_eq!(
            e.to_line(),
            "2001:db8::1 - - [31/Dec/2023 23:59:59] \"POST /web/dataset/call_kw?x=1&y=%20 HTTP/1.0\" 404 1234 12 0.046 1.234"
        );
        // Display gives the same text.
        assert_eq!(format!("{e}"), e.to_line());
    }

    #[test]
    fn single_digit_day_and_every_month() {
        let mut e = entry("/");
        e.time = SystemTime::UNIX_EPOCH + Duration::from_secs(5 * 86400); // 6 Jan 1970
        assert!(e.to_line().contains("[06/Jan/1970 00:00:00]"));
        for (month, name) in MONTHS.iter().enumerate() {
            let date = chrono::NaiveDate::from_ymd_opt(2025, month as u32 + 1, 15).unwrap();
            let secs = date.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp() as u64;
            e.time = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            assert!(e.to_line().contains(&format!("[15/{name}/2025 00:00:00]")));
        }
    }

    #[test]
    fn target_is_escaped_only_when_needed() {
        assert!(entry("/a\"b\\c\td\u{e9}")
            .to_line()
            .contains("\"GET /a%22b%5Cc%09d%C3%A9 HTTP/1.1\""));
        let line = entry("/plain").to_line();
        assert!(line.capacity() >= line.len());
    }

    #[test]
    fn format_line_without_queries() {
        let line = super::entry(
            "10.1.2.3",
            "HEAD",
            "/web/login?redirect=%2Fodoo",
            "HTTP/1.1",
            303,
            Some(0),
            Duration::from_millis(1234),
        )
        .to_line();
        let (head, tail) = line.split_once(" - - [").unwrap();
        assert_eq!(head, "10.1.2.3");
        let (date, rest) = tail.split_once("] ").unwrap();
        chrono::NaiveDateTime::parse_from_str(date, "%d/%b/%Y %H:%M:%S").unwrap();
        assert_eq!(
            rest,
            "\"HEAD /web/login?redirect=%2Fodoo HTTP/1.1\" 303 0 0 0.000 1.234"
        );
    }

    #[test]
    fn versions() {
        assert_eq!(version_str(hyper::Version::HTTP_11), "HTTP/1.1");
        assert_eq!(version_str(hyper::Version::HTTP_2), "HTTP/2.0");
    }
}
