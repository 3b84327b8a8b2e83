//! Logging (Odoo's `odoo/netsvc.py`): one `tracing` subscriber that writes Odoo's line
//! format to stderr or to `--logfile`, filtered per target as `--log-level` and
//! `--log-handler` say.
//!
//! A line: `2026-11-26 12:00:00,123 4242 INFO dbname inphms.service.server: message` (UTC
//! time with milliseconds, pid, Odoo's level name, the database of the current span or `?`,
//! the target, the message). Host code logs with `tracing` and Odoo-like dotted targets
//! (`tracing::info!(target: "inphms.service.server", ...)`); access-log lines use the target
//! `werkzeug`. An error event with the field `critical = true` is logged as `CRITICAL`.
//! Events inside [`db_span`] carry that database name. Addons' records, whose targets are
//! only known at run time, go through [`enabled`] and [`log_record`].
//!
//! [`init_early`] logs to stderr at INFO before the configuration is read; [`init`] then
//! applies the configuration. Both may be called more than once.

use crate::config::{Config, ConfigError};
use arc_swap::ArcSwap;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::SystemTime;

pub mod output;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};

/// Odoo's numeric levels (Python's `logging`), which order the filter.
mod severity {
    pub const NOTSET: u8 = 0;
    pub const TRACE: u8 = 5;
    pub const DEBUG: u8 = 10;
    pub const INFO: u8 = 20;
    pub const RUNBOT: u8 = 25;
    pub const WARNING: u8 = 30;
    pub const ERROR: u8 = 40;
    pub const CRITICAL: u8 = 50;
}

/// The severity of a `tracing` level.
fn severity_of(level: &Level) -> u8 {
    match *level {
        Level::TRACE => severity::TRACE,
        Level::DEBUG => severity::DEBUG,
        Level::INFO => severity::INFO,
        Level::WARN => severity::WARNING,
        Level::ERROR => severity::ERROR,
    }
}

/// The name Odoo prints for a severity.
fn level_name(sev: u8) -> &'static str {
    match sev {
        s if s >= severity::CRITICAL => "CRITICAL",
        s if s >= severity::ERROR => "ERROR",
        s if s >= severity::WARNING => "WARNING",
        s if s >= severity::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// The severity of a `--log-handler` level name.
fn parse_level(name: &str) -> Option<u8> {
    Some(match name.to_ascii_uppercase().as_str() {
        "NOTSET" => severity::NOTSET,
        "DEBUG" => severity::DEBUG,
        "INFO" => severity::INFO,
        "RUNBOT" => severity::RUNBOT,
        "WARNING" | "WARN" => severity::WARNING,
        "ERROR" => severity::ERROR,
        "CRITICAL" => severity::CRITICAL,
        _ => return None,
    })
}

/// What Odoo always configures first.
const DEFAULT_HANDLERS: [&str; 3] = [
    "inphms.http.rpc.request:INFO",
    "inphms.http.rpc.response:INFO",
    ":INFO",
];

/// The handlers a `--log-level` preset stands for (Odoo's `PSEUDOCONFIG_MAPPER`).
fn preset(log_level: &str) -> &'static [&'static str] {
    match log_level {
        "debug_rpc_answer" => &[
            "inphms:DEBUG",
            "inphms.sql_db:INFO",
            "inphms.http.rpc:DEBUG",
        ],
        "debug_rpc" => &[
            "inphms:DEBUG",
            "inphms.sql_db:INFO",
            "inphms.http.rpc.request:DEBUG",
        ],
        "debug" => &["inphms:DEBUG", "inphms.sql_db:INFO"],
        "debug_sql" => &["inphms.sql_db:DEBUG"],
        "runbot" => &["inphms:RUNBOT", "werkzeug:WARNING"],
        "warn" => &["inphms:WARNING", "werkzeug:WARNING"],
        "error" => &["inphms:ERROR", "werkzeug:ERROR"],
        "critical" => &["inphms:CRITICAL", "werkzeug:CRITICAL"],
        "notset" => &[":NOTSET"],
        _ => &[],
    }
}

/// Per-target thresholds: the longest prefix of a target that has one decides, as Python's
/// logger hierarchy (segments split on `.` or `::`; the empty prefix is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter {
    directives: Vec<(String, u8)>,
}

impl Filter {
    /// The root at `sev` only.
    fn root(sev: u8) -> Filter {
        Filter {
            directives: vec![(String::new(), sev)],
        }
    }

    /// Odoo's defaults, then the `log_level` preset, then `handlers`, later entries winning.
    fn from_options(log_level: &str, handlers: &[String]) -> Result<Filter, String> {
        let mut f = Filter::root(severity::INFO);
        let all = DEFAULT_HANDLERS
            .iter()
            .chain(preset(log_level))
            .map(|s| s.to_string())
            .chain(handlers.iter().cloned());
        for item in all {
            let (prefix, level) = item
                .rsplit_once(':')
                .ok_or_else(|| format!("PREFIX:LEVEL, got {item:?}"))?;
            let sev = parse_level(level).ok_or_else(|| format!("a log level, got {level:?}"))?;
            f.set(prefix.trim(), sev);
        }
        Ok(f)
    }

    /// Sets the threshold of `prefix`; NOTSET on a non-root prefix defers to its parent.
    fn set(&mut self, prefix: &str, sev: u8) {
        self.directives.retain(|(p, _)| p != prefix);
        if sev != severity::NOTSET || prefix.is_empty() {
            self.directives.push((prefix.to_owned(), sev));
        }
    }

    /// The threshold that applies to `target`.
    fn threshold(&self, target: &str) -> u8 {
        self.directives
            .iter()
            .filter(|(p, _)| covers(p, target))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, s)| *s)
            .unwrap_or(severity::INFO)
    }

    fn enabled(&self, sev: u8, target: &str) -> bool {
        sev >= self.threshold(target)
    }
}

/// Whether the logger `prefix` is `target` or one of its parents.
fn covers(prefix: &str, target: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    match target.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with('.') || rest.starts_with("::"),
        None => false,
    }
}

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
fn push_line(
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
        // global: a per-thread cache of the formatted second (a pure function of the time)
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

/// The filter and the output, shared by the subscriber and [`log_record`].
struct Logger {
    /// Read on every line (an `ArcSwap`: the workers share no written memory to read it).
    filter: ArcSwap<Filter>,
    /// Bumped each time `filter` is replaced (from 1; see [`BatchedTarget`]).
    generation: AtomicU32,
    out: output::Output,
}

// global: logging is process-wide (`tracing` has one global subscriber)
static LOGGER: std::sync::LazyLock<Logger> = std::sync::LazyLock::new(|| Logger {
    filter: ArcSwap::from_pointee(Filter::root(severity::INFO)),
    generation: AtomicU32::new(1),
    out: output::Output::stderr(),
});

/// The process id, read once (`getpid` is a system call, and every line carries it).
// global: a constant of the process
static PID: std::sync::LazyLock<u32> = std::sync::LazyLock::new(std::process::id);
/// [`PID`] as text, written on every line.
// global: a constant of the process
static PID_TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| PID.to_string());

impl Logger {
    fn enabled(&self, sev: u8, target: &str) -> bool {
        self.filter.load().enabled(sev, target)
    }

    /// Whether events of a callsite can pass: an error callsite with a `critical` field is
    /// judged as CRITICAL.
    fn enabled_meta(&self, meta: &Metadata<'_>) -> bool {
        let sev = if meta.fields().field("critical").is_some() {
            severity::CRITICAL
        } else {
            severity_of(meta.level())
        };
        self.enabled(sev, meta.target())
    }

    /// Writes one line; `batched` lines below WARNING may wait in the buffer (see
    /// [`output`]), every other line is written before this returns.
    fn write(
        &self,
        sev: u8,
        db: Option<&str>,
        target: &str,
        batched: bool,
        at: std::time::SystemTime,
        message: impl FnOnce(&mut Vec<u8>),
    ) {
        self.out.line(!batched || sev >= severity::WARNING, |line| {
            push_line(line, at, *PID, sev, db, target, message)
        });
    }
}

/// The database name carried by a span.
struct DbName(String);

/// Finds the `dbname` field of a span.
#[derive(Default)]
struct DbVisitor(Option<String>);

impl Visit for DbVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "dbname" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "dbname" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The message of an event, its `critical` flag and its other fields as ` key=value`.
#[derive(Default)]
struct EventVisitor {
    message: String,
    extra: String,
    critical: bool,
}

impl Visit for EventVisitor {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "critical" {
            self.critical = value;
        } else {
            self.record_debug(field, &value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.extra.push_str(&format!(" {}={value}", field.name()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.extra.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

/// The layer writing Odoo's lines.
struct OdooLayer;

impl<S> Layer<S> for OdooLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() || LOGGER.enabled_meta(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        meta.is_span() || LOGGER.enabled_meta(meta)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = DbVisitor::default();
        attrs.record(&mut v);
        if let (Some(db), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(DbName(db));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut v = DbVisitor::default();
        values.record(&mut v);
        if let (Some(db), Some(span)) = (v.0, ctx.span(id)) {
            let mut ext = span.extensions_mut();
            ext.remove::<DbName>();
            ext.insert(DbName(db));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut v = EventVisitor::default();
        event.record(&mut v);
        let sev = if v.critical {
            severity::CRITICAL
        } else {
            severity_of(meta.level())
        };
        if !LOGGER.enabled(sev, meta.target()) {
            return;
        }
        let db = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|s| s.extensions().get::<DbName>().map(|d| d.0.clone()))
        });
        v.message.push_str(&v.extra);
        LOGGER.write(
            sev,
            db.as_deref(),
            meta.target(),
            false,
            SystemTime::now(),
            |line| line.extend_from_slice(v.message.as_bytes()),
        );
    }
}

// global: the process-wide `tracing` subscriber is installed once
static INSTALL: Once = Once::new();

/// Installs the subscriber once (unless the process already has one).
fn install() {
    INSTALL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Registry::default().with(OdooLayer));
        // Libraries that log through the `log` crate (tokio-postgres, deadpool) reach the
        // same log, under their module path as target (INFO and above).
        let _ = tracing_log::LogTracer::init_with_filter(tracing_log::log::LevelFilter::Info);
    });
}

/// Logging before the configuration is read: stderr, INFO.
pub fn init_early() {
    install();
}

/// Applies the logging options of `config`: `log_level`, `log_handler` and `logfile` (its
/// folder is created; a file that cannot be opened is an error naming the option).
pub fn init(config: &Config) -> Result<(), ConfigError> {
    let filter =
        Filter::from_options(&config.log_level, &config.log_handler).map_err(|expected| {
            ConfigError::Invalid {
                option: "log_handler".into(),
                value: format!("{:?}", config.log_handler.join(",")),
                origin: config.origin("log_handler"),
                expected,
            }
        })?;
    let out: Box<dyn Write + Send> = match &config.logfile {
        None => Box::new(std::io::stderr()),
        Some(path) => {
            let opened = path
                .parent()
                .filter(|dir| !dir.exists())
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                });
            match opened {
                Ok(f) => Box::new(f),
                Err(e) => {
                    let reason = crate::config::io_reason(&e);
                    return Err(ConfigError::Invalid {
                        option: "logfile".into(),
                        value: format!("{:?}", path.display().to_string()),
                        origin: config.origin("logfile"),
                        expected: format!("a file that can be created or appended to ({reason})"),
                    });
                }
            }
        }
    };
    install();
    LOGGER.filter.store(std::sync::Arc::new(filter));
    LOGGER.generation.fetch_add(1, Ordering::Release);
    LOGGER.out.set_sink(out);
    LOGGER.out.start_flusher();
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}

/// Whether a record of `level` for `target` would be written (addons ask before formatting).
pub fn enabled(level: Level, target: &str) -> bool {
    LOGGER.enabled(severity_of(&level), target)
}

/// Writes a record of an addon, under the addon's own `target`, with the database of the
/// current span, if it passes the filter.
pub fn log_record(level: Level, target: &str, message: &str) {
    let sev = severity_of(&level);
    if LOGGER.enabled(sev, target) {
        let db = current_dbname();
        LOGGER.write(
            sev,
            db.as_deref(),
            target,
            false,
            SystemTime::now(),
            |line| line.extend_from_slice(message.as_bytes()),
        );
    }
}

/// Writes a high-volume record (the access log, a line per request) whose message `fill`
/// appends to the line: below WARNING it may wait up to [`output::FLUSH_DELAY`] in the
/// buffer and be written with the lines logged meanwhile, in one system call. The caller
/// gives the line's database (`None`: `?`) and time (it has read the clock already).
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

/// Writes every buffered log line now: before the process exits or re-executes itself
/// (lines are otherwise written in batches, see [`output`]).
pub fn flush() {
    LOGGER.out.flush();
}

/// A span binding the database `name`: events inside it are logged with that name.
pub fn db_span(name: &str) -> tracing::Span {
    tracing::info_span!(target: "inphms", "db", dbname = name)
}

/// The database of the current span, if any.
fn current_dbname() -> Option<String> {
    tracing::dispatcher::get_default(|d| {
        let registry = d.downcast_ref::<Registry>()?;
        let current = d.current_span();
        let span = registry.span(current.id()?)?;
        span.scope()
            .find_map(|s| s.extensions().get::<DbName>().map(|db| db.0.clone()))
    })
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn events_and_addon_records_carry_the_span_database() {
        let dir = std::env::temp_dir().join(format!("inphms-netsvc-{}", std::process::id()));
        let logfile = dir.join("test.log");
        let mut config = Config::defaults();
        config.logfile = Some(logfile.clone());
        config.log_handler = vec![":INFO".into(), "addon.quiet:ERROR".into()];
        init(&config).unwrap();
        tracing::info!(target: "inphms.test", "outside");
        db_span("db1").in_scope(|| {
            tracing::info!(target: "inphms.test", "inside");
            tracing::error!(target: "inphms.test", critical = true, "very bad");
            log_record(Level::WARN, "addon.foo", "from an addon");
            log_record(Level::WARN, "addon.quiet", "filtered");
        });
        assert!(enabled(Level::INFO, "addon.foo"));
        assert!(!enabled(Level::DEBUG, "addon.foo"));
        assert!(!enabled(Level::WARN, "addon.quiet.sub"));
        let log = std::fs::read_to_string(&logfile).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // Other tests of this binary may log meanwhile: keep the lines of this one.
        let tails: Vec<&str> = log
            .lines()
            .map(|l| l.splitn(4, ' ').nth(3).unwrap())
            .filter(|t| t.contains(" inphms.test: ") || t.contains(" addon."))
            .collect();
        assert_eq!(
            tails,
            [
                "INFO ? inphms.test: outside",
                "INFO db1 inphms.test: inside",
                "CRITICAL db1 inphms.test: very bad",
                "WARNING db1 addon.foo: from an addon",
            ]
        );
    }

    #[test]
    fn filter_hierarchy() {
        let f = Filter::from_options(
            "warn",
            &["inphms.http:DEBUG".into(), "hyper::proto:ERROR".into()],
        )
        .unwrap();
        assert!(f.enabled(severity::INFO, "other"));
        assert!(!f.enabled(severity::INFO, "inphms.service"));
        assert!(f.enabled(severity::WARNING, "inphms"));
        assert!(f.enabled(severity::DEBUG, "inphms.http.rpc"));
        assert!(!f.enabled(severity::DEBUG, "inphms.httpx"));
        assert!(!f.enabled(severity::WARNING, "hyper::proto::h1"));
        assert!(!f.enabled(severity::INFO, "werkzeug"));
        let n = Filter::from_options("notset", &[]).unwrap();
        assert!(n.enabled(severity::TRACE, "anything"));
        let c = Filter::from_options("info", &["inphms:NOTSET".into()]).unwrap();
        assert!(!c.enabled(severity::DEBUG, "inphms.x"));
    }
}
